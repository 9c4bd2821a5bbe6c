"""The VMware backdoor and vmmouse protocol as data: numbers, packet layout, pure decoders.

The lowest layer of the input side: no I/O here. ``vmmouse.backdoor`` issues the calls,
``vmmouse.absolute`` sequences them, ``vmmouse.model`` answers them in tests. Sources of each
number: open-vm-tools backdoor_def.h, xf86-input-vmmouse vmmouse_defs.h / vmmouse_proto.h,
Linux drivers/input/mouse/vmmouse.c, QEMU hw/i386/vmport.c and hw/i386/vmmouse.c (they agree),
written down in docs/vmmouse.md 'Backdoor' and 'vmmouse protocol'.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import NamedTuple

from vmmouse.errors import ProtocolFault
from vmmouse.events import Buttons, PointerEvent

# The backdoor: EAX = MAGIC, ECX = command, EBX = argument, DX = PORT, then a 32-bit `in`
# (docs/vmmouse.md 'The call').
MAGIC = 0x564D5868
PORT = 0x5658
# What EAX reads back from an unclaimed I/O port (bare metal, another hypervisor), and what
# QEMU >= 5.1 puts in EAX for a backdoor command it does not know (docs/vmmouse.md 'Unknown commands
# and unclaimed ports').
UNCLAIMED = 0xFFFFFFFF


class Command(IntEnum):
    """Backdoor command numbers (ECX, low 16 bits): docs/vmmouse.md 'Commands'."""

    GETVERSION = 10           # EAX = version, EBX = MAGIC when a backdoor answers
    ABSPOINTER_DATA = 39      # EBX = n words (1..6) -> EAX, EBX, ECX, EDX, ESI, EDI
    ABSPOINTER_STATUS = 40    # EAX = status flags << 16 | queued words
    ABSPOINTER_COMMAND = 41   # EBX = a PointerCommand
    ABSPOINTER_RESTRICT = 86  # not implemented by QEMU; unused here (see vmmouse.absolute)


class PointerCommand(IntEnum):
    """Arguments of ABSPOINTER_COMMAND (EBX): docs/vmmouse.md 'Magic values'."""

    READ_ID = 0x45414552           # enable; queues VERSION_ID ("CMD_ENABLE" in Linux)
    DISABLE = 0x000000F5
    REQUEST_RELATIVE = 0x4C455252
    REQUEST_ABSOLUTE = 0x53424152


VERSION_ID = 0x3442554A            # the word READ_ID queues: "JUB4"
STATUS_ERROR = 0xFFFF0000          # status word of a disabled or failed device (flags 0xffff)
STATUS_FLAGS_ERROR = 0xFFFF

PACKET_WORDS = 4                   # flags|buttons, x, y, z
DATA_MAX_WORDS = 6                 # DATA returns at most EAX..EDI; QEMU unhooks the device on more
                                   # (docs/vmmouse.md 'Data', 'Fatal DATA requests')
QUEUE_WORDS = 1024                 # QEMU's queue: 256 packets (docs/vmmouse.md 'Queue')
QUEUE_PACKETS = QUEUE_WORDS // PACKET_WORDS

ABS_MIN = 0
ABS_MAX = 0xFFFF                   # absolute x and y range (QEMU <= 8.1 gives even values only)
                                   # (docs/vmmouse.md 'Packet layout', 'Absolute scaling')


class PacketError(ProtocolFault, ValueError):
    """A packet that is not PACKET_WORDS words."""


class PacketFlag(IntFlag):
    """Bits of packet word 0 above the buttons (its high half): docs/vmmouse.md 'Relative flag'."""

    RELATIVE = 0x00010000          # set by QEMU >= 8.1 on packets of relative mode


class PacketButton(IntFlag):
    """Bits of packet word 0 (its low half): docs/vmmouse.md 'Packet layout'."""

    LEFT = 0x20
    RIGHT = 0x10
    MIDDLE = 0x08


_BUTTONS = ((PacketButton.LEFT, Buttons.LEFT), (PacketButton.RIGHT, Buttons.RIGHT),
            (PacketButton.MIDDLE, Buttons.MIDDLE))


class Status(NamedTuple):
    """ABSPOINTER_STATUS decoded: flags (0xffff = error or disabled) and queued 32-bit words
    (docs/vmmouse.md 'Status')."""

    flags: int
    words: int

    @property
    def error(self) -> bool:
        return self.flags == STATUS_FLAGS_ERROR


def decode_status(eax: int) -> Status:
    return Status((eax >> 16) & 0xFFFF, eax & 0xFFFF)


def _s8(value: int) -> int:
    value &= 0xFF
    return value - 0x100 if value & 0x80 else value


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def decode_buttons(word0: int) -> Buttons:
    held = Buttons.NONE
    for bit, button in _BUTTONS:
        if word0 & bit:
            held |= button
    return held


def decode_packet(words: tuple[int, int, int, int] | list[int], *, z_horizontal: bool = False
                  ) -> PointerEvent:
    """Decode one 4-word packet.

    Z: only its low 8 bits count, as a signed byte, and negative is wheel up (QEMU sends
    WHEEL_UP as -1; both Linux and the X driver negate it). QEMU >= 7.0 sends horizontal
    scrolling as Z = -2 (right) / +2 (left); with ``z_horizontal`` those two values become
    ``hwheel``, otherwise they are two vertical detents, as unaware drivers read them
    (docs/vmmouse.md 'Wheel (Z)' and 'Horizontal wheel').
    """
    if len(words) != PACKET_WORDS:
        raise PacketError(f"a vmmouse packet is {PACKET_WORDS} words, not {len(words)}")
    w0, w1, w2, w3 = (int(w) & 0xFFFFFFFF for w in words)
    z = _s8(w3)
    wheel = hwheel = 0
    if z_horizontal and z in (-2, 2):
        hwheel = -z // 2
    else:
        wheel = -z
    buttons = decode_buttons(w0)
    if w0 & PacketFlag.RELATIVE:
        return PointerEvent(buttons, None, None, _s32(w1), _s32(w2), wheel, hwheel)
    return PointerEvent(buttons, w1 & ABS_MAX, w2 & ABS_MAX, 0, 0, wheel, hwheel)

