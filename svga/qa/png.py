"""QA layer: a small, fast PNG writer for screenshots.

Place in the whole: every screenshot the suite writes (``svga screenshot``, ``svga demo
--out``, the golden plugin's actual images and goldens, needle PNGs) goes through
:func:`encode_png`. The diff and report pictures stay on Pillow (not on a hot path).

The format facts used here are written in docs/openqa.md 'The PNG files the suite writes':
an 8-bit RGB (colour type 2) or RGBA (6) image, not interlaced, its rows each led by a filter
byte, the filtered rows one zlib stream split over IDAT chunks, each chunk's CRC-32 over its
type and data.

Writing (1080p in a few ms, where Pillow takes 20-30 ms at compress_level 1): one filter for
the whole image, Up (each byte minus the byte above it: one numpy subtraction; screens repeat
down the rows, so what is left is mostly zeros), zlib level 1. The rows are cut into one band
per CPU; each band is filtered and deflated on its own thread (numpy and zlib run without the
GIL) as a raw deflate stream ended by a sync flush, so the bands concatenate into one valid
stream (no match reaches across a band: a little larger, much faster); the stream's Adler-32
is combined from the bands' own.

Reading such a file back is fast too: libspng (pyspng, :mod:`svga.qa.images`) decodes an
Up-filtered 1080p screenshot in about 3 ms, against about 16 ms for Pillow's adaptive (mostly
Paeth) filtering (bench/qa.py times both).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from svga.errors import SVGAError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_NONE, FILTER_SUB, FILTER_UP = 0, 1, 2
LEVEL = 1
"""zlib level: 1 is the fastest that still finds the long runs screens are made of."""
BAND_BYTES = 1 << 20
"""Images smaller than this (filtered bytes) are deflated as one band, on the caller's thread."""
MAX_CHUNK = 1 << 30
"""The largest IDAT chunk written (the format's limit is 2^31 - 1 bytes)."""
_ADLER_MOD = 65521

WORKERS = min(os.cpu_count() or 1, 4)
"""Bands deflated at once (one per CPU, at most 4)."""

_pool: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="svga-png")
    return _pool


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def adler32_combine(first: int, second: int, second_len: int) -> int:
    """The Adler-32 of A + B from Adler-32(A), Adler-32(B) and len(B). Adler-32 keeps
    s1 = 1 + the sum of the bytes and s2 = the sum of every s1 along the way (mod 65521):
    over A + B, s1 gains A's sum, and each of B's len(B) steps adds A's s1 - 1 to s2."""
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    s1 = (a1 + a2 - 1) % _ADLER_MOD
    s2 = (b1 + b2 + second_len * (a1 - 1)) % _ADLER_MOD
    return (s2 << 16) | s1


def _band(rows: np.ndarray, above: np.ndarray | None, last: bool, level: int) -> tuple[bytes, int, int]:
    """Filter ``rows`` (h, stride) with Up (``above``: the row before them, None at the top) and
    deflate them raw; returns (deflate bytes, Adler-32 of the filtered bytes, their count)."""
    h, stride = rows.shape
    out = np.empty((h, stride + 1), dtype=np.uint8)
    out[:, 0] = FILTER_UP
    if above is None:
        out[0, 1:] = rows[0]
    else:
        np.subtract(rows[0], above, out=out[0, 1:])
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    flat = out.reshape(-1)
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    data = z.compress(flat) + z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return data, zlib.adler32(flat), flat.size


def encode_png(image: np.ndarray, level: int = LEVEL) -> bytes:
    """The PNG file of an (h, w, 3) RGB or (h, w, 4) RGBA uint8 array."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
        raise SVGAError(f"a PNG is written from an (h, w, 3) or (h, w, 4) uint8 array, not "
                        f"{img.dtype} {img.shape}")
    h, w, channels = img.shape
    if not (0 < h < 1 << 31 and 0 < w < 1 << 31):
        raise SVGAError(f"a PNG of {w}x{h} pixels cannot be written (each side 1 .. 2^31 - 1)")
    rows = np.ascontiguousarray(img).reshape(h, w * channels)
    bands = max(1, min(WORKERS, rows.size // BAND_BYTES, h))
    cuts = [h * i // bands for i in range(bands + 1)]
    jobs = [(rows[cuts[i]: cuts[i + 1]], rows[cuts[i] - 1] if i else None, i == bands - 1, level)
            for i in range(bands)]
    done = list(_threads().map(lambda job: _band(*job), jobs)) if bands > 1 else [_band(*jobs[0])]
    adler = 1
    for _, part_adler, part_len in done:
        adler = adler32_combine(adler, part_adler, part_len)
    # The zlib header: deflate with a 32 KiB window (0x78), "fastest" level, check bits.
    stream = b"".join([b"\x78\x01", *(d for d, _, _ in done), struct.pack(">I", adler)])
    colour = 2 if channels == 3 else 6
    head = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    idat = [_chunk(b"IDAT", stream[i: i + MAX_CHUNK]) for i in range(0, len(stream), MAX_CHUNK)]
    return b"".join([SIGNATURE, head, *idat, _chunk(b"IEND", b"")])


def write_png(path: str | os.PathLike[str], image: np.ndarray, level: int = LEVEL) -> None:
    """Write :func:`encode_png` of ``image`` to ``path`` (SVGAError, one line, if it cannot)."""
    data = encode_png(image, level)
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise SVGAError(f"cannot write {path}: {e.strerror or e}") from None
