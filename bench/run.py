"""Benchmarks: the software model (profile ``qemu``) beside QEMU's real SVGA II device through
qtest, measured side by side in one run.

Place in the whole: a tool outside the installed package (``bench/`` is not in the wheel). It
drives both devices through the driver's public API only (:func:`svga.device.open_device`,
``Device``, ``Device.fifo``), so what it times is what a program using the driver gets. Speed
and memory figures live here, never in timed unit tests; each figure is a median of several
repetitions, and the two devices take turns repetition by repetition, so a slow moment of the
machine hits both.

    python3 -m bench.run              # full run: Markdown table on stdout, bench/results.md
    python3 -m bench.run --quick      # smoke run (fewer repetitions, nothing written)
    python3 -m bench.run --json       # the same figures as JSON on stdout
    python3 -m bench.run --targets model

What is measured, for each device:

- start-up: ``open_device`` until the version is negotiated (QEMU: launch, QMP, PCI set-up);
- one register read (a port round trip: what every FIFO pointer read costs through qtest);
- commands per second: N pre-encoded RECT_FILL/UPDATE pairs through ``fifo.write_batch`` then
  ``sync`` (N wraps the 64 KiB FIFO several times), and the reserve/commit path
  (``fifo.send`` per command) then ``sync``; the rectangles lie inside 640x480, where QEMU's
  headless display surface accepts fills (docs/qemu-7.2.md, stale-stride quirk);
- a 1920x1080 CPU draw with a full-screen UPDATE, and the same with an UPDATE of the left half
  (a narrower rectangle is uploaded row by row);
- a 1920x1080 readback: the display (QEMU: QMP screendump) and VRAM;
- memory: Python-side allocations of an open device in 1080p, and QEMU's own RSS.

Every measured result is checked once outside the timed region (pixels read back equal a
numpy reading of what was drawn), so a figure can never come from work that silently failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (python3 bench/run.py): find svga beside bench/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from svga import commands, pixels  # noqa: E402
from svga.device import Device, open_device  # noqa: E402
from svga.errors import SVGAError  # noqa: E402
from svga.registers import Reg  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
FILL_AREA = (640, 480)
"""Rectangles of the command benchmarks stay inside this (QEMU's headless display surface)."""
RECT = 16
RESULTS_PATH = Path(__file__).resolve().parent / "results.md"
TARGETS: dict[str, str] = {
    "model": "software model (profile qemu)",
    "qemu": "QEMU qtest",
}


class BenchError(SVGAError):
    """A benchmark's result was wrong, so its figure would mean nothing."""


@dataclass(frozen=True)
class Plan:
    """How much work each benchmark does."""

    name: str
    startup_reps: int
    reps: int
    batch_commands: int
    send_commands: int
    register_reads: int


PLANS = {
    "full": Plan("full", startup_reps=7, reps=5, batch_commands=24_000, send_commands=4_000,
                 register_reads=1_000),
    "quick": Plan("quick", startup_reps=2, reps=1, batch_commands=6_000, send_commands=600,
                  register_reads=100),
}


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    targets: tuple[str, ...] = ("model", "qemu")

    def what(self, plan: Plan) -> str:
        text = self.label.format(batch=plan.batch_commands, send=plan.send_commands, w=WIDTH, h=HEIGHT)
        return f"{text} ({self.unit})"


ROWS: tuple[Row, ...] = (
    Row("startup", "start-up: open_device to a negotiated device", "ms"),
    Row("startup_launch", "of which QEMU launch, QMP and PCI set-up", "ms", ("qemu",)),
    Row("register_read", "one register read (through qtest: a round trip)", "µs"),
    Row("batch", "{batch} RECT_FILL/UPDATE pre-encoded, fifo.write_batch + sync", "commands/s"),
    Row("send", "{send} RECT_FILL/UPDATE, fifo.send each (reserve/commit) + sync", "commands/s"),
    Row("draw_full", "{w}x{h} CPU draw + full-screen UPDATE + sync", "ms"),
    Row("draw_half", "{w}x{h} CPU draw of the left half + its UPDATE (uploaded row by row) + sync", "ms"),
    Row("display", "{w}x{h} readback: display (model refresh / QMP screendump)", "ms"),
    Row("vram", "{w}x{h} readback: read_vram", "ms"),
    Row("memory", "Python allocations of an open device in {w}x{h}", "MiB"),
    Row("qemu_rss", "QEMU process RSS at the end of the run", "MiB", ("qemu",)),
)
ROW_KEYS = tuple(r.key for r in ROWS)


@dataclass
class Results:
    plan: Plan
    targets: tuple[str, ...]
    machine: dict[str, str]
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, key: str, target: str, value: float) -> None:
        self.samples.setdefault(key, {}).setdefault(target, []).append(float(value))

    def median(self, key: str, target: str) -> float | None:
        values = self.samples.get(key, {}).get(target)
        return statistics.median(values) if values else None

    def ratio(self, key: str) -> float | None:
        model, qemu = self.median(key, "model"), self.median(key, "qemu")
        if model is None or qemu is None or model == 0:
            return None
        return qemu / model

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.__dict__,
            "machine": self.machine,
            "targets": list(self.targets),
            "rows": [
                {"key": r.key, "what": r.what(self.plan), "unit": r.unit,
                 "median": {t: self.median(r.key, t) for t in self.targets},
                 "ratio_qemu_over_model": self.ratio(r.key),
                 "samples": self.samples.get(r.key, {})}
                for r in ROWS
            ],
        }


