"""Issue 17, findings 1-4 and the `vmmouse events --count 0` part of 10: hostile HID
descriptors and reports, values evdev cannot hold, and the command line's usage errors.

The inputs are kept in tests/hostile/ (hex text). Oracles: the HID 1.11 item layout written
out byte by byte in each file, and the kernel's input_event value being a signed 32-bit
number (struct.pack("<i") refuses what the kernel would not carry), not the code under test.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vmmouse.cli as cli
from svga.errors import SVGAError
from vmmouse.absolute import VMMouse
from vmmouse.events import Buttons, PointerEvent, PointerInfo
from vmmouse.hid import MAX_DESCRIPTOR_BYTES, DescriptorError, ReportError, pointer_layout
from vmmouse.model import VMPortModel
from vmmouse.protocol import PacketError, decode_packet
from vmmouse.uinput_sink import PointerBridge, capabilities
from vmmouse.usbtablet import examine, report_descriptor_length

HOSTILE = Path(__file__).parent / "hostile"
ROOT = Path(__file__).resolve().parent.parent


def hexfile(name: str) -> bytes:
    lines = (line.split("#", 1)[0] for line in (HOSTILE / name).read_text().splitlines())
    return bytes.fromhex(" ".join(lines))


class S32Writer:
    """Records events and packs each value as the kernel's struct input_event does (__s32)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int]] = []

    def write(self, etype: int, code: int, value: int) -> None:
        struct.pack("<i", value)  # struct.error past a signed 32-bit value, as evdev's OverflowError
        self.events.append((etype, code, value))

    def syn(self) -> None:
        pass


# -- 1. Report Count 0xFFFFFFFF -------------------------------------------------------------
def test_report_count_ffffffff_is_refused_at_once():
    data = hexfile("hid-report-count-ffffffff.hex")
    assert len(data) == 27 and data[19:24] == bytes.fromhex("97ffffffff")  # Report Count, 4 bytes
    start = time.monotonic()
    with pytest.raises(DescriptorError, match="Report Count 4294967295"):
        pointer_layout(data)
    assert time.monotonic() - start < 1.0


def test_a_descriptor_longer_than_the_limit_is_refused():
    tablet = hexfile("hid-wheel-32bit.hex")
    with pytest.raises(DescriptorError, match="longer than"):
        pointer_layout(tablet + b"\xc0" * MAX_DESCRIPTOR_BYTES)


# -- 2. A truncated HID class descriptor ----------------------------------------------------
class _Endpoint:
    bEndpointAddress, bmAttributes, wMaxPacketSize = 0x81, 0x03, 8


class _Interface:
    bInterfaceNumber, bInterfaceClass, bAlternateSetting = 0, 3, 0

    def __init__(self, extra: bytes) -> None:
        self.extra_descriptors = list(extra)

    def __iter__(self):
        return iter([_Endpoint()])


class _Device:
    idVendor, idProduct, bus, address, port_numbers, iProduct = 0x0627, 1, 1, 2, (1,), 0

    def __init__(self, extra: bytes, report: bytes = b"") -> None:
        self._interfaces = [_Interface(extra)]
        self._report = report

    def get_active_configuration(self):
        return self._interfaces

    def ctrl_transfer(self, request_type, request, value, index, length, timeout):
        return self._report[:length]


def test_truncated_class_descriptor_skips_the_device_with_a_note():
    data = hexfile("hid-class-descriptor-truncated.hex")
    assert report_descriptor_length(data) is None
    found, notes = examine(_Device(data), "/nonexistent")
    assert found == [] and len(notes) == 1 and "report descriptor length" in notes[0]


def test_hostile_report_descriptors_are_notes_not_crashes():
    hid = bytes([9, 0x21, 0x11, 1, 0, 1, 0x22, 0xFF, 0])  # announces 255 bytes
    for name in ("hid-report-count-ffffffff.hex", "hid-axis-max-ffffffff.hex", "hid-report-size-0.hex",
                 "hid-field-64bit.hex"):
        found, notes = examine(_Device(hid, hexfile(name)), "/nonexistent")
        assert found == [] and len(notes) == 1 and "bad report descriptor" in notes[0], (name, notes)


