"""Benchmarks of captures (svga/captures/), each beside the plain run of the same work in the
same run.

Place in the whole: a tool outside the installed package, like bench/run.py. Rows:

- ``record_demo_command``: ``svga demo --device model`` as a user runs it (one whole process:
  start-up, drawing, the PNG) beside the same command with ``--record``; the overhead in per
  cent (target: under 10 %);
- ``record_demo``: svga demo's drawing alone (800x600, about 2 ms of work) on the model,
  recorded into a .svgacap, beside the same drawing unrecorded (the recording's fixed costs:
  file, header, the 1.9 MB of pixels under the full-screen UPDATE);
- ``record_stress``: the stress capture (captures/make_stress.py: 100,000 commands in the full
  plan) played on the model through a recording transport, beside the same play unrecorded;
- ``replay_model`` / ``replay_qemu``: the stress capture replayed (svga.captures.replay) on the
  model and on QEMU's device through qtest, in commands per second, beside the plain run: the
  same pre-decoded commands and pixels written straight through the driver (dev.fifo, VRAM),
  with no capture in between;
- ``parse``: the text form parsed, in lines per second: :func:`svga.stream.text.parse_capture`
  beside :func:`svga.stream.script.parse_script` on the same command lines.

The recording rows run the plain and the recorded work in turn, ``repeat`` times each, and
compare the fastest of each (on a shared machine the fastest run is the one least disturbed);
the replay and parse rows are medians (the QEMU rows: one run each, they take long). Before
timing, the recorded and replayed screens are checked against the plain run's, so no figure
comes from wrong work. :func:`rows` gives the rows of the one benchmark table (bench/table.py,
group ``captures``).

    python -m bench.captures            # writes bench/captures-results.md
    python -m bench.captures --quick    # small sizes, writes nothing unless --out
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "captures"))

import numpy as np  # noqa: E402
from make_stress import stress_capture  # noqa: E402

from bench.startup import ENV as STARTUP_ENV  # noqa: E402
from bench.table import Row  # noqa: E402
from svga.captures.replay import Player, model_device, replay  # noqa: E402
from svga.commands import Command  # noqa: E402
from svga.device import Device, open_device  # noqa: E402
from svga.model import ModelTransport  # noqa: E402
from svga.stream.binary import read_capture  # noqa: E402
from svga.stream.capture import Pixels  # noqa: E402
from svga.stream.script import parse_script  # noqa: E402
from svga.stream.text import format_capture_event, parse_capture  # noqa: E402
from svga.tools.demo import draw_demo  # noqa: E402
from svga.transport.recorder import RecordingTransport  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "captures-results.md"
PLANS = {"full": {"commands": 100_000, "qemu_commands": 100_000, "repeat": 5, "demo_repeat": 9,
                  "command_repeat": 21},
         "quick": {"commands": 2_000, "qemu_commands": 1_000, "repeat": 1, "demo_repeat": 2,
                   "command_repeat": 2}}


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _fastest_pair(plain, recorded, repeat: int) -> tuple[float, float]:
    """The fastest of ``repeat`` runs of each, run in turn (so both see the same machine)."""
    a, b = [], []
    for _ in range(repeat):
        for fn, times in ((plain, a), (recorded, b)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return min(a), min(b)


def _plain_play(dev: Device, items) -> None:
    """The capture's work without the capture: the same commands and pixels, written straight."""
    dev.enable()
    fifo, vram = dev.fifo, dev.transport.vram
    for item in items:
        ev = item.event
        if isinstance(ev, Command):
            fifo.write_command(ev.encode())
        elif isinstance(ev, Pixels):
            mode = dev.mode
            rows = np.frombuffer(ev.data, "<u4").reshape(ev.height, ev.width)
            for r in range(ev.height):
                vram.write(mode.fb_offset + (ev.y + r) * mode.pitch + ev.x * 4, rows[r])
        elif type(ev).__name__ == "Mode":
            dev.set_mode(ev.width, ev.height)
        elif type(ev).__name__ == "Sync":
            fifo.sync()
    dev.sync()


def _replay(dev: Device, cap) -> np.ndarray:
    with dev:
        player = Player(dev)
        replay(cap.items, player, cap.header)
        return player.screen()


