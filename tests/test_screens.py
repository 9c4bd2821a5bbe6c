"""Screen Objects, the GMRFB, GMRs and the driver's multi-monitor API on the ``vmware`` profile,
checked against what svga_reg.h says (docs/svga-kit.md) with pictures computed here in numpy:
per-screen base layers, clipping, UPDATE from the GFB, blanking, deactivation, the cursor screen
id, the four GMRFB formats, GMR descriptors and GMR2 remaps, and the two driver ordering rules
(sync before CPU drawing, premultiplied alpha cursors)."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_helpers import Guest

from svga.commands import GMR_FRAMEBUFFER, SCREEN_BLANKING, SCREEN_DEACTIVATE
from svga.device import Device
from svga.errors import ModelError, SVGAError
from svga.facts.profiles import get_profile
from svga.model import ModelTransport
from svga.registers import SVGA_ID_INVALID, Cap, FifoReg, Reg

INVALID = SVGA_ID_INVALID
RED, GREEN, BLUE = 0xFF0000, 0x00FF00, 0x0000FF
STAGE = 8 << 20  # a GMRFB in VRAM, well after any mode used here
PITCH = 256 * 4


def rgb(words: np.ndarray) -> np.ndarray:
    w = np.asarray(words, dtype=np.uint32)
    return np.stack([w >> 16 & 0xFF, w >> 8 & 0xFF, w & 0xFF], axis=-1).astype(np.uint8)


def guest(width: int = 640, height: int = 480) -> Guest:
    return Guest(ModelTransport("vmware")).setup(width, height)


def define(g: Guest, sid: int, w: int, h: int, x: int, y: int, flags: int = 1) -> None:
    g.send("DEFINE_SCREEN", struct_size=28, id=sid, flags=flags, width=w, height=h, root_x=x, root_y=y,
           extension=b"")


def gmrfb_of(g: Guest, image: np.ndarray) -> None:
    """Put ``image`` ((h, <=256) uint32) at STAGE in VRAM and make it the GMRFB (32/24)."""
    padded = np.zeros((image.shape[0], PITCH // 4), dtype="<u4")
    padded[:, : image.shape[1]] = image
    g.t.vram.write(STAGE, padded.tobytes())
    g.send("DEFINE_GMRFB", gmr_id=GMR_FRAMEBUFFER, offset=STAGE, bytes_per_line=PITCH, format=32 | 24 << 8)


def blit(g: Guest, sx: int, sy: int, left: int, top: int, right: int, bottom: int, sid: int) -> int:
    return g.send("BLIT_GMRFB_TO_SCREEN", src_x=sx, src_y=sy, left=left, top=top, right=right,
                  bottom=bottom, dest_screen_id=sid)


def solid(colour: int, h: int = 64, w: int = 64) -> np.ndarray:
    return np.full((h, w), colour, dtype=np.uint32)


# -- base layers ----------------------------------------------------------------------------------

def test_a_blit_lands_relative_to_the_screen_on_its_base_layer() -> None:
    # The example: screen 0 redefined 320x240 at root (100, 50); a red blit to screen
    # pixel (10, 10) is at (10, 10) of the screen, and the display is the screen itself.
    g = guest()
    define(g, 0, 320, 240, 100, 50, flags=3)
    gmrfb_of(g, solid(RED))
    blit(g, 0, 0, 10, 10, 11, 11, 0)
    g.sync()
    want = np.zeros((240, 320), np.uint32)
    want[10, 10] = RED
    assert np.array_equal(g.t.display_image(), rgb(want))
    assert np.array_equal(g.t.screen_image(0), rgb(want))
    assert not g.fb().any()  # the GFB is not written


def test_update_copies_the_gfb_to_the_screens_it_intersects() -> None:
    g = guest(64, 48)
    define(g, 0, 64, 48, 0, 0, flags=3)
    define(g, 1, 32, 32, 64, 0)  # beside it: the GFB's x >= 64 is outside the mode
    g.sync()
    g.write_fb(solid(RED, 48, 64))  # CPU drawing, no UPDATE: not on any screen
    assert not g.t.screen_image(0).any()
    g.send("UPDATE", x=8, y=8, width=100, height=4)  # partly outside the mode: clipped
    g.sync()
    want = np.zeros((48, 64), np.uint32)
    want[8:12, 8:64] = RED
    assert np.array_equal(g.t.screen_image(0), rgb(want))
    assert not g.t.screen_image(1).any()
    # A blit then writes the base layer only; an UPDATE from the GFB overwrites it again.
    gmrfb_of(g, solid(GREEN))
    blit(g, 0, 0, 0, 0, 4, 4, 0)
    g.sync()
    assert g.fb()[0, 0] == RED and tuple(g.t.screen_image(0)[0, 0]) == (0, 255, 0)
    g.send("UPDATE", x=0, y=0, width=2, height=2)
    g.sync()
    assert tuple(g.t.screen_image(0)[0, 0]) == (255, 0, 0) and tuple(g.t.screen_image(0)[3, 3]) == (0, 255, 0)


def test_the_display_is_the_bounding_box_of_the_screens() -> None:
    g = guest()
    define(g, 0, 30, 20, -500, 10000, flags=3)  # screen-simple's arbitrary root
    define(g, 1, 10, 10, -470, 10005)
    gmrfb_of(g, np.arange(64 * 64, dtype=np.uint32).reshape(64, 64))
    blit(g, 0, 0, 0, 0, 30, 20, 0)
    blit(g, 5, 5, -480, 10000, -440, 10020, INVALID)  # virtual: over both screens, clipped
    g.sync()
    src = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64)
    s0 = src[0:20, 0:30].copy()
    s0[0:20, 20:30] = src[5:25, 5:15]   # virtual x -480..-470 of screen 0
    s1 = src[10:20, 15:25]               # virtual (-470..-460, 10005..10015)
    want = np.zeros((20, 40), np.uint32)  # box x -500..-460, y 10000..10020
    want[:, :30] = s0
    want[5:15, 30:40] = s1
    assert np.array_equal(g.t.display_image(), rgb(want))


def test_blanking_and_deactivate() -> None:
    g = guest()
    define(g, 1, 16, 16, 0, 0)
    gmrfb_of(g, solid(BLUE))
    blit(g, 0, 0, 0, 0, 16, 16, 1)
    define(g, 1, 16, 16, 0, 0, flags=1 | SCREEN_BLANKING)  # shown black, contents kept
    g.sync()
    assert not g.t.screen_image(1).any()
    blit(g, 0, 0, 0, 0, 1, 1, 1)  # still written while blanked
    define(g, 1, 16, 16, 0, 0)
    g.sync()
    assert np.array_equal(g.t.screen_image(1), rgb(solid(BLUE, 16, 16)))
    define(g, 1, 16, 16, 0, 0, flags=1 | SCREEN_DEACTIVATE)  # contents lost
    define(g, 1, 16, 16, 0, 0)
    g.sync()
    assert not g.t.screen_image(1).any()


def test_resizing_keeps_the_contents_and_a_mode_change_brings_back_the_legacy_screen() -> None:
    g = guest(64, 48)
    define(g, 0, 20, 20, 0, 0, flags=3)
    gmrfb_of(g, solid(GREEN))
    blit(g, 0, 0, 0, 0, 20, 20, 0)
    define(g, 0, 30, 10, 0, 0, flags=3)
    g.sync()
    want = np.zeros((10, 30), np.uint32)
    want[:, :20] = GREEN
    assert np.array_equal(g.t.screen_image(0), rgb(want))
    g.regs[Reg.BITS_PER_PIXEL] = 8  # ignored: no mode change
    assert g.t.screen_ids() == [0] and g.t.screen_image(0).shape == (10, 30, 3)
    g.regs[Reg.WIDTH] = 32
    assert g.t.screen_ids() == [0] and g.t.display_image().shape == (48, 32, 3)


def test_a_destroyed_screen_takes_no_blits() -> None:
    g = guest()
    gmrfb_of(g, solid(RED))
    g.send("DESTROY_SCREEN", screen_id=0)
    off = blit(g, 0, 0, 0, 0, 1, 1, 0)
    with pytest.raises(ModelError, match=f"BLIT_GMRFB_TO_SCREEN at FIFO offset {off}: screen 0 is not") as e:
        g.sync()
    assert e.value.key == "screen-undefined"
    assert g.t.display_image().shape == (0, 0, 3)


def test_a_rejected_define_gmrfb_leaves_no_gmrfb() -> None:
    g = guest()
    gmrfb_of(g, solid(RED))
    g.send("DEFINE_GMRFB", gmr_id=GMR_FRAMEBUFFER, offset=STAGE, bytes_per_line=PITCH,
           format=32 | 24 << 8 | 0x10000)  # a reserved bit
    off = blit(g, 0, 0, 0, 0, 1, 1, 0)
    with pytest.raises(ModelError) as e:
        g.sync()
    assert [(x.key, x.offset) for x in e.value.errors][1] == ("model-rejects", off)
    assert g.fb()[0, 0] == 0


def test_screen_to_gmrfb_reads_the_base_layer_and_is_not_clipped() -> None:
    g = guest()
    define(g, 2, 8, 8, 1000, 1000)
    gmrfb_of(g, np.arange(64, dtype=np.uint32).reshape(8, 8) * 0x010203)
    blit(g, 0, 0, 0, 0, 8, 8, 2)
    g.send("DEFINE_GMRFB", gmr_id=GMR_FRAMEBUFFER, offset=STAGE + 64 * PITCH, bytes_per_line=32,
           format=32 | 24 << 8)
    g.send("BLIT_SCREEN_TO_GMRFB", dest_x=0, dest_y=0, left=2, top=3, right=6, bottom=5, src_screen_id=2)
    g.sync()
    back = np.frombuffer(g.t.vram.read(STAGE + 64 * PITCH, 32 * 2), "<u4").reshape(2, 8)[:, :4]
    assert np.array_equal(back, (np.arange(64, dtype=np.uint32).reshape(8, 8) * 0x010203)[3:5, 2:6])
    off = g.send("BLIT_SCREEN_TO_GMRFB", dest_x=0, dest_y=0, left=6, top=0, right=9, bottom=1,
                 src_screen_id=2)
    with pytest.raises(ModelError, match=f"offset {off}: rectangle 6,0 3x1 is outside screen 2"):
        g.sync()


# -- the cursor screen id ---------------------------------------------------------------------------

def test_cursor_position_relative_to_a_screen() -> None:
    # screen-cursor's screen at (150000, -0x20000000): the same place given in virtual
    # coordinates or relative to the screen (SVGA_FIFO_CURSOR_SCREEN_ID).
    g = guest()
    root = (150000, -0x20000000)
    define(g, 0, 64, 48, *root, flags=3)
    cursor = np.full((2, 2, 4), 255, np.uint8)  # opaque white, premultiplied = itself
    g.send("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=2, height=2, image=cursor.tobytes())
    g.sync()
    want = np.zeros((48, 64, 3), np.uint8)
    want[10:12, 20:22] = 255
    f = g.t.fifo
    assert f.read32(FifoReg.CURSOR_SCREEN_ID * 4) == INVALID  # the host's initial value
    for sid, x, y in ((0, 20, 10), (INVALID, root[0] + 20, root[1] + 10)):
        f.write32(FifoReg.CURSOR_SCREEN_ID * 4, sid)
        f.write32(FifoReg.CURSOR_ON * 4, 1)
        f.write32(FifoReg.CURSOR_X * 4, x & 0xFFFFFFFF)
        f.write32(FifoReg.CURSOR_Y * 4, y & 0xFFFFFFFF)
        f.write32(FifoReg.CURSOR_COUNT * 4, f.read32(FifoReg.CURSOR_COUNT * 4) + 1)
        assert np.array_equal(g.t.screen_image(0, with_cursor=True), want)
        assert np.array_equal(g.t.display_image(with_cursor=True), want)
    assert f.read32(FifoReg.CURSOR_LAST_UPDATED * 4) != 0


# -- GMRFB formats and GMRs ----------------------------------------------------------------------------

def widen(v: np.ndarray, bits: int) -> np.ndarray:
    """A 5- or 6-bit channel to 8 bits, repeating its top bits (docs/svga-kit.md 'GMRFB')."""
    return (v << (8 - bits)) | (v >> (2 * bits - 8))


@pytest.mark.parametrize(("bpp", "depth"), [(32, 24), (24, 24), (16, 16), (16, 15)])
def test_gmrfb_formats_from_a_discontiguous_gmr2(bpp: int, depth: int) -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup(64, 48)
    h, w = 6, 40
    rng = np.random.default_rng(bpp + depth)
    raw = rng.integers(0, 256, size=(h, w * bpp // 8), dtype=np.uint8)
    if bpp == 32:
        px = raw.reshape(h, w, 4).astype(np.uint32)
        want = px[..., 2] << 16 | px[..., 1] << 8 | px[..., 0]
    elif bpp == 24:
        px = raw.reshape(h, w, 3).astype(np.uint32)
        want = px[..., 2] << 16 | px[..., 1] << 8 | px[..., 0]
    else:
        v = raw.view("<u2").astype(np.uint32)
        if depth == 16:
            r, gg, b = widen(v >> 11, 5), widen(v >> 5 & 0x3F, 6), widen(v & 0x1F, 5)
        else:
            r, gg, b = widen(v >> 10 & 0x1F, 5), widen(v >> 5 & 0x1F, 5), widen(v & 0x1F, 5)
        want = r << 16 | gg << 8 | b
    # The image, one 4 KiB page per row, in guest pages 7, 3, 9, 12, 5, 20 (not in order).
    pages = [7, 3, 9, 12, 5, 20]
    mem = t.guest_memory
    for row, ppn in enumerate(pages):
        mem[ppn, : raw.shape[1]] = raw[row]
    g.send("DEFINE_GMR2", gmr_id=1, num_pages=len(pages))
    g.send("REMAP_GMR2", gmr_id=1, flags=0, offset_pages=0, num_pages=len(pages),
           pages=struct.pack(f"<{len(pages)}I", *pages))
    g.send("DEFINE_GMRFB", gmr_id=1, offset=0, bytes_per_line=4096, format=bpp | depth << 8)
    blit(g, 0, 0, 3, 2, 3 + w, 2 + h, 0)
    g.sync()
    expected = np.zeros((48, 64), np.uint32)
    expected[2:2 + h, 3:3 + w] = want
    assert np.array_equal(g.fb(), expected)  # the legacy screen's base layer is the GFB


def test_gmr_from_descriptors_and_unmapped_pages() -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup(64, 48)
    mem = t.guest_memory
    # Descriptor page 1: pages 40..41, then a link to page 2, which holds pages 50..50 and the end.
    mem[1, :24] = np.frombuffer(struct.pack("<6I", 40, 2, 2, 0, 0, 0), np.uint8)
    mem[2, :16] = np.frombuffer(struct.pack("<4I", 50, 1, 0, 0), np.uint8)
    mem[42, :4] = [0x11, 0x22, 0x33, 0]  # page 2 of the GMR is guest page 50, not 42
    mem[50, :4] = [0x01, 0x02, 0x03, 0]
    g.regs[Reg.GMR_ID] = 5
    g.regs[Reg.GMR_DESCRIPTOR] = 1
    g.send("DEFINE_GMRFB", gmr_id=5, offset=2 * 4096, bytes_per_line=4, format=32 | 24 << 8)
    blit(g, 0, 0, 0, 0, 1, 1, 0)
    g.sync()
    assert g.fb()[0, 0] == 0x030201
    g.send("DEFINE_GMR2", gmr_id=6, num_pages=2)  # no page mapped yet
    g.send("DEFINE_GMRFB", gmr_id=6, offset=0, bytes_per_line=4, format=32 | 24 << 8)
    off = blit(g, 0, 0, 0, 0, 1, 1, 0)
    with pytest.raises(ModelError, match=f"offset {off}: .*page 0 of GMR 6 is not mapped") as e:
        g.sync()
    assert e.value.key == "gmr-access"


# -- the property: clipped blits equal a numpy oracle ---------------------------------------------------

screens_st = st.lists(st.tuples(st.integers(1, 24), st.integers(1, 24), st.integers(-30, 30),
                                st.integers(-30, 30)), min_size=1, max_size=3)
blits_st = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 8), st.integers(0, 8),
                              st.integers(-40, 40), st.integers(-40, 40), st.integers(0, 30),
                              st.integers(0, 30)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(screens_st, blits_st)
def test_random_blits_are_clipped_like_the_oracle(screens: list[tuple[int, int, int, int]],
                                                  blits: list[tuple[int, ...]]) -> None:
    g = guest(16, 16)
    g.send("DESTROY_SCREEN", screen_id=0)  # screens of their own only
    src = np.random.default_rng(len(blits)).integers(0, 1 << 24, size=(40, 40), dtype=np.uint32)
    gmrfb_of(g, src)
    bases = []
    for sid, (w, h, x, y) in enumerate(screens):
        define(g, sid, w, h, x, y)
        bases.append(np.zeros((h, w), np.uint32))
    for target, sx, sy, left, top, w, h in blits:
        sid = target if target < len(screens) else INVALID
        blit(g, sx, sy, left, top, left + w, top + h, sid)
        ox, oy = (0, 0) if sid == INVALID else screens[sid][2:]
        vl, vt = left + ox, top + oy  # the blit's virtual top-left
        for (sw, sh, rx, ry), base in zip(screens, bases, strict=True):
            ys, xs = np.mgrid[0:sh, 0:sw]
            vx, vy = xs + rx, ys + ry  # every pixel of this screen, in virtual coordinates
            hit = (vx >= vl) & (vx < vl + w) & (vy >= vt) & (vy < vt + h)
            base[hit] = src[(vy - vt + sy)[hit], (vx - vl + sx)[hit]]
    g.sync()
    for sid, base in enumerate(bases):
        assert np.array_equal(g.t.screen_image(sid), rgb(base)), f"screen {sid}"


# -- the driver ------------------------------------------------------------------------------------------

def test_driver_multimonitor_api() -> None:
    dev = Device(ModelTransport("vmware"))
    dev.set_mode(0, 0)  # no legacy framebuffer (the kit's screen-simple)
    dev.define_screen(0, 32, 24, -10, 5)
    dev.define_screen(1, 16, 16, 22, 5)
    img = np.random.default_rng(1).integers(0, 1 << 24, size=(24, 32), dtype=np.uint32)
    dev.blit_to_screen(0, img)
    dev.blit_to_screen(1, np.full((4, 4, 3), (1, 2, 3), np.uint8), 2, 3)
    assert np.array_equal(dev.read_screen(0), img)
    one = np.zeros((16, 16), np.uint32)
    one[3:7, 2:6] = 0x010203
    assert np.array_equal(dev.read_screen(1), one)
    shot = dev.screenshot_array(cursor=False)
    want = np.zeros((24, 48), np.uint32)  # box x -10..38, y 5..29
    want[:, :32] = img
    want[:16, 32:48] = one
    assert np.array_equal(shot, rgb(want))
    assert np.array_equal(dev.screenshot_array(cursor=False, screen=1), rgb(one))
    dev.move_screen(1, 100, 100)
    assert dev.screenshot_array(cursor=False).shape == (111, 126, 3)  # x -10..116, y 5..116
    assert np.array_equal(dev.read_screen(1), one)  # moved with its contents
    dev.destroy_screen(1)
    with pytest.raises(SVGAError, match="screen 1 was not defined by this driver"):
        dev.read_screen(1)
    dev.close()


def test_driver_screen_objects_on_qemu_name_the_capability() -> None:
    dev = Device(ModelTransport("qemu"))
    dev.set_mode(64, 48)
    with pytest.raises(SVGAError, match="needs Screen Objects .SVGA_FIFO_CAP_SCREEN_OBJECT or "
                                        "SVGA_FIFO_CAP_SCREEN_OBJECT_2., which .* does not offer"):
        dev.define_screen(0, 64, 48)
    with pytest.raises(SVGAError, match="0x0, no legacy framebuffer, needs Screen Objects"):
        dev.set_mode(0, 0)


def test_driver_on_screen_object_2_only_sends_a_backing_store() -> None:
    so2 = dataclasses.replace(get_profile("vmware"), fifo_capabilities=get_profile("vmware").fifo_capabilities
                              & ~(1 << 7))  # no SCREEN_OBJECT (v1)
    dev = Device(ModelTransport(so2))
    dev.set_mode(64, 48)
    dev.define_screen(3, 16, 8, 64, 0)
    dev.blit_to_screen(3, np.full((8, 16), GREEN, np.uint32))
    assert (dev.read_screen(3) == GREEN).all()  # read_screen syncs
    scr = dev.transport.state.screens[3]  # type: ignore[attr-defined]
    gmr_id, offset, pitch, _ = struct.unpack("<4I", scr.backing)
    assert gmr_id == GMR_FRAMEBUFFER and offset % 4096 == 0 and pitch == 64


def test_cpu_drawing_after_an_accelerated_copy_waits_for_the_device() -> None:
    # Bug 11: the kit syncs the FIFO after an accelerated command before the CPU writes the
    # framebuffer. Copy red over a spot, then the CPU paints it green: green must win.
    vmware = get_profile("vmware")
    for profile in ("vmware", dataclasses.replace(vmware, capabilities=vmware.capabilities | Cap.RECT_FILL)):
        dev = Device(ModelTransport(profile))
        dev.set_mode(64, 48)
        dev.framebuffer[0:8, 0:8] = RED
        dev.update(0, 0, 8, 8)
        dev.copy(0, 0, 16, 0, 8, 8)  # RECT_COPY on the device
        if dev.fifo.offers("RECT_FILL"):
            dev.fill(RED, 32, 0, 8, 8)  # RECT_FILL on the device
        dev.framebuffer[0:8, 16:40] = GREEN
        dev.update(16, 0, 24, 8)
        shot = dev.screenshot_array(cursor=False)
        assert (shot[0:8, 16:40] == (0, 255, 0)).all()
        assert (shot[0:8, 0:8] == (255, 0, 0)).all()


def test_alpha_cursors_are_sent_premultiplied() -> None:
    # Bug 12: over black, 50 % red shows (128, 0, 0); a fully transparent white pixel shows black.
    dev = Device(ModelTransport("vmware"))
    dev.set_mode(64, 48)
    dev.update()
    rgba = np.array([[[255, 0, 0, 128], [255, 255, 255, 0]]], np.uint8)
    dev.define_cursor(rgba)
    dev.move_cursor(10, 10)
    shot = dev.screenshot_array(cursor=True)
    assert tuple(shot[10, 10]) == (128, 0, 0)  # 255 * 128 / 255
    assert tuple(shot[10, 11]) == (0, 0, 0)
    dev.define_screen(0, 64, 48, 1000, 0)
    dev.move_cursor(10, 10, screen=0)  # relative to screen 0, now at (1000, 0)
    assert tuple(dev.screenshot_array(cursor=True, screen=0)[10, 10]) == (128, 0, 0)


def test_cli_screenshot_of_one_screen_and_info_sources(capsys, tmp_path) -> None:
    from PIL import Image

    from svga.tools.cli import main

    out = tmp_path / "s.png"
    assert main(["screenshot", str(out), "--device", "model", "--screen", "0"]) == 0
    assert Image.open(out).size == (640, 480)  # the legacy screen 0 of a fresh model
    assert main(["screenshot", str(out), "--device", "model", "--profile", "qemu", "--screen", "0"]) == 1
    assert "needs Screen Objects (SVGA_FIFO_CAP_SCREEN_OBJECT" in capsys.readouterr().err
    assert main(["info", "--device", "model", "--profile", "vmware"]) == 0
    text = capsys.readouterr().out
    assert "RECT_FILL" not in text.split("capabilities:")[1].splitlines()[0]
    assert "  capabilities:      docs/svga-kit.md 'Capability bits'" in text


@pytest.mark.parametrize("name", ["DEFINE_CURSOR", "DEFINE_ALPHA_CURSOR"])
def test_a_cursor_id_other_than_zero_is_refused(name: str) -> None:
    # svga_reg.h: "uint32 id; // Reserved, must be zero."
    g = guest()
    fields = dict(id=1, hotspot_x=0, hotspot_y=0, width=1, height=1)
    if name == "DEFINE_CURSOR":
        fields.update(and_mask_depth=1, xor_mask_depth=1, and_mask=bytes(4), xor_mask=bytes(4))
    else:
        fields.update(image=bytes(4))
    off = g.send(name, **fields)
    with pytest.raises(ModelError, match=f"{name} at FIFO offset {off}: cursor id 1: the id is reserved"):
        g.sync()
    assert g.t.state.cursor is None
