"""Tools layer: ``svga check``, a lint for a command stream.

It reads a stream (a command script, :mod:`svga.tools.script`, or binary FIFO words; a
capture reader can feed the same :class:`~svga.tools.stream.StreamItem` sequence), plays
it against what a profile's device does (:mod:`svga.model.profiles` for capabilities and
sizes, :mod:`svga.model.quirks` for QEMU 7.2's behaviours) and lists every command the
device would not handle as intended, with its position, a severity and the reason:

- ``breaks``: the device stops working as a whole: QEMU's FIFO parser desyncs (and can
  replay stale commands), the FIFO stalls for good, or it stops processing;
- ``not as intended``: the command is dropped, ignored, drawn wrong or widened, and the
  stream goes on.

The checks are data: one table of :class:`Rule` (predicate, severity, reason, source) per
device, :data:`QEMU_RULES` for the ``qemu``/``qemu-cursor`` profiles (which carry QEMU's
quirk table) and :data:`VMWARE_RULES`. Rules that depend on the device's state (the mode,
QEMU's display surface) are checked when the device would run the command: on QEMU at a
SYNC or a display refresh (or at the end of the stream), on VMware as it is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from svga.commands import Cmd, Command
from svga.errors import SVGAError
from svga.model.profiles import AVAILABILITY, Profile, get_profile
from svga.model.quirks import CursorLimits, Q, Surface
from svga.registers import FIFO_MIN_SIZE_LEGACY, Cap
from svga.tools.script import ScriptError, format_event, parse_script
from svga.tools.stream import (
    FIFO_EVENTS,
    CursorMove,
    Event,
    Mode,
    Position,
    Refresh,
    StreamItem,
    Sync,
    Truncated,
    Undecodable,
    Unknown,
    normalize,
    read_binary,
)


class Severity(StrEnum):
    BREAKS = "breaks"
    """The device as a whole stops working as intended (desync, stall, FIFO stopped)."""
    NOT_AS_INTENDED = "not as intended"
    """This command is dropped, ignored, drawn wrong or widened; the stream goes on."""


class Phase(StrEnum):
    RUN = "run"
    """When the device runs a FIFO command, or when a device action happens."""
    LEFT = "left"
    """When a FIFO run stops before a pending command (QEMU's per-run cap)."""


@dataclass(frozen=True)
class Finding:
    position: Position
    command: str
    """The command (fixed fields; tails by size) or device action."""
    severity: Severity
    reason: str
    source: str
    """Where the fact comes from (quirk key, reference note, svga_reg.h line)."""
    rule: str

    def text(self) -> str:
        return f"{self.position}: {self.severity}: {self.command}: {self.reason} [{self.source}]"

    def as_dict(self) -> dict[str, object]:
        return {"position": str(self.position), "line": self.position.line,
                "offset": self.position.offset, "severity": str(self.severity),
                "command": self.command, "reason": self.reason, "source": self.source,
                "rule": self.rule}


@dataclass
class Context:
    """What the device is doing when a rule is asked: the profile, the mode set by the
    stream (None until a ``mode``), and QEMU's display surface of the last refresh."""

    profile: Profile
    mode: tuple[int, int] | None = None
    surface: tuple[int, int] | None = None
    run_count: int = 0
    """Commands the current FIFO run has handled (for Phase.LEFT)."""

    def __post_init__(self) -> None:
        initial = self.value(Q.STALE_SURFACE)
        if isinstance(initial, Surface):
            self.surface = (initial.width, initial.height)

    def value(self, key: Q) -> object:
        """The parameter of a quirk of this profile (imitated or only documented), or None."""
        row = self.profile.note(key)
        return None if row is None else row.value

    @property
    def stale(self) -> bool:
        """QEMU's display surface is not the mode yet (a mode change with no refresh since)."""
        return (self.profile.quirk(Q.STALE_SURFACE) is not None and self.mode is not None
                and self.mode != self.surface)

    def target(self) -> tuple[int, int, str] | None:
        """The rectangle fills, copies and updates are checked against, or None while the
        stream has set no mode (then nothing is known)."""
        if self.mode is None:
            return None
        if self.profile.quirk(Q.STALE_SURFACE) is not None and self.surface is not None:
            w, h = self.surface
            return w, h, f"QEMU's {w}x{h} display surface"
        w, h = self.mode
        return w, h, f"the {w}x{h} mode"


Check = Callable[[Event, Context], str | None]
"""A rule's predicate: None when the rule does not apply, else the specifics ("" if none)."""


@dataclass(frozen=True)
class Rule:
    key: str
    severity: Severity
    check: Check
    reason: str
    source: str
    phase: Phase = Phase.RUN


# -- predicates --------------------------------------------------------------------------------
def _command(ev: Event, *ids: int) -> Command | None:
    if isinstance(ev, Command) and (not ids or ev.cmd_id in ids):
        return ev
    return None


def _rect(x: int, y: int, w: int, h: int) -> str:
    return f"{x},{y} {w}x{h}"


def _outside(ev: Event, ctx: Context, ids: tuple[int, ...]) -> str | None:
    """Which rectangle of a fill, copy or update lies outside the current target."""
    cmd = _command(ev, *ids)
    target = ctx.target()
    if cmd is None or target is None:
        return None
    tw, th, what = target
    if cmd.cmd_id == Cmd.RECT_COPY:
        rects = [("source", cmd.src_x, cmd.src_y), ("destination", cmd.dest_x, cmd.dest_y)]
    else:
        rects = [("rectangle", cmd.x, cmd.y)]
    for role, x, y in rects:
        w, h = cmd.width, cmd.height
        if not (x + w <= tw and y + h <= th):
            return f"{role} {_rect(x, y, w, h)} is outside {what}"
    return None


_DESYNC_INSTEAD = {
    Cmd.FENCE: " (on QEMU drain with SYNC until STOP == NEXT_CMD instead)",
    Cmd.UPDATE_VERBOSE: " (send UPDATE instead)",
    Cmd.RECT_ROP_FILL: " (send RECT_FILL instead)",
    Cmd.RECT_ROP_COPY: " (send RECT_COPY instead)",
}


def _miscounted(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev)
    counted = ctx.value(Q.PARSER_DESYNC)
    if cmd is None or not isinstance(counted, frozenset) or cmd.cmd_id in counted:
        return None
    return f"QEMU 7.2 counts the length of {cmd.name} (id {cmd.cmd_id}) wrong" \
        + _DESYNC_INSTEAD.get(cmd.cmd_id, "")


def _unknown(ev: Event, ctx: Context) -> str | None:
    if not isinstance(ev, Unknown):
        return None
    if ev.cmd_id == 0:
        return "a zero word (INVALID_CMD)" if ev.nwords == 1 else \
            f"{ev.nwords} zero words (INVALID_CMD padding)"
    text = f"command id {ev.cmd_id} is not in the command table"
    if ev.nwords > 1:
        text += f"; the {ev.nwords - 1} words after it, to the next item, are not checked"
    return text


def _ring_limit(ctx: Context) -> int:
    """The largest command any FIFO layout of this device can hold: MIN at its smallest
    (16), and one dword always left free so NEXT_CMD never catches up with STOP."""
    return ctx.profile.fifo_size - FIFO_MIN_SIZE_LEGACY - 4


def _too_big(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev)
    if cmd is None or cmd.nwords * 4 <= _ring_limit(ctx):
        return None
    return (f"{cmd.nwords * 4}-byte command; the {ctx.profile.fifo_size // 1024} KiB FIFO holds at "
            f"most {_ring_limit(ctx)} bytes of commands")


def _truncated(ev: Event, ctx: Context) -> str | None:
    if not isinstance(ev, Truncated):
        return None
    return f"the stream ends inside {ev.name}: it needs {ev.needed} words, {ev.available} are there"


def _undecodable(ev: Event, ctx: Context) -> str | None:
    if not isinstance(ev, Undecodable):
        return None
    return f"{ev.reason}; the {ev.nwords} words from here to the end are not checked"


def _cursor_and_depth(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev, Cmd.DEFINE_CURSOR)
    if cmd is None or cmd.and_mask_depth == 1:
        return None
    return f"and_mask_depth={cmd.and_mask_depth}"


def _cursor_no_cap(ev: Event, ctx: Context) -> str | None:
    caps = ctx.profile.capabilities
    if _command(ev, Cmd.DEFINE_CURSOR) is None or caps & Cap.CURSOR:
        return None
    return f"CAPABILITIES 0x{int(caps):x} has no SVGA_CAP_CURSOR (0x20)"


def _qemu_cursor_limits(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev, Cmd.DEFINE_CURSOR)
    lim = ctx.value(Q.CURSOR_LIMITS)
    if cmd is None or not isinstance(lim, CursorLimits):
        return None
    w, h, bpp = cmd.width, cmd.height, cmd.xor_mask_depth
    # QEMU's own counts: the AND mask taken as 1 bpp, rows padded to 32 bits.
    and_words, xor_words = (w + 31) // 32 * h, (w * bpp + 31) // 32 * h
    if (w <= lim.max_width and h <= lim.max_height and bpp <= lim.max_bpp
            and and_words <= lim.max_and_words and xor_words <= lim.max_xor_words):
        return None
    return (f"cursor {w}x{h} at {bpp} bpp ({and_words} AND words, {xor_words} XOR words) exceeds "
            f"{lim.max_width}x{lim.max_height}, {lim.max_bpp} bpp, {lim.max_and_words} AND words, "
            f"{lim.max_xor_words} XOR words")


def _cursor_width(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev, Cmd.DEFINE_CURSOR)
    if cmd is None or cmd.width % 32 == 0:
        return None
    return f"width {cmd.width} is not a multiple of 32"


def _cursor_other_bpp(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev, Cmd.DEFINE_CURSOR)
    lim = ctx.value(Q.CURSOR_LIMITS)
    max_bpp = lim.max_bpp if isinstance(lim, CursorLimits) else 32
    if cmd is None or cmd.xor_mask_depth in (1, 32) or cmd.xor_mask_depth > max_bpp:
        return None
    return f"xor_mask_depth={cmd.xor_mask_depth}"


def _alpha_no_cap(ev: Event, ctx: Context) -> str | None:
    caps = ctx.profile.capabilities
    if _command(ev, Cmd.DEFINE_ALPHA_CURSOR) is None or caps & Cap.ALPHA_CURSOR:
        return None
    return f"CAPABILITIES 0x{int(caps):x} has no SVGA_CAP_ALPHA_CURSOR (0x200)"


def _stale_surface(ev: Event, ctx: Context) -> str | None:
    if _command(ev, Cmd.RECT_FILL, Cmd.RECT_COPY) is None or not ctx.stale:
        return None
    assert ctx.mode is not None and ctx.surface is not None
    (mw, mh), (sw, sh) = ctx.mode, ctx.surface
    return f"the mode is {mw}x{mh} but QEMU's display surface is still {sw}x{sh} (stride {sw * 4})"


def _fill_copy_outside(ev: Event, ctx: Context) -> str | None:
    return _outside(ev, ctx, (Cmd.RECT_FILL, Cmd.RECT_COPY))


def _update_outside(ev: Event, ctx: Context) -> str | None:
    return _outside(ev, ctx, (Cmd.UPDATE,))


def _any_rect_outside(ev: Event, ctx: Context) -> str | None:
    return _outside(ev, ctx, (Cmd.UPDATE, Cmd.RECT_FILL, Cmd.RECT_COPY, Cmd.FRONT_ROP_FILL))


def _mode_bpp(ev: Event, ctx: Context) -> str | None:
    if not isinstance(ev, Mode) or ev.bpp == 32:
        return None
    return f"BITS_PER_PIXEL={ev.bpp}"


def _mode_over_max(ev: Event, ctx: Context) -> str | None:
    p = ctx.profile
    if not isinstance(ev, Mode) or (ev.width <= p.max_width and ev.height <= p.max_height):
        return None
    return f"{ev.width}x{ev.height} is larger than MAX_WIDTH x MAX_HEIGHT = {p.max_width}x{p.max_height}"


def _mode_placeholder(ev: Event, ctx: Context) -> str | None:
    surface = ctx.value(Q.STALE_SURFACE)
    if (not isinstance(ev, Mode) or ctx.profile.note(Q.MODE_640X480_PLACEHOLDER) is None
            or not isinstance(surface, Surface)):
        return None
    if (ev.width, ev.height, ev.bpp) != (surface.width, surface.height, 32):
        return None
    return f"mode {ev.width}x{ev.height}x32 has the size and stride of QEMU's placeholder surface"


def _cursor_move_no_bypass(ev: Event, ctx: Context) -> str | None:
    caps = ctx.profile.capabilities
    if not isinstance(ev, CursorMove) or caps & (Cap.CURSOR_BYPASS | Cap.CURSOR_BYPASS_2):
        return None
    return f"CAPABILITIES 0x{int(caps):x} has no SVGA_CAP_CURSOR_BYPASS (0x40) or _2 (0x80)"


def _cursor_move_latch(ev: Event, ctx: Context) -> str | None:
    if not isinstance(ev, CursorMove) or ev.show is not None or ctx.profile.note(Q.CURSOR_ON_LATCH) is None:
        return None
    return "CURSOR_X/Y written without CURSOR_ON"


def _run_cap(ev: Event, ctx: Context) -> str | None:
    return f"this SYNC or refresh had already run {ctx.run_count} commands"


def _not_offered(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev)
    p = ctx.profile
    if cmd is None or p.offers(cmd.cmd_id, p.extended_fifo):
        return None
    needs = AVAILABILITY.get(cmd.cmd_id)
    return f"{cmd.name} needs {needs.text() if needs else '?'}, which profile {p.name} does not offer"


def _vmware_cursor_size(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev, Cmd.DEFINE_CURSOR, Cmd.DEFINE_ALPHA_CURSOR)
    m = ctx.profile.max_cursor
    if cmd is None or (cmd.width <= m and cmd.height <= m):
        return None
    return f"cursor {cmd.width}x{cmd.height} is larger than {m}x{m}"


def _vmware_cursor_depth(ev: Event, ctx: Context) -> str | None:
    cmd = _command(ev, Cmd.DEFINE_CURSOR)
    if cmd is None:
        return None
    bad = [f"{n}={cmd.args[n]}" for n in ("and_mask_depth", "xor_mask_depth") if cmd.args[n] not in (1, 32)]
    return ", ".join(bad) if bad else None


# -- the tables ---------------------------------------------------------------------------------
B, N = Severity.BREAKS, Severity.NOT_AS_INTENDED
_DESYNC = ("its FIFO parser then reads the following words as commands: STOP runs past NEXT_CMD "
           "into stale FIFO memory, later SYNCs can replay stale commands and later commands are "
           "lost (recovery: CONFIG_DONE=0, reset MIN/MAX/NEXT_CMD/STOP, CONFIG_DONE=1)")
_STALL = Rule("larger-than-fifo", B, _too_big,
              "it can never be complete in the FIFO ring, so the device waits for it forever: the "
              "FIFO stalls for good",
              "docs/qemu-7.2.md 'Incomplete commands'; REF SVGA_FIFOReserve l.584-611 (one dword "
              "stays free)")
_TRUNCATED = Rule("truncated", B, _truncated,
                  "the device waits for the rest (QEMU rewinds STOP and retries it on every run), and "
                  "whatever is written next is read as its remainder",
                  "docs/qemu-7.2.md 'Incomplete commands'; quirk incomplete-command-rewind")
_UNDECODABLE = Rule("undecodable", B, _undecodable,
                    "no reading of svga_reg.h gives the command a length, so the device cannot find "
                    "the next command",
                    "svga.commands table (svga_reg.h layouts; SVGA_CMD_MAX_DATASIZE l.1029)")

QEMU_RULES: tuple[Rule, ...] = (
    Rule("parser-desync", B, _miscounted, _DESYNC,
         "quirk parser-desync; docs/qemu-7.2.md 'Length-accounting overrun'; docs/qemu-7.2.md quirks 6-7"),
    Rule("unknown-id", B, _unknown,
         "QEMU does not count it as a command word, so " + _DESYNC + "; never pad the FIFO with "
         "zero words",
         "quirk parser-desync; docs/qemu-7.2.md command table rows 0 and 'other'"),
    Rule("cursor-and-mask-depth", B, _cursor_and_depth,
         "QEMU reads the AND mask as 1 bpp whatever the depth says, so it counts the command too "
         "short and " + _DESYNC + "; send and_mask_depth=1",
         "quirk cursor-and-mask-depth; docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    _STALL,
    _TRUNCATED,
    _UNDECODABLE,
    Rule("bpp-clears-config-done", B, _mode_bpp,
         "QEMU keeps 32 bpp but clears CONFIG_DONE: the FIFO stops until CONFIG_DONE=1 is written "
         "again; write 32 (or nothing)",
         "quirk bpp-clears-config-done; docs/qemu-7.2.md 'BITS_PER_PIXEL'"),
    Rule("mode-over-max", N, _mode_over_max,
         "QEMU ignores a WIDTH or HEIGHT above the maximum and keeps the old value (a guest error "
         "in its log)",
         "quirk mode-over-max-ignored; docs/qemu-7.2.md 'WIDTH/HEIGHT'"),
    Rule("mode-640x480", N, _mode_placeholder,
         "QEMU keeps showing its 'Guest has not initialized the display (yet)' placeholder; use "
         "another mode",
         "quirk mode-640x480-placeholder; docs/qemu-7.2.md quirk 1"),
    Rule("cursor-without-cap", N, _cursor_no_cap,
         "QEMU decodes it (the stream stays in step) but with no cursor-capable UI nothing is "
         "shown; draw the cursor into the framebuffer, or check with --profile qemu-cursor for QEMU "
         "with a VNC display",
         "quirks define-cursor-without-cap, cursor-cap-depends-on-ui; docs/qemu-7.2.md 'CAPABILITIES'"),
    Rule("cursor-limits", N, _qemu_cursor_limits,
         "QEMU rejects the cursor and skips its data; the old cursor stays",
         "quirk cursor-limits; docs/qemu-7.2.md 'DEFINE_CURSOR rules'; CVE-2016-7170"),
    Rule("cursor-width", N, _cursor_width,
         "QEMU steps mask rows by ceil(width/8) bytes where svga_reg.h pads them to 32 bits: the "
         "cursor renders garbled",
         "quirk cursor-decode; docs/qemu-7.2.md 'DEFINE_CURSOR rules'; REG l.1114-1115"),
    Rule("cursor-bpp", N, _cursor_other_bpp,
         "QEMU shows its built-in arrow instead of this image; use xor_mask_depth 1 or 32",
         "quirk cursor-other-bpp; docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    Rule("alpha-cursor-ignored", N, _alpha_no_cap,
         "QEMU skips it (its length is counted right) and no cursor is defined; send DEFINE_CURSOR "
         "with xor_mask_depth=32 instead",
         "quirk alpha-cursor-skipped; docs/qemu-7.2.md quirk 6; docs/qemu-7.2.md command table id 22"),
    Rule("stale-surface", N, _stale_surface,
         "QEMU checks and addresses fills and copies with the display surface of the last refresh: "
         "the pixels land with the old stride (striped garbage) and rectangles outside the old "
         "surface are dropped; headless only a screendump refreshes. Add a refresh after the mode "
         "change, or draw with the CPU and UPDATE",
         "quirk stale-surface; docs/qemu-7.2.md 'Stale-stride quirk'; docs/qemu-7.2.md quirk 2"),
    Rule("rect-outside", N, _fill_copy_outside,
         "QEMU drops the command (logging 'Unknown command'); the next command still runs",
         "quirk rect-outside-surface-dropped; docs/qemu-7.2.md quirk 6; VV vmsvga_verify_rect"),
    Rule("update-bad-rect", N, _update_outside,
         "QEMU updates the whole screen instead (minor: slower, not wrong)",
         "quirk update-bad-rect-full-screen; docs/qemu-7.2.md command table id 1"),
    Rule("cursor-move-without-cap", N, _cursor_move_no_bypass,
         "the cursor registers are stored but no host cursor is shown (QEMU without a "
         "cursor-capable UI)",
         "quirk cursor-cap-depends-on-ui; docs/qemu-7.2.md 'CAPABILITIES'"),
    Rule("cursor-move-latch", N, _cursor_move_latch,
         "QEMU moves the cursor only when CURSOR_ON is written with 0 or 1; add show or hide",
         "quirk cursor-on-latch; docs/qemu-7.2.md 'Cursor registers'"),
    Rule("run-cap", N, _run_cap,
         "QEMU runs at most 1023 commands per SYNC or refresh: this and later commands wait for the "
         "next one; drain by repeating SYNC until STOP == NEXT_CMD",
         "quirk sync-cap; docs/qemu-7.2.md 'Per-run cap'; docs/qemu-7.2.md quirk 3", Phase.LEFT),
)
"""QEMU 7.2 ``-vga vmware`` (profiles ``qemu`` and ``qemu-cursor``)."""

VMWARE_RULES: tuple[Rule, ...] = (
    Rule("not-offered", B, _not_offered,
         "svga_reg.h makes the command available only with that capability; a device without it "
         "does not implement it and cannot be relied on to skip it",
         "svga_reg.h 'Availability' lines (svga.model.profiles.AVAILABILITY)"),
    Rule("unknown-id", B, _unknown,
         "no command of svga_reg.h (0 is SVGA_CMD_INVALID_CMD): the device cannot know its length "
         "or find the next command",
         "svga_reg.h SVGAFifoCmdId l.1007-1027"),
    _STALL,
    _TRUNCATED,
    _UNDECODABLE,
    Rule("rect-outside", N, _any_rect_outside,
         "only the part inside the mode is on the screen (UPDATE copies what intersects a screen); "
         "the software model rejects it as a driver bug",
         "svga_reg.h SVGA_CMD_UPDATE l.1034-1045; svga.model.executor"),
    Rule("cursor-size", N, _vmware_cursor_size,
         "the device's cursor is at most that size; the cursor is not defined",
         "svga.model.profiles max_cursor (what vmwgfx and QEMU use)"),
    Rule("cursor-depth", N, _vmware_cursor_depth,
         "svga_reg.h allows only 1 or BITS_PER_PIXEL (32) for both mask depths",
         "REG l.1111-1112"),
    Rule("mode-over-max", N, _mode_over_max,
         "the device takes modes up to MAX_WIDTH x MAX_HEIGHT only; the mode is not set",
         "svga_reg.h SVGA_REG_MAX_WIDTH/HEIGHT l.120-121"),
    Rule("mode-bpp", N, _mode_bpp,
         "the profile has no SVGA_CAP_8BIT_EMULATION and this suite drives 32 bpp only",
         "svga_reg.h SVGA_CAP_8BIT_EMULATION l.422; docs/qemu-7.2.md 'Do and don't'"),
)
"""A VMware SVGA II device (profile ``vmware``): capabilities and svga_reg.h's rules."""


def rules_for(profile: Profile) -> tuple[Rule, ...]:
    """QEMU's table for a profile that carries QEMU's quirks, else VMware's."""
    return QEMU_RULES if profile.quirks else VMWARE_RULES


# -- playing a stream ---------------------------------------------------------------------------
def describe(event: Event) -> str:
    """A short name for an event in a finding (tails by size, not their bytes)."""
    if isinstance(event, Command):
        return event.text()
    if isinstance(event, Unknown):
        return f"raw 0x{event.cmd_id:x}"
    if isinstance(event, Truncated | Undecodable):
        return event.name
    if isinstance(event, Mode):
        return f"mode {event.width}x{event.height}x{event.bpp}"
    return format_event(event)


@dataclass
class _Player:
    """Plays a normalized stream against one profile, collecting findings."""

    ctx: Context
    rules: tuple[Rule, ...]
    findings: list[Finding] = field(default_factory=list)
    pending: deque[StreamItem] = field(default_factory=deque)

    @property
    def profile(self) -> Profile:
        return self.ctx.profile

    def apply(self, item: StreamItem, phase: Phase) -> None:
        for rule in self.rules:
            if rule.phase is not phase:
                continue
            detail = rule.check(item.event, self.ctx)
            if detail is None:
                continue
            reason = f"{detail}: {rule.reason}" if detail else rule.reason
            self.findings.append(Finding(item.position, describe(item.event), rule.severity, reason,
                                         rule.source, rule.key))

    def feed(self, item: StreamItem) -> None:
        ev = item.event
        if isinstance(ev, FIFO_EVENTS):
            # QEMU runs the FIFO only on a SYNC write or a display refresh; VMware as it goes.
            if self.profile.quirk(Q.REFRESH_RUNS_FIFO) is not None:
                self.pending.append(item)
            else:
                self.apply(item, Phase.RUN)
        elif isinstance(ev, Sync):
            self.run()
        elif isinstance(ev, Refresh):
            if self.profile.quirk(Q.STALE_SURFACE) is not None:
                self.ctx.surface = self.ctx.mode if self.ctx.mode is not None else self.ctx.surface
            if self.profile.quirk(Q.REFRESH_RUNS_FIFO) is not None:
                self.run()
        elif isinstance(ev, Mode):
            self.apply(item, Phase.RUN)
            self.set_mode(ev)
        else:
            self.apply(item, Phase.RUN)

    def set_mode(self, ev: Mode) -> None:
        # A WIDTH or HEIGHT above the maximum is not taken; the old value stays.
        p = self.profile
        old_w, old_h = self.ctx.mode if self.ctx.mode is not None else (None, None)
        width = ev.width if ev.width <= p.max_width else old_w
        height = ev.height if ev.height <= p.max_height else old_h
        self.ctx.mode = None if width is None or height is None else (width, height)

    def run(self, cap: bool = True) -> None:
        """One FIFO run: at most the profile's per-run cap of commands (QEMU's 1023)."""
        row = self.profile.quirk(Q.SYNC_CAP) if cap else None
        limit = int(row.value) if row is not None else None  # type: ignore[call-overload]
        self.ctx.run_count = 0
        while self.pending and (limit is None or self.ctx.run_count < limit):
            item = self.pending.popleft()
            self.apply(item, Phase.RUN)
            self.ctx.run_count += item.event.nwords if isinstance(item.event, Unknown) else 1
        if self.pending and limit is not None:
            self.apply(self.pending[0], Phase.LEFT)

    def finish(self) -> None:
        # What is still pending is checked as if the driver drained the FIFO now.
        self.run(cap=False)


def check_stream(items: Iterable[StreamItem], profile: Profile | str = "qemu") -> list[Finding]:
    """Every finding for a stream of (position, event) items on a profile (a
    :class:`~svga.model.profiles.Profile` or its name), in stream order."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    player = _Player(Context(prof), rules_for(prof))
    for item in normalize(items):
        player.feed(item)
    player.finish()
    return sorted(player.findings, key=lambda f: f.position.sort_key())


def breaks(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.BREAKS for f in findings)


# -- files and the command line -----------------------------------------------------------------
def load_stream(path: str, fmt: str = "auto") -> list[StreamItem]:
    """A stream from a file: binary FIFO words (``.bin`` or ``fmt="bin"``) or a script."""
    if fmt == "auto":
        fmt = "bin" if path.lower().endswith(".bin") else "script"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SVGAError(f"cannot read {path}: {e.strerror or e}") from None
    if fmt == "bin":
        return read_binary(data, path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScriptError(f"{path} is not a UTF-8 command script (for raw FIFO words use a .bin "
                          "name or --format bin)") from None
    return parse_script(text, path)


def summary(name: str, profile: Profile, findings: list[Finding], checked: int) -> str:
    nb = sum(f.severity is Severity.BREAKS for f in findings)
    if not findings:
        return f"{name}: clean on profile {profile.name} ({checked} commands checked)"
    return (f"{name}: {len(findings)} finding{'s' if len(findings) != 1 else ''} on profile "
            f"{profile.name}: {nb} break the device, {len(findings) - nb} not as intended")


def cmd_check(args: argparse.Namespace) -> int:
    if args.qemu_display == "vnc":
        if args.profile == "vmware":
            args.check_parser.error("--qemu-display applies to --profile qemu only")
        args.profile = "qemu-cursor"
    profile = get_profile(args.profile)
    items = load_stream(args.file, args.format)
    findings = check_stream(items, profile)
    if args.json:
        print(json.dumps({"file": args.file, "profile": profile.name,
                          "breaks": sum(f.severity is Severity.BREAKS for f in findings),
                          "not_as_intended": sum(f.severity is Severity.NOT_AS_INTENDED for f in findings),
                          "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f.text())
        commands = sum(isinstance(it.event, FIFO_EVENTS) for it in normalize(items))
        print(summary(args.file, profile, findings, commands))
    sys.stdout.flush()
    return 1 if breaks(findings) else 0


EXAMPLE_SCRIPT = """\
mode 800x600                     # WIDTH/HEIGHT writes (mode 800x600x32 also writes BPP)
refresh                          # a display refresh / screendump
RECT_FILL color=0xff0000 x=0 y=0 width=64 height=64
RECT_COPY src_x=0 src_y=0 dest_x=64 dest_y=0 width=64 height=64
UPDATE x=0 y=0 width=128 height=64
DEFINE_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=32 height=1 and_mask_depth=1 \
xor_mask_depth=1 and_mask=zeros xor_mask=hex:ffffffff
cursor 400 300 show              # CURSOR_X/Y, then CURSOR_ON
raw 0x1e 0x1                     # FIFO words as they are (here a FENCE, which QEMU breaks on)
sync                             # a SYNC write: the device runs the FIFO
"""
"""The example in ``svga check --help`` (the DEFINE_CURSOR item is one line)."""

EPILOG = f"""\
exit status: 1 if any finding breaks the device (or the file cannot be read or parsed),
0 otherwise (findings that are only "not as intended" are printed too).

a command script (one item per line, # comments):
{"".join("  " + line + chr(10) for line in EXAMPLE_SCRIPT.splitlines())}
Command lines use the names and fields of svga.commands (as `svga` prints them); tails
are name=hex:<bytes> or name=zeros. A .bin file is read as raw little-endian FIFO words.

examples:
  svga check examples/breaks-qemu.svgascript --profile qemu
  svga check capture.bin --profile vmware --json
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``svga check`` (called by svga.tools.cli)."""
    s = subparsers.add_parser(
        "check", help="lint a command script or FIFO words against QEMU's or VMware's device",
        description="List every command of a stream that the target device would not handle as "
                    "intended, with its line (or byte offset), severity and reason.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("file", metavar="FILE", help="a command script, or a .bin file of FIFO words")
    s.add_argument("--profile", choices=("qemu", "qemu-cursor", "vmware"), default="qemu",
                   help="the device: qemu (QEMU 7.2 -display none, capabilities 0x3), qemu-cursor "
                        "(QEMU with a VNC display, 0xE3) or vmware (default: qemu)")
    s.add_argument("--qemu-display", choices=("none", "vnc"), default="none",
                   help="with --profile qemu: vnc means qemu-cursor (default: none)")
    s.add_argument("--format", choices=("auto", "script", "bin"), default="auto",
                   help="how to read FILE (default: auto, .bin = FIFO words, else a script)")
    s.add_argument("--json", action="store_true", help="print the findings as JSON")
    s.set_defaults(func=cmd_check, check_parser=s)
