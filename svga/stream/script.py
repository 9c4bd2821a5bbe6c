"""Protocol layer (svga.stream): the command-script text format, a stream (:mod:`svga.stream.items`) written
by hand, and the format a capture's text dump prints.

One item per line; ``#`` starts a comment; blank lines are ignored::

    mode 800x600            # WIDTH/HEIGHT (and BITS_PER_PIXEL: mode 800x600x32)
    refresh                 # a display refresh (a screendump)
    RECT_FILL color=0xff0000 x=0 y=0 width=64 height=64
    DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=1 height=1 image=hex:ff0000ff
    raw 0x0 0x1e            # FIFO words as they are: unknown ids, zero padding
    cursor 100 200 show     # CURSOR_X/Y, then CURSOR_ON (show | hide; omitted: not written)
    sync                    # a SYNC write: the device runs the FIFO

A command line is the command's table name and every fixed field as ``name=value``, as
:meth:`svga.commands.Command.text` prints them (decimal or 0x-hex, negative for signed
fields); tails (cursor masks, images, payloads) are ``name=hex:<bytes>`` or ``name=zeros``,
their size following from the fields. Each line is checked by encoding it with the
command table, so a line that parses is a command the protocol layer can send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from svga.commands import MAX_DATASIZE, Command, CommandSpec, decode, encode, spec_for
from svga.errors import ProtocolError, SVGAError
from svga.stream.items import CursorMove, Event, Mode, Position, Raw, Refresh, StreamItem, Sync

ScriptItem = StreamItem
"""A script line: its :class:`~svga.stream.items.Position` (file and line) and its event."""

_MODE = re.compile(r"(\d+)x(\d+)(?:x(\d+))?", re.IGNORECASE)
DEVICE_WORDS = ("mode", "sync", "refresh", "cursor", "raw")


class ScriptError(SVGAError):
    """A script line that does not parse: ``FILE:LINE: what is wrong``."""


class _LineError(Exception):
    """What is wrong with one line (the caller adds the file and line)."""


def parse_script(text: str, name: str = "<script>") -> list[ScriptItem]:
    """The items of a command script; raises :class:`ScriptError` at the first bad line."""
    items: list[ScriptItem] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        try:
            event = parse_line(body)
        except (_LineError, ProtocolError) as e:
            raise ScriptError(f"{name}:{lineno}: {e}") from None
        items.append(ScriptItem(Position(name, line=lineno), event))
    return items


def parse_line(body: str) -> Event:
    """One script line (without its comment) as an event."""
    head, *args = body.split()
    word = head.lower()
    if word == "raw":
        if not args:
            raise _LineError("raw needs at least one FIFO word")
        return Raw(tuple(_number(a, "raw word", 0, 0xFFFFFFFF) for a in args))
    if word == "mode":
        m = _MODE.fullmatch(args[0]) if len(args) == 1 else None
        if m is None:
            raise _LineError(f"mode needs one WIDTHxHEIGHT or WIDTHxHEIGHTxBPP, got {' '.join(args)!r}")
        return Mode(int(m[1]), int(m[2]), int(m[3] or 32))
    if word in ("sync", "refresh"):
        if args:
            raise _LineError(f"{word} takes no arguments, got {' '.join(args)!r}")
        return Sync() if word == "sync" else Refresh()
    if word == "cursor":
        if len(args) not in (2, 3) or (len(args) == 3 and args[2].lower() not in ("show", "hide")):
            raise _LineError(f"cursor needs X Y [show|hide], got {' '.join(args)!r}")
        x = _number(args[0], "cursor x", -(1 << 31), 0xFFFFFFFF)
        y = _number(args[1], "cursor y", -(1 << 31), 0xFFFFFFFF)
        return CursorMove(x, y, None if len(args) == 2 else args[2].lower() == "show")
    return _parse_command(head, args)


def _number(text: str, what: str, lo: int, hi: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise _LineError(f"{what} {text!r} is not a number (decimal or 0x-hex)") from None
    if not lo <= value <= hi:
        raise _LineError(f"{what} {text} is out of range")
    return value


def _parse_command(head: str, args: list[str]) -> Command:
    try:
        spec = spec_for(head)
    except ProtocolError:
        raise _LineError(f"unknown command {head!r} (not in the command table nor one of "
                         f"{', '.join(DEVICE_WORDS)}; write other ids with raw)") from None
    tail_names = {t.name for t in spec.tails}
    values: dict[str, int] = {}
    tails: dict[str, bytes | None] = {}  # None: zeros of the size the fields call for
    for token in args:
        key, eq, text = token.partition("=")
        if not eq or not key:
            raise _LineError(f"{spec.name}: expected field=value, got {token!r}")
        if key in values or key in tails:
            raise _LineError(f"{spec.name}: field {key!r} given twice")
        if key in tail_names:
            tails[key] = _tail(spec, key, text)
        elif key in spec.field_names:
            if text.startswith("hex:") or text == "zeros":
                raise _LineError(f"{spec.name}.{key} is a 32-bit field: give a number, not {text!r}")
            values[key] = _number(text, f"{spec.name}.{key}", -(1 << 31), 0xFFFFFFFF)
        else:
            raise _LineError(f"{spec.name} has no field {key!r}")
    for f in spec.fields:
        if f.name not in values:
            raise _LineError(f"{spec.name} needs field {f.name!r}")
    data: dict[str, bytes] = {}
    for t in spec.tails:
        size = t.size(values)
        in_range = 0 <= size <= MAX_DATASIZE
        if t.name in tails:
            given = tails[t.name]
        elif size == 0 or not in_range:
            given = b""  # an out-of-range size is reported by encode() ("would be N bytes")
        else:
            raise _LineError(f"{spec.name} needs {t.name}=hex:<{size} bytes> or {t.name}=zeros")
        data[t.name] = given if given is not None else bytes(size if in_range else 0)
    # Encoding checks every value and tail size; decoding gives the command exactly as a
    # reader of the FIFO words would see it (signed fields as negative numbers).
    cmd, _ = decode(encode(spec.name, **values, **data))
    return cmd


def _tail(spec: CommandSpec, key: str, text: str) -> bytes | None:
    if text == "zeros":
        return None
    if not text.startswith("hex:"):
        raise _LineError(f"{spec.name}.{key} is a byte string: give {key}=hex:<bytes> or {key}=zeros")
    try:
        return bytes.fromhex(text[4:])
    except ValueError:
        raise _LineError(f"{spec.name}.{key}: {text[4:][:16]!r}... is not an even number of hex "
                         "digits") from None


def format_command(cmd: Command) -> str:
    """A command as a script line: fixed fields as :meth:`Command.text` prints them, tails
    as ``hex:`` bytes (``zeros`` when all zero; omitted when empty)."""
    parts = [cmd.name] + [f"{k}={v}" for k, v in cmd.args.items()]
    for t in cmd.spec.tails:
        data = cmd.tails.get(t.name, b"")
        if not data:
            continue
        parts.append(f"{t.name}=zeros" if not any(data) else f"{t.name}=hex:{data.hex()}")
    return " ".join(parts)


def format_event(event: Event) -> str:
    """Any event a script can hold, as its script line."""
    if isinstance(event, Command):
        return format_command(event)
    if isinstance(event, Raw):
        return "raw " + " ".join(f"0x{w:x}" for w in event.words)
    if isinstance(event, Mode):
        return f"mode {event.width}x{event.height}" + (f"x{event.bpp}" if event.bpp != 32 else "")
    if isinstance(event, Sync):
        return "sync"
    if isinstance(event, Refresh):
        return "refresh"
    if isinstance(event, CursorMove):
        show = "" if event.show is None else " show" if event.show else " hide"
        return f"cursor {event.x} {event.y}{show}"
    raise TypeError(f"{type(event).__name__} has no script form")


def format_script(items: Iterable[ScriptItem | Event]) -> str:
    """Script text for a stream (items or bare events), one line each."""
    lines = [format_event(it.event if isinstance(it, StreamItem) else it) for it in items]
    return "".join(line + "\n" for line in lines)
