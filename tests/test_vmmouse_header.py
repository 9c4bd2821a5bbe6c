"""vmmouse/protocol.py and vmmouse/backdoor.py against the kernel's vmmouse driver.

The oracle is linux-source-6.1 ``drivers/input/mouse/vmmouse.c`` (its #defines and its
calls), ``arch/x86/include/asm/vmware.h`` (the backdoor port and the hypercall),
``include/uapi/linux/capability.h`` and ``arch/x86/entry/syscalls/syscall_64.tbl``, read by
tests/kernel_headers.py. No expected value is written here.

vmmouse.c #defines most numbers; a few live only in its code (how many words a packet is
and in which registers, the status word's count mask, what an absent backdoor reads as).
Those are read with one pattern each (CODE), which fails loudly when the code changes shape.
"""

from __future__ import annotations

import re
import threading
from enum import Enum

import pytest
from kernel_headers import ASM_VMWARE_H, CAPABILITY_H, SYSCALL_64_TBL, VMMOUSE_C, header, kernel_file

from vmmouse import backdoor, protocol
from vmmouse.absolute import VMMouse
from vmmouse.backdoor import Backdoor, Registers, get_version
from vmmouse.events import Buttons
from vmmouse.protocol import (
    Command,
    PacketButton,
    PacketFlag,
    PointerCommand,
    decode_packet,
    decode_status,
)

# Our name -> the vmmouse.c #define.
DEFINES: dict[str, str] = {
    "MAGIC": "VMMOUSE_PROTO_MAGIC",
    "VERSION_ID": "VMMOUSE_VERSION_ID",
    "STATUS_ERROR": "VMMOUSE_ERROR",
    "ABS_MAX": "VMMOUSE_MAX_X",
    **{f"Command.{c.name}": f"VMMOUSE_PROTO_CMD_{c.name}" for c in Command},
    **{f"PointerCommand.{c.name}": f"VMMOUSE_CMD_{c.name}" for c in PointerCommand if c.name != "READ_ID"},
    # Linux names the command after what it is for (enable); ours after what it makes the device
    # queue (the id word), as open-vm-tools does.
    "PointerCommand.READ_ID": "VMMOUSE_CMD_ENABLE",
    "PacketFlag.RELATIVE": "VMMOUSE_RELATIVE_PACKET",
    **{f"PacketButton.{b.name}": f"VMMOUSE_{b.name}_BUTTON" for b in PacketButton},
}
ALSO: dict[str, str] = {"VMMOUSE_MAX_Y": "ABS_MAX"}   # one range for x and y
# Checked below from the code or another kernel file, each by its own test.
ELSEWHERE = ("PORT", "UNCLAIMED", "ABS_MIN", "PACKET_WORDS", "STATUS_FLAGS_ERROR",
             "SYS_IOPL_X86_64", "CAP_SYS_RAWIO")
NOT_IN_KERNEL: dict[str, str] = {
    "DATA_MAX_WORDS": "QEMU's limit on one DATA call; the kernel never asks for more than a packet",
    "QUEUE_WORDS": "the size of QEMU's queue; the kernel only reads the count",
    "QUEUE_PACKETS": "QUEUE_WORDS in packets",
}
NOT_OURS: dict[str, str] = {
    "VMMOUSE_RESTRICT_ANY": "ABSPOINTER_RESTRICT's argument: unused here (vmmouse/absolute.py)",
    "VMMOUSE_RESTRICT_CPL0": "ABSPOINTER_RESTRICT's argument: unused here (vmmouse/absolute.py)",
    "VMMOUSE_RESTRICT_IOPL": "ABSPOINTER_RESTRICT's argument: unused here (vmmouse/absolute.py)",
    "VMMOUSE_VENDOR": "a string: the kernel's input device vendor",
    "VMMOUSE_NAME": "a string: the kernel's input device name",
}

# Facts vmmouse.c states only in code: one pattern each.
CODE: dict[str, str] = {
    "packet": r"VMMOUSE_CMD\(ABSPOINTER_DATA, (\d+), (\w+), (\w+), (\w+), (\w+)\);",
    "count_mask": r"queue_length = status & (0x[0-9a-fA-F]+);",
    "unclaimed": r"response != VMMOUSE_PROTO_MAGIC \|\| version == (0x[0-9a-fA-F]+)U",
    "abs_x_min": r"input_set_abs_params\(abs_dev, ABS_X, (\d+), VMMOUSE_MAX_X, 0, 0\);",
    "abs_y_min": r"input_set_abs_params\(abs_dev, ABS_Y, (\d+), VMMOUSE_MAX_Y, 0, 0\);",
    "wheel": r"input_report_rel\(rel_dev, REL_WHEEL, -\(s8\)\(\(u8\) z\)\);",
}
# GCC's x86 register constraints, in the order of vmmouse.backdoor.Registers.
GCC_CONSTRAINTS = {"a": "eax", "b": "ebx", "c": "ecx", "d": "edx", "S": "esi", "D": "edi"}


