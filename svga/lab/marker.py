"""The guest side of the lab's markers (tools layer, lab): a job tells the host "look now"
and waits until the host has looked.

In a lab job, $SVGA_LAB_JOB is the job's folder, shared with the host. ``signal(name)``
creates ``marker.<name>`` there and waits for the host to create ``release.<name>``
(Job.release, after a screendump or input injection). Outside a lab guest ($SVGA_LAB_JOB
unset) it does nothing, so a tool can call it unconditionally.

    from svga.lab import marker
    draw_scene()
    marker.signal("drawn")        # the host takes its screendump here

From a shell in the guest::

    my-demo && python3 -m svga.lab.marker drawn
    # or, without python:
    touch "$SVGA_LAB_JOB/marker.drawn"
    while [ ! -e "$SVGA_LAB_JOB/release.drawn" ]; do sleep 0.05; done
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ENV = "SVGA_LAB_JOB"


def in_lab() -> bool:
    """True when running as a lab job."""
    return bool(os.environ.get(ENV))


def signal(name: str, wait: bool = True, timeout: float = 300.0) -> bool:
    """Signal marker ``name`` to the host; with ``wait``, block until it is released.
    Returns False outside the lab, or when the release did not come within timeout."""
    job = os.environ.get(ENV)
    if not job:
        return False
    folder = Path(job)
    tmp = folder / f".marker.{name}"
    tmp.write_text(f"{time.time()}\n")
    os.replace(tmp, folder / f"marker.{name}")
    if not wait:
        return True
    release = folder / f"release.{name}"
    deadline = time.monotonic() + timeout
    while not release.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m svga.lab.marker",
        description="In a lab guest job: tell the host a marker was reached (for example "
                    "'drawn', so it takes a screendump) and wait until it releases the job. "
                    "Outside the lab: does nothing.")
    parser.add_argument("name", help="marker name the host waits for, e.g. drawn")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the release")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="give up waiting for the release after S seconds (default 300)")
    args = parser.parse_args(argv)
    ok = signal(args.name, wait=not args.no_wait, timeout=args.timeout)
    return 0 if ok or not in_lab() else 1


if __name__ == "__main__":
    raise SystemExit(main())
