"""Device facts: QEMU 7.2's ``-vga vmware`` behaviours that a guest can see, as one table.

Each row says what QEMU does, what the model does about it, whether that is an imitation,
and where the fact comes from (docs/qemu-7.2.md and docs/lab.md in this repository;
"VV" is QEMU's hw/display/vmware_vga.c). The ``qemu`` profile carries this table;
the register file, the FIFO engine and the command executor ask it by key
(``profile.quirk(Q.SYNC_CAP)``) instead of testing the profile's name, so a behaviour is
switched in one place and documented in the same row. The ``vmware`` profile carries no
quirks: there the model is strict (it raises :class:`svga.errors.ModelError`).

Each row says *how* the model carries it out (:class:`Via`): by a switch the code looks up,
through the profile's data, on every profile, or not at all. Rows not imitated are
documentation: there QEMU does something a driver must never rely on (desync its FIFO
parser, drop a command silently), and the model raises an error naming the command and
its FIFO offset instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from svga.commands import Cmd
from svga.facts.effects import E, Effect, Impact
from svga.facts.kit import STREAM_EFFECTS


class Q(StrEnum):
    """Keys of the quirk table."""

    SYNC_CAP = "sync-cap"
    BUSY_READS_ZERO = "busy-reads-zero"
    BPP_CLEARS_CONFIG = "bpp-clears-config-done"
    MODE_OVER_MAX_IGNORED = "mode-over-max-ignored"
    ENABLE_BOOL = "enable-stored-as-bool"
    DISPLAY_NEEDS_CONFIG = "display-needs-config-done"
    STALE_SURFACE = "stale-surface"
    REFRESH_RUNS_FIFO = "refresh-runs-fifo"
    MODE_640X480_PLACEHOLDER = "mode-640x480-placeholder"
    PLACEHOLDER_UPDATES = "placeholder-shows-only-updates"
    CURSOR_DECODE = "cursor-decode"
    CURSOR_LIMITS = "cursor-limits"
    CURSOR_AND_DEPTH = "cursor-and-mask-depth"
    CURSOR_OTHER_BPP = "cursor-other-bpp"
    RECT_OUTSIDE_DROPPED = "rect-outside-surface-dropped"
    UPDATE_BAD_RECT_FULL = "update-bad-rect-full-screen"
    PARSER_DESYNC = "parser-desync"
    ALPHA_CURSOR_SKIPPED = "alpha-cursor-skipped"
    CURSOR_WITHOUT_CAP = "define-cursor-without-cap"
    FIFO_POINTERS_SILENT = "fifo-pointers-silent"
    INCOMPLETE_REWIND = "incomplete-command-rewind"
    CURSOR_ON_LATCH = "cursor-on-latch"
    BIOS_PORT = "bios-port"
    PALETTE_READS_ZERO = "palette-reads-zero"
    PITCHLOCK_IGNORED = "pitchlock-ignored"
    NO_EXTENDED_FIFO = "no-extended-fifo"
    CURSOR_CAP_UI = "cursor-cap-depends-on-ui"


@dataclass(frozen=True)
class CursorLimits:
    """QEMU's DEFINE_CURSOR limits: a larger cursor is rejected (and its data skipped)."""

    max_width: int
    max_height: int
    max_and_words: int
    max_xor_words: int
    max_bpp: int

    @staticmethod
    def words(width: int, height: int, bpp: int) -> tuple[int, int]:
        """QEMU's own counts of a cursor's AND and XOR words: the AND mask taken as 1 bpp,
        rows padded to 32 bits."""
        return (width + 31) // 32 * height, (width * bpp + 31) // 32 * height

    def exceeded(self, width: int, height: int, bpp: int) -> str | None:
        """Why QEMU rejects a cursor of this size and depth, or None if it takes it."""
        and_words, xor_words = self.words(width, height, bpp)
        if (width <= self.max_width and height <= self.max_height and bpp <= self.max_bpp
                and and_words <= self.max_and_words and xor_words <= self.max_xor_words):
            return None
        return (f"cursor {width}x{height} at {bpp} bpp ({and_words} AND words, {xor_words} XOR words) "
                f"exceeds QEMU's limits ({self.max_width}x{self.max_height}, {self.max_bpp} bpp, "
                f"{self.max_and_words} AND words, {self.max_xor_words} XOR words)")

    def largest_square(self, bpp: int) -> int:
        """The largest square cursor QEMU takes at this depth (64 at 32 bpp)."""
        side = min(self.max_width, self.max_height)
        while side and self.exceeded(side, side, bpp) is not None:
            side -= 1
        return side


