"""svga.qa.png, the suite's own PNG writer: what it writes is read back exactly by two other
decoders (Pillow and pyspng/libspng) and passes Debian's ``pngcheck``.

The oracle is the array the test wrote (PNG is lossless) as the third-party decoders give it
back, and pngcheck's verdict on the file; the Adler-32 combination and the Adler-32 of repeated
rows are checked against zlib's own Adler-32 of the bytes, and the hand-written deflate block of
repeated rows against zlib's inflate of it.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import zlib

import numpy as np
import pyspng
import pytest
from PIL import Image

from svga.errors import SVGAError
from svga.qa import png
from svga.qa.png import adler32_combine, adler32_same_rows, encode_png, same_rows_block, write_png

RNG = np.random.default_rng(15)


def screen_like(w: int, h: int, channels: int = 3) -> np.ndarray:
    """Flat blocks, a gradient and a noisy block: what screenshots are made of."""
    img = np.zeros((h, w, channels), dtype=np.uint8)
    img[:, : w // 2, 0] = np.linspace(0, 255, w // 2, dtype=np.uint8)
    img[: h // 2, w // 2:] = 200
    img[h // 3:, w // 3:] = RNG.integers(0, 256, (h - h // 3, w - w // 3, channels), dtype=np.uint8)
    return img


def read_back(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        pil = np.asarray(img)
    return pil, pyspng.load(data)


def pngcheck(path) -> None:  # noqa: ANN001
    tool = shutil.which("pngcheck")
    assert tool, "pngcheck is missing: it is in scripts/test-packages.txt (apt-get install pngcheck)"
    r = subprocess.run([tool, "-v", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "No errors detected" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (1, 7), (97, 31), (640, 480)])
@pytest.mark.parametrize("channels", [3, 4])
def test_read_back_by_pillow_and_pyspng_and_checked_by_pngcheck(tmp_path, size, channels):
    w, h = size
    want = screen_like(w, h, channels)
    path = tmp_path / "x.png"
    write_png(path, want)
    data = path.read_bytes()
    pil, spng = read_back(data)
    assert pil.shape == (h, w, channels) and np.array_equal(pil, want)
    assert np.array_equal(spng, want)
    pngcheck(path)


def test_a_1080p_screenshot_in_bands_is_one_valid_stream(tmp_path, monkeypatch):
    """Large images are deflated in bands on threads; force four bands whatever the CPU count
    and check the joined stream (zlib's own inflate and Adler-32 check, both decoders)."""
    monkeypatch.setattr(png, "WORKERS", 4)
    want = screen_like(1920, 1080)
    data = encode_png(want)
    pil, spng = read_back(data)
    assert np.array_equal(pil, want) and np.array_equal(spng, want)
    # The image data is one zlib stream (the IDAT chunks joined); zlib checks its Adler-32.
    idat, pos = b"", 8
    while pos < len(data):
        n = int.from_bytes(data[pos: pos + 4], "big")
        if data[pos + 4: pos + 8] == b"IDAT":
            idat += data[pos + 8: pos + 8 + n]
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(1080, 1 + 1920 * 3)
    assert set(raw[:, 0].tolist()) == {2}, "one filter for the whole image: Up"
    path = tmp_path / "big.png"
    path.write_bytes(data)
    pngcheck(path)


@pytest.mark.parametrize("lengths", [(0, 5), (1, 1), (7, 100_000), (70_000, 3), (65_521, 65_521)])
def test_adler32_combine_is_zlibs_adler32_of_the_joined_bytes(lengths):
    a = RNG.integers(0, 256, lengths[0], dtype=np.uint8).tobytes()
    b = RNG.integers(0, 256, lengths[1], dtype=np.uint8).tobytes()
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def test_what_cannot_be_a_png_is_one_error(tmp_path):
    for bad in (np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((2, 2, 3), np.uint16)):
        with pytest.raises(SVGAError):
            encode_png(bad)
    with pytest.raises(SVGAError, match="cannot write"):
        write_png(tmp_path / "no" / "such" / "dir.png", np.zeros((2, 2, 3), np.uint8))


def repeating_rows(w: int, h: int, channels: int = 3) -> np.ndarray:
    """Runs of rows equal to the row above, of every length 1 .. 5, between changed rows, and the
    first row black (so the very first run starts at the top)."""
    img = np.zeros((h, w, channels), dtype=np.uint8)
    y, run = 1, 1
    while y < h:
        img[y:] = RNG.integers(0, 256, (w, channels), dtype=np.uint8)  # a new row, repeated below
        y += run + 1
        run = run % 5 + 1
    return img


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5, 6, 12, 258, 259, 260, 261, 262, 517, 775, 5760, 7681])
@pytest.mark.parametrize("count", [1, 2, 3, 41])
def test_the_block_of_repeated_rows_inflates_to_those_rows(stride, count):
    """zlib's inflate is the oracle: the block gives back ``count`` rows of the Up filter byte
    and ``stride`` zeros, ends on a byte boundary without ending the stream, and reaches only
    its own bytes (it inflates the same after other data)."""
    block = same_rows_block(stride, count)
    want = (bytes([png.FILTER_UP]) + bytes(stride)) * count
    d = zlib.decompressobj(-15)
    assert d.decompress(block) == want and not d.eof
    final = zlib.compressobj(1, zlib.DEFLATED, -15)
    tail = final.flush()  # an empty final block
    prefix = zlib.compressobj(1, zlib.DEFLATED, -15)
    head = prefix.compress(b"\x07" * 300) + prefix.flush(zlib.Z_FULL_FLUSH)
    assert zlib.decompress(head + block + tail, -15) == b"\x07" * 300 + want


