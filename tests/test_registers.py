"""svga/registers.py behaviour: FIFO register validity, flag names, the index/value port protocol.

The numbers themselves are checked against the kernel's copy of svga_reg.h in
tests/test_protocol_header.py.
"""

from svga.registers import Cap, FifoReg, Reg, RegisterFile, fifo_reg_valid, flag_names


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
