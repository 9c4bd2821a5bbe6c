"""The QEMU guest lab end to end (svga/lab/vm.py and svga/lab/cli.py): real guests with
the real SVGA II device. Needs root and the lab's packages (`svga lab setup`); each
boot takes about 5-8 s under TCG.

Expected values are written down from the device and the recipe (docs/lab.md): PCI
15ad:0405 at 00:02.0, caps 0x3 headless and 0xE3 with a VNC display, the PIIX3 UHCI
controller 8086:7020 for -usb, the QEMU tablet 0627:0001 whose report for QMP (100, 200)
is 00 6400 c800 00.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from svga.lab.errors import GuestFailed
from svga.lab.packages import not_ready
from svga.registers import Cap

ROOT = Path(__file__).resolve().parents[1]


_WHY = not_ready()
pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(_WHY), reason=_WHY or "ready")]

PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}
#: Guest jobs that import svga: the project is not installed, so say where it is.
SVGA = {"cwd": str(ROOT), "env": {"PYTHONPATH": PYTHONPATH}}


def lab_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svga.lab", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


# Guest-side scripts. They use the protocol layer only (register and FIFO indices), so
# the harness is tested without the driver.
REGS_HELPERS = """
import mmap, os, struct, sys
import numpy as np
from svga.registers import INDEX_PORT, SVGA_ID_2, VALUE_PORT, FifoReg, Reg
DEV = "/sys/bus/pci/devices/0000:00:02.0"
fd = os.open(DEV + "/resource0", os.O_RDWR)
def wr(r, v):
    os.pwrite(fd, struct.pack("<I", r), INDEX_PORT)
    os.pwrite(fd, struct.pack("<I", v), VALUE_PORT)
def rd(r):
    os.pwrite(fd, struct.pack("<I", r), INDEX_PORT)
    return struct.unpack("<I", os.pread(fd, 4, VALUE_PORT))[0]
wr(Reg.ID, SVGA_ID_2)
"""

CAPS_SCRIPT = REGS_HELPERS + "print(hex(rd(Reg.CAPABILITIES)))\n"

# 800x600x32 (640x480 is never shown by QEMU 7.2), an empty FIFO and CONFIG_DONE (QEMU
# shows the SVGA framebuffer only once the FIFO is configured), left half red, right half
# blue, then the marker: the host's screendump must happen while the job waits.
DRAW_SCRIPT = REGS_HELPERS + """
with open(DEV + "/enable", "w") as f:
    f.write("1")
