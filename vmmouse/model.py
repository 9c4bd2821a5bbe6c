"""A software model of QEMU's vmport backdoor with its vmmouse, for tests and dry runs.

It answers ``call(command, argument)`` like ``vmmouse.backdoor.Backdoor`` (the transport
interface of the input side), following QEMU hw/i386/vmport.c and hw/i386/vmmouse.c:

- GETVERSION answers version 6, the magic in EBX and VMX type 2 in ECX;
- commands it does not know (RESTRICT is one) put 0xFFFFFFFF in EAX and do nothing;
- READ_ID appends VERSION_ID after whatever is queued, clears the status and hooks the
  device into the input core; REQUEST_* only act while the status is clear; DISABLE sets the
  status to 0xffff and unhooks it without flushing the queue;
- DATA with n == 0, n > 6 or n > queued is the fatal case: status 0xffff, device unhooked,
  registers returned unchanged (``faults`` records it, so a test can assert it never happens);
- host events are queued only while hooked, 4 words each, dropped above 1020 queued words;
  absolute x/y arrive as the input core's 0..0x7FFF and are doubled (QEMU <= 8.1) or scaled
  exactly to 0..0xFFFF (8.2+); relative packets carry 0x00010000 (8.1+);
- ``host_relative`` stands for a host that sends relative packets whatever the guest asked
  (VMware's "optimize mouse for games"); ``relative_flag`` then says whether they are marked
  (docs/vmmouse.md 'Relative flag'). In relative mode ``mouse_event``'s x and y are the steps.

``present=False`` models an unclaimed port (bare metal, another hypervisor): EAX reads
0xFFFFFFFF and the other registers keep what was put in them.
"""

from __future__ import annotations

from collections.abc import Callable

from vmmouse.backdoor import Registers
from vmmouse.events import Buttons
from vmmouse.protocol import (
    DATA_MAX_WORDS,
    MAGIC,
    PACKET_WORDS,
    PORT,
    QUEUE_WORDS,
    STATUS_FLAGS_ERROR,
    UNCLAIMED,
    VERSION_ID,
    Command,
    PacketButton,
    PacketFlag,
    PointerCommand,
)

QEMU_INPUT_ABS_MAX = 0x7FFF     # the QEMU input core's absolute range (INPUT_EVENT_ABS_MAX)
BACKDOOR_VERSION = 6
VMX_TYPE = 2


class VMPortModel:
    """QEMU's backdoor port and vmmouse, one call at a time."""

    def __init__(self, *, present: bool = True, vmmouse: bool = True, exact_scaling: bool = False,
                 relative_flag: bool = True, notify: Callable[[], None] | None = None,
                 host_relative: bool = False) -> None:
        self.present = present
        self.vmmouse = vmmouse
        self.exact_scaling = exact_scaling
        self.relative_flag = relative_flag
        self.host_relative = host_relative
        self.notify = notify            # the fake PS/2 packet each queued event raises
        self.queue: list[int] = []
        self.status = STATUS_FLAGS_ERROR
        self.absolute = False
        self.hooked = False
        self.calls: list[tuple[int, int]] = []
        self.faults: list[str] = []

    # --- guest side: the backdoor ---------------------------------------------------------

    def call(self, command: int, argument: int = 0) -> Registers:
        self.calls.append((command, argument))
        regs = [MAGIC, argument & 0xFFFFFFFF, command & 0xFFFFFFFF, PORT, 0, 0]
        if not self.present:
            regs[0] = UNCLAIMED
            return Registers(*regs)
        cmd = command & 0xFFFF
        if cmd == Command.GETVERSION:
            regs[0], regs[1], regs[2] = BACKDOOR_VERSION, MAGIC, VMX_TYPE
        elif self.vmmouse and cmd == Command.ABSPOINTER_STATUS:
            regs[0] = (self.status << 16) | len(self.queue)
        elif self.vmmouse and cmd == Command.ABSPOINTER_COMMAND:
            self._command(argument)
        elif self.vmmouse and cmd == Command.ABSPOINTER_DATA:
            n = argument
            if n == 0 or n > DATA_MAX_WORDS or n > len(self.queue):
                self.faults.append(f"driver requested too much data {n}")
                self.status = STATUS_FLAGS_ERROR
                self.hooked = False
            else:
                regs[:n] = self.queue[:n]
                del self.queue[:n]
        else:
            regs[0] = UNCLAIMED
        return Registers(*regs)

    def _command(self, sub: int) -> None:
        if sub == PointerCommand.READ_ID:
            if len(self.queue) == QUEUE_WORDS:
                return
            self.queue.append(VERSION_ID)
            self.status = 0
            self._update(self.absolute)
        elif sub == PointerCommand.DISABLE:
            self.status = STATUS_FLAGS_ERROR
            self.hooked = False
        elif sub == PointerCommand.REQUEST_ABSOLUTE:
            self._update(True)
        elif sub == PointerCommand.REQUEST_RELATIVE:
            self._update(False)

    def _update(self, absolute: bool) -> None:
        if self.status != 0:
            return
        self.absolute = absolute
        self.hooked = True

    # --- host side: what QMP input-send-event would deliver --------------------------------

    def mouse_event(self, x: int, y: int, dz: int = 0, buttons: Buttons = Buttons.NONE) -> bool:
        """Queue one event as QEMU's vmmouse_mouse_event does; False if it was not queued."""
        if not self.hooked or len(self.queue) > QUEUE_WORDS - PACKET_WORDS:
            return False
        w0 = 0
        if Buttons.LEFT in buttons:
            w0 |= PacketButton.LEFT
        if Buttons.RIGHT in buttons:
            w0 |= PacketButton.RIGHT
        if Buttons.MIDDLE in buttons:
            w0 |= PacketButton.MIDDLE
        if self.absolute and not self.host_relative:
            if self.exact_scaling:
                x = x * 0xFFFF // QEMU_INPUT_ABS_MAX
                y = y * 0xFFFF // QEMU_INPUT_ABS_MAX
            else:
                x, y = x << 1, y << 1
        elif self.relative_flag:
            w0 |= PacketFlag.RELATIVE
        self.queue.extend([w0, x & 0xFFFFFFFF, y & 0xFFFFFFFF, dz & 0xFFFFFFFF])
        if self.notify is not None:
            self.notify()
        return True
