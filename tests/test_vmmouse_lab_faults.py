"""Faults and hot-plug of the input bridge in a real QEMU guest (issue 16 item 5, issue 17
items 4 and 5), with the daemon started as xorg-bridge/vmmouse.service starts it: never root,
the user ``vmmouse`` with only the ambient CAP_SYS_RAWIO, udevd with the bridge's rules.

What is done to it, from outside (QMP) or from another guest process: the USB tablet unplugged
with a button held and plugged back (QMP device_del/device_add, guest booted with vmport=off
so that the tablet is the source); the vmmouse disabled and re-enabled by another program;
``rmmod uinput`` under it (refused while the device is open: the kernel's module reference,
so the uinput device cannot be taken away from a running bridge; what can be done is tried);
the AUX port unbound from serio_raw (the bridge polls instead); SIGTERM, SIGINT and SIGKILL at
a random moment during a burst of clicks. And what the dropped daemon keeps, read from /proc.

Expected values come from QEMU's behaviour as docs/vmmouse.md records it (the vmmouse doubles
QMP's 0..32767, the tablet passes it unchanged) and from the kernel's account of the process.
Two guest boots in all: one with vmport=off, one shared by three jobs.

Needs root, the lab's packages (svga lab setup), udev and util-linux's setpriv.
"""

from __future__ import annotations

import json
import time

import pytest

from svga.lab.packages import not_ready

GUEST_SCRIPT = "tests/vmmouse_lab_faults_guest.py"
_WHY = not_ready(("udev",))
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_WHY), reason=_WHY or "ready")]

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
NOBODY_CAPS = "0000000000000000"


def move(x: int, y: int) -> list[dict]:
    return [{"type": "abs", "data": {"axis": "x", "value": x}},
            {"type": "abs", "data": {"axis": "y", "value": y}}]


def button(down: bool) -> list[dict]:
    return [{"type": "btn", "data": {"down": down, "button": "left"}}]


def result(job, timeout: float = 120.0) -> dict:
    status, output = job.wait(timeout=timeout)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert status == 0 and lines, f"guest script failed (status {status}):\n{output[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def ready_or_fail(job, name: str = "ready", timeout: float = 180.0) -> None:
    """Wait for the job's marker; if it ended instead, fail with what it printed."""
    if not job.wait_marker_or_end(name, timeout=timeout):
        pytest.fail(f"the guest script ended (status {job.status}) before '{name}':\n{job.stdout[-3000:]}")


def send_until_done(guest, job, events: list[dict], seconds: float = 30.0) -> None:
    """Send the same events every 0.3 s until the job ends: a device QEMU has just routed input
    to takes the events only once its guest reader polled it (docs/vmmouse.md 'Event
    routing'), which the host cannot see."""
    deadline = time.monotonic() + seconds
    while not job.done() and time.monotonic() < deadline:
        guest.send_input(events)
        time.sleep(0.3)


def tablet_path(guest) -> str:
    for entry in guest.qmp.execute("qom-list", {"path": "/machine/peripheral-anon"}):
        if entry["type"] == "child<usb-tablet>":
            return f"/machine/peripheral-anon/{entry['name']}"
    for entry in guest.qmp.execute("qom-list", {"path": "/machine/peripheral"}):
        if entry["type"] == "child<usb-tablet>":
            return entry["name"]
    raise AssertionError("no usb-tablet in QOM")


def check_dropped(status: dict) -> None:
    """The unit's daemon after its drop: uid vmmouse, no capability, no_new_privs, one thread."""
    for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert status[caps] == [NOBODY_CAPS], (caps, status)
    assert status["NoNewPrivs"] == ["1"]
    assert len(set(status["Uid"])) == 1 and status["Uid"][0] not in ("0",)


@pytest.fixture(scope="module")
def guest():
    from svga.lab.vm import Guest

    with Guest() as g:
        g.start()
        yield g


def test_usb_tablet_unplugged_and_plugged_back():
    from svga.lab.vm import Guest

    with Guest(extra_args=["-machine", "vmport=off"]) as g:
        job = g.submit(["python3", GUEST_SCRIPT, "usb-hotplug"], cwd=str(ROOT))
        g.start()
        ready_or_fail(job)
        g.send_input(move(100, 200))
        g.send_input(button(True))
        ready_or_fail(job, "pressed")
        g.qmp.execute("device_del", {"id": tablet_path(g)})
        ready_or_fail(job, "unplugged")
        g.qmp.execute("device_add", {"driver": "usb-tablet", "id": "tablet2"})
        ready_or_fail(job, "back")
        send_until_done(g, job, move(1000, 2000))
        r = result(job)
    print("usb hot-plug: release", f"{r.get('release_s', 0):.2f} s after device_del;",
          [line for line in r.get("log", "").splitlines() if "stats:" in line or "lost" in line])
    assert r["found"] and r["dropped"], r.get("log")
    check_dropped(r["status"])
    assert r["pressed"] and r["released"], r["log"]          # no stuck button after the unplug
    assert r["alive_after_unplug"] and r["retaken"], r["log"]
    assert r["moved"] and r["same_device"], (r["frames"], r["log"])
    assert r["daemon_status"] == 0


