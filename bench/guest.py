"""The guest benchmark: three programs side by side in one lab guest, through the same sysfs
files of QEMU's real SVGA II (issue "The driver on a real VM's device", items 2 and 3).

Place in the whole: a tool outside the installed package (``bench/``), one of the modules
:mod:`bench.run` collects (``rows(quick)``, group "guest"). It boots one guest of the lab
(svga/lab/vm.py: QEMU 7.2, TCG, one CPU, ``-display none``; docs/lab.md 'Guest without a disk
image: host root over 9p'; what was seen: docs/lab.md 'The guest benchmark') and runs, one
after the other, in rounds:

1. **C** (bench/c/guest2d.c), compiled on the host with its gcc at bench time: the physical
   limit of the loops through sysfs (the host's libc serves it in the guest);
2. **plain Python** (bench/guest_plain.py): the same loops in a few dozen lines, no checks;
3. **the driver** (bench/guest_driver.py): the same loops through the public API
   (``open_device("pci")``, ``Device.update``, ``Device.sync``, ``fifo.write_batch``,
   ``commands.encode``), with the package's compiled cores built on the host beforehand
   (:func:`build_native`; the guest job gets SVGA_NATIVE_DIR and SVGA_NATIVE=require).

The three programs. Each sets the mode (1024x768x32), fills the framebuffer with its own
background colour (:data:`BACKGROUND`) and UPDATEs it, drains the FIFO and signals the lab
marker "ready"; the host takes a screendump there, which is a display refresh, so that the
fills that follow use the new mode's stride (docs/qemu-7.2.md quirk 2). Then the loops, each
for the plan's window of seconds:

- for each size n: UPDATE 0,0 n x n, then SYNC until STOP reaches NEXT_CMD (the developer
  kit's 2dmark loop; QEMU has no fences and its BUSY reads 0: docs/qemu-7.2.md quirk 3);
- batches of 500 RECT_FILL 8x8 (fill i at x = (i % 128) * 8, y = 128 + (i // 128) * 8),
  pre-encoded (colour i * 0x010203), each batch then drained;
- where the driver has ``commands.encode_many`` and ``fifo.write_words`` (the driver's program
  only): the same batches encoded each time as one array;
- the same batches encoded each time (batch b, fill i: colour (b * 97 + i * 0x010203) &
  0xFFFFFF), each drained; this loop comes last, so its last batch is what the screen shows.

Each prints one JSON line per loop (commands and seconds). After each program of the first
round the host takes a screendump and checks it pixel for pixel against a numpy reading of
what the program drew (its background, then the last batch's fills), so a figure can never
come from work that silently failed. Rates are medians over the rounds.

    python3 -m bench.guest                 # the table on stdout (Markdown)
    python3 -m bench.guest --quick         # a short plan (the lab test's)
    python3 -m bench.guest --profile       # also cProfile the driver's loops in the guest
    python3 -m bench.guest --before DIR    # also the driver of another checkout (DIR/svga), same rounds
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: find svga and bench beside this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.table import Row  # noqa: E402
from svga.errors import SVGAError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
C_SOURCE = ROOT / "bench" / "c" / "guest2d.c"
PLAIN = ROOT / "bench" / "guest_plain.py"
DRIVER = ROOT / "bench" / "guest_driver.py"
DEVDIR = "/sys/bus/pci/devices/0000:00:02.0"
"""The SVGA II in a lab guest (docs/lab.md 'The devices the guest sees')."""
WIDTH, HEIGHT = 1024, 768
SIZES = (1, 8, 64, 256, 768)
"""Square UPDATE sizes: the kit's 2dmark sizes that fit a 1024x768 mode (QEMU's largest mode
is 2368x1770, docs/lab.md 'The devices the guest sees', so no 2048x2048 update exists there)."""
BATCH, CELL, FILL_TOP = 500, 8, 128
PROGRAMS = ("c", "plain", "driver")
NAMES = {"c": "C through sysfs", "plain": "plain Python (no checks)", "driver": "this driver's API",
         "before": "the driver from --before DIR"}
BACKGROUND = {"c": 0x404040, "plain": 0x204060, "driver": 0x602040, "before": 0x602040}
LOOPS = ("update", "fill-pre", "fill-encode")
ENCODED_TARGET = 1_000_000.0
"""Issue "The driver on a real VM's device", Deliver 1: encoded batches at least 1 M/s."""


class BenchError(SVGAError):
    """The guest benchmark could not run, or a program's result was wrong."""


@dataclass(frozen=True)
class Plan:
    name: str
    window: float  # seconds per loop
    rounds: int
    sizes: tuple[int, ...] = SIZES


