"""QA layer: pixel-for-pixel comparison of two screenshots (numpy).

A pixel differs when any channel differs by more than ``tolerance``; pixels under an
exclude rectangle or a black mask pixel are not compared. The comparison passes when at
most ``max_diff_pixels`` pixels differ. Sizes must agree (a screenshot of another mode is
bad input, not a difference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svga.qa.errors import BadInput


@dataclass(frozen=True)
class PixelResult:
    differ: np.ndarray
    """(h, w) bool: the pixels that differ (never under an exclude or the mask)."""
    count: int
    compared: int
    """How many pixels were compared (all but the excluded and masked ones)."""
    max_diff_pixels: int
    tolerance: int

    @property
    def passed(self) -> bool:
        return self.count <= self.max_diff_pixels

    @property
    def bbox(self) -> tuple[int, int, int, int] | None:
        """(x, y, width, height) of the differing pixels, None when none differ."""
        if not self.count:
            return None
        rows = np.flatnonzero(self.differ.any(axis=1))
        cols = np.flatnonzero(self.differ.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)

    def as_dict(self) -> dict:
        return {"mode": "pixels", "result": "ok" if self.passed else "fail",
                "differing_pixels": self.count, "compared_pixels": self.compared,
                "max_diff_pixels": self.max_diff_pixels, "tolerance": self.tolerance,
                "bbox": list(self.bbox) if self.bbox else None}


def compare_pixels(actual: np.ndarray, expected: np.ndarray, tolerance: int = 0, max_diff_pixels: int = 0,
                   excludes: list[tuple[int, int, int, int]] | tuple = (), mask: np.ndarray | None = None
                   ) -> PixelResult:
    """Compare two (h, w, 3) uint8 images. ``mask``: (h, w) bool, True where to compare."""
    if actual.shape != expected.shape:
        raise BadInput(f"the images differ in size: actual {actual.shape[1]}x{actual.shape[0]}, "
                       f"expected {expected.shape[1]}x{expected.shape[0]}")
    if tolerance < 0 or max_diff_pixels < 0:
        raise BadInput("--tolerance and --max-diff-pixels must not be negative")
    h, w = actual.shape[:2]
    differ = np.zeros((h, w), dtype=bool)
    rows = _rows_with_changed_bytes(actual, expected)
    if rows.size:
        a, e = actual[rows], expected[rows]
        if tolerance == 0:
            x = np.bitwise_xor(a, e)
        else:
            # |a - b| > t without a signed copy: max - min per channel.
            x = (np.maximum(a, e) - np.minimum(a, e)) > tolerance
        # Per pixel "any channel": three ORs of (h, w) planes are much faster than any(axis=2).
        differ[rows] = (x[..., 0] | x[..., 1] | x[..., 2]).astype(bool, copy=False)
    keep = np.ones((h, w), dtype=bool) if (excludes or mask is not None) else None
    for x, y, ew, eh in excludes:
        if ew <= 0 or eh <= 0 or x < 0 or y < 0 or x + ew > w or y + eh > h:
            raise BadInput(f"exclude {x},{y},{ew},{eh} is outside the {w}x{h} image")
        keep[y: y + eh, x: x + ew] = False
    if mask is not None:
        if mask.shape != (h, w):
            raise BadInput(f"the mask is {mask.shape[1]}x{mask.shape[0]}, the images {w}x{h}")
        keep &= mask
    if keep is not None:
        differ &= keep
        compared = int(keep.sum())
    else:
        compared = h * w
    return PixelResult(differ, int(np.count_nonzero(differ)), compared, max_diff_pixels, tolerance)


def _rows_with_changed_bytes(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The indices of the rows in which any byte differs, found by comparing the images
    eight bytes at a time (rows with no changed byte hold no differing pixel, whatever the
    tolerance; a screenshot that differs at all differs mostly in a few rows)."""
    h = actual.shape[0]
    a, e = np.ascontiguousarray(actual).reshape(-1), np.ascontiguousarray(expected).reshape(-1)
    n8 = a.size // 8 * 8
    changed = np.flatnonzero(a[:n8].view(np.uint64) != e[:n8].view(np.uint64)) * 8
    row_bytes = a.size // h if h else 1
    if row_bytes < 8:  # a word may span more than two rows: compare every row
        return np.arange(h)
    hit = np.zeros(h, dtype=bool)
    hit[changed // row_bytes] = True
    hit[(changed + 7) // row_bytes] = True  # a word may reach into the next row
    if n8 < a.size and not np.array_equal(a[n8:], e[n8:]):
        hit[-1] = True
    return np.flatnonzero(hit)


def mask_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """A mask PNG's meaning: compare where the mask pixel is not black."""
    return rgb.any(axis=2)
