"""Model layer: Screen Objects, the GMRFB, blits and GMR commands, as the kit defines them.

Each screen defined by DEFINE_SCREEN has a base layer of its own (a (height, width) uint32
array); blits write and read base layers, never the GFB (docs/svga-kit.md 'Screen Objects').
Beside them the legacy screen 0, defined by the mode registers, is the GFB itself (what the
guest writes to VRAM shows, as before any Screen Object exists) until DEFINE_SCREEN or
DESTROY_SCREEN of id 0; a mode change brings it back and deletes every other screen.

Coordinates: a screen sits at its root in one signed virtual coordinate space; the GFB's
pixel (x, y) is at virtual (x, y). A blit to a screen is taken to virtual coordinates and
written to every screen it intersects, clipped to each (docs/svga-kit.md 'Choices where the
kit is ambiguous'). UPDATE, RECT_FILL and RECT_COPY change the GFB and copy the rectangle to
the screens it intersects. :class:`ScreenObjects` holds the command handlers;
:meth:`ScreenObjects.compose` draws the display (the bounding box of the screens) or one screen.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from svga.commands import (
    GMR_FRAMEBUFFER,
    REMAP_GMR2_PPN64,
    REMAP_GMR2_SINGLE_PPN,
    REMAP_GMR2_VIA_GMR,
    SCREEN_BLANKING,
    SCREEN_DEACTIVATE,
    SCREEN_IS_PRIMARY,
    SCREEN_MUST_BE_SET,
    SCREEN_OBJECT_V2_SIZE,
    Cmd,
    Command,
)
from svga.facts.effects import E
from svga.model import gmr, raster
from svga.model.state import Gmrfb, Screen
from svga.registers import SVGA_ID_INVALID, FifoCap

if TYPE_CHECKING:
    from svga.model.executor import Executor

Rect = tuple[int, int, int, int]
"""(left, top, right, bottom), half-open, as SVGASignedRect."""


def intersect(a: Rect, b: Rect) -> Rect | None:
    left, top, right, bottom = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (left, top, right, bottom) if left < right and top < bottom else None


def bounding_box(screens: list[Screen]) -> Rect:
    """The bounding box of the screens, as the kit's screen-multimon computes it."""
    if not screens:
        return 0, 0, 0, 0
    rects = [s.rect() for s in screens]
    return (min(r[0] for r in rects), min(r[1] for r in rects),
            max(r[2] for r in rects), max(r[3] for r in rects))