@dataclass(frozen=True)
class Surface:
    """A QEMU display surface: what fills, copies and updates are checked against."""

    width: int
    height: int
    stride: int


class Via(StrEnum):
    """How the model carries a row out."""

    SWITCH = "switch"
    """The code looks the key up in the profile (``profile.quirk(key)``)."""
    PROFILE = "profile"
    """It follows from the profile's data (capabilities, sizes)."""
    ALWAYS = "always"
    """The model does this on every profile."""
    NOT_IMITATED = "not imitated"
    """The model differs on purpose (usually: raises ModelError); documentation only."""


@dataclass(frozen=True)
class Quirk:
    key: Q
    qemu: str
    """What QEMU 7.2 does."""
    model: str
    """What the model does with the ``qemu`` profile."""
    via: Via
    source: str
    value: object = None
    """The quirk's parameter, where it has one (a cap, a surface, a set of ids)."""

    @property
    def imitated(self) -> bool:
        return self.via is not Via.NOT_IMITATED


QEMU_CURSOR_LIMITS = CursorLimits(max_width=256, max_height=256, max_and_words=1024,
                                  max_xor_words=4096, max_bpp=32)
QEMU_HEADLESS_SURFACE = Surface(640, 480, 640 * 4)
QEMU_RUNS_WITHOUT_CAP = frozenset({Cmd.DEFINE_CURSOR})
"""Commands QEMU 7.2 decodes and applies although CAPABILITIES does not offer them."""
QEMU_REDRAW_QUEUE = 512
"""Rectangles QEMU 7.2 queues for the next refresh before it copies them early
(REDRAW_FIFO_LEN)."""
QEMU_COUNTED_IDS = frozenset({Cmd.UPDATE, Cmd.RECT_FILL, Cmd.RECT_COPY, Cmd.DEFINE_CURSOR,
                              Cmd.DEFINE_ALPHA_CURSOR})
"""Command ids whose length QEMU 7.2's parser counts right (UPDATE, RECT_FILL, RECT_COPY,
DEFINE_CURSOR with a 1-bpp AND mask, DEFINE_ALPHA_CURSOR); any other word desyncs it."""

