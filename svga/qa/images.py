"""QA layer: reading and writing the PNGs the QA tools compare.

:func:`read_rgb` gives an ``(h, w, 3)`` uint8 RGB array or raises
:class:`~svga.qa.errors.BadInput` with one line (missing file, not a PNG, truncated PNG).
Colour handling follows what os-autoinst's reader does with a PNG (docs/openqa.md 'Reading
the PNGs'): alpha is dropped, not blended; grey is spread to three channels; 16-bit samples
keep their high byte.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from svga.qa.errors import BadInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_rgb(path: str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """The PNG at ``path`` as (h, w, 3) uint8 RGB."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{what} {p}: no such file")
    if p.is_dir():
        raise BadInput(f"{what} {p}: is a directory, not a PNG")
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise BadInput(f"{what} {p}: cannot read: {e.strerror or e}") from None
    if head != PNG_SIGNATURE:
        raise BadInput(f"{what} {p}: not a PNG file (no PNG signature)")
    try:
        with Image.open(p) as img:
            img.load()
            return to_rgb(img)
    except (OSError, SyntaxError, UnidentifiedImageError, ValueError) as e:
        raise BadInput(f"{what} {p}: truncated or corrupt PNG ({e})") from None


def to_rgb(img: Image.Image) -> np.ndarray:
    """A Pillow image as (h, w, 3) uint8 RGB, the way docs/openqa.md 'Reading the PNGs' says."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = (np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA" if img.mode != "LA" else "LA")
        arr = np.asarray(img)
        rgb = arr[..., :3] if arr.shape[2] == 4 else np.repeat(arr[..., :1], 3, axis=2)
        return np.ascontiguousarray(rgb)
    if img.mode == "P" and "transparency" in img.info:
        return np.ascontiguousarray(np.asarray(img.convert("RGBA"))[..., :3])
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def as_rgb(image: object) -> np.ndarray:
    """An RGB array from a Pillow image, a numpy array ((h, w, 3) or (h, w, 4) uint8) or a
    PNG path."""
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    if isinstance(image, Image.Image):
        return to_rgb(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype == np.uint8:
        return np.ascontiguousarray(arr[..., :3])
    raise BadInput(f"not an image: {type(image).__name__} (give a PIL image, an (h, w, 3) uint8 "
                   "array or a PNG path)")


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write (h, w, 3) uint8 RGB as a PNG, creating the directory; one-line error if not."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(p, format="PNG")
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot write {p}: {e}") from None
