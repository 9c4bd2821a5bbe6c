"""Transport layer: a transport that records what the driver does to any other transport (model,
qemu, pci) into a ``.svgacap`` (:mod:`svga.stream.binary`). ``open_device(..., record=FILE)``
(svga/device.py) wraps its transport in it.

    from svga.transport.recorder import RecordingTransport
    from svga.device import Device

    dev = Device(RecordingTransport(inner, "run.svgacap"))   # or open_device(..., record=...)

What it records, in the order the driver does it (docs/capture-format.md 'What a recording
holds'):

- register writes: WIDTH, HEIGHT, BITS_PER_PIXEL written in a row become ``mode``; CURSOR_X,
  CURSOR_Y, CURSOR_ON in a row become ``cursor``; a SYNC write of 1 is ``sync``; every other
  write is ``reg``;
- FIFO commands as committed: when the driver writes NEXT_CMD, the words between the old and
  the new NEXT_CMD (across the wrap) are decoded with the command table; a command split over
  several NEXT_CMD writes is recorded once it is whole; words the table cannot decode are
  ``raw``. The ring pointers are the driver's bookkeeping and are not recorded; other FIFO
  register writes (cursor bypass 3) are ``fiforeg``;
- before each UPDATE, the framebuffer rectangle under it, read from VRAM at that moment; a
  keyframe of the whole screen at the start (when the device is already in a mode) and at each
  mode change (the first ENABLE after it);
- a frame marker and a timestamp at the start and after each SYNC that follows commands.

How it stays cheap (docs/capture-format.md 'What a recording holds'): the driver's FIFO writer
hands every commit to :meth:`RecordingTransport.fifo_commit_listener` (svga/fifo.py, the
commit listener), so FIFO memory is not watched word by word; a commit's words are cut into
commands by the command table's lengths (decoded only for the commands whose length depends on
their fields) and copied straight into the chunk being filled as command records, without
making a Command object; register writes take one comparison on their way. Pixels under an
UPDATE are copied out of VRAM at that moment; large ones are compressed (zlib level 0: stored
blocks) on a worker thread, which also writes the full chunks, so the driver waits only at a
flush. ``svga convert`` (level 6) makes the file small. :func:`install_signal_flush` makes
SIGINT and SIGTERM flush every open recording first, and an exit flushes too, so a crash loses
at most one chunk.
"""

from __future__ import annotations

import atexit
import os
import signal
import struct
import time
import weakref
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import numpy as np

from svga.commands import CODECS, Cmd, decode
from svga.errors import IncompleteCommand, ProtocolError
from svga.registers import INDEX_PORT, VALUE_PORT, Cap, FifoReg, Reg
from svga.stream import binary
from svga.stream.capture import FifoRegWrite as FifoRegEvent
from svga.stream.capture import Frame, Header, RegWrite, Time
from svga.stream.items import CursorMove, Mode, Sync
from svga.transport.base import Memory, Transport

_MODE_REGS = (Reg.WIDTH, Reg.HEIGHT, Reg.BITS_PER_PIXEL)
_CURSOR_REGS = (Reg.CURSOR_X, Reg.CURSOR_Y, Reg.CURSOR_ON)
_PATTERN_FIRST = frozenset((int(Reg.WIDTH), int(Reg.CURSOR_X)))
_LAYOUT_REGS = frozenset(int(r) for r in (Reg.WIDTH, Reg.HEIGHT, Reg.BITS_PER_PIXEL, Reg.FB_OFFSET,
                                          Reg.PITCHLOCK))
_SYNC, _ENABLE, _CONFIG_DONE = int(Reg.SYNC), int(Reg.ENABLE), int(Reg.CONFIG_DONE)
_UNRECORDED_FIFO_REGS = {FifoReg.MIN, FifoReg.MAX, FifoReg.NEXT_CMD, FifoReg.STOP, FifoReg.RESERVED,
                         FifoReg.BUSY}
