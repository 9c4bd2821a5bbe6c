"""The developer kit's Screen Object and cursor examples (examples/screen-simple, screen-multimon,
screen-present-clip, screen-annotation, screen-cursor, noscreen-cursor of the VMware SVGA Device
Developer Kit), re-expressed as the command streams their code sends, played on the ``vmware``
model, and each checked against a picture computed here with numpy from what the example's
comments and code say it draws (docs/svga-kit.md).

:class:`Kit` mirrors the kit's reference driver calls one for one (SVGA_SetMode, GMR_Define*,
Screen_Create/Define/Destroy, Screen_DefineGMRFB, Screen_BlitFromGMRFB, Screen_Annotate*,
SVGA_MoveCursor, SVGA_BeginDefine*Cursor) and lib/util/screendraw.c's tiled fills. What the
examples draw from data the kit ships compressed or in headers (test pattern, font, cursor
images) is replaced by data made here, and said so; their text is left out. Their 3D Present
commands are re-expressed as the 2D blits of the same rectangles, in virtual coordinates."""

from __future__ import annotations

import math
import struct

import numpy as np
from model_helpers import Guest

from svga.commands import GMR_FRAMEBUFFER, SCREEN_IS_PRIMARY, SCREEN_MUST_BE_SET
from svga.model import ModelTransport
from svga.registers import SVGA_ID_INVALID, FifoReg, Reg

PAGE = 4096
HAS_ROOT_PRIMARY = SCREEN_MUST_BE_SET | SCREEN_IS_PRIMARY
TILE = 64  # screendraw.c TILE_SIZE
FORMAT_32_24 = 32 | 24 << 8


