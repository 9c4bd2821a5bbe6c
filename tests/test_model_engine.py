"""Tests of svga.model.engine: FIFO pointer checks, wrap-around, the per-SYNC cap, fences,
BUSY, and how bad commands are reported (command name and FIFO offset) and skipped."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from model_helpers import Guest

from svga.commands import encode
from svga.errors import ModelError
from svga.facts.profiles import get_profile
from svga.model import ModelTransport
from svga.registers import Cap, FifoReg, Reg

VMWARE = get_profile("vmware")
VMWARE_RECT_FILL = dataclasses.replace(VMWARE, capabilities=VMWARE.capabilities | Cap.RECT_FILL)
"""A kit device that still reports the deprecated RECT_FILL bit (as older hosts did): RECT_FILL
is these tests' sample command; a current host's profile has no RECT_FILL."""


def guest(profile: str = "vmware", **kw: int) -> Guest:
    """A set-up device; on qemu also refreshed once, so that fills use the mode's stride
    (QEMU's stale-surface quirk is tested in test_model_executor.py). ``vmware``: with the
    RECT_FILL bit (see VMWARE_RECT_FILL)."""
    g = Guest(ModelTransport(VMWARE_RECT_FILL if profile == "vmware" else profile)).setup(**kw)
    if profile == "qemu":
        g.t.display_image()
    return g


def fill(x: int = 0, y: int = 0, w: int = 1, h: int = 1, color: int = 0xFF) -> bytes:
    return encode("RECT_FILL", color=color, x=x, y=y, width=w, height=h)


# -- pointer checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
@pytest.mark.parametrize(("word", "value", "message"), [
    (FifoReg.MIN, 12, "MIN=12 is below 16"),
    (FifoReg.MIN, 1166, "MIN=1166 is not 4-byte aligned"),
    (FifoReg.MAX, 0x10004 + (3 << 18), "is beyond the"),
    (FifoReg.MAX, 1164 + 10 * 1024 - 4, "below the 10 KiB minimum"),
    (FifoReg.NEXT_CMD, 1160, "NEXT_CMD=1160 is outside the ring"),
    (FifoReg.STOP, 8, "STOP=8 is outside the ring"),
    (FifoReg.STOP, 1170, "STOP=1170 is not 4-byte aligned"),
])
def test_bad_pointers_are_an_error_and_nothing_runs(profile: str, word: int, value: int,
                                                    message: str) -> None:
    g = guest(profile, fifo_min=1164)
    g.send("RECT_FILL", color=0xFF, x=0, y=0, width=4, height=4)
    before = g.t.fifo.read(0, 16)
    g.t.fifo.write32(word * 4, value)
    with pytest.raises(ModelError, match=f"FIFO pointer check failed.*{message}"):
        g.sync()
    assert not g.fb().any()
    expected = bytearray(before)
    expected[word * 4: word * 4 + 4] = struct.pack("<I", value)
    assert g.t.fifo.read(0, 16) == bytes(expected)  # STOP untouched


def test_minimal_legal_fifo_works() -> None:
    g = guest("qemu", fifo_min=16, fifo_max=16 + 10 * 1024)
    g.push(fill(color=0x42))
    g.sync()
    assert g.fb()[0, 0] == 0x42


# -- wrap-around ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
@pytest.mark.parametrize("words_before_max", [1, 2, 3, 5])
def test_command_wraps_across_max(profile: str, words_before_max: int) -> None:
    g = guest(profile)
    start = g.fifo_max - 4 * words_before_max
    g.set_pointers(start)
    g.push(fill(3, 4, 5, 6, color=0x00ABCDEF))
    assert g.next_cmd == g.fifo_min + (6 - words_before_max) * 4
    g.sync()
    assert g.stop == g.next_cmd
    expected = np.zeros((600, 800), np.uint32)
    expected[4:10, 3:8] = 0x00ABCDEF
    assert np.array_equal(g.fb(), expected)


def test_cursor_data_wrapping_across_max() -> None:
    g = guest("vmware")
    g.set_pointers(g.fifo_max - 40)
    xor = bytes(range(256)) * 4  # 32x8 at 32 bpp: 1024 bytes
    g.push(encode("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=32, height=8,
                  and_mask_depth=1, xor_mask_depth=32, and_mask=bytes(32), xor_mask=xor))
    g.sync()
    cur = g.t.state.cursor
    assert cur is not None
    expected = np.frombuffer(xor, "<u4").reshape(8, 32) & 0xFFFFFF
    assert np.array_equal(cur.xor_mask, expected)


# -- the per-SYNC cap ---------------------------------------------------------------------------------

def test_qemu_handles_at_most_1023_commands_per_sync() -> None:
    g = guest("qemu")
    update = encode("UPDATE", x=0, y=0, width=1, height=1)
    g.push(update * 1100)
    g.sync()
    assert g.stop == g.fifo_min + 1023 * len(update)
    assert g.t.state.counts["UPDATE"] == 1023
    g.sync()
    assert g.stop == g.next_cmd and g.t.state.counts["UPDATE"] == 1100


def test_vmware_drains_everything_in_one_sync() -> None:
    g = guest("vmware")
    update = encode("UPDATE", x=0, y=0, width=1, height=1)
    g.push(update * 1100)
    g.sync()
    assert g.stop == g.next_cmd and g.t.state.counts["UPDATE"] == 1100


def test_qemu_refresh_runs_the_fifo() -> None:
    g = guest("qemu")
    g.t.display_image()  # adopt the 800x600 mode
    g.push(fill(700, 500, color=0x77))
    img = g.t.display_image()
    assert g.stop == g.next_cmd
    assert tuple(img[500, 700]) == (0, 0, 0x77)


def test_vmware_refresh_does_not_run_the_fifo() -> None:
    g = guest("vmware")
    g.push(fill(color=0x77))
    g.t.display_image()
    assert g.stop != g.next_cmd


# -- running conditions -------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_disabled_fifo_runs_later(profile: str) -> None:
    g = guest(profile)
    g.regs[Reg.ENABLE] = 0
    g.push(fill(color=0x33))
    g.sync()
    assert g.stop != g.next_cmd
    g.regs[Reg.ENABLE] = 1
    g.sync()
    assert g.stop == g.next_cmd and g.fb()[0, 0] == 0x33


# -- incomplete commands ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_incomplete_command_is_an_error_and_stays(profile: str) -> None:
    g = guest(profile)
    start = g.push(fill(color=0x99), commit=False)
    g.set_pointers(start + 12, start)  # only 3 of 6 words committed
    with pytest.raises(ModelError, match=f"RECT_FILL at FIFO offset {start} is incomplete: it needs 6 "
                                         "words but only 3"):
        g.sync()
    assert g.stop == start
    g.set_pointers(start + 24, start)
    g.sync()
    assert g.stop == start + 24 and g.fb()[0, 0] == 0x99


def test_command_larger_than_the_ring_is_reported_as_never_fitting() -> None:
    g = Guest(ModelTransport(VMWARE_RECT_FILL, fifo_size=64 * 1024)).setup()
    start = g.push(encode("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=4, height=4,
                          image=bytes(64)))
    # Rewrite the size words to 200x200 (160000 bytes of image: more than the ring holds).
    g.t.fifo.write32(start + 16, 200)
    g.t.fifo.write32(start + 20, 200)
    with pytest.raises(ModelError, match="can never fit"):
        g.sync()
    assert g.stop == start


# -- unknown ids, zero words, commands not offered --------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_unknown_id_drops_the_rest(profile: str) -> None:
    g = guest(profile)
    g.push(fill(color=0x11))
    bad = g.push(struct.pack("<3I", 7, 1, 2))
    g.push(fill(1, 0, color=0x22))
    with pytest.raises(ModelError, match=f"unknown command id 7 at FIFO offset {bad}: the 36 bytes up "
                                         "to NEXT_CMD were dropped") as info:
        g.sync()
    assert info.value.offset == bad
    assert g.stop == g.next_cmd
    assert g.fb()[0, 0] == 0x11 and g.fb()[0, 1] == 0  # the fill after it was dropped
    if profile == "qemu":
        assert "QEMU 7.2's FIFO parser would lose the command boundaries" in str(info.value)


def test_zero_word_is_named() -> None:
    g = guest("vmware")
    bad = g.push(struct.pack("<I", 0))
    with pytest.raises(ModelError, match=rf"INVALID_CMD \(a zero word\) at FIFO offset {bad}"):
        g.sync()
    assert g.stop == g.next_cmd


@pytest.mark.parametrize(("name", "fields"), [
    ("FENCE", {"fence": 1}),
    ("UPDATE_VERBOSE", {"x": 0, "y": 0, "width": 1, "height": 1, "reason": 0}),
    ("ESCAPE", {"nsid": 0, "size": 8, "data": bytes(8)}),
    ("DESTROY_SCREEN", {"screen_id": 0}),
    ("RECT_ROP_FILL", {"color": 0, "x": 0, "y": 0, "width": 1, "height": 1, "rop": 3}),
    ("DEFINE_ALPHA_CURSOR", {"id": 0, "hotspot_x": 0, "hotspot_y": 0, "width": 1, "height": 1,
                             "image": bytes(4)}),
    ("DEFINE_CURSOR", {"id": 0, "hotspot_x": 0, "hotspot_y": 0, "width": 1, "height": 1,
                       "and_mask_depth": 1, "xor_mask_depth": 1, "and_mask": bytes(4),
                       "xor_mask": bytes(4)}),
])
def test_qemu_refuses_what_it_does_not_offer_and_skips_it(name: str, fields: dict[str, int]) -> None:
    g = guest("qemu")
    g.t.display_image()
    bad = g.push(encode(name, **fields))
    g.push(fill(color=0x55))
    with pytest.raises(ModelError, match=f"{name} at FIFO offset {bad}: not offered by this device") as info:
        g.sync()
    assert info.value.command == name and info.value.offset == bad
    assert g.stop == g.next_cmd and g.fb()[0, 0] == 0x55  # skipped by its length; the next ran
    desync = name not in ("DEFINE_ALPHA_CURSOR", "DEFINE_CURSOR")
    assert ("would lose the command boundaries" in str(info.value)) is desync


def test_vmware_does_not_offer_rop() -> None:
    g = guest("vmware")
    bad = g.push(encode("RECT_ROP_FILL", color=0, x=0, y=0, width=1, height=1, rop=3))
    with pytest.raises(ModelError, match=f"RECT_ROP_FILL at FIFO offset {bad}: not offered.*RASTER_OP"):
        g.sync()


def test_errors_of_one_run_are_raised_together() -> None:
    g = guest("vmware")
    first = g.push(fill(799, 0, 2, 1))
    second = g.push(fill(0, 599, 1, 2))
    g.push(fill(5, 5, color=0x66))
    with pytest.raises(ModelError, match=r"\(and 1 more error in this FIFO run\)") as info:
        g.sync()
    err = info.value
    assert [e.offset for e in err.errors] == [first, second]
    assert err.offset == first and err.command == "RECT_FILL"
    assert g.fb()[5, 5] == 0x66


# -- fences, FIFO_BUSY, RESERVED --------------------------------------------------------------------------

def test_vmware_fence_is_written_to_fifo_fence() -> None:
    g = guest("vmware")
    g.send("FENCE", fence=5)
    g.send("RECT_FILL", color=1, x=0, y=0, width=1, height=1)
    g.send("FENCE", fence=6)
    g.sync()
    assert g.t.fifo.read32(FifoReg.FENCE * 4) == 6
    assert g.t.state.last_fence == 6


def test_vmware_fence_needs_the_extended_fifo() -> None:
    g = guest("vmware", fifo_min=16)
    bad = g.send("FENCE", fence=5)
    with pytest.raises(ModelError, match=f"FENCE at FIFO offset {bad}: not offered.*extended FIFO is off"):
        g.sync()


def test_fifo_busy_is_cleared_when_drained() -> None:
    g = guest("vmware")
    g.t.fifo.write32(FifoReg.BUSY * 4, 1)  # the doorbell: the driver sets it, then SYNC
    g.send("UPDATE", x=0, y=0, width=1, height=1)
    g.sync()
    assert g.t.fifo.read32(FifoReg.BUSY * 4) == 0


def test_busy_reads_one_while_an_incomplete_command_waits() -> None:
    g = guest("vmware")
    start = g.push(fill(), commit=False)
    g.set_pointers(start + 8, start)
    with pytest.raises(ModelError, match="incomplete"):
        g.regs[Reg.BUSY]  # noqa: B018 - a BUSY read processes the FIFO
    g.set_pointers(start + 24, start)
    assert g.regs[Reg.BUSY] == 0


def test_reserved_larger_than_the_free_space_is_an_error() -> None:
    g = guest("vmware")
    g.t.fifo.write32(FifoReg.RESERVED * 4, 10 << 20)
    g.push(fill())
    with pytest.raises(ModelError, match="FIFO_RESERVED=10485760"):
        g.sync()
    g.t.fifo.write32(FifoReg.RESERVED * 4, 24)  # a sane reservation is fine
    g.push(fill())
    g.sync()
    assert g.stop == g.next_cmd


def test_stop_never_passes_next_cmd() -> None:
    g = guest("qemu")
    ring = g.fifo_max - g.fifo_min
    rng = np.random.default_rng(7)
    for _ in range(40):
        junk = rng.integers(0, 50, size=int(rng.integers(1, 30)), dtype=np.uint32)
        stop_before = g.stop
        g.push(junk.astype("<u4").tobytes())
        pending = (g.next_cmd - stop_before) % ring
        try:
            g.sync()
        except ModelError:
            pass
        consumed = (g.stop - stop_before) % ring
        assert consumed <= pending and g.fifo_min <= g.stop < g.fifo_max
        g.set_pointers(g.next_cmd)  # drop a waiting incomplete command, as a driver re-init would
