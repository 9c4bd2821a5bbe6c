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
- FIFO commands as committed: the words the driver committed, read out of the ring (a mapped
  FIFO: model, pci) or handed over at each commit (qtest: svga/fifo.py, the commit listener),
  are decoded with the command table; a command split over several commits is recorded once it
  is whole; words the table cannot decode are ``raw`` (an unknown id: everything read with it).
  The ring pointers are the driver's bookkeeping and are not recorded; other FIFO register
  writes (cursor bypass 3) are ``fiforeg``;
- before each UPDATE, the framebuffer rectangle under it, read from VRAM when the UPDATE is
  read (out of the ring: before the driver's next register access at the latest); a keyframe
  of the whole screen at the start (when the device is already in a mode) and at each mode
  change (the first ENABLE after it);
- a frame marker and a timestamp at the start and after each SYNC that follows commands.

How it stays cheap (docs/capture-format.md 'What a recording holds'): on a mapped FIFO the
driver's FIFO hands the reading of the ring to the recorder (svga/fifo.py 'Ring reader'), so
the driver's own fast paths and compiled cores run as without a recording and a commit costs
the recorder nothing; the words committed since the last read are read at the driver's next
port write, read of STOP or sync (and at a flush), which is before the driver can write over
them. Elsewhere the driver's FIFO writer hands every commit to
:meth:`RecordingTransport.fifo_commit_listener`, asking for whole commits (``whole_commits``:
one call per command even where the kit commits a word at a time). Either way the words are
cut into commands by a compiled splitter (svga/transport/recorder.c, beside its Python twin
:meth:`RecordingTransport._commands`), which writes the records of fixed-size commands, and
of UPDATEs with the pixels under them, straight into the chunk being filled; a lone command
of a fixed size is copied in by the Python code (one dict look-up for its length), and the
rest is cut by the command table's lengths (decoded only for the commands whose length
depends on their fields), without making a Command object; register writes take one
comparison on their way. Pixels under an UPDATE are copied out of VRAM through a view of the
mode's rows kept until the layout changes; a large rectangle of
one colour (a screen just cleared) is written as a few bytes of deflate instead; large ones are
laid out on a worker thread (one per process, kept), which also takes the checksums, writes the
full chunks and, first, cuts an old file at the path down to the header, so the driver waits
only at a flush. ``svga convert`` (level 6) makes the file small. :func:`install_signal_flush`
makes SIGINT and SIGTERM flush every open recording first, and an exit flushes too (after the
interpreter has stopped its worker threads, on the exiting thread), so a crash loses at most one
chunk.
"""

from __future__ import annotations

import atexit
import os
import signal
import stat
import struct
import sys
import time
import weakref
import zlib
from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from svga.commands import CODECS, Cmd, decode
from svga.errors import IncompleteCommand, ProtocolError
from svga.registers import INDEX_PORT, VALUE_PORT, Cap, FifoReg, Reg
from svga.stream import binary
from svga.stream.capture import CaptureError, Frame, Header, RegWrite, Time
from svga.stream.capture import FifoRegWrite as FifoRegEvent
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
_FIXED_BYTES = {_U32.pack(c.id): 4 * c.nwords for c in set(CODECS.values())
                if c.fixed and 0 < c.nwords < 64 and c.id not in _UPDATES}
"""Bytes of each fixed-size command without pixels, by its id's four bytes: a commit of exactly
that many bytes starting with that id is one whole command (its record: a head from _HEADS and
the words)."""
_UPDATE_BYTES = {_U32.pack(c.id): 4 * c.nwords for c in set(CODECS.values()) if c.id in _UPDATES and c.fixed}
_SMALL_RECT = 4096
"""Pixel bytes up to which an UPDATE's rectangle is recorded in place (one stored block)."""
_BIG_PIXELS = 1 << 18
"""Pixel bytes from which a record is made on the worker thread (below, the hand-off and the
worker's turns at the GIL cost the driver more than zlib's checksum)."""
_SOLID_MIN = 1 << 16
"""Pixel bytes from which a rectangle is first checked for being one colour (below, its stored
blocks cost less than the check and the deflate bits)."""
_OPEN: weakref.WeakSet[RecordingTransport] = weakref.WeakSet()
_STOP_OFFSET = 4 * int(FifoReg.STOP)
_NEXT_WORD = int(FifoReg.NEXT_CMD)


