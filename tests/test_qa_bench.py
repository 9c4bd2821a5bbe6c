"""Smoke test of bench/qa.py: a quick run gives a positive figure for every row and the
Markdown table names both sides. No timing assertions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import qa  # noqa: E402


def test_quick_run_has_every_row(tmp_path):
    res = qa.run(2)
    for key in ("pixels", "pixels_compare", "pixels_anchor", "needle", "needle_anchor"):
        assert res["ms"][key] > 0, key
    assert res["differing_pixels"] == 4000  # the 40x100 block bench/qa.py changes
    text = qa.render(res, quick=True)
    assert text.startswith("# QA benchmarks\n") and "--quick" in text
    assert "ImageMagick compare -metric AE" in text and "os-autoinst tinycv" in text
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 1 + len(qa.ROWS) + 1


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "qa.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.qa", "--reps", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("# QA benchmarks\n")


def test_rows_for_the_one_table():
    """bench/run.py collects these: every figure positive, the limits measured (ImageMagick,
    tinycv), the targets the issue sets (30 ms; tinycv's own time for the kept needle)."""
    rows = qa.rows(quick=True)
    assert {r.group for r in rows} == {"qa"} and len(rows) == 5
    assert all(r.value > 0 and r.unit == "ms" for r in rows)
    pixels, _, pillow, needle, cold = rows
    assert pixels.target == 30 and not pixels.higher_is_better and pixels.limit > 0
    assert needle.limit > 0 and needle.target == needle.limit and not needle.higher_is_better
    assert pillow.target is None and cold.target is None and cold.limit == needle.limit
    assert "ImageMagick" in pixels.limit_label and "tinycv" in needle.limit_label
