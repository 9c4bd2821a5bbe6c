"""Model layer: what each FIFO command does to the device.

The FIFO engine (:mod:`svga.model.engine`) decodes a command with the one command table
(:mod:`svga.commands`), checks that the profile offers it, and hands it here with its FIFO
byte offset. Each handler checks its arguments strictly and raises
:class:`svga.errors.ModelError` ("NAME at FIFO offset N: what is wrong") instead of
clipping, then draws with :mod:`svga.model.raster`.

Where fills, copies and updates land is the *target*: the mode's framebuffer (VRAM at
FB_OFFSET, BYTES_PER_LINE stride) or, with QEMU's stale-surface quirk, the display
surface of the last refresh; while that surface is still QEMU's 640x480 placeholder, the
rectangles of UPDATE, fills and copies are also queued for the refresh to copy into it
(quirk ``placeholder-shows-only-updates``). Screen Objects are bookkeeping: every screen
shows the framebuffer, offset by its root, and screen 0 always exists as the legacy screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from svga.commands import GMR_FRAMEBUFFER, ROP_COPY, SCREEN_IS_PRIMARY, SCREEN_MUST_BE_SET, Cmd, Command
from svga.errors import ModelError
from svga.facts.effects import E
from svga.facts.profiles import Profile
from svga.facts.qemu import CursorLimits, Q
from svga.model import cursor as cursors
from svga.model import raster
from svga.model.report import Reporter
from svga.model.state import DeviceState, Gmrfb, Screen
from svga.registers import SVGA_ID_INVALID, FifoReg

log = logging.getLogger(__name__)

FB_OFFSET = 0
"""SVGA_REG_FB_OFFSET: the model's framebuffer starts at the beginning of VRAM."""


@dataclass(frozen=True)
class Target:
    """Where fills, copies and updates land, and how error messages name it."""

    base: int
    stride: int
    width: int
    height: int
    what: str


def fail(cmd: Command, offset: int, text: str, key: E = E.MODEL_REJECTS) -> ModelError:
    return ModelError(f"{cmd.name} at FIFO offset {offset}: {text}", cmd.name, offset, key, text)


def _rect_text(x: int, y: int, w: int, h: int) -> str:
    return f"{x},{y} {w}x{h}"


def _inside(x: int, y: int, w: int, h: int, width: int, height: int) -> bool:
    return 0 <= x and 0 <= y and 0 <= w and 0 <= h and x + w <= width and y + h <= height


