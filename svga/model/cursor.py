"""Model layer: decoding cursor images from DEFINE_CURSOR / DEFINE_ALPHA_CURSOR data.

Two readings of DEFINE_CURSOR exist and a guest can see the difference:

- VMware's (svga_reg.h): AND mask then XOR mask, each at its own depth (1 or 32), every
  scanline padded to 32 bits. The result on screen is ``(screen AND and) XOR xor`` per
  pixel, so AND=1/XOR=1 inverts the screen.
- QEMU 7.2's (quirk ``cursor-decode``): the AND mask is always 1 bpp, mask rows are
  stepped by ceil(w/8) bytes, an AND bit makes the pixel transparent and every other
  pixel is opaque (white/black at 1 bpp, the XOR colour at 32 bpp).

Both become a :class:`CursorImage` held as an AND/XOR pair of 0x00RRGGBB words, which
also expresses QEMU's opaque/transparent result exactly. DEFINE_ALPHA_CURSOR data is
BGRA; the model treats it as premultiplied alpha, as X's ARGB cursors are, which vmwgfx
hands to the device unchanged.

Mono masks are MSB-first: the leftmost pixel is bit 7 of the first byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svga import pixels
from svga.commands import mask_row_bytes
from svga.facts.effects import E

RGB_MASK = 0x00FFFFFF


class CursorRejected(Exception):
    """The cursor data cannot be decoded; the message says why (the executor adds the
    command name and FIFO offset) and ``key`` names it."""

    def __init__(self, message: str, key: E = E.MODEL_REJECTS) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, eq=False)
class CursorImage:
    hot_x: int
    hot_y: int
    and_mask: np.ndarray
    """(h, w) uint32: the screen bits kept (0x00RRGGBB)."""
    xor_mask: np.ndarray
    """(h, w) uint32: the bits then flipped (0x00RRGGBB)."""
    premultiplied: np.ndarray | None = None
    """(h, w, 4) uint8 premultiplied RGBA of an alpha cursor (then the masks are unused)."""

    @property
    def width(self) -> int:
        return int(self.xor_mask.shape[1])

    @property
    def height(self) -> int:
        return int(self.xor_mask.shape[0])

    def rgba(self) -> np.ndarray:
        """The cursor as straight (not premultiplied) RGBA, (h, w, 4) uint8. For an AND/XOR
        cursor a pixel is opaque where its AND word is 0; pixels that keep or invert the
        screen are transparent in this view."""
        if self.premultiplied is not None:
            pm = self.premultiplied.astype(np.uint32)
            a = pm[..., 3:4]
            rgb = np.where(a > 0, np.minimum(pm[..., :3] * 255 // np.maximum(a, 1), 255), 0)
            return np.concatenate([rgb, a], axis=2).astype(np.uint8)
        out = np.zeros((self.height, self.width, 4), dtype=np.uint8)
        out[..., :3] = pixels.to_rgb(self.xor_mask)
        out[..., 3] = np.where(self.and_mask == 0, 255, 0)
        return out


def _bits(data: bytes, row_bytes: int, width: int, height: int) -> np.ndarray:
    """(h, w) bools from MSB-first rows of ``row_bytes`` bytes."""
    if len(data) < row_bytes * height:
        raise CursorRejected(f"mask needs {row_bytes * height} bytes but has {len(data)}")
    rows = np.frombuffer(data, dtype=np.uint8, count=row_bytes * height).reshape(height, row_bytes)
    return np.unpackbits(rows, axis=1, bitorder="big")[:, :width].astype(bool)


def _words(data: bytes, row_words: int, width: int, height: int) -> np.ndarray:
    """(h, w) uint32 from rows of ``row_words`` little-endian words."""
    if len(data) < row_words * 4 * height:
        raise CursorRejected(f"mask needs {row_words * 4 * height} bytes but has {len(data)}")
    rows = np.frombuffer(data, dtype="<u4", count=row_words * height).reshape(height, row_words)
    return rows[:, :width].astype(np.uint32)


def _vmware_mask(data: bytes, depth: int, width: int, height: int, what: str) -> np.ndarray:
    row = mask_row_bytes(width, depth)
    if depth == 1:
        return np.where(_bits(data, row, width, height), RGB_MASK, 0).astype(np.uint32)
    if depth == 32:
        return _words(data, row // 4, width, height) & RGB_MASK
    raise CursorRejected(f"{what} depth {depth} is not 1 or 32 (the only depths at 32 bpp)", E.CURSOR_DEPTH)


def decode_vmware(width: int, height: int, hot_x: int, hot_y: int, and_depth: int, xor_depth: int,
                  and_bytes: bytes, xor_bytes: bytes, max_size: int) -> CursorImage:
    """svga_reg.h's DEFINE_CURSOR: both masks at their own depth, rows padded to 32 bits."""
    if width > max_size or height > max_size:
        raise CursorRejected(f"cursor {width}x{height} is larger than {max_size}x{max_size}", E.CURSOR_SIZE)
    and_mask = _vmware_mask(and_bytes, and_depth, width, height, "AND mask")
    xor_mask = _vmware_mask(xor_bytes, xor_depth, width, height, "XOR mask")
    return CursorImage(hot_x, hot_y, and_mask, xor_mask)


def decode_qemu(width: int, height: int, hot_x: int, hot_y: int, xor_depth: int,
                and_bytes: bytes, xor_bytes: bytes) -> CursorImage:
    """QEMU 7.2's reading (limits are checked by the caller): 1-bpp AND mask, rows stepped
    by ceil(w/8) bytes; AND bit = transparent; else white/black (1 bpp) or the XOR colour
    (32 bpp, pixels packed w*h without row padding, which is the same at 32 bpp)."""
    bpl = (width + 7) // 8
    transparent = _bits(and_bytes, bpl, width, height)
    if xor_depth == 1:
        colour = np.where(_bits(xor_bytes, bpl, width, height), RGB_MASK, 0).astype(np.uint32)
    elif xor_depth == 32:
        colour = _words(xor_bytes, width, width, height) & RGB_MASK
    else:
        raise CursorRejected(
            f"XOR mask depth {xor_depth} would show QEMU's built-in arrow, which the model "
            "does not draw; use depth 1 or 32", E.CURSOR_BPP)
    and_mask = np.where(transparent, RGB_MASK, 0).astype(np.uint32)
    xor_mask = np.where(transparent, 0, colour).astype(np.uint32)
    return CursorImage(hot_x, hot_y, and_mask, xor_mask)


def decode_alpha(width: int, height: int, hot_x: int, hot_y: int, image: bytes,
                 max_size: int) -> CursorImage:
    """DEFINE_ALPHA_CURSOR: BGRA pixels, w*h words, taken as premultiplied alpha."""
    if width > max_size or height > max_size:
        raise CursorRejected(f"cursor {width}x{height} is larger than {max_size}x{max_size}", E.CURSOR_SIZE)
    if len(image) < width * height * 4:
        raise CursorRejected(f"image needs {width * height * 4} bytes but has {len(image)}")
    bgra = np.frombuffer(image, dtype=np.uint8, count=width * height * 4).reshape(height, width, 4)
    rgba = np.ascontiguousarray(bgra[..., [2, 1, 0, 3]])
    empty = np.zeros((height, width), dtype=np.uint32)
    return CursorImage(hot_x, hot_y, empty, empty, premultiplied=rgba)
