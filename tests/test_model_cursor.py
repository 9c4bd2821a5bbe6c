"""Tests of svga.model.cursor and the cursor compositing of svga.model.raster: VMware's and
QEMU's readings of DEFINE_CURSOR, DEFINE_ALPHA_CURSOR, limits, positioning (registers and
cursor bypass 3) and clipping. Expected pixels are written out by hand from svga_reg.h's
AND/XOR rule and QEMU's documented decoding."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import Guest

from svga.errors import ModelError
from svga.model import ModelTransport
from svga.registers import FifoReg, Reg

BG = 0x00123456
BG_RGB = (0x12, 0x34, 0x56)
INV_RGB = (0xED, 0xCB, 0xA9)  # BG XOR 0xFFFFFF
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def guest(profile: str = "vmware", size: tuple[int, int] = (128, 64)) -> Guest:
    g = Guest(ModelTransport(profile)).setup(*size)
    g.write_fb(np.full((size[1], size[0]), BG, np.uint32))
    if profile.startswith("qemu"):
        g.t.display_image()
    return g


def define(g: Guest, w: int, h: int, and_mask: bytes, xor_mask: bytes, and_depth: int = 1,
           xor_depth: int = 1, hot: tuple[int, int] = (0, 0)) -> int:
    off = g.send("DEFINE_CURSOR", id=0, hotspot_x=hot[0], hotspot_y=hot[1], width=w, height=h,
                 and_mask_depth=and_depth, xor_mask_depth=xor_depth, and_mask=and_mask, xor_mask=xor_mask)
    g.sync()
    return off


def show(g: Guest, x: int, y: int) -> np.ndarray:
    g.regs[Reg.CURSOR_X] = x & 0xFFFFFFFF
    g.regs[Reg.CURSOR_Y] = y & 0xFFFFFFFF
    g.regs[Reg.CURSOR_ON] = 1
    return g.t.display_image(with_cursor=True)


def px(img: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in img[y, x])  # type: ignore[return-value]


# -- VMware's AND/XOR reading ----------------------------------------------------------------------

def test_vmware_mono_and_xor_truth_table() -> None:
    g = guest()
    # One row of 32 pixels, 8 of each (AND, XOR) pair: (0,0) (1,0) (0,1) (1,1).
    define(g, 32, 1, bytes([0x00, 0xFF, 0x00, 0xFF]), bytes([0x00, 0x00, 0xFF, 0xFF]), hot=(2, 0))
    img = show(g, 12, 7)  # top-left at (10, 7)
    assert [px(img, 10 + i, 7) for i in (0, 7)] == [BLACK, BLACK]
    assert [px(img, 10 + i, 7) for i in (8, 15)] == [BG_RGB, BG_RGB]
    assert [px(img, 10 + i, 7) for i in (16, 23)] == [WHITE, WHITE]
    assert [px(img, 10 + i, 7) for i in (24, 31)] == [INV_RGB, INV_RGB]
    assert px(img, 9, 7) == BG_RGB and px(img, 42, 7) == BG_RGB and px(img, 10, 8) == BG_RGB


def test_vmware_rows_are_padded_to_32_bits() -> None:
    g = guest()
    # 16x2, 1 bpp: each row is 2 bytes of mask + 2 bytes of padding (0xAA/0x55 here).
    define(g, 16, 2, bytes([0x00, 0x00, 0xAA, 0xAA, 0xFF, 0xFF, 0x55, 0x55]),
           bytes([0xFF, 0x00, 0x0F, 0x0F, 0x00, 0x00, 0x00, 0x00]))
    img = show(g, 0, 0)
    assert [px(img, x, 0) for x in range(16)] == [WHITE] * 8 + [BLACK] * 8
    assert [px(img, x, 1) for x in range(16)] == [BG_RGB] * 16  # AND all 1, XOR 0: transparent


def test_vmware_32bpp_xor_with_1bpp_and() -> None:
    g = guest()
    colours = [0x00010203 * (i + 1) for i in range(32)]
    xor = np.array(colours, "<u4").tobytes()
    define(g, 32, 1, bytes([0x00, 0x00, 0xFF, 0xFF]), xor, xor_depth=32)
    img = show(g, 0, 0)
    for i in (0, 15):
        c = colours[i]
        assert px(img, i, 0) == ((c >> 16) & 255, (c >> 8) & 255, c & 255)
    for i in (16, 31):  # AND 1: the XOR colour is XORed onto the screen
        c = colours[i] ^ BG
        assert px(img, i, 0) == ((c >> 16) & 255, (c >> 8) & 255, c & 255)


def test_vmware_32bpp_and_mask() -> None:
    g = guest()
    and_words = np.array([0x00FF00FF] * 32, "<u4").tobytes()
    define(g, 32, 1, and_words, bytes(128), and_depth=32, xor_depth=32)
    img = show(g, 0, 0)
    assert px(img, 0, 0) == (0x12, 0x00, 0x56)  # BG AND 0xFF00FF


def test_vmware_cursor_limits_and_depths() -> None:
    g = guest()
    off = g.send("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=257, height=1, and_mask_depth=1,
                 xor_mask_depth=1, and_mask=bytes(36), xor_mask=bytes(36))
    with pytest.raises(ModelError, match=f"DEFINE_CURSOR at FIFO offset {off}: cursor 257x1 is larger "
                                         "than 256x256"):
        g.sync()
    off = g.send("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=4, height=1, and_mask_depth=1,
                 xor_mask_depth=8, and_mask=bytes(4), xor_mask=bytes(4))
    with pytest.raises(ModelError, match=f"DEFINE_CURSOR at FIFO offset {off}: XOR mask depth 8 is not "
                                         "1 or 32"):
        g.sync()
    assert g.t.state.cursor is None


# -- QEMU's reading ------------------------------------------------------------------------------------

def test_qemu_steps_rows_by_whole_bytes() -> None:
    g = guest("qemu-cursor")
    # The same 16x2 data as the VMware test: QEMU reads row 1 from bytes 2..3 (the padding).
    define(g, 16, 2, bytes([0x00, 0x00, 0xAA, 0xAA, 0xFF, 0xFF, 0x55, 0x55]),
           bytes([0xFF, 0x00, 0x0F, 0x0F, 0x00, 0x00, 0x00, 0x00]))
    img = show(g, 0, 0)
    assert [px(img, x, 0) for x in range(16)] == [WHITE] * 8 + [BLACK] * 8
    # Row 1: AND 0xAA 0xAA -> even pixels transparent; XOR 0x0F 0x0F -> pixels 4-7, 12-15 white.
    row1 = [BG_RGB if x % 2 == 0 else (WHITE if x % 8 >= 4 else BLACK) for x in range(16)]
    assert [px(img, x, 1) for x in range(16)] == row1


def test_qemu_mono_and_bit_is_transparent_even_with_xor() -> None:
    g = guest("qemu-cursor")
    define(g, 32, 1, bytes([0x00, 0xFF, 0x00, 0xFF]), bytes([0x00, 0x00, 0xFF, 0xFF]))
    img = show(g, 0, 0)
    assert [px(img, x, 0) for x in (0, 8, 16, 24)] == [BLACK, BG_RGB, WHITE, BG_RGB]  # no inversion


def test_qemu_32bpp_alpha_from_and_bit() -> None:
    g = guest("qemu-cursor")
    xor = np.array([0xFF00FF00 + i for i in range(32)], "<u4").tobytes()
    define(g, 32, 1, bytes([0x0F, 0x00, 0x00, 0x00]), xor, xor_depth=32)
    img = show(g, 0, 0)
    assert px(img, 0, 0) == (0x00, 0xFF, 0x00)  # opaque, colour & 0xffffff
    assert px(img, 4, 0) == BG_RGB  # AND bit set: transparent
    assert px(img, 8, 0) == (0x00, 0xFF, 0x08)


@pytest.mark.parametrize(("w", "h", "bpp", "ok"), [
    (64, 64, 32, True), (65, 64, 32, False), (64, 65, 32, False),
    (256, 128, 1, True), (256, 129, 1, False), (257, 1, 1, False)])
def test_qemu_cursor_limits(w: int, h: int, bpp: int, ok: bool) -> None:
    g = guest("qemu-cursor")
    and_bytes = (w + 31) // 32 * 4 * h
    xor_bytes = (w * bpp + 31) // 32 * 4 * h
    off = g.send("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=w, height=h, and_mask_depth=1,
                 xor_mask_depth=bpp, and_mask=bytes(and_bytes), xor_mask=bytes(xor_bytes))
    if ok:
        g.sync()
        assert g.t.state.cursor is not None and g.t.state.cursor.width == w
    else:
        with pytest.raises(ModelError, match=f"DEFINE_CURSOR at FIFO offset {off}: cursor {w}x{h} at {bpp} "
                                             "bpp .* exceeds QEMU's limits"):
            g.sync()
        assert g.stop == g.next_cmd  # skipped by its length


def test_qemu_refuses_an_and_mask_deeper_than_one_bit() -> None:
    g = guest("qemu-cursor")
    off = g.send("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=8, height=8, and_mask_depth=32,
                 xor_mask_depth=32, and_mask=bytes(256), xor_mask=bytes(256))
    g.send("RECT_FILL", color=0x1, x=0, y=0, width=1, height=1)
    with pytest.raises(ModelError, match=f"DEFINE_CURSOR at FIFO offset {off}: AND mask depth 32: QEMU 7.2 "
                                         "reads the AND mask as 1 bpp, so its FIFO parser would lose"):
        g.sync()
    assert g.fb()[0, 0] == 0x1


def test_qemu_refuses_other_xor_depths() -> None:
    g = guest("qemu-cursor")
    g.send("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=4, height=1, and_mask_depth=1,
           xor_mask_depth=8, and_mask=bytes(4), xor_mask=bytes(4))
    with pytest.raises(ModelError, match="built-in arrow"):
        g.sync()


# -- alpha cursor ---------------------------------------------------------------------------------------

def test_alpha_cursor_is_premultiplied_over() -> None:
    g = guest()
    # BGRA: a half-transparent premultiplied red, then an opaque colour, then transparent.
    image = bytes([0x00, 0x00, 0x80, 0x80, 0x10, 0x20, 0x30, 0xFF, 0, 0, 0, 0])
    g.send("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=3, height=1, image=image)
    g.sync()
    img = show(g, 5, 5)
    # out = src + round(dst * (255 - a) / 255): 0x80 + round(0x12*127/255) = 137, ...
    assert px(img, 5, 5) == (137, 26, 43)
    assert px(img, 6, 5) == (0x30, 0x20, 0x10)
    assert px(img, 7, 5) == BG_RGB
    rgba = g.t.state.cursor.rgba()  # type: ignore[union-attr]
    assert tuple(rgba[0, 1]) == (0x30, 0x20, 0x10, 0xFF) and tuple(rgba[0, 0]) == (0xFF, 0, 0, 0x80)


def test_alpha_cursor_limit() -> None:
    g = guest()
    g.send("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=300, height=1, image=bytes(1200))
    with pytest.raises(ModelError, match="cursor 300x1 is larger than 256x256"):
        g.sync()


# -- position, visibility and clipping -------------------------------------------------------------------

def is_white(img: np.ndarray) -> np.ndarray:
    return (img == 255).all(axis=2)


def white_cursor(g: Guest, hot: tuple[int, int] = (0, 0)) -> None:
    define(g, 32, 2, bytes(8), b"\xff" * 8, hot=hot)


def test_cursor_clipped_at_the_left_and_right_edges() -> None:
    g = guest(size=(128, 64))
    white_cursor(g)
    img = show(g, -5, 10)
    white = is_white(img)
    assert white[10:12, :27].all() and not white[10:12, 27:].any()
    assert white.sum() == 2 * 27  # nothing wrapped to the other edge
    img = show(g, 125, 62)
    white = is_white(img)
    assert white[62:64, 125:128].all() and white.sum() == 2 * 3


def test_cursor_entirely_off_screen() -> None:
    g = guest()
    white_cursor(g)
    assert not is_white(show(g, -40, 0)).any()
    assert not is_white(show(g, 0, 64)).any()


def test_hidden_cursor_and_no_cursor_requested() -> None:
    g = guest()
    white_cursor(g)
    show(g, 0, 0)
    assert not is_white(g.t.display_image()).any()
    g.regs[Reg.CURSOR_ON] = 0
    assert not is_white(g.t.display_image(with_cursor=True)).any()


def test_cursor_bypass_3() -> None:
    g = guest()
    white_cursor(g)
    f = g.t.fifo
    f.write32(FifoReg.CURSOR_X * 4, 20)
    f.write32(FifoReg.CURSOR_Y * 4, 30)
    f.write32(FifoReg.CURSOR_ON * 4, 1)
    assert not g.t.cursor_position.visible  # CURSOR_COUNT has not changed yet
    f.write32(FifoReg.CURSOR_COUNT * 4, 1)
    pos = g.t.cursor_position
    assert (pos.x, pos.y, pos.visible) == (20, 30, True)
    white = is_white(g.t.display_image(with_cursor=True))
    assert white[30:32, 20:52].all() and white.sum() == 64
    f.write32(FifoReg.CURSOR_ON * 4, 0)
    f.write32(FifoReg.CURSOR_COUNT * 4, 2)
    assert not is_white(g.t.display_image(with_cursor=True)).any()


def test_cursor_bypass_3_is_absent_without_the_extended_fifo() -> None:
    g = Guest(ModelTransport("vmware")).setup(128, 64, fifo_min=16)
    f = g.t.fifo
    f.write32(FifoReg.CURSOR_ON * 4, 1)  # command space here: the host must not read it
    f.write32(FifoReg.CURSOR_COUNT * 4, 5)
    assert not g.t.cursor_position.visible
