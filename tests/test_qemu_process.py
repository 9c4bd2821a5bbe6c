"""svga/transport/qemu_process.py: finding QEMU, its base command line, and a QEMU child
started, watched and reaped.

Where the module claims something of QEMU, a real QEMU says whether it holds: QMP answers
for the command line (query-kvm, query-pci, query-vnc), QEMU's own exit status and its
own message for SIGTERM ("terminating on signal 15", exit code 0) and for a bad option.
Reaping is checked in /proc (a reaped child has no entry; a zombie would).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from svga.errors import DeviceNotFound
from svga.transport.qemu_process import (
    OUTPUT_LINES,
    QemuProcess,
    base_command,
    exit_status,
    file_tail,
    find_qemu,
    qmp_option,
)
from svga.transport.qmp import QMPConnection

ROOT = Path(__file__).resolve().parents[1]
PCI_VMWARE_SVGA2 = (0x15AD, 0x0405)  # vendor, device (svga_reg.h)


def _prefix() -> str:
    """A work-folder prefix of this test alone (other test runs share /tmp)."""
    return f"svga-test-qp-{uuid.uuid4().hex[:8]}-"


def _reaped(pid: int) -> bool:
    """True when the process is gone and waited for: no /proc entry at all (a zombie, dead
    but not reaped, still has one)."""
    return not os.path.exists(f"/proc/{pid}")


def _wait_for(path: Path, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def _stopped_qemu(display: str = "none", extra: list[str] | None = None) -> tuple[QemuProcess, str]:
    proc = QemuProcess(_prefix())
    qmp = str(proc.workdir / "qmp.sock")
    binary = find_qemu()
    proc.start([*base_command(binary, display, proc.workdir / "vnc.sock"), "-S", "-nodefaults",
                *qmp_option(qmp), *(extra or [])])
    return proc, qmp


# -- finding the binary ---------------------------------------------------------------------------

def test_missing_qemu_is_one_line_naming_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: nothing is on PATH
    with pytest.raises(DeviceNotFound) as info:
        find_qemu()
    assert str(info.value) == "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"


def test_a_named_binary_not_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeviceNotFound) as info:
        find_qemu("qemu-system-foo")
    assert str(info.value) == "qemu-system-foo is not on PATH (apt-get install qemu-system-x86)"


def test_a_path_that_is_not_executable(tmp_path):
    plain = tmp_path / "qemu"
    plain.write_text("not a program\n")
    for path in (plain, tmp_path / "absent"):
        with pytest.raises(DeviceNotFound) as info:
            find_qemu(str(path))
        assert str(info.value) == (f"QEMU binary {path} does not exist or is not executable "
                                   "(apt-get install qemu-system-x86)")


def test_the_lab_gives_the_same_one_line_error(monkeypatch, tmp_path):
    from svga.lab.errors import LabError
    from svga.lab.kernel import Kernel
    from svga.lab.vm import BootFiles, Guest
    monkeypatch.setenv("PATH", str(tmp_path))
    kernel = Kernel("1.2.3", tmp_path / "vmlinuz", tmp_path)
    files = BootFiles(kernel, tmp_path / "vmlinux", tmp_path / "initrd")
    with Guest(boot_files=files) as g, pytest.raises(LabError) as info:
        g.start()
    assert str(info.value) == "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    assert g.pid is None


def test_a_path_that_is_executable_is_taken_as_it_is(tmp_path):
    exe = tmp_path / "my-qemu"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_qemu(str(exe)) == str(exe)


@pytest.mark.qemu
def test_the_default_binary_is_qemu():
    out = subprocess.run([find_qemu(), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("QEMU emulator version ")


def test_a_binary_that_cannot_run_is_one_line(tmp_path):
    proc = QemuProcess(_prefix())
    try:
        with pytest.raises(DeviceNotFound) as info:
            proc.start([str(tmp_path / "gone")])
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"cannot run {tmp_path / 'gone'}: ")
        assert msg.endswith("(apt-get install qemu-system-x86)")
    finally:
        proc.close()


# -- the command line, as QEMU understands it -------------------------------------------------------

def test_unknown_display_is_refused():
    with pytest.raises(ValueError, match="unknown QEMU display 'sdl'"):
        base_command("qemu", "sdl", "/x/vnc.sock")


@pytest.mark.qemu
@pytest.mark.parametrize("display", ["none", "vnc"])
def test_base_command_is_a_tcg_pc_with_the_svga_device(display):
    proc, sock = _stopped_qemu(display)
    try:
        qmp = QMPConnection(sock, timeout=10.0)
        try:
            assert qmp.execute("query-status")["status"] == "prelaunch"      # -S
            assert qmp.execute("query-kvm")["enabled"] is False               # TCG
            devices = qmp.execute("query-pci")[0]["devices"]
            svga = [d for d in devices if (d["id"]["vendor"], d["id"]["device"]) == PCI_VMWARE_SVGA2]
            assert [d["slot"] for d in svga] == [2]                           # -vga vmware on pc
            vnc = qmp.execute("query-vnc")
        finally:
            qmp.close()
        if display == "vnc":
            assert vnc["enabled"] is True and vnc["family"] == "unix"
            assert vnc["service"] == str(proc.workdir / "vnc.sock")
        else:
            assert vnc["enabled"] is False
    finally:
        proc.close()


# -- watching -------------------------------------------------------------------------------------

@pytest.mark.qemu
@pytest.mark.parametrize("to_file", [False, True])
def test_exit_status_and_last_output_of_a_refused_start(to_file):
    proc = QemuProcess(_prefix())
    try:
        log = proc.workdir / "qemu.log" if to_file else None
        proc.start([find_qemu(), "-no-such-option"], log=log)
        assert proc.wait(10.0) == 1
        proc.wait_drained(1.0)
        assert proc.returncode() == 1 and proc.exit_status() == "exit code 1"
        (last,) = proc.tail(1)
        assert "-no-such-option: invalid option" in last
        if to_file:
            assert "-no-such-option: invalid option" in log.read_text()
    finally:
        proc.close()


@pytest.mark.qemu
def test_a_killed_qemu_says_so():
    proc, _ = _stopped_qemu()
    try:
        assert proc.returncode() is None and proc.exit_status() == "still running"
        os.kill(proc.pid, 9)
        assert proc.wait(10.0) == -9
        assert proc.exit_status() == "killed by SIGKILL"
    finally:
        proc.close()


def test_exit_status_words():
    assert [exit_status(rc) for rc in (None, 0, 3, -15, -200)] == [
        "still running", "exit code 0", "exit code 3", "killed by SIGTERM", "killed by signal 200"]


def test_the_output_ring_keeps_the_last_lines():
    # Any program will do for the ring: a shell that prints more than the ring holds.
    n = OUTPUT_LINES + 600
    proc = QemuProcess(_prefix())
    try:
        proc.start(["sh", "-c", f"i=0; while [ $i -lt {n} ]; do echo line$i; echo err$i >&2; "
                                "i=$((i+1)); done; echo; echo '   '"])
        assert proc.wait(30.0) == 0
        proc.wait_drained(5.0)
        tail = proc.tail(OUTPUT_LINES)
        assert len(tail) < OUTPUT_LINES  # the two blank lines took ring places, not tail places
        # The two pipes are drained by two threads, so which one's last lines come last in the
        # ring is up to scheduling (a reader that finishes early sees its last line pushed out
        # by the other's): the ring ends with the last line of one of them, and each stream's
        # kept lines are its newest, in order.
        assert tail[-1] in {f"line{n - 1}", f"err{n - 1}"}
        for prefix in ("line", "err"):
            kept = [int(s[len(prefix):]) for s in tail if s.startswith(prefix)]
            assert kept == list(range(n - len(kept), n))
        assert "line0" not in tail and proc.tail(0) == []
    finally:
        proc.close()


def test_file_tail(tmp_path):
    f = tmp_path / "console.log"
    f.write_bytes(b"a\r\nb\n\nc\r\n")
    assert file_tail(f, 2) == ["", "c"]
    assert file_tail(f, 10) == ["a", "b", "", "c"]
    assert file_tail(tmp_path / "none", 3) == [] and file_tail(f, 0) == []


# -- reaping --------------------------------------------------------------------------------------

@pytest.mark.qemu
def test_close_kills_reaps_and_removes_the_work_folder():
    proc, sock = _stopped_qemu()
    pid, workdir = proc.pid, proc.workdir
    assert Path(sock).parent == workdir and (workdir / "owner").read_text().split()[0] == str(os.getpid())
    assert _wait_for(Path(sock)) and not _reaped(pid)
    proc.close()
    assert _reaped(pid) and not workdir.exists()
    assert proc.exit_status() == "killed by SIGKILL"  # grace 0: no SIGTERM first
    proc.close()  # idempotent


@pytest.mark.qemu
def test_grace_sends_sigterm_first_and_qemu_exits_cleanly():
    proc = QemuProcess(_prefix(), grace=5.0)
    try:
        sock = proc.workdir / "qmp.sock"
        proc.start([*base_command(find_qemu(), "none", ""), "-S", "-nodefaults", *qmp_option(sock)])
        qmp = QMPConnection(str(sock), timeout=10.0)  # an answer: QEMU's main loop runs,
        assert qmp.execute("query-status")["status"] == "prelaunch"  # its signal handlers set
        qmp.close()
        proc.stop()
        assert _reaped(proc.pid) and proc.workdir.exists()  # stop() keeps the folder
        # QEMU's own handling of SIGTERM: a clean exit that names the signal.
        assert proc.returncode() == 0
        assert any("terminating on signal 15" in line for line in proc.tail(5))
    finally:
        proc.close()
    assert not proc.workdir.exists()


def test_keep_workdir_leaves_the_folder():
    proc = QemuProcess(_prefix(), keep_workdir=True)
    proc.close()
    try:
        assert proc.workdir.is_dir()
    finally:
        (proc.workdir / "owner").unlink()
        proc.workdir.rmdir()


def test_start_twice_is_refused():
    proc = QemuProcess(_prefix())
    try:
        proc.start(["true"])
        with pytest.raises(RuntimeError, match="already started"):
            proc.start(["true"])
    finally:
        proc.close()


def test_stale_work_folders_are_removed_at_the_next_start(tmp_path):
    prefix = _prefix()
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)          # reaped by run(): that pid is gone
    tmp = Path(tempfile.gettempdir())
    stale, live, foreign = (tmp / f"{prefix}{n}" for n in ("stale", "live", "foreign"))
    for folder, owner in ((stale, f"{dead_pid}\n"), (live, f"{os.getpid()}\n"), (foreign, None)):
        folder.mkdir()
        if owner is not None:
            (folder / "owner").write_text(owner)
    proc = QemuProcess(prefix)
    try:
        assert not stale.exists()
        assert live.is_dir() and foreign.is_dir()  # a living owner, or no owner file: not ours
    finally:
        proc.close()
        for folder in (live, foreign):
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()


@pytest.mark.qemu
def test_interpreter_exit_reaps_qemu_and_removes_the_folder():
    # atexit handlers run last-registered first: this one, registered before the module
    # is imported, looks after the module's handler ran and before the process ends (so
    # before the parent-death signal could be what ended QEMU).
    code = textwrap.dedent("""
        import atexit, os
        seen = {}
        atexit.register(lambda: print("reaped" if not os.path.exists(f"/proc/{seen['pid']}")
                                      else "running", flush=True))
        from svga.transport.qemu_process import QemuProcess, base_command, find_qemu
        p = QemuProcess("svga-test-qp-exit-")
        p.start([*base_command(find_qemu(), "none", ""), "-S", "-nodefaults"])
        seen["pid"] = p.pid
        print(p.pid, p.workdir, flush=True)
    """)  # no close(): the atexit handler must do it
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    pid, workdir, verdict = out.stdout.split()
    assert verdict == "reaped"
    assert not os.path.exists(workdir) and _reaped(int(pid))
