"""Model layer: the device side of the command FIFO.

A run (a SYNC write, a BUSY read on VMware, a display refresh on QEMU) does what the host
does with BAR2: check the four pointers, take the words STOP..NEXT_CMD (wrapping from MAX
to MIN), decode each command with :func:`svga.commands.decode` (the one command table),
check that the profile offers it, hand it to :class:`svga.model.executor.Executor`, and
move STOP past it. Runs of UPDATE, RECT_FILL and RECT_COPY take the fast path
(:mod:`svga.model.fastpath`), which hands back every command it does not take as it is, so
everything below holds for them too (``fast=False`` turns it off).

Errors never stop the model from staying consistent:

- bad pointers: nothing is processed;
- a command the profile does not offer, or one whose arguments are wrong: it is skipped by
  its table length and later commands still run;
- an unknown id (or a zero word): its length is unknown, so the rest of the pending stream
  is dropped (STOP = NEXT_CMD); STOP never runs past NEXT_CMD, unlike QEMU's parser;
- a command running past NEXT_CMD: STOP stays at its start (as QEMU rewinds), so it runs
  once the guest has written the rest.

All errors of a run are raised together at its end as one :class:`ModelError` (the first
error's message; ``errors`` holds them all), or handed one by one to the observer of a
non-raising model (:mod:`svga.model.report`); QEMU's per-run cap is reported as a note.
The host-owned FIFO registers of the extended FIFO (CAPABILITIES, FLAGS, FENCE, BUSY) are
written only when they exist, i.e. with the extended FIFO enabled and below MIN; cursor
bypass 3 is read from CURSOR_ON/X/Y when CURSOR_COUNT changes.
"""

from __future__ import annotations

import logging

import numpy as np

from svga.commands import BY_ID, Cmd, decode
from svga.errors import IncompleteCommand, ModelError, ProtocolError, UnknownCommand
from svga.facts.effects import E
from svga.facts.profiles import Profile
from svga.facts.qemu import QEMU_INSTEAD, Q
from svga.model.executor import Executor
from svga.model.fastpath import CHUNK_WORDS, MAX_WORDS, FastPath
from svga.model.gmr import GuestMemory
from svga.model.report import Reporter
from svga.model.state import CursorPosition, DeviceState
from svga.registers import (
    FIFO_EXTENDED_MANDATORY_REGS,
    FIFO_MIN_RING_BYTES,
    FIFO_MIN_SIZE_LEGACY,
    FIFO_RESERVED_UNKNOWN,
    SVGA_ID_INVALID,
    FifoCap,
    FifoReg,
    fifo_reg_valid,
)

log = logging.getLogger(__name__)


_POINTERS = int(FifoReg.STOP) + 1
_STOP = int(FifoReg.STOP)
assert (FifoReg.MIN, FifoReg.MAX, FifoReg.NEXT_CMD, FifoReg.STOP) == (0, 1, 2, 3)


