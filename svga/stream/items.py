"""Protocol layer (svga.stream): a command stream as a sequence of (position, event), the one
stream model of command scripts, captures, the recorder, ``svga check`` and the differential
tests.

A stream is what a driver does to the device in order: FIFO commands it writes (decoded
:class:`svga.commands.Command` objects, or :class:`Raw` 32-bit words for what the command
table cannot express: unknown ids, zero padding, a command split over several items) and
device actions between them (:class:`Mode`, :class:`Sync`, :class:`Refresh`,
:class:`CursorMove`). Each item carries a :class:`Position`: a line of a script
(:mod:`svga.stream.script`) or a byte offset in a binary file of FIFO words.

:func:`normalize` turns a stream into what the device sees: all FIFO words in one run,
decoded with :func:`svga.commands.decode` (the one command table, so no length is counted
twice), each command placed at the moment its last word is written, with the device
actions in between. Words the table cannot decode become :class:`Unknown`,
:class:`Truncated` or :class:`Undecodable`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from svga.commands import BY_ID, Command, decode
from svga.errors import IncompleteCommand, ProtocolError, SVGAError, UnknownCommand
from svga.stream.value import Value, init


class Position(Value):
    """Where an item comes from: ``source`` (a file name) and a 1-based ``line`` of a
    script, or a byte ``offset`` into binary FIFO words. Prints as ``FILE:LINE`` or
    ``FILE@OFFSET``."""

    __slots__ = ("source", "line", "offset")
    source: str
    line: int | None
    offset: int | None

    def __init__(self, source: str, line: int | None = None, offset: int | None = None) -> None:
        init(self, source, line, offset)

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}"
        if self.offset is not None:
            return f"{self.source}@{self.offset}"
        return self.source

    def word(self, index: int) -> Position:
        """The position of word ``index`` of an item at this position: its byte offset in
        binary input; the same line in a script."""
        if self.offset is None or index == 0:
            return self
        return Position(self.source, self.line, self.offset + 4 * index)

    def sort_key(self) -> tuple[str, int]:
        return self.source, self.line if self.line is not None else self.offset or 0


# -- events a stream is made of (immutable values: svga/stream/value.py) -------------------------
class Raw(Value):
    """FIFO words written as they are (little-endian 32-bit values)."""

    __slots__ = ("words",)
    words: tuple[int, ...]

    def __init__(self, words: tuple[int, ...]) -> None:
        init(self, words)


class Mode(Value):
    """A mode set: WIDTH, HEIGHT and BITS_PER_PIXEL register writes."""

    __slots__ = ("width", "height", "bpp")
    width: int
    height: int
    bpp: int

    def __init__(self, width: int, height: int, bpp: int = 32) -> None:
        init(self, width, height, bpp)


class Sync(Value):
    """A SYNC register write: the device runs the FIFO now."""

    __slots__ = ()


class Refresh(Value):
    """A display refresh (a screendump, a UI redraw)."""

    __slots__ = ()


class CursorMove(Value):
    """CURSOR_X/CURSOR_Y register writes, then CURSOR_ON (1 = show, 0 = hide) unless
    ``show`` is None."""

    __slots__ = ("x", "y", "show")
    x: int
    y: int
    show: bool | None

    def __init__(self, x: int, y: int, show: bool | None = None) -> None:
        init(self, x, y, show)


# -- what normalize() makes of words the command table cannot decode ----------------------------
class Unknown(Value):
    """A word that is no command id of the table (0 is INVALID_CMD). Its length is unknown,
    so ``nwords`` covers it and what was skipped with it: a run of zero words, or an
    unknown id and the words after it up to the next item."""

    __slots__ = ("cmd_id", "nwords")
    cmd_id: int
    nwords: int

    def __init__(self, cmd_id: int, nwords: int = 1) -> None:
        init(self, cmd_id, nwords)


class Truncated(Value):
    """The stream ends inside a command: ``needed`` words, only ``available`` there."""

    __slots__ = ("name", "needed", "available")
    name: str
    needed: int
    available: int

    def __init__(self, name: str, needed: int, available: int) -> None:
        init(self, name, needed, available)


class Undecodable(Value):
    """A command whose length the table cannot give (a tail size out of range); the
    ``nwords`` words from it to the end are not decoded."""

    __slots__ = ("name", "reason", "nwords")
    name: str
    reason: str
    nwords: int

    def __init__(self, name: str, reason: str, nwords: int) -> None:
        init(self, name, reason, nwords)


DEVICE_EVENTS = (Mode, Sync, Refresh, CursorMove)
FIFO_EVENTS = (Command, Unknown, Truncated, Undecodable)
Event = Command | Raw | Mode | Sync | Refresh | CursorMove | Unknown | Truncated | Undecodable


class StreamItem(NamedTuple):
    position: Position
    event: Event


def command_words(cmd: Command) -> list[int]:
    """The FIFO words of a command, as :meth:`Command.encode` writes them."""
    return np.frombuffer(cmd.encode(), dtype="<u4").tolist()


def read_binary(data: bytes, name: str) -> list[StreamItem]:
    """A file of raw little-endian FIFO words, as one :class:`Raw` item at offset 0."""
    if len(data) % 4:
        raise SVGAError(f"{name} is {len(data)} bytes, not a whole number of 32-bit FIFO words")
    if not data:
        return []
    words = tuple(np.frombuffer(data, dtype="<u4").tolist())
    return [StreamItem(Position(name, offset=0), Raw(words))]


def normalize(items: Iterable[StreamItem]) -> list[StreamItem]:
    """The stream as the device sees it: FIFO events in the order their last word is
    written, device events between them; no :class:`Raw` items are left.

    An unknown non-zero id skips the words up to the start of the next item (a script's
    next line), since its length is unknown; a run of zero words is one :class:`Unknown`
    and decoding goes on after it. A command still incomplete at the end becomes
    :class:`Truncated`, after every device event."""
    words: list[int] = []
    starts: list[int] = []
    where: list[Position] = []
    device: list[tuple[int, StreamItem]] = []
    for item in items:
        ev = item.event
        if isinstance(ev, DEVICE_EVENTS):
            device.append((len(words), item))
            continue
        if isinstance(ev, Command):
            ws = command_words(ev)
        elif isinstance(ev, Raw):
            ws = list(ev.words)
        else:
            raise TypeError(f"not an event a stream is written with: {ev!r}")
        if not ws:
            continue
        starts.append(len(words))
        where.append(item.position)
        words += ws
    fifo = _decode(np.array(words, dtype="<u4"), starts, where)
    out: list[StreamItem] = []
    i = 0
    for written, item in device:
        while i < len(fifo) and fifo[i][0] <= written:
            out.append(fifo[i][1])
            i += 1
        out.append(item)
    out += [entry[1] for entry in fifo[i:]]
    return out


def _decode(words: np.ndarray, starts: Sequence[int], where: Sequence[Position]
            ) -> list[tuple[float, StreamItem]]:
    """(index of the word after the event's last, item) for every FIFO event."""

    def position(index: int) -> Position:
        k = bisect.bisect_right(starts, index) - 1
        return where[k].word(index - starts[k])

    out: list[tuple[float, StreamItem]] = []
    n, pos = len(words), 0
    while pos < n:
        try:
            cmd, length = decode(words, pos)
        except UnknownCommand as e:
            end = pos + 1
            if e.cmd_id == 0:
                while end < n and words[end] == 0:
                    end += 1
            else:
                k = bisect.bisect_right(starts, pos)
                end = starts[k] if k < len(starts) else n
            out.append((end, StreamItem(position(pos), Unknown(e.cmd_id, end - pos))))
            pos = end
            continue
        except IncompleteCommand as e:
            out.append((math.inf, StreamItem(position(pos), Truncated(e.name, e.needed, e.available))))
            break
        except ProtocolError as e:
            name = BY_ID[int(words[pos])].name
            out.append((n, StreamItem(position(pos), Undecodable(name, str(e), n - pos))))
            break
        out.append((pos + length, StreamItem(position(pos), cmd)))
        pos += length
    return out
