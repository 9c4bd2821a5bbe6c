"""The benchmark plot: commands per second by path and command size, against the limits.

Place in the whole: a tool outside the installed package, called by :mod:`bench.run` to write
``bench/results.png`` beside ``results.json`` and ``results.md``. Drawn with Pillow (already a
dependency of the driver's screenshots), so the benchmark needs no plotting library.

One line per row of the table whose unit is commands per second, grouped as the table is, on a
logarithmic axis: a bar for the figure (coloured by group), a black tick for its limit (the
anchor measured in the same run: C, a lean Python loop, QEMU...) and a diamond for the target
where the issue sets one (green when met, red when not).

    python3 -m bench.plot bench/results.json bench/results.png
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.table import Row  # noqa: E402

UNIT = "commands/s"
WIDTH = 1500
LABEL_W = 620
ROW_H = 22
TOP, BOTTOM, RIGHT = 70, 50, 40
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
           "#bab0ac", "#e15759"]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's built-in scalable font (FreeType)
    except (TypeError, OSError):  # an old Pillow or one without FreeType: the bitmap font
        return ImageFont.load_default()


def plotted(rows: Sequence[Row]) -> list[Row]:
    """The rows the plot shows: commands per second, with a positive figure."""
    return [r for r in rows if r.unit == UNIT and r.value > 0]


def _shorten(text: str, n: int = 92) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


TITLE = "Commands per second, against the limits (same run)"


def render(rows: Sequence[Row], title: str = TITLE) -> Image.Image:
    """The plot as a Pillow image (an empty note when no row is in commands per second)."""
    shown = plotted(rows)
    groups = list(dict.fromkeys(r.group for r in shown))
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    lines = len(shown) + len(groups)
    img = Image.new("RGB", (WIDTH, TOP + BOTTOM + max(lines, 1) * ROW_H), "white")
    d = ImageDraw.Draw(img)
    small, big = _font(13), _font(18)
    d.text((12, 10), title, fill="black", font=big)
    d.text((12, 38), "bar: the figure;  black tick: its limit;  diamond: the target (green met, red "
           "missed);  logarithmic axis", fill="#444444", font=small)
    if not shown:
        d.text((12, TOP), "no row in commands/s", fill="black", font=small)
        return img
    values = [v for r in shown for v in (r.value, r.limit, r.target) if v]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    x0, x1 = LABEL_W, WIDTH - RIGHT

    def x(v: float) -> float:
        return x0 + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (x1 - x0)

    bottom = TOP + lines * ROW_H
    decade = lo
    while decade <= hi:
        xx = x(decade)
        d.line([(xx, TOP - 4), (xx, bottom)], fill="#dddddd")
        label = f"{decade:.0e}".replace("e+0", "e").replace("e+", "e")
        d.text((xx - 14, bottom + 6), label, fill="#444444", font=small)
        decade *= 10
    y = TOP
    for g in groups:
        d.text((12, y + 3), g, fill=colour[g], font=big)
        y += ROW_H
        for r in (r for r in shown if r.group == g):
            d.text((24, y + 4), _shorten(r.figure), fill="black", font=small)
            d.rectangle([x0, y + 4, max(x(r.value), x0 + 1), y + ROW_H - 4], fill=colour[g])
            if r.limit:
                xl = x(r.limit)
                d.line([(xl, y + 1), (xl, y + ROW_H - 1)], fill="black", width=3)
            if r.target:
                xt, yc = x(r.target), y + ROW_H / 2
                d.polygon([(xt, yc - 7), (xt + 7, yc), (xt, yc + 7), (xt - 7, yc)],
                          fill="#2ca02c" if r.met else "#d62728", outline="black")
            y += ROW_H
    return img


def write(rows: Sequence[Row], path: Path) -> Path:
    render(rows).save(path, optimize=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print("usage: python3 -m bench.plot RESULTS.json OUT.png  (redraws the plot of a bench run)",
              file=sys.stderr)
        return 2
    try:
        data = json.loads(Path(args[0]).read_text())
        keys = Row.__dataclass_fields__
        rows = [Row(**{k: v for k, v in item.items() if k in keys}) for item in data]
    except (OSError, ValueError, TypeError) as exc:
        print(f"bench.plot: error: cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    write(rows, Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
