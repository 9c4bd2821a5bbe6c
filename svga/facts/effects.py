"""Device facts: the names of what a device does with a command, a register write or a stream
that a driver should not send, and how much it hurts.

The software model reports each such thing by one of these names (:class:`E`) as it happens
(:mod:`svga.model.report`); ``svga check`` turns each report into a finding using the
:class:`Effect` the device's profile gives that name (:mod:`svga.facts.qemu` for QEMU 7.2,
:mod:`svga.facts.kit` for a device that follows the developer kit strictly). So the lint and
the model cannot disagree: the lint has no rule of its own but for the few things that are
about the stream itself (an unknown id, a truncated or oversized command).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class E(StrEnum):
    """What happened: the rule name a finding carries."""

    PARSER_DESYNC = "parser-desync"
    UNKNOWN_ID = "unknown-id"
    CURSOR_AND_DEPTH = "cursor-and-mask-depth"
    LARGER_THAN_FIFO = "larger-than-fifo"
    TRUNCATED = "truncated"
    UNDECODABLE = "undecodable"
    BPP_CLEARS_CONFIG = "bpp-clears-config-done"
    MODE_OVER_MAX = "mode-over-max"
    MODE_TOO_BIG = "mode-too-big-for-vram"
    MODE_640X480 = "mode-640x480"
    MODE_BPP = "mode-bpp"
    CURSOR_WITHOUT_CAP = "cursor-without-cap"
    CURSOR_LIMITS = "cursor-limits"
    CURSOR_WIDTH = "cursor-width"
    CURSOR_BPP = "cursor-bpp"
    CURSOR_SIZE = "cursor-size"
    CURSOR_DEPTH = "cursor-depth"
    ALPHA_CURSOR_IGNORED = "alpha-cursor-ignored"
    STALE_SURFACE = "stale-surface"
    RECT_OUTSIDE = "rect-outside"
    UPDATE_BAD_RECT = "update-bad-rect"
    CURSOR_MOVE_WITHOUT_CAP = "cursor-move-without-cap"
    CURSOR_MOVE_LATCH = "cursor-move-latch"
    RUN_CAP = "run-cap"
    NOT_OFFERED = "not-offered"
    FIFO_POINTERS = "fifo-pointers"
    INCOMPLETE = "incomplete"
    SCREEN_UNDEFINED = "screen-undefined"
    SCREEN_FLAGS = "screen-flags"
    SCREEN_BACKING = "screen-backing"
    GMRFB_FORMAT = "gmrfb-format"
    GMR_ACCESS = "gmr-access"
    MODEL_REJECTS = "model-rejects"
    """Anything else the strict model refuses: a driver bug with no more specific name."""


class Impact(StrEnum):
    BREAKS = "breaks"
    """The device as a whole stops working as intended (desync, stall, FIFO stopped)."""
    NOT_AS_INTENDED = "not as intended"
    """This command is dropped, ignored, drawn wrong or widened; the stream goes on."""


@dataclass(frozen=True)
class Effect:
    """What a device does when it meets ``E`` and what to do instead (``advice``), how much it
    hurts (``impact``), and where the fact is written down (``source``)."""

    impact: Impact
    advice: str
    source: str
