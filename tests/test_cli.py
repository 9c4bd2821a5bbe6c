"""svga/tools/cli.py and the demo pattern, run as a user would (through main())."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from svga.tools.cli import main, parse_mode
from svga.tools.demo import BARS, gradient


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
    img = np.asarray(Image.open(out).convert("RGB")).astype(np.uint32)
    assert img.shape == (600, 800, 3)
    px = (img[..., 0] << 16) | (img[..., 1] << 8) | img[..., 2]
    grad = gradient(800, 600)
    # Untouched corners keep the gradient; the first colour bar is where the demo puts it.
    assert px[599, 0] == grad[599, 0] and px[300, 10] == grad[300, 10]
    assert px[600 // 16 + 2, 400 + 2] == BARS[0]
    # The cursor's arrow shows at 3/4 of the screen (hardware cursor composited, or drawn).
    assert px[450 + 5, 600 + 1] == 0xFFFFFF


def test_bad_input_is_one_line_and_nonzero(capsys):
    code, _, err = run(capsys, "info", "--device", "floppy")
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("svga: error: unknown device 'floppy'")
    code, _, err = run(capsys, "mode", "5000x100", "--device", "model")
    assert code == 1 and "outside the device" in err
    with pytest.raises(SystemExit) as e:
        main(["mode", "big", "--device", "model"])
    assert e.value.code == 2
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
    img = np.asarray(Image.open(out).convert("RGB")).astype(np.uint32)
    px = (img[..., 0] << 16) | (img[..., 1] << 8) | img[..., 2]
    # qemu-cursor offers the hardware cursor, so the demo did not draw it into the framebuffer;
    # left out of the screenshot, the gradient shows where the arrow would be.
    assert px[450 + 5, 600 + 1] == gradient(800, 600)[455, 601]
