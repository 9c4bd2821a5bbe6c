"""The model's display read-out (svga/model/transport.py ``_frame``, svga/model/raster.py
``to_rgb``): the legacy screen's pixels as RGB, written straight into a new image.

Oracles: VRAM read back through the transport's memory calls by the test and turned into RGB by
shifts and masks here (model_helpers.rgb_of), the rule of which rows of a mode too big for VRAM
are shown (a row is shown when all its bytes lie inside VRAM), and the image's independence of
VRAM written down as array identities. QEMU itself is the oracle in tests/test_differential.py."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import Guest, rgb_of

from svga.device import open_device
from svga.model import ModelTransport
from svga.registers import Reg

RNG = np.random.default_rng(1080)


def random_words(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 1 << 32, size=shape, dtype=np.uint64).astype(np.uint32)


def vram_words(t: ModelTransport, base: int, stride: int, width: int, height: int) -> np.ndarray:
    rows = [np.frombuffer(t.vram.read(base + r * stride, width * 4), "<u4") for r in range(height)]
    return np.array(rows, np.uint32).reshape(height, width)


@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_a_1080p_screen_is_vram_in_rgb(profile: str) -> None:
    t = ModelTransport(profile)
    g = Guest(t).setup(1920, 1080)
    t.vram.write(0, random_words((1080, 1920)).tobytes())  # the X byte random too
    t.display_image()  # qemu: a refresh adopts the mode as the surface
    img = t.display_image()
    assert img.shape == (1080, 1920, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    assert np.array_equal(img, rgb_of(vram_words(t, 0, 1920 * 4, 1920, 1080) & 0xFFFFFF))
    assert g.regs[Reg.BYTES_PER_LINE] == 1920 * 4


def test_a_locked_pitch_longer_than_a_row_is_followed() -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup(800, 600)
    g.regs[Reg.PITCHLOCK] = 4096
    t.vram.write(0, random_words((600, 1024)).tobytes())
    assert np.array_equal(t.display_image(), rgb_of(vram_words(t, 0, 4096, 800, 600) & 0xFFFFFF))


def test_each_image_is_new_and_drawing_on_it_leaves_vram_alone() -> None:
    t = ModelTransport("vmware")
    Guest(t).setup(64, 48)
    words = random_words((48, 64))
    t.vram.write(0, words.tobytes())
    first = t.display_image()
    first[:] = 0x5A
    second = t.display_image()
    assert not np.shares_memory(first, second)
    assert np.array_equal(second, rgb_of(words & 0xFFFFFF))
    assert t.vram.read(0, words.nbytes) == words.tobytes()


def test_the_cursor_is_drawn_on_the_image_not_into_vram() -> None:
    with open_device("model") as dev:
        dev.set_mode(64, 48)
        words = random_words((48, 64)) & 0xFFFFFF
        dev.framebuffer[:] = words
        dev.update()
        rgba = np.zeros((8, 8, 4), np.uint8)
        rgba[...] = (255, 255, 255, 255)  # an opaque white square
        dev.define_cursor(rgba, (0, 0))
        dev.move_cursor(10, 20)
        with_cursor = dev.screenshot_array()
        plain = dev.screenshot_array(cursor=False)
        assert np.array_equal(plain, rgb_of(words))
        want = rgb_of(words)
        want[20:28, 10:18] = 255
        assert np.array_equal(with_cursor, want)
        assert np.array_equal(dev.read_vram(), words)


def test_a_mode_too_big_for_vram_shows_black_below_the_last_whole_row() -> None:
    """qemu takes a mode bigger than VRAM; each image must be black below the rows that fit,
    however many images were made before (a new array is not a zeroed one)."""
    vram = 2 << 20
    t = ModelTransport("qemu", vram_size=vram)
    Guest(t).setup(1000, 700)
    stride = 4000
    shown = sum(1 for r in range(700) if r * stride + 1000 * 4 <= vram)
    assert 0 < shown < 700
    for _ in range(3):
        words = random_words((vram // 4,))
        t.vram.write(0, words.tobytes())
        img = t.display_image()
        assert img.shape == (700, 1000, 3)
        assert np.array_equal(img[:shown], rgb_of(vram_words(t, 0, stride, 1000, shown) & 0xFFFFFF))
        assert not img[shown:].any()
