"""QA layer: a small, fast PNG writer for screenshots.

Place in the whole: every screenshot the suite writes (``svga screenshot``, ``svga demo
--out``, the golden plugin's actual images and goldens, needle PNGs) goes through
:func:`encode_png`. The diff and report pictures stay on Pillow (not on a hot path).

The format facts used here are written in docs/openqa.md 'The PNG files the suite writes':
an 8-bit RGB (colour type 2) or RGBA (6) image, not interlaced, its rows each led by a filter
byte, the filtered rows one zlib stream split over IDAT chunks, each chunk's CRC-32 over its
type and data.

Writing (1080p in about 9 ms of CPU; Pillow at compress_level 1 takes about five times as long
in the same run, bench/screens.py): one filter for the whole image, Up (each byte minus the byte
above it: one numpy subtraction; screens repeat down the rows, so what is left is mostly zeros).
A run of rows that equal the row above (all zeros once filtered: most rows of a screen) is not
handed to zlib at all: its deflate block is written here, a few bits a row
(:func:`same_rows_block`), and its Adler-32 follows from a formula; the other rows go to zlib at
level 1, each stretch of them ended by a full flush so that none of zlib's matches reaches
across a block it did not write. The rows are cut into one band per CPU, of about equal work (a
changed row counts ``ROW_COST`` times a repeated one); each band is filtered and deflated on its
own thread (numpy and zlib run without the GIL) as raw deflate data ended by a sync flush, so
the bands concatenate into one valid stream (no match reaches across a band: a little larger,
much faster); the stream's Adler-32 is combined from the bands' own. The first band runs on the
caller's thread.

Reading such a file back is fast too: libspng (pyspng, :mod:`svga.qa.images`) decodes an
Up-filtered 1080p screenshot in about 3 ms, against about 16 ms for Pillow's adaptive (mostly
Paeth) filtering (bench/qa.py times both).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from svga.errors import SVGAError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_NONE, FILTER_SUB, FILTER_UP = 0, 1, 2
LEVEL = 1
"""zlib level: 1 is the fastest that still finds the long runs screens are made of."""
MEM_LEVEL = 8
"""zlib's memLevel (1 .. 9; 8, its default). Measured on the 1080p demo screenshot: 4 (a 2K-entry
hash table) deflates all its rows twice as fast as 8, the long zero runs being what it saves on;
with the repeated rows written here (most of those runs) it saves about 5 % of the whole, and it
is about twice as slow on noise or photographs (more, smaller blocks), so the default stays."""
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


def adler32_same_rows(adler: int, stride: int, count: int, filter_byte: int = FILTER_UP) -> int:
    """The Adler-32 ``adler`` continued over ``count`` filtered rows that are each
    ``filter_byte`` and ``stride`` zeros. Each such row adds the filter byte to s1 once, then
    adds the new s1 to s2 once per byte (stride + 1 times); over k = 1 .. count rows s1 grows by
    k * filter_byte, so s2 gains (stride + 1) * (count * s1 + filter_byte * count (count + 1) / 2)."""
    s1, s2 = adler & 0xFFFF, adler >> 16
    s2 = (s2 + (stride + 1) * (count * s1 + filter_byte * count * (count + 1) // 2)) % _ADLER_MOD
    s1 = (s1 + filter_byte * count) % _ADLER_MOD
    return (s2 << 16) | s1


# -- a deflate block for rows that repeat the row above (docs/openqa.md 'The PNG files the
# suite writes', the block format of RFC 1951 written out there) -----------------------------
_LENGTH_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                131, 163, 195, 227, 258)
"""The shortest match length of each length symbol 257 .. 285."""
_LENGTH_EXTRA = (0,) * 8 + (1,) * 4 + (2,) * 4 + (3,) * 4 + (4,) * 4 + (5,) * 4 + (0,)
"""How many extra bits follow each length symbol 257 .. 285 (the length less the base)."""
_CL_ORDER = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)
"""The order in which a dynamic block's header gives the code lengths of the code-length code."""
_CL_LENGTHS = {0: 3, 1: 3, 2: 3, 3: 3, 4: 3, 16: 3, 17: 3, 18: 3}
"""The code-length code used: eight symbols of 3 bits each (a complete code)."""
_LONGEST = 258
_END_OF_BLOCK = 256


