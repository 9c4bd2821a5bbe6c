"""Bad captures (issue 13, item 7): each class of damage gives one line naming the problem and
where it is (byte offset or file:line), exit status 2 and no traceback, and memory stays
bounded (a decompression bomb and a chunk claiming 4 GB are refused before anything that size
is allocated).

The damaged files are built here byte by byte from docs/capture-format.md 'Binary form' with
struct and zlib, not with the writer under test."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svga.stream.binary import read_capture
from svga.stream.capture import CaptureError
from svga.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
MAGIC = b"SVGACAP\x00"
VRAM = 1 << 20


def header(version=1, size=68, vram=VRAM, max_w=640, max_h=480, crc_ok=True):
    # magic, version, header size, kind (1 = qemu), profile (1 = qemu), reserved, caps, fifo caps,
    # VRAM, FIFO, FB, max width, max height, start w/h/bpp, start time; then CRC32 of those 64 bytes.
    body = struct.pack("<8sHHBBHIIIIIIIIIIQ", MAGIC, version, size, 1, 1, 0, 3, 0, vram, 65536, vram,
                       max_w, max_h, 0, 0, 0, 0)
    return body + struct.pack("<I", zlib.crc32(body) ^ (0 if crc_ok else 1))


def chunk(payload, kind=b"EVTS", length=None, crc=None):
    length = len(payload) if length is None else length
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return kind + struct.pack("<II", length, crc) + payload


MODE = bytes([3]) + struct.pack("<III", 64, 48, 32)
UPDATE = bytes([1]) + struct.pack("<I", 5) + struct.pack("<5I", 1, 0, 0, 8, 8)


def pixels(w, h, data, x=0, y=0):
    packed = zlib.compress(data)
    return bytes([9]) + struct.pack("<IIIIBI", x, y, w, h, 0, len(packed)) + packed


CASES = {
    "bad magic": (b"NOTACAP\x00" + header()[8:], "@0: not a capture (bad magic"),
    "unknown version": (header(version=9) + chunk(MODE), "@8: format version 9 is unknown"),
    "header checksum": (header(crc_ok=False) + chunk(MODE), "@64: header checksum mismatch"),
    "truncated header": (header()[:40], "@40: the file ends inside the 68-byte header"),
    "chunk checksum": (header() + chunk(MODE, crc=12345), "@76: chunk checksum mismatch"),
    "chunk of length zero": (header() + chunk(b"", length=0), "@72: a chunk of length zero"),
    "chunk longer than the file": (header() + chunk(MODE, length=1000),
                                   "@72: a chunk of 1000 bytes, only 13"),
    "chunk claiming 4 GB": (header() + chunk(MODE, length=0xFFFFFFF0), "@72: a chunk of 4294967280 bytes"),
    "unknown chunk type": (header() + chunk(MODE, kind=b"ZZZZ"), "@68: unknown chunk type"),
    "truncated chunk header": (header() + b"EVTS\x01", "@68: the file ends inside a chunk header"),
    "decompression bomb": (header() + chunk(MODE + pixels(8, 8, bytes(50 << 20))),
                           "@93: pixel data inflates to more than the 256 bytes"),
    "dimensions beyond the device": (header() + chunk(bytes([3]) + struct.pack("<III", 5000, 48, 32)),
                                     "@80: mode reaches 5000x48, beyond the device's largest mode 640x480"),
    "pixels larger than VRAM": (header(max_w=0, max_h=0) + chunk(pixels(1024, 1024, b"")),
                                "@80: pixels 1024x1024 (4194304 bytes) are more than the device's 1048576"),
    "rectangle out of range": (header() + chunk(MODE + pixels(8, 8, bytes(256), x=60) + UPDATE),
                               "@93: pixels 60,0 8x8 are out of range of the 64x48 mode"),
    "unknown command id": (header() + chunk(MODE + bytes([1]) + struct.pack("<II", 1, 77)),
                           "@93: unknown command id 77"),
    "record past its chunk": (header() + chunk(MODE + bytes([1]) + struct.pack("<I", 50)),
                              "@93: a 50-word command record runs past the end of its chunk"),
    "unknown record type": (header() + chunk(MODE + bytes([99])), "@93: unknown record type 99"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_binary_capture(name, tmp_path, capsys):
    data, message = CASES[name]
    path = tmp_path / "bad.svgacap"
    path.write_bytes(data)
    assert main(["replay", str(path), "-q"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith(f"svga: error: {path}")
    assert message in err, err


@pytest.mark.parametrize("text, message", [
    ("mode 64x48\nBOGUS x=1\n", ":2: unknown command 'BOGUS'"),
    ("mode 64x48\npixels 0 0 8 8 png=../../etc/x.png\n", ":2: png=../../etc/x.png is outside"),
    ("mode 64x48\npixels 0 0 8 8 png=nothere.png\n", ":2: png=nothere.png: no such file"),
    ("mode 64x48\npixels 60 0 8 8 zlib=" + __import__("base64").b64encode(zlib.compress(bytes(256))).decode()
     + "\n", ":2: pixels 60,0 8x8 are out of range"),
    ("mode 9999x48\n", ":1: mode 9999x48 is beyond the device's largest"),
    ("capture version=7\n", ":1: capture: version 7 is not one this reader knows"),
])
def test_bad_text_capture(text, message, tmp_path, capsys):
    path = tmp_path / "bad.svgascript"
    path.write_text(text)
    assert main(["replay", str(path), "-q"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and message in err and str(path) in err, err


def test_commands_other_than_replay_say_the_same(tmp_path, capsys):
    path = tmp_path / "bad.svgacap"
    path.write_bytes(CASES["chunk checksum"][0])
    for argv in (["dump", str(path)], ["convert", str(path), str(tmp_path / "o.txt")],
                 ["capture", "info", str(path)],
                 ["trim", str(path), "--frames", "0..1", "-o", str(tmp_path / "t")],
                 ["diff", str(path), "--device", "model", "--device", "model"]):
        assert main(argv) == 2
        _, err = capsys.readouterr()
        assert "@76: chunk checksum mismatch" in err and err.count("\n") == 1


def test_no_traceback_from_the_real_command(tmp_path):
    path = tmp_path / "bad.svgacap"
    path.write_bytes(CASES["decompression bomb"][0])
    r = subprocess.run([sys.executable, "-m", "svga", "replay", str(path)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("name", ["decompression bomb", "chunk claiming 4 GB"])
def test_memory_stays_bounded(name, tmp_path):
    path = tmp_path / "bad.svgacap"
    path.write_bytes(CASES[name][0])
    tracemalloc.start()
    try:
        with pytest.raises(CaptureError):
            read_capture(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < VRAM + (2 << 20)  # the device's VRAM plus a fixed margin, far below 50 MB / 4 GB


def test_salvage_replays_what_was_intact(tmp_path, capsys):
    good = chunk(MODE + pixels(64, 48, bytes(range(256)) * 48) + UPDATE)
    path = tmp_path / "crashed.svgacap"
    path.write_bytes(header() + good + chunk(UPDATE)[:-3])  # the last chunk cut short by a crash
    assert main(["replay", str(path), "-q"]) == 2
    capsys.readouterr()
    out = tmp_path / "s.png"
    assert main(["replay", str(path), "--salvage", "--screenshot", str(out)]) == 0
    _, err = capsys.readouterr()
    assert "salvaged" in err and "@" in err
    shot = np.asarray(Image.open(out).convert("RGB"))
    words = np.frombuffer(bytes(range(256)) * 48, "<u4").reshape(48, 64)
    want = np.stack([(words >> 16) & 255, (words >> 8) & 255, words & 255], -1)
    assert (shot == want).all()
