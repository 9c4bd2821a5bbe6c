"""The guest side of tests/test_vmmouse_lab_faults.py: runs inside a QEMU lab guest as root.

Not a test module. The host submits ``python3 tests/vmmouse_lab_faults_guest.py MODE``, waits
for its markers (svga.lab.marker), acts from outside (QMP input, device_del/device_add) and
reads the JSON printed last. The daemon is started as xorg-bridge/vmmouse.service starts it:
``vmmouse prepare`` as root, then ``vmmouse run`` as the user ``vmmouse`` with only the ambient
CAP_SYS_RAWIO (setpriv from util-linux plays systemd's User= and AmbientCapabilities=), with
udevd and the bridge's udev rules running. Modes:

- ``usb-hotplug`` (a guest with vmport=off): press on the tablet, marker ``pressed`` (the host
  unplugs it), wait for the release, marker ``unplugged`` (the host plugs it back), wait until
  the daemon took the new tablet, marker ``back`` (the host moves), read the move;
- ``taken``: press on the vmmouse, another process disables it, read the release and the
  tablet's device, marker ``on-tablet`` (the host moves), another process enables the vmmouse,
  wait for the absolute device, marker ``back`` (the host moves);
- ``faults``: what the dropped daemon keeps (/proc), ``rmmod uinput`` under it, serio_raw
  unbound under it (markers ``m0``, ``m1``, ``m2``: the host moves after each);
- ``signals``: for SIGTERM, SIGINT, SIGKILL: marker ``go<i>`` (the host starts a click burst
  and keeps it up until ``done<i>``), kill the daemon after a random number of frames, record
  the key state the reader saw; after SIGKILL start it again and look at the new device.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from svga.lab import marker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABS_NAME = "VMware vmmouse absolute pointer"
USB_NAME = "vmmouse USB tablet bridge"
LOG = "/tmp/vmmouse-faults-daemon.log"
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"faults-guest: {time.monotonic() - T0:.1f} s: {text}", file=sys.stderr, flush=True)


def sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def setup() -> None:
    """The unit's world: the vmmouse user and group, udevd with the bridge's rules."""
    say("setup")
    sh("groupadd", "--system", "vmmouse")
    sh("useradd", "--system", "-g", "vmmouse", "-M", "-d", "/", "-s", "/usr/sbin/nologin", "vmmouse")
    os.makedirs("/etc/udev/rules.d", exist_ok=True)
    for rule in glob.glob(os.path.join(ROOT, "xorg-bridge", "*.rules")):
        shutil.copy(rule, "/etc/udev/rules.d/")
    if not glob.glob("/run/udev/control"):
        # --daemon forks a child that keeps any pipe open: no captured output here.
        subprocess.run(["/lib/systemd/systemd-udevd", "--daemon"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    say("udev started")
    # Only the USB nodes need the rules now (a tablet plugged in later gets them from udevd as
    # it comes); uinput and serio_raw are given to the group by `vmmouse prepare`.
    sh("udevadm", "trigger", "--subsystem-match=usb", "--action=add")
    sh("udevadm", "settle", "--timeout=30")
    say("udev settled")


def start_daemon(*args: str) -> subprocess.Popen:
    from vmmouse.sources import prepare

    # What `vmmouse prepare` (the unit's ExecStartPre=+) does, in this process: one Python
    # start less in a slow guest.
    say(f"prepare: {'; '.join(prepare(group='vmmouse'))}")
    cmd = ["setpriv", "--reuid=vmmouse", "--regid=vmmouse", "--init-groups", "--inh-caps=+sys_rawio",
           "--ambient-caps=+sys_rawio", sys.executable, "-m", "vmmouse", "-v", "run", "--stats", *args]
    say("starting the daemon")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(LOG, "a"))
    STARTED.append(proc)
    return proc


STARTED: list[subprocess.Popen] = []


def kill_leftovers() -> None:
    """Whatever happened, no daemon of this job outlives it (the next job reads the same queue)."""
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait(15)


def wait_dropped(proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Until the daemon logged its privilege drop (the device exists a little before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if "capabilities dropped" in log_text() or "now running as" in log_text():
            return True
        time.sleep(0.05)
    return False


def log_text() -> str:
    try:
        with open(LOG) as f:
            return f.read()
    except OSError:
        return ""


def find(name: str, proc: subprocess.Popen | None, timeout: float = 90.0, exclude: str | None = None):
    import evdev

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return None
        for path in evdev.list_devices():
            if path == exclude:
                continue
            try:
                dev = evdev.InputDevice(path)
            except (OSError, SystemError):       # a device going away while it is opened
                continue
            if dev.name == name:
                return dev
            dev.close()
        time.sleep(0.05)
    return None


class Reader:
    """Frames of one evdev device, and the key state they leave."""

    def __init__(self, dev) -> None:
        self.dev = dev
        self.frames: list[list[list[int]]] = []
        self.pending: list[list[int]] = []
        self.keys: dict[int, int] = {}
        self.gone = False

    def pump(self, timeout: float) -> None:
        from evdev import ecodes

        if self.gone:
            return
        try:
            if not select.select([self.dev], [], [], timeout)[0]:
                return
            events = list(self.dev.read())
        except OSError:                    # ENODEV: the device went away
            self.gone = True
            return
        for ev in events:
            if ev.type == ecodes.EV_SYN and ev.code == ecodes.SYN_REPORT:
                self.frames.append(self.pending)
                self.pending = []
            else:
                self.pending.append([ev.type, ev.code, ev.value])
                if ev.type == ecodes.EV_KEY:
                    self.keys[ev.code] = ev.value

    def until(self, test, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if test(self):
                return True
            if self.gone:
                return test(self)
            self.pump(0.1)
        return test(self)

    def has(self, event: list[int]) -> bool:
        return any(event in f for f in self.frames)


def daemon_status(pid: int) -> dict:
    """What the kernel says the daemon holds: ids, capability sets, threads, open files."""
    out: dict = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines())
    except OSError:
        return out
    for key in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapAmb", "NoNewPrivs", "Threads"):
        out[key] = fields.get(key, "").split()
    fds = {}
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            fds[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    out["fds"] = fds
    return out


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int | str:
    proc.send_signal(sig)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "killed"


def abs_frame(x: int, y: int) -> list[list[int]]:
    from evdev import ecodes as e

    return [[e.EV_ABS, e.ABS_X, x], [e.EV_ABS, e.ABS_Y, y]]


_OTHER = []


def backdoor_helper(what: str) -> dict:
    """Another program using the vmmouse (this script, as root, with its own iopl): 'disable'
    it, or 'enable' it and leave it enabled."""
    from vmmouse.absolute import VMMouse
    from vmmouse.backdoor import Backdoor

    try:
        if not _OTHER:
            _OTHER.append(VMMouse(Backdoor.open()))
        mouse = _OTHER[0]
        if what == "disable":
            mouse.disable(force=True)
        else:
            mouse.enable()
            mouse.enabled = False          # leave it enabled: this program is done with it
    except Exception as e:  # noqa: BLE001 - reported to the host
        return {"status": 1, "err": str(e)}
    return {"status": 0, "err": ""}


# --- modes ------------------------------------------------------------------------------------

def mode_usb_hotplug() -> dict:
    from evdev import ecodes as e

    setup()
    proc = start_daemon("--source", "auto")
    dev = find(USB_NAME, proc)
    r: dict = {"found": dev is not None}
    say(f"device found: {dev is not None}; log: {log_text()[-1500:]}")
    if dev is None:
        r["log"] = log_text()
        return r
    r["dropped"] = wait_dropped(proc)
    r["status"] = daemon_status(proc.pid)
    rd = Reader(dev)
    marker.signal("ready", wait=False)                       # the host moves and presses left
    r["pressed"] = rd.until(lambda s: s.keys.get(e.BTN_LEFT) == 1)
    marker.signal("pressed", wait=False)                     # the host unplugs the tablet
    t0 = time.monotonic()
    r["released"] = rd.until(lambda s: s.keys.get(e.BTN_LEFT) == 0)
    r["release_s"] = time.monotonic() - t0
    r["alive_after_unplug"] = proc.poll() is None
    marker.signal("unplugged", wait=False)                   # the host plugs a tablet back
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and log_text().count("source: usb") < 2 and proc.poll() is None:
        time.sleep(0.1)
    r["retaken"] = log_text().count("source: usb") >= 2
    marker.signal("back", wait=False)                        # the host moves to (1000, 2000)
    r["moved"] = rd.until(lambda s: any(f[:2] == abs_frame(1000, 2000) for f in s.frames))
    r["same_device"] = not rd.gone
    r["frames"] = rd.frames
    r["daemon_status"] = stop(proc)
    r["log"] = log_text()
    return r


def mode_taken() -> dict:
    from evdev import ecodes as e

    setup()
    proc = start_daemon("--source", "auto", "--wakeup", "serio")
    dev = find(ABS_NAME, proc)
    r: dict = {"found": dev is not None}
    if dev is None:
        r["log"] = log_text()
        return r
    rd = Reader(dev)
    marker.signal("ready", wait=False)                       # the host moves and presses left
    r["pressed"] = rd.until(lambda s: s.keys.get(e.BTN_LEFT) == 1)
    r["disable"] = backdoor_helper("disable")
    r["released"] = rd.until(lambda s: s.keys.get(e.BTN_LEFT) == 0 or s.gone)
    r["release_frame"] = [e.EV_KEY, e.BTN_LEFT, 0] in (rd.frames[-1] if rd.frames else [])
    say(f"disable: {r['disable']}, released: {r['released']}")
    tablet = find(USB_NAME, proc)
    r["on_tablet"] = tablet is not None
    say(f"on the tablet: {tablet is not None}")
    if tablet is not None:
        td = Reader(tablet)
        marker.signal("on-tablet", wait=False)               # the host moves to (100, 200)
        r["tablet_moved"] = td.until(lambda s: any(f[:2] == abs_frame(100, 200) for f in s.frames))
        r["enable"] = backdoor_helper("enable")
        back = find(ABS_NAME, proc, exclude=dev.path if not rd.gone else None)
        r["back"] = back is not None
        if back is not None:
            bd = Reader(back)
            marker.signal("back", wait=False)                # the host moves to (300, 400)
            r["back_moved"] = bd.until(lambda s: any(f[:2] == abs_frame(600, 800) for f in s.frames))
            r["back_frames"] = bd.frames
    r["daemon_status"] = stop(proc)
    r["log"] = log_text()
    return r


def mode_faults() -> dict:
    setup()
    proc = start_daemon("--source", "backdoor", "--wakeup", "serio")
    dev = find(ABS_NAME, proc)
    r: dict = {"found": dev is not None}
    if dev is None:
        r["log"] = log_text()
        return r
    r["dropped"] = wait_dropped(proc)
    r["status"] = daemon_status(proc.pid)
    rd = Reader(dev)
    marker.signal("m0", wait=False)                          # the host moves to (1000, 1000)
    r["m0"] = rd.until(lambda s: any(f[:2] == abs_frame(2000, 2000) for f in s.frames))
    r["uid_after_events"] = daemon_status(proc.pid).get("Uid")
    rm = sh("busybox", "rmmod", "uinput")
    r["rmmod"] = {"status": rm.returncode, "err": (rm.stderr + rm.stdout).strip()}
    r["uinput_module_after"] = os.path.isdir("/sys/module/uinput")
    marker.signal("m1", wait=False)                          # the host moves to (2000, 2000)
    r["m1"] = rd.until(lambda s: any(f[:2] == abs_frame(4000, 4000) for f in s.frames))
    port = next((p for p in glob.glob("/sys/bus/serio/devices/serio*")
                 if open(os.path.join(p, "description")).read().startswith("i8042 AUX")), None)
    if port:
        with open("/sys/bus/serio/drivers/serio_raw/unbind", "w") as f:
            f.write(os.path.basename(port))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "polling instead" not in log_text():
        time.sleep(0.1)
    r["polling"] = "polling instead" in log_text()
    marker.signal("m2", wait=False)                          # the host moves to (3000, 3000)
    r["m2"] = rd.until(lambda s: any(f[:2] == abs_frame(6000, 6000) for f in s.frames))
    r["alive"] = proc.poll() is None
    r["daemon_status"] = stop(proc)
    if port:                                                 # the port back to serio_raw
        with open(os.path.join(port, "drvctl"), "w") as f:
            f.write("serio_raw")
    r["log"] = log_text()
    return r


def mode_signals(seed: int) -> dict:
    from evdev import ecodes as e

    setup()
    rng = random.Random(seed)
    runs = []
    for i, sig in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGKILL)):
        proc = start_daemon("--source", "backdoor", "--wakeup", "serio")
        dev = find(ABS_NAME, proc)
        run: dict = {"signal": sig.name, "found": dev is not None}
        runs.append(run)
        if dev is None:
            run["log"] = log_text()
            break
        run["dropped"] = wait_dropped(proc)               # its handlers are in by then
        rd = Reader(dev)
        after = rng.randint(4, 60)
        marker.signal(f"go{i}", wait=False)                  # the host starts its click burst
        rd.until(lambda s, n=after: len(s.frames) >= n, timeout=30)
        run["frames_before"] = len(rd.frames)
        run["held_at_signal"] = rd.keys.get(e.BTN_LEFT, 0)
        proc.send_signal(sig)
        t0 = time.monotonic()
        rd.until(lambda s: s.gone, timeout=15)
        run["gone"] = rd.gone
        run["gone_s"] = time.monotonic() - t0
        run["left_after"] = rd.keys.get(e.BTN_LEFT, 0)
        run["presses"] = sum(1 for f in rd.frames if [e.EV_KEY, e.BTN_LEFT, 1] in f)
        run["releases"] = sum(1 for f in rd.frames if [e.EV_KEY, e.BTN_LEFT, 0] in f)
        try:
            run["status"] = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
            run["status"] = "hung"
            run["log"] = log_text()[-3000:]
        if not rd.gone:                                      # the next start must not find it
            rd.until(lambda s: s.gone, timeout=15)
        if sig == signal.SIGKILL:
            # The next start: a new device with nothing held, the stale queue dropped.
            again = start_daemon("--source", "backdoor", "--wakeup", "serio")
            dev2 = find(ABS_NAME, again)
            run["restarted"] = dev2 is not None
            if dev2 is not None:
                run["held_after_restart"] = list(dev2.active_keys())
            run["restart_status"] = stop(again)
        marker.signal(f"done{i}", wait=False)                # the host stops the burst
        time.sleep(0.3)
    return {"runs": runs, "log": log_text()[-6000:]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("usb-hotplug", "taken", "faults", "signals"))
    p.add_argument("--seed", type=int, default=17)
    args = p.parse_args()
    if os.path.exists(LOG):
        os.remove(LOG)
    try:
        result = {"usb-hotplug": mode_usb_hotplug, "taken": mode_taken, "faults": mode_faults,
                  "signals": lambda: mode_signals(args.seed)}[args.mode]()
    finally:
        kill_leftovers()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