def test_an_announced_descriptor_past_the_limit_is_not_fetched():
    hid = bytes([9, 0x21, 0x11, 1, 0, 1, 0x22, 0xFF, 0xFF])  # 65535 bytes announced
    found, notes = examine(_Device(hid, b"\x00" * 65535), "/nonexistent")
    assert found == [] and "longer than" in notes[0]


# -- 3. Values the uinput sink cannot write -------------------------------------------------
def test_32_bit_wheel_times_120_is_clamped_into_a_signed_32_bit_value():
    layout = pointer_layout(hexfile("hid-wheel-32bit.hex"))
    assert layout is not None and layout.wheel is not None and layout.wheel.bit_size == 32
    # buttons, X = 1, Y = 2, wheel = -2^31 (the most negative value of the field)
    event = layout.decode(bytes([0, 1, 0, 2, 0]) + struct.pack("<i", -(1 << 31)))
    assert event == PointerEvent(Buttons.NONE, 1, 2, wheel=-(1 << 31))
    writer = S32Writer()
    PointerBridge(writer, PointerInfo("t", (0, 0x7FFF), (0, 0x7FFF))).handle(event)
    wheel = [v for _, c, v in writer.events if c in (8, 11)]   # REL_WHEEL 8, REL_WHEEL_HI_RES 11
    assert len(wheel) == 2 and all(v < 0 for v in wheel)


def test_axis_maximum_ffffffff_is_refused_before_uinput():
    with pytest.raises(DescriptorError, match="4294967295"):
        pointer_layout(hexfile("hid-axis-max-ffffffff.hex"))
    with pytest.raises(SVGAError, match="does not fit a uinput axis"):
        capabilities(PointerInfo("t", (0, 0xFFFFFFFF), (0, 10)))
    with pytest.raises(SVGAError, match="does not fit a uinput axis"):
        PointerBridge(S32Writer(), PointerInfo("t", (5, 4), (0, 10)))


# -- 4. Field sizes -------------------------------------------------------------------------
def test_report_size_0_and_64_bit_fields_are_refused():
    with pytest.raises(DescriptorError, match="0 bits wide"):
        pointer_layout(hexfile("hid-report-size-0.hex"))
    with pytest.raises(DescriptorError, match="64 bits wide"):
        pointer_layout(hexfile("hid-field-64bit.hex"))


def test_a_report_too_short_or_too_long_is_a_report_error():
    layout = pointer_layout(hexfile("hid-wheel-32bit.hex"))
    assert layout is not None
    with pytest.raises(ReportError):
        layout.decode(b"\x00\x01")
    with pytest.raises(ReportError, match="longer than"):
        layout.decode(bytes(1 << 20))


def test_a_packet_of_the_wrong_length_is_a_packet_error():
    with pytest.raises(PacketError):
        decode_packet([1, 2, 3])


# -- 10. The command line -------------------------------------------------------------------
def test_events_count_0_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["events", "--count", "0"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1
    assert err.startswith("vmmouse: error: argument --count: 0: the count must be at least 1")


def test_events_count_1_prints_one_event(monkeypatch, capsys):
    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.enable()
    model.mouse_event(100, 200, 0, Buttons.NONE)
    model.mouse_event(300, 400, 0, Buttons.NONE)
    mouse.mouse = mouse                                     # the backdoor source's shape
    monkeypatch.setattr(cli, "_openers", lambda z: {"backdoor": lambda: mouse})
    assert cli.main(["events", "--source", "backdoor", "--wakeup", "poll", "--count", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.parametrize("argv", [["frobnicate"], ["run", "--source"], ["events", "--count", "x"], []])
def test_usage_errors_are_one_line_and_exit_1(argv):
    p = subprocess.run([sys.executable, "-m", "vmmouse", *argv], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1, p
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("vmmouse: error: "), p.stderr


def test_help_still_exits_0():
    p = subprocess.run([sys.executable, "-m", "vmmouse", "events", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--count N" in p.stdout
