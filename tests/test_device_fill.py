"""Device.fill's CPU path (the vmware profile: no RECT_FILL, so a numpy fill and an UPDATE) and
Fifo.send_update, which writes that UPDATE in place under FIFO_CAP_RESERVE.

Oracles written here: struct.pack of the UPDATE words (the command table's layout: id 1, x, y,
width, height, docs/svga-kit.md), a numpy reading of the fills, the rectangle rule and the error
messages as the driver documents them, and a twin device driven through the general paths
(Fifo.send_values, and a FIFO reached only through memory calls) that must leave the same FIFO
memory and pointers. The compiled core of the fill (svga/device.c) is held to a twin bound to
no core (the Python code, as with SVGA_NATIVE=0), and the comparison to bugs planted in a copy
of its source (docs/native.md 'Same results')."""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from planted import build_with_bug

from svga import device as device_mod
from svga.device import Device
from svga.errors import ProtocolError, SVGAError
from svga.model import ModelTransport
from svga.registers import FifoReg, Reg, RegisterFile
from svga.transport.base import Memory

W, H = 96, 64
UPDATE = struct.Struct("<5I")


class Unmapped(Memory):
    """FIFO memory reached only through calls (as qtest's is): the driver's general path."""

    def __init__(self, inner: Memory) -> None:
        self.inner, self.size = inner, inner.size

    def read(self, offset: int, length: int) -> bytes:
        return self.inner.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.inner.write(offset, data)

    def read32(self, offset: int) -> int:
        return self.inner.read32(offset)

    def write32(self, offset: int, value: int) -> None:
        self.inner.write32(offset, value)


def make(profile: str = "vmware", mapped: bool = True, listener=None) -> Device:  # noqa: ANN001
    t = ModelTransport(profile=profile)
    if not mapped:
        t.fifo = Unmapped(t.fifo)
    if listener is not None:
        t.fifo_commit_listener = listener
    dev = Device(t)
    dev.set_mode(W, H)
    dev.transport.display_image()  # qemu: the surface takes the mode
    return dev


def ring_words(dev: Device, offset: int, nbytes: int) -> bytes:
    """``nbytes`` of the ring from ``offset``, wrapping at MAX to MIN."""
    f, mem = dev.fifo, dev.transport.fifo
    first = min(nbytes, f.max - offset)
    return mem.read(offset, first) + mem.read(f.min, nbytes - first)


