"""Differential tests: the software model (profiles qemu and qemu-cursor) against QEMU 7.2's
real ``-vga vmware`` device through qtest, with the runner of svga/tools/differential.py.

Every stream is the one stream model of scripts and captures (svga/stream: Command, Raw, Mode,
Sync, CursorMove, RegWrite, Pixels), played on both by the captures' Player; only the tests of
the driver's own API run driver code on each side (Call). A random stream that fails is written
as a .svgascript under $SVGA_DIFFERENTIAL_OUT (default differential-out/) and named in the
failure; ``python3 -m svga.tools.differential FILE`` replays it on the model and on QEMU.

Every case runs the same stream on both and compares the screens pixel for pixel, exactly
(no tolerance anywhere: both are 32-bit framebuffers shown as 24-bit RGB, and QEMU's
screendump is lossless). Where a case can, the screens are also checked against a plain
numpy reading of the commands (RECT_FILL writes the raw 32-bit word, RECT_COPY copies from a
snapshot of the source, a command outside the surface is dropped; docs/qemu-7.2.md and
docs/qemu-7.2.md quirk 5), so a fault shared by the model and the runner cannot pass unseen.

One QEMU (``-display none``) serves the module; a second one with a VNC display (cursor
capabilities) serves the cursor cases, and a fresh one the cases that read QEMU's log or
need a QEMU never refreshed before.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import check_demo_picture

from svga.commands import encode
from svga.device import Device
from svga.registers import Reg
from svga.stream.capture import Frame, Pixels, RegWrite
from svga.stream.items import Mode, Sync
from svga.tools.demo import arrow_cursor, draw_demo
from svga.tools.differential import (
    DISPLAY,
    SYNC_WRITE,
    VRAM,
    Call,
    Pair,
    cmd,
    define_cursor,
    demo_stream,
    draw,
    load_stream,
    model_device,
    move_cursor,
    pattern,
    raw,
    register_mode,
    run_stream,
    save_stream,
)

pytestmark = pytest.mark.qemu

FIFO_MIN = 16
"""The driver's FIFO MIN without the extended FIFO (svga_reg.h: the four pointer words)."""
FIFO_MAX = 65536
"""QEMU's FIFO (BAR2, MEM_SIZE) is 64 KiB; the driver uses MAX = MEM_SIZE."""
FILL_BYTES, COPY_BYTES, UPDATE_BYTES = 24, 28, 20  # svga_reg.h: 6, 7 and 5 words
QEMU_MAX_W, QEMU_MAX_H = 2368, 1770
PER_RUN = 1023  # commands QEMU runs per SYNC or refresh (docs/qemu-7.2.md 'Per-run cap')
RANDOM_STREAMS = 300
"""Seeded random streams (hypothesis, derandomized): a fixed CI budget of a few seconds."""
OUT = Path(os.environ.get("SVGA_DIFFERENTIAL_OUT", "differential-out"))
"""Where a failing random stream is written (a .svgascript a developer replays)."""


@pytest.fixture(scope="module")
def pair():
    p = Pair("none")
    yield p
    p.close()


@pytest.fixture(scope="module")
def vnc_pair():
    p = Pair("vnc")
    yield p
    p.close()


@pytest.fixture
def fresh_pair():
    """A QEMU of its own: its log starts empty, its display was never refreshed."""
    p = Pair("none")
    yield p
    p.close()