class Kit:
    """The kit's reference driver, as calls on a model device."""

    def __init__(self) -> None:
        self.t = ModelTransport("vmware")
        self.g = Guest(self.t).setup(640, 480)
        self.next_page = 16  # Heap_AllocPages: guest pages from here on
        self.fb_alloc = 0  # SVGA_AllocGMR: GFB offsets from 0
        self.tile_gmr: int | None = None
        self.tile_usage: tuple[str, int] | None = None
        self.screen: tuple[int, int, int] = (0, 0, 0)  # ScreenDraw_SetScreen: id, width, height

    # svga.c
    def set_mode(self, width: int, height: int, bpp: int) -> None:
        r = self.g.regs
        r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BITS_PER_PIXEL] = width, height, bpp
        r[Reg.ENABLE] = 1

    def sync(self) -> None:
        self.g.sync()

    def move_cursor(self, visible: bool, x: int, y: int, screen_id: int) -> None:
        f = self.t.fifo
        f.write32(FifoReg.CURSOR_SCREEN_ID * 4, screen_id)  # the kit checks FIFO_CAP_SCREEN_OBJECT
        f.write32(FifoReg.CURSOR_ON * 4, int(visible))
        f.write32(FifoReg.CURSOR_X * 4, x & 0xFFFFFFFF)
        f.write32(FifoReg.CURSOR_Y * 4, y & 0xFFFFFFFF)
        f.write32(FifoReg.CURSOR_COUNT * 4, f.read32(FifoReg.CURSOR_COUNT * 4) + 1)

    def define_alpha_cursor(self, hx: int, hy: int, w: int, h: int, words: np.ndarray) -> None:
        self.g.send("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=hx, hotspot_y=hy, width=w, height=h,
                    image=words.astype("<u4").tobytes())

    # gmr.c (SVGA_CAP_GMR registers, descriptors in guest memory)
    def gmr_define_contiguous(self, gmr_id: int, pages: int) -> int:
        first = self.next_page
        desc = first + pages
        self.next_page = desc + 1
        self.t.guest_memory[desc, :16] = np.frombuffer(struct.pack("<4I", first, pages, 0, 0), np.uint8)
        self.g.regs[Reg.GMR_ID] = gmr_id
        self.g.regs[Reg.GMR_DESCRIPTOR] = desc
        return first

    def gmr_words(self, first_page: int, count: int) -> np.ndarray:
        """PPN_POINTER: a uint32 view of guest memory from a page on."""
        return self.t.guest_memory.reshape(-1)[first_page * PAGE: first_page * PAGE + count * 4].view("<u4")

    # screen.c
    def screen_create(self, sid: int, flags: int, w: int, h: int, x: int, y: int) -> None:
        pitch = w * 4  # SVGA_FIFO_CAP_SCREEN_OBJECT_2: a backing store from the GFB
        ext = struct.pack("<4I", GMR_FRAMEBUFFER, self.fb_alloc, pitch, 0)
        self.fb_alloc += pitch * h
        self.g.send("DEFINE_SCREEN", struct_size=44, id=sid, flags=flags, width=w, height=h, root_x=x,
                    root_y=y, extension=ext)

    def screen_define(self, sid: int, flags: int, w: int, h: int, x: int, y: int) -> None:
        # screen-multimon's Screen_Define of a 44-byte SVGAScreenObject whose backing store is zero.
        self.g.send("DEFINE_SCREEN", struct_size=44, id=sid, flags=flags, width=w, height=h, root_x=x,
                    root_y=y, extension=bytes(16))

    def define_gmrfb(self, gmr_id: int, offset: int, pitch: int) -> None:
        self.g.send("DEFINE_GMRFB", gmr_id=gmr_id, offset=offset, bytes_per_line=pitch, format=FORMAT_32_24)

    def blit(self, sx: int, sy: int, rect: tuple[int, int, int, int], sid: int) -> None:
        self.g.send("BLIT_GMRFB_TO_SCREEN", src_x=sx, src_y=sy, left=rect[0], top=rect[1], right=rect[2],
                    bottom=rect[3], dest_screen_id=sid)

    # screendraw.c
    def screendraw_init(self, gmr_id: int) -> None:
        self.tile_page = self.gmr_define_contiguous(gmr_id, TILE * TILE * 4 // PAGE)
        self.tile_gmr = gmr_id

    def set_screen(self, sid: int, w: int, h: int) -> None:
        self.screen = (sid, w, h)

    def _tiled(self, left: int, top: int, right: int, bottom: int) -> None:
        assert self.tile_gmr is not None
        self.define_gmrfb(self.tile_gmr, 0, TILE * 4)
        for t in range(top, bottom, TILE):
            for le in range(left, right, TILE):
                if self.tile_usage is not None and self.tile_usage[0] == "fill":
                    self.g.send("ANNOTATION_FILL", color=self.tile_usage[1])
                self.blit(0, 0, (le, t, min(right, le + TILE), min(bottom, t + TILE)), self.screen[0])

    def rectangle(self, left: int, top: int, right: int, bottom: int, color: int) -> None:
        if self.tile_usage != ("fill", color):
            self.sync()  # SVGA_SyncToFence(tileFence): the device is done with the tile buffer
            self.tile_usage = ("fill", color)
            self.gmr_words(self.tile_page, TILE * TILE)[:] = color
        self._tiled(left, top, right, bottom)

    def checkerboard(self, left: int, top: int, right: int, bottom: int) -> None:
        if self.tile_usage != ("checker", 0):
            self.sync()
            self.tile_usage = ("checker", 0)
            self.gmr_words(self.tile_page, TILE * TILE)[:] = checker_tile().reshape(-1)
        self._tiled(left, top, right, bottom)

    def border(self, left: int, top: int, right: int, bottom: int, color: int, width: int) -> None:
        self.rectangle(left, top, right, top + width, color)
        self.rectangle(left, top, left + width, bottom, color)
        self.rectangle(right - width, top, right, bottom, color)
        self.rectangle(left, bottom - width, right, bottom, color)

    def clear(self) -> None:  # Console_Clear: the whole screen in BACKGROUND_COLOR (black)
        self.rectangle(0, 0, self.screen[1], self.screen[2], 0x000000)


# -- the expected pictures, in numpy ---------------------------------------------------------------

def paint(canvas: np.ndarray, left: int, top: int, right: int, bottom: int, value: int | np.ndarray) -> None:
    """Fill [left, right) x [top, bottom) of canvas, clipped to it here (the oracle's own
    clipping); an array value is the rectangle's full-size image, cropped alike."""
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, w), min(bottom, h)
    if x0 >= x1 or y0 >= y1:
        return
    if isinstance(value, np.ndarray):
        canvas[y0:y1, x0:x1] = value[y0 - top: y1 - top, x0 - left: x1 - left]
    else:
        canvas[y0:y1, x0:x1] = value


