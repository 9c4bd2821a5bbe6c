"""Issue 17, deliverable 2: every reader of outside input is bounded.

Each reader is fed an endless stream (a pipe from /dev/zero, /dev/urandom, a FIFO nobody
writes) and a 200 MB file (sparse: it costs no disk), in a subprocess whose address space is
limited (RLIMIT_AS), and must end within a time bound with its documented error status and
one line, never a traceback. Readers: `svga check` (scripts and .bin words), `svga compare`
(PNGs and needles), the HID report descriptor reader and report decoder, the vmmouse packet
reader, and QMP replies (the QMP peer is in tests/test_hostile_svga.py).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SVGA = [sys.executable, "-m", "svga"]
MEMORY_LIMIT = 400 << 20           # a whole 200 MB file, read and copied once, does not fit
TIME_LIMIT = 45.0                  # seconds, on a loaded 2-core machine
BIG = 200_000_000


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(argv: list[str], stdin_path: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    start = time.monotonic()
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.run(argv, cwd=ROOT, env=env, stdin=stdin, capture_output=True, text=True,
                           timeout=TIME_LIMIT, preexec_fn=_limit)
    finally:
        if stdin_path:
            stdin.close()
    return p, time.monotonic() - start


def one_line(p: subprocess.CompletedProcess, status: int, prefix: str = "svga: error: ") -> str:
    assert p.returncode == status, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr[-2000:]
    assert p.stderr.startswith(prefix), p.stderr
    return p.stderr


@pytest.fixture
def hostile(tmp_path):
    """name -> (path to give the tool, a file to connect to its stdin or None)."""
    def make(kind: str, name: str) -> tuple[str, str | None]:
        if kind == "zero-pipe":
            return "/dev/stdin", "/dev/zero"
        if kind == "urandom":
            return "/dev/urandom", None
        path = tmp_path / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "big":
            with open(path, "wb") as f:
                head = b"\x89PNG\r\n\x1a\n" if name.endswith(".png") else b"UPDATE x=0 y=0 width=1 height=1\n"
                f.write(head)
                f.truncate(BIG)
        return str(path), None
    return make


KINDS = ["zero-pipe", "urandom", "fifo", "big"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["s.svgascript", "s.bin"])
def test_svga_check_is_bounded(hostile, kind, name):
    path, stdin = hostile(kind, name)
    argv = [*SVGA, "check", path] + (["--format", "bin"] if name.endswith(".bin") else [])
    p, took = run_limited(argv, stdin)
    err = one_line(p, 1)                                  # svga check: 1 when the file cannot be read
    assert "not a regular file" in err or "reads at most" in err
    assert took < TIME_LIMIT


def test_svga_check_at_the_limit_still_checks():
    from svga.tools.check import MAX_STREAM_BYTES

    assert MAX_STREAM_BYTES >= 1 << 20                    # a megabyte of commands is checked


@pytest.fixture
def shot(tmp_path):
    path = tmp_path / "shot.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_svga_compare_png_is_bounded(hostile, shot, kind):
    path, stdin = hostile(kind, "actual.png")
    p, took = run_limited([*SVGA, "compare", path, str(shot)], stdin)
    one_line(p, 2)                                        # compare: 2 is bad input
    assert took < TIME_LIMIT


def test_svga_compare_png_bomb_is_refused(tmp_path, shot):
    # A small file that claims 8000x8000 pixels (below Pillow's own bomb limit): refused from
    # its header, not decoded.
    bomb = tmp_path / "bomb.png"
    Image.new("1", (8000, 8000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 1 << 20
    p, _ = run_limited([*SVGA, "compare", str(bomb), str(shot)])
    assert "pixels read" in one_line(p, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_svga_compare_needle_json_is_bounded(hostile, shot, tmp_path, kind):
    path, stdin = hostile(kind, "needle.json")
    p, took = run_limited([*SVGA, "compare", str(shot), path], stdin)
    one_line(p, 2)
    assert took < TIME_LIMIT


@pytest.mark.parametrize("kind", ["fifo", "big"])
def test_svga_compare_needle_png_is_bounded(hostile, shot, tmp_path, kind):
    png, _ = hostile(kind, "needle.png")
    (tmp_path / "needle.json").write_text(json.dumps(
        {"area": [{"xpos": 0, "ypos": 0, "width": 4, "height": 4, "type": "match"}], "tags": ["t"],
         "properties": []}))
    assert png == str(tmp_path / "needle.png")
    p, took = run_limited([*SVGA, "compare", str(shot), str(tmp_path / "needle.json")])
    one_line(p, 2)
    assert took < TIME_LIMIT


def test_deeply_nested_needle_json_is_one_line(tmp_path, shot):
    needle = tmp_path / "deep.json"
    needle.write_text("[" * 200_000 + "]" * 200_000)
    p, _ = run_limited([*SVGA, "compare", str(shot), str(needle)])
    one_line(p, 2)


# -- the input side: library readers, driven by a small script ---------------------------
READER = textwrap.dedent("""
    import os, sys
    from svga.errors import SVGAError
    kind, path = sys.argv[1], sys.argv[2]
    try:
        if kind == "descriptor":
            # the sysfs report_descriptor of a bound interface, planted as the hostile file
            from vmmouse.hid import pointer_layout
            from vmmouse.usbtablet import sysfs_report_descriptor
            root = sys.argv[3]
            where = os.path.join(root, "bus", "usb", "devices", "1-1:1.0", "0003:0627:0001.0001")
            os.makedirs(where)
            os.symlink(path, os.path.join(where, "report_descriptor"))
            class Dev:
                bus, port_numbers = 1, (1,)
            data = sysfs_report_descriptor(Dev(), 0, 1, root)
            if data is None:
                raise SVGAError("no readable report descriptor (not a regular file)")
            pointer_layout(data)
            raise SVGAError(f"a {len(data)}-byte descriptor was accepted")
        if kind == "report":
            # one interrupt IN read that returns the hostile bytes (as much as the device gives)
            import logging
            logging.basicConfig(level=logging.WARNING, format="vmmouse: %(message)s")
            from vmmouse.usbtablet import TabletCandidate, UsbTablet
            from vmmouse.hid import pointer_layout
            tablet_desc = bytes.fromhex(
                "05 01 09 02 a1 01 09 01 a1 00 05 09 19 01 29 03 15 00 25 01 95 03 75 01 81 02"
                "95 01 75 05 81 01 05 01 09 30 09 31 15 00 26 ff 7f 75 10 95 02 81 02"
                "09 38 15 81 25 7f 75 08 95 01 81 06 c0 c0")
            with open(path, "rb") as f:
                blob = f.read(int(sys.argv[3]))
            class Dev:
                idVendor, idProduct, bus, address, port_numbers = 0x627, 1, 1, 2, (1,)
                def read(self, ep, size, timeout):
                    return blob
            cand = TabletCandidate(Dev(), 0, 0x81, 8, pointer_layout(tablet_desc), "t")
            events = UsbTablet(cand).read_events()
            raise SVGAError(f"{len(events)} events from one hostile report")
        if kind == "packets":
            # a backdoor that claims a full queue for ever, of words from the hostile stream
            from vmmouse.absolute import VMMouse
            from vmmouse.backdoor import Registers
            from vmmouse.protocol import QUEUE_PACKETS, Command, VERSION_ID
            stream = open(path, "rb")
            class Port:
                def call(self, command, argument=0):
                    if command == Command.ABSPOINTER_STATUS:
                        return Registers(0xFFFC, 0, 0, 0, 0, 0)
                    if command == Command.ABSPOINTER_DATA:
                        words = [int.from_bytes(stream.read(4) or b"\\0", "little") for _ in range(6)]
                        if sys.argv[3] == "version":
                            words[0] = VERSION_ID
                        return Registers(*words)
                    return Registers(0, 0, 0, 0, 0, 0)
            mouse = VMMouse(Port())
            if sys.argv[3] == "version":
                mouse.enable()
            n = 0
            for _ in range(3):
                n += len(mouse.read_events())
            assert n <= 3 * QUEUE_PACKETS, n
            raise SVGAError(f"{n} events in three reads of a queue that never empties")
    except SVGAError as e:
        print(f"vmmouse: error: {e}", file=sys.stderr)
        sys.exit(2)
    print("vmmouse: error: nothing refused", file=sys.stderr)
    sys.exit(3)
