"""The sample captures of captures/ against their goldens (captures/goldens/NAME.png, made on
QEMU's -vga vmware through qtest by captures/make_goldens.py, on the model only for the vmware
samples: captures/README.md): on the model, on QEMU through qtest, and in a lab guest. Every
comparison is exact, pixel for pixel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svga.captures.files import load_capture
from svga.captures.replay import Player, model_device, replay
from svga.device import open_device

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
SAMPLES = json.loads((CAPTURES / "samples.json").read_text())
QEMU_SAMPLES = [n for n, s in SAMPLES.items() if s["golden"] == "qemu"]


def golden(name):
    return np.asarray(Image.open(CAPTURES / "goldens" / f"{name}.png").convert("RGB"))


def play(name, dev, cursor=False):
    cap = load_capture(CAPTURES / f"{name}.svgascript")
    with dev:
        player = Player(dev)
        replay(cap.items, player, cap.header)
        return player.screen(cursor)


def test_the_samples_the_issue_asks_for():
    assert set(SAMPLES) == {"mode-update", "fills", "copies", "tiny-updates", "scroll", "cursor-mono",
                            "cursor-alpha", "fences-screens", "fifo-wrap"}
    assert all((CAPTURES / "goldens" / f"{n}.png").exists() for n in SAMPLES)
    assert {SAMPLES[n]["profile"] for n in ("cursor-alpha", "fences-screens")} == {"vmware"}
    assert SAMPLES["cursor-mono"]["profile"] == "qemu-cursor"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_on_the_model(name):
    spec = SAMPLES[name]
    assert (play(name, model_device(spec["profile"]), spec["cursor"]) == golden(name)).all()


@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(QEMU_SAMPLES))
def test_sample_on_qemu_through_qtest(name):
    spec = SAMPLES[name]
    display = "vnc" if spec["profile"] == "qemu-cursor" else "none"
    assert (play(name, open_device("qemu", qemu_display=display)) == golden(name)).all()


@pytest.mark.qemu
def test_the_cli_replays_a_sample_to_its_golden(tmp_path):
    out = tmp_path / "out.png"
    r = subprocess.run([sys.executable, "-m", "svga", "replay", str(CAPTURES / "scroll.svgascript"),
                        "--device", "qemu", "--screenshot", str(out), "-q"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert (np.asarray(Image.open(out).convert("RGB")) == golden("scroll")).all()


def test_the_lint_refuses_a_vmware_sample_for_qemu(tmp_path):
    # FENCE desyncs QEMU 7.2's FIFO parser (docs/qemu-7.2.md): replay names it and stops.
    r = subprocess.run([sys.executable, "-m", "svga", "check", str(CAPTURES / "fences-screens.svgascript"),
                        "--profile", "qemu"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "FENCE" in r.stdout


@pytest.mark.qemu
def test_replay_on_qemu_refuses_what_would_break_it(tmp_path):
    out = tmp_path / "o.png"
    r = subprocess.run([sys.executable, "-m", "svga", "replay", str(CAPTURES / "fences-screens.svgascript"),
                        "--device", "qemu", "--screenshot", str(out)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 1 and not out.exists()
    assert r.stderr.count("\n") == 1 and "fences-screens.svgascript:" in r.stderr and "--force" in r.stderr


LAB_SAMPLES = ["mode-update", "tiny-updates"]
"""Samples that draw only with the CPU and UPDATE: a guest cannot make the host's display
refresh the others rely on (their `refresh` line; docs/qemu-7.2.md 'Stale-stride quirk')."""


@pytest.mark.lab
@pytest.mark.parametrize("name", LAB_SAMPLES)
def test_sample_in_a_lab_guest(name, tmp_path):
    from svga.lab.packages import not_ready

    why = not_ready()
    if why:
        pytest.fail(f"the lab is not ready: {why}")
    out = tmp_path / "lab.png"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "svga", "lab", "replay", str(CAPTURES / f"{name}.svgascript"),
                        "--screenshot", str(out), "-q"], cwd=ROOT, capture_output=True, text=True, env=env,
                       timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (np.asarray(Image.open(out).convert("RGB")) == golden(name)).all()
