"""Tools layer: ``svga check``, a lint for a command stream.

It reads a stream (a command script, :mod:`svga.stream.script`, or binary FIFO words; a
capture reader can feed the same :class:`~svga.stream.items.StreamItem` sequence) and plays
it on the software model of the target device (:class:`svga.model.ModelTransport` with the
profile ``qemu``, ``qemu-cursor`` or ``vmware``), through the driver's own FIFO writer, in its
non-raising mode: everything the model refuses or imitates of QEMU's quirks is reported
(:mod:`svga.model.report`), and each report becomes a finding with its position, a severity
and the reason, from the effect the profile gives it (:mod:`svga.facts`):

- ``breaks``: the device stops working as a whole: QEMU's FIFO parser desyncs (and can
  replay stale commands), the FIFO stalls for good, or it stops processing;
- ``not as intended``: the command is dropped, ignored, drawn wrong or widened, and the
  stream goes on.

So the lint and the model cannot disagree. Only what the model cannot be given keeps a rule
here: a word with no command id (its length is unknown, and on QEMU a parser desync the model
does not imitate), a command longer than any FIFO ring, and a stream that ends inside a
command or whose command has no length.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from svga.commands import Command
from svga.device import Device
from svga.errors import SVGAError
from svga.facts.effects import E, Impact
from svga.facts.kit import largest_command
from svga.facts.profiles import Profile, get_profile
from svga.model import ModelTransport
from svga.model.report import Observation
from svga.registers import Reg
from svga.stream.items import (
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
from svga.stream.script import ScriptError, format_event

Severity = Impact
"""A finding's severity is the effect's impact (:class:`svga.facts.effects.Impact`)."""

DRAIN_ROUNDS = 1000
"""SYNC writes at the end of a stream to drain what is still pending (QEMU runs at most 1023
commands per SYNC, so this covers a million pending commands)."""


@dataclass(frozen=True)
class Finding:
    position: Position
    command: str
    """The command (fixed fields; tails by size) or device action."""
    severity: Severity
    reason: str
    source: str
    """Where the fact comes from (quirk key, docs/ section, svga_reg.h)."""
    rule: str

    def text(self) -> str:
        return f"{self.position}: {self.severity}: {self.command}: {self.reason} [{self.source}]"

    def as_dict(self) -> dict[str, object]:
        return {"position": str(self.position), "line": self.position.line,
                "offset": self.position.offset, "severity": str(self.severity),
                "command": self.command, "reason": self.reason, "source": self.source,
                "rule": self.rule}


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


def _signed(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _unknown_detail(ev: Unknown) -> str:
    if ev.cmd_id == 0:
        if ev.nwords == 1:
            return "a zero word (INVALID_CMD)"
        return f"{ev.nwords} zero words (INVALID_CMD padding)"
    text = f"command id {ev.cmd_id} is not in the command table"
    if ev.nwords > 1:
        text += f"; the {ev.nwords - 1} words after it, to the next item, are not checked"
    return text


@dataclass
class _Player:
    """Plays a normalized stream on a non-raising model of one profile, through the driver's
    FIFO writer, and turns what the model reports into findings."""

    profile: Profile
    findings: dict[tuple[Position, str], Finding] = field(default_factory=dict)
    where: dict[int, StreamItem] = field(default_factory=dict)
    """The item whose command starts at each FIFO offset now in the ring."""
    current: StreamItem | None = None
    """The item being fed (what offset-less reports, register writes, are about)."""
    quiet_cap: bool = False
    """Inside a SYNC the driver makes on its own (the ring is full, the stream ends), QEMU's
    run cap only means the driver writes SYNC again: not a finding."""

    def __post_init__(self) -> None:
        self.model = ModelTransport(self.profile, observer=self.observe)
        self.dev = Device(self.model)
        self.dev.enable()  # the FIFO laid out as the driver lays it out, ENABLE, CONFIG_DONE

    # -- findings --------------------------------------------------------------------------
    def add(self, item: StreamItem, key: E, detail: str) -> None:
        effect = self.profile.effect(key)
        rule = key if key in self.profile.effects else E.MODEL_REJECTS
        found = Finding(item.position, describe(item.event), effect.impact,
                        f"{detail}: {effect.advice}" if detail else effect.advice, effect.source, rule)
        self.findings.setdefault((item.position, rule), found)

    def observe(self, obs: Observation) -> None:
        if obs.key is E.RUN_CAP and self.quiet_cap:
            return
        item = self.where.get(obs.offset) if obs.offset is not None else None
        item = item or self.current
        if item is None:
            item = StreamItem(Position("<stream>"), Sync())
        self.add(item, obs.key, obs.detail)

    # -- playing -----------------------------------------------------------------------------
    def feed(self, item: StreamItem) -> None:
        ev = item.event
        self.current = item
        regs = self.dev.regs
        if isinstance(ev, Command):
            self.write(item, ev)
        elif isinstance(ev, Unknown):
            self.add(item, E.UNKNOWN_ID, _unknown_detail(ev))
        elif isinstance(ev, Truncated):
            self.add(item, E.TRUNCATED, f"the stream ends inside {ev.name}: it needs {ev.needed} words, "
                                        f"{ev.available} are there")
        elif isinstance(ev, Undecodable):
            self.add(item, E.UNDECODABLE, f"{ev.reason}; the {ev.nwords} words from here to the end are "
                                          "not checked")
        elif isinstance(ev, Mode):
            regs.write(Reg.WIDTH, ev.width)
            regs.write(Reg.HEIGHT, ev.height)
            regs.write(Reg.BITS_PER_PIXEL, ev.bpp)
        elif isinstance(ev, Sync):
            regs.write(Reg.SYNC, 1)
        elif isinstance(ev, Refresh):
            self.model.refresh()
        elif isinstance(ev, CursorMove):
            regs.write(Reg.CURSOR_X, ev.x)
            regs.write(Reg.CURSOR_Y, ev.y)
            if ev.show is not None:
                regs.write(Reg.CURSOR_ON, int(ev.show))
            shown = self.model.state.cursor_pos
            if (shown.x, shown.y) != (_signed(ev.x), _signed(ev.y)):
                self.add(item, E.CURSOR_MOVE_LATCH,
                         f"CURSOR_X/Y written without CURSOR_ON: the device still shows the cursor at "
                         f"{shown.x},{shown.y}")

    def write(self, item: StreamItem, cmd: Command) -> None:
        limit = largest_command(self.model.fifo.size)
        if cmd.nwords * 4 > limit:
            self.add(item, E.LARGER_THAN_FIFO, f"{cmd.nwords * 4}-byte command; the "
                                               f"{self.model.fifo.size // 1024} KiB FIFO holds at most "
                                               f"{limit} bytes of commands")
            return
        self.where[self.dev.fifo.next_offset] = item
        self.quiet_cap = True
        try:
            self.dev.fifo.write_command(cmd.encode())
        finally:
            self.quiet_cap = False
        self.model.catch_up()

    def finish(self) -> None:
        """What is still pending is run as a driver drains the FIFO: SYNC until it is empty."""
        self.current = None
        self.quiet_cap = True
        engine = self.model.engine
        for _ in range(DRAIN_ROUNDS):
            if engine.drained() or not self.model.state.fifo_running:
                break
            self.dev.regs.write(Reg.SYNC, 1)


def check_stream(items: Iterable[StreamItem], profile: Profile | str = "qemu") -> list[Finding]:
    """Every finding for a stream of (position, event) items on a profile (a
    :class:`~svga.facts.profiles.Profile` or its name), in stream order."""
    player = _Player(get_profile(profile))
    for item in normalize(items):
        player.feed(item)
    player.finish()
    return sorted(player.findings.values(), key=lambda f: f.position.sort_key())


def breaks(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.BREAKS for f in findings)


# -- files and the command line -----------------------------------------------------------------
MAX_STREAM_BYTES = 1 << 20
"""The largest script or .bin file ``svga check`` reads (1 MiB: 262,144 FIFO words, some
seconds on the model; the check's memory grows with the stream, so a bound on the input is a
bound on the check)."""


def _read_bounded(path: str, limit: int = MAX_STREAM_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. Pipes, devices and sockets are
    refused before a byte is read (a FIFO with no writer would block for ever, /dev/zero never
    ends); opened with O_NONBLOCK so that not even the open of a FIFO waits."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise SVGAError(f"cannot read {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SVGAError(f"{path} is not a regular file (a pipe, device or socket): save the "
                            "stream to a file first")
        if st.st_size > limit:
            raise SVGAError(f"{path} is {st.st_size} bytes; svga check reads at most {limit}")
        try:
            data = f.read(limit + 1)  # a file still growing is caught here
        except OSError as e:
            raise SVGAError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > limit:
        raise SVGAError(f"{path} is more than {limit} bytes; svga check reads at most {limit}")
    return data


def load_stream(path: str, fmt: str = "auto") -> list[StreamItem]:
    """A stream from a regular file of at most MAX_STREAM_BYTES: binary FIFO words (``.bin``
    or ``fmt="bin"``) or a script."""
    if fmt == "auto":
        fmt = "bin" if path.lower().endswith(".bin") else "script"
    data = _read_bounded(path)
    if fmt == "bin":
        return read_binary(data, path)
    # A capture (binary, or the script grammar with its pixels/frame/reg lines) is the same stream.
    from svga.stream import binary
    from svga.stream import capture as events
    from svga.stream import text as capture_text

    if data.startswith(binary.MAGIC):
        return list(events.lint_stream(binary.read_capture(path).items))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScriptError(f"{path} is not a UTF-8 command script (for raw FIFO words use a .bin "
                          "name or --format bin)") from None
    return list(events.lint_stream(capture_text.parse_capture(text, path).items))


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
