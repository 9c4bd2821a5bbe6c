"""Tools layer: differential runs, one command stream on two devices, screens compared pixel
for pixel. Normally the two are the software model with QEMU's profile and QEMU's real
``-vga vmware`` device through qtest; any two :class:`svga.device.Device` objects work.

    from svga.tools.differential import DISPLAY, VRAM, Pair, cmd, draw, save_stream
    from svga.stream.items import Mode, Sync

    with Pair() as pair:                      # one QEMU for many streams, a fresh model per stream
        result = pair.run([Mode(400, 300),
                           cmd("RECT_FILL", color=0xFF0000, x=0, y=1, width=8, height=8),
                           *draw(10, 10, 20, 20, seed=1, mode=(400, 300)), Sync(), VRAM])
        print(result.summary())               # "identical", or where the first pixels differ
        result.save("diff-out")               # PNGs of every checkpoint that differs
        save_stream(result.items, "failed.svgascript", (320, 240))   # replayable

A stream is the one stream model of scripts and captures (:mod:`svga.stream`): Command, Raw,
Mode, Sync, CursorMove, RegWrite, Pixels ... played on each device by the captures' own
:class:`~svga.captures.replay.Player` (a Sync there is the driver's drain, one SYNC register
write is :data:`SYNC_WRITE`); :data:`DISPLAY` (a Refresh) and :data:`VRAM` (a Frame) are the
checkpoints where both screens are taken. The helpers :func:`cmd`, :func:`raw`, :func:`draw`,
:func:`register_mode`, :func:`move_cursor` and :func:`define_cursor` make the events the tests
need. A stream is saved as a ``.svgascript`` or ``.svgacap`` (:func:`save_stream`) and replayed
with ``python3 -m svga.tools.differential FILE``. Only tests of the driver's own API use
:class:`Call` (driver code run on each device), which no stream file holds.

Errors do not stop a stream: every :class:`svga.errors.SVGAError` an item raises is recorded
for that item and side, and the model's :class:`~svga.errors.ModelError` from a FIFO run
(which the model raises where QEMU silently drops or misparses a command) is caught inside
the model's transport (:class:`RecordingModel`) so the driver carries on as it would on
QEMU. What QEMU printed during the stream (``Unknown command 0x..`` for every command it
drops) can be collected too (``log=True``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from svga import commands, pixels
from svga.captures.files import load_capture, save_capture
from svga.captures.replay import Player
from svga.commands import Command
from svga.device import Device
from svga.errors import ModelError, SVGAError
from svga.registers import Cap, Reg
from svga.stream.capture import Capture as CaptureFile
from svga.stream.capture import FifoRegWrite, Frame, Header, Pixels, RegWrite, Time
from svga.stream.items import CursorMove, Event, Position, Raw, Refresh, StreamItem, Sync
from svga.stream.text import format_capture_event
from svga.transport.base import Transport
from svga.transport.recorder import RecordingTransport

SIDES = ("model", "qemu")
LOG_RING = 400
"""Lines of QEMU output the qtest transport keeps (its ring); a stream whose start finds it
nearly full gets no log (the new lines could not be told from the old ones)."""
LOG_WAIT_S = 5.0
LOG_FENCE_WORDS = commands.encode("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=0,
                                  height=0, image=b"")
"""A command QEMU 7.2 skips cleanly (no ALPHA_CURSOR capability) with one log line
``Unknown command 0x16``: sent to QEMU alone after a stream, its line marks the end of the
stream's output."""
LOG_FENCE_TEXT = f"Unknown command 0x{int(commands.Cmd.DEFINE_ALPHA_CURSOR):02x}"
MASK32 = 0xFFFFFFFF


