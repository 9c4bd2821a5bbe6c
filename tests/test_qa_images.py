"""svga.qa.images' two PNG decoders and svga.qa.pixels' row-skipping comparison.

The oracle for decoding is the array the test wrote: PNG is lossless, so what comes back
must be it exactly (alpha dropped, grey spread to three channels, 16-bit samples keeping
their high byte: docs/openqa.md 'Reading the PNGs'), whichever decoder read it. The oracle
for the comparison is a plain numpy count written here.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from svga.qa.errors import BadInput
from svga.qa.images import decode_fast, read_rgb
from svga.qa.pixels import compare_pixels

RNG = np.random.default_rng(14)


def png_bytes(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **save)
    return buf.getvalue()


def screen_like(w: int, h: int) -> np.ndarray:
    """Flat blocks (long zlib matches, as screenshots have) and noisy ones (Paeth rows)."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, : w // 2] = (30, 60, 200)
    img[h // 3:, w // 3:] = RNG.integers(0, 256, (h - h // 3, w - w // 3, 3), dtype=np.uint8)
    return img


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (97, 31), (640, 480)])
def test_rgb_and_rgba_take_the_fast_decoder_and_give_back_what_was_written(tmp_path, size):
    w, h = size
    rgb = screen_like(w, h)
    alpha = RNG.integers(0, 256, (h, w, 1), dtype=np.uint8)
    rgba = Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA")
    plain = Image.fromarray(rgb, "RGB")
    for name, img, level in (("rgb", plain, 6), ("rgb0", plain, 0), ("rgba", rgba, 9)):
        data = png_bytes(img, compress_level=level)
        fast = decode_fast(data)
        assert fast is not None, name
        assert fast.shape == (h, w, 3) and fast.dtype == np.uint8
        assert np.array_equal(fast, rgb), name
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        assert np.array_equal(read_rgb(path), rgb), name


def test_other_kinds_go_through_pillow_with_the_same_reading(tmp_path):
    h, w = 20, 30
    grey = RNG.integers(0, 256, (h, w), dtype=np.uint8)
    grey16 = RNG.integers(0, 65536, (h, w), dtype=np.uint16)
    rgb = screen_like(w, h)
    palette = Image.fromarray(rgb, "RGB").quantize(colors=16)
    cases = {
        "grey": (Image.fromarray(grey, "L"), np.repeat(grey[..., None], 3, axis=2)),
        "grey16": (Image.fromarray(grey16), np.repeat((grey16 >> 8).astype(np.uint8)[..., None], 3, axis=2)),
        "palette": (palette, np.asarray(palette.convert("RGB"))),
    }
    for name, (img, want) in cases.items():
        data = png_bytes(img)
        assert decode_fast(data) is None, name
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        assert np.array_equal(read_rgb(path), want), name


def test_a_damaged_rgb_png_is_refused_in_one_line(tmp_path):
    data = png_bytes(Image.fromarray(screen_like(200, 100), "RGB"))
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    assert decode_fast(cut.read_bytes()) is None
    with pytest.raises(BadInput) as e:
        read_rgb(cut, "screenshot")
    assert "truncated or corrupt" in str(e.value) and "\n" not in str(e.value)
    # A lie in the header (a 1x1 IHDR before a 200x100 image's data) is not decoded either.
    flipped = bytearray(data)
    flipped[16:24] = (1).to_bytes(4, "big") * 2
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(BadInput):
        read_rgb(bad)


def numpy_count(a: np.ndarray, b: np.ndarray, tol: int) -> int:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int((d > tol).any(axis=2).sum())


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (2, 5), (3, 3), (5, 7), (8, 3), (1920, 1080)])
@pytest.mark.parametrize("tol", [0, 3])
def test_row_skipping_comparison_counts_as_numpy_does(size, tol):
    w, h = size
    a = screen_like(w, h)
    for changes in (0, 1, 5, max(1, w * h // 3)):
        b = a.copy()
        idx = RNG.choice(w * h, size=min(changes, w * h), replace=False)
        ys, xs = np.divmod(idx, w)
        b[ys, xs, RNG.integers(0, 3, len(idx))] += RNG.integers(1, 6, len(idx)).astype(np.uint8)
        res = compare_pixels(a, b, tolerance=tol)
        assert res.count == numpy_count(a, b, tol), (size, tol, changes)
        d = np.abs(a.astype(np.int16) - b.astype(np.int16)) > tol
        assert np.array_equal(res.differ, d.any(axis=2))
