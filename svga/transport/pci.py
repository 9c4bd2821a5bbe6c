"""Transport layer: the real SVGA II device inside a Linux guest, through sysfs.

Linux exposes every PCI device under ``/sys/bus/pci/devices/<address>/``: its identity
(``vendor``, ``device``, ``class``), its BARs (the ``resource`` table and one
``resourceN`` file per BAR), its configuration space (``config``) and the kernel driver
bound to it (the ``driver`` symlink). That is all a userspace driver needs:

- BAR0 is a small I/O BAR. Its ``resource0`` file turns a 1-, 2- or 4-byte ``pread`` or
  ``pwrite`` at offset N into an ``in``/``out`` of port BAR0+N, so the index port (+0) and
  value port (+1) are reached with no ``iopl`` (x86 allows the unaligned +1).
- BAR1 (framebuffer) and BAR2 (FIFO) are memory BARs; ``mmap`` of ``resource1`` and
  ``resource2`` maps the device memory itself, shared, so a numpy array over the mapping
  *is* the device's memory.

The kernel refuses all of it unless the caller is root (the files are 0600), no kernel
lockdown is active (``security_locked_down(LOCKDOWN_PCI_ACCESS)`` fails the ``mmap`` and
port writes), and no driver holds the ranges. :class:`PciTransport` checks each of these
first and says which one is in the way. :func:`find_devices` only reads world-readable
files, so listing devices works as any user.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from svga.errors import AccessDenied, DeviceBusy, DeviceError, DeviceNotFound, UnsupportedDevice
from svga.registers import INDEX_PORT, PCI_DEVICE_SVGA2, PCI_VENDOR_VMWARE, VALUE_PORT, Reg
from svga.transport.base import ArrayMemory, Transport

# Resource flags in the sysfs ``resource`` table (include/linux/ioport.h).
IORESOURCE_IO = 0x00000100
IORESOURCE_MEM = 0x00000200
IORESOURCE_PREFETCH = 0x00002000

# PCI command register (config space offset 4): the device answers I/O and memory
# cycles on its BARs only while these bits are set.
PCI_COMMAND = 0x04
PCI_COMMAND_IO = 0x1
PCI_COMMAND_MEMORY = 0x2

# What an SVGA II device's BARs look like. QEMU: 16 bytes of I/O, 16 MiB VRAM, 64 KiB FIFO;
# VMware's VRAM and FIFO BARs are larger.
BAR0_IO_MIN, BAR0_IO_MAX = 4, 256
BAR1_VRAM_MIN = 1 << 20
BAR2_FIFO_MIN = 16 << 10

_pread, _pwrite = os.pread, os.pwrite
_pack_u32 = struct.Struct("<I").pack
_from_bytes = int.from_bytes

_ID = f"{PCI_VENDOR_VMWARE:04x}:{PCI_DEVICE_SVGA2:04x}"
_NAME = f"VMware SVGA II ({_ID})"


@dataclass(frozen=True)
class Bar:
    """One line of the sysfs ``resource`` table: a BAR's bus address, size and kind."""

    index: int
    start: int
    size: int
    flags: int

    @property
    def is_io(self) -> bool:
        return bool(self.flags & IORESOURCE_IO)

    @property
    def is_mem(self) -> bool:
        return bool(self.flags & IORESOURCE_MEM)

    def describe(self) -> str:
        if self.size == 0:
            return "unassigned (0 bytes)"
        kind = "I/O" if self.is_io else "memory" if self.is_mem else "unknown-kind"
        return f"{self.size} bytes of {kind}"


@dataclass(frozen=True)
class PciDeviceInfo:
    """What sysfs says about one PCI device."""

    address: str  # "0000:00:02.0"
    path: str  # its sysfs directory
    vendor: int
    device: int
    class_code: int  # 0x030000 for a VGA-compatible display controller
    driver: str | None  # bound kernel driver ("vmwgfx"), or None
    bars: tuple[Bar, ...]  # BAR0..BAR5 (the ROM and bridge windows that follow are dropped)

    @property
    def bar_sizes(self) -> tuple[int, ...]:
        return tuple(b.size for b in self.bars)


def _read_hex(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip(), 16)


def _read_bars(path: str) -> tuple[Bar, ...]:
    """Parse ``resource``: one "start end flags" line (hex) per resource, BARs 0-5 first."""
    bars = []
    with open(path) as f:
        for index, line in enumerate(f.read().splitlines()[:6]):
            start, end, flags = (int(word, 16) for word in line.split()[:3])
            size = 0 if start == end == 0 else end - start + 1
            bars.append(Bar(index, start, size, flags))
    return tuple(bars)


