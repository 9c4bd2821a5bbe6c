"""Tests of svga.model.executor: each command's effect on pixels, checked against a plain
numpy computation of the same operation, and each bounds check with its message."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_helpers import Guest

from svga.commands import GMR_FRAMEBUFFER, encode
from svga.errors import ModelError
from svga.facts.profiles import get_profile
from svga.model import ModelTransport
from svga.registers import Cap, Reg

W, H = 800, 600


VMWARE = get_profile("vmware")
VMWARE_RECT_FILL = dataclasses.replace(VMWARE, capabilities=VMWARE.capabilities | Cap.RECT_FILL)
"""A kit device that still reports the deprecated RECT_FILL bit (older hosts did), for the tests
of RECT_FILL itself; a current host's profile (``vmware-current`` here) has none."""


def guest(profile: str = "vmware", width: int = W, height: int = H, **kw: object) -> Guest:
    chosen: object = profile
    if profile == "vmware" and not kw:
        chosen = VMWARE_RECT_FILL
    elif profile == "vmware-current":
        chosen = "vmware"
    g = Guest(ModelTransport(chosen, **kw)).setup(width, height)  # type: ignore[arg-type]
    if profile.startswith("qemu"):
        g.t.display_image()  # a refresh: the surface follows the mode
    return g


def random_fb(g: Guest, seed: int = 0) -> np.ndarray:
    h, w = g.regs[Reg.HEIGHT], g.regs[Reg.WIDTH]
    pixels = np.random.default_rng(seed).integers(0, 1 << 32, size=(h, w), dtype=np.uint64).astype(np.uint32)
    g.write_fb(pixels)
    return pixels


# -- RECT_FILL ------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_rect_fill(profile: str) -> None:
    g = guest(profile)
    expected = random_fb(g)
    rects = [(0, 0, 1, 1, 0x00FF0000), (10, 20, 30, 40, 0x0000FF00), (790, 590, 10, 10, 0xAB123456),
             (0, 0, 800, 1, 0x1), (5, 5, 0, 7, 0x2)]
    for x, y, w, h, c in rects:
        g.send("RECT_FILL", color=c, x=x, y=y, width=w, height=h)
        expected[y:y + h, x:x + w] = c
    g.sync()
    assert np.array_equal(g.fb(), expected)
    # The raw 32-bit value is stored; the display shows the low 24 bits.
    assert tuple(g.t.display_image()[595, 795]) == (0x12, 0x34, 0x56)


@pytest.mark.parametrize(("rect", "text"), [
    ((790, 0, 20, 10), "rectangle 790,0 20x10 is outside the 800x600 framebuffer"),
    ((0, 595, 1, 6), "rectangle 0,595 1x6 is outside the 800x600 framebuffer"),
    ((0xFFFFFFFF, 0, 2, 2), "rectangle 4294967295,0 2x2 is outside the 800x600 framebuffer"),
])
def test_rect_fill_outside_is_an_error(rect: tuple[int, int, int, int], text: str) -> None:
    g = guest("vmware")
    off = g.send("RECT_FILL", color=0xFFFFFF, x=rect[0], y=rect[1], width=rect[2], height=rect[3])
    with pytest.raises(ModelError) as info:
        g.sync()
    assert str(info.value) == f"RECT_FILL at FIFO offset {off}: {text}"
    assert not g.fb().any()


# -- RECT_COPY ------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
@pytest.mark.parametrize(("sx", "sy", "dx", "dy", "w", "h"), [
    (10, 10, 20, 25, 100, 80),   # overlapping, down-right
    (20, 25, 10, 10, 100, 80),   # overlapping, up-left
    (10, 10, 13, 10, 200, 3),    # same rows, moving right
    (13, 10, 10, 10, 200, 3),    # same rows, moving left
    (0, 0, 400, 300, 400, 300),  # disjoint
    (5, 5, 5, 5, 10, 10),        # onto itself
])
def test_rect_copy_is_a_copy_from_a_snapshot(profile: str, sx: int, sy: int, dx: int, dy: int,
                                             w: int, h: int) -> None:
    g = guest(profile)
    before = random_fb(g, seed=sx * 1000 + dx)
    expected = before.copy()
    expected[dy:dy + h, dx:dx + w] = before[sy:sy + h, sx:sx + w]
    g.send("RECT_COPY", src_x=sx, src_y=sy, dest_x=dx, dest_y=dy, width=w, height=h)
    g.sync()
    assert np.array_equal(g.fb(), expected)


