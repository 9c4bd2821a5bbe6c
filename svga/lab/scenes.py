"""Drawing scenes for differential lab tests (tools layer, lab): the same Python code run
on the real device in a QEMU guest and on the software model on the host.

A scene is a function ``scene(dev, look) -> counts``. It uses only the public Device API
(``set_mode``, ``framebuffer``, ``update``, ``fill``, ``copy``, ``sync``, and ``dev.fifo``
for raw commands) and calls ``look(name)`` at each point worth comparing, after draining
the FIFO. What ``look`` does depends on the side:

- in a lab guest (``python3 -m svga.lab.scenes sequence --device pci``) it signals the
  lab marker ``name`` and waits: the host takes QEMU's screendump, then releases it;
- on the host, :func:`record` runs the scene on a device (the model with the ``qemu``
  profile) and keeps ``dev.screenshot_array(cursor=False)`` at each look.

On QEMU both kinds of look are a display refresh: QEMU adopts the current mode as its
display surface only then (docs/qemu-7.2.md quirk 2, the model's ``stale-surface`` quirk), so
the two sides stay in step only if every look happens at the same point of the scene.
The scenes rely on that: device fills and copies (``accel="on"``, raw RECT_FILL and
RECT_COPY) come only after a look in the same mode, except in the one step that draws
with a stale surface on purpose. Only the ``640x480`` scene sets 640x480, which QEMU 7.2
does not show when it is the first thing its display refreshes to (quirk 1, seen in the
lab: once any refresh has happened, even of the VGA text screen, 640x480 is shown).

On QEMU the stale-surface step is deterministic only while nothing but the looks
refreshes the display: ``-display none``, or a VNC server with no client connected.

Randomness comes from ``numpy.random.default_rng(seed)``: the guest runs the host's own
python and numpy, so both sides draw the same rectangles.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from svga import commands
from svga.device import Device, open_device
from svga.errors import SVGAError

Look = Callable[[str], None]
Scene = Callable[[Device, Look], dict[str, int]]

SEED = 20261125
FIFO_BATCH_COMMANDS = 24_000
"""Raw commands sent through Fifo.write_batch in :func:`sequence` (about 9 wraps of QEMU's
64 KiB FIFO)."""
FIFO_SEND_COMMANDS = 3_000
"""Raw commands sent one by one through Fifo.send in :func:`sequence`."""


def pattern(width: int, height: int, salt: int = 0) -> np.ndarray:
    """(height, width) 0x00RRGGBB test picture with many distinct pixels: red grows to the
    right, green downwards, blue is (x xor y) + salt. A row or column drawn at the wrong
    stride or offset shows up as different pixels."""
    x = np.arange(width, dtype=np.uint32)[None, :]
    y = np.arange(height, dtype=np.uint32)[:, None]
    r = x * 255 // max(width - 1, 1)
    g = y * 255 // max(height - 1, 1)
    b = ((x ^ y) + salt) & 0xFF
    return (r << 16) | (g << 8) | b


@contextmanager
def accel(dev: Device, how: str) -> Iterator[None]:
    """Use the device's own fill/copy (``on``) or not (``off``) inside the block."""
    before = dev.accel
    dev.accel = how
    try:
        yield
    finally:
        dev.accel = before


def _look(dev: Device, look: Look, name: str) -> None:
    dev.sync()
    look(name)


def _rects(rng: np.random.Generator, n: int, width: int, height: int, max_size: int
           ) -> np.ndarray:
    """n random (x, y, w, h) rows lying inside width x height, sides 1..max_size."""
    w = rng.integers(1, max_size + 1, n)
    h = rng.integers(1, max_size + 1, n)
    w = np.minimum(w, width)
    h = np.minimum(h, height)
    x = (rng.random(n) * (width - w + 1)).astype(np.int64)
    y = (rng.random(n) * (height - h + 1)).astype(np.int64)
    return np.stack([x, y, w, h], axis=1)


def _raw_commands(rng: np.random.Generator, n: int, width: int, height: int
                  ) -> list[tuple[commands.Cmd, dict[str, int]]]:
    """n RECT_FILL and RECT_COPY commands (about one in eight a copy) inside the mode, as
    (id, fields). Fill colours are full 32-bit words: the top byte is not shown on a
    24-bit display."""
    rects = _rects(rng, n, width, height, 48)
    colors = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    kinds = rng.random(n) < 0.125
    dest = rng.random((n, 2))
    out: list[tuple[commands.Cmd, dict[str, int]]] = []
    for i in range(n):
        x, y, w, h = (int(v) for v in rects[i])
        if kinds[i]:
            dx = int(dest[i, 0] * (width - w + 1))
            dy = int(dest[i, 1] * (height - h + 1))
            out.append((commands.Cmd.RECT_COPY,
                        {"src_x": x, "src_y": y, "dest_x": dx, "dest_y": dy, "width": w, "height": h}))
        else:
            out.append((commands.Cmd.RECT_FILL,
                        {"color": int(colors[i]), "x": x, "y": y, "width": w, "height": h}))
    return out


