"""The driver's fast send path (issue 15 item 2, issue 19): commands.encode_many, Fifo.write_words,
Fifo.send_values, the commit listener, and every check of the general path still made on the
fast one (pointer bounds, overrun detection and healing, stall limits).

Oracles: struct.pack calls written here, the strict software model's pixels against a numpy
reading of the same fills, the FIFO memory itself, and small fake devices for the failures the
model refuses to imitate."""

import dataclasses
import struct

import numpy as np
import pytest

from svga import commands
from svga import fifo as fifo_module
from svga.commands import encode, encode_many
from svga.device import Device
from svga.errors import DeviceError, FifoError, ProtocolError
from svga.facts.profiles import get_profile
from svga.fifo import Fifo
from svga.model import ModelTransport
from svga.registers import Cap, FifoReg, Reg, RegisterFile
from svga.transport.base import ArrayMemory, Memory, Transport

W, H = 64, 48
PROFILES = ["qemu", "vmware"]


class Unmapped(Memory):
    """FIFO memory reached only through calls (as qtest's is): the general path."""

    def __init__(self, inner):
        self.inner, self.size = inner, inner.size
        self.writes = []

    def read(self, offset, length):
        return self.inner.read(offset, length)

    def write(self, offset, data):
        self.writes.append((offset, len(bytes(data))))
        self.inner.write(offset, data)

    def read32(self, offset):
        return self.inner.read32(offset)

    def write32(self, offset, value):
        self.inner.write32(offset, value)


def make(profile, mapped=True, listener=None):
    if profile == "vmware":
        kit = get_profile("vmware")  # RECT_FILL as older VMware hosts offered it
        profile = dataclasses.replace(kit, capabilities=kit.capabilities | Cap.RECT_FILL)
    t = ModelTransport(profile=profile)
    if not mapped:
        t.fifo = Unmapped(t.fifo)
    if listener is not None:
        t.fifo_commit_listener = listener
    dev = Device(t)
    dev.set_mode(W, H)
    dev.transport.display_image()  # QEMU's surface takes the mode (stale-stride quirk)
    assert dev.fifo._fast is mapped  # the path under test is the one taken
    return dev


def fills(n, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, W - 4, n)
    y = rng.integers(0, H - 4, n)
    w = rng.integers(1, 5, n)
    h = rng.integers(1, 5, n)
    color = rng.integers(0, 1 << 24, n)
    return color, x, y, w, h


def numpy_fills(color, x, y, w, h):
    out = np.zeros((H, W), np.uint32)
    for c, xx, yy, ww, hh in zip(color, x, y, w, h, strict=True):
        out[yy: yy + hh, xx: xx + ww] = c
    return out


# -- encode_many ------------------------------------------------------------------------------

def test_encode_many_is_the_struct_layout():
    color, x, y, w, h = fills(50)
    arr = encode_many("RECT_FILL", color=color, x=x, y=y, width=w, height=h)
    assert arr.shape == (50, 6) and arr.dtype == np.dtype("<u4") and arr.flags.c_contiguous
    want = b"".join(struct.pack("<6I", 2, *(int(v) for v in row))
                    for row in zip(color, x, y, w, h, strict=True))
    assert arr.tobytes() == want


def test_encode_many_broadcasts_scalars_and_wraps_signed_fields():
    xs = np.array([-5, 0, 7, -(1 << 31)])
    arr = encode_many("BLIT_GMRFB_TO_SCREEN", src_x=xs, src_y=-1, left=0, top=2, right=3, bottom=4,
                      dest_screen_id=9)
    want = b"".join(struct.pack("<Iiiiiii I", 37, int(v), -1, 0, 2, 3, 4, 9) for v in xs)
    assert arr.tobytes() == want
    one = encode_many("UPDATE", count=3, x=1, y=2, width=3, height=4)
    assert one.tobytes() == struct.pack("<5I", 1, 1, 2, 3, 4) * 3
    assert encode_many("FENCE", fence=[1, 2]).tobytes() == struct.pack("<4I", 30, 1, 30, 2)