_ROWS: tuple[Quirk, ...] = (
    Quirk(Q.SYNC_CAP,
          "one FIFO run (a SYNC write or a refresh) handles at most 1023 commands: the loop "
          "counter starts at 1024 and is decremented before it is tested",
          "imitated: a run stops after 1023 commands; the rest waits for the next SYNC",
          Via.SWITCH, "docs/qemu-7.2.md 'Per-run cap'; docs/qemu-7.2.md quirk 3; VV vmsvga_fifo_run", 1023),
    Quirk(Q.BUSY_READS_ZERO,
          "BUSY (and SYNC) read the 'syncing' flag, which is 0 again when the SYNC write "
          "returns; a BUSY read processes nothing, even with commands pending",
          "imitated: BUSY reads 0 and runs nothing",
          Via.SWITCH, "docs/qemu-7.2.md 'SYNC / BUSY'; docs/qemu-7.2.md quirk 3"),
    Quirk(Q.BPP_CLEARS_CONFIG,
          "writing BITS_PER_PIXEL other than 32 clears CONFIG_DONE (the FIFO stops); "
          "writing 32 afterwards does not set it again",
          "imitated (the vmware profile raises ModelError instead)",
          Via.SWITCH, "docs/qemu-7.2.md 'BITS_PER_PIXEL'; VV vmsvga_value_write"),
    Quirk(Q.MODE_OVER_MAX_IGNORED,
          "WIDTH above 2368 or HEIGHT above 1770 is ignored (logged); the old value stays",
          "imitated (the vmware profile raises ModelError instead)",
          Via.SWITCH, "docs/qemu-7.2.md 'WIDTH/HEIGHT'"),
    Quirk(Q.ENABLE_BOOL,
          "ENABLE is stored as 0/1, so ENABLE_HIDE (2) reads back 1",
          "imitated (the vmware profile stores the value)",
          Via.SWITCH, "docs/qemu-7.2.md 'ENABLE'"),
    Quirk(Q.DISPLAY_NEEDS_CONFIG,
          "the display shows the SVGA framebuffer only while ENABLE and CONFIG_DONE are both "
          "set; otherwise the refresh is VGA emulation's: after firmware set up VGA text mode "
          "that is shown; with VGA never programmed (no firmware, as under qtest) it draws "
          "nothing and the last SVGA surface stays on screen, still showing VRAM",
          "imitated as far as the SVGA side goes: nothing runs and no new surface is taken "
          "while disabled. Not imitated: the model has no VGA emulation and shows black "
          "instead of the VGA picture or the stale surface",
          Via.SWITCH, "VV vmsvga_update_display; qemu/qemu hw/display/vga.c vga_draw_blank; "
          "differential test (tests/test_differential.py)"),
    Quirk(Q.STALE_SURFACE,
          "RECT_FILL, RECT_COPY and UPDATE are checked against, and addressed with the stride "
          "of, the display surface of the last refresh; only a refresh adopts a new mode. "
          "Headless, the surface is 640x480 (stride 2560) until the first screendump",
          "imitated: fills and copies use the surface of the last display_image() call (a "
          "refresh, like QEMU's screendump); it starts as 640x480, stride 2560",
          Via.SWITCH, "docs/qemu-7.2.md 'Stale-stride quirk'; docs/qemu-7.2.md quirk 2",
          QEMU_HEADLESS_SURFACE),
    Quirk(Q.REFRESH_RUNS_FIFO,
          "a display refresh adopts the mode as the new surface and then runs the FIFO "
          "(1023-command cap), if ENABLE and CONFIG_DONE are set",
          "imitated: display_image() adopts the mode and runs the FIFO first, so pending "
          "commands are drawn (and their errors raised) as QEMU's screendump would draw them",
          Via.SWITCH,
          "docs/qemu-7.2.md 'What triggers a run'; docs/qemu-7.2.md quirk 3; VV vmsvga_update_display"),
    Quirk(Q.MODE_640X480_PLACEHOLDER,
          "while a mode of exactly 640x480x32 has been the only one refreshed, QEMU keeps its "
          "placeholder surface (same size and stride), which shows the text \"Guest has not "
          "initialized the display (yet).\" in QEMU's VGA font, grey (#aaaaaa) on black",
          "not imitated: the placeholder is black in the model (the text, 1044 pixels within "
          "x 144..492, y 226..238, is drawn with QEMU's own font); see "
          "placeholder-shows-only-updates. Also not imitated: a refresh while SVGA is disabled "
          "runs QEMU's VGA emulation, which in a guest whose firmware set a text mode replaces "
          "the placeholder with its 720x400 text surface, so a later 640x480 mode is shown "
          "(seen in the lab, tests/test_lab_svga.py); under qtest VGA was never programmed and "
          "the placeholder stays. The model follows the qtest case",
          Via.NOT_IMITATED, "docs/qemu-7.2.md quirk 1; differential test (tests/test_differential.py)"),
    Quirk(Q.PLACEHOLDER_UPDATES,
          "the placeholder surface is not VRAM: only the rectangles of UPDATE, RECT_FILL and "
          "RECT_COPY are copied into it from VRAM (stride 2560), when the next refresh flushes "
          "its redraw queue, or early when 512 are queued; an UPDATE rectangle outside the "
          "surface copies all of it; the queue is dropped instead if WIDTH, HEIGHT, ENABLE or a "
          "bad BITS_PER_PIXEL was written since the last refresh ('invalidated'). CPU drawing "
          "without UPDATE never shows",
          "imitated: a 640x480 placeholder image (black) that only flushed rectangles reach, "
          "with the same queue, early copy and drop rules; the first refresh in another mode "
          "replaces it for good",
          Via.SWITCH, "VV vmsvga_update_rect, vmsvga_update_rect_flush, vmsvga_check_size, "
          "vmsvga_value_write; differential test (tests/test_differential.py)", QEMU_REDRAW_QUEUE),
    Quirk(Q.CURSOR_DECODE,
          "DEFINE_CURSOR: the AND mask is taken as 1 bpp whatever andMaskDepth says, and mask "
          "rows are stepped by ceil(w/8) bytes although VMware pads rows to 32 bits (widths "
          "that are not a multiple of 32 render garbled); 1 bpp: AND bit = transparent, else "
          "XOR bit = white/black; 32 bpp: alpha from the AND bit, colour = XOR & 0xffffff",
          "imitated: the decoded image is the one QEMU hands its UI (the vmware profile decodes "
          "rows padded to 32 bits and composites (screen AND and) XOR xor)",
          Via.SWITCH, "docs/qemu-7.2.md 'DEFINE_CURSOR rules'; VV vmsvga_cursor_define"),
    Quirk(Q.CURSOR_LIMITS,
          "a cursor wider or higher than 256, deeper than 32 bpp, or with more than 1024 AND "
          "or 4096 XOR words is rejected silently and its data skipped",
          "same limits, but the model raises ModelError (the command is skipped)",
          Via.NOT_IMITATED, "docs/qemu-7.2.md 'DEFINE_CURSOR rules'; CVE-2016-7170", QEMU_CURSOR_LIMITS),
    Quirk(Q.CURSOR_AND_DEPTH,
          "an andMaskDepth other than 1 (allowed by svga_reg.h) makes QEMU count the command "
          "too short: its parser desyncs",
          "not imitated: ModelError naming the command and its offset; the command is skipped "
          "by its svga_reg.h length",
          Via.NOT_IMITATED, "docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    Quirk(Q.CURSOR_OTHER_BPP,
          "an xorMaskDepth other than 1 or 32 (but at most 32) shows QEMU's built-in arrow",
          "not imitated: ModelError (the arrow bitmap is QEMU's own)",
          Via.NOT_IMITATED, "docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    Quirk(Q.RECT_OUTSIDE_DROPPED,
          "a RECT_FILL or RECT_COPY outside the surface is dropped with an 'Unknown command' "
          "log line; the next command still runs",
          "not imitated: ModelError naming the command, its offset and the surface; the "
          "command is skipped and later ones still run",
          Via.NOT_IMITATED, "docs/qemu-7.2.md quirk 6; VV vmsvga_verify_rect"),
    Quirk(Q.UPDATE_BAD_RECT_FULL,
          "an UPDATE whose rectangle is not inside the surface becomes a full-screen update",
          "imitated: the damage recorded is the whole surface (logged at DEBUG, as QEMU 7.2 "
          "traces it); no error",
          Via.SWITCH, "docs/qemu-7.2.md command table, id 1; VV vmsvga_update_rect"),
    Quirk(Q.PARSER_DESYNC,
          "FENCE, UPDATE_VERBOSE, ESCAPE, ids 34-42, RECT_ROP_*, FRONT_ROP_FILL, unknown ids "
          "and zero words are counted wrong: STOP runs past NEXT_CMD into stale FIFO memory "
          "and later SYNCs replay old commands",
          "not imitated: ModelError naming the command and its FIFO offset; a known command "
          "is skipped by its svga_reg.h length, an unknown id drops the rest of the pending "
          "stream (its length is unknown); STOP never passes NEXT_CMD",
          Via.NOT_IMITATED, "docs/qemu-7.2.md 'Length-accounting overrun'; docs/qemu-7.2.md quirks 6-8",
          QEMU_COUNTED_IDS),
    Quirk(Q.ALPHA_CURSOR_SKIPPED,
          "DEFINE_ALPHA_CURSOR is skipped cleanly (no ALPHA_CURSOR cap); one bigger than the "
          "ring stalls the FIFO for good",
          "not imitated: ModelError (command not offered by the capabilities), skipped",
          Via.NOT_IMITATED, "docs/qemu-7.2.md quirk 6; docs/qemu-7.2.md command table, id 22"),
    Quirk(Q.CURSOR_WITHOUT_CAP,
          "DEFINE_CURSOR is decoded and applied even when CAPABILITIES lacks SVGA_CAP_CURSOR "
          "(-display none); with no cursor-capable UI nothing is shown",
          "imitated: the command is reported as not offered (a ModelError on a strict run) and "
          "the cursor is still defined, as QEMU does",
          Via.SWITCH, "VV vmsvga_fifo_run (HW_MOUSE_ACCEL is always compiled in)", QEMU_RUNS_WITHOUT_CAP),
    Quirk(Q.FIFO_POINTERS_SILENT,
          "bad FIFO pointers (unaligned, MIN < 16, MAX > 64 KiB, MAX < MIN + 10 KiB) stall "
          "processing silently; NEXT_CMD and STOP are not checked against [MIN, MAX)",
          "not imitated: ModelError naming the bad pointer; nothing is processed",
          Via.NOT_IMITATED, "docs/qemu-7.2.md 'Checks each run'; CVE-2016-4454"),
    Quirk(Q.INCOMPLETE_REWIND,
          "a command running past NEXT_CMD is rewound: STOP goes back to its start and it is "
          "retried on a later run",
          "imitated for STOP (it stays at the command), and the model also raises ModelError, "
          "since a driver should never SYNC in the middle of a command",
          Via.ALWAYS, "docs/qemu-7.2.md 'Incomplete commands'"),
    Quirk(Q.CURSOR_ON_LATCH,
          "the cursor moves only when CURSOR_ON is written with 0 or 1, using the stored "
          "CURSOR_X/Y; values 2 and 3 do not reach the display",
          "imitated (the vmware profile behaves the same for its register cursor)",
          Via.ALWAYS, "docs/qemu-7.2.md 'Cursor registers'; VV SVGA_REG_CURSOR_ON"),
    Quirk(Q.BIOS_PORT,
          "BAR0+2 is a 'BIOS port' that reads 0xcafe; other offsets but 0 and 1 read 0xFFFFFFFF",
          "imitated", Via.SWITCH, "docs/qemu-7.2.md 'PCI'", 0xCAFE),
    Quirk(Q.PALETTE_READS_ZERO,
          "the palette registers (1024-1791) read 0 and ignore writes",
          "imitated (the vmware profile stores them)", Via.SWITCH, "docs/qemu-7.2.md 'Other registers'"),
    Quirk(Q.PITCHLOCK_IGNORED,
          "PITCHLOCK reads 0 and ignores writes (no pitch lock of any kind)",
          "imitated (the vmware profile offers SVGA_CAP_PITCHLOCK and honours it)",
          Via.SWITCH, "docs/qemu-7.2.md 'BYTES_PER_LINE'"),
    Quirk(Q.NO_EXTENDED_FIFO,
          "no extended FIFO: MEM_REGS reads 0, FIFO words >= 4 are plain memory, FIFO_FENCE is "
          "never written, FIFO_BUSY never cleared",
          "imitated through the profile's data (no EXTENDED_FIFO cap, MEM_REGS 0)",
          Via.PROFILE, "docs/qemu-7.2.md 'FIFO processing'"),
    Quirk(Q.CURSOR_CAP_UI,
          "CAPABILITIES is 0x3 with -display none and 0xE3 (CURSOR, CURSOR_BYPASS, CURSOR_BYPASS_2) "
          "when a UI that can define cursors is attached (a VNC display, even with no client)",
          "imitated as two profiles: qemu (0x3) and qemu-cursor (0xE3, or cursor=True)",
          Via.PROFILE, "docs/qemu-7.2.md 'CAPABILITIES'; docs/lab.md 'The devices the guest sees'"),
)

