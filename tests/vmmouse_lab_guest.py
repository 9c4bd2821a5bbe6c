"""The guest side of tests/test_vmmouse_lab.py: runs inside a QEMU lab guest as root.

Not a test module: the lab test submits ``python3 tests/vmmouse_lab_guest.py MODE ...`` as a
guest job, waits for its markers (svga.lab.marker), injects pointer events over QMP, and
reads the JSON this script prints last. Modes:

- ``read``: open a source and wake-up as ``vmmouse events`` does, signal ``ready``, collect
  ``--count`` events, then stay idle ``--idle`` seconds counting wake-ups and CPU time;
- ``uinput``: start the real daemon (``python3 -m vmmouse run``, which drops to nobody),
  open its uinput device with python-evdev, signal ``ready``, record the evdev frames,
  optionally what ``libinput debug-events`` makes of them, then SIGTERM the daemon;
- ``xorg``: start udevd with the bridge's udev rule, the daemon and an Xorg server (dummy
  video, libinput input), then for each ``--expect X,Y`` signal ``move<i>`` and wait until
  ``xdotool getmouselocation`` reports that position.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from svga.lab import marker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cmd_read(args: argparse.Namespace) -> dict:
    from vmmouse.sources import open_source, open_wakeup
    from vmmouse.wakeup import SignalPipe

    if args.load_usbhid:
        for module in ("usbhid", "hid_generic"):     # udev would load hid_generic by modalias
            subprocess.run(["busybox", "modprobe", module], check=False)
        time.sleep(0.5)
    aux_driver_before = None
    if args.load_psmouse:
        subprocess.run(["busybox", "modprobe", "psmouse"], check=False)
        time.sleep(1.0)
        aux_driver_before = _aux_driver()
    signals = SignalPipe()
    name, source = open_source(args.source)
    wname, wakeup = open_wakeup(args.wakeup, name, signals)
    wakes: dict[str, int] = {}
    events: list[str] = []
    marker.signal("ready", wait=False)
    deadline = time.monotonic() + args.timeout
    while len(events) < args.count and time.monotonic() < deadline:
        why = wakeup.wait()
        wakes[why] = wakes.get(why, 0) + 1
        batch = source.read_events()
        wakeup.activity(bool(batch))
        events += [e.describe() for e in batch]
    # Idle: nothing is injected now; count what wakes the loop and what it costs.
    idle_wakes: dict[str, int] = {}
    idle_events = 0
    cpu0, t0 = cpu_seconds(), time.monotonic()
    while time.monotonic() - t0 < args.idle:
        why = wakeup.wait()
        idle_wakes[why] = idle_wakes.get(why, 0) + 1
        batch = source.read_events()
        wakeup.activity(bool(batch))
        idle_events += len(batch)
    idle_cpu, idle_wall = cpu_seconds() - cpu0, time.monotonic() - t0
    driver_before_close = _usb_driver()
    source.close()
    wakeup.close()
    signals.close()
    time.sleep(0.5)
    return {"source": name, "wakeup": wname, "events": events, "wakes": wakes, "idle_wakes": idle_wakes,
            "idle_events": idle_events, "idle_cpu": idle_cpu, "idle_wall": idle_wall,
            "usb_driver_while_open": driver_before_close, "usb_driver_after_close": _usb_driver(),
            "aux_driver_before": aux_driver_before, "aux_driver_after": _aux_driver(),
            "input_names": _input_names()}


def _aux_driver() -> str | None:
    from vmmouse.wakeup import find_aux_port

    port = find_aux_port()
    return port.driver if port else None


def _input_names() -> list[str]:
    names = []
    for path in sorted(glob.glob("/sys/class/input/input*/name")):
        with open(path) as f:
            names.append(f.read().strip())
    return names


def _usb_driver() -> str | None:
    for intf in glob.glob("/sys/bus/usb/devices/*:1.0"):
        try:
            with open(os.path.join(intf, "../idVendor")) as f:
                if f.read().strip() != "0627":
                    continue
        except OSError:
            continue
        link = os.path.join(intf, "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None
    return None


def _start_daemon(args: argparse.Namespace, log_path: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vmmouse", "-v", "run", "--source", args.source, "--wakeup", args.wakeup]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))


def _find_device(name: str, proc: subprocess.Popen, timeout: float = 60.0):
    import evdev

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        for path in evdev.list_devices():
            try:
                dev = evdev.InputDevice(path)
            except OSError:
                continue
            if dev.name == name:
                return dev
            dev.close()
        time.sleep(0.1)
    return None


def _uid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[2])        # effective uid
    except OSError:
        return None
    return None


def _start_udev(rules: bool) -> None:
    if rules:
        os.makedirs("/etc/udev/rules.d", exist_ok=True)
        for rule in glob.glob(os.path.join(ROOT, "xorg-bridge", "*.rules")):
            shutil.copy(rule, "/etc/udev/rules.d/")
    subprocess.run(["/lib/systemd/systemd-udevd", "--daemon"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["udevadm", "trigger"], check=False)
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)


def _udev_properties(node: str) -> dict[str, str]:
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
    out = subprocess.run(["udevadm", "info", "--query=property", f"--name={node}"], capture_output=True,
                         text=True, check=False).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def cmd_uinput(args: argparse.Namespace) -> dict:
    from evdev import ecodes

    from vmmouse.absolute import DEVICE_NAME as BACKDOOR_NAME
    from vmmouse.usbtablet import DEVICE_NAME as USB_NAME

    if args.load_usbhid:
        for module in ("usbhid", "hid_generic"):
            subprocess.run(["busybox", "modprobe", module], check=False)
        time.sleep(0.5)
    if args.udev:
        _start_udev(rules=True)
    log_path = "/tmp/vmmouse-daemon.log"
    proc = _start_daemon(args, log_path)
    dev = _find_device(USB_NAME if args.source == "usb" else BACKDOOR_NAME, proc)
    result: dict = {"found": dev is not None}
    if dev is None:
        proc.terminate()
        proc.wait(10)
        result["log"] = open(log_path).read()
        return result
    time.sleep(1.0)       # let the daemon finish its privilege drop before looking at it
    caps = dev.capabilities()
    absinfo = dict(caps.get(ecodes.EV_ABS, []))
    result.update({
        "path": dev.path, "name": dev.name, "phys": dev.phys,
        "ids": [dev.info.bustype, dev.info.vendor, dev.info.product],
        "props": list(dev.input_props()),
        "keys": sorted(caps.get(ecodes.EV_KEY, [])),
        "rels": sorted(caps.get(ecodes.EV_REL, [])),
        "abs": {str(code): [info.min, info.max] for code, info in absinfo.items()},
        "daemon_uid": _uid_of(proc.pid),
    })
    if args.udev:
        result["udev"] = _udev_properties(dev.path)
    debug = None
    if args.libinput:
        debug = subprocess.Popen(["libinput", "debug-events", "--device", dev.path], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        time.sleep(2.0)   # libinput opens the device and settles before the first event
    frames: list[list[list[int]]] = []
    frame: list[list[int]] = []
    marker.signal("ready", wait=False)
    deadline = time.monotonic() + args.timeout
    import select

    while len(frames) < args.frames and time.monotonic() < deadline:
        if not select.select([dev], [], [], 0.5)[0]:
            continue
        for ev in dev.read():
            if ev.type == ecodes.EV_SYN and ev.code == ecodes.SYN_REPORT:
                frames.append(frame)
                frame = []
                if args.hup_after and len(frames) == args.hup_after:
                    proc.send_signal(signal.SIGHUP)
                if args.term_after and len(frames) == args.term_after:
                    proc.send_signal(signal.SIGTERM)     # the release must still come out
            else:
                frame.append([ev.type, ev.code, ev.value])
    result["frames"] = frames
    result["daemon_uid_after_events"] = _uid_of(proc.pid)
    if debug is not None:
        time.sleep(1.0)
        debug.terminate()
        result["libinput"] = debug.communicate(timeout=10)[0]
    proc.send_signal(signal.SIGTERM)
    try:
        result["daemon_status"] = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        result["daemon_status"] = "killed"
    dev.close()
    time.sleep(0.5)
    result["usb_driver_after_exit"] = _usb_driver()
    result["log"] = open(log_path).read()
    return result


XORG_CONF = """\
Section "ServerFlags"
    Option "AutoAddDevices" "true"
    Option "AutoEnableDevices" "true"