def random_fills(n: int, seed: int) -> list[tuple[int, int, int, int, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        out.append((int(rng.integers(0, 1 << 32)), int(rng.integers(0, W - w + 1)),
                    int(rng.integers(0, H - h + 1)), w, h))
    return out


def numpy_fills(fills: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    want = np.zeros((H, W), np.uint32)
    for c, x, y, w, h in fills:
        want[y: y + h, x: x + w] = c
    return want


@pytest.mark.parametrize("start_back", [0, 4, 8, 12, 16, 20, 24, 40])
def test_each_fill_commits_its_update_in_place_across_the_wrap(start_back: int) -> None:
    dev = make()
    fifo, mem = dev.fifo, dev.transport.fifo
    assert fifo._quick and not fifo.offers("RECT_FILL")  # the path under test
    if start_back:
        fifo.restart_at(fifo.max - start_back)
    fills = random_fills(40, seed=start_back)
    for c, x, y, w, h in fills:
        before = fifo.next_offset
        dev.fill(c, x, y, w, h)
        assert ring_words(dev, before, 20) == UPDATE.pack(1, x, y, w, h)
        after = mem.read32(FifoReg.NEXT_CMD * 4)
        assert after == fifo.next_offset == fifo.min + (before - fifo.min + 20) % fifo.ring_bytes
        assert mem.read32(FifoReg.RESERVED * 4) == 0
    dev.sync()
    assert np.array_equal(dev.read_vram(), numpy_fills(fills))


def test_many_more_fills_than_the_ring_holds_draw_what_numpy_draws() -> None:
    dev = make()
    fills = random_fills(30_000, seed=3)  # 600,000 bytes of UPDATEs through a 256 KiB ring
    for f in fills:
        dev.fill(*f)
    dev.sync()
    assert np.array_equal(dev.read_vram(), numpy_fills(fills))
    assert np.array_equal(dev.screenshot_array(cursor=False)[..., 0], (numpy_fills(fills) >> 16) & 0xFF)


@pytest.mark.parametrize("profile", ["vmware", "qemu"])
@pytest.mark.parametrize("mapped", [True, False])
def test_fill_leaves_the_ring_the_general_path_leaves(profile: str, mapped: bool) -> None:
    """dev.fill against a twin that draws with numpy and sends the UPDATE by send_values on a
    FIFO reached through memory calls only (qemu: no FIFO_CAP_RESERVE, a word at a time)."""
    dev, twin = make(profile, mapped), make(profile, mapped=False)
    for i, (c, x, y, w, h) in enumerate(random_fills(4000, seed=7)):
        dev.fill(c, x, y, w, h)
        twin.framebuffer[y: y + h, x: x + w] = c
        twin.fifo.send_values("UPDATE", x, y, w, h)
        if i % 500 == 0:
            assert dev.fifo.pointers() == twin.fifo.pointers()
    a, b = dev.transport.fifo, twin.transport.fifo
    assert dev.fifo.next_offset == twin.fifo.next_offset
    assert a.read(0, a.size) == b.read(0, b.size)
    dev.sync()
    twin.sync()
    assert np.array_equal(dev.read_vram(), twin.read_vram())


def test_the_listener_hears_each_update_once() -> None:
    heard: list[bytes] = []
    dev = make(listener=lambda data: heard.append(bytes(data)))
    fills = random_fills(50, seed=11)
    for f in fills:
        dev.fill(*f)
    assert heard == [UPDATE.pack(1, x, y, w, h) for _, x, y, w, h in fills]


def test_rectangles_outside_the_mode_are_errors_and_commit_nothing() -> None:
    dev = make()
    fifo = dev.fifo
    dev.fill(0x123456, 0, 0, W, H)
    dev.sync()
    before = fifo.next_offset
    for x, y, w, h in [(W - 3, 0, 4, 1), (0, H - 1, 1, 2), (-1, 0, 1, 1), (0, -1, 1, 1),
                       (0, 0, -1, 1), (0, 0, 1, -1), (W + 1, 0, 0, 0), (0, H, 1, 1)]:
        with pytest.raises(SVGAError, match=f"^fill rectangle {x},{y} {w}x{h} is outside the {W}x{H} mode$"):
            dev.fill(0, x, y, w, h)
    for x, y, w, h in [(0, 0, 0, 5), (3, 4, 5, 0), (W, H, 0, 0)]:  # empty: nothing to do
        dev.fill(0, x, y, w, h)
    with pytest.raises(TypeError):
        dev.fill(0, 1.5, 0, 2, 2)  # numpy refuses a float slice
    assert fifo.next_offset == before == dev.transport.fifo.read32(FifoReg.NEXT_CMD * 4)
    assert (dev.read_vram() == 0x123456).all()


def test_fill_without_a_mode_or_once_closed() -> None:
    with pytest.raises(SVGAError, match="no mode set: call set_mode"):
        Device(ModelTransport()).fill(0, 0, 0, 1, 1)
    dev = make()
    dev.close()
    with pytest.raises(SVGAError, match="the device is closed"):
        dev.fill(0, 0, 0, 1, 1)


def test_colours_are_taken_as_32_bit_words() -> None:
    dev = make()
    dev.fill(-1, 0, 0, 2, 2)
    dev.fill(0x1_00ABCDEF, 2, 0, 2, 2)
    dev.sync()
    assert (dev.read_vram()[0:2, 0:2] == 0xFFFFFFFF).all()
    assert (dev.read_vram()[0:2, 2:4] == 0x00ABCDEF).all()


@pytest.mark.parametrize("values", [(-1, 0, 1, 1), (0, 0, 1 << 32, 1), (0, 0, 1, "2")])
def test_send_update_errors_are_send_values_errors_and_commit_nothing(values) -> None:  # noqa: ANN001
    dev = make()
    fifo, mem = dev.fifo, dev.transport.fifo
    before = fifo.next_offset
    with pytest.raises(ProtocolError) as strict:
        fifo.send_values("UPDATE", *values)
    with pytest.raises(ProtocolError) as quick:
        fifo.send_update(*values)
    assert str(quick.value) == str(strict.value) and "UPDATE." in str(quick.value)
    assert fifo.next_offset == before == mem.read32(FifoReg.NEXT_CMD * 4)
    assert mem.read32(FifoReg.RESERVED * 4) == 0


# -- the compiled core (svga/device.c): the same results as the Python code -------------------
# A device whose fill runs the core and a twin bound to no core (the Python lines, as with
# SVGA_NATIVE=0) play the same random calls; the oracle is the twin: pixels, the whole FIFO
# memory, NEXT_CMD as the driver keeps it, every register, every error, and what the model ran
# (its command counts, its damage rectangles, the image it shows) must agree. A small
# FIFO (16 KiB) fills up within a few hundred calls, so that the runs go through wraps, the
# NEXT_CMD-behind-STOP case and "no room" (the Python path then waits for the device).

SMALL_FIFO = 16 << 10
REGS = [r for r in Reg if r not in (Reg.BUSY, Reg.SYNC)]  # a BUSY read runs the FIFO on vmware


def fill_maker():  # noqa: ANN201
    make = device_mod._fill_core_maker()
    if make is None:  # only without a C compiler (tests/conftest.py requires the cores otherwise)
        pytest.skip(f"no compiled core (SVGA_NATIVE={os.environ.get('SVGA_NATIVE', '')!r})")
    return make


def bound(make, fifo_size: int = SMALL_FIFO) -> Device:  # noqa: ANN001
    """A vmware model device whose fill is bound to ``make``'s core (None: the Python code)."""
    dev = Device(ModelTransport(profile="vmware", vram_size=2 << 20, fifo_size=fifo_size))
    dev.set_mode(W, H)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(device_mod, "_FILL_CORE", [make])
        core = dev._bind_fill_core()
    assert (core is None) == (make is None)
    return dev


def play(dev: Device, seed: int, n: int = 1500) -> list[object]:
    """Random fills (odd ones among them: colours out of 32 bits, rectangles outside the mode,
    numpy ints, floats, bools) from a random start near MAX, with a sync now and then."""
    rng = np.random.default_rng(seed)
    fifo = dev.fifo
    # Every third play starts at MIN with no sync for the first lap, so that an UPDATE ends at
    # MAX while STOP is still MIN (MAX - MIN is a multiple of 20 here): no room, not a wrap.
    from_min = seed % 3 == 0
    assert (fifo.max - fifo.min) % 20 == 0
    fifo.restart_at(fifo.min if from_min else fifo.max - 4 * int(rng.integers(1, 12)))
    lap = (fifo.max - fifo.min) // 20 + 50 if from_min else 0
    out: list[object] = []
    for i in range(n):
        w, h = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        args: list[object] = [int(rng.integers(0, 1 << 32)), int(rng.integers(0, W - w + 1)),
                              int(rng.integers(0, H - h + 1)), w, h]
        kind = rng.integers(0, 40)
        if kind == 0:
            args[0] = int(rng.choice([-1, -(1 << 40), (1 << 40) + 5, (1 << 70) + 3]))
        elif kind == 1:
            args[1 + int(rng.integers(0, 4))] = int(rng.choice([-1, W + 1, 1 << 33, -(1 << 65)]))
        elif kind == 2:
            args[1 + int(rng.integers(0, 4))] = np.int64(1)
        elif kind == 3:
            args[1 + int(rng.integers(0, 4))] = float(args[1])
        elif kind == 4:
            args[0] = np.uint32(args[0])
        elif kind == 5:
            args[3] = True
        elif kind == 6:
            args[3] = 0
        try:
            dev.fill(*args)  # type: ignore[arg-type]
            out.append(fifo.next_offset)
        except (SVGAError, TypeError) as e:
            out.append((type(e).__name__, str(e)))
        if rng.integers(0, 400) == 0 and i > lap:
            dev.sync()
    return out


def state(dev: Device) -> dict[str, object]:
    t = dev.transport
    regs = RegisterFile(t)
    return {"vram": t.vram.read(0, t.vram.size), "fifo": t.fifo.read(0, t.fifo.size),
            "next": dev.fifo.next_offset, "registers": {r.name: regs[r] for r in REGS},
            "commands run": dict(t.state.counts), "damage": list(t.state.damage),
            "shown": t.display_image().tobytes()}


def compare(make, seed: int) -> list[str]:  # noqa: ANN001
    """Where a device bound to ``make`` and the Python twin differ after the same play."""
    dev, twin = bound(make), bound(None)
    got, want = play(dev, seed), play(twin, seed)
    diffs = [] if got == want else ["outcomes"]
    a, b = state(dev), state(twin)
    diffs += [k for k in a if a[k] != b[k]]
    dev.sync()
    twin.sync()
    a, b = state(dev), state(twin)
    diffs += [f"synced {k}" for k in a if a[k] != b[k]]
    return diffs


def test_the_core_is_taken_on_the_model_and_draws_what_numpy_draws() -> None:
    dev = bound(fill_maker(), fifo_size=None)  # type: ignore[arg-type]
    core, calls = dev._fill_core, []

    def counted(*args: object) -> int:
        calls.append(end := core(*args))
        return end

    dev._fill_core = counted
    fills = random_fills(300, seed=21)
    for c, x, y, w, h in fills:
        before = dev.fifo.next_offset
        dev.fill(c, x, y, w, h)
        assert ring_words(dev, before, 20) == UPDATE.pack(1, x, y, w, h)
        assert dev.transport.fifo.read32(FifoReg.NEXT_CMD * 4) == dev.fifo.next_offset
        assert dev.transport.fifo.read32(FifoReg.RESERVED * 4) == 0
    assert len(calls) == len(fills) and min(calls) >= dev.fifo.min  # every call taken by the core
    dev.sync()
    assert np.array_equal(dev.read_vram(), numpy_fills(fills))


@pytest.mark.parametrize("seed", range(6))
def test_the_core_and_the_python_code_leave_the_same_device(seed: int) -> None:
    assert compare(fill_maker(), seed) == []


def test_the_core_is_not_bound_where_memory_is_not_plainly_mapped() -> None:
    fill_maker()
    t = ModelTransport(profile="vmware")
    t.vram = Unmapped(t.vram)  # a shadow framebuffer (as on qtest)
    dev = Device(t)
    dev.set_mode(W, H)
    assert dev._bind_fill_core() is None
    unmapped_fifo = make(mapped=False)  # FIFO memory reached through calls only (as on qtest)
    assert unmapped_fifo._bind_fill_core() is None
    heard = make(listener=lambda data: None)  # bound, but a listener must hear each commit
    core = heard._bind_fill_core()
    assert core is not None and not heard.fifo.fill_update(core, 1, 0, 0, 1, 1)
    assert heard.fifo.next_offset == heard.fifo.min and not heard.transport.vram.read(0, 4).strip(b"\0")
    fills = random_fills(200, seed=5)
    for f in fills:
        dev.fill(*f)
        unmapped_fifo.fill(*f)
    for d in (dev, unmapped_fifo):
        d.sync()
        assert np.array_equal(d.read_vram(), numpy_fills(fills))


PLANTED = {
    "none": None,
    "room up to STOP itself": ("int room = nxt < stop ? end < stop", "int room = nxt < stop ? end <= stop"),
    "MAX reached with STOP at MIN": ("(end == c.max && stop > c.min)", "(end == c.max)"),
    "no wrap to MIN": ("    if (end == c.max)\n        end = c.min;\n", ""),
    "RESERVED left set": ("regs[RESERVED] = 0;", "regs[RESERVED] = UPDATE_BYTES;"),
    "colour cut to 24 bits": ("row[i] = color;", "row[i] = color & 0xFFFFFF;"),
    "last row not filled": ("r < h; r++", "r < h - 1; r++"),
    "height for width": ("cmd[3] = (uint32_t)w;", "cmd[3] = (uint32_t)h;"),
    "a negative colour taken as 0": ("uint32_t color = (uint32_t)(uint64_t)v[2];",
                                     "uint32_t color = v[2] < 0 ? 0 : (uint32_t)(uint64_t)v[2];"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_comparison_catches_planted_bugs(bug: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fill_maker()  # the real core must be there (else this says nothing about it)
    change = PLANTED[bug]
    lib = build_with_bug(Path(device_mod.__file__).with_name("device.c"), change, tmp_path, monkeypatch)
    make = ctypes.PyDLL(str(lib)).svga_fill_core
    make.argtypes, make.restype = [ctypes.py_object] * 2, ctypes.py_object
    seen = {seed: compare(make, seed) for seed in range(3)}
    if change is None:
        assert all(d == [] for d in seen.values()), seen
    else:
        assert any(seen.values()), f"no play shows the planted bug ({bug})"