# -- the compiled splitter (svga/transport/recorder.c; docs/native.md) ----------------------------
_STAGE_BYTES = binary.CHUNK_TARGET + (1 << 17)
"""The splitter's output buffer: a chunk's worth, and the largest record it writes after the
chunk is nearly full (an UPDATE with 65535 bytes of pixels)."""
_CORE_MIN = 64
"""Bytes of committed words from which the compiled splitter is called (below, one command or
two: the Python code's one-command branch costs less than the call)."""
_core: list[Any] = []


def _table() -> np.ndarray:
    """What the compiled splitter may record alone, by command id: the words of a command of a
    fixed size (negative for an UPDATE: its pixels go first), 0 for the rest (unknown ids, sizes
    that depend on fields: the Python code)."""
    table = np.zeros(256, np.int32)
    for c in set(CODECS.values()):
        if c.fixed and 0 < c.nwords < 64 and 0 <= c.id < 256:
            table[c.id] = -c.nwords if c.id in _UPDATES else c.nwords
    return table


def _splitter() -> Any:
    """The compiled splitter as a ctypes function, or None (SVGA_NATIVE=0, no compiler, a
    big-endian machine: the Python code records everything)."""
    if _core:
        return _core[0]
    fn = None
    if sys.byteorder == "little":
        from svga import native

        lib = native.load(Path(__file__).with_suffix(".c"))
        if lib is not None:
            fn = bind(lib)
    _core.append(fn)
    return fn


def bind(lib: Any) -> Any:
    """The splitter of a loaded library (a ctypes.CDLL of recorder.c), its arguments typed."""
    import ctypes

    fn = lib.svga_rec_split
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ptr, i64, ptr, i64, i64, ptr, i64, ptr, i64, i64, i64, i64, i64, ptr]
    fn.restype = i64
    return fn


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
        self.max = inner.size

    def read(self, offset: int, length: int) -> bytes:
        return self.inner.read(offset, length)

    def read32(self, offset: int) -> int:
        if offset == _STOP_OFFSET:
            # The driver frees ring space only from a STOP it read (svga/fifo.py 'Ring reader'):
            # what it committed is read out of the ring first.
            self.owner.drain_ring()
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
        elif reg == FifoReg.MAX:
            self.max = min(value, self.size)
        elif reg == FifoReg.STOP:
            self.owner.restart(value)  # only a driver laying out the ring writes STOP
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
_ADLER_MOD = 65521
"""Adler-32's modulus (RFC 1950 8.2)."""


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


def _stored_record(head: bytes, data: bytes) -> np.ndarray:
    """On the worker: ``head`` (a pixels record's fields and the zlib header), ``data`` as
    stored blocks, and its checksum, in one buffer: each step is one call that lets go of the
    GIL (the checksum, one copy), so the driver's thread rarely waits for the worker's turns."""
    n = len(data)
    full, last = divmod(n, _STORED_MAX)
    if not last:
        full, last = full - 1, _STORED_MAX  # the last block is the final one
    h = len(head)
    out = np.empty(h + 5 * (full + 1) + n + 4, np.uint8)
    out[:h] = np.frombuffer(head, np.uint8)
    src = np.frombuffer(data, np.uint8)
    at = h + full * (_STORED_MAX + 5)
    if full:
        blocks = out[h: at].reshape(full, _STORED_MAX + 5)
        blocks[:, :5] = np.frombuffer(_BLOCK.pack(0, _STORED_MAX, 0), np.uint8)
        blocks[:, 5:] = src[: full * _STORED_MAX].reshape(full, _STORED_MAX)
    out[at: at + 5] = np.frombuffer(_BLOCK.pack(1, last, last ^ 0xFFFF), np.uint8)
    out[at + 5: at + 5 + last] = src[full * _STORED_MAX:]
    out[at + 5 + last:] = np.frombuffer(_adler(data), np.uint8)
    return out


