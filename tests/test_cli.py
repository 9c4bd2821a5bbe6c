"""svga/tools/cli.py and the demo pattern, run as a user would (through main())."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from svga.tools.cli import main, parse_mode

# -- the demo's picture, written down from what svga/tools/demo.py says it draws --------------------
# Not computed with the demo's own functions: a change of colour, place or order in the demo
# makes the tests below fail.
WHITE, BLACK = 0xFFFFFF, 0x000000
DEMO_BARS = (0xFFFFFF, 0xFFFF00, 0x00FFFF, 0x00FF00, 0xFF00FF, 0xFF0000, 0x0000FF, 0x000000)
"""The colour bars, left to right: white, yellow, cyan, green, magenta, red, blue, black."""
CURSOR_AT = (600, 450)
"""The arrow's hotspot (its tip): 3/4 of the 800x600 screen across and down."""


def demo_picture(width: int = 800, height: int = 600) -> np.ndarray:
    """(height, width) 0x00RRGGBB: the demo's picture without the cursor.

    - a gradient: red from 0 at the left edge to 255 at the right, green from 0 at the top to
      255 at the bottom (each n-1 steps of 255/(n-1), rounded down), blue fixed at 0x60;
    - eight colour bars of width/16 x height/8 side by side from (width/2, height/16);
    - an 8x8 checker of cells max(height/40, 4) square from (width/16, height/2), light
      (0xE0E0E0) where column + row is even, dark (0x202020) where it is odd;
    - the checker block copied to its right, one cell of space between them;
    - the bars but the last copied half a bar right and down (overlapping their source, so
      the copy reads the bars as they were before it);
    - a diagonal of 2x2 white dots every 3 pixels from the centre, over a third of the
      shorter side.
    """
    x = np.arange(width, dtype=np.uint32)
    y = np.arange(height, dtype=np.uint32)
    red = x * 255 // (width - 1)
    green = y * 255 // (height - 1)
    px = (red[None, :] << 16) | (green[:, None] << 8) | np.uint32(0x60)
    bar_w, bar_h, bars_x, bars_y = width // 16, height // 8, width // 2, height // 16
    for i, colour in enumerate(DEMO_BARS):
        px[bars_y:bars_y + bar_h, bars_x + i * bar_w:bars_x + (i + 1) * bar_w] = colour
    cell, check_x, check_y = max(height // 40, 4), width // 16, height // 2
    for row in range(8):
        for col in range(8):
            top, left = check_y + row * cell, check_x + col * cell
            px[top:top + cell, left:left + cell] = 0x202020 if (row + col) % 2 else 0xE0E0E0
    block = 8 * cell
    px[check_y:check_y + block, check_x + block + cell:check_x + 2 * block + cell] = \
        px[check_y:check_y + block, check_x:check_x + block].copy()
    moved = px[bars_y:bars_y + bar_h, bars_x:bars_x + 7 * bar_w].copy()
    top, left = bars_y + bar_h // 2, bars_x + bar_w // 2
    px[top:top + bar_h, left:left + 7 * bar_w] = moved
    for i in range(0, min(width, height) // 3, 3):
        px[height // 2 + i:height // 2 + i + 2, width // 2 + i:width // 2 + i + 2] = WHITE
    return px


def check_demo_picture(px: np.ndarray, cursor: bool) -> None:
    """``px`` (600, 800) 0x00RRGGBB is the demo's picture; with ``cursor``, an arrow (white,
    outlined in black) with its tip at CURSOR_AT covers part of the 32x32 box there."""
    want = demo_picture()
    assert px.shape == want.shape
    x, y = CURSOR_AT
    box = (slice(y, y + 32), slice(x, x + 32))
    outside = np.ones(want.shape, dtype=bool)
    if cursor:
        outside[box] = False
    bad = np.argwhere(outside & (px != want))
    assert not len(bad), f"{len(bad)} pixels differ from the demo's picture, first (y, x) {tuple(bad[0])}: " \
                         f"{int(px[tuple(bad[0])]):06x}, expected {int(want[tuple(bad[0])]):06x}"
    if cursor:
        got, under = px[box], want[box]
        assert np.isin(got[got != under], (WHITE, BLACK)).all(), "the arrow is only white and black"
        assert got[0, 0] == BLACK and got[5, 1] == WHITE  # its outlined tip, its white inside
        assert got[0, 31] == under[0, 31] and got[31, 0] == under[31, 0]  # box corners it leaves free
        assert (got == WHITE).sum() > 100 and (got == BLACK).sum() > 40  # an arrow, not a dot


def rgb_words(path) -> np.ndarray:
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.uint32)
    return (img[..., 0] << 16) | (img[..., 1] << 8) | img[..., 2]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("profile,caps", [("qemu", "0x00000003"), ("vmware", "EXTENDED_FIFO")])
def test_info(capsys, profile, caps):
    code, out, _ = run(capsys, "info", "--device", "model", "--profile", profile)
    assert code == 0
    assert "SVGA_ID_2" in out and caps in out
    code, out, _ = run(capsys, "info", "--device", "model", "--profile", profile, "--json")
    assert json.loads(out)["version"] == 2


def test_mode(capsys):
    code, out, _ = run(capsys, "mode", "1024x768x32", "--device", "model", "--clear", "0x102030")
    assert code == 0 and "1024x768x32, 4096 bytes/line" in out


@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_demo_writes_the_pattern(capsys, tmp_path, profile):
    out = tmp_path / "demo.png"
    code, stdout, err = run(capsys, "demo", "--device", "model", "--profile", profile, "--out", str(out))
    assert code == 0, err
    assert "fills sent" in err  # progress on stderr
    px = rgb_words(out)
    # The whole picture; the cursor's arrow at 3/4 of the screen (the vmware profile's
    # hardware cursor composited into the screenshot, or drawn by the demo on qemu).
    check_demo_picture(px, cursor=True)
    assert px[0, 0] == 0x000060 and px[599, 799] == 0xFFFF60  # the gradient's corners
    assert px[600 // 16 + 2, 400 + 2] == WHITE  # the first colour bar


def test_bad_input_is_one_line_and_nonzero(capsys):
    code, _, err = run(capsys, "info", "--device", "floppy")
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("svga: error: unknown device 'floppy'")
    code, _, err = run(capsys, "mode", "5000x100", "--device", "model")
    assert code == 1 and "outside the device" in err
    with pytest.raises(SystemExit) as e:
        main(["mode", "big", "--device", "model"])
    assert e.value.code == 1  # usage errors too: one line, exit 1 (README)
    code, _, err = run(capsys, "demo", "--device", "model", "--out", "/nonexistent/dir/x.png")
    assert code == 1 and "cannot write /nonexistent/dir/x.png" in err


def test_parse_mode():
    assert parse_mode("800x600") == (800, 600, 32)
    assert parse_mode("1024X768x32") == (1024, 768, 32)


def test_help_teaches():
    r = subprocess.run([sys.executable, "-m", "svga", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("demo", "info", "mode", "screenshot", "devices:", "examples:"):
        assert word in r.stdout


def test_demo_screenshot_without_the_hardware_cursor(capsys, tmp_path):
    out = tmp_path / "nocursor.png"
    code, _, err = run(capsys, "demo", "--device", "model", "--profile", "qemu-cursor", "--no-cursor",
                       "--out", str(out), "-q")
    assert code == 0, err
    px = rgb_words(out)
    # qemu-cursor offers the hardware cursor, so the demo did not draw it into the framebuffer;
    # left out of the screenshot, the gradient shows where the arrow would be.
    check_demo_picture(px, cursor=False)


# -- subcommands built only when they run ----------------------------------------------------
def subcommand_helps(parser) -> dict[str, str]:  # noqa: ANN001 - an ArgumentParser
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: a.help for a in sub._choices_actions}


def test_the_help_lines_of_unbuilt_commands_are_their_modules_own():
    """``svga --help`` lists every command without importing the lab, the lint, QA or the
    captures: the line it shows for each must be the one its module gives when built whole
    (build_parser() with no argv imports every module)."""
    from svga.tools.cli import EXTENSIONS, build_parser

    whole = subcommand_helps(build_parser())
    lazy = subcommand_helps(build_parser(["--help"]))
    own = {"info", "mode", "demo", "screenshot"}
    assert set(whole) == own | set(EXTENSIONS), (
        "a tool module adds a command svga/tools/cli.py EXTENSIONS does not list (or the reverse): "
        f"{sorted(set(whole) ^ (own | set(EXTENSIONS)))}")
    assert lazy == whole
    # Running one command builds that command's module only, whole.
    one = build_parser(["check", "x.svgascript"])
    assert subcommand_helps(one) == whole
    sub = next(a for a in one._actions if a.dest == "command")
    assert "--profile" in sub.choices["check"].format_help()
    assert sub.choices["lab"].format_help().count("--") <= 1  # a placeholder: only its --help


def test_a_command_whose_module_fails_to_import_says_so_loudly(monkeypatch):
    """A broken tool module must not make its command vanish or print a usage error: the
    ImportError goes out whole (the modules all ship with the package)."""
    import importlib

    import svga.tools.cli as cli

    real = importlib.import_module

    def broken(name: str, *a: object, **k: object):  # noqa: ANN202
        if name == "svga.tools.check":
            raise ImportError("svga.tools.check is broken (test)")
        return real(name, *a, **k)

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    with pytest.raises(ImportError, match="broken"):
        cli.main(["check", "examples/breaks-qemu.svgascript"])
    with pytest.raises(ImportError, match="broken"):
        cli.build_parser()
    assert cli.main(["info", "--device", "model"]) == 0  # the other commands still run


def test_screenshot_cursor_on_a_device_just_opened_is_one_clear_error(capsys, tmp_path):
    """Run on its own, ``svga screenshot --cursor`` opens a fresh device: no cursor has been
    defined through it and no device hands a cursor's shape back, so it says so (one line,
    exit 1, as every other error) and writes nothing."""
    out = tmp_path / "shot.png"
    for device in (("--device", "model"), ("--device", "model", "--profile", "qemu-cursor")):
        code, printed, err = run(capsys, "screenshot", str(out), "--cursor", *device)
        assert code == 1 and printed == ""
        assert err.count("\n") == 1 and err.startswith("svga: error: --cursor: no cursor to draw")
        assert "process that defined it" in err
        assert not out.exists()
    r = subprocess.run([sys.executable, "-m", "svga", "screenshot", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "stops with an error (exit 1)" in " ".join(r.stdout.split())
