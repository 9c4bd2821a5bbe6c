"""Driver layer: the SVGA II device as a user sees it.

    from svga.device import open_device

    with open_device("auto") as dev:          # "model", "qemu", or a PCI address too
        dev.set_mode(1024, 768)               # 32 bpp
        dev.framebuffer[:] = 0x202040         # a numpy (height, width) uint32 view, 0x00RRGGBB
        dev.update()                          # show it
        dev.fill(0xFF0000, 10, 10, 100, 50)   # device fill when offered, else CPU + UPDATE
        dev.copy(10, 10, 200, 10, 100, 50)
        dev.define_cursor(rgba, hotspot=(0, 0)); dev.move_cursor(300, 200)
        dev.wait_fence(dev.fence()); dev.sync()
        dev.screenshot().save("out.png")      # Pillow image of what the screen shows

It negotiates the version (ID_2, then ID_1, ID_0), reads the capabilities, and gates
every optional feature on them: the FIFO commands it sends are only those the device
promises to handle (on QEMU: UPDATE, RECT_FILL, RECT_COPY, DEFINE_CURSOR with the cursor
capability; never FENCE, UPDATE_VERBOSE or Screen Object commands). Leaving the ``with``
block drains the FIFO and hides the cursor; the mode stays up so what was drawn stays
visible (``close(disable=True)`` returns the device to VGA).
"""

from __future__ import annotations

import logging
import os
import struct
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from svga import commands, pixels
from svga.errors import DeviceError, SVGAError, UnsupportedDevice
from svga.facts.kit import KIT_CURSOR_MAX, largest_command
from svga.facts.qemu import QEMU_CURSOR_LIMITS
from svga.fifo import Fifo
from svga.registers import (
    SVGA_ID_0,
    SVGA_ID_1,
    SVGA_ID_2,
    SVGA_ID_INVALID,
    Cap,
    FifoCap,
    FifoReg,
    Reg,
    RegisterFile,
    flag_names,
)
from svga.transport.base import Transport

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

ACCEL_CHOICES = ("auto", "on", "off")
PAGE = 4096
CURSOR_MAX = QEMU_CURSOR_LIMITS.largest_square(32)
"""Largest AND/XOR hardware cursor this driver defines: QEMU's limit for 32 bpp XOR masks (64),
so the same cursor works on every device. Alpha cursors (never on QEMU) may be up to
:data:`svga.facts.kit.KIT_CURSOR_MAX` a side (docs/svga-kit.md 'Cursors')."""
_SCREEN_CAPS = FifoCap.SCREEN_OBJECT | FifoCap.SCREEN_OBJECT_2
# Plain ints for the per-call paths (an enum member costs an attribute lookup each time).
_UPDATE = int(commands.Cmd.UPDATE)
_RECT_FILL = int(commands.Cmd.RECT_FILL)
_RECT_COPY = int(commands.Cmd.RECT_COPY)
_pack_update = commands.codec(_UPDATE).struct.pack  # the command table's layout, made once
_FILL_CORE: list[Any] = []
"""The maker of Device.fill's compiled cores (svga/device.c), once loaded; [None]: not used."""


def _fill_core_maker() -> Any:
    """Load svga/device.c once (docs/native.md 'Building'): its svga_fill_core, which makes one
    core per framebuffer and FIFO, or None (no compiler, SVGA_NATIVE=0, a big-endian machine, a
    python that does not export its C API): then Device.fill's Python code runs alone."""
    if _FILL_CORE:
        return _FILL_CORE[0]
    import ctypes
    import sys
    from pathlib import Path

    from svga import native

    make = None
    lib = native.load(Path(__file__).with_name("device.c")) if sys.byteorder == "little" else None
    if lib is not None:
        try:
            make = ctypes.PyDLL(lib._name).svga_fill_core  # keeps the GIL: the core is Python C API
            make.argtypes, make.restype = [ctypes.py_object] * 2, ctypes.py_object
        except (OSError, AttributeError):
            make = None
    _FILL_CORE.append(make)
    return make


@dataclass(frozen=True)
class ScreenInfo:
    """A Screen Object this driver defined: id, size and root in virtual coordinates."""

    id: int
    width: int
    height: int
    x: int
    y: int
    flags: int


@dataclass(frozen=True)
class Mode:
    width: int
    height: int
    bpp: int
    pitch: int  # BYTES_PER_LINE
    fb_offset: int


