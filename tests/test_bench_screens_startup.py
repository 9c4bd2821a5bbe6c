"""Smoke tests of bench/screens.py and bench/startup.py: a quick run gives the rows the one
table collects, each with its limit measured in the same run. No timing assertions."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import screens, startup  # noqa: E402


def test_screenshot_rows():
    rows = screens.rows(quick=True)
    assert [r.group for r in rows] == ["screenshot"] * 3
    png, readback, whole = rows
    assert png.value > 0 and png.limit > 0 and "Pillow compress_level=1" in png.limit_label
    assert png.target == 15 and not png.higher_is_better and png.unit == "ms"
    assert readback.value > 0 and readback.limit > 0 and "three channel copies" in readback.limit_label
    assert whole.value > 0 and whole.target is None


def test_start_up_row():
    row, rest = startup.rows(quick=True)
    assert row.group == rest.group == "start-up" and row.unit == rest.unit == "ms"
    assert row.value > 0 and row.limit > 0 and "import numpy" in row.limit_label
    assert row.target == 150 and not row.higher_is_better
    # The remainder is the whole run less numpy's import, so it is below the whole run.
    assert 0 < rest.value < row.value and rest.target is None
