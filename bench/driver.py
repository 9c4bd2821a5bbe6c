"""Benchmarks of the driver's send path (issue "Fast paths", item 2), each beside its limit in
the same run.

Place in the whole: a tool outside the installed package, like bench/run.py, which collects
:func:`rows` (group "driver") into the one table. Everything runs on the software model through
the driver's public API (``open_device``, ``Device.fill``, ``Device.fifo``, ``svga.commands``);
each limit is the least Python that does the same job on the same memory:

- ``commands.encode`` + ``fifo.write_batch`` of 2,000 RECT_FILL (profile qemu, 64 KiB FIFO),
  beside a precomputed ``struct.Struct`` per command, one ``b"".join`` and one copy into the
  ring; target 3,000,000 commands/s. The same commands through ``commands.encode_many`` +
  ``fifo.write_words`` beside the same limit (no target: the buffer path's figure is the next);
- ``fifo.write_words`` of 240 KB of encoded commands (profile vmware, 256 KiB FIFO), in MB/s,
  beside numpy's copy of the same bytes to the same FIFO memory; target half of that copy;
- ``fifo.send("UPDATE", ...)`` and ``dev.fill`` of 8x8 (profile vmware: FIFO_CAP_RESERVE, the
  CPU fill and an UPDATE), calls/s, beside ``struct.pack_into`` of the same words in place (with
  the same numpy fill for ``dev.fill``, ``ndarray.fill`` of the rectangle's view) and one
  NEXT_CMD store; target 500,000 calls/s; and
  ``fifo.send`` on the qemu profile, which has no FIFO_CAP_RESERVE, so the kit commits a word at
  a time (no target).

Only the driver's work is timed: each timed batch fits the ring, and the ring is emptied
between repetitions by re-initialising the FIFO (``fifo.init()``, the model drops what it has
not run). Before timing, each path's result is checked once: the FIFO holds exactly the words
the limit writes, and after a sync the model's pixels are a numpy reading of the fills. Each
figure is the median of repetitions in which the driver and the limit take turns, each timed
in CPU time of the process (the same as wall time on an idle machine).

    python -m bench.driver            # the rows as a Markdown table
    python -m bench.driver --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.table import Row, markdown  # noqa: E402
from svga import commands  # noqa: E402
from svga.device import Device, open_device  # noqa: E402
from svga.errors import SVGAError  # noqa: E402
from svga.registers import FifoReg  # noqa: E402

GROUP = "driver"
BATCH = 2_000
"""RECT_FILLs per encode batch: 48,000 bytes, inside the qemu profile's 64 KiB ring."""
WORDS_ROWS = 12_000
"""UPDATE rows for the bandwidth figure: 240,000 bytes, inside the vmware profile's 256 KiB ring."""
CALLS = 5_000
"""fifo.send / dev.fill calls per repetition on vmware: 100,000 bytes of UPDATEs (256 KiB FIFO)."""
CALLS_QEMU = 2_500
"""The same on qemu: 50,000 bytes (64 KiB FIFO)."""
CELL = 8
MODE = (640, 480)
ENCODE_TARGET = 3_000_000.0
CALL_TARGET = 500_000.0
BANDWIDTH_SHARE = 0.5


class BenchError(SVGAError):
    """A path's result was wrong, so its figure would mean nothing."""


