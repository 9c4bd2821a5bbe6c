"""The capture commands on the command line (svga/tools/capture_cli.py): capture info, replay
--frames / --screenshots / --speed, dump, convert, and the benchmark's quick plan (bench/captures.py)
as a smoke test (no timing asserted, only that every row is there and positive).

Oracles: counts read off the sample files with plain text tools here (grep-like line counts),
the wall clock for --speed realtime, and the screens of a full replay for --frames."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def svga(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "svga", *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_capture_info_counts_what_the_file_holds():
    path = CAPTURES / "scroll.svgascript"
    lines = [ln.split("#")[0].split() for ln in path.read_text().splitlines()]
    heads = [ln[0] for ln in lines if ln]
    data = json.loads(svga("capture", "info", path, "--json").stdout)
    assert data["frames"] == heads.count("frame") + 1
    assert data["commands_by_kind"] == {"UPDATE": heads.count("UPDATE"),
                                        "RECT_COPY": heads.count("RECT_COPY")}
    assert data["pixel_events"] == heads.count("pixels")
    assert data["modes"] == ["320x240x32"] and data["duration_s"] == 1.0  # time 60/60 is the last
    text = svga("capture", "info", path).stdout
    assert "RECT_COPY" in text and "frames:        61" in text


def test_frames_and_screenshots(tmp_path):
    path = CAPTURES / "scroll.svgascript"
    svga("replay", path, "--screenshots", tmp_path / "all", "-q")
    svga("replay", path, "--frames", "5..7", "--screenshots", tmp_path / "some", "--screenshot",
         tmp_path / "end.png", "-q")
    some = sorted(p.name for p in (tmp_path / "some").iterdir())
    assert some == ["frame-00005.png", "frame-00006.png", "frame-00007.png"]
    assert len(list((tmp_path / "all").iterdir())) == 61
    for name in some:
        one, other = (np.asarray(Image.open(tmp_path / d / name)) for d in ("some", "all"))
        assert (one == other).all()
    # the replay stops after frame 7: its last screen is frame 7's
    assert (np.asarray(Image.open(tmp_path / "end.png")) ==
            np.asarray(Image.open(tmp_path / "all" / "frame-00007.png"))).all()


def test_speed_realtime_keeps_to_the_timestamps(tmp_path):
    path = tmp_path / "slow.svgascript"
    path.write_text("mode 32x32\nframe 0\ntime 0\nsync\nframe 1\ntime 0.8\nsync\n")
    t = time.monotonic()
    svga("replay", path, "--speed", "realtime", "-q")
    slow = time.monotonic() - t
    t = time.monotonic()
    svga("replay", path, "-q")
    fast = time.monotonic() - t
    assert slow - fast > 0.6


def test_dump_and_convert(tmp_path):
    src = CAPTURES / "copies.svgascript"
    svga("convert", src, tmp_path / "c.svgacap")
    dumped = svga("dump", tmp_path / "c.svgacap").stdout
    assert dumped.startswith("capture version=1 kind=script")
    assert dumped.count("RECT_COPY") == src.read_text().count("\nRECT_COPY")
    svga("dump", tmp_path / "c.svgacap", "-o", tmp_path / "c.txt")
    assert (tmp_path / "c.txt").read_text() == dumped


def test_help_teaches():
    for cmd in ("record", "replay", "dump", "convert", "trim", "diff"):
        out = svga(cmd, "--help").stdout
        assert "example" in out, cmd
    assert "pixels" in svga("replay", "--help").stdout


def test_bench_quick_plan_reports_every_row():
    from bench import captures as bench

    r = bench.run("quick", qemu=False)
    for key in ("record_demo_command", "record_demo", "record_stress", "replay_model", "parse"):
        assert all(v > 0 for k, v in r[key].items() if k != "overhead_pct"), key
    table = bench.table(r)
    assert table.count("\n| ") == 6 and "cmd/s" in table and "lines/s" in table
    assert "whole command" in table


def test_svga_check_reads_captures_in_both_forms(tmp_path):
    src = CAPTURES / "fences-screens.svgascript"
    fence_line = next(i for i, ln in enumerate(src.read_text().splitlines(), 1) if ln.startswith("FENCE"))
    r = svga("check", src, "--profile", "qemu", check=False)
    assert r.returncode == 1 and f"{src}:{fence_line}: breaks: FENCE" in r.stdout
    svga("convert", src, tmp_path / "f.svgacap")
    r = svga("check", tmp_path / "f.svgacap", "--profile", "qemu", check=False)
    assert r.returncode == 1 and "f.svgacap@" in r.stdout and "breaks: FENCE" in r.stdout
    assert svga("check", src, "--profile", "vmware").returncode == 0
