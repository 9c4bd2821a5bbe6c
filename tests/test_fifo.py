"""svga/fifo.py: the command ring, driven against the software model in both profiles
(qemu: no extended FIFO, no RESERVE, no fences; vmware: extended FIFO, RESERVE, fences),
plus a small fake device for the overrun path the model refuses to imitate."""

import dataclasses

import numpy as np
import pytest

from svga import commands
from svga.device import Device
from svga.errors import FifoError, ProtocolError
from svga.facts.profiles import get_profile
from svga.fifo import Fifo
from svga.model import ModelTransport
from svga.registers import Cap, FifoCap, FifoReg, Reg, RegisterFile
from svga.transport.base import ArrayMemory, Memory, Transport

PROFILES = ["qemu", "vmware"]
W, H = 64, 48


class Unmapped(Memory):
    """The model's FIFO memory seen only through read/write calls (as qtest's is): the
    driver takes its general path, and every access can be watched."""

    def __init__(self, inner):
        self.inner = inner
        self.size = inner.size

    def read(self, offset, length):
        return self.inner.read(offset, length)

    def write(self, offset, data):
        self.inner.write(offset, data)

    def read32(self, offset):
        return self.inner.read32(offset)

    def write32(self, offset, value):
        self.inner.write32(offset, value)


def make(profile, mapped=True, listener=None):
    if profile == "vmware":
        # RECT_FILL is these tests' sample command; a current VMware host has no RECT_FILL
        # (docs/svga-kit.md 'Capability bits'), older hosts reported it.
        kit = get_profile("vmware")
        profile = dataclasses.replace(kit, capabilities=kit.capabilities | Cap.RECT_FILL)
    t = ModelTransport(profile=profile)
    if not mapped:
        t.fifo = Unmapped(t.fifo)
    if listener is not None:
        t.fifo_commit_listener = listener
    dev = Device(t)
    dev.set_mode(W, H)
    # QEMU fills and copies against the display surface of its last refresh (the
    # stale-stride quirk, which the qemu profile imitates); a screenshot is a refresh.
    dev.transport.display_image()
    return dev


def fill_cmd(color, x=0, y=0, w=1, h=1):
    return commands.encode("RECT_FILL", color=color, x=x, y=y, width=w, height=h)


def pixels(dev):
    return dev.read_vram().copy()


@pytest.mark.parametrize("profile,expected_min", [("qemu", 16), ("vmware", 1164)])
def test_init_lays_out_the_ring(profile, expected_min):
    dev = make(profile)
    mem = dev.transport.fifo
    assert mem.read32(0) == expected_min
    assert mem.read32(4) == dev.mem_size
    assert mem.read32(8) == mem.read32(12) == expected_min
    assert dev.regs.read(Reg.CONFIG_DONE) == 1
    assert dev.regs.read(Reg.ENABLE) == 1


def test_fifo_caps_only_with_extended_fifo():
    assert make("qemu").fifo_caps == 0
    caps = make("vmware").fifo_caps
    assert caps & FifoCap.FENCE and caps & FifoCap.RESERVE


