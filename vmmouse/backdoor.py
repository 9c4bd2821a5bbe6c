"""The VMware backdoor call from Python: one ``in eax, dx`` on port 0x5658, with no compiler.

The transport of the input side. ``vmmouse.absolute`` speaks the vmmouse protocol through any
object with this module's ``call(command, argument) -> Registers`` (``vmmouse.model`` is
another such object, for tests).

How the instruction is reached: a few bytes of hand-assembled x86-64 machine code (listed byte
by byte in ``CODE_LISTING``) are copied into an anonymous mapping, which is then made
read+execute (never writable and executable at once) and called through ctypes with a pointer
to six 32-bit registers. The stub loads EAX, EBX, ECX, EDX, ESI, EDI from the block, runs
``in eax, dx`` and stores all six back, because the device answers in all of them (DATA returns
up to six words; docs/vmmouse.md 'The call').

Why the guards: a user-mode ``in`` without I/O privilege is a #GP, which Linux delivers as
SIGSEGV and kills the interpreter. So the stub is only ever run after iopl(3) succeeded in the
calling thread (Linux >= 5.5 emulates iopl(3) by opening every port in that thread's TSS I/O
bitmap; it is per thread, inherited by threads created later, and kept across setuid();
docs/vmmouse.md 'I/O privilege').
With the privilege held, the ``in`` is harmless anywhere: on bare metal or a hypervisor
without the backdoor it reads 0xFFFFFFFF from an unclaimed port and leaves EBX alone, so
GETVERSION answers the magic in EBX only where a VMware-compatible backdoor exists
(docs/vmmouse.md 'Unknown commands and unclaimed ports', 'GETVERSION').
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from vmmouse.errors import BackdoorUnavailable
from vmmouse.protocol import MAGIC, PORT, UNCLAIMED, Command

SYS_IOPL_X86_64 = 172          # arch/x86/entry/syscalls/syscall_64.tbl
CAP_SYS_RAWIO = 17             # include/uapi/linux/capability.h
LOCKDOWN_PATH = "/sys/kernel/security/lockdown"

# The stub: void stub(uint32_t regs[6]), SysV x86-64 ABI (the block's address arrives in RDI).
# Each entry is (bytes, the instruction as `objdump -M intel` prints it). R8 holds the block's
# address because RDI itself is one of the registers to load; RBX is callee-saved, so it is
# pushed and popped around the call.
CODE_LISTING: tuple[tuple[bytes, str], ...] = (
    (b"\x53", "push rbx"),                                        # 53: push r64 (rbx = 3)
    (b"\x49\x89\xf8", "mov r8,rdi"),                              # REX.W+B, 89 /r, modrm 11 111 000
    (b"\x41\x8b\x00", "mov eax,DWORD PTR [r8]"),                  # REX.B, 8b /r, modrm 00 000 000
    (b"\x41\x8b\x58\x04", "mov ebx,DWORD PTR [r8+0x4]"),          # modrm 01 011 000, disp8 4
    (b"\x41\x8b\x48\x08", "mov ecx,DWORD PTR [r8+0x8]"),          # modrm 01 001 000, disp8 8
    (b"\x41\x8b\x50\x0c", "mov edx,DWORD PTR [r8+0xc]"),          # modrm 01 010 000, disp8 12
    (b"\x41\x8b\x70\x10", "mov esi,DWORD PTR [r8+0x10]"),         # modrm 01 110 000, disp8 16
    (b"\x41\x8b\x78\x14", "mov edi,DWORD PTR [r8+0x14]"),         # modrm 01 111 000, disp8 20
    (b"\xed", "in eax,dx"),                                       # ed: in eax, dx (32-bit port read)
    (b"\x41\x89\x00", "mov DWORD PTR [r8],eax"),                  # REX.B, 89 /r (store)
    (b"\x41\x89\x58\x04", "mov DWORD PTR [r8+0x4],ebx"),
    (b"\x41\x89\x48\x08", "mov DWORD PTR [r8+0x8],ecx"),
    (b"\x41\x89\x50\x0c", "mov DWORD PTR [r8+0xc],edx"),
    (b"\x41\x89\x70\x10", "mov DWORD PTR [r8+0x10],esi"),
    (b"\x41\x89\x78\x14", "mov DWORD PTR [r8+0x14],edi"),
    (b"\x5b", "pop rbx"),                                         # 5b: pop r64 (rbx = 3)
    (b"\xc3", "ret"),
)
CODE = b"".join(code for code, _ in CODE_LISTING)
IN_INSTRUCTION = b"\xed"

RegisterBlock = ctypes.c_uint32 * 6
_STUB_PROTOTYPE = ctypes.CFUNCTYPE(None, ctypes.POINTER(RegisterBlock))


class Registers(NamedTuple):
    """The six registers the backdoor reads and answers in."""

    eax: int
    ebx: int
    ecx: int
    edx: int
    esi: int
    edi: int


class BackdoorPort(Protocol):
    """Anything that answers backdoor calls: the real port, ``vmmouse.model``, a test fake."""

    def call(self, command: int, argument: int = 0) -> Registers: ...


# --- why the backdoor may be out of reach ---------------------------------------------------

def check_platform(machine: str | None = None, pointer_size: int | None = None,
                   system: str | None = None) -> None:
    """Refuse anything but 64-bit Python on x86-64 Linux (the stub is x86-64 code)."""
    system = sys.platform if system is None else system
    machine = platform.machine() if machine is None else machine
    pointer_size = struct.calcsize("P") if pointer_size is None else pointer_size
    if system != "linux":
        raise BackdoorUnavailable(f"the backdoor needs Linux (this is {system})")
    if machine.lower() not in ("x86_64", "amd64"):
        raise BackdoorUnavailable(f"the backdoor is an x86 I/O port; this machine is {machine}")
    if pointer_size != 8:
        raise BackdoorUnavailable("the backdoor stub is x86-64 code; this Python is 32-bit")


def lockdown_mode(path: str = LOCKDOWN_PATH) -> str | None:
    """The active kernel lockdown mode ("none", "integrity", "confidentiality"), None if unknown."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def has_capability(cap: int, status_path: str = "/proc/self/status") -> bool:
    """Whether the effective capability set holds ``cap``."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def explain_iopl_error(err: int, *, lockdown: str | None, rawio: bool) -> str:
    """One line saying why iopl(3) failed with ``err``, and what would help (the causes:
    docs/vmmouse.md 'I/O privilege')."""
    if err == errno.ENOSYS:
        return ("iopl() is not available in this kernel (ENOSYS: built without CONFIG_X86_IOPL_IOPERM), "
                "so user space cannot reach the backdoor port")
    if err == errno.EPERM:
        if lockdown not in (None, "none"):
            return (f"kernel lockdown ({lockdown}) forbids raw I/O port access: iopl(3) returned EPERM "
                    "(boot without lockdown, or use the USB tablet source)")
        if not rawio:
            return "iopl(3) needs root or CAP_SYS_RAWIO (EPERM)"
        return ("iopl(3) returned EPERM although CAP_SYS_RAWIO is held: a seccomp filter "
                "(container runtime, systemd SystemCallFilter) forbids it")
    return f"iopl(3) failed: {os.strerror(err)}"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def acquire_io_privilege(syscall: Callable[[int, int], int] | None = None) -> int:
    """Run iopl(3) for the calling thread; return that thread's id or raise BackdoorUnavailable."""
    check_platform()
    if syscall is None:
        libc = _libc()

        def syscall(number: int, level: int) -> int:
            return libc.syscall(ctypes.c_long(number), ctypes.c_long(level))
    ctypes.set_errno(0)
    if syscall(SYS_IOPL_X86_64, 3) != 0:
        err = ctypes.get_errno() or errno.EPERM
        raise BackdoorUnavailable(explain_iopl_error(
            err, lockdown=lockdown_mode(), rawio=has_capability(CAP_SYS_RAWIO)))
    return threading.get_ident()


