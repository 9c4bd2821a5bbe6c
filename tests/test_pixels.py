"""svga/pixels.py: the one conversion between 0x00RRGGBB framebuffer words and RGB images.

Oracles written here: a handful of words converted by hand, and a shift-and-mask reading of
the words (the arithmetic of docs/qemu-7.2.md 'BITS_PER_PIXEL': red 0xFF0000, green 0x00FF00,
blue 0x0000FF), which the module's channel copies out of the bytes must agree with on every
shape, stride, byte order and dtype."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from svga import pixels


def shifted(words):
    """Shift and mask, one channel at a time (not the module's way)."""
    w = np.asarray(words).astype(np.uint32)
    return np.stack([(w >> 16) & 0xFF, (w >> 8) & 0xFF, w & 0xFF], axis=-1).astype(np.uint8)


RNG = np.random.default_rng(15)
WORDS = RNG.integers(0, 1 << 32, size=(37, 53), dtype=np.uint64).astype(np.uint32)


def test_words_by_hand():
    words = np.array([0x00123456, 0xFF000000, 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFFABCDEF], np.uint32)
    want = [(0x12, 0x34, 0x56), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (0xAB, 0xCD, 0xEF)]
    got = pixels.to_rgb(words)
    assert got.dtype == np.uint8 and got.shape == (6, 3)
    assert [tuple(int(v) for v in p) for p in got] == want


def _unaligned():
    raw = bytearray(WORDS.tobytes() + b"\0")
    return np.frombuffer(raw, np.uint8)[1: 1 + WORDS.nbytes].view("<u4").reshape(WORDS.shape)


CASES = {
    "contiguous": lambda: WORDS,
    "transposed": lambda: WORDS.T,
    "reversed and strided": lambda: WORDS[::-1, ::3],
    "one row": lambda: WORDS[5],
    "one column": lambda: WORDS[:, 7],
    "a scalar": lambda: WORDS[0, 0],
    "3-d": lambda: WORDS[:36].reshape(6, 6, 53),
    "big-endian": lambda: WORDS.astype(">u4"),
    "int64 with negatives": lambda: WORDS.astype(np.int64) - (1 << 31),
    "a list": lambda: [1, 2, 0xFFFFFF, 0x01020304],
    "unaligned": _unaligned,
    "empty rows": lambda: np.zeros((0, 5), np.uint32),
    "empty columns": lambda: np.zeros((3, 0), np.uint32),
}


@pytest.mark.parametrize("case", CASES)
def test_to_rgb_is_the_shifted_reading(case):
    words = CASES[case]()
    got = pixels.to_rgb(words)
    want = shifted(words)
    assert got.shape == want.shape == np.shape(words) + (3,) and got.dtype == np.uint8
    assert np.array_equal(got, want)
    assert got.flags.c_contiguous and got.flags.writeable


def test_to_rgb_into_out_writes_there_and_nowhere_else():
    canvas = np.full((40, 60, 3), 7, np.uint8)
    out = canvas[2:39, 3:56]  # a strided window of a bigger image
    assert pixels.to_rgb(WORDS, out=out) is out
    assert np.array_equal(out, shifted(WORDS))
    outside = np.ones(canvas.shape[:2], bool)
    outside[2:39, 3:56] = False
    assert (canvas[outside] == 7).all()


@pytest.mark.parametrize("bad", [np.zeros((37, 53, 3), np.uint16), np.zeros((37, 52, 3), np.uint8),
                                 np.zeros((37, 53, 4), np.uint8)])
def test_a_wrong_out_is_refused(bad):
    with pytest.raises(ValueError, match="out must be a"):
        pixels.to_rgb(WORDS, out=bad)


def test_bytes_to_rgb_reads_a_strided_view_of_memory():
    """Framebuffer memory as the model holds it: bytes B, G, R, X, a stride longer than a row,
    a base that is not a whole number of words."""
    height, width, stride, base = 9, 11, 11 * 4 + 12, 3
    memory = RNG.integers(0, 256, size=base + height * stride, dtype=np.uint8)
    view = as_strided(memory[base:], shape=(height, width, 4), strides=(stride, 4, 1))
    words = np.array([[int.from_bytes(bytes(memory[base + r * stride + 4 * c: base + r * stride + 4 * c + 4]),
                                      "little") for c in range(width)] for r in range(height)], np.uint32)
    assert np.array_equal(pixels.bytes_to_rgb(view), shifted(words))
    out = np.zeros((height, width, 3), np.uint8)
    assert pixels.bytes_to_rgb(view, out) is out and np.array_equal(out, shifted(words))


@pytest.mark.parametrize("bad", [np.zeros((4, 5), np.uint8), np.zeros((4, 3), np.uint8),
                                 np.zeros((4, 4), np.uint32), np.uint8(0)])
def test_bytes_to_rgb_wants_uint8_with_four_bytes_a_pixel(bad):
    with pytest.raises(ValueError, match="trailing axis of 4"):
        pixels.bytes_to_rgb(bad)


def test_from_rgb_inverts_to_rgb_on_24_bit_words():
    words = WORDS & 0xFFFFFF
    assert np.array_equal(pixels.from_rgb(pixels.to_rgb(words)), words)
    rgba = np.concatenate([shifted(words), np.full(words.shape + (1,), 9, np.uint8)], axis=-1)
    assert np.array_equal(pixels.from_rgb(rgba), words)  # alpha ignored