@pytest.fixture(scope="module")
def vmmouse_c():
    return header(VMMOUSE_C)


def _code(vmmouse_c, fact: str) -> re.Match[str]:
    found = list(re.finditer(CODE[fact], vmmouse_c.text))
    assert len(found) == 1, f"{VMMOUSE_C}: {CODE[fact]!r} found {len(found)} times, not once"
    return found[0]


def _ours(name: str) -> int:
    if "." in name:
        cls, member = name.split(".")
        return int(getattr(protocol, cls)[member])
    return getattr(protocol, name)


def _hypercall(vmmouse_c) -> tuple[dict[str, str], dict[str, str]]:
    """VMMOUSE_CMD's asm outputs and inputs: constraint letter -> C expression."""
    body = vmmouse_c.define("VMMOUSE_CMD").body
    outputs = dict(re.findall(r'"=([abcdSD])"\((\w+)\)', body))
    inputs = dict(re.findall(r'(?<![=\w])"([abcdSD])"\(([^)]*)\)', body))
    assert set(outputs) == set(GCC_CONSTRAINTS) and set(inputs) == {"a", "b", "c", "d"}, body
    return outputs, inputs


def test_defines_match(vmmouse_c):
    for ours, kname in DEFINES.items():
        want = vmmouse_c.value(kname)
        where = f"vmmouse.c:{vmmouse_c.line(kname)}"
        assert _ours(ours) == want, f"{ours} = {_ours(ours):#x}, {kname} = {want:#x} ({where})"
    for kname, ours in ALSO.items():
        assert _ours(ours) == vmmouse_c.value(kname), kname


def test_every_vmmouse_define_is_ours_or_listed(vmmouse_c):
    mapped = set(DEFINES.values()) | set(ALSO)
    names = vmmouse_c.defines("VMMOUSE_")
    assert len(names) >= 20
    missing = [n for n in names if n not in mapped and n not in NOT_OURS]
    assert not missing, f"vmmouse.c defines {missing}, which our protocol has not"


def test_every_public_constant_is_checked():
    checked = {n.split(".")[0] for n in DEFINES} | set(ELSEWHERE) | set(NOT_IN_KERNEL)
    for mod in (protocol, backdoor):
        for name, value in vars(mod).items():
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool | Enum):
                assert name in checked, f"{mod.__name__}.{name} is compared with nothing"
    for cls in (Command, PointerCommand, PacketFlag, PacketButton):
        for member in cls:
            assert f"{cls.__name__}.{member.name}" in DEFINES


def test_port_is_the_hypervisor_port():
    assert protocol.PORT == header(ASM_VMWARE_H).value("VMWARE_HYPERVISOR_PORT")


def test_backdoor_call_loads_the_registers_as_vmmouse_cmd_does(vmmouse_c):
    """VMMOUSE_CMD puts the magic, the argument and the command in the registers its asm
    inputs name, and VMWARE_HYPERCALL loads the port into DX before its `inl (%dx)`."""
    assert Registers._fields == tuple(GCC_CONSTRAINTS.values())
    _, inputs = _hypercall(vmmouse_c)
    hypercall = header(ASM_VMWARE_H).define("VMWARE_HYPERCALL").body
    assert re.search(r'"movw \$" __stringify\(VMWARE_HYPERVISOR_PORT\) ", %%dx; "\s*"inl \(%%dx\), %%eax"',
                     hypercall), hypercall
    seen = []
    bd = Backdoor(lambda block: seen.append(list(block)), threading.get_ident())
    bd.call(Command.ABSPOINTER_COMMAND, PointerCommand.REQUEST_ABSOLUTE)
    regs = dict(zip(GCC_CONSTRAINTS, seen[0], strict=True))
    meaning = {"VMMOUSE_PROTO_MAGIC": vmmouse_c.value("VMMOUSE_PROTO_MAGIC"),
               "in1": vmmouse_c.value("VMMOUSE_CMD_REQUEST_ABSOLUTE"),
               "VMMOUSE_PROTO_CMD_##cmd": vmmouse_c.value("VMMOUSE_PROTO_CMD_ABSPOINTER_COMMAND"),
               "0": 0}
    for letter, expr in inputs.items():
        want = meaning[expr]
        if letter == "d":                          # movw $PORT, %dx replaces the low 16 bits
            want = (want & ~0xFFFF) | header(ASM_VMWARE_H).value("VMWARE_HYPERVISOR_PORT")
        assert regs[letter] == want, f"{GCC_CONSTRAINTS[letter]} should hold {expr}"