# -- one colour as deflate (docs/capture-format.md 'What a recording holds') --------------------
def _reversed_bits(code: int, nbits: int) -> int:
    """A Huffman code as it goes into the bit stream: its first (most significant) bit in the
    lowest position (RFC 1951 3.1.1)."""
    return int(format(code, f"0{nbits}b")[::-1], 2)


def _fixed_code(sym: int) -> tuple[int, int]:
    """The fixed literal/length code of ``sym`` (RFC 1951 3.2.6), reversed, and its length."""
    if sym < 144:
        return _reversed_bits(0x30 + sym, 8), 8
    if sym < 256:
        return _reversed_bits(0x190 + sym - 144, 9), 9
    if sym < 280:
        return _reversed_bits(sym - 256, 7), 7
    return _reversed_bits(0xC0 + sym - 280, 8), 8


_CODES = [_fixed_code(s) for s in range(288)]
_LEN_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
             163, 195, 227, 258)
"""The shortest length of each length code 257..285 (RFC 1951 3.2.5), and its extra bits:"""
_LEN_EXTRA = (0,) * 8 + (1,) * 4 + (2,) * 4 + (3,) * 4 + (4,) * 4 + (5,) * 4 + (0,)
_DIST_4 = (_reversed_bits(3, 5), 5)
"""Distance 4: distance code 3, no extra bits, five bits in a fixed block."""
_MATCH_258 = _CODES[285][0] | _DIST_4[0] << 8
"""13 bits: copy 258 bytes from 4 back (length code 285, distance code 3)."""
_MATCHES_8 = sum(_MATCH_258 << (13 * i) for i in range(8)).to_bytes(13, "little")
"""Eight such copies from a byte boundary: 104 bits, 13 whole bytes."""


def _solid_adler(pixel: bytes, count: int) -> int:
    """Adler-32 of ``pixel`` (4 bytes) repeated ``count`` times, without the bytes: with
    n = 4 * count, A = 1 + the sum of the bytes and B = n + the sum of each byte times
    (n + 1 - its 1-based position), both modulo 65521 (RFC 1950 8.2)."""
    n = 4 * count
    a = 1 + count * sum(pixel)
    b = n + sum(p * (count * (n - k) - 2 * count * (count - 1)) for k, p in enumerate(pixel))
    return (b % _ADLER_MOD) << 16 | a % _ADLER_MOD


def _solid_zlib(pixel: bytes, count: int) -> bytes:
    """A zlib stream inflating to ``pixel`` (4 bytes) repeated ``count`` times: one final block
    of fixed Huffman codes holding the four bytes as literals, then copies of 258 bytes from 4
    back, one shorter copy (or one or two literals) for the rest, and the end of the block."""
    out = bytearray(_ZLIB_HEAD)
    acc, pos = 0b011, 3  # BFINAL 1, BTYPE 01: fixed codes

    def put(value: int, nbits: int) -> None:
        nonlocal acc, pos
        acc |= value << pos
        pos += nbits

    for b in pixel:
        put(*_CODES[b])
    copies, rest = divmod(4 * count - 4, 258)
    first = min((-5 * pos) % 8, copies)  # each copy is 13 bits (5 mod 8): this many reach a byte
    for _ in range(first):
        put(_MATCH_258, 13)
    copies -= first
    if copies >= 8:
        out += acc.to_bytes(pos >> 3, "little")
        out += _MATCHES_8 * (copies >> 3)
        acc, pos = 0, 0
        copies &= 7
    for _ in range(copies):
        put(_MATCH_258, 13)
    if rest >= 3:
        i = bisect_right(_LEN_BASE, rest) - 1
        put(*_CODES[257 + i])
        put(rest - _LEN_BASE[i], _LEN_EXTRA[i])
        put(*_DIST_4)
    else:
        for j in range(rest):
            put(*_CODES[pixel[(4 * count - rest + j) % 4]])
    put(*_CODES[256])  # end of block
    out += acc.to_bytes((pos + 7) >> 3, "little")
    out += _ADLER.pack(_solid_adler(pixel, count))
    return bytes(out)


