"""``Device.screenshot(composite=True)`` and ``svga screenshot --cursor``: the hardware cursor
drawn into a screenshot the way the device shows it.

QEMU's screendump never includes the hardware cursor (docs/qemu-7.2.md 'DEFINE_CURSOR rules':
QEMU hands the cursor to its display, here VNC). So on QEMU (qtest, ``display="vnc"``, which
gives the cursor capability 0xE3) the driver composites the cursor it defined itself. Each
screenshot is checked against two oracles that do not use the driver's compositing:

- the software model on profile ``qemu-cursor`` playing the same sequence: it decodes the
  DEFINE_CURSOR bytes the driver sent as QEMU 7.2 reads them (svga/model/cursor.py) and draws
  the cursor into its own display picture;
- a numpy compositing written here from the cursor's RGBA: over QEMU's own screendump, a pixel
  of the cursor with alpha >= 128 replaces the screen (DEFINE_CURSOR has transparency from its
  AND mask only), the cursor's hotspot sits at the position it was moved to, and what falls
  outside the screen is cut off.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from svga.device import Device, open_device

pytestmark = pytest.mark.qemu

W, H = 320, 240


def background() -> np.ndarray:
    """(H, W) 0x00RRGGBB: a gradient with a few blocks, so no cursor pixel hides by chance."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.uint32)
    words = ((xx * 255 // (W - 1)) << 16) | ((yy * 255 // (H - 1)) << 8) | np.uint32(0x40)
    words[40:90, 200:300] = 0x00FFFF00
    words[150:230, 10:60] = 0x000000FF
    return words


def cursor_image(w: int, h: int, seed: int) -> np.ndarray:
    """(h, w, 4) RGBA: random colours, alpha of every level (the driver's threshold is 128)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    img[0, 0, 3], img[0, 1, 3], img[0, 2, 3] = 127, 128, 0
    return img


def words_to_rgb(words: np.ndarray) -> np.ndarray:
    return np.stack([(words >> 16) & 0xFF, (words >> 8) & 0xFF, words & 0xFF], axis=-1).astype(np.uint8)


def composited(screen: np.ndarray, rgba: np.ndarray, hotspot: tuple[int, int], at: tuple[int, int]
               ) -> np.ndarray:
    """The oracle: ``rgba`` drawn over ``screen`` (a copy), opaque where alpha >= 128, pixel by
    pixel, skipping what falls outside."""
    out = screen.copy()
    left, top = at[0] - hotspot[0], at[1] - hotspot[1]
    for cy in range(rgba.shape[0]):
        for cx in range(rgba.shape[1]):
            x, y = left + cx, top + cy
            if 0 <= x < screen.shape[1] and 0 <= y < screen.shape[0] and rgba[cy, cx, 3] >= 128:
                out[y, x] = rgba[cy, cx, :3]
    return out


# Each step: define a cursor (or keep the last), then move it; the last hides it.
STEPS = [
    ("32x32 inside", cursor_image(32, 32, 1), (5, 7), (100, 80), True),
    ("moved near the top-left corner, partly off screen", None, None, (2, 3), True),
    ("64x48 past the bottom-right edge", cursor_image(64, 48, 2), (1, 2), (W - 20, H - 10), True),
    ("17x5 (the driver pads it to 32 wide), hotspot at its far corner", cursor_image(17, 5, 3), (16, 4),
     (150, 120), True),
    ("hidden", None, None, (150, 120), False),
]


def play(dev: Device, screens: list[np.ndarray], plain: list[np.ndarray] | None = None) -> None:
    """Draw the background and run STEPS on ``dev``, appending after each step ``dev``'s
    composited screenshot to ``screens`` (and its plain one to ``plain``)."""
    dev.set_mode(W, H)
    dev.framebuffer[...] = background()
    dev.update()
    for _, rgba, hotspot, at, visible in STEPS:
        if rgba is not None:
            dev.define_cursor(rgba, hotspot=hotspot)
        dev.move_cursor(*at, visible=visible)
        screens.append(dev.screenshot_array(composite=True))
        if plain is not None:
            plain.append(dev.screenshot_array(cursor=False))


@pytest.fixture(scope="module")
def runs() -> dict:
    """The same sequence on QEMU and on the model; QEMU's plain screendump after each step."""
    out: dict = {"qemu": [], "model": [], "plain": []}
    with open_device("qemu", qemu_display="vnc") as dev:
        assert dev.has_cursor, "QEMU with a VNC display offers the cursor capability (0xE3)"
        play(dev, out["qemu"], out["plain"])
    with open_device("model", profile="qemu-cursor") as dev:
        assert dev.transport.kind == "model" and dev.has_cursor
        play(dev, out["model"])
    return out


def expected_after(step: int) -> np.ndarray:
    """The numpy oracle for STEPS[step], over the background the test drew."""
    rgba, hotspot = None, None
    for _, r, hs, _, _ in STEPS[: step + 1]:
        if r is not None:
            rgba, hotspot = r, hs
    _, _, _, at, visible = STEPS[step]
    screen = words_to_rgb(background())
    return composited(screen, rgba, hotspot, at) if visible else screen


def test_qemus_screendump_never_shows_the_cursor(runs):
    for plain in runs["plain"]:
        assert np.array_equal(plain, words_to_rgb(background()))


@pytest.mark.parametrize("step", range(len(STEPS)), ids=[s[0] for s in STEPS])
def test_composite_on_qemu_is_what_the_model_and_numpy_draw(runs, step):
    want = expected_after(step)
    assert np.array_equal(runs["model"][step], want), "the model's own cursor drawing differs from numpy"
    got = runs["qemu"][step]
    diff = np.argwhere((got != want).any(axis=2))
    assert not len(diff), f"{len(diff)} pixels differ, first at (x, y) = {tuple(diff[0][::-1])}"
    changed = int((want != runs["plain"][step]).any(axis=2).sum())
    if STEPS[step][4]:
        assert changed > 20, "the cursor must show in the picture for this step to check anything"
    else:
        assert changed == 0


# -- the command ---------------------------------------------------------------------------
def test_screenshot_help_says_the_screendump_has_no_cursor(capsys):
    from svga.tools.cli import main

    with pytest.raises(SystemExit) as e:
        main(["screenshot", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--cursor" in text and "--no-cursor" in text
    assert "QEMU's screendump and VRAM never include it" in text


def test_svga_screenshot_cursor_draws_the_cursor_the_device_was_given(tmp_path, monkeypatch):
    """The command's path (flags, device, PNG) on a QEMU device whose cursor the same process
    defined: ``svga screenshot`` opens its device through open_device, handed here the device
    the test prepared. Without --cursor the PNG is QEMU's screendump (no cursor)."""
    import svga.tools.cli as cli

    rgba, hotspot, at = cursor_image(32, 32, 7), (3, 4), (60, 50)
    want = composited(words_to_rgb(background()), rgba, hotspot, at)
    dev = open_device("qemu", qemu_display="vnc")
    try:
        dev.set_mode(W, H)
        dev.framebuffer[...] = background()
        dev.update()
        dev.define_cursor(rgba, hotspot=hotspot)
        dev.move_cursor(*at)
        opened = []

        class Kept:
            """The prepared device for each open_device call, closed only at the end."""

            def __enter__(self) -> Device:
                return dev

            def __exit__(self, *exc: object) -> None:
                return None

        def fake_open(spec: str, **kw: object) -> Kept:
            opened.append((spec, kw.get("qemu_display")))
            return Kept()

        monkeypatch.setattr(cli, "open_device", fake_open)
        with_cursor, without = tmp_path / "with.png", tmp_path / "without.png"
        assert cli.main(["screenshot", str(with_cursor), "--cursor", "--device", "qemu",
                         "--qemu-display", "vnc"]) == 0
        assert cli.main(["screenshot", str(without), "--device", "qemu", "--qemu-display", "vnc"]) == 0
        assert opened == [("qemu", "vnc"), ("qemu", "vnc")]
        assert np.array_equal(np.asarray(Image.open(with_cursor).convert("RGB")), want)
        assert np.array_equal(np.asarray(Image.open(without).convert("RGB")), words_to_rgb(background()))
    finally:
        dev.close()
