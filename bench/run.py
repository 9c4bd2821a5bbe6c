"""The one benchmark table (``make bench``): every figure beside its limit, measured in the
same run, collected from the bench modules into ``bench/results.json``, ``bench/results.md``
and ``bench/results.png``.

Place in the whole: a tool outside the installed package (``bench/`` is not in the wheel). It
is the collector of the bench modules: each one that takes part exposes ``rows(quick: bool =
False) -> list[bench.table.Row]`` (a figure, its limit measured in the same run, the issue's
target). The sources, in the order they run (:data:`SOURCES`):

- built in here, group "qtest": the software model (profile ``qemu``) beside QEMU's real SVGA II
  device through qtest, the two taking turns repetition by repetition, through the driver's
  public API only (:func:`svga.device.open_device`, ``Device``, ``Device.fifo``);
- built in here, group "driver": the physical limit of the driver's batch path, a C program
  (bench/c/encode_batch.c) compiled with the machine's gcc at bench time that encodes RECT_FILLs
  into a FIFO-sized buffer, beside ``commands.encode`` doing the same in the same run;
- the modules ``bench.model``, ``bench.driver``, ``bench.screens``, ``bench.startup``,
  ``bench.qa``, ``bench.captures``, ``bench.input`` and ``bench.guest`` (a lab guest: C, plain
  Python and the driver through sysfs), each when it exists and has ``rows()``. A module that is
  not there, has no ``rows()`` or fails is named in a note of the results, never a crash.

    python3 -m bench.run                  # everything; writes bench/results.{json,md,png}
    python3 -m bench.run --quick          # short plans; writes nothing unless --out DIR
    python3 -m bench.run --only qtest     # one group (repeat or comma-separate for more)
    python3 -m bench.run --json           # the rows as JSON on stdout

Progress goes to stderr, one line a step. Speed figures live here, never in timed unit tests.

What the built-in "qtest" source measures, for each device:

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

Each becomes a row whose figure is the model's and whose limit is QEMU's (ratio = model / QEMU),
plus the batched rate into QEMU against the issue's target (keep or beat 1.4 M/s). Every
measured result is checked once outside the timed region (pixels read back equal a numpy
reading of what was drawn), so a figure can never come from work that silently failed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (python3 bench/run.py): find svga beside bench/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.table import Row  # noqa: E402
from svga import commands, pixels  # noqa: E402
from svga.device import Device, open_device  # noqa: E402
from svga.errors import SVGAError  # noqa: E402
from svga.facts.profiles import QEMU as QEMU_PROFILE  # noqa: E402
from svga.registers import FIFO_MIN_SIZE_LEGACY, Reg  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
FILL_AREA = (640, 480)
"""Rectangles of the command benchmarks stay inside this (QEMU's headless display surface)."""
RECT = 16
BENCH_DIR = Path(__file__).resolve().parent
C_ENCODE = BENCH_DIR / "c" / "encode_batch.c"
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
class Measure:
    """One figure of the built-in qtest source, measured on each target."""

    key: str
    label: str
    unit: str
    targets: tuple[str, ...] = ("model", "qemu")

    def text(self, plan: Plan) -> str:
        return self.label.format(batch=plan.batch_commands, send=plan.send_commands, w=WIDTH, h=HEIGHT)


MEASURES: tuple[Measure, ...] = (
    Measure("startup", "start-up: open_device to a negotiated device", "ms"),
    Measure("startup_launch", "of which QEMU launch, QMP and PCI set-up", "ms", ("qemu",)),
    Measure("register_read", "one register read (through qtest: a round trip)", "µs"),
    Measure("batch", "{batch} RECT_FILL/UPDATE pre-encoded, fifo.write_batch + sync", "commands/s"),
    Measure("send", "{send} RECT_FILL/UPDATE, fifo.send each (reserve/commit) + sync", "commands/s"),
    Measure("draw_full", "{w}x{h} CPU draw + full-screen UPDATE + sync", "ms"),
    Measure("draw_half", "{w}x{h} CPU draw of the left half + its UPDATE (uploaded row by row) + sync", "ms"),
    Measure("display", "{w}x{h} readback: display (model refresh / QMP screendump)", "ms"),
    Measure("vram", "{w}x{h} readback: read_vram", "ms"),
    Measure("memory", "Python allocations of an open device in {w}x{h}", "MiB"),
    Measure("qemu_rss", "QEMU process RSS at the end of the run", "MiB", ("qemu",)),
)
MEASURE_KEYS = tuple(r.key for r in MEASURES)


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
                {"key": r.key, "what": r.text(self.plan), "unit": r.unit,
                 "median": {t: self.median(r.key, t) for t in self.targets},
                 "ratio_qemu_over_model": self.ratio(r.key),
                 "samples": self.samples.get(r.key, {})}
                for r in MEASURES
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
    """Measure every row of :data:`MEASURES` for ``targets``, repetitions interleaved."""
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
    return {r.key for r in MEASURES if target in r.targets}


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
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
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




def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


# -- the built-in sources as rows of the one table ------------------------------------------

QTEST_BATCH_TARGET = 1.4e6
"""Issue "Fast paths", Deliver 2: keep or beat today's 1.4 M batched commands per second into
QEMU through qtest."""
QTEST_LIMIT = "QEMU 7.2's device through qtest, same run"


def qtest_rows(res: Results) -> list[Row]:
    """The model-vs-QEMU figures as rows: the model's figure against QEMU's (ratio = model /
    QEMU), QEMU's own where the model has none, and the batched rate into QEMU against its
    target."""
    out: list[Row] = []
    for m in MEASURES:
        model, qemu = res.median(m.key, "model"), res.median(m.key, "qemu")
        higher = m.unit == "commands/s"
        text = m.text(res.plan)
        if model is not None:
            out.append(Row("qtest", f"{text}: model (profile qemu)", model, m.unit, qemu,
                           QTEST_LIMIT if qemu is not None else "", higher_is_better=higher))
        elif qemu is not None:
            out.append(Row("qtest", f"{text}: QEMU through qtest", qemu, m.unit, higher_is_better=higher))
    batch = res.median("batch", "qemu")
    if batch is not None:
        text = next(m for m in MEASURES if m.key == "batch").text(res.plan)
        out.append(Row("qtest", f"{text}: into QEMU through qtest", batch, "commands/s",
                       target=QTEST_BATCH_TARGET))
    return out


def _qtest_source(quick: bool, targets: Sequence[str], progress: Progress) -> list[Row]:
    return qtest_rows(run(targets, PLANS["quick" if quick else "full"], progress))


def fifo_ring_bytes() -> int:
    """QEMU's FIFO less its four registers (svga/facts/profiles.py, docs/lab.md 'The devices the
    guest sees'): what one FIFO-sized batch of commands may fill."""
    return QEMU_PROFILE.fifo_size - FIFO_MIN_SIZE_LEGACY


def encode_reading(n: int, pass_: int = 0) -> np.ndarray:
    """A numpy reading of bench/c/encode_batch.c's buffer for one pass: n RECT_FILLs, fill k
    coloured (pass * 131 + k * 0x010203) & 0xFFFFFF at (k % 80 * 8, k // 80 % 60 * 8), 8x8."""
    k = np.arange(n, dtype=np.uint64)
    words = np.empty((n, 6), dtype="<u4")
    words[:, 0] = 2
    words[:, 1] = (pass_ * 131 + k * 0x010203) & 0xFFFFFF
    words[:, 2] = k % 80 * 8
    words[:, 3] = k // 80 % 60 * 8
    words[:, 4:] = 8
    return words.reshape(-1)


def _compile(source: Path, out: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BenchError(f"gcc not found: {source.name} is compiled at bench time (apt-get install gcc)")
    proc = subprocess.run([gcc, "-O2", "-Wall", "-o", str(out), str(source)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"gcc failed on {source.name}: "
                         f"{(proc.stderr.strip().splitlines() or ['no message'])[0]}")
    return out


def _python_encode(n: int, window: float) -> tuple[float, bytes]:
    """``commands.encode`` of the same RECT_FILLs joined into one buffer, passes until
    ``window`` seconds have gone: (commands per second, the buffer of pass 0)."""
    where = [(k % 80 * 8, k // 80 % 60 * 8) for k in range(n)]
    encode = commands.encode

    def one(p: int) -> bytes:
        return b"".join([encode("RECT_FILL", color=(p * 131 + k * 0x010203) & 0xFFFFFF, x=x, y=y,
                                width=8, height=8) for k, (x, y) in enumerate(where)])
    first = one(0)
    passes, t0 = 0, time.perf_counter()
    while (t := time.perf_counter() - t0) < window:
        one(passes)
        passes += 1
    return passes * n / t, first


def c_encode_rows(quick: bool, targets: Sequence[str], progress: Progress) -> list[Row]:
    """The physical limit of the driver's batch path: C encoding RECT_FILLs into a FIFO-sized
    buffer, and ``commands.encode`` doing the same in the same run, both checked against numpy."""
    window = 0.2 if quick else 1.0
    ring = fifo_ring_bytes()
    n = ring // 24
    with tempfile.TemporaryDirectory(prefix="svga-bench-") as tmp:
        binary = _compile(C_ENCODE, Path(tmp) / "encode_batch")
        dump = Path(tmp) / "pass0.bin"
        c_rates, py_rates = [], []
        for rep in range(1 if quick else 3):  # C and Python take turns
            progress(f"C baseline: encode into a {ring}-byte buffer {rep + 1}/{1 if quick else 3}")
            proc = subprocess.run([str(binary), f"{window:g}", str(ring), str(dump)], capture_output=True,
                                  text=True, timeout=60 + 10 * window, check=False)
            if proc.returncode != 0:
                raise BenchError(f"{binary.name} failed: {proc.stderr.strip()[:200]}")
            line = json.loads(proc.stdout)
            c_rates.append(line["commands"] / line["seconds"])
            rate, first = _python_encode(n, window)
            py_rates.append(rate)
        want = encode_reading(n).tobytes()
        if dump.read_bytes() != want:
            raise BenchError(f"{binary.name}: its buffer is not the RECT_FILLs it was to encode")
        if first != want:
            raise BenchError("commands.encode: its buffer is not the RECT_FILLs it was to encode")
    c_rate = statistics.median(c_rates)
    return [
        Row("driver", f"C (gcc -O2): {n} RECT_FILL encoded into a FIFO-sized buffer (the physical limit)",
            c_rate, "commands/s"),
        Row("driver", f"commands.encode: the same {n} RECT_FILL joined into one buffer",
            statistics.median(py_rates), "commands/s", c_rate, "C (gcc -O2) encoding the same, same run"),
    ]


# -- the collector ----------------------------------------------------------------------------

Builtin = Callable[[bool, Sequence[str], Progress], list[Row]]


@dataclass(frozen=True)
class Source:
    """Where rows come from: a built-in function or a bench module with ``rows(quick)``."""

    name: str
    group: str  # the group its rows are in, for --only
    builtin: Builtin | None = None


SOURCES: tuple[Source, ...] = (
    Source("qtest", "qtest", _qtest_source),
    Source("C baseline", "driver", c_encode_rows),
    Source("bench.model", "model"),
    Source("bench.driver", "driver"),
    Source("bench.screens", "screenshot"),
    Source("bench.startup", "start-up"),
    Source("bench.qa", "qa"),
    Source("bench.captures", "captures"),
    Source("bench.input", "input"),
    Source("bench.guest", "guest"),
)
GROUPS = tuple(dict.fromkeys(s.group for s in SOURCES))


@dataclass
class Collected:
    """Every row of one run, the notes on sources that gave none, and where it ran."""

    rows: list[Row]
    notes: list[str]
    machine: dict[str, str]
    quick: bool
    only: tuple[str, ...]
    seconds: dict[str, float] = field(default_factory=dict)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"[:240]


def module_rows(name: str, quick: bool) -> tuple[list[Row], str | None]:
    """``rows(quick)`` of a bench module: (rows, None), or ([], a note) when the module is not
    there, has no ``rows()``, fails, or returns something that is not a list of rows."""
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return [], f"{name}: not there yet (skipped)"
        return [], f"{name}: cannot be imported ({_one_line(exc)})"
    except Exception as exc:  # noqa: BLE001 - a module being written may be broken: note it
        return [], f"{name}: cannot be imported ({_one_line(exc)})"
    fn = getattr(mod, "rows", None)
    if not callable(fn):
        return [], f"{name}: has no rows() yet (skipped)"
    try:
        got = list(fn(quick=quick))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - one failing module never stops the table
        return [], f"{name}: failed ({_one_line(exc)})"
    bad = [r for r in got if not isinstance(r, Row)]
    if bad:
        return [], f"{name}: rows() returned {type(bad[0]).__name__}, not bench.table.Row"
    return got, None


def collect(quick: bool = False, only: Sequence[str] = (), targets: Sequence[str] = ("model", "qemu"),
            progress: Progress = _quiet, sources: Sequence[Source] = SOURCES) -> Collected:
    """Run every source (or those of the groups in ``only``) and gather their rows."""
    unknown = [g for g in only if g not in GROUPS]
    if unknown:
        raise SVGAError(f"unknown group {unknown[0]!r}: use {', '.join(GROUPS)}")
    col = Collected([], [], machine_info(), quick, tuple(only))
    chosen = [s for s in sources if not only or s.group in only]
    for i, src in enumerate(chosen, 1):
        progress(f"({i}/{len(chosen)}) {src.name}")
        t0 = time.perf_counter()
        if src.builtin is not None:
            try:
                rows, note = src.builtin(quick, targets, progress), None
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failing source is a note
                rows, note = [], f"{src.name}: failed ({_one_line(exc)})"
        else:
            rows, note = module_rows(src.name, quick)
        col.seconds[src.name] = time.perf_counter() - t0
        col.rows += rows
        if note:
            col.notes.append(note)
            progress(note)
        else:
            progress(f"{src.name}: {len(rows)} rows in {col.seconds[src.name]:.1f} s")
    return col


# -- writing the results ----------------------------------------------------------------------

def render_rows(rows: Sequence[Row]) -> str:
    """The Markdown table of the rows, grouped as they came."""
    head = ["| group | figure | value | unit | limit | the limit is | ratio | target | met |",
            "|---|---|---:|---|---:|---|---:|---:|---|"]
    body = []
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        target = "" if r.target is None else ("≥ " if r.higher_is_better else "≤ ") + fmt(r.target)
        body.append(f"| {r.group} | {r.figure} | {fmt(r.value)} | {r.unit} | "
                    f"{'' if r.limit is None else fmt(r.limit)} | {r.limit_label} | "
                    f"{'' if r.ratio is None else fmt_ratio(r.ratio)} | {target} | {met} |")
    return "\n".join(head + body)


def render_markdown(col: Collected, plot_name: str | None = "results.png") -> str:
    m = col.machine
    cmd = "python3 -m bench.run" + (" --quick" if col.quick else "") + \
        "".join(f" --only {g}" for g in col.only)
    missed = [r for r in col.rows if r.met is False]
    lines = [
        "# Benchmarks",
        "",
        f"`{cmd}`{'' if col.quick or col.only else ' (`make bench`)'}, {m['date']}. Machine: {m['cpu']}, "
        f"nproc {m['nproc']}, load average {m.get('load', '?')} at the start, Linux {m['kernel']}, "
        f"Python {m['python']}, numpy {m['numpy']}, QEMU {m.get('qemu', 'not used')}.",
        "",
        "Every figure beside its limit, measured in the same run (the ratio is figure / limit: for a "
        "rate below 1 is slower than the limit, for a time above 1 is slower). The target is the "
        "issue's; \"met\" says whether this run reached it. Rows come from bench/run.py (groups qtest "
        "and the C baseline of driver) and the bench modules' `rows()`.",
        "",
        f"{len(col.rows)} rows, {sum(r.met is True for r in col.rows)} targets met, {len(missed)} missed.",
        "",
    ]
    if col.notes:
        lines += ["Sources with no rows in this run:", ""] + [f"- {n}" for n in col.notes] + [""]
    lines += [render_rows(col.rows), ""]
    if plot_name:
        lines += [f"![commands per second against the limits]({plot_name})", ""]
    return "\n".join(lines)


def write_results(col: Collected, folder: Path) -> list[Path]:
    """results.json (a list of Row.as_json()), results.md and results.png in ``folder``."""
    from bench import plot

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "results.json", folder / "results.md", folder / "results.png"]
    paths[0].write_text(json.dumps([r.as_json() for r in col.rows], indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(render_markdown(col, paths[2].name))
    plot.write(col.rows, paths[2])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python3 -m bench.run",
        description="The one benchmark table: every figure beside its limit, in one run.",
        epilog="groups: " + ", ".join(GROUPS) + "\n\nexamples:\n"
               "  python3 -m bench.run                    every group; writes bench/results.json, .md, .png\n"
               "  python3 -m bench.run --quick --only qtest --targets model\n"
               "  python3 -m bench.run --only guest --out /tmp/guest   the lab guest's rows (root)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short plans (smoke run); writes nothing unless "
                    "--out is given")
    ap.add_argument("--only", action="append", default=[], metavar="GROUP",
                    help="run only the sources of GROUP (repeat, or comma-separate)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of Markdown")
    ap.add_argument("--targets", default="model,qemu",
                    help="the qtest group's devices, comma-separated: model, qemu (default both)")
    ap.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="folder for results.json, results.md, results.png (default: bench/ for a full "
                    "run of every group, else none)")
    args = ap.parse_args(argv)
    only = tuple(g.strip() for arg in args.only for g in arg.split(",") if g.strip())
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    out = args.out if args.out is not None else (None if args.quick or only else BENCH_DIR)
    for t in targets:
        if t not in TARGETS:
            print(f"bench: unknown benchmark target {t!r}: use {', '.join(TARGETS)}", file=sys.stderr)
            return 1
    try:
        col = collect(args.quick, only, targets, progress=_stderr)
    except SVGAError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if out is not None:
        for path in write_results(col, out):
            _stderr(f"wrote {path}")
    if args.json:
        print(json.dumps([r.as_json() for r in col.rows], indent=2, ensure_ascii=False))
    else:
        print(render_rows(col.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
