"""Enough of a HID report descriptor parser to read an absolute pointer's input reports.

Protocol layer of the USB source (pure functions, no I/O): ``vmmouse.usbtablet`` fetches the
descriptor and the reports; this module says where the buttons, X, Y and wheels are, their
sizes and logical ranges, and decodes a report into a ``PointerEvent``. Item encoding from the
USB HID 1.11 specification, section 6.2.2: a prefix byte holds bSize (bits 0-1; 3 means four
bytes), bType (bits 2-3: main, global, local) and bTag (bits 4-7); 0xFE starts a long item
(docs/vmmouse.md 'HID report descriptors').
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmmouse.errors import ProtocolFault
from vmmouse.events import Buttons, PointerEvent

# Item types and tags (HID 1.11, 6.2.2.4-6.2.2.8).
MAIN, GLOBAL, LOCAL = 0, 1, 2
MAIN_INPUT, MAIN_OUTPUT, MAIN_FEATURE, MAIN_COLLECTION, MAIN_END_COLLECTION = 0x8, 0x9, 0xB, 0xA, 0xC
G_USAGE_PAGE, G_LOGICAL_MIN, G_LOGICAL_MAX = 0x0, 0x1, 0x2
G_REPORT_SIZE, G_REPORT_ID, G_REPORT_COUNT, G_PUSH, G_POP = 0x7, 0x8, 0x9, 0xA, 0xB
L_USAGE, L_USAGE_MIN, L_USAGE_MAX = 0x0, 0x1, 0x2
LONG_ITEM = 0xFE

# Input item flag bits.
FLAG_CONSTANT, FLAG_VARIABLE, FLAG_RELATIVE = 0x01, 0x02, 0x04

# Usages (HID Usage Tables 1.3), as page << 16 | id.
PAGE_GENERIC_DESKTOP, PAGE_BUTTON, PAGE_CONSUMER = 0x01, 0x09, 0x0C
USAGE_X = PAGE_GENERIC_DESKTOP << 16 | 0x30
USAGE_Y = PAGE_GENERIC_DESKTOP << 16 | 0x31
USAGE_WHEEL = PAGE_GENERIC_DESKTOP << 16 | 0x38
USAGE_AC_PAN = PAGE_CONSUMER << 16 | 0x238
BUTTON_USAGES = {PAGE_BUTTON << 16 | 1: Buttons.LEFT, PAGE_BUTTON << 16 | 2: Buttons.RIGHT,
                 PAGE_BUTTON << 16 | 3: Buttons.MIDDLE}

# Limits on what a device may send, none above the kernel's own (docs/vmmouse.md 'Limits on
# what a device sends'): a descriptor is read whole only up to MAX_DESCRIPTOR_BYTES, a report
# only up to MAX_REPORT_BYTES; a Report Count above MAX_REPORT_COUNT, or a report of more bits
# than MAX_REPORT_BYTES holds, is refused before anything is built from it; a value field is
# 1..MAX_FIELD_BITS bits (evdev values are signed 32-bit).
MAX_DESCRIPTOR_BYTES = 4096
MAX_REPORT_BYTES = 4096
MAX_REPORT_COUNT = 12288
MAX_FIELD_BITS = 32
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class DescriptorError(ProtocolFault, ValueError):
    """A report descriptor that cannot be parsed, or that describes what cannot be read."""


class ReportError(ProtocolFault, ValueError):
    """An input report that does not fit its descriptor (too short, too long)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One input value: where it sits in its report and how to read it.

    ``bit_offset`` counts from the first bit after the report-id byte, if the descriptor uses
    report ids.
    """

    usage: int
    report_id: int
    bit_offset: int
    bit_size: int
    logical_min: int
    logical_max: int
    relative: bool

    @property
    def signed(self) -> bool:
        return self.logical_min < 0

    def extract(self, payload: bytes) -> int:
        """The field's value from a report payload (report-id byte already removed)."""
        if (self.bit_offset + self.bit_size + 7) // 8 > len(payload):
            raise ReportError(f"a {len(payload)}-byte report is too short for a field at bit "
                             f"{self.bit_offset} of {self.bit_size} bits")
        value = (int.from_bytes(payload, "little") >> self.bit_offset) & ((1 << self.bit_size) - 1)
        if self.signed and value >> (self.bit_size - 1):
            value -= 1 << self.bit_size
        return value


