"""Tools layer: play a capture on a device (the software model, QEMU through qtest, the PCI
device, or the device inside a lab guest).

:class:`Player` applies each event through the driver: a mode through
:meth:`svga.device.Device.set_mode`, FIFO commands and raw words through the driver's own FIFO
writer (``dev.fifo``), pixels into VRAM at the mode's FB_OFFSET and BYTES_PER_LINE, register
writes as they were (except ID: the version is the replaying driver's to negotiate), FIFO
register writes where the device has them (cursor bypass 3 becomes the legacy cursor registers
where it does not). :func:`replay` walks a stream, calls back at the end of each frame, and
keeps to the capture's timestamps with ``speed="realtime"``.

:func:`lint_for` is the check before a real device: the capture played on the model of that
device (:func:`svga.tools.check.check_stream`); :func:`first_break` names the first command
that would break it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from svga.commands import Command
from svga.device import Device
from svga.errors import SVGAError
from svga.model import ModelTransport
from svga.model.report import Observation
from svga.registers import Cap, FifoCap, FifoReg, Reg
from svga.stream.capture import (
    CaptureError,
    FifoRegWrite,
    Frame,
    Header,
    Pixels,
    RegWrite,
    Time,
    lint_stream,
)
from svga.stream.items import CursorMove, Mode, Raw, Refresh, StreamItem, Sync
from svga.tools.check import Finding, Severity, check_stream

FrameRange = tuple[int, int]


def parse_frames(text: str) -> FrameRange:
    """``A..B`` (inclusive), ``A..`` (to the end), ``..B`` or ``N``."""
    a, dots, b = text.partition("..")
    try:
        lo = int(a) if a else 0
        hi = (int(b) if b else 1 << 32) if dots else lo
    except ValueError:
        raise CaptureError(f"--frames {text!r} is not A..B (frame numbers)") from None
    if lo < 0 or hi < lo:
        raise CaptureError(f"--frames {text!r}: want 0 <= A <= B")
    return lo, hi


def profile_for(dev: Device) -> str:
    """The profile whose model stands for a device (its capabilities)."""
    model = getattr(dev.transport, "profile", None)
    if dev.transport.kind == "model" and getattr(model, "name", None):
        return str(model.name)
    if dev.caps & Cap.EXTENDED_FIFO:
        return "vmware"
    return "qemu-cursor" if dev.caps & Cap.CURSOR else "qemu"


def model_device(profile: str, observations: list[Observation] | None = None, accel: str = "auto") -> Device:
    """The software model of ``profile`` in its non-raising mode (it does what the device
    would, and what it refuses or imitates goes to ``observations``), as a Device."""
    seen = observations if observations is not None else []
    return Device(ModelTransport(profile, observer=seen.append), accel=accel)


def lint_for(items: Iterable[StreamItem], profile: str) -> list[Finding]:
    return check_stream(lint_stream(items), profile)


def first_break(findings: Iterable[Finding]) -> Finding | None:
    return next((f for f in findings if f.severity is Severity.BREAKS), None)


@dataclass
class Player:
    """Applies capture events to one device, in order.

    ``sync``: ``write`` (a :class:`Sync` is one SYNC register write, as recorded) or ``drain``
    (the driver's :meth:`Device.sync`: SYNC until STOP reaches NEXT_CMD, the pointers checked
    after each; the differential tests play streams so). ``batch``: consecutive commands go
    through the driver's batch path (``fifo.write_batch``: one copy and one NEXT_CMD write per
    contiguous run) when the next other item comes or at :meth:`flush`, instead of one
    reserve/commit each."""

    dev: Device
    sync: str = "write"
    batch: bool = False
    commands: int = 0
    pixels_bytes: int = 0
    cursor: dict[str, int] = field(default_factory=dict)
    """Cursor bypass 3 values, for a device that only has the legacy registers."""

    def __post_init__(self) -> None:
        if self.sync not in ("write", "drain"):
            raise CaptureError(f"sync must be write or drain, not {self.sync!r}")
        self.dev.enable()
        self._bypass3 = self.dev.fifo.has_cap(FifoCap.CURSOR_BYPASS_3)
        self._pending: list[bytes] = []

    def start(self, header: Header) -> None:
        """Put the device in the mode the capture started in, if it was in one."""
        w, h, bpp = header.start_mode
        if w and h:
            self._mode(Mode(w, h, bpp), None)

    def play(self, item: StreamItem) -> None:
        """:meth:`apply`, a driver error named by the item's position (``FILE:LINE: ...``)."""
        try:
            self.apply(item)
        except CaptureError:
            raise
        except SVGAError as e:
            raise CaptureError(f"{item.position}: {e}") from None

    def apply(self, item: StreamItem) -> None:
        """Apply one item; the driver's errors come out as they are."""
        ev = item.event
        if isinstance(ev, Command):
            if self.batch:
                self._pending.append(ev.encode())
            else:
                self._write(item, ev.encode())
            self.commands += 1
            return
        if self._pending:
            self.flush()
        if isinstance(ev, Raw):
            self._write(item, np.array(ev.words, dtype="<u4").tobytes())
        elif isinstance(ev, Pixels):
            self._pixels(item, ev)
        elif isinstance(ev, Mode):
            self._mode(ev, item)
        elif isinstance(ev, Sync):
            if self.sync == "drain":
                self.dev.sync()
            else:
                self.dev.regs.write(Reg.SYNC, 1)
        elif isinstance(ev, Refresh):
            self.dev.transport.display_image()
        elif isinstance(ev, CursorMove):
            regs = self.dev.regs
            regs.write(Reg.CURSOR_X, ev.x & 0xFFFFFFFF)
            regs.write(Reg.CURSOR_Y, ev.y & 0xFFFFFFFF)
            if ev.show is not None:
                regs.write(Reg.CURSOR_ON, int(ev.show))
        elif isinstance(ev, RegWrite):
            if ev.index != Reg.ID:
                self.dev.regs.write(ev.index, ev.value)
        elif isinstance(ev, FifoRegWrite):
            self._fifo_reg(ev)

    def flush(self) -> None:
        """Write the commands a batching player holds (``fifo.write_batch``)."""
        pending, self._pending = self._pending, []
        if pending:
            self.dev.fifo.write_batch(pending)

    def _write(self, item: StreamItem, data: bytes) -> None:
        fifo = self.dev.fifo
        if not data:
            return
        if len(data) >= fifo.ring_bytes:
            raise CaptureError(f"{item.position}: a {len(data)}-byte command does not fit this device's "
                               f"{fifo.ring_bytes}-byte FIFO ring")
        fifo.write_command(data)

    def _mode(self, ev: Mode, item: StreamItem | None) -> None:
        dev = self.dev
        where = f"{item.position}: " if item is not None else "start mode: "
        if ev.bpp != 32:
            raise CaptureError(f"{where}mode {ev.width}x{ev.height}x{ev.bpp}: only 32 bpp modes replay")
        if not (1 <= ev.width <= dev.max_width and 1 <= ev.height <= dev.max_height):
            raise CaptureError(f"{where}mode {ev.width}x{ev.height} is beyond the device's largest, "
                               f"{dev.max_width}x{dev.max_height}")
        dev.set_mode(ev.width, ev.height, ev.bpp)

    def _pixels(self, item: StreamItem, ev: Pixels) -> None:
        mode = self.dev.mode
        if mode is None:
            raise CaptureError(f"{item.position}: pixels before any mode")
        if ev.x + ev.width > mode.width or ev.y + ev.height > mode.height:
            raise CaptureError(f"{item.position}: pixels {ev.x},{ev.y} {ev.width}x{ev.height} are out of "
                               f"range of the {mode.width}x{mode.height} mode")
        vram = self.dev.transport.vram
        rows = np.frombuffer(ev.data, "<u4").reshape(ev.height, ev.width)
        if ev.x == 0 and ev.width * 4 == mode.pitch:
            vram.write(mode.fb_offset + ev.y * mode.pitch, rows)
        else:
            for r in range(ev.height):
                vram.write(mode.fb_offset + (ev.y + r) * mode.pitch + ev.x * 4, rows[r])
        self.pixels_bytes += len(ev.data)

    def _fifo_reg(self, ev: FifoRegWrite) -> None:
        fifo = self.dev.fifo
        if self._bypass3 and fifo.reg_valid(ev.index):
            mem = self.dev.transport.fifo
            mem.write32(ev.index * 4, ev.value)
            mem.flush()
            return
        names = {FifoReg.CURSOR_ON: "on", FifoReg.CURSOR_X: "x", FifoReg.CURSOR_Y: "y"}
        if ev.index in names:
            self.cursor[names[FifoReg(ev.index)]] = ev.value
        elif ev.index == FifoReg.CURSOR_COUNT and self.dev.has_cursor:
            # The device has no cursor bypass 3: the legacy registers say the same.
            regs = self.dev.regs
            regs.write(Reg.CURSOR_ID, 0)
            regs.write(Reg.CURSOR_X, self.cursor.get("x", 0))
            regs.write(Reg.CURSOR_Y, self.cursor.get("y", 0))
            regs.write(Reg.CURSOR_ON, 1 if self.cursor.get("on", 0) else 0)

    def screen(self, cursor: bool = False) -> np.ndarray:
        """What the device shows now, (h, w, 3) RGB, after the FIFO is drained."""
        self.flush()
        return self.dev.screenshot_array("display", cursor=cursor)


