"""Tests of svga.transport.pci over a fake sysfs tree of regular files.

pread/pwrite and mmap behave on regular files as they do on the sysfs resource files
(minus the device behind them), so the tree checks what lands where; the real device is
the QEMU lab's business.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from svga.errors import AccessDenied, DeviceBusy, DeviceError, DeviceNotFound, UnsupportedDevice
from svga.transport import pci
from svga.transport.pci import PciTransport, find_devices, lockdown_mode

MiB = 1 << 20
KiB = 1 << 10
IO = 0x40101  # IORESOURCE_IO | IORESOURCE_SIZEALIGN | PCI I/O space bit, as on QEMU
MEM = 0x42208  # IORESOURCE_MEM | IORESOURCE_PREFETCH | IORESOURCE_SIZEALIGN | prefetch bit
# QEMU's layout (port 0xc090, 16 bytes), with a 1 MiB framebuffer to keep files small.
QEMU_BARS = [(0xC090, 16, IO), (0xFD000000, 1 * MiB, MEM), (0xFE000000, 64 * KiB, MEM)]


def make_device(root, address="0000:00:02.0", vendor=0x15AD, device=0x0405, bars=QEMU_BARS,
                driver=None, command=0x0007):
    """One device directory as the kernel lays it out, reached through a symlink from
    bus/pci/devices as on a real system."""
    real = root / "devices" / "pci0000:00" / address
    real.mkdir(parents=True)
    (real / "vendor").write_text(f"0x{vendor:04x}\n")
    (real / "device").write_text(f"0x{device:04x}\n")
    (real / "class").write_text("0x030000\n")
    lines = []
    for i in range(13):  # 6 BARs, the ROM, bridge windows
        start, size, flags = bars[i] if i < len(bars) else (0, 0, 0)
        end = start + size - 1 if size else 0
        lines.append(f"0x{start:016x} 0x{end:016x} 0x{flags:016x}\n")
        if size:
            with open(real / f"resource{i}", "wb") as f:
                f.truncate(size)
    (real / "resource").write_text("".join(lines))
    config = bytearray(64)
    config[0:4] = vendor.to_bytes(2, "little") + device.to_bytes(2, "little")
    config[4:6] = command.to_bytes(2, "little")
    (real / "config").write_bytes(bytes(config))
    if driver:
        drv = root / "bus" / "pci" / "drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        (real / "driver").symlink_to(drv)
    link_dir = root / "bus" / "pci" / "devices"
    link_dir.mkdir(parents=True, exist_ok=True)
    (link_dir / address).symlink_to(real)
    return real


def set_lockdown(root, text):
    path = root / "kernel" / "security"
    path.mkdir(parents=True, exist_ok=True)
    (path / "lockdown").write_text(text + "\n")


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


# --- discovery -------------------------------------------------------------------------

def test_find_devices_lists_only_svga2_in_address_order(tmp_path):
    make_device(tmp_path, "0000:00:03.0", driver="vmwgfx")
    make_device(tmp_path, "0000:00:01.0", vendor=0x8086, device=0x7000)
    make_device(tmp_path, "0000:00:02.0")
    found = find_devices(str(tmp_path))
    assert [d.address for d in found] == ["0000:00:02.0", "0000:00:03.0"]
    first, second = found
    assert (first.vendor, first.device, first.class_code) == (0x15AD, 0x0405, 0x030000)
    assert first.driver is None and second.driver == "vmwgfx"
    assert first.bar_sizes == (16, 1 * MiB, 64 * KiB, 0, 0, 0)
    assert first.bars[0].start == 0xC090 and first.bars[0].is_io and not first.bars[0].is_mem
    assert first.bars[1].start == 0xFD000000 and first.bars[1].is_mem


def test_find_devices_without_pci_bus_is_empty(tmp_path):
    assert find_devices(str(tmp_path)) == []


@pytest.mark.parametrize("text, mode", [
    ("[none] integrity confidentiality", "none"),
    ("none [integrity] confidentiality", "integrity"),
    ("none integrity [confidentiality]", "confidentiality"),
])
def test_lockdown_mode(tmp_path, text, mode):
    set_lockdown(tmp_path, text)
    assert lockdown_mode(str(tmp_path)) == mode


def test_lockdown_mode_absent(tmp_path):
    assert lockdown_mode(str(tmp_path)) is None


# --- errors before anything is opened ----------------------------------------------------

def test_no_device(tmp_path):
    make_device(tmp_path, "0000:00:01.0", vendor=0x8086, device=0x7000)
    with pytest.raises(DeviceNotFound) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    assert "15ad:0405" in msg and str(tmp_path / "bus" / "pci" / "devices") in msg
    assert "--device model" in msg


def test_given_address_that_is_not_svga2(tmp_path):
    make_device(tmp_path, "0000:00:01.0", vendor=0x8086, device=0x7000)
    with pytest.raises(DeviceNotFound) as e:
        PciTransport("0000:00:01.0", sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    assert "0000:00:01.0" in msg and "8086:7000" in msg


def test_given_address_that_does_not_exist(tmp_path):
    make_device(tmp_path)
    with pytest.raises(DeviceNotFound) as e:
        PciTransport("0000:00:09.0", sysfs_root=str(tmp_path), require_root=False)
    assert "0000:00:09.0" in one_line(e)


def test_driver_bound(tmp_path):
    make_device(tmp_path, driver="vmwgfx")
    with pytest.raises(DeviceBusy) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    unbind = tmp_path / "bus" / "pci" / "drivers" / "vmwgfx" / "unbind"
    assert "vmwgfx" in msg and f"echo 0000:00:02.0 > {unbind}" in msg


def test_other_driver_bound_is_named(tmp_path):
    make_device(tmp_path, driver="vfio-pci")
    with pytest.raises(DeviceBusy) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    assert "drivers/vfio-pci/unbind" in one_line(e)


def test_not_root(tmp_path, monkeypatch):
    make_device(tmp_path)
    monkeypatch.setattr(pci.os, "geteuid", lambda: 1000)
    with pytest.raises(AccessDenied) as e:
        PciTransport(sysfs_root=str(tmp_path))
    assert "root" in one_line(e)


def test_root_passes_the_root_check(tmp_path, monkeypatch):
    make_device(tmp_path)
    monkeypatch.setattr(pci.os, "geteuid", lambda: 0)
    with PciTransport(sysfs_root=str(tmp_path)) as t:
        assert t.kind == "pci"


@pytest.mark.parametrize("mode", ["integrity", "confidentiality"])
def test_lockdown_blocks(tmp_path, mode):
    make_device(tmp_path)
    set_lockdown(tmp_path, {"integrity": "none [integrity] confidentiality",
                            "confidentiality": "none integrity [confidentiality]"}[mode])
    with pytest.raises(AccessDenied) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    assert mode in msg and "lockdown" in msg


def test_lockdown_none_is_fine(tmp_path):
    make_device(tmp_path)
    set_lockdown(tmp_path, "[none] integrity confidentiality")
    PciTransport(sysfs_root=str(tmp_path), require_root=False).close()


@pytest.mark.parametrize("bars, name, size", [
    ([(0xFC000000, 16, MEM)] + QEMU_BARS[1:], "BAR0", "16 bytes of memory"),
    ([(0xC000, 512, IO)] + QEMU_BARS[1:], "BAR0", "512 bytes of I/O"),
    ([(0xC090, 2, IO)] + QEMU_BARS[1:], "BAR0", "2 bytes of I/O"),
    ([QEMU_BARS[0], (0xFD000000, 512 * KiB, MEM), QEMU_BARS[2]], "BAR1", "524288 bytes of memory"),
    ([QEMU_BARS[0], (0, 0, 0), QEMU_BARS[2]], "BAR1", "unassigned (0 bytes)"),
    ([QEMU_BARS[0], QEMU_BARS[1], (0xFE000000, 8 * KiB, MEM)], "BAR2", "8192 bytes of memory"),
    (QEMU_BARS[:2], "BAR2", "unassigned (0 bytes)"),
])
def test_unexpected_bar(tmp_path, bars, name, size):
    make_device(tmp_path, bars=bars)
    with pytest.raises(UnsupportedDevice) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    assert f"{name} is {size}" in msg and "0000:00:02.0" in msg


def test_decoding_off(tmp_path):
    make_device(tmp_path, command=0x0000)
    with pytest.raises(DeviceError) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    assert "decoding" in msg and "0000:00:02.0/enable" in msg


# --- errors from the kernel when opening -------------------------------------------------

def _fail_open_of(monkeypatch, suffix, err):
    real_open = os.open

    def fake_open(path, *args, **kwargs):
        if str(path).endswith(suffix):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(pci.os, "open", fake_open)


@pytest.mark.parametrize("err", [errno.EPERM, errno.EACCES])
@pytest.mark.parametrize("resource", ["resource0", "resource2"])
def test_open_denied(tmp_path, monkeypatch, err, resource):
    dev = make_device(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    _fail_open_of(monkeypatch, "/" + resource, err)
    with pytest.raises(AccessDenied) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    assert str(tmp_path / "bus" / "pci" / "devices" / "0000:00:02.0" / resource) in one_line(e)
    assert dev.exists()
    assert len(os.listdir("/proc/self/fd")) == before  # what was opened before is released


def test_mmap_refused_by_lockdown_is_access_denied(tmp_path, monkeypatch):
    make_device(tmp_path)

    def fake_mmap(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(pci.mmap, "mmap", fake_mmap)
    with pytest.raises(AccessDenied) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    assert "resource1" in one_line(e)


def test_mmap_of_claimed_range_is_busy(tmp_path, monkeypatch):
    make_device(tmp_path)

    def fake_mmap(*args, **kwargs):
        raise OSError(errno.EINVAL, "Invalid argument")
    monkeypatch.setattr(pci.mmap, "mmap", fake_mmap)
    with pytest.raises(DeviceBusy) as e:
        PciTransport(sysfs_root=str(tmp_path), require_root=False)
    msg = one_line(e)
    assert "resource1" in msg and "/proc/iomem" in msg


# --- the open transport ------------------------------------------------------------------

@pytest.fixture
def opened(tmp_path):
    dev = make_device(tmp_path)
    t = PciTransport(sysfs_root=str(tmp_path), require_root=False)
    yield t, dev
    t.close()


def test_description(opened):
    t, _ = opened
    assert t.kind == "pci"
    assert t.description == "PCI 0000:00:02.0 VMware SVGA II (15ad:0405)"


def test_description_says_first_of_several(tmp_path):
    make_device(tmp_path, "0000:00:02.0")
    make_device(tmp_path, "0000:00:05.0")
    with PciTransport(sysfs_root=str(tmp_path), require_root=False) as t:
        assert t.info.address == "0000:00:02.0"
        assert "first of 2" in t.description and "0000:00:05.0" in t.description
    with PciTransport("00:05.0", sysfs_root=str(tmp_path), require_root=False) as t:
        assert t.description == "PCI 0000:00:05.0 VMware SVGA II (15ad:0405)"


def test_port_writes_are_four_little_endian_bytes_at_the_offset(opened):
    t, dev = opened
    t.port_write(0, 0x12345678)  # index port
    assert (dev / "resource0").read_bytes()[:4] == bytes([0x78, 0x56, 0x34, 0x12])
    t.port_write(1, 0xAABBCCDD)  # value port, overlapping the index port's upper bytes
    assert (dev / "resource0").read_bytes() == bytes([0x78, 0xDD, 0xCC, 0xBB, 0xAA]) + bytes(11)
    t.port_write(12, -1)  # last 4 bytes of the 16-byte BAR; masked to 32 bits
    assert (dev / "resource0").read_bytes()[12:] == b"\xff" * 4


def test_port_reads_are_four_little_endian_bytes_at_the_offset(opened):
    t, dev = opened
    (dev / "resource0").write_bytes(bytes(range(16)))
    assert t.port_read(0) == 0x03020100
    assert t.port_read(1) == 0x04030201
    assert t.port_read(12) == 0x0F0E0D0C


@pytest.mark.parametrize("offset", [-1, 13, 16])
def test_port_offset_outside_bar0(opened, offset):
    t, _ = opened
    with pytest.raises(IndexError):
        t.port_read(offset)
    with pytest.raises(IndexError):
        t.port_write(offset, 0)


def test_memories_are_the_bar_files(opened):
    t, dev = opened
    assert t.vram.size == 1 * MiB and t.fifo.size == 64 * KiB
    t.vram.write32(0x100, 0xDEADBEEF)
    t.vram.write(MiB - 3, b"end")
    t.fifo.write32(4, 0x10000)
    t.fifo.write(0x20, np.arange(8, dtype=np.uint8))
    for m in t._maps:
        m.flush()
    vram = (dev / "resource1").read_bytes()
    fifo = (dev / "resource2").read_bytes()
    assert vram[0x100:0x104] == bytes([0xEF, 0xBE, 0xAD, 0xDE]) and vram[-3:] == b"end"
    assert fifo[4:8] == bytes([0x00, 0x00, 0x01, 0x00]) and fifo[0x20:0x28] == bytes(range(8))
    assert len(vram) == 1 * MiB and len(fifo) == 64 * KiB  # the mapping did not grow the file


def test_memories_see_what_is_written_to_the_files(opened):
    t, dev = opened
    fd = os.open(dev / "resource2", os.O_RDWR)
    try:
        os.pwrite(fd, (1164).to_bytes(4, "little"), 8)
    finally:
        os.close(fd)
    assert t.fifo.read32(8) == 1164
    assert t.fifo.array()[8:12].tolist() == [0x8C, 0x04, 0, 0]


def test_close_is_idempotent_and_releases_everything(tmp_path):
    make_device(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    t = PciTransport(sysfs_root=str(tmp_path), require_root=False)
    maps = list(t._maps)
    assert len(os.listdir("/proc/self/fd")) == before + 1 + len(maps)  # resource0 + one per mmap
    t.close()
    t.close()
    assert len(os.listdir("/proc/self/fd")) == before
    assert all(m.closed for m in maps)
    with pytest.raises(DeviceError):
        t.port_read(0)


def test_close_with_a_view_still_held(tmp_path):
    dev = make_device(tmp_path)
    t = PciTransport(sysfs_root=str(tmp_path), require_root=False)
    view = t.vram.array()
    t.close()  # must not raise although the mapping is still exported
    view[0:2] = [0xAB, 0xCD]
    del view
    assert (dev / "resource1").read_bytes()[:2] == bytes([0xAB, 0xCD])


# --- the drain step in one call (issue 19) ------------------------------------------------

class PortLog:
    """Stands in for os.pwrite/os.pread on resource0: records each access (the register
    protocol of svga/registers.py written out: index at +0, value at +1) and answers reads."""

    def __init__(self, answer: int = 0) -> None:
        self.calls: list[tuple[str, bytes | int, int]] = []
        self.answer = answer
        self.short_at: int | None = None
        self.fail: OSError | None = None

    def pwrite(self, fd, data, offset):
        if self.fail is not None:
            raise self.fail
        self.calls.append(("w", bytes(data), offset))
        return 2 if self.short_at == len(self.calls) else len(data)

    def pread(self, fd, n, offset):
        self.calls.append(("r", n, offset))
        return self.answer.to_bytes(4, "little")[:n]


def test_sync_op_is_sync_then_one_busy_read(opened, monkeypatch):
    t, _ = opened
    log = PortLog(answer=7)
    monkeypatch.setattr(pci, "_pwrite", log.pwrite)
    monkeypatch.setattr(pci, "_pread", log.pread)
    step = t.sync_op()
    assert step is not None and step() == 7
    le = lambda v: v.to_bytes(4, "little")  # noqa: E731
    want = [("w", le(21), 0), ("w", le(1), 1), ("w", le(22), 0), ("r", 4, 1)]  # SYNC = 21, BUSY = 22
    assert log.calls == want
    write, read = t.register_ops()
    log.calls.clear()
    write(21, 1)
    assert read(22) == 7
    assert log.calls == want  # the same traffic as the two register calls
    for answer in (0, 1, 0x80000000):  # BUSY 0 (QEMU's usual answer) and others, as read
        log.answer = answer
        assert step() == read(22) == answer


def test_sync_op_checks(opened, monkeypatch):
    t, _ = opened
    log = PortLog()
    monkeypatch.setattr(pci, "_pwrite", log.pwrite)
    monkeypatch.setattr(pci, "_pread", log.pread)
    step = t.sync_op()
    for at, offset in ((1, 0), (2, 1), (3, 0)):
        log.calls.clear()
        log.short_at = at
        with pytest.raises(DeviceError, match=f"short write of 2 bytes at BAR0\\+{offset} "):
            step()
        assert len(log.calls) == at  # nothing written after the short one
    log.short_at = None
    log.fail = OSError(errno.EPERM, "Operation not permitted")
    with pytest.raises(AccessDenied, match="resource0"):
        step()
    log.fail = None
    log.answer = 0
    monkeypatch.setattr(pci, "_pread", lambda fd, n, off: b"\0\0")
    with pytest.raises(DeviceError, match="short read of 2 bytes at BAR0\\+1 "):
        step()
    t.close()
    with pytest.raises(DeviceError, match="closed"):
        step()


def test_sync_op_absent_where_ports_are_overridden(tmp_path):
    make_device(tmp_path)

    class Wrapped(PciTransport):
        def port_write(self, offset, value):
            super().port_write(offset, value)

    with Wrapped(sysfs_root=str(tmp_path), require_root=False) as t:
        assert t.register_ops() is None and t.sync_op() is None


def test_fifo_sync_drains_through_sync_op(opened, monkeypatch):
    """The FIFO's sync over the sysfs transport: a stand-in device that, at each SYNC, moves
    STOP by at most 24 bytes; sync repeats SYNC until STOP reaches NEXT_CMD and checks it."""
    from svga.errors import FifoError
    from svga.fifo import Fifo
    from svga.registers import Cap, RegisterFile

    t, _ = opened
    fifo_words = t.fifo.array().view("<u4")
    log = PortLog()
    state = {"index": 0, "syncs": 0, "step": 24}

    def pwrite(fd, data, offset):
        log.pwrite(fd, data, offset)
        value = int.from_bytes(data, "little")
        if offset == 0:
            state["index"] = value
        elif state["index"] == 21:  # SYNC: the device runs some commands
            state["syncs"] += 1
            stop, nxt = int(fifo_words[3]), int(fifo_words[2])
            fifo_words[3] = min(stop + state["step"], nxt) if state["step"] >= 0 else stop + 400
        return 4

    monkeypatch.setattr(pci, "_pwrite", pwrite)
    monkeypatch.setattr(pci, "_pread", log.pread)
    regs = RegisterFile(t)
    fifo = Fifo(regs, t.fifo, Cap(0), transport=t)
    fifo.init()
    cmd = (1).to_bytes(4, "little") + bytes(16)  # one UPDATE
    for _ in range(5):
        fifo.write_command(cmd)
    state["syncs"] = 0
    fifo.sync()
    assert state["syncs"] == 5 and int(fifo_words[3]) == int(fifo_words[2]) == fifo.next_offset
    fifo.write_command(cmd)
    state["step"] = -1  # STOP runs past NEXT_CMD: reported, the FIFO re-initialised
    with pytest.raises(FifoError, match="past NEXT_CMD"):
        fifo.sync()
    assert fifo.overruns == 1 and int(fifo_words[2]) == int(fifo_words[3]) == fifo.min
    state["step"] = 0  # nothing moves: a stall, reported
    fifo.write_command(cmd)
    with pytest.raises(FifoError, match="SYNC moves nothing"):
        fifo.sync()

