"""Tools layer: ``svga compare ACTUAL.png EXPECTED``, a screenshot regression check.

EXPECTED is a PNG (pixel-for-pixel comparison, :mod:`svga.qa.pixels`) or an openQA needle
``NAME.json`` with ``NAME.png`` beside it (os-autoinst's matcher, :mod:`svga.qa.openqa`;
docs/openqa.md). Exit 0 when it matches, 1 when it does not, 2 on bad input (one line on
stderr naming the file and the problem).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from svga.qa.errors import BadInput

EXIT_MATCH, EXIT_DIFFER, EXIT_BAD_INPUT = 0, 1, 2

DESCRIPTION = """\
Check a screenshot against what it should show.

EXPECTED.png: pixel for pixel. A pixel differs when a channel differs by more than
--tolerance; the check passes when at most --max-diff-pixels pixels differ. --exclude
rectangles and the black pixels of --mask are not compared.

NEEDLE.json (an openQA needle, NEEDLE.png beside it): the verdict os-autoinst gives. Each
match area is searched within its margin (default 50 px) in the grey, blurred screenshot and
passes when its similarity reaches its match level (default 96 %); exclude areas are ignored
on both sides; ocr areas are reported as not checked. See docs/openqa.md.
"""

EPILOG = """\
exit status: 0 match, 1 no match, 2 bad input (missing file, not a PNG, truncated PNG, bad
needle JSON, a needle with no match area, an area outside the image, images of two sizes).

examples:
  svga compare shot.png golden.png                          exact
  svga compare shot.png golden.png --tolerance 2 --max-diff-pixels 10 --diff diff.png
  svga compare shot.png golden.png --exclude 0,0,200,30 --exclude 700,560,100,40
  svga compare shot.png login-prompt.json --json            openQA needle, per-area JSON
"""


def _rect(text: str, what: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise BadInput(f"{what} {text!r} is not X,Y,W,H (four whole numbers)") from None
    if w <= 0 or h <= 0:
        raise BadInput(f"{what} {text!r}: width and height must be at least 1")
    return x, y, w, h


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compare", help="check a screenshot against a PNG or an openQA needle",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("actual", metavar="ACTUAL.png", help="the screenshot to check")
    p.add_argument("expected", metavar="EXPECTED", help="a PNG, or an openQA needle NAME.json")
    g = p.add_argument_group("pixel comparison (EXPECTED.png)")
    g.add_argument("--tolerance", type=int, default=None, metavar="N",
                   help="per-channel difference still counted as equal (default 0)")
    g.add_argument("--max-diff-pixels", type=int, default=None, metavar="N",
                   help="differing pixels still accepted (default 0)")
    g.add_argument("--exclude", action="append", default=[], metavar="X,Y,W,H",
                   help="a rectangle not to compare (repeat for more)")
    g.add_argument("--mask", metavar="MASK.png",
                   help="compare only where this PNG (same size) is not black")
    n = p.add_argument_group("needle (EXPECTED.json)")
    n.add_argument("--search-ratio", type=float, default=0.0, metavar="R",
                   help="widen every margin to margin + R * (1024 - margin), as os-autoinst's "
                        "assert_screen does on its later tries (0.02, and 1 for a full search); "
                        "default 0: the needle's margins")
    p.add_argument("--diff", metavar="OUT.png",
                   help="write a picture of the result: differences in magenta over the dimmed "
                        "screenshot, or each needle area outlined with its similarity")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BadInput as e:
        print(f"svga: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    from svga.qa.images import read_pair, read_rgb

    if Path(args.expected).suffix.lower() == ".json":
        result = _needle(args, read_rgb(args.actual, "screenshot"))
    else:
        result = _pixels(args, *read_pair(args.actual, args.expected, ("screenshot", "expected image")))
    return EXIT_MATCH if result else EXIT_DIFFER


def _pixels(args: argparse.Namespace, actual, expected) -> bool:  # noqa: ANN001 - arrays
    from svga.qa.diffimage import pixel_diff
    from svga.qa.images import read_rgb
    from svga.qa.pixels import compare_pixels, mask_from_rgb

    if args.search_ratio:
        raise BadInput("--search-ratio applies to a needle (EXPECTED.json), not to a PNG")
    excludes = [_rect(e, "--exclude") for e in args.exclude]
    mask = mask_from_rgb(read_rgb(args.mask, "mask")) if args.mask else None
    res = compare_pixels(actual, expected, args.tolerance or 0, args.max_diff_pixels or 0, excludes, mask)
    if args.diff:
        _save(pixel_diff(actual, res, excludes, mask), args.diff)
    if args.json:
        out = res.as_dict() | {"actual": args.actual, "expected": args.expected, "diff": args.diff}
        print(json.dumps(out, indent=2))
    else:
        verdict = "match" if res.passed else "DIFFER"
        where = f", bounding box {res.bbox[0]},{res.bbox[1]} {res.bbox[2]}x{res.bbox[3]}" if res.bbox else ""
        print(f"{verdict}: {res.count} of {res.compared} pixels differ (allowed {res.max_diff_pixels}, "
              f"tolerance {res.tolerance}){where}")
        if args.diff:
            print(f"diff image: {args.diff}")
    return res.passed


def _needle(args: argparse.Namespace, actual) -> bool:  # noqa: ANN001 - an array
    from svga.qa.diffimage import needle_diff
    from svga.qa.needle import read_needle
    from svga.qa.openqa import match_needle

    for flag, value in (("--tolerance", args.tolerance), ("--max-diff-pixels", args.max_diff_pixels),
                        ("--exclude", args.exclude), ("--mask", args.mask)):
        if value:
            raise BadInput(f"{flag} applies to a PNG; a needle's exclude areas are in its JSON")
    needle, image = read_needle(args.expected)
    if image.shape != actual.shape:
        raise BadInput(f"needle PNG {needle.png_path} is {image.shape[1]}x{image.shape[0]} but the "
                       f"screenshot {args.actual} is {actual.shape[1]}x{actual.shape[0]}")
    res = match_needle(actual, needle, image, args.search_ratio)
    if args.diff:
        _save(needle_diff(actual, res), args.diff)
    if args.json:
        print(json.dumps({"mode": "needle", "needle": needle.name, "result": "ok" if res.passed else "fail",
                          "actual": args.actual, "expected": args.expected, "diff": args.diff,
                          "areas": [r.as_dict() for r in res.areas]}, indent=2))
    else:
        print(f"{'match' if res.passed else 'NO MATCH'}: needle {needle.name}")
        for i, r in enumerate(res.areas):
            a = r.area
            if not r.checked:
                print(f"  area {i} ocr {a.x},{a.y} {a.width}x{a.height}: not checked")
                continue
            print(f"  area {i} match {a.x},{a.y} {a.width}x{a.height}: similarity {r.similarity * 100:.2f}% "
                  f"(needs {a.match:g}%), found at {r.x},{r.y} (margin {a.margin}): "
                  f"{'ok' if r.passed else 'fail'}")
        if args.diff:
            print(f"diff image: {args.diff}")
    return res.passed


def _save(img, path: str) -> None:  # noqa: ANN001 - a PIL image
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format="PNG")
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot write {path}: {e}") from None
