"""vmmouse.hid: report descriptors written down from QEMU hw/usb/dev-hid.c
(qemu_tablet_hid_report_descriptor, qemu_mouse_hid_report_descriptor,
qemu_keyboard_hid_report_descriptor) and one composed by hand from the HID 1.11 item table."""

import pytest

from vmmouse.events import Buttons, PointerEvent
from vmmouse.hid import (
    USAGE_WHEEL,
    USAGE_X,
    USAGE_Y,
    DescriptorError,
    parse_input_fields,
    pointer_layout,
)

QEMU_TABLET = bytes([
    0x05, 0x01, 0x09, 0x01, 0xA1, 0x01, 0x09, 0x01, 0xA1, 0x00,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01, 0x95, 0x03, 0x75, 0x01, 0x81, 0x02,
    0x95, 0x01, 0x75, 0x05, 0x81, 0x01,
    0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x00, 0x26, 0xFF, 0x7F, 0x35, 0x00, 0x46, 0xFF, 0x7F,
    0x75, 0x10, 0x95, 0x02, 0x81, 0x02,
    0x05, 0x01, 0x09, 0x38, 0x15, 0x81, 0x25, 0x7F, 0x35, 0x00, 0x45, 0x00, 0x75, 0x08, 0x95, 0x01,
    0x81, 0x06,
    0xC0, 0xC0,
])

QEMU_MOUSE = bytes([
    0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x09, 0x01, 0xA1, 0x00,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01, 0x95, 0x03, 0x75, 0x01, 0x81, 0x02,
    0x95, 0x01, 0x75, 0x05, 0x81, 0x01,
    0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x09, 0x38, 0x15, 0x81, 0x25, 0x7F, 0x75, 0x08, 0x95, 0x03,
    0x81, 0x06,
    0xC0, 0xC0,
])

QEMU_KEYBOARD = bytes([
    0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x75, 0x01, 0x95, 0x08, 0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7,
    0x15, 0x00, 0x25, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05, 0x75, 0x01,
    0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06,
    0x75, 0x08, 0x15, 0x00, 0x25, 0xFF, 0x05, 0x07, 0x19, 0x00, 0x29, 0xFF, 0x81, 0x00, 0xC0,
])


def test_descriptor_sizes_match_qemu():
    # dev-hid.c's HID class descriptors announce 74 (tablet) and 52 (mouse) bytes; the keyboard 0x3f.
    assert (len(QEMU_TABLET), len(QEMU_MOUSE), len(QEMU_KEYBOARD)) == (74, 52, 63)


def test_qemu_tablet_fields():
    layout = pointer_layout(QEMU_TABLET)
    assert layout is not None and not layout.uses_report_ids
    assert [(f.bit_offset, f.bit_size) for f in (layout.buttons[Buttons.LEFT], layout.buttons[Buttons.RIGHT],
                                                 layout.buttons[Buttons.MIDDLE])] == [(0, 1), (1, 1), (2, 1)]
    assert (layout.x.usage, layout.x.bit_offset, layout.x.bit_size) == (USAGE_X, 8, 16)
    assert (layout.y.usage, layout.y.bit_offset, layout.y.bit_size) == (USAGE_Y, 24, 16)
    assert (layout.x.logical_min, layout.x.logical_max, layout.x.relative) == (0, 0x7FFF, False)
    assert (layout.wheel.usage, layout.wheel.bit_offset, layout.wheel.bit_size) == (USAGE_WHEEL, 40, 8)
    assert (layout.wheel.logical_min, layout.wheel.logical_max, layout.wheel.relative) == (-127, 127, True)
    assert layout.pan is None
    assert layout.report_bytes == 6


@pytest.mark.parametrize("report, event", [
    # docs/lab.md: QMP (100, 200) gave 006400c80000.
    ("006400c80000", PointerEvent(Buttons.NONE, 100, 200)),
    ("01ff7fff7f01", PointerEvent(Buttons.LEFT, 0x7FFF, 0x7FFF, wheel=1)),
    ("0600000000ff", PointerEvent(Buttons.RIGHT | Buttons.MIDDLE, 0, 0, wheel=-1)),
    ("f83412785600", PointerEvent(Buttons.NONE, 0x1234, 0x5678)),     # padding bits are ignored
])
def test_qemu_tablet_reports(report, event):
    assert pointer_layout(QEMU_TABLET).decode(bytes.fromhex(report)) == event


