"""Benchmarks of the QA checks, each beside its anchor in the same run.

Place in the whole: a tool outside the installed package, like bench/run.py, which collects
:func:`rows` (group "qa") into the one table. Rows:

- ``svga compare`` of two 1920x1080 PNGs pixel for pixel, in-process (reading both PNGs and
  comparing), beside ImageMagick's ``compare -metric AE`` on the same files (a process);
  target 30 ms (issue "Screenshot regression checks", Deliver 6). The PNGs are written as the
  suite writes every screenshot and golden (svga.qa.png: one Up filter, which libspng decodes
  in about 3 ms); a second row reads the same pixels written by Pillow (adaptive filtering,
  mostly Paeth rows: about 16 ms a decode), no target;
- a 1920x1080 needle check with three match areas and the default margin (50 px), in-process
  (:func:`svga.qa.openqa.match_needle` on loaded images), beside os-autoinst's own tinycv on
  the same needle and screenshot (``search_`` timed inside perl by tests/openqa_tinycv.pl, the
  needle kept from one check to the next as os-autoinst keeps it, the screenshot read afresh
  each time): ours keeps the needle the same way (one :class:`svga.qa.openqa.NeedleTemplates`
  for every check; target: tinycv's time), and a second row prepares it afresh in every check
  (what one ``svga compare`` does), no target.

Each figure is a median over rounds in which each side runs its repetitions back to back,
the sides taking turns in one run. Before timing, each
result is checked against its anchor (the same differing-pixel count as ImageMagick, the
same verdict and similarities within 0.01 as tinycv), so no figure comes from wrong work.

    python -m bench.qa            # writes bench/qa-results.md
    python -m bench.qa --quick    # fewer repetitions, writes nothing unless --out
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.table import Row  # noqa: E402
from svga.device import open_device  # noqa: E402
from svga.qa.images import read_pair, read_rgb  # noqa: E402
from svga.qa.needle import read_needle  # noqa: E402
from svga.qa.openqa import NeedleTemplates, match_needle  # noqa: E402
from svga.qa.pixels import compare_pixels  # noqa: E402
from svga.qa.png import write_png  # noqa: E402
from svga.tools.demo import draw_demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "openqa_tinycv.pl"
RESULTS_PATH = Path(__file__).resolve().parent / "qa-results.md"
ROUNDS = 5
"""Rounds of alternating blocks (fewer repetitions than this: one round)."""
W, H = 1920, 1080
AREAS = [(100, 80, 300, 120), (900, 500, 220, 160), (1500, 900, 260, 100)]
PIXEL_TARGET_MS = 30.0
ROWS = [
    (
        "pixels",
        "svga compare, two 1920x1080 PNGs pixel for pixel (read + compare), as the suite writes them",
        "ImageMagick compare -metric AE (a process)",
    ),
    (
        "pixels_pil",
        "the same pixels written by Pillow (Paeth rows: slower to decode)",
        "ImageMagick compare -metric AE (a process)",
    ),
    (
        "needle",
        "1920x1080 needle check, 3 match areas, margin 50, the needle kept between checks",
        "os-autoinst tinycv search_ (inside perl), its needle kept",
    ),
    (
        "needle_cold",
        "the same, the needle prepared afresh in the check (one svga compare)",
        "os-autoinst tinycv search_ (inside perl), its needle kept",
    ),
]


def make_inputs(d: Path) -> dict[str, Path]:
    with open_device("model") as dev:
        dev.set_mode(W, H)
        draw_demo(dev, W, H, progress=lambda s: None)
        shot = dev.screenshot_array()
    other = shot.copy()
    other[500:540, 800:900] ^= 0x40  # a changed block
    paths = {
        "a": d / "a.png",
        "b": d / "b.png",
        "a_pil": d / "a-pillow.png",
        "b_pil": d / "b-pillow.png",
        "needle_png": d / "needle.png",
        "needle": d / "needle.json",
        "moved": d / "moved.png",
    }
    write_png(paths["a"], shot)
    write_png(paths["b"], other)
    Image.fromarray(shot).save(paths["a_pil"])
    Image.fromarray(other).save(paths["b_pil"])
    write_png(paths["needle_png"], shot)
    paths["needle"].write_text(
        json.dumps(
            {
                "area": [
                    {"xpos": x, "ypos": y, "width": w, "height": h, "type": "match"} for x, y, w, h in AREAS
                ],
                "tags": ["bench"],
            }
        )
    )
    noise = np.random.default_rng(1).normal(0, 2, shot.shape)
    write_png(paths["moved"], np.clip(np.roll(shot, (7, -12), axis=(0, 1)) + noise, 0, 255).astype(np.uint8))
    return paths


def time_pixels(p: dict[str, Path], samples: dict | None = None, which: str = "") -> tuple[float, int]:
    t0 = time.perf_counter()
    a, b = read_pair(p["a" + which], p["b" + which])  # what svga compare does with two PNGs
    t1 = time.perf_counter()
    res = compare_pixels(a, b)
    t2 = time.perf_counter()
    if samples is not None:
        samples["pixels_compare" + which].append(t2 - t1)
    return t2 - t0, res.count


def time_imagemagick(p: dict[str, Path], which: str = "") -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["compare", "-metric", "AE", str(p["a" + which]), str(p["b" + which]), "null:"],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - t0
    return took, int(float(proc.stderr.split()[0]))


def time_needle(p: dict[str, Path], shot: np.ndarray, kept: tuple | None = None) -> tuple[float, object]:
    """One needle check. ``kept``: (needle, image, templates) read and made once, as os-autoinst
    keeps a needle; else the needle is read here (untimed) and prepared in the check."""
    if kept is None:
        needle, img = read_needle(p["needle"])
        templates = None
    else:
        needle, img, templates = kept
    t0 = time.perf_counter()
    res = match_needle(shot, needle, img, templates=templates)
    return time.perf_counter() - t0, res


def tinycv_times(p: dict[str, Path], reps: int) -> tuple[list[float], dict]:
    proc = subprocess.run(
        ["perl", str(DRIVER), "--repeat", str(reps)],
        input=f"{p['moved']}\t{p['needle']}\n",
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    return [out["seconds"]], out


def _check_needle(res: object, ref: dict, what: str) -> list[float]:
    sims = [r.similarity for r in res.areas]  # type: ignore[attr-defined]
    if res.passed != bool(ref["ok"]) or any(  # type: ignore[attr-defined]
        abs(a - b["similarity"]) > 0.01 for a, b in zip(sims, ref["areas"], strict=True)
    ):
        raise SystemExit(f"bench: needle verdicts differ ({what}): ours {sims}, tinycv {ref}")
    return sims


def run(reps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        p = make_inputs(Path(tmp))
        # Checked once against the anchors before any figure counts.
        for which in ("", "_pil"):
            _, ours = time_pixels(p, which=which)
            _, theirs = time_imagemagick(p, which)
            if ours != theirs:
                raise SystemExit(f"bench: svga compare counts {ours} differing pixels, ImageMagick {theirs}")
        shot = read_rgb(p["moved"])
        needle, img = read_needle(p["needle"])
        kept = (needle, img, NeedleTemplates(needle, img))
        _, ref = tinycv_times(p, 1)
        sims = _check_needle(time_needle(p, shot)[1], ref, "afresh")
        _check_needle(time_needle(p, shot, kept)[1], ref, "kept, first check")
        _, ref2 = tinycv_times(p, 2)
        _check_needle(time_needle(p, shot, kept)[1], ref2, "kept, second check")
        keys = ("pixels", "pixels_compare", "pixels_anchor", "pixels_pil", "pixels_compare_pil",
                "pixels_pil_anchor", "needle", "needle_cold", "needle_anchor")
        samples: dict[str, list[float]] = {k: [] for k in keys}
        # Rounds of blocks: each side's repetitions back to back (tinycv's run inside one perl
        # process, which reports their median), the sides taking turns, so both meet the same
        # load; a figure is the median over every round.
        rounds = ROUNDS if reps >= ROUNDS else 1
        for _ in range(rounds):
            block: dict[str, list[float]] = {k: [] for k in samples}
            for which in ("", "_pil"):
                for _ in range(reps):
                    block["pixels" + which].append(time_pixels(p, block, which)[0])
                for _ in range(reps):
                    block["pixels" + which + "_anchor"].append(time_imagemagick(p, which)[0])
            for _ in range(reps):
                block["needle"].append(time_needle(p, shot, kept)[0])
            for _ in range(reps):
                block["needle_cold"].append(time_needle(p, shot)[0])
            block["needle_anchor"] = tinycv_times(p, reps)[0]
            for k, v in block.items():
                samples[k].append(statistics.median(v))
        med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
        med["needle_cold_anchor"] = med["needle_anchor"]
        return {
            "reps": reps,
            "rounds": rounds,
            "load": os.getloadavg()[0],
            "ms": med,
            "differing_pixels": ours,
            "similarities": sims,
            "machine": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "nproc": str(os.cpu_count()),
            },
        }


def rows(quick: bool = False) -> list[Row]:
    """The QA rows of the one benchmark table (ImageMagick and os-autoinst's tinycv the limits)."""
    ms = run(3 if quick else 15)["ms"]
    (_, pix, im), (_, pix_pil, im_pil), (_, ndl, tcv), (_, cold, _) = ROWS
    return [
        Row("qa", pix, ms["pixels"], "ms", ms["pixels_anchor"], im, PIXEL_TARGET_MS, False),
        Row("qa", "of which comparing the decoded images", ms["pixels_compare"], "ms"),
        Row("qa", pix_pil, ms["pixels_pil"], "ms", ms["pixels_pil_anchor"], im),
        Row("qa", ndl, ms["needle"], "ms", ms["needle_anchor"], tcv, ms["needle_anchor"], False),
        Row("qa", cold, ms["needle_cold"], "ms", ms["needle_anchor"], tcv),
    ]


def render(res: dict, quick: bool) -> str:
    ms, m = res["ms"], res["machine"]
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = [
        "# QA benchmarks",
        "",
        f"`python -m bench.qa{' --quick' if quick else ''}`, {now}. "
        f"Python {m['python']}, numpy {m['numpy']}, nproc {m['nproc']}. "
        f"Medians over {res['rounds']} rounds of {res['reps']} repetitions a side, the sides taking "
        f"turns in one run (1-minute load average {res['load']:.2f} at the end); each result was first "
        f"checked against its anchor ({res['differing_pixels']} differing pixels, as ImageMagick counts; "
        "the needle's verdict and similarities as tinycv gives them).",
        "",
        "| what | svga (ms) | anchor | anchor (ms) | ratio (anchor/svga) |",
        "|---|---:|---|---:|---:|",
    ]
    for key, what, anchor in ROWS:
        lines.append(
            f"| {what} | {ms[key]:.1f} | {anchor} | {ms[key + '_anchor']:.1f} | "
            f"{ms[key + '_anchor'] / ms[key]:.2f} |"
        )
    lines.append(
        f"| of which comparing the decoded images (the rest is PNG decoding) | {ms['pixels_compare']:.1f} "
        "| — | — | — |"
    )
    lines += ["", f"Targets: the pixel compare within {PIXEL_TARGET_MS:g} ms; the needle check, needle kept, "
              "at least as fast as tinycv."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.qa", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions, write nothing unless --out")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--out", default=None, help=f"Markdown file to write (default {RESULTS_PATH.name})")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    res = run(args.reps or (3 if args.quick else 15))
    text = render(res, args.quick)
    out = args.out or (None if args.quick else RESULTS_PATH)
    if out:
        Path(out).write_text(text)
    print(json.dumps(res, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
