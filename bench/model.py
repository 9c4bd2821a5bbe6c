"""Benchmarks of the software model's command engine (issue "Fast paths", item 1), each beside
its limit in the same run.

Place in the whole: a tool outside the installed package, like bench/run.py, which collects
:func:`rows` (group "model") into the one table. The model runs as a program gets it: through
the driver's public API (``Device``, ``dev.fifo``, ``dev.sync()``) on ``ModelTransport``
(profile qemu, which offers RECT_FILL and RECT_COPY), with the display refreshed once after the
mode is set so fills and copies land in the mode (docs/qemu-7.2.md 'Stale-stride quirk'). The
command words are encoded here once, with ``struct``, and handed to ``fifo.write_words`` (or
``fifo.write_batch`` where the driver has no buffer entry point) 32 KiB at a time, each piece
followed by ``dev.sync()``; the timed region is those writes and syncs, i.e. mostly the model
decoding, checking and executing every command (the qemu profile's 1023-command cap splits each
piece over several FIFO runs, as on QEMU).

- commands/s for streams of UPDATE 1x1, RECT_FILL 8x8, RECT_COPY 8x8 and the three mixed, in a
  1024x768 mode, beside a lean Python loop written here over the same words (they are turned
  into Python ints, decoded, their rectangles checked, the pixels written with numpy into a
  (768, 1024) uint32 array and the damage rectangle kept): what Python and numpy can do at
  least, so the limit; target 1,000,000 commands/s for the mixed stream on the default path;
- one RECT_FILL of 1920x1080 (ms, send + sync) beside numpy's fill of a (1080, 1920) uint32
  array; one RECT_COPY of 1920x540 (the top half onto the bottom half) beside numpy's copy of
  the same rows of the same array; target 1.5 times numpy's time, measured in this run.

Each figure is measured twice side by side: on the default path, which is the fast path's
compiled core (svga/model/fastpath.c) where it can be built, and on the fast path in Python
alone (the core taken away, as ``SVGA_NATIVE=0`` does); the target is the default path's
(docs/native.md 'Why a compiled core'). With ``SVGA_NATIVE=0`` or no C compiler there is no
core, so only the Python rows are there, and the default row says so.

Before timing, each stream runs once on a fresh device and its pixels are compared with the
lean loop's (a numpy oracle written here, run on a copy of the same starting pixels), so a
figure can never come from work that silently failed. Each figure is the median of repetitions
in which the model and its limit take turns, each timed in CPU time of the process (the same as
wall time on an idle machine).

    python -m bench.model            # the rows as a Markdown table
    python -m bench.model --quick    # fewer commands and repetitions
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
from svga.device import Device  # noqa: E402
from svga.errors import SVGAError  # noqa: E402
from svga.model import ModelTransport, fastpath  # noqa: E402

GROUP = "model"
PROFILE = "qemu"
SMALL_MODE = (1024, 768)
BIG_MODE = (1920, 1080)
CHUNK_BYTES = 32 * 1024
"""Bytes of commands written before each sync: half the qemu profile's 64 KiB FIFO."""
SMALL = 8
"""Side of the small RECT_FILL and RECT_COPY rectangles."""
MIXED_TARGET = 1_000_000.0
"""Commands per second the issue asks for on the mixed stream."""
BIG_FACTOR = 1.5
"""The 1080p fill and copy may take at most this times numpy's time for the same array."""

_UPDATE = struct.Struct("<5I")
_FILL = struct.Struct("<6I")
_COPY = struct.Struct("<7I")


class BenchError(SVGAError):
    """A benchmark's result was wrong, so its figure would mean nothing."""


# -- the streams -------------------------------------------------------------------------------

def stream(kind: str, n: int, width: int, height: int, seed: int = 15) -> bytes:
    """``n`` encoded commands of ``kind`` (update, fill, copy, mixed), rectangles inside the mode."""
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, width - SMALL + 1, size=(n, 2)).tolist()
    ys = rng.integers(0, height - SMALL + 1, size=(n, 2)).tolist()
    colours = rng.integers(0, 1 << 24, size=n).tolist()
    order = ("update", "fill", "copy")
    out = []
    for i in range(n):
        k = order[i % 3] if kind == "mixed" else kind
        (x, sx), (y, sy) = xs[i], ys[i]
        if k == "update":
            out.append(_UPDATE.pack(1, x, y, 1, 1))
        elif k == "fill":
            out.append(_FILL.pack(2, colours[i], x, y, SMALL, SMALL))
        else:
            out.append(_COPY.pack(3, sx, sy, x, y, SMALL, SMALL))
    return b"".join(out)