def _unsigned(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _signed(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True) if data else 0


@dataclass
class _Globals:
    usage_page: int = 0
    logical_min: int = 0
    logical_max: int = 0
    logical_max_raw: bytes = b""
    report_size: int = 0
    report_count: int = 0
    report_id: int = 0


def _items(data: bytes):
    """(type, tag, data) for each short item; long items are skipped (none are defined)."""
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise DescriptorError(f"a {len(data)}-byte report descriptor is longer than the "
                              f"{MAX_DESCRIPTOR_BYTES} bytes allowed")
    i = 0
    while i < len(data):
        prefix = data[i]
        if prefix == LONG_ITEM:
            if i + 2 >= len(data):
                raise DescriptorError(f"long item at byte {i} is cut short")
            i += 3 + data[i + 1]
            continue
        size = (0, 1, 2, 4)[prefix & 3]
        if i + 1 + size > len(data):
            raise DescriptorError(f"item {prefix:#04x} at byte {i} runs past the end of the descriptor")
        yield (prefix >> 2) & 3, prefix >> 4, data[i + 1: i + 1 + size]
        i += 1 + size


def parse_input_fields(descriptor: bytes) -> list[Field]:
    """Every Data Variable input field of the descriptor, in report order.

    Array and constant (padding) inputs only advance the bit position. Logical maximum is
    read unsigned when reading it signed would put it below the minimum (a common descriptor
    habit: 0x25 0xFF meaning 255).
    """
    fields: list[Field] = []
    g = _Globals()
    stack: list[_Globals] = []
    usages: list[int] = []
    usage_min: int | None = None
    usage_max: int | None = None
    offsets: dict[int, int] = {}

    def full_usage(raw: bytes) -> int:
        value = _unsigned(raw)
        return value if len(raw) == 4 else g.usage_page << 16 | value

    for kind, tag, raw in _items(descriptor):
        if kind == GLOBAL:
            if tag == G_USAGE_PAGE:
                g.usage_page = _unsigned(raw)
            elif tag == G_LOGICAL_MIN:
                g.logical_min = _signed(raw)
            elif tag == G_LOGICAL_MAX:
                g.logical_max_raw = bytes(raw)
            elif tag == G_REPORT_SIZE:
                g.report_size = _unsigned(raw)
            elif tag == G_REPORT_COUNT:
                g.report_count = _unsigned(raw)
            elif tag == G_REPORT_ID:
                g.report_id = _unsigned(raw)
                if g.report_id == 0:
                    raise DescriptorError("report id 0 is reserved")
            elif tag == G_PUSH:
                stack.append(_Globals(**vars(g)))
            elif tag == G_POP:
                if not stack:
                    raise DescriptorError("Pop without Push")
                g = stack.pop()
        elif kind == LOCAL:
            if len(usages) >= MAX_REPORT_COUNT:
                raise DescriptorError(f"more than {MAX_REPORT_COUNT} usages before one main item")
            if tag == L_USAGE:
                usages.append(full_usage(raw))
            elif tag == L_USAGE_MIN:
                usage_min = full_usage(raw)
            elif tag == L_USAGE_MAX:
                usage_max = full_usage(raw)
        elif kind == MAIN:
            if tag == MAIN_INPUT:
                flags = _unsigned(raw)
                lmax = _signed(g.logical_max_raw)
                if lmax < g.logical_min:
                    lmax = _unsigned(g.logical_max_raw)
                listed = list(usages)
                if usage_min is not None and usage_max is not None:
                    if usage_max < usage_min or usage_max - usage_min > 0xFFFF:
                        raise DescriptorError(f"bad usage range {usage_min:#x}..{usage_max:#x}")
                    listed += range(usage_min, usage_max + 1)
                offset = offsets.get(g.report_id, 0)
                _check_input(g, offset)
                if flags & FLAG_VARIABLE and not flags & FLAG_CONSTANT:
                    for n in range(g.report_count):
                        if not listed:
                            break
                        # Fewer usages than fields: the last usage repeats (HID 1.11, 6.2.2.8).
                        usage = listed[min(n, len(listed) - 1)]
                        fields.append(Field(usage, g.report_id, offset + n * g.report_size, g.report_size,
                                            g.logical_min, lmax, bool(flags & FLAG_RELATIVE)))
                offsets[g.report_id] = offset + g.report_size * g.report_count
            if tag in (MAIN_INPUT, MAIN_OUTPUT, MAIN_FEATURE, MAIN_COLLECTION, MAIN_END_COLLECTION):
                usages, usage_min, usage_max = [], None, None
    return fields


def _check_input(g: _Globals, offset: int) -> None:
    """Refuse an Input item whose fields cannot be read: too many, too wide, or a report
    longer than MAX_REPORT_BYTES (checked before any field is built, so a hostile count costs
    nothing)."""
    if g.report_count > MAX_REPORT_COUNT:
        raise DescriptorError(f"Report Count {g.report_count} is more than the {MAX_REPORT_COUNT} allowed")
    if g.report_size > 8 * MAX_REPORT_BYTES:
        raise DescriptorError(f"Report Size {g.report_size} is more than a {MAX_REPORT_BYTES}-byte report")
    if offset + g.report_size * g.report_count > 8 * MAX_REPORT_BYTES:
        raise DescriptorError(f"report {g.report_id} would be longer than {MAX_REPORT_BYTES} bytes")


def _check_value_field(name: str, f: Field) -> None:
    """A field whose values become evdev values: 1..32 bits, a range that fits a signed
    32-bit value, minimum <= maximum."""
    if not 1 <= f.bit_size <= MAX_FIELD_BITS:
        raise DescriptorError(f"{name} is {f.bit_size} bits wide (1..{MAX_FIELD_BITS} are read)")
    if not INT32_MIN <= f.logical_min <= f.logical_max <= INT32_MAX:
        raise DescriptorError(f"{name} has the logical range {f.logical_min}..{f.logical_max}, which "
                              "is not a signed 32-bit range with minimum <= maximum")


@dataclass(frozen=True)
class PointerLayout:
    """Where an absolute pointer's values sit in its input report."""

    report_id: int
    uses_report_ids: bool
    x: Field
    y: Field
    buttons: dict[Buttons, Field] = field(default_factory=dict)
    wheel: Field | None = None
    pan: Field | None = None

    @property
    def report_bytes(self) -> int:
        fields = [self.x, self.y, *self.buttons.values(), *(f for f in (self.wheel, self.pan) if f)]
        bits = max(f.bit_offset + f.bit_size for f in fields)
        return (bits + 7) // 8 + (1 if self.uses_report_ids else 0)

    def decode(self, report: bytes) -> PointerEvent | None:
        """The event a report carries, or None for a report of another id. ReportError for a
        report too short for its fields or longer than MAX_REPORT_BYTES."""
        if len(report) > MAX_REPORT_BYTES + 1:
            raise ReportError(f"a {len(report)}-byte report is longer than {MAX_REPORT_BYTES} bytes")
        if self.uses_report_ids:
            if not report or report[0] != self.report_id:
                return None
            report = report[1:]
        held = Buttons.NONE
        for button, f in self.buttons.items():
            if f.extract(report):
                held |= button
        wheel = self.wheel.extract(report) if self.wheel else 0
        pan = self.pan.extract(report) if self.pan else 0
        return PointerEvent(held, self.x.extract(report), self.y.extract(report), 0, 0, wheel, pan)


def pointer_layout(descriptor: bytes) -> PointerLayout | None:
    """The absolute pointer in a report descriptor: absolute X and Y in one report, with its
    buttons and wheels; None if the descriptor has none (a relative mouse, a keyboard)."""
    fields = parse_input_fields(descriptor)
    uses_ids = any(f.report_id for f in fields)
    for report_id in dict.fromkeys(f.report_id for f in fields):
        mine = [f for f in fields if f.report_id == report_id]
        by_usage: dict[int, Field] = {}
        for f in mine:
            by_usage.setdefault(f.usage, f)
        x, y = by_usage.get(USAGE_X), by_usage.get(USAGE_Y)
        if x is None or y is None or x.relative or y.relative:
            continue
        buttons = {b: by_usage[u] for u, b in BUTTON_USAGES.items() if u in by_usage}
        wheel = by_usage.get(USAGE_WHEEL)
        pan = by_usage.get(USAGE_AC_PAN)
        wheel = wheel if wheel and wheel.relative else None
        pan = pan if pan and pan.relative else None
        for name, f in (("X", x), ("Y", y), ("the wheel", wheel), ("the horizontal wheel", pan),
                        *((f"button {b.name.lower()}", bf) for b, bf in buttons.items())):
            if f is not None:
                _check_value_field(name, f)
        return PointerLayout(report_id, uses_ids, x, y, buttons, wheel, pan)
    return None