PLANS = {
    "full": Plan("full", window=0.5, rounds=5),  # more, shorter rounds: a loaded host's spikes average out
    "quick": Plan("quick", window=0.15, rounds=1),
}


@dataclass
class GuestRun:
    """What one guest run measured: per program, per round, the JSON lines; the screendump
    after each program of the first round; how long the guest took to boot."""

    plan: Plan
    lines: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)
    screens: dict[str, np.ndarray] = field(default_factory=dict)
    boot_seconds: float | None = None
    profile: str = ""
    svga_root: str = str(ROOT)
    programs: tuple[str, ...] = PROGRAMS

    def rate(self, program: str, loop: str, n: int | None = None) -> float:
        """Median commands per second of a loop over the rounds."""
        values = [line["commands"] / line["seconds"] for rnd in self.lines[program] for line in rnd
                  if line["loop"] == loop and (n is None or line.get("n") == n)]
        if not values:
            raise BenchError(f"{NAMES[program]} reported no {loop} loop" + (f" of size {n}" if n else ""))
        return statistics.median(values)

    def has(self, program: str, loop: str) -> bool:
        return any(line["loop"] == loop for rnd in self.lines.get(program, []) for line in rnd)

    def last_batch(self, program: str) -> int:
        """The index of the last encode-each batch of the first round (its colours are on screen)."""
        line = next(x for x in self.lines[program][0] if x["loop"] == "fill-encode")
        return line["commands"] // BATCH - 1


Progress = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def compile_c(workdir: Path) -> Path:
    """bench/c/guest2d.c compiled with the host's gcc (-O2) into ``workdir``."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BenchError("gcc not found: the guest benchmark compiles its C program at bench time "
                         "(apt-get install gcc)")
    out = workdir / "guest2d"
    proc = subprocess.run([gcc, "-O2", "-Wall", "-o", str(out), str(C_SOURCE)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise BenchError(f"gcc failed on {C_SOURCE.name}: {first}")
    return out


def build_native(svga_root: Path) -> dict[str, str]:
    """Build the compiled cores of ``svga_root``'s package on the host (svga/native.py, with the
    host's compiler) and say where they are, so that the driver's program in the guest loads
    them instead of building them under TCG: the guest sees the host's files at the same paths
    (docs/lab.md 'Guest without a disk image: host root over 9p'), and its job gets
    SVGA_NATIVE_DIR (the cache folder) and SVGA_NATIVE=require (a core that does not load is an
    error, not a quiet fall-back to the Python code). {} when that package has no cores."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from svga import native\n"
         "paths = {native.build(s).parent for s in native.sources()}\n"
         "print(*paths, sep='\\n')"],
        capture_output=True, text=True, check=False, cwd=str(svga_root),
        env={**os.environ, "PYTHONPATH": str(svga_root), "SVGA_NATIVE": "require"})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchError(f"building the compiled cores of {svga_root}/svga failed: {last}")
    folders = proc.stdout.split()
    if not folders:
        return {}
    if len(folders) != 1:
        raise BenchError(f"the compiled cores went to several folders: {', '.join(folders)}")
    return {"SVGA_NATIVE_DIR": folders[0], "SVGA_NATIVE": "require"}


def expected_screen(program: str, last_batch: int) -> np.ndarray:
    """What a program leaves on screen, as (H, W, 3) RGB: its background, then the fills of
    its last encode-each batch."""
    words = np.full((HEIGHT, WIDTH), BACKGROUND[program], dtype=np.uint32)
    cols = WIDTH // CELL
    for i in range(BATCH):
        x, y = (i % cols) * CELL, FILL_TOP + i // cols * CELL
        words[y: y + CELL, x: x + CELL] = (last_batch * 97 + i * 0x010203) & 0xFFFFFF
    rgb = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    for k, shift in enumerate((16, 8, 0)):
        rgb[..., k] = (words >> shift) & 0xFF
    return rgb


def _command(program: str, binary: Path, plan: Plan) -> list[str]:
    args = [DEVDIR, str(WIDTH), str(HEIGHT), f"{plan.window:g}", ",".join(map(str, plan.sizes)),
            f"0x{BACKGROUND[program]:06x}"]
    if program == "c":
        return [str(binary), *args]
    return [sys.executable, str(PLAIN if program == "plain" else DRIVER), *args]


def _parse(program: str, output: str) -> list[dict[str, Any]]:
    lines = []
    for text in output.splitlines():
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                raise BenchError(f"{NAMES[program]} printed a bad result line: {text[:80]}") from None
    return lines


