"""Tools layer: a transport that records what the driver does to any other transport (model,
qemu, pci) into a ``.svgacap`` (:mod:`svga.captures.binary`).

    from svga.captures.recorder import RecordingTransport
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

Pixels are written as zlib's stored blocks (level 0, on a worker thread) so that recording
costs the driver little; ``svga convert`` (level 6) makes the file small. Chunks are appended
as they fill; :func:`install_signal_flush` makes SIGINT and SIGTERM flush
every open recording first, and an exit flushes too, so a crash loses at most one chunk.
"""

from __future__ import annotations

import atexit
import os
import signal
import time
import weakref
from typing import Any

import numpy as np

from svga.captures.binary import CaptureWriter
from svga.captures.events import FifoRegWrite as FifoRegEvent
from svga.captures.events import Frame, Header, Pixels, RegWrite, Time
from svga.commands import BY_ID, Cmd, decode
from svga.errors import IncompleteCommand, ProtocolError
from svga.registers import INDEX_PORT, VALUE_PORT, Cap, FifoReg, Reg
from svga.tools.stream import CursorMove, Mode, Raw, Sync
from svga.transport.base import Memory, Transport

_MODE_REGS = (Reg.WIDTH, Reg.HEIGHT, Reg.BITS_PER_PIXEL)
_CURSOR_REGS = (Reg.CURSOR_X, Reg.CURSOR_Y, Reg.CURSOR_ON)
_UNRECORDED_FIFO_REGS = {FifoReg.MIN, FifoReg.MAX, FifoReg.NEXT_CMD, FifoReg.STOP, FifoReg.RESERVED,
                         FifoReg.BUSY}
"""The ring pointers and the reserve/busy handshake: the replaying driver makes its own."""
_UPDATES = (int(Cmd.UPDATE), int(Cmd.UPDATE_VERBOSE))
_OPEN: weakref.WeakSet[RecordingTransport] = weakref.WeakSet()


def _profile_of(inner: Transport, caps: int) -> str:
    profile = getattr(inner, "profile", None)
    name = getattr(profile, "name", None)
    if inner.kind == "model" and name in ("qemu", "qemu-cursor", "vmware"):
        return str(name)
    if caps & Cap.EXTENDED_FIFO:
        return "vmware"
    return "qemu-cursor" if caps & Cap.CURSOR else "qemu"