def _fills_and_copies(dev: Device, rng: np.random.Generator, fills: int, copies: int,
                      max_size: int) -> None:
    mode = dev.mode
    assert mode is not None
    for x, y, w, h in _rects(rng, fills, mode.width, mode.height, max_size):
        dev.fill(int(rng.integers(0, 1 << 24)), int(x), int(y), int(w), int(h))
    for x, y, w, h in _rects(rng, copies, mode.width, mode.height, max_size * 2):
        # A destination near the source, so many copies overlap it.
        dx = int(min(max(x + rng.integers(-w // 2, w // 2 + 1), 0), mode.width - w))
        dy = int(min(max(y + rng.integers(-h // 2, h // 2 + 1), 0), mode.height - h))
        dev.copy(int(x), int(y), dx, dy, int(w), int(h))


def _tiny_updates(dev: Device, rng: np.random.Generator, n: int) -> None:
    """n CPU writes of 1x1 or 2x2 pixels, each shown with its own UPDATE."""
    mode = dev.mode
    assert mode is not None
    fb = dev.framebuffer
    sizes = rng.integers(1, 3, n)
    xs = rng.integers(0, mode.width - 1, n)
    ys = rng.integers(0, mode.height - 1, n)
    colors = rng.integers(0, 1 << 24, n)
    for s, x, y, c in zip(sizes, xs, ys, colors, strict=True):
        s, x, y = int(s), int(x), int(y)
        fb[y: y + s, x: x + s] = int(c)
        dev.update(x, y, s, s)


def _tiny_fills(dev: Device, rng: np.random.Generator, n: int) -> None:
    """n fills of 1x1 or 2x2 pixels through Device.fill."""
    mode = dev.mode
    assert mode is not None
    for x, y, s, c in zip(rng.integers(0, mode.width - 1, n), rng.integers(0, mode.height - 1, n),
                          rng.integers(1, 3, n), rng.integers(0, 1 << 24, n), strict=True):
        dev.fill(int(c), int(x), int(y), int(s), int(s))


def _new_mode(dev: Device, width: int, height: int, salt: int) -> None:
    dev.set_mode(width, height)
    dev.framebuffer[:, :] = pattern(width, height, salt)
    dev.update()


def sequence(dev: Device, look: Look) -> dict[str, int]:
    """Mode changes, CPU drawing, fills and copies (CPU and device), tiny updates, and many
    thousands of raw FIFO commands that wrap the FIFO many times. Looks, in order:

    800x600-cpu, 1024x768-stale-surface, 1024x768-accel, 640x400-tiny, 1280x1024-cpu,
    1280x1024-fifo, largest-cpu, largest-accel, 800x600-final."""
    rng = np.random.default_rng(SEED)
    counts = {"modes": 0, "looks": 0, "fifo_bytes": 0, "raw_commands": 0}

    def see(name: str) -> None:
        _look(dev, look, name)
        counts["looks"] += 1

    def new_mode(width: int, height: int, salt: int) -> None:
        _new_mode(dev, width, height, salt)
        counts["modes"] += 1

    # 800x600: the CPU pattern, then fills and copies as the driver chooses (on QEMU with
    # accel auto: CPU drawing + UPDATE; there was no look yet, so nothing here may depend on
    # the surface an earlier program left).
    new_mode(800, 600, 0)
    _fills_and_copies(dev, rng, 40, 12, 120)
    see("800x600-cpu")

    # 1024x768 with no look in between: QEMU's surface is still the 800x600 one, so a raw
    # RECT_FILL and RECT_COPY inside 800x600 land with the old 3200-byte stride in the new
    # 4096-byte one (the quirk the model imitates as stale-surface). A device without the
    # quirk draws them where they belong.
    new_mode(1024, 768, 1)
    dev.sync()
    dev.fifo.send(commands.Cmd.RECT_FILL, color=0xFF8000, x=10, y=1, width=700, height=30)
    dev.fifo.send(commands.Cmd.RECT_COPY, src_x=0, src_y=0, dest_x=300, dest_y=300, width=400,
                  height=200)
    counts["raw_commands"] += 2
    see("1024x768-stale-surface")

    # The look refreshed QEMU's surface: now the device's own fills and copies are right.
    with accel(dev, "on"):
        _fills_and_copies(dev, rng, 40, 12, 160)
        _tiny_fills(dev, rng, 300)
    see("1024x768-accel")

    # 640x400: hundreds of 1x1 and 2x2 CPU writes, each with its own UPDATE.
    new_mode(640, 400, 2)
    _tiny_updates(dev, rng, 600)
    see("640x400-tiny")

    # 1280x1024: many thousands of raw fills and copies, after a look (QEMU's surface).
    new_mode(1280, 1024, 3)
    see("1280x1024-cpu")
    batch = [commands.encode(cid, **fields)
             for cid, fields in _raw_commands(rng, FIFO_BATCH_COMMANDS, 1280, 1024)]
    counts["fifo_bytes"] += dev.fifo.write_batch(batch)
    for cid, fields in _raw_commands(rng, FIFO_SEND_COMMANDS, 1280, 1024):
        dev.fifo.send(cid, **fields)
        counts["fifo_bytes"] += commands.command_words(cid, **fields) * 4
    counts["raw_commands"] += FIFO_BATCH_COMMANDS + FIFO_SEND_COMMANDS
    see("1280x1024-fifo")

    # The largest mode the device offers (QEMU: 2368x1770x32, which fills 16 MiB but for
    # 11776 bytes), then device fills and a copy reaching its far edges.
    width, height = dev.max_width, dev.max_height
    new_mode(width, height, 4)
    see("largest-cpu")
    with accel(dev, "on"):
        dev.fill(0x00FF00, width - 40, height - 30, 40, 30)
        dev.fill(0xFF00FF, 0, height - 1, width, 1)
        dev.copy(0, 0, width - 300, 0, 300, 200)
        _fills_and_copies(dev, rng, 30, 8, 400)
    see("largest-accel")

    # Back down to 800x600, the driver's default choice of fill again.
    new_mode(800, 600, 5)
    _fills_and_copies(dev, rng, 20, 6, 200)
    _tiny_updates(dev, rng, 100)
    see("800x600-final")
    counts["ring_bytes"] = dev.fifo.ring_bytes
    return counts


def vga_size_mode(dev: Device, look: Look) -> dict[str, int]:
    """640x480, 800x600, 640x480 again, each with the CPU pattern. Looks: 640x480-first,
    800x600, 640x480-again. On a QEMU that has not refreshed its display since it started,
    the first look shows QEMU's 640x480 placeholder instead (quirk
    ``mode-640x480-placeholder``, not imitated by the model); the others show the pattern."""
    for width, height, name in ((640, 480, "640x480-first"), (800, 600, "800x600"),
                                (640, 480, "640x480-again")):
        _new_mode(dev, width, height, 0)
        _look(dev, look, name)
    return {"modes": 3, "looks": 3}


SCENES: dict[str, Scene] = {"sequence": sequence, "640x480": vga_size_mode}


def record(scene: Scene, dev: Device) -> tuple[dict[str, int], list[tuple[str, np.ndarray]]]:
    """Run ``scene`` on ``dev`` (the host side: the model), keeping the screenshot at each
    look (without the hardware cursor, which QEMU's screendump does not show)."""
    shots: list[tuple[str, np.ndarray]] = []

    def look(name: str) -> None:
        shots.append((name, dev.screenshot_array(cursor=False)))

    counts = scene(dev, look)
    return counts, shots


def lab_look(name: str) -> None:
    """The guest side of a look: signal the lab marker and wait for the host's release."""
    from svga.lab import marker

    if not marker.signal(name):
        raise SVGAError(f"the lab host did not release marker '{name}'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m svga.lab.scenes",
        description="Run a drawing scene on a device. In a lab guest each look is a marker the "
                    "host answers with a screendump; elsewhere each look is a screenshot of the "
                    "device (a display refresh on the model), saved with --out. Prints the "
                    "scene's counts as JSON.")
    parser.add_argument("scene", choices=sorted(SCENES))
    parser.add_argument("--device", "-d", default="pci", help="device spec, as for svga (default: pci)")
    parser.add_argument("--profile", default="qemu", help="model profile for --device model (default: qemu)")
    parser.add_argument("--out", metavar="DIR", help="outside the lab: save each look as DIR/NAME.png")
    args = parser.parse_args(argv)
    from svga.lab import marker

    options = {"profile": args.profile} if args.device in ("model", "auto") else {}
    try:
        with open_device(args.device, **options) as dev:
            if marker.in_lab():
                counts = SCENES[args.scene](dev, lab_look)
            else:
                def look(name: str) -> None:
                    shot = dev.screenshot(cursor=False)
                    if args.out:
                        path = os.path.join(args.out, f"{name}.png")
                        try:
                            shot.save(path)
                        except (OSError, ValueError) as e:
                            raise SVGAError(f"cannot write {path}: {e}") from None

                counts = SCENES[args.scene](dev, look)
    except SVGAError as e:
        print(f"svga: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
