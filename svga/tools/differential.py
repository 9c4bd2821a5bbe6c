"""Tools layer: differential runs, one command stream on two devices, screens compared pixel
for pixel. Normally the two are the software model with QEMU's profile and QEMU's real
``-vga vmware`` device through qtest; any two :class:`svga.device.Device` objects work.

    from svga.tools.differential import Capture, Pair, SetMode, Send, Sync

    with Pair() as pair:                      # one QEMU for many streams, a fresh model per stream
        result = pair.run([SetMode(400, 300),
                           Send.cmd("RECT_FILL", color=0xFF0000, x=0, y=1, width=8, height=8),
                           Sync(), Capture("vram")])
        print(result.summary())               # "identical", or where the first pixels differ
        result.save("diff-out")               # PNGs of every capture that differs

A stream is a list of steps, each applied to both devices in turn through the driver's public
API (:class:`SetMode`, :class:`Draw`, :class:`DefineCursor`, :class:`MoveCursor`,
:class:`Call`) or as raw FIFO words through ``dev.fifo`` (:class:`Send`, :class:`Batch`);
:class:`Sync` drains the FIFO or writes SYNC once; :class:`Capture` takes what each display
shows (a refresh: QEMU's screendump, the model's ``display_image``) or what VRAM holds (no
refresh). A stream parsed from a command script (:mod:`svga.tools.script`) becomes steps
with :func:`from_stream`.

Errors do not stop a stream: every :class:`svga.errors.SVGAError` a step raises is recorded
for that step and side, and the model's :class:`~svga.errors.ModelError` from a FIFO run
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
from svga.device import Device
from svga.errors import ModelError, SVGAError
from svga.registers import Cap, Reg
from svga.transport.base import Transport

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


# -- steps -----------------------------------------------------------------------------------------
class Step:
    """One thing done to both devices. Subclasses define :meth:`apply` and :meth:`text`."""

    def apply(self, dev: Device) -> None:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class SetMode(Step):
    """A mode change: ``dev.set_mode`` (the driver syncs first and checks what the device
    took), or with ``driver=False`` only the WIDTH, HEIGHT and BITS_PER_PIXEL writes of a
    script's ``mode`` line (the driver's framebuffer view follows when the mode is usable)."""

    width: int
    height: int
    bpp: int = 32
    driver: bool = True

    def apply(self, dev: Device) -> None:
        if self.driver:
            dev.set_mode(self.width, self.height, self.bpp)
            return
        dev.regs.write(Reg.WIDTH, self.width)
        dev.regs.write(Reg.HEIGHT, self.height)
        dev.regs.write(Reg.BITS_PER_PIXEL, self.bpp)
        try:
            dev.adopt_mode()
        except SVGAError:
            pass  # the registers were written; only the driver's view of the mode is stale

    def text(self) -> str:
        return f"mode {self.width}x{self.height}" + ("" if self.driver else f"x{self.bpp} (registers)")


def pattern(x: int, y: int, width: int, height: int, seed: int) -> np.ndarray:
    """(height, width) uint32 pixels that differ from their neighbours and from seed to seed,
    all 32 bits used (the X byte too): what :class:`Draw` writes at (x, y)."""
    yy, xx = np.mgrid[y: y + height, x: x + width].astype(np.uint64)
    v = (xx * np.uint64(0x9E3779B1)) ^ (yy * np.uint64(0x85EBCA77)) ^ np.uint64((seed * 0x27D4EB2F) & MASK32)
    v ^= v >> np.uint64(15)
    return (v & np.uint64(MASK32)).astype(np.uint32)


@dataclass(frozen=True)
class Draw(Step):
    """CPU drawing plus UPDATE: :func:`pattern` into the part of the rectangle inside the
    mode, ``dev.update`` of that part; a rectangle reaching outside the mode is then also
    sent whole as a raw UPDATE (the device's answer to a bad UPDATE is what is tested)."""

    x: int
    y: int
    width: int
    height: int
    seed: int = 0

    def apply(self, dev: Device) -> None:
        mode = dev.mode
        if mode is None:
            raise SVGAError("Draw needs a mode set through the driver first")
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.width, mode.width), min(self.y + self.height, mode.height)
        if x0 < x1 and y0 < y1:
            dev.framebuffer[y0:y1, x0:x1] = pattern(x0, y0, x1 - x0, y1 - y0, self.seed)
            dev.update(x0, y0, x1 - x0, y1 - y0)
        if (x0, y0, x1, y1) != (self.x, self.y, self.x + self.width, self.y + self.height):
            dev.fifo.send(commands.Cmd.UPDATE, x=self.x & MASK32, y=self.y & MASK32,
                          width=self.width & MASK32, height=self.height & MASK32)

    def text(self) -> str:
        return f"draw {self.x},{self.y} {self.width}x{self.height} seed {self.seed} + UPDATE"


