"""The guest side of tests/test_wayland_lab.py: runs inside a QEMU lab guest as root.

Not a test module: the lab test submits ``python3 tests/wayland_lab_guest.py MODE ...`` as
guest jobs, one after the other in one guest, waits for their markers (svga.lab.marker),
injects pointer events over QMP and reads the JSON each job prints last (``RESULT {...}``)
and the files it leaves in its job folder ($SVGA_LAB_JOB, shared with the host). The facts
this script relies on are in docs/lab.md 'Wayland: sway headless with libinput'.

Modes:

- ``setup``: udevd with the bridge's udev rules, the unprivileged user ``wl`` (uid 1500, in
  group video), seatd (socket for group video), and a cursor theme ``lab`` whose every
  cursor is an opaque 8x8 magenta square with its hotspot at the top-left pixel, so that a
  screenshot shows where the compositor's cursor is;
- ``sway``: start the bridge (``vmmouse run``, as root; it drops to nobody) and sway as
  ``wl`` (WLR_BACKENDS=headless,libinput, WLR_RENDERER=pixman, seatd), with a wev window
  launched by sway, then play a plan (a JSON list of steps, ``--plan``): ``swaymsg`` (a sway
  command), ``bridge`` (restart the bridge with these arguments), ``shot`` (signal a marker;
  the host moves the pointer and releases it; wait for the move on the bridge's device, then
  save a ``grim -c`` screenshot NAME.ppm once two in a row agree), ``wev`` (signal a marker;
  the host clicks and scrolls; return what wev printed), ``classify`` (udevadm and
  ``libinput list-devices`` on the bridge's device);
- ``burst``: the bridge alone; record every evdev frame of its device while the host sends a
  burst, write one byte on /dev/ttyS1 (the host's back channel) for each button change and one
  when the final position arrives, report the frames and the bridge's CPU time from
  /proc/PID/stat;
- ``weston``: the bridge and weston (DRM backend on the bochs KMS device, pixman, kiosk-shell,
  libinput), as root, with wev fullscreen; for each ``--markers`` name signal it, then return
  what wev printed after the host's move or clicks;
- ``latency``: for each phase, a reader writes one byte on /dev/ttyS1 for every event frame
  of the watched device, so the host times QMP -> evdev round trips: ``kernel`` (the kernel's
  own psmouse vmmouse driver, its absolute device), ``poll`` and ``serio`` (the bridge's
  uinput device with that wake-up).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from svga.lab import marker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, UID = "wl", 1500
RUNTIME = f"/run/user/{UID}"
HOME = f"/home/{USER}"
THEME_DIR = "/run/wayland-lab/icons"
BRIDGE_LOG = "/tmp/vmmouse-bridge.log"
SWAY_LOG = "/tmp/sway.log"
WEV_LOG = "/tmp/wev.log"
BACK_CHANNEL = "/dev/ttyS1"
BRIDGE_NAME = "VMware vmmouse absolute pointer"
KERNEL_VMMOUSE_NAME = "VirtualPS/2 VMware VMMouse"
CURSOR_RGB = (255, 0, 255)
CURSOR_SIZE = 8


# --- setup -------------------------------------------------------------------------------------

def xcursor_file(width: int, height: int, argb: int, nominal: int = 24) -> bytes:
    """One Xcursor image (docs/lab.md 'A cursor theme a screenshot can find'): file header
    "Xcur", 16, version 1.0, one table-of-contents entry (image type 0xfffd0002, nominal size,
    position), then the image chunk (header 36, type, size, version 1, width, height, hotspot
    x and y, delay) and its ARGB pixels, all little-endian."""
    image_type = 0xFFFD0002
    header = struct.pack("<4sIII", b"Xcur", 16, 0x10000, 1)
    toc = struct.pack("<III", image_type, nominal, 16 + 12)
    chunk = struct.pack("<9I", 36, image_type, nominal, 1, width, height, 0, 0, 0)
    return header + toc + chunk + struct.pack(f"<{width * height}I", *([argb] * (width * height)))


def cmd_setup(args: argparse.Namespace) -> dict:
    os.makedirs("/etc/udev/rules.d", exist_ok=True)
    for rule in glob.glob(os.path.join(ROOT, "xorg-bridge", "*.rules")):
        shutil.copy(rule, "/etc/udev/rules.d/")
    # udev would load psmouse for the AUX port by its modalias; the kernel's vmmouse driver
    # and the bridge must not share the vmmouse (docs/vmmouse.md 'Linux vmmouse driver'), so
    # psmouse is only loaded on purpose (the latency anchor).
    os.makedirs("/etc/modprobe.d", exist_ok=True)
    with open("/etc/modprobe.d/wayland-lab.conf", "w") as f:
        f.write("blacklist psmouse\n")
    subprocess.run(["/lib/systemd/systemd-udevd", "--daemon"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["udevadm", "trigger"], check=False)
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
    subprocess.run(["useradd", "-m", "-u", str(UID), "-G", "video", USER], check=True)
    os.makedirs(RUNTIME, mode=0o700, exist_ok=True)
    os.chown(RUNTIME, UID, UID)
    os.chmod(RUNTIME, 0o700)
    subprocess.Popen(["seatd", "-g", "video", "-l", "info"], stdout=open("/tmp/seatd.log", "w"),
                     stderr=subprocess.STDOUT, start_new_session=True)
    r, g, b = CURSOR_RGB
    data = xcursor_file(CURSOR_SIZE, CURSOR_SIZE, 0xFF000000 | r << 16 | g << 8 | b)
    os.makedirs(f"{THEME_DIR}/lab/cursors", exist_ok=True)
    for name in ("left_ptr", "default"):
        with open(f"{THEME_DIR}/lab/cursors/{name}", "wb") as f:
            f.write(data)
    deadline = time.monotonic() + 20
    while not os.path.exists("/run/seatd.sock") and time.monotonic() < deadline:
        time.sleep(0.1)
    if os.path.exists("/sys/module/psmouse"):
        subprocess.run(["busybox", "rmmod", "psmouse"], check=False)
    return {"seatd": os.path.exists("/run/seatd.sock"), "user": USER,
            "psmouse": os.path.exists("/sys/module/psmouse")}


# --- the bridge ----------------------------------------------------------------------------------

def start_bridge(extra: list[str]) -> tuple[subprocess.Popen, str | None]:
    """Start ``vmmouse run`` (root; it drops to nobody) and wait for its uinput device."""
    import evdev

    cmd = [sys.executable, "-m", "vmmouse", "-v", "run", "--source", "backdoor", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(BRIDGE_LOG, "a"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        for path in evdev.list_devices():
            try:
                dev = evdev.InputDevice(path)
            except OSError:
                continue
            name = dev.name
            dev.close()
            if name == BRIDGE_NAME:
                subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
                return proc, path
        time.sleep(0.1)
    return proc, None


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> int | str | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return "killed"


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (proc(5): fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


# --- sway ------------------------------------------------------------------------------------------

def user_env(**more: str) -> dict[str, str]:
    env = {"HOME": HOME, "USER": USER, "LOGNAME": USER, "PATH": "/usr/local/bin:/usr/bin:/bin",
           "XDG_RUNTIME_DIR": RUNTIME, "LANG": "C.UTF-8"}
    env.update(more)
    return env


def as_user(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, user=UID, group=UID, extra_groups=["video"], cwd=HOME,
                          check=False, **kwargs)


SWAY_CONFIG = """\
default_border none
default_floating_border none
seat seat0 xcursor_theme lab 24
exec stdbuf -oL wev > {wev_log} 2>&1
"""


class Sway:
    def __init__(self, outputs: int) -> None:
        for path in glob.glob(f"{RUNTIME}/*"):
            if os.path.basename(path).startswith(("wayland-", "sway-ipc")):
                os.unlink(path)
        os.makedirs(f"{HOME}/.config/sway", exist_ok=True)
        with open(f"{HOME}/.config/sway/config", "w") as f:
            f.write(SWAY_CONFIG.format(wev_log=WEV_LOG))
        for path in (f"{HOME}/.config", f"{HOME}/.config/sway", f"{HOME}/.config/sway/config"):
            os.chown(path, UID, UID)
        open(WEV_LOG, "w").close()
        os.chown(WEV_LOG, UID, UID)
        env = user_env(WLR_BACKENDS="headless,libinput", WLR_RENDERER="pixman",
                       WLR_HEADLESS_OUTPUTS=str(outputs), LIBSEAT_BACKEND="seatd",
                       XCURSOR_PATH=THEME_DIR)
        self.proc = subprocess.Popen(["sway", "-d"], env=env, user=UID, group=UID, extra_groups=["video"],
                                     cwd=HOME, stdout=open(SWAY_LOG, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        self.socket = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            socks = glob.glob(f"{RUNTIME}/sway-ipc.*.sock")
            if socks and os.path.exists(f"{RUNTIME}/wayland-1"):
                self.socket = socks[0]
                break
            time.sleep(0.1)
        self.env = user_env(SWAYSOCK=self.socket or "", WAYLAND_DISPLAY="wayland-1")

    def msg(self, *args: str) -> str:
        out = as_user(["swaymsg", *args], self.env, capture_output=True, text=True)
        return out.stdout + out.stderr

    def json(self, kind: str, timeout: float = 20.0):
        """A sway IPC reply; retried while sway is not answering yet (its socket appears first)."""
        deadline = time.monotonic() + timeout
        while True:
            out = as_user(["swaymsg", "-r", "-t", kind], self.env, capture_output=True, text=True)
            try:
                return json.loads(out.stdout)
            except json.JSONDecodeError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"swaymsg -t {kind}: {out.stderr.strip()}") from None
                time.sleep(0.2)

    def grim(self) -> bytes:
        return as_user(["grim", "-c", "-t", "ppm", "-"], self.env, capture_output=True).stdout

    def wait_for_input(self, name: str, present: bool = True, timeout: float = 30.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = [i["identifier"] for i in self.json("get_inputs") if i["name"] == name]
            if bool(ids) == present:
                return ids[0] if ids else None
            time.sleep(0.2)
        return None

    def wait_for_window(self, app_id: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f'"app_id": "{app_id}"' in json.dumps(self.json("get_tree")):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> int | str | None:
        return stop(self.proc)


class MoveWatch:
    """Opened before the host moves the pointer: ``wait`` returns once the bridge's device has
    reported an absolute move since."""

    def __init__(self, path: str | None) -> None:
        import evdev

        self.dev = evdev.InputDevice(path) if path else None

    def wait(self, timeout: float = 10.0) -> bool:
        from evdev import ecodes

        if self.dev is None:
            return False
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not select.select([self.dev], [], [], 0.2)[0]:
                    continue
                if any(ev.type == ecodes.EV_ABS for ev in self.dev.read()):
                    return True
            return False
        finally:
            self.dev.close()


def _stable_shot(sway: Sway) -> tuple[bytes, int]:
    """A screenshot taken once two in a row are the same (sway has drawn the move)."""
    time.sleep(0.1)
    last = sway.grim()
    for tries in range(1, 8):
        time.sleep(0.1)
        shot = sway.grim()
        if shot == last and shot:
            return shot, tries
        last = shot
    return last, 8


def _wev_wait(expect_lines: int, since: int, timeout: float = 20.0, log: str = WEV_LOG) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with open(log, errors="replace") as f:
            text = f.read()[since:]
        n = sum(1 for line in text.splitlines() if "] button:" in line or "] axis: time" in line)
        if n >= expect_lines:
            time.sleep(0.3)
            with open(log, errors="replace") as f:
                return f.read()[since:]
        time.sleep(0.1)
    return text


def cmd_sway(args: argparse.Namespace) -> dict:
    plan = json.loads(args.plan)
    job = os.environ["SVGA_LAB_JOB"]
    result: dict = {"steps": []}
    bridge, path = start_bridge(args.bridge_args.split())
    sway = Sway(args.outputs)
    result["sway_socket"] = sway.socket
    try:
        if sway.socket is None or path is None:
            result["error"] = "sway or the bridge did not start"
            return result
        ident = sway.wait_for_input(BRIDGE_NAME)
        result["identifier"] = ident
        result["wev_window"] = sway.wait_for_window("wev")
        result["outputs"] = [o["name"] for o in sway.json("get_outputs")]
        for step in plan:
            kind = step["do"]
            record: dict = {"do": kind}
            if kind == "swaymsg":
                command = step["command"].replace("$ID", ident or "")
                record["reply"] = sway.msg(command)
                time.sleep(0.3)
            elif kind == "bridge":
                record["status"] = stop(bridge)
                sway.wait_for_input(BRIDGE_NAME, present=False)
                bridge, path = start_bridge(step["args"])
                ident = sway.wait_for_input(BRIDGE_NAME)
                record["found"] = path is not None and ident is not None
                if not record["found"]:
                    result["steps"].append(record)
                    result["error"] = f"the bridge did not come back with {step['args']}"
                    break
                if "then" in step:       # sway forgets a removed device's state: apply it again
                    record["reply"] = sway.msg(step["then"].replace("$ID", ident or ""))
                    time.sleep(0.3)
            elif kind == "shot":
                watch = MoveWatch(path)
                marker.signal(step["name"])
                record["moved"] = watch.wait()
                shot, tries = _stable_shot(sway)
                with open(os.path.join(job, step["name"] + ".ppm"), "wb") as f:
                    f.write(shot)
                record["tries"] = tries
            elif kind == "wev":
                since = os.path.getsize(WEV_LOG)
                marker.signal(step["name"])
                record["wev"] = _wev_wait(step["lines"], since)
            elif kind == "classify":
                record.update(classify(path))
            elif kind == "layout":
                record["outputs"] = [{k: o[k] for k in ("name", "rect")} for o in sway.json("get_outputs")]
            result["steps"].append(record)
    finally:
        result["sway_status"] = sway.close()
        result["bridge_status"] = stop(bridge)
        with open(SWAY_LOG, errors="replace") as f:
            result["sway_log"] = "\n".join(line for line in f.read().splitlines()
                                           if "[ERROR]" in line or "libinput" in line.lower())[-3000:]
        with open(BRIDGE_LOG, errors="replace") as f:
            result["bridge_log"] = f.read()[-2000:]
    return result


WESTON_LOG = "/tmp/weston.log"
WESTON_WEV_LOG = "/tmp/wev-weston.log"


def _current_mode() -> str | None:
    """The output mode weston chose, from its log ("WxH@R, preferred, current, ...")."""
    with open(WESTON_LOG, errors="replace") as f:
        for line in f:
            if "current" in line and "x" in line and "@" in line:
                return line.split("@", 1)[0].split()[-1]
    return None


def cmd_weston(args: argparse.Namespace) -> dict:
    """weston (another family: libweston) on a KMS device, pixman renderer, libinput input,
    kiosk-shell (its one client is fullscreen), with wev as the client; as root, since
    Debian's weston 10 has only its logind and direct launchers
    (docs/lab.md 'weston, and the compositors that could not run here')."""
    subprocess.run(["/sbin/modprobe", "bochs"], check=False)
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
    result: dict = {"dri": sorted(os.listdir("/dev/dri")) if os.path.isdir("/dev/dri") else []}
    bridge, path = start_bridge(["--wakeup", "serio"])
    os.makedirs("/run/user/0", mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR="/run/user/0")
    for stale in glob.glob("/run/user/0/wayland-*"):
        os.unlink(stale)
    weston = subprocess.Popen(["weston", "--backend=drm-backend.so", "--use-pixman", "--shell=kiosk-shell.so",
                               "--tty=2", f"--log={WESTON_LOG}"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    wev = None
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists("/run/user/0/wayland-1") and time.monotonic() < deadline \
                and weston.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)
        result["mode"] = _current_mode()
        wev = subprocess.Popen(["stdbuf", "-oL", "wev"], env=dict(env, WAYLAND_DISPLAY="wayland-1"),
                               stdout=open(WESTON_WEV_LOG, "w"), stderr=subprocess.STDOUT)
        # weston adds the bridge's device once libinput sees it: wait for its log line.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(WESTON_LOG, errors="replace") as f:
                if f"{BRIDGE_NAME}: device is a pointer" in f.read():
                    break
            time.sleep(0.2)
        time.sleep(1.0)
        result["steps"] = []
        for name in args.markers.split(","):
            since = os.path.getsize(WESTON_WEV_LOG)
            watch = MoveWatch(path) if name.startswith("move") else None
            marker.signal(name)
            if watch is not None:
                watch.wait()
                time.sleep(0.5)
                text = _tail_from(WESTON_WEV_LOG, since)
            else:
                text = _wev_wait(args.lines, since, log=WESTON_WEV_LOG)
            result["steps"].append({"name": name, "wev": text})
    finally:
        result["wev_status"] = stop(wev)
        result["weston_status"] = stop(weston)
        result["bridge_status"] = stop(bridge)
        with open(WESTON_LOG, errors="replace") as f:
            result["weston_log"] = "\n".join(line for line in f.read().splitlines()
                                             if "vmmouse" in line or "rror" in line)[-3000:]
    return result


def _tail_from(path: str, since: int) -> str:
    with open(path, errors="replace") as f:
        return f.read()[since:]


def classify(path: str | None) -> dict:
    if path is None:
        return {"udev": {}, "libinput": ""}
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
    out = subprocess.run(["udevadm", "info", "--query=property", f"--name={path}"], capture_output=True,
                         text=True, check=False).stdout
    udev = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    listing = subprocess.run(["libinput", "list-devices"], capture_output=True, text=True, check=False).stdout
    block = ""
    for part in listing.split("\n\n"):
        if f"Kernel:           {path}" in part or path in part:
            block = part
    return {"udev": udev, "libinput": block, "libinput_all": listing[-4000:]}


# --- the back channel: one byte per event to the host -------------------------------------------

def open_back_channel() -> int:
    fd = os.open(BACK_CHANNEL, os.O_WRONLY | os.O_NOCTTY)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIOFLUSH)
    return fd


def _find_named(name: str, timeout: float = 30.0) -> str | None:
    import evdev

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in evdev.list_devices():
            try:
                dev = evdev.InputDevice(path)
            except OSError:
                continue
            found = dev.name == name and any(code == 0 for code, _ in
                                             dev.capabilities().get(3, []))   # ABS_X: the absolute one
            dev.close()
            if found:
                return path
        time.sleep(0.1)
    return None


def _echo_frames(path: str, count: int, fd: int, timeout: float, over: str) -> list[float]:
    """Write b"E" on the back channel for each of ``count`` event frames (SYN_REPORT) of the
    device, or until the file ``over`` exists (the host has stopped); return their kernel
    timestamps."""
    import evdev
    from evdev import ecodes

    dev = evdev.InputDevice(path)
    stamps: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while len(stamps) < count and time.monotonic() < deadline and not os.path.exists(over):
            if not select.select([dev], [], [], 0.5)[0]:
                continue
            for ev in dev.read():
                if ev.type == ecodes.EV_SYN and ev.code == ecodes.SYN_REPORT:
                    os.write(fd, b"E")
                    stamps.append(ev.timestamp())
    finally:
        dev.close()
    return stamps


def _give_aux_to(driver: str) -> str | None:
    from vmmouse.wakeup import find_aux_port

    port = find_aux_port()
    if port is None:
        return None
    if port.driver != driver:
        with open(os.path.join(port.path, "drvctl"), "w") as f:
            f.write(driver)
        time.sleep(1.0)
    port = find_aux_port()
    return port.driver if port else None


def cmd_latency(args: argparse.Namespace) -> dict:
    result: dict = {"phases": {}}
    fd = open_back_channel()
    for phase in args.phases.split(","):
        rec: dict = {}
        bridge = None
        if phase == "kernel":
            # An earlier bridge left the AUX port on serio_raw: give it back to psmouse
            # (kmod's modprobe loads a blacklisted module when it is named).
            subprocess.run(["/sbin/modprobe", "psmouse"], check=False)
            rec["aux"] = _give_aux_to("psmouse")
            path = _find_named(KERNEL_VMMOUSE_NAME)
        else:
            if os.path.exists("/sys/module/psmouse"):
                subprocess.run(["busybox", "rmmod", "psmouse"], check=False)
                time.sleep(0.5)
            bridge, path = start_bridge(["--wakeup", phase])
        rec["device"] = path
        marker.signal(f"lat-{phase}" if path else f"lat-{phase}-missing", wait=False)
        if path is not None:
            over = os.path.join(os.environ["SVGA_LAB_JOB"], f"release.lat-{phase}-over")
            stamps = _echo_frames(path, args.count, fd, args.timeout, over)
            rec["frames"] = len(stamps)
            if bridge is not None:
                rec["cpu_ticks"] = cpu_ticks(bridge.pid)
        rec["bridge_status"] = stop(bridge)
        marker.signal(f"lat-{phase}-done")
        result["phases"][phase] = rec
    result["clk_tck"] = os.sysconf("SC_CLK_TCK")
    with open(BRIDGE_LOG, errors="replace") as f:
        result["bridge_log"] = f.read()[-2000:]
    return result


def cmd_burst(args: argparse.Namespace) -> dict:
    import evdev
    from evdev import ecodes

    final = tuple(int(v) for v in args.final.split(","))
    fd = open_back_channel()
    bridge, path = start_bridge(["--wakeup", args.wakeup])
    result: dict = {"device": path}
    if path is None:
        result["bridge_status"] = stop(bridge)
        return result
    dev = evdev.InputDevice(path)
    x = y = None
    buttons: list[list] = []      # [code, value, x, y] at each button change
    frames = moves = 0
    ticks0 = cpu_ticks(bridge.pid)
    marker.signal("burst", wait=False)
    deadline = time.monotonic() + args.timeout
    done = False
    give_up = os.path.join(os.environ["SVGA_LAB_JOB"], "release.burst-over")   # the host's "stop"
    while not done and time.monotonic() < deadline and not os.path.exists(give_up):
        if not select.select([dev], [], [], 0.5)[0]:
            continue
        for ev in dev.read():
            if ev.type == ecodes.EV_ABS:
                if ev.code == ecodes.ABS_X:
                    x = ev.value
                elif ev.code == ecodes.ABS_Y:
                    y = ev.value
                moves += 1
            elif ev.type == ecodes.EV_KEY:
                buttons.append([ev.code, ev.value, x, y])
                os.write(fd, b"B")          # the host paces its chunks by these
            elif ev.type == ecodes.EV_SYN and ev.code == ecodes.SYN_REPORT:
                frames += 1
                if (x, y) == final:
                    os.write(fd, b"F")
                    done = True
    result.update({"reached": done, "buttons": buttons, "frames": frames, "abs_events": moves,
                   "cpu_ticks": cpu_ticks(bridge.pid) - ticks0, "clk_tck": os.sysconf("SC_CLK_TCK")})
    # What else ran in the guest meanwhile (CPU time so far), for a slow drain's post-mortem.
    result["ps"] = subprocess.run(["ps", "-eo", "pid,user,time,args", "--sort=-time"], capture_output=True,
                                  text=True, check=False).stdout.splitlines()[:12]
    dev.close()
    result["bridge_status"] = stop(bridge)
    with open(BRIDGE_LOG, errors="replace") as f:
        result["bridge_log"] = f.read()[-2000:]
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    sub.add_parser("setup")
    s = sub.add_parser("sway")
    s.add_argument("--outputs", type=int, default=1)
    s.add_argument("--bridge-args", default="--wakeup serio")
    s.add_argument("--plan", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--phases", default="kernel,poll,serio")
    lat.add_argument("--count", type=int, default=1000)
    lat.add_argument("--timeout", type=float, default=120.0)
    b = sub.add_parser("burst")
    b.add_argument("--final", required=True, help="X,Y on the uinput axes that ends the burst")
    b.add_argument("--wakeup", default="serio")
    b.add_argument("--timeout", type=float, default=120.0)
    w = sub.add_parser("weston")
    w.add_argument("--markers", required=True, help="comma-separated: move<i> (one move) or clicks")
    w.add_argument("--lines", type=int, default=10, help="wev button/axis lines the clicks give")
    args = p.parse_args()
    modes = {"setup": cmd_setup, "sway": cmd_sway, "latency": cmd_latency, "burst": cmd_burst,
             "weston": cmd_weston}
    result = modes[args.mode](args)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
