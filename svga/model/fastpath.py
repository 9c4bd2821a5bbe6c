"""Model layer: the FIFO engine's fast path for the small 2D commands.

Replays, differential streams and QA suites send mostly UPDATE, RECT_FILL and RECT_COPY. The
strict path (:mod:`svga.model.engine` with :mod:`svga.model.executor`) decodes each into a
:class:`svga.commands.Command` and checks it step by step; this module runs the same three
commands straight from the FIFO words, with the checks those steps make on them reduced to
what they amount to for one FIFO run:

- whether the profile offers the command (asked of the profile once a run, not per command);
- the rectangle (both for RECT_COPY) inside the target: the mode's framebuffer, or QEMU's
  display surface of the last refresh (quirk ``stale-surface``);
- every field of the three commands is unsigned, so only the right and bottom edges can be
  outside.

The pixels are written through one (height, width) uint32 view of the target kept for the
run (:func:`svga.model.raster.words` is the strict path's equivalent), and the effects beside
the pixels are the strict handlers', in their order: the damage rectangle, the copy to the
Screen Objects the rectangle intersects, QEMU's redraw queue while its placeholder surface is
shown (quirk ``placeholder-shows-only-updates``), the count of executed commands.

Anything else goes to the strict path, one command at a time, which then reports it exactly
as it always does: another command, a rectangle that fails a check (the error, or for UPDATE
the note and the clipped or full-surface damage), a command cut by NEXT_CMD, a fill or copy
while QEMU's surface is not the mode (the stale-surface note), a target that does not lie
wholly in VRAM, and every run of a model with an observer (``svga check``). The engine
switches the fast path off with ``fast=False`` (:class:`svga.model.transport.ModelTransport`),
which is how tests compare the two (tests/test_model_fastpath.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from svga.commands import Cmd
from svga.facts.profiles import Profile
from svga.facts.qemu import Q
from svga.model.executor import FB_OFFSET, Executor
from svga.model.raster import BYTES_PER_PIXEL
from svga.model.state import DeviceState

MAX_WORDS = 7
"""The longest command the fast path runs (RECT_COPY: the id and six fields)."""
CHUNK_WORDS = 2048
"""FIFO words turned into Python ints at a time."""

_UPDATE, _FILL, _COPY = int(Cmd.UPDATE), int(Cmd.RECT_FILL), int(Cmd.RECT_COPY)


class FastPath:
    """The fast path of one model device. :meth:`begin` once a FIFO run says whether it may
    run at all; :meth:`run` then takes as many commands as it can from a list of words."""

    def __init__(self, profile: Profile, state: DeviceState, executor: Executor, vram: np.ndarray) -> None:
        self.state = state
        self.executor = executor
        self.vram = vram
        self._vram32 = vram[: len(vram) // BYTES_PER_PIXEL * BYTES_PER_PIXEL].view("<u4")
        self._offers = {ext: tuple(profile.offers(c, ext) for c in (_UPDATE, _FILL, _COPY))
                        for ext in (False, True)}
        self._stale = profile.quirk(Q.STALE_SURFACE) is not None
        row = profile.quirk(Q.PLACEHOLDER_UPDATES)
        self._redraw_limit = int(row.value) if row is not None else None  # type: ignore[call-overload]
        self._view_key: tuple[int, int, int, int] | None = None
        self._view = np.zeros((0, 0), dtype="<u4")
        self.update_ok = self.fill_ok = self.copy_ok = False
        self.width = self.height = 0

    # -- once a run ----------------------------------------------------------------------------
    def begin(self, extended_active: bool) -> bool:
        """Set up for one FIFO run; False if the fast path must not run in it."""
        ex, st = self.executor, self.state
        base, stride, width, height = ex.target_geometry()
        if not self._view_for(base, stride, width, height):
            return False
        if not _lies_in(len(self.vram), FB_OFFSET, st.bytes_per_line, st.width, st.height):
            return False  # UPDATE may copy it to Screen Objects, which would fail half-way
        self.width, self.height = width, height
        update, fill, copy = self._offers[extended_active]
        if self._stale and (st.surface.width, st.surface.height) != (st.width, st.height):
            fill = copy = False  # the strict path notes the stale surface
        self.update_ok, self.fill_ok, self.copy_ok = update, fill, copy
        return update or fill or copy

    def _view_for(self, base: int, stride: int, width: int, height: int) -> bool:
        """Keep a (height, width) uint32 view of the target; False if there can be none."""
        key = (base, stride, width, height)
        if key == self._view_key:
            return True
        if width <= 0 or height <= 0:
            self._view = np.zeros((max(height, 0), max(width, 0)), dtype="<u4")
        else:
            if base % BYTES_PER_PIXEL or stride % BYTES_PER_PIXEL or (height > 1 and stride < width * 4):
                return False
            if not _lies_in(len(self.vram), base, stride, width, height):
                return False
            self._view = as_strided(self._vram32[base // BYTES_PER_PIXEL:], shape=(height, width),
                                    strides=(stride, BYTES_PER_PIXEL))
        self._view_key = key
        return True

    def _queue(self, x: int, y: int, w: int, h: int) -> None:
        """Executor.queue_redraw while the placeholder is shown (the quirk row is there)."""
        st = self.state
        if len(st.redraw) >= self._redraw_limit:  # type: ignore[operator]
            self.executor.flush_redraw()
        st.redraw.append((x, y, w, h))

    # -- the commands --------------------------------------------------------------------------
    def run(self, words: list[int], p: int, room: int) -> tuple[int, int, bool]:
        """Run commands from ``words[p:]``, at most ``room`` of them, until one the fast path
        does not take. Returns the index it stopped at, the number run, and whether it stopped
        because ``words`` ended (else the command at the index is the strict path's)."""
        st = self.state
        end = len(words)
        tw, th, fb = self.width, self.height, self._view
        # A command id the profile does not offer now never matches (-1 is no word's value).
        update_id = _UPDATE if self.update_ok else -1
        fill_id = _FILL if self.fill_ok else -1
        copy_id = _COPY if self.copy_ok else -1
        damage = st.damage.append
        gfb: Callable[[int, int, int, int], None] | None = (
            self.executor.screens.gfb_changed if st.screens else None)
        queue = self._queue if self._redraw_limit is not None and st.placeholder is not None else None
        extra = gfb is not None or queue is not None
        done = n_fill = n_copy = 0
        at_end = False
        try:
            while done < room:
                if p >= end:
                    at_end = True
                    break
                cid = words[p]
                if cid == update_id:
                    q = p + 5
                    if q > end:
                        at_end = True
                        break
                    x, y, w, h = words[p + 1: q]
                    if x + w > tw or y + h > th:
                        break
                    if extra:
                        if queue is not None:
                            queue(x, y, w, h)
                        damage((x, y, w, h))
                        if gfb is not None:
                            gfb(x, y, w, h)
                    else:
                        damage((x, y, w, h))
                elif cid == fill_id:
                    q = p + 6
                    if q > end:
                        at_end = True
                        break
                    color, x, y, w, h = words[p + 1: q]
                    if x + w > tw or y + h > th:
                        break
                    if w and h:
                        fb[y: y + h, x: x + w] = color
                    damage((x, y, w, h))
                    if extra:
                        if gfb is not None:
                            gfb(x, y, w, h)
                        if queue is not None:
                            queue(x, y, w, h)
                    n_fill += 1
                elif cid == copy_id:
                    q = p + 7
                    if q > end:
                        at_end = True
                        break
                    sx, sy, x, y, w, h = words[p + 1: q]
                    if sx + w > tw or sy + h > th or x + w > tw or y + h > th:
                        break
                    if w and h:
                        # numpy copies through a temporary when the rectangles overlap.
                        fb[y: y + h, x: x + w] = fb[sy: sy + h, sx: sx + w]
                    damage((x, y, w, h))
                    if extra:
                        if gfb is not None:
                            gfb(x, y, w, h)
                        if queue is not None:
                            queue(x, y, w, h)
                    n_copy += 1
                else:
                    break
                p = q
                done += 1
        finally:
            counts = st.counts
            n_update = done - n_fill - n_copy
            if n_update:
                counts["UPDATE"] += n_update
            if n_fill:
                counts["RECT_FILL"] += n_fill
            if n_copy:
                counts["RECT_COPY"] += n_copy
        return p, done, at_end


def _lies_in(size: int, base: int, stride: int, width: int, height: int) -> bool:
    """Whether a width x height rectangle at ``base`` with ``stride`` lies in ``size`` bytes."""
    if width <= 0 or height <= 0:
        return True
    return base >= 0 and stride >= 0 and base + (height - 1) * stride + width * BYTES_PER_PIXEL <= size
