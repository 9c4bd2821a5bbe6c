"""Model layer: :class:`ModelTransport`, the software SVGA II device as a transport.

It owns the device's memory (VRAM for BAR1, the FIFO for BAR2, as numpy arrays the driver
reaches through :class:`svga.transport.base.ArrayMemory`), answers BAR0 port accesses with
the register file, and shows what the display would show. The driver cannot tell it from
the PCI or qtest transports except by what the profile offers.

Everything runs synchronously in the caller's thread: a SYNC write (and, on ``vmware``, a
BUSY read) processes the FIFO before it returns; on ``qemu`` a :meth:`display_image` call
is a display refresh, as QEMU's screendump is, and also runs the FIFO.

With ``observer=`` the model raises nothing: every error and note is handed to the observer
(:mod:`svga.model.report`), which is how ``svga check`` plays a stream on it.
"""

from __future__ import annotations

import numpy as np

from svga import pixels
from svga.errors import ModelError
from svga.facts.profiles import Profile, get_profile
from svga.facts.qemu import Q, Surface
from svga.model.engine import FifoEngine
from svga.model.gmr import PAGE_SIZE, GuestMemory
from svga.model.raster import composite_cursor, to_rgb
from svga.model.regfile import ModelRegisters
from svga.model.report import Observer, Reporter
from svga.model.state import CursorPosition, DeviceState
from svga.registers import (
    BIOS_PORT,
    ENABLE_DISABLE,
    ENABLE_HIDE,
    INDEX_PORT,
    SVGA_ID_2,
    SVGA_ID_INVALID,
    VALUE_PORT,
    FifoReg,
)
from svga.transport.base import ArrayMemory, Transport

NO_PORT = 0xFFFFFFFF
"""What a read of an unimplemented BAR0 offset returns."""
MIN_FIFO_SIZE = 16 * 1024
MAX_MEMORY = 1 << 30
GUEST_MEMORY = 16 << 20
"""Bytes of the model's own guest memory, which GMRs map (4096 pages)."""


def _check_size(what: str, size: int, minimum: int) -> None:
    if size % 4 or not minimum <= size <= MAX_MEMORY:
        raise ModelError(f"model {what} size {size} must be a multiple of 4 between {minimum} and "
                         f"{MAX_MEMORY} bytes")