def test_encode_many_errors_name_the_field():
    with pytest.raises(ProtocolError, match="needs field 'height'"):
        encode_many("UPDATE", x=[0], y=[0], width=[1])
    with pytest.raises(ProtocolError, match="no field 'z'"):
        encode_many("UPDATE", x=[0], y=[0], width=[1], height=[1], z=[3])
    with pytest.raises(ProtocolError, match=r"UPDATE.x=-1 \(row 1\) does not fit"):
        encode_many("UPDATE", x=np.array([0, -1]), y=0, width=1, height=1)
    with pytest.raises(ProtocolError, match="does not fit"):
        encode_many("UPDATE", x=np.array([1 << 32], dtype=np.uint64), y=0, width=1, height=1)
    with pytest.raises(ProtocolError, match="width has 3 values"):
        encode_many("UPDATE", x=[0, 1], y=0, width=[1, 1, 1], height=1)
    with pytest.raises(ProtocolError, match="must hold integers"):
        encode_many("UPDATE", x=[0.5], y=0, width=1, height=1)
    with pytest.raises(ProtocolError, match="1-D array"):
        encode_many("UPDATE", x=[[0]], y=0, width=1, height=1)
    with pytest.raises(ProtocolError, match="variable-length tails"):
        encode_many("ESCAPE", nsid=0, size=0)
    with pytest.raises(ProtocolError, match="unknown command name"):
        encode_many("NOPE", x=1)


# -- the fast encoders give the checked encoder's bytes and errors ------------------------------

def test_codec_functions_agree_with_struct():
    c = commands.codec("RECT_FILL")
    want = struct.pack("<6I", 2, 5, 1, 2, 3, 4)
    assert c.pack(color=5, x=1, y=2, width=3, height=4) == want
    assert c.pack_values(5, 1, 2, 3, 4) == want
    assert c.pack_dict({"color": 5, "x": 1, "y": 2, "width": 3, "height": 4}) == want
    buf = bytearray(30)
    c.pack_values_into(buf, 2, 5, 1, 2, 3, 4)
    assert bytes(buf[2:26]) == want
    assert encode("RECT_FILL", color=5, x=1, y=2, width=3, height=4) == want
    assert encode(2, color=5, x=1, y=2, width=3, height=4) == want
    assert encode(commands.Cmd.RECT_FILL, color=5, x=1, y=2, width=3, height=4) == want
    assert encode("rect_fill", color=5, x=1, y=2, width=3, height=4) == want
    assert commands.codec("ESCAPE").pack is None


@pytest.mark.parametrize("call, message", [
    (lambda: encode("RECT_FILL", x=1, y=2, width=3, height=4), "needs field 'color'"),
    (lambda: encode("UPDATE", x=1, y=2, width=3, height=4, color=5), "no field 'color'"),
    (lambda: encode("RECT_FILL", color=1.5, x=1, y=2, width=3, height=4), "must be an integer, not float"),
    (lambda: encode("RECT_FILL", color=1 << 32, x=1, y=2, width=3, height=4), "does not fit"),
    (lambda: encode("RECT_COPY", src_x=1, src_y=2, dest_x=3, dest_y=4, width=5), "needs field 'height'"),
    (lambda: encode("DEFINE_GMR2", gmr_id=-1, num_pages=1), "does not fit"),
])
def test_fast_encoder_errors_are_the_checked_ones(call, message):
    with pytest.raises(ProtocolError, match=message):
        call()


