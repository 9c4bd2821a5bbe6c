"""vmmouse.sources: source order and refusal messages, wake-up choice, probe lines (with the
backdoor and USB lookups replaced, so the lines do not depend on this host)."""

import pytest

import vmmouse.backdoor
import vmmouse.usbtablet
from vmmouse.errors import BackdoorUnavailable, NoDevice
from vmmouse.model import VMPortModel
from vmmouse.sources import open_source, open_wakeup, probe
from vmmouse.wakeup import PollWakeup, SourceBlocks


def _fail(error):
    def opener():
        raise error
    return opener


def test_auto_tries_backdoor_then_usb():
    usb = object()
    name, src = open_source("auto", opener={"backdoor": _fail(BackdoorUnavailable("not root")),
                                            "usb": lambda: usb})
    assert (name, src) == ("usb", usb)


def test_auto_with_nothing_says_why_for_each():
    with pytest.raises(NoDevice) as info:
        open_source("auto", opener={"backdoor": _fail(BackdoorUnavailable("iopl refused")),
                                    "usb": _fail(NoDevice("no USB absolute pointer found"))})
    assert str(info.value) == ("no pointer source: backdoor: iopl refused; "
                               "usb: no USB absolute pointer found")


def test_explicit_source_raises_its_own_error():
    with pytest.raises(BackdoorUnavailable, match="iopl"):
        open_source("backdoor", opener={"backdoor": _fail(BackdoorUnavailable("iopl")), "usb": None})


def test_usb_source_blocks_by_itself():
    assert open_wakeup("serio", "usb", None)[0] == "source"
    assert isinstance(open_wakeup("auto", "usb", None)[1], SourceBlocks)


def test_backdoor_auto_falls_back_to_polling_without_a_ps2_port(tmp_path):
    name, wake = open_wakeup("auto", "backdoor", None, sysfs=str(tmp_path), dev=str(tmp_path))
    assert name == "poll" and isinstance(wake, PollWakeup)
    with pytest.raises(Exception, match="no i8042 AUX port"):
        open_wakeup("serio", "backdoor", None, sysfs=str(tmp_path), dev=str(tmp_path))


class _Port(VMPortModel):
    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass


def test_probe_lines(monkeypatch, tmp_path):
    monkeypatch.setattr(vmmouse.backdoor.Backdoor, "open", classmethod(lambda cls: _Port()))
    monkeypatch.setattr(vmmouse.usbtablet, "find_tablets", lambda: ([], ["0627:0001 (bus 1 device 2) "
                                                                         "interface 0: HID, but not an "
                                                                         "absolute pointer"]))
    lines = probe(sysfs=str(tmp_path), dev=str(tmp_path), handshake=True)
    assert lines == [
        "backdoor: present (version 6, VMX type 2)",
        "vmmouse: present (READ_ID answered the version id; disabled again)",
        "usb: none (0627:0001 (bus 1 device 2) interface 0: HID, but not an absolute pointer)",
        "serio: no i8042 AUX port (no PS/2 controller): the backdoor would be polled",
        f"uinput: {tmp_path}/uinput missing (modprobe uinput)",
    ]


def test_probe_without_handshake_leaves_the_vmmouse_alone(monkeypatch, tmp_path):
    port = _Port()
    monkeypatch.setattr(vmmouse.backdoor.Backdoor, "open", classmethod(lambda cls: port))
    monkeypatch.setattr(vmmouse.usbtablet, "find_tablets", lambda: ([], []))
    lines = probe(sysfs=str(tmp_path), dev=str(tmp_path))
    assert lines[1].startswith("vmmouse: not checked")
    assert [c for c, _ in port.calls] == [10]


def test_probe_says_why_the_backdoor_is_out_of_reach(monkeypatch, tmp_path):
    def refuse(cls):
        raise BackdoorUnavailable("iopl(3) needs root or CAP_SYS_RAWIO (EPERM)")
    monkeypatch.setattr(vmmouse.backdoor.Backdoor, "open", classmethod(refuse))
    monkeypatch.setattr(vmmouse.usbtablet, "find_tablets", lambda: ([], []))
    lines = probe(sysfs=str(tmp_path), dev=str(tmp_path))
    assert lines[0] == "backdoor: unavailable: iopl(3) needs root or CAP_SYS_RAWIO (EPERM)"
    assert lines[1] == "usb: none (no USB HID device)"
