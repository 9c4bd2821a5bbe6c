"""The driver's program of the guest benchmark (bench/guest.py): the loops of bench/c/guest2d.c
through this driver's public API only (``open_device("pci")``, ``Device.update``,
``Device.sync``, ``Device.fifo.write_batch``, ``commands.encode``; and, where the driver has
them, ``commands.encode_many`` with ``Device.fifo.write_words``), which reaches the same sysfs
files (svga/transport/pci.py). In a lab guest, from the checkout:

    python3 -m bench.guest_driver DEVDIR WIDTH HEIGHT WINDOW_S SIZES BACKGROUND
    python3 -m bench.guest_driver --profile DEVDIR WIDTH HEIGHT WINDOW_S SIZES BACKGROUND

``--profile`` runs the first UPDATE size and the encode-each batch loop under cProfile and
prints the top entries of each (by own time) instead of the JSON lines.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable

from svga import commands
from svga.device import Device, open_device
from svga.lab import marker

BATCH = 500
CELL = 8
CHUNK = 64


def cells(width: int) -> list[tuple[int, int]]:
    """Where the 500 fills of a batch go: 8x8 cells in rows from y = 128."""
    cols = width // CELL
    return [((i % cols) * CELL, 128 + i // cols * CELL) for i in range(BATCH)]


def timed(window: float, step: Callable[[], int]) -> tuple[int, float]:
    count, t0 = 0, time.perf_counter()
    while (t := time.perf_counter() - t0) < window:
        count += step()
    return count, t


def update_loop(dev: Device, n: int, window: float) -> dict[str, object]:
    """UPDATE 0,0 n x n then sync, for ``window`` seconds (the kit's 2dmark loop)."""
    def updates() -> int:
        for _ in range(CHUNK):
            dev.update(0, 0, n, n)
            dev.sync()
        return CHUNK
    count, t = timed(window, updates)
    return {"loop": "update", "n": n, "commands": count, "seconds": t}


def fill_pre_loop(dev: Device, width: int, window: float) -> dict[str, object]:
    """Batches of 500 pre-encoded RECT_FILLs through write_batch, each drained."""
    pre = [commands.encode("RECT_FILL", color=i * 0x010203 & 0xFFFFFF, x=x, y=y, width=CELL, height=CELL)
           for i, (x, y) in enumerate(cells(width))]

    def batch_pre() -> int:
        dev.fifo.write_batch(pre)
        dev.sync()
        return BATCH
    count, t = timed(window, batch_pre)
    return {"loop": "fill-pre", "commands": count, "seconds": t}


def fill_encode_loop(dev: Device, width: int, window: float) -> dict[str, object]:
    """Batches of 500 RECT_FILLs encoded each time (commands.encode), write_batch, drained.
    Batch b, fill i has colour (b * 97 + i * 0x010203) & 0xFFFFFF."""
    where = cells(width)
    batch = [0]

    def batch_encode() -> int:
        b = batch[0]
        dev.fifo.write_batch([commands.encode("RECT_FILL", color=(b * 97 + i * 0x010203) & 0xFFFFFF,
                                              x=x, y=y, width=CELL, height=CELL)
                              for i, (x, y) in enumerate(where)])
        dev.sync()
        batch[0] += 1
        return BATCH
    count, t = timed(window, batch_encode)
    return {"loop": "fill-encode", "commands": count, "seconds": t}


def fill_many_loop(dev: Device, width: int, window: float) -> dict[str, object] | None:
    """The same batches encoded each time as one array (``commands.encode_many``, then
    ``fifo.write_words``), where the driver has that API (None where it has not)."""
    encode_many = getattr(commands, "encode_many", None)
    write_words = getattr(dev.fifo, "write_words", None)
    if encode_many is None or write_words is None:
        return None
    import numpy as np

    where = np.array(cells(width), dtype=np.int64)
    xs, ys = np.ascontiguousarray(where[:, 0]), np.ascontiguousarray(where[:, 1])
    steps = np.arange(BATCH, dtype=np.int64) * 0x010203  # the colours' part that is the same each batch
    batch = [0]
    # The first call loads the compiled core, if any (once a process, svga/native.py): not timed.
    encode_many("RECT_FILL", color=steps & 0xFFFFFF, x=xs, y=ys, width=CELL, height=CELL)

    def batch_many() -> int:
        colors = steps + batch[0] * 97
        colors &= 0xFFFFFF
        write_words(encode_many("RECT_FILL", color=colors, x=xs, y=ys, width=CELL, height=CELL))
        dev.sync()
        batch[0] += 1
        return BATCH
    count, t = timed(window, batch_many)
    return {"loop": "fill-many", "commands": count, "seconds": t}


def loops(dev: Device, width: int, window: float, sizes: list[int]) -> list[dict[str, object]]:
    """Every loop, in the order of bench/guest.py; the encode-each loop last, so that its last
    batch is what the screen shows at the end."""
    out = [update_loop(dev, n, window) for n in sizes]
    out.append(fill_pre_loop(dev, width, window))
    many = fill_many_loop(dev, width, window)
    if many is not None:
        out.append(many)
    out.append(fill_encode_loop(dev, width, window))
    return out


def profile(dev: Device, width: int, window: float, sizes: list[int], top: int = 14) -> str:
    """cProfile of the first UPDATE size and of the encode-each batch loop, top entries."""
    text = []
    cases: list[tuple[str, Callable[[], dict[str, object] | None]]] = [
        (f"UPDATE {sizes[0]}x{sizes[0]} + sync", lambda: update_loop(dev, sizes[0], window)),
        ("500 RECT_FILL encoded each batch + write_batch + sync",
         lambda: fill_encode_loop(dev, width, window)),
    ]
    if hasattr(commands, "encode_many"):
        cases.append(("500 RECT_FILL encode_many each batch + write_words + sync",
                      lambda: fill_many_loop(dev, width, window)))
    for label, fn in cases:
        prof = cProfile.Profile()
        result = prof.runcall(fn)
        assert result is not None
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
        text.append(f"== {label}: {result['commands']} commands in {result['seconds']:.2f} s "
                    "(under cProfile)\n" + buf.getvalue().strip("\n"))
    return "\n\n".join(text)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    prof = "--profile" in args
    if prof:
        args.remove("--profile")
    if len(args) != 6:
        print("usage: python3 -m bench.guest_driver [--profile] DEVDIR WIDTH HEIGHT WINDOW_S SIZES "
              "BACKGROUND", file=sys.stderr)
        return 2
    w, h, window = int(args[1]), int(args[2]), float(args[3])
    sizes, bg = [int(s) for s in args[4].split(",")], int(args[5], 0)
    with open_device("pci") as dev:  # the device at DEVDIR: the guest has one
        dev.set_mode(w, h)
        dev.framebuffer[:] = bg
        dev.update()
        dev.sync()
        marker.signal("ready")
        if prof:
            print(profile(dev, w, window, sizes))
        else:
            for line in loops(dev, w, window, sizes):
                print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
