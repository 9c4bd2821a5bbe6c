"""Issue 17, findings 6-11 on the svga side: a device that lies about its framebuffer, QMP
dying during negotiation, signals to a process with a QEMU child, a Device used after close(),
the command line's argument checks, and the strict model's mode registers.

Oracles: the byte sizes are computed here from the numbers the test writes; the QMP peer is a
socket this test serves; the process tests look at the temporary directory and /proc.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from svga.device import open_device
from svga.errors import DeviceError, ModelError, ProtocolError, SVGAError
from svga.registers import Reg
from svga.tools.cli import DEMO_MIN, main
from svga.tools.demo import draw_demo
from svga.transport.base import ArrayMemory

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("vmware", "qemu", "qemu-cursor")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# -- 6. FB_OFFSET and FB_SIZE are not trusted ---------------------------------------------
@pytest.mark.parametrize("offset_of", [lambda vram: vram + 4096, lambda vram: vram - 4])
def test_fb_offset_outside_vram_is_a_device_error(offset_of):
    with open_device("model") as dev:
        vram = dev.transport.vram.size
        real_read = dev.regs.read
        dev.regs.read = lambda reg: offset_of(vram) if reg == Reg.FB_OFFSET else real_read(reg)
        dev.fb_size = 1 << 40          # FB_SIZE claiming more than there is
        with pytest.raises(DeviceError, match="does not fit the framebuffer"):
            dev.set_mode(64, 64)


def test_adopting_a_mode_past_vram_is_a_device_error():
    with open_device("model") as dev:
        dev.set_mode(64, 64)
        vram = dev.transport.vram.size
        real_read = dev.regs.read
        dev.regs.read = lambda reg: vram - 64 if reg == Reg.FB_OFFSET else real_read(reg)
        dev.fb_size = 1 << 40
        with pytest.raises(DeviceError, match="unusable mode"):
            dev.adopt_mode()


# -- 9. A Device after close(), bad fields, bad memory accesses ----------------------------
@pytest.mark.parametrize("profile", PROFILES)
def test_a_closed_device_raises_one_svga_error_for_each_call(profile):
    dev = open_device("model", profile=profile)
    dev.set_mode(64, 64)
    dev.close()
    dev.close()                         # still idempotent
    calls = {
        "set_mode": lambda: dev.set_mode(32, 32), "fill": lambda: dev.fill(1, 0, 0, 2, 2),
        "copy": lambda: dev.copy(0, 0, 2, 2, 2, 2), "update": dev.update, "sync": dev.sync,
        "framebuffer": lambda: dev.framebuffer, "info": dev.info, "screenshot": dev.screenshot,
        "read_vram": dev.read_vram, "adopt_mode": dev.adopt_mode, "enable": dev.enable,
    }
    for name, call in calls.items():
        with pytest.raises(SVGAError, match="the device is closed"):
            call()
        assert name


def test_fifo_send_with_a_non_integer_field_is_a_protocol_error():
    with open_device("model") as dev:
        dev.set_mode(64, 64)
        for bad in ("a", 1.5, None, b"x"):
            with pytest.raises(ProtocolError, match="must be an integer"):
                dev.fifo.send("UPDATE", x=bad, y=0, width=1, height=1)
        with pytest.raises(ProtocolError, match="must be bytes"):
            dev.fifo.send("DEFINE_ALPHA_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=1, height=1,
                          image="four")


def test_out_of_range_memory_access_is_a_device_error():
    import numpy as np

    mem = ArrayMemory(np.zeros(64, np.uint8))
    for call in (lambda: mem.read(60, 8), lambda: mem.read(-1, 1), lambda: mem.write(63, b"ab"),
                 lambda: mem.read32(64), lambda: mem.write32(1 << 40, 0)):
        with pytest.raises(DeviceError, match="outside a 64-byte region"):
            call()


# -- 7. QMP: qemu.qmp's own log lines ------------------------------------------------------
QMP_PEER = textwrap.dedent("""
    import logging, os, socket, sys, threading
    logging.basicConfig(level=logging.WARNING, format="svga: %(levelname)s: %(message)s")  # as the CLI
    from svga.errors import DeviceError
    from svga.transport.qmp import QMPConnection
    GREETING = (b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},'
                b' "capabilities": []}}\\r\\n')
    path = os.path.join(sys.argv[2], "qmp.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(8)
    def serve():
        while True:
            c, _ = srv.accept()
            try:
                if sys.argv[1] == "eof-in-negotiation":
                    c.sendall(GREETING); c.recv(4096)
                elif sys.argv[1] == "endless-reply":
                    c.sendall(GREETING); c.recv(4096); c.sendall(b'{"return": {}}\\r\\n'); c.recv(4096)
                    while True:               # until the client gives up on the line
                        c.sendall(b"x" * 65536)
            except OSError:
                pass
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        QMPConnection(path, timeout=2).execute("query-version")
    except DeviceError as e:
        print(f"svga: error: {e}", file=sys.stderr)
        sys.exit(1)
""")


@pytest.mark.parametrize("peer", ["eof-in-negotiation", "endless-reply"])
def test_qmp_failures_print_one_line(tmp_path, peer):
    p = subprocess.run([sys.executable, "-c", QMP_PEER, peer, str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("svga: error: "), p.stderr


# -- 8. Signals to a process with a QEMU child ---------------------------------------------
OWNER = textwrap.dedent("""
    import sys, time
    from svga.transport.qemu_process import QemuProcess
    proc = QemuProcess("svga-qtest-")
    proc.start([sys.executable, "-c", "import time; time.sleep(120)"])
    print(proc.workdir, proc.pid, flush=True)
    time.sleep(120)
""")


def _start_owner(tmp_path: Path) -> tuple[subprocess.Popen, Path, int]:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             text=True)
    workdir, child = owner.stdout.readline().split()
    return owner, Path(workdir), int(child)


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_removes_the_work_folder_and_the_child(tmp_path, sig):
    owner, workdir, child = _start_owner(tmp_path)
    assert workdir.parent == tmp_path and workdir.is_dir()
    owner.send_signal(sig)
    assert owner.wait(30) == -sig                    # it still dies of the signal
    assert not workdir.exists() and list(tmp_path.iterdir()) == []
    assert _gone(child)


def test_after_sigkill_the_next_start_sweeps_the_folder(tmp_path):
    owner, workdir, child = _start_owner(tmp_path)
    owner.kill()
    owner.wait(30)
    assert workdir.exists()                          # nothing could run on SIGKILL
    assert _gone(child)                              # the parent-death signal took the child
    env = dict(os.environ, TMPDIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", "from svga.transport.qemu_process import QemuProcess as Q; "
                    "Q('svga-qtest-').close()"], cwd=ROOT, env=env, check=True, timeout=60)
    assert not workdir.exists() and list(tmp_path.iterdir()) == []


def test_a_folder_whose_pid_was_reused_is_swept(tmp_path):
    from svga.transport.qemu_process import QemuProcess

    stale = tmp_path / "svga-qtest-reused"
    stale.mkdir()
    # pid 1 is alive, but it did not start at tick 1 after boot... unless it did: use a time
    # that differs from its real one.
    real = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19]
    (stale / "owner").write_text(f"1 {int(real) + 12345}\n")
    env_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path)
    import tempfile

    tempfile.tempdir = None
    try:
        QemuProcess("svga-qtest-").close()
    finally:
        if env_tmp is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = env_tmp
        tempfile.tempdir = None
    assert not stale.exists()


@pytest.mark.qemu
def test_sigterm_to_a_qtest_device_leaves_no_folder(tmp_path):
    script = ("import sys, time\nfrom svga.device import open_device\n"
              "dev = open_device('qemu')\ndev.set_mode(64, 64)\n"
              "print('ready', flush=True)\ntime.sleep(120)\n")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             text=True)
    assert owner.stdout.readline().strip() == "ready"
    assert [p.name.startswith("svga-qtest-") for p in tmp_path.iterdir()] == [True]
    owner.terminate()
    assert owner.wait(60) == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


# -- 10. The command line ------------------------------------------------------------------
def _demo_allowed(w: int, h: int) -> bool:
    return w >= DEMO_MIN[0] and h >= DEMO_MIN[1] and 2 * w >= h


def _modes() -> list[tuple[int, int]]:
    rng = random.Random(17)
    edges = [(16, 16), (64, 64), (640, 1), (2360, 1), (1, 1), (80, 64), (79, 64), (80, 63), (80, 160),
             (80, 161), (885, 1770), (884, 1770), (2360, 1770), (100, 200), (100, 201)]
    return edges + [(rng.randint(1, 1200), rng.randint(1, 1200)) for _ in range(25)]


@pytest.mark.parametrize("profile", ["vmware", "qemu"])
def test_demo_mode_either_draws_or_is_refused_up_front(capsys, profile):
    for w, h in _modes():
        if not _demo_allowed(w, h):
            code, out, err = run_cli(capsys, "demo", "--mode", f"{w}x{h}", "--device", "model")
            assert code == 1 and out == "" and err.count("\n") == 1, (w, h, err)
            assert "too small for the demo pattern" in err
            continue
        with open_device("model", profile=profile) as dev:
            draw_demo(dev, w, h)                     # raises if a part of the pattern does not fit


@pytest.mark.parametrize("argv, words", [
    (["demo", "--mode", "800x600x16"], "only 32 bpp"),
    (["mode", "800x600x16", "--device", "model"], "only 32 bpp"),
    (["mode", "64x64", "--clear", "0x1000000000", "--device", "model"], "outside 0x000000..0xFFFFFF"),
    (["mode", "64x64", "--clear", "-1", "--device", "model"], "outside 0x000000..0xFFFFFF"),
    (["mode", "-5x3"], "width and height must be positive"),
    (["mode", "0x3"], "at least 1"),
    (["mode"], "the following arguments are required"),
    (["frobnicate"], "invalid choice"),
    (["info", "--device"], "expected one argument"),
])
def test_usage_errors_are_one_line_and_exit_1(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("svga: error: ") and words in err, err


def test_help_exits_0(capsys):
    code, out, _ = run_cli(capsys, "demo", "--help")
    assert code == 0 and f"at least {DEMO_MIN[0]}x{DEMO_MIN[1]}" in out


def test_clear_in_range_still_works(capsys):
    code, out, _ = run_cli(capsys, "mode", "64x64", "--clear", "0xFFFFFF", "--device", "model")
    assert code == 0 and out.startswith("mode 64x64x32")


# -- 11. The strict model's mode registers -------------------------------------------------
@pytest.mark.parametrize("reg, value, words", [
    (Reg.PITCHLOCK, 4, "smaller than a row"),
    (Reg.PITCHLOCK, 64 * 4 - 4, "smaller than a row"),
    (Reg.PITCHLOCK, 1 << 30, "more than the"),
])  # WIDTH/HEIGHT 0 are refused only without Screen Objects, where 0x0 means "no legacy framebuffer"
def test_strict_model_refuses_nonsense_modes(reg, value, words):
    with open_device("model", profile="vmware") as dev:
        dev.set_mode(64, 64)
        with pytest.raises(ModelError, match=words):
            dev.regs.write(reg, value)
        assert (dev.regs.read(Reg.WIDTH), dev.regs.read(Reg.HEIGHT)) == (64, 64)
        assert dev.regs.read(Reg.BYTES_PER_LINE) == 64 * 4   # the write was ignored


def test_strict_model_keeps_a_sensible_pitchlock():
    with open_device("model", profile="vmware") as dev:
        dev.set_mode(64, 64)
        dev.regs.write(Reg.PITCHLOCK, 512)
        assert dev.regs.read(Reg.BYTES_PER_LINE) == 512
        dev.regs.write(Reg.PITCHLOCK, 0)
        assert dev.regs.read(Reg.BYTES_PER_LINE) == 256


# -- item 4 where the model can make it: a device that stops consuming the FIFO -------------
@pytest.mark.parametrize("fault, words", [("sync-ignored", "SYNC moves nothing"),
                                          ("busy-stuck", "BUSY never returns to 0")])
def test_a_device_that_stops_consuming_the_fifo_is_a_clear_error_not_a_hang(fault, words):
    from svga.device import Device
    from svga.errors import FifoError
    from svga.model import ModelTransport

    model = ModelTransport("vmware")
    dev = Device(model)
    dev.set_mode(64, 64)
    regs = model.registers
    real_write, real_read = regs.write, regs.read
    if fault == "sync-ignored":        # SYNC does nothing, BUSY reads 0 (on VMware a BUSY read runs the FIFO)
        regs.write = lambda index, value: None if index == Reg.SYNC else real_write(index, value)
        regs.read = lambda index: 0 if index == Reg.BUSY else real_read(index)
    else:
        regs.read = lambda index: 1 if index == Reg.BUSY else real_read(index)
    start = time.monotonic()
    with pytest.raises(FifoError, match=words):
        dev.update()
        dev.sync()
    assert time.monotonic() - start < 30
    regs.write, regs.read = real_write, real_read
    dev.close()