def read_device(sysfs_root: str, address: str) -> PciDeviceInfo:
    """Read one device's identity, driver and BARs (raises OSError if it is not there)."""
    path = os.path.join(sysfs_root, "bus", "pci", "devices", address)
    link = os.path.join(path, "driver")
    return PciDeviceInfo(
        address=address,
        path=path,
        vendor=_read_hex(os.path.join(path, "vendor")),
        device=_read_hex(os.path.join(path, "device")),
        class_code=_read_hex(os.path.join(path, "class")),
        driver=os.path.basename(os.readlink(link)) if os.path.islink(link) else None,
        bars=_read_bars(os.path.join(path, "resource")),
    )


def find_devices(sysfs_root: str = "/sys") -> list[PciDeviceInfo]:
    """Every SVGA II device (PCI 15ad:0405), in address order."""
    devices_dir = os.path.join(sysfs_root, "bus", "pci", "devices")
    try:
        addresses = sorted(os.listdir(devices_dir))  # fixed-width hex: text order is bus order
    except OSError:
        return []
    found = []
    for address in addresses:
        try:
            info = read_device(sysfs_root, address)
        except (OSError, ValueError):
            continue  # a device whose files are unreadable or odd is not ours
        if (info.vendor, info.device) == (PCI_VENDOR_VMWARE, PCI_DEVICE_SVGA2):
            found.append(info)
    return found


def lockdown_mode(sysfs_root: str = "/sys") -> str | None:
    """The selected kernel lockdown mode ("none", "integrity", "confidentiality"), or None
    when securityfs does not say (no lockdown LSM, or securityfs not mounted)."""
    try:
        with open(os.path.join(sysfs_root, "kernel", "security", "lockdown")) as f:
            text = f.read()  # e.g. "none [integrity] confidentiality"
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1: end] if 0 <= start < end else None


def _normalize(address: str) -> str:
    """Accept "00:02.0" as well as "0000:00:02.0" (domain 0 is the usual one)."""
    address = address.strip().lower()
    return address if address.count(":") == 2 else f"0000:{address}"


def _choose(address: str | None, sysfs_root: str) -> tuple[PciDeviceInfo, list[str]]:
    """The device to open, and the addresses of the other SVGA II devices passed over."""
    devices_dir = os.path.join(sysfs_root, "bus", "pci", "devices")
    if address is None:
        found = find_devices(sysfs_root)
        if not found:
            raise DeviceNotFound(
                f"no {_NAME} device under {devices_dir}; "
                "use --device model to run the software model instead"
            )
        return found[0], [d.address for d in found[1:]]
    address = _normalize(address)
    try:
        info = read_device(sysfs_root, address)
    except (OSError, ValueError):
        raise DeviceNotFound(f"no PCI device {address} under {devices_dir}") from None
    if (info.vendor, info.device) != (PCI_VENDOR_VMWARE, PCI_DEVICE_SVGA2):
        raise DeviceNotFound(f"PCI {address} is {info.vendor:04x}:{info.device:04x}, not a {_NAME} device")
    return info, []


def _check_bars(info: PciDeviceInfo) -> None:
    bars = list(info.bars) + [Bar(i, 0, 0, 0) for i in range(len(info.bars), 3)]
    rules = [
        (bars[0], bars[0].is_io and BAR0_IO_MIN <= bars[0].size <= BAR0_IO_MAX,
         f"an I/O BAR of {BAR0_IO_MIN} to {BAR0_IO_MAX} bytes (the register ports)"),
        (bars[1], bars[1].is_mem and bars[1].size >= BAR1_VRAM_MIN,
         f"a memory BAR of at least {BAR1_VRAM_MIN >> 20} MiB (the framebuffer)"),
        (bars[2], bars[2].is_mem and bars[2].size >= BAR2_FIFO_MIN,
         f"a memory BAR of at least {BAR2_FIFO_MIN >> 10} KiB (the FIFO)"),
    ]
    for bar, ok, wanted in rules:
        if not ok:
            raise UnsupportedDevice(
                f"PCI {info.address}: BAR{bar.index} is {bar.describe()}, "
                f"but an SVGA II device has {wanted} there"
            )


def _check_decoding(info: PciDeviceInfo) -> None:
    """With decoding off, port reads give 0xFFFFFFFF and the BARs read as all ones; say so
    instead. Firmware or a driver's pci_enable_device() normally turned it on."""
    try:
        with open(os.path.join(info.path, "config"), "rb") as f:
            command = int.from_bytes(f.read(PCI_COMMAND + 2)[PCI_COMMAND:], "little")
    except OSError:
        return  # config space unreadable: let the opens below speak
    if command & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY) != PCI_COMMAND_IO | PCI_COMMAND_MEMORY:
        raise DeviceError(
            f"PCI {info.address} has I/O or memory decoding off (command register 0x{command:04x}); "
            f"enable it as root: echo 1 > {os.path.join(info.path, 'enable')}"
        )