fifo = np.frombuffer(mmap.mmap(os.open(DEV + "/resource2", os.O_RDWR), rd(Reg.MEM_SIZE)), dtype=np.uint32)
fifo[FifoReg.MIN] = fifo[FifoReg.NEXT_CMD] = fifo[FifoReg.STOP] = 16
fifo[FifoReg.MAX] = rd(Reg.MEM_SIZE)
wr(Reg.WIDTH, 800); wr(Reg.HEIGHT, 600); wr(Reg.BITS_PER_PIXEL, 32)
wr(Reg.ENABLE, 1); wr(Reg.CONFIG_DONE, 1)
pitch, offset = rd(Reg.BYTES_PER_LINE), rd(Reg.FB_OFFSET)
vram = mmap.mmap(os.open(DEV + "/resource1", os.O_RDWR), rd(Reg.FB_SIZE))
fb = np.frombuffer(vram, dtype=np.uint32, count=600 * pitch // 4, offset=offset).reshape(600, -1)
fb[:, :400] = 0x00FF0000
fb[:, 400:800] = 0x000000FF
from svga.lab import marker
marker.signal("drawn")
wr(Reg.ENABLE, 0)
print("released")
"""

TABLET_SCRIPT = """
import usb.core
from svga.lab import marker
dev = usb.core.find(idVendor=0x0627, idProduct=0x0001)
dev.set_configuration()
marker.signal("open")
print(bytes(dev.read(0x81, 8, timeout=5000)).hex())
"""


@pytest.fixture(scope="module")
def guest():
    from svga.lab.vm import Guest
    g = Guest()
    try:
        g.start()
        yield g
    finally:
        g.close()


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> Path:
    # The guest sees the host's /tmp through 9p, at the same path.
    d = tmp_path_factory.mktemp("lab-scripts")
    for name, text in (("caps.py", CAPS_SCRIPT), ("draw.py", DRAW_SCRIPT), ("tablet.py", TABLET_SCRIPT)):
        (d / name).write_text(text)
    return d


# -- the CLI, one fresh guest each ----------------------------------------------------------

def test_cli_run_prints_the_guest_kernel_version():
    from svga.lab.kernel import find_kernel
    proc = lab_cli("run", "-q", "--", "uname", "-r")
    assert proc.returncode == 0, proc.stderr
    # The guest boots the installed Debian kernel (the newest /boot/vmlinuz-<ver>).
    assert proc.stdout == find_kernel().version + "\n"


def test_cli_run_exit_status_propagates():
    proc = lab_cli("run", "-q", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "out\nerr\n"


def test_cli_run_kills_a_hung_guest_and_shows_the_console():
    proc = lab_cli("run", "-q", "--timeout", "2", "--", "sleep", "600")
    assert proc.returncode == 124
    assert "svga: error: guest command `sleep 600` took more than 2 s; the guest was killed" in proc.stderr
    assert "svga-lab: job 1 started" in proc.stderr   # the console tail


def test_cli_screenshot_after_a_drawing_command(scripts, tmp_path):
    from PIL import Image
    out = tmp_path / "shot.png"
    proc = lab_cli("screenshot", "-q", str(out), "--after", "python3", str(scripts / "draw.py"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "released"
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (600, 800, 3)
    assert (image[:, :400] == [255, 0, 0]).all() and (image[:, 400:] == [0, 0, 255]).all()


# -- one guest, many jobs ---------------------------------------------------------------------

def test_svga_device_is_at_00_02_0(guest):
    status, out = guest.run(["cat", "/sys/bus/pci/devices/0000:00:02.0/vendor",
                             "/sys/bus/pci/devices/0000:00:02.0/device",
                             "/sys/bus/pci/devices/0000:00:02.0/class"])
    assert status == 0
    assert out.split() == ["0x15ad", "0x0405", "0x030000"]


def test_headless_caps_are_fill_and_copy(guest, scripts):
    status, out = guest.run(["python3", str(scripts / "caps.py")], **SVGA)
    assert status == 0, out
    assert int(out, 16) == Cap.RECT_FILL | Cap.RECT_COPY


def test_usb_is_piix3_uhci_with_the_qemu_tablet(guest):
    status, out = guest.run(["sh", "-c", "cat /sys/bus/pci/devices/0000:00:01.2/vendor "
                             "/sys/bus/pci/devices/0000:00:01.2/device; "
                             "cat /sys/bus/usb/devices/*/idVendor /sys/bus/usb/devices/*/idProduct"])
    assert status == 0, out
    words = out.split()
    assert words[:2] == ["0x8086", "0x7020"]
    assert "0627" in words and "0001" in words


def test_guest_runs_the_host_python_with_numpy(guest):
    status, out = guest.run(["python3", "-c", "import sys, numpy; print(sys.executable, numpy.__version__)"])
    assert status == 0, out
    assert out.split() == [sys.executable, np.__version__]


def test_stderr_apart_when_asked(guest):
    job = guest.submit(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"], merge_stderr=False)
    assert job.wait(60) == (3, "to-out\n")
    assert job.stderr == "to-err\n"


def test_cwd_and_env_reach_the_job(guest, tmp_path):
    status, out = guest.run(["sh", "-c", 'pwd; echo "$LAB_TEST_VALUE"'], cwd=str(tmp_path),
                            env={"LAB_TEST_VALUE": "a b'c"})
    assert (status, out) == (0, f"{tmp_path}\na b'c\n")


def test_guest_writes_stay_in_the_guest(guest, tmp_path):
    probe = tmp_path / "written-in-guest"
    status, out = guest.run(["sh", "-c", f"echo x > {probe} && cat {probe}"])
    assert (status, out) == (0, "x\n")
    assert not probe.exists()


def test_drivers_modules_are_loaded(guest):
    status, out = guest.run(["sh", "-c", "ls /sys/module; ls /dev/uinput"])
    assert status == 0, out
    for name in ("uinput", "evdev", "serio_raw", "uhci_hcd", "overlay", "9p"):
        assert name in out.split()


def test_screendump_while_the_guest_runs(guest):
    image = guest.screendump()
    # Nothing set a mode yet: QEMU shows the VGA text screen, 720x400.
    assert image.shape == (400, 720, 3) and image.dtype == np.uint8


def test_capture_takes_the_screendump_at_the_marker(guest, scripts):
    cap = guest.capture(["python3", str(scripts / "draw.py")], timeout=120, **SVGA)
    assert cap.marked and cap.status == 0, cap.output
    assert cap.output.strip().endswith("released")
    assert cap.image.shape == (600, 800, 3)
    assert (cap.image[:, :400] == [255, 0, 0]).all()
    assert (cap.image[:, 400:] == [0, 0, 255]).all()


def test_qmp_input_reaches_the_usb_tablet(guest, scripts):
    from svga.transport.qmp import abs_events
    job = guest.submit(["python3", str(scripts / "tablet.py")], **SVGA)
    job.wait_marker("open", timeout=120)
    guest.send_input(abs_events(100, 200))
    job.release("open")
    status, out = job.wait(60)
    assert status == 0, out
    # Report: buttons 0, x 100 (LE 16-bit), y 200 (LE 16-bit), wheel 0.
    assert out.strip() == "006400c80000"


# -- other guests ---------------------------------------------------------------------------

def test_vnc_display_adds_the_cursor_caps(scripts):
    from svga.lab.vm import run
    status, out = run(["python3", str(scripts / "caps.py")], display="vnc", **SVGA)
    assert status == 0, out
    assert int(out, 16) == (Cap.RECT_FILL | Cap.RECT_COPY | Cap.CURSOR | Cap.CURSOR_BYPASS
                            | Cap.CURSOR_BYPASS_2)


def test_qemu_refusing_to_start_is_a_one_line_error():
    from svga.lab.vm import Guest
    with Guest(extra_args=["-device", "no-such-device-xyz"]) as g, pytest.raises(GuestFailed) as exc:
        g.start()
    assert "QEMU exited with status 1 while booting the guest" in str(exc.value)
    assert "no-such-device-xyz" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_failing_init_powers_off_with_its_reason(tmp_path, monkeypatch):
    from svga.lab import initramfs
    from svga.lab.vm import BootFiles, Guest, prepare
    files = prepare()
    monkeypatch.setattr(initramfs, "ROOT_TAG", "no-such-tag")   # stage 1 cannot mount the root
    broken = initramfs.build_initramfs(files.kernel, tmp_path)
    with Guest(boot_files=BootFiles(files.kernel, files.image, broken)) as g, \
            pytest.raises(GuestFailed) as exc:
        g.start()
    assert str(exc.value) == ("the guest powered off while booting the guest "
                              "(stage 1 failed: mount the host root (9p tag no-such-tag))")
    assert "svga-lab: stage 1 failed" in exc.value.console_tail


def test_close_stops_qemu_with_sigterm_and_reaps_it():
    from svga.lab.vm import Guest
    g = Guest(keep_workdir=True)   # kept, to read qemu.log after close
    try:
        g.start()
        pid = g.pid
        g.close()
        assert not os.path.exists(f"/proc/{pid}")   # ended and waited for (no zombie)
        # QEMU's own words for a SIGTERM: the lab gives it the chance to end cleanly.
        assert "terminating on signal 15" in g.qemu_log.read_text()
    finally:
        g.close()
        shutil.rmtree(g.workdir, ignore_errors=True)


def test_qemu_dies_with_its_parent():
    code = ("import sys; from svga.lab.vm import Guest; g = Guest(); g.start(); "
            "print(g.pid, g.workdir, flush=True); sys.stdin.read()")
    workdir = ""
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=ENV, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        pid_text, workdir = parent.stdout.readline().split()
        qemu_pid = int(pid_text)
        assert os.path.exists(f"/proc/{qemu_pid}")
        parent.send_signal(signal.SIGKILL)   # no atexit, no close(): only PDEATHSIG is left
        parent.wait()
        deadline = time.monotonic() + 30
        while _alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(qemu_pid)
    finally:
        parent.kill()
    # The next guest removes the work folder the killed parent left behind.
    from svga.lab.vm import Guest
    Guest().close()
    assert workdir and not os.path.exists(workdir)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