def lean(words: np.ndarray, fb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The limit: the least Python that does the model's work on the same words (and the
    oracle of its pixels): decode UPDATE/RECT_FILL/RECT_COPY, check each rectangle against
    ``fb``, draw with numpy (numpy copies through a temporary where rectangles overlap), keep
    the damage rectangles."""
    height, width = fb.shape
    damage: list[tuple[int, int, int, int]] = []
    keep = damage.append
    w_ = words.tolist()
    p, end = 0, len(w_)
    while p < end:
        cid = w_[p]
        if cid == 1:
            x, y, w, h = w_[p + 1: p + 5]
            if x + w > width or y + h > height:
                raise BenchError(f"lean loop: UPDATE {x},{y} {w}x{h} outside")
            keep((x, y, w, h))
            p += 5
        elif cid == 2:
            colour, x, y, w, h = w_[p + 1: p + 6]
            if x + w > width or y + h > height:
                raise BenchError(f"lean loop: RECT_FILL {x},{y} {w}x{h} outside")
            fb[y: y + h, x: x + w] = colour
            keep((x, y, w, h))
            p += 6
        elif cid == 3:
            sx, sy, x, y, w, h = w_[p + 1: p + 7]
            if sx + w > width or sy + h > height or x + w > width or y + h > height:
                raise BenchError(f"lean loop: RECT_COPY {sx},{sy} -> {x},{y} {w}x{h} outside")
            fb[y: y + h, x: x + w] = fb[sy: sy + h, sx: sx + w]
            keep((x, y, w, h))
            p += 7
        else:
            raise BenchError(f"lean loop: unexpected command id {cid}")
    return damage


# -- the device -----------------------------------------------------------------------------------

NATIVE, PYTHON = "compiled core", "Python fast path"
"""The two fast paths a figure is measured on."""


def paths() -> list[str]:
    """The paths to measure: the compiled core (the default) where there is one, and Python."""
    return [NATIVE, PYTHON] if fastpath.load_core() is not None else [PYTHON]


def device(mode: tuple[int, int], path: str = NATIVE) -> Device:
    """A model device in ``mode``, its display refreshed once (the qemu profile then draws fills
    and copies in the mode), with random pixels for copies to move. ``path`` PYTHON takes the
    fast path's compiled core away (what ``SVGA_NATIVE=0`` gives); NATIVE keeps the default."""
    dev = Device(ModelTransport(PROFILE))
    fast = dev.transport.engine.fast  # type: ignore[attr-defined]
    if path == NATIVE and fast.core is None:
        raise BenchError("the compiled core was asked for but is not loaded")
    if path == PYTHON:
        fast.core = None
    dev.set_mode(*mode)
    dev.screenshot_array(cursor=False)  # a display refresh: QEMU adopts the mode's surface
    dev.framebuffer[:] = np.random.default_rng(1).integers(0, 1 << 24, size=(mode[1], mode[0]),
                                                           dtype=np.uint32)
    dev.sync()
    return dev


