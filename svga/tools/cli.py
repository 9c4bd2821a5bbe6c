"""Tools layer: the ``svga`` command line.

Each subcommand is a thin layer over the driver's public API (svga.device). Errors a user
can cause or meet print one line, ``svga: error: ...``, and exit non-zero; no traceback
unless ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from svga.device import DEVICE_KINDS, Device, open_device
from svga.errors import SVGAError

EPILOG = """\
devices:
  auto     the SVGA II PCI device of this VM if there is one, else the software model
  model    the built-in software model of the device (--profile vmware or qemu)
  qemu     QEMU's real device model, driven from this host through qtest (needs qemu-system-x86)
  pci      the first SVGA II PCI device (root; no kernel driver bound)
  ADDR     a PCI address, e.g. 0000:00:02.0

The model and a qemu device live only as long as one command: draw and take the screenshot
in the same command (svga demo) or from Python (svga.device.open_device).

examples:
  svga demo --out demo.png                 draw the test pattern on the default device
  svga demo --device qemu --out qemu.png   the same on QEMU's device, screenshot by QEMU
  svga info --device model --profile qemu  what a QEMU 7.2 guest sees
  svga mode 1024x768                       set a mode on the default device
  svga check examples/breaks-qemu.svgascript --profile qemu   what QEMU would not handle
  svga lab run -- svga info --device pci   the driver on QEMU's device inside a guest (root)
