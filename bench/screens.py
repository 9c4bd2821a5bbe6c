"""Benchmark: a 1920x1080 screenshot to a PNG file, beside Pillow on the same pixels.

Place in the whole: a tool outside the installed package; :mod:`bench.run` collects
:func:`rows` into the one table (group "screenshot"). Rows:

- the suite's own writer (svga.qa.png, what ``svga screenshot``, ``svga demo --out`` and the
  golden plugin use) writing the screenshot's pixels to a file, beside Pillow writing the same
  pixels at ``compress_level=1`` (its fastest compressing level) in the same run; target 15 ms
  (issue "Fast paths", Deliver 3);
- the model's readback alone (``dev.screenshot_array()``: the displayed 0x00RRGGBB words to an
  RGB array), beside numpy making the same RGB array from the same words in three channel
  copies (what the readback could cost);
- the whole path on the model (``dev.screenshot_array()`` then the writer), no limit.

The pixels are the demo pattern drawn on the model (gradient, bars, a checker block, copies:
what screens look like). Before timing, both files are read back by pyspng and must equal the
pixels, so no figure comes from wrong work. Each figure is the median over rounds in which
each side runs its repetitions back to back, the sides taking turns.

    python -m bench.screens [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyspng  # noqa: E402
from PIL import Image  # noqa: E402

from bench.table import Row  # noqa: E402
from svga.device import open_device  # noqa: E402
from svga.qa.png import write_png  # noqa: E402
from svga.tools.demo import draw_demo  # noqa: E402

W, H = 1920, 1080
TARGET_MS = 15.0


def _median_ms(fn, reps: int) -> float:  # noqa: ANN001 - a callable
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(quick: bool = False) -> dict[str, float]:
    reps, rounds = (5, 1) if quick else (15, 5)
    with open_device("model") as dev, tempfile.TemporaryDirectory() as tmp:
        dev.set_mode(W, H)
        draw_demo(dev, W, H, progress=lambda s: None)
        shot = dev.screenshot_array()
        ours, pil = Path(tmp) / "svga.png", Path(tmp) / "pillow.png"

        def write_ours() -> None:
            write_png(ours, shot)

        def write_pillow() -> None:
            Image.fromarray(shot, "RGB").save(pil, format="PNG", compress_level=1)

        def whole() -> None:
            write_png(ours, dev.screenshot_array())

        def readback() -> None:
            dev.screenshot_array()

        words = np.array(dev.read_vram())  # the same pixels (the model shows VRAM; no cursor drawn)

        def channels() -> np.ndarray:
            rgb = np.empty(words.shape + (3,), dtype=np.uint8)
            as_bytes = words.view(np.uint8).reshape(words.shape + (4,))  # B, G, R, 0 in memory
            rgb[..., 0], rgb[..., 1], rgb[..., 2] = as_bytes[..., 2], as_bytes[..., 1], as_bytes[..., 0]
            return rgb

        write_ours()
        write_pillow()
        # The same picture but for the cursor, which the model draws in and VRAM does not hold.
        if np.all(shot == channels(), axis=2).mean() < 0.99:
            raise SystemExit("bench: the channel copies of VRAM are not the screenshot")
        for path in (ours, pil):
            if not np.array_equal(pyspng.load(path.read_bytes()), shot):
                raise SystemExit(f"bench: {path.name} does not read back as the screenshot")
        samples: dict[str, list[float]] = {"svga": [], "pillow": [], "whole": [], "readback": [],
                                           "channels": []}
        for _ in range(rounds):
            samples["svga"].append(_median_ms(write_ours, reps))
            samples["pillow"].append(_median_ms(write_pillow, reps))
            samples["whole"].append(_median_ms(whole, reps))
            samples["readback"].append(_median_ms(readback, reps))
            samples["channels"].append(_median_ms(channels, reps))
        sizes = {"svga_bytes": ours.stat().st_size, "pillow_bytes": pil.stat().st_size}
    return {k: statistics.median(v) for k, v in samples.items()} | sizes


def rows(quick: bool = False) -> list[Row]:
    m = measure(quick)
    return [
        Row("screenshot", f"{W}x{H} screenshot pixels to a PNG file, svga.qa.png "
            f"({m['svga_bytes'] // 1024} KiB)", m["svga"], "ms", m["pillow"],
            f"Pillow compress_level=1, same pixels ({m['pillow_bytes'] // 1024} KiB)", TARGET_MS, False),
        Row("screenshot", f"{W}x{H} model screenshot_array() alone (the display's words to RGB)",
            m["readback"], "ms", m["channels"], "numpy: the same words to RGB in three channel copies"),
        Row("screenshot", f"{W}x{H} model screenshot_array() + PNG file", m["whole"], "ms"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.screens", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one round of 5 repetitions")
    args = ap.parse_args(argv)
    for r in rows(args.quick):
        ratio = f", {r.ratio:.2f}x {r.limit_label} ({r.limit:.1f} {r.unit})" if r.limit else ""
        target = f", target {r.target:g} {r.unit}: {'met' if r.met else 'missed'}" if r.target else ""
        print(f"{r.figure}: {r.value:.1f} {r.unit}{ratio}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
