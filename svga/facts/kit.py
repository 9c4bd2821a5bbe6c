"""Device facts: the VMware SVGA Device Developer Kit's rules, as a device that follows them
strictly enforces them (the ``vmware`` profile), and the FIFO-size rule every device shares.

:data:`KIT_EFFECTS` gives each report name (:class:`~svga.facts.effects.E`) the effect a
kit-conformant device has; :data:`STREAM_EFFECTS` are the things no device can take because of
the stream itself (no length can be found for a command, or it never fits the ring). The
facts are in docs/qemu-7.2.md ('FIFO protocol (developer kit)', 'Command table') and, for Screen
Objects, GMRs and the capability bits, docs/svga-kit.md ('Screen Objects', 'GMRs').
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from svga.facts.effects import E, Effect, Impact
from svga.registers import FIFO_MIN_SIZE_LEGACY

B, N = Impact.BREAKS, Impact.NOT_AS_INTENDED
KIT_CURSOR_MAX = 256
"""Largest cursor side a kit device takes: the kit's screen-cursor defines 256x256 alpha cursors
and a 100x98 mono one (docs/svga-kit.md 'Cursors'); the vmware profile's max_cursor."""
FREE_DWORD = 4
"""The guest never fills the last dword of the ring: full would then look empty."""


def largest_command(fifo_size: int) -> int:
    """The largest command, in bytes, any FIFO layout of a ``fifo_size``-byte FIFO can hold:
    MIN at its smallest (the four pointer registers) and one dword always left free
    (docs/qemu-7.2.md 'Reserve and commit'). A larger command can never be complete in the
    ring, so the device waits for it forever."""
    return fifo_size - FIFO_MIN_SIZE_LEGACY - FREE_DWORD


STREAM_EFFECTS: Mapping[E, Effect] = MappingProxyType({
    E.LARGER_THAN_FIFO: Effect(
        B, "it can never be complete in the FIFO ring, so the device waits for it forever: the FIFO "
           "stalls for good",
        "docs/qemu-7.2.md 'Incomplete commands', 'Reserve and commit' (one dword stays free)"),
    E.TRUNCATED: Effect(
        B, "the device waits for the rest (QEMU rewinds STOP and retries it on every run), and "
           "whatever is written next is read as its remainder",
        "docs/qemu-7.2.md 'Incomplete commands'"),
    E.UNDECODABLE: Effect(
        B, "no reading of svga_reg.h gives the command a length, so the device cannot find the "
           "next command",
        "svga.commands table (svga_reg.h layouts; SVGA_CMD_MAX_DATASIZE)"),
})
"""What no device can take, whatever its profile."""

KIT_EFFECTS: Mapping[E, Effect] = MappingProxyType({
    **STREAM_EFFECTS,
    E.NOT_OFFERED: Effect(
        B, "svga_reg.h makes the command available only with that capability; a device without it "
           "does not implement it and cannot be relied on to skip it",
        "svga_reg.h 'Availability' lines (svga.commands, CommandSpec.needs)"),
    E.UNKNOWN_ID: Effect(
        B, "no command of svga_reg.h (0 is SVGA_CMD_INVALID_CMD): the device cannot know its length "
           "or find the next command",
        "svga_reg.h SVGAFifoCmdId; docs/qemu-7.2.md 'Command table'"),
    E.RECT_OUTSIDE: Effect(
        N, "only the part inside the mode is copied (UPDATE copies what intersects a screen); a fill, "
           "a copy or a screen-to-GMRFB blit outside is not done at all",
        "docs/svga-kit.md 'Choices where the kit is ambiguous'"),
    E.CURSOR_SIZE: Effect(
        N, "the device's cursor is at most that size; the cursor is not defined",
        "svga.facts.profiles max_cursor (what vmwgfx and QEMU use)"),
    E.CURSOR_DEPTH: Effect(
        N, "svga_reg.h allows only 1 or BITS_PER_PIXEL (32) for both mask depths",
        "svga_reg.h SVGAFifoCmdDefineCursor; docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    E.MODE_OVER_MAX: Effect(
        N, "the device takes modes up to MAX_WIDTH x MAX_HEIGHT only; the mode is not set",
        "svga_reg.h SVGA_REG_MAX_WIDTH/HEIGHT; docs/qemu-7.2.md 'WIDTH/HEIGHT'"),
    E.MODE_TOO_BIG: Effect(
        N, "the mode does not fit the framebuffer memory; the mode is not set",
        "svga_reg.h SVGA_REG_FB_SIZE; docs/qemu-7.2.md 'Addresses and sizes'"),
    E.MODE_BPP: Effect(
        N, "without SVGA_CAP_8BIT_EMULATION BITS_PER_PIXEL is read-only: the write is ignored and the "
           "mode stays at 32 bpp",
        "docs/svga-kit.md 'Capability bits'"),
    E.SCREEN_UNDEFINED: Effect(
        N, "the command names a screen that does not exist (never defined, destroyed, or deleted by a "
           "mode change): nothing is drawn",
        "docs/svga-kit.md 'Screen Objects'"),
    E.SCREEN_FLAGS: Effect(
        N, "svga_reg.h: SVGA_SCREEN_MUST_BE_SET 'must be set or results undefined'; the screen is not "
           "defined",
        "docs/svga-kit.md 'Screen Objects'"),
    E.SCREEN_BACKING: Effect(
        N, "SCREEN_OBJECT_2 needs a backing store in the GFB, page aligned, with a pitch of at least a "
           "32 bpp scanline; the screen is not defined",
        "docs/svga-kit.md 'Screen Objects'"),
    E.GMRFB_FORMAT: Effect(
        N, "the GMRFB takes 32/24, 24/24, 16/16 and 16/15 only, with the reserved bits zero; no GMRFB is "
           "left defined, so the following blits fail",
        "docs/svga-kit.md 'GMRFB'"),
    E.GMR_ACCESS: Effect(
        N, "the blit or remap reaches memory no GMR maps (an undefined GMR, an unmapped page, or past "
           "its end): it is not done",
        "docs/svga-kit.md 'GMRs'"),
    E.CURSOR_MOVE_LATCH: Effect(
        N, "the register cursor moves only when CURSOR_ON is written; add show or hide",
        "docs/qemu-7.2.md 'Cursor registers'"),
    E.FIFO_POINTERS: Effect(
        B, "the device does not touch a ring with such pointers: nothing is processed",
        "docs/qemu-7.2.md 'Checks each run'"),
    E.INCOMPLETE: Effect(
        B, "the command runs past NEXT_CMD: the device waits for the rest",
        "docs/qemu-7.2.md 'Incomplete commands'"),
    E.MODEL_REJECTS: Effect(
        N, "the software model rejects it as a driver bug (a real device may draw something else or "
           "nothing)",
        "svga.model strict checks; docs/qemu-7.2.md 'FIFO protocol (developer kit)'"),
})
"""A device that follows svga_reg.h strictly (profile ``vmware``)."""
