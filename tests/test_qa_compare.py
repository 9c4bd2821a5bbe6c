"""svga compare (pixels and needles) and svga needle create: verdicts against numpy
computations written here, exit codes, and one-line messages for every bad input; needles
written by ``svga needle create`` are read back by os-autoinst's own needle.pm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_qa_openqa import texture, tinycv  # noqa: E402


def svga(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "svga", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(11)
    a = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    b = a.copy()
    b[10:20, 30:35] = np.clip(b[10:20, 30:35].astype(int) + 3, 0, 255)  # 50 pixels off by <= 3
    b[100, 150] = 255 - b[100, 150]  # one pixel far off
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    return tmp_path, a, b


def numpy_count(a, b, tol, excludes=(), mask=None):
    diff = (np.abs(a.astype(int) - b.astype(int)) > tol).any(axis=2)
    for x, y, w, h in excludes:
        diff[y : y + h, x : x + w] = False
    if mask is not None:
        diff &= mask
    return int(diff.sum())


def test_identical_images_match(pair):
    d, a, _ = pair
    p = svga("compare", d / "a.png", d / "a.png")
    assert p.returncode == 0 and p.stdout.startswith("match: 0 of 19200")


@pytest.mark.parametrize("tol", [0, 2, 3, 200])
def test_pixel_counts_agree_with_numpy(pair, tol):
    d, a, b = pair
    p = svga("compare", d / "b.png", d / "a.png", "--tolerance", tol, "--json")
    out = json.loads(p.stdout)
    want = numpy_count(a, b, tol)
    assert out["differing_pixels"] == want
    assert p.returncode == (0 if want == 0 else 1)


def test_max_diff_pixels_excludes_and_mask(pair, tmp_path):
    d, a, b = pair
    n = numpy_count(a, b, 0)
    assert svga("compare", d / "b.png", d / "a.png", "--max-diff-pixels", n).returncode == 0
    assert svga("compare", d / "b.png", d / "a.png", "--max-diff-pixels", n - 1).returncode == 1
    p = svga(
        "compare", d / "b.png", d / "a.png", "--exclude", "30,10,5,10", "--exclude", "150,100,1,1", "--json"
    )
    assert p.returncode == 0 and json.loads(p.stdout)["differing_pixels"] == 0
    mask = np.zeros((120, 160, 3), np.uint8)
    mask[:, :100] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    p = svga("compare", d / "b.png", d / "a.png", "--mask", tmp_path / "mask.png", "--json")
    out = json.loads(p.stdout)
    assert out["differing_pixels"] == numpy_count(a, b, 0, mask=mask[..., 0] > 0) == 50
    assert out["bbox"] == [30, 10, 5, 10]


def test_diff_image_highlights_exactly_the_differing_pixels(pair):
    d, a, b = pair
    p = svga("compare", d / "b.png", d / "a.png", "--tolerance", 3, "--diff", d / "diff.png")
    assert p.returncode == 1 and "bounding box 150,100 1x1" in p.stdout
    diff = np.asarray(Image.open(d / "diff.png").convert("RGB"))
    assert diff.shape == a.shape
    assert tuple(diff[100, 150]) == (255, 0, 255)
    # Away from the outline and label, the picture is the actual image dimmed.
    assert np.array_equal(diff[40:90, 0:100], b[40:90, 0:100] // 3 + 16)


def test_needle_match_and_diff_picture(tmp_path):
    rng = np.random.default_rng(5)
    img = texture(rng, 320, 240)
    Image.fromarray(img).save(tmp_path / "shot.png")
    p = svga(
        "needle",
        "create",
        tmp_path / "shot.png",
        "--area",
        "20,30,100,40",
        "--area",
        "150,100,60,60:match=90",
        "--exclude",
        "250,10,30,30",
        "--tag",
        "desk",
        "-o",
        tmp_path / "n" / "desk.json",
    )
    assert p.returncode == 0, p.stderr
    moved = np.roll(img, (4, -6), axis=(0, 1))
    Image.fromarray(moved).save(tmp_path / "moved.png")
    p = svga(
        "compare",
        tmp_path / "moved.png",
        tmp_path / "n" / "desk.json",
        "--json",
        "--diff",
        tmp_path / "d.png",
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [a["found"] for a in out["areas"] if a["type"] == "match"] == [[14, 34], [144, 104]]
    ref = tinycv([(tmp_path / "moved.png", tmp_path / "n" / "desk.json")])[0]
    assert ref["ok"] == 1 and [(a["x"], a["y"]) for a in ref["areas"]] == [(14, 34), (144, 104)]
    pic = np.asarray(Image.open(tmp_path / "d.png").convert("RGB"))
    assert tuple(pic[34, 14]) == (0, 230, 0)  # the found outline of area 0, green: passed


def test_needle_create_writes_what_needle_pm_reads(tmp_path):
    img = texture(np.random.default_rng(8), 200, 150)
    Image.fromarray(img).save(tmp_path / "s.png")
    p = svga(
        "needle",
        "create",
        tmp_path / "s.png",
        "--area",
        "10,10,50,30:margin=20",
        "--ocr",
        "100,100,40,20",
        "--tag",
        "b",
        "--tag",
        "a",
        "-o",
        tmp_path / "x.json",
    )
    assert p.returncode == 0
    data = json.loads((tmp_path / "x.json").read_text())
    assert data == {
        "area": [
            {"xpos": 10, "ypos": 10, "width": 50, "height": 30, "type": "match", "margin": 20},
            {"xpos": 100, "ypos": 100, "width": 40, "height": 20, "type": "ocr"},
        ],
        "properties": [],
        "tags": ["a", "b"],
    }
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png").convert("RGB")), img)
    ref = tinycv([(tmp_path / "s.png", tmp_path / "x.json")])[0]
    assert ref["ok"] == 1 and ref["areas"][0]["similarity"] == 1


# -- bad input: exit 2, one line ------------------------------------------------------------------
def one_line_error(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("svga: error: "), err
    assert "Traceback" not in p.stderr
    for w in words:
        assert w in err, (w, err)


def test_bad_inputs(pair, tmp_path):
    d, a, _ = pair
    good = d / "a.png"
    (tmp_path / "text.png").write_text("hello")
    raw = (d / "a.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(raw[: len(raw) // 2])
    one_line_error(svga("compare", tmp_path / "missing.png", good), "missing.png", "no such file")
    one_line_error(svga("compare", good, tmp_path / "missing.png"), "no such file")
    one_line_error(svga("compare", tmp_path / "text.png", good), "not a PNG")
    one_line_error(svga("compare", tmp_path / "trunc.png", good), "truncated")
    Image.fromarray(a[:60]).save(tmp_path / "half.png")
    one_line_error(svga("compare", tmp_path / "half.png", good), "differ in size")
    one_line_error(svga("compare", good, good, "--exclude", "1,2,3"), "X,Y,W,H")
    one_line_error(svga("compare", good, good, "--exclude", "150,100,20,20"), "outside")
    one_line_error(svga("compare", good, good, "--mask", tmp_path / "half.png"), "mask")


def needle(tmp_path: Path, name: str, areas, png_size=(160, 120), text: str | None = None) -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (png_size[1], png_size[0], 3), dtype=np.uint8)).save(
        tmp_path / f"{name}.png"
    )
    (tmp_path / f"{name}.json").write_text(text if text is not None else json.dumps({"area": areas}))
    return tmp_path / f"{name}.json"


def test_bad_needles(pair, tmp_path):
    d, _, _ = pair
    shot = d / "a.png"
    one_line_error(
        svga(
            "compare",
            shot,
            needle(tmp_path, "nomatch", [{"xpos": 1, "ypos": 1, "width": 5, "height": 5, "type": "exclude"}]),
        ),
        "no match area",
    )
    one_line_error(svga("compare", shot, needle(tmp_path, "empty", [])), "no match area")
    one_line_error(
        svga(
            "compare", shot, needle(tmp_path, "outside", [{"xpos": 150, "ypos": 0, "width": 20, "height": 5}])
        ),
        "outside the 160x120",
    )
    one_line_error(svga("compare", shot, needle(tmp_path, "badjson", [], text='{"area": [')), "bad JSON")
    one_line_error(
        svga(
            "compare",
            shot,
            needle(tmp_path, "other", [{"xpos": 1, "ypos": 1, "width": 5, "height": 5}], png_size=(100, 80)),
        ),
        "100x80",
        "160x120",
    )
    one_line_error(
        svga("compare", shot, needle(tmp_path, "type", [{"width": 5, "height": 5, "type": "x"}])), "type"
    )
    one_line_error(svga("compare", shot, needle(tmp_path, "zero", [{"xpos": 1, "ypos": 1}])), "empty")
    (tmp_path / "nopng.json").write_text(json.dumps({"area": [{"width": 5, "height": 5}]}))
    one_line_error(svga("compare", shot, tmp_path / "nopng.json"), "PNG", "missing")
    one_line_error(svga("compare", shot, tmp_path / "none.json"), "no such file")
    ok = needle(tmp_path, "ok", [{"xpos": 1, "ypos": 1, "width": 5, "height": 5}])
    one_line_error(svga("compare", shot, ok, "--tolerance", "3"), "--tolerance")
    # os-autoinst refuses the no-match needle too (the oracle for "bad", where it has one).
    assert "error" in tinycv([(shot, tmp_path / "nomatch.json")])[0]


def test_bad_needle_create(tmp_path, pair):
    d, _, _ = pair
    one_line_error(svga("needle", "create", d / "a.png", "-o", tmp_path / "x.json"), "match area")
    one_line_error(
        svga("needle", "create", d / "a.png", "--area", "1,2,3", "-o", tmp_path / "x.json"), "X,Y,W,H"
    )
    one_line_error(
        svga("needle", "create", d / "a.png", "--area", "150,1,30,3", "-o", tmp_path / "x.json"), "outside"
    )
    one_line_error(
        svga("needle", "create", d / "a.png", "--area", "1,1,3,3:match=x", "-o", tmp_path / "x.json"), "match"
    )
    one_line_error(
        svga("needle", "create", d / "a.png", "--area", "1,1,3,3", "-o", tmp_path / "x.txt"), ".json"
    )
    one_line_error(
        svga("needle", "create", tmp_path / "nope.png", "--area", "1,1,3,3", "-o", tmp_path / "x.json"),
        "no such file",
    )


def test_help_teaches():
    p = svga("compare", "--help")
    assert p.returncode == 0 and "exit status: 0 match, 1 no match, 2 bad input" in p.stdout
    assert "svga compare shot.png login-prompt.json" in p.stdout
    p = svga("screenshot", "--help")
    assert "--cursor" in p.stdout and "screendump" in p.stdout
    p = svga("needle", "create", "--help")
    assert "match=PERCENT" in p.stdout