def test_vmmouse_disabled_and_re_enabled_by_someone_else(guest):
    job = guest.submit(["python3", GUEST_SCRIPT, "taken"], cwd=str(ROOT))
    ready_or_fail(job)
    guest.send_input(move(16384, 8192))
    guest.send_input(button(True))
    ready_or_fail(job, "on-tablet")
    guest.send_input(button(False))
    deadline = time.monotonic() + 30
    back = job.dir / "marker.back"
    while not back.exists() and not job.done() and time.monotonic() < deadline:
        guest.send_input(move(100, 200))
        time.sleep(0.3)
    ready_or_fail(job, "back")
    send_until_done(guest, job, move(300, 400))
    r = result(job)
    assert r["found"], r.get("log")
    assert r["pressed"] and r["disable"]["status"] == 0
    assert r["released"] and r["release_frame"], r["log"]
    assert r["on_tablet"] and r["tablet_moved"], r["log"]    # QEMU gave the events to the tablet
    assert r["enable"]["status"] == 0 and r["back"] and r["back_moved"], r["log"]
    assert "re-enabling" not in r["log"]                     # it never fought the other program
    assert r["daemon_status"] == 0


def test_faults_rmmod_uinput_serio_unbind_and_what_the_daemon_keeps(guest):
    job = guest.submit(["python3", GUEST_SCRIPT, "faults"], cwd=str(ROOT))
    for i, (x, y) in enumerate([(1000, 1000), (2000, 2000), (3000, 3000)]):
        ready_or_fail(job, f"m{i}")
        guest.send_input(move(x, y))
    r = result(job)
    assert r["found"], r.get("log")
    assert r["dropped"], r["log"]
    status = r["status"]
    print("dropped daemon keeps:", status)
    check_dropped(status)
    assert status["Threads"] == ["1"]
    targets = sorted(set(status["fds"].values()))
    # Exactly these kinds of descriptors: two uinput devices, the serio_raw node, std streams
    # (/dev/null and the log), the signal pipe; nothing else.
    assert sum(1 for t in status["fds"].values() if t == "/dev/uinput") == 2, targets
    assert any(t.startswith("/dev/serio_raw") for t in targets), targets
    others = [t for t in targets if not (t in ("/dev/uinput", "/dev/null") or t.startswith(("/dev/serio_raw",
                                                                                          "pipe:", "/tmp/")))]
    assert others == [], targets
    assert r["m0"], r["log"]                                 # the backdoor answers after the drop
    assert r["rmmod"]["status"] != 0 and r["uinput_module_after"], r["rmmod"]
    assert r["m1"], r["log"]
    assert r["polling"] and r["m2"] and r["alive"], r["log"]
    assert r["daemon_status"] == 0


def test_signals_during_a_click_burst(guest):
    job = guest.submit(["python3", GUEST_SCRIPT, "signals", "--seed", str(int(time.time()) % 1000)],
                       cwd=str(ROOT))
    x = 0
    for i in range(3):
        ready_or_fail(job, f"go{i}")
        done = job.dir / f"marker.done{i}"
        deadline = time.monotonic() + 40
        while not done.exists() and time.monotonic() < deadline and not job.done():
            # One command per press and per release: QEMU hands the vmmouse one packet per
            # command (at its sync), so a press and a release in one command would cancel out.
            x = (x + 97) % 32768
            guest.send_input(move(x, 16384 - x // 2) + button(True))
            guest.send_input(button(False))
    r = result(job, timeout=180)
    print("signals:", [{k: v for k, v in run.items() if k != "log"} for run in r["runs"]])
    print("daemon stats:", [line for line in r["log"].splitlines() if "stats:" in line])
    assert len(r["runs"]) == 3 and all(run["found"] for run in r["runs"]), r["log"]
    for run in r["runs"]:
        assert run["gone"], run
        assert run["left_after"] == 0, run                   # nothing stays pressed for a reader
        assert run["presses"] >= 1 and run["presses"] - run["releases"] in (0, 1), run
    term, intr, kill = r["runs"]
    assert term["status"] == 0 and intr["status"] == 0       # a clean exit on SIGTERM and SIGINT
    assert kill["status"] == -9
    assert kill["restarted"] and kill["held_after_restart"] == [], kill
    assert kill["restart_status"] == 0