class ScreenObjects:
    """The Screen Object, GMRFB, blit and GMR commands of one model device."""

    def __init__(self, ex: Executor) -> None:
        self.ex = ex
        self.state = ex.state
        self.guest: gmr.GuestMemory = ex.guest

    def handlers(self) -> dict[int, Callable[[Command, int], None]]:
        return {
            Cmd.DEFINE_SCREEN: self._define_screen,
            Cmd.DESTROY_SCREEN: self._destroy_screen,
            Cmd.DEFINE_GMRFB: self._define_gmrfb,
            Cmd.BLIT_GMRFB_TO_SCREEN: self._blit_gmrfb_to_screen,
            Cmd.BLIT_SCREEN_TO_GMRFB: self._blit_screen_to_gmrfb,
            Cmd.ANNOTATION_FILL: self._annotation_fill,
            Cmd.ANNOTATION_COPY: self._annotation_copy,
            Cmd.DEFINE_GMR2: self._define_gmr2,
            Cmd.REMAP_GMR2: self._remap_gmr2,
        }

    # -- the screens ---------------------------------------------------------------------
    def legacy(self) -> Screen | None:
        st = self.state
        if not st.legacy_screen or 0 in st.screens:
            return None
        return Screen(0, SCREEN_MUST_BE_SET | SCREEN_IS_PRIMARY, st.width, st.height, 0, 0)

    def screen(self, screen_id: int) -> Screen | None:
        """A defined screen; screen 0 is the legacy screen (the mode) unless redefined or destroyed."""
        scr = self.state.screens.get(screen_id)
        return scr if scr is not None else (self.legacy() if screen_id == 0 else None)

    def all(self) -> list[Screen]:
        """Every screen with a non-empty size, lowest id first (the order they are drawn in,
        so a higher id is on top where screens overlap)."""
        out = [s for _, s in sorted(self.state.screens.items())]
        legacy = self.legacy()
        if legacy is not None:
            out.insert(0, legacy)
        return [s for s in out if s.width and s.height]

    def objects_in_use(self) -> bool:
        """Whether Screen Objects have replaced the legacy screen alone (a screen defined, or
        screen 0 destroyed): then the display is composed of base layers; else it is the GFB,
        as it always was."""
        return bool(self.state.screens) or not self.state.legacy_screen

    def gfb_words(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        t = self.ex.framebuffer()
        view = raster.pixels(self.ex.vram, t.base, t.stride, x, y, w, h)
        return np.ascontiguousarray(view).view("<u4")[..., 0]

    def write(self, scr: Screen, left: int, top: int, words: np.ndarray) -> None:
        """Write ``words`` at virtual (left, top) into the part of ``scr`` they cover."""
        h, w = words.shape
        part = intersect((left, top, left + w, top + h), scr.rect())
        if part is None or scr.flags & SCREEN_DEACTIVATE:
            return
        sub = words[part[1] - top: part[3] - top, part[0] - left: part[2] - left]
        x, y = part[0] - scr.root_x, part[1] - scr.root_y
        if scr.base is None:  # the legacy screen: its base layer is the GFB
            t = self.ex.framebuffer()
            view = raster.pixels(self.ex.vram, t.base, t.stride, x, y, sub.shape[1], sub.shape[0])
            view[...] = np.ascontiguousarray(sub, dtype="<u4")[..., None].view(np.uint8)
        else:
            scr.base[y: y + sub.shape[0], x: x + sub.shape[1]] = sub

    def read(self, scr: Screen, x: int, y: int, w: int, h: int) -> np.ndarray:
        """A screen-relative rectangle of a screen's base layer (black while deactivated)."""
        if scr.flags & SCREEN_DEACTIVATE:
            return np.zeros((h, w), dtype=np.uint32)
        if scr.base is None:
            return self.gfb_words(x, y, w, h)
        return scr.base[y: y + h, x: x + w].copy()

    def gfb_changed(self, x: int, y: int, w: int, h: int) -> None:
        """UPDATE (and RECT_FILL/RECT_COPY): copy a GFB rectangle, already inside the mode, to
        every defined screen it intersects (the legacy screen is the GFB already)."""
        if not self.state.screens or w <= 0 or h <= 0:
            return
        words = self.gfb_words(x, y, w, h)
        for scr in self.state.screens.values():
            self.write(scr, x, y, words)

    # -- pictures ------------------------------------------------------------------------
    def shown(self, scr: Screen) -> np.ndarray:
        """What a screen shows: (height, width) uint32; black while blanked or deactivated."""
        if scr.flags & (SCREEN_BLANKING | SCREEN_DEACTIVATE):
            return np.zeros((scr.height, scr.width), dtype=np.uint32)
        return self.read(scr, 0, 0, scr.width, scr.height)

    def compose(self) -> tuple[np.ndarray, Rect]:
        """The whole display: the bounding box of the screens, black where none is, and that
        box; screens drawn lowest id first."""
        screens = self.all()
        box = bounding_box(screens)
        image = np.zeros((box[3] - box[1], box[2] - box[0]), dtype=np.uint32)
        for scr in screens:
            image[scr.root_y - box[1]: scr.root_y - box[1] + scr.height,
                  scr.root_x - box[0]: scr.root_x - box[0] + scr.width] = self.shown(scr)
        return image, box

    # -- DEFINE_SCREEN / DESTROY_SCREEN ----------------------------------------------------
    def _define_screen(self, cmd: Command, offset: int) -> None:
        p, fail = self.ex.profile, self.ex.fail
        if cmd.id == SVGA_ID_INVALID:
            raise fail(cmd, offset, "id SVGA_ID_INVALID is not a screen id", E.SCREEN_UNDEFINED)
        if not cmd.flags & SCREEN_MUST_BE_SET:
            raise fail(cmd, offset, f"flags {cmd.flags:#x} lack SVGA_SCREEN_MUST_BE_SET (0x1): "
                                    "the results would be undefined", E.SCREEN_FLAGS)
        if not (1 <= cmd.width <= p.max_width and 1 <= cmd.height <= p.max_height):
            raise fail(cmd, offset, f"screen size {cmd.width}x{cmd.height} is not within "
                                    f"1x1..{p.max_width}x{p.max_height}")
        self._check_backing(cmd, offset)
        old = self.screen(cmd.id)
        base = np.zeros((cmd.height, cmd.width), dtype=np.uint32)
        if old is not None and not cmd.flags & SCREEN_DEACTIVATE and not old.flags & SCREEN_DEACTIVATE:
            # svga_reg.h: "When a screen is resized ... its contents are preserved."
            h, w = min(old.height, cmd.height), min(old.width, cmd.width)
            if h and w:
                base[:h, :w] = self.read(old, 0, 0, w, h)
        if cmd.id == 0:
            self.state.legacy_screen = False
        self.state.screens[cmd.id] = Screen(cmd.id, cmd.flags, cmd.width, cmd.height, cmd.root_x,
                                            cmd.root_y, cmd.extension, base)

    def _check_backing(self, cmd: Command, offset: int) -> None:
        """SCREEN_OBJECT_2's backing store: from the GFB, page aligned, a pitch that holds a
        32 bpp scanline, inside VRAM (ignored for a deactivated screen)."""
        fifo_caps = self.ex.profile.fifo_capabilities
        if cmd.flags & SCREEN_DEACTIVATE:
            return
        if cmd.struct_size < SCREEN_OBJECT_V2_SIZE:
            if not fifo_caps & FifoCap.SCREEN_OBJECT:
                raise self.ex.fail(cmd, offset, f"struct_size {cmd.struct_size} has no backing store, "
                                                "which SCREEN_OBJECT_2 requires", E.SCREEN_BACKING)
            return
        gmr_id, ptr_offset, pitch = struct.unpack_from("<3I", cmd.extension)
        if (gmr_id, ptr_offset, pitch) == (0, 0, 0) and fifo_caps & FifoCap.SCREEN_OBJECT:
            # An all-zero backing store is none, which SCREEN_OBJECT allows (the kit's
            # screen-multimon sends one: docs/svga-kit.md 'Choices where the kit is ambiguous').
            return
        need = pitch * cmd.height
        problem = None
        if gmr_id != GMR_FRAMEBUFFER:
            problem = f"is in GMR {gmr_id:#x}, not the GFB (GMR_FRAMEBUFFER)"
        elif ptr_offset % gmr.PAGE_SIZE:
            problem = f"offset {ptr_offset} is not page aligned"
        elif pitch < cmd.width * 4:
            problem = f"pitch {pitch} is less than a 32 bpp scanline ({cmd.width * 4} bytes)"
        elif ptr_offset + need > len(self.ex.vram):
            problem = f"{need} bytes at offset {ptr_offset} run past the {len(self.ex.vram)}-byte VRAM"
        if problem is not None:
            raise self.ex.fail(cmd, offset, f"the backing store {problem}", E.SCREEN_BACKING)

    def _destroy_screen(self, cmd: Command, offset: int) -> None:
        if self.screen(cmd.screen_id) is None:
            raise self.ex.fail(cmd, offset, f"screen {cmd.screen_id} is not defined", E.SCREEN_UNDEFINED)
        self.state.screens.pop(cmd.screen_id, None)
        if cmd.screen_id == 0:
            self.state.legacy_screen = False

    # -- GMRFB and blits -----------------------------------------------------------------
    def _define_gmrfb(self, cmd: Command, offset: int) -> None:
        # A rejected DEFINE_GMRFB leaves no GMRFB: later blits fail instead of drawing stale data.
        self.state.gmrfb = None
        bpp, depth, reserved = cmd.format & 0xFF, (cmd.format >> 8) & 0xFF, cmd.format >> 16
        if reserved:
            raise self.ex.fail(cmd, offset, f"format {cmd.format:#x}: the reserved bits 16-31 must be "
                                            "zero", E.GMRFB_FORMAT)
        if (bpp, depth) not in gmr.FORMATS:
            known = ", ".join(f"{b}/{d}" for b, d in gmr.FORMATS)
            raise self.ex.fail(cmd, offset, f"format {bpp} bpp depth {depth} is not a GMRFB format "
                                            f"({known})", E.GMRFB_FORMAT)
        if cmd.gmr_id != GMR_FRAMEBUFFER and cmd.gmr_id not in self.guest.gmrs:
            raise self.ex.fail(cmd, offset, f"GMR {cmd.gmr_id:#x} is not defined", E.GMR_ACCESS)
        self.state.gmrfb = Gmrfb(cmd.gmr_id, cmd.offset, cmd.bytes_per_line, bpp, depth)

    def _annotation_fill(self, cmd: Command, offset: int) -> None:
        self.state.annotation = ("fill", (cmd.color,))

    def _annotation_copy(self, cmd: Command, offset: int) -> None:
        self.state.annotation = ("copy", (cmd.src_x, cmd.src_y, cmd.src_screen_id))

    def _geometry(self, cmd: Command, offset: int) -> tuple[Gmrfb, int, int]:
        g = self.state.gmrfb
        if g is None:
            raise self.ex.fail(cmd, offset, "no GMRFB is defined (send DEFINE_GMRFB first)")
        w, h = cmd.right - cmd.left, cmd.bottom - cmd.top
        if w < 0 or h < 0:
            raise self.ex.fail(cmd, offset, f"rectangle left={cmd.left} top={cmd.top} right={cmd.right} "
                                            f"bottom={cmd.bottom} is inverted")
        return g, w, h

    def _gmrfb_rect(self, cmd: Command, offset: int, g: Gmrfb, x: int, y: int) -> int:
        """The byte offset of GMRFB pixel (x, y), which must not be left of or above the origin."""
        if x < 0 or y < 0:
            raise self.ex.fail(cmd, offset, f"GMRFB point {x},{y} is left of or above the GMRFB's "
                                            "origin", E.GMR_ACCESS)
        return g.offset + y * g.bytes_per_line + x * gmr.bytes_per_pixel(g.bits_per_pixel)

    def _blit_gmrfb_to_screen(self, cmd: Command, offset: int) -> None:
        g, w, h = self._geometry(cmd, offset)
        if cmd.dest_screen_id == SVGA_ID_INVALID:
            left, top = cmd.left, cmd.top
        else:
            scr = self.screen(cmd.dest_screen_id)
            if scr is None:
                raise self.ex.fail(cmd, offset, f"screen {cmd.dest_screen_id} is not defined",
                                   E.SCREEN_UNDEFINED)
            left, top = scr.root_x + cmd.left, scr.root_y + cmd.top
        # This blit consumes the pending annotation (a hint: the model draws the blit's data).
        self.state.last_annotation, self.state.annotation = self.state.annotation, None
        if w == 0 or h == 0:
            return
        start = self._gmrfb_rect(cmd, offset, g, cmd.src_x, cmd.src_y)
        try:
            raw = self.guest.read_rect(g.gmr_id, start, g.bytes_per_line,
                                       w * gmr.bytes_per_pixel(g.bits_per_pixel), h)
        except gmr.GmrError as e:
            raise self.ex.fail(cmd, offset, f"GMRFB source {cmd.src_x},{cmd.src_y} {w}x{h}: {e}",
                               E.GMR_ACCESS) from None
        words = gmr.decode(raw, g.bits_per_pixel, g.depth)
        for scr in self.all():
            self.write(scr, left, top, words)
        self.state.damage.append((left, top, w, h))

    def _blit_screen_to_gmrfb(self, cmd: Command, offset: int) -> None:
        g, w, h = self._geometry(cmd, offset)
        if cmd.src_screen_id == SVGA_ID_INVALID:
            raise self.ex.fail(cmd, offset, "the source screen is SVGA_ID_INVALID: screen-to-GMRFB blits "
                                            "take exactly one screen (no virtual coordinates)",
                               E.SCREEN_UNDEFINED)
        scr = self.screen(cmd.src_screen_id)
        if scr is None:
            raise self.ex.fail(cmd, offset, f"screen {cmd.src_screen_id} is not defined", E.SCREEN_UNDEFINED)
        if not (0 <= cmd.left and 0 <= cmd.top and cmd.right <= scr.width and cmd.bottom <= scr.height):
            raise self.ex.fail(cmd, offset, f"rectangle {cmd.left},{cmd.top} {w}x{h} is outside screen "
                                            f"{scr.id} ({scr.width}x{scr.height}); screen-to-GMRFB blits "
                                            "are not clipped", E.RECT_OUTSIDE)
        if w == 0 or h == 0:
            return
        start = self._gmrfb_rect(cmd, offset, g, cmd.dest_x, cmd.dest_y)
        data = gmr.encode(self.read(scr, cmd.left, cmd.top, w, h), g.bits_per_pixel, g.depth)
        try:
            self.guest.write_rect(g.gmr_id, start, g.bytes_per_line, data)
        except gmr.GmrError as e:
            raise self.ex.fail(cmd, offset, f"GMRFB destination {cmd.dest_x},{cmd.dest_y} {w}x{h}: {e}",
                               E.GMR_ACCESS) from None

    # -- GMR2 ------------------------------------------------------------------------------
    def _define_gmr2(self, cmd: Command, offset: int) -> None:
        try:
            self.guest.define2(cmd.gmr_id, cmd.num_pages)
        except gmr.GmrError as e:
            raise self.ex.fail(cmd, offset, str(e), E.GMR_ACCESS) from None

    def _remap_gmr2(self, cmd: Command, offset: int) -> None:
        flags, n = cmd.flags, cmd.num_pages
        wide = bool(flags & REMAP_GMR2_PPN64)
        entries = 1 if flags & REMAP_GMR2_SINGLE_PPN else n
        try:
            if flags & REMAP_GMR2_VIA_GMR:
                list_gmr, list_offset = struct.unpack_from("<2I", cmd.pages)
                raw = self.guest.read_rect(list_gmr, list_offset, 0, entries * (8 if wide else 4), 1)[0]
            else:
                raw = np.frombuffer(cmd.pages, dtype=np.uint8)
            ppns = [int(v) for v in np.frombuffer(raw.tobytes(), dtype="<u8" if wide else "<u4")[:entries]]
            if flags & REMAP_GMR2_SINGLE_PPN:
                ppns = ppns * n
            self.guest.remap2(cmd.gmr_id, cmd.offset_pages, ppns)
        except gmr.GmrError as e:
            raise self.ex.fail(cmd, offset, str(e), E.GMR_ACCESS) from None
