"""A real QEMU guest with the real SVGA II device, run from the host (tools layer, lab).

The guest is ``qemu-system-x86_64 -machine pc -accel tcg -cpu max -vga vmware -usb -device
usb-tablet`` (the ``pc`` machine brings vmport and the vmmouse), booted from the host's
own Debian kernel and a tiny initramfs (svga/lab/initramfs.py). Its root file system is
the host's, over 9p, read-only under a tmpfs overlay: the guest sees the host's files at
the same paths and runs the same python with the same site-packages. KVM is not used: a
nested KVM guest hangs on this machine kind. Under TCG, with the kernel booted as an
unpacked PVH vmlinux (svga/lab/kernel.py), a guest is ready for its first command about
5 s after QEMU starts (measured 4.4-6.9 s on a 2-core host, median 4.9 s; the bzImage
took 8-15 s); a Python job that imports numpy then takes about 3-5 s more. One CPU
(the default) boots as fast as two and leaves the host a core. The host's root is
mounted with cache=loose (much faster imports): a file the host changes while a guest
runs may look stale inside it; the job folder is not cached.

The guest environment: /proc, /sys, /dev (devtmpfs, pts, shm), a tmpfs on /run, the
host's /tmp as it is (files the host writes there are visible). Modules loaded at boot:
virtio/9p/overlay, uinput, evdev, serio_raw, usbcore, uhci-hcd (not psmouse, not usbhid:
the vmmouse and the tablet are free for userspace); others load with modprobe as usual.
The console logs "svga-lab: ..." lines per job.

Jobs. A guest runs commands ("jobs") that the host writes into a job folder shared as a
second, writable 9p export (``<workdir>/io`` on the host, /run/svga-lab/io in the guest).
Job n is ``io/job-<n>/cmd``, a shell script that sets the environment, changes to the
working directory and execs the command; the guest writes ``out``, ``err`` and then
``status``. Jobs run one at a time, in order. In a job, $SVGA_LAB_JOB is the job's folder.
A job gets the host's PATH (this python's folder first, so ``python3`` is this python),
HOME, LANG, PYTHONPATH, VIRTUAL_ENV... plus what ``env=`` adds; stdin is /dev/null. The
project is not installed: a job that imports svga needs ``env={"PYTHONPATH": ...}`` or a
cwd of the checkout with ``python3 -m``.

Markers. A long-running job can tell the host "I am at a point worth looking at": it
creates ``$SVGA_LAB_JOB/marker.<name>`` and waits for ``release.<name>``. The host waits
for the marker, looks (QMP screendump, QMP input events), then releases it. In the guest
use ``python3 -m svga.lab.marker drawn`` or ``svga.lab.marker.signal("drawn")``.

The serial console goes to ``<workdir>/console.log``; every failure (QEMU exit, timeout)
raises a LabError subclass whose one-line message names what failed and whose
``console_tail`` holds the last console lines. A guest that overruns its timeout is
killed. QEMU never outlives this process: it gets PR_SET_PDEATHSIG(SIGKILL), and open
guests are killed at exit. (QEMU is found, started, watched and reaped by
svga.transport.qemu_process, through svga.transport.child from a thread that lives as
long as the process; the same module gives the base of the command line.)

Python API::

    from svga.lab.vm import Guest, capture, run

    status, output = run(["uname", "-r"], timeout=60)      # one-shot guest
    cap = capture(["python3", "-m", "mydemo"], marker="drawn")  # one-shot, with screendump

    with Guest(display="none") as g:        # display="vnc": a VNC server on a Unix socket,
        g.start()                           # which makes QEMU offer the hardware cursor
        print(g.boot_seconds)               # host wall time from QEMU start to ready
        status, output = g.run(["cat", "/sys/bus/pci/devices/0000:00:02.0/vendor"])

        job = g.submit(["python3", "-m", "mydemo"], cwd="/srv/mydemo")
        job.wait_marker("drawn", timeout=120)  # the job ran `python3 -m svga.lab.marker drawn`
        image = g.screendump()                 # numpy (H, W, 3) uint8, via QMP
        g.send_input([...])                    # QMP input-send-event events
        job.release("drawn")
        status, output = job.wait(timeout=60)

        cap = g.capture(["python3", "-m", "mydemo"])  # the three steps above in one:
        cap.status, cap.output, cap.image             # screendump at marker "drawn", or
                                                      # after the job when it never signals

QMP goes through svga.transport.qmp.QMPConnection (``g.qmp``), connected on first use.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svga.errors import DeviceNotFound
from svga.lab.errors import GuestFailed, GuestTimeout, LabError
from svga.lab.initramfs import GUEST_IO_DIR, IO_TAG, ROOT_TAG, build_initramfs, cache_dir, initramfs_path
from svga.lab.kernel import Kernel, boot_image, find_kernel
from svga.transport.qemu_process import (
    DISPLAYS,
    QEMU_BINARY,
    QemuProcess,
    base_command,
    file_tail,
    find_qemu,
    qmp_option,
)

if TYPE_CHECKING:
    import numpy as np

#: Host environment variables a job inherits (the job adds its own on top).
PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
              "PYTHONPATH", "VIRTUAL_ENV", "TERM")
_POLL = 0.01
_WORKDIR_PREFIX = "svga-lab-"
_CONSOLE_LINES = 25
#: Seconds QEMU gets to end after SIGTERM before it is killed.
_STOP_GRACE = 5.0


def job_script(cmd: Sequence[str], cwd: str, env: Mapping[str, str], job_dir: str,
               merge_stderr: bool) -> str:
    """The shell script the guest runs for one job (busybox sh)."""
    if not cmd:
        raise ValueError("empty guest command")
    lines = [f"# svga lab job: {shlex.join(cmd)}"]
    if merge_stderr:
        lines.append("exec 2>&1")
    for key, value in sorted({**env, "SVGA_LAB_JOB": job_dir}.items()):
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append(f"cd {shlex.quote(cwd)} || exit 126")
    lines.append("exec " + shlex.join(cmd))
    return "\n".join(lines) + "\n"


def default_env() -> dict[str, str]:
    """The host's environment as a job sees it: PASSED_ENV, with this interpreter's bin
    folder first on PATH (so ``python3`` in the guest is the python running the lab)."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    env.setdefault("HOME", "/root")
    return env


