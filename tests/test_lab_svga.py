"""The SVGA driver on QEMU's real device, in a guest (svga/transport/pci.py through sysfs,
the driver, svga/tools/demo.py, svga/lab/scenes.py), compared with the software model.

Two guests are booted once each and run most jobs of this file: a headless one
(``-display none``, capabilities 0x3) and one with a VNC display on a Unix socket
(capabilities 0xE3: QEMU then offers the hardware cursor). The 640x480 test needs a display
that has never been refreshed, so it boots a third. Each boot takes about 4-6 s under TCG
and each Python job about 3-6 s more; the file runs in about 60-75 s on a 2-core host.

Expected device facts are written down from the reference notes (docs/qemu-7.2.md,
docs/lab.md: QEMU 7.2 ``-vga vmware``), not taken from the model: SVGA_ID_2, capabilities
0x3 headless and 0xE3 with a VNC display, no FIFO capabilities (no extended FIFO), 16 MiB
of VRAM and framebuffer, a 64 KiB FIFO, a largest mode of 2368x1770, depth 24 at 32 bpp.

Pictures are compared pixel for pixel: QEMU's screendump (taken from the host over QMP)
against the model's screenshot (``--device model --profile qemu``, or ``qemu-cursor`` for
the VNC guest, without the cursor, which QEMU's screendump does not show) after the same
Python code drew on both. No tolerance is needed: every comparison here is exact.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from svga.lab.packages import not_ready

ROOT = Path(__file__).resolve().parents[1]


_WHY = not_ready()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_WHY), reason=_WHY or "ready")]

PY = sys.executable
PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
#: Guest jobs that import svga: the project is not installed, so say where it is.
SVGA = {"cwd": str(ROOT), "env": {"PYTHONPATH": PYTHONPATH}}
JOB_TIMEOUT = 180.0

# QEMU 7.2 -vga vmware, from the reference notes.
SVGA_ADDRESS = "0000:00:02.0"
VERSION = 2
CAPS_HEADLESS = 0x3     # RECT_FILL | RECT_COPY
CAPS_VNC = 0xE3         # ... | CURSOR | CURSOR_BYPASS | CURSOR_BYPASS_2
CAP_NAMES_HEADLESS = ["RECT_FILL", "RECT_COPY"]
CAP_NAMES_VNC = ["RECT_FILL", "RECT_COPY", "CURSOR", "CURSOR_BYPASS", "CURSOR_BYPASS_2"]
VRAM_BYTES = 16 << 20
FIFO_BYTES = 64 << 10
MAX_MODE = (2368, 1770)
#: The lab's QEMU command line puts its first -virtfs (the host root, a virtio 9p device,
#: virtio vendor 0x1af4, transitional 9p device id 0x1009) in the slot after the VGA card.
VIRTIO_9P_ADDRESS, VIRTIO_9P_ID = "0000:00:03.0", "1af4:1009"
#: A slot of the pc machine with nothing in it.
EMPTY_ADDRESS = "0000:00:1f.0"
NOBODY = 65534


# -- guests ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def headless():
    from svga.lab.vm import Guest
    g = Guest(display="none")
    try:
        g.start()
        print(f"headless guest ready after {g.boot_seconds:.1f} s")
        yield g
    finally:
        g.close()


@pytest.fixture(scope="module")
def vnc():
    from svga.lab.vm import Guest
    g = Guest(display="vnc")
    try:
        g.start()
        print(f"vnc guest ready after {g.boot_seconds:.1f} s")
        yield g
    finally:
        g.close()


def svga(guest, *args: str) -> tuple[int, str]:
    """Run ``python3 -m svga ARGS`` in the guest: (status, stdout and stderr)."""
    return guest.run([PY, "-m", "svga", *args], timeout=JOB_TIMEOUT, **SVGA)


def text_fields(out: str) -> dict[str, str]:
    """``svga info`` text output as {label: value}."""
    fields = {}
    for line in out.splitlines():
        label, sep, value = line.partition(":")
        if sep:
            fields[label.strip()] = value.strip()
    return fields


def describe_difference(name: str, got: np.ndarray, want: np.ndarray) -> str:
    """Where QEMU's picture and the expected one differ, in one line."""
    if got.shape != want.shape:
        return f"{name}: QEMU shows {got.shape[1]}x{got.shape[0]}, expected {want.shape[1]}x{want.shape[0]}"
    bad = (got != want).any(axis=2)
    ys, xs = np.nonzero(bad)
    if not len(ys):
        return f"{name}: equal"
    y, x = int(ys[0]), int(xs[0])
    return (f"{name}: {int(bad.sum())} pixels differ, in x {xs.min()}..{xs.max()}, y {ys.min()}..{ys.max()}; "
            f"first at ({x}, {y}): QEMU {got[y, x].tolist()}, expected {want[y, x].tolist()}")