""")


@pytest.mark.parametrize("kind", ["zero", "urandom", "fifo", "big"])
def test_hid_descriptor_reader_is_bounded(tmp_path, kind):
    path = {"zero": "/dev/zero", "urandom": "/dev/urandom"}.get(kind, str(tmp_path / "d"))
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "big":
        with open(path, "wb") as f:
            f.truncate(BIG)
    p, took = run_limited([sys.executable, "-c", READER, "descriptor", path, str(tmp_path / "sys")])
    err = one_line(p, 2, "vmmouse: error: ")
    assert "longer than" in err or "not a regular file" in err or "bad" in err.lower() or "item" in err
    assert took < TIME_LIMIT


@pytest.mark.parametrize("source, size", [("/dev/zero", BIG // 2), ("/dev/urandom", 1 << 20)])
def test_hid_report_decoder_is_bounded(source, size):
    p, took = run_limited([sys.executable, "-c", READER, "report", source, str(size)])
    assert "0 events from one hostile report" in p.stderr.splitlines()[-1]
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") <= 2, p.stderr
    assert took < TIME_LIMIT


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("start", ["enabled", "version"])
def test_vmmouse_packet_reader_is_bounded(source, start):
    p, took = run_limited([sys.executable, "-c", READER, "packets", source, start])
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.splitlines()[-1].startswith("vmmouse: error: ")
    assert took < TIME_LIMIT


def test_qmp_endless_reply_is_bounded(tmp_path):
    try:
        from test_hostile_svga import QMP_PEER
    except ImportError:                # tests/ imported as a package
        from tests.test_hostile_svga import QMP_PEER

    p, took = run_limited([sys.executable, "-c", QMP_PEER, "endless-reply", str(tmp_path)])
    one_line(p, 1)
    assert took < TIME_LIMIT
