"""vmmouse.backdoor: the stub's bytes, the guards around it, and the reasons given.

The real `in` only runs in the lab (tests/test_vmmouse_lab.py). Here the stub's machine code
is checked by disassembly, and its load/store path is run for real with the `in` byte
swapped for a harmless one-byte instruction.
"""

import ctypes
import errno
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vmmouse import backdoor as bd
from vmmouse.errors import BackdoorUnavailable
from vmmouse.model import VMPortModel
from vmmouse.protocol import MAGIC, PORT

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_objdump_reads_the_listing_back(tmp_path):
    blob = tmp_path / "stub.bin"
    blob.write_bytes(bd.CODE)
    out = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", str(blob)],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].strip().endswith(":"):
            rows.append((bytes.fromhex(parts[1].replace(" ", "")), " ".join(parts[2].split())))
    assert rows == [(code, asm) for code, asm in bd.CODE_LISTING]


def test_stub_has_exactly_one_in_and_keeps_rbx():
    assert bd.CODE.count(bd.IN_INSTRUCTION) == 1
    assert bd.CODE[0:1] == b"\x53" and bd.CODE[-2:] == b"\x5b\xc3"   # push rbx ... pop rbx; ret


def _run_stub(code: bytes, values):
    mapping = bd.ExecutableCode(code)
    try:
        block = bd.RegisterBlock(*values)
        mapping.function(bd._STUB_PROTOTYPE)(block)
        return list(block)
    finally:
        mapping.close()


def test_stub_round_trips_all_six_registers():
    # `in eax, dx` replaced by `nop` (0x90): every register comes back as loaded.
    values = [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555, 0x66666666]
    assert _run_stub(bd.CODE.replace(bd.IN_INSTRUCTION, b"\x90"), values) == values


def test_stub_stores_each_register_in_its_own_slot():
    # `xchg eax, ebx` (0x93) in place of the `in`: slots 0 and 1 swap, nothing else moves.
    assert _run_stub(bd.CODE.replace(bd.IN_INSTRUCTION, b"\x93"), [1, 2, 3, 4, 5, 6]) == [2, 1, 3, 4, 5, 6]


def test_call_passes_magic_command_argument_and_port():
    seen = []

    def stub(block):
        seen.append(list(block))
        block[0], block[1] = 6, MAGIC

    port = bd.Backdoor(stub, threading.get_ident())
    regs = port.call(10, 0x1234)
    assert seen == [[MAGIC, 0x1234, 10, PORT, 0, 0]]
    assert (regs.eax, regs.ebx, regs.ecx, regs.edx) == (6, MAGIC, 10, PORT)


def test_call_from_another_thread_never_runs_the_stub():
    ran = []
    port = bd.Backdoor(lambda block: ran.append(1), threading.get_ident())
    errors = []

    def other():
        try:
            port.call(10)
        except BackdoorUnavailable as e:
            errors.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert ran == [] and "thread" in errors[0]


def test_closed_port_refuses():
    port = bd.Backdoor(lambda block: None, threading.get_ident())
    port.close()
    with pytest.raises(BackdoorUnavailable):
        port.call(10)


@pytest.mark.parametrize("kwargs, word", [
    ({"system": "darwin"}, "Linux"),
    ({"machine": "aarch64"}, "aarch64"),
    ({"pointer_size": 4}, "32-bit"),
])
def test_platform_refusals(kwargs, word):
    args = {"machine": "x86_64", "pointer_size": 8, "system": "linux", **kwargs}
    with pytest.raises(BackdoorUnavailable, match=word):
        bd.check_platform(**args)


def test_platform_accepts_x86_64_linux():
    bd.check_platform(machine="x86_64", pointer_size=8, system="linux")


def test_iopl_reasons():
    assert "ENOSYS" in bd.explain_iopl_error(errno.ENOSYS, lockdown=None, rawio=True)
    text = bd.explain_iopl_error(errno.EPERM, lockdown="integrity", rawio=True)
    assert "lockdown (integrity)" in text
    assert "root or CAP_SYS_RAWIO" in bd.explain_iopl_error(errno.EPERM, lockdown="none", rawio=False)
    assert "seccomp" in bd.explain_iopl_error(errno.EPERM, lockdown="none", rawio=True)


def test_lockdown_mode_reads_the_bracketed_word(tmp_path):
    f = tmp_path / "lockdown"
    f.write_text("none [integrity] confidentiality\n")
    assert bd.lockdown_mode(str(f)) == "integrity"
    f.write_text("[none] integrity confidentiality\n")
    assert bd.lockdown_mode(str(f)) == "none"
    assert bd.lockdown_mode(str(tmp_path / "missing")) is None


def test_capability_bit_from_proc_status(tmp_path):
    f = tmp_path / "status"
    f.write_text("Name:\tx\nCapEff:\t0000000000020000\n")      # bit 17 only
    assert bd.has_capability(bd.CAP_SYS_RAWIO, str(f))
    f.write_text("Name:\tx\nCapEff:\t000001fffffdffff\n")      # everything but bit 17
    assert not bd.has_capability(bd.CAP_SYS_RAWIO, str(f))


def test_acquire_reports_the_errno(monkeypatch):
    monkeypatch.setattr(bd, "check_platform", lambda: None)
    monkeypatch.setattr(bd, "lockdown_mode", lambda: "confidentiality")
    monkeypatch.setattr(bd, "has_capability", lambda cap: True)

    def refused(number, level):
        assert (number, level) == (172, 3)
        ctypes.set_errno(errno.EPERM)
        return -1
    with pytest.raises(BackdoorUnavailable, match="lockdown"):
        bd.acquire_io_privilege(refused)
    assert bd.acquire_io_privilege(lambda n, lvl: 0) == threading.get_ident()


def test_open_maps_nothing_without_privilege(monkeypatch):
    def no_privilege(syscall=None):
        raise BackdoorUnavailable("no")
    mapped = []
    monkeypatch.setattr(bd, "acquire_io_privilege", no_privilege)
    monkeypatch.setattr(bd, "ExecutableCode", lambda code: mapped.append(code))
    with pytest.raises(BackdoorUnavailable):
        bd.Backdoor.open()
    assert mapped == []


def test_open_on_this_host_answers_or_explains_but_never_crashes():
    # Whatever this machine is (root or not, iopl or not, VMware or not), a probe must end
    # with a clean answer, never with SIGSEGV.
    code = ("from vmmouse.backdoor import Backdoor, get_version\n"
            "from vmmouse.errors import BackdoorUnavailable\n"
            "try:\n"
            "    with Backdoor.open() as p: print('version', get_version(p))\n"
            "except BackdoorUnavailable as e: print('unavailable', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(("version", "unavailable"))


def test_get_version_on_the_model():
    assert bd.get_version(VMPortModel()) == bd.BackdoorVersion(6, 2)
    # An unclaimed port reads 0xFFFFFFFF and leaves EBX as sent (not the magic).
    assert bd.get_version(VMPortModel(present=False)) is None
