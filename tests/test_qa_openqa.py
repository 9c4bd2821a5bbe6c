"""svga compare against openQA itself: os-autoinst's needle.pm and tinycv (Debian's
os-autoinst package) judge every generated case through tests/openqa_tinycv.pl, and
``svga compare NEEDLE.json`` must give the same verdict, each area's similarity within 0.01
and (these cases are textured, so the best offset is unique) the same position.

The cases: shifts within and beyond the margin, noise of several strengths, brightness
changes, a small changed block, exclude areas, several areas, areas at the image's edges,
custom match levels and margins, and screenshots of several sizes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "openqa_tinycv.pl"
SIZES = [(640, 480), (800, 600), (1024, 768), (260, 200)]


def tinycv(pairs: list[tuple[Path, Path]], search_ratio: float = 0.0, repeat: int = 1) -> list[dict]:
    """tinycv's answers; with ``repeat``, each pair is searched that many times with the needle
    kept (os-autoinst's needle image cache) and a fresh screenshot, the last answer given."""
    assert shutil.which("perl"), "perl is needed (Debian's os-autoinst package brings it)"
    assert Path("/usr/lib/os-autoinst/needle.pm").exists(), "install Debian's os-autoinst package"
    proc = subprocess.run(
        ["perl", str(DRIVER), "--search-ratio", str(search_ratio), "--repeat", str(repeat)],
        input="".join(f"{s}\t{n}\n" for s, n in pairs),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(pairs), proc.stderr
    return [json.loads(line) for line in lines]


def texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A screen-like picture: blocks of colour, a gradient, and fine noise, so every area has
    one best offset."""
    small = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((w, h), Image.NEAREST), dtype=np.int16)
    yy, xx = np.mgrid[0:h, 0:w]
    big[..., 0] += ((xx * 3 + yy) % 64).astype(np.int16)
    big += rng.integers(-20, 21, (h, w, 3)).astype(np.int16)
    return np.clip(big, 0, 255).astype(np.uint8)


def shifted(img: np.ndarray, dx: int, dy: int, fill: np.ndarray) -> np.ndarray:
    out = fill.copy()
    h, w = img.shape[:2]
    sx0, sx1 = max(0, -dx), min(w, w - dx)
    sy0, sy1 = max(0, -dy), min(h, h - dy)
    out[sy0 + dy : sy1 + dy, sx0 + dx : sx1 + dx] = img[sy0:sy1, sx0:sx1]
    return out


def make_cases(root: Path) -> list[dict]:
    rng = np.random.default_rng(20261201)
    cases = []

    def area(w: int, h: int, edge: str | None = None, **extra: int) -> dict:
        aw, ah = int(rng.integers(16, min(160, w // 3))), int(rng.integers(12, min(100, h // 3)))
        x, y = int(rng.integers(0, w - aw)), int(rng.integers(0, h - ah))
        if edge == "left":
            x = 0
        elif edge == "right":
            x = w - aw
        elif edge == "top":
            y = 0
        elif edge == "bottom":
            y = h - ah
        elif edge == "corner":
            x, y = w - aw, h - ah
        return {"xpos": x, "ypos": y, "width": aw, "height": ah, "type": "match", **extra}

    kinds = [
        "same",
        "shift-in",
        "shift-out",
        "noise",
        "bright",
        "block",
        "exclude",
        "multi",
        "edge",
        "levels",
        "big-area",
    ]
    i = 0
    for size_index, (w, h) in enumerate(SIZES):
        for kind in kinds:
            for rep in range(3 if size_index < 2 else 2):
                i += 1
                base = texture(rng, w, h)
                shot = base.copy()
                areas = [area(w, h)]
                if kind == "shift-in":
                    d = int(rng.integers(1, 50))
                    shot = shifted(base, d * int(rng.choice([-1, 1])), int(rng.integers(-d, d + 1)), base)
                elif kind == "shift-out":
                    areas = [area(w, h, margin=int(rng.choice([0, 10, 20])))]
                    d = areas[0].get("margin") or 50
                    shot = shifted(
                        base, d + int(rng.integers(3, 30)), int(rng.integers(-5, 6)), texture(rng, w, h)
                    )
                elif kind == "noise":
                    sigma = [1.0, 4.0, 8.0, 16.0, 30.0][(rep + size_index) % 5]
                    shot = np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8)
                elif kind == "bright":
                    delta = [4, -6, 12, -25, 40][(rep + size_index) % 5]
                    shot = np.clip(base.astype(np.int16) + delta, 0, 255).astype(np.uint8)
                elif kind == "block":
                    a = areas[0]
                    bw, bh = max(2, a["width"] // int(rng.integers(2, 6))), max(2, a["height"] // 3)
                    bx, by = a["xpos"] + int(rng.integers(0, a["width"] - bw + 1)), a["ypos"] + 1
                    shot[by : by + bh, bx : bx + bw] = rng.integers(0, 256, 3)
                elif kind == "exclude":
                    a = areas[0]
                    ex = {
                        "xpos": a["xpos"] + 2,
                        "ypos": a["ypos"] + 2,
                        "width": a["width"] // 2,
                        "height": a["height"] // 2,
                        "type": "exclude",
                    }
                    shot[ex["ypos"] : ex["ypos"] + ex["height"], ex["xpos"] : ex["xpos"] + ex["width"]] = (
                        rng.integers(0, 256, (ex["height"], ex["width"], 3))
                    )
                    if rep % 2:
                        shot = np.clip(shot + rng.normal(0, 5, shot.shape), 0, 255).astype(np.uint8)
                    areas.append(ex)
                elif kind == "multi":
                    areas = [area(w, h) for _ in range(3)]
                    shot = np.clip(
                        shifted(base, int(rng.integers(-8, 9)), int(rng.integers(-8, 9)), base)
                        + rng.normal(0, 3 + 4 * rep, base.shape),
                        0,
                        255,
                    ).astype(np.uint8)
                    if rep == 1:
                        areas.append(
                            {"xpos": 0, "ypos": 0, "width": w // 4, "height": h // 4, "type": "exclude"}
                        )
                elif kind == "edge":
                    areas = [
                        area(w, h, edge=e)
                        for e in (["left", "bottom"], ["right", "top"], ["corner", "top"])[rep]
                    ]
                    shot = shifted(base, int(rng.integers(-20, 21)), int(rng.integers(-20, 21)), base)
                    shot = np.clip(shot + rng.normal(0, 6, shot.shape), 0, 255).astype(np.uint8)
                elif kind == "levels":
                    areas = [
                        area(
                            w,
                            h,
                            match=int(rng.choice([80, 90, 99, 100])),
                            margin=int(rng.choice([5, 20, 80])),
                        )
                    ]
                    shot = np.clip(shifted(base, 3, -2, base) + rng.normal(0, 7, base.shape), 0, 255).astype(
                        np.uint8
                    )
                elif kind == "big-area":
                    areas = [
                        {
                            "xpos": w // 8,
                            "ypos": h // 8,
                            "width": w * 3 // 4,
                            "height": h * 3 // 4,
                            "type": "match",
                        }
                    ]
                    shot = np.clip(base + rng.normal(0, 2 + 3 * rep, base.shape), 0, 255).astype(np.uint8)
                d = root / f"case{i:03d}"
                d.mkdir()
                Image.fromarray(base).save(d / "needle.png")
                (d / "needle.json").write_text(json.dumps({"area": areas, "tags": [kind]}))
                Image.fromarray(shot).save(d / "shot.png")
                cases.append(
                    {"kind": kind, "size": (w, h), "shot": d / "shot.png", "needle": d / "needle.json"}
                )
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return make_cases(tmp_path_factory.mktemp("openqa-cases"))


def svga_compare(shot: Path, needle: Path, *extra: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "svga", "compare", str(shot), str(needle), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def in_process(shot: Path, needle: Path, search_ratio: float = 0.0):
    from svga.qa.images import read_rgb
    from svga.qa.needle import read_needle
    from svga.qa.openqa import match_needle

    n, img = read_needle(needle)
    return match_needle(read_rgb(shot), n, img, search_ratio)


def test_svga_compare_gives_openqas_verdict_on_every_case(cases):
    refs = tinycv([(c["shot"], c["needle"]) for c in cases])
    verdicts = {True: 0, False: 0}
    kinds_seen = set()
    for case, ref in zip(cases, refs, strict=True):
        assert "error" not in ref, ref
        ours = in_process(case["shot"], case["needle"])
        label = f"{case['kind']} {case['size']} {case['needle']}"
        assert ours.passed == bool(ref["ok"]), label
        checked = [r for r in ours.areas if r.checked]
        assert len(checked) == len(ref["areas"]), label
        for mine, theirs in zip(checked, ref["areas"], strict=True):
            assert abs(mine.similarity - theirs["similarity"]) <= 0.01, (label, mine, theirs)
            assert mine.passed == (theirs["result"] == "ok"), label
            assert (mine.x, mine.y) == (theirs["x"], theirs["y"]), (label, mine, theirs)
        verdicts[ours.passed] += 1
        kinds_seen.add(case["kind"])
    # The cases are worth something only if both verdicts occur, in many kinds.
    assert verdicts[True] >= 20 and verdicts[False] >= 20, verdicts
    assert len(cases) >= 90 and len(kinds_seen) == 11


def test_a_needle_kept_between_checks_gives_what_os_autoinst_gives_for_its_kept_needle(cases):
    """needle.pm keeps a needle's image, and with it tinycv's blur cache, from one check to the
    next (docs/openqa.md 'The grey, blurred images'); one NeedleTemplates per needle is that
    state. Third check of each needle, a fresh screenshot each time, on both sides."""
    from svga.qa.images import read_rgb
    from svga.qa.needle import read_needle
    from svga.qa.openqa import NeedleTemplates, match_needle

    refs = tinycv([(c["shot"], c["needle"]) for c in cases], repeat=3)
    verdicts = set()
    for case, ref in zip(cases, refs, strict=True):
        n, img = read_needle(case["needle"])
        kept = NeedleTemplates(n, img)
        for _ in range(3):
            ours = match_needle(read_rgb(case["shot"]), n, img, templates=kept)
        label = f"{case['kind']} {case['size']} {case['needle']}"
        assert ours.passed == bool(ref["ok"]), label
        for mine, theirs in zip([r for r in ours.areas if r.checked], ref["areas"], strict=True):
            assert abs(mine.similarity - theirs["similarity"]) <= 0.01, (label, mine, theirs)
            assert (mine.x, mine.y) == (theirs["x"], theirs["y"]), (label, mine, theirs)
        verdicts.add(ours.passed)
    assert verdicts == {True, False}


def test_the_cli_gives_the_same_verdicts(cases):
    """The command itself, on a sample of each kind (the in-process check covers them all)."""
    sample = {}
    for c in cases:
        sample.setdefault(c["kind"], c)
    refs = tinycv([(c["shot"], c["needle"]) for c in sample.values()])
    for case, ref in zip(sample.values(), refs, strict=True):
        rc, out = svga_compare(case["shot"], case["needle"])
        assert rc == (0 if ref["ok"] else 1), case
        assert out["result"] == ("ok" if ref["ok"] else "fail")
        matched = [a for a in out["areas"] if a["type"] == "match"]
        for mine, theirs in zip(matched, ref["areas"], strict=True):
            assert abs(mine["similarity"] - theirs["similarity"]) <= 0.01
            assert mine["found"] == [theirs["x"], theirs["y"]]


def test_search_ratio_widens_the_margin_as_assert_screen_does(cases):
    """A shift beyond the margin is found with os-autoinst's full-screen search ratio (1)."""
    beyond = [c for c in cases if c["kind"] == "shift-out"][:4]
    refs = tinycv([(c["shot"], c["needle"]) for c in beyond], search_ratio=1.0)
    for case, ref in zip(beyond, refs, strict=True):
        ours = in_process(case["shot"], case["needle"], 1.0)
        assert ours.passed == bool(ref["ok"])
        for mine, theirs in zip([r for r in ours.areas if r.checked], ref["areas"], strict=True):
            assert abs(mine.similarity - theirs["similarity"]) <= 0.01
    assert any(r["ok"] for r in refs)  # the wide search does find what the plain one cannot


def test_ocr_areas_are_reported_not_checked(tmp_path):
    rng = np.random.default_rng(3)
    base = texture(rng, 320, 240)
    Image.fromarray(base).save(tmp_path / "n.png")
    Image.fromarray(base).save(tmp_path / "s.png")
    (tmp_path / "n.json").write_text(
        json.dumps(
            {
                "area": [
                    {"xpos": 10, "ypos": 10, "width": 50, "height": 30},
                    {"xpos": 100, "ypos": 100, "width": 60, "height": 20, "type": "ocr"},
                ]
            }
        )
    )
    ref = tinycv([(tmp_path / "s.png", tmp_path / "n.json")])[0]
    rc, out = svga_compare(tmp_path / "s.png", tmp_path / "n.json")
    assert ref["ok"] == 1 and rc == 0
    assert [a["result"] for a in out["areas"]] == ["ok", "not checked"]
    assert out["areas"][1]["similarity"] is None
