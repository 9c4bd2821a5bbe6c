"""Protocol layer (svga.stream): what a capture is made of, beside the events of :mod:`svga.stream.items`.

A capture is a :class:`Header` and a stream of :class:`~svga.stream.items.StreamItem`. Its
events are the stream's own (:class:`~svga.commands.Command`, :class:`~svga.stream.items.Raw`,
:class:`~svga.stream.items.Mode`, :class:`~svga.stream.items.Sync`,
:class:`~svga.stream.items.Refresh`, :class:`~svga.stream.items.CursorMove`) and these:

- :class:`RegWrite`: any other register write (ENABLE, CONFIG_DONE, CURSOR_ID, ...);
- :class:`FifoRegWrite`: a write of a FIFO register other than the ring pointers (the cursor
  bypass 3 registers);
- :class:`Pixels`: framebuffer contents the CPU wrote: the rectangle under an UPDATE, or a
  keyframe (``key``) of the whole screen at the start and at each mode change;
- :class:`Frame`: frame ``n`` starts here; :class:`Time`: microseconds since the start.

:func:`lint_stream` is the capture as :func:`svga.tools.check.check_stream` reads it (the
events that change no FIFO or device state the lint checks are left out).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from svga.errors import SVGAError
from svga.registers import FifoReg, Reg
from svga.stream.items import CursorMove, Mode, Position, StreamItem, Sync
from svga.stream.value import Value, init

FORMAT_VERSION = 1
"""The binary format's version (docs/capture-format.md 'Header')."""
DEVICE_KINDS = ("model", "qemu", "pci", "lab", "script")
"""Where a capture was recorded (``script``: written by hand, or with no header)."""
PROFILE_NAMES = ("qemu", "qemu-cursor", "vmware")


class CaptureError(SVGAError):
    """A capture that cannot be read or played: one line, ``WHERE: what is wrong``."""


class _Bad(Exception):
    """What is wrong with one line or record (the caller adds where)."""


DEFAULT_PIXEL_LIMIT = 64 << 20
"""Largest pixel rectangle (bytes) a capture without a header's VRAM size may hold."""


