"""Fuzzing the input side with hypothesis, on a fixed budget: the HID report descriptor
parser (raw bytes and descriptors built from well-formed items), the report decoder and the
uinput bridge behind it, the HID class descriptor reader, the vmmouse packet decoder and the
vmmouse protocol over a backdoor that answers anything.

Only svga.errors.SVGAError and its subclasses (every vmmouse error is one) may escape; what
reaches the sink must be writable as the kernel's signed 32-bit event values. Budget: about
25 s for this file (max_examples below; ``make fuzz`` multiplies them by SVGA_FUZZ_SCALE; CI
derandomizes).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from svga.errors import SVGAError
from vmmouse.absolute import VMMouse
from vmmouse.backdoor import Registers
from vmmouse.events import PointerInfo
from vmmouse.hid import pointer_layout
from vmmouse.protocol import QUEUE_PACKETS, Command, decode_packet
from vmmouse.uinput_sink import PointerBridge
from vmmouse.usbtablet import report_descriptor_length

SCALE = int(os.environ.get("SVGA_FUZZ_SCALE", "1"))
HOSTILE = Path(__file__).parent / "hostile"


def budget(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=bool(os.environ.get("CI")),
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class S32Writer:
    """The kernel's struct input_event carries a __s32 value: pack each one as that."""

    def write(self, etype: int, code: int, value: int) -> None:
        struct.pack("<i", value)

    def syn(self) -> None:
        pass


def hexfile(path: Path) -> bytes:
    return bytes.fromhex(" ".join(line.split("#", 1)[0] for line in path.read_text().splitlines()))


# Well-formed short items (prefix, data) around the ones that matter: a descriptor built from
# these reaches the field logic far more often than random bytes do.
def _item(tag_type: int, size_code: int, value: int) -> bytes:
    size = (0, 1, 2, 4)[size_code]
    return bytes([tag_type | size_code]) + (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


INTERESTING = st.sampled_from([0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000,
                               0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 12288, 12289, 4096 * 8])
VALUE = st.one_of(INTERESTING, st.integers(0, 0xFFFFFFFF))
PREFIXES = st.sampled_from([0x04, 0x14, 0x24, 0x74, 0x84, 0x94, 0xA4, 0xB4,   # globals
                            0x08, 0x18, 0x28,                                   # locals
                            0x80, 0xA0, 0xC0, 0x90, 0xB0])                      # mains
ITEM = st.builds(_item, PREFIXES, st.integers(0, 3), VALUE)
POINTER_START = bytes.fromhex("05010902a1010901a100")
XY = bytes.fromhex("050109300931")
SMALL = st.one_of(st.integers(0, 40), INTERESTING)


def _pointer(b_size, b_count, lmin, lmax, size, count, flags, w_size, w_min, w_max, extra) -> bytes:
    """A tablet-shaped descriptor with the numbers that matter fuzzed (HID 1.11 items)."""
    return (POINTER_START
            + bytes.fromhex("05091901") + _item(0x28, 1, 3) + _item(0x14, 1, 0) + _item(0x24, 1, 1)
            + _item(0x94, 2, b_count) + _item(0x74, 2, b_size) + b"\x81\x02"
            + XY + _item(0x14, 3, lmin) + _item(0x24, 3, lmax) + _item(0x74, 2, size)
            + _item(0x94, 3, count) + _item(0x80, 1, flags)
            + b"\x09\x38" + _item(0x14, 3, w_min) + _item(0x24, 3, w_max) + _item(0x74, 1, w_size)
            + b"\x95\x01\x81\x06" + extra + b"\xc0\xc0")


SIZE = st.one_of(st.integers(1, 32), st.integers(1, 32), SMALL)
COUNT = st.one_of(st.integers(1, 4), st.integers(1, 4), SMALL)
RANGE = st.one_of(st.integers(-(1 << 15), 1 << 15), VALUE)
POINTERS = st.builds(_pointer, SIZE, COUNT, RANGE, RANGE, SIZE, COUNT, st.sampled_from([2, 3, 6, 7, 0x82]),
                     SIZE, RANGE, RANGE, st.lists(ITEM, max_size=4).map(b"".join))
DESCRIPTOR = st.one_of(
    POINTERS, POINTERS,
    st.binary(max_size=300),
    st.lists(ITEM, max_size=40).map(b"".join),
    st.tuples(st.lists(ITEM, max_size=12).map(b"".join), st.lists(ITEM, max_size=12).map(b"".join))
      .map(lambda t: POINTER_START + t[0] + XY + t[1] + b"\x81\x02\xc0\xc0"),
)


@budget(800)
@given(DESCRIPTOR, st.lists(st.binary(max_size=80), max_size=6))
@example(hexfile(HOSTILE / "hid-wheel-32bit.hex"), [b"\x07\xff\x7f\xff\x7f\x00\x00\x00\x80"])
def test_fuzz_hid_descriptor_and_reports(descriptor, reports):
    try:
        layout = pointer_layout(descriptor)
    except SVGAError:
        return
    if layout is None:
        return
    bridge = PointerBridge(S32Writer(), PointerInfo("fuzz", (layout.x.logical_min, layout.x.logical_max),
                                                    (layout.y.logical_min, layout.y.logical_max),
                                                    hwheel=layout.pan is not None))
    assert layout.report_bytes >= 1
    for report in reports:
        try:
            event = layout.decode(report)
        except SVGAError:
            continue
        if event is not None:
            bridge.handle(event)
    bridge.release_all()


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("hid-*.hex")), ids=lambda p: p.name)
def test_kept_descriptors_raise_only_public_errors(path):
    data = hexfile(path)
    try:
        layout = pointer_layout(data)
        length = report_descriptor_length(data)
    except SVGAError:
        return
    assert layout is None or layout.report_bytes >= 1
    assert length is None or 0 <= length <= 0xFFFF


@budget(400)
@given(st.binary(max_size=64))
@example(bytes.fromhex("092111"))
def test_fuzz_hid_class_descriptor(data):
    length = report_descriptor_length(data)
    assert length is None or 0 <= length <= 0xFFFF


@budget(300)
@given(st.lists(VALUE, min_size=0, max_size=6), st.booleans())
def test_fuzz_vmmouse_packet_decoder(words, z_horizontal):
    try:
        event = decode_packet(words, z_horizontal=z_horizontal)
    except SVGAError:
        return
    bridge = PointerBridge(S32Writer(), PointerInfo("fuzz", (0, 0xFFFF), (0, 0xFFFF), hwheel=True))
    bridge.handle(event)


class AnyPort:
    """A backdoor that answers every call with the next values of a fuzzed list."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.i = 0
        self.calls = 0

    def _next(self) -> int:
        self.i += 1
        return self.answers[self.i % len(self.answers)] if self.answers else 0

    def call(self, command: int, argument: int = 0) -> Registers:
        self.calls += 1
        assert self.calls < 20_000, "the protocol does not end"
        if command == Command.ABSPOINTER_DATA:
            assert 1 <= argument <= 6
        return Registers(*(self._next() for _ in range(6)))


@budget(200)
@given(st.lists(VALUE, max_size=64), st.booleans())
def test_fuzz_vmmouse_protocol_on_a_hostile_backdoor(answers, enable_first):
    mouse = VMMouse(AnyPort(answers))
    try:
        if enable_first:
            mouse.enable()
        events = mouse.read_events()
    except SVGAError:
        return
    assert len(events) <= QUEUE_PACKETS
