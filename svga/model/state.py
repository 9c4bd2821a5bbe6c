"""Model layer: the device's mutable state, as plain data.

The register file writes it, the FIFO engine and the command executor read and change it,
the transport renders it. No behaviour lives here beyond derived values (the stride of the
current mode, whether the FIFO runs).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from svga.facts.profiles import Profile
from svga.facts.qemu import Q, Surface
from svga.model.cursor import CursorImage
from svga.registers import NUM_PALETTE_REGS, SVGA_ID_2, SVGA_ID_INVALID

DAMAGE_KEPT = 4096
"""How many UPDATE rectangles the model remembers (the oldest are forgotten)."""


@dataclass
class CursorPosition:
    """Where the hardware cursor's hotspot is, and whether it is shown. ``screen_id`` is the
    SVGA_FIFO_CURSOR_SCREEN_ID the host read with the position: SVGA_ID_INVALID for virtual
    coordinates, else a screen the position is relative to (docs/svga-kit.md 'Cursor screen id')."""

    x: int = 0
    y: int = 0
    visible: bool = False
    screen_id: int = SVGA_ID_INVALID


@dataclass
class Screen:
    """A Screen Object (DEFINE_SCREEN) with its own base layer (docs/svga-kit.md 'Screen
    Objects'), or the legacy screen 0 that the mode registers define, whose base layer is the
    GFB itself (``base`` None)."""

    id: int
    flags: int
    width: int
    height: int
    root_x: int
    root_y: int
    backing: bytes = b""
    base: np.ndarray | None = field(default=None, repr=False)
    """(height, width) uint32 0x00RRGGBB: what blits wrote; None for the legacy screen."""

    def rect(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in virtual coordinates."""
        return self.root_x, self.root_y, self.root_x + self.width, self.root_y + self.height


@dataclass(frozen=True)
class Gmrfb:
    """The GMRFB of DEFINE_GMRFB: a GMR (or GMR_FRAMEBUFFER), offset, pitch and format."""

    gmr_id: int
    offset: int
    bytes_per_line: int
    bits_per_pixel: int
    depth: int


@dataclass
class DeviceState:
    """Everything the device remembers between port accesses."""

    width: int
    height: int
    scratch: np.ndarray
    palette: np.ndarray
    surface: Surface
    """QEMU's display surface of the last refresh (used only with the stale-surface quirk)."""
    index: int = 0
    svga_id: int = SVGA_ID_2
    enable: int = 0
    config_done: bool = False
    pitchlock: int = 0
    guest_id: int = 0
    cursor_id: int = 0
    cursor_x: int = 0
    cursor_y: int = 0
    cursor_on: int = 0
    cursor: CursorImage | None = None
    cursor_pos: CursorPosition = field(default_factory=CursorPosition)
    fifo_cursor_count: int = 0
    """Last SVGA_FIFO_CURSOR_COUNT the host has acted on (cursor bypass 3)."""
    screens: dict[int, Screen] = field(default_factory=dict)
    """Screens defined by DEFINE_SCREEN, by id (the legacy screen 0 is not in it)."""
    legacy_screen: bool = True
    """Whether the mode registers' screen 0 exists: until DEFINE_SCREEN or DESTROY_SCREEN of
    id 0, and again after each mode change."""
    gmr_id: int = 0
    """SVGA_REG_GMR_ID."""
    gmrfb: Gmrfb | None = None
    annotation: tuple[str, tuple[int, ...]] | None = None
    """A blit annotation waiting for the next BLIT_GMRFB_TO_SCREEN."""
    last_annotation: tuple[str, tuple[int, ...]] | None = None
    """The annotation the last BLIT_GMRFB_TO_SCREEN consumed (None if it had none)."""
    damage: deque[tuple[int, int, int, int]] = field(default_factory=lambda: deque(maxlen=DAMAGE_KEPT))
    """UPDATE rectangles (x, y, width, height), oldest first."""
    placeholder: np.ndarray | None = None
    """QEMU's placeholder surface, (480, 640) uint32, while it is the display surface
    (quirk ``placeholder-shows-only-updates``); None once a refresh replaced it, and on
    profiles without the quirk."""
    redraw: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Rectangles of UPDATE, RECT_FILL and RECT_COPY waiting for the next refresh to copy
    them into the placeholder (QEMU's redraw queue)."""
    invalidated: bool = False
    """QEMU's 'invalidated': a mode or enable write since the last refresh, which then drops
    the redraw queue instead of copying it."""
    last_fence: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    """Commands executed, by name."""

    @classmethod
    def initial(cls, profile: Profile) -> DeviceState:
        stale = profile.quirk(Q.STALE_SURFACE)
        surface = stale.value if stale is not None else Surface(
            profile.initial_width, profile.initial_height, profile.initial_width * 4)
        assert isinstance(surface, Surface)
        placeholder = None
        if profile.quirk(Q.PLACEHOLDER_UPDATES) is not None:
            placeholder = np.zeros((surface.height, surface.width), dtype=np.uint32)
        return cls(
            width=profile.initial_width,
            height=profile.initial_height,
            scratch=np.zeros(profile.scratch_size, dtype=np.uint32),
            palette=np.zeros(NUM_PALETTE_REGS, dtype=np.uint32),
            surface=surface,
            placeholder=placeholder,
        )

    @property
    def bytes_per_line(self) -> int:
        """The mode's stride: the pitch lock when one is set, else 4 bytes per pixel."""
        return self.pitchlock if self.pitchlock else self.width * 4

    @property
    def fifo_running(self) -> bool:
        return bool(self.enable) and self.config_done
