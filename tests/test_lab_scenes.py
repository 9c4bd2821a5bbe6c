"""The lab's drawing scenes (svga/lab/scenes.py) on the software model, no guest: the
scene's looks and counts, its test picture, the stale-surface step computed with plain
numpy, and the command-line entry point outside a lab guest. The comparison with QEMU's
real device is in tests/test_lab_svga.py."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from svga.device import open_device
from svga.facts.profiles import VMWARE
from svga.lab import scenes
from svga.registers import Cap

LOOKS = ["800x600-cpu", "1024x768-stale-surface", "1024x768-accel", "640x400-tiny", "1280x1024-cpu",
         "1280x1024-fifo", "largest-cpu", "largest-accel", "800x600-final"]
#: (height, width) by look; "largest" is QEMU 7.2's MAX_WIDTH x MAX_HEIGHT (docs/qemu-7.2.md).
SIZES = {"800x600": (600, 800), "1024x768": (768, 1024), "640x400": (400, 640),
         "1280x1024": (1024, 1280), "largest": (1770, 2368)}


@pytest.fixture(scope="module")
def qemu_run():
    with open_device("model", profile="qemu") as dev:
        return scenes.record(scenes.sequence, dev)


def rgb(px: np.ndarray) -> np.ndarray:
    return np.stack([(px >> 16) & 0xFF, (px >> 8) & 0xFF, px & 0xFF], axis=-1).astype(np.uint8)


def test_pattern_values():
    p = scenes.pattern(256, 3, salt=5)
    assert p.shape == (3, 256) and p.dtype == np.uint32
    assert p[0, 0] == 0x000005                      # r 0, g 0, b (0 ^ 0) + 5
    assert p[2, 255] == 0xFFFF00 | ((255 ^ 2) + 5) & 0xFF
    assert p[1, 3] == (3 << 16) | (127 << 8) | (3 ^ 1) + 5


def test_sequence_looks_in_order_with_the_mode_sizes(qemu_run):
    counts, shots = qemu_run
    assert [name for name, _ in shots] == LOOKS
    for name, image in shots:
        assert image.shape == (*SIZES[name.split("-")[0]], 3) and image.dtype == np.uint8
    assert counts["looks"] == len(LOOKS) and counts["modes"] == 6


def test_sequence_wraps_the_qemu_fifo_many_times(qemu_run):
    counts, _ = qemu_run
    assert counts["raw_commands"] == scenes.FIFO_BATCH_COMMANDS + scenes.FIFO_SEND_COMMANDS + 2
    # QEMU's FIFO is 64 KiB; fills are 6 words, copies 7.
    assert counts["fifo_bytes"] >= (scenes.FIFO_BATCH_COMMANDS + scenes.FIFO_SEND_COMMANDS) * 24
    assert counts["fifo_bytes"] > 9 * 65536


def test_sequence_first_look_keeps_the_pattern_where_nothing_is_drawn(qemu_run):
    _, shots = qemu_run
    image = shots[0][1]
    want = rgb(scenes.pattern(800, 600, 0))
    # Fills and copies touch part of the screen; most of it is still the pattern.
    assert (image == want).all(axis=2).mean() > 0.3
    assert not np.array_equal(image, want)


def test_stale_surface_step_matches_numpy(qemu_run):
    _, shots = qemu_run
    words = scenes.pattern(1024, 768, 1).reshape(-1).copy()
    stale = words[: 600 * 800].reshape(600, 800)    # QEMU's 800x600 surface, 3200-byte rows
    stale[1:31, 10:710] = 0xFF8000
    stale[300:500, 300:700] = stale[0:200, 0:400].copy()
    assert np.array_equal(dict(shots)["1024x768-stale-surface"], rgb(words.reshape(768, 1024)))


def test_raw_fifo_commands_draw(qemu_run):
    _, shots = qemu_run
    looks = dict(shots)
    assert (looks["1280x1024-fifo"] != looks["1280x1024-cpu"]).any(axis=2).mean() > 0.5


def test_sequence_is_deterministic(qemu_run):
    _, shots = qemu_run
    with open_device("model", profile="qemu") as dev:
        _, again = scenes.record(scenes.sequence, dev)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(shots, again, strict=True))


def test_sequence_runs_clean_on_the_vmware_profile():
    # The strict profile raises ModelError for any command a driver should not send; its
    # largest mode is VMware's 2360x1770. The scene sends a raw RECT_FILL on purpose (QEMU's
    # stale surface), which only older VMware hosts offered (the deprecated bit 0x1,
    # docs/svga-kit.md 'Capability bits'): such a host's profile.
    older_host = dataclasses.replace(VMWARE, capabilities=VMWARE.capabilities | Cap.RECT_FILL)
    with open_device("model", profile=older_host) as dev:
        counts, shots = scenes.record(scenes.sequence, dev)
    assert [name for name, _ in shots] == LOOKS
    # No stale surface there: the raw fill lands at row 1 of the 1024-wide mode.
    stale = dict(shots)["1024x768-stale-surface"]
    assert (stale[1:31, 10:710] == (0xFF, 0x80, 0x00)).all()


def test_accel_context_restores_the_setting():
    with open_device("model", profile="qemu") as dev:
        assert dev.accel == "auto"
        with scenes.accel(dev, "on"):
            assert dev.accel == "on"
        assert dev.accel == "auto"


def test_main_outside_the_lab_saves_each_look(monkeypatch, capsys, tmp_path, qemu_run):
    from PIL import Image
    monkeypatch.delenv("SVGA_LAB_JOB", raising=False)
    assert scenes.main(["sequence", "--device", "model", "--profile", "qemu", "--out", str(tmp_path)]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == qemu_run[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.png" for name in LOOKS)
    for name, image in qemu_run[1]:
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"{name}.png")), image)


def test_main_error_is_one_line(monkeypatch, capsys):
    monkeypatch.delenv("SVGA_LAB_JOB", raising=False)
    assert scenes.main(["sequence", "--device", "nonsense"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("svga: error: unknown device 'nonsense'") and err.count("\n") == 1


def test_vga_size_mode_scene_on_the_model():
    with open_device("model", profile="qemu") as dev:
        counts, shots = scenes.record(scenes.vga_size_mode, dev)
    assert counts == {"modes": 3, "looks": 3}
    assert [name for name, _ in shots] == ["640x480-first", "800x600", "640x480-again"]
    # The first look depends on how the model shows QEMU's placeholder; the next two are
    # the pattern in their modes.
    assert np.array_equal(shots[1][1], rgb(scenes.pattern(800, 600, 0)))
    assert np.array_equal(shots[2][1], rgb(scenes.pattern(640, 480, 0)))
