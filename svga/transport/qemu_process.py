"""Transport layer: QEMU as a child process, found, started, watched and reaped in one place.

Both users of QEMU start it here: the qtest transport (svga/transport/qtest.py, QEMU with
its CPU stopped, driven from this host) and the guest lab (svga/lab/vm.py, a tool above
this layer, which boots a real guest). They share:

- finding the binary (:func:`find_qemu`): one one-line error naming the Debian package
  ``qemu-system-x86`` when ``qemu-system-x86_64`` is missing (docs/lab.md 'Packages');
- the base command line (:func:`base_command`): the ``pc`` machine (it brings vmport and
  the vmmouse), ``-accel tcg`` (a nested KVM guest hangs on this machine kind, docs/lab.md
  'Accelerator: TCG with -cpu max'), ``-vga vmware``, and a display that is ``none`` or a
  VNC server on a Unix socket in the work folder (no client needed; QEMU then offers the
  cursor capabilities, docs/lab.md 'The devices the guest sees'); :func:`qmp_option`
  adds the QMP socket (docs/lab.md 'QMP: screendump and input');
- :class:`QemuProcess`: a work folder for sockets and logs, QEMU started through
  svga.transport.child (so it dies with this process, whichever thread asked), its
  output kept (a ring of lines from drained pipes, or a log file), its exit status in
  words, and its reaping: terminate, wait, kill; the work folder removed. One atexit
  handler, registered once, reaps every QEMU still running when the interpreter exits, and
  so does a SIGTERM or SIGHUP handler (installed from the main thread, chained to the one
  before it: Python's default for those signals ends the process without atexit); work
  folders that a SIGKILLed process left behind are removed by the next start-up, which
  knows them by the ``owner`` file (pid and start time) each folder holds.
"""

from __future__ import annotations

import atexit
import collections
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from svga.errors import DeviceNotFound
from svga.transport.child import spawn

QEMU_BINARY = "qemu-system-x86_64"
DEBIAN_PACKAGE = "qemu-system-x86"
INSTALL_HINT = f"apt-get install {DEBIAN_PACKAGE}"
DISPLAYS = ("none", "vnc")
#: Lines of output kept when QEMU's stdout and stderr are drained from pipes.
OUTPUT_LINES = 400
#: Seconds to wait for QEMU to end after SIGKILL (it cannot refuse; this only bounds a hang).
KILL_WAIT = 5.0
_OWNER_FILE = "owner"


def find_qemu(qemu: str | None = None) -> str:
    """The QEMU binary to run: ``qemu`` (a name looked up on PATH, or a path), by default
    ``qemu-system-x86_64`` on PATH. DeviceNotFound (one line, with the apt-get command)
    when it is not there."""
    if qemu is None:
        found = shutil.which(QEMU_BINARY)
        if found is None:
            raise DeviceNotFound(f"{QEMU_BINARY} is not installed ({INSTALL_HINT})")
        return found
    if os.sep not in qemu:
        found = shutil.which(qemu)
        if found is None:
            raise DeviceNotFound(f"{qemu} is not on PATH ({INSTALL_HINT})")
        return found
    if not os.path.isfile(qemu) or not os.access(qemu, os.X_OK):
        raise DeviceNotFound(f"QEMU binary {qemu} does not exist or is not executable ({INSTALL_HINT})")
    return qemu


def base_command(binary: str, display: str, vnc_socket: str | os.PathLike[str]) -> list[str]:
    """``binary -machine pc -accel tcg -vga vmware -display none``, plus ``-vnc
    unix:VNC_SOCKET`` for the ``vnc`` display. ValueError for a display not in DISPLAYS
    (callers check first, with their own message)."""
    if display not in DISPLAYS:
        raise ValueError(f"unknown QEMU display {display!r}")
    argv = [binary, "-machine", "pc", "-accel", "tcg", "-vga", "vmware", "-display", "none"]
    if display == "vnc":
        argv += ["-vnc", f"unix:{vnc_socket}"]
    return argv


def qmp_option(socket_path: str | os.PathLike[str]) -> list[str]:
    """The QMP server on a Unix socket, not waiting for a client."""
    return ["-qmp", f"unix:{socket_path},server=on,wait=off"]


def exit_status(returncode: int | None) -> str:
    """A process's return code in words: ``exit code 1``, ``killed by SIGKILL``..."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def file_tail(path: str | os.PathLike[str], lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (carriage returns dropped); [] if it cannot
    be read."""
    try:
        text = Path(path).read_bytes().decode(errors="replace")
    except OSError:
        return []
    return text.replace("\r", "").rstrip("\n").splitlines()[-lines:] if lines > 0 else []


def _start_time(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/PID/stat, clock ticks since boot), which
    tells a live owner from a new process that reuses its pid; None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(4096).decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _owner_text() -> str:
    pid = os.getpid()
    return f"{pid} {_start_time(pid) or '?'}\n"


def _owner_alive(text: str) -> bool:
    """Whether the process an ``owner`` file names still runs (the same process, not one that
    took its pid). A file of one number (an older version wrote only the pid) counts by pid."""
    parts = text.split()
    pid = int(parts[0])
    started = _start_time(pid)
    if started is None:
        return False
    return len(parts) < 2 or parts[1] == "?" or parts[1] == started