class _QueuedPacket:
    """A backdoor with one packet queued, answering in the registers vmmouse.c reads."""

    def __init__(self, vmmouse_c, registers: dict[str, int]) -> None:
        self.h, self.registers, self.data_calls = vmmouse_c, registers, []
        self.queued = int(_code(vmmouse_c, "packet")[1])

    def call(self, command: int, argument: int = 0) -> Registers:
        if command == self.h.value("VMMOUSE_PROTO_CMD_ABSPOINTER_STATUS"):
            return Registers(self.queued, 0, 0, 0, 0, 0)
        if command == self.h.value("VMMOUSE_PROTO_CMD_ABSPOINTER_COMMAND"):
            return Registers(0, 0, 0, 0, 0, 0)   # a relative packet makes the reader ask for absolute
        assert command == self.h.value("VMMOUSE_PROTO_CMD_ABSPOINTER_DATA"), command
        self.data_calls.append(argument)
        self.queued -= argument
        return Registers(*(self.registers.get(letter, 0) for letter in GCC_CONSTRAINTS))


def test_packet_is_the_four_registers_vmmouse_reads(vmmouse_c):
    # VMMOUSE_CMD(ABSPOINTER_DATA, 4, status, x, y, z): the variables are out1..out4, and the
    # macro's outputs say which register each one is.
    m = _code(vmmouse_c, "packet")
    assert protocol.PACKET_WORDS == int(m[1])
    outputs, _ = _hypercall(vmmouse_c)
    letter_of = {expr: letter for letter, expr in outputs.items()}
    register = {var: letter_of[f"out{i}"] for i, var in enumerate(m.groups()[1:], 1)}
    assert set(register) == {"status", "x", "y", "z"}, m[0]
    buttons = vmmouse_c.value("VMMOUSE_LEFT_BUTTON") | vmmouse_c.value("VMMOUSE_MIDDLE_BUTTON")
    values = {"status": buttons, "x": 0x1234, "y": 0xFEDC, "z": 0xFF}
    port = _QueuedPacket(vmmouse_c, {register[v]: values[v] for v in values})
    [ev] = VMMouse(port).read_events()
    assert port.data_calls == [int(m[1])]
    assert (ev.x, ev.y, ev.buttons, ev.wheel) == (0x1234, 0xFEDC, Buttons.LEFT | Buttons.MIDDLE, 1)
    relative = {"status": vmmouse_c.value("VMMOUSE_RELATIVE_PACKET"), "x": 5, "y": 7, "z": 0}
    [rel] = VMMouse(_QueuedPacket(vmmouse_c, {register[v]: relative[v] for v in relative})).read_events()
    assert (rel.x, rel.y, rel.dx, rel.dy) == (None, None, 5, 7)


@pytest.mark.parametrize("z", [0, 1, 0x7F, 0x80, 0xFF, 0x1FE, 0xFFFFFFFF])
def test_wheel_is_the_negated_signed_low_byte(vmmouse_c, z):
    _code(vmmouse_c, "wheel")          # REL_WHEEL = -(s8)((u8) z)
    low = z & 0xFF
    assert decode_packet((0, 0, 0, z)).wheel == -(low - 0x100 if low & 0x80 else low)


@pytest.mark.parametrize("status", [0x00000004, 0x0000FFFC, 0x7FFF0008, 0xFFFE0000, 0xFFFF0000, 0xFFFF0010])
def test_status_word_reads_as_vmmouse_reads_it(vmmouse_c, status):
    mask = int(_code(vmmouse_c, "count_mask")[1], 16)
    error = vmmouse_c.value("VMMOUSE_ERROR")
    got = decode_status(status)
    assert got.words == status & mask
    assert got.error == ((status & error) == error)


def test_status_error_flags_are_the_error_bits(vmmouse_c):
    mask = int(_code(vmmouse_c, "count_mask")[1], 16)
    assert protocol.STATUS_FLAGS_ERROR == vmmouse_c.value("VMMOUSE_ERROR") >> mask.bit_length()


def test_absolute_range(vmmouse_c):
    assert protocol.ABS_MIN == int(_code(vmmouse_c, "abs_x_min")[1]) == int(_code(vmmouse_c, "abs_y_min")[1])


class _Port:
    def __init__(self, eax: int, ebx: int) -> None:
        self.answer = Registers(eax, ebx, 0, 0, 0, 0)

    def call(self, command: int, argument: int = 0) -> Registers:
        return self.answer


def test_detection_follows_vmmouse_detect(vmmouse_c):
    unclaimed = int(_code(vmmouse_c, "unclaimed")[1], 16)
    assert protocol.UNCLAIMED == unclaimed
    magic = vmmouse_c.value("VMMOUSE_PROTO_MAGIC")
    assert get_version(_Port(6, magic)) is not None
    assert get_version(_Port(unclaimed, magic)) is None
    assert get_version(_Port(6, 0)) is None


def test_iopl_syscall_number():
    rows = [line.split() for line in kernel_file(SYSCALL_64_TBL).read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    iopl = [int(r[0]) for r in rows if r[2] == "iopl" and r[1] in ("common", "64")]
    assert iopl == [backdoor.SYS_IOPL_X86_64]


def test_cap_sys_rawio():
    assert backdoor.CAP_SYS_RAWIO == header(CAPABILITY_H).value("CAP_SYS_RAWIO")