def test_rect_copy_bounds() -> None:
    g = guest("vmware")
    off = g.send("RECT_COPY", src_x=700, src_y=0, dest_x=0, dest_y=0, width=101, height=1)
    with pytest.raises(ModelError, match=f"^RECT_COPY at FIFO offset {off}: source 700,0 101x1 is outside "
                                         "the 800x600 framebuffer$"):
        g.sync()
    off = g.send("RECT_COPY", src_x=0, src_y=0, dest_x=0, dest_y=590, width=1, height=11)
    with pytest.raises(ModelError, match=f"^RECT_COPY at FIFO offset {off}: destination 0,590 1x11"):
        g.sync()


# -- UPDATE ----------------------------------------------------------------------------------------

def test_update_records_damage() -> None:
    g = guest("vmware")
    g.send("UPDATE", x=1, y=2, width=3, height=4)
    g.send("UPDATE_VERBOSE", x=5, y=6, width=7, height=8, reason=99)
    g.sync()
    assert list(g.t.state.damage) == [(1, 2, 3, 4), (5, 6, 7, 8)]


def test_update_outside_on_vmware_is_clipped_to_the_mode() -> None:
    # svga_reg.h: UPDATE copies the GFB "to any screens which intersect" the rectangle.
    g = guest("vmware")
    g.send("UPDATE", x=0, y=0, width=801, height=1)
    g.sync()  # a note, not an error
    assert list(g.t.state.damage) == [(0, 0, 800, 1)]


def test_update_outside_on_qemu_is_a_full_screen_update() -> None:
    g = guest("qemu")
    g.send("UPDATE", x=0, y=0, width=801, height=1)
    g.sync()  # no error
    assert list(g.t.state.damage) == [(0, 0, 800, 600)]


# -- QEMU's stale surface ---------------------------------------------------------------------------