def _os_error(what: str, path: str, exc: OSError) -> Exception:
    """Map a failed open/mmap/port access of a sysfs resource file to our error classes."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EPERM, errno.EACCES):
        return AccessDenied(f"cannot {what} {path}: {reason} (needs root and no kernel lockdown)")
    if what == "mmap" and exc.errno == errno.EINVAL:
        # iomem_is_exclusive(): the range is claimed (a framebuffer driver such as
        # simpledrm/efifb, or any driver under iomem=strict).
        return DeviceBusy(
            f"cannot mmap {path}: the kernel says the range is claimed exclusively "
            "(see /proc/iomem; a firmware framebuffer driver or iomem=strict)"
        )
    return DeviceError(f"cannot {what} {path}: {reason}")


class PciTransport(Transport):
    """The SVGA II device at ``address`` (or the first one found), through sysfs."""

    kind = "pci"

    def __init__(self, address: str | None = None, sysfs_root: str = "/sys",
                 require_root: bool = True) -> None:
        self._fd = -1
        self._maps: list[mmap.mmap] = []
        self.info, others = _choose(address, sysfs_root)
        info = self.info
        self.description = f"PCI {info.address} {_NAME}"
        if others:
            self.description += (f", the first of {len(others) + 1} "
                                 f"(also {', '.join(others)}; pass an address to choose)")
        _check_bars(info)
        if info.driver is not None:
            unbind = os.path.join(sysfs_root, "bus", "pci", "drivers", info.driver, "unbind")
            raise DeviceBusy(
                f"PCI {info.address} is bound to the kernel driver {info.driver}; "
                f"unbind it first, as root: echo {info.address} > {unbind}"
            )
        if require_root and os.geteuid() != 0:
            raise AccessDenied(
                f"raw access to PCI {info.address} (its sysfs resource files) needs root: run as root"
            )
        mode = lockdown_mode(sysfs_root)
        if mode in ("integrity", "confidentiality"):
            raise AccessDenied(
                f"kernel lockdown is in {mode} mode "
                f"({os.path.join(sysfs_root, 'kernel', 'security', 'lockdown')}), which blocks raw "
                "PCI BAR access; it cannot be lifted at run time "
                "(boot without Secure Boot and the lockdown= option)"
            )
        _check_decoding(info)
        self._bar0_size = info.bars[0].size
        try:
            self._open(info)
        except BaseException:
            self.close()
            raise

    def _open(self, info: PciDeviceInfo) -> None:
        path = os.path.join(info.path, "resource0")
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise _os_error("open", path, exc) from None
        for bar in (1, 2):
            path = os.path.join(info.path, f"resource{bar}")
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError as exc:
                raise _os_error("open", path, exc) from None
            try:
                # MAP_SHARED: stores go to the device's memory, not to a private copy.
                m = mmap.mmap(fd, info.bars[bar].size, flags=mmap.MAP_SHARED,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError as exc:
                raise _os_error("mmap", path, exc) from None
            finally:
                os.close(fd)  # the mapping stays valid without the descriptor
            self._maps.append(m)
        # Views only once both maps exist, so a failure above leaves no export behind.
        self.vram, self.fifo = (ArrayMemory(np.frombuffer(m, dtype=np.uint8)) for m in self._maps)

    def _port_check(self, offset: int) -> None:
        if self._fd < 0:
            raise DeviceError(f"{self.description}: the transport is closed")
        if offset < 0 or offset + 4 > self._bar0_size:
            raise IndexError(f"port offset {offset} is outside the {self._bar0_size}-byte BAR0")

    # Port accesses are the driver's per-command cost in a guest (issue 19): one bounds test,
    # one syscall, the errors mapped only when something failed.
    def port_read(self, offset: int) -> int:
        if not 0 <= offset <= self._bar0_size - 4 or self._fd < 0:
            self._port_check(offset)  # raises
        try:
            data = _pread(self._fd, 4, offset)  # one 32-bit `in` of port BAR0+offset
        except OSError as exc:
            raise _os_error("read", f"{self.info.path}/resource0", exc) from None
        if len(data) != 4:
            raise DeviceError(f"short read of {len(data)} bytes at BAR0+{offset} of PCI {self.info.address}")
        return _from_bytes(data, "little")

    def port_write(self, offset: int, value: int) -> None:
        if not 0 <= offset <= self._bar0_size - 4 or self._fd < 0:
            self._port_check(offset)  # raises
        try:
            n = _pwrite(self._fd, _pack_u32(value & 0xFFFFFFFF), offset)  # one 32-bit `out`
        except OSError as exc:
            raise _os_error("write", f"{self.info.path}/resource0", exc) from None
        except (TypeError, struct.error):
            n = _pwrite(self._fd, _pack_u32(int(value) & 0xFFFFFFFF), offset)
        if n != 4:
            raise DeviceError(f"short write of {n} bytes at BAR0+{offset} of PCI {self.info.address}")

    def register_ops(self) -> tuple[Callable[[int, int], None], Callable[[int], int]] | None:
        """The index/value register protocol (svga/registers.py) as two functions of one call
        each, ``write(reg, value)`` and ``read(reg) -> value``, for the FIFO's SYNC and BUSY
        traffic: the same syscalls and errors as :meth:`port_write` and :meth:`port_read`.
        None when a subclass changed those methods (its port traffic must go through them)
        or BAR0 has no room for the value port."""
        cls = type(self)
        if cls.port_write is not PciTransport.port_write or cls.port_read is not PciTransport.port_read \
                or self._bar0_size < VALUE_PORT + 4:
            return None
        index_bytes = [_pack_u32(i) for i in range(256)]
        path = f"{self.info.path}/resource0"

        def closed() -> None:
            self._port_check(INDEX_PORT)  # raises: the transport is closed

        def short(n: int, offset: int, what: str = "write") -> DeviceError:
            return DeviceError(f"short {what} of {n} bytes at BAR0+{offset} of PCI {self.info.address}")

        # Each function is one call: the index write inlined (a call costs more than the code).
        def write(reg: int, value: int) -> None:
            fd = self._fd
            if fd < 0:
                closed()
            try:
                idx = index_bytes[reg] if 0 <= reg < 256 else _pack_u32(reg & 0xFFFFFFFF)
                n = _pwrite(fd, idx, INDEX_PORT)
                if n != 4:
                    raise short(n, INDEX_PORT)
                n = _pwrite(fd, _pack_u32(value & 0xFFFFFFFF), VALUE_PORT)
            except OSError as exc:
                raise _os_error("write", path, exc) from None
            if n != 4:
                raise short(n, VALUE_PORT)

        def read(reg: int) -> int:
            fd = self._fd
            if fd < 0:
                closed()
            try:
                idx = index_bytes[reg] if 0 <= reg < 256 else _pack_u32(reg & 0xFFFFFFFF)
                n = _pwrite(fd, idx, INDEX_PORT)
                if n != 4:
                    raise short(n, INDEX_PORT)
                data = _pread(fd, 4, VALUE_PORT)
            except OSError as exc:
                raise _os_error("read", path, exc) from None
            if len(data) != 4:
                raise short(len(data), VALUE_PORT, "read")
            return _from_bytes(data, "little")

        return write, read

    def sync_op(self) -> Callable[[], int] | None:
        """The FIFO's drain step as one call (issue 19): write SYNC = 1, then read BUSY once,
        returning it (svga/registers.py: index, value; index, value read). Four syscalls, the
        same as :meth:`register_ops`' ``write(SYNC, 1)`` then ``read(BUSY)``, with the same
        checks (the transport open, no short transfer, errors mapped); None where
        :meth:`register_ops` is None."""
        if self.register_ops() is None:
            return None
        sync_idx, busy_idx, one, zero = _pack_u32(Reg.SYNC), _pack_u32(Reg.BUSY), _pack_u32(1), _pack_u32(0)
        path = f"{self.info.path}/resource0"

        def short(n: int, offset: int, what: str = "write") -> DeviceError:
            return DeviceError(f"short {what} of {n} bytes at BAR0+{offset} of PCI {self.info.address}")

        def sync_busy() -> int:
            fd = self._fd
            if fd < 0:
                self._port_check(INDEX_PORT)  # raises: the transport is closed
            try:
                if (n := _pwrite(fd, sync_idx, INDEX_PORT)) != 4:
                    raise short(n, INDEX_PORT)
                if (n := _pwrite(fd, one, VALUE_PORT)) != 4:
                    raise short(n, VALUE_PORT)
                if (n := _pwrite(fd, busy_idx, INDEX_PORT)) != 4:
                    raise short(n, INDEX_PORT)
            except OSError as exc:
                raise _os_error("write", path, exc) from None
            try:
                data = _pread(fd, 4, VALUE_PORT)
            except OSError as exc:
                raise _os_error("read", path, exc) from None
            if data == zero:  # the usual answer (QEMU's BUSY is always 0): one comparison
                return 0
            if len(data) != 4:
                raise short(len(data), VALUE_PORT, "read")
            return _from_bytes(data, "little")

        return sync_busy

    def close(self) -> None:
        # Drop our numpy views first: an mmap cannot be closed while a buffer export of it
        # is alive. If the caller still holds one (an array() result), the mapping is
        # unmapped when that last view goes away instead.
        for name in ("vram", "fifo"):
            self.__dict__.pop(name, None)
        while self._maps:
            m = self._maps.pop()
            try:
                m.close()
            except BufferError:
                pass
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