def _describe_words(data: bytes) -> str:
    try:
        cmds = commands.decode_all(data)
    except SVGAError:
        words = np.frombuffer(data, dtype="<u4")
        shown = " ".join(f"0x{int(w):x}" for w in words[:8])
        return f"words {shown}" + (" ..." if len(words) > 8 else "")
    parts = [c.text() for c in cmds[:2]]
    return "; ".join(parts) + (f"; ... ({len(cmds)} commands)" if len(cmds) > 2 else "")


@dataclass(frozen=True)
class Send(Step):
    """FIFO words written as they are, through ``dev.fifo.write_command`` (reserve/commit)."""

    data: bytes

    @classmethod
    def cmd(cls, name: str | int, **fields: int | bytes) -> Send:
        """Encode with the command table; negative numbers become their 32-bit two's
        complement, as a guest's int would be written (an out-of-range rectangle)."""
        spec = commands.spec_for(name)
        signed = {f.name for f in spec.fields if f.signed}
        args = {k: (v & MASK32 if isinstance(v, int) and v < 0 and k not in signed else v)
                for k, v in fields.items()}
        return cls(commands.encode(spec.name, **args))

    @classmethod
    def words(cls, *words: int) -> Send:
        return cls(np.array([w & MASK32 for w in words], dtype="<u4").tobytes())

    def apply(self, dev: Device) -> None:
        dev.fifo.write_command(self.data)

    def text(self) -> str:
        return _describe_words(self.data)


@dataclass(frozen=True)
class Batch(Step):
    """Many encoded commands through ``dev.fifo.write_batch`` (one copy per contiguous run,
    SYNC only when the ring is full)."""

    commands: tuple[bytes, ...]

    @classmethod
    def of(cls, items: Iterable[Send | bytes]) -> Batch:
        return cls(tuple(it.data if isinstance(it, Send) else bytes(it) for it in items))

    def apply(self, dev: Device) -> None:
        dev.fifo.write_batch(self.commands)

    def text(self) -> str:
        return f"batch of {len(self.commands)}: {_describe_words(b''.join(self.commands[:2]))}"


@dataclass(frozen=True)
class Sync(Step):
    """``dev.sync()`` (SYNC until STOP reaches NEXT_CMD), or with ``drain=False`` one SYNC
    register write (QEMU then runs at most 1023 commands)."""

    drain: bool = True

    def apply(self, dev: Device) -> None:
        if self.drain:
            dev.sync()
        else:
            dev.regs.write(Reg.SYNC, 1)

    def text(self) -> str:
        return "sync (drain)" if self.drain else "SYNC write"


@dataclass(frozen=True)
class Capture(Step):
    """Take both screens: ``display`` is what each display shows after a refresh (QEMU's
    screendump, which runs the FIFO; the model's display_image) as RGB; ``vram`` is VRAM
    from offset 0 over every byte the stream may have touched, as 32-bit words in rows of the
    current BYTES_PER_LINE (no refresh). The runner takes them; :meth:`apply` is unused."""

    source: str = "display"

    def __post_init__(self) -> None:
        if self.source not in ("display", "vram"):
            raise SVGAError(f"capture source must be display or vram, not {self.source!r}")

    def apply(self, dev: Device) -> None:  # pragma: no cover - the runner handles captures
        raise SVGAError("captures are taken by run_stream")

    def text(self) -> str:
        return f"capture {self.source}"


@dataclass(frozen=True)
class DefineCursor(Step):
    """``dev.define_cursor`` from an (h, w, 4) RGBA image."""

    rgba: np.ndarray = field(compare=False)
    hotspot: tuple[int, int] = (0, 0)

    def apply(self, dev: Device) -> None:
        dev.define_cursor(self.rgba, self.hotspot)

    def text(self) -> str:
        h, w = self.rgba.shape[:2]
        return f"define cursor {w}x{h} hotspot {self.hotspot[0]},{self.hotspot[1]}"


@dataclass(frozen=True)
class MoveCursor(Step):
    """``dev.move_cursor``; with ``show=None`` only the CURSOR_X/Y register writes of a
    script's ``cursor X Y`` line."""

    x: int
    y: int
    show: bool | None = True

    def apply(self, dev: Device) -> None:
        if self.show is None:
            dev.regs.write(Reg.CURSOR_X, self.x & MASK32)
            dev.regs.write(Reg.CURSOR_Y, self.y & MASK32)
        else:
            dev.move_cursor(self.x, self.y, visible=self.show)

    def text(self) -> str:
        return f"cursor {self.x} {self.y}" + ("" if self.show is None else " show" if self.show else " hide")


@dataclass(frozen=True)
class Call(Step):
    """Anything else done through the public Device API: ``fn(dev)`` on each device."""

    label: str
    fn: Callable[[Device], object] = field(compare=False)

    def apply(self, dev: Device) -> None:
        self.fn(dev)

    def text(self) -> str:
        return self.label