# -- the model side: errors recorded, not raised ---------------------------------------------------
class RecordingModel(Transport):
    """A :class:`svga.model.ModelTransport` whose ModelErrors are recorded instead of raised.

    The model raises where QEMU drops a command silently (a fill outside the surface) or
    would lose its FIFO parser (FENCE, unknown ids); in a differential run the driver must
    carry on as it does on QEMU, so the error is kept in :attr:`errors` and the register
    access returns as QEMU's would (a BUSY read that raised reads 0). A refresh that raised
    still shows the picture (:meth:`ModelTransport.screen`)."""

    kind = "model"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.vram = model.vram
        self.fifo = model.fifo
        self.description = model.description
        self.errors: list[ModelError] = []

    def _record(self, e: ModelError) -> None:
        self.errors.extend(e.errors)

    def port_read(self, offset: int) -> int:
        try:
            return self.model.port_read(offset)
        except ModelError as e:
            self._record(e)
            return 0

    def port_write(self, offset: int, value: int) -> None:
        try:
            self.model.port_write(offset, value)
        except ModelError as e:
            self._record(e)

    def display_image(self, with_cursor: bool = False) -> np.ndarray:
        try:
            self.model.refresh()
        except ModelError as e:
            self._record(e)
        return self.model.screen(with_cursor)

    def take_errors(self) -> list[str]:
        out = [str(e) for e in self.errors]
        self.errors.clear()
        return out

    def close(self) -> None:
        self.model.close()


def model_device(profile: str = "qemu", accel: str = "auto") -> Device:
    """A fresh software model (``profile``) behind :class:`RecordingModel`, as a Device."""
    from svga.model import ModelTransport

    return Device(RecordingModel(ModelTransport(profile=profile)), accel=accel)


# -- streams: the one stream model (svga.stream) and driver calls --------------------------------
@dataclass(frozen=True)
class Call:
    """Driver code run on each device in turn, ``fn(dev)``: for tests of the driver's own API
    (what it sends depends on the device it runs on, so it is no stream). It may stand among
    the stream items of a run; a stream holding one cannot be saved as a file."""

    label: str
    fn: Callable[[Device], object] = field(compare=False)


Item = StreamItem | Event | RegWrite | FifoRegWrite | Pixels | Frame | Time | Call
"""What a differential run plays: stream items (or bare events) and driver calls."""
DISPLAY = Refresh()
"""A checkpoint: both displays are compared (a refresh: QEMU's screendump, which runs its FIFO,
and the model's display_image)."""
VRAM = Frame(0)
"""A checkpoint: both VRAMs are compared, from offset 0 over every byte the stream may have
touched, in rows of the current BYTES_PER_LINE (no refresh: the FIFO does not run)."""
SYNC_WRITE = RegWrite(int(Reg.SYNC), 1)
"""One SYNC register write (QEMU then runs at most 1023 commands); a :class:`Sync` event in a
differential run is the driver's drain (``dev.sync()``), see :class:`~svga.captures.replay.Player`."""


def cmd(name: str | int, **fields: int | bytes) -> Command:
    """A command of the table; negative numbers in unsigned fields become their 32-bit two's
    complement, as a guest's int would be written (an out-of-range rectangle)."""
    spec = commands.spec_for(name)
    signed = {f.name for f in spec.fields if f.signed}
    args = {k: (v & MASK32 if isinstance(v, int) and v < 0 and k not in signed else v)
            for k, v in fields.items()}
    return commands.decode(commands.encode(spec.name, **args))[0]


def raw(*words: int) -> Raw:
    """FIFO words written as they are."""
    return Raw(tuple(w & MASK32 for w in words))


def pattern(x: int, y: int, width: int, height: int, seed: int) -> np.ndarray:
    """(height, width) uint32 pixels that differ from their neighbours and from seed to seed,
    all 32 bits used (the X byte too): what :func:`draw` writes at (x, y)."""
    yy, xx = np.mgrid[y: y + height, x: x + width].astype(np.uint64)
    v = (xx * np.uint64(0x9E3779B1)) ^ (yy * np.uint64(0x85EBCA77)) ^ np.uint64((seed * 0x27D4EB2F) & MASK32)
    v ^= v >> np.uint64(15)
    return (v & np.uint64(MASK32)).astype(np.uint32)


def draw(x: int, y: int, width: int, height: int, seed: int, mode: tuple[int, int]) -> list[Event | Pixels]:
    """CPU drawing plus UPDATE in a ``mode`` (width, height): :func:`pattern` as the pixels of the
    part of the rectangle inside the mode and an UPDATE of that part; a rectangle reaching
    outside the mode is then also sent whole as an UPDATE (the device's answer to a bad UPDATE is
    what is tested)."""
    mw, mh = mode
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + width, mw), min(y + height, mh)
    out: list[Event | Pixels] = []
    if x0 < x1 and y0 < y1:
        data = pattern(x0, y0, x1 - x0, y1 - y0, seed).astype("<u4").tobytes()
        out += [Pixels(x0, y0, x1 - x0, y1 - y0, data),
                cmd("UPDATE", x=x0, y=y0, width=x1 - x0, height=y1 - y0)]
    if (x0, y0, x1, y1) != (x, y, x + width, y + height):
        out.append(cmd("UPDATE", x=x, y=y, width=width, height=height))
    return out


