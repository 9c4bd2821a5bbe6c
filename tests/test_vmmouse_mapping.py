"""vmmouse.mapping and `vmmouse run --map-to X,Y,W,H --desktop W,H` (issue 16 item 2).

Oracle: what a compositor does with an absolute axis (docs/vmmouse.md 'libinput': the position
is the value over the range ``max - min + 1``, times the desktop size), computed here with
exact fractions; the host's fraction of its window must land at the same fraction of the
region, within one pixel.
"""

from __future__ import annotations

import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

import vmmouse.cli as cli
from vmmouse.events import Buttons, PointerEvent, PointerInfo
from vmmouse.mapping import Mapping, MappingError, Region, build_mapping
from vmmouse.uinput_sink import PointerBridge

ROOT = Path(__file__).resolve().parents[1]
VMMOUSE = (0, 0xFFFF)
TABLET = (0, 0x7FFF)


def compositor_pixel(u: int, lo: int, hi: int, desktop: int) -> int:
    """The desktop pixel a compositor puts an axis value on (floor of value / range * size)."""
    return int(Fraction(u - lo, hi - lo + 1) * desktop)


def wanted_pixel(v: int, lo: int, hi: int, start: int, size: int) -> Fraction:
    return start + Fraction(v - lo, hi - lo + 1) * size


LAYOUTS = [
    # (desktop, region): two 1920x1080 outputs side by side, the right one; stacked, the lower
    # one; a gap between outputs; an output left of the primary (its region starts at 0).
    ((3840, 1080), Region(1920, 0, 1920, 1080)),
    ((1920, 2160), Region(0, 1080, 1920, 1080)),
    ((3000, 1080), Region(2000, 0, 1000, 768)),
    ((2944, 1080), Region(0, 312, 1024, 768)),
    ((1024, 768), Region(0, 0, 1024, 768)),
    ((7, 5), Region(3, 1, 2, 3)),
]


@pytest.mark.parametrize("rng", [VMMOUSE, TABLET], ids=["vmmouse", "tablet"])
@pytest.mark.parametrize("desktop,region", LAYOUTS)
def test_the_host_range_lands_on_the_region(rng, desktop, region):
    m = Mapping(region, desktop)
    lo, hi = rng
    values = [lo, hi, (lo + hi) // 2] + random.Random(7).sample(range(lo, hi + 1), 300)
    for vx in values:
        vy = hi - vx + lo
        ux, uy = m.apply(vx, vy, rng, rng)
        assert lo <= ux <= hi and lo <= uy <= hi
        px = compositor_pixel(ux, lo, hi, desktop[0])
        py = compositor_pixel(uy, lo, hi, desktop[1])
        assert region.x <= px < region.x + region.width and region.y <= py < region.y + region.height
        assert abs(px - wanted_pixel(vx, lo, hi, region.x, region.width)) <= 1
        assert abs(py - wanted_pixel(vy, lo, hi, region.y, region.height)) <= 1


def test_the_corners_of_the_host_window_are_the_corners_of_the_region():
    m = Mapping(Region(1920, 0, 1280, 1024), (3200, 1080))
    ux, uy = m.apply(0, 0, VMMOUSE, VMMOUSE)
    assert (compositor_pixel(ux, *VMMOUSE, 3200), compositor_pixel(uy, *VMMOUSE, 1080)) == (1920, 0)
    ux, uy = m.apply(0xFFFF, 0xFFFF, VMMOUSE, VMMOUSE)
    assert (compositor_pixel(ux, *VMMOUSE, 3200), compositor_pixel(uy, *VMMOUSE, 1080)) == (3199, 1023)


def test_the_bridge_writes_mapped_values_and_the_default_is_unchanged():
    class Rec:
        def __init__(self):
            self.events = []

        def write(self, *ev):
            self.events.append(ev)

        def syn(self):
            self.events.append("syn")

    info = PointerInfo("t", VMMOUSE, VMMOUSE)
    plain, mapped = Rec(), Rec()
    PointerBridge(plain, info).handle(PointerEvent(Buttons.NONE, 0x8000, 0x8000))
    m = Mapping(Region(0, 0, 1920, 1080), (3840, 1080))
    PointerBridge(mapped, info, mapping=m).handle(PointerEvent(Buttons.NONE, 0x8000, 0x8000))
    assert [v for *_, v in plain.events[:2]] == [0x8000, 0x8000]
    # Left half of the width: the value is halved (floor), the height untouched.
    assert [v for *_, v in mapped.events[:2]] == [(0x8000 * 1920) // 3840, 0x8000]


@pytest.mark.parametrize("map_to,desktop,message", [
    ("1920,0,1920", "3840,1080", "expected X,Y,W,H"),
    ("a,0,1,1", "3840,1080", "whole numbers"),
    ("0,0,0,10", "3840,1080", "at least 1x1"),
    ("-1,0,10,10", "3840,1080", "must not be negative"),
    ("3000,0,1920,1080", "3840,1080", "reaches past"),
    ("0,0,10,10", "0,1080", "desktop 0x1080"),
    ("0,0,10,10", "3840", "expected W,H"),
    ("0,0,10,10", None, "needs --desktop"),
    (None, "10,x", "whole numbers"),
])
def test_bad_values_are_refused(map_to, desktop, message):
    with pytest.raises(MappingError, match=message):
        build_mapping(map_to, desktop)


def test_no_mapping_is_the_default():
    assert build_mapping(None, None) is None and build_mapping(None, "3840,1080") is None
    assert build_mapping("1,2,3,4", "10x10") == Mapping(Region(1, 2, 3, 4), (10, 10))


def test_the_command_line_error_is_one_line_and_status_1():
    p = subprocess.run([sys.executable, "-m", "vmmouse", "run", "--map-to", "3000,0,1920,1080",
                        "--desktop", "3840,1080"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmmouse: error: the region 3000,0,1920,1080 reaches past")


def test_run_help_documents_the_mapping(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    for word in ("--map-to X,Y,W,H", "--desktop W,H", "--stats", "bounding box"):
        assert word in " ".join(out.split()), word
