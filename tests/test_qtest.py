"""QEMU's real SVGA II device through the qtest transport (svga/transport/qtest.py).

Expected values are written down from the device's specification (svga_reg.h via
svga.registers, the PCI ids) and from what QEMU 7.2 is documented to report
(docs/qemu-7.2.md, docs/lab.md); pixels are checked against a plain
numpy reading of RECT_FILL and RECT_COPY.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from svga.commands import encode
from svga.errors import DeviceError, DeviceNotFound, SVGAError
from svga.registers import (
    FIFO_MIN_SIZE_LEGACY,
    PCI_DEVICE_SVGA2,
    PCI_VENDOR_VMWARE,
    SVGA_ID_2,
    Cap,
    FifoReg,
    Reg,
    RegisterFile,
)
from svga.transport.qtest import QtestMemory, QtestTransport, _QtestChannel

pytestmark = pytest.mark.qemu

MiB = 1 << 20
W, H = 800, 600  # 640x480x32 is never shown by QEMU 7.2 (docs/qemu-7.2.md quirk 1)


@pytest.fixture(scope="module")
def qt():
    t = QtestTransport()
    yield t
    t.close()


@pytest.fixture(scope="module")
def regs(qt):
    return RegisterFile(qt)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, limit: float = 10.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return _gone(pid)


# -- start-up, identity, registers --------------------------------------------------------

def test_starts_and_describes_itself(qt):
    assert qt.kind == "qemu"
    assert qt.description.startswith("QEMU ")
    assert qt.description.endswith(" -vga vmware through qtest (display none)")
    assert not _gone(qt.pid)


def test_pci_identity_through_config_space(qt):
    assert qt.config_read(0x00) == PCI_VENDOR_VMWARE | PCI_DEVICE_SVGA2 << 16 == 0x040515AD
    # class code 0x030000 (VGA-compatible display controller) in the top 24 bits of reg 8
    assert qt.config_read(0x08) >> 8 == 0x030000


def test_bars_probed_and_placed(qt):
    assert qt.bar_sizes == {0: 16, 1: 16 * MiB, 2: 64 * 1024}
    assert qt.config_read(0x10) == qt.bars[0] | 0x1          # I/O space indicator
    assert qt.config_read(0x14) == qt.bars[1] | 0x8          # 32-bit, prefetchable
    assert qt.config_read(0x18) & ~0xF == qt.bars[2]
    assert qt.bars[1] % (16 * MiB) == 0 and qt.bars[2] % (64 * 1024) == 0
    assert qt.config_read(0x04) & 0x7 == 0x7                 # I/O, memory, bus master on


def test_id_negotiation(regs):
    regs[Reg.ID] = SVGA_ID_2
    assert regs[Reg.ID] == 0x90000002


def test_capabilities_headless(regs):
    assert regs[Reg.CAPABILITIES] == 0x3 == Cap.RECT_FILL | Cap.RECT_COPY


def test_sizes(regs):
    assert regs[Reg.MEM_SIZE] == 65536
    assert regs[Reg.VRAM_SIZE] == 16 * MiB
    assert regs[Reg.FB_SIZE] == 16 * MiB


def test_capabilities_with_vnc():
    with QtestTransport(display="vnc") as t:
        assert t.description.endswith("(display vnc)")
        r = RegisterFile(t)
        r[Reg.ID] = SVGA_ID_2
        caps = r[Reg.CAPABILITIES]
    assert caps == 0xE3
    assert caps == Cap.RECT_FILL | Cap.RECT_COPY | Cap.CURSOR | Cap.CURSOR_BYPASS | Cap.CURSOR_BYPASS_2


def test_vram_size_option():
    with QtestTransport(vram_mb=8) as t:
        assert t.bar_sizes[1] == 8 * MiB
        assert RegisterFile(t)[Reg.VRAM_SIZE] == 8 * MiB


def test_unknown_display_is_one_line_error():
    with pytest.raises(SVGAError, match="unknown QEMU display 'sdl'"):
        QtestTransport(display="sdl")


# -- memory ----------------------------------------------------------------------------

def test_vram_round_trip(qt):
    rng = np.random.default_rng(1)
    base = 9 * MiB + 3                      # away from the framebuffer, unaligned
    data = rng.integers(0, 256, 300_001, dtype=np.uint8)
    qt.vram.write(base, data)
    assert qt.vram.read(base, len(data)) == data.tobytes()
    qt.vram.write32(12 * MiB, 0xDEADBEEF)
    assert qt.vram.read32(12 * MiB) == 0xDEADBEEF
    assert qt.vram.read(12 * MiB, 4) == bytes([0xEF, 0xBE, 0xAD, 0xDE])   # little-endian


def test_fifo_round_trip(qt):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, 4099, dtype=np.uint8).tobytes()
    qt.fifo.write(60_000, data)
    assert qt.fifo.read(60_000, len(data)) == data
    qt.fifo.write32(64 * 1024 - 4, 0x01020304)
    assert qt.fifo.read32(64 * 1024 - 4) == 0x01020304


def test_writes_combine_until_observed(qt):
    base = 10 * MiB
    qt.vram.write(base, b"\x11" * 10)
    qt.vram.write(base + 20, b"\x22" * 10)
    assert qt.vram.pending() == 20
    qt.vram.write(base + 5, b"\x33" * 20)    # bridges both runs: one run of 30 bytes
    assert qt.vram.pending() == 30
    got = qt.vram.read(base, 30)             # a read sends what is pending first
    assert qt.vram.pending() == 0
    assert got == b"\x11" * 5 + b"\x33" * 20 + b"\x22" * 5


def test_out_of_range_access_raises(qt):
    with pytest.raises(IndexError):
        qt.fifo.write(64 * 1024 - 2, b"1234")
    with pytest.raises(IndexError):
        qt.vram.read(16 * MiB - 1, 2)


# -- a raw FIFO command stream -------------------------------------------------------------

class RawFifo:
    """The test's own minimal FIFO writer: whole batches into a legacy FIFO (MIN=16),
    drained by repeating SYNC until STOP == NEXT_CMD (docs/qemu-7.2.md)."""

    def __init__(self, t: QtestTransport, regs: RegisterFile) -> None:
        self.t, self.regs = t, regs
        self.min, self.max = FIFO_MIN_SIZE_LEGACY, regs[Reg.MEM_SIZE]
        f = t.fifo
        f.write32(FifoReg.MIN * 4, self.min)
        f.write32(FifoReg.MAX * 4, self.max)
        f.write32(FifoReg.NEXT_CMD * 4, self.min)
        f.write32(FifoReg.STOP * 4, self.min)
        regs[Reg.CONFIG_DONE] = 1
        self.next = self.min

    def _put(self, data: bytes) -> None:
        first = min(len(data), self.max - self.next)
        self.t.fifo.write(self.next, data[:first])
        if first < len(data):
            self.t.fifo.write(self.min, data[first:])
        self.next = self.min + (self.next - self.min + len(data)) % (self.max - self.min)

    def _drain(self) -> None:
        self.t.fifo.write32(FifoReg.NEXT_CMD * 4, self.next)
        for _ in range(100):
            self.regs[Reg.SYNC] = 1
            if self.t.fifo.read32(FifoReg.STOP * 4) == self.next:
                return
        raise AssertionError("FIFO did not drain")

    def run(self, commands: list[bytes]) -> None:
        ring = self.max - self.min
        used = count = 0
        for c in commands:
            if used + len(c) > ring - 4 or count == 1000:  # one dword stays free; <=1023 per SYNC
                self._drain()
                used = count = 0
            self._put(c)
            used += len(c)
            count += 1
        self._drain()


def _rgb(frame: np.ndarray) -> np.ndarray:
    return np.stack([(frame >> 16) & 0xFF, (frame >> 8) & 0xFF, frame & 0xFF], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def scene():
    """A second QEMU, in an 800x600x32 mode with a legacy FIFO, its surface refreshed."""
    t = QtestTransport()
    r = RegisterFile(t)
    r[Reg.ID] = SVGA_ID_2
    r[Reg.WIDTH] = W
    r[Reg.HEIGHT] = H
    r[Reg.BITS_PER_PIXEL] = 32
    r[Reg.ENABLE] = 1
    fifo = RawFifo(t, r)
    # A screendump is a refresh: QEMU's surface takes the new mode before any fill runs.
    first = t.display_image()
    yield t, r, fifo, first
    t.close()


def test_mode_registers(scene):
    t, r, _, first = scene
    assert (r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BITS_PER_PIXEL], r[Reg.DEPTH]) == (W, H, 32, 24)
    assert r[Reg.BYTES_PER_LINE] == W * 4
    assert r[Reg.CONFIG_DONE] == 1
    assert first.shape == (H, W, 3) and first.dtype == np.uint8


def test_fill_and_copy_stream_matches_numpy(scene):
    t, r, fifo, _ = scene
    stride = r[Reg.BYTES_PER_LINE]
    fb_off = r[Reg.FB_OFFSET]
    # CPU drawing first: a gradient, then UPDATE, as a driver would.
    yy, xx = np.mgrid[0:H, 0:W].astype(np.uint32)
    frame = (xx * 255 // (W - 1)) << 16 | (yy * 255 // (H - 1)) << 8 | 0x40
    t.vram.write(fb_off, frame.astype("<u4"))
    cmds = [encode("UPDATE", x=0, y=0, width=W, height=H)]
    fills = [(0xFF0000, 10, 10, 200, 100), (0x00FF00, 150, 50, 300, 300),
             (0x0000FF, 0, 590, 800, 10), (0x123456, 799, 0, 1, 600)]
    for color, x, y, w, h in fills:
        cmds.append(encode("RECT_FILL", color=color, x=x, y=y, width=w, height=h))
        frame[y:y + h, x:x + w] = color
    # An overlapping copy behaves as a copy from a snapshot of the source.
    sx, sy, dx, dy, w, h = 100, 40, 130, 70, 250, 200
    cmds.append(encode("RECT_COPY", src_x=sx, src_y=sy, dest_x=dx, dest_y=dy, width=w, height=h))
    frame[dy:dy + h, dx:dx + w] = frame[sy:sy + h, sx:sx + w].copy()
    cmds.append(encode("UPDATE", x=0, y=0, width=W, height=H))
    fifo.run(cmds)
    want = _rgb(frame)
    assert np.array_equal(t.read_vram_image(W, H, stride, fb_off), want)
    assert np.array_equal(t.display_image(), want)


def test_many_fills_wrap_the_fifo(scene):
    t, r, fifo, _ = scene
    rng = np.random.default_rng(3)
    frame = np.zeros((H, W), dtype=np.uint32)
    cmds = [encode("RECT_FILL", color=0, x=0, y=0, width=W, height=H)]
    for _ in range(3000):  # 72 KB of commands: more than the 64 KiB ring
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        w, h = int(rng.integers(1, W - x + 1)), int(rng.integers(1, H - y + 1))
        color = int(rng.integers(0, 1 << 24))
        cmds.append(encode("RECT_FILL", color=color, x=x, y=y, width=min(w, 64), height=min(h, 64)))
        frame[y:y + min(h, 64), x:x + min(w, 64)] = color
    assert sum(map(len, cmds)) > 64 * 1024
    fifo.run(cmds)
    assert t.fifo.read32(FifoReg.STOP * 4) == t.fifo.read32(FifoReg.NEXT_CMD * 4)
    assert np.array_equal(t.read_vram_image(W, H, r[Reg.BYTES_PER_LINE]), _rgb(frame))
    assert np.array_equal(t.display_image(), _rgb(frame))


def test_dropped_fill_is_logged_and_the_next_runs(scene):
    t, r, fifo, _ = scene
    fb = r[Reg.FB_OFFSET]
    # A fill outside the surface is dropped and logged on stdout by QEMU 7.2 (as "Unknown
    # command 0x02"); the next command still runs (docs/qemu-7.2.md quirk 6).
    fifo.run([encode("RECT_FILL", color=0x010203, x=W - 1, y=0, width=1, height=1),
              encode("RECT_FILL", color=0xFFFFFF, x=W - 1, y=0, width=2, height=1),
              encode("RECT_FILL", color=0xABCDEF, x=0, y=0, width=1, height=1)])
    assert t.vram.read32(fb + (W - 1) * 4) == 0x010203
    assert t.vram.read32(fb) == 0xABCDEF
    line = "vmsvga_fifo_run: Unknown command 0x02 in SVGA command FIFO"
    end = time.monotonic() + 5.0            # QEMU's output arrives through a drain thread
    while line not in t.qemu_output() and time.monotonic() < end:
        time.sleep(0.01)
    assert line in t.qemu_output()


# -- failures ------------------------------------------------------------------------------

def test_missing_qemu_is_one_line_error(tmp_path):
    with pytest.raises(DeviceNotFound) as info:
        QtestTransport(qemu=str(tmp_path / "no-such-qemu-system-x86_64"))
    msg = str(info.value)
    assert "\n" not in msg and "apt-get install qemu-system-x86" in msg


def test_qemu_refusing_to_start_reports_its_stderr():
    with pytest.raises(DeviceError) as info:
        QtestTransport(extra_args=["-no-such-option"])
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("QEMU exited (exit code 1) at start-up; its last output: ")
    assert "-no-such-option: invalid option" in msg


def test_qemu_dying_mid_session_is_one_line_error():
    t = QtestTransport(timeout=5.0)
    regs = RegisterFile(t)
    regs[Reg.ID] = SVGA_ID_2
    os.kill(t.pid, signal.SIGKILL)
    with pytest.raises(DeviceError) as info:
        regs[Reg.ID]
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("QEMU exited (killed by SIGKILL) while in use")
    with pytest.raises(DeviceError):     # and it stays failed, without waiting again
        t.port_read(1)
    t.close()


def test_qemu_not_answering_times_out():
    t = QtestTransport(timeout=0.3)
    os.kill(t.pid, signal.SIGSTOP)
    try:
        with pytest.raises(DeviceError, match="stopped answering the qtest channel: no reply within 0.3 s"):
            t.vram.read(0, 4)
    finally:
        os.kill(t.pid, signal.SIGCONT)
        t.close()


def test_close_kills_qemu_and_is_idempotent():
    t = QtestTransport()
    pid = t.pid
    tmp = t._state.proc.workdir
    t.close()
    t.close()
    assert _gone(pid)
    assert not os.path.exists(tmp)
    with pytest.raises(DeviceError, match="closed"):
        t.port_read(0)


def test_garbage_collection_kills_qemu():
    t = QtestTransport()
    pid = t.pid
    del t
    assert _gone(pid)


def test_qemu_dies_with_a_killed_parent():
    code = textwrap.dedent("""
        import os, signal
        from svga.transport.qtest import QtestTransport
        t = QtestTransport()
        print(t.pid, t._state.proc.workdir, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == -signal.SIGKILL
    pid, tmpdir = out.stdout.split()
    shutil.rmtree(tmpdir, ignore_errors=True)  # a killed process leaves its sockets behind
    assert _wait_gone(int(pid))


# -- the line protocol, against a fake QEMU on a socket pair -----------------------------------

def _fake_qemu(replies: dict[bytes, bytes]):
    """A socket whose peer answers each request line from a table (default ``OK``)."""
    ours, theirs = socket.socketpair()

    def serve():
        buf = b""
        with theirs:
            while True:
                data = theirs.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    reply = replies.get(line.split(b" ")[0], b"OK\n")
                    if reply == b"HANG\n":
                        continue
                    if reply == b"HANGUP\n":
                        return
                    theirs.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return ours


def _dead(reason: str) -> DeviceError:
    return DeviceError(f"dead: {reason}")


def test_channel_skips_lines_that_are_not_replies():
    ch = _QtestChannel(_fake_qemu({b"inl": b"IRQ raise 4\n[R +0.1] noise\nOK 0x1234\n"}), 2.0, _dead)
    for _ in range(1000):                 # many posted requests, replies collected on the way
        ch.post("outl 0xc000 0x1")
    assert ch.query("inl 0xc001") == "0x1234"
    ch.close()


def test_channel_fail_reply_names_the_request():
    ch = _QtestChannel(_fake_qemu({b"bogus": b"FAIL Unknown command 'bogus'\n"}), 2.0, _dead)
    ch.post("outl 0xc000 0x1")
    ch.post("bogus 1 2")
    with pytest.raises(DeviceError, match="refused 'bogus 1 2': FAIL Unknown command"):
        ch.sync()
    ch.close()


def test_channel_times_out_and_reports_hangup():
    ch = _QtestChannel(_fake_qemu({b"inl": b"HANG\n"}), 0.2, _dead)
    with pytest.raises(DeviceError, match="dead: no reply within 0.2 s"):
        ch.query("inl 0xc001")
    ch.close()
    ch = _QtestChannel(_fake_qemu({b"inl": b"HANGUP\n"}), 2.0, _dead)
    with pytest.raises(DeviceError, match="dead: the qtest channel was closed"):
        ch.query("inl 0xc001")
    ch.close()


class _Recorder:
    """Stands in for the channel: applies b64write requests to a numpy image of memory."""

    def __init__(self, size: int) -> None:
        self.mem = np.zeros(size, dtype=np.uint8)
        self.requests = 0
        self.order: list[tuple[int, int]] = []

    def post(self, line: bytes) -> None:
        op, addr, size, payload = line.split(b" ")
        assert op == b"b64write"
        data = np.frombuffer(base64.b64decode(payload), np.uint8)
        assert len(data) == int(size, 16) <= 64 * 1024
        self.mem[int(addr, 16): int(addr, 16) + len(data)] = data
        self.requests += 1
        self.order.append((int(addr, 16), len(data)))


def test_write_combining_sends_each_run_once():
    rng = np.random.default_rng(4)
    size = 1 << 18
    rec = _Recorder(size)
    mem = QtestMemory(rec, 0, size, "test")  # type: ignore[arg-type]
    want = np.zeros(size, dtype=np.uint8)
    written = np.zeros(size, dtype=bool)
    for _ in range(500):
        a = int(rng.integers(0, size - 1))
        n = int(rng.integers(1, min(3000, size - a) + 1))
        data = rng.integers(0, 256, n, dtype=np.uint8)
        mem.write(a, data)
        want[a:a + n] = data
        written[a:a + n] = True
    # Runs are maximal: as many as the contiguous written stretches, none touching another.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], written.astype(np.int8), [0]))))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    assert mem.pending() == int(written.sum())
    mem.send_pending()
    assert np.array_equal(rec.mem, want)
    assert rec.requests == sum((e - s + 65535) // 65536 for s, e in runs)
    assert mem.pending() == 0


def test_next_cmd_reaches_qemu_after_the_commands_it_announces():
    # Program order on a FIFO: command words first, then NEXT_CMD (word 2, below them).
    rec = _Recorder(65536)
    mem = QtestMemory(rec, 0, 65536, "fifo")  # type: ignore[arg-type]
    mem.write32(FifoReg.MIN * 4, 16)          # set-up, long before: its own run
    mem.write(40_000, b"\x01" * 10_000)      # a command ending the ring...
    mem.write(16, b"\x02" * 24)               # ...and its wrapped tail
    mem.write32(FifoReg.NEXT_CMD * 4, 40)
    mem.send_pending()
    assert rec.order == [(0, 4), (40_000, 10_000), (16, 24), (8, 4)]
    # One run longer than a request (64 KiB) goes out from its end down, lowest words last.
    rec = _Recorder(1 << 18)
    mem = QtestMemory(rec, 0, 1 << 18, "big")  # type: ignore[arg-type]
    mem.write(0, bytes(1 << 18))
    mem.send_pending()
    assert rec.order == [(196608, 65536), (131072, 65536), (65536, 65536), (0, 65536)]


# -- read-ahead and known FIFO words (the round trips a SYNC costs) -----------------------------

def _round_trips(t: QtestTransport) -> list[int]:
    """Count the channel's waits for replies (each one a round trip to QEMU)."""
    n = [0]
    ch = t._ch
    results = ch.results

    def counting() -> list[bytes]:
        n[0] += 1
        return results()

    ch.results = counting  # type: ignore[method-assign]
    return n


def _fill_stream(n: int) -> tuple[list[bytes], np.ndarray]:
    """n RECT_FILL/UPDATE commands inside 640x480 (QEMU's headless surface before any
    refresh, docs/qemu-7.2.md quirk 2) and a numpy reading of the fills."""
    frame = np.zeros((480, 640), np.uint32)
    cmds = []
    for i in range(n):
        cell = i // 2
        x, y = cell % 40 * 16, cell // 40 % 30 * 16
        if i % 2 == 0:
            color = (cell * 0x010203) & 0xFFFFFF
            cmds.append(encode("RECT_FILL", color=color, x=x, y=y, width=16, height=16))
            frame[y:y + 16, x:x + 16] = color
        else:
            cmds.append(encode("UPDATE", x=x, y=y, width=16, height=16))
    return cmds, frame


def test_fifo_words_answered_without_a_round_trip_are_what_qemu_holds():
    from svga.device import Device
    t = QtestTransport()
    try:
        dev = Device(t)
        dev.set_mode(640, 480)
        mem, ch = t.fifo, t._ch
        read32 = mem.read32
        checked = [0, 0]  # reads, of which answered without a round trip

        def checking(offset: int) -> int:
            before = ch.count
            value = read32(offset)
            checked[0] += 1
            checked[1] += ch.count == before
            # The oracle: QEMU's own answer, asked now with a plain readl.
            assert value == int(ch.query(f"readl {mem.base + offset:#x}"), 16), offset
            return value

        mem.read32 = checking  # type: ignore[method-assign]
        cmds, frame = _fill_stream(8000)  # 176 KB: the 64 KiB ring wraps twice
        dev.fifo.write_batch(cmds)
        dev.sync()
        assert checked[0] >= 8 and checked[1] >= checked[0] // 2
        del mem.read32
        got = dev.read_vram()
        assert np.array_equal(got[:480, :640], frame)
        assert mem.read32(FifoReg.STOP * 4) == mem.read32(FifoReg.NEXT_CMD * 4) == dev.fifo.next_offset
    finally:
        t.close()


def test_a_sync_of_write_batch_costs_one_round_trip():
    from svga.device import Device
    t = QtestTransport()
    try:
        dev = Device(t)
        dev.set_mode(640, 480)
        syncs = [0]
        port_write = t.port_write

        def counting_writes(offset: int, value: int) -> None:
            syncs[0] += offset == 0 and value == Reg.SYNC  # SVGA_INDEX_PORT selecting SYNC
            port_write(offset, value)

        t.port_write = counting_writes  # type: ignore[method-assign]
        trips = _round_trips(t)
        cmds, frame = _fill_stream(8000)
        dev.fifo.write_batch(cmds)
        dev.sync()
        # QEMU runs at most 1023 commands a SYNC (docs/qemu-7.2.md 'Per-run cap'): 8000 need 8+.
        assert syncs[0] >= 8
        # BUSY and STOP come back together, and STOP is not asked again before the next SYNC.
        assert trips[0] <= syncs[0] + 2, (trips[0], syncs[0])
        assert np.array_equal(dev.read_vram()[:480, :640], frame)
    finally:
        t.close()


def test_known_fifo_words_are_forgotten_when_qemu_may_have_changed_them():
    t = QtestTransport()
    try:
        r = RegisterFile(t)
        r[Reg.ID] = SVGA_ID_2
        r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BITS_PER_PIXEL] = W, H, 32
        r[Reg.ENABLE] = 1
        fifo = RawFifo(t, r)
        t.display_image()  # the surface takes the mode (docs/qemu-7.2.md quirk 2)
        fb = r[Reg.FB_OFFSET]
        trips = _round_trips(t)
        stop = FifoReg.STOP * 4
        assert t.fifo.read32(stop) == fifo.min
        n = trips[0]
        assert t.fifo.read32(stop) == fifo.min and trips[0] == n  # nothing can have moved it
        t.fifo.write32(stop, fifo.min)                             # our own write: asked again
        assert t.fifo.read32(stop) == fifo.min and trips[0] == n + 1
        # Commands committed but no SYNC: STOP stays; a screendump is a refresh that runs them
        # (docs/qemu-7.2.md 'What triggers a run'), so STOP is asked again after it.
        fifo._put(encode("RECT_FILL", color=0x00FF00, x=0, y=0, width=8, height=8))
        t.fifo.write32(FifoReg.NEXT_CMD * 4, fifo.next)
        assert t.fifo.read32(stop) == fifo.min
        t.display_image()
        assert t.fifo.read32(stop) == fifo.next
        assert t.vram.read32(fb) == 0x00FF00
        # A SYNC write makes QEMU run the FIFO too.
        fifo._put(encode("RECT_FILL", color=0x0000FF, x=0, y=0, width=8, height=8))
        t.fifo.write32(FifoReg.NEXT_CMD * 4, fifo.next)
        assert t.fifo.read32(stop) != fifo.next
        r[Reg.SYNC] = 1
        assert t.fifo.read32(stop) == fifo.next
        assert t.vram.read32(fb) == 0x0000FF
    finally:
        t.close()


def test_a_word_at_a_time_commit_goes_out_as_two_runs_next_cmd_last():
    # The kit without FIFO_CAP_RESERVE: each command word, then NEXT_CMD, again and again.
    rec = _Recorder(65536)
    mem = QtestMemory(rec, 0, 65536, "fifo")  # type: ignore[arg-type]
    want = np.zeros(65536, np.uint8)
    nxt = 16
    for i in range(600):
        mem.write32(nxt, 0x01000000 + i)
        want[nxt: nxt + 4] = np.frombuffer((0x01000000 + i).to_bytes(4, "little"), np.uint8)
        nxt += 4
        mem.write32(FifoReg.NEXT_CMD * 4, nxt)
    want[8:12] = np.frombuffer(nxt.to_bytes(4, "little"), np.uint8)
    mem.send_pending()
    assert rec.order == [(16, 2400), (8, 4)]
    assert np.array_equal(rec.mem, want)