# --- the executable stub --------------------------------------------------------------------

class ExecutableCode:
    """A page holding machine code, mapped read+write, filled, then switched to read+execute."""

    def __init__(self, code: bytes) -> None:
        libc = _libc()
        self._mmap = libc.mmap
        self._mmap.restype = ctypes.c_void_p
        self._mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_long]
        self._mprotect = libc.mprotect
        self._mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self._munmap = libc.munmap
        self._munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.size = max(mmap.PAGESIZE, -(-len(code) // mmap.PAGESIZE) * mmap.PAGESIZE)
        addr = self._mmap(None, self.size, mmap.PROT_READ | mmap.PROT_WRITE,
                          mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise BackdoorUnavailable(f"cannot map memory for the backdoor stub: "
                                      f"{os.strerror(ctypes.get_errno())}")
        ctypes.memmove(addr, code, len(code))
        if self._mprotect(addr, self.size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            err = ctypes.get_errno()
            self._munmap(addr, self.size)
            raise BackdoorUnavailable(
                f"the kernel refused executable memory for the backdoor stub (mprotect PROT_EXEC: "
                f"{errno.errorcode.get(err, err)}): an SELinux execmem rule, PaX MPROTECT or systemd "
                "MemoryDenyWriteExecute= forbids it")
        self.address: int | None = addr

    def function(self, prototype: type) -> Callable:
        if self.address is None:
            raise ValueError("the code mapping is closed")
        return prototype(self.address)

    def close(self) -> None:
        if self.address is not None:
            self._munmap(self.address, self.size)
            self.address = None


# --- the port -------------------------------------------------------------------------------

class Backdoor:
    """The backdoor port, usable only from the thread that holds I/O privilege.

    Build it with ``Backdoor.open()``. The constructor takes the stub as a callable so that
    tests can pass a Python stand-in; it never runs anything by itself.
    """

    def __init__(self, stub: Callable[[ctypes.Array], None], thread: int,
                 code: ExecutableCode | None = None) -> None:
        self._stub = stub
        self._thread = thread
        self._code = code

    @classmethod
    def open(cls) -> Backdoor:
        """Check the platform, take I/O privilege, then map the stub. Raises BackdoorUnavailable."""
        thread = acquire_io_privilege()
        code = ExecutableCode(CODE)
        return cls(code.function(_STUB_PROTOTYPE), thread, code)

    def call(self, command: int, argument: int = 0) -> Registers:
        if self._stub is None:
            raise BackdoorUnavailable("the backdoor is closed")
        if threading.get_ident() != self._thread:
            # Another thread may lack the I/O bitmap: its `in` would be a SIGSEGV.
            raise BackdoorUnavailable("the backdoor must be called from the thread that took I/O privilege")
        block = RegisterBlock(MAGIC, argument & 0xFFFFFFFF, command & 0xFFFFFFFF, PORT, 0, 0)
        self._stub(block)
        return Registers(*(int(v) for v in block))

    def close(self) -> None:
        self._stub = None
        if self._code is not None:
            self._code.close()
            self._code = None

    def __enter__(self) -> Backdoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class BackdoorVersion:
    version: int
    vmx_type: int


def get_version(port: BackdoorPort) -> BackdoorVersion | None:
    """GETVERSION: the backdoor's version, or None where no VMware-compatible backdoor answers.

    EBX is sent as anything but the magic, so that an unclaimed port (which leaves EBX as it
    was) cannot look like an answer (docs/vmmouse.md 'GETVERSION').
    """
    regs = port.call(Command.GETVERSION, ~MAGIC & 0xFFFFFFFF)
    if regs.ebx == MAGIC and regs.eax != UNCLAIMED:
        return BackdoorVersion(regs.eax, regs.ecx)
    return None