FrameEnd = Callable[[int, Player], None]


def replay(items: Iterable[StreamItem], player: Player, header: Header, *,
           frames: FrameRange | None = None, speed: str = "max", on_frame_end: FrameEnd | None = None,
           progress: Callable[[int, int], None] | None = None, on_item: Callable[[int, StreamItem], None]
           | None = None) -> int:
    """Play ``items`` on ``player``'s device; ``on_frame_end(n, player)`` after each frame in
    ``frames`` (all by default); stops after the last frame of ``frames``. Returns the frames
    seen. ``speed``: ``max`` or ``realtime`` (sleep to the capture's ``time`` events inside
    ``frames``). ``progress(items, frame)`` is called now and then."""
    if speed not in ("max", "realtime"):
        raise CaptureError(f"speed must be max or realtime, not {speed!r}")
    lo, hi = frames if frames is not None else (0, 1 << 32)
    player.start(header)
    frame, seen, t_start, us0 = 0, 1, time.monotonic(), None
    count = 0
    for count, item in enumerate(items, 1):
        ev = item.event
        if isinstance(ev, Frame):
            if count > 1:  # a marker first only names the first frame
                player.flush()
                if on_frame_end is not None and lo <= frame <= hi:
                    on_frame_end(frame, player)
                if frame >= hi:
                    return seen
                seen += 1
            frame = ev.n
            continue
        if isinstance(ev, Time):
            if speed == "realtime" and lo <= frame <= hi:
                if us0 is None:
                    us0, t_start = ev.us, time.monotonic()
                wait = (ev.us - us0) / 1e6 - (time.monotonic() - t_start)
                if wait > 0:
                    time.sleep(wait)
            continue
        player.play(item)
        if on_item is not None:
            on_item(count, item)
        if progress is not None and count % 512 == 0:
            progress(count, frame)
    player.flush()
    if on_frame_end is not None and lo <= frame <= hi:
        on_frame_end(frame, player)
    if progress is not None:
        progress(count, frame)
    return seen