QEMU_7_2: Mapping[Q, Quirk] = MappingProxyType({row.key: row for row in _ROWS})
"""QEMU 7.2's quirks by key."""

NONE: Mapping[Q, Quirk] = MappingProxyType({})



# -- what QEMU 7.2 does with what a driver should not send (the lint's findings) -------------------
B, N = Impact.BREAKS, Impact.NOT_AS_INTENDED
_DESYNC = ("its FIFO parser then reads the following words as commands: STOP runs past NEXT_CMD "
           "into stale FIFO memory, later SYNCs can replay stale commands and later commands are "
           "lost (recovery: CONFIG_DONE=0, reset MIN/MAX/NEXT_CMD/STOP, CONFIG_DONE=1)")

QEMU_INSTEAD: Mapping[int, str] = MappingProxyType({
    Cmd.FENCE: " (on QEMU drain with SYNC until STOP == NEXT_CMD instead)",
    Cmd.UPDATE_VERBOSE: " (send UPDATE instead)",
    Cmd.RECT_ROP_FILL: " (send RECT_FILL instead)",
    Cmd.RECT_ROP_COPY: " (send RECT_COPY instead)",
})
"""What to send QEMU 7.2 instead of a command its parser miscounts."""

QEMU_NOT_OFFERED: Mapping[int, E] = MappingProxyType({
    Cmd.DEFINE_CURSOR: E.CURSOR_WITHOUT_CAP,
    Cmd.DEFINE_ALPHA_CURSOR: E.ALPHA_CURSOR_IGNORED,
})
"""What a command the capabilities do not offer does on QEMU 7.2, where it is not a parser
desync: the ids QEMU counts right (:data:`QEMU_COUNTED_IDS`) are skipped or applied cleanly;
any other id desyncs the parser (:data:`E.PARSER_DESYNC`)."""

