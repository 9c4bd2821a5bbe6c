"""QA layer: os-autoinst's needle matcher (tinycv), reproduced with numpy.

What a needle check computes, step by step as docs/openqa.md 'How tinycv matches an area'
describes it:

1. exclude areas are painted pure green (0, 255, 0) in both the screenshot and the needle
   image (docs/openqa.md 'Exclude areas');
2. both images become grey (OpenCV's fixed-point BGR->grey weights) and are blurred with a
   3x3 Gaussian (weights 1-2-1 each way, rounded), docs/openqa.md 'The grey, blurred images';
3. for each match area, the sum of squared differences (SSD) between the needle's area and
   the screenshot at every offset within the margin is computed (exactly, in integers: an
   FFT correlation rounded, plus window sums); tinycv then picks, among the offsets whose
   SSD is within 10 of the lowest, the one nearest to a reference point (its sort has an
   offset bug that this module reproduces: docs/openqa.md 'Which offset wins');
4. the similarity is ``0.9 + (40 - MSE) / 380`` clipped to 0..1, MSE = SSD / pixels; an area
   passes when similarity >= match / 100, a needle when every match area passes.

OCR areas are not checked (os-autoinst hands them to tesseract); they are reported as such.

Speed (bench/qa.py times it beside tinycv): each FFT side is padded to a length with no
prime factor above 11, the 2-D transforms skip the template's zero rows and the rows not
kept, and a needle's match areas are searched in threads (numpy's FFTs and array
arithmetic run without the GIL). None of it changes a value: every SSD is exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from svga.qa.needle import Area, Needle

EXCLUDE_RGB = (0, 255, 0)
"""tinycv's replacerect colour (docs/openqa.md 'Exclude areas')."""
NEAR = 10.0
"""Offsets whose SSD is within this of the best one are all candidates (minVec)."""


@dataclass(frozen=True)
class AreaResult:
    area: Area
    similarity: float | None
    """0..1; None for an ocr area (not checked)."""
    x: int
    y: int
    """Where the area was found (its top-left corner in the screenshot)."""
    passed: bool | None
    """None for an ocr area."""

    @property
    def checked(self) -> bool:
        return self.area.type == "match"

    def as_dict(self) -> dict:
        a = self.area
        return {"type": a.type, "xpos": a.x, "ypos": a.y, "width": a.width, "height": a.height,
                "match": a.match, "margin": a.margin,
                "similarity": self.similarity, "found": None if not self.checked else [self.x, self.y],
                "result": "not checked" if not self.checked else ("ok" if self.passed else "fail")}


@dataclass(frozen=True)
class NeedleResult:
    needle: Needle
    areas: tuple[AreaResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.areas if r.checked)


# -- preparation ---------------------------------------------------------------------------
def paint_excludes(rgb: np.ndarray, areas: list[Area]) -> np.ndarray:
    """A copy of ``rgb`` with every exclude area inside it painted tinycv's green (areas not
    wholly inside are left alone, as tinycv's replacerect does)."""
    out = rgb.copy()
    h, w = rgb.shape[:2]
    for a in areas:
        if a.type != "exclude" or a.width <= 0 or a.height <= 0:
            continue
        if a.x < 0 or a.y < 0 or a.x + a.width > w or a.y + a.height > h:
            continue
        out[a.y: a.y + a.height, a.x: a.x + a.width] = EXCLUDE_RGB
    return out