def _canonical(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, bits) of the canonical Huffman code with these code lengths: shorter
    codes first, and among codes of one length, in symbol order."""
    codes, code = {}, 0
    for bits in range(1, 16):
        for symbol in sorted(s for s, n in lengths.items() if n == bits):
            codes[symbol] = (code, bits)
            code += 1
        code <<= 1
    return codes


class _Bits:
    """Deflate's bit order: fields packed from each byte's least significant bit, numbers
    least significant bit first, Huffman codes most significant bit first."""

    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def put(self, value: int, bits: int) -> None:
        self.value |= value << self.count
        self.count += bits

    def code(self, codes: dict[int, tuple[int, int]], symbol: int) -> None:
        code, bits = codes[symbol]
        self.put(int(f"{code:0{bits}b}"[::-1], 2), bits)


@lru_cache(maxsize=16)
def _same_row_code(stride: int) -> tuple[int, int, int, int, int, int]:
    """(header, its bits, one row, its bits, end of block, its bits) of a dynamic-Huffman block
    of rows each FILTER_UP then ``stride`` zeros: a literal filter byte, a literal zero, then
    matches at distance 1 (copies of that zero) of 258 bytes and one shorter, or 1-2 zeros."""
    full, rest = divmod(stride - 1, _LONGEST)
    tail = max(i for i in range(len(_LENGTH_BASE)) if _LENGTH_BASE[i] <= rest) if rest >= 3 else None
    # A complete code (1/2 + 1/4 + 1/8 + 1/16 + 1/16); literal 1 stands in where no tail is used.
    lit = {257 + len(_LENGTH_BASE) - 1: 1, 0: 2, FILTER_UP: 3, _END_OF_BLOCK: 4,
           (257 + tail) if tail is not None else 1: 4}
    dist = {0: 1, 1: 1}  # distances 1 and 2, one bit each (a complete code; only 1 is used)
    lit_codes, dist_codes, cl_codes = _canonical(lit), _canonical(dist), _canonical(_CL_LENGTHS)
    head = _Bits()
    head.put(0b100, 3)  # BFINAL 0, BTYPE 2 (dynamic Huffman codes)
    hclen = max(i for i, s in enumerate(_CL_ORDER) if s in _CL_LENGTHS) + 1
    head.put(286 - 257, 5)  # HLIT: 286 literal/length code lengths
    head.put(2 - 1, 5)  # HDIST: 2 distance code lengths
    head.put(hclen - 4, 4)
    for symbol in _CL_ORDER[:hclen]:
        head.put(_CL_LENGTHS.get(symbol, 0), 3)
    lengths = [lit.get(s, 0) for s in range(286)] + [dist.get(s, 0) for s in range(2)]
    i = 0
    while i < len(lengths):
        run = 1
        while lengths[i] == 0 and i + run < len(lengths) and lengths[i + run] == 0 and run < 138:
            run += 1
        if lengths[i] == 0 and run >= 11:
            head.code(cl_codes, 18)
            head.put(run - 11, 7)
        elif lengths[i] == 0 and run >= 3:
            head.code(cl_codes, 17)
            head.put(run - 3, 3)
        else:
            run = 1
            head.code(cl_codes, lengths[i])
        i += run
    row = _Bits()
    row.code(lit_codes, FILTER_UP)
    row.code(lit_codes, 0)
    for _ in range(full):
        row.code(lit_codes, 285)
        row.code(dist_codes, 0)
    if tail is not None:
        row.code(lit_codes, 257 + tail)
        row.put(rest - _LENGTH_BASE[tail], _LENGTH_EXTRA[tail])
        row.code(dist_codes, 0)
    else:
        for _ in range(rest):
            row.code(lit_codes, 0)
    end = _Bits()
    end.code(lit_codes, _END_OF_BLOCK)
    return head.value, head.count, row.value, row.count, end.value, end.count


@lru_cache(maxsize=512)
def same_rows_block(stride: int, count: int) -> bytes:
    """Raw deflate data that inflates to ``count`` rows of FILTER_UP then ``stride`` zeros (rows
    equal to the row above, Up-filtered), ended on a byte boundary by an empty stored block (as
    a sync flush ends): one dynamic-Huffman block, not final, whose matches reach only bytes of
    its own, so it may stand anywhere in a stream. About 8 bytes a 1920-pixel RGB row."""
    if stride < 1 or count < 1:
        raise SVGAError(f"no block of {count} rows of {stride} bytes")
    head, head_bits, row, row_bits, end, end_bits = _same_row_code(stride)
    rows = row * (((1 << (row_bits * count)) - 1) // ((1 << row_bits) - 1))  # ``row`` repeated
    value = head | rows << head_bits | end << (head_bits + row_bits * count)
    bits = head_bits + row_bits * count + end_bits + 3  # then BFINAL 0, BTYPE 0 (stored), padding
    return value.to_bytes((bits + 7) // 8, "little") + b"\x00\x00\xff\xff"  # LEN 0, NLEN


def changed_rows(rows: np.ndarray) -> np.ndarray:
    """For each row of ``rows`` (h, stride) uint8, whether it differs from the row above (the
    first: from a row of zeros), compared in the widest words the rows are made of."""
    h, stride = rows.shape
    words = rows
    for size in (8, 4, 2):
        if stride % size == 0 and rows.ctypes.data % size == 0 and rows.strides[1] == 1:
            words = rows.view(f"<u{size}")
            break
    changed = np.empty(h, dtype=bool)
    changed[0] = bool(words[0].any())
    np.any(words[1:] != words[:-1], axis=1, out=changed[1:])
    return changed


ROW_COST = 16
"""What a changed row costs to deflate, in rows that repeat the row above (filtered, then a few
bits each): the weight by which rows are shared out among the bands (bench/screens.py image)."""


def _cuts(changed: np.ndarray, bands: int) -> list[int]:
    """Row indexes 0 = c0 < c1 < ... < c_bands = h that share the work out evenly."""
    h = len(changed)
    cost = np.cumsum(np.where(changed, ROW_COST, 1))
    inner = np.searchsorted(cost, cost[-1] * np.arange(1, bands) / bands).tolist()
    cuts = [0]
    for i, at in enumerate(inner, start=1):
        cuts.append(min(max(at, cuts[-1] + 1), h - (bands - i)))  # every band at least one row
    return [*cuts, h]


def _band(rows: np.ndarray, above: np.ndarray | None, changed: np.ndarray, last: bool,
          level: int) -> tuple[bytes, int, int]:
    """Filter ``rows`` (h, stride) with Up (``above``: the row before them, None at the top) and
    deflate them raw (``changed``: :func:`changed_rows` of them); returns (deflate bytes,
    Adler-32 of the filtered bytes, their count)."""
    h, stride = rows.shape
    out = np.empty((h, stride + 1), dtype=np.uint8)
    out[:, 0] = FILTER_UP
    if above is None:
        out[0, 1:] = rows[0]
    else:
        np.subtract(rows[0], above, out=out[0, 1:])
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    flat = memoryview(out.reshape(-1))
    # Runs of rows equal to the row above (all zeros once filtered): [start, end) row ranges.
    same = np.logical_not(changed).view(np.int8)
    edges = np.flatnonzero(np.diff(same, prepend=np.int8(0), append=np.int8(0))).tolist()
    z = zlib.compressobj(level, zlib.DEFLATED, -15, MEM_LEVEL)
    parts: list[bytes] = []
    adler, at, width = 1, 0, stride + 1
    for start, end in zip(edges[0::2], edges[1::2], strict=True):
        if start > at:
            piece = flat[at * width: start * width]
            parts += (z.compress(piece), z.flush(zlib.Z_FULL_FLUSH))  # zlib forgets what it saw
            adler = zlib.adler32(piece, adler)
        parts.append(same_rows_block(stride, end - start))
        adler = adler32_same_rows(adler, stride, end - start)
        at = end
    piece = flat[at * width:]
    parts += (z.compress(piece), z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    adler = zlib.adler32(piece, adler)
    return b"".join(parts), adler, len(flat)


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
    changed = changed_rows(rows)
    cuts = _cuts(changed, bands)
    jobs = [(rows[cuts[i]: cuts[i + 1]], rows[cuts[i] - 1] if i else None, changed[cuts[i]: cuts[i + 1]],
             i == bands - 1, level) for i in range(bands)]
    # The first band on the caller's thread, the others on the pool's.
    others = [_threads().submit(_band, *job) for job in jobs[1:]]
    done = [_band(*jobs[0]), *(f.result() for f in others)]
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