# -- write_words ----------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mapped", [True, False])
def test_write_words_of_encode_many_draws_what_numpy_draws(profile, mapped):
    dev = make(profile, mapped)
    color, x, y, w, h = fills(400)
    arr = encode_many("RECT_FILL", color=color, x=x, y=y, width=w, height=h)
    assert dev.fifo.write_words(arr) == arr.nbytes
    mem = dev.transport.fifo
    assert mem.read(dev.fifo.min, arr.nbytes) == arr.tobytes()
    assert mem.read32(FifoReg.NEXT_CMD * 4) == dev.fifo.min + arr.nbytes
    if not mapped:
        assert mem.writes[-1] == (dev.fifo.min, arr.nbytes)  # one copy
    dev.sync()
    assert np.array_equal(dev.read_vram(), numpy_fills(color, x, y, w, h))


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "1-D"])
def test_write_words_takes_any_buffer(kind):
    dev = make("qemu")
    color, x, y, w, h = fills(30, seed=2)
    blob = b"".join(struct.pack("<6I", 2, *(int(v) for v in r)) for r in zip(color, x, y, w, h, strict=True))
    data = {"bytes": blob, "bytearray": bytearray(blob), "memoryview": memoryview(blob),
            "1-D": np.frombuffer(blob, "<u4")}[kind]
    assert dev.fifo.write_words(data) == len(blob)
    dev.sync()
    assert np.array_equal(dev.read_vram(), numpy_fills(color, x, y, w, h))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("shape", ["rows", "flat-uniform", "flat-mixed"])
def test_write_words_larger_than_the_ring_commits_whole_commands(profile, shape):
    commits = []
    dev = make(profile, listener=lambda d: commits.append(bytes(d)))
    n = 12000  # 288 KB of RECT_FILLs: more than either ring
    color, x, y, w, h = fills(n, seed=3)
    if shape == "flat-mixed":
        rows = []
        for i in range(n):
            rows.append(struct.pack("<6I", 2, int(color[i]), int(x[i]), int(y[i]), int(w[i]), int(h[i])))
            if i % 3 == 0:
                rows.append(struct.pack("<5I", 1, 0, 0, 1, 1))
        data = np.frombuffer(b"".join(rows), "<u4")
    else:
        data = encode_many("RECT_FILL", color=color, x=x, y=y, width=w, height=h)
        if shape == "flat-uniform":
            data = data.reshape(-1)
    assert data.nbytes > dev.fifo.ring_bytes
    dev.fifo.write_words(data)
    dev.sync()
    assert b"".join(commits) == data.tobytes()
    assert len(commits) > 1
    for c in commits:  # each commit decodes as whole commands
        commands.decode_all(c)
    assert np.array_equal(dev.read_vram(), numpy_fills(color, x, y, w, h))


