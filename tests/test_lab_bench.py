"""The guest benchmark (bench/guest.py) runs its short plan in one lab guest, so it cannot rot.

One guest boot for the module (about 30-40 s in all on a 2-core host). No timing assertions:
only that every program reported every loop with a positive count, and that each program's
screen, taken by QMP screendump from the host after it ran, equals a numpy reading written
here from the programs' documented contract (bench/guest.py "The three programs": the
background colour, then the fills of the last encode-each batch). The expected pictures do not
come from the benchmark's own code.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from svga.lab.packages import not_ready

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not installed; it lives beside svga/
    sys.path.insert(0, str(ROOT))

from bench import guest  # noqa: E402

_WHY = not_ready()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_WHY), reason=_WHY or "ready")]

# The contract, written out: a 1024x768 mode, these backgrounds, 500 fills of 8x8 in rows of 128
# from y = 128, batch b fill i coloured (b * 97 + i * 0x010203) & 0xFFFFFF.
W, H = 1024, 768
BACKGROUNDS = {"c": (0x40, 0x40, 0x40), "plain": (0x20, 0x40, 0x60), "driver": (0x60, 0x20, 0x40)}


def picture(program: str, last_batch: int) -> np.ndarray:
    img = np.empty((H, W, 3), dtype=np.uint8)
    img[:] = BACKGROUNDS[program]
    for i in range(500):
        x, y = (i % 128) * 8, 128 + (i // 128) * 8
        c = (last_batch * 97 + i * 0x010203) & 0xFFFFFF
        img[y: y + 8, x: x + 8] = (c >> 16, (c >> 8) & 0xFF, c & 0xFF)
    return img


@pytest.fixture(scope="module")
def guest_run():
    return guest.run(guest.PLANS["quick"])


@pytest.mark.parametrize("program", ["c", "plain", "driver"])
def test_each_program_leaves_what_it_drew_on_screen(guest_run, program):
    lines = guest_run.lines[program][0]
    encoded = [line for line in lines if line["loop"] == "fill-encode"]
    assert len(encoded) == 1 and encoded[0]["commands"] % 500 == 0 and encoded[0]["commands"] >= 500
    shot = guest_run.screens[program]
    want = picture(program, encoded[0]["commands"] // 500 - 1)
    assert shot.shape == want.shape
    differ = int((shot != want).any(axis=2).sum())
    assert differ == 0, f"{program}: {differ} pixels differ from the numpy reading"


def test_the_screens_differ_between_programs(guest_run):
    # Each program's own background is on screen: no screendump was stale.
    shots = [guest_run.screens[p] for p in ("c", "plain", "driver")]
    assert [tuple(s[0, 0]) for s in shots] == [BACKGROUNDS[p] for p in ("c", "plain", "driver")]


def test_every_program_ran_every_loop(guest_run):
    from svga import commands
    for program in ("c", "plain", "driver"):
        lines = guest_run.lines[program][0]
        # The driver's program also encodes each batch as one array where the driver can.
        many = [("fill-many", None)] if program == "driver" and hasattr(commands, "encode_many") else []
        assert [(x["loop"], x.get("n")) for x in lines] == \
            [("update", n) for n in guest.PLANS["quick"].sizes] + [("fill-pre", None), *many,
                                                                   ("fill-encode", None)]
        for line in lines:
            assert line["commands"] > 0 and line["seconds"] >= guest.PLANS["quick"].window, (program, line)


def test_rows_put_the_driver_beside_c_and_plain_python(guest_run):
    rows = guest.rows_from(guest_run)
    many = [r for r in rows if "encode_many" in r.figure]
    assert len(many) == (1 if guest_run.has("driver", "fill-many") else 0)
    for r in many:
        assert r.target == 1e6 and r.limit == guest_run.rate("c", "fill-encode")
        rows.remove(r)
    assert len(rows) == 2 * (len(guest.PLANS["quick"].sizes) + 2)
    for row in rows:
        assert row.group == "guest" and row.unit == "commands/s"
        assert row.value > 0 and math.isfinite(row.value) and row.limit and row.limit > 0
    drivers = [r for r in rows if r.figure.endswith("this driver's API")]
    plains = [r for r in rows if r.figure.endswith("plain Python (no checks)")]
    assert len(drivers) == len(plains) == len(rows) // 2
    for d, p in zip(drivers, plains, strict=True):
        assert d.limit == p.limit  # both against the same C figure
    updates = [(d, p) for d, p in zip(drivers, plains, strict=True) if "UPDATE" in d.figure]
    assert updates and all(d.target == p.value for d, p in updates)  # target: plain Python's rate
    # the 1 M/s is the batch encoder's (above); one encode call a command is a figure only
    assert drivers[-1].target is None and "encoded each batch" in drivers[-1].figure