Progress = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:
    pass


def _open(target: str) -> Device:
    if target == "model":
        return open_device("model", profile="qemu")
    if target == "qemu":
        return open_device("qemu")
    raise SVGAError(f"unknown benchmark target {target!r}: use {', '.join(TARGETS)}")


# -- the work being timed -------------------------------------------------------------------

def command_list(n: int) -> list[tuple[str, dict[str, int]]]:
    """``n`` commands, RECT_FILL and UPDATE alternating, 16x16 at varied places in 640x480."""
    cols, rows = FILL_AREA[0] // RECT, FILL_AREA[1] // RECT
    out: list[tuple[str, dict[str, int]]] = []
    for i in range(n):
        cell = i // 2
        rect = {"x": (cell % cols) * RECT, "y": (cell // cols % rows) * RECT, "width": RECT, "height": RECT}
        if i % 2 == 0:
            out.append(("RECT_FILL", {"color": (cell * 0x010203) & 0xFFFFFF, **rect}))
        else:
            out.append(("UPDATE", rect))
    return out


def fill_reading(cmds: Sequence[tuple[str, dict[str, int]]]) -> np.ndarray:
    """A plain numpy reading of the fills in ``cmds`` on a 640x480 surface (uint32 pixels)."""
    out = np.zeros((FILL_AREA[1], FILL_AREA[0]), dtype=np.uint32)
    for name, f in cmds:
        if name == "RECT_FILL":
            out[f["y"]: f["y"] + f["height"], f["x"]: f["x"] + f["width"]] = f["color"]
    return out


def _check_fills(dev: Device, cmds: Sequence[tuple[str, dict[str, int]]], what: str) -> None:
    """The fills really ran. No display refresh has happened since the mode was set, so
    QEMU still has its 640x480 start-up surface and fills with its 2560-byte stride
    (docs/qemu-7.2.md quirk 2); the model's qemu profile imitates that."""
    assert dev.mode is not None
    raw = dev.transport.vram.read(dev.mode.fb_offset, FILL_AREA[0] * FILL_AREA[1] * 4)
    got = np.frombuffer(raw, "<u4").reshape(FILL_AREA[1], FILL_AREA[0])
    if not np.array_equal(got, fill_reading(cmds)):
        raise BenchError(f"{what}: VRAM does not hold the fills that were sent")


def pattern(rep: int) -> np.ndarray:
    """A 1080p 0x00RRGGBB test image that differs between repetitions."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.uint32)
    return ((x * 7 + rep) & 0xFF) << 16 | ((y * 5 + 3 * rep) & 0xFF) << 8 | ((x ^ y) + rep) & 0xFF


def _rgb(px: np.ndarray) -> np.ndarray:
    return pixels.to_rgb(px)


def _check_fifo(dev: Device, what: str) -> None:
    nxt, stop = dev.fifo.pointers()
    if nxt != stop or dev.fifo.overruns:
        raise BenchError(f"{what}: the FIFO did not drain cleanly (NEXT_CMD={nxt}, STOP={stop})")
    output = getattr(dev.transport, "qemu_output", None)
    if output is not None:
        bad = [line for line in output() if "vmsvga" in line]
        if bad:
            raise BenchError(f"{what}: QEMU rejected commands: {bad[-1]}")


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _read_registers(dev: Device, n: int) -> None:
    for _ in range(n):
        dev.regs.read(Reg.ID)


def _write_batch(dev: Device, batch: list[bytes]) -> None:
    dev.fifo.write_batch(batch)
    dev.sync()


def _send_each(dev: Device, sends: list[tuple[str, dict[str, int]]]) -> None:
    for name, f in sends:
        dev.fifo.send(name, **f)
    dev.sync()


def _draw(dev: Device, img: np.ndarray, width: int) -> None:
    """CPU drawing of the left ``width`` columns of ``img``, then UPDATE of just those."""
    dev.framebuffer[:, :width] = img[:, :width]
    dev.update(0, 0, width, HEIGHT)
    dev.sync()


def _qemu_rss_mib(dev: Device) -> float | None:
    pid = getattr(dev.transport, "pid", None)
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- the run ---------------------------------------------------------------------------------

def run(targets: Sequence[str] = ("model", "qemu"), plan: Plan = PLANS["full"],
        progress: Progress = _quiet) -> Results:
    """Measure every row of :data:`ROWS` for ``targets``, repetitions interleaved."""
    targets = tuple(targets)
    for t in targets:
        if t not in TARGETS:
            raise SVGAError(f"unknown benchmark target {t!r}: use {', '.join(TARGETS)}")
    res = Results(plan, targets, machine_info())

    # (a) start-up: a fresh device per repetition, after one untimed open of each (module
    # imports, QEMU's binary in the page cache) so that the first repetition is not special.
    for t in targets:
        progress(f"warm-up {t}")
        _open(t).close()
    for rep in range(plan.startup_reps):
        for t in targets:
            progress(f"start-up {rep + 1}/{plan.startup_reps} {t}")
            t0 = time.perf_counter()
            dev = _open(t)
            res.add("startup", t, (time.perf_counter() - t0) * 1e3)
            launch = getattr(dev.transport, "startup_seconds", None)
            if launch is not None and "startup_launch" in _row(t):
                res.add("startup_launch", t, launch * 1e3)
            version = getattr(dev.transport, "qemu_version", None)
            if version:
                res.machine["qemu"] = str(version)
            dev.close()

    # One long-lived device per target for the rest; its memory is traced while it opens.
    devs: dict[str, Device] = {}
    try:
        for t in targets:
            progress(f"memory {t}")
            tracemalloc.start()
            try:
                dev = _open(t)
                devs[t] = dev
                dev.set_mode(WIDTH, HEIGHT)
                res.add("memory", t, tracemalloc.get_traced_memory()[0] / (1 << 20))
            finally:
                tracemalloc.stop()
        _measure(devs, res, progress)
        for t, dev in devs.items():
            rss = _qemu_rss_mib(dev) if "qemu_rss" in _row(t) else None
            if rss is not None:
                res.add("qemu_rss", t, rss)
    finally:
        for dev in devs.values():
            dev.close()
    return res


def _row(target: str) -> set[str]:
    """The row keys measured for a target."""
    return {r.key for r in ROWS if target in r.targets}


def _measure(devs: dict[str, Device], res: Results, progress: Progress) -> None:
    plan = res.plan
    for rep in range(plan.reps):
        for t, dev in devs.items():
            progress(f"register read {rep + 1}/{plan.reps} {t}")
            dt, _ = _timed(_read_registers, dev, plan.register_reads)
            res.add("register_read", t, dt / plan.register_reads * 1e6)

    batch_list = command_list(plan.batch_commands)
    batch = [commands.encode(name, **f) for name, f in batch_list]
    for rep in range(plan.reps):
        for t, dev in devs.items():
            progress(f"write_batch {rep + 1}/{plan.reps} {t}")
            dev.sync()
            dt, _ = _timed(_write_batch, dev, batch)
            res.add("batch", t, len(batch) / dt)
            if rep == 0:
                _check_fifo(dev, "write_batch")
                _check_fills(dev, batch_list, f"{t} write_batch")

    sends = command_list(plan.send_commands)
    for rep in range(plan.reps):
        for t, dev in devs.items():
            progress(f"fifo.send {rep + 1}/{plan.reps} {t}")
            dev.sync()
            dt, _ = _timed(_send_each, dev, sends)
            res.add("send", t, len(sends) / dt)
            if rep == 0:
                _check_fifo(dev, "fifo.send")

    half = WIDTH // 2
    for rep in range(plan.reps):
        full, left = pattern(rep), pattern(rep + 1000)
        expect = full.copy()
        expect[:, :half] = left[:, :half]
        for t, dev in devs.items():
            progress(f"1080p draw {rep + 1}/{plan.reps} {t}")
            dt, _ = _timed(_draw, dev, full, WIDTH)
            res.add("draw_full", t, dt * 1e3)
            if rep == 0 and not np.array_equal(dev.read_vram(), full):
                raise BenchError(f"{t}: VRAM does not hold the full-screen drawing")
            dt, _ = _timed(_draw, dev, left, half)
            res.add("draw_half", t, dt * 1e3)
            if rep == 0 and not np.array_equal(dev.read_vram(), expect):
                raise BenchError(f"{t}: VRAM does not hold the half-screen drawing")
    shown_last = expect  # what every device shows from here on

    for rep in range(plan.reps):
        for t, dev in devs.items():
            progress(f"1080p readback {rep + 1}/{plan.reps} {t}")
            dt, shown = _timed(dev.screenshot_array, "display", False)
            res.add("display", t, dt * 1e3)
            dt, vram = _timed(dev.read_vram)
            res.add("vram", t, dt * 1e3)
            if rep == 0:
                if shown.shape != (HEIGHT, WIDTH, 3) or not np.array_equal(shown, _rgb(shown_last)):
                    raise BenchError(f"{t}: the display does not show the last drawing")
                if not np.array_equal(vram, shown_last):
                    raise BenchError(f"{t}: read_vram does not return the last drawing")


# -- reporting -------------------------------------------------------------------------------

def machine_info() -> dict[str, str]:
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "kernel": platform.release(),
        "cpu": _cpu_model(),
    }
    qemu = _qemu_version()
    if qemu:
        info["qemu"] = qemu
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _qemu_version() -> str | None:
    try:
        out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.splitlines()[0] if out else ""
    return first.removeprefix("QEMU emulator version ").strip() or None


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def render_table(res: Results) -> str:
    cols = ["what", *(TARGETS[t] if t != "model" else "model" for t in res.targets)]
    if "model" in res.targets and "qemu" in res.targets:
        cols.append("ratio (QEMU/model)")
    lines = ["| " + " | ".join(cols) + " |", "|---" + "|---:" * (len(cols) - 1) + "|"]
    for r in ROWS:
        cells = [r.what(res.plan), *(fmt(res.median(r.key, t)) for t in res.targets)]
        if len(cols) > len(cells):
            cells.append(fmt(res.ratio(r.key)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(res: Results) -> str:
    m = res.machine
    p = res.plan
    return "\n".join([
        "# Benchmarks",
        "",
        f"`python3 -m bench.run{' --quick' if p.name == 'quick' else ''}`, {m['date']}. "
        f"Machine: {m['cpu']}, nproc {m['nproc']}, Linux {m['kernel']}, Python {m['python']}, "
        f"numpy {m['numpy']}, QEMU {m.get('qemu', 'not used')}.",
        "",
        f"Medians of {p.reps} repetitions ({p.startup_reps} for start-up), the devices taking "
        "turns in one run. The model is `open_device(\"model\", profile=\"qemu\")`; QEMU is "
        "`open_device(\"qemu\")` (qemu-system-x86_64 -vga vmware, headless, through qtest). "
        "The ratio is QEMU's figure over the model's: above 1 means QEMU takes longer or more "
        "memory, or (commands/s) runs more commands per second.",
        "",
        render_table(res),
        "",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and commands (smoke run); "
                    "writes no file unless --out is given")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of Markdown")
    ap.add_argument("--targets", default="model,qemu", help="comma-separated: model, qemu (default both)")
    ap.add_argument("--out", type=Path, default=None,
                    help="Markdown file to write (default: bench/results.md for a full run)")
    args = ap.parse_args(argv)
    plan = PLANS["quick" if args.quick else "full"]
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    out = args.out if args.out is not None else (None if args.quick else RESULTS_PATH)
    try:
        res = run(targets, plan, progress=_stderr)
    except SVGAError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    text = render_markdown(res)
    if out is not None:
        out.write_text(text)
        _stderr(f"wrote {out}")
    if args.json:
        print(json.dumps(res.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