@pytest.mark.parametrize(("stride", "count"), [(3, 1), (5760, 637), (7681, 4000), (1, 70_000)])
def test_adler32_of_repeated_rows_is_zlibs(stride, count):
    prefix = RNG.integers(0, 256, 1000, dtype=np.uint8).tobytes()
    rows = (bytes([png.FILTER_UP]) + bytes(stride)) * count
    start = zlib.adler32(prefix)
    assert adler32_same_rows(start, stride, count) == zlib.adler32(rows, start)
    assert adler32_same_rows(1, stride, count) == zlib.adler32(rows)


@pytest.mark.parametrize("size", [(1, 40), (2, 17), (86, 30), (87, 30), (1920, 64)])
@pytest.mark.parametrize("channels", [3, 4])
def test_images_of_repeated_rows_read_back_exactly(tmp_path, size, channels):
    """Widths whose rows end on a 258-byte match, one zero or two zeros past it (86 and 87
    pixels: 257 and 260 bytes a row), one-pixel columns, and a flat image."""
    w, h = size
    want = repeating_rows(w, h, channels)
    for img in (want, np.full_like(want, 90)):
        path = tmp_path / "rows.png"
        write_png(path, img)
        pil, spng = read_back(path.read_bytes())
        assert np.array_equal(pil, img) and np.array_equal(spng, img)
        pngcheck(path)


def test_repeated_rows_across_the_bands(monkeypatch):
    """Four bands (borders at rows 300, 600, 900) whose borders fall inside runs of repeated
    rows and between changed rows."""
    monkeypatch.setattr(png, "WORKERS", 4)
    want = repeating_rows(1280, 1200)
    assert want.size // png.BAND_BYTES >= 4
    want[290:310] = want[289]  # a run across the first border
    want[590:605] = want[589]  # and across the second
    data = encode_png(want)
    pil, spng = read_back(data)
    assert np.array_equal(pil, want) and np.array_equal(spng, want)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 8), (33, 12), (17, 9)])
def test_changed_rows_are_rows_unlike_the_row_above(shape):
    """Against a byte-by-byte comparison, for strides of 8-, 4-, 2- and 1-byte words and rows
    that do not start on a word boundary."""
    h, stride = shape
    buf = np.zeros(h * stride + 1, dtype=np.uint8)
    rows = buf[1:].reshape(h, stride)  # one byte off the buffer's alignment
    rows[h // 2:] = RNG.integers(0, 3, (h - h // 2, stride), dtype=np.uint8)
    rows[-1] = rows[-2] if h > 1 else rows[-1]
    for img in (rows, np.ascontiguousarray(rows)):
        want = [bool(img[0].any())] + [bool((img[y] != img[y - 1]).any()) for y in range(1, h)]
        assert png.changed_rows(img).tolist() == want


@pytest.mark.parametrize("bands", [2, 3, 4])
def test_bands_share_the_rows_out_by_their_work(bands):
    """Every band gets at least one row, in order; when the changed rows sit in one part of the
    image, the bands' costs come out within two changed rows of each other."""
    for changed in (np.arange(1000) >= 700, RNG.integers(0, 2, 97).astype(bool), np.ones(bands, bool)):
        cuts = png._cuts(changed, bands)
        spans = list(zip(cuts[:-1], cuts[1:], strict=True))
        assert cuts[0] == 0 and cuts[-1] == len(changed) and all(a < b for a, b in spans)
        cost = [int(np.where(changed[a:b], png.ROW_COST, 1).sum()) for a, b in spans]
        if len(changed) == 1000:
            assert max(cost) - min(cost) <= 2 * png.ROW_COST, cost  # each cut within a row of its mark