def run(plan: Plan = PLANS["full"], progress: Progress = _quiet, svga_root: str | Path = ROOT,
        profile: bool = False, before: str | Path | None = None) -> GuestRun:
    """Boot one guest and run the three programs ``plan.rounds`` times, checking each
    program's screen once. ``svga_root``: the folder whose ``svga/`` the driver's program
    imports. ``before``: another folder holding an ``svga/`` (an older checkout): its driver
    runs as a fourth program in the same rounds, so before and after are measured side by
    side. ``profile``: afterwards, run the driver's loops once more under cProfile
    (GuestRun.profile; with ``before``, that one's too)."""
    from svga.lab.errors import LabError
    from svga.lab.packages import not_ready
    from svga.lab.vm import Guest

    why = not_ready()
    if why:
        raise BenchError(f"the guest benchmark needs the lab: {why}")
    programs = PROGRAMS + (("before",) if before is not None else ())
    res = GuestRun(plan, {p: [] for p in programs}, svga_root=str(svga_root), programs=programs)
    timeout = 120.0 + 4 * plan.window * (len(plan.sizes) + 2)
    envs = {p: {"PYTHONPATH": str(before if p == "before" else svga_root)} for p in programs}
    native_env = build_native(Path(svga_root))
    envs["driver"].update(native_env)
    # The guest sees the host's /tmp as it is
    # (docs/lab.md 'Guest without a disk image: host root over 9p').
    with tempfile.TemporaryDirectory(prefix="svga-guestbench-", dir="/tmp") as tmp:
        binary = compile_c(Path(tmp))
        try:
            with Guest(display="none", progress=progress) as guest:
                guest.start()
                res.boot_seconds = guest.boot_seconds
                for rnd in range(plan.rounds):
                    for program in programs:
                        progress(f"guest round {rnd + 1}/{plan.rounds}: {NAMES[program]}")
                        cmd = _command(program, binary, plan)
                        job = guest.submit(cmd, cwd=tmp, env=envs[program])
                        if not job.wait_marker_or_end("ready", timeout):
                            raise BenchError(f"{NAMES[program]} ended with status {job.status} before "
                                             f"drawing: {job.stdout.strip()[-300:]}")
                        guest.screendump()  # a refresh: later fills use the mode's stride
                        job.release("ready")
                        status, out = job.wait(timeout)
                        if status != 0:
                            raise BenchError(f"{NAMES[program]} failed with status {status}: "
                                             f"{out.strip()[-300:]}")
                        res.lines[program].append(_parse(program, out))
                        if rnd == 0:
                            _check_screen(res, program, guest.screendump())
                for program in (p for p in programs if profile and p in ("driver", "before")):
                    progress(f"guest: {NAMES[program]}, its loops under cProfile")
                    job = guest.submit([*_command(program, binary, plan), "--profile"], cwd=tmp,
                                       env=envs[program])
                    job.wait_marker("ready", timeout)
                    guest.screendump()
                    job.release("ready")
                    status, out = job.wait(timeout * 2)
                    if status != 0:
                        raise BenchError(f"the profile run failed with status {status}: {out.strip()[-300:]}")
                    res.profile += f"#### {NAMES[program]} ({envs[program]['PYTHONPATH']})\n{out}\n"
        except LabError as exc:
            raise BenchError(f"the lab guest failed: {exc}") from None
    return res


def _check_screen(res: GuestRun, program: str, image: np.ndarray) -> None:
    res.screens[program] = image
    want = expected_screen(program, res.last_batch(program))
    if image.shape != want.shape:
        raise BenchError(f"{NAMES[program]}: the screen is {image.shape[1]}x{image.shape[0]}, "
                         f"not {WIDTH}x{HEIGHT}")
    bad = np.argwhere((image != want).any(axis=2))
    if len(bad):
        y, x = bad[0]
        raise BenchError(f"{NAMES[program]}: {len(bad)} pixels differ from what it drew, the first at "
                         f"({x}, {y}): {image[y, x].tolist()} instead of {want[y, x].tolist()}")


