"""Protocol layer: the pixel format of the SVGA II framebuffer, written once.

At 32 bpp (the only depth this suite drives) a pixel is one little-endian 32-bit word
0x00RRGGBB: SVGA_REG_RED_MASK 0xFF0000, GREEN_MASK 0x00FF00, BLUE_MASK 0x0000FF
(docs/qemu-7.2.md 'BITS_PER_PIXEL'). Every conversion between those words and RGB images
(screenshots, the model's display, cursors, the demo, benchmarks) goes through here.

In memory such a word is the bytes B, G, R, X (X unused), so an RGB image is three channel
copies out of those bytes (:func:`bytes_to_rgb`): a 1080p screen in about 4 ms, where shifting
and masking the words takes about 20 ms and numpy's reversed strided copy ``[..., 2::-1]``
about 18 ms (a copy with an inner loop of three bytes). :func:`to_rgb` takes that way on a
little-endian machine and shifts and masks elsewhere; both give the same image.
"""

from __future__ import annotations

import sys

import numpy as np

_LITTLE = sys.byteorder == "little"


def _out(shape: tuple[int, ...], out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return np.empty(shape + (3,), dtype=np.uint8)
    if out.shape != shape + (3,) or out.dtype != np.uint8:
        raise ValueError(f"out must be a {shape + (3,)} uint8 array, not {out.shape} {out.dtype}")
    return out


def bytes_to_rgb(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Framebuffer memory as uint8 with a trailing axis of 4 (the bytes B, G, R, X of each
    0x00RRGGBB word, any strides: a view of VRAM will do) -> uint8 RGB with a trailing axis
    of 3, written into ``out`` when given (same leading shape) and returned."""
    raw = np.asarray(raw)
    if raw.dtype != np.uint8 or raw.ndim == 0 or raw.shape[-1] != 4:
        raise ValueError(f"expected uint8 with a trailing axis of 4, not {raw.shape} {raw.dtype}")
    rgb = _out(raw.shape[:-1], out)
    src, dst = raw, rgb
    if raw.ndim > 2 and raw.flags.c_contiguous and rgb.flags.c_contiguous:
        src, dst = raw.reshape(-1, 4), rgb.reshape(-1, 3)  # one long inner loop, not one a row
    dst[..., 0] = src[..., 2]
    dst[..., 1] = src[..., 1]
    dst[..., 2] = src[..., 0]
    return rgb


def to_rgb(words: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """0x00RRGGBB words of any shape -> uint8 RGB with a trailing axis of 3, written into
    ``out`` when given (shape ``words.shape + (3,)``) and returned. Words of another dtype
    are taken as uint32 first (numpy's ``astype``)."""
    w = np.asarray(words)
    if w.dtype != np.uint32:
        w = w.astype(np.uint32)
    if _LITTLE:
        try:
            raw = w[..., np.newaxis].view(np.uint8)  # any strides with numpy's view of a size-1 axis
        except ValueError:  # a numpy that wants the last axis contiguous for that
            raw = np.ascontiguousarray(w)[..., np.newaxis].view(np.uint8)
        return bytes_to_rgb(raw, out)
    rgb = _out(w.shape, out)
    rgb[..., 0] = (w >> 16) & 0xFF
    rgb[..., 1] = (w >> 8) & 0xFF
    rgb[..., 2] = w & 0xFF
    return rgb


def from_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB with a trailing axis of 3 (or more: alpha is ignored) -> 0x00RRGGBB uint32."""
    c = np.asarray(rgb)[..., :3].astype(np.uint32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