def _cells(n: int) -> list[tuple[int, int, int]]:
    """(colour, x, y) of ``n`` 8x8 fills in rows across the mode."""
    cols, rows = MODE[0] // CELL, MODE[1] // CELL
    return [((i * 0x010203) & 0xFFFFFF, (i % cols) * CELL, (i // cols) % rows * CELL) for i in range(n)]


def _timed(fn: Callable[[], object], reset: Callable[[], object]) -> float:
    # CPU time of this process: the work is single-threaded and CPU-bound, so on an idle
    # machine it equals wall time, and on a loaded one it leaves out the time spent waiting
    # for a core (which otherwise swamps batches of a few milliseconds).
    t0 = time.process_time()
    fn()
    t = time.process_time() - t0
    reset()
    return t


def _turns(reps: int, ours: Callable[[], object], limit: Callable[[], object],
           reset: Callable[[], object]) -> tuple[float, float]:
    """Median seconds of ``ours`` and of ``limit``, taking turns."""
    a, b = [], []
    for _ in range(reps):
        a.append(_timed(ours, reset))
        b.append(_timed(limit, reset))
    return statistics.median(a), statistics.median(b)


def _open(profile: str) -> Device:
    dev = open_device("model", profile=profile)
    dev.set_mode(*MODE)
    dev.transport.display_image()  # qemu: the surface takes the mode (docs/qemu-7.2.md, stale-stride quirk)
    return dev


def _ring(dev: Device) -> np.ndarray:
    arr = dev.transport.fifo.array()
    if arr is None:
        raise BenchError("the model's FIFO is not mapped")
    return arr


def _check_fills(dev: Device, cells: list[tuple[int, int, int]], what: str) -> None:
    dev.sync()
    want = np.zeros((MODE[1], MODE[0]), np.uint32)
    for c, x, y in cells:
        want[y: y + CELL, x: x + CELL] = c
    got = dev.read_vram()
    if not np.array_equal(got[: want.shape[0], : want.shape[1]], want):
        raise BenchError(f"{what}: the model's pixels are not the fills sent")


def _check_ring(dev: Device, data: bytes, what: str) -> None:
    mem, fifo = dev.transport.fifo, dev.fifo
    if mem.read(fifo.min, len(data)) != data or mem.read32(FifoReg.NEXT_CMD * 4) != fifo.min + len(data):
        raise BenchError(f"{what}: the FIFO does not hold the words the limit writes")


def encode_rows(reps: int) -> list[Row]:
    dev = _open("qemu")
    try:
        fifo, ring = dev.fifo, _ring(dev)
        cells = _cells(BATCH)
        colors = np.array([c[0] for c in cells])
        xs = np.array([c[1] for c in cells])
        ys = np.array([c[2] for c in cells])
        S = struct.Struct("<6I")
        start = fifo.min
        encode, write_batch, write_words = commands.encode, fifo.write_batch, fifo.write_words

        def ours() -> None:
            write_batch([encode("RECT_FILL", color=c, x=x, y=y, width=CELL, height=CELL)
                         for c, x, y in cells])

        def many() -> None:
            write_words(commands.encode_many("RECT_FILL", color=colors, x=xs, y=ys, width=CELL, height=CELL))

        def limit() -> None:
            pack = S.pack
            blob = b"".join([pack(2, c, x, y, CELL, CELL) for c, x, y in cells])
            ring[start: start + len(blob)] = np.frombuffer(blob, np.uint8)

        want = b"".join(S.pack(2, c, x, y, CELL, CELL) for c, x, y in cells)
        for fn, what in ((ours, "encode + write_batch"), (many, "encode_many + write_words")):
            fn()
            _check_ring(dev, want, what)
            _check_fills(dev, cells, what)
            fifo.init()
        t_ours, t_limit = _turns(reps, ours, limit, fifo.init)
        t_many, t_limit2 = _turns(reps, many, limit, fifo.init)
    finally:
        dev.close()
    label = "precomputed struct.Struct + one join + one copy into the ring"
    return [
        Row(GROUP, f"commands.encode + fifo.write_batch, {BATCH} RECT_FILL (model, qemu profile)",
            BATCH / t_ours, "commands/s", BATCH / t_limit, label, ENCODE_TARGET),
        Row(GROUP, f"commands.encode_many + fifo.write_words, {BATCH} RECT_FILL (model, qemu profile)",
            BATCH / t_many, "commands/s", BATCH / t_limit2, label),
    ]


def bandwidth_rows(reps: int) -> list[Row]:
    dev = _open("vmware")
    try:
        fifo, ring = dev.fifo, _ring(dev)
        n = WORDS_ROWS
        i = np.arange(n)
        words = commands.encode_many("UPDATE", x=i % MODE[0], y=i % MODE[1], width=1, height=1)
        src = words.reshape(-1).view(np.uint8)
        nbytes = src.nbytes
        if nbytes >= fifo.ring_bytes:
            raise BenchError(f"{nbytes} bytes do not fit the {fifo.ring_bytes}-byte ring")
        start = fifo.min

        def ours() -> None:
            fifo.write_words(words)

        def limit() -> None:
            ring[start: start + nbytes] = src

        ours()
        _check_ring(dev, src.tobytes(), "write_words")
        fifo.init()
        t_ours, t_limit = _turns(reps, ours, limit, fifo.init)
    finally:
        dev.close()
    mb = nbytes / 1e6
    copy = mb / t_limit
    return [Row(GROUP, f"fifo.write_words of {nbytes // 1000} KB of encoded commands (model, vmware profile)",
                mb / t_ours, "MB/s", copy, "numpy copy of the same bytes into the same FIFO memory",
                BANDWIDTH_SHARE * copy)]


def _call_times(profile: str, n: int, reps: int, with_fill: bool) -> dict[str, float]:
    """Median seconds of ``n`` fifo.send (and dev.fill) calls and of their limits."""
    cells = _cells(n)
    upd = struct.Struct("<5I")
    dev = _open(profile)
    try:
        fifo, ring = dev.fifo, _ring(dev)
        b = memoryview(ring)
        w = b[: len(ring) // 4 * 4].cast("I")
        start = fifo.min
        fb = dev.framebuffer
        send, fill = fifo.send, dev.fill

        def ours_send() -> None:
            for _, x, y in cells:
                send("UPDATE", x=x, y=y, width=CELL, height=CELL)

        def ours_fill() -> None:
            for c, x, y in cells:
                fill(c, x, y, CELL, CELL)

        def limit_send() -> None:
            nxt, pack_into = start, upd.pack_into
            for _, x, y in cells:
                pack_into(b, nxt, 1, x, y, CELL, CELL)
                nxt += 20
                w[2] = nxt

        def limit_fill() -> None:
            nxt, pack_into = start, upd.pack_into
            for c, x, y in cells:
                fb[y: y + CELL, x: x + CELL].fill(c)  # the fastest numpy fill of a small view
                pack_into(b, nxt, 1, x, y, CELL, CELL)
                nxt += 20
                w[2] = nxt

        want = b"".join(upd.pack(1, x, y, CELL, CELL) for _, x, y in cells)
        ours_send()
        _check_ring(dev, want, "fifo.send")
        fifo.init()
        out = {}
        out["send"], out["send_limit"] = _turns(reps, ours_send, limit_send, fifo.init)
        if with_fill:
            ours_fill()
            _check_ring(dev, want, "dev.fill")
            _check_fills(dev, cells[-(MODE[0] // CELL) * (MODE[1] // CELL):], "dev.fill")
            out["fill_core"] = float(dev._fill_core is not None)  # the compiled core took the fills
            fifo.init()
            out["fill"], out["fill_limit"] = _turns(reps, ours_fill, limit_fill, fifo.init)
    finally:
        dev.close()
    return out


def call_rows(reps: int) -> list[Row]:
    label = "struct.pack_into of the same words in place + one NEXT_CMD store"
    v = _call_times("vmware", CALLS, reps, with_fill=True)
    q = _call_times("qemu", CALLS_QEMU, reps, with_fill=False)
    return [
        Row(GROUP, "fifo.send UPDATE (model, vmware profile: FIFO_CAP_RESERVE, in place)",
            CALLS / v["send"], "calls/s", CALLS / v["send_limit"], label, CALL_TARGET),
        Row(GROUP, f"dev.fill {CELL}x{CELL} (model, vmware profile: CPU fill + UPDATE, "
            + ("compiled core svga/device.c)" if v["fill_core"] else "Python code: no compiled core)"),
            CALLS / v["fill"], "calls/s", CALLS / v["fill_limit"], "the same numpy fill + " + label,
            CALL_TARGET),
        Row(GROUP, "fifo.send UPDATE (model, qemu profile: no FIFO_CAP_RESERVE, a word at a time)",
            CALLS_QEMU / q["send"], "calls/s", CALLS_QEMU / q["send_limit"], label),
    ]


def rows(quick: bool = False) -> list[Row]:
    """The driver rows of the one benchmark table (bench/table.py)."""
    reps = 3 if quick else 11
    return encode_rows(reps) + bandwidth_rows(reps) + call_rows(reps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.driver", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Prints one Markdown table: figure, value, limit, ratio, target, met.")
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 11")
    args = parser.parse_args(argv)
    try:
        table = rows(quick=args.quick)
    except SVGAError as e:
        print(f"bench.driver: error: {e}", file=sys.stderr)
        return 1
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
