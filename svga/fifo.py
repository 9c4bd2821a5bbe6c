"""Driver layer: the SVGA II command FIFO in BAR2, as the VMware developer kit drives it.

The FIFO is a ring of 32-bit words in BAR2. Its first words are registers: MIN and MAX
bound the ring (the guest chooses them), NEXT_CMD is where the guest writes next, STOP is
where the device reads next. Empty is NEXT_CMD == STOP, so the guest never fills the last
dword (full would then look empty). With SVGA_CAP_EXTENDED_FIFO more registers follow
(capabilities, fence, cursor bypass 3, RESERVED, BUSY, ...) and MIN must leave room for
them.

This module follows the kit's reference driver (lib/refdriver/svga.c), rule by rule
(docs/qemu-7.2.md 'Reserve and commit'):

- :meth:`Fifo.reserve` / :meth:`Fifo.commit`: a command is written in place when the space
  up to MAX (or STOP) is contiguous and the device offers FIFO_CAP_RESERVE (then
  FIFO_RESERVED says how many bytes past NEXT_CMD hold real data) or the command is one
  dword; otherwise it goes through a bounce buffer. Without FIFO_CAP_RESERVE the bounce
  buffer is committed one dword at a time, NEXT_CMD moving after each, because the device
  only promises to keep STOP..NEXT_CMD plus the reserved bytes (svga_interface.txt).
  :meth:`Fifo.send` and :meth:`Fifo.write_command` follow the same rules in one call.
- When the ring is full the driver asks the device to catch up (SYNC, then BUSY).
- Fences exist only with FIFO_CAP_FENCE; without it SYNC/BUSY stands in for them.
- :meth:`Fifo.write_batch` (a list of encoded commands) and :meth:`Fifo.write_words` (one
  buffer, e.g. from :func:`svga.commands.encode_many`) are the throughput paths: whole
  commands only, one copy per contiguous run and one NEXT_CMD update per run.
- :meth:`Fifo.sync` drains the ring in a way that is right on QEMU too: QEMU's BUSY always
  reads 0 and one SYNC runs at most 1023 commands (docs/qemu-7.2.md 'Per-run cap'), so SYNC
  is repeated until STOP reaches NEXT_CMD; STOP running past NEXT_CMD (QEMU's parser
  overrunning on a command it does not count right, docs/qemu-7.2.md 'Length-accounting
  overrun') is reported and the FIFO re-initialised.

Speed: when the FIFO memory is mapped (the PCI device, the model) the hot paths read and
write it through one persistent memoryview of 32-bit words, with the ring bounds, the
capability tests and the register numbers kept as plain ints from the negotiation, and
the register ports reached through the transport's bound methods; every check (pointer
bounds, overrun detection and healing, stall limits) is made there as on the general path,
which serves unmapped memory (qtest) and raises every error.
"""

from __future__ import annotations

import logging
import struct
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np

from svga import commands
from svga.errors import FifoError, IncompleteCommand, ProtocolError
from svga.registers import (
    FIFO_MIN_RING_BYTES,
    FIFO_MIN_SIZE_LEGACY,
    FIFO_NUM_REGS,
    INDEX_PORT,
    VALUE_PORT,
    Cap,
    FifoCap,
    FifoReg,
    Reg,
    RegisterFile,
    fifo_reg_valid,
)
from svga.transport.base import Memory, Transport

log = logging.getLogger(__name__)

BOUNCE_BUFFER_BYTES = 1 << 20
"""Largest single command (the kit's static bounce buffer is 1 MiB too)."""
SYNC_ROUNDS = 10_000
"""SYNC writes without any progress before the FIFO is declared stalled."""
BUSY_POLLS = 100_000
"""BUSY reads after one SYNC before giving up on the device going idle."""

CommitListener = Callable[[Any], None]
"""``listener(data)``: the 32-bit words one NEXT_CMD write commits (see :class:`Fifo`)."""

# Plain ints for the hot paths (an IntEnum costs an attribute lookup and a conversion).
_NEXT_CMD = int(FifoReg.NEXT_CMD)
_STOP = int(FifoReg.STOP)
_RESERVED = int(FifoReg.RESERVED)
_REG_SYNC = int(Reg.SYNC)
_REG_BUSY = int(Reg.BUSY)
_CAP_RESERVE = int(FifoCap.RESERVE)
_CAP_FENCE = int(FifoCap.FENCE)
_CODECS = commands.CODECS
_UPDATE = _CODECS[int(commands.Cmd.UPDATE)]
_UPDATE_ID, _UPDATE_BYTES = _UPDATE.id, _UPDATE.nbytes  # Fifo.send_update's pre-bound pieces
_pack_update_into = _UPDATE.struct.pack_into
_RECT_FILL = _CODECS[int(commands.Cmd.RECT_FILL)]
ABSENT = commands.ABSENT
_STRUCT_ERRORS = (TypeError, KeyError, struct.error)


@dataclass
class Reservation:
    """Space handed out by :meth:`Fifo.reserve`: fill ``buf`` then call ``commit``."""

    nbytes: int
    buf: np.ndarray | bytearray
    in_place: bool
    offset: int  # FIFO byte offset where the data will start


def _word_views(mem: Memory) -> tuple[memoryview | None, memoryview | None]:
    """(bytes, 32-bit words) memoryviews of a directly mapped FIFO, or (None, None)."""
    arr = mem.array()
    if arr is None or sys.byteorder != "little" or arr.dtype != np.uint8 or arr.ndim != 1 \
            or not arr.flags.c_contiguous or not arr.flags.writeable:
        return None, None
    size = min(len(arr), mem.size) // 4 * 4
    b = memoryview(arr[:size])  # type: ignore[arg-type]
    return b, b.cast("I")