def assert_same_picture(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and np.array_equal(got, want), describe_difference(name, got, want)


# -- svga info --------------------------------------------------------------------------------

def test_info_reports_qemus_headless_device(headless):
    status, out = svga(headless, "info", "--device", "pci")
    assert status == 0, out
    f = text_fields(out)
    assert f["device"] == f"PCI {SVGA_ADDRESS} VMware SVGA II (15ad:0405)"
    assert f["version"] == f"SVGA_ID_{VERSION}"
    assert f["capabilities"] == f"0x{CAPS_HEADLESS:08x} " + " ".join(CAP_NAMES_HEADLESS)
    assert f["FIFO capabilities"] == "0x00000000 -"
    assert f["VRAM"] == f"{VRAM_BYTES // 1024} KiB (framebuffer {VRAM_BYTES // 1024} KiB)"
    assert f["FIFO"] == f"{FIFO_BYTES // 1024} KiB"
    assert f["largest mode"] == f"{MAX_MODE[0]}x{MAX_MODE[1]}"
    assert f["current mode"].split()[0].endswith("x32") and "(depth 24," in f["current mode"]


def check_info_json(out: str, caps: int, names: list[str]) -> None:
    info = json.loads(out)
    assert info["device"] == f"PCI {SVGA_ADDRESS} VMware SVGA II (15ad:0405)"
    assert info["transport"] == "pci"
    assert info["version"] == VERSION
    assert info["capabilities"] == caps
    assert info["capability_names"] == names
    assert info["fifo_capabilities"] == 0 and info["fifo_capability_names"] == []
    assert info["vram_size"] == info["fb_size"] == VRAM_BYTES
    assert info["fifo_size"] == FIFO_BYTES
    assert info["max_mode"] == list(MAX_MODE)
    assert (info["mode"]["bpp"], info["mode"]["depth"], info["mode"]["fb_offset"]) == (32, 24, 0)


def test_info_json_headless(headless):
    status, out = headless.run([PY, "-m", "svga", "info", "--device", "pci", "--json"],
                               timeout=JOB_TIMEOUT, merge_stderr=False, **SVGA)
    assert status == 0, out
    check_info_json(out, CAPS_HEADLESS, CAP_NAMES_HEADLESS)


def test_info_json_with_a_vnc_display_offers_the_cursor(vnc):
    status, out = vnc.run([PY, "-m", "svga", "info", "--device", "pci", "--json"],
                          timeout=JOB_TIMEOUT, merge_stderr=False, **SVGA)
    assert status == 0, out
    check_info_json(out, CAPS_VNC, CAP_NAMES_VNC)


# -- refusals ---------------------------------------------------------------------------------

def _closed_folders() -> list[str]:
    """Folders on the way to this python, its packages and the checkout that other users
    cannot enter on this host (e.g. /root for a pyenv python): the non-root job needs them
    opened in its guest (the guest's root is an overlay in RAM; the host is untouched)."""
    import numpy
    import PIL
    wanted = [Path(os.path.realpath(PY)), Path(sys.prefix), Path(sys.base_prefix), ROOT,
              Path(numpy.__file__), Path(PIL.__file__)]
    closed = set()
    for path in wanted:
        for folder in (path, *path.parents) if path.is_dir() else path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                closed.add(str(folder))
    return sorted(closed)


def test_pci_refuses_a_user_that_is_not_root(headless):
    closed = _closed_folders()
    opening = f"chmod o+x {shlex.join(closed)} && " if closed else ""
    # /usr/bin/setpriv (util-linux): busybox's sh would run its own setpriv applet instead.
    run_as_nobody = ["/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                     PY, "-m", "svga", "info", "--device", "pci"]
    status, out = headless.run(["sh", "-c", opening + "exec " + shlex.join(run_as_nobody)],
                               timeout=JOB_TIMEOUT, **SVGA)
    assert (status, out) == (1, f"svga: error: raw access to PCI {SVGA_ADDRESS} (its sysfs resource "
                                "files) needs root: run as root\n")


def test_pci_address_of_another_device_is_a_one_line_error(headless):
    status, out = svga(headless, "info", "--device", VIRTIO_9P_ADDRESS)
    assert (status, out) == (1, f"svga: error: PCI {VIRTIO_9P_ADDRESS} is {VIRTIO_9P_ID}, not a "
                                "VMware SVGA II (15ad:0405) device\n")


def test_pci_address_with_no_device_is_a_one_line_error(headless):
    status, out = svga(headless, "info", "--device", EMPTY_ADDRESS)
    assert (status, out) == (1, f"svga: error: no PCI device {EMPTY_ADDRESS} under /sys/bus/pci/devices\n")


# -- the demo ---------------------------------------------------------------------------------

def model_demo_cli(tmp_path: Path) -> np.ndarray:
    """``svga demo --device model --profile qemu`` on the host: its PNG."""
    import subprocess

    from PIL import Image
    out = tmp_path / "model.png"
    proc = subprocess.run([PY, "-m", "svga", "demo", "--device", "model", "--profile", "qemu", "-q",
                           "--out", str(out)], cwd=ROOT, env={**os.environ, "PYTHONPATH": PYTHONPATH},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return np.asarray(Image.open(out).convert("RGB"))


def model_demo(profile: str) -> np.ndarray:
    """The demo drawn on the model, screenshot without the cursor (the CLI has no option for
    that, nor a qemu-cursor profile)."""
    from svga.device import open_device
    from svga.tools.demo import draw_demo
    with open_device("model", profile=profile) as dev:
        draw_demo(dev, 800, 600)
        return dev.screenshot_array(cursor=False)


def guest_demo(guest) -> tuple[str, np.ndarray, np.ndarray]:
    """``svga demo --device pci`` in the guest: its output, QEMU's screendump after it, and
    the PNG the driver wrote in the guest (read back from VRAM through the BAR1 mapping),
    saved in the job folder the host shares."""
    from PIL import Image
    job = guest.submit(["sh", "-c", f"exec {shlex.quote(PY)} -m svga demo --device pci "
                                     '--out "$SVGA_LAB_JOB/demo.png"'], **SVGA)
    status, out = job.wait(JOB_TIMEOUT)
    assert status == 0, out
    screen = guest.screendump()
    written = np.asarray(Image.open(job.dir / "demo.png").convert("RGB"))
    return out, screen, written


def check_gradient_corners(image: np.ndarray) -> None:
    # The demo's gradient (red grows to the right, green downwards, blue 0x60) where nothing
    # is drawn over it: the top-left and bottom-left pixels.
    assert tuple(image[0, 0]) == (0, 0, 0x60)
    assert tuple(image[599, 0]) == (0, 255, 0x60)


def test_demo_on_qemu_equals_the_model(headless, tmp_path):
    out, screen, written = guest_demo(headless)
    assert "software cursor drawn" in out      # caps 0x3: no hardware cursor
    check_gradient_corners(screen)
    want = model_demo_cli(tmp_path)
    assert_same_picture("screendump", screen, want)
    assert_same_picture("the guest's own screenshot", written, want)


def test_demo_with_the_hardware_cursor_equals_the_model(vnc):
    out, screen, written = guest_demo(vnc)
    assert "hardware cursor defined" in out     # caps 0xE3: DEFINE_CURSOR and the cursor registers
    check_gradient_corners(screen)
    want = model_demo("qemu-cursor")
    assert_same_picture("screendump", screen, want)
    assert_same_picture("the guest's own screenshot", written, want)


def test_demo_recorded_in_the_guest_replays_to_qemus_screen(headless):
    # The recorder on the real device through sysfs: the mapped 64 KiB ring is read by the
    # recorder itself (svga/fifo.py 'Ring reader'), wrapping many times over in the demo. The
    # capture, replayed on the host on the model and on QEMU through qtest, shows what QEMU's
    # screendump showed in the guest, pixel for pixel.
    from svga.captures.replay import Player, model_device, replay
    from svga.device import open_device
    from svga.stream.binary import read_capture

    job = headless.submit(["sh", "-c", f"exec {shlex.quote(PY)} -m svga demo --device pci --no-cursor "
                                       '--out "$SVGA_LAB_JOB/demo.png" '
                                       '--record "$SVGA_LAB_JOB/demo.svgacap"'], **SVGA)
    status, out = job.wait(JOB_TIMEOUT)
    assert status == 0, out
    screen = headless.screendump()
    cap = read_capture(job.dir / "demo.svgacap")
    assert (cap.header.kind, cap.header.profile, cap.header.capabilities) == ("pci", "qemu", CAPS_HEADLESS)
    assert cap.header.fifo_size == FIFO_BYTES
    for name, dev in (("the model", model_device("qemu")), ("QEMU through qtest", open_device("qemu"))):
        with dev:
            player = Player(dev)
            replay(cap.items, player, cap.header)
            assert_same_picture(f"the capture replayed on {name}", player.screen(), screen)


# -- the scripted sequence --------------------------------------------------------------------

def stale_surface_step() -> np.ndarray:
    """What the sequence's 1024x768-stale-surface look must show, computed with plain numpy
    from QEMU's documented behaviour: the 1024x768 pattern, then RECT_FILL 10,1 700x30 of
    0xFF8000 and RECT_COPY 0,0 -> 300,300 400x200 both addressed with the 800x600 surface's
    3200-byte stride (QEMU refreshed last at 800x600)."""
    from svga.lab.scenes import pattern
    words = pattern(1024, 768, 1).reshape(-1).copy()
    stale = words[: 600 * 800].reshape(600, 800)        # the old surface: 800 words a row
    stale[1:31, 10:710] = 0xFF8000
    stale[300:500, 300:700] = stale[0:200, 0:400].copy()
    px = words.reshape(768, 1024)
    return np.stack([(px >> 16) & 0xFF, (px >> 8) & 0xFF, px & 0xFF], axis=-1).astype(np.uint8)


def test_sequence_on_qemu_equals_the_model(headless):
    from svga.device import open_device
    from svga.lab import scenes
    with open_device("model", profile="qemu") as dev:
        want_counts, want = scenes.record(scenes.sequence, dev)

    job = headless.submit([PY, "-m", "svga.lab.scenes", "sequence", "--device", "pci"],
                          merge_stderr=False, **SVGA)
    got = []
    for name, _ in want:
        job.wait_marker(name, timeout=JOB_TIMEOUT)
        got.append(headless.screendump())
        job.release(name)
    status, out = job.wait(JOB_TIMEOUT)
    assert status == 0, job.stderr
    counts = json.loads(out)
    assert counts == want_counts
    # Raw fills and copies through write_batch and send: the FIFO wrapped many times.
    assert counts["raw_commands"] >= 25_000
    assert counts["fifo_bytes"] >= 10 * FIFO_BYTES

    shots = dict(zip([n for n, _ in want], got, strict=True))
    report = [describe_difference(name, shots[name], image) for name, image in want]
    assert all(line.endswith(": equal") for line in report), "\n".join(report)
    # Independent of the model: the stale-stride step by plain numpy, and the raw FIFO
    # commands really drew.
    assert_same_picture("1024x768-stale-surface (numpy)", shots["1024x768-stale-surface"],
                        stale_surface_step())
    changed = (shots["1280x1024-fifo"] != shots["1280x1024-cpu"]).any(axis=2).mean()
    assert changed > 0.5
    # The largest mode is shown whole.
    assert shots["largest-cpu"].shape == (MAX_MODE[1], MAX_MODE[0], 3)


def test_640x480_first_shows_qemus_placeholder_then_the_mode():
    """docs/qemu-7.2.md quirk 1, made precise: QEMU's console starts with a 640x480 placeholder
    surface ("Guest has not initialized the display (yet)"), and a refresh keeps a surface of
    the same size and stride. So with no refresh since QEMU started (headless: no
    screendump yet), a first mode of 640x480x32 is not shown; once the display has shown
    another size, 640x480 is shown like any mode. A fresh guest for this one."""
    from svga.device import open_device
    from svga.lab import scenes
    from svga.lab.vm import Guest
    with open_device("model", profile="qemu") as dev:
        _, want = scenes.record(scenes.vga_size_mode, dev)
    with Guest(display="none") as g:
        job = g.submit([PY, "-m", "svga.lab.scenes", "640x480", "--device", "pci"], **SVGA)
        g.start()
        got = {}
        for name, _ in want:
            job.wait_marker(name, timeout=JOB_TIMEOUT)
            got[name] = g.screendump()
            job.release(name)
        status, out = job.wait(JOB_TIMEOUT)
    assert status == 0, out
    pattern = scenes.pattern(640, 480, 0)
    shown = np.stack([(pattern >> 16) & 0xFF, (pattern >> 8) & 0xFF, pattern & 0xFF], axis=-1)
    first = got["640x480-first"]
    # The placeholder: 640x480, one grey (the text) on black, nothing of the pattern.
    colours = np.unique(first.reshape(-1, 3), axis=0)
    assert first.shape == (480, 640, 3)
    assert len(colours) == 2 and (colours[0] == 0).all() and len(set(colours[1])) == 1, colours
    text_rows = np.nonzero((first != 0).any(axis=(1, 2)))[0]
    assert 0 < len(text_rows) < 20 and 200 < text_rows.mean() < 280    # one line, mid-screen
    # The model does not draw the placeholder's text (quirk table: not imitated), so the
    # first look is not compared with it. The later looks agree pixel for pixel, with the
    # model and with the pattern computed here.
    assert_same_picture("800x600", got["800x600"], want[1][1])
    assert_same_picture("640x480-again", got["640x480-again"], shown.astype(np.uint8))
    assert_same_picture("640x480-again (model)", got["640x480-again"], want[2][1])
