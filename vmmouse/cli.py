"""The ``vmmouse`` command: ``run`` (the bridge daemon), ``probe`` and ``events``.

Tools layer of the input side: parses arguments, sets up logging to stderr (the journal
picks it up under systemd), wires a source, a wake-up and a sink together through
``vmmouse.sources`` and ``vmmouse.daemon``, and turns every user-facing error into one line
and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from svga.errors import SVGAError
from vmmouse.daemon import Daemon, drop_privileges
from vmmouse.events import PointerEvent
from vmmouse.mapping import MappingError, build_mapping
from vmmouse.sources import SOURCES, WAKEUPS, BackdoorSource, open_usb, open_wakeup, prepare, probe
from vmmouse.supervisor import SourceSet
from vmmouse.wakeup import SignalPipe

log = logging.getLogger("vmmouse")

DESCRIPTION = """\
Bridge the absolute pointer of a VMware or QEMU virtual machine to a Linux uinput device,
so that libinput (Wayland compositors, Xorg's libinput driver) sees an ordinary absolute
mouse: the host cursor and the guest cursor stay together, with no mouse grab.

Sources: the vmmouse behind the VMware backdoor (I/O port 0x5658; needs root or
CAP_SYS_RAWIO, x86-64) and USB HID absolute pointers such as QEMU's usb-tablet.
"""

EPILOG = """\
examples:
  vmmouse probe                      what is there, and why not, one line each
  vmmouse events --count 5           print the next five decoded packets
  vmmouse run                        the bridge (as root; drops to nobody once set up)
  vmmouse run --map-to 1920,0,1280,1024 --desktop 3200,1080
                                     the host window onto the right-hand output only
  vmmouse run --stats                the CPU time per event and the drains, at exit (and on SIGUSR1)
  libinput debug-events              watch the bridge's device from the other side

The kernel's own vmmouse driver (psmouse) reads the same queue: if it is bound, the
backdoor source refuses to start (boot with psmouse.proto=imps, or unload psmouse).
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``vmmouse: error: ...``, and exit 1,
    as every other error of the command (``--help`` still exits 0)."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see {self.prog} --help)"
        self.exit(1, f"vmmouse: error: {' '.join(message.split())}{hint}\n")


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: the count must be at least 1")
    return value


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=SOURCES, default="auto",
                   help="where pointer events come from: the vmmouse backdoor, a USB tablet, "
                        "or auto (backdoor first, then USB) (default: %(default)s)")
    p.add_argument("--wakeup", choices=WAKEUPS, default="auto",
                   help="how the backdoor source waits: serio (PS/2 notification interrupts through "
                        "serio_raw, no polling), poll (adaptive 5-100 ms polling) or auto (serio, else "
                        "poll); the USB source always blocks on its interrupt endpoint "
                        "(default: %(default)s)")
    p.add_argument("--hscroll", choices=("auto", "on", "off"), default="auto",
                   help="read vmmouse Z = -2/+2 as horizontal scrolling (QEMU >= 7.0 sends it so); "
                        "auto: on when the DMI vendor is QEMU (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vmmouse", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="the bridge daemon: source -> uinput device",
                         description="Read pointer packets and replay them on a uinput absolute pointer "
                                     "(and relative motion on a second, relative one) until SIGTERM. A "
                                     "source that goes away (a tablet unplugged, the vmmouse disabled by "
                                     "another program) is waited for, with held buttons released. SIGHUP "
                                     "resets the source and releases held buttons; SIGUSR1 logs the "
                                     "figures. Logs go to stderr.")
    _add_source_options(run)
    run.add_argument("--user", default="nobody",
                     help="started as root: the user to become once the devices are open; started as "
                          "another user (the unit's vmmouse user with CAP_SYS_RAWIO), capabilities are "
                          "dropped instead (default: %(default)s)")
    run.add_argument("--no-drop", action="store_true", help="keep running as the starting user")
    run.add_argument("--uinput", default="/dev/uinput", help="uinput device node (default: %(default)s)")
    run.add_argument("--map-to", metavar="X,Y,W,H", default=None,
                     help="map the host's whole pointer range onto this region of the desktop, in "
                          "desktop pixels from its top-left corner (one output of several, say); "
                          "needs --desktop. Works under any compositor: the bridge scales the values "
                          "it writes (default: the whole desktop)")
    run.add_argument("--desktop", metavar="W,H", default=None,
                     help="the size of the whole desktop in pixels: the bounding box of all outputs, "
                          "over which the compositor spreads an absolute pointer")
    run.add_argument("--stats", action="store_true",
                     help="log events, frames, wake-ups, the longest drain and the CPU time per event "
                          "at exit (SIGUSR1 logs the same line at any time)")

    prep = sub.add_parser("prepare", help="as root, before an unprivileged `run`: bind the PS/2 AUX port "
                                          "to serio_raw and give the nodes to a group",
                          description="Bind the i8042 AUX port to serio_raw (a root-only sysfs file) and "
                                      "give /dev/serio_rawN and /dev/uinput to --group (mode 0660), so that "
                                      "`vmmouse run` can start as an unprivileged user with only "
                                      "CAP_SYS_RAWIO (xorg-bridge/vmmouse.service does this).")
    prep.add_argument("--group", default="vmmouse", help="group given the nodes (default: %(default)s)")
    prep.add_argument("--uinput", default="/dev/uinput", help="uinput device node (default: %(default)s)")

    pr = sub.add_parser("probe", help="list the pointer sources and facilities, and why one is missing",
                        description="One line each: backdoor, vmmouse, USB tablets, serio port, uinput.")
    pr.add_argument("--handshake", action="store_true",
                    help="also enable and disable the vmmouse to prove it answers "
                         "(disturbs a running reader)")

    ev = sub.add_parser("events", help="print decoded packets (debugging; no uinput device)",
                        description="Open a source like `run` does and print each decoded packet.")
    _add_source_options(ev)
    ev.add_argument("--count", type=_count, default=None, metavar="N",
                    help="stop after N packets (N >= 1)")
    return parser