def rows_from(res: GuestRun) -> list[Row]:
    """The table's rows: for each loop, the driver's rate and the plain-Python rate, each
    against C's in the same guest. Targets (issue "The driver on a real VM's device",
    Deliver 1): synchronous UPDATEs at least plain Python's rate, encoded batches 1 M/s. The
    1 M/s is asked of the driver's batch encoder (encode_many + write_words), the API for
    encoding a batch each time; the row of one ``commands.encode`` call a command stays as a
    figure without a target: one Python call a command cannot reach 1 M/s under TCG, where the
    plain loop's bare ``struct.pack`` a command does about 0.3 M/s (docs/lab.md 'The guest
    benchmark')."""
    c_label = "C through the same sysfs files, same guest"
    out: list[Row] = []

    def pair(what: str, loop: str, n: int | None, target: float | None) -> None:
        c = res.rate("c", loop, n)
        plain = res.rate("plain", loop, n)
        out.append(Row("guest", f"guest: {what}, this driver's API", res.rate("driver", loop, n),
                       "commands/s", c, c_label, target))
        out.append(Row("guest", f"guest: {what}, plain Python (no checks)", plain, "commands/s", c, c_label))

    for n in res.plan.sizes:
        pair(f"UPDATE {n}x{n} then SYNC until drained", "update", n, res.rate("plain", "update", n))
    pair(f"{BATCH} RECT_FILL 8x8 pre-encoded per batch, then drain", "fill-pre", None, None)
    pair(f"{BATCH} RECT_FILL 8x8 encoded each batch, then drain", "fill-encode", None, None)
    if res.has("driver", "fill-many"):
        out.append(Row("guest", f"guest: {BATCH} RECT_FILL 8x8 encoded each batch as one array, then drain, "
                       "this driver's API (encode_many + write_words)", res.rate("driver", "fill-many"),
                       "commands/s", res.rate("c", "fill-encode"), c_label + " (encoding each batch)",
                       ENCODED_TARGET))
    return out


def rows(quick: bool = False) -> list[Row]:
    """The guest rows of the one benchmark table (boots one lab guest)."""
    return rows_from(run(PLANS["quick" if quick else "full"]))


def render(res: GuestRun) -> str:
    """A Markdown table: one line per loop, the three programs side by side."""
    def k(v: float) -> str:
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.1f} k/s"
    progs = res.programs
    head = ["| loop (commands per second) | " + " | ".join(NAMES[p] for p in progs)
            + " | driver / plain | driver / C |", "|---" + "|---:" * (len(progs) + 2) + "|"]
    body = []
    keys = [(f"UPDATE {n}x{n} + SYNC until drained", "update", n) for n in res.plan.sizes]
    keys += [(f"{BATCH} RECT_FILL pre-encoded + drain", "fill-pre", None),
             (f"{BATCH} RECT_FILL encoded each batch + drain", "fill-encode", None)]
    if any(res.has(p, "fill-many") for p in progs):
        keys.append((f"{BATCH} RECT_FILL as one array each batch (driver: encode_many + write_words; "
                     "C, plain Python: their encode-each loop) + drain", "fill-many", None))
    def figure(p: str, loop: str, n: int | None) -> float | None:
        if loop == "fill-many" and p in ("c", "plain"):
            loop = "fill-encode"  # what C and plain Python do to encode each batch
        return res.rate(p, loop, n) if res.has(p, loop) else None

    for label, loop, n in keys:
        r = {p: figure(p, loop, n) for p in progs}
        cells = [k(v) if v is not None else "—" for v in r.values()]
        d = r.get("driver")
        ratios = (f" | {d / r['plain']:.2f} | {d / r['c']:.3f} |" if d is not None else " | — | — |")
        body.append(f"| {label} | " + " | ".join(cells) + ratios)
    return "\n".join(head + body)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python3 -m bench.guest",
        description="Run C, plain Python and this driver side by side in one QEMU lab guest "
                    "(UPDATE then SYNC, batched RECT_FILLs) and print the table.",
        epilog="Needs root and the lab's packages (svga lab setup). Example: "
               "python3 -m bench.guest --quick --profile")
    ap.add_argument("--quick", action="store_true", help="short windows, one round (about 30 s)")
    ap.add_argument("--profile", action="store_true", help="also profile the driver's loops in the guest")
    ap.add_argument("--svga-root", type=Path, default=ROOT, metavar="DIR",
                    help="folder holding the svga/ package the driver's program imports (default: this "
                         "checkout)")
    ap.add_argument("--before", type=Path, default=None, metavar="DIR",
                    help="also run the driver from DIR/svga (an older checkout) in the same rounds")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    args = ap.parse_args(argv)
    for folder in filter(None, (args.svga_root, args.before)):
        if not (folder / "svga" / "__init__.py").is_file():
            print(f"bench.guest: error: {folder} holds no svga/ package", file=sys.stderr)
            return 2
    t0 = time.monotonic()
    try:
        res = run(PLANS["quick" if args.quick else "full"],
                  progress=lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True),
                  svga_root=args.svga_root.resolve(), profile=args.profile,
                  before=args.before.resolve() if args.before else None)
    except SVGAError as exc:
        print(f"bench.guest: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([r.as_json() for r in rows_from(res)], indent=2))
    else:
        print(render(res))
        print(f"\n(guest booted in {res.boot_seconds:.1f} s; whole run {time.monotonic() - t0:.0f} s; "
              f"plan {res.plan.name}: {res.plan.window:g} s a loop, {res.plan.rounds} round(s))")
    if res.profile:
        print("\n" + res.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
