"""Input latency through a real lab guest: QMP -> the vmmouse bridge's uinput device, on both
wake-up paths, beside QEMU's delivery to the kernel's own vmmouse driver (group "input").

Place in the whole: a tool outside the installed package, one module of ``make bench``
(bench/table.py ``rows``). It boots one lab guest (svga.lab.pointer.PointerLab, with the VMware
platform visible so the kernel's psmouse vmmouse driver binds:
docs/lab.md 'The kernel vmmouse driver under TCG') and runs the ``latency`` job of
tests/wayland_lab_guest.py in it. For each event the host writes one QMP input-send-event (an
absolute move, alternating between two points so every one changes the position) and waits
for the guest reader's byte on the back channel: the reader writes it as soon as the event's
frame (SYN_REPORT) reaches it on evdev. So each figure is the whole trip QMP -> QEMU -> guest
device -> evdev reader -> back to the host, on the host's clock; the trip back is the same for
all three devices, and the anchor (the kernel's driver, woken by the vmmouse's PS/2 interrupt)
is measured in the same guest in the same run (docs/lab.md 'Timing input from the host').

    python3 -m bench.input            # the table rows as text (needs root and the lab packages)
    python3 -m bench.input --quick    # 200 events a path instead of 1,000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: find svga and bench beside this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.table import Row  # noqa: E402
from svga.lab.pointer import move_events, percentile, round_trip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUEST_SCRIPT = "tests/wayland_lab_guest.py"
#: The phases of the guest's latency job, in its order: the kernel's vmmouse driver (the
#: anchor), then the bridge polling, then the bridge woken by serio_raw interrupts.
PHASES = ("kernel", "poll", "serio")
WARMUP = 20
#: Events without an answer within 5 s after which a phase gives up.
MAX_LOST = 10
LABELS = {"kernel": "kernel vmmouse driver (psmouse), same guest",
          "poll": "bridge, --wakeup poll", "serio": "bridge, --wakeup serio"}


def measure_latency(lab: Any, count: int = 1000, phases: tuple[str, ...] = PHASES) -> dict[str, list[float]]:
    """Round trips in seconds, up to ``count`` per phase (after WARMUP unmeasured events; an
    event with no answer within 5 s is left out), through a started
    svga.lab.pointer.PointerLab whose guest has had the ``setup`` job."""
    job = lab.submit(["latency", "--phases", ",".join(phases), "--count", str(count + WARMUP)])
    figures: dict[str, list[float]] = {}
    lost: dict[str, int] = {}
    for phase in phases:
        if not _wait_either(job, f"lat-{phase}", f"lat-{phase}-missing", timeout=180):
            figures[phase] = []
            job.wait_marker(f"lat-{phase}-done", timeout=60)
            job.release(f"lat-{phase}-done")
            continue
        values: list[float] = []
        for i in range(count + WARMUP):
            x, y = (8000, 9000) if i % 2 else (24000, 20000)
            rtt = round_trip(lab.qmp, lab.back, move_events(x, y), timeout=5.0)
            if rtt is None:
                lost[phase] = lost.get(phase, 0) + 1
                if lost[phase] > MAX_LOST:
                    break
            elif i >= WARMUP:
                values.append(rtt)
        figures[phase] = values
        job.release(f"lat-{phase}-over")
        job.wait_marker(f"lat-{phase}-done", timeout=60)
        job.release(f"lat-{phase}-done")
    lab.result(job)
    return figures


def _wait_either(job: Any, found: str, missing: str, timeout: float) -> bool:
    """True when the guest signalled ``found``, False for ``missing`` (its device never came)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (job.dir / f"marker.{found}").exists():
            return True
        if (job.dir / f"marker.{missing}").exists() or job.done():
            return False
        time.sleep(0.05)
    raise TimeoutError(f"the guest's latency job signalled neither {found} nor {missing}")


def rows(quick: bool = False) -> list[Row]:
    """Median and 99th percentile of each path, the kernel driver as the limit."""
    from svga.lab.packages import not_ready
    from svga.lab.pointer import PointerLab

    why = not_ready(("udev", "seatd"))
    if why:
        raise RuntimeError(f"bench.input needs the lab: {why}")
    count = 200 if quick else 1000
    with PointerLab(GUEST_SCRIPT, ROOT) as lab:
        lab.run(["setup"])
        figures = measure_latency(lab, count)
    out: list[Row] = []
    anchor = {q: percentile(figures["kernel"], q) * 1000 for q in (50, 99)}
    for phase in PHASES:
        values = figures[phase]
        if len(values) != count:
            raise RuntimeError(f"bench.input: {phase}: {len(values)} of {count} events came back")
        for q, name in ((50, "median"), (99, "99th percentile")):
            value = percentile(values, q) * 1000
            out.append(Row("input", f"QMP -> evdev latency, {name}, {LABELS[phase]} ({count} events)",
                           value, "ms", None if phase == "kernel" else anchor[q],
                           "" if phase == "kernel" else f"kernel vmmouse driver, {name}",
                           higher_is_better=False))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.input", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 events a path instead of 1,000")
    args = parser.parse_args(argv)
    for row in rows(args.quick):
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        print(f"{row.figure}: {row.value:.2f} {row.unit} (limit {row.limit or '-'}; ratio {ratio})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
