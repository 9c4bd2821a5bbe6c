"""The vmmouse bridge in a real QEMU guest (svga.lab.vm): the real backdoor `in`, QEMU's
vmmouse and usb-tablet, serio_raw interrupts, uinput, udev, libinput and Xorg.

Each test boots a fresh guest (about 5 s under TCG), runs tests/vmmouse_lab_guest.py in it,
waits for its "ready" marker, injects pointer events with QMP input-send-event and checks
what came out. Expected values are written down from QEMU's behaviour as the reference
notes record it (docs/lab.md, docs/vmmouse.md): QMP's 0..32767 absolute range is doubled by
QEMU 7.2's vmmouse and passed unchanged by the tablet; the vmmouse Z byte is -1 for
wheel-up and -2 for wheel-right; the tablet's wheel is +1 for wheel-up. Each wheel button
gives two vmmouse packets (QEMU syncs the press and the release), the second with Z = 0.

Needs root, the lab's packages (svga lab setup), udev and libinput-tools for the udev/libinput
test and, for the Xorg test, the X packages listed in X_PACKAGES (verified with their
Recommends installed, xfonts-base among them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from evdev import ecodes as e

from svga.lab.packages import not_ready

ROOT = Path(__file__).resolve().parents[1]
GUEST_SCRIPT = "tests/vmmouse_lab_guest.py"
X_PACKAGES = ("xserver-xorg-core", "xserver-xorg-input-libinput", "xserver-xorg-video-dummy",
              "libinput-tools", "udev", "xdotool", "x11-utils")


_WHY = not_ready()
_WHY_X = not_ready(X_PACKAGES)
_WHY_LIBINPUT = not_ready(("udev", "libinput-tools"))
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_WHY), reason=_WHY or "ready")]


# --- QMP input -------------------------------------------------------------------------------

def move(x: int, y: int) -> list[dict]:
    return [{"type": "abs", "data": {"axis": "x", "value": x}},
            {"type": "abs", "data": {"axis": "y", "value": y}}]


def button(name: str, down: bool) -> list[dict]:
    return [{"type": "btn", "data": {"down": down, "button": name}}]


def click(name: str) -> list[dict]:
    return button(name, True) + button(name, False)


# The scene every source test plays: move, left click (press, release), one wheel detent
# up, one to the right.
SCENE = [move(16384, 8192), button("left", True), button("left", False), click("wheel-up"),
         click("wheel-right")]


def run_guest(args: list[str], inject: list[list[dict]], timeout: float = 180.0, *,
              markers: list[str] | None = None) -> dict:
    """Run the guest script; after each marker (default: one "ready"), inject the next
    event batches; return the script's RESULT json."""
    from svga.lab.vm import Guest

    with Guest() as guest:
        job = guest.submit(["python3", GUEST_SCRIPT, *args], cwd=str(ROOT))
        guest.start()
        if markers is None:
            job.wait_marker("ready", timeout=timeout)
            for batch in inject:
                guest.send_input(batch)
                time.sleep(0.1)     # pacing only: every packet is checked below, whatever the timing
        else:
            for name, batch in zip(markers, inject, strict=True):
                job.wait_marker(name, timeout=timeout)
                guest.send_input(batch)
                job.release(name)
        status, output = job.wait(timeout=timeout)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert status == 0 and lines, f"guest script failed (status {status}):\n{output[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


# --- tests -----------------------------------------------------------------------------------

def test_probe_finds_backdoor_vmmouse_tablet_serio_and_uinput():
    from svga.lab.vm import run

    status, out = run(["python3", "-m", "vmmouse", "probe", "--handshake"], cwd=str(ROOT), timeout=120)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == "backdoor: present (version 6, VMX type 2)"
    assert lines[1] == "vmmouse: present (READ_ID answered the version id; disabled again)"
    assert lines[2].startswith("usb: QEMU USB Tablet 0627:0001") and "X 0..32767, Y 0..32767" in lines[2]
    assert lines[3].startswith("serio: serio1 (i8042 AUX port)")
    assert lines[4] == "uinput: /dev/uinput present"