def register_mode(width: int, height: int, bpp: int = 32) -> list[RegWrite]:
    """Only the WIDTH, HEIGHT and BITS_PER_PIXEL register writes (a :class:`Mode` is the
    driver's ``set_mode``, which syncs first and checks what the device took)."""
    return [RegWrite(int(Reg.WIDTH), width), RegWrite(int(Reg.HEIGHT), height),
            RegWrite(int(Reg.BITS_PER_PIXEL), bpp)]


def move_cursor(x: int, y: int, show: bool | None = True) -> list[Event | RegWrite]:
    """The cursor registers as the driver writes them without cursor bypass 3 (CURSOR_ID 0,
    then X, Y, ON); with ``show=None`` only CURSOR_X and CURSOR_Y."""
    if show is None:
        return [CursorMove(x, y, None)]
    return [RegWrite(int(Reg.CURSOR_ID), 0), CursorMove(x, y, show)]


def driver_commands(profile: str, fn: Callable[[Device], object]) -> list[Command]:
    """The FIFO commands the driver sends for ``fn(dev)`` on a device of ``profile``, recorded
    on the software model (svga.transport.recorder): e.g. the DEFINE_CURSOR that
    ``dev.define_cursor`` encodes for that device's capabilities."""
    from svga.model import ModelTransport

    events: list[object] = []
    with Device(RecordingTransport(ModelTransport(profile=profile), sink=events.append)) as dev:
        dev.enable()
        fn(dev)
    return [ev for ev in events if isinstance(ev, Command)]


def define_cursor(rgba: np.ndarray, hotspot: tuple[int, int], profile: str) -> list[Command]:
    """``dev.define_cursor`` on a device of ``profile`` as stream items."""
    return driver_commands(profile, lambda dev: dev.define_cursor(rgba, hotspot))


def _item(it: Item, index: int) -> StreamItem | Call:
    if isinstance(it, StreamItem | Call):
        return it
    return StreamItem(Position("<stream>", line=index + 1), it)  # type: ignore[arg-type]


def describe(it: StreamItem | Call) -> str:
    """A short text for a run's log (pixels by their rectangle, not their bytes)."""
    if isinstance(it, Call):
        return it.label
    ev = it.event
    if isinstance(ev, Command):
        return ev.text()
    if isinstance(ev, Pixels):
        return f"pixels {ev.x} {ev.y} {ev.width}x{ev.height}"
    if isinstance(ev, Refresh):
        return "refresh (display compared)"
    if isinstance(ev, Frame):
        return "frame (VRAM compared)"
    if isinstance(ev, Sync):
        return "sync (drain)"
    return format_capture_event(ev)


def save_stream(items: Iterable[Item], path: str | os.PathLike[str], mode: tuple[int, int],
                profile: str = "qemu") -> str:
    """Write a stream (no :class:`Call` in it) as a capture file a developer can replay:
    ``.svgacap`` binary, else the text form (``.svgascript``), its header naming the profile
    and the start mode. VRAM checkpoints are numbered as frames 1, 2, ... Replay it with
    ``python3 -m svga.tools.differential FILE`` (model and QEMU, the same runner)."""
    out: list[StreamItem] = []
    frames = 0
    for i, it in enumerate(items):
        item = _item(it, i)
        if isinstance(item, Call):
            raise SVGAError(f"a stream with driver code ({item.label}) has no file form")
        if isinstance(item.event, Frame):
            frames += 1
            item = StreamItem(item.position, Frame(frames))
        out.append(item)
    header = Header(profile=profile, start_mode=(mode[0], mode[1], 32))
    save_capture(path, CaptureFile(header, out))
    return str(path)


