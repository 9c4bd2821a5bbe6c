"""Benchmarks of the QA checks, each beside its anchor in the same run.

Place in the whole: a tool outside the installed package, like bench/run.py. Rows:

- ``svga compare`` of two 1920x1080 PNGs pixel for pixel, in-process (reading both PNGs and
  comparing), beside ImageMagick's ``compare -metric AE`` on the same files (a process);
- a 1920x1080 needle check with three match areas and the default margin (50 px), in-process
  (:func:`svga.qa.openqa.match_needle` on loaded images), beside os-autoinst's own tinycv on
  the same needle and screenshot (``search_`` timed inside perl by tests/openqa_tinycv.pl,
  the needle image cached as os-autoinst caches it).

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

from svga.device import open_device  # noqa: E402
from svga.qa.images import read_pair, read_rgb  # noqa: E402
from svga.qa.needle import read_needle  # noqa: E402
from svga.qa.openqa import match_needle  # noqa: E402
from svga.qa.pixels import compare_pixels  # noqa: E402
from svga.tools.demo import draw_demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "openqa_tinycv.pl"
RESULTS_PATH = Path(__file__).resolve().parent / "qa-results.md"
ROUNDS = 5
"""Rounds of alternating blocks (fewer repetitions than this: one round)."""
W, H = 1920, 1080
AREAS = [(100, 80, 300, 120), (900, 500, 220, 160), (1500, 900, 260, 100)]
ROWS = [
    (
        "pixels",
        "svga compare, two 1920x1080 PNGs pixel for pixel (read + compare)",
        "ImageMagick compare -metric AE (a process)",
    ),
    (
        "needle",
        "1920x1080 needle check, 3 match areas, margin 50 (search)",
        "os-autoinst tinycv search_ (inside perl)",
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
        "needle_png": d / "needle.png",
        "needle": d / "needle.json",
        "moved": d / "moved.png",
    }
    Image.fromarray(shot).save(paths["a"])
    Image.fromarray(other).save(paths["b"])
    Image.fromarray(shot).save(paths["needle_png"])
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
    Image.fromarray(np.clip(np.roll(shot, (7, -12), axis=(0, 1)) + noise, 0, 255).astype(np.uint8)).save(
        paths["moved"]
    )
    return paths


def time_pixels(p: dict[str, Path], samples: dict | None = None) -> tuple[float, int]:
    t0 = time.perf_counter()
    a, b = read_pair(p["a"], p["b"])  # what svga compare does with two PNGs
    t1 = time.perf_counter()
    res = compare_pixels(a, b)
    t2 = time.perf_counter()
    if samples is not None:
        samples["pixels_compare"].append(t2 - t1)
    return t2 - t0, res.count


def time_imagemagick(p: dict[str, Path]) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["compare", "-metric", "AE", str(p["a"]), str(p["b"]), "null:"],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - t0
    return took, int(float(proc.stderr.split()[0]))


def time_needle(p: dict[str, Path], shot: np.ndarray) -> tuple[float, object]:
    needle, img = read_needle(p["needle"])
    t0 = time.perf_counter()
    res = match_needle(shot, needle, img)
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


def run(reps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        p = make_inputs(Path(tmp))
        # Checked once against the anchors before any figure counts.
        _, ours = time_pixels(p)
        _, theirs = time_imagemagick(p)
        if ours != theirs:
            raise SystemExit(f"bench: svga compare counts {ours} differing pixels, ImageMagick {theirs}")
        shot = read_rgb(p["moved"])
        _, res = time_needle(p, shot)
        _, ref = tinycv_times(p, 1)
        sims = [r.similarity for r in res.areas]
        if res.passed != bool(ref["ok"]) or any(
            abs(a - b["similarity"]) > 0.01 for a, b in zip(sims, ref["areas"], strict=True)
        ):
            raise SystemExit(f"bench: needle verdicts differ: ours {sims}, tinycv {ref}")
        samples: dict[str, list[float]] = {
            k: [] for k in ("pixels", "pixels_compare", "pixels_anchor", "needle", "needle_anchor")
        }
        # Rounds of blocks: each side's repetitions back to back (tinycv's run inside one perl
        # process, which reports their median), the sides taking turns, so both meet the same
        # load; a figure is the median over every round.
        rounds = ROUNDS if reps >= ROUNDS else 1
        for _ in range(rounds):
            block: dict[str, list[float]] = {k: [] for k in samples}
            for _ in range(reps):
                block["pixels"].append(time_pixels(p, block)[0])
            for _ in range(reps):
                block["pixels_anchor"].append(time_imagemagick(p)[0])
            for _ in range(reps):
                block["needle"].append(time_needle(p, shot)[0])
            block["needle_anchor"] = tinycv_times(p, reps)[0]
            for k, v in block.items():
                samples[k].append(statistics.median(v))
        med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
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