class ModelTransport(Transport):
    """The software model of an SVGA II device.

    ``profile`` is ``"vmware"`` (default), ``"qemu"`` or ``"qemu-cursor"``; ``cursor=True``
    with ``"qemu"`` means ``"qemu-cursor"`` (CAPABILITIES 0xE3, as QEMU with a VNC display);
    ``accelfront=True`` adds FIFO_CAP_ACCELFRONT to ``"vmware"``. ``fifo_size`` defaults to
    the profile's (64 KiB on qemu, 256 KiB on vmware). ``observer``: a callable that gets
    every :class:`~svga.model.report.Observation` instead of errors being raised.
    ``guest_size``: bytes of the model's guest memory (:attr:`guest_memory`), which GMRs map.
    ``fast=False``: every FIFO command takes the strict path (:mod:`svga.model.fastpath` says
    what the fast path takes; the two agree on everything but speed).
    """

    kind = "model"

    def __init__(self, profile: str | Profile = "vmware", vram_size: int = 16 << 20,
                 fifo_size: int | None = None, *, cursor: bool | None = None, accelfront: bool = False,
                 observer: Observer | None = None, guest_size: int = GUEST_MEMORY,
                 fast: bool = True) -> None:
        self.profile: Profile = get_profile(profile, cursor=cursor, accelfront=accelfront)
        fifo_size = self.profile.fifo_size if fifo_size is None else fifo_size
        p = self.profile
        _check_size("VRAM", vram_size, p.initial_width * p.initial_height * 4)
        _check_size("FIFO", fifo_size, MIN_FIFO_SIZE)
        self._vram = np.zeros(vram_size, dtype=np.uint8)
        self._fifo = np.zeros(fifo_size, dtype=np.uint8)
        self.vram = ArrayMemory(self._vram)
        self.fifo = ArrayMemory(self._fifo)
        self.state = DeviceState.initial(self.profile)
        self.reporter = Reporter(observer)
        self.guest = GuestMemory(guest_size, self._vram)
        self.engine = FifoEngine(self.profile, self.state, self._fifo, self._vram, self.reporter,
                                 self.guest, fast=fast)
        self.registers = ModelRegisters(self.profile, self.state, self.engine, vram_size, fifo_size)
        self.description = f"software model (profile {p.name}, {p.device})"
        self.closed = False
        self.reset()

    # -- BAR0 --------------------------------------------------------------------------------
    def port_read(self, offset: int) -> int:
        if offset == INDEX_PORT:
            return self.state.index
        if offset == VALUE_PORT:
            return self.registers.read(self.state.index)
        if offset == BIOS_PORT:
            row = self.profile.quirk(Q.BIOS_PORT)
            if row is not None:
                return int(row.value)  # type: ignore[call-overload]
        return NO_PORT

    def port_write(self, offset: int, value: int) -> None:
        value = int(value) & 0xFFFFFFFF
        if offset == INDEX_PORT:
            self.state.index = value
        elif offset == VALUE_PORT:
            self.registers.write(self.state.index, value)

    # -- device ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Device reset: disabled, not configured, ID_2, cursor hidden. The mode, scratch
        registers, VRAM and the FIFO ring are kept (as QEMU's reset keeps them); a VMware
        host publishes its FIFO capabilities again."""
        st = self.state
        st.index = 0
        st.enable = ENABLE_DISABLE
        st.config_done = False
        st.svga_id = SVGA_ID_2
        st.cursor_on = 0
        st.cursor_pos = CursorPosition(st.cursor_x, st.cursor_y, False)
        st.damage.clear()
        st.redraw.clear()
        self.engine.publish_caps(force=True)
        st.fifo_cursor_count = self.engine.get(FifoReg.CURSOR_COUNT)

    def refresh(self) -> None:
        """A display refresh. On qemu (quirks ``stale-surface``, ``refresh-runs-fifo``,
        ``placeholder-shows-only-updates``) it adopts the mode as the display surface, runs
        the FIFO and then copies the queued rectangles into QEMU's placeholder surface while
        that is still shown, as QEMU's console refresh does when ENABLE and CONFIG_DONE are
        set; on vmware it does nothing."""
        st = self.state
        if not st.fifo_running:
            return
        if self.profile.quirk(Q.STALE_SURFACE) is not None:
            if (st.surface.width, st.surface.height) != (st.width, st.height):
                # A surface made from VRAM replaces the placeholder for good.
                st.surface = Surface(st.width, st.height, st.width * 4)
                st.placeholder = None
                st.redraw.clear()
                st.invalidated = True
        try:
            if self.profile.quirk(Q.REFRESH_RUNS_FIFO) is not None:
                self.engine.run()
        finally:
            if self.profile.quirk(Q.PLACEHOLDER_UPDATES) is not None:
                self.engine.executor.flush_redraw()
            st.invalidated = False

    def catch_up(self) -> None:
        """What a host that runs the FIFO as it is written (``profile.runs_as_written``: VMware)
        does between two guest accesses: process what is pending. On QEMU nothing happens."""
        if self.profile.runs_as_written:
            self.engine.run()

    def shown(self) -> bool:
        """Whether the display shows the SVGA framebuffer (else it is black)."""
        st = self.state
        if st.enable in (ENABLE_DISABLE, ENABLE_HIDE):
            return False
        return st.config_done or self.profile.quirk(Q.DISPLAY_NEEDS_CONFIG) is None

    def display_image(self, with_cursor: bool = False) -> np.ndarray:
        """What the display shows, as (height, width, 3) RGB: the mode's WIDTHxHEIGHT pixels
        of VRAM at FB_OFFSET with BYTES_PER_LINE stride while only the legacy screen exists;
        once Screen Objects are defined, the bounding box of all screens, each showing its
        base layer (docs/svga-kit.md 'Screen Objects'). Black while the display is off; on
        qemu, QEMU's 640x480 placeholder while it is kept (a first mode of 640x480).
        With ``with_cursor`` the hardware cursor is composited where it is shown. On qemu
        this is a refresh first (see :meth:`refresh`), so it may raise ModelError for the
        commands it runs."""
        self.refresh()
        return self.screen(with_cursor)

    def screen(self, with_cursor: bool = False) -> np.ndarray:
        """What :meth:`display_image` shows, without the refresh before it: no FIFO run, so
        no ModelError (a caller that caught one from the refresh still gets the picture)."""
        st = self.state
        objects = self.engine.executor.screens
        origin = (0, 0)
        if objects.objects_in_use():
            words, box = objects.compose()
            origin = box[:2]
            image = pixels.to_rgb(words) if self.shown() else np.zeros(words.shape + (3,), np.uint8)
            if not self.shown():
                return image
        elif not self.shown():
            return np.zeros((st.height, st.width, 3), dtype=np.uint8)
        elif st.placeholder is not None:
            # QEMU's placeholder surface is still the display (quirk placeholder-shows-only-updates).
            p = st.placeholder
            image = pixels.to_rgb(p)
        else:
            image = self._frame()
        if with_cursor:
            self._cursor_onto(image, origin)
        return image

    def screen_image(self, screen_id: int, with_cursor: bool = False) -> np.ndarray:
        """What one screen shows, (height, width, 3) RGB (black while blanked, deactivated or
        the display is off). Raises ModelError for a screen that does not exist."""
        self.catch_up()
        objects = self.engine.executor.screens
        scr = objects.screen(screen_id)
        if scr is None:
            raise ModelError(f"screen {screen_id} is not defined")
        if not self.shown():
            return np.zeros((scr.height, scr.width, 3), dtype=np.uint8)
        image = pixels.to_rgb(objects.shown(scr))
        if with_cursor:
            self._cursor_onto(image, (scr.root_x, scr.root_y))
        return image

    def screen_ids(self) -> list[int]:
        """The ids of the screens that exist (the legacy screen 0 included)."""
        return [s.id for s in self.engine.executor.screens.all()]

    def _cursor_onto(self, image: np.ndarray, origin: tuple[int, int]) -> None:
        """Composite the cursor onto ``image``, whose top-left pixel is at virtual ``origin``.
        A position with a CURSOR_SCREEN_ID is relative to that screen's root
        (docs/svga-kit.md 'Cursor screen id'); one naming no screen is not shown."""
        st = self.state
        self.engine.poll_cursor()
        cur, pos = st.cursor, st.cursor_pos
        if cur is None or not pos.visible:
            return
        x, y = pos.x, pos.y
        if pos.screen_id != SVGA_ID_INVALID:
            scr = self.engine.executor.screens.screen(pos.screen_id)
            if scr is None:
                return
            x, y = x + scr.root_x, y + scr.root_y
        composite_cursor(image, cur, x - cur.hot_x - origin[0], y - cur.hot_y - origin[1])

    @property
    def guest_memory(self) -> np.ndarray:
        """The model's guest memory, (pages, 4096) uint8, writable: a PPN is a row. GMRs
        (SVGA_REG_GMR_DESCRIPTOR, DEFINE_GMR2/REMAP_GMR2) map its pages."""
        return self.guest.memory.reshape(-1, PAGE_SIZE)

    def _frame(self) -> np.ndarray:
        """The legacy screen as (height, width, 3) RGB, a new array (the cursor is drawn onto it)."""
        st = self.state
        width, height, stride = st.width, st.height, st.bytes_per_line
        base = self.engine.executor.framebuffer().base
        if width == 0 or height == 0:
            return np.zeros((height, width, 3), dtype=np.uint8)
        # Rows that lie wholly inside VRAM; a mode too big for it shows black below them.
        room = len(self._vram) - base - width * 4
        rows = 0 if room < 0 else height if stride == 0 else min(height, room // stride + 1)
        image = np.empty((height, width, 3), dtype=np.uint8)
        if rows:
            to_rgb(self._vram, base, stride, width, rows, out=image[:rows])  # straight into the image
        image[rows:] = 0
        return image

    # -- inspection ----------------------------------------------------------------------------
    @property
    def cursor_position(self) -> CursorPosition:
        """Where the cursor hotspot is and whether it is shown (cursor bypass 3 included)."""
        self.engine.poll_cursor()
        return self.state.cursor_pos

    def close(self) -> None:
        self.closed = True