def load_stream(path: str) -> tuple[tuple[int, int] | None, list[StreamItem]]:
    """A capture file as a differential stream: (its start mode or None, its items)."""
    cap = load_capture(path)
    w, h, _ = cap.header.start_mode
    return ((w, h) if w and h else None), cap.items


# -- results ---------------------------------------------------------------------------------------
def _pixel_text(value: np.ndarray) -> str:
    if value.ndim == 0:
        return f"0x{int(value):08x}"
    return "#" + "".join(f"{int(c):02x}" for c in value)


@dataclass
class Shot:
    """Both screens of one capture: ``display`` (H, W, 3) RGB or ``vram`` (rows, words) uint32."""

    label: str
    source: str
    model: np.ndarray
    qemu: np.ndarray

    def mask(self) -> np.ndarray | None:
        """(H, W) bool: where the two differ; None when their shapes differ."""
        if self.model.shape != self.qemu.shape:
            return None
        diff = self.model != self.qemu
        return diff.any(axis=2) if diff.ndim == 3 else diff

    @property
    def identical(self) -> bool:
        m = self.mask()
        return m is not None and not m.any()

    def differences(self, limit: int = 5) -> list[tuple[int, int, str, str]]:
        """The first differing pixels in row order: (x, y, model value, qemu value)."""
        m = self.mask()
        if m is None:
            return []
        ys, xs = np.nonzero(m)
        return [(int(x), int(y), _pixel_text(self.model[y, x]), _pixel_text(self.qemu[y, x]))
                for y, x in zip(ys[:limit], xs[:limit], strict=True)]

    def describe(self, limit: int = 3) -> str:
        what = f"{self.label} {self.source}"
        m = self.mask()
        if m is None:
            return f"{what}: sizes differ: model {self.model.shape[:2]}, qemu {self.qemu.shape[:2]}"
        n = int(m.sum())
        if not n:
            return f"{what}: identical ({m.shape[1]}x{m.shape[0]})"
        first = ", ".join(f"({x},{y}) model {a} qemu {b}" for x, y, a, b in self.differences(limit))
        return f"{what}: {n} of {m.size} pixels differ; first {first}"


@dataclass
class StepLog:
    index: int
    text: str
    model: list[str] = field(default_factory=list)
    qemu: list[str] = field(default_factory=list)