def test_write_words_errors():
    dev = make("qemu")
    with pytest.raises(ProtocolError, match="not a whole number of 32-bit words"):
        dev.fifo.write_words(b"\1\0\0")
    with pytest.raises(ProtocolError, match="uint32 words, not float64"):
        dev.fifo.write_words(np.zeros(6))
    with pytest.raises(ProtocolError, match="1-D or"):
        dev.fifo.write_words(np.zeros((2, 2, 2), np.uint32))
    big = np.zeros((2, dev.fifo.ring_bytes // 4), np.uint32)
    with pytest.raises(ProtocolError, match="larger than the FIFO ring"):
        dev.fifo.write_words(big)
    assert dev.fifo.write_words(b"") == 0
    assert dev.fifo.pending_bytes() == 0  # nothing was committed by the refusals


# -- the commit listener ----------------------------------------------------------------------

def _watch(dev):
    """A listener that checks the contract at each call: the words are in FIFO memory at
    NEXT_CMD, and NEXT_CMD has not moved yet."""
    calls = []

    def listener(data):
        raw = bytes(data)
        mem = dev.transport.fifo
        nxt = mem.read32(FifoReg.NEXT_CMD * 4)
        first = min(len(raw), dev.fifo.max - nxt)
        assert nxt == dev.fifo.next_offset
        assert mem.read(nxt, first) + mem.read(dev.fifo.min, len(raw) - first) == raw
        calls.append(raw)

    return calls, listener


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mapped", [True, False])
def test_listener_sees_exactly_the_committed_words_across_the_wrap(profile, mapped):
    hook = []
    dev = make(profile, mapped, listener=lambda data: hook[0](data))
    calls, listener = _watch(dev)
    hook.append(listener)
    fifo = dev.fifo
    fill = encode("RECT_FILL", color=0x123456, x=1, y=1, width=2, height=2)
    upd = encode("UPDATE", x=0, y=0, width=3, height=3)
    sent = fill + upd + fill + upd + fill + upd + fill + upd
    for start in range(fifo.max - 28, fifo.max, 4):  # every offset that makes a 24-byte command wrap
        fifo.restart_at(start)
        calls.clear()
        fifo.send("RECT_FILL", color=0x123456, x=1, y=1, width=2, height=2)
        fifo.write_command(upd)
        fifo.write_batch([fill, upd, fill])
        fifo.write_words(np.frombuffer(upd + fill, "<u4"))
        fifo.send_values("UPDATE", 0, 0, 3, 3)
        assert b"".join(calls) == sent, f"at offset {start}"
        if profile == "vmware":
            # FIFO_CAP_RESERVE: one call per command or run, in one piece, wrap or not.
            assert [len(c) for c in calls] == [24, 20, 68, 44, 20]
        else:
            # Without it a single command goes a word at a time (the kit), a run whole.
            assert [len(c) for c in calls] == [4] * 11 + [68, 44] + [4] * 5
        dev.sync()
    assert dev.read_vram()[1, 1] == 0x123456


@pytest.mark.parametrize("mapped", [True, False])
def test_a_whole_commits_listener_hears_a_word_at_a_time_commit_once(mapped):
    """qemu (no FIFO_CAP_RESERVE): the kit commits a bounced command a word at a time; a
    listener marked whole_commits hears it once, all its words, before the first NEXT_CMD
    write (NEXT_CMD still at the command's start); the device still gets every word."""
    calls = []

    def listener(data):
        calls.append((bytes(data), dev.transport.fifo.read32(FifoReg.NEXT_CMD * 4)))

    listener.whole_commits = True
    dev = make("qemu", mapped)
    dev.fifo.listener = listener
    fifo = dev.fifo
    fill = struct.pack("<6I", 2, 0x00FF00, 1, 2, 3, 4)
    copy = struct.pack("<7I", 3, 1, 2, 10, 10, 3, 4)
    upd = struct.pack("<5I", 1, 0, 0, W, H)
    for start in (fifo.min, fifo.max - 8):  # in one piece, and wrapping round MAX
        fifo.restart_at(start)
        calls.clear()
        fifo.write_command(fill)
        fifo.send("RECT_COPY", src_x=1, src_y=2, dest_x=10, dest_y=10, width=3, height=4)
        res = fifo.reserve(len(upd))
        assert not res.in_place
        res.buf[:] = upd
        fifo.commit()
        expect_next = [start]
        for blob in (fill, copy):
            nxt = expect_next[-1] + len(blob)
            expect_next.append(nxt if nxt < fifo.max else nxt - fifo.ring_bytes)
        assert calls == list(zip((fill, copy, upd), expect_next, strict=True))
        assert fifo.next_offset == (start + len(fill + copy + upd) - fifo.min) % fifo.ring_bytes + fifo.min
        dev.sync()
    want = np.zeros((H, W), np.uint32)
    want[2:6, 1:4] = 0x00FF00
    want[10:14, 10:13] = 0x00FF00
    assert np.array_equal(dev.read_vram(), want)


def test_a_whole_commits_method_is_marked_on_its_function():
    seen = []

    class Whole(ModelTransport):
        def fifo_commit_listener(self, data):
            seen.append(bytes(data))

        fifo_commit_listener.whole_commits = True

    dev = Device(Whole(profile="qemu"))
    dev.set_mode(W, H)
    seen.clear()
    dev.update(0, 0, 2, 2)
    dev.fifo.send("UPDATE", x=1, y=1, width=3, height=3)
    assert seen == [struct.pack("<5I", 1, 0, 0, 2, 2), struct.pack("<5I", 1, 1, 1, 3, 3)]


def test_listener_is_read_from_the_transport_and_optional():
    seen = []

    class WithListener(ModelTransport):
        def fifo_commit_listener(self, data):
            seen.append(bytes(data))

    dev = Device(WithListener(profile="qemu"))
    dev.set_mode(W, H)
    dev.update(0, 0, 2, 2)
    assert b"".join(seen) == struct.pack("<5I", 1, 0, 0, 2, 2)
    plain = make("qemu")
    assert plain.fifo.listener is None


def test_fence_and_reserve_commit_call_the_listener():
    calls = []
    dev = make("vmware", listener=lambda d: calls.append(bytes(d)))
    f = dev.fence()
    assert calls == [struct.pack("<2I", 30, f)]
    calls.clear()
    res = dev.fifo.reserve(24)
    res.buf[:] = np.frombuffer(encode("UPDATE", x=0, y=0, width=1, height=1) + bytes(4), np.uint8)
    dev.fifo.commit(20)
    assert calls == [struct.pack("<5I", 1, 0, 0, 1, 1)]


# -- send and send_values on the fast path ----------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_send_errors_commit_nothing(profile):
    dev = make(profile)
    fifo, mem = dev.fifo, dev.transport.fifo
    before = fifo.next_offset
    with pytest.raises(ProtocolError, match="UPDATE.x=-1 does not fit"):
        fifo.send("UPDATE", x=-1, y=0, width=1, height=1)
    with pytest.raises(ProtocolError, match="needs field 'height'"):
        fifo.send("RECT_FILL", color=1, x=0, y=0, width=1)
    with pytest.raises(ProtocolError, match="UPDATE has 4 fields"):
        fifo.send_values("UPDATE", 1, 2, 3)
    with pytest.raises(ProtocolError, match="RECT_FILL.color=-2 does not fit"):
        fifo.send_values("RECT_FILL", -2, 0, 0, 1, 1)
    with pytest.raises(ProtocolError, match="without tails"):
        fifo.send_values("ESCAPE", 0, 0)
    assert fifo.next_offset == before == mem.read32(FifoReg.NEXT_CMD * 4)
    if fifo._reserveable:
        assert mem.read32(FifoReg.RESERVED * 4) == 0
    fifo.send_values("RECT_FILL", 0xABCDEF, 2, 3, 4, 5)
    fifo.send("RECT_COPY", src_x=2, src_y=3, dest_x=20, dest_y=20, width=4, height=5)
    dev.sync()
    vram = dev.read_vram()
    assert (vram[3:8, 2:6] == 0xABCDEF).all() and (vram[20:25, 20:24] == 0xABCDEF).all()


@pytest.mark.parametrize("profile", PROFILES)
def test_fast_and_general_paths_leave_the_same_ring(profile):
    """The same random commands through the mapped fast path and the general path: the same
    FIFO words, the same NEXT_CMD, the same pixels."""
    rng = np.random.default_rng(9)
    devs = [make(profile, mapped=True), make(profile, mapped=False)]
    for i in range(3000):
        x, y = int(rng.integers(0, W - 2)), int(rng.integers(0, H - 2))
        kind = i % 4
        for dev in devs:
            if kind == 0:
                dev.fifo.send("RECT_FILL", color=i, x=x, y=y, width=2, height=2)
            elif kind == 1:
                dev.fifo.send_values("UPDATE", x, y, 1, 1)
            elif kind == 2:
                dev.fifo.write_command(encode("RECT_COPY", src_x=x, src_y=y, dest_x=y, dest_y=x % H,
                                              width=1, height=1))
            else:
                dev.fill(i * 7 & 0xFFFFFF, x, y, 2, 1)
    for dev in devs:
        dev.sync()
    a, b = (d.transport.fifo for d in devs)
    assert a.read(0, a.size) == b.read(0, b.size)
    assert np.array_equal(devs[0].read_vram(), devs[1].read_vram())


# -- every check still fires on the fast path -------------------------------------------------

class FakeDevice(Transport):
    """A FIFO device in a few lines: SYNC does what ``on_sync`` says; BUSY reads ``busy``."""

    kind = "fake"
    description = "fake"

    def __init__(self, on_sync, busy=0):
        self.fifo = ArrayMemory(np.zeros(65536, np.uint8))
        self.vram = ArrayMemory(np.zeros(1 << 20, np.uint8))
        self.index = 0
        self.regs = {}
        self.on_sync = on_sync
        self.busy = busy
        self.syncs = 0

    def port_read(self, offset):
        if offset != 1:
            return 0xFFFFFFFF
        return self.busy if self.index == Reg.BUSY else self.regs.get(self.index, 0)

    def port_write(self, offset, value):
        if offset == 0:
            self.index = value
            return
        self.regs[self.index] = value
        if self.index == Reg.SYNC:
            self.syncs += 1
            self.on_sync(self.fifo)


def fast_fifo(dev):
    f = Fifo(RegisterFile(dev), dev.fifo, Cap(0x3), transport=dev)
    assert f._fast
    f.init()
    return f


def drain(mem):
    mem.write32(12, mem.read32(8))


def test_fast_sync_detects_an_overrun_and_heals():
    dev = FakeDevice(lambda m: m.write32(12, 16 + (m.read32(8) - 16 + 4080) % (65536 - 16)))
    f = fast_fifo(dev)
    f.send("UPDATE", x=0, y=0, width=1, height=1)
    with pytest.raises(FifoError, match="ran 4080 bytes past NEXT_CMD"):
        f.sync()
    assert f.overruns == 1
    assert dev.fifo.read32(8) == dev.fifo.read32(12) == 16 == f.next_offset  # re-initialised


@pytest.mark.parametrize("bad", [70000, 8, 1001])
def test_fast_sync_refuses_stop_outside_the_ring(bad):
    dev = FakeDevice(lambda m: m.write32(12, bad))
    f = fast_fifo(dev)
    f.send("UPDATE", x=0, y=0, width=1, height=1)
    with pytest.raises(FifoError, match=f"FIFO STOP is {bad}, outside the ring"):
        f.sync()
    assert dev.fifo.read32(12) == 16 and f.next_offset == 16


def test_fast_sync_stall_is_an_error_not_a_hang():
    dev = FakeDevice(lambda m: None)
    f = fast_fifo(dev)
    f.send("UPDATE", x=0, y=0, width=1, height=1)
    with pytest.raises(FifoError, match="stalled \\(SYNC moves nothing\\).*UPDATE at FIFO offset 16"):
        f.sync()
    assert dev.syncs == fifo_module.SYNC_ROUNDS // 100 + 1


def test_fast_sync_busy_stuck_is_an_error(monkeypatch):
    monkeypatch.setattr(fifo_module, "BUSY_POLLS", 50)
    dev = FakeDevice(drain, busy=1)
    f = fast_fifo(dev)
    f.send("UPDATE", x=0, y=0, width=1, height=1)
    with pytest.raises(FifoError, match="BUSY never returns to 0"):
        f.sync()


def test_full_ring_that_never_drains_is_an_error(monkeypatch):
    monkeypatch.setattr(fifo_module, "SYNC_ROUNDS", 20)
    dev = FakeDevice(lambda m: None)
    f = fast_fifo(dev)
    blob = encode("UPDATE", x=0, y=0, width=1, height=1)
    with pytest.raises(FifoError, match="the FIFO stays full"):
        f.write_batch([blob] * 4000)
    with pytest.raises(FifoError, match="the FIFO stays full"):
        f.write_words(np.frombuffer(blob * 4000, "<u4"))
    with pytest.raises(FifoError, match="the FIFO stays full"):
        for _ in range(4000):
            f.send("UPDATE", x=0, y=0, width=1, height=1)


def test_fast_sync_drains_in_several_rounds():
    """A device that consumes one command per SYNC (as QEMU caps a run): sync repeats SYNC
    until STOP reaches NEXT_CMD, checking each step."""
    def one(m):
        stop, nxt = m.read32(12), m.read32(8)
        if stop != nxt:
            m.write32(12, stop + 20)

    dev = FakeDevice(one)
    f = fast_fifo(dev)
    for _ in range(7):
        f.send("UPDATE", x=0, y=0, width=1, height=1)
    f.sync()
    assert dev.syncs == 7 and f.pending_bytes() == 0


# -- the PCI transport's one-call register protocol, over a fake sysfs (tests/test_pci.py) ----

@pytest.fixture
def pci(tmp_path):
    from test_pci import make_device

    from svga.transport.pci import PciTransport

    real = make_device(tmp_path)
    t = PciTransport(sysfs_root=str(tmp_path), require_root=False)
    yield t, real
    t.close()


def test_pci_register_ops_are_the_index_value_protocol(pci):
    t, real = pci
    write, read = t.register_ops()
    write(0x15, 0xAABBCCDD)  # index 0x15 at BAR0+0, then the value at BAR0+1 (overlapping)
    assert (real / "resource0").read_bytes()[:5] == bytes([0x15, 0xDD, 0xCC, 0xBB, 0xAA])
    (real / "resource0").write_bytes(bytes(range(16)))
    # The index (4 bytes) went to BAR0+0 first, then 4 bytes were read at BAR0+1: three of
    # them the index's upper bytes, then the file's byte 4.
    assert read(0x16) == 0x04000000
    assert (real / "resource0").read_bytes()[:4] == bytes([0x16, 0, 0, 0])
    t.close()
    with pytest.raises(DeviceError, match="the transport is closed"):
        write(1, 1)
    with pytest.raises(DeviceError, match="the transport is closed"):
        read(1)


def test_pci_register_ops_only_when_the_port_methods_are_the_transports(tmp_path):
    from test_pci import make_device

    from svga.transport.pci import PciTransport

    class Watched(PciTransport):
        def port_write(self, offset, value):
            super().port_write(offset, value)

    make_device(tmp_path)
    with Watched(sysfs_root=str(tmp_path), require_root=False) as t:
        assert t.register_ops() is None
        f = Fifo(RegisterFile(t), t.fifo, Cap(0x3), transport=t)
        assert f._rw is None and f._fast


def test_pci_fifo_fast_path_keeps_its_checks(pci):
    """The FIFO over the PCI transport (mapped BAR2, one-call registers): a command lands in
    the file behind BAR2; a device that never moves STOP (a regular file) is a stall error."""
    t, real = pci
    f = Fifo(RegisterFile(t), t.fifo, Cap(0x3), transport=t)
    assert f._fast and f._rw is not None
    f.init()
    f.send("UPDATE", x=1, y=2, width=3, height=4)
    data = (real / "resource2").read_bytes()
    assert data[16:36] == struct.pack("<5I", 1, 1, 2, 3, 4)
    assert struct.unpack_from("<I", data, 8)[0] == 36  # NEXT_CMD
    with pytest.raises(FifoError, match="stalled \\(SYNC moves nothing\\).*UPDATE at FIFO offset 16"):
        f.sync()
    assert (real / "resource0").read_bytes()[0] == Reg.BUSY  # the last register asked was BUSY


def test_length_at_follows_the_table():
    blob = (struct.pack("<3I", 33, 1, 5) + b"hello\0\0\0"  # ESCAPE: 3 words + 5 bytes padded to 2
            + struct.pack("<5I", 1, 0, 0, 1, 1) + struct.pack("<2I", 30, 7))
    words = np.frombuffer(blob, "<u4")
    assert [commands.length_at(words, p) for p in (0, 5, 10)] == [5, 5, 2]
    assert commands.length_at(memoryview(blob).cast("I"), 5) == 5
    with pytest.raises(ProtocolError, match="unknown command id|Unknown|unknown"):
        commands.length_at(np.array([99], np.uint32), 0)