QEMU_EFFECTS: Mapping[E, Effect] = MappingProxyType({
    **STREAM_EFFECTS,
    E.PARSER_DESYNC: Effect(
        B, _DESYNC,
        "quirk parser-desync; docs/qemu-7.2.md 'Length-accounting overrun'; docs/qemu-7.2.md quirks 6-7"),
    E.UNKNOWN_ID: Effect(
        B, "QEMU does not count it as a command word, so " + _DESYNC + "; never pad the FIFO with "
           "zero words",
        "quirk parser-desync; docs/qemu-7.2.md 'Command table' rows 0 and 'other'"),
    E.CURSOR_AND_DEPTH: Effect(
        B, "QEMU reads the AND mask as 1 bpp whatever the depth says, so it counts the command too "
           "short and " + _DESYNC + "; send and_mask_depth=1",
        "quirk cursor-and-mask-depth; docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    E.BPP_CLEARS_CONFIG: Effect(
        B, "QEMU keeps 32 bpp but clears CONFIG_DONE: the FIFO stops until CONFIG_DONE=1 is written "
           "again; write 32 (or nothing)",
        "quirk bpp-clears-config-done; docs/qemu-7.2.md 'BITS_PER_PIXEL'"),
    E.MODE_OVER_MAX: Effect(
        N, "QEMU ignores a WIDTH or HEIGHT above the maximum and keeps the old value (a guest error "
           "in its log)",
        "quirk mode-over-max-ignored; docs/qemu-7.2.md 'WIDTH/HEIGHT'"),
    E.MODE_640X480: Effect(
        N, "QEMU keeps showing its 'Guest has not initialized the display (yet)' placeholder; use "
           "another mode",
        "quirk mode-640x480-placeholder; docs/qemu-7.2.md quirk 1"),
    E.CURSOR_WITHOUT_CAP: Effect(
        N, "QEMU decodes it (the stream stays in step) but with no cursor-capable UI nothing is "
           "shown; draw the cursor into the framebuffer, or check with --profile qemu-cursor for QEMU "
           "with a VNC display",
        "quirks define-cursor-without-cap, cursor-cap-depends-on-ui; docs/qemu-7.2.md 'CAPABILITIES'"),
    E.CURSOR_LIMITS: Effect(
        N, "QEMU rejects the cursor and skips its data; the old cursor stays",
        "quirk cursor-limits; docs/qemu-7.2.md 'DEFINE_CURSOR rules'; CVE-2016-7170"),
    E.CURSOR_WIDTH: Effect(
        N, "QEMU steps mask rows by ceil(width/8) bytes where svga_reg.h pads them to 32 bits: the "
           "cursor renders garbled",
        "quirk cursor-decode; docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    E.CURSOR_BPP: Effect(
        N, "QEMU shows its built-in arrow instead of this image; use xor_mask_depth 1 or 32",
        "quirk cursor-other-bpp; docs/qemu-7.2.md 'DEFINE_CURSOR rules'"),
    E.ALPHA_CURSOR_IGNORED: Effect(
        N, "QEMU skips it (its length is counted right) and no cursor is defined; send DEFINE_CURSOR "
           "with xor_mask_depth=32 instead",
        "quirk alpha-cursor-skipped; docs/qemu-7.2.md quirk 6; docs/qemu-7.2.md 'Command table' id 22"),
    E.STALE_SURFACE: Effect(
        N, "QEMU checks and addresses fills and copies with the display surface of the last refresh: "
           "the pixels land with the old stride (striped garbage) and rectangles outside the old "
           "surface are dropped; headless only a screendump refreshes. Add a refresh after the mode "
           "change, or draw with the CPU and UPDATE",
        "quirk stale-surface; docs/qemu-7.2.md 'Stale-stride quirk'; docs/qemu-7.2.md quirk 2"),
    E.RECT_OUTSIDE: Effect(
        N, "QEMU drops the command (logging 'Unknown command'); the next command still runs",
        "quirk rect-outside-surface-dropped; docs/qemu-7.2.md quirk 6; VV vmsvga_verify_rect"),
    E.UPDATE_BAD_RECT: Effect(
        N, "QEMU updates the whole screen instead (minor: slower, not wrong)",
        "quirk update-bad-rect-full-screen; docs/qemu-7.2.md 'Command table' id 1"),
    E.CURSOR_MOVE_WITHOUT_CAP: Effect(
        N, "the cursor registers are stored but no host cursor is shown (QEMU without a "
           "cursor-capable UI)",
        "quirk cursor-cap-depends-on-ui; docs/qemu-7.2.md 'CAPABILITIES'"),
    E.CURSOR_MOVE_LATCH: Effect(
        N, "QEMU moves the cursor only when CURSOR_ON is written with 0 or 1; add show or hide",
        "quirk cursor-on-latch; docs/qemu-7.2.md 'Cursor registers'"),
    E.RUN_CAP: Effect(
        N, "QEMU runs at most 1023 commands per SYNC or refresh: this and later commands wait for the "
           "next one; drain by repeating SYNC until STOP == NEXT_CMD",
        "quirk sync-cap; docs/qemu-7.2.md 'Per-run cap'; docs/qemu-7.2.md quirk 3"),
    E.FIFO_POINTERS: Effect(
        B, "QEMU stalls silently on such pointers: nothing is processed",
        "quirk fifo-pointers-silent; docs/qemu-7.2.md 'Checks each run'"),
    E.INCOMPLETE: Effect(
        B, "QEMU rewinds STOP to the command and retries it on every run until the rest is written",
        "quirk incomplete-command-rewind; docs/qemu-7.2.md 'Incomplete commands'"),
    E.MODEL_REJECTS: Effect(
        N, "the software model rejects it as a driver bug (QEMU may draw something else or nothing)",
        "svga.model strict checks; docs/qemu-7.2.md 'Command table'"),
})
"""QEMU 7.2 ``-vga vmware`` (profiles ``qemu`` and ``qemu-cursor``)."""
