"""Tools layer: the capture commands of ``svga``: ``record``, ``replay``, ``dump``, ``convert``,
``capture info``, ``trim`` and ``diff`` (the work is in :mod:`svga.captures`).

A capture that cannot be read or played (bad magic, checksum, a bad text line, pixels out of
range, ...) prints one line ``svga: error: WHERE: what`` and exits 2; a replay refused by the
lint, or two devices whose screens differ, exit 1.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from svga.captures.diff import diff_capture
from svga.captures.files import load_capture, open_capture, save_capture
from svga.captures.replay import (
    Player,
    first_break,
    lint_for,
    model_device,
    parse_frames,
    profile_for,
    replay,
)
from svga.captures.trim import trim
from svga.commands import Command
from svga.device import RECORD_ENV, Device, open_device
from svga.errors import SVGAError
from svga.model.report import Observation
from svga.stream.capture import Capture, CaptureError, Frame, Header, Pixels, Time, frame_spans
from svga.stream.items import Mode, Raw
from svga.stream.text import format_capture_event, format_header

EXIT_BAD_INPUT = 2
DEVICES = "model, qemu, pci, auto or a PCI address"


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CaptureError as e:
            if getattr(args, "debug", False):
                raise
            print(f"svga: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return run


# -- opening devices ------------------------------------------------------------------------------
def open_target(spec: str, header: Header, profile: str | None, qemu_display: str | None,
                observations: list[Observation]) -> Device:
    """The device a capture replays on; the model is the one of ``profile`` (default: the
    capture's, else vmware) in its non-raising mode."""
    if spec == "model":
        return model_device(profile or header.profile or "vmware", observations)
    if spec == "qemu":
        display = qemu_display or ("vnc" if (profile or header.profile) == "qemu-cursor" else "none")
        return open_device("qemu", qemu_display=display)
    if spec == "auto":
        from svga.transport import pci

        if not pci.find_devices("/sys"):
            return model_device(profile or header.profile or "vmware", observations)
    return open_device(spec)


def _lint_gate(path: str, dev: Device, force: bool, say: Callable[[str], None],
               salvage: bool = False) -> None:
    if dev.transport.kind == "model":
        return
    profile = profile_for(dev)
    _, items = open_capture(path, salvage=salvage)
    findings = lint_for(items, profile)
    bad = first_break(findings)
    if bad is None:
        return
    text = f"{bad.position}: {bad.command} would break the device (profile {profile}): {bad.reason}"
    if force:
        say(f"warning: {text}; replaying anyway (--force)")
        return
    raise _Refused(f"{text}; not replayed (svga check {path} --profile {profile} lists every finding; "
                   "--force replays anyway)")


class _Refused(SVGAError):
    pass


class _Progress:
    """A one-line progress bar on stderr when it is a terminal."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, done: int, frame: int) -> None:
        if not self.enabled:
            return
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\rreplay [{bar:<30}] {done}/{self.total} items, frame {frame}")
        else:
            sys.stderr.write(f"\rreplay {done} items, frame {frame}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


# -- commands ---------------------------------------------------------------------------------------
def cmd_record(args: argparse.Namespace) -> int:
    cmd = list(args.command)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not cmd:
        raise CaptureError("no command given: svga record FILE.svgacap -- CMD...")
    env = dict(os.environ, **{RECORD_ENV: os.path.abspath(args.file)})
    try:
        status = subprocess.call(cmd, env=env)
    except OSError as e:
        raise CaptureError(f"cannot run {cmd[0]}: {e.strerror or e}") from None
    if not Path(args.file).exists():
        print(f"svga: {cmd[0]} opened no device (nothing recorded in {args.file})", file=sys.stderr)
    return status


def cmd_replay(args: argparse.Namespace) -> int:
    say = (lambda s: None) if args.quiet else (lambda s: print(f"svga: {s}", file=sys.stderr))
    salvaged: list[str] = []
    header, items = open_capture(args.capture, salvage=args.salvage)
    total = operator.length_hint(items) or None  # known for the text form
    frames = parse_frames(args.frames) if args.frames else None
    observations: list[Observation] = []
    shots: list[str] = []
    if args.screenshots:
        try:
            Path(args.screenshots).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CaptureError(f"cannot make {args.screenshots}: {e.strerror or e}") from None
    try:
        with open_target(args.device, header, args.profile, args.qemu_display, observations) as dev:
            _lint_gate(args.capture, dev, args.force, say, args.salvage)
            header, items = open_capture(args.capture, salvage=args.salvage, on_salvage=salvaged.append)
            player = Player(dev)

            def frame_end(n: int, p: Player) -> None:
                if args.screenshots:
                    path = Path(args.screenshots) / f"frame-{n:05d}.png"
                    Image.fromarray(p.screen(args.cursor)).save(path)
                    shots.append(str(path))

            progress = _Progress(total, not args.quiet)
            seen = replay(items, player, header, frames=frames, speed=args.speed,
                          on_frame_end=frame_end, progress=progress)
            progress.end()
            if args.screenshot:
                _save(player.screen(args.cursor), args.screenshot)
            if args.marker:
                from svga.lab import marker

                marker.signal(args.marker)
    except _Refused as e:
        print(f"svga: error: {e}", file=sys.stderr)
        return 1
    for reason in salvaged:
        say(f"salvaged: stopped at a damaged chunk: {reason}")
    errors = sum(o.error for o in observations)
    say(f"replayed {player.commands} commands, {seen} frames on {dev.transport.description}"
        + (f"; the model refused {errors} commands (svga check lists them)" if errors else ""))
    if args.screenshot:
        print(args.screenshot)
    for s in shots:
        print(s)
    return 0


def _save(rgb, path: str) -> None:  # noqa: ANN001 - an (h, w, 3) array
    try:
        Image.fromarray(rgb).save(path)
    except (OSError, ValueError) as e:
        raise CaptureError(f"cannot write {path}: {e}") from None


def cmd_dump(args: argparse.Namespace) -> int:
    header, items = open_capture(args.capture, salvage=args.salvage)
    out = sys.stdout if args.output in (None, "-") else None
    lines = (format_capture_event(it.event) + "\n" for it in items)
    if out is not None:
        out.write(format_header(header) + "\n")
        for line in lines:
            out.write(line)
        return 0
    save_capture(args.output, Capture(header, list(open_capture(args.capture, salvage=args.salvage)[1])),
                 "text")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    cap = load_capture(args.input, salvage=args.salvage)
    save_capture(args.output, cap, args.to)
    print(args.output)
    return 0


def info(path: str) -> dict[str, object]:
    """What ``svga capture info`` shows, as plain data."""
    header, items = open_capture(path)
    kinds: Counter[str] = Counter()
    modes: list[str] = []
    frames: set[int] = {0}
    pixel_bytes = command_bytes = pixel_events = 0
    last_us = 0
    for item in items:
        ev = item.event
        if isinstance(ev, Command):
            kinds[ev.name] += 1
            command_bytes += ev.nwords * 4
        elif isinstance(ev, Raw):
            kinds["raw"] += 1
            command_bytes += 4 * len(ev.words)
        elif isinstance(ev, Pixels):
            pixel_events += 1
            pixel_bytes += len(ev.data)
        elif isinstance(ev, Mode):
            modes.append(f"{ev.width}x{ev.height}x{ev.bpp}")
        elif isinstance(ev, Frame):
            frames.add(ev.n)
        elif isinstance(ev, Time):
            last_us = max(last_us, ev.us)
    return {"file": path, "bytes": Path(path).stat().st_size, "recorded_on": header.kind,
            "profile": header.profile, "capabilities": header.capabilities,
            "fifo_capabilities": header.fifo_capabilities, "vram_size": header.vram_size,
            "fifo_size": header.fifo_size, "start_mode": "x".join(map(str, header.start_mode)),
            "frames": len(frames), "commands": sum(kinds.values()), "command_bytes": command_bytes,
            "commands_by_kind": dict(kinds.most_common()), "pixel_events": pixel_events,
            "pixel_bytes": pixel_bytes, "modes": modes, "duration_s": last_us / 1e6}


def cmd_info(args: argparse.Namespace) -> int:
    data = info(args.capture)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"file:          {data['file']} ({data['bytes']} bytes)")
    profile = f" (profile {data['profile']})" if data["profile"] else ""
    print(f"recorded on:   {data['recorded_on']}{profile}")
    print(f"capabilities:  0x{data['capabilities']:08x}, FIFO 0x{data['fifo_capabilities']:08x}")
    print(f"VRAM / FIFO:   {data['vram_size']} / {data['fifo_size']} bytes")
    print(f"start mode:    {data['start_mode']}")
    print(f"frames:        {data['frames']}")
    print(f"duration:      {data['duration_s']:.6f} s")
    print(f"commands:      {data['commands']} ({data['command_bytes']} bytes)")
    for name, n in data["commands_by_kind"].items():  # type: ignore[attr-defined]
        print(f"  {name:<24} {n}")
    print(f"pixel data:    {data['pixel_events']} rectangles, {data['pixel_bytes']} bytes")
    print(f"modes:         {', '.join(data['modes']) or '-'}")  # type: ignore[arg-type]
    return 0


def cmd_trim(args: argparse.Namespace) -> int:
    lo, hi = parse_frames(args.frames)
    cap = load_capture(args.capture)
    out = trim(cap, lo, hi, args.capture)
    save_capture(args.output, out)
    kept = [s[0] for s in frame_spans(out.items)]
    print(f"{args.output}: frames {kept[0]}..{kept[-1]} ({len(out.items)} items)")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    if len(args.device) != 2:
        raise CaptureError("svga diff needs two --device options, e.g. --device model --device qemu")
    cap = load_capture(args.capture)
    profiles = list(args.profile or [])
    while len(profiles) < 2:
        profiles.append(profiles[-1] if profiles else None)
    names = tuple(f"{d}-{i}" if args.device[0] == args.device[1] else d
                  for i, d in enumerate(args.device))

    def opener(i: int) -> Callable[[], Device]:
        return lambda: open_target(args.device[i], cap.header, profiles[i], None, [])

    result = diff_capture(cap, opener(0), opener(1), cursor=args.cursor)
    print(result.text(names))  # type: ignore[arg-type]
    if result.frame is None:
        return 0
    if args.diff:
        for p in result.save(args.diff, names):  # type: ignore[arg-type]
            print(p)
    return 1


# -- parsers -----------------------------------------------------------------------------------------
FORMAT_HELP = """\
A capture is a .svgacap file (binary, chunked, checksummed; docs/capture-format.md) or its text
form, the command-script grammar of `svga check` with more lines (a .svgascript is a capture):
  frame 1                          frame 1 starts here
  time 0.016667                    seconds since the start
  reg ENABLE=1                     any register write
  fiforeg CURSOR_X=100             a FIFO register write (cursor bypass 3)
  pixels 0 0 64 48 png=cat.png     CPU-drawn pixels from a PNG beside the capture
  pixels 8 8 2 2 zlib=BASE64 [key] ... or inline (base64 of zlib of 0x00RRGGBB words)

exit status: 0 done, 1 refused or differs, 2 a capture that cannot be read or played.
"""


def _formatter(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``record``, ``replay``, ``dump``, ``convert``, ``capture``, ``trim`` and
    ``diff`` (called by svga.tools.cli)."""
    s = subparsers.add_parser(
        "record", help="record what a program does to the device into a capture",
        description="Run CMD with SVGA_RECORD=FILE: every svga.device.open_device() in it records "
                    "into FILE (the last one opened wins).",
        epilog="examples:\n  svga record demo.svgacap -- svga demo --device qemu --out demo.png\n"
               "  svga record run.svgacap -- python3 my_drawing.py\n\n" + FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("file", metavar="FILE.svgacap")
    s.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")
    s.set_defaults(func=_guard(cmd_record))

    s = subparsers.add_parser(
        "replay", help="replay a capture on a device, take screenshots",
        description="Play a capture on a device. Before a real device (qemu, pci) the capture is "
                    "linted for it (svga check) and refused, naming the first command that would "
                    "break it, unless --force.",
        epilog="examples:\n  svga replay captures/fills.svgascript --screenshot out.png\n"
               "  svga replay run.svgacap --device qemu --frames 10..20 --screenshots shots/\n"
               "  svga replay crashed.svgacap --salvage --screenshot last.png\n\n" + FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("capture", metavar="CAP")
    s.add_argument("--device", "-d", default="model", metavar="DEV", help=f"{DEVICES} (default: model)")
    s.add_argument("--profile", choices=("qemu", "qemu-cursor", "vmware"),
                   help="the model's profile (default: the capture's, else vmware)")
    s.add_argument("--qemu-display", choices=("none", "vnc"),
                   help="QEMU's display (default: vnc for a qemu-cursor capture, else none)")
    s.add_argument("--frames", metavar="A..B", help="play up to frame B; screenshots of A..B only")
    s.add_argument("--screenshot", metavar="OUT.png", help="the screen at the end")
    s.add_argument("--screenshots", metavar="DIR", help="one PNG per frame, DIR/frame-NNNNN.png")
    s.add_argument("--speed", choices=("max", "realtime"), default="max",
                   help="as fast as it goes, or keeping to the capture's timestamps")
    s.add_argument("--cursor", action="store_true",
                   help="draw the hardware cursor into the screenshots where the device can (model)")
    s.add_argument("--force", action="store_true", help="replay even what the lint says breaks the device")
    s.add_argument("--salvage", action="store_true",
                   help="replay the intact chunks of a damaged capture, stop at the first bad one")
    s.add_argument("--marker", metavar="NAME", help=argparse.SUPPRESS)  # lab: signal when drawn
    s.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    s.set_defaults(func=_guard(cmd_replay))

    s = subparsers.add_parser("dump", help="print a capture in its text form",
                              description="Print the text form of a capture (binary or text).",
                              epilog="example:\n  svga dump run.svgacap | less\n\n" + FORMAT_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("capture", metavar="CAP")
    s.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    s.add_argument("--salvage", action="store_true", help="stop quietly at the first damaged chunk")
    s.set_defaults(func=_guard(cmd_dump))

    s = subparsers.add_parser("convert", help="convert a capture between text and .svgacap",
                              description="Read a capture in either form, write it in the form its "
                                          "name says (.svgacap: binary, anything else: text).",
                              epilog="examples:\n  svga convert run.svgacap run.svgascript\n"
                                     "  svga convert captures/fills.svgascript fills.svgacap\n",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("input", metavar="IN")
    s.add_argument("output", metavar="OUT")
    s.add_argument("--to", choices=("auto", "binary", "text"), default="auto")
    s.add_argument("--salvage", action="store_true", help="convert what is intact of a damaged capture")
    s.set_defaults(func=_guard(cmd_convert))

    cap = subparsers.add_parser("capture", help="facts about a capture (svga capture info CAP)",
                                description="Facts about a capture.")
    csub = cap.add_subparsers(dest="capture_command", metavar="{info}", required=True)
    s = csub.add_parser("info", help="frames, commands by kind, bytes, pixel data, modes, duration",
                        description="Frames, commands by kind, bytes, pixel data, modes, duration and "
                                    "the device it was recorded on.",
                        epilog="example:\n  svga capture info run.svgacap --json\n",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("capture", metavar="CAP")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_guard(cmd_info))

    s = subparsers.add_parser("trim", help="cut a capture to frames A..B, opened by a keyframe",
                              description="Keep frames A..B; the result starts with a keyframe of the "
                                          "state at A (mode, framebuffer, cursor), made on the model.",
                              epilog="example:\n  svga trim run.svgacap --frames 100..120 -o part.svgacap\n",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("capture", metavar="CAP")
    s.add_argument("--frames", required=True, metavar="A..B")
    s.add_argument("--output", "-o", required=True, metavar="OUT")
    s.set_defaults(func=_guard(cmd_trim))

    s = subparsers.add_parser(
        "diff", help="replay on two devices, name where their screens first differ",
        description="Replay a capture on two devices, compare the screens at every frame, and name "
                    "the first frame and the first item after which they differ. Exit 0 if they "
                    "never do, 1 if they do.",
        epilog="examples:\n  svga diff captures/scroll.svgascript --device model --device qemu\n"
               "  svga diff run.svgacap --device model --profile vmware --device model --profile qemu "
               "--diff out/\n", formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("capture", metavar="CAP")
    s.add_argument("--device", "-d", action="append", default=[], metavar="DEV",
                   help=f"{DEVICES}; give it twice")
    s.add_argument("--profile", action="append", choices=("qemu", "qemu-cursor", "vmware"),
                   help="the profile of each model, in order (default: the capture's)")
    s.add_argument("--diff", metavar="DIR", help="write both screenshots and diff.png here")
    s.add_argument("--cursor", action="store_true", help="compare with the hardware cursor drawn in")
    s.set_defaults(func=_guard(cmd_diff))