Part = bytes | bytearray | memoryview | np.ndarray | Future

_WORKER: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    """The one thread that writes the recordings of this process, in the order it is handed
    work (made on first use and kept: starting a thread costs a recording's start-up more
    than anything else it does)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = ThreadPoolExecutor(1, thread_name_prefix="svgacap")
    return _WORKER


def _forget_worker() -> None:
    global _WORKER
    _WORKER = None  # a child made by fork has no threads: it makes its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_worker)


class _Chunks:
    """The chunk being filled (small records in a bytearray, then the parts of large pixel
    records and their checksums, which a worker computes) and the file.

    The worker thread cuts an old file at the path down and writes the header, computes the large
    records' checksums (and compresses them when a level above 0 is asked) and writes full
    chunks, in the order they were handed over; :meth:`flush` waits for it. Without a file (a
    recording kept in memory) the records go to a sink as events, read back with the capture
    reader."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.parts: list[Part] = []
        self.buf = bytearray()
        self.size = 0  # bytes of the chunk handed over in parts (large pixel records)
        self.room = binary.CHUNK_TARGET  # bytes buf may reach before the chunk is full
        self.waiting = 0
        self.file: BinaryIO | None = None
        self.sink: Callable[[object], None] | None = None
        self.header: Header | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.writes: list[Future[None]] = []

    def open_file(self, path: str, header: Header, background: bool = True) -> None:
        self.header = header
        if not background:
            self.file = binary.create(path, header)
            return
        try:
            # Opened without truncating (the open says at once whether the path can be written);
            # emptying an old file can take milliseconds, so the worker does it, first.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as e:
            raise CaptureError(f"cannot write {path}: {e.strerror or e}") from None
        self.file = open(fd, "wb")  # noqa: SIM115 - closed by close()
        self.pool = _worker()
        self.writes.append(self._run(self._start, binary.encode_header(header)))

    def _run(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """``fn(*args)`` on the worker, or here once the interpreter is exiting (its threads
        are gone by the time atexit runs, after doing all they were handed)."""
        if self.pool is not None:
            try:
                return self.pool.submit(fn, *args)
            except RuntimeError:  # cannot schedule new futures after interpreter shutdown
                self.pool = None
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - handed over as the worker would
            done.set_exception(e)
        return done

    def _start(self, head: bytes) -> None:
        """On the worker: cut an old file down to the header's size (a regular file: a pipe
        has nothing to cut), then write the header over its start; the chunks follow. (Cut to
        the header's size rather than to nothing: ext4 starts writing out at close a file it
        saw emptied, which would cost the driver's close.)"""
        assert self.file is not None
        fd = self.file.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, len(head))
        self.file.write(head)
        self.file.flush()

    def open_sink(self, sink: Callable[[object], None], header: Header) -> None:
        self.header = header
        self.sink = sink

    def pixels(self, x: int, y: int, w: int, h: int, data: bytes, key: bool) -> None:
        n = len(data)
        if self.level:
            if self.pool is not None and n >= _BIG_PIXELS:
                record = self._run(binary.pixels_record, x, y, w, h, data, key, self.level)
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
        self._hand_over([self._run(_stored_record, head, data)], n)

    def solid(self, x: int, y: int, w: int, h: int, pixel: bytes, key: bool) -> None:
        """A rectangle of one colour (``pixel``: its 4 bytes), as deflate's copies."""
        z = _solid_zlib(pixel, w * h)
        self.buf += binary.pixels_head(x, y, w, h, key, len(z)) + z

    def _hand_over(self, parts: list[Part], n: int) -> None:
        self.parts.append(self.buf)
        self.parts += parts
        self.buf = bytearray()
        self.size += n
        self.room = binary.CHUNK_TARGET - self.size
        self.waiting += n

    def full(self) -> bool:
        return self.size + len(self.buf) >= binary.CHUNK_TARGET

    def close_chunk(self) -> None:
        """Hand the chunk being filled to the worker (or the sink), if it holds anything."""
        if self.header is None:
            return  # not open yet: the events wait
        parts = self.parts + [self.buf]
        self.parts, self.buf, self.size, self.room = [], bytearray(), 0, binary.CHUNK_TARGET
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
        self.writes = [f for f in self.writes if not f.done() or f.exception() is not None]
        if any(isinstance(p, Future) for p in parts):
            self.writes.append(self._run(self._write, parts))
        else:
            # All here: the checksum now (a few microseconds), so the worker's one step is the
            # write, one turn at the GIL less for it to take from the driver.
            self.writes.append(self._run(self._write_ready, self._pieces(parts)))
        if self.waiting >= binary.BACKGROUND_BYTES:
            self.wait()

    def _write(self, parts: list[Part]) -> None:
        """On the worker (or here): one chunk, its checksum taken part by part (no copy of
        the payload), written in one system call (each call lets go of the GIL and must take it
        back, at the cost of a wait for the driver's thread)."""
        self._write_ready(self._pieces(parts))

    @staticmethod
    def _pieces(parts: list[Part]) -> list[Any]:
        """A chunk's head (type, length, checksum) and its payload's pieces."""
        ready = [p for p in _resolved(parts) if len(p)]
        crc = zlib.crc32(binary.EVENTS_CHUNK)
        for p in ready:
            crc = zlib.crc32(p, crc)
        return [binary.CHUNK.pack(binary.EVENTS_CHUNK, sum(map(len, ready)), crc), *ready]

    def _write_ready(self, pieces: list[Any]) -> None:
        assert self.file is not None
        if not hasattr(os, "writev"):
            self.file.writelines(pieces)
            self.file.flush()
            return
        self.file.flush()  # empty: the header went out with a flush
        _write_all(self.file.fileno(), pieces)

    def wait(self) -> None:
        writes, self.writes = self.writes, []
        for f in writes:
            f.result()
        self.waiting = 0

    def flush(self) -> None:
        self.close_chunk()
        self.wait()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.pool = None  # the worker stays for the next recording
            if self.file is not None:
                self.file.close()
                self.file = None