@dataclass
class Result:
    """What a differential run saw (see :attr:`identical`)."""

    steps: list[StepLog]
    shots: list[Shot]
    registers: dict[str, tuple[int, int]] = field(default_factory=dict)
    drained: tuple[bool, bool] = (True, True)
    """Whether each FIFO was empty (STOP == NEXT_CMD) at the end."""
    qemu_log: list[str] | None = None
    """QEMU's output during the stream (log=True and the log could be told apart), else None."""
    extent: int = 0
    """Bytes of VRAM from offset 0 the stream may have written (every mode it saw)."""
    seconds: float = 0.0
    items: list[StreamItem | Call] = field(default_factory=list)
    """The stream as played (without the final checkpoints)."""
    mode: tuple[int, int] | None = None
    """The mode both sides started in (:meth:`Pair.run`)."""
    profile: str = "qemu"
    """The model's profile (:meth:`Pair.run`)."""

    def save_stream(self, path: str | os.PathLike[str]) -> str:
        """The stream as a replayable capture file (see :func:`save_stream`)."""
        return save_stream(self.items, path, self.mode or (320, 240), self.profile)

    @property
    def identical(self) -> bool:
        """Every capture, the mode registers and whether the FIFO was drained agree."""
        return (all(s.identical for s in self.shots) and all(a == b for a, b in self.registers.values())
                and self.drained[0] == self.drained[1])

    def differing(self) -> list[Shot]:
        return [s for s in self.shots if not s.identical]

    def errors(self, side: str) -> list[tuple[int, str, str]]:
        """(step index, step text, message) for every error one side (model or qemu) met."""
        if side not in SIDES:
            raise SVGAError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
        return [(s.index, s.text, msg) for s in self.steps for msg in getattr(s, side)]

    def shot(self, label: str, source: str = "display") -> Shot:
        for s in self.shots:
            if s.label == label and s.source == source:
                return s
        raise KeyError(f"no {source} capture labelled {label!r}")

    def summary(self, limit: int = 3) -> str:
        bad = self.differing()
        regs = {k: v for k, v in self.registers.items() if v[0] != v[1]}
        fifo = self.drained[0] != self.drained[1]
        verdict = "identical" if not bad and not regs and not fifo else \
            f"DIFFERENT ({len(bad)} of {len(self.shots)} captures, {len(regs)} registers" + \
            (", FIFO state)" if fifo else ")")
        lines = [f"differential run of {len(self.steps)} steps, {len(self.shots)} captures: {verdict}"]
        lines += ["  " + s.describe(limit) for s in bad]
        lines += [f"  register {k}: model {a}, qemu {b}" for k, (a, b) in regs.items()]
        if self.drained != (True, True):
            lines.append(f"  FIFO drained at the end: model {self.drained[0]}, qemu {self.drained[1]}")
        for s in self.steps:
            if s.model or s.qemu:
                lines.append(f"  step {s.index} ({s.text}):")
                for side in SIDES:
                    msgs = getattr(s, side)
                    lines += [f"    {side}: {msg}" for msg in msgs[:limit]]
                    if len(msgs) > limit:
                        lines.append(f"    {side}: ... and {len(msgs) - limit} more")
        if self.qemu_log:
            n = len(self.qemu_log)
            lines.append(f"  QEMU printed {n} line{'s' if n != 1 else ''}, first: {self.qemu_log[0]}")
        return "\n".join(lines)

    def save(self, directory: str) -> list[str]:
        """PNGs of every differing capture (model, qemu, and the difference mask in red) into
        ``directory``; returns the paths written."""
        os.makedirs(directory, exist_ok=True)
        paths = []
        for i, s in enumerate(self.differing()):
            stem = os.path.join(directory, f"{i:02d}-{s.label.replace(' ', '')}-{s.source}")
            images = {"model": _as_rgb(s.model), "qemu": _as_rgb(s.qemu)}
            m = s.mask()
            if m is not None:
                diff = np.zeros(m.shape + (3,), dtype=np.uint8)
                diff[m] = (255, 0, 0)
                images["diff"] = diff
            for name, img in images.items():
                path = f"{stem}-{name}.png"
                Image.fromarray(img, "RGB").save(path)
                paths.append(path)
        return paths


def _as_rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3:
        return a
    return pixels.to_rgb(a)


# -- running ---------------------------------------------------------------------------------------
def _mode_extent(dev: Device) -> int:
    return dev.regs.read(Reg.BYTES_PER_LINE) * dev.regs.read(Reg.HEIGHT)


def _take_model_errors(dev: Device) -> list[str]:
    t = dev.transport
    return t.take_errors() if isinstance(t, RecordingModel) else []


def _display(dev: Device) -> np.ndarray:
    img = dev.transport.display_image(with_cursor=False)
    if img is None:
        raise SVGAError(f"{dev.transport.description} cannot show its display")
    return img