def grey(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit BGR->grey: (9798 R + 19235 G + 3735 B + 16384) >> 15, as uint8
    (docs/openqa.md 'The grey, blurred images')."""
    # In float32, exactly: every product and sum is a whole number below 2^24, and the
    # division by 2^15 is exact too, so truncating gives the shift's result.
    weighted = rgb.astype(np.float32) @ _GREY_WEIGHTS
    return ((weighted + 16384) * (1 / 32768)).astype(np.uint8)


_GREY_WEIGHTS = np.array([9798, 19235, 3735], dtype=np.float32)


def prepared(rgb: np.ndarray, x0: int, y0: int, x1: int, y1: int, half_up_from: int) -> np.ndarray:
    """The grey, 3x3-Gaussian-blurred image over [x0, x1) x [y0, y1), as int32. The blur reads
    the pixels around the rectangle from the whole image; at the image's own edges it
    mirrors without repeating the edge pixel (OpenCV's default border). The blurred value
    is the weighted sum / 16, rounded half to even left of image column ``half_up_from`` and
    half up from it on (OpenCV's code paths: docs/openqa.md 'The grey, blurred images';
    :meth:`PrepCache.request` gives the column)."""
    h, w = rgb.shape[:2]
    gx0, gy0, gx1, gy1 = max(x0 - 1, 0), max(y0 - 1, 0), min(x1 + 1, w), min(y1 + 1, h)
    g = grey(rgb[gy0:gy1, gx0:gx1]).astype(np.int32)
    pad = ((1 if y0 == 0 else 0, 1 if y1 == h else 0), (1 if x0 == 0 else 0, 1 if x1 == w else 0))
    if any(p for pair in pad for p in pair):
        g = np.pad(g, pad, mode="reflect" if min(h, w) > 1 else "edge")
    horiz = g[:, :-2] + 2 * g[:, 1:-1] + g[:, 2:]
    both = horiz[:-2] + 2 * horiz[1:-1] + horiz[2:]
    up = (both + 8) >> 4
    split = min(max(half_up_from - x0, 0), x1 - x0)
    if split == 0:
        return up
    # Half to even: a remainder of exactly 8 rounds up only when the quotient is odd, which
    # adding 7 plus the quotient's low bit before the shift does (the sums are >= 0).
    left = both[:, :split]
    up[:, :split] = (left + 7 + ((left >> 4) & 1)) >> 4
    return up


class PrepCache:
    """tinycv's per-image cache of its grey, blurred copy (docs/openqa.md 'The grey, blurred
    images'): the region blurred is the bounding box of every region asked for so far, the
    whole image once that box covers half of it; a request inside the current region reuses
    it. :meth:`request` gives, for the region in force, the first image column that OpenCV
    rounds half up: 0 for the whole image, else the last (width mod 4) columns of the region."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.roi: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1
        self.whole = False

    def request(self, x0: int, y0: int, x1: int, y1: int) -> int:
        if self.roi is not None:
            rx0, ry0, rx1, ry1 = self.roi
            if rx0 <= x0 and ry0 <= y0 and x1 <= rx1 and y1 <= ry1:
                return self._half_up_from()
            x0, y0 = min(x0, rx0), min(y0, ry0)
            x1, y1 = max(x1, rx1), max(y1, ry1)
        if self.width * self.height * 0.5 <= (x1 - x0) * (y1 - y0):
            x0, y0, x1, y1 = 0, 0, self.width, self.height
        self.roi = (x0, y0, x1, y1)
        self.whole = self.roi == (0, 0, self.width, self.height)
        return self._half_up_from()

    def _half_up_from(self) -> int:
        assert self.roi is not None
        if self.whole:
            return 0
        rx0, _, rx1, _ = self.roi
        return rx1 - (rx1 - rx0) % 4


# -- search ----------------------------------------------------------------------------------
def _fast_lengths(limit: int) -> np.ndarray:
    """Every length up to ``limit`` with no prime factor above 11 (the factors pocketfft
    has its own passes for), sorted."""
    out = [1]
    for prime in (2, 3, 5, 7, 11):
        grown = []
        for n in out:
            while n <= limit:
                grown.append(n)
                n *= prime
        out = grown
    return np.array(sorted(out))


_FAST = _fast_lengths(1 << 16)


def fast_len(n: int) -> int:
    """The smallest length >= n with no prime factor above 11 (n itself past 65536)."""
    i = int(np.searchsorted(_FAST, n))
    return int(_FAST[i]) if i < len(_FAST) else n


def template_terms(templ: np.ndarray, fh: int, fw: int) -> tuple[float, np.ndarray]:
    """The template's half of :func:`ssd_map` for an FFT of fh x fw: its sum of squares and
    the conjugate of its 2-D spectrum (the transform along x skips the zero rows)."""
    t = templ.astype(np.float64)
    spec = np.fft.fft(np.fft.rfft(t, fw, axis=1), fh, axis=0)
    np.conjugate(spec, out=spec)
    # A plain sum, exact in int64 (np.dot would go to BLAS, whose threads cost far more
    # than this sum on a busy machine).
    wide = templ.astype(np.int64)
    return float(np.einsum("ij,ij->", wide, wide)), spec


def fft_shape(scene_shape: tuple[int, int]) -> tuple[int, int]:
    """The FFT size :func:`ssd_map` uses for a scene: each side padded to a fast length."""
    return fast_len(scene_shape[0]), fast_len(scene_shape[1])


def ssd_map(scene: np.ndarray, templ: np.ndarray,
            terms: tuple[float, np.ndarray] | None = None) -> np.ndarray:
    """Exact sum of squared differences of ``templ`` at every offset inside ``scene`` (both
    int32 grey), as int64 of shape (H - h + 1, W - w + 1). ``terms``: the template's
    :func:`template_terms` for :func:`fft_shape` of the scene, if already known.

    Every term is a whole number below 2^53, so float64 holds each exactly: the window sums
    of scene^2 (a summed-area table), the template's sum of squares, and the correlation,
    which an FFT gives to well within 0.5 and rounding makes exact."""
    sh, sw = scene.shape
    th, tw = templ.shape
    s = scene.astype(np.float64)
    rh, rw = sh - th + 1, sw - tw + 1
    # Window sums of scene^2: running sums down the columns give the th-row sums, running
    # sums of those along the rows the th x tw window sums.
    down = np.cumsum(s * s, axis=0)
    rows = down[th - 1:].copy()
    rows[1:] -= down[:-th]
    across = np.cumsum(rows, axis=1)
    win = across[:, tw - 1:].copy()
    win[:, 1:] -= across[:, :-tw]
    if rh * rw <= 64:
        t = templ.astype(np.float64)
        t2 = float(np.dot(t.ravel(), t.ravel()))
        cross = np.empty((rh, rw))
        for dy in range(rh):
            for dx in range(rw):
                cross[dy, dx] = np.dot(s[dy: dy + th, dx: dx + tw].ravel(), t.ravel())
    else:
        # The circular correlation at offset (dy, dx) sums t[i, j] * s[i + dy, j + dx]
        # with no wrap-around for every offset kept, whatever the FFT size at least the
        # scene's: each side is padded to a length pocketfft transforms fast. The 2-D
        # transforms are done one axis at a time so that only the rh rows kept are
        # transformed back along x.
        fh, fw = fft_shape((sh, sw))
        t2, tspec = terms if terms is not None else template_terms(templ, fh, fw)
        spec = np.fft.rfft2(s, (fh, fw))
        spec *= tspec
        back = np.fft.ifft(spec, axis=0)[:rh]
        cross = np.rint(np.fft.irfft(back, fw, axis=1)[:, :rw])
    win -= 2 * cross
    win += t2
    return win.astype(np.int64)


def choose_offset(ssd: np.ndarray, centre: tuple[int, int], ref: tuple[int, int]) -> tuple[int, int]:
    """tinycv's choice among the SSD map's offsets (docs/openqa.md 'Which offset wins'):
    the candidates are those within NEAR of the best value found in row-major order from the
    first occurrence of the minimum on (or all those within NEAR of the original position's
    value when nothing beats it); the winner is the candidate nearest ``ref`` (earliest in
    row-major order on a tie). Returns (dx, dy) in the map."""
    flat = ssd.ravel()
    sse = int(ssd[centre[1], centre[0]])
    low = int(flat.min())
    if low < sse:
        first = int(np.argmin(flat))
        cand = np.nonzero(flat[first:] <= low + NEAR)[0] + first
    else:
        cand = np.nonzero(flat <= sse + NEAR)[0]
    ys, xs = np.divmod(cand, ssd.shape[1])
    dist = (xs - ref[0]) ** 2 + (ys - ref[1]) ** 2
    best = int(np.argmin(dist))  # first minimum: the earliest in row-major order
    return int(xs[best]), int(ys[best])


def similarity_of(sse: int, pixels: int) -> float:
    """tinycv's mapping of a mean squared error to 0..1 (MSE 2 -> 1, MSE 40 -> 0.9)."""
    sim = 0.9 + (40 - sse / pixels) / 380
    return min(max(sim, 0.0), 1.0)


class NeedleTemplates:
    """What os-autoinst keeps of a needle from one check to the next: needle.pm caches a
    needle's image, and tinycv keeps that image's grey, blurred copy with it (docs/openqa.md
    'The grey, blurred images'). Here: the needle image with its excludes painted, its blur
    cache (:class:`PrepCache`, carried from check to check as tinycv carries it), and for
    each area the grey, blurred template and its FFT terms. :func:`match_needle` makes a fresh
    one for each check unless given one; give the same one to every check of one needle
    (os-autoinst's way: bench/qa.py times both), and do not change the needle image meanwhile."""

    def __init__(self, needle: Needle, needle_rgb: np.ndarray) -> None:
        excludes = needle.of_type("exclude")
        self.needle, self.source = needle, needle_rgb
        self.image = paint_excludes(needle_rgb, excludes) if excludes else needle_rgb
        self.cache = PrepCache(self.image.shape[1], self.image.shape[0])
        self._templates: dict[tuple, np.ndarray] = {}
        self._terms: dict[tuple, tuple[float, np.ndarray]] = {}

    def template(self, rect: tuple[int, int, int, int], half_up: int) -> np.ndarray:
        key = (rect, half_up)
        got = self._templates.get(key)
        if got is None:
            x, y, w, h = rect
            got = self._templates[key] = prepared(self.image, x, y, x + w, y + h, half_up)
        return got

    def terms(self, rect: tuple[int, int, int, int], half_up: int, shape: tuple[int, int]
              ) -> tuple[float, np.ndarray]:
        key = (rect, half_up, shape)
        got = self._terms.get(key)
        if got is None:
            got = self._terms[key] = template_terms(self.template(rect, half_up), *shape)
        return got


def _plan_search(scene_rgb: np.ndarray, templates: NeedleTemplates, area: Area, margin: int,
                 scene_cache: PrepCache) -> Callable[[], tuple[float, int, int]]:
    """tinycv's search_needle for one area, in two halves: this one, run for the areas in
    order, takes tinycv's blur state from the caches (which carry it from one area of a
    needle to the next); the function it returns gives (similarity, x, y) of ``area`` of
    the needle image searched in the screenshot within ``margin`` pixels, touching nothing
    shared but the templates' memo, so the areas of a needle can be searched at once. The
    screenshot already has its excludes painted."""
    h, w = scene_rgb.shape[:2]
    x, y, aw, ah = area.rect
    if x < 0 or y < 0 or y + ah > h or x + aw > w:
        return lambda: (0.0, 0, 0)
    sx, sy = max(0, x - margin), max(0, y - margin)
    ex, ey = min(w, x + aw + margin), min(h, y + ah + margin)
    scene_half_up = scene_cache.request(sx, sy, ex, ey)
    needle_half_up = templates.cache.request(x, y, x + aw, y + ah)

    def search() -> tuple[float, int, int]:
        scene = prepared(scene_rgb, sx, sy, ex, ey, scene_half_up)
        templ = templates.template(area.rect, needle_half_up)
        shape = fft_shape(scene.shape)
        ssd = ssd_map(scene, templ, templates.terms(area.rect, needle_half_up, shape))
        centre = (x - sx, y - sy)
        if ssd[centre[1], centre[0]] == 0:
            return 1.0, x, y
        # tinycv sorts the candidates by distance to (x, y) although they are relative to
        # the search window's corner (docs/openqa.md 'Which offset wins').
        dx, dy = choose_offset(ssd, centre, (x, y))
        return similarity_of(int(ssd[dy, dx]), aw * ah), sx + dx, sy + dy

    return search


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """Threads for searching a needle's areas at once (numpy's FFTs and array arithmetic
    run without the GIL), one per CPU, started on first use."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 4), thread_name_prefix="svga-needle")
    return _POOL


def effective_margin(area: Area, search_ratio: float = 0.0) -> int:
    """tinycv.pm's margin: int(margin + search_ratio * (1024 - margin))."""
    return int(area.margin + search_ratio * (1024 - area.margin))


def match_needle(actual: np.ndarray, needle: Needle, needle_rgb: np.ndarray,
                 search_ratio: float = 0.0, templates: NeedleTemplates | None = None) -> NeedleResult:
    """Check a screenshot against a needle as os-autoinst's tinycv.pm ``search_`` does.
    ``templates``: the needle's :class:`NeedleTemplates` kept from earlier checks (else a
    fresh one: the needle is prepared as for its first check)."""
    if templates is None:
        templates = NeedleTemplates(needle, needle_rgb)
    elif templates.needle is not needle or templates.source is not needle_rgb:
        raise ValueError("these NeedleTemplates were made for another needle or needle image")
    excludes = needle.of_type("exclude")
    scene = paint_excludes(actual, excludes) if excludes else actual
    scene_cache = PrepCache(scene.shape[1], scene.shape[0])
    searches = [_plan_search(scene, templates, a, effective_margin(a, search_ratio), scene_cache)
                for a in needle.areas if a.type == "match"]
    if len(searches) > 1 and (os.cpu_count() or 1) > 1:
        found = iter(list(_pool().map(lambda search: search(), searches)))
    else:
        found = iter([search() for search in searches])
    results = []
    for area in needle.areas:
        if area.type == "match":
            sim, fx, fy = next(found)
            results.append(AreaResult(area, sim, fx, fy, not sim < area.match / 100))
        elif area.type == "ocr":
            results.append(AreaResult(area, None, area.x, area.y, None))
    return NeedleResult(needle, tuple(results))
