"""Benchmark: start-up of ``svga info --device model``, beside Python importing numpy alone.

Place in the whole: a tool outside the installed package; :mod:`bench.run` collects
:func:`rows` into the one table (group "start-up"). The figure is the wall time of a whole
``python -m svga info --device model`` process (interpreter start, imports, a model device
opened and negotiated, the report printed); the limit is the wall time of ``python -c
"import numpy"`` in the same run (the one import the command cannot do without), the two
taking turns; target 150 ms (issue "Fast paths", Deliver 3). A second row is the rest: the
command's wall less numpy's, paired run by run (what the interpreter spends beyond numpy: the
suite's own modules, the standard library they need, argparse, the model opened), beside
numpy's import. ``python -X importtime -m svga info --device model`` shows where it goes;
tests/test_startup_imports.py checks that the lab, the lint, Pillow, the captures, QA, QMP,
json and shutil are not among it.

    python -m bench.startup [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.table import Row  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 150.0
COMMAND = [sys.executable, "-m", "svga", "info", "--device", "model"]
NUMPY = [sys.executable, "-c", "import numpy"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""As an installed program runs: with its bytecode cached (pip writes it at install; a shell
with PYTHONDONTWRITEBYTECODE set would make every run compile every module from source, about
140 ms here). The warm-up run writes the cache."""


def _wall_ms(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=ENV)
    took = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[1:])} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return took


def measure(quick: bool = False) -> dict[str, float]:
    runs = 5 if quick else 21
    _wall_ms(COMMAND)  # warm the page cache: the first run reads every file from disk
    _wall_ms(NUMPY)
    svga, numpy = [], []
    for _ in range(runs):
        svga.append(_wall_ms(COMMAND))
        numpy.append(_wall_ms(NUMPY))
    rest = statistics.median(s - n for s, n in zip(svga, numpy, strict=True))
    return {"svga": statistics.median(svga), "numpy": statistics.median(numpy), "rest": rest, "runs": runs}


def rows(quick: bool = False) -> list[Row]:
    m = measure(quick)
    return [Row("start-up", f"svga info --device model, whole process wall (median of {m['runs']})",
                m["svga"], "ms", m["numpy"], 'python -c "import numpy", same run', TARGET_MS, False),
            Row("start-up", "svga info --device model beyond numpy: its wall less numpy's, run by run",
                m["rest"], "ms", m["numpy"], 'python -c "import numpy" itself, same run')]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 runs of each instead of 21")
    args = ap.parse_args(argv)
    for r in rows(args.quick):
        target = f", target {r.target:g} {r.unit}: {'met' if r.met else 'missed'}" if r.target else ""
        print(f"{r.figure}: {r.value:.1f} {r.unit}, {r.ratio:.2f}x {r.limit_label} ({r.limit:.1f} {r.unit})"
              f"{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