EndSection
Section "Device"
    Identifier "dummy"
    Driver "dummy"
    VideoRam 16384
EndSection
Section "Monitor"
    Identifier "monitor"
    HorizSync 5.0 - 1000.0
    VertRefresh 5.0 - 200.0
EndSection
Section "Screen"
    Identifier "screen"
    Device "dummy"
    Monitor "monitor"
    DefaultDepth 24
    SubSection "Display"
        Depth 24
        Modes "1024x768"
    EndSubSection
EndSection
"""


def _xdotool_location(env: dict) -> tuple[int, int] | None:
    out = subprocess.run(["xdotool", "getmouselocation"], capture_output=True, text=True, env=env,
                         check=False).stdout
    try:
        fields = dict(part.split(":") for part in out.split())
        return int(fields["x"]), int(fields["y"])
    except (ValueError, KeyError):
        return None


def cmd_xorg(args: argparse.Namespace) -> dict:
    from vmmouse.absolute import DEVICE_NAME

    _start_udev(rules=True)
    log_path = "/tmp/vmmouse-daemon.log"
    proc = _start_daemon(args, log_path)
    dev = _find_device(DEVICE_NAME, proc)
    result: dict = {"found": dev is not None}
    if dev is None:
        result["log"] = open(log_path).read()
        return result
    result["udev"] = _udev_properties(dev.path)
    os.makedirs("/tmp/x", exist_ok=True)
    with open("/tmp/x/xorg.conf", "w") as f:
        f.write(XORG_CONF)
    xorg = subprocess.Popen(["Xorg", ":1", "-config", "/tmp/x/xorg.conf", "-logfile", "/tmp/x/Xorg.log",
                             "-nolisten", "tcp", "-noreset", "-novtswitch", "-sharevts"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=":1")
    deadline = time.monotonic() + 60
    while not os.path.exists("/tmp/.X11-unix/X1") and time.monotonic() < deadline and xorg.poll() is None:
        time.sleep(0.1)
    result["libinput_list"] = subprocess.run(["libinput", "list-devices"], capture_output=True, text=True,
                                             check=False).stdout
    seen = []
    for i, want in enumerate(args.expect):
        wx, wy = (int(v) for v in want.split(","))
        marker.signal(f"move{i}")
        got = None
        end = time.monotonic() + 20
        while time.monotonic() < end:
            got = _xdotool_location(env)
            if got is not None and abs(got[0] - wx) <= 1 and abs(got[1] - wy) <= 1:
                break
            time.sleep(0.05)
        seen.append(got)
    result["locations"] = seen
    xorg.terminate()
    try:
        xorg.wait(10)
    except subprocess.TimeoutExpired:
        xorg.kill()
    try:
        log = open("/tmp/x/Xorg.log").read()
        result["xorg_log"] = "\n".join(line for line in log.splitlines()
                                       if "vmmouse" in line.lower() or "(EE)" in line)
    except OSError:
        result["xorg_log"] = None
    proc.send_signal(signal.SIGTERM)
    result["daemon_status"] = proc.wait(15)
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("read")
    r.add_argument("--source", default="backdoor")
    r.add_argument("--wakeup", default="serio")
    r.add_argument("--count", type=int, default=1)
    r.add_argument("--idle", type=float, default=3.0)
    r.add_argument("--timeout", type=float, default=60.0)
    r.add_argument("--load-usbhid", action="store_true")
    r.add_argument("--load-psmouse", action="store_true")
    u = sub.add_parser("uinput")
    u.add_argument("--source", default="backdoor")
    u.add_argument("--wakeup", default="serio")
    u.add_argument("--frames", type=int, default=1)
    u.add_argument("--timeout", type=float, default=60.0)
    u.add_argument("--udev", action="store_true")
    u.add_argument("--libinput", action="store_true")
    u.add_argument("--load-usbhid", action="store_true")
    u.add_argument("--hup-after", type=int, default=0, help="SIGHUP the daemon after this many frames")
    u.add_argument("--term-after", type=int, default=0, help="SIGTERM the daemon after this many frames")
    x = sub.add_parser("xorg")
    x.add_argument("--source", default="backdoor")
    x.add_argument("--wakeup", default="serio")
    x.add_argument("--expect", action="append", default=[])
    args = p.parse_args()
    result = {"read": cmd_read, "uinput": cmd_uinput, "xorg": cmd_xorg}[args.mode](args)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
