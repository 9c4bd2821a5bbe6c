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
(quirk ``placeholder-shows-only-updates``). Screen Objects, the GMRFB, blits and GMRs are in
:mod:`svga.model.screens`: UPDATE, fills and copies also copy their rectangle of the GFB to the
screens it intersects, and an UPDATE partly outside the mode is clipped to it with a note on a
kit device (docs/svga-kit.md 'Choices where the kit is ambiguous').
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from svga.commands import ROP_COPY, Cmd, Command
from svga.errors import ModelError
from svga.facts.effects import E
from svga.facts.profiles import Profile
from svga.facts.qemu import CursorLimits, Q
from svga.model import cursor as cursors
from svga.model import raster
from svga.model.gmr import PAGE_SIZE, GuestMemory
from svga.model.report import Reporter
from svga.model.screens import ScreenObjects
from svga.model.state import DeviceState
from svga.registers import FifoReg

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

    fail = staticmethod(fail)

    def __init__(self, profile: Profile, state: DeviceState, vram: np.ndarray,
                 set_fifo_reg: Callable[[int, int], bool], reporter: Reporter | None = None,
                 guest: GuestMemory | None = None) -> None:
        self.profile = profile
        self.state = state
        self.vram = vram
        self.guest = guest if guest is not None else GuestMemory(PAGE_SIZE, vram)
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
        }
        self.screens = ScreenObjects(self)
        self._handlers.update(self.screens.handlers())
        self._stale = profile.quirk(Q.STALE_SURFACE) is not None

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

    def target_geometry(self) -> tuple[int, int, int, int]:
        """(base, stride, width, height) of :meth:`target`, without its description."""
        if self._stale:
            s = self.state.surface
            return 0, s.stride, s.width, s.height
        st = self.state
        return FB_OFFSET, st.bytes_per_line, st.width, st.height

    def target(self) -> Target:
        """The mode's framebuffer, or QEMU's display surface of the last refresh."""
        if self._stale:
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
            # svga_reg.h: UPDATE copies the GFB "to any screens which intersect" the rectangle:
            # what lies outside the mode is dropped (docs/svga-kit.md 'Choices where the kit is
            # ambiguous').
            self.reporter.note(E.RECT_OUTSIDE, f"rectangle {_rect_text(x, y, w, h)} is outside {t.what}: "
                               "only the part inside it is copied", cmd.name, offset)
            x1, y1 = min(x + w, t.width), min(y + h, t.height)
            x, y = min(x, t.width), min(y, t.height)
            w, h = max(x1 - x, 0), max(y1 - y, 0)
        self.state.damage.append((x, y, w, h))
        self.screens.gfb_changed(x, y, w, h)

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
        self.screens.gfb_changed(x, y, w, h)
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
        self.screens.gfb_changed(cmd.dest_x, cmd.dest_y, w, h)
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
                self._check_cursor_id(cmd, offset)
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

    def _check_cursor_id(self, cmd: Command, offset: int) -> None:
        # svga_reg.h: the cursor id is "Reserved, must be zero" (QEMU ignores it).
        if cmd.id != 0:
            raise fail(cmd, offset, f"cursor id {cmd.id}: the id is reserved and must be zero")

    def _define_alpha_cursor(self, cmd: Command, offset: int) -> None:
        self._check_cursor_id(cmd, offset)
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
