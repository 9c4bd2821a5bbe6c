"""Protocol layer (svga.stream): the binary capture format ``.svgacap`` (written down field by field in
docs/capture-format.md 'Binary form').

A fixed 68-byte header with its own CRC32, then chunks, each ``type, length, CRC32,
payload``; a payload is a run of event records. Writing is append-only, one chunk at a
time (:class:`CaptureWriter`), so a crash loses at most the chunk being filled. Reading
(:func:`iter_capture`) is bounded: every length is checked against the file's size and the
device's VRAM before anything is allocated, pixel data is inflated with a cap on its output,
and only one chunk is held at a time. Any problem is a :class:`CaptureError` naming the byte
offset; with ``salvage`` a reader stops quietly at the first bad chunk instead.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from svga.commands import Command, decode
from svga.errors import ProtocolError
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
    inflate,
)
from svga.stream.items import CursorMove, Mode, Position, Raw, Refresh, StreamItem, Sync

MAGIC = b"SVGACAP\x00"
HEADER = struct.Struct("<8sHHBBHIIIIIIIIIIQ")
"""magic, version, header size, kind, profile, reserved, caps, fifo caps, VRAM, FIFO, FB,
max width, max height, start width, start height, start bpp, start time (us)."""
HEADER_SIZE = HEADER.size + 4  # and its CRC32
CHUNK = struct.Struct("<4sII")
"""chunk type, payload length, CRC32 of type and payload."""
EVENTS_CHUNK = b"EVTS"
CHUNK_TARGET = 64 << 10
"""A writer closes a chunk once its payload reaches this size (a crash loses at most one)."""
BACKGROUND_BYTES = 64 << 20
"""Pixel bytes a writer lets its worker thread compress before it waits for them."""
CHUNK_MARGIN = 1 << 20
"""A chunk may hold at most the device's VRAM plus this (a keyframe, compressed, and the
records around it)."""

T_CMD, T_RAW, T_MODE, T_SYNC, T_REFRESH, T_CURSOR, T_REG, T_FIFOREG, T_PIXELS, T_FRAME, T_TIME = range(1, 12)
_U32 = struct.Struct("<I")
_2U32 = struct.Struct("<II")
_3U32 = struct.Struct("<III")
_CURSOR = struct.Struct("<iiB")
_PIXELS = struct.Struct("<IIIIBI")
_U64 = struct.Struct("<Q")
_SHOW = {None: 2, True: 1, False: 0}


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


# -- writing ------------------------------------------------------------------------------------
def encode_header(h: Header) -> bytes:
    kind = DEVICE_KINDS.index(h.kind)
    profile = PROFILE_NAMES.index(h.profile) + 1 if h.profile else 0
    w, hh, b = h.start_mode
    body = HEADER.pack(MAGIC, h.version, HEADER_SIZE, kind, profile, 0, h.capabilities,
                       h.fifo_capabilities, h.vram_size, h.fifo_size, h.fb_size, h.max_width,
                       h.max_height, w, hh, b, h.start_us)
    return body + _U32.pack(zlib.crc32(body))


def encode_event(ev: object, level: int = 6) -> bytes:
    """One event record (docs/capture-format.md 'Records')."""
    if isinstance(ev, Command):
        data = ev.encode()
        return bytes([T_CMD]) + _U32.pack(len(data) // 4) + data
    if isinstance(ev, Raw):
        return bytes([T_RAW]) + _U32.pack(len(ev.words)) + np.array(ev.words, dtype="<u4").tobytes()
    if isinstance(ev, Mode):
        return bytes([T_MODE]) + _3U32.pack(ev.width, ev.height, ev.bpp)
    if isinstance(ev, Sync):
        return bytes([T_SYNC])
    if isinstance(ev, Refresh):
        return bytes([T_REFRESH])
    if isinstance(ev, CursorMove):
        return bytes([T_CURSOR]) + _CURSOR.pack(_s32(ev.x), _s32(ev.y), _SHOW[ev.show])
    if isinstance(ev, RegWrite):
        return bytes([T_REG]) + _2U32.pack(ev.index, ev.value)
    if isinstance(ev, FifoRegWrite):
        return bytes([T_FIFOREG]) + _2U32.pack(ev.index, ev.value)
    if isinstance(ev, Pixels):
        packed = zlib.compress(ev.data, level)
        return (bytes([T_PIXELS]) + _PIXELS.pack(ev.x, ev.y, ev.width, ev.height, int(ev.key), len(packed))
                + packed)
    if isinstance(ev, Frame):
        return bytes([T_FRAME]) + _U32.pack(ev.n)
    if isinstance(ev, Time):
        return bytes([T_TIME]) + _U64.pack(ev.us)
    raise TypeError(f"{type(ev).__name__} has no record in a capture")


def command_head(nwords: int) -> bytes:
    """The first 5 bytes of a command record of ``nwords`` words (the words follow)."""
    return bytes([T_CMD]) + _U32.pack(nwords)


def raw_record(data: bytes | bytearray | memoryview) -> bytes:
    """A raw-words record of little-endian FIFO words ``data``."""
    return bytes([T_RAW]) + _U32.pack(len(data) // 4) + bytes(data)


def pixels_record(x: int, y: int, width: int, height: int, data: bytes, key: bool = False,
                  level: int = 6) -> bytes:
    """A pixels record (:class:`Pixels` without making one): ``data`` is width*height*4 bytes."""
    packed = zlib.compress(data, level)
    return bytes([T_PIXELS]) + _PIXELS.pack(x, y, width, height, int(key), len(packed)) + packed


def pixels_head(x: int, y: int, width: int, height: int, key: bool, zlen: int) -> bytes:
    """The fields of a pixels record before its ``zlen`` bytes of zlib data."""
    return bytes([T_PIXELS]) + _PIXELS.pack(x, y, width, height, int(key), zlen)


def chunk(payload: bytes | bytearray) -> bytes:
    """An events chunk: its 12-byte head (type, length, CRC32) and the payload."""
    return CHUNK.pack(EVENTS_CHUNK, len(payload), zlib.crc32(payload, zlib.crc32(EVENTS_CHUNK))) + payload


def create(path: str | Path, header: Header) -> BinaryIO:
    """A new capture file with its header written (append chunks with :func:`chunk`)."""
    try:
        f = open(path, "wb")  # noqa: SIM115 - the caller closes it
    except OSError as e:
        raise CaptureError(f"cannot write {path}: {e.strerror or e}") from None
    f.write(encode_header(header))
    f.flush()
    return f


class CaptureWriter:
    """Appends a capture to a file, one checksummed chunk at a time.

    ``add`` buffers an event's record; once the buffer reaches :data:`CHUNK_TARGET` it is
    written as a chunk and flushed to the OS. ``flush`` writes what is buffered (a signal
    handler calls it); ``close`` flushes and closes."""

    def __init__(self, path: str | Path, header: Header, level: int = 6, background: bool = False) -> None:
        self.path = str(path)
        try:
            self._f: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise CaptureError(f"cannot write {path}: {e.strerror or e}") from None
        self._f.write(encode_header(header))
        self._f.flush()
        self._buf: list[bytes | Future[bytes]] = []
        self._size = self._waiting = 0
        self.level = level
        self.events = 0
        # Pixels compressed on a worker thread (zlib releases the GIL), in order, so a recording
        # driver does not wait for them; flush() waits.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="svgacap") if background else None

    def add(self, ev: object) -> None:
        if self._pool is not None and isinstance(ev, Pixels) and len(ev.data) >= 4096:
            self._buf.append(self._pool.submit(encode_event, ev, self.level))
            self._waiting += len(ev.data)
            if self._waiting >= BACKGROUND_BYTES:
                self.flush()
            self.events += 1
            return
        else:
            record = encode_event(ev, self.level)
            self._buf.append(record)
            self._size += len(record)
        self.events += 1
        if self._size >= CHUNK_TARGET:
            self.flush()

    def flush(self) -> None:
        if self._f is None or not self._buf:
            return
        payload = b"".join(p if isinstance(p, bytes) else p.result() for p in self._buf)
        self._buf.clear()
        self._size = self._waiting = 0
        self._f.write(CHUNK.pack(EVENTS_CHUNK, len(payload), zlib.crc32(EVENTS_CHUNK + payload)) + payload)
        self._f.flush()

    def close(self) -> None:
        if self._f is None:
            return
        self.flush()
        self._f.close()
        self._f = None
        if self._pool is not None:
            self._pool.shutdown()


def write_capture(path: str | Path, capture: Capture) -> None:
    w = CaptureWriter(path, capture.header)
    try:
        for item in capture.items:
            w.add(item.event)
    finally:
        w.close()


# -- reading ------------------------------------------------------------------------------------
def decode_header(data: bytes, name: str) -> Header:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise CaptureError(f"{name}@0: not a capture (bad magic {data[:8]!r}, want {MAGIC!r})")
    if len(data) < 12:
        raise CaptureError(f"{name}@8: the file ends inside the header")
    version, size = struct.unpack_from("<HH", data, 8)
    if version != FORMAT_VERSION:
        raise CaptureError(f"{name}@8: format version {version} is unknown (this reader knows "
                           f"{FORMAT_VERSION})")
    if size != HEADER_SIZE:
        raise CaptureError(f"{name}@10: header size {size}, version {FORMAT_VERSION} has {HEADER_SIZE}")
    if len(data) < HEADER_SIZE:
        raise CaptureError(f"{name}@{len(data)}: the file ends inside the {HEADER_SIZE}-byte header")
    (crc,) = _U32.unpack_from(data, HEADER.size)
    if zlib.crc32(data[: HEADER.size]) != crc:
        raise CaptureError(f"{name}@{HEADER.size}: header checksum mismatch")
    f = HEADER.unpack_from(data)
    kind, profile = f[3], f[4]
    if kind >= len(DEVICE_KINDS):
        raise CaptureError(f"{name}@12: device kind {kind} is unknown")
    if profile > len(PROFILE_NAMES):
        raise CaptureError(f"{name}@13: profile {profile} is unknown")
    return Header(version, DEVICE_KINDS[kind], PROFILE_NAMES[profile - 1] if profile else "", f[6], f[7],
                  f[8], f[9], f[10], f[11], f[12], (f[13], f[14], f[15]), f[16])


@dataclass
class _Reader:
    name: str
    header: Header
    pixel_limit: int

    def records(self, payload: bytes, base: int) -> Iterator[StreamItem]:
        """The events of one chunk's payload; ``base`` is the payload's file offset."""
        pos, n = 0, len(payload)
        while pos < n:
            where = base + pos
            tag = payload[pos]
            try:
                ev, pos = self._record(tag, payload, pos + 1)
            except (_Bad, ProtocolError) as e:
                raise CaptureError(f"{self.name}@{where}: {e}") from None
            yield StreamItem(Position(self.name, offset=where), ev)

    def _record(self, tag: int, p: bytes, pos: int) -> tuple[object, int]:
        n = len(p)

        def fields(st: struct.Struct, what: str) -> tuple:
            if pos + st.size > n:
                raise _Bad(f"{what} record runs past the end of its chunk")
            return st.unpack_from(p, pos)

        if tag in (T_CMD, T_RAW):
            (count,) = fields(_U32, "a command")
            pos += 4
            if pos + 4 * count > n:
                raise _Bad(f"a {count}-word command record runs past the end of its chunk")
            words = np.frombuffer(p, dtype="<u4", count=count, offset=pos)
            pos += 4 * count
            if tag == T_RAW:
                return Raw(tuple(words.tolist())), pos
            if count == 0:
                raise _Bad("a command record of zero words")
            cmd, length = decode(words)
            if length != count:
                raise _Bad(f"{cmd.name} is {length} words, its record holds {count}")
            return cmd, pos
        if tag == T_MODE:
            w, h, bpp = fields(_3U32, "a mode")
            self._check_dims(w, h, "mode")
            return Mode(w, h, bpp), pos + _3U32.size
        if tag == T_SYNC:
            return Sync(), pos
        if tag == T_REFRESH:
            return Refresh(), pos
        if tag == T_CURSOR:
            x, y, show = fields(_CURSOR, "a cursor")
            if show > 2:
                raise _Bad(f"cursor show byte {show} is not 0, 1 or 2")
            return CursorMove(x, y, {0: False, 1: True, 2: None}[show]), pos + _CURSOR.size
        if tag in (T_REG, T_FIFOREG):
            index, value = fields(_2U32, "a register")
            return (RegWrite if tag == T_REG else FifoRegWrite)(index, value), pos + _2U32.size
        if tag == T_PIXELS:
            x, y, w, h, flags, zlen = fields(_PIXELS, "a pixels")
            pos += _PIXELS.size
            self._check_dims(x + w, y + h, "pixels rectangle")
            size = w * h * 4
            if size > self.pixel_limit:
                raise _Bad(f"pixels {w}x{h} ({size} bytes) are more than the device's "
                           f"{self.pixel_limit}-byte VRAM")
            if pos + zlen > n:
                raise _Bad(f"pixel data of {zlen} bytes runs past the end of its chunk")
            data = inflate(p[pos: pos + zlen], size, "pixel data")
            return Pixels(x, y, w, h, data, bool(flags & 1)), pos + zlen
        if tag == T_FRAME:
            (frame,) = fields(_U32, "a frame")
            return Frame(frame), pos + 4
        if tag == T_TIME:
            (us,) = fields(_U64, "a time")
            return Time(us), pos + 8
        raise _Bad(f"unknown record type {tag}")

    def _check_dims(self, w: int, h: int, what: str) -> None:
        mw, mh = self.header.max_width, self.header.max_height
        if mw and mh and (w > mw or h > mh):
            raise _Bad(f"{what} reaches {w}x{h}, beyond the device's largest mode {mw}x{mh}")


def iter_capture(path: str | Path, *, salvage: bool = False,
                 on_salvage: Callable[[str], None] | None = None) -> tuple[Header, Iterator[StreamItem]]:
    """The header and a lazy iterator over the items of a binary capture, one chunk in
    memory at a time. With ``salvage`` a damaged chunk ends the stream (``on_salvage`` gets
    the one-line reason) instead of raising."""
    name = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    except OSError as e:
        raise CaptureError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        total = os.fstat(f.fileno()).st_size
        header = decode_header(f.read(HEADER_SIZE), name)
    except BaseException:
        f.close()
        raise
    limit = header.vram_size or DEFAULT_PIXEL_LIMIT
    reader = _Reader(name, header, limit)
    max_chunk = limit + CHUNK_MARGIN

    def chunks() -> Iterator[StreamItem]:
        offset = HEADER_SIZE
        with f:
            while offset < total:
                try:
                    payload = _chunk(f, name, offset, total, max_chunk)
                    items = list(reader.records(payload, offset + CHUNK.size))
                except CaptureError as e:
                    if not salvage:
                        raise
                    if on_salvage is not None:
                        on_salvage(str(e))
                    return
                yield from items
                offset += CHUNK.size + len(payload)

    return header, chunks()


def _chunk(f: BinaryIO, name: str, offset: int, total: int, max_chunk: int) -> bytes:
    head = f.read(CHUNK.size)
    if len(head) < CHUNK.size:
        raise CaptureError(f"{name}@{offset}: the file ends inside a chunk header")
    kind, length, crc = CHUNK.unpack(head)
    if kind != EVENTS_CHUNK:
        raise CaptureError(f"{name}@{offset}: unknown chunk type {kind!r}")
    if length == 0:
        raise CaptureError(f"{name}@{offset + 4}: a chunk of length zero")
    room = total - offset - CHUNK.size
    if length > room:
        raise CaptureError(f"{name}@{offset + 4}: a chunk of {length} bytes, only {room} are left in "
                           "the file (truncated?)")
    if length > max_chunk:
        raise CaptureError(f"{name}@{offset + 4}: a chunk of {length} bytes, more than the device's VRAM "
                           f"plus {CHUNK_MARGIN} bytes")
    payload = f.read(length)
    if zlib.crc32(kind + payload) != crc:
        raise CaptureError(f"{name}@{offset + 8}: chunk checksum mismatch")
    return payload


def read_capture(path: str | Path, *, salvage: bool = False,
                 on_salvage: Callable[[str], None] | None = None) -> Capture:
    header, items = iter_capture(path, salvage=salvage, on_salvage=on_salvage)
    return Capture(header, list(items))


def is_binary(path: str | Path) -> bool:
    """Whether a file starts with the capture magic."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False