def inflate(packed: bytes, size: int, what: str) -> bytes:
    """zlib data that must inflate to exactly ``size`` bytes; never more is produced (a
    decompression bomb stops at ``size + 1``). Both forms' readers use it."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(packed, size + 1)
    except zlib.error as e:
        raise _Bad(f"{what} is not zlib data ({e})") from None
    if len(out) > size or d.unconsumed_tail:
        raise _Bad(f"{what} inflates to more than the {size} bytes of its rectangle")
    if not d.eof or len(out) != size:
        raise _Bad(f"{what} inflates to {len(out)} bytes, not the {size} of its rectangle")
    return out


class RegWrite(Value):
    """A write of ``value`` to register ``index`` (a :class:`svga.registers.Reg` or any
    index, e.g. a scratch register)."""

    __slots__ = ("index", "value")
    index: int
    value: int

    def __init__(self, index: int, value: int) -> None:
        init(self, index, value)

    @property
    def name(self) -> str:
        return reg_name(self.index)


class FifoRegWrite(Value):
    """A write of ``value`` to FIFO register ``index`` (word ``index`` of FIFO memory); the
    ring pointers MIN, MAX, NEXT_CMD and STOP are the replaying driver's own and never
    appear."""

    __slots__ = ("index", "value")
    index: int
    value: int

    def __init__(self, index: int, value: int) -> None:
        init(self, index, value)

    @property
    def name(self) -> str:
        return fifo_reg_name(self.index)


class Pixels(Value):
    """``width`` x ``height`` framebuffer pixels at ``x``, ``y`` of the mode, as
    little-endian 32-bit 0x00RRGGBB words, row after row (``data`` is width*height*4 bytes).
    ``key``: a keyframe (the whole screen as it is)."""

    __slots__ = ("x", "y", "width", "height", "data", "key")
    _hidden = frozenset(("data",))
    x: int
    y: int
    width: int
    height: int
    data: bytes
    key: bool

    def __init__(self, x: int, y: int, width: int, height: int, data: bytes, key: bool = False) -> None:
        if len(data) != width * height * 4:
            raise ValueError(f"pixels {width}x{height} need {width * height * 4} bytes, got {len(data)}")
        init(self, x, y, width, height, data, key)


class Frame(Value):
    """Frame ``n`` starts here (the frame a replay screenshots at its end)."""

    __slots__ = ("n",)
    n: int

    def __init__(self, n: int) -> None:
        init(self, n)


class Time(Value):
    """``us`` microseconds since the start of the recording."""

    __slots__ = ("us",)
    us: int

    def __init__(self, us: int) -> None:
        init(self, us)


CAPTURE_EVENTS = (RegWrite, FifoRegWrite, Pixels, Frame, Time)


class Header(Value):
    """What a capture says about the device it was recorded on (docs/capture-format.md
    'Header'). A hand-written script has the defaults: kind ``script``, no profile.
    ``start_mode``: (width, height, bpp) when the device was already in a mode (else zeros);
    ``start_us``: wall-clock time of the start, microseconds since the Unix epoch (0: unknown)."""

    __slots__ = ("version", "kind", "profile", "capabilities", "fifo_capabilities", "vram_size",
                 "fifo_size", "fb_size", "max_width", "max_height", "start_mode", "start_us")
    version: int
    kind: str
    profile: str
    capabilities: int
    fifo_capabilities: int
    vram_size: int
    fifo_size: int
    fb_size: int
    max_width: int
    max_height: int
    start_mode: tuple[int, int, int]
    start_us: int

    def __init__(self, version: int = FORMAT_VERSION, kind: str = "script", profile: str = "",
                 capabilities: int = 0, fifo_capabilities: int = 0, vram_size: int = 0,
                 fifo_size: int = 0, fb_size: int = 0, max_width: int = 0, max_height: int = 0,
                 start_mode: tuple[int, int, int] = (0, 0, 0), start_us: int = 0) -> None:
        init(self, version, kind, profile, capabilities, fifo_capabilities, vram_size, fifo_size,
             fb_size, max_width, max_height, start_mode, start_us)


class Capture:
    """A header and its stream."""

    __slots__ = ("header", "items")

    def __init__(self, header: Header, items: list[StreamItem]) -> None:
        self.header = header
        self.items = items

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Capture:
            return NotImplemented
        return (self.header, self.items) == (other.header, other.items)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass without frozen

    def __repr__(self) -> str:
        return f"Capture(header={self.header!r}, items={self.items!r})"

    def events(self) -> list[object]:
        return [it.event for it in self.items]


def reg_name(index: int) -> str:
    try:
        return Reg(index).name
    except ValueError:
        return str(index)


def fifo_reg_name(index: int) -> str:
    try:
        return FifoReg(index).name
    except ValueError:
        return str(index)


def lint_stream(items: Iterable[StreamItem]) -> Iterator[StreamItem]:
    """The items :func:`svga.tools.check.check_stream` plays: FIFO and device events; a
    SYNC register write is the stream's :class:`~svga.stream.items.Sync`; pixels, frame
    markers, times and other register writes are left out."""
    for item in items:
        ev = item.event
        if isinstance(ev, Pixels | Frame | Time | FifoRegWrite):
            continue
        if isinstance(ev, RegWrite):
            if ev.index == Reg.SYNC:
                yield StreamItem(item.position, Sync())
            continue
        yield item


def frame_spans(items: list[StreamItem]) -> list[tuple[int, int, int]]:
    """(frame number, first index, end index) of each frame: the items before the first
    :class:`Frame` marker are frame 0 (when there are any)."""
    spans: list[tuple[int, int, int]] = []
    current, start = 0, 0
    for i, item in enumerate(items):
        if isinstance(item.event, Frame):
            if i > start:
                spans.append((current, start, i))
            current, start = item.event.n, i
    if len(items) > start or not spans:
        spans.append((current, start, len(items)))
    return spans


__all__ = ["CAPTURE_EVENTS", "Capture", "CaptureError", "CursorMove", "FifoRegWrite", "Frame", "Header",
           "Mode", "Pixels", "Position", "RegWrite", "StreamItem", "Time", "frame_spans", "lint_stream"]