# -- an independent reading of the commands ------------------------------------------------------
class Expect:
    """What the framebuffer of a mode holds after CPU drawing, fills and copies, computed with
    numpy alone, for streams that run on a display surface equal to the mode."""

    def __init__(self, width: int, height: int) -> None:
        self.px = np.zeros((height, width), dtype=np.uint32)

    def inside(self, x: int, y: int, w: int, h: int) -> bool:
        height, width = self.px.shape
        return 0 <= x and 0 <= y and 0 <= w and 0 <= h and x + w <= width and y + h <= height

    def draw(self, x: int, y: int, w: int, h: int, seed: int) -> None:
        height, width = self.px.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x0 < x1 and y0 < y1:
            self.px[y0:y1, x0:x1] = pattern(x0, y0, x1 - x0, y1 - y0, seed)

    def fill(self, color: int, x: int, y: int, w: int, h: int) -> None:
        if self.inside(x, y, w, h):
            self.px[y:y + h, x:x + w] = color & 0xFFFFFFFF

    def copy(self, sx: int, sy: int, dx: int, dy: int, w: int, h: int) -> None:
        if self.inside(sx, sy, w, h) and self.inside(dx, dy, w, h):
            self.px[dy:dy + h, dx:dx + w] = self.px[sy:sy + h, sx:sx + w].copy()

    def rgb(self) -> np.ndarray:
        p = self.px
        return np.stack([(p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF], axis=-1).astype(np.uint8)


class Script:
    """A stream and the Expect that follows it, built side by side."""

    def __init__(self, width: int, height: int) -> None:
        self.steps: list = []
        self.mode = (width, height)
        self.exp = Expect(width, height)

    def draw(self, x: int, y: int, w: int, h: int, seed: int) -> None:
        self.steps += draw(x, y, w, h, seed, self.mode)
        self.exp.draw(x, y, w, h, seed)

    def fill(self, color: int, x: int, y: int, w: int, h: int) -> None:
        self.steps.append(cmd("RECT_FILL", color=color, x=x, y=y, width=w, height=h))
        self.exp.fill(color, x, y, w, h)

    def copy(self, sx: int, sy: int, dx: int, dy: int, w: int, h: int) -> None:
        self.steps.append(cmd("RECT_COPY", src_x=sx, src_y=sy, dest_x=dx, dest_y=dy, width=w, height=h))
        self.exp.copy(sx, sy, dx, dy, w, h)


def words(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB as (H, W) 0x00RRGGBB."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def check(result, exp: Expect | None = None) -> None:
    """Identical on both sides, and (if given) equal to the numpy reading."""
    assert result.identical, result.summary()
    final = result.shot("final", "display")
    if exp is not None:
        assert np.array_equal(final.qemu, exp.rgb()), "QEMU's screen is not the numpy reading"
        vram = result.shot("final", "vram").qemu
        h, w = exp.px.shape
        assert np.array_equal(vram[:h, :w], exp.px), "QEMU's VRAM is not the numpy reading"


# -- the pair itself -------------------------------------------------------------------------------
def test_profiles_follow_qemus_capabilities(pair, vnc_pair) -> None:
    # docs/qemu-7.2.md: CAPABILITIES 0x3 with -display none, 0xE3 with a VNC display.
    assert Device(pair.transport).caps == 0x3 and pair.profile == "qemu"
    assert Device(vnc_pair.transport).caps == 0xE3 and vnc_pair.profile == "qemu-cursor"


def test_a_difference_is_found_and_named(pair) -> None:
    # The runner must see a difference: the same step done differently on the two sides.
    def paint(dev: Device) -> None:
        colour = 0x00FF0000 if dev.transport.kind == "model" else 0x0000FF00
        dev.framebuffer[5, 7] = colour
        dev.update(7, 5, 1, 1)

    result = pair.run([Call("one pixel, a different colour on each side", paint)], mode=(64, 48))
    assert not result.identical
    shot = result.shot("final", "display")
    assert shot.differences() == [(7, 5, "#ff0000", "#00ff00")]
    assert "1 of 3072 pixels differ; first (7,5) model #ff0000 qemu #00ff00" in result.summary()


# -- the demo, modes, CPU drawing --------------------------------------------------------------------
def test_demo(pair) -> None:
    result = pair.run(demo_stream(), mode=(320, 240))
    assert result.identical, result.summary()
    assert not result.errors("model") and not result.errors("qemu")
    # QEMU's screen is the picture the demo is documented to draw (numpy, tests/test_cli.py),
    # with the arrow drawn by the CPU (-display none offers no hardware cursor).
    check_demo_picture(words(result.shot("final").qemu), cursor=True)
    assert tuple(result.shot("final").qemu[0, 0]) == (0, 0, 0x60)  # the gradient's top-left corner


def test_demo_with_device_fills_and_copies(pair) -> None:
    # accel on: RECT_FILL and RECT_COPY on the device. The mode is refreshed first, so QEMU's
    # surface is the 800x600 mode and every fill lands where the driver asked.
    steps = [Mode(800, 600), DISPLAY, Call("demo, accel on", lambda d: draw_demo(d, 800, 600))]
    result = pair.run(steps, mode=(320, 240), accel="on")
    assert result.identical, result.summary()
    assert not result.errors("model") and not result.errors("qemu")
    bar = result.shot("final").qemu[600 // 16 + 1, 800 // 2 + 1]
    assert tuple(bar) == (255, 255, 255)  # the first colour bar (white), a device fill
    check_demo_picture(words(result.shot("final").qemu), cursor=True)


def test_mode_changes(pair) -> None:
    # 1x1 and 333x77: widths whose screendump rows QEMU pads to 4 bytes (see read_ppm).
    modes = [(800, 600), (64, 48), (1024, 768), (1, 1), (640, 480), (QEMU_MAX_W, QEMU_MAX_H), (333, 77)]
    steps: list = []
    for i, (w, h) in enumerate(modes):
        steps += [Mode(w, h), *draw(0, 0, min(w, 200), min(h, 150), i, (w, h)), DISPLAY]
    result = pair.run(steps, mode=(320, 240))
    assert result.identical, result.summary()
    for i, (w, h) in enumerate(modes):
        shot = result.shots[1 + i]
        assert shot.qemu.shape == (h, w, 3)
        drawn = Expect(min(w, 200), min(h, 150))  # the rest shows what earlier modes left in VRAM
        drawn.draw(0, 0, w, h, i)
        assert np.array_equal(shot.qemu[: min(h, 150), : min(w, 200)], drawn.rgb())


def test_cpu_drawing_and_update_in_and_out_of_range(pair) -> None:
    s = Script(200, 150)
    rng = np.random.default_rng(7)
    for i in range(40):
        x, y = (int(v) for v in rng.integers(-30, 210, 2))
        w, h = (int(v) for v in rng.integers(0, 90, 2))
        s.draw(x, y, w, h, seed=i)
    s.draw(0, 0, 200, 150, seed=99)  # the whole screen
    s.draw(199, 149, 1, 1, seed=100)  # the last pixel
    s.draw(150, 100, 80, 80, seed=101)  # past the bottom-right corner: a raw UPDATE outside too
    result = pair.run(s.steps, mode=(200, 150))
    check(result, s.exp)


# -- fills and copies --------------------------------------------------------------------------------
def test_fills_and_copies_touching_every_edge(pair) -> None:
    W, H = 160, 120
    s = Script(W, H)
    s.draw(0, 0, W, H, seed=5)
    # Fills touching each edge and corner, the whole screen, zero-sized ones on the edges.
    for color, rect in enumerate([(0, 0, W, 1), (0, H - 1, W, 1), (0, 0, 1, H), (W - 1, 0, 1, H),
                                  (0, 0, 3, 3), (W - 3, 0, 3, 3), (0, H - 3, 3, 3), (W - 3, H - 3, 3, 3),
                                  (W, 0, 0, 5), (0, H, 5, 0), (W, H, 0, 0), (10, 10, 0, 0)], 1):
        s.fill(0xA5000000 | color * 0x0F0F0F, *rect)
    # Copies overlapping their source in all eight directions.
    for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1), (3, 2), (-3, -2), (4, -5), (-4, 5)]:
        s.copy(40, 40, 40 + dx, 40 + dy, 50, 30)
    # Copies touching every edge: from each edge to the opposite one, and the whole screen.
    s.copy(0, 0, W - 20, H - 20, 20, 20)
    s.copy(W - 20, H - 20, 0, 0, 20, 20)
    s.copy(0, 0, 0, 1, W, H - 1)
    s.copy(1, 0, 0, 0, W - 1, H)
    s.copy(0, 0, 0, 0, W, H)
    s.steps.append(Sync())
    result = pair.run(s.steps, mode=(W, H))
    check(result, s.exp)
    assert not result.errors("model") and not result.errors("qemu")


def test_out_of_range_fills_and_copies_are_dropped(fresh_pair) -> None:
    W, H = 160, 120
    s = Script(W, H)
    bad_fills = [(W - 9, 0, 10, 1), (0, H - 4, 1, 5), (-1, 0, 2, 2), (0, -1, 2, 2), (0, 0, -1, 1),
                 (0, 0, 1, -1), (0, 0, QEMU_MAX_W + 1, 1), (0, QEMU_MAX_H + 1, 1, 0), (W + 1, 0, 0, 0),
                 (0x7FFFFFFF, 0, 1, 1)]
    bad_copies = [(W - 9, 0, 0, 0, 10, 1), (0, 0, W - 9, 0, 10, 1), (0, H, 0, 0, 1, 1), (0, 0, 0, H, 1, 1),
                  (-1, 0, 0, 0, 1, 1), (0, 0, 0, -1, 1, 1), (0, 0, 1, 1, -2, 1)]
    s.draw(0, 0, W, H, seed=3)
    offset, bad_offsets = FIFO_MIN, []
    for i, rect in enumerate(bad_fills):
        s.fill(0x00112233 * (i + 1), i * 3, 50, 3, 3)  # a control fill, drawn
        s.fill(0x00FF00FF, *rect)  # dropped
        bad_offsets.append(("RECT_FILL", offset + FILL_BYTES))
        offset += 2 * FILL_BYTES
    for i, (sx, sy, dx, dy, w, h) in enumerate(bad_copies):
        s.copy(0, 0, 100 + i, 60, 2, 2)  # a control copy, drawn
        s.copy(sx, sy, dx, dy, w, h)  # dropped
        bad_offsets.append(("RECT_COPY", offset + COPY_BYTES))
        offset += 2 * COPY_BYTES
    s.steps.append(Sync())
    # The UPDATE of the Draw goes first in the FIFO.
    bad_offsets = [(name, off + UPDATE_BYTES) for name, off in bad_offsets]
    result = fresh_pair.run(s.steps, mode=(W, H), log=True)
    check(result, s.exp)
    assert result.drained == (True, True)
    # The model refuses each one, naming the command and where it sits in the FIFO ...
    errors = result.errors("model")
    assert len(errors) == len(bad_offsets)
    for (_, _, msg), (name, off) in zip(errors, bad_offsets, strict=True):
        assert msg.startswith(f"{name} at FIFO offset {off}: ") and "outside" in msg, msg
    # ... and QEMU drops each one with a log line (docs/qemu-7.2.md 'Bad commands').
    assert result.qemu_log is not None
    dropped = "vmsvga_fifo_run: Unknown command 0x{:02x} in SVGA command FIFO"
    assert result.qemu_log.count(dropped.format(2)) == len(bad_fills)
    assert result.qemu_log.count(dropped.format(3)) == len(bad_copies)
    assert not result.errors("qemu")


# -- the stale-stride quirk: device fills and copies right after a mode change ---------------------
def test_fill_after_growing_the_mode_uses_the_old_stride(pair) -> None:
    steps = [Mode(400, 300),  # QEMU's surface is still 320x240, stride 1280
             cmd("RECT_FILL", color=0x00FF0000, x=0, y=1, width=10, height=2),
             cmd("RECT_FILL", color=0x0000FF00, x=330, y=0, width=5, height=5),  # outside 320x240
             cmd("RECT_COPY", src_x=0, src_y=1, dest_x=100, dest_y=100, width=10, height=2),
             Sync(), VRAM, DISPLAY,
             # After the refresh the surface is the mode: the same fill lands where asked.
             cmd("RECT_FILL", color=0x000000FF, x=0, y=1, width=10, height=2), Sync()]
    result = pair.run(steps, mode=(320, 240))
    assert result.identical, result.summary()
    screen = result.shot("step 6", "display").qemu
    # Row 1 at stride 1280 starts at byte 1280: pixel 320 of row 0 in the 400-wide mode.
    assert tuple(screen[0, 320]) == (255, 0, 0) and tuple(screen[1, 0]) == (0, 0, 0)
    assert not screen[..., 1].any()  # the fill outside the old surface was dropped
    final = result.shot("final", "display").qemu
    assert tuple(final[1, 0]) == (0, 0, 255) and tuple(final[2, 9]) == (0, 0, 255)
    assert [m for _, _, m in result.errors("model")][0].startswith("RECT_FILL at FIFO offset 40: ")


def test_fill_after_shrinking_the_mode_lands_outside_the_screen(pair) -> None:
    steps = [Mode(100, 80),
             cmd("RECT_FILL", color=0x00123456, x=0, y=5, width=50, height=3),
             cmd("RECT_FILL", color=0x00654321, x=200, y=200, width=5, height=5),  # beyond 100x80
             cmd("RECT_COPY", src_x=0, src_y=0, dest_x=100, dest_y=10, width=60, height=30),
             Sync(), VRAM, DISPLAY]
    result = pair.run(steps, mode=(320, 240))
    assert result.identical, result.summary()
    assert not result.errors("model")
    vram = result.shot("step 5", "vram").qemu  # rows of 100 words
    # (0, 5) at stride 1280 is byte 6400: row 16 of the 100-wide mode.
    assert vram[16, 0] == 0x00123456 and vram[5, 0] == 0
    # (200, 200) at stride 1280 is byte 256800: below the 80 visible rows.
    assert vram[256800 // 400, (256800 % 400) // 4] == 0x00654321


def test_two_mode_changes_without_a_refresh_and_register_writes(pair) -> None:
    steps = [Mode(800, 600), Mode(200, 100),
             cmd("RECT_FILL", color=0x00ABCDEF, x=300, y=2, width=10, height=10),  # inside 320x240
             Sync(), DISPLAY,
             *register_mode(256, 64),  # only the WIDTH/HEIGHT/BITS_PER_PIXEL writes
             cmd("RECT_FILL", color=0x00FEDCBA, x=150, y=10, width=20, height=20),  # inside 200x100
             Sync(), DISPLAY, VRAM]
    result = pair.run(steps, mode=(320, 240))
    assert result.identical, result.summary()
    assert not result.errors("model") and not result.errors("qemu")


# -- the FIFO ----------------------------------------------------------------------------------------
def _ring_walk(sizes: list[int], start: int = FIFO_MIN) -> tuple[list[int], list[int]]:
    """Where commands of these sizes, written back to back from ``start``, begin in the
    ring, and the indices of those that cross MAX (split in two by the wrap)."""
    pos, starts, crossing = start, [], []
    for i, n in enumerate(sizes):
        starts.append(pos)
        end = pos + n
        if end > FIFO_MAX:
            crossing.append(i)
        if end >= FIFO_MAX:
            end = FIFO_MIN + (end - FIFO_MAX)
        pos = end
    return starts, crossing


def test_fifo_wraparound(pair) -> None:
    W, H = 256, 192
    s = Script(W, H)
    s.draw(0, 0, W, H, seed=11)
    rng = np.random.default_rng(3)
    cmds: list = []
    sizes = [UPDATE_BYTES]  # the Draw's UPDATE
    for i in range(8500):
        kind = int(rng.integers(0, 3))
        x, y = int(rng.integers(0, W - 8)), int(rng.integers(0, H - 8))
        if kind == 0:
            cmds.append(cmd("RECT_FILL", color=0x01000000 * (i & 0xFF) | i, x=x, y=y, width=8, height=8))
            s.exp.fill(0x01000000 * (i & 0xFF) | i, x, y, 8, 8)
            sizes.append(FILL_BYTES)
        elif kind == 1:
            dx, dy = int(rng.integers(0, W - 8)), int(rng.integers(0, H - 8))
            cmds.append(cmd("RECT_COPY", src_x=x, src_y=y, dest_x=dx, dest_y=dy, width=8, height=8))
            s.exp.copy(x, y, dx, dy, 8, 8)
            sizes.append(COPY_BYTES)
        else:
            cmds.append(cmd("UPDATE", x=x, y=y, width=8, height=8))
            sizes.append(UPDATE_BYTES)
    # Two wraps through the batch path, then single commands (reserve, bounce, commit) from
    # about 2 KB before MAX, so that one of them is split by the wrap too.
    starts, crossing = _ring_walk(sizes)
    split = max(i for i in range(len(sizes) - 200) if FIFO_MAX - 2200 <= starts[i] < FIFO_MAX - 2000)
    # cmds[k] is sizes[k + 1]
    assert sum(sizes[:split]) > 2 * (FIFO_MAX - FIFO_MIN)
    assert [i for i in crossing if i < split] and [i for i in crossing if i >= split]
    model, qemu, reset = pair.reset((W, H))
    batched = run_stream(s.steps + cmds[:split - 1], model, qemu, final=False, batch=True)
    result = run_stream(cmds[split - 1:] + [Sync()], model, qemu)  # one reserve/commit each
    assert batched.identical, batched.summary()
    result.shots.insert(0, reset)
    check(result, s.exp)
    for r in (batched, result):
        assert not r.errors("model") and not r.errors("qemu")


def test_more_than_1023_commands_between_syncs(pair) -> None:
    W, H = 320, 240
    n = 1500
    fills = [cmd("RECT_FILL", color=0x00010000 + i, x=i % W, y=i // W, width=1, height=1)
             for i in range(n)]
    # Through the batch path (fifo.write_batch), as one run each where the ring has room.
    steps = [*fills,  # 36000 bytes: fits the ring, so no SYNC is written
             DISPLAY,  # QEMU's refresh runs the FIFO: 1023 commands
             VRAM,
             SYNC_WRITE,  # one SYNC: the other 477
             VRAM,
             *(fills[:1300] * 2), Sync()]  # 2600 commands, drained by repeated SYNCs
    result = pair.run(steps, mode=(W, H), batch=True)
    assert result.identical, result.summary()

    def drawn(shot) -> int:
        return int(np.count_nonzero(shot.qemu.reshape(-1)[:n]))  # VRAM words of the first rows

    assert drawn(result.shot(f"step {n + 1}", "vram")) == PER_RUN
    assert drawn(result.shot(f"step {n + 3}", "vram")) == n
    assert result.drained == (True, True)


# -- commands QEMU's parser cannot count: the model stops with an error, QEMU desyncs -----------------
@pytest.mark.parametrize("bad,name", [
    (cmd("FENCE", fence=1), "FENCE"),
    (cmd("UPDATE_VERBOSE", x=0, y=0, width=4, height=4, reason=0), "UPDATE_VERBOSE"),
    (cmd("DEFINE_SCREEN", struct_size=28, id=0, flags=3, width=64, height=48, root_x=0, root_y=0),
     "DEFINE_SCREEN"),
    (raw(0), "INVALID_CMD"),
    (raw(99), "unknown command id 99"),
])
def test_desync_commands(fresh_pair, bad, name) -> None:
    # A fresh QEMU: its FIFO memory is zeros, so what its parser reads past NEXT_CMD is known.
    steps = [cmd("RECT_FILL", color=0xFF0000, x=0, y=0, width=4, height=4), bad,
             cmd("RECT_FILL", color=0x00FF00, x=4, y=0, width=4, height=4), Sync()]
    result = fresh_pair.run(steps, mode=(64, 48))
    model = [m for _, _, m in result.errors("model")]
    assert len(model) == 1 and name in model[0] and f"at FIFO offset {FIFO_MIN + FILL_BYTES}" in model[0]
    # The model skips only the bad command (or, for an unknown id, the rest of the stream).
    assert tuple(result.shot("final").model[0, 0]) == (255, 0, 0)
    # QEMU's parser ran past NEXT_CMD; the driver saw it and re-initialised the FIFO.
    qemu = [m for _, _, m in result.errors("qemu")]
    assert len(qemu) == 1 and "past NEXT_CMD" in qemu[0], result.summary()


def test_commands_qemu_skips_cleanly_are_refused_by_the_model(pair) -> None:
    # Both skip these; QEMU silently, the model with an error naming the command and its offset.
    steps = [cmd("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=2, height=2,
                      image=bytes(16)),
             cmd("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=32, height=1, and_mask_depth=1,
                      xor_mask_depth=1, and_mask=bytes(4), xor_mask=bytes(4)),  # no CURSOR capability
             cmd("RECT_FILL", color=0xFF, x=0, y=0, width=5, height=5), Sync()]
    result = pair.run(steps, mode=(64, 48))
    assert result.identical, result.summary()
    assert result.drained == (True, True) and not result.errors("qemu")
    msgs = [m for _, _, m in result.errors("model")]
    assert msgs[0].startswith(f"DEFINE_ALPHA_CURSOR at FIFO offset {FIFO_MIN}: not offered")
    assert msgs[1].startswith(f"DEFINE_CURSOR at FIFO offset {FIFO_MIN + 6 * 4 + 16}: not offered")
    assert tuple(result.shot("final").qemu[4, 4]) == (0, 0, 255)


def test_command_completed_by_a_later_commit(pair) -> None:
    # A SYNC in the middle of a command: QEMU rewinds to its start and runs it once complete.
    steps = [raw(2, 0xFF0000, 1, 2), SYNC_WRITE, VRAM, raw(4, 3), Sync()]
    result = pair.run(steps, mode=(64, 48))
    assert result.identical, result.summary()
    assert not result.errors("qemu") and result.drained == (True, True)
    assert not result.shot("step 2", "vram").qemu.any()
    assert (result.shot("final", "vram").qemu[2:5, 1:5] == 0xFF0000).all()
    [(index, _, msg)] = result.errors("model")
    assert index == 1 and msg.startswith(f"RECT_FILL at FIFO offset {FIFO_MIN} is incomplete")


def test_bad_fifo_pointers_stall_both(pair) -> None:
    steps = [Call("FIFO MIN = 12", lambda dev: dev.transport.fifo.write32(0, 12)),
             cmd("RECT_FILL", color=0xFF, x=0, y=0, width=5, height=5), Sync()]
    result = pair.run(steps, mode=(64, 48))
    assert result.identical, result.summary()
    assert result.drained == (False, False)
    assert not result.shot("final", "vram").qemu.any()
    for side in ("model", "qemu"):  # the driver gives up on the SYNC step, on both
        at_sync = [m for i, _, m in result.errors(side) if i == 2]
        assert at_sync[-1].startswith("FifoError: FIFO stalled (SYNC moves nothing)"), at_sync
    assert result.errors("model")[0][2].startswith("FIFO pointer check failed, nothing processed: MIN=12")


def test_disabled_display(pair) -> None:
    # Recorded difference (quirk display-needs-config-done): with ENABLE 0 or CONFIG_DONE 0,
    # QEMU's VGA refresh draws nothing here (no firmware ever set VGA up), so the last SVGA
    # surface stays on screen; the model, which has no VGA emulation, shows black.
    def write(reg: Reg, value: int) -> RegWrite:
        return RegWrite(int(reg), value)

    steps = [*draw(0, 0, 64, 48, 1, (64, 48)), DISPLAY,  # the drawing is items 0 and 1
             write(Reg.ENABLE, 0), DISPLAY, write(Reg.ENABLE, 1), DISPLAY,
             write(Reg.BITS_PER_PIXEL, 8), DISPLAY, write(Reg.CONFIG_DONE, 1), DISPLAY]
    result = pair.run(steps, mode=(64, 48))
    shown = result.shot("step 2").qemu
    for label in ("step 4", "step 8"):
        shot = result.shot(label)
        assert np.array_equal(shot.qemu, shown) and not shot.model.any()
    for label in ("step 2", "step 6", "step 10", "final"):
        assert result.shot(label).identical


# -- the hardware cursor (VNC display: CAPABILITIES 0xE3) ---------------------------------------------
def _cursor(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    img[..., 3] = np.where(img[..., 3] >= 128, 255, 0)
    return img


def test_cursor_on_vnc(vnc_pair) -> None:
    W, H = 320, 240

    def fill_ring_to_the_end(dev: Device) -> None:
        # UPDATEs up to about 1000 bytes before MAX, so the next cursor straddles it.
        nxt, _ = dev.fifo.pointers()
        count = (FIFO_MAX - 1000 - nxt) // UPDATE_BYTES
        dev.fifo.write_batch([encode("UPDATE", x=0, y=0, width=1, height=1)] * count)
        dev.sync()

    def cursor(rgba: np.ndarray, hotspot: tuple[int, int]) -> list:
        # DEFINE_CURSOR as the driver encodes it for QEMU's capabilities (recorded on the model).
        return define_cursor(rgba, hotspot, vnc_pair.profile)

    steps = [*draw(0, 0, W, H, 1, (W, H)), DISPLAY,
             *cursor(arrow_cursor(), (0, 0)), *move_cursor(100, 100), DISPLAY,
             *cursor(_cursor(17, 5, 1), (16, 4)), *move_cursor(-10, -10),
             *cursor(_cursor(64, 64, 2), (63, 63)), *move_cursor(W + 50, H + 50),
             *cursor(_cursor(1, 1, 3), (0, 0)), *move_cursor(5, 5, show=False),
             Call("FIFO filled up to its end", fill_ring_to_the_end),
             *cursor(_cursor(64, 48, 4), (1, 2)), *move_cursor(W - 1, H - 1), Sync(),
             *draw(10, 10, 30, 30, 2, (W, H)), DISPLAY]
    assert sum(getattr(s, "name", "") == "DEFINE_CURSOR" for s in steps) == 5
    result = vnc_pair.run(steps, mode=(W, H), log=True)
    assert result.identical, result.summary()
    assert not result.errors("model") and not result.errors("qemu")
    assert result.drained == (True, True)
    # QEMU's screendump never shows the cursor: the screen is what was drawn.
    before, after = result.shots[1].qemu, result.shots[2].qemu
    assert np.array_equal(before, after)
    # The model accepted every cursor, and so did QEMU: no "Unknown command 0x13" (DEFINE_CURSOR).
    assert result.qemu_log is not None
    assert not [line for line in result.qemu_log if "0x13" in line], result.qemu_log


def test_demo_on_vnc(vnc_pair) -> None:
    # With the cursor capability the demo defines a hardware cursor instead of drawing one.
    result = vnc_pair.run(demo_stream(), mode=(320, 240), log=True)
    assert result.identical, result.summary()
    assert not result.errors("model") and not result.errors("qemu")
    assert result.qemu_log == []
    cursor_at = result.shot("final").qemu[600 * 3 // 4 + 5, 800 * 3 // 4 + 1]
    assert tuple(cursor_at) != (255, 255, 255)  # the arrow's white is not in the screendump


def test_cursor_limits_agree(vnc_pair) -> None:
    # 65x64 at 32 bpp is 4160 XOR words, over QEMU's 4096: both refuse it; 64x64 (4096) is fine.
    def raw_cursor(w: int, h: int):
        and_mask = bytes((w + 31) // 32 * 4 * h)
        xor = bytes(w * h * 4)
        return cmd("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=w, height=h,
                   and_mask_depth=1, xor_mask_depth=32, and_mask=and_mask, xor_mask=xor)

    steps = [raw_cursor(65, 64), Sync(), raw_cursor(64, 64), Sync(),
             cmd("RECT_FILL", color=0xFFFFFF, x=0, y=0, width=3, height=3), Sync()]
    result = vnc_pair.run(steps, mode=(64, 48), log=True)
    assert result.identical, result.summary()
    model = result.errors("model")
    assert [i for i, _, _ in model] == [1] and "exceeds QEMU's limits" in model[0][2]
    assert result.qemu_log == ["vmsvga_fifo_run: Unknown command 0x13 in SVGA command FIFO"]
    assert result.drained == (True, True)


# -- QEMU's placeholder surface (a first mode of exactly 640x480) -------------------------------------
def test_640x480_placeholder(fresh_pair) -> None:
    white = np.full((20, 20), 0x00FFFFFF, dtype="<u4").tobytes()
    mode = (640, 480)
    steps = [DISPLAY,                                                  # step 0
             *draw(0, 0, 640, 480, 1, mode), DISPLAY,  # a full UPDATE covers the text (step 3)
             Pixels(100, 100, 20, 20, white), DISPLAY,  # CPU drawing without UPDATE: the placeholder
                                                        # never sees it (step 5)
             Mode(640, 480), *draw(0, 0, 320, 240, 2, mode), DISPLAY,  # dropped: invalidated (step 9)
             *draw(300, 200, 40, 40, 3, mode), DISPLAY,  # step 12
             Mode(800, 600), DISPLAY]  # a VRAM surface replaces the placeholder
    result = fresh_pair.run(steps, mode=(640, 480))
    # Recorded difference (quirk mode-640x480-placeholder): QEMU's placeholder text.
    for shot in (result.shot("reset"), result.shot("step 0")):
        mask = shot.mask()
        ys, xs = np.nonzero(mask)
        assert len(xs) == 1044 and (xs.min(), xs.max(), ys.min(), ys.max()) == (144, 492, 226, 238)
        assert (shot.qemu[mask] == 0xAA).all() and not shot.model.any()
    # Everything else is imitated (quirk placeholder-shows-only-updates).
    for shot in result.shots[2:]:
        assert shot.identical, shot.describe()
    later = result.shot("step 5").qemu
    assert tuple(later[110, 110]) != (255, 255, 255)  # the CPU drawing without UPDATE: not shown
    assert np.array_equal(result.shot("step 9").qemu, later)  # the UPDATE after the mode write: dropped
    want = pattern(300, 200, 40, 40, 3)
    assert (result.shot("step 12").qemu[220, 320] == [(want[20, 20] >> s) & 0xFF for s in (16, 8, 0)]).all()


# -- streams from command scripts ---------------------------------------------------------------------
def test_script_items_as_a_stream(pair) -> None:
    from svga.stream.script import parse_script

    items = parse_script(
        "mode 200x100\n"
        "refresh\n"
        "RECT_FILL color=0xff0000 x=0 y=0 width=50 height=50\n"
        "RECT_COPY src_x=0 src_y=0 dest_x=25 dest_y=25 width=50 height=50\n"
        "sync\n"
        "raw 0x2 0xff 190 90 10 10\n"  # a RECT_FILL as raw words
        "cursor 10 10\n"
        "refresh\n")
    # The script's items as they are: mode is the driver's set_mode, sync its drain, refresh a
    # display checkpoint, cursor the CURSOR_X/Y registers.
    result = pair.run(items, mode=(320, 240))
    assert result.identical, result.summary()
    exp = Expect(200, 100)
    exp.fill(0xFF0000, 0, 0, 50, 50)
    exp.copy(0, 0, 25, 25, 50, 50)
    exp.fill(0xFF, 190, 90, 10, 10)
    assert np.array_equal(result.shot("final").qemu, exp.rgb())


def test_run_stream_on_two_models_of_the_same_profile() -> None:
    # The runner takes any two devices; two models must agree with each other trivially.
    a, b = model_device("qemu"), model_device("qemu")
    for dev in (a, b):
        dev.set_mode(64, 48)
    # Never refreshed: both still fill against QEMU's 640x480 surface, so 700 wide is outside.
    result = run_stream([*draw(1, 2, 30, 20, 4, (64, 48)),
                         cmd("RECT_FILL", color=1, x=0, y=0, width=700, height=1), Sync()], a, b)
    assert result.identical
    assert len(result.errors("model")) == 1 and len(result.errors("qemu")) == 1


# -- seeded random streams ----------------------------------------------------------------------------
def _rect(pick, width: int, height: int) -> tuple[int, int, int, int]:
    """Mostly a non-empty rectangle inside the mode; else one anywhere near it: touching or
    crossing an edge, empty, negative (as a guest's int would be written)."""
    if pick(st.integers(0, 3)):
        x, y = pick(st.integers(0, width - 1)), pick(st.integers(0, height - 1))
        return x, y, pick(st.integers(1, width - x)), pick(st.integers(1, height - y))
    return (pick(st.integers(-12, width + 12)), pick(st.integers(-12, height + 12)),
            pick(st.integers(-2, width + 4)), pick(st.integers(-2, height + 4)))


@st.composite
def streams(pick):
    """(reset mode, stream items): modes, CPU rectangles with UPDATE, fills, copies and UPDATEs
    in and out of range, SYNCs (the driver's drain, or one SYNC write) and display and VRAM
    checkpoints, in any order."""
    width, height = pick(st.integers(8, 256)), pick(st.integers(8, 160))
    mode = width, height
    items: list = []
    for _ in range(pick(st.integers(1, 16))):
        kind = pick(st.sampled_from(["mode", "draw", "draw", "fill", "fill", "fill", "copy", "copy", "update",
                                     "sync", "sync1", "display", "vram"]))
        if kind == "mode":
            width, height = pick(st.integers(1, 256)), pick(st.integers(1, 160))
            items.append(Mode(width, height))
        elif kind == "draw":
            rect = _rect(pick, width, height)
            items += draw(*rect, seed=pick(st.integers(0, 1 << 16)), mode=(width, height))
        elif kind == "fill":
            x, y, w, h = _rect(pick, width, height)
            colour = pick(st.integers(0, 0xFFFFFFFF))
            items.append(cmd("RECT_FILL", color=colour, x=x, y=y, width=w, height=h))
        elif kind == "copy":
            x, y, w, h = _rect(pick, width, height)
            dx, dy = pick(st.integers(-4, width)), pick(st.integers(-4, height))
            items.append(cmd("RECT_COPY", src_x=x, src_y=y, dest_x=dx, dest_y=dy, width=w, height=h))
        elif kind == "update":
            x, y, w, h = _rect(pick, width, height)
            items.append(cmd("UPDATE", x=x, y=y, width=w, height=h))
        elif kind in ("sync", "sync1"):
            items.append(Sync() if kind == "sync" else SYNC_WRITE)
        else:
            items.append(DISPLAY if kind == "display" else VRAM)
    return mode, items


def run_saved(pair, name: str, items: list, mode: tuple[int, int], check, **options):
    """``pair.run``, then ``check(result)``; when a check fails the stream is written to OUT as a
    .svgascript and the failure names it and the command that replays it."""
    result = pair.run(items, mode=mode, **options)
    try:
        check(result)
    except AssertionError as e:
        path = result.save_stream(OUT / f"{name}-{pair.streams:04d}.svgascript")
        display = "" if pair.profile == "qemu" else " --qemu-display vnc"
        raise AssertionError(f"{e}\nthe stream is in {path}; replay it with: "
                             f"python3 -m svga.tools.differential{display} {path}") from None
    return result


def check_random(result) -> None:
    assert result.identical, result.summary()
    assert result.drained == (True, True)
    assert not result.errors("qemu"), result.summary()
    # The model refuses only what QEMU drops: fills and copies outside the surface.
    for _, _, msg in result.errors("model"):
        assert msg.split(" at FIFO offset ")[0] in ("RECT_FILL", "RECT_COPY") and "outside" in msg, msg


@settings(max_examples=RANDOM_STREAMS, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams())
def test_random_streams(pair, stream) -> None:
    mode, items = stream
    run_saved(pair, "random", items, mode, check_random)


def test_a_failing_stream_is_written_and_replays(pair, tmp_path) -> None:
    # A stream written as the failure path writes it reads back as the same items, and the same
    # runner plays it to the same screens (the oracle: the numpy reading of its commands).
    s = Script(96, 64)
    s.draw(-5, 3, 40, 30, seed=4)
    s.fill(0x00ABCDEF, 10, 10, 20, 20)
    s.copy(0, 0, 50, 30, 30, 30)
    items = [*s.steps, Sync(), VRAM, SYNC_WRITE, *register_mode(96, 64), DISPLAY]
    first = pair.run(items, mode=s.mode)
    path = first.save_stream(tmp_path / "stream.svgascript")
    mode, loaded = load_stream(path)
    assert mode == s.mode
    assert [it.event for it in loaded] == [Frame(1) if it is VRAM else it for it in items]
    again = pair.run(loaded, mode=mode)
    check(again, s.exp)
    for a, b in zip(first.shots, again.shots, strict=True):
        assert np.array_equal(a.qemu, b.qemu) and np.array_equal(a.model, b.model)
    with pytest.raises(Exception, match="driver code"):
        save_stream([Call("x", lambda dev: None)], tmp_path / "no.svgascript", (8, 8))


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 64), st.integers(1, 64), st.integers(-80, 400),
                          st.integers(-80, 300), st.booleans()), min_size=1, max_size=4))
def test_random_cursors(vnc_pair, cursors) -> None:
    items: list = [*draw(0, 0, 320, 240, 9, (320, 240)), DISPLAY]  # the checkpoint is item 2
    for i, (w, h, x, y, show) in enumerate(cursors):
        items += define_cursor(_cursor(w, h, i), (w - 1, h // 2), vnc_pair.profile)
        items += move_cursor(x, y, show)

    def checks(result) -> None:
        assert result.identical, result.summary()
        assert not result.errors("model") and not result.errors("qemu")
        assert np.array_equal(result.shot("step 2").qemu, result.shot("final").qemu)
        assert result.qemu_log is None or not [line for line in result.qemu_log if "0x13" in line]

    run_saved(vnc_pair, "cursors", items, (320, 240), checks, log=True)


def test_accelerated_fill_on_a_stale_surface_keeps_the_shadow_true(pair) -> None:
    """With accel="on" QEMU may drop a fill (outside the stale 640x480-era surface); the
    driver's shadow framebuffer must then hold what VRAM holds, not the fill it predicted,
    so a later UPDATE over the area does not upload the prediction."""
    def scene(dev: Device) -> None:
        dev.accel = "on"
        dev.set_mode(400, 300)  # no refresh: QEMU's surface is still the last one
        dev.fill(0xFF0000, 330, 10, 20, 20)
        dev.sync()  # run it now, on the stale surface (a refresh would resize first)
        dev.update(320, 0, 80, 50)

    result = pair.run([Call("accel fill on a stale surface, then UPDATE", scene)], mode=(320, 240))
    assert result.identical, result.summary()