class _Printer:
    """The `events` command's sink."""

    def handle(self, event: PointerEvent) -> int:
        print(event.describe(), flush=True)
        return 1

    def release_all(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _hscroll(value: str) -> bool | None:
    return {"auto": None, "on": True, "off": False}[value]


def _openers(z_horizontal: bool | None) -> dict:
    """How each source is opened (tests replace this)."""
    return {"backdoor": lambda: BackdoorSource(z_horizontal=z_horizontal), "usb": open_usb}


def _serve(args: argparse.Namespace, sink_factory) -> int:
    signals = SignalPipe()
    z_horizontal = _hscroll(args.hscroll)

    def wakeup_for(name: str, source: object):
        wakeup_name, wakeup = open_wakeup(args.wakeup, name, signals)
        log.info("wake-up: %s", wakeup_name)
        return wakeup

    sources = SourceSet(args.source, _openers(z_horizontal), wakeup_for)
    daemon = None
    sink = None
    # Until the daemon's own handlers are in: a SIGTERM during set-up still ends cleanly (the
    # vmmouse disabled, the tablet given back), not by the default action.
    early = {"stop": False}

    def _early(signum: int, frame: object) -> None:
        early["stop"] = True

    previous_handlers: dict = {s: signal.signal(s, _early) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        source_name, source, wakeup = sources.first()
        log.info("source: %s (%s)", source_name, source.info.name)
        try:
            sink = sink_factory(source.info)
        except BaseException:
            sources.release(source_name, source, wakeup)
            raise
        daemon = Daemon(source, wakeup, sink, limit=getattr(args, "count", None), sources=sources,
                        source_name=source_name, sink_factory=sink_factory, signals=signals)
        previous_handlers = daemon.install_signal_handlers() | previous_handlers
        daemon.stopping = daemon.stopping or early["stop"]
        if args.command == "run" and not args.no_drop:
            log.info(drop_privileges(args.user))
        daemon.run()
        log.info("stopping after %d events", daemon.handled)
    finally:
        if daemon is not None:
            sink = daemon.sink
            if getattr(args, "stats", False):
                log.info(daemon.stats_line())
        if sink is not None:
            try:
                sink.close()            # releases held buttons first
            except Exception as e:  # noqa: BLE001 - shutdown goes on: the source must still be disabled
                log.warning("closing the sink: %s", e)
        if daemon is not None and daemon.source is not None:
            sources.release(daemon.source_name, daemon.source, daemon.wakeup)
        sources.close()
        Daemon.restore_signal_handlers(previous_handlers)
        signals.close()
    return 0


def _make_uinput_sink(args: argparse.Namespace, mapping):
    def factory(info):
        from vmmouse.uinput_sink import UInputSink

        sink = UInputSink(info, args.uinput, mapping=mapping)
        log.info("uinput device %r at %s", info.name, sink.event_node or "?")
        if mapping is not None:
            r = mapping.region
            log.info("mapping the host's range onto %d,%d %dx%d of a %dx%d desktop", r.x, r.y, r.width,
                     r.height, *mapping.desktop)
        return sink
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="vmmouse: %(message)s")
    try:
        if args.command == "probe":
            for line in probe(handshake=args.handshake):
                print(line)
            return 0
        if args.command == "prepare":
            for line in prepare(group=args.group, uinput=args.uinput):
                log.info(line)
            return 0
        if args.command == "events":
            return _serve(args, lambda info: _Printer())
        try:
            mapping = build_mapping(args.map_to, args.desktop)
        except MappingError as e:
            parser.error(str(e))
        return _serve(args, _make_uinput_sink(args, mapping))
    except SVGAError as e:
        print(f"vmmouse: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:           # a device node that vanished, a write the kernel refused
        print(f"vmmouse: error: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (OverflowError, ValueError) as e:
        # What a hostile device could still provoke past the checks of vmmouse.hid and the
        # sink (a value evdev cannot write): one line, never a traceback (--verbose shows it).
        if args.verbose:
            raise
        print(f"vmmouse: error: a value the bridge cannot pass on: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