def test_qemu_fill_before_the_first_refresh_uses_the_640x480_surface() -> None:
    t = ModelTransport("qemu")
    g = Guest(t).setup(800, 600)  # no display_image(): headless QEMU never refreshed
    g.send("RECT_FILL", color=0x00FF00FF, x=0, y=1, width=2, height=1)
    g.sync()
    vram = np.frombuffer(t.vram.read(0, 8192), "<u4")
    assert vram[2560 // 4] == 0x00FF00FF and vram[2560 // 4 + 1] == 0x00FF00FF  # old stride
    assert vram[3200 // 4] == 0  # not where BYTES_PER_LINE (3200) says
    assert g.regs[Reg.BYTES_PER_LINE] == 3200
    off = g.send("RECT_FILL", color=1, x=700, y=0, width=1, height=1)
    with pytest.raises(ModelError, match=f"RECT_FILL at FIFO offset {off}: rectangle 700,0 1x1 is outside "
                                         "the 640x480 display surface of the last refresh"):
        g.sync()
    t.display_image()  # a refresh (QEMU's screendump) adopts the mode
    g.send("RECT_FILL", color=0x00ABCDEF, x=700, y=1, width=1, height=1)
    g.sync()
    assert g.fb()[1, 700] == 0x00ABCDEF


def test_qemu_mode_change_keeps_the_old_stride_until_refresh() -> None:
    g = guest("qemu")  # refreshed at 800x600
    g.regs[Reg.WIDTH] = 1024
    g.regs[Reg.HEIGHT] = 768
    g.send("RECT_FILL", color=0x7, x=0, y=1, width=1, height=1)
    g.sync()
    assert g.t.vram.read32(3200) == 0x7 and g.t.vram.read32(4096) == 0
    g.t.display_image()
    g.send("RECT_FILL", color=0x8, x=0, y=1, width=1, height=1)
    g.sync()
    assert g.t.vram.read32(4096) == 0x8


def test_vmware_uses_the_mode_at_once() -> None:
    g = guest("vmware")
    g.regs[Reg.WIDTH] = 1024
    g.send("RECT_FILL", color=0x7, x=1000, y=1, width=1, height=1)
    g.sync()
    assert g.t.vram.read32(4096 + 4000) == 0x7


# -- Screen Objects, GMRFB and blits (vmware) ---------------------------------------------------------

GMRFB_OFFSET = 8 << 20
GMRFB_PITCH = 1024


def gmrfb_guest() -> tuple[Guest, np.ndarray, np.ndarray]:
    g = guest("vmware-current")
    fb = random_fb(g, seed=3)
    src = np.random.default_rng(4).integers(0, 1 << 24, size=(100, GMRFB_PITCH // 4), dtype=np.uint32)
    g.t.vram.write(GMRFB_OFFSET, src.astype("<u4").tobytes())
    g.send("DEFINE_GMRFB", gmr_id=GMR_FRAMEBUFFER, offset=GMRFB_OFFSET, bytes_per_line=GMRFB_PITCH,
           format=32 | 24 << 8)
    return g, fb, src


def test_blit_to_the_legacy_screen_writes_the_gfb() -> None:
    # Before any DEFINE_SCREEN, screen 0 is the mode's legacy screen: its base layer is the GFB.
    g, fb, src = gmrfb_guest()
    expected = fb.copy()
    g.send("BLIT_GMRFB_TO_SCREEN", src_x=3, src_y=4, left=100, top=50, right=164, bottom=82,
           dest_screen_id=0xFFFFFFFF)
    expected[50:82, 100:164] = src[4:36, 3:67]
    g.send("BLIT_GMRFB_TO_SCREEN", src_x=0, src_y=0, left=790, top=595, right=810, bottom=610,
           dest_screen_id=0)  # clipped to the 800x600 screen
    expected[595:600, 790:800] = src[0:5, 0:10]
    g.sync()
    assert np.array_equal(g.fb(), expected)


def test_blit_to_a_defined_screen_writes_its_base_layer_not_the_gfb() -> None:
    g, fb, src = gmrfb_guest()
    # Right of the legacy screen 0 (800x600 at 0,0), so the blit reaches screen 1 only.
    g.send("DEFINE_SCREEN", struct_size=28, id=1, flags=1, width=400, height=300, root_x=800, root_y=100,
           extension=b"")
    g.send("BLIT_GMRFB_TO_SCREEN", src_x=0, src_y=0, left=10, top=20, right=30, bottom=25, dest_screen_id=1)
    g.sync()
    assert np.array_equal(g.fb(), fb)  # the GFB is untouched
    base = np.zeros((300, 400), dtype=np.uint32)
    base[20:25, 10:30] = src[0:5, 0:20]
    shown = g.t.screen_image(1)
    assert np.array_equal(shown, np.stack([base >> 16 & 0xFF, base >> 8 & 0xFF, base & 0xFF], -1))


def test_blit_screen_to_gmrfb() -> None:
    g, fb, src = gmrfb_guest()
    g.send("BLIT_SCREEN_TO_GMRFB", dest_x=2, dest_y=1, left=700, top=500, right=720, bottom=510,
           src_screen_id=0)
    g.sync()
    out = np.frombuffer(g.t.vram.read(GMRFB_OFFSET, GMRFB_PITCH * 100), "<u4").reshape(100, -1)
    expected = src.copy()
    expected[1:11, 2:22] = fb[500:510, 700:720] & 0xFFFFFF  # BGRX: the X byte is written as 0
    assert np.array_equal(out, expected)


def test_annotation_is_consumed_by_the_next_blit() -> None:
    g, _, _ = gmrfb_guest()
    g.send("ANNOTATION_FILL", color=0x123456)
    g.send("BLIT_GMRFB_TO_SCREEN", src_x=0, src_y=0, left=0, top=0, right=1, bottom=1,
           dest_screen_id=0)
    g.sync()
    assert g.t.state.last_annotation == ("fill", (0x123456,)) and g.t.state.annotation is None
    g.send("ANNOTATION_COPY", src_x=1, src_y=2, src_screen_id=0)
    g.sync()
    assert g.t.state.annotation == ("copy", (1, 2, 0))


@pytest.mark.parametrize(("cmd", "fields", "text"), [
    ("BLIT_GMRFB_TO_SCREEN", {"src_x": 0, "src_y": 0, "left": 0, "top": 0, "right": 1, "bottom": 1,
                              "dest_screen_id": 5}, "screen 5 is not defined"),
    ("BLIT_GMRFB_TO_SCREEN", {"src_x": -1, "src_y": 0, "left": 0, "top": 0, "right": 1, "bottom": 1,
                              "dest_screen_id": 0}, "GMRFB point -1,0 is left of or above"),
    ("BLIT_GMRFB_TO_SCREEN", {"src_x": 0, "src_y": 9000, "left": 0, "top": 0, "right": 1, "bottom": 1,
                              "dest_screen_id": 0}, "are outside GMR 0xfffffffe (16777216 bytes)"),
    ("BLIT_GMRFB_TO_SCREEN", {"src_x": 0, "src_y": 0, "left": 5, "top": 0, "right": 4, "bottom": 1,
                              "dest_screen_id": 0}, "is inverted"),
    ("BLIT_SCREEN_TO_GMRFB", {"dest_x": 0, "dest_y": 0, "left": 0, "top": 0, "right": 1, "bottom": 1,
                              "src_screen_id": 0xFFFFFFFF}, "the source screen is SVGA_ID_INVALID"),
    ("BLIT_SCREEN_TO_GMRFB", {"dest_x": 0, "dest_y": 0, "left": 790, "top": 0, "right": 801, "bottom": 1,
                              "src_screen_id": 0}, "rectangle 790,0 11x1 is outside screen 0 (800x600)"),
    ("DEFINE_GMRFB", {"gmr_id": 3, "offset": 0, "bytes_per_line": 4, "format": 32 | 24 << 8},
     "GMR 0x3 is not defined"),
    ("DEFINE_GMRFB", {"gmr_id": GMR_FRAMEBUFFER, "offset": 0, "bytes_per_line": 4, "format": 8 | 8 << 8},
     "format 8 bpp depth 8 is not a GMRFB format"),
    ("DEFINE_GMRFB", {"gmr_id": GMR_FRAMEBUFFER, "offset": 0, "bytes_per_line": 4,
                      "format": 32 | 24 << 8 | 1 << 16}, "the reserved bits 16-31 must be zero"),
    ("DESTROY_SCREEN", {"screen_id": 9}, "screen 9 is not defined"),
    ("DEFINE_SCREEN", {"struct_size": 28, "id": 1, "flags": 1, "width": 0, "height": 10, "root_x": 0,
                       "root_y": 0, "extension": b""}, "screen size 0x10"),
    ("DEFINE_SCREEN", {"struct_size": 28, "id": 1, "flags": 2, "width": 8, "height": 8, "root_x": 0,
                       "root_y": 0, "extension": b""}, "lack SVGA_SCREEN_MUST_BE_SET"),
])
def test_screen_object_errors(cmd: str, fields: dict[str, int], text: str) -> None:
    g, fb, _ = gmrfb_guest()
    off = g.send(cmd, **fields)
    with pytest.raises(ModelError) as info:
        g.sync()
    assert str(info.value).startswith(f"{cmd} at FIFO offset {off}: ")
    assert text in str(info.value)
    assert np.array_equal(g.fb(), fb)


def test_blit_without_gmrfb() -> None:
    g = guest("vmware-current")
    off = g.send("BLIT_GMRFB_TO_SCREEN", src_x=0, src_y=0, left=0, top=0, right=1, bottom=1, dest_screen_id=0)
    with pytest.raises(ModelError, match=f"BLIT_GMRFB_TO_SCREEN at FIFO offset {off}: no GMRFB"):
        g.sync()


def test_screens_bookkeeping_and_mode_change() -> None:
    g = guest("vmware-current")
    backing = struct.pack("<4I", GMR_FRAMEBUFFER, 4 << 20, 640 * 4, 0)
    g.send("DEFINE_SCREEN", struct_size=44, id=2, flags=3, width=640, height=480, root_x=-10, root_y=5,
           extension=backing)
    g.sync()
    scr = g.t.state.screens[2]
    assert (scr.width, scr.height, scr.root_x, scr.root_y, scr.backing) == (640, 480, -10, 5, backing)
    g.send("DESTROY_SCREEN", screen_id=2)
    g.sync()
    assert 2 not in g.t.state.screens
    g.send("DEFINE_SCREEN", struct_size=28, id=3, flags=1, width=10, height=10, root_x=0, root_y=0,
           extension=b"")
    g.sync()
    g.regs[Reg.WIDTH] = 800  # the same value: not a mode change
    assert 3 in g.t.state.screens
    g.regs[Reg.WIDTH] = 1024  # a mode change deletes every screen but #0
    assert g.t.state.screens == {} and g.t.state.legacy_screen


@pytest.mark.parametrize(("backing", "text"), [
    ((0, 0, 2560, 0), "is in GMR 0x0, not the GFB"),
    ((GMR_FRAMEBUFFER, 100, 2560, 0), "offset 100 is not page aligned"),
    ((GMR_FRAMEBUFFER, 0, 2556, 0), "pitch 2556 is less than a 32 bpp scanline (2560 bytes)"),
    ((GMR_FRAMEBUFFER, 15 << 20, 2560, 0), "run past the 16777216-byte VRAM"),
])
def test_screen_object_2_backing_store_rules(backing: tuple[int, ...], text: str) -> None:
    g = guest("vmware-current")
    off = g.send("DEFINE_SCREEN", struct_size=44, id=1, flags=1, width=640, height=480, root_x=0,
                 root_y=0, extension=struct.pack("<4I", *backing))
    with pytest.raises(ModelError, match=f"DEFINE_SCREEN at FIFO offset {off}: the backing store") as info:
        g.sync()
    assert text in str(info.value) and info.value.key == "screen-backing"
    assert 1 not in g.t.state.screens


def test_escape_is_consumed() -> None:
    g = guest("vmware")  # with RECT_FILL
    g.send("ESCAPE", nsid=0, size=12, data=bytes(range(12)))
    g.send("RECT_FILL", color=0x5, x=0, y=0, width=1, height=1)
    g.sync()
    assert g.t.state.counts["ESCAPE"] == 1 and g.fb()[0, 0] == 0x5


def test_front_rop_fill_with_accelfront() -> None:
    g = guest("vmware", accelfront=True)
    before = random_fb(g)
    g.send("FRONT_ROP_FILL", color=0x1, x=0, y=0, width=10, height=10, rop=3)
    g.sync()
    assert np.array_equal(g.fb(), before)  # a hint: nothing drawn
    off = g.send("FRONT_ROP_FILL", color=0x1, x=0, y=0, width=10, height=10, rop=5)
    with pytest.raises(ModelError, match=f"FRONT_ROP_FILL at FIFO offset {off}: rop 0x5"):
        g.sync()
    h = guest("vmware")
    off = h.send("FRONT_ROP_FILL", color=0x1, x=0, y=0, width=10, height=10, rop=3)
    with pytest.raises(ModelError, match="not offered"):
        h.sync()


def test_fill_larger_than_a_small_vram_is_refused_not_clipped() -> None:
    # QEMU does not check a mode against VRAM: the qemu profile with 2 MiB of VRAM takes a
    # 1024x768 mode, and a fill below the end of VRAM must be an error, not a clipped write.
    g = guest("qemu", width=1024, height=768, vram_size=2 << 20)
    off = g.send("RECT_FILL", color=1, x=0, y=700, width=1, height=1)
    with pytest.raises(ModelError, match=f"RECT_FILL at FIFO offset {off}: the framebuffer does not fit"):
        g.sync()
    assert not g.t.vram.array().any()


def test_encode_sanity() -> None:
    # The tests write commands with the protocol's encoder: check one layout by hand
    # (svga_reg.h: id, then color, x, y, width, height).
    assert encode("RECT_FILL", color=9, x=1, y=2, width=3, height=4) == np.array(
        [2, 9, 1, 2, 3, 4], "<u4").tobytes()


# -- a property: any in-bounds sequence of fills and copies equals the numpy reading ---------------

_rects = st.tuples(st.integers(0, 63), st.integers(0, 47), st.integers(0, 64), st.integers(0, 48))


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), _rects, _rects, st.integers(0, 0xFFFFFFFF)), max_size=12))
def test_fills_and_copies_match_numpy(ops: list[tuple[bool, tuple[int, int, int, int],
                                                     tuple[int, int, int, int], int]]) -> None:
    g = guest("vmware", 64, 48)
    expected = random_fb(g, seed=len(ops))
    for is_fill, (x, y, w, h), (x2, y2, _, _), colour in ops:
        w, h = min(w, 64 - max(x, x2)), min(h, 48 - max(y, y2))
        if is_fill:
            g.send("RECT_FILL", color=colour, x=x, y=y, width=w, height=h)
            expected[y:y + h, x:x + w] = colour
        else:
            g.send("RECT_COPY", src_x=x, src_y=y, dest_x=x2, dest_y=y2, width=w, height=h)
            expected[y2:y2 + h, x2:x2 + w] = expected[y:y + h, x:x + w].copy()
    g.sync()
    assert np.array_equal(g.fb(), expected)