def chunks(data: bytes, limit: int = CHUNK_BYTES) -> list[bytes]:
    """The stream cut, at command boundaries, into pieces of at most ``limit`` bytes (the
    commands here are UPDATE, RECT_FILL and RECT_COPY: 5, 6 and 7 words)."""
    words = np.frombuffer(data, dtype="<u4")
    sizes = {1: 20, 2: 24, 3: 28}
    out, start, pos = [], 0, 0
    while pos < len(data):
        n = sizes[int(words[pos // 4])]
        if pos + n - start > limit:
            out.append(data[start:pos])
            start = pos
        pos += n
    out.append(data[start:pos])
    return out


def sender(dev: Device, data: bytes) -> Callable[[], None]:
    """Write the encoded commands through the driver's buffer entry point (fifo.write_words;
    fifo.write_batch of the same bytes where there is none), a ring's worth at a time with a
    sync after each (as a program that sends more than the ring holds does), then sync."""
    fifo = dev.fifo
    pieces = chunks(data)
    write_words = getattr(fifo, "write_words", None)
    if write_words is not None:
        arrays = [np.frombuffer(p, dtype="<u4") for p in pieces]

        def send() -> None:
            for a in arrays:
                write_words(a)
                dev.sync()
        return send
    batches = [[p] for p in pieces]

    def send_batch() -> None:
        for b in batches:
            fifo.write_batch(b)
            dev.sync()
    return send_batch


def verify(kind: str, data: bytes, mode: tuple[int, int], path: str) -> None:
    """Run the stream once on a fresh device and compare pixels and damage with the lean loop's."""
    dev = device(mode, path)
    before = dev.read_vram().copy()
    sender(dev, data)()
    expected = before.copy()
    damage = lean(np.frombuffer(data, dtype="<u4"), expected)
    got = dev.read_vram()
    if not np.array_equal(got, expected):
        bad = int(np.count_nonzero(got != expected))
        raise BenchError(f"{kind} ({path}): the model's pixels differ from numpy's in {bad} pixels")
    kept = list(dev.transport.state.damage)  # type: ignore[attr-defined]  # the model keeps the last ones
    if not kept or kept != damage[-len(kept):]:
        raise BenchError(f"{kind} ({path}): the model's damage rectangles differ from the lean loop's")
    dev.close()


def _cpu(fn: Callable[[], object]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


# -- the rows -------------------------------------------------------------------------------------

def _label(path: str, chosen: list[str]) -> str:
    if path == NATIVE:
        return "default path: the compiled core"
    if NATIVE in chosen:
        return "Python fast path, as with SVGA_NATIVE=0"
    return "default path: the Python fast path, no compiled core loaded"


def command_rows(n: int, reps: int) -> list[Row]:
    width, height = SMALL_MODE
    figures = [("update", "UPDATE 1x1"), ("fill", f"RECT_FILL {SMALL}x{SMALL}"),
               ("copy", f"RECT_COPY {SMALL}x{SMALL}"), ("mixed", "UPDATE, RECT_FILL and RECT_COPY mixed")]
    chosen = paths()
    out = []
    for kind, name in figures:
        data = stream(kind, n, width, height)
        words = np.frombuffer(data, dtype="<u4")
        devs, sends = {}, {}
        for path in chosen:
            verify(kind, data, SMALL_MODE, path)
            devs[path] = device(SMALL_MODE, path)
            sends[path] = sender(devs[path], data)
        fb = devs[chosen[0]].read_vram().copy()
        model_s: dict[str, list[float]] = {path: [] for path in chosen}
        lean_s = []
        for _ in range(reps):  # the paths and the limit take turns
            for path in chosen:
                model_s[path].append(_cpu(sends[path]))
            lean_s.append(_cpu(lambda words=words, fb=fb: lean(words, fb)))
        limit = n / statistics.median(lean_s)
        for path in chosen:
            devs[path].close()
            default = path == chosen[0]
            out.append(Row(GROUP, f"model: {n} {name} pre-encoded, fifo.write_words + sync (profile qemu, "
                                  f"{width}x{height}; {_label(path, chosen)})",
                           n / statistics.median(model_s[path]), "commands/s", limit,
                           "a lean Python loop over the same words (decode, check, numpy draw)",
                           target=MIXED_TARGET if kind == "mixed" and default else None))
    return out


def big_rows(reps: int) -> list[Row]:
    width, height = BIG_MODE
    half = height // 2
    fill = _FILL.pack(2, 0x00336699, 0, 0, width, height)
    copy = _COPY.pack(3, 0, 0, 0, half, width, half)
    chosen = paths()
    for path in chosen:
        for kind, data in (("1080p fill", fill), ("1080p copy", copy)):
            verify(kind, data, BIG_MODE, path)
    devs = {path: device(BIG_MODE, path) for path in chosen}
    array = np.random.default_rng(2).integers(0, 1 << 24, size=(height, width), dtype=np.uint32)

    def numpy_fill() -> None:
        array[...] = 0x00336699

    def numpy_copy() -> None:
        array[half:] = array[:half]

    out = []
    for name, data, limit, what in (
            (f"RECT_FILL {width}x{height}", fill, numpy_fill, f"numpy fill of a ({height}, {width}) "
             "uint32 array"),
            (f"RECT_COPY {width}x{half}", copy, numpy_copy, f"numpy copy of {half} rows of a "
             f"({height}, {width}) uint32 array")):
        sends = {path: sender(devs[path], data) for path in chosen}
        model_s: dict[str, list[float]] = {path: [] for path in chosen}
        numpy_s = []
        for _ in range(reps):
            for path in chosen:
                model_s[path].append(_cpu(sends[path]))
            numpy_s.append(_cpu(limit))
        lim = statistics.median(numpy_s) * 1e3
        for path in chosen:
            ms = statistics.median(model_s[path]) * 1e3
            out.append(Row(GROUP, f"model: one {name}, send + sync (profile qemu, {width}x{height}; "
                                  f"{_label(path, chosen)})", ms, "ms",
                           lim, what, target=BIG_FACTOR * lim, higher_is_better=False))
    for dev in devs.values():
        dev.close()
    return out


def rows(quick: bool = False) -> list[Row]:
    """The model rows of the one benchmark table (bench/table.py)."""
    if quick:
        return command_rows(3_000, 3) + big_rows(5)
    return command_rows(30_000, 9) + big_rows(31)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.model", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Prints one Markdown table: figure, value, limit, ratio, target, met.")
    parser.add_argument("--quick", action="store_true", help="3,000 commands and a few repetitions")
    args = parser.parse_args(argv)
    try:
        table = rows(quick=args.quick)
    except SVGAError as e:
        print(f"bench.model: error: {e}", file=sys.stderr)
        return 1
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