"""


def _add_device_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("device")
    g.add_argument("--device", "-d", default="auto", metavar="DEV",
                   help=f"which device: {', '.join(DEVICE_KINDS)} or a PCI address (default: auto)")
    g.add_argument("--profile", choices=("vmware", "qemu", "qemu-cursor"), default="vmware",
                   help="capabilities of the software model: vmware (extended FIFO, fences, cursors, "
                        "screen objects), qemu (what QEMU 7.2 offers headless: 0x3) or qemu-cursor "
                        "(QEMU with a VNC display: 0xE3) (default: vmware)")
    g.add_argument("--qemu-display", choices=("none", "vnc"), default="none",
                   help="QEMU's display for --device qemu: none (capabilities 0x3) or vnc "
                        "(0xE3: hardware cursor) (default: none)")
    g.add_argument("--accel", choices=("auto", "on", "off"), default="auto",
                   help="use the device's own fill/copy: auto (where it is right), on, off")
    g.add_argument("--record", metavar="FILE.svgacap",
                   help="record everything sent to the device into a capture (svga replay plays it)")


def _open(args: argparse.Namespace) -> Device:
    options = {"profile": args.profile}
    if args.device == "qemu":
        options = {"qemu_display": args.qemu_display}
    elif args.device not in ("auto", "model"):
        options = {}
    return open_device(args.device, accel=args.accel, record=args.record, **options)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``svga: error: ...``, with exit
    status ``usage_status`` (1, as every other error; ``svga compare`` sets 2, its "bad
    input"). ``--help`` still exits 0. Subparsers inherit the class."""

    usage_status = 1

    def error(self, message: str) -> NoReturn:
        self.exit(self.usage_status, f"svga: error: {' '.join(message.split())} (see {self.prog} --help)\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every argument added (to check its metavar); left to
        # find its own width, the first one imports shutil (and with it bz2, lzma and zlib: 3-4 ms
        # of every command's start-up). The width is the one shutil would give it.
        return self.formatter_class(prog=self.prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """What ``shutil.get_terminal_size().columns`` gives (COLUMNS, else the terminal of
    standard output, else 80), without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def parse_mode(text: str) -> tuple[int, int, int]:
    """``1024x768`` or ``1024x768x32`` -> (width, height, 32); any other depth is refused
    (the driver sets 32 bpp modes only), and so are a zero width or height."""
    m = re.fullmatch(r"(\d{1,6})x(\d{1,6})(?:x(\d{1,3}))?", text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"mode {text!r} is not WIDTHxHEIGHT or WIDTHxHEIGHTx32")
    width, height, bpp = int(m[1]), int(m[2]), int(m[3] or 32)
    if bpp != 32:
        raise argparse.ArgumentTypeError(f"mode {text!r}: only 32 bpp modes are supported")
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"mode {text!r}: width and height must be at least 1")
    return width, height, bpp


def parse_color(text: str) -> int:
    """``0xRRGGBB`` (or any integer literal) in 0..0xFFFFFF."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"colour {text!r} is not a number like 0xRRGGBB") from None
    if not 0 <= value <= 0xFFFFFF:
        raise argparse.ArgumentTypeError(f"colour {text!r} is outside 0x000000..0xFFFFFF")
    return value


DEMO_MIN = (80, 64)
"""The smallest mode the demo pattern fits (its checker block and copies need room); it also
needs a width of at least half the height. tests/test_hostile_cli.py draws it on a sample of
modes and checks that every mode these rules let through draws."""


def demo_mode(text: str) -> tuple[int, int, int]:
    """A mode for ``svga demo``: parse_mode, and refused up front where the pattern does not fit."""
    width, height, bpp = parse_mode(text)
    if width < DEMO_MIN[0] or height < DEMO_MIN[1] or 2 * width < height:
        raise argparse.ArgumentTypeError(
            f"mode {text!r} is too small for the demo pattern: it needs at least "
            f"{DEMO_MIN[0]}x{DEMO_MIN[1]} and a width of at least half the height")
    return width, height, bpp


def _progress(quiet: bool) -> Callable[[str], None]:
    if quiet:
        return lambda s: None
    return lambda s: print(f"svga: {s}", file=sys.stderr, flush=True)


# -- subcommands --------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    with _open(args) as dev:
        info = dev.info()
        profile = getattr(dev.transport, "profile", None)
    # The model's values: where each comes from (docs/svga-kit.md 'Capability bits').
    sources = dict(getattr(profile, "sources", {}) or {})
    if sources:
        info["sources"] = sources
    if args.json:
        import json  # only here: 2 ms of start-up for the text report

        print(json.dumps(info, indent=2))
        return 0
    mode = info["mode"]
    print(f"device:            {info['device']}")
    print(f"version:           SVGA_ID_{info['version']}")
    print(f"capabilities:      0x{info['capabilities']:08x} {' '.join(info['capability_names']) or '-'}")
    print(f"FIFO capabilities: 0x{info['fifo_capabilities']:08x} "
          f"{' '.join(info['fifo_capability_names']) or '-'}")
    print(f"VRAM:              {info['vram_size'] // 1024} KiB (framebuffer {info['fb_size'] // 1024} KiB)")
    print(f"FIFO:              {info['fifo_size'] // 1024} KiB")
    print(f"largest mode:      {info['max_mode'][0]}x{info['max_mode'][1]}")
    print(f"current mode:      {mode['width']}x{mode['height']}x{mode['bpp']} "
          f"(depth {mode['depth']}, {mode['bytes_per_line']} bytes/line, "
          f"{'enabled' if mode['enabled'] else 'disabled'})")
    if sources:
        print(f"profile {profile.name}: where the values come from")  # type: ignore[union-attr]
        for name, source in sources.items():
            print(f"  {name + ':':19}{source}")
    return 0


def cmd_mode(args: argparse.Namespace) -> int:
    width, height, bpp = args.mode
    with _open(args) as dev:
        mode = dev.set_mode(width, height, bpp)
        if args.clear is not None:
            dev.fill(args.clear, 0, 0, width, height)
        print(f"mode {mode.width}x{mode.height}x{mode.bpp}, {mode.pitch} bytes/line, "
              f"framebuffer at offset {mode.fb_offset}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from svga.tools.demo import draw_demo

    width, height, _ = args.mode
    say = _progress(args.quiet)
    with _open(args) as dev:
        say(f"device: {dev.transport.description}")
        counts = draw_demo(dev, width, height, progress=say)
        _save(dev.screenshot_array(source=args.source, cursor=not args.no_cursor), args.out)
    say(f"{counts['fills']} fills, {counts['copies']} copies, {counts['updates']} updates")
    print(args.out)
    return 0


NO_CURSOR_HERE = (
    "--cursor: no cursor to draw: this command opened the device afresh, and a cursor's shape "
    "lives only in the process that defined it (no device lets its image be read back); take the "
    "screenshot where the cursor is drawn: svga demo --out, or dev.screenshot(composite=True) "
    "from Python")


def cmd_screenshot(args: argparse.Namespace) -> int:
    with _open(args) as dev:
        if args.cursor and getattr(dev, "_cursor_shape", None) is None:
            # The driver remembers the cursor it defined (svga.device, for composite=True);
            # a device opened by this command has had none defined through it.
            raise SVGAError(NO_CURSOR_HERE)
        if args.screen is None:
            dev.adopt_mode()
        _save(dev.screenshot_array(source=args.source, cursor=not args.no_cursor or args.cursor,
                                   composite=args.cursor, screen=args.screen), args.out)
    print(args.out)
    return 0


def _save(rgb, path: str) -> None:  # noqa: ANN001 - an (h, w, 3) uint8 array
    """Write a screenshot with the suite's own PNG writer (svga.qa.png: a few ms for 1080p)."""
    from svga.qa.png import encode_png

    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise SVGAError("the display is empty (a 0x0 mode and no screens): nothing to save")
    data = encode_png(rgb)
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise SVGAError(f"cannot write {path}: {e.strerror or e}") from None


# -- parser -------------------------------------------------------------------------------
def _add_info(sub: argparse._SubParsersAction, help_line: str) -> None:
    s = sub.add_parser("info", help=help_line,
                       description="Negotiate with the device and print what it offers.")
    _add_device_options(s)
    s.add_argument("--json", action="store_true", help="print JSON instead of text")
    s.set_defaults(func=cmd_info)


def _add_mode(sub: argparse._SubParsersAction, help_line: str) -> None:
    s = sub.add_parser("mode", help=help_line,
                       description="Set WIDTHxHEIGHT[x32] (only 32 bpp is supported) and check the "
                                   "device took it.")
    s.add_argument("mode", type=parse_mode, metavar="WIDTHxHEIGHT[x32]")
    s.add_argument("--clear", type=parse_color, metavar="0xRRGGBB",
                   help="fill the new mode with this colour")
    _add_device_options(s)
    s.set_defaults(func=cmd_mode)


def _add_demo(sub: argparse._SubParsersAction, help_line: str) -> None:
    s = sub.add_parser("demo", help=help_line,
                       description="Draw a recognisable test pattern (gradient, fills, copies, tiny "
                                   "updates, a cursor) and save a screenshot of it.")
    _add_device_options(s)
    s.add_argument("--mode", type=demo_mode, default=(800, 600, 32), metavar="WxH",
                   help=f"mode to draw in, at least {DEMO_MIN[0]}x{DEMO_MIN[1]} (default: 800x600)")
    s.add_argument("--out", "-o", default="svga-demo.png", help="PNG to write (default: svga-demo.png)")
    s.add_argument("--source", choices=("display", "vram"), default="display",
                   help="screenshot what the display shows (model, QEMU screendump) or read VRAM")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    s.add_argument("--no-cursor", action="store_true",
                   help="leave the hardware cursor out of the screenshot (as QEMU's screendump does)")
    s.set_defaults(func=cmd_demo)


def _add_screenshot(sub: argparse._SubParsersAction, help_line: str) -> None:
    s = sub.add_parser("screenshot", help=help_line,
                       description="Save the device's current screen (its current mode) as a PNG.")
    _add_device_options(s)
    s.add_argument("out", help="PNG to write")
    s.add_argument("--source", choices=("display", "vram"), default="display",
                   help="what the display shows, or the framebuffer memory")
    s.add_argument("--no-cursor", action="store_true", help="leave the hardware cursor out")
    s.add_argument("--cursor", action="store_true",
                   help="draw the hardware cursor in, as the device shows it: QEMU's screendump and "
                        "VRAM never include it, so the cursor the driver defined is composited (the "
                        "model draws its own). The cursor must have been defined in this same process: "
                        "a device this command opens has none, and no device gives a cursor's image "
                        "back, so run on its own it stops with an error (exit 1) rather than save a "
                        "picture without the cursor. To get one: svga demo --out, or "
                        "dev.screenshot(composite=True) from Python")
    s.add_argument("--screen", type=int, metavar="N",
                   help="only Screen Object N (devices with Screen Objects; default: the whole "
                        "display, the bounding box of all screens)")
    s.set_defaults(func=cmd_screenshot)


BUILTINS: dict[str, tuple[Callable[[argparse._SubParsersAction, str], None], str]] = {
    "info": (_add_info, "show the device, its version, capabilities, memory and mode"),
    "mode": (_add_mode, "set a display mode, e.g. 1024x768"),
    "demo": (_add_demo, "draw the test pattern and write a PNG screenshot"),
    "screenshot": (_add_screenshot, "save what the device shows now as a PNG"),
}
"""The subcommands this module implements, with the line each shows in ``svga --help``."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``svga`` parser. With ``argv``, only the command it names is built whole (for a tool
    module's command, that module is imported and adds all of its commands); every other
    command is listed with its help line and built when it runs. Without, every command is
    built whole."""
    command = None if argv is None else _command_of(argv) or ""
    p = OneLineParser(
        prog="svga",
        description="Drive a VMware SVGA II display adapter from user space: on the real device "
                    "in a VM, on QEMU's device model, or on the built-in software model.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks and driver logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, (add, help_line) in BUILTINS.items():
        if command is None or command == name:
            add(sub, help_line)
        else:
            _placeholder(sub, name, help_line)

    commands = set(EXTENSIONS) if command is None else {command}
    modules = {EXTENSIONS[name][0] for name in commands if name in EXTENSIONS}
    added: set[str] = set()
    for name, (module, help_line) in EXTENSIONS.items():
        if name in added:
            continue
        if module in modules:
            # The module of a command about to run (or of every command, for a full
            # parser): a broken import fails loudly, every one of them ships with the package.
            before = set(sub.choices)
            importlib.import_module(module).add_parser(sub)
            added |= set(sub.choices) - before
        else:
            _placeholder(sub, name, help_line)  # listed in svga --help, built when it runs
            added.add(name)
    if "compare" in sub.choices:
        sub.choices["compare"].usage_status = 2  # its documented "bad input" status
    return p


def _placeholder(sub: argparse._SubParsersAction, name: str, help_line: str) -> None:
    """A command listed in ``svga --help`` that does not run in this process: its help line
    only (no --help of its own either: a parser with nothing to parse costs a third less)."""
    sub.add_parser(name, help=help_line, add_help=False)


EXTENSIONS: dict[str, tuple[str, str]] = {
    "lab": ("svga.lab.cli", "run commands in a real QEMU guest with the SVGA II device"),
    "check": ("svga.tools.check", "lint a command script or FIFO words against QEMU's or VMware's device"),
    "compare": ("svga.tools.compare", "check a screenshot against a PNG or an openQA needle"),
    "needle": ("svga.tools.needle", "make openQA needles (JSON + PNG) from screenshots"),
    "record": ("svga.tools.capture_cli", "record what a program does to the device into a capture"),
    "replay": ("svga.tools.capture_cli", "replay a capture on a device, take screenshots"),
    "dump": ("svga.tools.capture_cli", "print a capture in its text form"),
    "convert": ("svga.tools.capture_cli", "convert a capture between text and .svgacap"),
    "capture": ("svga.tools.capture_cli", "facts about a capture (svga capture info CAP)"),
    "trim": ("svga.tools.capture_cli", "cut a capture to frames A..B, opened by a keyframe"),
    "diff": ("svga.tools.capture_cli", "replay on two devices, name where their screens first differ"),
}
"""Subcommands whose parsers live in their own tool modules (the lab, the lint, QA, captures),
with the line each shows in ``svga --help``. A module is imported only when one of its
commands runs (its ``add_parser`` then adds all of them), so ``svga info`` does not pay for the
lab or the lint; tests/test_cli.py checks that these lines are the modules' own."""


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not a top-level option), or None."""
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return token
    return None


def _negative_mode(argv: Sequence[str]) -> str | None:
    """A token like ``-5x3`` (argparse would read it as an unknown option and say the mode is
    missing): the one-line error to print instead."""
    for token in argv:
        if token == "--":
            break
        if re.fullmatch(r"-\d+x-?\d+(x\d+)?", token):
            return f"mode {token!r}: width and height must be positive whole numbers"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    negative = _negative_mode(argv)
    if negative is not None:
        parser.error(negative)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="svga: %(levelname)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except SVGAError as e:
        if args.debug:
            raise
        print(f"svga: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("svga: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
