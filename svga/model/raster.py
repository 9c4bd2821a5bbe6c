"""Model layer: pixel work on VRAM with numpy (fill, copy, read out, cursor compositing).

VRAM is the model's 1-D uint8 array. A rectangle is addressed by a base byte offset, a
stride in bytes and x, y, width, height in 32-bit pixels (0x00RRGGBB, little-endian, so
the bytes are B, G, R, X). Every access goes through :func:`pixels`, which checks the
whole rectangle against the array first and raises :class:`RegionError` rather than let
numpy clip or wrap a slice; callers check rectangles against the framebuffer before that,
so a RegionError means the framebuffer itself does not fit in VRAM.

Fills and copies write through a (height, width) uint32 view (:func:`words`) whenever the
base and the stride are whole words, as they always are for a mode: one 32-bit store a pixel
instead of four byte stores (a 1080p fill: from about 16 ms to under 1 ms); the FIFO fast path
(:mod:`svga.model.fastpath`) keeps such a view of its target for a whole run. Reading out
(:func:`to_rgb`) is :mod:`svga.pixels`' channel copies from the view into the caller's image.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from svga.model.cursor import CursorImage
from svga.pixels import bytes_to_rgb, from_rgb
from svga.pixels import to_rgb as words_to_rgb

BYTES_PER_PIXEL = 4


class RegionError(Exception):
    """A rectangle that does not lie inside the memory array."""


def region_bounds(base: int, stride: int, x: int, y: int, width: int, height: int) -> tuple[int, int]:
    """[start, end) byte range a non-empty rectangle touches."""
    start = base + y * stride + x * BYTES_PER_PIXEL
    end = start + (height - 1) * stride + width * BYTES_PER_PIXEL
    return start, end


def pixels(buf: np.ndarray, base: int, stride: int, x: int, y: int, width: int, height: int
           ) -> np.ndarray:
    """A writable (height, width, 4) uint8 view of a rectangle of ``buf``."""
    if width < 0 or height < 0 or x < 0 or y < 0 or base < 0 or stride < 0:
        raise RegionError(f"negative rectangle term (x={x} y={y} w={width} h={height} "
                          f"base={base} stride={stride})")
    if width == 0 or height == 0:
        return np.zeros((height, width, BYTES_PER_PIXEL), dtype=np.uint8)
    start, end = region_bounds(base, stride, x, y, width, height)
    if end > len(buf):
        raise RegionError(f"bytes {start}..{end} are outside the {len(buf)}-byte memory")
    return as_strided(buf[start:end], shape=(height, width, BYTES_PER_PIXEL),
                      strides=(stride, BYTES_PER_PIXEL, 1))


def words(buf: np.ndarray, base: int, stride: int, x: int, y: int, width: int, height: int
          ) -> np.ndarray:
    """A writable (height, width) uint32 view of a rectangle of ``buf``, checked as
    :func:`pixels` checks it; the view is uint8 (height, width, 4) where ``base`` or
    ``stride`` is not a whole number of words (or ``buf`` does not start on one)."""
    view = pixels(buf, base, stride, x, y, width, height)
    if view.size and (base | stride) % BYTES_PER_PIXEL == 0 and buf.ctypes.data % BYTES_PER_PIXEL == 0:
        return view.view("<u4")[..., 0]
    return view


def fill(buf: np.ndarray, base: int, stride: int, x: int, y: int, width: int, height: int,
         color: int) -> None:
    """Write the raw 32-bit ``color`` to every pixel of the rectangle."""
    view = words(buf, base, stride, x, y, width, height)
    if view.ndim == 2:
        view[...] = color & 0xFFFFFFFF
    else:
        view[...] = np.frombuffer((color & 0xFFFFFFFF).to_bytes(4, "little"), dtype=np.uint8)


def copy(buf: np.ndarray, src: tuple[int, int, int, int], dst: tuple[int, int, int, int],
         width: int, height: int) -> None:
    """Copy a rectangle; ``src`` and ``dst`` are (base, stride, x, y). Overlap-safe: the
    result is that of copying from a snapshot of the source."""
    source = words(buf, src[0], src[1], src[2], src[3], width, height).copy()
    target = words(buf, dst[0], dst[1], dst[2], dst[3], width, height)
    if source.ndim != target.ndim:  # one side in whole words, the other not: copy bytes
        if source.ndim == 2:
            source = source.view(np.uint8).reshape(height, width, BYTES_PER_PIXEL)
        target = pixels(buf, dst[0], dst[1], dst[2], dst[3], width, height)
    target[...] = source


def to_rgb(buf: np.ndarray, base: int, stride: int, width: int, height: int,
           out: np.ndarray | None = None) -> np.ndarray:
    """The rectangle at (0, 0) as a (height, width, 3) RGB image, contiguous, or written into
    ``out`` (that shape, uint8) when given: the three channel copies of
    :func:`svga.pixels.bytes_to_rgb` straight out of the memory, with no copy between."""
    return bytes_to_rgb(pixels(buf, base, stride, 0, 0, width, height), out)


def composite_cursor(image: np.ndarray, cursor: CursorImage, left: int, top: int) -> None:
    """Draw ``cursor`` with its top-left corner at (left, top) onto an (H, W, 3) RGB image,
    in place, clipped to the image by explicit arithmetic."""
    img_h, img_w = image.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + cursor.width, img_w), min(top + cursor.height, img_h)
    if x0 >= x1 or y0 >= y1:
        return
    region = image[y0:y1, x0:x1]
    cy, cx = slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)
    if cursor.premultiplied is not None:
        pm = cursor.premultiplied[cy, cx].astype(np.uint32)
        alpha = pm[..., 3:4]
        under = (region.astype(np.uint32) * (255 - alpha) + 127) // 255
        region[...] = np.minimum(pm[..., :3] + under, 255).astype(np.uint8)
        return
    out = (from_rgb(region) & cursor.and_mask[cy, cx]) ^ cursor.xor_mask[cy, cx]
    region[...] = words_to_rgb(out)
