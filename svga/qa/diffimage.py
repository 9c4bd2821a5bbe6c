"""QA layer: the pictures a person looks at when a check fails.

- :func:`pixel_diff`: the actual image dimmed to a third, differing pixels in full magenta,
  excluded/masked regions hatched grey, the differing region's bounding box outlined.
- :func:`needle_diff`: the actual image dimmed, each match area outlined where the needle
  expected it (thin) and where it was found (thick, green when it passed, red when not),
  labelled with its similarity; exclude areas hatched, ocr areas outlined in blue.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from svga.qa.openqa import NeedleResult
from svga.qa.pixels import PixelResult

HIGHLIGHT = (255, 0, 255)
PASS, FAIL, OCR, EXPECTED = (0, 230, 0), (255, 40, 40), (60, 140, 255), (255, 255, 0)


def dimmed(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.uint16) // 3 + 16).astype(np.uint8)


def _hatch(img: np.ndarray, x: int, y: int, w: int, h: int) -> None:
    region = img[y: y + h, x: x + w]
    yy, xx = np.mgrid[y: y + h, x: x + w]
    region[((xx + yy) // 4) % 2 == 0] = (90, 90, 90)


def pixel_diff(actual: np.ndarray, result: PixelResult, excludes: list | tuple = (),
               mask: np.ndarray | None = None) -> Image.Image:
    out = dimmed(actual)
    for x, y, w, h in excludes:
        _hatch(out, x, y, w, h)
    if mask is not None:
        yy, xx = np.nonzero(~mask)
        sel = ((xx + yy) // 4) % 2 == 0
        out[yy[sel], xx[sel]] = (90, 90, 90)
    out[result.differ] = HIGHLIGHT
    img = Image.fromarray(out, "RGB")
    box = result.bbox
    if box:
        x, y, w, h = box
        d = ImageDraw.Draw(img)
        d.rectangle([max(x - 2, 0), max(y - 2, 0), x + w + 1, y + h + 1], outline=HIGHLIGHT)
        d.text((x, max(y - 14, 0)), f"{result.count} px differ", fill=HIGHLIGHT)
    return img


def needle_diff(actual: np.ndarray, result: NeedleResult) -> Image.Image:
    out = dimmed(actual)
    for a in result.needle.of_type("exclude"):
        _hatch(out, a.x, a.y, a.width, a.height)
    img = Image.fromarray(out, "RGB")
    d = ImageDraw.Draw(img)
    for i, r in enumerate(result.areas):
        a = r.area
        if not r.checked:
            d.rectangle([a.x, a.y, a.x + a.width - 1, a.y + a.height - 1], outline=OCR)
            d.text((a.x + 2, a.y + 2), f"#{i} ocr: not checked", fill=OCR)
            continue
        colour = PASS if r.passed else FAIL
        d.rectangle([a.x, a.y, a.x + a.width - 1, a.y + a.height - 1], outline=EXPECTED)
        for k in range(2):
            d.rectangle([r.x - k, r.y - k, r.x + a.width - 1 + k, r.y + a.height - 1 + k], outline=colour)
        label = f"#{i} {r.similarity * 100:.1f}% (need {a.match:g}%) at {r.x},{r.y}"
        ty = r.y - 13 if r.y >= 13 else r.y + a.height + 2
        d.text((r.x, ty), label, fill=colour)
    return img