def from_stream(items: Iterable[Any]) -> list[Step]:
    """Steps from a parsed command script or stream (:mod:`svga.tools.stream` items or bare
    events): commands and raw words are sent as they are, ``mode`` is the register writes,
    ``sync`` one SYNC write, ``refresh`` a display capture, ``cursor`` the cursor registers."""
    from svga.tools import stream as st

    steps: list[Step] = []
    for item in items:
        ev = item.event if isinstance(item, st.StreamItem) else item
        if isinstance(ev, commands.Command):
            steps.append(Send(ev.encode()))
        elif isinstance(ev, st.Raw):
            steps.append(Send.words(*ev.words))
        elif isinstance(ev, st.Mode):
            steps.append(SetMode(ev.width, ev.height, ev.bpp, driver=False))
        elif isinstance(ev, st.Sync):
            steps.append(Sync(drain=False))
        elif isinstance(ev, st.Refresh):
            steps.append(Capture("display"))
        elif isinstance(ev, st.CursorMove):
            steps.append(MoveCursor(ev.x, ev.y, ev.show))
        else:
            raise SVGAError(f"a differential run cannot replay {type(ev).__name__} items")
    return steps


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


def run_stream(steps: Sequence[Step], model: Device, qemu: Device, *, final: bool = True,
               extent: int = 0, log: bool = False, label_offset: int = 0) -> Result:
    """Apply ``steps`` to both devices (model first, then qemu, step by step) and compare.

    ``final`` adds a display and a VRAM capture at the end. VRAM captures cover ``extent``
    bytes or every mode seen, whichever is larger. ``log`` collects QEMU's output for the
    stream (a fence command is sent to the qemu side after the captures for that)."""
    t0 = time.monotonic()
    devs = {"model": model, "qemu": qemu}
    extent = max(extent, _mode_extent(model), _mode_extent(qemu))
    log_start = _log_count(qemu) if log else None
    logs: list[StepLog] = []
    shots: list[Shot] = []

    def capture(entry: StepLog, label: str, source: str) -> None:
        if source == "display":
            imgs = [_display(d) for d in (model, qemu)]
        else:
            row = qemu.regs.read(Reg.BYTES_PER_LINE)
            imgs = [_vram(d, extent, row) for d in (model, qemu)]
        for side, dev in devs.items():  # a model's refresh runs its FIFO too
            getattr(entry, side).extend(_take_model_errors(dev))
        shots.append(Shot(label, source, imgs[0], imgs[1]))

    all_steps = list(steps) + ([Capture("display"), Capture("vram")] if final else [])
    for i, step in enumerate(all_steps, label_offset):
        entry = StepLog(i, step.text())
        logs.append(entry)
        if isinstance(step, Capture):
            capture(entry, "final" if i - label_offset >= len(steps) else f"step {i}", step.source)
            continue
        for side, dev in devs.items():
            failure = None
            try:
                step.apply(dev)
            except SVGAError as e:
                failure = f"{type(e).__name__}: {e}"
            # What the model refused while the driver carried on came first.
            getattr(entry, side).extend(_take_model_errors(dev))
            if failure is not None:
                getattr(entry, side).append(failure)
        extent = max(extent, _mode_extent(model), _mode_extent(qemu))
    registers = {r.name: (model.regs.read(r), qemu.regs.read(r))
                 for r in (Reg.WIDTH, Reg.HEIGHT, Reg.BYTES_PER_LINE, Reg.ENABLE, Reg.CONFIG_DONE)}
    drained = (_drained(model), _drained(qemu))
    qemu_log = _log_since(qemu, log_start) if log_start is not None else None
    return Result(logs, shots, registers, drained, qemu_log, extent, time.monotonic() - t0)


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

    def run(self, steps: Sequence[Step], mode: tuple[int, int] = (320, 240), *, accel: str = "auto",
            final: bool = True, log: bool = False) -> Result:
        """Reset both sides to ``mode`` and run the stream (see :func:`run_stream`)."""
        model, qemu, shot = self.reset(mode, accel)
        result = run_stream(steps, model, qemu, final=final, log=log)
        result.shots.insert(0, shot)
        self._dirty = max(self._dirty, result.extent)
        self.streams += 1
        return result

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def demo_steps() -> list[Step]:
    """The ``svga demo`` test pattern as one step (800x600, CPU drawing on QEMU's caps)."""
    from svga.tools.demo import draw_demo

    return [Call("svga demo 800x600", lambda dev: draw_demo(dev, 800, 600))]


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m svga.tools.differential [SCRIPT]``: run a command script (or the demo)
    on the model and on QEMU, print the summary, save differing captures as PNGs."""
    ap = argparse.ArgumentParser(prog="python3 -m svga.tools.differential", description=main.__doc__)
    ap.add_argument("script", nargs="?", help="a command script (svga.tools.script); default: the demo")
    ap.add_argument("--qemu-display", choices=("none", "vnc"), default="none")
    ap.add_argument("--mode", default="800x600", help="the mode both devices start in (default 800x600)")
    ap.add_argument("--out", default="differential-out", help="where PNGs of differences go")
    args = ap.parse_args(argv)
    try:
        width, height = (int(v) for v in args.mode.lower().split("x"))
        if args.script:
            from svga.tools.script import parse_script

            with open(args.script) as f:
                steps = from_stream(parse_script(f.read(), args.script))
        else:
            steps = demo_steps()
        with Pair(args.qemu_display) as pair:
            result = pair.run(steps, (width, height), log=True)
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
