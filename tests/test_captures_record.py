"""Recording (svga/captures/recorder.py) and replay: what a program drew is what its capture
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

from svga.captures.binary import read_capture
from svga.captures.events import Frame, Pixels
from svga.captures.replay import Player, model_device, replay
from svga.commands import Command
from svga.device import open_device
from svga.tools.demo import draw_demo
from svga.tools.stream import Mode

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
    from svga.captures.binary import CHUNK_TARGET

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