class Device:
    """One SVGA II device over a transport. See the module docstring for a tour."""

    def __init__(self, transport: Transport, accel: str = "auto") -> None:
        if accel not in ACCEL_CHOICES:
            raise SVGAError(f"accel must be one of {', '.join(ACCEL_CHOICES)}, not {accel!r}")
        self.transport = transport
        self.regs = RegisterFile(transport)
        #: "auto", "on" or "off": whether fill() and copy() use RECT_FILL / RECT_COPY. A
        #: public attribute: change it at any time.
        self.accel = accel
        self.version = self._negotiate()
        self.caps = Cap(self.regs.read(Reg.CAPABILITIES)) if self.version >= 1 else Cap(0)
        self.vram_size = self.regs.read(Reg.VRAM_SIZE)
        self.fb_size = self.regs.read(Reg.FB_SIZE)
        self.mem_size = self.regs.read(Reg.MEM_SIZE) if self.version >= 1 else transport.fifo.size
        self.max_width = self.regs.read(Reg.MAX_WIDTH)
        self.max_height = self.regs.read(Reg.MAX_HEIGHT)
        mem_regs = self.regs.read(Reg.MEM_REGS) if self.caps & Cap.EXTENDED_FIFO else 0
        self.fifo = Fifo(self.regs, transport.fifo, self.caps, mem_regs, self.mem_size, transport=transport)
        self._extended = bool(self.caps & Cap.EXTENDED_FIFO)
        self._fill_offered, self._fill_epoch = False, -1  # see _offers_fill
        self.mode: Mode | None = None
        self._fb: np.ndarray | None = None
        self._shadow = False
        self._cursor_count = 0
        self._closed = False
        self._device_draws = False
        """An accelerated command (RECT_FILL, RECT_COPY) was sent since the last sync: the
        device may still write the framebuffer (docs/svga-kit.md 'Sync before CPU drawing')."""
        self.screens: dict[int, ScreenInfo] = {}
        """The Screen Objects this driver defined (define_screen), by id."""
        self._staging_fence: int | None = None

    # -- negotiation and facts ------------------------------------------------------------
    def _negotiate(self) -> int:
        """Write the newest ID we speak and read it back; fall back to older ones."""
        for version, ident in ((2, SVGA_ID_2), (1, SVGA_ID_1), (0, SVGA_ID_0)):
            self.regs.write(Reg.ID, ident)
            if self.regs.read(Reg.ID) == ident:
                return version
        raise UnsupportedDevice(
            f"{self.transport.description or 'device'} accepts none of SVGA_ID_2, _1, _0 "
            f"(ID reads 0x{self.regs.read(Reg.ID):08x}): not an SVGA II device"
        )

    @property
    def fifo_caps(self) -> FifoCap:
        return self.fifo.fifo_caps

    def has(self, cap: Cap) -> bool:
        return bool(self.caps & cap)

    def info(self) -> dict[str, Any]:
        """Everything ``svga info`` shows, as plain data."""
        self._check_open()
        if not self.fifo.initialised and self.caps & Cap.EXTENDED_FIFO:
            fifo_caps = FifoCap(self.transport.fifo.read32(FifoReg.CAPABILITIES * 4))
        else:
            fifo_caps = self.fifo_caps
        width = self.regs.read(Reg.WIDTH)
        height = self.regs.read(Reg.HEIGHT)
        return {
            "device": self.transport.description,
            "transport": self.transport.kind,
            "version": self.version,
            "capabilities": int(self.caps),
            "capability_names": flag_names(int(self.caps), Cap),
            "fifo_capabilities": int(fifo_caps),
            "fifo_capability_names": flag_names(int(fifo_caps), FifoCap),
            "vram_size": self.vram_size,
            "fb_size": self.fb_size,
            "fifo_size": self.mem_size,
            "max_mode": (self.max_width, self.max_height),
            "mode": {
                "enabled": self.regs.read(Reg.ENABLE),
                "width": width,
                "height": height,
                "bpp": self.regs.read(Reg.BITS_PER_PIXEL),
                "depth": self.regs.read(Reg.DEPTH),
                "bytes_per_line": self.regs.read(Reg.BYTES_PER_LINE),
                "fb_offset": self.regs.read(Reg.FB_OFFSET),
            },
        }

    # -- enabling and modes ---------------------------------------------------------------
    def enable(self) -> None:
        """Lay out the FIFO, enable SVGA mode and the FIFO (kit: SVGA_Enable)."""
        self._check_open()
        if not self.fifo.initialised:
            self.fifo.init()

    def _check_open(self) -> None:
        if self._closed:
            raise SVGAError("the device is closed: open it again (svga.device.open_device)")

    def set_mode(self, width: int, height: int, bpp: int = 32) -> Mode:
        """Switch to ``width`` x ``height`` at 32 bpp, and check the device took it."""
        self._check_open()
        if bpp != 32:
            raise SVGAError(f"only 32 bpp modes are supported, not {bpp}")
        no_gfb = (width, height) == (0, 0) and self.has_screen_objects
        if not no_gfb and not (1 <= width <= self.max_width and 1 <= height <= self.max_height):
            raise SVGAError(
                f"mode {width}x{height} is outside the device's 1x1..{self.max_width}x{self.max_height}"
                + (" (0x0, no legacy framebuffer, needs Screen Objects)" if (width, height) == (0, 0) else "")
            )
        if width * height * 4 > self.fb_size:
            raise SVGAError(
                f"mode {width}x{height}x32 needs {width * height * 4} bytes; "
                f"the framebuffer has {self.fb_size}"
            )
        if self.fifo.initialised:
            self.fifo.sync()  # commands already queued refer to the old mode
        self.regs.write(Reg.WIDTH, width)
        self.regs.write(Reg.HEIGHT, height)
        self.regs.write(Reg.BITS_PER_PIXEL, bpp)
        self.enable()
        self.regs.write(Reg.ENABLE, 1)
        got_w, got_h = self.regs.read(Reg.WIDTH), self.regs.read(Reg.HEIGHT)
        pitch, offset = self.regs.read(Reg.BYTES_PER_LINE), self.regs.read(Reg.FB_OFFSET)
        if (got_w, got_h) != (width, height):
            raise DeviceError(f"the device did not take mode {width}x{height}: it reads {got_w}x{got_h}")
        if not self.regs.read(Reg.CONFIG_DONE):
            # QEMU clears CONFIG_DONE on a BITS_PER_PIXEL write it does not like.
            self.regs.write(Reg.CONFIG_DONE, 1)
        if pitch < width * 4 or pitch % 4 or offset % 4 or \
                offset + pitch * height > min(self.fb_size, self.transport.vram.size):
            raise DeviceError(
                f"the device reports BYTES_PER_LINE={pitch}, FB_OFFSET={offset} for {width}x{height}: "
                f"that does not fit the framebuffer (FB_SIZE {self.fb_size}, "
                f"{self.transport.vram.size} bytes of VRAM mapped)"
            )
        old, self.mode = self.mode, Mode(width, height, bpp, pitch, offset)
        self._map_framebuffer()
        if old is None or (old.width, old.height, old.pitch) != (width, height, pitch):
            # svga_reg.h: a mode change deletes every screen but the legacy one
            # (docs/svga-kit.md 'Choices where the kit is ambiguous': only a changed value counts).
            self.screens.clear()
        return self.mode

    def adopt_mode(self) -> Mode:
        """Take the mode the device is in now (set by an earlier program) without changing it."""
        self._check_open()
        if not self.regs.read(Reg.ENABLE):
            raise SVGAError("the device is not in SVGA mode: no mode to take a screenshot of")
        width, height = self.regs.read(Reg.WIDTH), self.regs.read(Reg.HEIGHT)
        pitch, offset = self.regs.read(Reg.BYTES_PER_LINE), self.regs.read(Reg.FB_OFFSET)
        if not width or not height or pitch < width * 4 or pitch % 4 or offset % 4 or \
                offset + pitch * height > min(self.fb_size, self.transport.vram.size):
            raise DeviceError(
                f"the device reports an unusable mode {width}x{height}, {pitch} bytes/line"
            )
        self.mode = Mode(width, height, 32, pitch, offset)
        self._map_framebuffer()
        return self.mode

    def _need_mode(self) -> Mode:
        self._check_open()
        if self.mode is None:
            raise SVGAError("no mode set: call set_mode() first")
        return self.mode

    def _map_framebuffer(self) -> None:
        mode = self._need_mode()
        rows = np.empty(0)
        arr = self.transport.vram.array()
        nbytes = mode.pitch * mode.height
        if mode.fb_offset < 0 or mode.fb_offset + nbytes > self.transport.vram.size:
            raise DeviceError(f"the framebuffer (FB_OFFSET {mode.fb_offset}, {nbytes} bytes) runs past "
                              f"the {self.transport.vram.size} bytes of VRAM")
        if arr is not None:
            rows = arr[mode.fb_offset: mode.fb_offset + nbytes]
            self._shadow = False
        else:
            # No direct mapping (qtest): draw into a shadow copy, uploaded by update().
            rows = np.frombuffer(bytearray(self.transport.vram.read(mode.fb_offset, nbytes)), np.uint8)
            self._shadow = True
        self._fb = rows.view("<u4").reshape(mode.height, mode.pitch // 4)

    @property
    def framebuffer(self) -> np.ndarray:
        """The visible framebuffer as a writable (height, width) uint32 array, 0x00RRGGBB.
        Draw into it, then call :meth:`update` for the area you changed.

        The kit: "After issuing an accelerated command, the FIFO should be sync'd ... before
        writing to the frame buffer" (docs/svga-kit.md 'Sync before CPU drawing'): while a
        fill or copy of the device may be pending, this syncs the FIFO before it hands the
        array out. Take it again after :meth:`fill` or :meth:`copy` rather than keep it."""
        mode = self._need_mode()
        assert self._fb is not None
        self._settle()
        return self._fb[:, : mode.width]

    def _settle(self) -> None:
        """Sync the FIFO if the device may still write the framebuffer (an accelerated command)."""
        if self._device_draws:
            self.fifo.sync()
            self._device_draws = False

    # -- drawing ----------------------------------------------------------------------------
    def _check_rect(self, what: str, x: int, y: int, w: int, h: int) -> None:
        mode = self._need_mode()
        if w < 0 or h < 0 or x < 0 or y < 0 or x + w > mode.width or y + h > mode.height:
            raise SVGAError(
                f"{what} rectangle {x},{y} {w}x{h} is outside the {mode.width}x{mode.height} mode"
            )

    def _upload(self, x: int, y: int, w: int, h: int) -> None:
        """Shadowed framebuffer: send the rectangle to VRAM. Whole-width rectangles are one
        contiguous write; narrower ones one write per row (a write-combining transport
        sends them as a batch)."""
        if not self._shadow or w <= 0 or h <= 0:
            return
        mode = self._need_mode()
        assert self._fb is not None
        vram = self.transport.vram
        if x == 0 and w == mode.width:
            vram.write(mode.fb_offset + y * mode.pitch, self._fb[y: y + h].reshape(-1))
            return
        for row in range(y, y + h):
            vram.write(mode.fb_offset + row * mode.pitch + x * 4, self._fb[row, x: x + w])

    def _reread(self, x: int, y: int, w: int, h: int) -> None:
        """Shadowed framebuffer after the device drew into it: take what VRAM now holds
        (not a prediction: QEMU may drop or misplace a fill, see the stale-stride quirk)."""
        if not self._shadow:
            return
        self.sync()
        mode = self._need_mode()
        assert self._fb is not None
        for row in range(y, y + h):
            raw = self.transport.vram.read(mode.fb_offset + row * mode.pitch + x * 4, w * 4)
            self._fb[row, x: x + w] = np.frombuffer(raw, "<u4")

    def update(self, x: int = 0, y: int = 0, width: int | None = None, height: int | None = None) -> None:
        """Show a rectangle of the framebuffer (all of it by default): SVGA_CMD_UPDATE."""
        # The commonest call in as few steps as give the same results (issue 19: each line costs
        # about a microsecond in a TCG guest): one test that a mode is set, the sizes given and the
        # rectangle non-empty and inside it, then the pre-bound in-place writer; anything else (and
        # every error) takes _update_general.
        mode = self.mode
        if mode is None or self._closed or width is None or height is None or x < 0 or y < 0 \
                or width <= 0 or height <= 0 or x + width > mode.width or y + height > mode.height \
                or self._shadow:
            self._update_general(x, y, width, height)
            return
        try:
            put = self._update_put
        except AttributeError:
            put = self._update_put = self._update_writer()
        if not put(x, y, width, height):
            self._update_send(x, y, width, height)

    def _update_writer(self) -> Any:
        """For :meth:`update`, made once (the FIFO object never changes): ``put(x, y, w, h)``
        writes the UPDATE in place and returns True when the device has no extended FIFO (QEMU),
        the FIFO is mapped, has no commit
        listener, no open reservation and no FIFO_CAP_RESERVE, and the room up to MAX (or STOP)
        last seen holds the command contiguously, keeping one dword free; else it writes nothing
        (or, on a value the layout cannot pack, only bytes past NEXT_CMD) and returns False. The
        same words in the same place with one NEXT_CMD update as :meth:`Fifo.write_words`' usual
        case: the whole command first, then NEXT_CMD (docs/qemu-7.2.md 'Reserve and commit')."""
        fifo = self.fifo
        b, w = fifo._b, fifo._w
        codec = commands.codec(_UPDATE)
        # Without FIFO_CAP_RESERVE the kit commits a word at a time, since a device need keep
        # only STOP..NEXT_CMD (docs/qemu-7.2.md 'Reserve and commit'); QEMU (the device without
        # the extended FIFO) only reads its FIFO and needs the whole command first. So the
        # one-store writer is for that device; elsewhere the general path follows the kit.
        if b is None or w is None or self._extended:
            def never(x: int, y: int, width: int, height: int) -> bool:
                return False
            return never
        pack_into, size, lo, hi = codec.struct.pack_into, codec.nbytes, fifo.min, fifo.max
        next_cmd = int(FifoReg.NEXT_CMD)

        def put(x: int, y: int, width: int, height: int) -> bool:
            nxt = fifo._next
            stop = fifo._stop
            end = nxt + size
            if fifo.listener is None and fifo._reserved is None and not fifo._reserveable and (
                    (end < stop) if nxt < stop else (end < hi or (end == hi and stop > lo))):
                try:
                    pack_into(b, nxt, _UPDATE, x, y, width, height)
                except struct.error:
                    return False  # the general path names the bad field
                if end == hi:
                    end = lo
                w[next_cmd] = end
                fifo._next = end
                return True
            return False
        return put

    def _update_general(self, x: int, y: int, width: int | None, height: int | None) -> None:
        """:meth:`update` for every case but the commonest: default sizes, a shadowed
        framebuffer, an empty rectangle, and the errors."""
        mode = self.mode
        if mode is None or self._closed:
            mode = self._need_mode()  # raises
        w = mode.width - x if width is None else width
        h = mode.height - y if height is None else height
        if w < 0 or h < 0 or x < 0 or y < 0 or x + w > mode.width or y + h > mode.height:
            self._check_rect("update", x, y, w, h)  # raises
        if w == 0 or h == 0:
            return
        if self._shadow:
            self._upload(x, y, w, h)
        self._update_send(x, y, w, h)

    def _update_send(self, x: int, y: int, w: int, h: int) -> None:
        """Send UPDATE x, y, w, h through the FIFO's general paths."""
        try:
            data = _pack_update(_UPDATE, x, y, w, h)
        except struct.error:
            data = commands.encode(_UPDATE, x=x, y=y, width=w, height=h)  # names the bad field
        fifo = self.fifo
        if fifo.listener is None:
            # One copy and one NEXT_CMD update, as every batch is written (Fifo.write_words):
            # the device never sees part of the command. The cheapest send in a TCG guest
            # (issue 19); with a commit listener (a capture), the kit's commit as it records it.
            fifo.write_words(data)
        else:
            fifo.write_command(data)

    def _use_accel(self, cmd: int) -> bool:
        accel = self.accel
        if accel == "off" or not self.fifo.offers(cmd):
            return False
        if accel == "on":
            return True
        # auto: QEMU (the device without the extended FIFO) fills and copies against the
        # display surface of its last refresh, which lags mode changes and never catches up
        # headless (docs/qemu-7.2.md, stale-stride quirk). CPU drawing + UPDATE is right there.
        return self._extended

    def fill(self, color: int, x: int, y: int, width: int, height: int) -> None:
        """Fill a rectangle with a 0x00RRGGBB colour."""
        # The commonest call first, in as few steps as give the same results: one test that the
        # mode is set and the rectangle non-empty and inside it (an or-chain: cheaper than chained
        # comparisons); the full checks (and their errors, and the empty rectangle's return) when
        # that test fails.
        mode = self.mode
        if mode is None or self._closed or x < 0 or y < 0 or width <= 0 or height <= 0 \
                or x + width > mode.width or y + height > mode.height:
            self._check_rect("fill", x, y, width, height)  # raises: no mode, closed, or outside it
            if width == 0 or height == 0:
                return
        fifo = self.fifo
        # _use_accel() inlined, the offer first (not offered: the CPU draws, whatever accel says),
        # then accel: off, else on, or auto on the extended FIFO.
        if (self._fill_offered if self._fill_epoch == fifo.offers_epoch else self._offers_fill()) and (
                self.accel == "on" or (self.accel != "off" and self._extended)):
            fifo.send_values(_RECT_FILL, color & 0xFFFFFFFF, x, y, width, height)
            self._device_draws = True
            if self._shadow:
                self._reread(x, y, width, height)
            return
        if self._device_draws:
            self._settle()  # the device may still be drawing (docs/svga-kit.md 'Sync before CPU drawing')
        # The compiled core (svga/device.c): the fill and the in-place UPDATE in one call, where
        # the framebuffer and the FIFO are plain mapped memory; it writes nothing when it does not
        # take the call, and the Python lines below then run (docs/native.md 'Same results').
        core = self._fill_core if self._fill_core_fb() is self._fb else self._bind_fill_core()
        if core is not None and fifo.fill_update(core, color, x, y, width, height):
            return
        # ndarray.fill of the view: the scalar goes in raw, without setitem's broadcasting. (A
        # mode is set, so the framebuffer is mapped.)
        self._fb[y: y + height, x: x + width].fill(color & 0xFFFFFFFF)  # type: ignore[index]
        if self._shadow:
            self._upload(x, y, width, height)
        fifo.send_update(x, y, width, height)  # names a bad field as commands.encode does

    # Device.fill's compiled core, bound to this device's framebuffer and FIFO memory: made
    # again whenever the framebuffer array changes (a new mode, close), and None where the core
    # is not used (no core, a shadow framebuffer, memory that is not plainly addressable). The
    # framebuffer is held by a weak reference, so that close() still lets its mapping go; the
    # FIFO's bytes view (Fifo._b, the one its Python paths write) lives as long as the Fifo.
    _fill_core: Any = None
    _fill_core_fb: Any = staticmethod(lambda: False)

    def _bind_fill_core(self) -> Any:
        """Bind the compiled core (svga/device.c) to the framebuffer and the FIFO memory, where
        both are mapped little-endian memory; None otherwise."""
        fb, mode, fifo = self._fb, self.mode, self.fifo
        self._fill_core_fb, self._fill_core = weakref.ref(fb) if fb is not None else (lambda: False), None
        make = _fill_core_maker()
        if make is None or fb is None or mode is None or self._shadow or fifo._b is None:
            return None
        ring = np.frombuffer(fifo._b, np.uint8)
        if fb.dtype != np.dtype("<u4") or fb.ndim != 2 or fb.strides[1] != 4 or fb.strides[0] % 4 \
                or not fb.flags.writeable or fb.ctypes.data % 4 or fb.shape[0] != mode.height \
                or mode.width > fb.shape[1]:
            return None
        if ring is None or ring.dtype != np.uint8 or ring.ndim != 1 or not ring.flags.c_contiguous \
                or not ring.flags.writeable or ring.ctypes.data % 4:
            return None
        size = len(ring)  # whole words, at most the memory's size (svga/fifo.py _word_views)
        ctx = struct.pack("<8q", fb.ctypes.data, fb.strides[0] // 4, mode.width, mode.height,
                          ring.ctypes.data, size, fifo.min, fifo.max)
        try:
            core = make(ctx, int)
        except (ValueError, OSError):
            return None
        self._fill_core = core
        return core

    def _offers_fill(self) -> bool:
        """fifo.offers(RECT_FILL), kept until the FIFO is initialised again."""
        self._fill_offered = self.fifo.offers(_RECT_FILL)
        self._fill_epoch = self.fifo.offers_epoch
        return self._fill_offered

    def copy(self, src_x: int, src_y: int, dest_x: int, dest_y: int, width: int, height: int) -> None:
        """Copy a rectangle within the screen (overlap-safe)."""
        self._check_rect("copy source", src_x, src_y, width, height)
        self._check_rect("copy destination", dest_x, dest_y, width, height)
        if width == 0 or height == 0:
            return
        if self._use_accel(_RECT_COPY):
            self.fifo.send_values(_RECT_COPY, src_x, src_y, dest_x, dest_y, width, height)
            self._device_draws = True
            self._reread(dest_x, dest_y, width, height)
            return
        fb = self.framebuffer
        # A copy of the source first: overlapping copies read the source as it was.
        fb[dest_y: dest_y + height, dest_x: dest_x + width] = fb[src_y: src_y + height,
                                                                 src_x: src_x + width].copy()
        self.update(dest_x, dest_y, width, height)


    # -- Screen Objects (multi-monitor) ---------------------------------------------------
    @property
    def has_screen_objects(self) -> bool:
        """Whether the device offers Screen Objects (SVGA_FIFO_CAP_SCREEN_OBJECT or _2)."""
        self.enable()
        return bool(self.fifo_caps & _SCREEN_CAPS)

    def _need_screen_objects(self, what: str) -> None:
        if not self.has_screen_objects:
            name = self.transport.description or "this device"
            raise SVGAError(f"{what} needs Screen Objects (SVGA_FIFO_CAP_SCREEN_OBJECT or "
                            f"SVGA_FIFO_CAP_SCREEN_OBJECT_2), which {name} does not offer")

    def define_screen(self, screen_id: int, width: int, height: int, x: int = 0, y: int = 0, *,
                      primary: bool | None = None, blank: bool = False) -> ScreenInfo:
        """Define (or redefine: move, resize, blank) Screen Object ``screen_id``, ``width`` x
        ``height`` rooted at virtual (x, y). Screen 0 replaces the legacy screen of the mode
        (``set_mode(0, 0)`` first if no legacy framebuffer is wanted). ``primary`` defaults to
        screen 0 being the primary screen; ``blank`` shows it black, keeping its contents."""
        self._check_open()
        self._need_screen_objects("define_screen")
        if not (0 <= screen_id < SVGA_ID_INVALID):
            raise SVGAError(f"screen id {screen_id} is not a small non-negative integer")
        if not (1 <= width <= self.max_width and 1 <= height <= self.max_height):
            raise SVGAError(f"screen {width}x{height} is outside 1x1..{self.max_width}x{self.max_height}")
        if not (-(1 << 31) <= x < (1 << 31) and -(1 << 31) <= y < (1 << 31)):
            raise SVGAError(f"screen root {x},{y} does not fit signed 32-bit coordinates")
        flags = commands.SCREEN_MUST_BE_SET
        if primary if primary is not None else screen_id == 0:
            flags |= commands.SCREEN_IS_PRIMARY
        if blank:
            flags |= commands.SCREEN_BLANKING
        if self.fifo_caps & FifoCap.SCREEN_OBJECT:
            self.fifo.send(commands.Cmd.DEFINE_SCREEN, struct_size=commands.SCREEN_OBJECT_V1_SIZE,
                           id=screen_id, flags=flags, width=width, height=height, root_x=x, root_y=y,
                           extension=b"")
        else:  # SCREEN_OBJECT_2 only: a backing store in the GFB is required
            offset = self._backing_store(screen_id, width * 4 * height)
            ext = struct.pack("<4I", commands.GMR_FRAMEBUFFER, offset, width * 4, 0)
            self.fifo.send(commands.Cmd.DEFINE_SCREEN, struct_size=commands.SCREEN_OBJECT_V2_SIZE,
                           id=screen_id, flags=flags, width=width, height=height, root_x=x, root_y=y,
                           extension=ext)
        info = ScreenInfo(screen_id, width, height, x, y, flags)
        self.screens[screen_id] = info
        return info

    def _backing_store(self, screen_id: int, size: int) -> int:
        """A page-aligned VRAM area for an SCREEN_OBJECT_2 backing store, from the top of VRAM
        down, one slot per screen id (the guest must not touch it)."""
        slot = (size + PAGE - 1) // PAGE * PAGE
        offset = self.vram_size - (screen_id + 1) * slot
        if offset < self._staging_base():
            raise SVGAError(f"no room in the {self.vram_size}-byte VRAM for the backing store of "
                            f"screen {screen_id}")
        return offset

    def move_screen(self, screen_id: int, x: int, y: int) -> ScreenInfo:
        """Move a screen this driver defined to virtual (x, y), keeping its size and contents."""
        info = self._screen(screen_id)
        return self.define_screen(screen_id, info.width, info.height, x, y,
                                  primary=bool(info.flags & commands.SCREEN_IS_PRIMARY),
                                  blank=bool(info.flags & commands.SCREEN_BLANKING))

    def destroy_screen(self, screen_id: int) -> None:
        """Destroy a screen (its id can be used again at once)."""
        self._check_open()
        self._need_screen_objects("destroy_screen")
        self.fifo.send(commands.Cmd.DESTROY_SCREEN, screen_id=screen_id)
        self.screens.pop(screen_id, None)

    def _screen(self, screen_id: int) -> ScreenInfo:
        self._check_open()
        self._need_screen_objects("a screen operation")
        info = self.screens.get(screen_id)
        if info is None:
            raise SVGAError(f"screen {screen_id} was not defined by this driver (define_screen first); "
                            f"defined: {sorted(self.screens) or 'none'}")
        return info

    def _staging_base(self) -> int:
        """Where the blit staging area starts: the first page after the legacy framebuffer."""
        mode = self.mode
        end = 0 if mode is None else mode.fb_offset + mode.pitch * mode.height
        return (end + PAGE - 1) // PAGE * PAGE

    def _staging(self, nbytes: int) -> int:
        """The staging area's offset, once the device is done with what was last staged (the
        kit's rule: do not modify a blit's source until the device has passed its fence)."""
        base = self._staging_base()
        if base + nbytes > self.vram_size:
            raise SVGAError(f"a {nbytes}-byte blit does not fit in VRAM after the framebuffer "
                            f"({self.vram_size - base} bytes free)")
        if self._staging_fence is not None:
            self.fifo.sync_to_fence(self._staging_fence)
            self._staging_fence = None
        return base

    def blit_to_screen(self, screen_id: int, image: np.ndarray, x: int = 0, y: int = 0) -> None:
        """Blit an image to a screen at screen-relative (x, y), clipped by the device to the
        screens it covers: (h, w) uint32 0x00RRGGBB or (h, w, 3) uint8 RGB. The image is staged
        in VRAM after the framebuffer and sent with DEFINE_GMRFB + BLIT_GMRFB_TO_SCREEN."""
        self._screen(screen_id)
        words = np.asarray(image)
        if words.ndim == 3 and words.shape[2] == 3:
            words = pixels.from_rgb(words.astype(np.uint8))
        if words.ndim != 2:
            raise SVGAError("a screen image must be (height, width) uint32 or (height, width, 3) uint8")
        h, w = words.shape
        if w == 0 or h == 0:
            return
        offset = self._staging(w * h * 4)
        self.transport.vram.write(offset, np.ascontiguousarray(words, dtype="<u4").reshape(-1))
        self.transport.vram.flush()
        self.fifo.send(commands.Cmd.DEFINE_GMRFB, gmr_id=commands.GMR_FRAMEBUFFER, offset=offset,
                       bytes_per_line=w * 4, format=32 | 24 << 8)
        self.fifo.send(commands.Cmd.BLIT_GMRFB_TO_SCREEN, src_x=0, src_y=0, left=x, top=y,
                       right=x + w, bottom=y + h, dest_screen_id=screen_id)
        self._staging_fence = self.fifo.insert_fence()

    def read_screen(self, screen_id: int) -> np.ndarray:
        """What a screen's base layer holds, (h, w) uint32 0x00RRGGBB, read back with
        BLIT_SCREEN_TO_GMRFB into the staging area (no cursor, no blanking)."""
        info = self._screen(screen_id)
        nbytes = info.width * info.height * 4
        offset = self._staging(nbytes)
        self.fifo.send(commands.Cmd.DEFINE_GMRFB, gmr_id=commands.GMR_FRAMEBUFFER, offset=offset,
                       bytes_per_line=info.width * 4, format=32 | 24 << 8)
        self.fifo.send(commands.Cmd.BLIT_SCREEN_TO_GMRFB, dest_x=0, dest_y=0, left=0, top=0,
                       right=info.width, bottom=info.height, src_screen_id=screen_id)
        self.fifo.sync()
        raw = self.transport.vram.read(offset, nbytes)
        return np.frombuffer(raw, "<u4").reshape(info.height, info.width) & 0x00FFFFFF

    # -- cursor ---------------------------------------------------------------------------
    @property
    def has_cursor(self) -> bool:
        offers = self.fifo.offers
        return offers(commands.Cmd.DEFINE_CURSOR) or offers(commands.Cmd.DEFINE_ALPHA_CURSOR)

    def define_cursor(self, rgba: np.ndarray, hotspot: tuple[int, int] = (0, 0)) -> None:
        """Define the hardware cursor from an (h, w, 4) uint8 RGBA image.

        With SVGA_CAP_ALPHA_CURSOR: DEFINE_ALPHA_CURSOR (BGRA). Else with SVGA_CAP_CURSOR:
        DEFINE_CURSOR with a 1 bpp AND mask (set = transparent) and a 32 bpp XOR image,
        the width padded to a multiple of 32 (QEMU steps mask rows by whole bytes, VMware by
        32-bit words: at multiples of 32 both agree)."""
        self._check_open()
        img = np.asarray(rgba, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 4:
            raise SVGAError("a cursor image must be an (height, width, 4) RGBA array")
        h, w = img.shape[:2]
        self.enable()
        alpha = self.fifo.offers(commands.Cmd.DEFINE_ALPHA_CURSOR)
        limit = KIT_CURSOR_MAX if alpha else CURSOR_MAX
        if not (1 <= w <= limit and 1 <= h <= limit):
            raise SVGAError(f"cursor {w}x{h} is outside 1x1..{limit}x{limit}")
        hx, hy = hotspot
        if not (0 <= hx < w and 0 <= hy < h):
            raise SVGAError(f"cursor hotspot {hx},{hy} is outside the {w}x{h} image")
        if alpha:
            need = 4 * (6 + w * h)
            if need > largest_command(self.mem_size):
                raise SVGAError(f"a {w}x{h} alpha cursor needs {need} bytes of FIFO; the "
                                f"{self.mem_size}-byte FIFO holds at most {largest_command(self.mem_size)}")
            # The kit: "alpha cursors use pre-multiplied alpha" (docs/svga-kit.md 'Cursors').
            pm = img.copy()
            a = img[..., 3:4].astype(np.uint32)
            pm[..., :3] = (img[..., :3].astype(np.uint32) * a + 127) // 255
            self.fifo.send(commands.Cmd.DEFINE_ALPHA_CURSOR, id=0, hotspot_x=hx, hotspot_y=hy,
                           width=w, height=h, image=pm[..., [2, 1, 0, 3]].tobytes())
            self._cursor_shape = (pm, hx, hy, True)  # for screenshot(composite=True)
        elif self.fifo.offers(commands.Cmd.DEFINE_CURSOR):
            pw = (w + 31) // 32 * 32
            opaque = np.zeros((h, pw), dtype=bool)
            opaque[:, :w] = img[..., 3] >= 128
            and_mask = np.packbits(~opaque, axis=1, bitorder="big")  # MSB = leftmost pixel
            xor = np.zeros((h, pw), dtype="<u4")
            xor[:, :w] = pixels.from_rgb(img)
            xor[~opaque] = 0
            self.fifo.send(commands.Cmd.DEFINE_CURSOR, id=0, hotspot_x=hx, hotspot_y=hy, width=pw,
                           height=h, and_mask_depth=1, xor_mask_depth=32,
                           and_mask=and_mask.tobytes(), xor_mask=xor.tobytes())
            self._cursor_shape = (img.copy(), hx, hy, False)  # for screenshot(composite=True)
        else:
            raise SVGAError("this device offers no hardware cursor (no CURSOR capability)")

    def move_cursor(self, x: int, y: int, visible: bool = True, screen: int | None = None) -> None:
        """Place (and show or hide) the hardware cursor: FIFO cursor bypass 3 when offered,
        else the legacy CURSOR_* registers (QEMU moves it only on the CURSOR_ON write).
        ``screen``: a Screen Object id the position is relative to (SVGA_FIFO_CURSOR_SCREEN_ID);
        None: virtual coordinates (docs/svga-kit.md 'Cursor screen id')."""
        self._check_open()
        if not self.has_cursor:
            raise SVGAError("this device offers no hardware cursor (no CURSOR capability)")
        screen_objects = self.fifo.initialised and bool(self.fifo_caps & _SCREEN_CAPS)
        if screen is not None and not screen_objects:
            raise SVGAError("a cursor position relative to a screen needs Screen Objects "
                            "(SVGA_FIFO_CAP_SCREEN_OBJECT or SCREEN_OBJECT_2), which this device lacks")
        if screen is None:
            self._cursor_at = (x, y, visible)  # for screenshot(composite=True)
        if self.fifo.has_cap(FifoCap.CURSOR_BYPASS_3):
            mem = self.transport.fifo
            if screen_objects and self.fifo.reg_valid(FifoReg.CURSOR_SCREEN_ID):
                mem.write32(FifoReg.CURSOR_SCREEN_ID * 4, SVGA_ID_INVALID if screen is None else screen)
            mem.write32(FifoReg.CURSOR_ON * 4, int(visible))
            mem.write32(FifoReg.CURSOR_X * 4, x & 0xFFFFFFFF)
            mem.write32(FifoReg.CURSOR_Y * 4, y & 0xFFFFFFFF)
            self._cursor_count = (mem.read32(FifoReg.CURSOR_COUNT * 4) + 1) & 0xFFFFFFFF
            mem.write32(FifoReg.CURSOR_COUNT * 4, self._cursor_count)
            mem.flush()
        else:
            self.regs.write(Reg.CURSOR_ID, 0)
            self.regs.write(Reg.CURSOR_X, x & 0xFFFFFFFF)
            self.regs.write(Reg.CURSOR_Y, y & 0xFFFFFFFF)
            self.regs.write(Reg.CURSOR_ON, int(visible))

    # -- synchronisation --------------------------------------------------------------------
    def fence(self) -> int:
        """Insert a fence (FIFO_CAP_FENCE) and return it; see :meth:`wait_fence`."""
        self._check_open()
        return self.fifo.insert_fence()

    def wait_fence(self, fence: int) -> None:
        """Wait until the device has passed ``fence`` (a full sync without fences)."""
        self._check_open()
        self.fifo.sync_to_fence(fence)

    def sync(self) -> None:
        """Wait until the device has processed every command sent so far."""
        if self._closed:
            self._check_open()  # raises
        self.fifo.sync()

    # -- reading back -----------------------------------------------------------------------
    def read_vram(self) -> np.ndarray:
        """The visible framebuffer as the device's memory holds it: (h, w) uint32."""
        mode = self._need_mode()
        raw = self.transport.vram.read(mode.fb_offset, mode.pitch * mode.height)
        return np.frombuffer(raw, "<u4").reshape(mode.height, mode.pitch // 4)[:, : mode.width]

    def screenshot_array(self, source: str = "display", cursor: bool = True,
                         composite: bool = False, screen: int | None = None) -> np.ndarray:
        """(h, w, 3) uint8 RGB. ``display``: what the device shows, where the transport can
        tell (model, QEMU screendump), else VRAM; ``vram``: the framebuffer memory.
        ``composite`` (display only): also draw the hardware cursor this driver last defined
        and placed, as the device shows it, where the transport cannot (QEMU's screendump
        and VRAM never include it; the model draws its own). With Screen Objects the display
        is the bounding box of all screens; ``screen``: one screen only (the model shows it
        as displayed; elsewhere its base layer is read back, see :meth:`read_screen`)."""
        self.sync()
        if screen is not None:
            self._need_screen_objects("a screenshot of one screen")
            shot = getattr(self.transport, "screen_image", None)
            if shot is not None:
                if screen not in self.transport.screen_ids():  # type: ignore[attr-defined]
                    raise SVGAError(f"screen {screen} does not exist on the device (screens: "
                                    f"{self.transport.screen_ids() or 'none'})")  # type: ignore[attr-defined]
                return shot(screen, with_cursor=cursor)
            if screen not in self.screens:
                raise SVGAError(f"screen {screen} was not defined by this driver")
            return pixels.to_rgb(self.read_screen(screen))
        if source == "display":
            img = self.transport.display_image(with_cursor=cursor or composite)
            if img is not None:
                return self._draw_cursor(img) if composite else img
        elif source != "vram":
            raise SVGAError(f"screenshot source must be display or vram, not {source!r}")
        px = self.read_vram()
        rgb = pixels.to_rgb(px)
        return self._draw_cursor(rgb) if composite and source == "display" else rgb

    def _draw_cursor(self, img: np.ndarray) -> np.ndarray:
        """The remembered cursor over ``img``: an alpha cursor as premultiplied alpha (how
        the device takes DEFINE_ALPHA_CURSOR), an AND/XOR cursor opaque where alpha >= 128."""
        shape, at = getattr(self, "_cursor_shape", None), getattr(self, "_cursor_at", None)
        if self.transport.kind == "model" or shape is None or at is None or not at[2]:
            return img
        rgba, hx, hy, alpha = shape
        left, top = at[0] - hx, at[1] - hy
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + rgba.shape[1], img.shape[1]), min(top + rgba.shape[0], img.shape[0])
        if x0 >= x1 or y0 >= y1:
            return img
        out = img.copy()
        src = rgba[y0 - top: y1 - top, x0 - left: x1 - left].astype(np.uint32)
        under = out[y0:y1, x0:x1].astype(np.uint32)
        if alpha:
            a = src[..., 3:4]
            out[y0:y1, x0:x1] = np.minimum(src[..., :3] + (under * (255 - a) + 127) // 255, 255)
        else:
            opaque = src[..., 3] >= 128
            out[y0:y1, x0:x1][opaque] = src[..., :3][opaque]
        return out

    def screenshot(self, source: str = "display", cursor: bool = True,
                   composite: bool = False, screen: int | None = None) -> Image.Image:
        from PIL import Image  # Pillow only for those who ask for an image object

        img = self.screenshot_array(source, cursor, composite, screen)
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise SVGAError("the display is empty (a 0x0 mode and no screens): nothing to save")
        return Image.fromarray(img, "RGB")

    # -- life cycle -------------------------------------------------------------------------
    def close(self, disable: bool = False) -> None:
        """Drain the FIFO, hide the cursor, and release the transport. With ``disable``,
        also return the device to VGA mode. Idempotent."""
        if self._closed:
            return
        try:
            if self.fifo.initialised:
                try:
                    self.fifo.sync()
                finally:
                    if self.has_cursor:
                        self.move_cursor(0, 0, visible=False)
                    if disable:
                        self.regs.write(Reg.ENABLE, 0)
        finally:
            self._closed = True  # after the drain above, which goes through the public calls
            self._fb = None
            self.transport.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DEVICE_KINDS = ("auto", "model", "qemu", "pci")


def open_transport(spec: str = "auto", *, profile: str = "vmware", qemu_display: str = "none",
                   sysfs_root: str = "/sys", cursor: bool | None = None) -> Transport:
    """Make the transport for a device spec: ``auto`` (the PCI device if there is one,
    else the software model), ``model``, ``qemu`` (QEMU's device through qtest), ``pci``
    (the first SVGA II PCI device) or a PCI address such as ``0000:00:02.0``.

    ``profile`` (vmware, qemu, qemu-cursor) and ``cursor`` (with qemu: offer the hardware
    cursor, as QEMU with a VNC display does) choose the model; ``qemu_display`` (none, vnc)
    QEMU's display."""
    if spec == "model":
        from svga.model import ModelTransport

        return ModelTransport(profile=profile, cursor=cursor)
    if spec == "qemu":
        from svga.transport.qtest import QtestTransport

        return QtestTransport(display=qemu_display)
    from svga.transport import pci

    if spec == "auto":
        if not pci.find_devices(sysfs_root):
            from svga.model import ModelTransport

            return ModelTransport(profile=profile, cursor=cursor)
        return pci.PciTransport(None, sysfs_root=sysfs_root)
    if spec == "pci":
        return pci.PciTransport(None, sysfs_root=sysfs_root)
    if ":" in spec:
        return pci.PciTransport(spec, sysfs_root=sysfs_root)
    raise SVGAError(
        f"unknown device {spec!r}: use auto, model, qemu, pci or a PCI address like 0000:00:02.0"
    )


RECORD_ENV = "SVGA_RECORD"
"""An environment variable naming a capture file: every open_device() records into it."""


def open_device(spec: str = "auto", *, accel: str = "auto", record: str | None = None,
                **transport_options: Any) -> Device:
    """Open a device (see :func:`open_transport` for ``spec``) and negotiate with it.

    ``record`` (or the environment variable ``SVGA_RECORD``) names a ``.svgacap`` file that
    records everything the driver does to the device (svga.transport.recorder)."""
    transport = open_transport(spec, **transport_options)
    record = record or os.environ.get(RECORD_ENV) or None
    if record:
        from svga.transport.recorder import RecordingTransport  # a transport, below the driver

        try:
            transport = RecordingTransport(transport, record)
        except BaseException:
            transport.close()
            raise
    try:
        return Device(transport, accel=accel)
    except BaseException:
        transport.close()
        raise
