"""QA layer: reading and writing the PNGs the QA tools compare.

:func:`read_rgb` gives an ``(h, w, 3)`` uint8 RGB array or raises
:class:`~svga.qa.errors.BadInput` with one line (missing file, not a PNG, truncated PNG).
Colour handling follows what os-autoinst's reader does with a PNG (docs/openqa.md 'Reading
the PNGs'): alpha is dropped, not blended; grey is spread to three channels; 16-bit samples
keep their high byte.

An 8-bit RGB or RGBA PNG (what screenshots are) is decoded by pyspng (libspng): about twice
as fast as Pillow on a 1080p screenshot Pillow wrote, five times on one the suite wrote
(svga.qa.png; bench/qa-results.md); every other kind, and any file pyspng refuses, goes
through Pillow, which also words the error. Both give the same pixels
(tests/test_qa_images.py checks them against each other). Pillow is imported only when it is
needed, so a compare of two screenshots does not pay for its import.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyspng

from svga.qa.errors import BadInput
from svga.qa.png import encode_png

if TYPE_CHECKING:
    from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 64 << 20
"""The largest PNG file read (64 MiB; a screenshot of the largest SVGA mode is a few MiB)."""
MAX_PIXELS = 32 << 20
"""The most pixels a PNG read may have (32 Mi, e.g. 8192x4096), checked from its header
before it is decoded: a small file can claim a huge image."""


def read_regular(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, else BadInput (one line). A
    pipe or device is refused before a byte is read (opened with O_NONBLOCK, so not even the
    open of a FIFO waits for a writer)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInput(f"{what} {p}: no such file") from None
    except OSError as e:
        raise BadInput(f"{what} {p}: cannot read: {e.strerror or e}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise BadInput(f"{what} {p}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{what} {p}: not a regular file (a pipe, device or socket)")
        if st.st_size > limit:
            raise BadInput(f"{what} {p}: {st.st_size} bytes, more than the {limit} read")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise BadInput(f"{what} {p}: cannot read: {e.strerror or e}") from None
    if len(data) > limit:
        raise BadInput(f"{what} {p}: more than the {limit} bytes read")
    return data


def read_rgb(path: str | os.PathLike[str], what: str = "image") -> np.ndarray:
    """The PNG at ``path`` as (h, w, 3) uint8 RGB (at most MAX_PNG_BYTES, MAX_PIXELS)."""
    p = Path(path)
    data = read_regular(p, MAX_PNG_BYTES, what)
    if data[:8] != PNG_SIGNATURE:
        raise BadInput(f"{what} {p}: not a PNG file (no PNG signature)")
    fast = decode_fast(data)
    if fast is not None:
        return fast
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            if img.width * img.height > MAX_PIXELS:
                raise BadInput(f"{what} {p}: {img.width}x{img.height} is more than the {MAX_PIXELS} "
                               "pixels read")
            img.load()
            return to_rgb(img)
    except (OSError, SyntaxError, UnidentifiedImageError, ValueError, Image.DecompressionBombError,
            EOFError, struct.error) as e:
        raise BadInput(f"{what} {p}: truncated or corrupt PNG ({' '.join(str(e).split())})") from None


def read_pair(first: str | os.PathLike[str], second: str | os.PathLike[str],
              what: tuple[str, str] = ("image", "image")) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_rgb` of two PNGs, one after the other (a bad first file is reported before
    a bad second). Not on two threads: pyspng keeps the GIL while it decodes, so a second
    thread only adds its start-up and the hand-overs (measured: two 1080p decodes on two
    threads take as long as one after the other, or longer)."""
    return read_rgb(first, what[0]), read_rgb(second, what[1])


def decode_fast(data: bytes) -> np.ndarray | None:
    """pyspng's (h, w, 3) decode of an 8-bit RGB or RGBA PNG, interlaced or not (alpha
    dropped, as docs/openqa.md 'Reading the PNGs' says); None for any other kind, for more
    than MAX_PIXELS, or when pyspng refuses the file (Pillow then reads it and words why)."""
    # IHDR is the first chunk: length, "IHDR", width, height, bit depth, colour type, ...
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if depth != 8 or colour not in (2, 6) or not 0 < width * height <= MAX_PIXELS:
        return None
    if not _chunk_crcs_hold(data):
        return None
    try:
        rgb = pyspng.load(data, "RGB")
    except (RuntimeError, ValueError):
        return None
    return rgb if rgb.shape == (height, width, 3) else None


def _chunk_crcs_hold(data: bytes) -> bool:
    """Whether every chunk but IDAT carries its right CRC (libspng, as pyspng runs it, checks
    none; Pillow checks these and refuses the file, so a damaged one goes to Pillow). The
    IDAT data is guarded by its zlib checksum, which libspng checks."""
    pos, end = 8, len(data)
    while pos + 12 <= end:
        length, kind = struct.unpack(">I4s", data[pos: pos + 8])
        stop = pos + 12 + length
        if stop > end:
            return False
        if kind != b"IDAT":
            crc = struct.unpack(">I", data[stop - 4: stop])[0]
            if zlib.crc32(data[pos + 4: stop - 4]) != crc:
                return False
        if kind == b"IEND":
            return True
        pos = stop
    return False


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
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def as_rgb(image: object) -> np.ndarray:
    """An RGB array from a Pillow image, a numpy array ((h, w, 3) or (h, w, 4) uint8) or a
    PNG path."""
    if isinstance(image, (str, os.PathLike)):
        return read_rgb(image)
    if "PIL.Image" in sys.modules:  # else the object cannot be a Pillow image
        from PIL import Image

        if isinstance(image, Image.Image):
            return to_rgb(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype == np.uint8:
        return np.ascontiguousarray(arr[..., :3])
    raise BadInput(f"not an image: {type(image).__name__} (give a PIL image, an (h, w, 3) uint8 "
                   "array or a PNG path)")


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write (h, w, 3) uint8 RGB as a PNG (:mod:`svga.qa.png`), creating the directory;
    one-line error if not."""
    p = Path(path)
    data = encode_png(rgb)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    except OSError as e:
        raise BadInput(f"cannot write {p}: {e.strerror or e}") from None