def test_the_real_uinput_unit_test_runs_in_a_guest():
    # This host kind has no /dev/uinput; the guest has one, so the unit test that skips here runs there.
    from svga.lab.vm import run

    status, out = run(["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                       "tests/test_vmmouse_uinput_sink.py::test_real_uinput_device_reads_back"],
                      cwd=str(ROOT), timeout=180)
    assert status == 0 and "1 passed" in out and "skipped" not in out, out


VMMOUSE_SCENE_EVENTS = [
    "abs x=32768 y=16384 buttons=-",
    "abs x=32768 y=16384 buttons=left",
    "abs x=32768 y=16384 buttons=-",
    "abs x=32768 y=16384 buttons=- wheel=+1",
    "abs x=32768 y=16384 buttons=-",
    "abs x=32768 y=16384 buttons=- hwheel=+1",
    "abs x=32768 y=16384 buttons=-",
]


def test_backdoor_through_serio_interrupts():
    r = run_guest(["read", "--source", "backdoor", "--wakeup", "serio", "--count", "7", "--idle", "3"], SCENE)
    print("serio idle:", r["idle_wakes"], f"cpu {r['idle_cpu']:.4f} s over {r['idle_wall']:.1f} s")
    assert (r["source"], r["wakeup"]) == ("backdoor", "serio")
    assert r["events"] == VMMOUSE_SCENE_EVENTS
    assert set(r["wakes"]) <= {"device", "timeout"} and r["wakes"].get("device", 0) >= 1
    # Idle: no PS/2 notification arrives, so nothing but the safety timeout can wake the loop.
    assert r["idle_events"] == 0 and r["idle_wakes"].get("device", 0) == 0


def test_backdoor_takes_the_aux_port_from_a_generic_psmouse():
    # Under TCG the kernel's vmmouse protocol does not bind (it wants a VMware or KVM
    # hypervisor), so psmouse drives the AUX port as a generic mouse; the bridge takes the
    # port for serio_raw and the generic mouse device goes away with psmouse.
    r = run_guest(["read", "--source", "backdoor", "--wakeup", "serio", "--count", "7", "--idle", "0",
                   "--load-psmouse"], SCENE)
    assert r["aux_driver_before"] == "psmouse" and r["aux_driver_after"] == "serio_raw"
    assert r["events"] == VMMOUSE_SCENE_EVENTS
    assert not any("PS/2" in name for name in r["input_names"]), r["input_names"]


def test_backdoor_through_polling():
    r = run_guest(["read", "--source", "backdoor", "--wakeup", "poll", "--count", "7", "--idle", "3"], SCENE)
    print("poll idle:", r["idle_wakes"], f"cpu {r['idle_cpu']:.4f} s over {r['idle_wall']:.1f} s")
    assert (r["source"], r["wakeup"]) == ("backdoor", "poll")
    assert r["events"] == VMMOUSE_SCENE_EVENTS
    assert r["idle_events"] == 0 and r["idle_wakes"].get("timeout", 0) > 0


def test_usb_tablet_taken_from_usbhid_and_given_back():
    scene = [move(100, 200), button("left", True), button("left", False), click("wheel-up")]
    r = run_guest(["read", "--source", "usb", "--count", "4", "--idle", "1", "--load-usbhid"], scene)
    assert (r["source"], r["wakeup"]) == ("usb", "source")
    assert r["events"] == [
        "abs x=100 y=200 buttons=-",
        "abs x=100 y=200 buttons=left",
        "abs x=100 y=200 buttons=-",
        "abs x=100 y=200 buttons=- wheel=+1",
    ]
    assert r["usb_driver_while_open"] == "usbfs"       # claimed through usbfs while the bridge reads
    assert r["usb_driver_after_close"] == "usbhid"     # and given back on close


@pytest.mark.skipif(bool(_WHY_LIBINPUT), reason=_WHY_LIBINPUT or "ready")
def test_daemon_uinput_device_udev_and_libinput():
    # SCENE, then a left press left held: the guest SIGHUPs the daemon, which releases it.
    inject = SCENE + [button("left", True)]
    r = run_guest(["uinput", "--source", "backdoor", "--wakeup", "serio", "--frames", "7", "--udev",
                   "--libinput", "--hup-after", "6"], inject)
    assert r["found"], r.get("log")
    assert r["name"] == "VMware vmmouse absolute pointer"
    assert r["ids"] == [e.BUS_VIRTUAL, 0x15AD, 0x0001]
    assert e.INPUT_PROP_DIRECT not in r["props"]
    assert r["keys"] == sorted([e.BTN_LEFT, e.BTN_RIGHT, e.BTN_MIDDLE])
    assert r["rels"] == sorted([e.REL_WHEEL, e.REL_WHEEL_HI_RES, e.REL_HWHEEL, e.REL_HWHEEL_HI_RES])
    assert r["abs"] == {str(e.ABS_X): [0, 0xFFFF], str(e.ABS_Y): [0, 0xFFFF]}
    # The daemon dropped to nobody after taking iopl, and the backdoor still answered.
    assert r["daemon_uid"] == 65534 and r["daemon_uid_after_events"] == 65534
    assert r["frames"] == [
        [[e.EV_ABS, e.ABS_X, 32768], [e.EV_ABS, e.ABS_Y, 16384]],
        [[e.EV_KEY, e.BTN_LEFT, 1]],
        [[e.EV_KEY, e.BTN_LEFT, 0]],
        [[e.EV_REL, e.REL_WHEEL_HI_RES, 120], [e.EV_REL, e.REL_WHEEL, 1]],
        [[e.EV_REL, e.REL_HWHEEL_HI_RES, 120], [e.EV_REL, e.REL_HWHEEL, 1]],
        [[e.EV_KEY, e.BTN_LEFT, 1]],
        [[e.EV_KEY, e.BTN_LEFT, 0]],                    # released by SIGHUP
    ]
    assert r["udev"].get("ID_INPUT_MOUSE") == "1" and r["udev"].get("ID_VMMOUSE_BRIDGE") == "1"
    assert not r["udev"].get("ID_INPUT_TABLET") and not r["udev"].get("ID_INPUT_TOUCHSCREEN")
    libinput = r["libinput"]
    for kind in ("POINTER_MOTION_ABSOLUTE", "POINTER_BUTTON", "POINTER_SCROLL_WHEEL"):
        assert kind in libinput, libinput
    assert r["daemon_status"] == 0
    assert "now running as nobody" in r["log"]


def test_daemon_usb_source_drops_privileges_and_gives_the_tablet_back():
    scene = [move(100, 200), button("left", True), button("left", False), click("wheel-up")]
    r = run_guest(["uinput", "--source", "usb", "--frames", "4", "--load-usbhid"], scene)
    assert r["found"], r.get("log")
    assert r["name"] == "vmmouse USB tablet bridge"
    assert r["ids"] == [e.BUS_VIRTUAL, 0x0627, 0x0001]
    assert r["abs"] == {str(e.ABS_X): [0, 0x7FFF], str(e.ABS_Y): [0, 0x7FFF]}
    assert r["rels"] == sorted([e.REL_WHEEL, e.REL_WHEEL_HI_RES])
    assert r["daemon_uid"] == 65534
    assert r["frames"] == [
        [[e.EV_ABS, e.ABS_X, 100], [e.EV_ABS, e.ABS_Y, 200]],
        [[e.EV_KEY, e.BTN_LEFT, 1]],
        [[e.EV_KEY, e.BTN_LEFT, 0]],
        [[e.EV_REL, e.REL_WHEEL_HI_RES, 120], [e.EV_REL, e.REL_WHEEL, 1]],
    ]
    assert r["daemon_status"] == 0
    assert r["usb_driver_after_exit"] == "usbhid", r["log"]   # given back even as nobody


@pytest.mark.skipif(bool(_WHY_X), reason=_WHY_X or "ready")
def test_xorg_session_follows_the_pointer():
    # 1024x768 dummy screen; libinput maps 0..65535 onto it: position = value * size / 65536.
    targets = [(16384, 16384), (0, 32767), (32767, 0)]       # QMP units; the vmmouse doubles them
    expect = [(2 * x * 1024 // 65536, 2 * y * 768 // 65536) for x, y in targets]
    args = ["xorg", "--source", "backdoor", "--wakeup", "serio"]
    for x, y in expect:
        args += ["--expect", f"{x},{y}"]
    r = run_guest(args, [move(x, y) for x, y in targets], markers=[f"move{i}" for i in range(len(targets))])
    assert r["found"], r.get("log")
    assert r["udev"].get("ID_INPUT_MOUSE") == "1"
    assert "VMware vmmouse absolute pointer" in r["libinput_list"], r["libinput_list"]
    print("xorg locations:", r["locations"], "expected:", expect)
    for got, want in zip(r["locations"], expect, strict=True):
        assert got is not None, r.get("xorg_log")
        assert abs(got[0] - want[0]) <= 1 and abs(got[1] - want[1]) <= 1, (got, want)
    assert r["daemon_status"] == 0


def test_sigterm_with_a_button_held_releases_it():
    # Issue 17 item 4: SIGTERM while the left button is held; the daemon releases it on the
    # way out (its uinput device then goes away), so nothing stays pressed.
    r = run_guest(["uinput", "--source", "backdoor", "--wakeup", "serio", "--frames", "3",
                   "--term-after", "2"], [move(16384, 8192), button("left", True)])
    assert r["found"], r.get("log")
    assert r["frames"] == [
        [[e.EV_ABS, e.ABS_X, 32768], [e.EV_ABS, e.ABS_Y, 16384]],
        [[e.EV_KEY, e.BTN_LEFT, 1]],
        [[e.EV_KEY, e.BTN_LEFT, 0]],                    # released at SIGTERM
    ], r.get("log")
    assert r["daemon_status"] == 0