def test_short_report_is_refused():
    with pytest.raises(ValueError):
        pointer_layout(QEMU_TABLET).decode(bytes.fromhex("00640000"))


def test_relative_mouse_and_keyboard_are_not_absolute_pointers():
    assert pointer_layout(QEMU_MOUSE) is None
    assert pointer_layout(QEMU_KEYBOARD) is None
    x = next(f for f in parse_input_fields(QEMU_MOUSE) if f.usage == USAGE_X)
    assert x.relative and (x.logical_min, x.logical_max) == (-127, 127)


def test_keyboard_modifiers_and_unsigned_logical_max():
    fields = parse_input_fields(QEMU_KEYBOARD)
    # 8 modifier bits (usages 0x070000E0..E7) are the only variable inputs; the key array is skipped.
    assert [f.usage for f in fields] == [0x07 << 16 | u for u in range(0xE0, 0xE8)]
    assert [f.bit_offset for f in fields] == list(range(8))


# Composed by hand: report id 1 is a keyboard-like report to skip; report id 2 is an absolute
# pointer with 5 buttons, 12-bit X/Y in 16-bit fields, wheel and AC Pan, Push/Pop around X/Y.
WITH_REPORT_IDS = bytes([
    0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x85, 0x01,
    0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x81, 0x02,
    0xC0,
    0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x85, 0x02,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x05, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x05, 0x81, 0x02,
    0x75, 0x03, 0x95, 0x01, 0x81, 0x03,
    0xA4,                                       # Push
    0x0B, 0x30, 0x00, 0x01, 0x00,               # Usage (Generic Desktop X), 4-byte extended usage
    0x0B, 0x31, 0x00, 0x01, 0x00,               # Usage (Generic Desktop Y)
    0x16, 0x00, 0x00, 0x26, 0xFF, 0x0F, 0x75, 0x10, 0x95, 0x02, 0x81, 0x02,
    0xB4,                                       # Pop: logical range back to 0..1
    0x05, 0x01, 0x09, 0x38, 0x15, 0x81, 0x25, 0x7F, 0x75, 0x08, 0x95, 0x01, 0x81, 0x06,
    0x05, 0x0C, 0x0A, 0x38, 0x02, 0x81, 0x06,   # Consumer AC Pan (2-byte usage 0x0238), relative
    0xC0,
])


def test_report_ids_extended_usages_push_pop_and_pan():
    layout = pointer_layout(WITH_REPORT_IDS)
    assert layout.uses_report_ids and layout.report_id == 2
    assert (layout.x.bit_offset, layout.x.logical_max, layout.y.bit_offset) == (8, 0x0FFF, 24)
    assert (layout.wheel.logical_min, layout.wheel.bit_offset) == (-127, 40)
    assert (layout.pan.bit_offset, layout.pan.relative) == (48, True)
    assert layout.report_bytes == 8
    event = layout.decode(bytes.fromhex("02" "05" "ff0f" "0008" "fe" "01"))
    assert event == PointerEvent(Buttons.LEFT | Buttons.MIDDLE, 0x0FFF, 0x0800, wheel=-2, hwheel=1)
    assert layout.decode(bytes.fromhex("01ff")) is None          # the other report id


@pytest.mark.parametrize("blob", [
    bytes([0x05]),                  # item cut short
    bytes([0xB4]),                  # Pop without Push
    bytes([0x85, 0x00]),            # report id 0
    bytes([0x19, 0x05, 0x29, 0x01, 0x95, 0x01, 0x75, 0x01, 0x81, 0x02]),   # usage max < min
])
def test_bad_descriptors(blob):
    with pytest.raises(DescriptorError):
        parse_input_fields(blob)