def _prune_stale(prefix: str) -> None:
    """Remove work folders of this prefix whose owner process is gone: a SIGKILL leaves no
    chance to clean up (the parent-death signal has already ended their QEMU)."""
    for folder in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            alive = _owner_alive((folder / _OWNER_FILE).read_text())
        except (OSError, ValueError, IndexError):
            continue  # not ours, or its owner has not written the file yet
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)


class QemuProcess:
    """One QEMU child process and its work folder.

    Creating it makes the work folder (``<tmp>/<prefix>XXXX``, with an ``owner`` file
    holding this process's pid) after removing stale folders of the same prefix.
    :meth:`start` runs QEMU once. ``grace``: seconds QEMU gets to end after SIGTERM
    before it is killed (0: SIGKILL at once). ``keep_workdir``: :meth:`close` leaves the
    folder. Every QemuProcess not yet closed is closed at interpreter exit.
    """

    def __init__(self, prefix: str, *, grace: float = 0.0, keep_workdir: bool = False) -> None:
        self.grace = grace
        self.keep_workdir = keep_workdir
        _install_signal_cleanup()
        _prune_stale(prefix)
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
        (self.workdir / _OWNER_FILE).write_text(_owner_text())
        self.argv: list[str] = []
        self.log: Path | None = None
        self._p: subprocess.Popen[bytes] | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self._threads: list[threading.Thread] = []
        self._closed = False
        _LIVE.add(self)

    # -- starting ---------------------------------------------------------------------

    def start(self, argv: Sequence[str], log: str | os.PathLike[str] | None = None) -> None:
        """Run QEMU with ``argv``. Its stdout and stderr go to the file ``log`` if given,
        else into a ring of the last OUTPUT_LINES lines, read all the time by two threads
        (a chatty device, such as QEMU 7.2's printing every unknown FIFO command, must
        never block on a full pipe: docs/lab.md 'The qtest protocol'). DeviceNotFound (one
        line) if it cannot be run."""
        if self._p is not None:
            raise RuntimeError("this QEMU was already started")
        self.argv = list(argv)
        try:
            if log is not None:
                self.log = Path(log)
                with open(self.log, "wb") as out:
                    self._p = spawn(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    close_fds=True)
            else:
                self._p = spawn(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            why = exc.strerror or exc
            raise DeviceNotFound(f"cannot run {self.argv[0]}: {why} ({INSTALL_HINT})") from None
        if log is None:
            self._threads = [
                threading.Thread(target=self._drain, args=(pipe,), daemon=True, name=f"qemu-{name}")
                for name, pipe in (("stdout", self._p.stdout), ("stderr", self._p.stderr))
            ]
            for t in self._threads:
                t.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                self._lines.append(raw.decode(errors="replace").rstrip())
        except (OSError, ValueError):
            pass

    # -- watching ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """QEMU's process id (None before start)."""
        return self._p.pid if self._p is not None else None

    def returncode(self) -> int | None:
        """QEMU's return code once it has exited; None while it runs or before start."""
        return self._p.poll() if self._p is not None else None

    def exit_status(self) -> str:
        """How QEMU ended, in words (see :func:`exit_status`)."""
        return exit_status(self.returncode())

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for QEMU to exit; its return code, or None."""
        if self._p is None:
            return None
        try:
            return self._p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait_drained(self, timeout: float) -> None:
        """Wait (each pipe up to ``timeout`` s) until the output of an exited QEMU is read."""
        for t in self._threads:
            t.join(timeout)

    def tail(self, lines: int) -> list[str]:
        """The last ``lines`` non-blank lines QEMU printed (stdout and stderr interleaved),
        from the ring or the log file."""
        kept = list(self._lines) if self.log is None else file_tail(self.log, OUTPUT_LINES)
        return [s.rstrip() for s in kept if s.strip()][-lines:] if lines > 0 else []

    # -- reaping ----------------------------------------------------------------------

    def stop(self) -> None:
        """End QEMU if it runs (SIGTERM, up to ``grace`` s, then SIGKILL) and reap it; the
        work folder stays. Idempotent."""
        p = self._p
        if p is None:
            return
        if p.poll() is None:
            if self.grace > 0:
                p.terminate()
                if self.wait(self.grace) is None:
                    p.kill()
            else:
                p.kill()
            self.wait(KILL_WAIT)
        if self._threads:
            self.wait_drained(1.0)
        for pipe in (p.stdout, p.stderr):
            if pipe is not None:
                pipe.close()

    def close(self) -> None:
        """Stop QEMU and remove the work folder (unless ``keep_workdir``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            _LIVE.discard(self)
            if not self.keep_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<QemuProcess pid={self.pid} {self.exit_status()} {self.workdir}>"


# Every QemuProcess not closed yet; closed at interpreter exit if nothing else did it.
_LIVE: set[QemuProcess] = set()


def _close_all() -> None:
    for proc in list(_LIVE):
        proc.close()


atexit.register(_close_all)

#: Signals whose default action ends the process without running atexit handlers.
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_handled: set[int] = set()


def _install_signal_cleanup() -> None:
    """On SIGTERM and SIGHUP: close every QemuProcess (QEMU reaped, work folder removed),
    then do what the signal did before (call the previous handler, or die of the signal as
    its default action would). Only the main thread can install handlers; an ignored signal
    stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in CLEANUP_SIGNALS:
        if sig in _handled:
            continue
        previous = signal.getsignal(sig)
        if previous == signal.SIG_IGN:
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            _close_all()
            if callable(previous):
                previous(signum, frame)
                return
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not the main thread after all
            return
        _handled.add(sig)
