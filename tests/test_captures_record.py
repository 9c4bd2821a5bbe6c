"""Recording (svga/transport/recorder.py) and replay: what a program drew is what its capture
replays, on the model and on QEMU's device through qtest, and a capture recorded on QEMU
replays identically on the model.

Oracles: the screen of the recorded run itself (the model's display, QEMU's screendump), and
the picture svga demo is checked against in tests/test_cli.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from svga.captures.replay import Player, model_device, replay
from svga.commands import Command
from svga.device import Device, open_device
from svga.stream.binary import read_capture
from svga.stream.capture import Frame, Pixels
from svga.stream.items import Mode
from svga.tools.demo import draw_demo

ROOT = Path(__file__).resolve().parents[1]


def record_demo(path, spec, **opts):
    with open_device(spec, record=str(path), **opts) as dev:
        draw_demo(dev, 320, 240)
        return dev.screenshot_array(cursor=False)


def replayed(path, dev):
    cap = read_capture(path)
    with dev:
        player = Player(dev)
        replay(cap.items, player, cap.header)
        return player.screen()


@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_record_then_replay_on_the_model(tmp_path, profile):
    path = tmp_path / "demo.svgacap"
    original = record_demo(path, "model", profile=profile)
    cap = read_capture(path)
    assert cap.header.kind == "model" and cap.header.profile == profile
    kinds = {type(e).__name__ for e in cap.events()}
    assert {"Mode", "Command", "Frame", "Time", "RegWrite"} <= kinds
    assert cap.events()[0] == Frame(0) and Mode(320, 240, 32) in cap.events()
    assert any(isinstance(e, Pixels) and e.key for e in cap.events())
    assert (replayed(path, model_device(profile)) == original).all()


@pytest.mark.qemu
def test_record_on_qemu_replays_the_same_on_qemu_and_on_the_model(tmp_path):
    path = tmp_path / "qemu.svgacap"
    original = record_demo(path, "qemu")
    cap = read_capture(path)
    assert cap.header.kind == "qemu" and cap.header.capabilities == 0x3  # docs/qemu-7.2.md: headless caps
    assert (replayed(path, open_device("qemu")) == original).all()
    assert (replayed(path, model_device("qemu")) == original).all()


@pytest.mark.qemu
def test_record_on_the_model_replays_the_same_on_qemu(tmp_path):
    path = tmp_path / "model.svgacap"
    original = record_demo(path, "model", profile="qemu")
    assert (replayed(path, open_device("qemu")) == original).all()


def test_commands_are_recorded_as_committed(tmp_path):
    path = tmp_path / "c.svgacap"
    with open_device("model", profile="qemu", record=str(path)) as dev:
        dev.set_mode(64, 48)
        dev.fifo.send("RECT_FILL", color=0x123456, x=1, y=2, width=3, height=4)
        dev.fifo.restart_at(dev.fifo.max - 8)  # the next command wraps around the ring's end
        dev.fifo.send("RECT_COPY", src_x=0, src_y=0, dest_x=5, dest_y=5, width=6, height=7)
        dev.framebuffer[0:2, 0:2] = 0xABCDEF
        dev.update(0, 0, 2, 2)
    cmds = [e for e in read_capture(path).events() if isinstance(e, Command)]
    assert [c.name for c in cmds] == ["RECT_FILL", "RECT_COPY", "UPDATE"]
    assert cmds[0].args == {"color": 0x123456, "x": 1, "y": 2, "width": 3, "height": 4}
    assert cmds[1].args["dest_x"] == 5 and cmds[1].args["height"] == 7
    events = read_capture(path).events()
    px = events[events.index(cmds[2]) - 1]
    assert isinstance(px, Pixels) and (px.x, px.y, px.width, px.height) == (0, 0, 2, 2)
    assert np.frombuffer(px.data, "<u4").tolist() == [0xABCDEF] * 4


def test_every_commit_path_is_recorded_once_whole(tmp_path):
    # Word-at-a-time commits (qemu: no FIFO_CAP_RESERVE), the batch path, an unknown id and a
    # command left unfinished at the end: each as the words the test wrote (the oracle).
    from svga.commands import encode

    fill = encode("RECT_FILL", color=0xFF, x=0, y=0, width=2, height=2)
    batch = [encode("UPDATE", x=i, y=0, width=1, height=1) for i in range(300)]
    from svga.model import ModelTransport
    from svga.transport.recorder import RecordingTransport

    path = tmp_path / "paths.svgacap"
    seen: list = []  # the model in its non-raising mode: it reports the unknown id, goes on
    with Device(RecordingTransport(ModelTransport("qemu", observer=seen.append), str(path))) as dev:
        dev.set_mode(320, 8)
        dev.fifo.write_command(fill)
        dev.fifo.write_batch(batch)
        dev.fifo.write_command(np.array([99, 1, 2], "<u4").tobytes())  # no such command
        dev.fifo.write_command(fill[:8])  # a RECT_FILL's first two words only
    events = read_capture(path).events()
    fifo = [e for e in events if type(e).__name__ in ("Command", "Raw")]
    assert [e.encode() for e in fifo[:301]] == [fill, *batch]
    # The model's FIFO is mapped, so the recorder reads the ring itself (svga/fifo.py 'Ring
    # reader'), here once, at the close: 99 is no command, so everything read with it is raw,
    # 99 1 2 and the two words of the unfinished RECT_FILL after it.
    assert [(type(e).__name__, e.words) for e in fifo[301:]] == [("Raw", (99, 1, 2, 2, 0xFF))]
    updates = [i for i, e in enumerate(events) if isinstance(e, Command) and e.name == "UPDATE"]
    assert all(isinstance(events[i - 1], Pixels) for i in updates)


def test_large_pixels_are_zlib_stored_blocks(tmp_path):
    # A full-screen UPDATE of 640x480 (1.2 MB, 19 stored blocks of at most 65535 bytes): the
    # record's data is what zlib itself inflates to the pixels drawn (zlib as the oracle).
    import zlib

    from svga.stream import binary

    path = tmp_path / "big.svgacap"
    rng = np.random.default_rng(5)
    img = rng.integers(0, 1 << 24, (480, 640), dtype=np.uint32)
    with open_device("model", profile="vmware", record=str(path)) as dev:
        dev.set_mode(640, 480)
        dev.framebuffer[:] = img
        dev.update()
    data = path.read_bytes()
    want = img.astype("<u4").tobytes()
    head = binary.pixels_head(0, 0, 640, 480, False, 2 + 5 * 19 + len(want) + 4)
    at = data.index(head)
    z = data[at + len(head): at + len(head) + 2 + 5 * 19 + len(want) + 4]
    assert zlib.decompress(z) == want
    px = [e for e in read_capture(path).events() if isinstance(e, Pixels) and not e.key]
    assert px[-1].data == want


def test_a_recording_kept_in_memory(tmp_path):
    from svga.model import ModelTransport
    from svga.transport.recorder import RecordingTransport

    events: list = []
    with Device(RecordingTransport(ModelTransport("qemu"), sink=events.append)) as dev:
        dev.set_mode(64, 48)
        dev.fifo.send("RECT_FILL", color=7, x=1, y=2, width=3, height=4)
    assert Mode(64, 48, 32) in events
    [fill] = [e for e in events if isinstance(e, Command)]
    assert fill.args == {"color": 7, "x": 1, "y": 2, "width": 3, "height": 4}
    with pytest.raises(ValueError):
        RecordingTransport(ModelTransport("qemu"))


def test_svga_record_records_any_program(tmp_path):
    path = tmp_path / "prog.svgacap"
    prog = ("from svga.device import open_device\n"
            "with open_device('model', profile='qemu') as d:\n"
            "    d.set_mode(32, 32); d.fill(0xff0000, 0, 0, 8, 8)\n")
    r = subprocess.run([sys.executable, "-m", "svga", "record", str(path), "--", sys.executable, "-c", prog],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cap = read_capture(path)
    screen = replayed(path, model_device("qemu"))
    assert (screen[:8, :8] == (255, 0, 0)).all() and (screen[8:, 8:] == 0).all()
    assert Mode(32, 32, 32) in cap.events()


def test_svga_demo_record_option(tmp_path):
    path, png = tmp_path / "d.svgacap", tmp_path / "d.png"
    r = subprocess.run([sys.executable, "-m", "svga", "demo", "--device", "model", "--profile", "qemu",
                        "--no-cursor", "--mode", "320x240", "--record", str(path), "-q", "--out", str(png)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert (replayed(path, model_device("qemu")) == np.asarray(Image.open(png).convert("RGB"))).all()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_flushes_the_recording(tmp_path, sig):
    path = tmp_path / "sig.svgacap"
    prog = ("import sys, time\nfrom svga.device import open_device\n"
            f"d = open_device('model', profile='qemu', record={str(path)!r})\n"
            "d.set_mode(32, 32)\n"
            "for i in range(20): d.fill(i * 0x0a0000, i, 0, 1, 1)\n"
            "print('drawn', flush=True)\ntime.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", prog], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "drawn"
    os.kill(p.pid, sig)
    p.wait(timeout=20)
    time.sleep(0.1)
    cap = read_capture(path)  # every chunk is whole and checksummed
    fills = [e for e in cap.events() if isinstance(e, Command) and e.name == "UPDATE"]
    assert len(fills) == 20


def test_a_crash_loses_at_most_the_last_chunk(tmp_path):
    from svga.stream.binary import CHUNK_TARGET

    path = tmp_path / "crash.svgacap"
    prog = ("import os, signal\nfrom svga.device import open_device\n"
            f"d = open_device('model', profile='qemu', record={str(path)!r})\n"
            "d.set_mode(64, 64)\n"
            "for i in range(6000): d.fifo.send('RECT_FILL', color=i, x=0, y=0, width=1, height=1)\n"
            "print(os.path.getsize(%r), flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n" % str(path))
    p = subprocess.run([sys.executable, "-c", prog], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL
    cap = read_capture(path, salvage=True)
    fills = [e for e in cap.events() if isinstance(e, Command) and e.name == "RECT_FILL"]
    # each RECT_FILL record is 1 + 4 + 24 bytes: a lost chunk holds fewer than this many
    assert 6000 - CHUNK_TARGET // 29 - 1 <= len(fills) < 6000
    assert [f.args["color"] for f in fills] == list(range(len(fills)))


def test_one_colour_rectangles_are_a_few_bytes_of_deflate(tmp_path):
    # A screen just set (VRAM zero: the keyframe) and a full-screen UPDATE of one colour: each
    # record's zlib data is what zlib itself inflates to those pixels (zlib and numpy the
    # oracles), in a few hundredths of the stored size. A sync after each UPDATE: the pixels
    # under an UPDATE are read with it out of the ring, at the next register access at the
    # latest (docs/capture-format.md 'What a recording holds'), and the CPU draws over them.
    import zlib

    from svga.stream import binary

    path = tmp_path / "solid.svgacap"
    with open_device("model", profile="vmware", record=str(path)) as dev:
        dev.set_mode(640, 480)
        dev.framebuffer[:] = 0x00C0FFEE
        dev.update()
        dev.sync()
        dev.framebuffer[100:300, 50:450] = 0x123456
        dev.update(50, 100, 400, 200)  # one colour, not the whole screen
        dev.sync()
        dev.framebuffer[0, 0] = 0x00ABCDEF
        dev.update()  # one pixel differs: stored blocks again
    data = path.read_bytes()
    sizes = {}
    for x, y, w, h, key, colour in ((0, 0, 640, 480, True, 0), (0, 0, 640, 480, False, 0x00C0FFEE),
                                    (50, 100, 400, 200, False, 0x123456)):
        want = np.full(w * h, colour, "<u4").tobytes()
        head = binary.pixels_head(x, y, w, h, key, 0)[:-4]  # the fields before Z
        at = data.index(head)
        (zlen,) = np.frombuffer(data, "<u4", 1, at + len(head))
        z = data[at + len(head) + 4: at + len(head) + 4 + int(zlen)]
        assert zlib.decompress(z) == want
        sizes[(w, h)] = int(zlen)
    assert sizes[(640, 480)] < 640 * 480 * 4 // 100 and sizes[(400, 200)] < 400 * 200 * 4 // 100
    px = [e for e in read_capture(path).events() if isinstance(e, Pixels)]
    screen = np.full((480, 640), 0x00C0FFEE, "<u4")
    screen[100:300, 50:450] = 0x123456
    screen[0, 0] = 0x00ABCDEF
    assert len(px) == 4 and px[-1].data == screen.tobytes()


@pytest.mark.parametrize("count", [1, 2, 3, 64, 65, 66, 67, 129, 130, 1000, 16384, 65536 + 7, 480000])
def test_the_one_colour_stream_against_zlib(count):
    import zlib

    from svga.transport import recorder

    for pixel in (bytes(4), b"\x01\x02\x03\x04", b"\xff\x90\x8f\x00", b"\x8f\x90\xff\xff"):
        z = recorder._solid_zlib(pixel, count)
        assert zlib.decompress(z) == pixel * count
        assert recorder._solid_adler(pixel, count) == zlib.adler32(pixel * count)


def test_an_exit_without_close_flushes_everything(tmp_path):
    path = tmp_path / "exit.svgacap"
    prog = ("from svga.device import open_device\n"
            f"d = open_device('model', profile='qemu', record={str(path)!r})\n"
            "d.set_mode(320, 240)\n"
            "for i in range(20): d.fill(i * 0x0a0000, i, 0, 1, 1)\n")
    r = subprocess.run([sys.executable, "-c", prog], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    updates = [e for e in read_capture(path).events() if isinstance(e, Command) and e.name == "UPDATE"]
    assert [(u.args["x"], u.args["width"]) for u in updates] == [(i, 1) for i in range(20)]


def test_recording_over_a_longer_file_leaves_nothing_of_it(tmp_path):
    from svga.stream.binary import CHUNK, HEADER_SIZE

    path = tmp_path / "again.svgacap"
    path.write_bytes(b"\xee" * (3 << 20))  # an old file, longer than the new recording
    with open_device("model", profile="qemu", record=str(path)) as dev:
        dev.set_mode(64, 48)
        dev.fill(0xFF0000, 1, 2, 3, 4)
    data = path.read_bytes()
    assert b"\xee" * 16 not in data
    pos = HEADER_SIZE  # header, then whole chunks to the very end (the oracle: the chunk heads)
    while pos < len(data):
        pos += CHUNK.size + CHUNK.unpack_from(data, pos)[1]
    assert pos == len(data)
    assert any(isinstance(e, Command) for e in read_capture(path).events())
