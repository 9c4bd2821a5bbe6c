"""svga/registers.py against values written down from lib/vmware/svga_reg.h (developer kit)."""

from svga.registers import (
    FIFO_NUM_REGS,
    SVGA_ID_0,
    SVGA_ID_1,
    SVGA_ID_2,
    SVGA_ID_INVALID,
    Cap,
    FifoCap,
    FifoReg,
    Reg,
    RegisterFile,
    fifo_reg_valid,
    flag_names,
)

# svga_reg.h l.116-172, enum SVGA_REG_*
HEADER_REGS = {
    "ID": 0, "ENABLE": 1, "WIDTH": 2, "HEIGHT": 3, "MAX_WIDTH": 4, "MAX_HEIGHT": 5, "DEPTH": 6,
    "BITS_PER_PIXEL": 7, "PSEUDOCOLOR": 8, "RED_MASK": 9, "GREEN_MASK": 10, "BLUE_MASK": 11,
    "BYTES_PER_LINE": 12, "FB_START": 13, "FB_OFFSET": 14, "VRAM_SIZE": 15, "FB_SIZE": 16,
    "CAPABILITIES": 17, "MEM_START": 18, "MEM_SIZE": 19, "CONFIG_DONE": 20, "SYNC": 21, "BUSY": 22,
    "GUEST_ID": 23, "CURSOR_ID": 24, "CURSOR_X": 25, "CURSOR_Y": 26, "CURSOR_ON": 27,
    "HOST_BITS_PER_PIXEL": 28, "SCRATCH_SIZE": 29, "MEM_REGS": 30, "NUM_DISPLAYS": 31,
    "PITCHLOCK": 32, "IRQMASK": 33, "NUM_GUEST_DISPLAYS": 34, "DISPLAY_ID": 35,
    "DISPLAY_IS_PRIMARY": 36, "DISPLAY_POSITION_X": 37, "DISPLAY_POSITION_Y": 38,
    "DISPLAY_WIDTH": 39, "DISPLAY_HEIGHT": 40, "GMR_ID": 41, "GMR_DESCRIPTOR": 42,
    "GMR_MAX_IDS": 43, "GMR_MAX_DESCRIPTOR_LENGTH": 44, "TRACES": 45, "GMRS_MAX_PAGES": 46,
    "MEMORY_SIZE": 47, "TOP": 48,
}

# svga_reg.h l.417-433 (and QEMU's deprecated RECT_FILL)
HEADER_CAPS = {
    "RECT_FILL": 0x1, "RECT_COPY": 0x2, "CURSOR": 0x20, "CURSOR_BYPASS": 0x40,
    "CURSOR_BYPASS_2": 0x80, "EIGHT_BIT_EMULATION": 0x100, "ALPHA_CURSOR": 0x200, "THREE_D": 0x4000,
    "EXTENDED_FIFO": 0x8000, "MULTIMON": 0x10000, "PITCHLOCK": 0x20000, "IRQMASK": 0x40000,
    "DISPLAY_TOPOLOGY": 0x80000, "GMR": 0x100000, "TRACES": 0x200000, "GMR2": 0x400000,
    "SCREEN_OBJECT_2": 0x800000,
}

# svga_reg.h l.457-580, enum SVGA_FIFO_*
HEADER_FIFO_REGS = {
    "MIN": 0, "MAX": 1, "NEXT_CMD": 2, "STOP": 3, "CAPABILITIES": 4, "FLAGS": 5, "FENCE": 6,
    "HWVERSION_3D": 7, "PITCHLOCK": 8, "CURSOR_ON": 9, "CURSOR_X": 10, "CURSOR_Y": 11,
    "CURSOR_COUNT": 12, "CURSOR_LAST_UPDATED": 13, "RESERVED": 14, "CURSOR_SCREEN_ID": 15,
    "DEAD": 16, "HWVERSION_3D_REVISED": 17, "CAPS_3D": 32, "CAPS_3D_LAST": 287,
    "GUEST_3D_HWVERSION": 288, "FENCE_GOAL": 289, "BUSY": 290,
}

# svga_reg.h l.803-815
HEADER_FIFO_CAPS = {
    "FENCE": 1, "ACCELFRONT": 2, "PITCHLOCK": 4, "VIDEO": 8, "CURSOR_BYPASS_3": 16, "ESCAPE": 32,
    "RESERVE": 64, "SCREEN_OBJECT": 128, "GMR2": 256, "SCREEN_OBJECT_2": 512, "DEAD": 1024,
}


def test_register_indices_match_the_header():
    assert {r.name: r.value for r in Reg} == HEADER_REGS


def test_capability_bits_match_the_header():
    for name, value in HEADER_CAPS.items():
        assert Cap[name] == value


def test_fifo_registers_match_the_header():
    assert {r.name: r.value for r in FifoReg} == HEADER_FIFO_REGS
    assert FIFO_NUM_REGS == 291  # so MIN = 1164 bytes covers them all


def test_fifo_caps_match_the_header():
    assert {c.name: c.value for c in FifoCap} == HEADER_FIFO_CAPS


def test_ids():
    # SVGA_MAKE_ID(ver) = 0x900000 << 8 | ver
    assert (SVGA_ID_0, SVGA_ID_1, SVGA_ID_2) == (0x90000000, 0x90000001, 0x90000002)
    assert SVGA_ID_INVALID == 0xFFFFFFFF


def test_fifo_reg_valid_follows_min():
    assert fifo_reg_valid(FifoReg.BUSY, 1164)
    assert not fifo_reg_valid(FifoReg.BUSY, 1160)
    assert not fifo_reg_valid(FifoReg.CAPABILITIES, 16)


def test_flag_names():
    assert flag_names(0x3, Cap) == ["RECT_FILL", "RECT_COPY"]
    assert flag_names(0xE3, Cap) == ["RECT_FILL", "RECT_COPY", "CURSOR", "CURSOR_BYPASS", "CURSOR_BYPASS_2"]
    assert flag_names(0x80000000, Cap) == ["0x80000000"]


class RecordingPorts:
    def __init__(self):
        self.log = []
        self.value = 0x1234

    def port_read(self, offset):
        self.log.append(("in", offset))
        return self.value

    def port_write(self, offset, value):
        self.log.append(("out", offset, value))


def test_register_file_uses_index_then_value_port():
    ports = RecordingPorts()
    regs = RegisterFile(ports)
    assert regs.read(Reg.BYTES_PER_LINE) == 0x1234
    regs.write(Reg.WIDTH, 1024)
    regs[Reg.HEIGHT] = -1
    assert ports.log == [
        ("out", 0, 12), ("in", 1),
        ("out", 0, 2), ("out", 1, 1024),
        ("out", 0, 3), ("out", 1, 0xFFFFFFFF),
    ]
