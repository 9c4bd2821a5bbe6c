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

Where none of the effects beside the pixels, the damage and the counts is due (no Screen
Objects, no redraw queue), the same loop runs in C (``fastpath.c`` next to this file, built
and loaded by :mod:`svga.native`): :meth:`FastPath.run_words` hands it the run's uint32 words
in one call, it writes the pixels in place (a copy row by row in the order that makes
overlapping rectangles come out as through a temporary, as numpy's does), and this module
then adds the damage rectangles and the counts. It stops exactly where :meth:`FastPath.run`
stops, so the strict path sees the same commands; ``SVGA_NATIVE=0`` leaves the Python loop
(docs/native.md 'Same results', 'Why a compiled core').

Anything else goes to the strict path, one command at a time, which then reports it exactly
as it always does: another command, a rectangle that fails a check (the error, or for UPDATE
the note and the clipped or full-surface damage), a command cut by NEXT_CMD, a fill or copy
while QEMU's surface is not the mode (the stale-surface note), a target that does not lie
wholly in VRAM, and every run of a model with an observer (``svga check``). The engine
switches the fast path off with ``fast=False`` (:class:`svga.model.transport.ModelTransport`),
which is how tests compare the two (tests/test_model_fastpath.py).
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections.abc import Callable
from pathlib import Path

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
_OUT_N = 6
"""The int64 words the compiled core hands back (fastpath.c: the index, the number run, at_end,
the numbers of UPDATE, RECT_FILL and RECT_COPY)."""


_UNLOADED = object()
"""FastPath's core before the first FIFO run has loaded it."""
_RECT = struct.Struct("<4I")
"""One damage rectangle as the compiled core writes it (x, y, w, h; little-endian, checked)."""
SOURCE = Path(__file__).with_suffix(".c")
"""The compiled core's source, built by svga/native.py (docs/native.md 'Building')."""


def bind(lib: ctypes.CDLL) -> Callable[..., None]:
    """The entry point ``svga_fast_run`` of a library built from :data:`SOURCE` (or a copy of
    it: the tests plant bugs in one), with its argument types set."""
    fn = lib.svga_fast_run
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ptr, i64, i64, i64, ptr, i64, i64, i64, ctypes.c_int32, ptr, i64, ptr]
    fn.restype = None
    return fn  # type: ignore[no-any-return]


def load_core() -> Callable[..., None] | None:
    """The compiled core's entry point, or None: SVGA_NATIVE=0, no C compiler (NativeError with
    SVGA_NATIVE=require), or a big-endian machine (the core writes native uint32 words, the
    model's are little-endian; docs/native.md 'Same results')."""
    if sys.byteorder != "little":
        return None
    from svga import native  # here, not at import: its imports cost a start-up that draws nothing

    lib = native.load(SOURCE)
    return bind(lib) if lib is not None else None


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
        self._core: Callable[..., None] | None | object = _UNLOADED
        self._fb_ptr = vram.ctypes.data
        self._stride_px = 0
        self._out = np.zeros(_OUT_N, dtype=np.int64)
        self._out_ptr = self._out.ctypes.data
        self._damage = np.zeros((0, 4), dtype=np.uint32)
        self._damage_ptr = 0

    @property
    def core(self) -> Callable[..., None] | None:
        """The compiled core (:meth:`run_words`), loaded (built if need be) at the first FIFO
        run; None where the Python code runs alone. The tests swap it."""
        if self._core is _UNLOADED:
            self._core = load_core()
        return self._core  # type: ignore[return-value]

    @core.setter
    def core(self, fn: Callable[..., None] | None) -> None:
        self._core = fn

    # -- once a run ----------------------------------------------------------------------------
    def begin(self, extended_active: bool) -> bool:
        """Set up for one FIFO run; False if the fast path must not run in it."""
        if self._core is _UNLOADED:  # before the run, so a failed build (require) stops nothing half-way
            self._core = load_core()
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
            self._fb_ptr, self._stride_px = self.vram.ctypes.data, 0  # never written through
        else:
            if base % BYTES_PER_PIXEL or stride % BYTES_PER_PIXEL or (height > 1 and stride < width * 4):
                return False
            if not _lies_in(len(self.vram), base, stride, width, height):
                return False
            self._view = as_strided(self._vram32[base // BYTES_PER_PIXEL:], shape=(height, width),
                                    strides=(stride, BYTES_PER_PIXEL))
            self._fb_ptr, self._stride_px = self.vram.ctypes.data + base, stride // BYTES_PER_PIXEL
        self._view_key = key
        return True

    def _queue(self, x: int, y: int, w: int, h: int) -> None:
        """Executor.queue_redraw while the placeholder is shown (the quirk row is there)."""
        st = self.state
        if len(st.redraw) >= self._redraw_limit:  # type: ignore[operator]
            self.executor.flush_redraw()
        st.redraw.append((x, y, w, h))

    # -- the commands --------------------------------------------------------------------------
    def run_words(self, words: np.ndarray, p: int, room: int) -> tuple[int, int, bool] | None:
        """:meth:`run` by the compiled core, straight from the run's uint32 ``words`` (one call
        for all the commands it takes), with the same result and the same effects; None
        (nothing done) where the core must not run: there is none, or an effect beside the
        pixels, the damage and the counts is due (Screen Objects, QEMU's redraw queue), which
        :meth:`run` then does (docs/native.md 'Same results')."""
        core, st = self.core, self.state
        if core is None or st.screens or (self._redraw_limit is not None and st.placeholder is not None):
            return None
        damage = st.damage
        cap = damage.maxlen
        if not cap or words.dtype != np.uint32 or not words.flags.c_contiguous:
            return None  # the core keeps the last ``cap`` rectangles: there must be a cap
        if len(self._damage) != cap:
            self._damage = np.zeros((cap, 4), dtype=np.uint32)
            self._damage_ptr = self._damage.ctypes.data
        buf, out = self._damage, self._out
        offers = (1 if self.update_ok else 0) | (2 if self.fill_ok else 0) | (4 if self.copy_ok else 0)
        core(words.ctypes.data, len(words), p, room, self._fb_ptr, self._stride_px, self.width, self.height,
             offers, self._damage_ptr, cap, self._out_ptr)
        p, done, at_end, n_update, n_fill, n_copy = out.tolist()
        if done:
            if done <= cap:
                kept = buf[:done].tobytes()
            else:  # the k-th rectangle went to k % cap: the oldest kept one is at done % cap
                k = done % cap
                kept = buf[k:].tobytes() + buf[:k].tobytes()
            damage.extend(_RECT.iter_unpack(kept))  # (x, y, w, h) tuples of ints, as run() appends
            _count(st.counts, n_update, n_fill, n_copy)
        return p, done, bool(at_end)

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
            _count(st.counts, done - n_fill - n_copy, n_fill, n_copy)
        return p, done, at_end


def _count(counts: dict[str, int], n_update: int, n_fill: int, n_copy: int) -> None:
    """Add one run's executed commands by kind to the model's counts (both paths)."""
    if n_update:
        counts["UPDATE"] += n_update
    if n_fill:
        counts["RECT_FILL"] += n_fill
    if n_copy:
        counts["RECT_COPY"] += n_copy


def _lies_in(size: int, base: int, stride: int, width: int, height: int) -> bool:
    """Whether a width x height rectangle at ``base`` with ``stride`` lies in ``size`` bytes."""
    if width <= 0 or height <= 0:
        return True
    return base >= 0 and stride >= 0 and base + (height - 1) * stride + width * BYTES_PER_PIXEL <= size
