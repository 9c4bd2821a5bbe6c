"""Tests for bench/run.py: the benchmark runs its quick plan and reports every row.

No timing assertions: only that each figure exists and is positive, that the tables and the
JSON carry every row, and that the helpers the benchmark checks itself with are right."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not installed; it lives beside svga/
    sys.path.insert(0, str(ROOT))

from bench import run as bench  # noqa: E402

MODEL_ROWS = [r for r in bench.ROWS if "model" in r.targets]
QEMU_ONLY_ROWS = [r for r in bench.ROWS if r.targets == ("qemu",)]


@pytest.fixture(scope="module")
def model_results():
    return bench.run(["model"], bench.PLANS["quick"])


def test_rows_are_the_ones_the_issue_asks_for():
    assert bench.ROW_KEYS == (
        "startup", "startup_launch", "register_read", "batch", "send", "draw_full", "draw_half",
        "display", "vram", "memory", "qemu_rss",
    )


def test_quick_plan_still_wraps_the_qemu_fifo():
    # 64 KiB FIFO minus its 4 registers; RECT_FILL is 6 words, UPDATE 5.
    ring = 64 * 1024 - 16
    n = bench.PLANS["quick"].batch_commands
    assert n // 2 * (6 + 5) * 4 > 2 * ring
    full = bench.PLANS["full"]
    assert full.batch_commands // 2 * (6 + 5) * 4 > 4 * ring
    assert full.reps >= 5 and full.reps > bench.PLANS["quick"].reps


def test_model_run_has_a_positive_figure_for_every_model_row(model_results):
    for row in MODEL_ROWS:
        samples = model_results.samples[row.key]["model"]
        assert len(samples) >= 1, row.key
        value = model_results.median(row.key, "model")
        assert value is not None and value > 0 and math.isfinite(value), row.key
    for row in QEMU_ONLY_ROWS:
        assert model_results.median(row.key, "model") is None
    assert len(model_results.samples["startup"]["model"]) == bench.PLANS["quick"].startup_reps


def test_model_only_table_has_every_row(model_results):
    table = bench.render_table(model_results)
    lines = table.splitlines()
    assert lines[0] == "| what | model |"
    assert len(lines) == 2 + len(bench.ROWS)
    for row, line in zip(bench.ROWS, lines[2:], strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row.what(model_results.plan)
        if "model" in row.targets:
            assert float(cells[1].replace(",", "")) > 0
        else:
            assert cells[1] == "—"


def test_markdown_names_the_machine(model_results):
    text = bench.render_markdown(model_results)
    assert text.startswith("# Benchmarks\n")
    assert "--quick" in text
    assert f"nproc {model_results.machine['nproc']}" in text
    assert f"Python {model_results.machine['python']}" in text
    assert bench.render_table(model_results) in text


def test_ratio_is_qemu_over_model():
    res = bench.Results(bench.PLANS["quick"], ("model", "qemu"), {})
    for v in (2.0, 4.0, 100.0):
        res.add("startup", "model", v)
    for v in (30.0, 10.0, 20.0):
        res.add("startup", "qemu", v)
    assert res.median("startup", "model") == 4.0
    assert res.median("startup", "qemu") == 20.0
    assert res.ratio("startup") == 5.0
    assert res.ratio("batch") is None
    header = bench.render_table(res).splitlines()[0]
    assert header == "| what | model | QEMU qtest | ratio (QEMU/model) |"


def test_number_format():
    assert bench.fmt(None) == "—"
    assert bench.fmt(458913.2) == "458,913"
    assert bench.fmt(12.34) == "12.3"
    assert bench.fmt(1.234) == "1.23"
    assert bench.fmt(0.01234) == "0.0123"


def test_command_list_alternates_fill_and_update_inside_640x480():
    cmds = bench.command_list(200)
    assert [name for name, _ in cmds[:4]] == ["RECT_FILL", "UPDATE", "RECT_FILL", "UPDATE"]
    for _, f in cmds:
        assert f["x"] + f["width"] <= 640 and f["y"] + f["height"] <= 480
    assert cmds[0][1] == {"color": 0, "x": 0, "y": 0, "width": 16, "height": 16}
    assert cmds[3][1] == {"x": 16, "y": 0, "width": 16, "height": 16}


def test_fill_reading_paints_in_order():
    cmds = [("RECT_FILL", {"color": 5, "x": 0, "y": 0, "width": 4, "height": 2}),
            ("UPDATE", {"x": 0, "y": 0, "width": 4, "height": 2}),
            ("RECT_FILL", {"color": 7, "x": 2, "y": 1, "width": 3, "height": 1})]
    out = bench.fill_reading(cmds)
    assert out.shape == (480, 640)
    assert out[0, :5].tolist() == [5, 5, 5, 5, 0]
    assert out[1, :6].tolist() == [5, 5, 7, 7, 7, 0]
    assert int(out.sum()) == 5 * 6 + 7 * 3  # the second fill covers two of the first one's 8


def test_pattern_differs_between_repetitions():
    a, b = bench.pattern(0), bench.pattern(1)
    assert a.shape == (1080, 1920) and a.dtype == np.uint32
    assert int(a.max()) <= 0xFFFFFF
    assert a[0, 1] == 7 << 16 | 1  # x=1, y=0: red 7, green 0, blue 1
    assert not np.array_equal(a, b)


def test_cli_json_and_out_file(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--targets", "model", "--json",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["key"] for r in data["rows"]] == list(bench.ROW_KEYS)
    for r in data["rows"]:
        if r["key"] in {row.key for row in MODEL_ROWS}:
            assert r["median"]["model"] > 0
    assert "[bench]" in proc.stderr  # progress goes to stderr
    assert out.read_text().startswith("# Benchmarks\n")


def test_unknown_target_is_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--targets", "vmware"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "unknown benchmark target 'vmware'" in proc.stderr


@pytest.mark.qemu
def test_quick_run_against_qemu_has_every_row():
    res = bench.run(["model", "qemu"], bench.PLANS["quick"])
    for row in bench.ROWS:
        for target in row.targets:
            value = res.median(row.key, target)
            assert value is not None and value > 0, (row.key, target)
    for row in MODEL_ROWS:
        assert res.ratio(row.key) is not None and res.ratio(row.key) > 0
    assert res.machine.get("qemu")
    table = bench.render_table(res).splitlines()
    assert len(table) == 2 + len(bench.ROWS)
    assert all(line.count("|") == 5 for line in table)