@dataclass(frozen=True)
class BootFiles:
    """What QEMU boots: the kernel, the image given to -kernel, the initramfs."""

    kernel: Kernel
    image: Path
    initrd: Path


def prepare(kernel: Kernel | None = None, progress: Callable[[str], None] | None = None,
            pvh: bool = True, force: bool = False) -> BootFiles:
    """Find the kernel, unpack its PVH vmlinux and build the initramfs (both cached in
    ~/.cache/svga-lab, so only the first call is slow). ``force`` rebuilds the initramfs."""
    say = progress or (lambda _msg: None)
    kernel = kernel or find_kernel()
    cache = cache_dir()
    image = kernel.image
    if pvh:
        if not any(cache.glob(f"vmlinux-{kernel.version}-*")):
            say(f"unpacking kernel {kernel.version} for a direct (PVH) boot (once)")
        image = boot_image(kernel, cache)
    if force or not initramfs_path(kernel, cache).is_file():
        say(f"building the initramfs for kernel {kernel.version} (once)")
    initrd = build_initramfs(kernel, cache, force=force)
    return BootFiles(kernel, image, initrd)


@dataclass
class Capture:
    """The result of Guest.capture: the job's status and output, and the screendump."""

    status: int
    output: str
    image: np.ndarray
    marked: bool  # True when taken at the job's marker, False when taken after it ended