def _signed(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


class FifoEngine:
    """Processes the FIFO in ``fifo`` (the model's BAR2 array) into ``vram``."""

    def __init__(self, profile: Profile, state: DeviceState, fifo: np.ndarray, vram: np.ndarray,
                 reporter: Reporter | None = None, guest: GuestMemory | None = None,
                 fast: bool = True) -> None:
        self.profile = profile
        self.state = state
        self.fifo_size = len(fifo)
        self._w = fifo.view("<u4")
        self.reporter = reporter or Reporter()
        self.executor = Executor(profile, state, vram, self.set_fifo_reg, self.reporter, guest)
        self.cursor_updates = 0
        self.fast: FastPath | None = FastPath(profile, state, self.executor, vram) if fast else None
        """The fast path for UPDATE, RECT_FILL and RECT_COPY (:mod:`svga.model.fastpath`);
        None: every command takes the strict path."""
        # What a run asks of the profile, asked once (the profile does not change).
        fifo_caps = int(profile.fifo_capabilities)
        self._bypass3 = bool(fifo_caps & FifoCap.CURSOR_BYPASS_3)
        self._reserve = bool(fifo_caps & FifoCap.RESERVE)
        cap_row = profile.quirk(Q.SYNC_CAP)
        self._run_cap: int | None = int(cap_row.value) if cap_row is not None else None  # type: ignore[call-overload]
        self._busy_reg = int(FifoReg.BUSY)
        self._ext_min: int | None = None
        self._ext = False

    # -- FIFO registers ----------------------------------------------------------------------
    def get(self, reg: int) -> int:
        return int(self._w[reg])

    def pointers(self) -> tuple[int, int, int, int]:
        """(MIN, MAX, NEXT_CMD, STOP) as the guest has written them."""
        fifo_min, fifo_max, nxt, stop = self._w[:_POINTERS].tolist()
        return fifo_min, fifo_max, nxt, stop

    def extended_active(self) -> bool:
        return self._extended_active(self.get(FifoReg.MIN))

    def _extended_active(self, fifo_min: int) -> bool:
        """The profile's answer for this MIN, remembered for the last MIN asked about."""
        if fifo_min != self._ext_min:
            self._ext_min, self._ext = fifo_min, self.profile.extended_active(fifo_min)
        return self._ext

    def fifo_reg_exists(self, reg: int) -> bool:
        """Whether the host may use FIFO register ``reg`` now: the four pointers always; the
        rest only with the extended FIFO enabled and below MIN."""
        if reg < _POINTERS:
            return True
        fifo_min = int(self._w[0])
        return (self._extended_active(fifo_min) and fifo_reg_valid(reg, fifo_min)
                and reg * 4 < self.fifo_size)

    def set_fifo_reg(self, reg: int, value: int) -> bool:
        """Write a host-owned FIFO register if it exists; return whether it was written."""
        if reg < _POINTERS or not self.fifo_reg_exists(reg):
            return False
        self._w[reg] = value & 0xFFFFFFFF
        return True

    def publish_caps(self, force: bool = False) -> None:
        """Put the FIFO capabilities and flags where the guest reads them. At reset
        (``force``) the ring is not laid out yet and the words are written as a VMware host
        fills them before the driver starts; at CONFIG_DONE only if they exist."""
        if not self.profile.extended_fifo:
            return
        regs = [(FifoReg.CAPABILITIES, int(self.profile.fifo_capabilities)),
                (FifoReg.FLAGS, int(self.profile.fifo_flags))]
        if force and self.profile.fifo_capabilities & (FifoCap.SCREEN_OBJECT | FifoCap.SCREEN_OBJECT_2):
            # The host initialises CURSOR_SCREEN_ID to "virtual coordinates" (docs/svga-kit.md
            # 'Choices where the kit is ambiguous').
            regs.append((FifoReg.CURSOR_SCREEN_ID, SVGA_ID_INVALID))
        for reg, value in regs:
            if force:
                self._w[reg] = value
            else:
                self.set_fifo_reg(reg, value)

    def poll_cursor(self) -> None:
        """Cursor bypass 3: act on SVGA_FIFO_CURSOR_ON/X/Y when CURSOR_COUNT has changed."""
        if not self._bypass3:
            return
        if not self.fifo_reg_exists(FifoReg.CURSOR_COUNT):
            return
        count = self.get(FifoReg.CURSOR_COUNT)
        if count == self.state.fifo_cursor_count:
            return
        self.state.fifo_cursor_count = count
        screen_id = SVGA_ID_INVALID
        if (self.profile.fifo_capabilities & (FifoCap.SCREEN_OBJECT | FifoCap.SCREEN_OBJECT_2)
                and self.fifo_reg_exists(FifoReg.CURSOR_SCREEN_ID)):
            screen_id = self.get(FifoReg.CURSOR_SCREEN_ID)  # docs/svga-kit.md 'Cursor screen id'
        self.state.cursor_pos = CursorPosition(_signed(self.get(FifoReg.CURSOR_X)),
                                               _signed(self.get(FifoReg.CURSOR_Y)),
                                               self.get(FifoReg.CURSOR_ON) != 0, screen_id)
        self.cursor_updates += 1
        self.set_fifo_reg(FifoReg.CURSOR_LAST_UPDATED, self.cursor_updates)

    # -- pointer checks ---------------------------------------------------------------------
    def pointer_problem(self, fifo_min: int, fifo_max: int, nxt: int, stop: int) -> str | None:
        """Why the host must not touch the ring with these pointers, or None."""
        if (not (fifo_min | fifo_max | nxt | stop) & 3 and FIFO_MIN_SIZE_LEGACY <= fifo_min
                and fifo_min + FIFO_MIN_RING_BYTES <= fifo_max <= self.fifo_size
                and fifo_min <= nxt < fifo_max and fifo_min <= stop < fifo_max):
            return None  # all the checks below, at once
        named = (("MIN", fifo_min), ("MAX", fifo_max), ("NEXT_CMD", nxt), ("STOP", stop))
        for name, v in named:
            if v & 3:
                return f"{name}={v} is not 4-byte aligned"
        if fifo_min < FIFO_MIN_SIZE_LEGACY:
            return f"MIN={fifo_min} is below {FIFO_MIN_SIZE_LEGACY} (the four pointer registers)"
        if fifo_max > self.fifo_size:
            return f"MAX={fifo_max} is beyond the {self.fifo_size}-byte FIFO"
        if fifo_max < fifo_min + FIFO_MIN_RING_BYTES:
            return f"MAX - MIN = {fifo_max - fifo_min} bytes is below the 10 KiB minimum (MIN={fifo_min})"
        for name, v in named[2:]:
            if not fifo_min <= v < fifo_max:
                return f"{name}={v} is outside the ring [MIN={fifo_min}, MAX={fifo_max})"
        return None

    # -- running ---------------------------------------------------------------------------
    def drained(self) -> bool:
        return self.get(FifoReg.NEXT_CMD) == self.get(FifoReg.STOP)

    def busy(self) -> int:
        """SVGA_REG_BUSY: VMware processes the FIFO on each read and reads 0 once drained;
        QEMU reads 0 and does nothing (quirk ``busy-reads-zero``)."""
        if self.profile.quirk(Q.BUSY_READS_ZERO) is not None:
            return 0
        if not self.state.fifo_running:
            return 0
        self.run()
        return 0 if self.drained() else 1

    def run(self) -> int:
        """One FIFO run. Returns the number of commands taken from the ring; raises
        ModelError at the end if any of them (or the pointers) were bad."""
        if not self.state.fifo_running:
            return 0
        fifo_min, fifo_max, nxt, stop = self.pointers()
        problem = self.pointer_problem(fifo_min, fifo_max, nxt, stop)
        if problem is not None:
            self.reporter.fail([ModelError(f"FIFO pointer check failed, nothing processed: {problem}",
                                           key=E.FIFO_POINTERS)])
            return 0
        self.poll_cursor()
        errors = self._check_reserved(fifo_min, fifo_max, nxt, stop)
        ring = fifo_max - fifo_min
        if nxt >= stop:
            words = self._w[stop // 4: nxt // 4].copy()
        else:
            words = np.concatenate([self._w[stop // 4: fifo_max // 4], self._w[fifo_min // 4: nxt // 4]])

        def offset_of(pos: int) -> int:
            off = stop + pos * 4
            return off - ring if off >= fifo_max else off

        cap = self._run_cap
        limit = cap if cap is not None else len(words)  # a command is at least one word
        ext = self._extended_active(fifo_min)
        fast = self.fast if self.fast is not None and self.reporter.observer is None else None
        if fast is not None and not fast.begin(ext):
            fast = None
        chunk: list[int] = []
        chunk_at = 0
        pos = count = 0
        try:
            while pos < len(words) and count < limit:
                ran = fast.run_words(words, pos, limit - count) if fast is not None else None
                if ran is not None:
                    # The compiled core took what it could in one call; what it leaves (another
                    # command, a bad rectangle, a command cut by NEXT_CMD) is the strict path's.
                    pos, done, _ = ran
                    count += done
                    if pos >= len(words) or count >= limit:
                        break
                elif fast is not None:
                    # The fast path takes what it can; what it leaves is the strict path's.
                    fresh = not chunk_at <= pos < chunk_at + len(chunk)
                    if fresh:
                        chunk_at = pos
                        chunk = words[pos: pos + min(MAX_WORDS * (limit - count), CHUNK_WORDS)].tolist()
                    p, done, at_end = fast.run(chunk, pos - chunk_at, limit - count)
                    pos, count = chunk_at + p, count + done
                    if at_end and chunk_at + len(chunk) < len(words) and (done or not fresh):
                        chunk = []  # more words than the chunk holds: take the next
                        continue
                    if pos >= len(words) or count >= limit:
                        break
                count += 1
                off = offset_of(pos)
                try:
                    cmd, n = decode(words, pos, base_offset=off)
                except UnknownCommand as e:
                    errors.append(self._unknown(e.cmd_id, off, (len(words) - pos) * 4))
                    pos = len(words)
                    break
                except IncompleteCommand as e:
                    errors.append(self._incomplete(e, off, ring))
                    break
                except ProtocolError as e:
                    dropped = (len(words) - pos) * 4
                    errors.append(ModelError(f"{e}; the {dropped} bytes up to NEXT_CMD were dropped "
                                             "(the command's length is unknown)", None, off,
                                             E.UNDECODABLE))
                    pos = len(words)
                    break
                pos += n
                try:
                    if not self.profile.offers(cmd.cmd_id, ext):
                        applied = self.profile.quirk(Q.CURSOR_WITHOUT_CAP)
                        anyway = applied is not None and cmd.cmd_id in applied.value  # type: ignore[operator]
                        refused = self._not_offered(cmd.cmd_id, cmd.name, off, fifo_min, ext, anyway)
                        if not anyway:
                            raise refused
                        errors.append(refused)  # QEMU applies it all the same
                    self.executor.execute(cmd, off)
                except ModelError as e:
                    errors.append(e)
            if pos < len(words) and cap is not None and count >= cap:
                spec = BY_ID.get(int(words[pos]))
                self.reporter.note(E.RUN_CAP, f"this FIFO run had already run {count} commands",
                                   spec.name if spec else None, offset_of(pos))
        finally:
            self._w[_STOP] = offset_of(pos)
        if pos == len(words):
            self.set_fifo_reg(self._busy_reg, 0)
        if errors:
            self.reporter.fail(errors)
        return count

    # -- errors ------------------------------------------------------------------------------
    def _desync_note(self, cmd_id: int) -> str:
        row = self.profile.note(Q.PARSER_DESYNC)
        if row is None or cmd_id in row.value:  # type: ignore[operator]
            return ""
        return ("; QEMU 7.2's FIFO parser would lose the command boundaries here"
                + QEMU_INSTEAD.get(cmd_id, ""))

    def _unknown(self, cmd_id: int, off: int, dropped: int) -> ModelError:
        what = "INVALID_CMD (a zero word)" if cmd_id == Cmd.INVALID_CMD else f"unknown command id {cmd_id}"
        detail = (f"the {dropped} bytes up to NEXT_CMD were dropped (the command's length is "
                  f"unknown){self._desync_note(cmd_id)}")
        return ModelError(f"{what} at FIFO offset {off}: {detail}", None if cmd_id else "INVALID_CMD",
                          off, E.UNKNOWN_ID, f"{what}: {detail}")

    def _incomplete(self, e: IncompleteCommand, off: int, ring: int) -> ModelError:
        detail = (f"incomplete: it needs {e.needed} words but only {e.available} are committed "
                  "before NEXT_CMD; STOP stays at the command")
        if (e.needed + 1) * 4 > ring:
            detail += f" (it can never fit: the ring holds {ring // 4 - 1} words)"
        return ModelError(f"{e.name} at FIFO offset {off} is {detail}", e.name, off, E.INCOMPLETE, detail)

    def _not_offered(self, cmd_id: int, name: str, off: int, fifo_min: int, ext: bool,
                     anyway: bool = False) -> ModelError:
        needs = BY_ID[cmd_id].needs
        detail = f"not offered by this device (profile {self.profile.name}, needs {needs.text()})"
        if needs.fifo_any and self.profile.extended_fifo and not ext:
            detail += (f"; the extended FIFO is off because MIN={fifo_min} is below "
                       f"{FIFO_EXTENDED_MANDATORY_REGS * 4}")
        detail += "; applied all the same, as QEMU does" if anyway else "; skipped"
        detail += self._desync_note(cmd_id)
        return ModelError(f"{name} at FIFO offset {off}: {detail}", name, off,
                          self.profile.not_offered(cmd_id), detail)

    def _check_reserved(self, fifo_min: int, fifo_max: int, nxt: int, stop: int) -> list[ModelError]:
        """SVGA_FIFO_RESERVED (FIFO_CAP_RESERVE): bytes past NEXT_CMD the guest is filling in
        place. The model never writes the ring, so it only checks the value is sane."""
        if not (self._reserve and self.fifo_reg_exists(FifoReg.RESERVED)):
            return []
        reserved = self.get(FifoReg.RESERVED)
        ring = fifo_max - fifo_min
        room = ring - (nxt - stop) % ring
        if reserved in (0, FIFO_RESERVED_UNKNOWN) or reserved <= room:
            return []
        return [ModelError(f"FIFO_RESERVED={reserved} is more than the {room} bytes free after "
                           f"NEXT_CMD={nxt}")]
