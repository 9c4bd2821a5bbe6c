"""Model layer: what the SVGA registers do when the guest reads or writes them.

The transport turns BAR0 port accesses into :meth:`ModelRegisters.read` and
:meth:`ModelRegisters.write` of the selected index. Fixed values come from the profile;
QEMU's register quirks (ENABLE as 0/1, ignored out-of-range modes, BITS_PER_PIXEL
clearing CONFIG_DONE, no palette, no pitch lock, BUSY reading 0) are looked up in the
profile's quirk table. Without a quirk (the ``vmware`` profile) a mode write the device
cannot honour raises :class:`ModelError` rather than being ignored silently, but for
BITS_PER_PIXEL, which the kit says a device without 8BIT_EMULATION ignores (a note). With
SVGA_CAP_GMR the GMR registers define GMRs from descriptors in the model's guest memory.

SYNC and BUSY reach the FIFO engine; CONFIG_DONE re-publishes the FIFO capabilities.
What the register file refuses or imitates is reported (:mod:`svga.model.report`): raised,
or handed to the observer of a non-raising model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from svga.errors import ModelError
from svga.facts.effects import E
from svga.facts.profiles import Profile
from svga.facts.qemu import Q, Surface
from svga.model.engine import FifoEngine
from svga.model.gmr import GMR_MAX_DESCRIPTOR_LENGTH, GMR_MAX_IDS, GmrError
from svga.model.state import CursorPosition, DeviceState
from svga.registers import (
    CURSOR_ON_HIDE,
    CURSOR_ON_SHOW,
    NUM_PALETTE_REGS,
    PALETTE_BASE,
    SCRATCH_BASE,
    SVGA_ID_0,
    SVGA_ID_1,
    SVGA_ID_2,
    Cap,
    FifoCap,
    Reg,
)

_CURSOR_BYPASS = Cap.CURSOR_BYPASS | Cap.CURSOR_BYPASS_2

log = logging.getLogger(__name__)

HOST_BITS_PER_PIXEL = 32
DEPTH = 24
RED_MASK, GREEN_MASK, BLUE_MASK = 0xFF0000, 0x00FF00, 0x0000FF


def _signed(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


class ModelRegisters:
    """The register file of one model device."""

    def __init__(self, profile: Profile, state: DeviceState, engine: FifoEngine, vram_size: int,
                 fifo_size: int) -> None:
        self.profile = profile
        self.state = state
        self.engine = engine
        self.reporter = engine.reporter
        self.vram_size = vram_size
        self.fifo_size = fifo_size
        st, p = state, profile
        self._readers: dict[int, Callable[[], int]] = {
            Reg.ID: lambda: st.svga_id,
            Reg.ENABLE: lambda: st.enable,
            Reg.WIDTH: lambda: st.width,
            Reg.HEIGHT: lambda: st.height,
            Reg.MAX_WIDTH: lambda: p.max_width,
            Reg.MAX_HEIGHT: lambda: p.max_height,
            Reg.DEPTH: lambda: DEPTH,
            Reg.BITS_PER_PIXEL: lambda: HOST_BITS_PER_PIXEL,
            Reg.HOST_BITS_PER_PIXEL: lambda: HOST_BITS_PER_PIXEL,
            Reg.PSEUDOCOLOR: lambda: 0,
            Reg.RED_MASK: lambda: RED_MASK,
            Reg.GREEN_MASK: lambda: GREEN_MASK,
            Reg.BLUE_MASK: lambda: BLUE_MASK,
            Reg.BYTES_PER_LINE: lambda: st.bytes_per_line,
            Reg.FB_START: lambda: p.fb_start,
            Reg.FB_OFFSET: lambda: 0,
            Reg.VRAM_SIZE: lambda: vram_size,
            Reg.FB_SIZE: lambda: vram_size,
            Reg.CAPABILITIES: lambda: int(p.capabilities),
            Reg.MEM_START: lambda: p.mem_start,
            Reg.MEM_SIZE: lambda: fifo_size,
            Reg.CONFIG_DONE: lambda: int(st.config_done),
            Reg.SYNC: lambda: 0,
            Reg.BUSY: engine.busy,
            Reg.GUEST_ID: lambda: st.guest_id,
            Reg.CURSOR_ID: lambda: st.cursor_id,
            Reg.CURSOR_X: lambda: st.cursor_x,
            Reg.CURSOR_Y: lambda: st.cursor_y,
            Reg.CURSOR_ON: lambda: st.cursor_on,
            Reg.SCRATCH_SIZE: lambda: p.scratch_size,
            Reg.MEM_REGS: lambda: p.mem_regs,
            Reg.NUM_DISPLAYS: lambda: p.num_displays,
            Reg.PITCHLOCK: lambda: st.pitchlock,
        }
        self._writers: dict[int, Callable[[int], None]] = {
            Reg.ID: self._write_id,
            Reg.ENABLE: self._write_enable,
            Reg.WIDTH: lambda v: self._write_mode(Reg.WIDTH, v, p.max_width),
            Reg.HEIGHT: lambda v: self._write_mode(Reg.HEIGHT, v, p.max_height),
            Reg.BITS_PER_PIXEL: self._write_bpp,
            Reg.CONFIG_DONE: self._write_config_done,
            Reg.SYNC: lambda v: engine.run(),
            Reg.GUEST_ID: lambda v: setattr(st, "guest_id", v),
            Reg.CURSOR_ID: lambda v: setattr(st, "cursor_id", v),
            Reg.CURSOR_X: lambda v: self._write_cursor_xy("cursor_x", v),
            Reg.CURSOR_Y: lambda v: self._write_cursor_xy("cursor_y", v),
            Reg.CURSOR_ON: self._write_cursor_on,
            Reg.PITCHLOCK: self._write_pitchlock,
        }
        guest = engine.executor.guest
        if p.capabilities & Cap.GMR:
            self._readers[Reg.GMR_ID] = lambda: st.gmr_id
            self._readers[Reg.GMR_MAX_IDS] = lambda: GMR_MAX_IDS
            self._readers[Reg.GMR_MAX_DESCRIPTOR_LENGTH] = lambda: GMR_MAX_DESCRIPTOR_LENGTH
            self._writers[Reg.GMR_ID] = lambda v: setattr(st, "gmr_id", v)
            self._writers[Reg.GMR_DESCRIPTOR] = self._write_gmr_descriptor
        if p.capabilities & Cap.GMR2:
            self._readers[Reg.GMR_MAX_IDS] = lambda: GMR_MAX_IDS
            self._readers[Reg.GMRS_MAX_PAGES] = lambda: guest.pages
            self._readers[Reg.MEMORY_SIZE] = lambda: vram_size

    # -- access ------------------------------------------------------------------------------
    def read(self, index: int) -> int:
        reader = self._readers.get(index)
        if reader is not None:
            return reader() & 0xFFFFFFFF
        st = self.state
        if PALETTE_BASE <= index < PALETTE_BASE + NUM_PALETTE_REGS:
            return int(st.palette[index - PALETTE_BASE])
        if SCRATCH_BASE <= index < SCRATCH_BASE + len(st.scratch):
            return int(st.scratch[index - SCRATCH_BASE])
        log.debug("read of register %d, which this device does not have: 0", index)
        return 0

    def write(self, index: int, value: int) -> None:
        value &= 0xFFFFFFFF
        writer = self._writers.get(index)
        if writer is not None:
            try:
                writer(value)
            except ModelError as e:
                self.reporter.fail(e.errors)
            return
        st = self.state
        if PALETTE_BASE <= index < PALETTE_BASE + NUM_PALETTE_REGS:
            if self.profile.quirk(Q.PALETTE_READS_ZERO) is None:
                st.palette[index - PALETTE_BASE] = value
            return
        if SCRATCH_BASE <= index < SCRATCH_BASE + len(st.scratch):
            st.scratch[index - SCRATCH_BASE] = value
            return
        # Read-only registers and registers this device does not have ignore writes.
        log.debug("write of %#x to register %d ignored", value, index)

    # -- register semantics ------------------------------------------------------------------
    def _write_id(self, value: int) -> None:
        # Version negotiation: a supported ID is stored and reads back; others are ignored.
        if value in (SVGA_ID_0, SVGA_ID_1, SVGA_ID_2):
            self.state.svga_id = value

    def _write_enable(self, value: int) -> None:
        self.state.enable = int(bool(value)) if self.profile.quirk(Q.ENABLE_BOOL) else value
        self.state.invalidated = True

    def _write_mode(self, reg: Reg, value: int, limit: int) -> None:
        if value > limit:
            text = f"{reg.name} {value} is above MAX_{reg.name} {limit}"
            if self.profile.quirk(Q.MODE_OVER_MAX_IGNORED) is not None:
                self.reporter.note(E.MODE_OVER_MAX, f"{text}: ignored, as QEMU does")
                return
            raise ModelError(f"{text}; the write was ignored", key=E.MODE_OVER_MAX)
        strict = self.profile.quirk(Q.MODE_OVER_MAX_IGNORED) is None
        screen_objects = self.profile.fifo_capabilities & (FifoCap.SCREEN_OBJECT | FifoCap.SCREEN_OBJECT_2)
        if value == 0 and strict and not screen_objects:
            # A mode with no pixels: every later UPDATE or fill would be "outside the mode".
            # With Screen Objects a 0x0 mode "tells the device that we don't need the legacy
            # framebuffer" (docs/svga-kit.md 'Screen Objects').
            raise ModelError(f"{reg.name} 0 is no mode (1..{limit}); the write was ignored",
                             key=E.MODEL_REJECTS)
        st = self.state
        width, height = (value, st.height) if reg == Reg.WIDTH else (st.width, value)
        stride = st.pitchlock or width * 4
        if strict and height * stride > self.vram_size:
            raise ModelError(f"mode {width}x{height} needs {height * stride} bytes, more than the "
                             f"{self.vram_size}-byte VRAM; the {reg.name} write was ignored",
                             key=E.MODE_TOO_BIG)
        changed = (st.width, st.height) != (width, height)
        st.width, st.height = width, height
        st.invalidated = True
        self._note_placeholder()
        if changed:
            self._mode_changed()

    def _note_placeholder(self) -> None:
        """Quirk mode-640x480-placeholder (not imitated): a mode of the placeholder's size and
        stride while the placeholder is still the display surface keeps it on screen."""
        st = self.state
        row = self.profile.note(Q.MODE_640X480_PLACEHOLDER)
        surface = self.profile.note(Q.STALE_SURFACE)
        if row is None or surface is None or st.placeholder is None:
            return
        s = surface.value
        assert isinstance(s, Surface)
        if (st.width, st.height, st.bytes_per_line) == (s.width, s.height, s.stride):
            self.reporter.note(E.MODE_640X480, f"mode {st.width}x{st.height}x32 has the size and stride "
                               "of QEMU's placeholder surface, which is still the display surface")

    def _write_bpp(self, value: int) -> None:
        if value == HOST_BITS_PER_PIXEL:
            return
        if self.profile.quirk(Q.BPP_CLEARS_CONFIG) is not None:
            self.reporter.note(E.BPP_CLEARS_CONFIG,
                               f"BITS_PER_PIXEL {value} is not 32: CONFIG_DONE cleared, as QEMU does")
            self.state.config_done = False
            self.state.invalidated = True
            return
        # svga_interface.txt: BITS_PER_PIXEL is read-only without SVGA_CAP_8BIT_EMULATION, and
        # other values are ignored even with it (docs/svga-kit.md 'Capability bits'). An ignored
        # write changes no mode, so the screens stay (docs/svga-kit.md 'Choices where the kit is
        # ambiguous').
        self.reporter.note(E.MODE_BPP, f"BITS_PER_PIXEL {value} ignored: it is read-only without "
                           "SVGA_CAP_8BIT_EMULATION and the mode stays at 32 bpp")

    def _write_config_done(self, value: int) -> None:
        self.state.config_done = bool(value)
        if value:
            # A VMware host keeps its FIFO capabilities in FIFO memory for the driver to read.
            self.engine.publish_caps()

    def _note_no_bypass(self, what: str) -> None:
        caps = self.profile.capabilities
        if not caps & _CURSOR_BYPASS:
            self.reporter.note(E.CURSOR_MOVE_WITHOUT_CAP, f"{what} written, but CAPABILITIES 0x{int(caps):x} "
                               "has no SVGA_CAP_CURSOR_BYPASS (0x40) or _2 (0x80)")

    def _write_cursor_xy(self, name: str, value: int) -> None:
        self._note_no_bypass(name.upper())
        setattr(self.state, name, value)

    def _write_cursor_on(self, value: int) -> None:
        # The cursor moves only on CURSOR_ON 0 or 1, to the stored CURSOR_X/Y; 2 and 3
        # (REMOVE_FROM_FB / RESTORE_TO_FB) change nothing on the display.
        self._note_no_bypass("CURSOR_ON")
        st = self.state
        if value == CURSOR_ON_SHOW:
            st.cursor_on = 1
        elif value == CURSOR_ON_HIDE:
            st.cursor_on = 0
        if value in (CURSOR_ON_HIDE, CURSOR_ON_SHOW):
            st.cursor_pos = CursorPosition(_signed(st.cursor_x), _signed(st.cursor_y), bool(st.cursor_on))

    def _write_pitchlock(self, value: int) -> None:
        if not self.profile.capabilities & Cap.PITCHLOCK or self.profile.quirk(Q.PITCHLOCK_IGNORED):
            return
        if value & 3:
            raise ModelError(f"PITCHLOCK {value} is not a multiple of 4 bytes; the write was ignored",
                             key=E.MODEL_REJECTS)
        st = self.state
        if value and value < st.width * 4:
            raise ModelError(f"PITCHLOCK {value} is smaller than a row of the {st.width}-pixel mode "
                             f"({st.width * 4} bytes); the write was ignored", key=E.MODEL_REJECTS)
        if value and value * max(st.height, 1) > self.vram_size:
            raise ModelError(f"PITCHLOCK {value} for {max(st.height, 1)} rows needs more than the "
                             f"{self.vram_size}-byte VRAM; the write was ignored", key=E.MODE_TOO_BIG)
        changed = value != st.pitchlock
        st.pitchlock = value
        if changed:
            self._mode_changed()

    def _mode_changed(self) -> None:
        # svga_reg.h (DEFINE_SCREEN): a mode change deletes every screen but #0 and
        # redefines #0 from the mode; in the model screen 0 then is the legacy screen again.
        # Only a write that changes WIDTH, HEIGHT or PITCHLOCK counts (docs/svga-kit.md
        # 'Choices where the kit is ambiguous').
        self.state.screens.clear()
        self.state.legacy_screen = True

    # -- GMRs (SVGA_CAP_GMR registers) -------------------------------------------------------
    def _write_gmr_descriptor(self, value: int) -> None:
        try:
            self.engine.executor.guest.define_from_descriptor(self.state.gmr_id, value)
        except GmrError as e:
            raise ModelError(f"GMR_DESCRIPTOR {value:#x} for GMR {self.state.gmr_id}: {e}",
                             key=E.GMR_ACCESS) from None