"""The ring pointers and the reserve/busy handshake: the replaying driver makes its own."""
_UPDATES = frozenset((int(Cmd.UPDATE), int(Cmd.UPDATE_VERBOSE)))
"""Commands whose rectangle's pixels are recorded before them (x, y, width, height: their first
four fields, unsigned: svga/commands.py)."""
_U32 = struct.Struct("<I")
_RECT = struct.Struct("<4I")
_HEADS = [binary.command_head(n) for n in range(64)]
_BIG_PIXELS = 4096
"""Pixel bytes from which compression goes to the worker thread (below, a thread hand-off costs
more than zlib's stored blocks)."""
_OPEN: weakref.WeakSet[RecordingTransport] = weakref.WeakSet()


def _profile_of(inner: Transport, caps: int) -> str:
    profile = getattr(inner, "profile", None)
    name = getattr(profile, "name", None)
    if inner.kind == "model" and name in ("qemu", "qemu-cursor", "vmware"):
        return str(name)
    if caps & Cap.EXTENDED_FIFO:
        return "vmware"
    return "qemu-cursor" if caps & Cap.CURSOR else "qemu"


class _FifoRegisters(Memory):
    """FIFO memory as the driver sees it, watching only writes of the FIFO registers below MIN
    (cursor bypass 3, and the ring set-up); the mapped array is the inner one, so the driver's
    own FIFO writes cost nothing more (commits come through the commit listener)."""

    def __init__(self, inner: Memory, owner: RecordingTransport) -> None:
        self.inner = inner
        self.size = inner.size
        self.owner = owner
        self._mapped = inner.array()
        self.min = 16  # FIFO registers lie below MIN (the first four at least)

    def read(self, offset: int, length: int) -> bytes:
        return self.inner.read(offset, length)

    def read32(self, offset: int) -> int:
        return self.inner.read32(offset)

    def array(self) -> np.ndarray | None:
        return self._mapped

    def flush(self) -> None:
        self.inner.flush()

    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        self.inner.write(offset, data)
        if offset < self.min and offset % 4 == 0:
            src = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else \
                np.ascontiguousarray(data).reshape(-1).view(np.uint8)
            if len(src) == 4:
                self._register(offset // 4, int(src.view("<u4")[0]))

    def write32(self, offset: int, value: int) -> None:
        self.inner.write32(offset, value)
        if offset < self.min and offset % 4 == 0:
            self._register(offset // 4, value & 0xFFFFFFFF)

    def _register(self, reg: int, value: int) -> None:
        if reg == FifoReg.MIN:
            self.min = max(value, 16)
        elif reg == FifoReg.STOP:
            self.owner.restart()  # only a driver laying out the ring writes STOP
        elif reg not in _UNRECORDED_FIFO_REGS:
            self.owner.emit(FifoRegEvent(reg, value))


_STORED_MAX = 65535
"""Bytes in one deflate stored block (RFC 1951 3.2.4)."""
_ZLIB_HEAD = b"\x78\x01"
"""A zlib header (RFC 1950): deflate, 32 KiB window, no dictionary, the fastest level."""
_BLOCK = struct.Struct("<BHH")
_SMALL_PIXELS = struct.Struct("<BIIIIBIBBBHH")
"""A pixels record's fields, then a zlib header and one stored block's header."""
_ADLER = struct.Struct(">I")


def _stored_size(n: int) -> int:
    """Bytes of a zlib stream of stored blocks holding ``n`` bytes."""
    return 2 + 5 * max(1, -(-n // _STORED_MAX)) + n + 4


def _stored_parts(data: bytes) -> list[bytes | memoryview]:
    """``data`` as a zlib stream of stored blocks (what zlib's level 0 writes: no deflate state
    to set up, which costs more than a small rectangle), without its header and checksum."""
    n = len(data)
    if n <= _STORED_MAX:
        return [_BLOCK.pack(1, n, n ^ 0xFFFF), data]
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for off in range(0, n, _STORED_MAX):
        size = min(_STORED_MAX, n - off)
        parts += [_BLOCK.pack(off + size == n, size, size ^ 0xFFFF), view[off: off + size]]
    return parts


def _adler(data: bytes) -> bytes:
    return _ADLER.pack(zlib.adler32(data))


Part = bytes | bytearray | memoryview | Future


class _Chunks:
    """The chunk being filled (small records in a bytearray, then the parts of large pixel
    records and their checksums, which a worker computes) and the file.

    The worker thread computes the large records' checksums (and compresses them when a level
    above 0 is asked) and writes full chunks, in the order they were handed over; :meth:`flush`
    waits for it. Without a file (a recording kept in memory) the records go to a sink as
    events, read back with the capture reader."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.parts: list[Part] = []
        self.buf = bytearray()
        self.size = 0
        self.waiting = 0
        self.file: BinaryIO | None = None
        self.sink: Callable[[object], None] | None = None
        self.header: Header | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.writes: list[Future[None]] = []

    def open_file(self, path: str, header: Header, background: bool = True) -> None:
        self.header = header
        self.file = binary.create(path, header)
        if background:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="svgacap")

    def open_sink(self, sink: Callable[[object], None], header: Header) -> None:
        self.header = header
        self.sink = sink

    def pixels(self, x: int, y: int, w: int, h: int, data: bytes, key: bool) -> None:
        n = len(data)
        if self.level:
            if self.pool is not None and n >= _BIG_PIXELS:
                record = self.pool.submit(binary.pixels_record, x, y, w, h, data, key, self.level)
                self._hand_over([record], n)
            else:
                self.buf += binary.pixels_record(x, y, w, h, data, key, self.level)
            return
        if n <= _STORED_MAX and (self.pool is None or n < _BIG_PIXELS):
            # One stored block: the record's fields, the zlib header and the block's header in one
            # pack (docs/capture-format.md 'Records'; RFC 1950, RFC 1951 3.2.4).
            fields = _SMALL_PIXELS.pack(binary.T_PIXELS, x, y, w, h, int(key), n + 11, 0x78, 0x01, 1, n,
                                        n ^ 0xFFFF)
            self.buf += b"".join((fields, data, _ADLER.pack(zlib.adler32(data))))
            return
        head = binary.pixels_head(x, y, w, h, key, _stored_size(n)) + _ZLIB_HEAD
        if self.pool is None or n < _BIG_PIXELS:
            self.buf += b"".join([head, *_stored_parts(data), _adler(data)])
            return
        self._hand_over([head, *_stored_parts(data), self.pool.submit(_adler, data)], n)

    def _hand_over(self, parts: list[Part], n: int) -> None:
        self.parts.append(self.buf)
        self.parts += parts
        self.buf = bytearray()
        self.size += n
        self.waiting += n

    def full(self) -> bool:
        return self.size + len(self.buf) >= binary.CHUNK_TARGET

    def close_chunk(self) -> None:
        """Hand the chunk being filled to the worker (or the sink), if it holds anything."""
        if self.header is None:
            return  # not open yet: the events wait
        parts = self.parts + [self.buf]
        self.parts, self.buf, self.size = [], bytearray(), 0
        if not any(isinstance(p, Future) or len(p) for p in parts):
            return
        if self.sink is not None:
            payload = b"".join(_resolved(parts))
            reader = binary._Reader("<recording>", self.header, 1 << 62)
            for item in reader.records(payload, 0):
                self.sink(item.event)
            return
        if self.pool is None:
            self._write(parts)
            return
        self.writes = [f for f in self.writes if not f.done()]
        self.writes.append(self.pool.submit(self._write, parts))
        if self.waiting >= binary.BACKGROUND_BYTES:
            self.wait()

    def _write(self, parts: list[Part]) -> None:
        """On the worker: one chunk, its checksum taken part by part (no copy of the payload)."""
        assert self.file is not None
        ready = _resolved(parts)
        crc = zlib.crc32(binary.EVENTS_CHUNK)
        for p in ready:
            crc = zlib.crc32(p, crc)
        self.file.write(binary.CHUNK.pack(binary.EVENTS_CHUNK, sum(len(p) for p in ready), crc))
        self.file.writelines(ready)
        self.file.flush()

    def wait(self) -> None:
        writes, self.writes = self.writes, []
        for f in writes:
            f.result()
        self.waiting = 0

    def flush(self) -> None:
        self.close_chunk()
        self.wait()

    def close(self) -> None:
        self.flush()
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        if self.file is not None:
            self.file.close()
            self.file = None


def _resolved(parts: list[Part]) -> list[bytes | bytearray | memoryview]:
    return [p.result() if isinstance(p, Future) else p for p in parts]


class RecordingTransport(Transport):
    """``inner`` as the driver sees it, with every write recorded into ``path`` (a ``.svgacap``)
    or handed to ``sink(event)`` (in memory; :attr:`header` is set once the device is
    configured)."""

    def __init__(self, inner: Transport, path: str | None = None, *, level: int = 0,
                 sink: Callable[[object], None] | None = None) -> None:
        if (path is None) == (sink is None):
            raise ValueError("a recording goes to a file (path) or to a sink, one of them")
        self.sink = sink
        self.inner = inner
        self.kind = inner.kind
        self.description = inner.description
        self.path = path
        self.level = level
        self.vram = inner.vram
        self.header: Header | None = None
        self.closed = False
        self._index = 0
        self._pend: list[tuple[int, int]] = []
        self._chunks = _Chunks(level)
        self._carry = bytearray()  # committed words of a command not yet whole
        self._need = 0             # bytes the carry must hold before it is worth decoding
        self._whole: bytes | None = None  # the carried command's record head, when nothing else is due
        self._vram_array = inner.vram.array()
        self._layout: tuple[int, int, int, int] | None = None
        self._mode_changed = False
        self._commands_in_frame = 0
        self._frame = 0
        self._t0 = time.monotonic()
        self.config_done = bool(self._inner_reg(Reg.CONFIG_DONE))
        self.fifo = _FifoRegisters(inner.fifo, self)
        enabled = self._inner_reg(Reg.ENABLE)
        self._start = (self._inner_reg(Reg.WIDTH), self._inner_reg(Reg.HEIGHT),
                       self._inner_reg(Reg.BITS_PER_PIXEL)) if enabled else (0, 0, 0)
        self._start_us = time.time_ns() // 1000
        self.emit(Frame(0))
        self.emit(Time(0))
        if enabled:
            self._keyframe()
        if self.config_done:
            self._open_writer()
        _OPEN.add(self)
        install_signal_flush()

    # -- the inner device, read without disturbing the driver ---------------------------------
    def _inner_reg(self, reg: int) -> int:
        self.inner.port_write(INDEX_PORT, reg)
        value = self.inner.port_read(VALUE_PORT)
        self.inner.port_write(INDEX_PORT, getattr(self, "_index", 0))
        return value

    def __getattr__(self, name: str) -> Any:
        # qtest's qmp(), qemu_output(), the model's refresh() ...: the inner transport's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- BAR0 -------------------------------------------------------------------------------
    def port_read(self, offset: int) -> int:
        return self.inner.port_read(offset)

    def port_write(self, offset: int, value: int) -> None:
        self.inner.port_write(offset, value)
        if offset == INDEX_PORT:
            self._index = value & 0xFFFFFFFF
        elif offset == VALUE_PORT:
            index = self._index
            value &= 0xFFFFFFFF
            if self._pend or index in _PATTERN_FIRST or index == _CONFIG_DONE:
                self._register(index, value)
            else:
                self._plain(index, value)

    def _register(self, index: int, value: int) -> None:
        if index == _CONFIG_DONE:
            self.config_done = bool(value)
        cand = self._pend + [(index, value)]
        regs = tuple(i for i, _ in cand)
        for pattern in (_MODE_REGS, _CURSOR_REGS):
            if pattern[: len(regs)] == regs:
                if len(regs) < len(pattern):
                    self._pend = cand
                    return
                self._pend = []
                if pattern is _MODE_REGS:
                    self._emit(Mode(*(v for _, v in cand)))
                    self._layout = None
                    self._mode_changed = True
                    return
                if cand[2][1] in (0, 1):
                    self._emit(CursorMove(cand[0][1], cand[1][1], bool(cand[2][1])))
                    return
                self._pend = cand[:2]
                break
        if self._pend:
            self._flush_regs()
            self._register(index, value)
            return
        self._plain(index, value)
        if index == _CONFIG_DONE and self.config_done and self.header is None:
            self._open_writer()

    def _plain(self, index: int, value: int) -> None:
        """A register write that starts no mode or cursor pattern, none pending."""
        if index == _SYNC and value == 1:
            self._emit(Sync())
            if self._commands_in_frame:
                self._frame += 1
                self._commands_in_frame = 0
                self._emit(Frame(self._frame))
                self._emit(Time(int((time.monotonic() - self._t0) * 1e6)))
            return
        self._emit(RegWrite(index, value))
        if index in _LAYOUT_REGS:
            self._layout = None
            self._mode_changed = True
        elif index == _ENABLE and value == 1 and self._mode_changed:
            self._mode_changed = False
            self._layout = None
            self._keyframe()

    def _flush_regs(self) -> None:
        pend, self._pend = self._pend, []
        for index, value in pend:
            self._emit(RegWrite(index, value))
            if index in _MODE_REGS:
                self._layout = None
                self._mode_changed = True

    # -- events -----------------------------------------------------------------------------
    def emit(self, ev: object) -> None:
        """Record an event (register writes half-way through a known pattern go first)."""
        if self._pend:
            self._flush_regs()
        self._emit(ev)

    def _emit(self, ev: object) -> None:
        chunks = self._chunks
        chunks.buf += binary.encode_event(ev, self.level)
        if chunks.full():
            chunks.close_chunk()

    def _open_writer(self) -> None:
        caps = self._inner_reg(Reg.CAPABILITIES)
        fifo_caps = self.inner.fifo.read32(FifoReg.CAPABILITIES * 4) if caps & Cap.EXTENDED_FIFO else 0
        header = Header(kind=self.inner.kind if self.inner.kind in ("model", "qemu", "pci") else "pci",
                        profile=_profile_of(self.inner, caps), capabilities=caps,
                        fifo_capabilities=fifo_caps, vram_size=self._inner_reg(Reg.VRAM_SIZE),
                        fifo_size=self._inner_reg(Reg.MEM_SIZE) or self.inner.fifo.size,
                        fb_size=self._inner_reg(Reg.FB_SIZE), max_width=self._inner_reg(Reg.MAX_WIDTH),
                        max_height=self._inner_reg(Reg.MAX_HEIGHT), start_mode=self._start,
                        start_us=self._start_us)
        self.header = header
        if self.sink is not None:
            self._chunks.open_sink(self.sink, header)
        else:
            assert self.path is not None
            self._chunks.open_file(self.path, header)

    # -- FIFO commits (svga/fifo.py's commit listener) ---------------------------------------
    def fifo_commit_listener(self, data: Any) -> None:
        """The words one NEXT_CMD write commits, in FIFO order: every command now whole is
        recorded (a command committed a word at a time, without FIFO_CAP_RESERVE, once its
        last word is in); words the command table cannot decode are recorded raw."""
        carry = self._carry
        if carry:
            # The rest of a command committed word by word: wait until it is whole.
            carry += data if data.__class__ is not np.ndarray else memoryview(data).cast("B")
            if len(carry) < self._need:
                return
            self._carry = bytearray()
            if self._whole is not None and len(carry) == self._need:
                # A fixed-size command, not an UPDATE, now whole: its record as it is.
                chunks = self._chunks
                chunks.buf += self._whole + carry
                self._commands_in_frame += 1
                if chunks.size + len(chunks.buf) >= binary.CHUNK_TARGET:
                    chunks.close_chunk()
                return
            self._commands(memoryview(carry))
            return
        if not self.config_done:
            return
        if len(data) == 4 and not self._pend and data.__class__ is not np.ndarray:
            # The first word of a command committed word by word: its id says how many follow.
            cid = int.from_bytes(data, "little")
            c = CODECS.get(cid)
            if c is not None and c.fixed and 1 < c.nwords < 64:
                self._carry = bytearray(data)
                self._need = 4 * c.nwords
                self._whole = None if cid in _UPDATES else _HEADS[c.nwords]
                return
        self._commands(memoryview(data).cast("B"))

    def _commands(self, words: memoryview) -> None:
        """Record the commands in committed ``words``; keep the start of one not yet whole."""
        if self._pend:
            self._flush_regs()
        chunks = self._chunks
        n = len(words)
        pos = 0
        while pos < n:
            cid = _U32.unpack_from(words, pos)[0]
            c = CODECS.get(cid)
            if c is None:
                chunks.buf += binary.raw_record(words[pos:])  # an unknown id: its length is unknown
                break
            length = 4 * c.nwords
            if n - pos < length:
                self._carry = bytearray(words[pos:])
                self._need = length
                self._whole = None
                break
            if not c.fixed:
                try:
                    length = 4 * decode(np.frombuffer(words[pos:], "<u4"))[1]
                except IncompleteCommand as e:
                    self._carry = bytearray(words[pos:])
                    self._need = 4 * max(e.needed, 1)
                    self._whole = None
                    break
                except ProtocolError:
                    chunks.buf += binary.raw_record(words[pos:])
                    break
            if cid in _UPDATES:
                self._update_pixels(*_RECT.unpack_from(words, pos + 4))
            nw = length >> 2
            # One append, so a signal's flush never finds half a record.
            chunks.buf += b"".join((_HEADS[nw] if nw < 64 else binary.command_head(nw),
                                    words[pos: pos + length]))
            self._commands_in_frame += 1
            pos += length
        if chunks.size + len(chunks.buf) >= binary.CHUNK_TARGET:
            chunks.close_chunk()

    def restart(self) -> None:
        """The driver lays the ring out again: committed words of an unfinished command are
        dropped (the device never runs them)."""
        self._carry = bytearray()
        self._need = 0
        self._whole = None

    # -- pixels -----------------------------------------------------------------------------
    def _mode_layout(self) -> tuple[int, int, int, int]:
        if self._layout is None:
            self._layout = (self._inner_reg(Reg.WIDTH), self._inner_reg(Reg.HEIGHT),
                            self._inner_reg(Reg.BYTES_PER_LINE), self._inner_reg(Reg.FB_OFFSET))
        return self._layout

    def _read_rect(self, x: int, y: int, w: int, h: int) -> bytes:
        width, height, pitch, base = self._mode_layout()
        arr = self._vram_array
        start = base + y * pitch
        if arr is not None:
            if x == 0 and w * 4 == pitch:
                return arr[start: start + h * pitch].tobytes()
            rows = arr[start: start + h * pitch]
        else:
            rows = np.frombuffer(self.inner.vram.read(start, h * pitch), np.uint8)
        return rows.reshape(h, pitch)[:, x * 4: (x + w) * 4].tobytes()

    def _update_pixels(self, x: int, y: int, w: int, h: int) -> None:
        width, height, pitch, base = self._mode_layout()
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, width), min(y + h, height)
        if x0 >= x1 or y0 >= y1 or pitch < width * 4 or base + pitch * height > self.inner.vram.size:
            return
        self._chunks.pixels(x0, y0, x1 - x0, y1 - y0, self._read_rect(x0, y0, x1 - x0, y1 - y0), False)

    def _keyframe(self) -> None:
        width, height, pitch, base = self._mode_layout()
        if not width or not height or pitch < width * 4 or base + pitch * height > self.inner.vram.size:
            return
        if self._pend:
            self._flush_regs()
        self._chunks.pixels(0, 0, width, height, self._read_rect(0, 0, width, height), True)
        if self._chunks.full():
            self._chunks.close_chunk()

    # -- life cycle ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered event out as a chunk (the header too, if not yet written)."""
        if self._pend:
            self._flush_regs()
        if self.header is None and not self.closed:
            self._open_writer()
        self._chunks.flush()
        flush = getattr(self.inner, "flush", None)
        if callable(flush):
            flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._pend:
                self._flush_regs()
            if self._carry:
                self._chunks.buf += binary.raw_record(self._carry)
                self._carry = bytearray()
            if self.header is None:
                self._open_writer()
            self._chunks.close()
        finally:
            self.closed = True
            _OPEN.discard(self)
            self.inner.close()

    def display_image(self, with_cursor: bool = False) -> np.ndarray | None:
        return self.inner.display_image(with_cursor)


# -- flushing on signals and at exit ---------------------------------------------------------------
_installed = False


def _flush_all() -> None:
    for rec in list(_OPEN):
        try:
            if not rec.closed:
                rec.flush()
        except Exception:  # noqa: BLE001 - a flush on the way out must not hide the signal
            pass


def install_signal_flush() -> None:
    """SIGINT and SIGTERM flush every open recording, then do what they did before; an exit
    flushes too. Only the main thread can install handlers (elsewhere: only the exit)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_flush_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                _flush_all()
                if callable(previous):
                    previous(signum, frame)
                    return
                if previous == signal.SIG_IGN:
                    return
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

            signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass
