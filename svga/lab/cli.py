"""``svga lab``: the QEMU guest lab on the command line (tools layer, lab).

    svga lab setup [--check] [--rebuild] [--test]
    svga lab run [--timeout S] [--display none|vnc] [-e KEY=VALUE] -- CMD...
    svga lab screenshot OUT.png [--display none|vnc] [--marker NAME] [--after CMD...]

The main CLI hooks it in with ``add_parser(subparsers)``; the parser it returns has
``func`` set to ``handle(args) -> int`` (the exit status). Standalone: ``python3 -m
svga.lab ...``. Progress goes to stderr. On a lab failure the handler prints the tail of
the guest console, then ``svga: error: <one line>``, and returns 124 for a timeout, 125
for any other lab failure (so they do not mix with the guest command's own statuses).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from svga.errors import SVGAError
from svga.lab.errors import GuestTimeout, LabError, MissingPackages
from svga.lab.packages import PACKAGES, install_packages, missing_packages, require_packages
from svga.lab.vm import DISPLAYS, Guest, prepare

EXIT_TIMEOUT = 124
EXIT_LAB_ERROR = 125

_LAB_HELP = """\
Boot a real QEMU guest with the real VMware SVGA II device (-vga vmware), the vmmouse
and a USB tablet, run commands in it and look at the result from outside (QMP
screendump). The guest boots the host's Debian kernel with a tiny initramfs and sees the
host's root file system read-only (writes go to RAM), so commands run from the host's
files at the same paths with the same python. No KVM: TCG, about 5-8 s to the first
command. Run `svga lab setup` once (as root) first.
"""

_RUN_HELP = """\
Boot a fresh guest, run CMD in it (in the current folder, with the host's PATH, HOME,
PYTHONPATH ... and `python3` being this python), print its output (stdout and stderr
merged) and exit with its status. The device is at /sys/bus/pci/devices/0000:00:02.0.
Example: svga lab run -- cat /sys/bus/pci/devices/0000:00:02.0/vendor
"""

_SHOT_HELP = """\
Boot a guest, optionally run a command that draws on the SVGA device, and save what
QEMU's display shows (QMP screendump) as a PNG. The screendump is taken when the command
signals the marker (`python3 -m svga.lab.marker drawn` in the guest: it waits until the
host has taken the picture), or, if it never signals, after it exits.
Example: svga lab screenshot out.png --after sh -c 'my-demo && python3 -m svga.lab.marker drawn'
"""


def _progress(args: argparse.Namespace):
    if getattr(args, "quiet", False):
        return lambda _msg: None
    return lambda msg: print(f"svga lab: {msg}", file=sys.stderr, flush=True)


def _guest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--display", choices=DISPLAYS, default="none",
                   help="none: headless (QEMU offers caps RECT_FILL|RECT_COPY); vnc: a VNC server on "
                        "a Unix socket, no client needed (QEMU then also offers the hardware cursor)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="kill the guest if the command has not finished S seconds after boot "
                        "(default 120)")
    p.add_argument("--smp", type=int, default=1, metavar="N", help="guest CPUs (default 1)")
    p.add_argument("--memory", type=int, default=1024, metavar="MB", help="guest RAM (default 1024)")
    p.add_argument("--keep", action="store_true",
                   help="keep the guest's work folder (console.log, qemu.log, job files) and print "
                        "its path")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``lab`` and its subcommands to a main CLI's subparsers."""
    lab = subparsers.add_parser("lab", help="run commands in a real QEMU guest with the SVGA II device",
                                description=_LAB_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = lab.add_subparsers(dest="lab_command", metavar="{setup,run,screenshot,replay}")
    sub.required = True

    setup = sub.add_parser(
        "setup", help="install the Debian packages and build the guest's boot files",
        description="Check the Debian packages the lab needs (" + ", ".join(PACKAGES) + "), "
                    "install the missing ones with apt-get when run as root, unpack the kernel "
                    "and build the initramfs into ~/.cache/svga-lab.")
    setup.add_argument("--check", action="store_true",
                       help="only check the packages; exit 1 if some are missing")
    setup.add_argument("--rebuild", action="store_true", help="rebuild the initramfs even if cached")
    setup.add_argument("--test", action="store_true",
                       help="then boot a guest once and report how long it took")
    setup.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    setup.set_defaults(func=handle)

    run = sub.add_parser("run", help="run a command in a fresh guest",
                         description=_RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _guest_options(run)
    run.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
                     help="set an environment variable for the command (repeatable)")
    run.add_argument("--cwd", metavar="DIR", help="folder to run in (default: the current one)")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...",
                     help="the command and its arguments")
    run.set_defaults(func=handle)

    shot = sub.add_parser("screenshot", help="save the guest's display as a PNG",
                          description=_SHOT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    shot.add_argument("output", metavar="OUT.png", help="where to write the PNG")
    _guest_options(shot)
    shot.add_argument("--marker", default="drawn", metavar="NAME",
                      help="marker the command signals when the picture is ready (default drawn)")
    shot.add_argument("--after", nargs=argparse.REMAINDER, metavar="CMD",
                      help="command to run first (everything after --after)")
    shot.set_defaults(func=handle)

    rep = sub.add_parser("replay", help="replay a capture inside a guest, save QEMU's screendump",
                         description="Boot a guest, replay CAP there on QEMU's device (svga replay "
                                     "--device pci: linted for it first, refused if it would break "
                                     "it unless --force) and save QEMU's own screendump as a PNG.")
    rep.add_argument("capture", metavar="CAP")
    rep.add_argument("--screenshot", required=True, metavar="OUT.png", help="where to write the PNG")
    rep.add_argument("--force", action="store_true", help="replay even what the lint refuses")
    _guest_options(rep)
    rep.set_defaults(func=handle)
    return lab


def _parse_env(items: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LabError(f"--env wants KEY=VALUE, not {item!r}")
        env[key] = value
    return env


def _strip_dashes(cmd: Sequence[str] | None) -> list[str]:
    cmd = list(cmd or [])
    return cmd[1:] if cmd[:1] == ["--"] else cmd


def _setup(args: argparse.Namespace) -> int:
    say = _progress(args)
    missing = missing_packages()
    if missing:
        if args.check or os.geteuid() != 0:
            raise MissingPackages(missing)
        say(f"installing {' '.join(missing)} with apt-get")
        install_packages(missing)
    elif args.check:
        print("packages: all installed (" + ", ".join(PACKAGES) + ")")
        return 0
    files = prepare(progress=say, force=args.rebuild)
    for stale in files.initrd.parent.glob(f"initramfs-{files.kernel.version}-*.cpio.gz"):
        if stale != files.initrd:   # built by an older version of the lab's scripts
            stale.unlink(missing_ok=True)
    print(f"kernel:     {files.kernel.version}")
    print(f"boot image: {files.image}")
    print(f"initramfs:  {files.initrd}")
    if args.test:
        with Guest(boot_files=files, progress=say) as guest:
            status, output = guest.run(["uname", "-r"], timeout=60)
            print(f"test boot: ready after {guest.boot_seconds:.1f} s (guest uptime "
                  f"{guest.guest_uptime} s); `uname -r` in the guest: {output.strip()} (status {status})")
    return 0


def _guest(args: argparse.Namespace) -> Guest:
    require_packages()
    return Guest(display=args.display, smp=args.smp, memory_mb=args.memory,
                 progress=_progress(args), keep_workdir=args.keep)


def _run(args: argparse.Namespace) -> int:
    cmd = _strip_dashes(args.command)
    if not cmd:
        raise LabError("no command given: svga lab run -- CMD...")
    env = _parse_env(args.env)
    with _guest(args) as guest:
        if args.keep:
            print(f"svga lab: work folder {guest.workdir}", file=sys.stderr)
        job = guest.submit(cmd, cwd=args.cwd, env=env)
        guest.start()
        status, output = job.wait(args.timeout)
    sys.stdout.write(output)
    sys.stdout.flush()
    return status


def _screenshot(args: argparse.Namespace) -> int:
    from PIL import Image

    cmd = _strip_dashes(args.after)
    with _guest(args) as guest:
        if args.keep:
            print(f"svga lab: work folder {guest.workdir}", file=sys.stderr)
        status = 0
        if cmd:
            cap = guest.capture(cmd, marker=args.marker, timeout=args.timeout)
            status, image = cap.status, cap.image
            sys.stdout.write(cap.output)
        else:
            guest.start()
            image = guest.screendump()
    Image.fromarray(image).save(args.output, format="PNG")
    print(f"svga lab: saved {image.shape[1]}x{image.shape[0]} screendump to {args.output}", file=sys.stderr)
    return status


def _replay(args: argparse.Namespace) -> int:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    args.output, args.marker = args.screenshot, "drawn"
    args.after = [sys.executable, "-m", "svga", "replay", os.path.abspath(args.capture), "--device", "pci",
                  "--marker", "drawn", "--quiet"] + (["--force"] if args.force else [])
    with _guest(args) as guest:
        cap = guest.capture(args.after, marker="drawn", timeout=args.timeout, env=env)
    sys.stdout.write(cap.output)
    if cap.status == 0 and cap.marked:
        from PIL import Image

        Image.fromarray(cap.image).save(args.output, format="PNG")
        print(f"svga lab: saved the replay's screendump to {args.output}", file=sys.stderr)
    return cap.status if cap.status else (0 if cap.marked else EXIT_LAB_ERROR)


def handle(args: argparse.Namespace) -> int:
    """Run the parsed ``svga lab`` subcommand; returns the exit status."""
    action = {"setup": _setup, "run": _run, "screenshot": _screenshot,
              "replay": _replay}[args.lab_command]
    try:
        return action(args)
    except SVGAError as exc:
        tail = getattr(exc, "console_tail", "")
        if tail:
            print("--- guest console (last lines) ---", file=sys.stderr)
            print(tail, file=sys.stderr)
            print("---", file=sys.stderr)
        print(f"svga: error: {exc}", file=sys.stderr)
        if isinstance(exc, GuestTimeout):
            return EXIT_TIMEOUT
        return 1 if args.lab_command == "setup" else EXIT_LAB_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python3 -m svga.lab ...`` is ``svga lab ...``."""
    parser = argparse.ArgumentParser(prog="svga")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