class Executor:
    """Runs decoded commands against the device state and VRAM."""

    def __init__(self, profile: Profile, state: DeviceState, vram: np.ndarray,
                 set_fifo_reg: Callable[[int, int], bool], reporter: Reporter | None = None) -> None:
        self.profile = profile
        self.state = state
        self.vram = vram
        self.set_fifo_reg = set_fifo_reg
        self.reporter = reporter or Reporter()
        self._handlers: dict[int, Callable[[Command, int], None]] = {
            Cmd.UPDATE: self._update,
            Cmd.UPDATE_VERBOSE: self._update,
            Cmd.RECT_FILL: self._rect_fill,
            Cmd.RECT_COPY: self._rect_copy,
            Cmd.DEFINE_CURSOR: self._define_cursor,
            Cmd.DEFINE_ALPHA_CURSOR: self._define_alpha_cursor,
            Cmd.FRONT_ROP_FILL: self._front_rop_fill,
            Cmd.FENCE: self._fence,
            Cmd.ESCAPE: self._escape,
            Cmd.DEFINE_SCREEN: self._define_screen,
            Cmd.DESTROY_SCREEN: self._destroy_screen,
            Cmd.DEFINE_GMRFB: self._define_gmrfb,
            Cmd.BLIT_GMRFB_TO_SCREEN: self._blit_gmrfb_to_screen,
            Cmd.BLIT_SCREEN_TO_GMRFB: self._blit_screen_to_gmrfb,
            Cmd.ANNOTATION_FILL: self._annotation_fill,
            Cmd.ANNOTATION_COPY: self._annotation_copy,
        }

    def execute(self, cmd: Command, offset: int) -> None:
        handler = self._handlers.get(cmd.cmd_id)
        if handler is None:
            raise fail(cmd, offset, "offered by the profile but not implemented by the model")
        handler(cmd, offset)
        self.state.counts[cmd.name] += 1

    # -- where pixels go -----------------------------------------------------------------
    def framebuffer(self) -> Target:
        st = self.state
        return Target(FB_OFFSET, st.bytes_per_line, st.width, st.height,
                      f"the {st.width}x{st.height} framebuffer")

    def target(self) -> Target:
        """The mode's framebuffer, or QEMU's display surface of the last refresh."""
        if self.profile.quirk(Q.STALE_SURFACE) is not None:
            s = self.state.surface
            return Target(0, s.stride, s.width, s.height,
                          f"the {s.width}x{s.height} display surface of the last refresh "
                          f"(QEMU adopts a new mode only when the display refreshes)")
        return self.framebuffer()

    def _check_rect(self, cmd: Command, offset: int, t: Target, x: int, y: int, w: int, h: int,
                    role: str = "rectangle") -> None:
        if not _inside(x, y, w, h, t.width, t.height):
            raise fail(cmd, offset, f"{role} {_rect_text(x, y, w, h)} is outside {t.what}", E.RECT_OUTSIDE)

    def _draw(self, cmd: Command, offset: int, action: Callable[[], None]) -> None:
        try:
            action()
        except raster.RegionError as e:
            raise fail(cmd, offset, f"the framebuffer does not fit in the {len(self.vram)}-byte "
                                    f"VRAM ({e})") from None

    # -- 2D commands -----------------------------------------------------------------------
    def _update(self, cmd: Command, offset: int) -> None:
        t = self.target()
        x, y, w, h = cmd.x, cmd.y, cmd.width, cmd.height
        self.queue_redraw(x, y, w, h)
        if not _inside(x, y, w, h, t.width, t.height):
            if self.profile.quirk(Q.UPDATE_BAD_RECT_FULL) is not None:
                self.reporter.note(E.UPDATE_BAD_RECT, f"rectangle {_rect_text(x, y, w, h)} is outside "
                                   f"{t.what}; the whole surface is updated, as QEMU does",
                                   cmd.name, offset)
                self.state.damage.append((0, 0, t.width, t.height))
                return
            raise fail(cmd, offset, f"rectangle {_rect_text(x, y, w, h)} is outside {t.what}", E.RECT_OUTSIDE)
        self.state.damage.append((x, y, w, h))

    def _note_stale(self, cmd: Command, offset: int) -> None:
        """Quirk stale-surface: a fill or copy while QEMU's surface is not the mode yet."""
        st = self.state
        s = st.surface
        if self.profile.quirk(Q.STALE_SURFACE) is not None and (s.width, s.height) != (st.width, st.height):
            self.reporter.note(E.STALE_SURFACE, f"the mode is {st.width}x{st.height} but QEMU's display "
                               f"surface is still {s.width}x{s.height} (stride {s.stride})", cmd.name, offset)

    def _rect_fill(self, cmd: Command, offset: int) -> None:
        self._note_stale(cmd, offset)
        t = self.target()
        x, y, w, h = cmd.x, cmd.y, cmd.width, cmd.height
        self._check_rect(cmd, offset, t, x, y, w, h)
        self._draw(cmd, offset, lambda: raster.fill(self.vram, t.base, t.stride, x, y, w, h, cmd.color))
        self.state.damage.append((x, y, w, h))
        self.queue_redraw(x, y, w, h)

    def _rect_copy(self, cmd: Command, offset: int) -> None:
        self._note_stale(cmd, offset)
        t = self.target()
        w, h = cmd.width, cmd.height
        self._check_rect(cmd, offset, t, cmd.src_x, cmd.src_y, w, h, "source")
        self._check_rect(cmd, offset, t, cmd.dest_x, cmd.dest_y, w, h, "destination")
        self._draw(cmd, offset, lambda: raster.copy(
            self.vram, (t.base, t.stride, cmd.src_x, cmd.src_y),
            (t.base, t.stride, cmd.dest_x, cmd.dest_y), w, h))
        self.state.damage.append((cmd.dest_x, cmd.dest_y, w, h))
        self.queue_redraw(cmd.dest_x, cmd.dest_y, w, h)

    # -- QEMU's placeholder surface (quirk placeholder-shows-only-updates) -----------------
    def queue_redraw(self, x: int, y: int, w: int, h: int) -> None:
        """Queue a rectangle for the next refresh, as QEMU does for every UPDATE, fill and
        copy. Only the placeholder surface needs it: a surface made from VRAM shows VRAM."""
        st = self.state
        row = self.profile.quirk(Q.PLACEHOLDER_UPDATES)
        if row is None or st.placeholder is None:
            return
        if len(st.redraw) >= int(row.value):  # type: ignore[call-overload]
            self.flush_redraw()  # QEMU copies a full queue early, then queues the new one
        st.redraw.append((x, y, w, h))

    def flush_redraw(self) -> None:
        """Copy the queued rectangles from VRAM into the placeholder, or drop them if the
        display was invalidated (a mode or enable write) since the last refresh."""
        st = self.state
        rects, st.redraw = st.redraw, []
        if st.invalidated or st.placeholder is None:
            return
        s = st.surface
        for x, y, w, h in rects:
            if not _inside(x, y, w, h, s.width, s.height):
                x, y, w, h = 0, 0, s.width, s.height  # QEMU's fallback: the whole surface
            if w and h:
                src = np.ascontiguousarray(raster.pixels(self.vram, 0, s.stride, x, y, w, h))
                st.placeholder[y: y + h, x: x + w] = src.view("<u4")[..., 0]

    def _front_rop_fill(self, cmd: Command, offset: int) -> None:
        # A hint that the guest has already filled this rectangle of the GFB: nothing to draw.
        self._check_rect(cmd, offset, self.framebuffer(), cmd.x, cmd.y, cmd.width, cmd.height)
        if cmd.rop != ROP_COPY:
            raise fail(cmd, offset, f"rop {cmd.rop:#x} is not SVGA_ROP_COPY (0x03)")

    # -- cursor ----------------------------------------------------------------------------
    def _define_cursor(self, cmd: Command, offset: int) -> None:
        w, h = cmd.width, cmd.height
        try:
            if self.profile.quirk(Q.CURSOR_DECODE) is not None:
                if w % 32:
                    self.reporter.note(E.CURSOR_WIDTH, f"width {w} is not a multiple of 32", cmd.name, offset)
                self._check_qemu_cursor(cmd, offset)
                image = cursors.decode_qemu(w, h, cmd.hotspot_x, cmd.hotspot_y, cmd.xor_mask_depth,
                                            cmd.and_mask, cmd.xor_mask)
            else:
                image = cursors.decode_vmware(w, h, cmd.hotspot_x, cmd.hotspot_y, cmd.and_mask_depth,
                                              cmd.xor_mask_depth, cmd.and_mask, cmd.xor_mask,
                                              self.profile.max_cursor)
        except cursors.CursorRejected as e:
            raise fail(cmd, offset, str(e), e.key) from None
        self.state.cursor = image

    def _check_qemu_cursor(self, cmd: Command, offset: int) -> None:
        row = self.profile.note(Q.CURSOR_LIMITS)
        assert row is not None and isinstance(row.value, CursorLimits)
        lim: CursorLimits = row.value
        exceeded = lim.exceeded(cmd.width, cmd.height, cmd.xor_mask_depth)
        if exceeded is not None:
            raise fail(cmd, offset, f"{exceeded}: QEMU would ignore it", E.CURSOR_LIMITS)
        if cmd.and_mask_depth != 1:
            raise fail(cmd, offset,
                       f"AND mask depth {cmd.and_mask_depth}: QEMU 7.2 reads the AND mask as 1 bpp, "
                       "so its FIFO parser would lose the command boundaries here", E.CURSOR_AND_DEPTH)

    def _define_alpha_cursor(self, cmd: Command, offset: int) -> None:
        try:
            self.state.cursor = cursors.decode_alpha(cmd.width, cmd.height, cmd.hotspot_x,
                                                     cmd.hotspot_y, cmd.image, self.profile.max_cursor)
        except cursors.CursorRejected as e:
            raise fail(cmd, offset, str(e), e.key) from None

    # -- synchronisation -------------------------------------------------------------------
    def _fence(self, cmd: Command, offset: int) -> None:
        self.state.last_fence = cmd.fence
        self.set_fifo_reg(FifoReg.FENCE, cmd.fence)

    def _escape(self, cmd: Command, offset: int) -> None:
        # Vendor escapes (video overlay, tools): consumed and ignored.
        log.debug("ESCAPE at FIFO offset %d: namespace %#x, %d bytes ignored", offset, cmd.nsid, cmd.size)

    # -- Screen Objects ----------------------------------------------------------------------
    def screen(self, screen_id: int) -> Screen | None:
        """A defined screen; screen 0 is the legacy screen (the mode) unless redefined."""
        scr = self.state.screens.get(screen_id)
        if scr is None and screen_id == 0:
            st = self.state
            scr = Screen(0, SCREEN_MUST_BE_SET | SCREEN_IS_PRIMARY, st.width, st.height, 0, 0)
        return scr

    def _define_screen(self, cmd: Command, offset: int) -> None:
        p = self.profile
        if not (1 <= cmd.width <= p.max_width and 1 <= cmd.height <= p.max_height):
            raise fail(cmd, offset, f"screen size {cmd.width}x{cmd.height} is not within "
                                    f"1x1..{p.max_width}x{p.max_height}")
        screen_id = cmd.id
        self.state.screens[screen_id] = Screen(screen_id, cmd.flags, cmd.width, cmd.height,
                                               cmd.root_x, cmd.root_y, cmd.extension)

    def _destroy_screen(self, cmd: Command, offset: int) -> None:
        if cmd.screen_id not in self.state.screens and cmd.screen_id != 0:
            raise fail(cmd, offset, f"screen {cmd.screen_id} is not defined")
        self.state.screens.pop(cmd.screen_id, None)

    def _define_gmrfb(self, cmd: Command, offset: int) -> None:
        bpp, depth = cmd.format & 0xFF, (cmd.format >> 8) & 0xFF
        if cmd.gmr_id != GMR_FRAMEBUFFER:
            raise fail(cmd, offset, f"GMR {cmd.gmr_id:#x}: the model has only GMR_FRAMEBUFFER "
                                    f"({GMR_FRAMEBUFFER:#x}, VRAM)")
        if (bpp, depth) != (32, 24):
            raise fail(cmd, offset, f"format {bpp} bpp depth {depth}: the model supports 32 bpp "
                                    "depth 24 only")
        if cmd.offset >= len(self.vram) or cmd.bytes_per_line == 0:
            raise fail(cmd, offset, f"offset {cmd.offset} / bytes_per_line {cmd.bytes_per_line} "
                                    f"do not describe an image in the {len(self.vram)}-byte VRAM")
        self.state.gmrfb = Gmrfb(cmd.gmr_id, cmd.offset, cmd.bytes_per_line, bpp, depth)

    def _annotation_fill(self, cmd: Command, offset: int) -> None:
        self.state.annotation = ("fill", (cmd.color,))

    def _annotation_copy(self, cmd: Command, offset: int) -> None:
        self.state.annotation = ("copy", (cmd.src_x, cmd.src_y, cmd.src_screen_id))

    def _blit_geometry(self, cmd: Command, offset: int, screen_id: int, virtual_ok: bool
                       ) -> tuple[Gmrfb, int, int, int, int]:
        """Check a blit's GMRFB, rectangle and screen; return (gmrfb, fb_x, fb_y, w, h)."""
        g = self.state.gmrfb
        if g is None:
            raise fail(cmd, offset, "no GMRFB is defined (send DEFINE_GMRFB first)")
        w, h = cmd.right - cmd.left, cmd.bottom - cmd.top
        if w < 0 or h < 0:
            raise fail(cmd, offset, f"rectangle left={cmd.left} top={cmd.top} right={cmd.right} "
                                    f"bottom={cmd.bottom} is inverted")
        if screen_id == SVGA_ID_INVALID and virtual_ok:
            fb_x, fb_y = cmd.left, cmd.top
        else:
            scr = self.screen(screen_id)
            if scr is None:
                raise fail(cmd, offset, f"screen {screen_id} is not defined")
            if not _inside(cmd.left, cmd.top, w, h, scr.width, scr.height):
                raise fail(cmd, offset, f"rectangle {_rect_text(cmd.left, cmd.top, w, h)} is "
                                        f"outside screen {screen_id} ({scr.width}x{scr.height})")
            fb_x, fb_y = scr.root_x + cmd.left, scr.root_y + cmd.top
        self._check_rect(cmd, offset, self.framebuffer(), fb_x, fb_y, w, h, "screen rectangle")
        return g, fb_x, fb_y, w, h

    def _check_gmrfb_rect(self, cmd: Command, offset: int, g: Gmrfb, x: int, y: int, w: int, h: int
                          ) -> None:
        if w == 0 or h == 0:
            return
        _, end = raster.region_bounds(g.offset, g.bytes_per_line, x, y, w, h)
        if x < 0 or y < 0 or end > len(self.vram):
            raise fail(cmd, offset, f"GMRFB rectangle {_rect_text(x, y, w, h)} (offset {g.offset}, "
                                    f"{g.bytes_per_line} bytes per line) is outside the "
                                    f"{len(self.vram)}-byte VRAM")

    def _blit_gmrfb_to_screen(self, cmd: Command, offset: int) -> None:
        g, fb_x, fb_y, w, h = self._blit_geometry(cmd, offset, cmd.dest_screen_id, virtual_ok=True)
        self._check_gmrfb_rect(cmd, offset, g, cmd.src_x, cmd.src_y, w, h)
        t = self.framebuffer()
        self._draw(cmd, offset, lambda: raster.copy(
            self.vram, (g.offset, g.bytes_per_line, cmd.src_x, cmd.src_y),
            (t.base, t.stride, fb_x, fb_y), w, h))
        # This blit consumes the pending annotation (a hint the model does not need).
        self.state.last_annotation, self.state.annotation = self.state.annotation, None
        self.state.damage.append((fb_x, fb_y, w, h))

    def _blit_screen_to_gmrfb(self, cmd: Command, offset: int) -> None:
        g, fb_x, fb_y, w, h = self._blit_geometry(cmd, offset, cmd.src_screen_id, virtual_ok=False)
        self._check_gmrfb_rect(cmd, offset, g, cmd.dest_x, cmd.dest_y, w, h)
        t = self.framebuffer()
        self._draw(cmd, offset, lambda: raster.copy(
            self.vram, (t.base, t.stride, fb_x, fb_y),
            (g.offset, g.bytes_per_line, cmd.dest_x, cmd.dest_y), w, h))
