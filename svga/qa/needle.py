"""QA layer: openQA needles, a JSON file beside a PNG, read and written.

:func:`read_needle` reads ``NAME.json`` and finds ``NAME.png`` beside it the way
os-autoinst's needle.pm does (docs/openqa.md 'The needle file'): every area field is
optional (``xpos``/``ypos``/``width``/``height`` default to 0, ``type`` to ``match``,
``margin`` to 50 when missing or 0, ``match`` to 96 when missing or 0). Where os-autoinst
would go on with a needle it cannot use (an area outside the image, a PNG of another size,
no match area) this module stops with a one-line :class:`~svga.qa.errors.BadInput` instead;
docs/openqa.md 'Where svga compare is stricter' lists each case.

:func:`write_needle` writes the JSON and PNG openQA would use (``svga needle create``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from svga.qa.errors import BadInput
from svga.qa.images import read_regular, read_rgb, write_png

MAX_NEEDLE_BYTES = 1 << 20
"""The largest needle JSON read (1 MiB; openQA's needles are a few hundred bytes)."""

AREA_TYPES = ("match", "exclude", "ocr")
DEFAULT_MATCH = 96
"""Per-area similarity threshold in percent when ``match`` is missing or 0 (tinycv.pm)."""
DEFAULT_MARGIN = 50
"""Search margin in pixels when ``margin`` is missing or 0 (needle.pm)."""


@dataclass(frozen=True)
class Area:
    x: int
    y: int
    width: int
    height: int
    type: str = "match"
    match: float = DEFAULT_MATCH
    """Threshold in percent: the area passes when its similarity >= match / 100."""
    margin: int = DEFAULT_MARGIN
    """How far (pixels, each direction) the area may have moved and still be found."""
    explicit: dict = field(default_factory=dict, compare=False, repr=False)
    """The keys the JSON gave (so writing back keeps absent keys absent)."""

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height

    def to_json(self) -> dict:
        out: dict = {"xpos": self.x, "ypos": self.y, "width": self.width, "height": self.height,
                     "type": self.type}
        if self.type == "match" and (self.match != DEFAULT_MATCH or "match" in self.explicit):
            out["match"] = _plain(self.match)
        if self.margin != DEFAULT_MARGIN or "margin" in self.explicit:
            out["margin"] = self.margin
        return out


@dataclass(frozen=True)
class Needle:
    name: str
    json_path: Path
    png_path: Path
    areas: tuple[Area, ...]
    tags: tuple[str, ...] = ()
    properties: tuple = ()

    def of_type(self, kind: str) -> list[Area]:
        return [a for a in self.areas if a.type == kind]


def _plain(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _number(raw: object, key: str, where: str, integer: bool) -> float:
    """A JSON value as Perl's numeric context would take it, refusing what Perl would warn
    about (non-numeric strings, lists, objects)."""
    if isinstance(raw, bool):
        raw = int(raw)
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise BadInput(f"{where}: {key} {raw!r} is not a number") from None
    else:
        raise BadInput(f"{where}: {key} must be a number, not {type(raw).__name__}")
    if not math.isfinite(value):
        raise BadInput(f"{where}: {key} {raw!r} is not a finite number")
    if integer and not value.is_integer():
        raise BadInput(f"{where}: {key} {raw!r} is not a whole number of pixels")
    return value


def parse_area(raw: object, where: str) -> Area:
    """One element of the JSON's ``area`` list, with os-autoinst's defaults."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: an area must be a JSON object, not {type(raw).__name__}")
    vals: dict[str, int] = {}
    for key in ("xpos", "ypos", "width", "height"):
        v = raw.get(key)
        vals[key] = int(_number(v, key, where, True)) if v not in (None, "", 0) else 0
    kind = raw.get("type") or "match"
    if kind not in AREA_TYPES:
        raise BadInput(f"{where}: type {kind!r} is not one of {', '.join(AREA_TYPES)}")
    match = raw.get("match")
    match_v = _number(match, "match", where, False) if match not in (None, "", 0) else 0.0
    margin = raw.get("margin")
    margin_v = int(_number(margin, "margin", where, True)) if margin not in (None, "", 0) else 0
    if match_v < 0 or match_v > 100:
        raise BadInput(f"{where}: match {match!r} is outside 0..100 (percent)")
    if margin_v < 0:
        raise BadInput(f"{where}: margin {margin!r} is negative")
    if vals["width"] <= 0 or vals["height"] <= 0:
        raise BadInput(f"{where}: area {vals['width']}x{vals['height']} is empty "
                       "(width and height must be at least 1)")
    return Area(vals["xpos"], vals["ypos"], vals["width"], vals["height"], kind,
                match_v or DEFAULT_MATCH, margin_v or DEFAULT_MARGIN,
                explicit={k: raw[k] for k in raw if k in ("match", "margin")})


def check_inside(area: Area, width: int, height: int, where: str) -> None:
    if area.x < 0 or area.y < 0 or area.x + area.width > width or area.y + area.height > height:
        raise BadInput(f"{where}: {area.type} area {area.x},{area.y} {area.width}x{area.height} "
                       f"is outside the {width}x{height} image")


def read_needle(json_path: str | os.PathLike[str]) -> tuple[Needle, np.ndarray]:
    """The needle at ``NAME.json`` and its ``NAME.png`` as RGB. Raises BadInput."""
    p = Path(json_path)
    raw = read_regular(p, MAX_NEEDLE_BYTES, "needle")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BadInput(f"needle {p}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"needle {p}: bad JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise BadInput(f"needle {p}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise BadInput(f"needle {p}: the JSON must be an object with an 'area' list")
    raw_areas = data.get("area") or []
    if not isinstance(raw_areas, list):
        raise BadInput(f"needle {p}: 'area' must be a list")
    areas = tuple(parse_area(a, f"needle {p} area {i}") for i, a in enumerate(raw_areas))
    if not any(a.type == "match" for a in areas):
        raise BadInput(f"needle {p}: no match area (a needle needs at least one area of type match)")
    png = p.with_suffix(".png") if p.suffix == ".json" else Path(str(p) + ".png")
    if not png.exists():
        raise BadInput(f"needle {p}: its PNG {png} is missing")
    image = read_rgb(png, "needle PNG")
    h, w = image.shape[:2]
    for i, a in enumerate(areas):
        check_inside(a, w, h, f"needle {p} area {i}")
    tags = data.get("tags") or []
    props = data.get("properties") or []
    needle = Needle(p.stem if p.suffix == ".json" else p.name, p, png, areas,
                    tuple(str(t) for t in tags) if isinstance(tags, list) else (),
                    tuple(props) if isinstance(props, list) else ())
    return needle, image


def needle_json(areas: list[Area], tags: list[str], properties: list | None = None) -> dict:
    """The JSON object openQA's needle editor writes: sorted tags, the areas, properties."""
    return {"area": [a.to_json() for a in areas], "properties": list(properties or []),
            "tags": sorted(tags)}


def write_needle(json_path: str | os.PathLike[str], image: np.ndarray, areas: list[Area],
                 tags: list[str]) -> tuple[Path, Path]:
    """Write ``NAME.json`` and ``NAME.png`` (the screenshot the areas were cut from)."""
    p = Path(json_path)
    if p.suffix != ".json":
        raise BadInput(f"needle name {p} must end in .json (the PNG goes beside it as NAME.png)")
    h, w = image.shape[:2]
    if not any(a.type == "match" for a in areas):
        raise BadInput("a needle needs at least one match area (--area X,Y,W,H)")
    for i, a in enumerate(areas):
        check_inside(a, w, h, f"area {i}")
    png = p.with_suffix(".png")
    write_png(png, image)
    try:
        p.write_text(json.dumps(needle_json(areas, tags), indent=3, sort_keys=True) + "\n")
    except OSError as e:
        raise BadInput(f"cannot write {p}: {e}") from None
    return p, png
