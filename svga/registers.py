"""Protocol layer: the SVGA II register file, as data, and a register-file object.

Everything here is taken from the VMware SVGA Device Developer Kit's
``lib/vmware/svga_reg.h`` (checked by tests/test_protocol_header.py against the Linux
kernel's copy of that header). The driver and the software model both use these names; no register
number is written anywhere else.

The registers are reached through two 32-bit I/O ports in BAR0: the index port at
BAR0+0 and the value port at BAR0+1. :class:`RegisterFile` speaks that protocol over any
*port backend* (an object with ``port_read(offset)`` and ``port_write(offset, value)``),
which is what every transport provides.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Protocol

# Port offsets relative to BAR0.
INDEX_PORT = 0x0
VALUE_PORT = 0x1
BIOS_PORT = 0x2
IRQSTATUS_PORT = 0x8

# Version negotiation: write an ID to SVGA_REG_ID and read it back.
SVGA_MAGIC = 0x900000
SVGA_ID_0 = (SVGA_MAGIC << 8) | 0
SVGA_ID_1 = (SVGA_MAGIC << 8) | 1
SVGA_ID_2 = (SVGA_MAGIC << 8) | 2
SVGA_ID_INVALID = 0xFFFFFFFF

# PCI identity.
PCI_VENDOR_VMWARE = 0x15AD
PCI_DEVICE_SVGA2 = 0x0405

# SVGA_REG_ENABLE values.
ENABLE_DISABLE = 0
ENABLE_ENABLE = 1
ENABLE_HIDE = 2

# SVGA_REG_CURSOR_ON values (legacy cursor bypass).
CURSOR_ON_HIDE = 0
CURSOR_ON_SHOW = 1
CURSOR_ON_REMOVE_FROM_FB = 2
CURSOR_ON_RESTORE_TO_FB = 3

# Scratch and palette registers follow the named ones.
PALETTE_BASE = 1024
NUM_PALETTE_REGS = 3 * 256
SCRATCH_BASE = PALETTE_BASE + NUM_PALETTE_REGS  # 1792


class Reg(IntEnum):
    """SVGA II register indices (svga_reg.h, enum SVGA_REG_*)."""

    ID = 0
    ENABLE = 1
    WIDTH = 2
    HEIGHT = 3
    MAX_WIDTH = 4
    MAX_HEIGHT = 5
    DEPTH = 6
    BITS_PER_PIXEL = 7
    PSEUDOCOLOR = 8
    RED_MASK = 9
    GREEN_MASK = 10
    BLUE_MASK = 11
    BYTES_PER_LINE = 12
    FB_START = 13
    FB_OFFSET = 14
    VRAM_SIZE = 15
    FB_SIZE = 16
    CAPABILITIES = 17
    MEM_START = 18
    MEM_SIZE = 19
    CONFIG_DONE = 20
    SYNC = 21
    BUSY = 22
    GUEST_ID = 23
    CURSOR_ID = 24
    CURSOR_X = 25
    CURSOR_Y = 26
    CURSOR_ON = 27
    HOST_BITS_PER_PIXEL = 28
    SCRATCH_SIZE = 29
    MEM_REGS = 30
    NUM_DISPLAYS = 31
    PITCHLOCK = 32
    IRQMASK = 33
    NUM_GUEST_DISPLAYS = 34
    DISPLAY_ID = 35
    DISPLAY_IS_PRIMARY = 36
    DISPLAY_POSITION_X = 37
    DISPLAY_POSITION_Y = 38
    DISPLAY_WIDTH = 39
    DISPLAY_HEIGHT = 40
    GMR_ID = 41
    GMR_DESCRIPTOR = 42
    GMR_MAX_IDS = 43
    GMR_MAX_DESCRIPTOR_LENGTH = 44
    TRACES = 45
    GMRS_MAX_PAGES = 46
    MEMORY_SIZE = 47
    TOP = 48


class Cap(IntFlag):
    """SVGA_REG_CAPABILITIES bits. The kit header drops the deprecated ones (RECT_FILL,
    RECT_PAT_FILL, ...); QEMU still offers RECT_FILL, so it is listed here too."""

    RECT_FILL = 0x00000001
    RECT_COPY = 0x00000002
    RECT_PAT_FILL = 0x00000004
    LEGACY_OFFSCREEN = 0x00000008
    RASTER_OP = 0x00000010
    CURSOR = 0x00000020
    CURSOR_BYPASS = 0x00000040
    CURSOR_BYPASS_2 = 0x00000080
    EIGHT_BIT_EMULATION = 0x00000100
    ALPHA_CURSOR = 0x00000200
    GLYPH = 0x00000400
    GLYPH_CLIPPING = 0x00000800
    OFFSCREEN_1 = 0x00001000
    ALPHA_BLEND = 0x00002000
    THREE_D = 0x00004000
    EXTENDED_FIFO = 0x00008000
    MULTIMON = 0x00010000
    PITCHLOCK = 0x00020000
    IRQMASK = 0x00040000
    DISPLAY_TOPOLOGY = 0x00080000
    GMR = 0x00100000
    TRACES = 0x00200000
    GMR2 = 0x00400000
    SCREEN_OBJECT_2 = 0x00800000


class FifoReg(IntEnum):
    """FIFO register word indices (svga_reg.h, enum SVGA_FIFO_*). Words 0-3 always
    exist; the rest only with SVGA_CAP_EXTENDED_FIFO and a MIN above them."""

    MIN = 0
    MAX = 1
    NEXT_CMD = 2
    STOP = 3
    CAPABILITIES = 4
    FLAGS = 5
    FENCE = 6
    HWVERSION_3D = 7
    PITCHLOCK = 8
    CURSOR_ON = 9
    CURSOR_X = 10
    CURSOR_Y = 11
    CURSOR_COUNT = 12
    CURSOR_LAST_UPDATED = 13
    RESERVED = 14
    CURSOR_SCREEN_ID = 15
    DEAD = 16
    HWVERSION_3D_REVISED = 17
    CAPS_3D = 32
    CAPS_3D_LAST = 32 + 255
    GUEST_3D_HWVERSION = 288
    FENCE_GOAL = 289
    BUSY = 290


FIFO_NUM_REGS = 291
"""Number of FIFO registers: MIN = FIFO_NUM_REGS * 4 = 1164 leaves room for all."""
FIFO_EXTENDED_MANDATORY_REGS = int(FifoReg.CAPS_3D_LAST) + 1
FIFO_MIN_SIZE_LEGACY = 16
"""FIFO MIN without the extended FIFO: just the four pointer words."""
FIFO_MIN_RING_BYTES = 10 * 1024
"""MAX - MIN must be at least 10 KiB (svga_reg.h)."""
FIFO_RESERVED_UNKNOWN = 0xFFFFFFFF


class FifoCap(IntFlag):
    """SVGA_FIFO_CAPABILITIES bits (valid only with the extended FIFO)."""

    FENCE = 1 << 0
    ACCELFRONT = 1 << 1
    PITCHLOCK = 1 << 2
    VIDEO = 1 << 3
    CURSOR_BYPASS_3 = 1 << 4
    ESCAPE = 1 << 5
    RESERVE = 1 << 6
    SCREEN_OBJECT = 1 << 7
    GMR2 = 1 << 8
    SCREEN_OBJECT_2 = 1 << 9
    DEAD = 1 << 10


class FifoFlag(IntFlag):
    ACCELFRONT = 1 << 0


def fifo_reg_valid(reg: int, fifo_min: int) -> bool:
    """A FIFO register exists only if it lies below MIN (the kit's SVGA_IsFIFORegValid)."""
    return fifo_min > reg * 4


def flag_names(flags: int, enum: type[IntFlag]) -> list[str]:
    """Names of the set bits, known ones by name and unknown ones as hex."""
    names = []
    rest = flags
    for member in enum:
        if member.value and flags & member.value == member.value and member.value & rest:
            names.append(member.name or hex(member.value))
            rest &= ~member.value
    bit = 1
    while rest:
        if rest & bit:
            names.append(f"0x{bit:x}")
            rest &= ~bit
        bit <<= 1
    return names


class PortBackend(Protocol):
    """What a transport offers for BAR0: 32-bit reads and writes at a port offset."""

    def port_read(self, offset: int) -> int: ...

    def port_write(self, offset: int, value: int) -> None: ...


class RegisterFile:
    """The index/value register protocol over a port backend."""

    def __init__(self, ports: PortBackend) -> None:
        self._ports = ports

    def read(self, reg: int) -> int:
        self._ports.port_write(INDEX_PORT, int(reg))
        return self._ports.port_read(VALUE_PORT) & 0xFFFFFFFF

    def write(self, reg: int, value: int) -> None:
        self._ports.port_write(INDEX_PORT, int(reg))
        self._ports.port_write(VALUE_PORT, int(value) & 0xFFFFFFFF)

    def __getitem__(self, reg: int) -> int:
        return self.read(reg)

    def __setitem__(self, reg: int, value: int) -> None:
        self.write(reg, value)