class _FifoTap(Memory):
    """FIFO memory that sees the driver's pointer writes and keeps a copy of what it writes
    where the memory is not mapped (qtest), so committed words never need reading back."""

    def __init__(self, inner: Memory, owner: RecordingTransport) -> None:
        self.inner = inner
        self.size = inner.size
        self.owner = owner
        self._mapped = inner.array()
        self._mirror = np.zeros(0 if self._mapped is not None else inner.size, dtype=np.uint8)
        self.min = 0
        self.max = inner.size
        self.next = 0
        self._regs_end = 16  # FIFO registers lie below MIN (the first four at least)
        self.start = 0  # where the first word not yet decoded is
        self.need = 1   # words from start that must be committed before decoding is worth it

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
        src = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else \
            np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if self._mapped is None:
            self._mirror[offset: offset + len(src)] = src
        if len(src) == 4 and offset % 4 == 0 and offset < self._regs_end:
            self._register(offset // 4, int(src.view("<u4")[0]))

    def write32(self, offset: int, value: int) -> None:
        self.inner.write32(offset, value)
        value &= 0xFFFFFFFF
        if self._mapped is None and offset % 4 == 0:
            self._mirror[offset: offset + 4] = np.frombuffer(value.to_bytes(4, "little"), np.uint8)
        if offset < self._regs_end and offset % 4 == 0:
            self._register(offset // 4, value)

    def _register(self, reg: int, value: int) -> None:
        owner = self.owner
        if reg == FifoReg.MIN:
            self.min = value
            self._regs_end = max(value, 16)
        elif reg == FifoReg.MAX:
            self.max = value
        elif reg == FifoReg.STOP:
            self.next = self.start = value  # only a driver laying out the ring writes STOP
            self.need = 1
        elif reg == FifoReg.NEXT_CMD:
            if not owner.config_done:
                self.next = self.start = value
                self.need = 1
                return
            self.next = value
            ring = self.max - self.min
            if ring > 0 and (value - self.start) % ring >= 4 * self.need:
                self.decode()
        elif reg not in _UNRECORDED_FIFO_REGS:
            owner.emit(FifoRegEvent(reg, value))

    def decode(self) -> None:
        """Record the commands now whole between ``start`` and NEXT_CMD."""
        ring = self.max - self.min
        if self.need == 1 and self._mapped is not None and (self.next - self.start) % ring == 4:
            # One word of a new command: its id says how many words to wait for.
            spec = BY_ID.get(int(self._mapped[self.start: self.start + 4].view("<u4")[0]))
            if spec is not None and spec.fixed_words > 1:
                self.need = spec.fixed_words
                return
        words = self._words(self.start, self.next)
        used, self.need = self.owner.committed(words)
        self.start += 4 * used
        if self.start >= self.max:
            self.start -= self.max - self.min

    def _words(self, start: int, end: int) -> np.ndarray:
        mem = self._mapped if self._mapped is not None else self._mirror
        if not (self.min <= start < self.max and self.min <= end < self.max) or (start | end) & 3:
            return np.zeros(0, "<u4")
        if end > start:
            return mem[start:end].view("<u4").copy()
        return np.concatenate([mem[start:self.max].view("<u4"), mem[self.min:end].view("<u4")])


class RecordingTransport(Transport):
    """``inner`` as the driver sees it, with every write recorded into ``path``."""

    def __init__(self, inner: Transport, path: str, *, level: int = 0) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.description = inner.description
        self.path = path
        self.level = level
        self.vram = inner.vram
        self.fifo = _FifoTap(inner.fifo, self)
        self._index = 0
        self._pend: list[tuple[int, int]] = []
        self._early: list[object] = []
        self._writer: CaptureWriter | None = None
        self._layout: tuple[int, int, int, int] | None = None
        self._mode_changed = False
        self._commands_in_frame = 0
        self._frame = 0
        self._t0 = time.monotonic()
        self.config_done = bool(self._inner_reg(Reg.CONFIG_DONE))
        enabled = self._inner_reg(Reg.ENABLE)
        self._start = (self._inner_reg(Reg.WIDTH), self._inner_reg(Reg.HEIGHT),
                       self._inner_reg(Reg.BITS_PER_PIXEL)) if enabled else (0, 0, 0)
        self._start_us = time.time_ns() // 1000
        self.emit(Frame(0))
        self.emit(Time(0))
        if enabled:
            self._keyframe()
        self.closed = False
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
        value &= 0xFFFFFFFF
        if offset == INDEX_PORT:
            self._index = value
        elif offset == VALUE_PORT:
            self._register(self._index, value)

    def _register(self, index: int, value: int) -> None:
        if index == Reg.CONFIG_DONE:
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
        if index == Reg.SYNC and value == 1:
            self._emit(Sync())
            if self._commands_in_frame:
                self._frame += 1
                self._commands_in_frame = 0
                self._emit(Frame(self._frame))
                self._emit(Time(int((time.monotonic() - self._t0) * 1e6)))
            return
        self._emit(RegWrite(index, value))
        if index in (Reg.WIDTH, Reg.HEIGHT, Reg.BITS_PER_PIXEL, Reg.FB_OFFSET, Reg.PITCHLOCK):
            self._layout = None
            self._mode_changed = True
        elif index == Reg.ENABLE and value == 1 and self._mode_changed:
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
        if self._writer is None:
            self._early.append(ev)
            if self.config_done:
                self._open_writer()
            return
        self._writer.add(ev)

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
        self._writer = CaptureWriter(self.path, header, self.level, background=True)
        early, self._early = self._early, []
        for ev in early:
            self._writer.add(ev)

    def committed(self, words: np.ndarray) -> tuple[int, int]:
        """Committed words not yet recorded: record every command now whole. Returns how many
        words were used and how many must be there before the next try (a command committed a
        word at a time, without FIFO_CAP_RESERVE, is tried again once its fixed words are in)."""
        pos, n = 0, len(words)
        while pos < n:
            spec = BY_ID.get(int(words[pos]))
            if spec is not None and n - pos < spec.fixed_words:
                return pos, spec.fixed_words  # not even its fixed words yet: no need to decode
            try:
                cmd, length = decode(words, pos)
            except IncompleteCommand as e:
                return pos, max(e.needed, 1)
            except ProtocolError:
                self.emit(Raw(tuple(words[pos:].tolist())))
                return n, 1
            if cmd.cmd_id in _UPDATES:
                self._update_pixels(cmd.args["x"], cmd.args["y"], cmd.args["width"], cmd.args["height"])
            self.emit(cmd)
            self._commands_in_frame += 1
            pos += length
        return pos, 1

    # -- pixels -----------------------------------------------------------------------------
    def _mode_layout(self) -> tuple[int, int, int, int]:
        if self._layout is None:
            self._layout = (self._inner_reg(Reg.WIDTH), self._inner_reg(Reg.HEIGHT),
                            self._inner_reg(Reg.BYTES_PER_LINE), self._inner_reg(Reg.FB_OFFSET))
        return self._layout

    def _read_rect(self, x: int, y: int, w: int, h: int) -> bytes:
        width, height, pitch, base = self._mode_layout()
        arr = self.inner.vram.array()
        start = base + y * pitch
        if arr is not None:
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
        self.emit(Pixels(x0, y0, x1 - x0, y1 - y0, self._read_rect(x0, y0, x1 - x0, y1 - y0)))

    def _keyframe(self) -> None:
        width, height, pitch, base = self._mode_layout()
        if not width or not height or pitch < width * 4 or base + pitch * height > self.inner.vram.size:
            return
        self.emit(Pixels(0, 0, width, height, self._read_rect(0, 0, width, height), key=True))

    # -- life cycle ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered event out as a chunk (the header too, if not yet written)."""
        if self._pend:
            self._flush_regs()
        if self._writer is None and not self.closed:
            self._open_writer()
        if self._writer is not None:
            self._writer.flush()
        flush = getattr(self.inner, "flush", None)
        if callable(flush):
            flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._pend:
                self._flush_regs()
            tap = self.fifo
            left = tap._words(tap.start, tap.next) if tap.start != tap.next else np.zeros(0, "<u4")
            if len(left):
                self.emit(Raw(tuple(left.tolist())))
            if self._writer is None:
                self._open_writer()
            assert self._writer is not None
            self._writer.close()
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
            if rec._writer is not None or rec._early:
                if rec._pend:
                    rec._flush_regs()
                if rec._writer is None:
                    rec._open_writer()
                assert rec._writer is not None
                rec._writer.flush()
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
