"""The capture's text form and its binary form (svga/stream/text.py, binary.py): every
existing command script reads as before, every sample and random streams survive
text -> binary -> text, and a hand-written ``pixels`` line gives the pixels it names.

Oracles: the events svga.stream.script.parse_script reads from the same scripts; PNG files
written and zlib data packed here with Pillow and the standard library; numpy arrays built in
the test."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from svga.captures.files import load_capture, save_capture
from svga.commands import decode, encode
from svga.registers import FifoReg, Reg
from svga.stream.binary import read_capture, write_capture
from svga.stream.capture import Capture, CaptureError, FifoRegWrite, Frame, Header, Pixels, RegWrite, Time
from svga.stream.items import CursorMove, Mode, Position, Raw, Refresh, StreamItem, Sync
from svga.stream.script import parse_script
from svga.stream.text import format_capture, parse_capture

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "examples").glob("*.svgascript"))
SAMPLES = sorted((ROOT / "captures").glob("*.svgascript"))


def test_there_are_samples_and_scripts():
    assert len(SAMPLES) >= 9 and len(SCRIPTS) >= 2


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_command_script_reads_as_parse_script_reads_it(path):
    text = path.read_text()
    cap = parse_capture(text, str(path))
    assert cap.items == parse_script(text, str(path))
    assert cap.header == Header()


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_round_trips_text_binary_text(path, tmp_path):
    cap = load_capture(path)
    bin_path = tmp_path / "x.svgacap"
    save_capture(bin_path, cap)
    back = read_capture(bin_path)
    assert back.events() == cap.events()
    assert back.header == cap.header
    again = parse_capture(format_capture(back), "again")
    assert again.events() == cap.events()
    # binary -> text -> binary is byte for byte the same file
    save_capture(tmp_path / "y.svgascript", back)
    save_capture(tmp_path / "y.svgacap", load_capture(tmp_path / "y.svgascript"))
    assert (tmp_path / "y.svgacap").read_bytes() == bin_path.read_bytes()


def _cmd(name, **f):
    return decode(encode(name, **f))[0]


u16 = st.integers(0, 300)
u32 = st.integers(0, 0xFFFFFFFF)
events = st.one_of(
    st.builds(lambda x, y, w, h, c: _cmd("RECT_FILL", color=c, x=x, y=y, width=w, height=h),
              u16, u16, u16, u16, u32),
    st.builds(lambda x, y, w, h: _cmd("UPDATE", x=x, y=y, width=w, height=h), u16, u16, u16, u16),
    st.builds(lambda b: _cmd("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=len(b) // 4 or 0,
                             height=1 if len(b) // 4 else 0, image=b[: len(b) // 4 * 4]),
              st.binary(max_size=64)),
    st.builds(lambda ws: Raw(tuple(ws)), st.lists(u32, min_size=1, max_size=6)),
    st.builds(Mode, st.integers(1, 2000), st.integers(1, 2000), st.sampled_from([8, 16, 32])),
    st.just(Sync()), st.just(Refresh()),
    st.builds(CursorMove, st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1),
              st.sampled_from([None, True, False])),
    st.builds(RegWrite, st.integers(0, 0xFFFF), u32),
    st.builds(FifoRegWrite, st.integers(4, 290), u32),
    st.builds(Frame, u32), st.builds(Time, st.integers(0, 1 << 62)),
    st.builds(lambda x, y, w, h, k, seed: Pixels(x, y, w, h, np.random.default_rng(seed).integers(
        0, 1 << 32, w * h, dtype=np.uint64).astype("<u4").tobytes(), k),
        u16, u16, st.integers(0, 9), st.integers(0, 9), st.booleans(), st.integers(0, 99)),
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=30))
def test_random_streams_round_trip(evs):
    tmp = Path("/tmp") / f"svga-roundtrip-{id(evs)}.svgacap"
    cap = Capture(Header(kind="model", profile="vmware", vram_size=16 << 20, max_width=2368, max_height=2000),
                  [StreamItem(Position("r"), e) for e in evs])
    try:
        write_capture(tmp, cap)
        back = read_capture(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    assert back.events() == evs
    assert parse_capture(format_capture(back), "t").events() == evs


def test_new_lines_mean_what_the_grammar_says(tmp_path):
    px = np.arange(6, dtype="<u4").reshape(2, 3) * 0x010203
    rgb = np.stack([(px >> 16) & 255, (px >> 8) & 255, px & 255], -1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "p.png")
    packed = base64.b64encode(zlib.compress(px.tobytes())).decode()
    text = (f"capture kind=qemu profile=qemu caps=0x3 vram=1048576 max=100x100 start=0x0x0\n"
            f"frame 2\ntime 1.5\nreg ENABLE=1\nreg 1792=0x5\nfiforeg CURSOR_X=7\n"
            f"pixels 4 5 3 2 png=p.png\npixels 0 0 3 2 zlib={packed} key\n")
    (tmp_path / "c.svgascript").write_text(text)
    cap = load_capture(tmp_path / "c.svgascript")
    assert cap.header.kind == "qemu" and cap.header.vram_size == 1 << 20 and cap.header.max_width == 100
    assert cap.events() == [Frame(2), Time(1_500_000), RegWrite(Reg.ENABLE, 1), RegWrite(1792, 5),
                            FifoRegWrite(FifoReg.CURSOR_X, 7), Pixels(4, 5, 3, 2, px.tobytes()),
                            Pixels(0, 0, 3, 2, px.tobytes(), key=True)]


@pytest.mark.parametrize("line, words", [
    ("frame", "frame needs one frame number"),
    ("time soon", "is not a number of seconds"),
    ("time 0.0000001", "whole number of microseconds"),
    ("reg NOPE=1", "no register name nor index"),
    ("fiforeg NEXT_CMD=4", "belong to the replaying driver"),
    ("pixels 0 0 2 2 png=../x.png", "outside the capture's folder"),
    ("pixels 0 0 2 2 png=/etc/passwd", "outside the capture's folder"),
    ("pixels 0 0 2 2 png=missing.png", "no such file"),
    ("pixels 0 0 2 2 zlib=!!", "not base64"),
    ("pixels 0 0 2 2 zlib=" + base64.b64encode(zlib.compress(bytes(15))).decode(), "not the 16"),
    ("pixels 0 0 2 2 zlib=" + base64.b64encode(zlib.compress(bytes(1 << 20))).decode(), "more than the 16"),
    ("pixels 0 0 60000 60000 zlib=", "more than the device's"),
    ("RECT_FILL color=1", "needs field"),
])
def test_bad_text_lines_name_file_and_line(tmp_path, line, words):
    path = tmp_path / "bad.svgascript"
    path.write_text("mode 64x64\n" + line + "\n")
    with pytest.raises(CaptureError) as e:
        load_capture(path)
    assert str(e.value).startswith(f"{path}:2: ") and words in str(e.value)
