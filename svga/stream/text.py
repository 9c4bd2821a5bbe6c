"""Protocol layer (svga.stream): a capture's text form, the command-script grammar of
:mod:`svga.stream.script` with the lines a capture adds. Every command script is a capture in
this form; these lines are new (docs/capture-format.md 'Text form')::

    capture kind=qemu profile=qemu caps=0x3 fifo_caps=0x0 vram=16777216 fifo=65536 fb=16777216 \\
max=2368x1770 start=0x0x0 start_us=0          # the header (optional; first item if given)
    frame 3                  # frame 3 starts here (a replay screenshots each frame at its end)
    time 0.016667            # seconds since the start (microsecond resolution)
    reg ENABLE=1             # any register write, by name or index (reg 1792=0x5)
    fiforeg CURSOR_X=100     # a FIFO register write (cursor bypass 3)
    pixels 0 0 64 48 png=cat.png          # CPU-written pixels: a PNG beside the capture ...
    pixels 8 8 2 2 zlib=eNpjYEAFAAAQAAE=   # ... or base64 of zlib of 0x00RRGGBB words (black)
    pixels 0 0 800 600 zlib=... key       # a keyframe: the whole screen as it is

A ``pixels`` line writes the framebuffer (the CPU's drawing); the UPDATE after it shows it.
A PNG is named relative to the capture's folder and may not leave it; its size must be the
rectangle's.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from svga import pixels as px
from svga.errors import ProtocolError
from svga.registers import FifoReg, Reg
from svga.stream.capture import (
    DEFAULT_PIXEL_LIMIT,
    DEVICE_KINDS,
    FORMAT_VERSION,
    PROFILE_NAMES,
    Capture,
    CaptureError,
    FifoRegWrite,
    Frame,
    Header,
    Pixels,
    RegWrite,
    Time,
    _Bad,
    fifo_reg_name,
    inflate,
    reg_name,
)
from svga.stream.items import Event, Position, StreamItem
from svga.stream.script import _LineError, format_event, parse_line

CAPTURE_WORDS = ("capture", "frame", "time", "reg", "fiforeg", "pixels")
_WXH = re.compile(r"(\d+)x(\d+)(?:x(\d+))?")


def parse_capture(text: str, name: str = "<capture>", base_dir: str | Path | None = None) -> Capture:
    """A capture from its text form; :class:`CaptureError` ``FILE:LINE: ...`` at the first bad
    line. ``base_dir`` is where ``png=`` files are (default: the folder of ``name``)."""
    folder = Path(base_dir) if base_dir is not None else Path(name).parent
    header: Header | None = None
    items: list[StreamItem] = []
    limit = DEFAULT_PIXEL_LIMIT
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        try:
            head = body.split(None, 1)[0].lower()
            if head == "capture":
                if header is not None or items:
                    raise _Bad("the capture line must come once, before every other item")
                header = _header(body.split()[1:])
                if header.vram_size:
                    limit = header.vram_size
                continue
            event = _event(head, body, folder, limit)
        except (_Bad, _LineError, ProtocolError) as e:
            raise CaptureError(f"{name}:{lineno}: {e}") from None
        items.append(StreamItem(Position(name, line=lineno), event))
    return Capture(header or Header(), items)


def _event(head: str, body: str, folder: Path, limit: int) -> Event:
    args = body.split()[1:]
    if head == "frame":
        if len(args) != 1:
            raise _Bad(f"frame needs one frame number, got {' '.join(args)!r}")
        return Frame(_int(args[0], "frame number", 0, 0xFFFFFFFF))
    if head == "time":
        if len(args) != 1:
            raise _Bad(f"time needs seconds, got {' '.join(args)!r}")
        try:
            us = Decimal(args[0]) * 1_000_000
        except InvalidOperation:
            raise _Bad(f"time {args[0]!r} is not a number of seconds") from None
        if not us.is_finite() or us != us.to_integral_value() or not 0 <= us < 1 << 63:
            raise _Bad(f"time {args[0]} is not a whole number of microseconds >= 0")
        return Time(int(us))
    if head in ("reg", "fiforeg"):
        enum = Reg if head == "reg" else FifoReg
        if len(args) != 1 or "=" not in args[0]:
            raise _Bad(f"{head} needs NAME=VALUE, got {' '.join(args)!r}")
        key, _, value = args[0].partition("=")
        index = _index(key, enum, head)
        if head == "fiforeg" and index <= FifoReg.STOP:
            raise _Bad(f"fiforeg {key}: the ring pointers MIN, MAX, NEXT_CMD and STOP belong to the "
                       "replaying driver")
        v = _int(value, f"{head} {key}", 0, 0xFFFFFFFF)
        return RegWrite(index, v) if head == "reg" else FifoRegWrite(index, v)
    if head == "pixels":
        return _pixels(args, folder, limit)
    return parse_line(body)


def _int(text: str, what: str, lo: int, hi: int) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise _Bad(f"{what} {text!r} is not a number (decimal or 0x-hex)") from None
    if not lo <= v <= hi:
        raise _Bad(f"{what} {text} is out of range {lo}..{hi}")
    return v


def _index(key: str, enum: type[Reg] | type[FifoReg], head: str) -> int:
    if key.upper() in enum.__members__:
        return int(enum[key.upper()])
    try:
        return _int(key, f"{head} index", 0, 0xFFFF)
    except _Bad:
        raise _Bad(f"{head}: {key!r} is no register name nor index") from None


def _pixels(args: list[str], folder: Path, limit: int) -> Pixels:
    key = bool(args) and args[-1] == "key"
    if key:
        args = args[:-1]
    if len(args) != 5:
        raise _Bad("pixels needs X Y WIDTH HEIGHT and png=FILE.png or zlib=BASE64 [key]")
    names = ("x", "y", "width", "height")
    x, y, w, h = (_int(a, what, 0, 0xFFFF) for a, what in zip(args[:4], names, strict=True))
    size = w * h * 4
    if size > limit:
        raise _Bad(f"pixels {w}x{h} ({size} bytes) are more than the device's {limit}-byte VRAM")
    kind, eq, value = args[4].partition("=")
    if not eq or kind not in ("png", "zlib"):
        raise _Bad(f"pixels data must be png=FILE.png or zlib=BASE64, got {args[4][:40]!r}")
    if kind == "zlib":
        try:
            packed = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _Bad("pixels zlib= data is not base64") from None
        data = inflate(packed, size, "pixels zlib= data")
    else:
        data = _png(value, folder, w, h)
    return Pixels(x, y, w, h, data, key)


def _png(value: str, folder: Path, w: int, h: int) -> bytes:
    from PIL import Image, UnidentifiedImageError

    rel = Path(value)
    base = folder.resolve()
    path = (base / rel).resolve()
    if rel.is_absolute() or not path.is_relative_to(base):
        raise _Bad(f"png={value} is outside the capture's folder {folder}")
    if not path.is_file():
        raise _Bad(f"png={value}: no such file in {folder}")
    try:
        with Image.open(path) as img:
            if img.size != (w, h):
                raise _Bad(f"png={value} is {img.size[0]}x{img.size[1]}, the rectangle {w}x{h}")
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise _Bad(f"png={value} is not a readable PNG ({e})") from None
    return px.from_rgb(rgb).astype("<u4").tobytes()


def _header(args: list[str]) -> Header:
    fields: dict[str, str] = {}
    for token in args:
        k, eq, v = token.partition("=")
        if not eq:
            raise _Bad(f"capture: expected key=value, got {token!r}")
        fields[k] = v
    known = {"version", "kind", "profile", "caps", "fifo_caps", "vram", "fifo", "fb", "max", "start",
             "start_us"}
    extra = sorted(set(fields) - known)
    if extra:
        raise _Bad(f"capture: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")
    kind = fields.get("kind", "script")
    if kind not in DEVICE_KINDS:
        raise _Bad(f"capture: kind {kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    profile = fields.get("profile", "")
    if profile and profile not in PROFILE_NAMES:
        raise _Bad(f"capture: profile {profile!r} is not one of {', '.join(PROFILE_NAMES)}")
    version = _int(fields.get("version", str(FORMAT_VERSION)), "capture version", 1, 0xFFFF)
    if version != FORMAT_VERSION:
        raise _Bad(f"capture: version {version} is not one this reader knows ({FORMAT_VERSION})")

    def wxh(key: str, parts: int) -> tuple[int, ...]:
        m = _WXH.fullmatch(fields.get(key, "x".join(["0"] * parts)))
        if m is None or (parts == 2) != (m[3] is None):
            raise _Bad(f"capture: {key}= wants {'WxH' if parts == 2 else 'WxHxBPP'}")
        return tuple(int(g) for g in m.groups() if g is not None)

    num = {k: _int(fields.get(k, "0"), f"capture {k}", 0, 0xFFFFFFFF)
           for k in ("caps", "fifo_caps", "vram", "fifo", "fb")}
    mw, mh = wxh("max", 2)
    sw, sh, sb = wxh("start", 3)
    return Header(version, kind, profile, num["caps"], num["fifo_caps"], num["vram"], num["fifo"],
                  num["fb"], mw, mh, (sw, sh, sb), _int(fields.get("start_us", "0"), "start_us", 0, 1 << 63))


def format_header(h: Header) -> str:
    w, hh, b = h.start_mode
    profile = f" profile={h.profile}" if h.profile else ""
    return (f"capture version={h.version} kind={h.kind}{profile} caps=0x{h.capabilities:x} "
            f"fifo_caps=0x{h.fifo_capabilities:x} vram={h.vram_size} fifo={h.fifo_size} fb={h.fb_size} "
            f"max={h.max_width}x{h.max_height} start={w}x{hh}x{b} start_us={h.start_us}")


def format_capture_event(event: object) -> str:
    """Any capture event as its text line (pixels as inline zlib)."""
    if isinstance(event, Frame):
        return f"frame {event.n}"
    if isinstance(event, Time):
        return f"time {event.us // 1_000_000}.{event.us % 1_000_000:06d}"
    if isinstance(event, RegWrite):
        return f"reg {reg_name(event.index)}=0x{event.value:x}"
    if isinstance(event, FifoRegWrite):
        return f"fiforeg {fifo_reg_name(event.index)}=0x{event.value:x}"
    if isinstance(event, Pixels):
        packed = base64.b64encode(zlib.compress(event.data, 6)).decode("ascii")
        return (f"pixels {event.x} {event.y} {event.width} {event.height} zlib={packed}"
                + (" key" if event.key else ""))
    return format_event(event)  # type: ignore[arg-type]


def format_capture(capture: Capture) -> str:
    """The text form of a capture: its header line, then one line per event."""
    lines = [format_header(capture.header)]
    lines += [format_capture_event(it.event) for it in capture.items]
    return "".join(line + "\n" for line in lines)