class Job:
    """One command in a running guest. Created by Guest.submit."""

    def __init__(self, guest: Guest, index: int, cmd: Sequence[str]) -> None:
        self.guest = guest
        self.index = index
        self.cmd = list(cmd)
        self.dir = guest.io_dir / f"job-{index}"
        self.guest_dir = f"{GUEST_IO_DIR}/job-{index}"
        self.status: int | None = None
        self.stdout = ""
        self.stderr = ""

    def _describe(self) -> str:
        text = shlex.join(self.cmd)
        return text if len(text) <= 60 else text[:57] + "..."

    def done(self) -> bool:
        return (self.dir / "status").exists()

    def _collect(self) -> None:
        self.status = int((self.dir / "status").read_text().strip())
        self.stdout = (self.dir / "out").read_bytes().decode(errors="replace")
        err = self.dir / "err"
        self.stderr = err.read_bytes().decode(errors="replace") if err.exists() else ""

    def _poll_until(self, ready: Callable[[], bool], timeout: float, doing: str, late: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.guest._check_alive(doing)
            if time.monotonic() > deadline:
                self.guest.kill()
                raise GuestTimeout(f"{late}; the guest was killed", self.guest.console_tail())
            time.sleep(_POLL)

    def wait(self, timeout: float = 60.0) -> tuple[int, str]:
        """Wait for the job to end: (exit status, output). The output is stdout, with
        stderr merged in unless the job was submitted with merge_stderr=False (then it is
        in .stderr). ``timeout`` counts from this call; past it the guest is killed
        (GuestTimeout)."""
        if self.status is None:
            cmd = self._describe()
            self._poll_until(self.done, timeout, f"running `{cmd}`",
                             f"guest command `{cmd}` took more than {timeout:g} s")
            self._collect()
        assert self.status is not None
        return self.status, self.stdout

    def wait_marker(self, name: str, timeout: float = 60.0) -> None:
        """Wait until the job signals marker ``name``. LabError if it ends first."""
        if not self.wait_marker_or_end(name, timeout):
            raise LabError(f"guest command `{self._describe()}` ended with status {self.status} "
                           f"without signalling '{name}'", self.stdout[-2000:])

    def wait_marker_or_end(self, name: str, timeout: float = 60.0) -> bool:
        """Wait for marker ``name`` or the end of the job: True for the marker."""
        marker = self.dir / f"marker.{name}"
        cmd = self._describe()
        self._poll_until(lambda: marker.exists() or self.done(), timeout,
                         f"waiting for '{name}' from `{cmd}`",
                         f"guest command `{cmd}` did not signal '{name}' within {timeout:g} s")
        if marker.exists():
            return True
        self._collect()
        return False

    def release(self, name: str) -> None:
        """Let a job that signalled marker ``name`` go on."""
        tmp = self.dir / f".release.{name}"
        tmp.write_text("")
        os.replace(tmp, self.dir / f"release.{name}")


class Guest:
    """A QEMU guest with the SVGA II device, the vmmouse and a USB tablet.

    ``display``: "none" (headless; QEMU offers caps RECT_FILL|RECT_COPY) or "vnc" (a VNC
    server on a Unix socket, no client needed; QEMU then also offers the cursor caps).
    ``smp``/``memory_mb``: guest CPUs and RAM (1 CPU boots as fast as 2 under TCG and
    leaves the host a core). ``kernel``: a svga.lab.kernel.Kernel (default: the newest
    installed); ``boot_files``: from prepare(), to share one preparation among guests.
    ``progress``: called with one-line progress messages (the CLI prints them on stderr).
    ``keep_workdir``: leave the temporary folder (console.log, qemu.log, io/) for
    inspection after close. ``kernel_args``: extra kernel command-line words (default
    "quiet"; "" shows the whole kernel log on the console, "printk.time=1" timestamps it).
    ``extra_args``: more QEMU arguments (devices, -trace ...).
    """

    def __init__(self, *, display: str = "none", smp: int = 1, memory_mb: int = 1024,
                 kernel: Kernel | None = None, boot_files: BootFiles | None = None,
                 boot_timeout: float = 60.0, extra_args: Sequence[str] = (),
                 progress: Callable[[str], None] | None = None,
                 keep_workdir: bool = False, qmp_timeout: float = 30.0,
                 kernel_args: str = "quiet") -> None:
        if display not in DISPLAYS:
            raise LabError(f"unknown display {display!r}: use one of {', '.join(DISPLAYS)}")
        self.display = display
        self.smp = smp
        self.memory_mb = memory_mb
        self.kernel = kernel
        self.boot_files = boot_files
        self.boot_timeout = boot_timeout
        self.extra_args = list(extra_args)
        self.progress = progress or (lambda _msg: None)
        self.qmp_timeout = qmp_timeout
        self.kernel_args = kernel_args
        # The work folder (stale ones of killed lab processes are removed first), QEMU's
        # life and its reaping, also at interpreter exit.
        self._qemu = QemuProcess(_WORKDIR_PREFIX, grace=_STOP_GRACE, keep_workdir=keep_workdir)
        self.workdir = self._qemu.workdir
        self.io_dir = self.workdir / "io"
        self.io_dir.mkdir()
        self.console_log = self.workdir / "console.log"
        self.qemu_log = self.workdir / "qemu.log"
        self.qmp_socket = self.workdir / "qmp.sock"
        self.vnc_socket = self.workdir / "vnc.sock"
        self.boot_seconds: float | None = None
        self.guest_uptime: float | None = None
        self._qmp: Any = None
        self._jobs = 0

    # -- lifecycle ---------------------------------------------------------------------

    def command(self, binary: str = QEMU_BINARY) -> list[str]:
        """The QEMU command line (boot_files must be known: start() prepares them)."""
        assert self.boot_files is not None
        files = self.boot_files
        return [
            *base_command(binary, self.display, self.vnc_socket),
            "-cpu", "max", "-m", str(self.memory_mb), "-smp", str(self.smp),
            "-usb", "-device", "usb-tablet",
            "-nic", "none", "-monitor", "none", "-parallel", "none",
            "-kernel", str(files.image), "-initrd", str(files.initrd),
            "-append", f"console=ttyS0 panic=-1 {self.kernel_args}".strip(),
            "-virtfs", f"local,path=/,mount_tag={ROOT_TAG},security_model=none,readonly=on,"
                       "multidevs=remap",
            "-virtfs", f"local,path={self.io_dir},mount_tag={IO_TAG},security_model=none",
            *qmp_option(self.qmp_socket),
            "-serial", f"file:{self.console_log}",
            "-no-reboot",
            *self.extra_args,
        ]

    def start(self) -> Guest:
        """Boot the guest and wait until it is ready for jobs (jobs submitted before start
        begin at once). GuestFailed/GuestTimeout with the console tail on failure."""
        if self._qemu.pid is not None:
            return self
        try:
            binary = find_qemu()
        except DeviceNotFound as exc:
            raise LabError(str(exc)) from None
        if self.boot_files is None:
            self.boot_files = prepare(self.kernel, self.progress)
        self.progress(f"booting a QEMU guest (kernel {self.boot_files.kernel.version}, "
                      f"display {self.display})")
        t0 = time.monotonic()
        self._qemu.start(self.command(binary), log=self.qemu_log)
        ready = self.io_dir / "ready"
        while not ready.exists():
            self._check_alive("booting the guest")
            if time.monotonic() - t0 > self.boot_timeout:
                self.kill()
                raise GuestTimeout(f"the guest was not ready after {self.boot_timeout:g} s and was killed",
                                   self.console_tail())
            time.sleep(_POLL)
        self.boot_seconds = time.monotonic() - t0
        try:
            self.guest_uptime = float(ready.read_text().split()[0])
        except (ValueError, IndexError):
            self.guest_uptime = None
        self.progress(f"guest ready after {self.boot_seconds:.1f} s")
        return self

    @property
    def keep_workdir(self) -> bool:
        """Whether close() leaves the work folder."""
        return self._qemu.keep_workdir

    @keep_workdir.setter
    def keep_workdir(self, keep: bool) -> None:
        self._qemu.keep_workdir = keep

    @property
    def pid(self) -> int | None:
        """QEMU's process id (None before start)."""
        return self._qemu.pid

    def _check_alive(self, what: str) -> None:
        if self._qemu.pid is None:
            raise LabError("the guest is not started: call start() first")
        code = self._qemu.returncode()
        if code is None:
            return
        tail = self.console_tail()
        if code == 0:
            # The guest powered itself off: stage 1 says why on the console.
            said = [line for line in tail.splitlines() if line.startswith("svga-lab:")]
            why = f" ({said[-1].removeprefix('svga-lab: ')})" if said else ""
            raise GuestFailed(f"the guest powered off while {what}{why}", tail)
        last = self._qemu.tail(1)
        why = f" ({last[0]})" if last else ""
        raise GuestFailed(f"QEMU exited with status {code} while {what}{why}", tail)

    def console_tail(self, lines: int = _CONSOLE_LINES) -> str:
        """The last lines of the guest's serial console (kernel messages, svga-lab lines)."""
        return "\n".join(file_tail(self.console_log, lines))

    def kill(self) -> None:
        """Stop QEMU now (the guest's files live in RAM: nothing is lost that matters)."""
        if self._qmp is not None:
            try:
                self._qmp.close()
            except Exception:  # noqa: BLE001 - the socket dies with QEMU anyway
                pass
            self._qmp = None
        self._qemu.stop()

    def close(self) -> None:
        """Kill QEMU and remove the work folder (unless keep_workdir). Idempotent."""
        self.kill()
        self._qemu.close()

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs --------------------------------------------------------------------------

    def submit(self, cmd: Sequence[str], cwd: str | None = None, env: Mapping[str, str] | None = None,
               merge_stderr: bool = True, inherit_env: bool = True) -> Job:
        """Queue a command; it starts as soon as the guest is ready and earlier jobs are
        done. ``cwd`` defaults to the host's current folder, the environment to the host's
        (see default_env) plus ``env``."""
        self._jobs += 1
        job = Job(self, self._jobs, cmd)
        full_env = default_env() if inherit_env else {}
        full_env.update(env or {})
        script = job_script(cmd, cwd or os.getcwd(), full_env, job.guest_dir, merge_stderr)
        job.dir.mkdir()
        tmp = job.dir / ".cmd"
        tmp.write_text(script)
        os.replace(tmp, job.dir / "cmd")
        return job

    def run(self, cmd: Sequence[str], timeout: float = 60.0, **kwargs: Any) -> tuple[int, str]:
        """Run a command in the guest and wait: (exit status, output). Starts the guest
        if needed. kwargs as for submit."""
        job = self.submit(cmd, **kwargs)
        self.start()
        return job.wait(timeout)

    def capture(self, cmd: Sequence[str], marker: str = "drawn", timeout: float = 60.0,
                **kwargs: Any) -> Capture:
        """Run a command that draws, take a QMP screendump when it signals ``marker`` (or,
        if it never does, once it has ended), release it and wait for its end."""
        job = self.submit(cmd, **kwargs)
        self.start()
        marked = job.wait_marker_or_end(marker, timeout)
        image = self.screendump()
        if marked:
            job.release(marker)
        status, output = job.wait(timeout)
        return Capture(status, output, image, marked)

    # -- QMP ---------------------------------------------------------------------------

    @property
    def qmp(self) -> Any:
        """The guest's QMP connection (svga.transport.qmp.QMPConnection), opened on first use."""
        self._check_alive("opening QMP")
        if self._qmp is None:
            try:
                from svga.transport.qmp import QMPConnection
            except ImportError as exc:
                raise LabError(f"the QMP client svga.transport.qmp is not available: {exc}") from exc
            self._qmp = QMPConnection(str(self.qmp_socket), timeout=self.qmp_timeout,
                                      check=lambda: self._check_alive("connecting to QMP"))
        return self._qmp

    def screendump(self) -> np.ndarray:
        """What QEMU's display shows now, as an (H, W, 3) uint8 RGB array. (A screendump
        is also a display refresh: QEMU resizes its surface and runs the SVGA FIFO.)"""
        return self.qmp.screendump()

    def send_input(self, events: Sequence[Mapping[str, Any]], device: str | None = None) -> None:
        """Inject QMP input-send-event events (abs axes 0..32767, btn events; helpers
        abs_events/btn_event in svga.transport.qmp). ``device``: a QOM id to aim at one
        input device, else QEMU's active pointer gets them."""
        self.qmp.send_input(events, device=device)


def run(cmd: Sequence[str], timeout: float = 60.0, *, cwd: str | None = None,
        env: Mapping[str, str] | None = None, merge_stderr: bool = True,
        **guest_kwargs: Any) -> tuple[int, str]:
    """Boot a fresh guest, run one command, stop the guest: (exit status, output).
    ``timeout`` counts from the guest being ready; guest_kwargs go to Guest()."""
    with Guest(**guest_kwargs) as guest:
        job = guest.submit(cmd, cwd=cwd, env=env, merge_stderr=merge_stderr)
        guest.start()
        return job.wait(timeout)


def capture(cmd: Sequence[str], marker: str = "drawn", timeout: float = 60.0, *,
            cwd: str | None = None, env: Mapping[str, str] | None = None,
            **guest_kwargs: Any) -> Capture:
    """Boot a fresh guest, run a command that draws, screendump it at ``marker`` (or
    after it ends), let it finish, stop the guest (see Guest.capture)."""
    with Guest(**guest_kwargs) as guest:
        return guest.capture(cmd, marker=marker, timeout=timeout, cwd=cwd, env=env)


def boot(**guest_kwargs: Any) -> Guest:
    """A started Guest (use it as a context manager, or close() it)."""
    guest = Guest(**guest_kwargs)
    try:
        return guest.start()
    except BaseException:
        guest.close()
        raise