def border(canvas: np.ndarray, left: int, top: int, right: int, bottom: int, color: int, width: int) -> None:
    paint(canvas, left, top, right, top + width, color)
    paint(canvas, left, top, left + width, bottom, color)
    paint(canvas, right - width, top, right, bottom, color)
    paint(canvas, left, bottom - width, right, bottom, color)


def checker_tile() -> np.ndarray:
    """screendraw.c: (x ^ y) & 8 ? 0x666677 : 0x9999aa over a 64x64 tile."""
    y, x = np.mgrid[0:TILE, 0:TILE]
    return np.where((x ^ y) & 8, 0x666677, 0x9999AA).astype(np.uint32)


def tiled(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """A rectangle covered by copies of a tile from its top-left corner."""
    reps = (-(-h // image.shape[0]), -(-w // image.shape[1]))
    return np.tile(image, reps)[:h, :w]


def rgb(words: np.ndarray) -> np.ndarray:
    w = np.asarray(words, dtype=np.uint32)
    return np.stack([w >> 16 & 0xFF, w >> 8 & 0xFF, w & 0xFF], axis=-1).astype(np.uint8)


def over(under: np.ndarray, cursor_bgra: np.ndarray, left: int, top: int) -> np.ndarray:
    """A premultiplied-alpha cursor over an RGB picture (svga_interface.txt: 'alpha cursors use
    pre-multiplied alpha'): out = colour + under * (255 - alpha) / 255."""
    out = under.astype(np.int64).copy()
    h, w = cursor_bgra.shape[:2]
    c = cursor_bgra.astype(np.int64)
    for y in range(h):
        for x in range(w):
            px, py = left + x, top + y
            if 0 <= px < out.shape[1] and 0 <= py < out.shape[0]:
                b, g, r, a = c[y, x]
                out[py, px] = np.minimum([r, g, b] + (out[py, px] * (255 - a) + 127) // 255, 255)
    return out.astype(np.uint8)


# -- screen-simple --------------------------------------------------------------------------------

def test_screen_simple() -> None:
    # SetMode(0, 0, 32): no legacy framebuffer; screen 0, 640x480 at (-500, 10000), primary;
    # a framebuffer in GMR 0 with the test pattern, blitted whole, fenced, then clobbered with
    # 0x42 ("to keep the SVGA device honest"): the screen keeps the pattern. The kit's pattern
    # is compressed data; a pattern made here stands for it.
    k = Kit()
    k.set_mode(0, 0, 32)
    k.screen_create(0, HAS_ROOT_PRIMARY, 640, 480, -500, 10000)
    pages = (640 * 4 * 480 + PAGE - 1) // PAGE
    first = k.gmr_define_contiguous(0, pages)
    k.define_gmrfb(0, 0, 640 * 4)
    y, x = np.mgrid[0:480, 0:640]
    pattern = ((x * 255 // 639) << 16 | (y * 255 // 479) << 8 | ((x ^ y) & 0xFF)).astype(np.uint32)
    k.gmr_words(first, 640 * 480)[:] = pattern.reshape(-1)
    k.blit(0, 0, (0, 0, 640, 480), 0)
    k.g.send("FENCE", fence=1)
    k.sync()  # SVGA_SyncToFence
    assert k.t.fifo.read32(FifoReg.FENCE * 4) == 1
    k.gmr_words(first, 640 * 480)[:] = 0x42424242
    assert np.array_equal(k.t.display_image(), rgb(pattern))


# -- screen-multimon ------------------------------------------------------------------------------

def test_screen_multimon() -> None:
    # Screens 320x240 at (320 * id, 0); screen 0 primary. Screen 0 is created and painted
    # (cleared, a 4-pixel border: 0xffffdd for the current screen, else 0x555555); key '2'
    # selects screen 1 (screen 0's border goes grey), ' ' creates and paints it, the down arrow
    # moves it 10 pixels down (Screen_Define again: contents kept). The cursor, at screen
    # position (5, 6) of screen 1, is given relative to it (SVGA_MoveCursor's screen id).
    k = Kit()
    k.set_mode(0, 0, 32)
    k.screendraw_init(0)
    roots = {0: (0, 0), 1: (320, 0)}

    def paint_screen(sid: int, current: int) -> None:
        k.set_screen(sid, 320, 240)
        k.clear()
        k.border(0, 0, 320, 240, 0xFFFFDD if current == sid else 0x555555, 4)

    k.screen_define(0, HAS_ROOT_PRIMARY, 320, 240, *roots[0])
    paint_screen(0, current=0)
    k.set_screen(0, 320, 240)
    k.border(0, 0, 320, 240, 0x555555, 4)  # setCurrentScreen(1): screen 1 does not exist yet
    k.screen_define(1, SCREEN_MUST_BE_SET, 320, 240, *roots[1])
    paint_screen(1, current=1)
    k.screen_define(1, SCREEN_MUST_BE_SET, 320, 240, 320, 10)  # KEY_DOWN: root.y += 10
    cursor = np.zeros((2, 2), np.uint32) | 0xFF0000FF  # opaque blue (BGRA 0xAARRGGBB words)
    k.define_alpha_cursor(0, 0, 2, 2, cursor)
    k.move_cursor(True, 5, 6, 1)
    k.sync()
    want = np.zeros((250, 640), np.uint32)  # the bounding box: (0, 0)..(640, 250)
    s0 = np.zeros((240, 320), np.uint32)
    border(s0, 0, 0, 320, 240, 0x555555, 4)
    s1 = np.zeros((240, 320), np.uint32)
    border(s1, 0, 0, 320, 240, 0xFFFFDD, 4)
    paint(want, 0, 0, 320, 240, s0)
    paint(want, 320, 10, 640, 250, s1)
    expected = rgb(want)
    expected[16:18, 325:327] = (0, 0, 255)
    assert np.array_equal(k.t.display_image(with_cursor=True), expected)


# -- screen-present-clip ---------------------------------------------------------------------------

SURF_W, SURF_H = 224, 168


def surface() -> np.ndarray:
    """drawCube's render target before the cube: a red 1-pixel border, 0x336699 inside (the
    wireframe cube itself, 3D rendering, is left out)."""
    s = np.full((SURF_H, SURF_W), 0x336699, np.uint32)
    border(s, 0, 0, SURF_W, SURF_H, 0xFF0000, 1)
    return s


def stair_step(x_off: int, y_off: int) -> list[tuple[int, int, int, int, int, int]]:
    """presentStairStep: (srcx, srcy, x, y, w, h) of each tile with x + y < 16."""
    sw, sh = SURF_W // 16, SURF_H // 16
    return [(x * sw, y * sh, x * sw + x_off, y * sh + y_off, sw, sh)
            for x in range(16) for y in range(16) if x + y < 16]


def test_screen_present_clip() -> None:
    # Screen 0, 1024x768 at (1000, 2000), cleared, a red 1-pixel border; then the unscaled
    # Presents of present(): the stair-step at virtual (1020, 2065), the halves swapped at
    # (1020, 2265), and the stair-step "clipped against screen edges" at (1000 - 84,
    # 2000 + 768 - 84), as virtual-coordinate blits from a GMR holding the surface.
    k = Kit()
    k.set_mode(0, 0, 32)
    k.screendraw_init(0)
    root = (1000, 2000)
    k.screen_create(0, HAS_ROOT_PRIMARY, 1024, 768, *root)
    k.set_screen(0, 1024, 768)
    k.clear()
    k.border(0, 0, 1024, 768, 0xFF0000, 1)
    first = k.gmr_define_contiguous(1, SURF_W * SURF_H * 4 // PAGE + 1)
    k.gmr_words(first, SURF_W * SURF_H)[:] = surface().reshape(-1)
    k.define_gmrfb(1, 0, SURF_W * 4)
    copies = stair_step(1020, 2065)
    half = SURF_H // 2
    copies += [(0, half, 1020, 2265, SURF_W, half), (0, 0, 1020, 2265 + half, SURF_W, half)]
    copies += stair_step(1000 - SURF_H // 2, 2000 + 768 - SURF_H // 2)
    for sx, sy, x, y, w, h in copies:
        k.blit(sx, sy, (x, y, x + w, y + h), SVGA_ID_INVALID)
    k.sync()
    want = np.zeros((768, 1024), np.uint32)
    border(want, 0, 0, 1024, 768, 0xFF0000, 1)
    surf = surface()
    for sx, sy, x, y, w, h in copies:
        paint(want, x - root[0], y - root[1], x - root[0] + w, y - root[1] + h, surf[sy: sy + h, sx: sx + w])
    assert np.array_equal(k.t.display_image(), rgb(want))
    # The clipped stair-step: its left column is cut at the screen's left edge.
    assert tuple(k.t.display_image()[768 - 84, 0]) == (0xFF, 0, 0)  # the surface's red top border


# -- screen-annotation ----------------------------------------------------------------------------------

def test_screen_annotation() -> None:
    # Screen 0, 800x600 at (0, 0), cleared. Two frames of the animation: the left rectangle is
    # a fill-annotated blit of noise (the model draws the blit's data: "Either one is correct"),
    # the right one a checkerboard first, then a copy-annotated blit of noise; each with a
    # 1-pixel white border, and the pixels of the old rectangle not in the new one cleared.
    k = Kit()
    k.set_mode(0, 0, 32)
    k.screendraw_init(0)
    noise_page = k.gmr_define_contiguous(1, 500)
    noise = np.random.default_rng(0).integers(0, 1 << 32, size=500 * PAGE // 4, dtype=np.uint32)
    k.gmr_words(noise_page, len(noise))[:] = noise
    noise_img = noise.reshape(-1, 256)  # bytesPerLine 1024
    k.screen_create(0, HAS_ROOT_PRIMARY, 800, 600, 0, 0)
    k.set_screen(0, 800, 600)
    k.clear()
    want = np.zeros((600, 800), np.uint32)
    origins = [(17, 99), (120, 3), (64, 64), (5, 127)]  # prepareNoiseRect's random origins

    def update_borders(old: tuple[int, ...] | None, new: tuple[int, ...]) -> None:
        n = (new[0] - 1, new[1] - 1, new[2] + 1, new[3] + 1)
        k.border(*n, 0xFFFFFF, 1)
        border(want, *n, 0xFFFFFF, 1)
        if old is not None:
            o = (old[0] - 1, old[1] - 1, old[2] + 1, old[3] + 1)
            clears = []
            if n[2] < o[2]:
                clears.append((n[2], o[1], o[2], o[3]))
            if n[0] > o[0]:
                clears.append((o[0], o[1], n[0], o[3]))
            if n[1] > o[1]:
                clears.append((o[0], o[1], o[2], n[1]))
            if n[3] < o[3]:
                clears.append((o[0], n[3], o[2], o[3]))
            for c in clears:
                k.rectangle(*c, 0x000000)
                paint(want, *c, 0)

    def noise_blit(rect: tuple[int, int, int, int], origin: tuple[int, int], annotation: tuple) -> None:
        k.define_gmrfb(1, 0, 1024)
        if annotation[0] == "fill":
            k.g.send("ANNOTATION_FILL", color=annotation[1])
        else:
            k.g.send("ANNOTATION_COPY", src_x=annotation[1], src_y=annotation[2], src_screen_id=0)
        k.blit(*origin, rect, 0)
        ox, oy = origin
        paint(want, *rect, noise_img[oy: oy + rect[3] - rect[1], ox: ox + rect[2] - rect[0]] & 0xFFFFFF)

    old1 = old2 = None
    for frame in range(2):
        theta = frame * 0.01
        l1, t1 = int(190 + math.cos(theta) * 60), int(350 + math.sin(theta) * 60)
        l2, t2 = int(530 + math.sin(theta) * 60), int(350 + math.cos(theta) * 60)
        new1, new2 = (l1, t1, l1 + 80, t1 + 120), (l2, t2, l2 + 80, t2 + 120)
        noise_blit(new1, origins[2 * frame], ("fill", 0xCCCCFF))  # BGRX {0xFF, 0xCC, 0xCC}
        update_borders(old1, new1)
        if old2 is None:
            k.checkerboard(*new2)
            paint(want, *new2, tiled(checker_tile(), 120, 80))
        else:
            noise_blit(new2, origins[2 * frame + 1], ("copy", old2[0], old2[1]))
        update_borders(old2, new2)
        old1, old2 = new1, new2
    k.sync()
    assert np.array_equal(k.t.display_image(), rgb(want))


# -- screen-cursor and noscreen-cursor ----------------------------------------------------------------

def gradient(size: int) -> np.ndarray:
    """testGradient: solid white with premultiplied alpha = y * 255 / size, as 0xAARRGGBB words."""
    alpha = (np.arange(size, dtype=np.uint32) * 255 // size)[:, None] * np.ones((1, size), np.uint32)
    return alpha << 24 | alpha << 16 | alpha << 8 | alpha


def bgra(words: np.ndarray) -> np.ndarray:
    return words.astype("<u4").view(np.uint8).reshape(words.shape + (4,))


def test_screen_cursor() -> None:
    # Screen 0, 800x600 at (150000, -0x20000000): cleared, a grey 1-pixel border, a white square
    # right of the menu; selectTest(0) then (1): the list item borders (2 pixels, yellow for the
    # current, black for the old), BITS_PER_PIXEL 8 (ignored: no 8BIT_EMULATION) and the 64x64
    # gradient cursor; the noise bar on the left; the cursor at screen position (100, 300) sent
    # once relative to the screen and once in virtual coordinates: the same picture.
    k = Kit()
    k.set_mode(0, 0, 32)
    k.screendraw_init(0)
    noise_page = k.gmr_define_contiguous(1, 500)
    noise = np.random.default_rng(7).integers(0, 1 << 32, size=500 * PAGE // 4, dtype=np.uint32)
    k.gmr_words(noise_page, len(noise))[:] = noise
    root = (150000, -0x20000000)
    w, h, list_x, list_y, item_h = 800, 600, 150, 70, 22
    k.screen_create(0, HAS_ROOT_PRIMARY, w, h, *root)
    k.set_screen(0, w, h)
    k.clear()
    k.border(0, 0, w, h, 0x808080, 1)
    k.rectangle(w - list_x + 10, list_y, w - 10, h - 10, 0xFFFFFF)
    k.border(list_x, list_y, w - list_x, list_y + item_h, 0xFFFF00, 2)  # selectTest(0)
    k.g.regs[Reg.BITS_PER_PIXEL] = 8  # testAlphaArrow (its arrow image is the kit's data)
    k.border(list_x, list_y, w - list_x, list_y + item_h, 0x000000, 2)  # selectTest(1)
    k.border(list_x, list_y + item_h, w - list_x, list_y + 2 * item_h, 0xFFFF00, 2)
    k.g.regs[Reg.BITS_PER_PIXEL] = 8
    k.define_alpha_cursor(32, 32, 64, 64, gradient(64))
    k.define_gmrfb(1, 0, 512)  # prepareNoiseRect: bytesPerLine 512
    origin = (33, 90)
    k.blit(*origin, (10, list_y, list_x - 10, h - 10), 0)
    want = np.zeros((h, w), np.uint32)
    border(want, 0, 0, w, h, 0x808080, 1)
    paint(want, w - list_x + 10, list_y, w - 10, h - 10, 0xFFFFFF)
    border(want, list_x, list_y, w - list_x, list_y + item_h, 0x000000, 2)
    border(want, list_x, list_y + item_h, w - list_x, list_y + 2 * item_h, 0xFFFF00, 2)
    # The bar is 130 pixels wide, the noise's rows 128 words (512 bytes): a row of the blit runs
    # on into the next row of the noise, word (y + r) * 128 + x + c.
    r, c = np.mgrid[0: h - 10 - list_y, 0: list_x - 20]
    bar = noise[(origin[1] + r) * 128 + origin[0] + c]
    paint(want, 10, list_y, list_x - 10, h - 10, bar & 0xFFFFFF)
    expected = over(rgb(want), bgra(gradient(64)), 100 - 32, 300 - 32)
    k.sync()
    assert k.g.regs[Reg.BITS_PER_PIXEL] == 32 and k.t.screen_ids() == [0]
    for screen_id, x, y in ((0, 100, 300), (SVGA_ID_INVALID, 100 + root[0], 300 + root[1])):
        k.move_cursor(True, x, y, screen_id)
        assert np.array_equal(k.t.display_image(with_cursor=True), expected)


def test_noscreen_cursor() -> None:
    # A 640x480 legacy mode, nothing drawn (black); the cursor tests that need no data file:
    # testANDXOR32 (AND 0x808080, XOR y * 127 / 32: "AND masks off 7 LSBs, XOR draws blue
    # gradient") at (100, 100), then testGradient64 at (300, 200), in virtual coordinates.
    k = Kit()
    k.set_mode(640, 480, 32)
    k.g.regs[Reg.BITS_PER_PIXEL] = 32
    and_mask = np.full((32, 32), 0x808080, "<u4")
    xor_mask = (np.arange(32, dtype=np.uint32) * 127 // 32)[:, None] * np.ones((1, 32), np.uint32)
    k.g.send("DEFINE_CURSOR", id=0, hotspot_x=16, hotspot_y=16, width=32, height=32, and_mask_depth=32,
             xor_mask_depth=32, and_mask=and_mask.tobytes(), xor_mask=xor_mask.astype("<u4").tobytes())
    k.move_cursor(True, 100, 100, SVGA_ID_INVALID)
    k.sync()
    want = np.zeros((480, 640), np.uint32)
    paint(want, 84, 84, 116, 116, (0 & and_mask) ^ xor_mask)
    assert np.array_equal(k.t.display_image(with_cursor=True), rgb(want))
    k.g.regs[Reg.BITS_PER_PIXEL] = 8
    k.define_alpha_cursor(32, 32, 64, 64, gradient(64))
    k.move_cursor(True, 300, 200, SVGA_ID_INVALID)
    k.sync()
    expected = over(np.zeros((480, 640, 3), np.uint8), bgra(gradient(64)), 300 - 32, 200 - 32)
    assert np.array_equal(k.t.display_image(with_cursor=True), expected)
