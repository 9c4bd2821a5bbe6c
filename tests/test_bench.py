"""Tests for bench/run.py (the one benchmark table) and bench/plot.py.

No timing assertions: only that each figure exists and is positive, that the rows carry what the
table needs (figure, value, unit, limit, ratio, target, met, group), that the collector turns a
missing or broken bench module into a note instead of a crash, that the files are written, and
that the helpers the benchmark checks itself with are right (each against an oracle written
here: struct packing, numpy, plain arithmetic)."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not installed; it lives beside svga/
    sys.path.insert(0, str(ROOT))

from bench import plot  # noqa: E402
from bench import run as bench  # noqa: E402
from bench.table import Row  # noqa: E402
from svga.errors import SVGAError  # noqa: E402

MODEL_MEASURES = [m for m in bench.MEASURES if "model" in m.targets]
QEMU_ONLY = [m for m in bench.MEASURES if m.targets == ("qemu",)]
JSON_KEYS = {"group", "figure", "value", "unit", "limit", "limit_label", "target", "higher_is_better",
             "ratio", "met"}


@pytest.fixture(scope="module")
def model_results():
    return bench.run(["model"], bench.PLANS["quick"])


# -- the built-in qtest source ---------------------------------------------------------------

def test_measures_are_the_ones_the_issue_asks_for():
    assert bench.MEASURE_KEYS == (
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


def test_model_run_has_a_positive_figure_for_every_model_measure(model_results):
    for m in MODEL_MEASURES:
        assert len(model_results.samples[m.key]["model"]) >= 1, m.key
        value = model_results.median(m.key, "model")
        assert value is not None and value > 0 and math.isfinite(value), m.key
    for m in QEMU_ONLY:
        assert model_results.median(m.key, "model") is None
    assert len(model_results.samples["startup"]["model"]) == bench.PLANS["quick"].startup_reps


def test_model_only_rows_have_no_limit(model_results):
    rows = bench.qtest_rows(model_results)
    assert len(rows) == len(MODEL_MEASURES)
    for m, row in zip(MODEL_MEASURES, rows, strict=True):
        assert row.group == "qtest" and row.unit == m.unit
        assert row.figure == f"{m.text(model_results.plan)}: model (profile qemu)"
        assert row.value == model_results.median(m.key, "model")
        assert row.limit is None and row.ratio is None and row.met is None
        assert row.higher_is_better == (m.unit == "commands/s")


def test_rows_put_the_model_against_qemu_and_the_qemu_batch_against_its_target():
    res = bench.Results(bench.PLANS["quick"], ("model", "qemu"), {})
    for v in (2.0, 4.0, 100.0):
        res.add("startup", "model", v)
    for v in (30.0, 10.0, 20.0):
        res.add("startup", "qemu", v)
    res.add("startup_launch", "qemu", 15.0)
    res.add("batch", "model", 50_000.0)
    res.add("batch", "qemu", 1_500_000.0)
    assert res.median("startup", "model") == 4.0 and res.median("startup", "qemu") == 20.0
    assert res.ratio("startup") == 5.0 and res.ratio("send") is None
    rows = {r.figure.split(": ")[0] + ": " + r.figure.rsplit(": ", 1)[1]: r for r in bench.qtest_rows(res)}
    startup = rows["start-up: model (profile qemu)"]
    assert (startup.value, startup.limit, startup.ratio) == (4.0, 20.0, 0.2)
    assert not startup.higher_is_better and startup.limit_label == bench.QTEST_LIMIT
    launch = rows["of which QEMU launch, QMP and PCI set-up: QEMU through qtest"]
    assert launch.value == 15.0 and launch.limit is None
    batch = [r for r in bench.qtest_rows(res) if r.figure.endswith("into QEMU through qtest")]
    assert len(batch) == 1 and batch[0].value == 1_500_000.0 and batch[0].target == 1.4e6 and batch[0].met


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


# -- the C baseline ----------------------------------------------------------------------------

def packed(n: int, pass_: int) -> bytes:
    """The RECT_FILLs of bench/c/encode_batch.c's header comment, packed one by one."""
    return b"".join(struct.pack("<6I", 2, (pass_ * 131 + k * 0x010203) & 0xFFFFFF, k % 80 * 8,
                                k // 80 % 60 * 8, 8, 8) for k in range(n))


def test_encode_reading_is_the_documented_stream():
    assert bench.encode_reading(500, 3).tobytes() == packed(500, 3)
    assert bench.fifo_ring_bytes() == 64 * 1024 - 16  # QEMU's FIFO less MIN, MAX, NEXT_CMD, STOP


def test_c_program_encodes_the_documented_stream(tmp_path):
    binary = bench._compile(bench.C_ENCODE, tmp_path / "encode_batch")
    dump = tmp_path / "pass0.bin"
    proc = subprocess.run([str(binary), "0.01", "2400", str(dump)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert line["commands"] % 100 == 0 and line["commands"] >= 100 and line["seconds"] >= 0.01
    assert dump.read_bytes() == packed(100, 0)


def test_c_program_refuses_bad_arguments(tmp_path):
    binary = bench._compile(bench.C_ENCODE, tmp_path / "encode_batch")
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: encode_batch")


def test_c_baseline_rows_put_encode_against_c():
    c, py = bench.c_encode_rows(True, (), bench._quiet)
    assert c.group == py.group == "driver" and c.unit == py.unit == "commands/s"
    assert c.value > 0 and py.value > 0 and c.limit is None
    assert py.limit == c.value and py.ratio == py.value / c.value
    assert "2730 RECT_FILL" in c.figure  # (65536 - 16) // 24


# -- the collector -----------------------------------------------------------------------------

def _fake(monkeypatch, name: str, **attrs):
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)


def test_module_rows_turns_every_kind_of_absence_into_a_note(monkeypatch):
    row = Row("model", "a figure", 2.0, "commands/s", 4.0, "a limit", 1.0)
    _fake(monkeypatch, "bench.fake_good", rows=lambda quick=False: [row])
    _fake(monkeypatch, "bench.fake_fails", rows=lambda quick=False: 1 / 0)
    _fake(monkeypatch, "bench.fake_exits", rows=lambda quick=False: sys.exit(3))
    _fake(monkeypatch, "bench.fake_wrong", rows=lambda quick=False: [{"figure": "x"}])
    assert bench.module_rows("bench.fake_good", True) == ([row], None)
    assert bench.module_rows("bench.not_written_yet", True) == \
        ([], "bench.not_written_yet: not there yet (skipped)")
    assert bench.module_rows("bench.table", True) == ([], "bench.table: has no rows() yet (skipped)")
    assert bench.module_rows("bench.fake_fails", True) == \
        ([], "bench.fake_fails: failed (ZeroDivisionError: division by zero)")
    assert bench.module_rows("bench.fake_exits", True)[1] == "bench.fake_exits: failed (SystemExit: 3)"
    assert bench.module_rows("bench.fake_wrong", True)[1] == \
        "bench.fake_wrong: rows() returned dict, not bench.table.Row"


def test_module_rows_passes_quick(monkeypatch):
    seen = []
    _fake(monkeypatch, "bench.fake_quick", rows=lambda quick=False: seen.append(quick) or [])
    bench.module_rows("bench.fake_quick", True)
    bench.module_rows("bench.fake_quick", False)
    assert seen == [True, False]


def test_collect_runs_the_chosen_groups_and_notes_the_rest(monkeypatch):
    a = Row("model", "model figure", 10.0, "commands/s", 20.0, "lean loop", 15.0)
    b = Row("guest", "guest figure", 3.0, "commands/s")
    _fake(monkeypatch, "bench.fake_a", rows=lambda quick=False: [a])
    _fake(monkeypatch, "bench.fake_b", rows=lambda quick=False: [b])

    def broken(quick, targets, progress):
        raise RuntimeError("no gcc here\nsecond line")
    sources = (bench.Source("bench.fake_a", "model"), bench.Source("bench.fake_b", "guest"),
               bench.Source("bench.not_there", "qa"), bench.Source("C baseline", "driver", broken))
    lines: list[str] = []
    col = bench.collect(True, (), progress=lines.append, sources=sources)
    assert col.rows == [a, b]
    assert col.notes == ["bench.not_there: not there yet (skipped)",
                         "C baseline: failed (RuntimeError: no gcc here)"]
    assert set(col.seconds) == {"bench.fake_a", "bench.fake_b", "bench.not_there", "C baseline"}
    assert lines[0] == "(1/4) bench.fake_a" and any("1 rows" in x for x in lines)
    only = bench.collect(True, ("guest",), sources=sources)
    assert only.rows == [b] and only.notes == [] and only.only == ("guest",)
    with pytest.raises(SVGAError, match="unknown group 'nope'"):
        bench.collect(True, ("nope",), sources=sources)


def test_every_bench_module_the_issue_names_is_a_source():
    names = [s.name for s in bench.SOURCES]
    for mod in ("bench.model", "bench.driver", "bench.screens", "bench.startup", "bench.guest",
                "bench.qa", "bench.captures"):
        assert mod in names
    assert names[:2] == ["qtest", "C baseline"]
    assert {s.group for s in bench.SOURCES} == set(bench.GROUPS)


# -- writing the results -----------------------------------------------------------------------

ROWS = [
    Row("driver", "encode + write_batch", 2e6, "commands/s", 1e7, "C", 3e6),
    Row("driver", "the C limit", 1e7, "commands/s"),
    Row("screenshot", "1080p PNG", 12.0, "ms", 9.0, "single-filter writer", 15.0, higher_is_better=False),
    Row("guest", "UPDATE 1x1", 30e3, "commands/s", 120e3, "C", 27e3),
]


def _collected(rows=ROWS, notes=("bench.qa: has no rows() yet (skipped)",)) -> bench.Collected:
    return bench.Collected(list(rows), list(notes), bench.machine_info(), quick=True, only=())


def test_markdown_table_has_every_row_and_the_notes():
    text = bench.render_markdown(_collected())
    assert text.startswith("# Benchmarks\n") and "--quick" in text
    assert "- bench.qa: has no rows() yet (skipped)" in text
    assert "4 rows, 2 targets met, 1 missed." in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(ROWS)
    cells = [c.strip() for c in table[1].strip("|").split("|")]
    assert cells == ["driver", "encode + write_batch", "2,000,000", "commands/s", "10,000,000", "C", "0.2",
                     "≥ 3,000,000", "**no**"]
    cells = [c.strip() for c in table[3].strip("|").split("|")]
    assert cells[-3:] == ["1.33", "≤ 15.0", "yes"]  # a time: lower is better
    assert "![commands per second against the limits](results.png)" in text


def test_results_files(tmp_path):
    paths = bench.write_results(_collected(), tmp_path / "out")
    assert [p.name for p in paths] == ["results.json", "results.md", "results.png"]
    data = json.loads(paths[0].read_text())
    assert isinstance(data, list) and len(data) == len(ROWS)
    for item, row in zip(data, ROWS, strict=True):
        assert set(item) == JSON_KEYS
        assert (item["figure"], item["value"], item["limit"], item["target"]) == \
            (row.figure, row.value, row.limit, row.target)
    assert data[0]["ratio"] == 0.2 and data[0]["met"] is False and data[1]["ratio"] is None
    assert data[3]["met"] is True
    with Image.open(paths[2]) as img:
        assert img.format == "PNG" and img.width == plot.WIDTH
        # one line a plotted row plus one a group: 3 rows in commands/s, 2 groups
        assert img.height == plot.TOP + plot.BOTTOM + 5 * plot.ROW_H


def test_plot_shows_only_rates_and_draws_the_bars():
    assert plot.plotted(ROWS) == [ROWS[0], ROWS[1], ROWS[3]]
    img = np.asarray(plot.render(ROWS).convert("RGB"))
    # the first bar (group driver, first colour) is drawn in its row, right of the labels
    y = plot.TOP + plot.ROW_H + plot.ROW_H // 2
    colour = tuple(int(plot.PALETTE[0][i: i + 2], 16) for i in (1, 3, 5))
    assert tuple(img[y, plot.LABEL_W + 5]) == colour
    empty = np.asarray(plot.render([ROWS[2]]).convert("L"))
    assert empty.shape == (plot.TOP + plot.BOTTOM + plot.ROW_H, plot.WIDTH)


def test_plot_cli_redraws_from_json(tmp_path):
    src = tmp_path / "results.json"
    src.write_text(json.dumps([r.as_json() for r in ROWS]))
    out = tmp_path / "again.png"
    assert plot.main([str(src), str(out)]) == 0 and out.stat().st_size > 0
    (tmp_path / "bad.json").write_text("{")
    proc = subprocess.run([sys.executable, "-m", "bench.plot", str(tmp_path / "bad.json"), str(out)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot read" in proc.stderr


# -- the command line --------------------------------------------------------------------------

def test_cli_json_and_out_folder(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "qtest", "--targets", "model",
         "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data) == len(MODEL_MEASURES)
    for item in data:
        assert set(item) == JSON_KEYS and item["group"] == "qtest" and item["value"] > 0
    assert "[bench] (1/1) qtest" in proc.stderr  # progress goes to stderr
    assert json.loads((tmp_path / "results.json").read_text()) == data
    assert (tmp_path / "results.md").read_text().startswith("# Benchmarks\n")
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--targets", "vmware"], "unknown benchmark target 'vmware'"),
    (["--only", "nope"], "unknown group 'nope'"),
])
def test_bad_options_are_one_line_errors(args, message):
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr


@pytest.mark.qemu
def test_quick_run_against_qemu_has_every_row():
    res = bench.run(["model", "qemu"], bench.PLANS["quick"])
    for m in bench.MEASURES:
        for target in m.targets:
            value = res.median(m.key, target)
            assert value is not None and value > 0, (m.key, target)
    assert res.machine.get("qemu")
    rows = bench.qtest_rows(res)
    assert len(rows) == len(bench.MEASURES) + 1  # and the batch into QEMU against its target
    for row in rows:
        if row.figure.endswith("model (profile qemu)"):
            assert row.limit is not None and row.limit > 0 and row.ratio is not None and row.ratio > 0
    assert rows[-1].target == bench.QTEST_BATCH_TARGET
