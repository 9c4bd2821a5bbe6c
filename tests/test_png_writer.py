"""svga.qa.png, the suite's own PNG writer: what it writes is read back exactly by two other
decoders (Pillow and pyspng/libspng) and passes Debian's ``pngcheck``.

The oracle is the array the test wrote (PNG is lossless) as the third-party decoders give it
back, and pngcheck's verdict on the file; the Adler-32 combination is checked against zlib's
own Adler-32 of the joined bytes.
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
from svga.qa.png import adler32_combine, encode_png, write_png

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