def _vram(dev: Device, extent: int, row_bytes: int) -> np.ndarray:
    extent = min(extent, dev.transport.vram.size)
    row_bytes = max(row_bytes, 4)
    rows = -(-extent // row_bytes)
    raw = dev.transport.vram.read(0, extent) + bytes(rows * row_bytes - extent)
    return np.frombuffer(raw, dtype="<u4").reshape(rows, row_bytes // 4).copy()


def _drained(dev: Device) -> bool:
    nxt, stop = dev.fifo.pointers()
    return nxt == stop


def _log_count(dev: Device) -> int | None:
    output = getattr(dev.transport, "qemu_output", None)
    if output is None:
        return None
    n = len(output(LOG_RING))
    return n if n < LOG_RING - 50 else None


def _log_since(dev: Device, before: int) -> list[str] | None:
    """QEMU's lines after the first ``before``, up to the fence sent now (not to the other
    side); None when they cannot be told apart (the output ring rolled over)."""
    for attempt in (1, 2):
        dev.fifo.write_command(LOG_FENCE_WORDS)
        try:
            dev.sync()
            break
        except SVGAError:
            # The stream left QEMU's parser past NEXT_CMD (a SYNC write the driver did not
            # check): the driver has re-initialised the FIFO, so the fence goes again.
            if attempt == 2:
                return None
    output = dev.transport.qemu_output  # type: ignore[attr-defined]
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines = output(LOG_RING)
        if len(lines) >= LOG_RING:
            return None
        new = lines[before:]
        ends = [i for i, line in enumerate(new) if LOG_FENCE_TEXT in line]
        if ends:
            return new[: ends[-1]]
        if time.monotonic() > deadline:
            raise SVGAError(f"QEMU did not print the end-of-stream fence within {LOG_WAIT_S:g} s")
        time.sleep(0.001)


def run_stream(items: Iterable[Item], model: Device, qemu: Device, *, final: bool = True,
               extent: int = 0, log: bool = False, batch: bool = False) -> Result:
    """Play ``items`` on both devices (model first, then qemu, item by item) and compare.

    Each side plays through the captures' own :class:`~svga.captures.replay.Player` (a
    :class:`Sync` drains, ``batch``: runs of commands go through ``fifo.write_batch``);
    :data:`DISPLAY` (a Refresh) and :data:`VRAM` (a Frame) are where the screens are taken;
    a :class:`Call` runs driver code on each. ``final`` adds a display and a VRAM checkpoint at
    the end. VRAM checkpoints cover ``extent`` bytes or every mode seen, whichever is larger.
    ``log`` collects QEMU's output for the stream (a fence command is sent to the qemu side
    after the checkpoints for that)."""
    t0 = time.monotonic()
    devs = {"model": model, "qemu": qemu}
    players = {side: Player(dev, sync="drain", batch=batch) for side, dev in devs.items()}
    extent = max(extent, _mode_extent(model), _mode_extent(qemu))
    log_start = _log_count(qemu) if log else None
    logs: list[StepLog] = []
    shots: list[Shot] = []
    stream = [_item(it, i) for i, it in enumerate(items)]
    n = len(stream)
    if final:
        stream += [StreamItem(Position("<final>"), DISPLAY), StreamItem(Position("<final>"), VRAM)]

    def attempt(entry: StepLog, side: str, fn: Callable[[], object]) -> None:
        failure = None
        try:
            fn()
        except SVGAError as e:
            failure = f"{type(e).__name__}: {e}"
        # What the model refused while the driver carried on came first.
        getattr(entry, side).extend(_take_model_errors(devs[side]))
        if failure is not None:
            getattr(entry, side).append(failure)

    for i, item in enumerate(stream):
        entry = StepLog(i, describe(item))
        logs.append(entry)
        ev = item.event if isinstance(item, StreamItem) else None
        checkpoint = isinstance(ev, Refresh | Frame)
        if checkpoint or isinstance(item, Call):
            for side, player in players.items():
                attempt(entry, side, player.flush)
        if checkpoint:
            label = "final" if i >= n else f"step {i}"
            if isinstance(ev, Refresh):
                imgs = [_display(d) for d in (model, qemu)]
            else:
                row = qemu.regs.read(Reg.BYTES_PER_LINE)
                imgs = [_vram(d, extent, row) for d in (model, qemu)]
            for side, dev in devs.items():  # a model's refresh runs its FIFO too
                getattr(entry, side).extend(_take_model_errors(dev))
            shots.append(Shot(label, "display" if isinstance(ev, Refresh) else "vram", imgs[0], imgs[1]))
        elif isinstance(item, Call):
            for side, dev in devs.items():
                attempt(entry, side, lambda fn=item.fn, dev=dev: fn(dev))
        elif not isinstance(ev, Time):
            for side, player in players.items():
                attempt(entry, side, lambda p=player, it=item: p.apply(it))
        extent = max(extent, _mode_extent(model), _mode_extent(qemu))
    if logs:
        for side, player in players.items():
            attempt(logs[-1], side, player.flush)
    registers = {r.name: (model.regs.read(r), qemu.regs.read(r))
                 for r in (Reg.WIDTH, Reg.HEIGHT, Reg.BYTES_PER_LINE, Reg.ENABLE, Reg.CONFIG_DONE)}
    drained = (_drained(model), _drained(qemu))
    qemu_log = _log_since(qemu, log_start) if log_start is not None else None
    return Result(logs, shots, registers, drained, qemu_log, extent, time.monotonic() - t0, stream[:n])


class Pair:
    """QEMU's real device through qtest, shared by many streams, and a fresh model per stream.

    ``display`` is QEMU's (``none``: CAPABILITIES 0x3; ``vnc``: 0xE3); the model's profile
    follows what QEMU offers (``qemu`` or ``qemu-cursor``). Before each stream both devices
    are reset the same way: the mode set through the driver, the VRAM the last stream could
    have touched zeroed, and a refresh, so that QEMU's display surface (which fills and
    copies use, the stale-surface quirk) is that mode on both. The mode must not be exactly
    640x480 on a QEMU never refreshed before (QEMU keeps its placeholder surface then)."""

    def __init__(self, display: str = "none", *, transport: Any = None, qemu_binary: str | None = None
                 ) -> None:
        if transport is None:
            from svga.transport.qtest import QtestTransport

            transport = QtestTransport(display=display, qemu=qemu_binary)
        self.transport = transport
        self.profile = "qemu-cursor" if Device(transport).caps & Cap.CURSOR else "qemu"
        self._dirty = transport.vram.size  # the first reset clears all of VRAM
        self.streams = 0

    def reset(self, mode: tuple[int, int], accel: str = "auto") -> tuple[Device, Device, Shot]:
        """Fresh devices on both sides in ``mode``, cleared and refreshed; returns (model, qemu,
        the reset capture)."""
        width, height = mode
        qemu = Device(self.transport, accel=accel)
        if qemu.has_cursor:
            qemu.move_cursor(0, 0, visible=False)
        # VRAM is zeroed before the mode is set, so the driver's shadow of it (qtest has no
        # mapping) starts as zeros too; the model's VRAM starts as zeros.
        clear = max(self._dirty, width * height * 4)
        self.transport.vram.write(0, bytes(min(clear, self.transport.vram.size)))
        qemu.set_mode(width, height)
        model = model_device(self.profile, accel)
        model.set_mode(width, height)
        shot = Shot("reset", "display", _display(model), _display(qemu))
        self._dirty = width * height * 4
        return model, qemu, shot

    def run(self, items: Iterable[Item], mode: tuple[int, int] = (320, 240), *, accel: str = "auto",
            final: bool = True, log: bool = False, batch: bool = False) -> Result:
        """Reset both sides to ``mode`` and play the stream (see :func:`run_stream`)."""
        model, qemu, shot = self.reset(mode, accel)
        result = run_stream(items, model, qemu, final=final, log=log, batch=batch)
        result.shots.insert(0, shot)
        result.mode = mode
        result.profile = self.profile
        self._dirty = max(self._dirty, result.extent)
        self.streams += 1
        return result

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def demo_stream() -> list[Item]:
    """The ``svga demo`` test pattern, drawn by the driver on each device (800x600, CPU drawing
    on QEMU's caps)."""
    from svga.tools.demo import draw_demo

    return [Call("svga demo 800x600", lambda dev: draw_demo(dev, 800, 600))]


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m svga.tools.differential [FILE]``: play a capture or command script (or the
    demo) on the model and on QEMU, print the summary, save differing checkpoints as PNGs.
    A stream a differential test wrote on failure replays so, in its own start mode."""
    ap = argparse.ArgumentParser(prog="python3 -m svga.tools.differential", description=main.__doc__)
    ap.add_argument("file", nargs="?", help="a capture or command script (.svgacap, .svgascript); "
                    "default: the demo")
    ap.add_argument("--qemu-display", choices=("none", "vnc"), default="none")
    ap.add_argument("--mode", help="the mode both devices start in (default: the file's start mode, "
                    "else 800x600)")
    ap.add_argument("--out", default="differential-out", help="where PNGs of differences go")
    args = ap.parse_args(argv)
    try:
        start: tuple[int, int] | None = None
        if args.mode:
            w, h = (int(v) for v in args.mode.lower().split("x"))
            start = (w, h)
        if args.file:
            file_mode, items = load_stream(args.file)
            start = start or file_mode
            stream: list[Item] = list(items)
        else:
            stream = demo_stream()
        with Pair(args.qemu_display) as pair:
            result = pair.run(stream, start or (800, 600), log=True)
    except (SVGAError, OSError, ValueError) as e:
        print(f"differential: error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    for line in result.qemu_log or []:
        print(f"  qemu: {line}")
    if not result.identical:
        for path in result.save(args.out):
            print(f"  wrote {path}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
