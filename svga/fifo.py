"""Driver layer: the SVGA II command FIFO in BAR2, as the VMware developer kit drives it.

The FIFO is a ring of 32-bit words in BAR2. Its first words are registers: MIN and MAX
bound the ring (the guest chooses them), NEXT_CMD is where the guest writes next, STOP is
where the device reads next. Empty is NEXT_CMD == STOP, so the guest never fills the last
dword (full would then look empty). With SVGA_CAP_EXTENDED_FIFO more registers follow
(capabilities, fence, cursor bypass 3, RESERVED, BUSY, ...) and MIN must leave room for
them.

This module follows the kit's reference driver (lib/refdriver/svga.c), rule by rule:

- :meth:`Fifo.reserve` / :meth:`Fifo.commit`: a command is written in place when the space
  up to MAX (or STOP) is contiguous and the device offers FIFO_CAP_RESERVE (then
  FIFO_RESERVED says how many bytes past NEXT_CMD hold real data) or the command is one
  dword; otherwise it goes through a bounce buffer. Without FIFO_CAP_RESERVE the bounce
  buffer is committed one dword at a time, NEXT_CMD moving after each, because the device
  only promises to keep STOP..NEXT_CMD plus the reserved bytes (svga_interface.txt).
- When the ring is full the driver asks the device to catch up (SYNC, then BUSY).
- Fences exist only with FIFO_CAP_FENCE; without it SYNC/BUSY stands in for them.
- :meth:`Fifo.write_batch` is the throughput path: many pre-encoded commands, whole
  commands only, one copy per contiguous run and one NEXT_CMD update per run.
- :meth:`Fifo.sync` drains the ring in a way that is right on QEMU too: QEMU's BUSY always
  reads 0 and one SYNC runs at most 1023 commands, so SYNC is repeated until STOP reaches
  NEXT_CMD; STOP running past NEXT_CMD (QEMU's parser overrunning on a command it does not
  count right) is reported and the FIFO re-initialised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from svga import commands
from svga.errors import FifoError, ProtocolError
from svga.registers import (
    FIFO_MIN_RING_BYTES,
    FIFO_MIN_SIZE_LEGACY,
    FIFO_NUM_REGS,
    Cap,
    FifoCap,
    FifoReg,
    Reg,
    RegisterFile,
    fifo_reg_valid,
)
from svga.transport.base import Memory

log = logging.getLogger(__name__)

BOUNCE_BUFFER_BYTES = 1 << 20
"""Largest single command (the kit's static bounce buffer is 1 MiB too)."""
SYNC_ROUNDS = 10_000
"""SYNC writes without any progress before the FIFO is declared stalled."""
BUSY_POLLS = 100_000
"""BUSY reads after one SYNC before giving up on the device going idle."""


@dataclass
class Reservation:
    """Space handed out by :meth:`Fifo.reserve`: fill ``buf`` then call ``commit``."""

    nbytes: int
    buf: np.ndarray | bytearray
    in_place: bool
    offset: int  # FIFO byte offset where the data will start


class Fifo:
    """The command ring of one device. Made by the device object; use it through
    ``Device`` unless you write raw commands."""

    def __init__(self, regs: RegisterFile, mem: Memory, caps: Cap, mem_regs: int = 0,
                 mem_size: int | None = None) -> None:
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
        self.fifo_caps = FifoCap(0)
        self.next_fence = 0
        self._reserved: Reservation | None = None
        # Only the driver writes NEXT_CMD, so it keeps its own copy; STOP is the device's
        # and is re-read only when the space last seen is not enough (a stale STOP only
        # under-states the free space). On qtest every FIFO read is a round trip.
        self._next = self.min
        self._stop = self.min
        self.overruns = 0
        self.initialised = False

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
        this device's capabilities and FIFO capabilities)."""
        return commands.offered(cmd, self.caps, self.fifo_caps, self.extended and self.initialised)

    @property
    def ring_bytes(self) -> int:
        return self.max - self.min

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
    def reserve(self, nbytes: int) -> Reservation:
        """Reserve ``nbytes`` (a multiple of 4) for one or more commands."""
        if self._reserved is not None:
            raise ProtocolError("FIFO reserve before the previous commit")
        if nbytes <= 0 or nbytes % 4:
            raise ProtocolError(f"FIFO reservation of {nbytes} bytes is not a positive multiple of 4")
        if nbytes > BOUNCE_BUFFER_BYTES or nbytes >= self.ring_bytes:
            raise ProtocolError(
                f"command of {nbytes} bytes is larger than the FIFO ring ({self.ring_bytes} bytes)"
            )
        reserveable = self.has_cap(FifoCap.RESERVE)
        rounds = 0
        nxt, stop, fresh = self._next, self._stop, False
        while True:
            in_place = False  # else the bounce buffer
            if nxt >= stop:
                # No valid data between NEXT_CMD and MAX.
                if nxt + nbytes < self.max or (nxt + nbytes == self.max and stop > self.min):
                    # Contiguous room up to MAX. On "==" we write exactly up to MAX, which
                    # is fine only if a dword stays free at MIN.
                    in_place = True
                elif (self.max - nxt) + (stop - self.min) <= nbytes:
                    # "<=": one dword must stay free, or full would look empty.
                    stop, fresh, rounds = self._more_room(fresh, rounds)
                    continue
                # else: it fits only split across the wrap, so it is bounced.
            elif nxt + nbytes < stop:
                in_place = True
            else:
                stop, fresh, rounds = self._more_room(fresh, rounds)
                continue
            if in_place and not (reserveable or nbytes <= 4):
                # Without FIFO_CAP_RESERVE the device may not keep data past NEXT_CMD.
                in_place = False
            if in_place:
                arr = self.mem.array()
                if reserveable:
                    self._set(FifoReg.RESERVED, nbytes)
                if arr is not None:
                    buf: np.ndarray | bytearray = arr[nxt: nxt + nbytes]
                else:
                    buf = bytearray(nbytes)  # staged, written in one piece at commit
                self._reserved = Reservation(nbytes, buf, True, nxt)
            else:
                self._reserved = Reservation(nbytes, bytearray(nbytes), False, nxt)
            return self._reserved

    def commit(self, nbytes: int | None = None) -> None:
        """Commit ``nbytes`` (default: all) of the last reservation."""
        res = self._reserved
        if res is None:
            raise ProtocolError("FIFO commit without a reservation")
        self._reserved = None
        n = res.nbytes if nbytes is None else nbytes
        if n % 4 or not 0 <= n <= res.nbytes:
            raise ProtocolError(f"FIFO commit of {n} bytes does not match a {res.nbytes}-byte reservation")
        reserveable = self.has_cap(FifoCap.RESERVE)
        nxt = self._next
        if res.in_place:
            if isinstance(res.buf, bytearray):
                self.mem.write(nxt, bytes(res.buf[:n]))
            self._advance(nxt, n)
        elif reserveable:
            # Bulk copy out of the bounce buffer in two chunks, then one NEXT_CMD update.
            self._set(FifoReg.RESERVED, n)
            first = min(n, self.max - nxt)
            self.mem.write(nxt, bytes(res.buf[:first]))
            if n > first:
                self.mem.write(self.min, bytes(res.buf[first:n]))
            self._advance(nxt, n)
        else:
            # Slowest path: one dword at a time, NEXT_CMD following each, so the device
            # never has to keep uncommitted data.
            words = np.frombuffer(bytes(res.buf[:n]), dtype="<u4")
            for w in words:
                self.mem.write32(nxt, int(w))
                nxt += 4
                if nxt == self.max:
                    nxt = self.min
                self._set(FifoReg.NEXT_CMD, nxt)
                self._next = nxt
        if reserveable:
            self._set(FifoReg.RESERVED, 0)

    def _advance(self, nxt: int, n: int) -> None:
        nxt += n
        if nxt >= self.max:
            nxt -= self.ring_bytes
        self._set(FifoReg.NEXT_CMD, nxt)
        self._next = nxt

    def write_command(self, data: bytes) -> None:
        """Reserve, copy and commit one encoded command (or several back to back)."""
        res = self.reserve(len(data))
        res.buf[:] = np.frombuffer(data, dtype=np.uint8) if isinstance(res.buf, np.ndarray) else data
        self.commit()

    def send(self, cmd: int | str, **fields: int | bytes) -> None:
        """Encode with the command table and write: ``fifo.send("UPDATE", x=0, ...)``."""
        self.write_command(commands.encode(cmd, **fields))

    # -- the batch path -----------------------------------------------------------------
    def write_batch(self, cmds: Iterable[bytes]) -> int:
        """Write many pre-encoded commands with one copy per contiguous run.

        Whole commands only go into each run (a command may straddle MAX: it is then two
        runs, both written before NEXT_CMD moves), so the device never sees half a command.
        With FIFO_CAP_RESERVE, FIFO_RESERVED covers the run while it is copied. Returns the
        number of bytes written."""
        reserveable = self.has_cap(FifoCap.RESERVE)
        pending = list(cmds)
        total = 0
        i = 0
        rounds = 0
        fresh = False
        while i < len(pending):
            free = self._free_bytes(self._stop)
            take: list[bytes] = []
            size = 0
            while i < len(pending) and size + len(pending[i]) <= free:
                take.append(pending[i])
                size += len(pending[i])
                i += 1
            if not take:
                if len(pending[i]) >= self.ring_bytes:
                    raise ProtocolError(
                        f"command of {len(pending[i])} bytes is larger than the FIFO ring"
                    )
                _, fresh, rounds = self._more_room(fresh, rounds)
                continue
            rounds, fresh = 0, False
            blob = b"".join(take)
            if len(blob) % 4:
                raise ProtocolError("a batched command is not a whole number of words")
            nxt = self._next
            if reserveable:
                self._set(FifoReg.RESERVED, size)
            first = min(size, self.max - nxt)
            self.mem.write(nxt, blob[:first])
            if size > first:
                self.mem.write(self.min, blob[first:])
            self._advance(nxt, size)
            if reserveable:
                self._set(FifoReg.RESERVED, 0)
            total += size
        return total

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
        if not self.initialised:
            return
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
