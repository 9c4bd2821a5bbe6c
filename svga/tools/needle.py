"""Tools layer: ``svga needle create``, make an openQA needle from a screenshot.

Writes ``NAME.json`` (areas, tags, properties, as openQA's needle editor does) and
``NAME.png`` (the screenshot) beside it; docs/openqa.md 'The needle file'. Exit 2 on bad
input, like ``svga compare``.
"""

from __future__ import annotations

import argparse
import sys

from svga.qa.errors import BadInput

EPILOG = """\
area syntax: X,Y,W,H with optional :match=PERCENT and :margin=PIXELS, e.g.
  --area 10,20,200,30:match=90:margin=20

examples:
  svga needle create shot.png --area 0,0,300,40 --tag desktop -o needles/desktop.json
  svga needle create shot.png --area 100,100,400,200 --exclude 300,120,80,20 --tag login -o login.json
  svga compare new-shot.png needles/desktop.json      check a later screenshot against it
"""


def _area(text: str, kind: str):  # noqa: ANN202 - an Area
    from svga.qa.needle import DEFAULT_MARGIN, DEFAULT_MATCH, Area

    rect, *opts = text.split(":")
    try:
        x, y, w, h = (int(v) for v in rect.split(","))
    except ValueError:
        raise BadInput(f"--{kind} {text!r}: the rectangle is not X,Y,W,H") from None
    if w <= 0 or h <= 0:
        raise BadInput(f"--{kind} {text!r}: width and height must be at least 1")
    match, margin, explicit = float(DEFAULT_MATCH), DEFAULT_MARGIN, {}
    for opt in opts:
        key, _, value = opt.partition("=")
        try:
            if key == "match" and kind == "area":
                match = float(value)
                if not 0 < match <= 100:
                    raise ValueError
                explicit["match"] = match
            elif key == "margin" and kind == "area":
                margin = int(value)
                if margin <= 0:
                    raise ValueError
                explicit["margin"] = margin
            else:
                raise BadInput(f"--{kind} {text!r}: unknown option {key!r} (use match=N, margin=N)")
        except ValueError:
            raise BadInput(f"--{kind} {text!r}: {key} must be a positive number "
                           "(match: percent up to 100, margin: pixels)") from None
    return Area(x, y, w, h, "match" if kind == "area" else kind, match, margin, explicit=explicit)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("needle", help="make openQA needles (JSON + PNG) from screenshots",
                              description="Work with openQA needles.", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="needle_command", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="write NAME.json and NAME.png from a screenshot and areas",
                       description="Write the JSON and the PNG openQA uses for a needle.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("shot", metavar="SHOT.png", help="the screenshot the needle is cut from")
    c.add_argument("--area", action="append", default=[], metavar="X,Y,W,H[:match=N][:margin=N]",
                   help="a match area (repeat for more; at least one)")
    c.add_argument("--exclude", action="append", default=[], metavar="X,Y,W,H",
                   help="an area ignored on both sides (repeat for more)")
    c.add_argument("--ocr", action="append", default=[], metavar="X,Y,W,H",
                   help="an ocr area (os-autoinst reads its text; svga compare does not check it)")
    c.add_argument("--tag", action="append", default=[], metavar="T", help="a tag (repeat for more)")
    c.add_argument("-o", "--out", required=True, metavar="NAME.json", help="the needle to write")
    c.set_defaults(func=cmd_needle_create)


def cmd_needle_create(args: argparse.Namespace) -> int:
    from svga.qa.images import read_rgb
    from svga.qa.needle import write_needle

    try:
        image = read_rgb(args.shot, "screenshot")
        areas = ([_area(a, "area") for a in args.area] + [_area(a, "exclude") for a in args.exclude]
                 + [_area(a, "ocr") for a in args.ocr])
        if not args.area:
            raise BadInput("a needle needs at least one match area: give --area X,Y,W,H")
        json_path, png_path = write_needle(args.out, image, areas, args.tag)
    except BadInput as e:
        print(f"svga: error: {e}", file=sys.stderr)
        return 2
    print(json_path)
    print(png_path)
    return 0
