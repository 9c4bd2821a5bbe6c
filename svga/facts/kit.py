"""Device facts: the VMware SVGA Device Developer Kit's rules, as a device that follows them
strictly enforces them (the ``vmware`` profile), and the FIFO-size rule every device shares.

:data:`KIT_EFFECTS` gives each report name (:class:`~svga.facts.effects.E`) the effect a
kit-conformant device has; :data:`STREAM_EFFECTS` are the things no device can take because of
the stream itself (no length can be found for a command, or it never fits the ring). The
facts are in docs/qemu-7.2.md ('FIFO protocol (developer kit)', 'Command table').
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from svga.facts.effects import E, Effect, Impact
from svga.registers import FIFO_MIN_SIZE_LEGACY

B, N = Impact.BREAKS, Impact.NOT_AS_INTENDED
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
        N, "only the part inside the mode is on the screen (UPDATE copies what intersects a screen); "
           "the software model rejects it as a driver bug",
        "svga_reg.h SVGA_CMD_UPDATE; docs/qemu-7.2.md 'Command table'"),
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
        N, "the profile has no SVGA_CAP_8BIT_EMULATION and this suite drives 32 bpp only",
        "svga_reg.h SVGA_CAP_8BIT_EMULATION; docs/qemu-7.2.md 'Do'"),
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