WRAP_COMMANDS = {
    # (name, fields): 2, 5, 6 and 7 words; QEMU has no safe 2-word command (FENCE is not).
    "qemu": [("UPDATE", dict(x=0, y=0, width=1, height=1)),
             ("RECT_FILL", dict(x=1, y=1, width=2, height=2)),
             ("RECT_COPY", dict(src_x=1, src_y=1, dest_x=10, dest_y=10, width=2, height=2))],
    "vmware": [("FENCE", dict(fence=7)),
               ("UPDATE", dict(x=0, y=0, width=1, height=1)),
               ("RECT_FILL", dict(x=1, y=1, width=2, height=2)),
               ("RECT_COPY", dict(src_x=1, src_y=1, dest_x=10, dest_y=10, width=2, height=2))],
}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mapped", [True, False])
def test_wrap_around_at_every_offset_near_max(profile, mapped):
    """Start NEXT_CMD = STOP at each 4-byte offset in the last 40 bytes of the ring and send
    commands of 2 to 7 words: each must land split across MAX -> MIN exactly as encoded, be
    executed, and leave NEXT_CMD (and, after sync, STOP) at the wrapped position (on the
    mapped fast path and on the general path alike)."""
    dev = make(profile, mapped=mapped)
    fifo, mem = dev.fifo, dev.transport.fifo
    for name, fields in WRAP_COMMANDS[profile]:
        for start in range(fifo.max - 40, fifo.max, 4):
            fifo.restart_at(start)
            assert mem.read32(FifoReg.NEXT_CMD * 4) == mem.read32(FifoReg.STOP * 4) == start
            color = 0x010101 * ((start // 4) % 200 + 1)
            args = dict(fields, color=color) if name == "RECT_FILL" else fields
            if name == "FENCE":
                args = dict(fields, fence=start)  # a fence value new at each offset
            if name == "RECT_COPY":
                # A source new at each offset (four different pixels) and a destination that
                # holds none of them, so each copy must be carried out to pass.
                source = np.array([[1, 2], [3, 4]], dtype=np.uint32) * 0x000101 + color
                dev.framebuffer[1:3, 1:3] = source
                dev.framebuffer[10:12, 10:12] = 0x00FFFFFF - color
            blob = commands.encode(name, **args)
            n = len(blob)
            dev.fifo.write_command(blob)
            first = min(n, fifo.max - start)
            assert mem.read(start, first) + mem.read(fifo.min, n - first) == blob
            want = start + n if start + n < fifo.max else fifo.min + (start + n - fifo.max)
            assert mem.read32(FifoReg.NEXT_CMD * 4) == want
            dev.sync()
            assert mem.read32(FifoReg.STOP * 4) == want
            vram = dev.read_vram()
            if name == "RECT_FILL":
                assert (vram[1:3, 1:3] == color).all(), f"RECT_FILL at offset {start}"
            if name == "RECT_COPY":
                assert (vram[10:12, 10:12] == source).all(), f"RECT_COPY at offset {start}"
                assert (vram[1:3, 1:3] == source).all()
            if name == "FENCE":
                assert mem.read32(FifoReg.FENCE * 4) == start, f"FENCE at offset {start}"


@pytest.mark.parametrize("how", ["reserve", "write_command", "send"])
def test_bounce_buffer_without_reserve(how):
    """QEMU profile (no FIFO_CAP_RESERVE): a command of more than one dword goes through
    the bounce buffer and is committed a dword at a time, NEXT_CMD following each: seen
    call by call on unmapped memory (the general path), and on the mapped fast path through
    the commit listener (each call is one NEXT_CMD write, made once its word is in memory)."""
    blob = fill_cmd(0xABCDEF, 0, 0, 4, 4)
    data_words = [int(w) for w in np.frombuffer(blob, "<u4")]

    def write(dev):
        if how == "reserve":
            res = dev.fifo.reserve(24)
            assert not res.in_place
            res.buf[:] = blob
            dev.fifo.commit()
        elif how == "write_command":
            dev.fifo.write_command(blob)
        else:
            dev.fifo.send("RECT_FILL", color=0xABCDEF, x=0, y=0, width=4, height=4)

    dev = make("qemu", mapped=False)
    fifo, mem = dev.fifo, dev.transport.fifo
    seen = []
    orig = mem.write32

    def spy(offset, value):
        seen.append((offset, value))
        orig(offset, value)

    mem.write32 = spy
    write(dev)
    start = fifo.min
    # word, NEXT_CMD, word, NEXT_CMD, ...
    assert seen == [
        x for i, w in enumerate(data_words)
        for x in ((start + 4 * i, w), (FifoReg.NEXT_CMD * 4, start + 4 * (i + 1)))
    ]
    dev.sync()
    assert (dev.read_vram()[:4, :4] == 0xABCDEF).all()

    calls = []

    def listener(data):
        word = int(np.frombuffer(bytes(data), "<u4")[0])
        nxt = model.read32(FifoReg.NEXT_CMD * 4)
        calls.append((len(bytes(data)), word, nxt, model.read32(nxt)))

    dev = make("qemu", listener=listener)
    model = dev.transport.fifo
    write(dev)
    start = dev.fifo.min
    # One word per commit; NEXT_CMD still before it, the word already where it points.
    assert calls == [(4, w, start + 4 * i, w) for i, w in enumerate(data_words)]
    assert model.read32(FifoReg.NEXT_CMD * 4) == start + 24
    dev.sync()
    assert (dev.read_vram()[:4, :4] == 0xABCDEF).all()


def test_one_dword_reserves_in_place_without_reserve_cap():
    fifo = make("qemu").fifo
    res = fifo.reserve(4)
    assert res.in_place
    fifo.commit(0)


def test_in_place_with_reserve_and_bounce_across_wrap():
    dev = make("vmware")
    fifo, mem = dev.fifo, dev.transport.fifo
    res = fifo.reserve(24)
    assert res.in_place
    assert mem.read32(FifoReg.RESERVED * 4) == 24
    res.buf[:] = np.frombuffer(fill_cmd(0x123456), np.uint8)
    fifo.commit()
    assert mem.read32(FifoReg.RESERVED * 4) == 0
    dev.sync()
    # Across the wrap: only 8 bytes before MAX, so the bounce buffer is used and copied in
    # two chunks with one NEXT_CMD update.
    fifo.restart_at(fifo.max - 8)
    res = fifo.reserve(24)
    assert not res.in_place
    res.buf[:] = fill_cmd(0x654321, 3, 3)
    fifo.commit()
    assert mem.read32(FifoReg.NEXT_CMD * 4) == fifo.min + 16
    dev.sync()
    assert dev.read_vram()[3, 3] == 0x654321


def test_commit_less_than_reserved_and_misuse():
    dev = make("vmware")
    fifo = dev.fifo
    res = fifo.reserve(64)
    blob = fill_cmd(0x00FF00, 5, 5)
    res.buf[: len(blob)] = np.frombuffer(blob, np.uint8)
    fifo.commit(len(blob))
    dev.sync()
    assert dev.read_vram()[5, 5] == 0x00FF00
    with pytest.raises(ProtocolError, match="without a reservation"):
        fifo.commit()
    fifo.reserve(8)
    with pytest.raises(ProtocolError, match="before the previous commit"):
        fifo.reserve(8)
    fifo.commit(0)
    with pytest.raises(ProtocolError, match="multiple of 4"):
        fifo.reserve(6)
    with pytest.raises(ProtocolError, match="larger than the FIFO ring"):
        fifo.reserve(fifo.ring_bytes)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mapped", [True, False])
def test_full_ring_waits_and_everything_runs(profile, mapped):
    """Far more commands than the ring holds (and than QEMU runs per SYNC): the driver
    waits for room by SYNC; every fill lands (the last one per pixel wins)."""
    dev = make(profile, mapped=mapped)
    n = 6000  # 6000 * 24 bytes is over 2 rings of 64 KiB
    expected = np.zeros((H, W), dtype=np.uint32)
    for i in range(n):
        x, y = i % W, (i // W) % H
        color = (i * 2654435761) & 0xFFFFFF
        dev.fifo.write_command(fill_cmd(color, x, y))
        expected[y, x] = color
    dev.sync()
    got = dev.read_vram()
    mask = np.zeros((H, W), bool)
    for i in range(n):
        mask[(i // W) % H, i % W] = True
    assert (got[mask] == expected[mask]).all()


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mapped", [False, True])
def test_batch_writes_one_copy_per_contiguous_run(profile, mapped):
    commits = []
    dev = make(profile, mapped=mapped, listener=lambda data: commits.append(bytes(data)))
    mem = dev.transport.fifo
    writes = []
    orig = mem.write

    def spy(offset, data):
        writes.append((offset, len(data)))
        orig(offset, data)

    mem.write = spy
    cmds = [fill_cmd(i, i % W, 0) for i in range(300)]  # 7200 bytes: fits the empty ring at once
    total = dev.fifo.write_batch(cmds)
    assert total == 7200
    if not mapped:
        assert writes == [(dev.fifo.min, 7200)]
    assert commits == [b"".join(cmds)]  # one NEXT_CMD write for the whole run
    assert mem.read(dev.fifo.min, 7200) == b"".join(cmds)
    assert mem.read32(FifoReg.NEXT_CMD * 4) == dev.fifo.min + 7200
    dev.sync()
    row = dev.read_vram()[0]
    for x in range(W):
        assert row[x] == max(i for i in range(300) if i % W == x)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mapped", [True, False])
def test_batch_larger_than_the_ring(profile, mapped):
    dev = make(profile, mapped=mapped)
    cmds = [fill_cmd((i * 7919) & 0xFFFFFF, i % W, (i // W) % H) for i in range(20000)]
    dev.fifo.write_batch(cmds)
    dev.sync()
    got = dev.read_vram()
    last = {}
    for i in range(20000):
        last[((i // W) % H, i % W)] = (i * 7919) & 0xFFFFFF
    for (y, x), c in last.items():
        assert got[y, x] == c


def test_fences_on_vmware():
    dev = make("vmware")
    fifo, mem = dev.fifo, dev.transport.fifo
    f1 = dev.fence()
    f2 = dev.fence()
    assert (f1, f2) == (1, 2)
    # The FENCE commands are in the ring as the table encodes them.
    assert mem.read(fifo.min, 16) == commands.encode("FENCE", fence=1) + commands.encode("FENCE", fence=2)
    assert not fifo.fence_passed(2)
    dev.wait_fence(f2)
    assert mem.read32(FifoReg.FENCE * 4) == 2
    assert fifo.fence_passed(1) and fifo.fence_passed(2)
    # The counter skips 0 on wrap.
    fifo.next_fence = 0xFFFFFFFF
    assert dev.fence() == 1


def test_no_fences_on_qemu_means_sync():
    dev = make("qemu")
    fifo, mem = dev.fifo, dev.transport.fifo
    before = fifo.pointers()
    assert dev.fence() == 1
    assert fifo.pointers() == before  # nothing emitted
    dev.fifo.write_command(fill_cmd(0x777777))
    assert not fifo.fence_passed(1)
    dev.wait_fence(1)  # a full sync
    assert fifo.pending_bytes() == 0
    assert dev.read_vram()[0, 0] == 0x777777
    assert mem.read32(FifoReg.FENCE * 4) == 0  # word 6 is plain command memory here


class OverrunningFifoDevice(Transport):
    """A fake device whose parser, like QEMU's on a miscounted command, moves STOP
    4080 bytes past NEXT_CMD on SYNC."""

    kind = "fake"
    description = "overrunning fake"

    def __init__(self):
        self.fifo = ArrayMemory(np.zeros(65536, np.uint8))
        self.vram = ArrayMemory(np.zeros(1 << 20, np.uint8))
        self.index = 0
        self.regs = {Reg.CONFIG_DONE: 0}
        self.config_done_writes = []

    def port_read(self, offset):
        return self.regs.get(self.index, 0) if offset == 1 else 0xFFFFFFFF

    def port_write(self, offset, value):
        if offset == 0:
            self.index = value
            return
        self.regs[self.index] = value
        if self.index == Reg.CONFIG_DONE:
            self.config_done_writes.append(value)
        if self.index == Reg.SYNC:
            mn, mx = self.fifo.read32(0), self.fifo.read32(4)
            nxt = self.fifo.read32(8)
            self.fifo.write32(12, mn + (nxt - mn + 4080) % (mx - mn))


def test_overrun_is_reported_and_the_fifo_reinitialised():
    dev = OverrunningFifoDevice()
    fifo = Fifo(RegisterFile(dev), dev.fifo, Cap(0x3))
    fifo.init()
    fifo.write_command(commands.encode("UPDATE", x=0, y=0, width=1, height=1))
    with pytest.raises(FifoError, match="ran 4080 bytes past NEXT_CMD"):
        fifo.sync()
    assert fifo.overruns == 1
    assert dev.fifo.read32(8) == dev.fifo.read32(12) == 16  # NEXT_CMD = STOP = MIN again
    assert dev.config_done_writes[-2:] == [0, 1]


def test_stalled_device_is_an_error_not_a_hang():
    class Deaf(OverrunningFifoDevice):
        def port_write(self, offset, value):
            if offset == 0:
                self.index = value
            else:
                self.regs[self.index] = value  # SYNC does nothing

    dev = Deaf()
    fifo = Fifo(RegisterFile(dev), dev.fifo, Cap(0x3))
    fifo.init()
    fifo.write_command(commands.encode("UPDATE", x=0, y=0, width=1, height=1))
    with pytest.raises(FifoError, match="stalled .*UPDATE at FIFO offset 16"):
        fifo.sync()


def test_restart_at_checks_the_offset():
    fifo = make("qemu").fifo
    with pytest.raises(ProtocolError, match="not a dword inside"):
        fifo.restart_at(fifo.max)
    with pytest.raises(ProtocolError, match="not a dword inside"):
        fifo.restart_at(fifo.min + 2)


def test_stop_is_read_only_when_the_room_last_seen_is_short():
    """NEXT_CMD is the driver's own; STOP is re-read only when needed: a command that fits
    the room last seen costs no FIFO read (each is a round trip on qtest)."""
    dev = make("qemu")
    mem = dev.transport.fifo
    reads = []
    orig = mem.read32

    def spy(offset):
        reads.append(offset)
        return orig(offset)

    mem.read32 = spy
    for i in range(100):
        dev.fifo.write_command(fill_cmd(i))
    assert reads == []
    for i in range(5000):  # far more than the ring: STOP must be re-read, and SYNC used
        dev.fifo.write_command(fill_cmd(i))
    assert FifoReg.STOP * 4 in reads and FifoReg.NEXT_CMD * 4 not in reads
    dev.sync()
    assert dev.read_vram()[0, 0] == 4999


def test_small_fifo_is_refused():
    mem = ArrayMemory(np.zeros(8192, np.uint8))
    with pytest.raises(FifoError, match="too small"):
        Fifo(RegisterFile(OverrunningFifoDevice()), mem, Cap(0))


def test_device_update_in_place_matches_the_encoder_at_every_offset_near_max():
    """Device.update's in-place writer (qemu: mapped, no RESERVE, no listener) against the
    command table's encoder and the ring arithmetic written here: at each offset in the last
    40 bytes of the ring the UPDATE's 20 bytes land at NEXT_CMD (split across MAX -> MIN where
    they do not fit, which the general path does), NEXT_CMD moves past them, sync drains."""
    dev = make("qemu")
    fifo, mem = dev.fifo, dev.transport.fifo
    general = []
    write_words = fifo.write_words
    fifo.write_words = lambda data: general.append(fifo.next_offset) or write_words(data)
    for start in range(fifo.max - 40, fifo.max, 4):
        fifo.restart_at(start)
        x, y, w, h = 1, 2, 3 + start % 7, 4
        blob = commands.encode("UPDATE", x=x, y=y, width=w, height=h)
        dev.update(x, y, w, h)
        first = min(20, fifo.max - start)
        assert mem.read(start, first) + mem.read(fifo.min, 20 - first) == blob
        want = start + 20 if start + 20 < fifo.max else fifo.min + (start + 20 - fifo.max)
        assert mem.read32(FifoReg.NEXT_CMD * 4) == want == fifo.next_offset
        dev.sync()
        assert mem.read32(FifoReg.STOP * 4) == want
    # In place wherever the 20 bytes fit before MAX; the general path only across the wrap.
    assert general == [s for s in range(fifo.max - 40, fifo.max, 4) if s + 20 > fifo.max]


def test_device_update_fills_past_the_room_last_seen_and_keeps_its_checks():
    """Many UPDATEs without a sync (the room last seen runs out, STOP is re-read, SYNC used):
    every one reaches the ring; a listener sees each as encoded; an open reservation and a
    value the layout cannot hold are refused with nothing committed."""
    dev = make("qemu")
    mem = dev.transport.fifo
    ring_updates = dev.fifo.ring_bytes // 20
    for i in range(3 * ring_updates):
        dev.update(0, 0, 1 + i % W, 1)
    dev.sync()
    nxt = mem.read32(FifoReg.NEXT_CMD * 4)
    assert mem.read32(FifoReg.STOP * 4) == nxt
    seen = []
    dev = make("qemu", listener=lambda data: seen.append(bytes(data)))
    dev.update(1, 1, 2, 2)
    assert b"".join(seen) == commands.encode("UPDATE", x=1, y=1, width=2, height=2)
    dev = make("qemu")
    before = dev.fifo.next_offset
    with pytest.raises(ProtocolError, match="UPDATE.width must be an integer"):
        dev.update(0, 0, 1.5, 1)  # type: ignore[arg-type]
    assert dev.fifo.next_offset == mem_next(dev) == before
    dev.fifo.reserve(8)
    with pytest.raises(ProtocolError, match="before the previous commit"):
        dev.update(0, 0, 1, 1)
    assert mem_next(dev) == before


def mem_next(dev):
    return dev.transport.fifo.read32(FifoReg.NEXT_CMD * 4)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("copier", ["core", "none"])
@pytest.mark.parametrize("kind", ["array", "flat", "bytes", "strided"])
def test_write_words_short_path_at_every_offset_near_max(profile, copier, kind, monkeypatch):
    """write_words's short path (mapped FIFO, no listener), with the compiled word copy and
    without it, for an encode_many array, its 1-D words, its bytes and a non-contiguous view
    (the general path): at each offset near MAX the words land at NEXT_CMD, split MAX -> MIN
    where they do not fit (ring arithmetic written here, bytes from numpy's tobytes), NEXT_CMD
    moves past them, RESERVED is 0 again, and the drained fills draw what numpy draws."""
    if copier == "none":
        monkeypatch.setattr(commands, "_MANY_COPY", [None])
    elif commands._many_copier() is None:
        pytest.skip("no compiled core (SVGA_NATIVE=0 or no C compiler)")
    dev = make(profile)
    fifo, mem = dev.fifo, dev.transport.fifo
    n = 5
    xs = np.arange(n, dtype=np.int64) * 3
    for start in range(fifo.max - 4 * 6 * (n + 1), fifo.max, 4):
        fifo.restart_at(start)
        colors = (np.arange(n, dtype=np.int64) * 0x010203 + start) & 0xFFFFFF
        arr = commands.encode_many("RECT_FILL", color=colors, x=xs, y=start % 7, width=2, height=3)
        blob = arr.tobytes()
        data = {"array": arr, "flat": arr.reshape(-1), "bytes": blob,
                "strided": np.repeat(arr, 2, axis=0)[::2]}[kind]
        assert fifo.write_words(data) == len(blob)
        first = min(len(blob), fifo.max - start)
        assert mem.read(start, first) + mem.read(fifo.min, len(blob) - first) == blob
        want = start + len(blob)
        want = want if want < fifo.max else fifo.min + want - fifo.max
        assert mem.read32(FifoReg.NEXT_CMD * 4) == want == fifo.next_offset
        if profile == "vmware":
            assert mem.read32(FifoReg.RESERVED * 4) == 0
        before = pixels(dev)
        dev.sync()
        assert mem.read32(FifoReg.STOP * 4) == want
        expect = before
        for c, x in zip(colors, xs, strict=True):
            expect[start % 7: start % 7 + 3, x: x + 2] = c
        assert (pixels(dev) == expect).all()


def test_write_words_short_path_keeps_its_checks():
    """The short path leaves every other case to the general code: a reservation open, a
    ring without the room (STOP re-read, waits), words that are not uint32."""
    dev = make("qemu")
    fifo = dev.fifo
    arr = commands.encode_many("RECT_FILL", color=np.arange(4), x=0, y=0, width=1, height=1)
    before = fifo.next_offset
    fifo.reserve(8)
    with pytest.raises(ProtocolError, match="before the previous commit"):
        fifo.write_words(arr)
    fifo.commit(0)
    assert mem_next(dev) == fifo.next_offset == before
    with pytest.raises(ProtocolError, match="uint32 words"):
        fifo.write_words(arr.astype(np.int64))
    big = np.concatenate([arr] * (fifo.ring_bytes // arr.nbytes * 3))
    assert fifo.write_words(big) == big.nbytes
    dev.sync()
    assert mem_next(dev) == dev.transport.fifo.read32(FifoReg.STOP * 4) == fifo.next_offset