class Fifo:
    """The command ring of one device. Made by the device object; use it through
    ``Device`` unless you write raw commands.

    ``transport`` (the device's transport; optional) gives the register ports the hot paths
    use directly (the same ``port_write``/``port_read`` a :class:`RegisterFile` calls, so a
    wrapping transport sees every access) and the commit listener.

    **Commit listener.** ``listener`` (default: ``getattr(transport, "fifo_commit_listener",
    None)``) is called as ``listener(data)`` at every commit, that is before every write of
    NEXT_CMD by this driver (:meth:`send`, :meth:`write_command`, :meth:`commit`,
    :meth:`write_batch`, :meth:`write_words`, fences): ``data`` is bytes-like (bytes, a
    memoryview or a numpy uint32 array) holding exactly the 32-bit words that NEXT_CMD write
    commits, in FIFO order as the driver wrote them (one call for a run that the wrap splits
    in two copies; one call per word where the kit commits a word at a time). The words are
    already in FIFO memory and NEXT_CMD has not moved yet. ``data`` may be a view of the FIFO
    or of the caller's buffer, valid during the call only: copy what you keep. Pointer
    set-up (:meth:`init`, :meth:`restart_at`) commits nothing and calls nothing. Without a
    listener the cost is one ``if`` per commit.

    **Whole commits.** A listener with a true attribute ``whole_commits`` (on a method: its
    function's, ``Class.method.whole_commits = True``) asks for one call per commit even where
    the kit commits a word at a time (no FIFO_CAP_RESERVE, the bounce buffer: :meth:`commit`,
    :meth:`write_command`, :meth:`send`): it is called once with every word of that commit,
    before the first of its NEXT_CMD writes, when none of those words is in FIFO memory yet (a
    recorder keeps the words it is handed and has no use for one call a word). Every other
    commit reaches it as above.

    **Ring reader.** A transport with a method ``fifo_ring_reader()`` (a recorder,
    svga/transport/recorder.py) may read the committed words out of a mapped ring itself instead
    of listening: where the FIFO memory is mapped and no listener is passed, the FIFO calls it
    once; if it returns a function, no listener is set (every fast path runs) and the FIFO
    calls that function at the start of :meth:`sync`, before it reads STOP from the mapped
    words. Every other read of STOP goes through the memory's ``read32`` and every register
    access through the transport's ports, where the transport reads the ring first. This
    driver writes over ring space only once a STOP it read says the device is past it, so the
    words are read before they can be overwritten (docs/capture-format.md 'What a recording
    holds').
    """

    def __init__(self, regs: RegisterFile, mem: Memory, caps: Cap, mem_regs: int = 0,
                 mem_size: int | None = None, *, transport: Transport | None = None,
                 listener: CommitListener | None = None) -> None:
        self.regs = regs
        self.mem = mem
        self.caps = Cap(caps)
        self.extended = bool(self.caps & Cap.EXTENDED_FIFO)
        self.size = min(mem_size or mem.size, mem.size)
        if self.extended:
            # Leave room for every FIFO register this driver knows (the kit's choice), or
            # for as many as the device says it has, whichever is more.
            self.min = max(FIFO_NUM_REGS, mem_regs) * 4
        else:
            # Without the extended FIFO only MIN, MAX, NEXT_CMD and STOP exist.
            self.min = FIFO_MIN_SIZE_LEGACY
        self.max = self.size
        if self.max - self.min < FIFO_MIN_RING_BYTES:
            raise FifoError(
                f"FIFO of {self.size} bytes is too small: MAX - MIN must be at least 10 KiB"
            )
        self.ring_bytes = self.max - self.min
        self.fifo_caps = FifoCap(0)
        self._reserveable = False  # FIFO_CAP_RESERVE, as a plain bool (set by init)
        self.next_fence = 0
        self._reserved: Reservation | None = None
        # Only the driver writes NEXT_CMD, so it keeps its own copy; STOP is the device's
        # and is re-read only when the space last seen is not enough (a stale STOP only
        # under-states the free space). On qtest every FIFO read is a round trip.
        self._next = self.min
        self._stop = self.min
        self.overruns = 0
        self.initialised = False
        self._offers: dict[object, bool] = {}
        self.offers_epoch = 0
        """Counts the :meth:`init` calls: what :meth:`offers` answers changes only then."""
        self._b, self._w = _word_views(mem)
        # A transport that reads the ring itself (a recorder: 'Ring reader' above) gets the
        # reading handed over where the FIFO is mapped; otherwise it may listen to commits.
        self._ring_reader: Callable[[], None] | None = None
        if listener is None and transport is not None:
            opener = getattr(transport, "fifo_ring_reader", None) if self._w is not None else None
            self._ring_reader = opener() if callable(opener) else None
            if self._ring_reader is None:
                listener = getattr(transport, "fifo_commit_listener", None)
        self.listener: CommitListener | None = listener
        self._flush: Callable[[], None] | None = \
            None if type(mem).flush is Memory.flush else mem.flush
        self._pw: Callable[[int, int], None] | None = None
        self._pr: Callable[[int], int] | None = None
        # A transport may offer the register protocol as one call a register
        # (PciTransport.register_ops); asked of its class, so that a wrapper that forwards
        # attributes (a recorder) never hands out its inner transport's.
        self._rw: Callable[[int, int], None] | None = None
        self._rr: Callable[[int], int] | None = None
        if transport is not None:
            self._pw, self._pr = transport.port_write, transport.port_read
            ops = getattr(type(transport), "register_ops", None)
            pair = ops(transport) if ops is not None else None
            if pair is not None:
                self._rw, self._rr = pair
        # The fast paths need the mapped FIFO and the ports; anything else takes the
        # general path (every access through Memory and RegisterFile).
        self._fast = self._w is not None and self._pw is not None
        # Fast, FIFO_CAP_RESERVE and no reservation open: the in-place paths may run
        # (kept up to date by init, reserve and commit).
        self._quick = False
        self._inplace_max = min(BOUNCE_BUFFER_BYTES, self.ring_bytes - 1)

    # -- registers in FIFO memory -------------------------------------------------------
    def _get(self, reg: int) -> int:
        return self.mem.read32(reg * 4)

    def _set(self, reg: int, value: int) -> None:
        self.mem.write32(reg * 4, value)

    def reg_valid(self, reg: int) -> bool:
        """A FIFO register beyond the first four exists only with the extended FIFO and
        below MIN."""
        if reg <= FifoReg.STOP:
            return True
        return self.extended and fifo_reg_valid(reg, self.min)

    def has_cap(self, cap: FifoCap) -> bool:
        return bool(self.fifo_caps & cap)

    def offers(self, cmd: int | str) -> bool:
        """Whether the device offers a command (the command table's "Availability", asked of
        this device's capabilities and FIFO capabilities). Answers are kept until the next
        :meth:`init` (the only place the capabilities change)."""
        known = self._offers.get(cmd)
        if known is None:
            known = commands.offered(cmd, self.caps, self.fifo_caps, self.extended and self.initialised)
            self._offers[cmd] = known
        return known

    # -- set-up -------------------------------------------------------------------------
    def init(self) -> None:
        """Lay out the ring and tell the device it is configured (kit: SVGA_Enable).

        CONFIG_DONE goes to 0 first, so that re-initialising a running FIFO (after an
        overrun) is safe: the device ignores the pointers while they change."""
        self.regs.write(Reg.CONFIG_DONE, 0)
        self._set(FifoReg.MIN, self.min)
        self._set(FifoReg.MAX, self.max)
        self._set(FifoReg.NEXT_CMD, self.min)
        self._set(FifoReg.STOP, self.min)
        self._next = self._stop = self.min
        self._reserved = None
        if self.extended and self.reg_valid(FifoReg.BUSY):
            self._set(FifoReg.BUSY, 0)
        self.regs.write(Reg.ENABLE, 1)
        self.regs.write(Reg.CONFIG_DONE, 1)
        if self.extended:
            # The host publishes its FIFO capabilities in FIFO memory (word 4), valid once
            # the FIFO is configured; without the extended FIFO that word is plain memory.
            self.fifo_caps = FifoCap(self._get(FifoReg.CAPABILITIES))
        self._reserveable = bool(int(self.fifo_caps) & _CAP_RESERVE) and self.reg_valid(FifoReg.RESERVED)
        self._quick = self._fast and self._reserveable
        self._offers = {}
        self.offers_epoch += 1
        self.mem.flush()
        self.initialised = True

    # -- pointers -------------------------------------------------------------------------
    def _read_stop(self) -> int:
        self._stop = self._get(FifoReg.STOP)
        return self._stop

    def pointers(self) -> tuple[int, int]:
        """(NEXT_CMD, STOP) as the device sees them now."""
        return self._next, self._read_stop()

    def pending_bytes(self) -> int:
        nxt, stop = self.pointers()
        return (nxt - stop) % self.ring_bytes

    def _free_bytes(self, stop: int) -> int:
        """Bytes that can be written with STOP at ``stop``, keeping one dword free."""
        return self.ring_bytes - (self._next - stop) % self.ring_bytes - 4

    @property
    def next_offset(self) -> int:
        """The FIFO byte offset where the next command will start (NEXT_CMD as the driver
        keeps it)."""
        return self._next

    def restart_at(self, offset: int) -> None:
        """Move the empty ring's start to ``offset`` (NEXT_CMD = STOP = offset): the ring
        must be drained. For tests of wrap-around at chosen offsets, and for tools."""
        self.sync()
        if offset % 4 or not self.min <= offset < self.max:
            raise ProtocolError(f"FIFO offset {offset} is not a dword inside [{self.min}, {self.max})")
        self._set(FifoReg.STOP, offset)
        self._set(FifoReg.NEXT_CMD, offset)
        self._next = self._stop = offset
        self.mem.flush()

    # -- reserve / commit (kit: SVGA_FIFOReserve, SVGA_FIFOCommit) ------------------------
    def _check_size(self, nbytes: int) -> None:
        if nbytes <= 0 or nbytes % 4:
            raise ProtocolError(f"FIFO reservation of {nbytes} bytes is not a positive multiple of 4")
        if nbytes > BOUNCE_BUFFER_BYTES or nbytes >= self.ring_bytes:
            raise ProtocolError(
                f"command of {nbytes} bytes is larger than the FIFO ring ({self.ring_bytes} bytes)"
            )

    def _placement(self, nbytes: int) -> bool:
        """Wait until ``nbytes`` fit (SYNC when the ring is full) and say whether they can be
        written in place (contiguous up to MAX or STOP, and FIFO_CAP_RESERVE or one dword);
        else they go through the bounce buffer (kit: SVGA_FIFOReserve)."""
        rounds = 0
        fresh = False
        mx, mn = self.max, self.min
        while True:
            nxt, stop = self._next, self._stop
            if nxt >= stop:
                # No valid data between NEXT_CMD and MAX.
                if nxt + nbytes < mx or (nxt + nbytes == mx and stop > mn):
                    # Contiguous room up to MAX. On "==" we write exactly up to MAX, which
                    # is fine only if a dword stays free at MIN.
                    return self._reserveable or nbytes <= 4
                if (mx - nxt) + (stop - mn) > nbytes:
                    return False  # it fits only split across the wrap, so it is bounced
                # "<=": one dword must stay free, or full would look empty.
            elif nxt + nbytes < stop:
                return self._reserveable or nbytes <= 4
            _, fresh, rounds = self._more_room(fresh, rounds)

    def reserve(self, nbytes: int) -> Reservation:
        """Reserve ``nbytes`` (a multiple of 4) for one or more commands."""
        if self._reserved is not None:
            raise ProtocolError("FIFO reserve before the previous commit")
        self._check_size(nbytes)
        in_place = self._placement(nbytes)
        nxt = self._next
        if in_place:
            arr = self.mem.array()
            if self._reserveable:
                self._set(FifoReg.RESERVED, nbytes)
            if arr is not None:
                buf: np.ndarray | bytearray = arr[nxt: nxt + nbytes]
            else:
                buf = bytearray(nbytes)  # staged, written in one piece at commit
            self._reserved = Reservation(nbytes, buf, True, nxt)
        else:
            self._reserved = Reservation(nbytes, bytearray(nbytes), False, nxt)
        self._quick = False
        return self._reserved

    def commit(self, nbytes: int | None = None) -> None:
        """Commit ``nbytes`` (default: all) of the last reservation."""
        res = self._reserved
        if res is None:
            raise ProtocolError("FIFO commit without a reservation")
        self._reserved = None
        self._quick = self._fast and self._reserveable
        n = res.nbytes if nbytes is None else nbytes
        if n % 4 or not 0 <= n <= res.nbytes:
            raise ProtocolError(f"FIFO commit of {n} bytes does not match a {res.nbytes}-byte reservation")
        reserveable = self._reserveable
        nxt = self._next
        if res.in_place:
            if isinstance(res.buf, bytearray):
                self.mem.write(nxt, bytes(res.buf[:n]))
            if n:
                self._advance(nxt, n, res.buf[:n])
        elif reserveable:
            # Bulk copy out of the bounce buffer in two chunks, then one NEXT_CMD update.
            self._set(FifoReg.RESERVED, n)
            first = min(n, self.max - nxt)
            self.mem.write(nxt, bytes(res.buf[:first]))
            if n > first:
                self.mem.write(self.min, bytes(res.buf[first:n]))
            if n:
                self._advance(nxt, n, res.buf[:n])
        else:
            self._commit_words(bytes(res.buf[:n]))
        if reserveable:
            self._set(FifoReg.RESERVED, 0)

    def _commit_words(self, data: bytes | memoryview) -> None:
        """Slowest path (no FIFO_CAP_RESERVE, more than one dword): one dword at a time,
        NEXT_CMD following each, so the device never has to keep uncommitted data. The
        listener hears each word before its NEXT_CMD write, or, marked ``whole_commits``, all
        of them once before the first (see :class:`Fifo`)."""
        nxt, mx, mn = self._next, self.max, self.min
        listener = self.listener
        if listener is not None and getattr(listener, "whole_commits", False):
            listener(data)
            listener = None
        w = self._w
        if w is not None and listener is None:
            for v in memoryview(data).cast("I"):
                w[nxt >> 2] = v
                nxt += 4
                if nxt == mx:
                    nxt = mn
                w[_NEXT_CMD] = nxt
            self._next = nxt  # nothing between the stores can fail
            return
        if w is not None:
            for i, v in enumerate(memoryview(data).cast("I")):
                w[nxt >> 2] = v
                nxt += 4
                if nxt == mx:
                    nxt = mn
                listener(data[4 * i: 4 * i + 4])  # type: ignore[misc]
                w[_NEXT_CMD] = nxt
                self._next = nxt
            return
        for i, v in enumerate(memoryview(data).cast("I")):
            self.mem.write32(nxt, v)
            nxt += 4
            if nxt == mx:
                nxt = mn
            if listener is not None:
                listener(data[4 * i: 4 * i + 4])
            self._set(FifoReg.NEXT_CMD, nxt)
            self._next = nxt

    def _advance(self, nxt: int, n: int, data: Any) -> None:
        if self.listener is not None:
            self.listener(data.view("<u4") if isinstance(data, np.ndarray) else data)
        nxt += n
        if nxt >= self.max:
            nxt -= self.ring_bytes
        self._set(FifoReg.NEXT_CMD, nxt)
        self._next = nxt

    def write_command(self, data: bytes | bytearray | memoryview) -> None:
        """Reserve, copy and commit one encoded command (or several back to back)."""
        if self._quick and type(data) is bytes:
            # The commonest case first (FIFO_CAP_RESERVE, room up to MAX or STOP contiguous):
            # what the general code below does for it, in as few steps.
            n, nxt, stop = len(data), self._next, self._stop
            end = nxt + n
            mx = self.max
            if 0 < n <= self._inplace_max and not n & 3 and (
                    (end < stop) if nxt < stop else (end < mx or (end == mx and stop > self.min))):
                w = self._w
                assert w is not None and self._b is not None
                w[_RESERVED] = n
                self._b[nxt: end] = data
                if self.listener is not None:
                    self.listener(data)
                if end == self.max:
                    end = self.min
                w[_NEXT_CMD] = end
                self._next = end
                w[_RESERVED] = 0
                return
        if not self._fast:
            res = self.reserve(len(data))
            res.buf[:] = np.frombuffer(data, dtype=np.uint8) if isinstance(res.buf, np.ndarray) else data
            self.commit()
            return
        if type(data) is not bytes:
            data = memoryview(data).cast("B")
        n = len(data)
        if self._reserved is not None:
            raise ProtocolError("FIFO reserve before the previous commit")
        if n <= 0 or n & 3 or n >= self.ring_bytes or n > BOUNCE_BUFFER_BYTES:
            self._check_size(n)  # raises
        # _placement() without a call when the room last seen is enough.
        nxt, stop, mx, mn = self._next, self._stop, self.max, self.min
        end = nxt + n
        if nxt >= stop:
            if end < mx or (end == mx and stop > mn):
                in_place = self._reserveable or n <= 4
            elif (mx - nxt) + (stop - mn) > n:
                in_place = False
            else:
                in_place = self._placement(n)
        elif end < stop:
            in_place = self._reserveable or n <= 4
        else:
            in_place = self._placement(n)
        w, b, nxt = self._w, self._b, self._next
        assert w is not None and b is not None
        if not in_place and not self._reserveable:
            if self.listener is not None:
                self._commit_words(data)
                return
            # _commit_words() inlined: the path of every command on QEMU (no FIFO_CAP_RESERVE).
            for v in memoryview(data).cast("I"):
                w[nxt >> 2] = v
                nxt += 4
                if nxt == mx:
                    nxt = mn
                w[_NEXT_CMD] = nxt
            self._next = nxt
            return
        if self._reserveable:
            w[_RESERVED] = n
        first = min(n, self.max - nxt)
        if first == n:
            b[nxt: nxt + n] = data
        else:
            mv = memoryview(data)
            b[nxt: nxt + first] = mv[:first]
            b[self.min: self.min + n - first] = mv[first:]
        if self.listener is not None:
            self.listener(data)
        nxt += n
        if nxt >= self.max:
            nxt -= self.ring_bytes
        w[_NEXT_CMD] = nxt
        self._next = nxt
        if self._reserveable:
            w[_RESERVED] = 0

    def send(self, cmd: int | str, /, *, x: Any = ABSENT, y: Any = ABSENT, width: Any = ABSENT,
             height: Any = ABSENT, color: Any = ABSENT, **fields: int | bytes) -> None:
        """Encode with the command table and write: ``fifo.send("UPDATE", x=0, ...)``.
        (``x``, ``y``, ``width``, ``height`` and ``color`` are named only for speed, as in
        :func:`svga.commands.encode`.)"""
        c = _CODECS.get(cmd)  # type: ignore[call-overload]
        if c is _UPDATE and not fields and color is ABSENT:
            values: tuple[Any, ...] = (x, y, width, height)
        elif c is _RECT_FILL and not fields:
            values = (color, x, y, width, height)
        else:
            for name, value in (("x", x), ("y", y), ("width", width), ("height", height), ("color", color)):
                if value is not ABSENT:
                    fields[name] = value
            self.write_command(commands.encode(cmd, **fields))
            return
        if self._quick:
            # _write_values' in-place case, inlined (the commonest call of all).
            nxt, stop = self._next, self._stop
            end = nxt + c.nbytes
            if (end < stop) if nxt < stop else (end < self.max or (end == self.max and stop > self.min)):
                w = self._w
                assert w is not None
                w[_RESERVED] = end - nxt
                try:
                    # Named arguments, not *values: a star call costs as much as the packing.
                    if c is _UPDATE:
                        c.struct.pack_into(self._b, nxt, c.id, x, y, width, height)
                    else:
                        c.struct.pack_into(self._b, nxt, c.id, color, x, y, width, height)
                except struct.error:
                    w[_RESERVED] = 0
                    self.write_command(self._values_error(c, cmd, values))
                    return
                self._publish_in_place(w, nxt, end)
                return
        self._write_values(c, cmd, values)

    def send_values(self, cmd: int | str, *values: int) -> None:
        """Write a command without tails from its field values in table order:
        ``fifo.send_values("UPDATE", x, y, width, height)`` is ``fifo.send("UPDATE", x=x,
        y=y, width=width, height=height)`` with no keyword dict (the driver's own calls)."""
        c = _CODECS.get(cmd)  # type: ignore[call-overload]
        if c is None or not c.fixed:
            c = commands.codec(cmd)  # raises for an unknown command
            raise ProtocolError(f"send_values takes commands without tails; {c.name} has tails")
        if self._quick:
            # _write_values' in-place case, inlined (Device.fill, update and copy call this).
            nxt, stop = self._next, self._stop
            end = nxt + c.nbytes
            if (end < stop) if nxt < stop else (end < self.max or (end == self.max and stop > self.min)):
                w = self._w
                assert w is not None
                w[_RESERVED] = end - nxt
                try:
                    # The usual field counts without a star call (which costs more than the packing).
                    k, b = len(values), self._b
                    if k == 4:
                        c.struct.pack_into(b, nxt, c.id, values[0], values[1], values[2], values[3])
                    elif k == 6:
                        c.struct.pack_into(b, nxt, c.id, values[0], values[1], values[2], values[3],
                                           values[4], values[5])
                    elif k == 5:
                        c.struct.pack_into(b, nxt, c.id, values[0], values[1], values[2], values[3],
                                           values[4])
                    else:
                        c.struct.pack_into(b, nxt, c.id, *values)
                except struct.error:
                    w[_RESERVED] = 0
                    self.write_command(self._values_error(c, cmd, values))
                    return
                self._publish_in_place(w, nxt, end)
                return
        self._write_values(c, cmd, values)

    def send_update(self, x: int, y: int, width: int, height: int) -> None:
        """``send_values("UPDATE", x, y, width, height)`` for the driver's per-call hot path
        (:meth:`svga.device.Device.fill`): the same room and wrap checks, the same in-place
        write under FIFO_CAP_RESERVE (RESERVED, the words, NEXT_CMD, RESERVED back to 0:
        docs/qemu-7.2.md 'Reserve and commit'), the same listener call and the same errors,
        with the codec's pieces bound once in this module instead of looked up per call.
        Anything else (no FIFO_CAP_RESERVE, a reservation open, no contiguous room, unmapped
        memory) takes the general path of :meth:`send_values`."""
        if self._quick:
            nxt = self._next
            stop = self._stop
            end = nxt + _UPDATE_BYTES
            if (end < stop) if nxt < stop else (end < self.max or (end == self.max and stop > self.min)):
                w = self._w  # mapped: _quick says so
                w[_RESERVED] = _UPDATE_BYTES
                try:
                    _pack_update_into(self._b, nxt, _UPDATE_ID, x, y, width, height)
                except struct.error:
                    w[_RESERVED] = 0
                    self.write_command(self._values_error(_UPDATE, _UPDATE_ID, (x, y, width, height)))
                    return
                self._publish_in_place(w, nxt, end)
                return
        self._write_values(_UPDATE, _UPDATE_ID, (x, y, width, height))

    def fill_update(self, core: Callable[..., int], color: int, x: int, y: int, width: int,
                    height: int) -> bool:
        """Device.fill's compiled core (svga/device.c, docs/native.md): the rectangle's CPU fill
        and :meth:`send_update`'s in-place UPDATE in one call, where send_update would write it
        in place (FIFO_CAP_RESERVE, no reservation open, mapped memory) and no listener is set.
        True when the core did both; False when it wrote nothing (no room before STOP or MAX,
        an argument that is not a plain int, ...), and the caller's Python code then runs."""
        if self._quick and self.listener is None:
            end = core(self._next, self._stop, color, x, y, width, height)
            if end >= 0:
                self._next = end
                return True
        return False

    def _publish_in_place(self, w: Any, nxt: int, end: int) -> None:
        """The end of every in-place write under FIFO_CAP_RESERVE (:meth:`send`,
        :meth:`send_values`, :meth:`send_update`, :meth:`_write_values`), once the words of
        ``nxt..end`` are in the ring: the listener hears them, NEXT_CMD moves past them (to MIN
        at MAX), RESERVED goes back to 0 (docs/qemu-7.2.md 'Reserve and commit')."""
        if self.listener is not None:
            self.listener(self._b[nxt: end])  # type: ignore[index]
        if end == self.max:
            end = self.min
        w[_NEXT_CMD] = end
        self._next = end
        w[_RESERVED] = 0

    def _write_values(self, c: Any, cmd: int | str, values: tuple[Any, ...]) -> None:
        """Write command ``c`` (a fixed-size codec) from its field values in table order
        (:meth:`send` and :meth:`send_values` make its in-place case themselves)."""
        if self._quick:
            # In place (kit: FIFO_CAP_RESERVE): packed straight into the ring when the room
            # up to MAX or STOP last seen is contiguous; anything else takes write_command.
            n, nxt, stop = c.nbytes, self._next, self._stop
            end = nxt + n
            if (end < stop) if nxt < stop else (end < self.max or (end == self.max and stop > self.min)):
                w = self._w
                assert w is not None
                w[_RESERVED] = n
                try:
                    c.struct.pack_into(self._b, nxt, c.id, *values)
                except struct.error:
                    w[_RESERVED] = 0
                    self.write_command(self._values_error(c, cmd, values))
                    return
                self._publish_in_place(w, nxt, end)
                return
        try:
            data = c.struct.pack(c.id, *values)
        except struct.error:
            data = self._values_error(c, cmd, values)
        self.write_command(data)

    @staticmethod
    def _values_error(c: commands.Codec, cmd: int | str, values: tuple[Any, ...]) -> bytes:
        """struct refused the values: the checked encoder names the field (or, should it
        accept them, encodes them)."""
        if len(values) != len(c.field_names):
            raise ProtocolError(f"{c.name} has {len(c.field_names)} fields "
                                f"({', '.join(c.field_names)}), not {len(values)} values")
        return commands.encode(cmd, **dict(zip(c.field_names, values, strict=True)))

    # -- the batch paths ----------------------------------------------------------------
    def _commit_run(self, data: Any, size: int) -> None:
        """Copy ``size`` bytes of whole commands (fitting the free room) in at most two
        pieces, then one NEXT_CMD update; RESERVED covers the run while it is copied."""
        nxt = self._next
        first = min(size, self.max - nxt)
        w = self._w
        if w is not None:
            b = self._b
            assert b is not None
            if self._reserveable:
                w[_RESERVED] = size
            if first == size:
                b[nxt: nxt + size] = data
            else:
                mv = memoryview(data)
                b[nxt: nxt + first] = mv[:first]
                b[self.min: self.min + size - first] = mv[first:]
            if self.listener is not None:
                self.listener(data)
            nxt += size
            if nxt >= self.max:
                nxt -= self.ring_bytes
            w[_NEXT_CMD] = nxt
            self._next = nxt
            if self._reserveable:
                w[_RESERVED] = 0
            return
        if self._reserveable:
            self._set(FifoReg.RESERVED, size)
        mv = memoryview(data)
        self.mem.write(nxt, mv[:first])
        if size > first:
            self.mem.write(self.min, mv[first:])
        self._advance(nxt, size, data)
        if self._reserveable:
            self._set(FifoReg.RESERVED, 0)

    def write_batch(self, cmds: Iterable[bytes]) -> int:
        """Write many pre-encoded commands with one copy per contiguous run.

        Whole commands only go into each run (a command may straddle MAX: it is then two
        runs, both written before NEXT_CMD moves), so the device never sees half a command.
        With FIFO_CAP_RESERVE, FIFO_RESERVED covers the run while it is copied. Returns the
        number of bytes written."""
        pending = cmds if isinstance(cmds, list) else list(cmds)
        if not pending:
            return 0
        if self._reserved is not None:
            raise ProtocolError("FIFO write_batch before the previous commit")
        # One join (which sums the lengths itself), then one copy when it fits.
        blob = pending[0] if len(pending) == 1 and type(pending[0]) is bytes else b"".join(pending)
        total = len(blob)
        if total % 4:
            raise ProtocolError("a batched command is not a whole number of words")
        if total <= self._free_bytes(self._stop):
            # The usual case: everything fits the room last seen, one run.
            self._commit_run(blob, total)
            return total
        # More than the room: runs of whole commands, each a slice of the one joined blob.
        ends = list(accumulate(map(len, pending)))
        if ends[-1] != total:  # an item whose len() is not its size in bytes (a cast memoryview)
            ends = list(accumulate(memoryview(c).nbytes for c in pending))
        mv = memoryview(blob)
        done = 0  # bytes of pending already written
        i = 0
        rounds = 0
        fresh = False
        while done < total:
            free = self._free_bytes(self._stop)
            if total - done <= free:
                j = len(pending)
            else:
                j = bisect_right(ends, done + free, lo=i)  # whole commands that fit
            if j == i:
                big = ends[i] - done
                if big >= self.ring_bytes:
                    raise ProtocolError(f"command of {big} bytes is larger than the FIFO ring")
                _, fresh, rounds = self._more_room(fresh, rounds)
                continue
            rounds, fresh = 0, False
            size = ends[j - 1] - done
            if size % 4:
                raise ProtocolError("a batched command is not a whole number of words")
            self._commit_run(mv[done: done + size], size)
            done += size
            i = j
        return total

    def write_words(self, words: np.ndarray | bytes | bytearray | memoryview) -> int:
        """Write a buffer of encoded commands: a numpy uint32 array (an ``(n, k)`` array from
        :func:`svga.commands.encode_many`, one command a row, or 1-D words) or bytes-like.

        As :meth:`write_batch`, whole commands only go into each run: everything at once
        when it fits the free room (one copy, or two across the wrap, and one NEXT_CMD
        update), else the largest prefix of whole commands that fits (rows of a 2-D array;
        in 1-D words, found from the command table), then the rest once the device made
        room. Returns the number of bytes written."""
        # The usual case, in as few steps (issue 19): native uint32 words C-contiguous (an
        # encode_many array), or bytes, fitting the room last seen, no listener: the copy (two
        # at the wrap) and one NEXT_CMD update, with RESERVED around them, as below. An array
        # goes in through the compiled core's word copy where it loaded: glibc's memcpy of a
        # batch is slower under TCG than a word loop (docs/lab.md 'The guest benchmark').
        b = self._b
        if b is not None and self.listener is None and self._reserved is None:
            if type(words) is np.ndarray:
                ok = words.dtype is commands._MANY_U4 and 0 < words.ndim <= 2 and words.flags.c_contiguous
                total = words.nbytes if ok else 0  # else the general code below
            else:
                total = len(words) if type(words) is bytes else 0
            nxt, ring = self._next, self.ring_bytes
            if 0 < total <= ring - (nxt - self._stop) % ring - 4 and not total & 3:
                cp = commands._MANY_COPY
                copy = cp[0] if cp else commands._many_copier()
                w = self._w
                end = nxt + total
                if self._reserveable:
                    w[_RESERVED] = total  # type: ignore[index]
                mx = self.max
                first = total if end <= mx else mx - nxt
                if copy is None or copy(b, nxt, words, 0, first) \
                        or (first < total and copy(b, self.min, words, first, total - first)):
                    data = memoryview(words).cast("B")
                    b[nxt: nxt + first] = data[:first]
                    b[self.min: self.min + total - first] = data[first:]
                if end >= mx:
                    end -= ring
                w[_NEXT_CMD] = end  # type: ignore[index]
                self._next = end
                if self._reserveable:
                    w[_RESERVED] = 0  # type: ignore[index]
                return total
        rows = 0
        if isinstance(words, np.ndarray):
            if words.dtype != np.dtype("<u4"):
                if words.dtype.kind != "u" or words.dtype.itemsize != 4:
                    raise ProtocolError(f"write_words takes uint32 words, not {words.dtype}")
                words = words.astype("<u4")
            if words.ndim == 2:
                rows = words.shape[1] * 4
            elif words.ndim != 1:
                raise ProtocolError(f"write_words takes a 1-D or (n, k) array, not shape {words.shape}")
            data = memoryview(np.ascontiguousarray(words)).cast("B")
        else:
            data = memoryview(words).cast("B")
        total = len(data)
        if total % 4:
            raise ProtocolError(f"write_words got {total} bytes, not a whole number of 32-bit words")
        if self._reserved is not None:
            raise ProtocolError("FIFO write_words before the previous commit")
        done = 0
        rounds = 0
        fresh = False
        while done < total:
            free = self._free_bytes(self._stop)
            size = total - done
            if size > free:
                size = (free // rows * rows) if rows else self._whole_prefix(data, done, free)
            if size <= 0:
                big = rows or self._command_bytes(data, done)
                if big >= self.ring_bytes:
                    raise ProtocolError(f"command of {big} bytes is larger than the FIFO ring")
                _, fresh, rounds = self._more_room(fresh, rounds)
                continue
            rounds, fresh = 0, False
            self._commit_run(data[done: done + size], size)
            done += size
        return total

    def _command_bytes(self, data: memoryview, start: int) -> int:
        words = np.frombuffer(data, dtype="<u4", offset=start)
        try:
            return 4 * commands.length_at(words, 0)
        except IncompleteCommand:
            return len(words) * 4
        except ProtocolError as e:
            raise ProtocolError(f"write_words: {e} at byte {start} of the buffer") from None

    def _whole_prefix(self, data: memoryview, start: int, free: int) -> int:
        """Bytes of the longest run of whole commands from ``start`` within ``free``."""
        words = np.frombuffer(data, dtype="<u4", offset=start)
        limit = min(free // 4, len(words))
        if limit <= 0:
            return 0
        c = _CODECS.get(int(words[0]))
        if c is not None and c.fixed:
            # A run of one fixed-size kind (encode_many's output, flattened): its ids at the
            # command's stride prove the boundaries without a walk.
            k = c.nwords
            m = limit // k
            if m and (words[: m * k: k] == c.id).all():
                return m * k * 4
        pos = 0
        try:
            while pos < limit:
                n = commands.length_at(words, pos)
                if pos + n > limit:
                    break
                pos += n
        except IncompleteCommand:
            pass  # the last command is cut short: it goes once the rest of the room is there
        except ProtocolError as e:
            raise ProtocolError(f"write_words: {e} at byte {start + 4 * pos} of the buffer") from None
        return pos * 4

    # -- waiting --------------------------------------------------------------------------
    def _more_room(self, fresh: bool, rounds: int) -> tuple[int, bool, int]:
        """Not enough room with the STOP last seen: first read STOP again; if it was fresh,
        the ring is full, so let the device catch up (kit: SVGAFIFOFull, legacy path: SYNC,
        then one BUSY read). Returns (STOP, fresh, rounds)."""
        if fresh:
            if rounds > SYNC_ROUNDS:
                self._stalled("the FIFO stays full")
            self.mem.flush()
            self.regs.write(Reg.SYNC, 1)
            self.regs.read(Reg.BUSY)
            rounds += 1
        return self._read_stop(), True, rounds

    def sync(self) -> None:
        """Wait until the device has processed every committed command.

        Repeats SYNC until STOP equals NEXT_CMD (QEMU: BUSY tells nothing and a SYNC runs at
        most 1023 commands; VMware: BUSY reads process the FIFO). After each SYNC the
        pointers are checked; STOP running past NEXT_CMD means the device's parser lost
        the command boundaries: the FIFO is re-initialised and FifoError raised."""
        # The general loop (_sync_general) with every access inlined: the same SYNC/BUSY
        # traffic, the same bounds, overrun and stall checks (the slow calls only when one
        # fails). Each line costs about a microsecond in a TCG guest (issue 19), so the common
        # case (one SYNC, BUSY 0, STOP then at NEXT_CMD) runs the fewest lines. The pre-bound
        # pieces exist only once the FIFO is mapped, has ports and is initialised (none of
        # which is ever undone), so finding them is the whole test for the inlined loop.
        # STOP reaching NEXT_CMD, which was checked to be in the ring, consumed exactly what
        # was pending (no overrun): the health checks and the stall count run only otherwise.
        reader = self._ring_reader
        if reader is not None:
            reader()  # before STOP is read below (see 'Ring reader')
        try:
            key, w, step, poll, ring_words = self._sync_ops  # type: ignore[has-type]
            if key is not (self._rr or self._pr):
                raise AttributeError  # the ports were swapped (a test, a wrapper): look again
        except AttributeError:
            if not self._fast or not self.initialised or self._w is None:
                if self.initialised:
                    self._sync_general()
                return
            key, w, step, poll, ring_words = self._sync_ops = self._sync_ops_now()
        nxt = self._next
        stop = w[_STOP]
        if stop == nxt:
            self._stop = stop
            return
        if stop not in ring_words or nxt not in ring_words:
            self.check_health(nxt, stop, stop, (nxt - stop) % self.ring_bytes)  # raises
        # (self._stop keeps its older value until the next read: a stale STOP only
        # under-states the free space.)
        rounds = 0
        while True:
            if step():  # (a flush of FIFO memory, then) SYNC = 1 and one BUSY read
                polls = 0
                while True:
                    polls += 1
                    if polls > BUSY_POLLS:
                        self._stalled("BUSY never returns to 0")
                    if not poll():
                        break
            stop2 = w[_STOP]
            self._stop = stop2
            if stop2 == nxt:
                return
            ring = self.ring_bytes
            pending = (nxt - stop) % ring
            if stop2 not in ring_words or (stop2 - stop) % ring > pending:
                self.check_health(nxt, stop2, stop, pending)  # raises
            if stop2 == stop:
                rounds += 1
                if rounds > SYNC_ROUNDS // 100:
                    self._stalled("SYNC moves nothing")
            else:
                rounds = 0
            stop = stop2

    def _sync_ops_now(self) -> tuple[Any, memoryview, Callable[[], int], Callable[[], int], range]:
        """For :meth:`sync`: (the register read it was made from, the FIFO's 32-bit words,
        SYNC-then-BUSY as one call, one more BUSY read, the valid ring offsets as a range);
        only for a mapped FIFO with ports (``_fast``). SYNC-then-BUSY is the
        transport's ``sync_op`` where it has one (PciTransport: four syscalls in one call),
        else the same traffic through the register functions or the ports; where the FIFO
        memory needs a flush, it comes first."""
        rw, rr, pw, pr = self._rw, self._rr, self._pw, self._pr
        assert pw is not None and pr is not None
        owner = getattr(pw, "__self__", None)
        op = getattr(type(owner), "sync_op", None)
        step: Callable[[], int] | None = op(owner) if op is not None and rr is not None else None
        if rw is not None and rr is not None:
            def poll() -> int:
                return rr(_REG_BUSY)

            if step is None:
                def step() -> int:
                    rw(_REG_SYNC, 1)
                    return rr(_REG_BUSY)
        else:
            def poll() -> int:
                pw(INDEX_PORT, _REG_BUSY)
                return pr(VALUE_PORT) & 0xFFFFFFFF

            def step() -> int:
                pw(INDEX_PORT, _REG_SYNC)
                pw(VALUE_PORT, 1)
                return poll()
        flush = self._flush
        if flush is not None:  # memory that needs it (not the mapped BARs): before every SYNC
            sync_busy = step

            def step() -> int:
                flush()
                return sync_busy()
        assert self._w is not None
        return rr or pr, self._w, step, poll, range(self.min, self.max, 4)

    def _sync_general(self) -> None:
        rounds = 0
        while True:
            nxt, stop = self.pointers()
            if nxt == stop:
                return
            pending = (nxt - stop) % self.ring_bytes
            self.mem.flush()
            self.regs.write(Reg.SYNC, 1)
            polls = 0
            while self.regs.read(Reg.BUSY):
                polls += 1
                if polls > BUSY_POLLS:
                    self._stalled("BUSY never returns to 0")
            nxt2, stop2 = self.pointers()
            self.check_health(nxt2, stop2, stop, pending)
            if stop2 == stop:
                rounds += 1
                if rounds > SYNC_ROUNDS // 100:
                    self._stalled("SYNC moves nothing")
            else:
                rounds = 0

    def check_health(self, nxt: int, stop: int, stop_before: int, pending_before: int) -> None:
        """After a SYNC: the pointers must be in the ring, and STOP may not have moved by
        more than was pending (else the device read past NEXT_CMD)."""
        bad = [name for name, v in (("NEXT_CMD", nxt), ("STOP", stop))
               if v % 4 or not self.min <= v < self.max]
        if bad:
            self.reinit()
            raise FifoError(
                f"FIFO {bad[0]} is {stop if bad[0] == 'STOP' else nxt}, outside the ring "
                f"[{self.min}, {self.max}); the FIFO was re-initialised and pending commands were lost"
            )
        consumed = (stop - stop_before) % self.ring_bytes
        if consumed > pending_before:
            self.overruns += 1
            over = consumed - pending_before
            self.reinit()
            raise FifoError(
                f"the device's FIFO parser ran {over} bytes past NEXT_CMD (a command it does not "
                f"count right); the FIFO was re-initialised and stale commands may have been replayed"
            )

    def reinit(self) -> None:
        """Recover a broken FIFO: CONFIG_DONE 0, the four pointers, CONFIG_DONE 1."""
        log.warning("re-initialising the SVGA FIFO")
        self.init()

    def _stalled(self, why: str) -> None:
        nxt, stop = self.pointers()
        what = self.describe_at(stop)
        raise FifoError(f"FIFO stalled ({why}): STOP={stop} NEXT_CMD={nxt}, next command {what}")

    def describe_at(self, offset: int) -> str:
        """Name the command at a FIFO offset, for error messages."""
        try:
            cid = self.mem.read32(offset)
            return f"{commands.spec_for(cid).name} at FIFO offset {offset}"
        except Exception:  # noqa: BLE001 - only for a message
            return f"id {self.mem.read32(offset)} at FIFO offset {offset}"

    # -- fences (kit: SVGA_InsertFence, SVGA_SyncToFence, SVGA_HasFencePassed) -----------
    def insert_fence(self) -> int:
        """Emit a FENCE and return its value; without FIFO_CAP_FENCE emit nothing and
        return 1 (waiting on it then means a full sync)."""
        if not self.offers(commands.Cmd.FENCE):
            return 1
        self.next_fence = (self.next_fence + 1) & 0xFFFFFFFF
        if self.next_fence == 0:
            self.next_fence = 1  # 0 means "no fence"
        self.send(commands.Cmd.FENCE, fence=self.next_fence)
        return self.next_fence

    def fence_passed(self, fence: int) -> bool:
        if not fence:
            return True
        if not self.offers(commands.Cmd.FENCE):
            return False
        diff = (self._get(FifoReg.FENCE) - fence) & 0xFFFFFFFF
        return diff < 0x80000000  # (int32)(FIFO_FENCE - fence) >= 0

    def sync_to_fence(self, fence: int) -> None:
        """Wait until the device has passed ``fence``."""
        if not self.offers(commands.Cmd.FENCE):
            self.sync()
            return
        if self.fence_passed(fence):
            return
        # Legacy path of the kit's SVGA_SyncToFence: SYNC, then poll BUSY (on VMware each
        # BUSY read processes the FIFO) until the fence passes or the device goes idle.
        self.mem.flush()
        self.regs.write(Reg.SYNC, 1)
        polls = 0
        while True:
            busy = self.regs.read(Reg.BUSY)
            if self.fence_passed(fence):
                return
            if not busy:
                raise FifoError(
                    f"the device is idle but fence {fence} has not passed "
                    f"(FIFO_FENCE={self._get(FifoReg.FENCE)})"
                )
            polls += 1
            if polls > BUSY_POLLS:
                self._stalled(f"fence {fence} never passes")
