"""vmmouse.protocol: numbers checked against the sources written down in the reference note
(open-vm-tools backdoor_def.h, xf86-input-vmmouse vmmouse_defs.h, QEMU hw/i386/vmmouse.c), and
packet decoding on words written down by hand."""

import pytest

from vmmouse.events import Buttons
from vmmouse.protocol import (
    decode_packet,
    decode_status,
)


def test_status_splits_flags_and_queue_length():
    assert decode_status(0x00000004) == (0, 4)
    assert not decode_status(0x00000004).error
    error = decode_status(0xFFFF0000)
    assert error == (0xFFFF, 0) and error.error
    assert decode_status(0xFFFF0008) == (0xFFFF, 8) and decode_status(0xFFFF0008).error


def test_left_press_seen_in_the_lab():
    # docs/lab.md: a left press at QMP (16384, 8192) read back as (0x20, 0x8000, 0x4000, 0).
    ev = decode_packet((0x20, 0x8000, 0x4000, 0))
    assert ev.buttons == Buttons.LEFT
    assert (ev.x, ev.y, ev.wheel, ev.hwheel) == (0x8000, 0x4000, 0, 0)
    assert not ev.relative


@pytest.mark.parametrize("word0, held", [
    (0x00, Buttons.NONE), (0x20, Buttons.LEFT), (0x10, Buttons.RIGHT), (0x08, Buttons.MIDDLE),
    (0x38, Buttons.LEFT | Buttons.RIGHT | Buttons.MIDDLE), (0x07, Buttons.NONE),
])
def test_buttons(word0, held):
    assert decode_packet((word0, 0, 0, 0)).buttons == held


def test_full_range_positions():
    assert (decode_packet((0, 0xFFFE, 0xFFFE, 0)).x, decode_packet((0, 0xFFFF, 0, 0)).x) == (0xFFFE, 0xFFFF)


@pytest.mark.parametrize("z, wheel", [
    (0xFFFFFFFF, +1),        # -1: wheel up (QEMU sends WHEEL_UP as -1) -> REL_WHEEL +1
    (0x00000001, -1),        # +1: wheel down
    (0x000001FF, +1),        # only the low 8 bits count: 0xFF is -1
    (0x00000080, +128),      # -128
    (0x0000007F, -127),
])
def test_wheel_sign_and_low_byte(z, wheel):
    ev = decode_packet((0, 0, 0, z))
    assert (ev.wheel, ev.hwheel) == (wheel, 0)


def test_plus_minus_two_is_horizontal_only_when_asked():
    right = 0xFFFFFFFE   # -2: QEMU's WHEEL_RIGHT
    left = 0x00000002    # +2: WHEEL_LEFT
    assert (decode_packet((0, 0, 0, right), z_horizontal=True).hwheel,
            decode_packet((0, 0, 0, left), z_horizontal=True).hwheel) == (1, -1)
    assert decode_packet((0, 0, 0, right), z_horizontal=True).wheel == 0
    # An unaware reader takes them as two vertical detents.
    assert (decode_packet((0, 0, 0, right)).wheel, decode_packet((0, 0, 0, left)).wheel) == (2, -2)
    # +-1 stays vertical either way.
    assert decode_packet((0, 0, 0, 0xFFFFFFFF), z_horizontal=True).wheel == 1


def test_relative_packet_carries_signed_deltas():
    ev = decode_packet((0x00010000 | 0x10, 0xFFFFFFFB, 7, 0))
    assert ev.relative and ev.x is None and ev.y is None
    assert (ev.dx, ev.dy, ev.buttons) == (-5, 7, Buttons.RIGHT)


def test_a_packet_is_four_words():
    with pytest.raises(ValueError):
        decode_packet((0, 0, 0))