def bench_record_demo(plan: dict, tmp: Path) -> dict:
    def plain():
        with Device(ModelTransport("vmware")) as dev:
            draw_demo(dev)
            return dev.read_vram().copy()

    def recorded():
        with Device(RecordingTransport(ModelTransport("vmware"), str(tmp / "demo.svgacap"))) as dev:
            draw_demo(dev)
            return dev.read_vram().copy()

    want = plain()
    assert (want == recorded()).all()
    with model_device("vmware") as dev:
        cap = read_capture(tmp / "demo.svgacap")
        player = Player(dev)
        replay(cap.items, player, cap.header)
        assert (dev.read_vram() == want).all()
    a, b = _fastest_pair(plain, recorded, plan["demo_repeat"])
    return {"plain_s": a, "recorded_s": b, "overhead_pct": 100 * (b - a) / a}


def bench_record_demo_command(plan: dict, tmp: Path) -> dict:
    """``svga demo --device model`` as a user runs it (a whole process: start-up, drawing, the
    PNG), beside the same command with ``--record``: what recording costs the person who asks
    for it. Run in turn, the fastest of each, bytecode cached as installed (bench/startup.py).
    ``--no-cursor`` so that the PNG can be checked against the capture replayed (the driver's
    close hides the cursor, and the replay ends there)."""
    png, cap = str(tmp / "demo-cmd.png"), str(tmp / "demo-cmd.svgacap")
    base = [sys.executable, "-m", "svga", "demo", "--device", "model", "--quiet", "--no-cursor",
            "--out", png]

    def run(argv: list[str]) -> None:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=STARTUP_ENV)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv[1:])} failed: {proc.stderr.strip()[-200:]}")

    run(base)
    run([*base, "--record", cap])  # warm-up: page cache and bytecode
    shown = _replay(model_device("vmware"), read_capture(cap))
    from PIL import Image

    assert (np.asarray(Image.open(png).convert("RGB")) == shown).all(), "the replayed demo differs"
    a, b = _fastest_pair(lambda: run(base), lambda: run([*base, "--record", cap]), plan["command_repeat"])
    return {"plain_s": a, "recorded_s": b, "overhead_pct": 100 * (b - a) / a}


def bench_record_stress(plan: dict, cap, tmp: Path) -> dict:
    def plain():
        with Device(ModelTransport("qemu")) as dev:
            _plain_play(dev, cap.items)
            return dev.read_vram().copy()

    def recorded():
        with Device(RecordingTransport(ModelTransport("qemu"), str(tmp / "stress.svgacap"))) as dev:
            _plain_play(dev, cap.items)
            return dev.read_vram().copy()

    assert (plain() == recorded()).all()
    a, b = _fastest_pair(plain, recorded, plan["repeat"])
    return {"plain_s": a, "recorded_s": b, "overhead_pct": 100 * (b - a) / a}


def bench_replay(plan: dict, cap, target: str) -> dict:
    n = sum(isinstance(it.event, Command) for it in cap.items)

    def make():
        return model_device("qemu") if target == "model" else open_device("qemu")

    def plain():
        with make() as dev:
            _plain_play(dev, cap.items)
            return dev.screenshot_array()

    def replayed():
        return _replay(make(), cap)

    repeat = plan["repeat"] if target == "model" else 1
    assert (plain() == replayed()).all() if target == "model" else True
    a = _median(plain, repeat)
    b = _median(replayed, repeat)
    return {"commands": n, "plain_cmds_per_s": n / a, "replay_cmds_per_s": n / b,
            "plain_s": a, "replay_s": b}


def bench_parse(plan: dict, cap) -> dict:
    lines = [format_capture_event(it.event) for it in cap.items if isinstance(it.event, Command)]
    text = "\n".join(lines) + "\n"
    assert parse_capture(text, "s").items == parse_script(text, "s")
    a = _median(lambda: parse_script(text, "s"), plan["repeat"])
    b = _median(lambda: parse_capture(text, "s"), plan["repeat"])
    return {"lines": len(lines), "script_lines_per_s": len(lines) / a, "capture_lines_per_s": len(lines) / b}


