"""Protocol layer: the pixel format of the SVGA II framebuffer, written once.

At 32 bpp (the only depth this suite drives) a pixel is one little-endian 32-bit word
0x00RRGGBB: SVGA_REG_RED_MASK 0xFF0000, GREEN_MASK 0x00FF00, BLUE_MASK 0x0000FF
(docs/qemu-7.2.md 'BITS_PER_PIXEL'). Every conversion between those words and RGB images
(screenshots, the model's display, cursors, the demo, benchmarks) goes through here.
"""

from __future__ import annotations

import numpy as np


def to_rgb(words: np.ndarray) -> np.ndarray:
    """0x00RRGGBB words of any shape -> uint8 RGB with a trailing axis of 3."""
    w = np.asarray(words).astype(np.uint32, copy=False)
    out = np.empty(w.shape + (3,), dtype=np.uint8)
    out[..., 0] = (w >> 16) & 0xFF
    out[..., 1] = (w >> 8) & 0xFF
    out[..., 2] = w & 0xFF
    return out


def from_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB with a trailing axis of 3 (or more: alpha is ignored) -> 0x00RRGGBB uint32."""
    c = np.asarray(rgb)[..., :3].astype(np.uint32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
