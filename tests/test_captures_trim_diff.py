"""``svga trim`` and ``svga diff`` (svga/captures/trim.py, diff.py).

Trim: the trimmed capture, replayed, shows at each kept frame what the whole capture shows
there (the oracle: the untrimmed capture on the same device, screenshots at every frame).
Diff: a difference planted by the test (a device whose VRAM keeps one bit stuck from a known
byte offset) is found at the frame and the item that first write there; the same device twice
never differs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svga.captures.diff import diff_capture
from svga.captures.files import load_capture, save_capture
from svga.captures.replay import Player, model_device, replay
from svga.captures.trim import trim
from svga.device import Device
from svga.model import ModelTransport
from svga.stream.capture import Frame, Pixels, frame_spans
from svga.transport.base import Memory, Transport

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"


def frame_screens(cap, profile, frames=None):
    shots = {}
    with model_device(profile) as dev:
        player = Player(dev)
        replay(cap.items, player, cap.header, frames=frames,
               on_frame_end=lambda n, p: shots.__setitem__(n, p.screen()))
    return shots


@pytest.mark.parametrize("name, profile, ranges", [
    ("scroll", "qemu", [(0, 3), (1, 1), (17, 30), (55, 60)]),
    ("tiny-updates", "qemu", [(2, 4), (6, 6)]),
    ("cursor-mono", "qemu-cursor", [(1, 2)]),
])
def test_trim_replays_the_same_pixels_at_every_kept_frame(name, profile, ranges, tmp_path):
    cap = load_capture(CAPTURES / f"{name}.svgascript")
    whole = frame_screens(cap, profile)
    for lo, hi in ranges:
        part = trim(cap, lo, hi)
        assert [s[0] for s in frame_spans(part.items)] == list(range(lo, hi + 1))
        path = tmp_path / f"{lo}-{hi}.svgacap"
        save_capture(path, part)
        shots = frame_screens(load_capture(path), profile)
        assert sorted(shots) == list(range(lo, hi + 1))
        for n in range(lo, hi + 1):
            assert (shots[n] == whole[n]).all(), (lo, hi, n)
        if lo > 0:
            assert len(part.items) < len(cap.items)


def test_trim_starts_with_a_keyframe(tmp_path):
    cap = load_capture(CAPTURES / "scroll.svgascript")
    part = trim(cap, 20, 21)
    assert part.items[0].event == Frame(20)
    keys = [it.event for it in part.items[:6] if isinstance(it.event, Pixels) and it.event.key]
    assert len(keys) == 1 and (keys[0].width, keys[0].height) == (320, 240)


def test_svga_trim_cli(tmp_path):
    out = tmp_path / "t.svgascript"
    r = subprocess.run([sys.executable, "-m", "svga", "trim", str(CAPTURES / "scroll.svgascript"),
                        "--frames", "10..12", "-o", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "frames 10..12" in r.stdout, r.stderr
    shots = tmp_path / "shots"
    r = subprocess.run([sys.executable, "-m", "svga", "replay", str(out), "--screenshots", str(shots), "-q"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in shots.iterdir()) == [f"frame-000{n}.png" for n in (10, 11, 12)]


class StuckBit(Memory):
    """VRAM whose byte at ``offset`` gets bit 7 set by every CPU write to it after the first
    (a planted fault: the first, the keyframe, goes through)."""

    def __init__(self, inner: Memory, offset: int) -> None:
        self.inner, self.offset, self.size = inner, offset, inner.size
        self.writes = 0

    def read(self, offset, length):
        return self.inner.read(offset, length)

    def write(self, offset, data):
        self.inner.write(offset, data)
        a = self.inner.array()
        n = data.nbytes if isinstance(data, np.ndarray) else len(data)
        if offset <= self.offset < offset + n:
            self.writes += 1
            if self.writes > 1:
                a[self.offset] |= 0x80

    def array(self):
        return None  # every write comes through write()


class Faulty(Transport):
    kind = "model"

    def __init__(self, offset):
        self.model = ModelTransport("qemu")
        self.profile = self.model.profile
        self.vram, self.fifo = StuckBit(self.model.vram, offset), self.model.fifo
        self.description = "faulty model"

    def port_read(self, offset):
        return self.model.port_read(offset)

    def port_write(self, offset, value):
        self.model.port_write(offset, value)

    def display_image(self, with_cursor=False):
        return self.model.display_image(with_cursor)


def test_diff_finds_a_planted_difference_at_its_frame_and_item(tmp_path):
    cap = load_capture(CAPTURES / "scroll.svgascript")
    # The fault shows at the first CPU write to the pixel after the keyframe: the first new bottom
    # line (every colour of the sample has bit 7 of its blue byte clear: 0x000020, 0x40ff40).
    target_x, target_y = 100, 236
    offset = (target_y * 320 + target_x) * 4  # blue byte of a 320-wide 32-bpp mode at FB_OFFSET 0
    first = next(i for i, it in enumerate(cap.items) if isinstance(it.event, Pixels) and not it.event.key
                 and it.event.y <= target_y < it.event.y + it.event.height)
    frame = max(it.event.n for it in cap.items[:first] if isinstance(it.event, Frame))
    result = diff_capture(cap, lambda: model_device("qemu"), lambda: Device(Faulty(offset)))
    assert result.frame == frame == 1
    # QEMU's display (and the qemu model's) shows VRAM at each refresh: the pixels item itself
    assert result.item is not None and result.item.position == cap.items[first].position
    assert result.pixels == 1
    files = result.save(tmp_path, ("model", "faulty"))
    diff = np.asarray(Image.open(files[2]).convert("RGB"))
    assert [tuple(p) for p in np.argwhere((diff == (255, 0, 0)).all(-1))] == [(target_y, target_x)]


def test_diff_of_the_same_device_never_differs():
    cap = load_capture(CAPTURES / "copies.svgascript")
    assert diff_capture(cap, lambda: model_device("qemu"), lambda: model_device("qemu")).frame is None


@pytest.mark.qemu
def test_svga_diff_model_against_qemu(tmp_path):
    r = subprocess.run([sys.executable, "-m", "svga", "diff", str(CAPTURES / "fills.svgascript"),
                        "--device", "model", "--profile", "qemu", "--device", "qemu",
                        "--diff", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "same screens" in r.stdout, r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []


def test_svga_diff_names_the_first_command_the_devices_part_at(tmp_path):
    # The vmware profile has no SVGA_CAP_RECT_FILL (its CAPABILITIES lack bit 0x1): its model
    # skips the first RECT_FILL of frame 1 where the qemu model fills.
    src = CAPTURES / "fills.svgascript"
    line = next(i for i, ln in enumerate(src.read_text().splitlines(), 1) if ln.startswith("RECT_FILL"))
    r = subprocess.run([sys.executable, "-m", "svga", "diff", str(CAPTURES / "fills.svgascript"),
                        "--device", "model", "--profile", "qemu", "--device", "model", "--profile", "vmware",
                        "--diff", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "screens differ from frame 1 (2400 pixels); first after " in r.stdout  # 60x40 pixels
    assert f"fills.svgascript:{line}: RECT_FILL" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diff.png", "model-0.png", "model-1.png"]