def run(plan_name: str = "quick", qemu: bool = True) -> dict:
    plan = PLANS[plan_name]
    out: dict = {"plan": plan_name, "date": datetime.date.today().isoformat(),
                 "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    cap = stress_capture(plan["commands"])
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out["record_demo_command"] = bench_record_demo_command(plan, tmp)
        out["record_demo"] = bench_record_demo(plan, tmp)
        out["record_stress"] = bench_record_stress(plan, cap, tmp)
    out["replay_model"] = bench_replay(plan, cap, "model")
    if qemu:
        qcap = cap if plan["qemu_commands"] == plan["commands"] else stress_capture(plan["qemu_commands"])
        out["replay_qemu"] = bench_replay(plan, qcap, "qemu")
    out["parse"] = bench_parse(plan, cap)
    return out


def rows(quick: bool = False) -> list[Row]:
    """The captures rows of the one benchmark table: recording overhead (target under 10 %,
    issue 13 'Measure'), replay rates beside the plain run of the same work, parsing rates."""
    return rows_from(run("quick" if quick else "full"))


def rows_from(r: dict) -> list[Row]:
    c, d, s = r["record_demo_command"], r["record_demo"], r["record_stress"]
    n = r["replay_model"]["commands"]
    out = [Row("captures", "recording overhead, svga demo --device model --record as a whole command "
               "(800x600, vmware profile: start-up, drawing, PNG; fastest of interleaved runs)",
               c["overhead_pct"], "%", target=10, higher_is_better=False),
           Row("captures", "of which the drawing alone (draw_demo in one process, recorded)",
               d["recorded_s"] * 1e3, "ms", d["plain_s"] * 1e3, "the same drawing unrecorded"),
           Row("captures", f"recording overhead, the {n}-command stress capture played on the model (qemu)",
               s["overhead_pct"], "%", target=10, higher_is_better=False)]
    for key, name in (("replay_model", "the model"), ("replay_qemu", "QEMU through qtest")):
        if key in r:
            x = r[key]
            out.append(Row("captures", f"replay of the {x['commands']}-command stress capture on {name}",
                           x["replay_cmds_per_s"], "commands/s", x["plain_cmds_per_s"],
                           "the same commands and pixels written straight through the driver"))
    p = r["parse"]
    out.append(Row("captures", f"text form parsed ({p['lines']} command lines, parse_capture)",
                   p["capture_lines_per_s"], "lines/s", p["script_lines_per_s"],
                   "parse_script (the command-script grammar alone) on the same lines"))
    return out


def table(r: dict) -> str:
    lines = [f"# Capture benchmarks ({r['plan']} plan, {r['date']}, {r['machine']})", "",
             "Written by `python -m bench.captures`. Recording: the fastest of interleaved runs; the "
             "rest: medians; every row beside the plain run of the same work in the same run.", "",
             "| what | plain | with captures | |", "|---|---:|---:|---:|"]
    c, d, s = r["record_demo_command"], r["record_demo"], r["record_stress"]
    lines.append(f"| recording, `svga demo --device model`, whole command | {c['plain_s'] * 1e3:.1f} ms | "
                 f"{c['recorded_s'] * 1e3:.1f} ms | {c['overhead_pct']:+.1f} % |")
    lines.append(f"| recording, svga demo 800x600 on the model | {d['plain_s'] * 1e3:.1f} ms | "
                 f"{d['recorded_s'] * 1e3:.1f} ms | {d['overhead_pct']:+.1f} % |")
    lines.append(f"| recording, the {r['replay_model']['commands']}-command capture on the model | "
                 f"{s['plain_s']:.2f} s | {s['recorded_s']:.2f} s | {s['overhead_pct']:+.1f} % |")
    for key, name in (("replay_model", "model"), ("replay_qemu", "QEMU through qtest")):
        if key in r:
            x = r[key]
            lines.append(f"| replay of the {x['commands']}-command capture, {name} | "
                         f"{x['plain_cmds_per_s']:,.0f} cmd/s | {x['replay_cmds_per_s']:,.0f} cmd/s | "
                         f"{100 * (x['replay_s'] - x['plain_s']) / x['plain_s']:+.1f} % |")
    p = r["parse"]
    lines.append(f"| parsing {p['lines']} command lines (parse_script / parse_capture) | "
                 f"{p['script_lines_per_s']:,.0f} lines/s | {p['capture_lines_per_s']:,.0f} lines/s | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.captures", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes; write nothing unless --out")
    ap.add_argument("--no-qemu", action="store_true", help="leave out the QEMU row")
    ap.add_argument("--out", help=f"write the table here (default: {RESULTS_PATH} unless --quick)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    r = run("quick" if args.quick else "full", qemu=not args.no_qemu)
    text = table(r)
    print(json.dumps(r, indent=2) if args.json else text)
    out = args.out or (None if args.quick else RESULTS_PATH)
    if out:
        Path(out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