def _write_all(fd: int, pieces: list[Any]) -> None:
    """Every byte of ``pieces`` to ``fd``, in one writev when the OS takes them all."""
    views = [memoryview(p).cast("B") for p in pieces]
    while views:
        done = os.writev(fd, views[:1024])  # at most IOV_MAX (1024 on Linux) pieces a call
        while views and done >= len(views[0]):
            done -= len(views.pop(0))
        if done:
            views[0] = views[0][done:]


def _resolved(parts: list[Part]) -> list[bytes | bytearray | memoryview | np.ndarray]:
    return [p.result() if isinstance(p, Future) else p for p in parts]


class _Stage:
    """The compiled splitter's buffers: its output, the command table, its two results."""

    def __init__(self) -> None:
        import ctypes

        self.out = np.empty(_STAGE_BYTES, np.uint8)
        self.view = memoryview(self.out)
        self.addr = self.out.ctypes.data
        self.table = _table()
        self.table_addr = self.table.ctypes.data
        self.result = (ctypes.c_int64 * 2)()
        self.result_addr = ctypes.addressof(self.result)


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
        self._vram_array = inner.vram.array()
        # (width, height, pitch, FB offset, the mode's rows in VRAM or None, whether the mode's
        # framebuffer lies in VRAM): read again after a layout register write.
        self._layout: tuple[int, int, int, int, np.ndarray | None, bool] | None = None
        self._mode_changed = False
        self._commands_in_frame = False  # commands since the last frame marker
        self._frame = 0
        self._t0 = time.monotonic()
        self.config_done = bool(self._inner_reg(Reg.CONFIG_DONE))
        self.fifo = _FifoRegisters(inner.fifo, self)
        # The ring as mapped memory, read by the recorder itself once the driver's FIFO hands the
        # reading over (fifo_ring_reader); else every commit comes through the commit listener.
        ring = self.fifo.array()
        self._ring_b: memoryview | None = None
        if ring is not None and ring.dtype == np.uint8 and ring.ndim == 1 and ring.flags.c_contiguous:
            self._ring_b = memoryview(ring)[: len(ring) // 4 * 4]  # type: ignore[arg-type]
        self._ring_w: Any = None  # its words, once reading it is handed over
        self._ring_addr = 0
        self._ring_at = 0  # the FIFO offset the ring was read up to
        self._split_fn = _splitter() if level == 0 else None
        self._stage: _Stage | None = None
        self._vram_addr = self._vram_array.ctypes.data if self._vram_array is not None else 0
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
        w = self._ring_w
        if w is not None and w[_NEXT_WORD] != self._ring_at:
            self.drain_ring()  # commands committed before this access, in order
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
                self._commands_in_frame = False
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
        """Record an event (commands in the ring and register writes half-way through a known
        pattern go first)."""
        if self._ring_w is not None:
            self.drain_ring()
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

    # -- FIFO commands: read out of the ring, or handed over at each commit --------------------
    def fifo_ring_reader(self) -> Callable[[], None] | None:
        """svga/fifo.py 'Ring reader': where the FIFO is mapped, the recorder reads the words
        the driver committed out of the ring itself, before every port write, every read of
        STOP, every sync, and at a flush, instead of hearing each commit; the driver's fast
        paths and compiled cores then run as they do without a recording. Returns what the
        driver's FIFO calls before it reads STOP in its sync, or None where the FIFO is not
        mapped (qtest: the commit listener then)."""
        if self._ring_b is None:
            return None
        if self._ring_w is None:
            self._ring_w = self._ring_b.cast("I")
            self._ring_addr = np.frombuffer(self._ring_b, np.uint8).ctypes.data
            self._ring_at = self._ring_w[_NEXT_WORD]  # what was committed before is not recorded
        return self.drain_ring

    def drain_ring(self) -> None:
        """Record the words committed since the ring was last read: from there to NEXT_CMD,
        across the wrap from MAX to MIN (docs/capture-format.md 'What a recording holds')."""
        w = self._ring_w
        if w is None:
            return
        nxt, at = w[_NEXT_WORD], self._ring_at
        if nxt == at:
            return
        fifo = self.fifo
        lo, hi = fifo.min, fifo.max
        if nxt & 3 or at & 3 or not (lo <= nxt < hi and lo <= at < hi):
            return  # pointers outside the ring: nothing a device runs (the driver lays it out anew)
        self._ring_at = nxt
        if not self.config_done:
            return
        b = self._ring_b
        assert b is not None
        if at < nxt:
            self.fifo_commit_listener(b[at: nxt], self._ring_addr + at)
        else:
            self.fifo_commit_listener(memoryview(b"".join((b[at: hi], b[lo: nxt]))))

    def fifo_commit_listener(self, data: Any, addr: int = 0) -> None:
        """The words one commit hands over, in FIFO order (all of a command the kit commits a
        word at a time: ``whole_commits``), or the words read out of the ring (``addr``: where
        they lie in memory, if known): every command now whole is recorded, the start of one
        not yet whole is kept; words the command table cannot decode are recorded raw."""
        cls = data.__class__
        if (cls is bytes or cls is memoryview) and not self._carry and not self._pend and self.config_done:
            key = data[:4] if cls is bytes else data[:4].tobytes()
            n = _FIXED_BYTES.get(key)
            size = len(data) if cls is bytes else data.nbytes
            update = n is None and _UPDATE_BYTES.get(key) == size
            if n == size or update:
                # One whole command of a fixed size (an UPDATE after the pixels under it): its
                # record as it is (one append, so a signal's flush never finds half a record).
                if update:
                    self._update_pixels(*_RECT.unpack_from(data, 4))
                chunks = self._chunks
                buf = chunks.buf
                buf += _HEADS[size >> 2] + data
                self._commands_in_frame = True
                if len(buf) >= chunks.room:
                    chunks.close_chunk()
                return
        carry = self._carry
        if carry:
            # The rest of a command split over commits: wait until it is whole.
            carry += data if data.__class__ is not np.ndarray else memoryview(data).cast("B")
            if len(carry) < self._need:
                return
            self._carry = bytearray()
            self._commands(memoryview(carry))
            return
        if self.config_done:
            self._commands(memoryview(data).cast("B"), addr)

    def _commands(self, words: memoryview, addr: int = 0) -> None:
        """Record the commands in committed ``words`` (at ``addr`` in memory, if known); keep
        the start of one not yet whole. The compiled splitter (svga/transport/recorder.c)
        records the runs it can; this code the rest, and everything without it."""
        if self._pend:
            self._flush_regs()
        chunks = self._chunks
        n = len(words)
        pos = 0
        split = self._split_fn
        keep = None
        while pos < n:
            if split is not None and n - pos >= _CORE_MIN:
                if not addr:
                    keep = np.frombuffer(words, np.uint8)  # held while its address is used
                    addr = keep.ctypes.data
                pos = self._split(addr, pos, n)
                if pos >= n:
                    break
            cid = _U32.unpack_from(words, pos)[0]
            c = CODECS.get(cid)
            if c is None:
                chunks.buf += binary.raw_record(words[pos:])  # an unknown id: its length is unknown
                break
            length = 4 * c.nwords
            if n - pos < length:
                self._carry = bytearray(words[pos:])
                self._need = length
                break
            if not c.fixed:
                try:
                    length = 4 * decode(np.frombuffer(words[pos:], "<u4"))[1]
                except IncompleteCommand as e:
                    self._carry = bytearray(words[pos:])
                    self._need = 4 * max(e.needed, 1)
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
            self._commands_in_frame = True
            pos += length
        del keep
        if len(chunks.buf) >= chunks.room:
            chunks.close_chunk()

    def _split(self, addr: int, pos: int, n: int) -> int:
        """The compiled splitter over the words at ``addr`` from byte ``pos`` to ``n``, its
        records appended to the chunk being filled (closed when full, as the Python code does);
        returns where it stopped."""
        st = self._stage
        if st is None:
            st = self._stage = _Stage()
        width, height, pitch, base, rows, usable = self._layout or self._mode_layout()
        if not usable:
            width = height = 0  # no pixels recorded (as _update_pixels)
        rows_addr = self._vram_addr + base if rows is not None else 0
        chunks, res, core = self._chunks, st.result, self._split_fn
        while True:
            limit = max(chunks.room - len(chunks.buf), 1)
            used = core(addr + pos, n - pos, st.addr, _STAGE_BYTES, limit, st.table_addr, 256, rows_addr,
                        width, height, pitch, binary.T_CMD, binary.T_PIXELS, st.result_addr)
            wrote = res[0]
            if wrote:
                chunks.buf += st.view[:wrote]
                self._commands_in_frame = True
            pos += used
            if len(chunks.buf) >= chunks.room:
                chunks.close_chunk()
            if not used or pos >= n or wrote < limit:
                return pos

    def restart(self, stop: int | None = None) -> None:
        """The driver lays the ring out again (STOP written: ``stop``): committed words of an
        unfinished command are dropped (the device never runs them), and the ring is read from
        there."""
        self._carry = bytearray()
        self._need = 0
        if stop is not None:
            self._ring_at = stop

    # -- pixels -----------------------------------------------------------------------------
    def _mode_layout(self) -> tuple[int, int, int, int, np.ndarray | None, bool]:
        if self._layout is None:
            width, height = self._inner_reg(Reg.WIDTH), self._inner_reg(Reg.HEIGHT)
            pitch, base = self._inner_reg(Reg.BYTES_PER_LINE), self._inner_reg(Reg.FB_OFFSET)
            usable = width > 0 and height > 0 and pitch >= width * 4 and \
                base + pitch * height <= self.inner.vram.size
            arr = self._vram_array
            rows = arr[base: base + height * pitch].reshape(height, pitch) if usable and arr is not None \
                else None
            self._layout = (width, height, pitch, base, rows, usable)
        return self._layout

    def _read_rect(self, x: int, y: int, w: int, h: int) -> bytes:
        """A rectangle of the framebuffer through VRAM reads (VRAM not mapped: qtest)."""
        pitch, base = self._mode_layout()[2:4]
        rows = np.frombuffer(self.inner.vram.read(base + y * pitch, h * pitch), np.uint8)
        return rows.reshape(h, pitch)[:, x * 4: (x + w) * 4].tobytes()

    def _update_pixels(self, x: int, y: int, w: int, h: int) -> None:
        """The pixels under an UPDATE (its fields, unsigned), clipped to the mode."""
        width, height, _, _, rows, usable = self._layout or self._mode_layout()
        x1, y1 = x + w, y + h
        if x1 > width:
            x1 = width
        if y1 > height:
            y1 = height
        if x >= x1 or y >= y1 or not usable:
            return
        n = (x1 - x) * (y1 - y) * 4
        if rows is not None and n < _SOLID_MIN:
            data = rows[y: y1, 4 * x: 4 * x1].tobytes()
            if n <= _SMALL_RECT and not self.level:
                # One stored block, in place (what _Chunks.pixels writes; one append).
                self._chunks.buf += b"".join((
                    _SMALL_PIXELS.pack(binary.T_PIXELS, x, y, x1 - x, y1 - y, 0, n + 11, 0x78, 0x01, 1, n,
                                       n ^ 0xFFFF), data, _ADLER.pack(zlib.adler32(data))))
                return
            self._chunks.pixels(x, y, x1 - x, y1 - y, data, False)
            return
        self._rect(x, y, x1 - x, y1 - y, False)

    def _rect(self, x: int, y: int, w: int, h: int, key: bool) -> None:
        """A rectangle inside the mode, recorded as pixels (one colour: as deflate's copies)."""
        rows = self._mode_layout()[4]
        if rows is None:
            data = self._read_rect(x, y, w, h)
            view = np.frombuffer(data, np.uint8).reshape(h, 4 * w)
        else:
            view = rows[y: y + h, 4 * x: 4 * (x + w)]
            data = b""
        if w * h * 4 >= _SOLID_MIN:
            px = view.view("<u4")
            first = px[0, 0]
            if (px[0] == first).all() and (px == first).all():
                self._chunks.solid(x, y, w, h, view[0, :4].tobytes(), key)
                return
        self._chunks.pixels(x, y, w, h, data or view.tobytes(), key)

    def _keyframe(self) -> None:
        width, height, _, _, _, usable = self._mode_layout()
        if not usable:
            return
        if self._pend:
            self._flush_regs()
        self._rect(0, 0, width, height, True)
        if self._chunks.full():
            self._chunks.close_chunk()

    # -- life cycle ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered event out as a chunk (the header too, if not yet written)."""
        self.drain_ring()
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
            self.drain_ring()
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
        self.drain_ring()  # the device may run the FIFO to show it
        return self.inner.display_image(with_cursor)


RecordingTransport.fifo_commit_listener.whole_commits = True  # type: ignore[attr-defined]
"""One listener call per commit, even one the kit makes a word at a time (svga/fifo.py 'Whole
commits')."""


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

