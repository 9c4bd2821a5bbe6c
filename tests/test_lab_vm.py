"""svga/lab/vm.py without booting: the QEMU command line, the job script (run by a real
shell here) and the jobs' environment. Real guests are in tests/test_lab.py."""

import os
import subprocess
import sys

import pytest

from svga.lab.errors import LabError
from svga.lab.kernel import Kernel
from svga.lab.vm import BootFiles, Guest, default_env, job_script


@pytest.fixture
def files(tmp_path):
    kernel = Kernel("1.2.3", tmp_path / "vmlinuz", tmp_path)
    return BootFiles(kernel, tmp_path / "vmlinux", tmp_path / "initrd")


def _pairs(cmd):
    return list(zip(cmd, cmd[1:], strict=False))


def test_command_line_has_the_recipe(files):
    with Guest(boot_files=files) as g:
        cmd = g.command()
        pairs = _pairs(cmd)
        for pair in [("-machine", "pc"), ("-accel", "tcg"), ("-cpu", "max"), ("-vga", "vmware"),
                     ("-display", "none"), ("-device", "usb-tablet"), ("-m", "1024"), ("-smp", "1"),
                     ("-kernel", str(files.image)), ("-initrd", str(files.initrd)),
                     ("-serial", f"file:{g.console_log}"),
                     ("-qmp", f"unix:{g.qmp_socket},server=on,wait=off")]:
            assert pair in pairs
        assert "-usb" in cmd and "-no-reboot" in cmd and "-vnc" not in cmd
        virtfs = [b for a, b in pairs if a == "-virtfs"]
        assert "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" in virtfs
        assert f"local,path={g.io_dir},mount_tag=labio,security_model=none" in virtfs
        append = dict(pairs)["-append"].split()
        assert "console=ttyS0" in append and "panic=-1" in append and "quiet" in append
        workdir = g.workdir
    assert not workdir.exists()   # close() removes the work folder


def test_vnc_display_is_a_unix_socket(files):
    with Guest(boot_files=files, display="vnc") as g:
        assert ("-vnc", f"unix:{g.vnc_socket}") in _pairs(g.command())


def test_unknown_display_is_refused():
    with pytest.raises(LabError, match="unknown display"):
        Guest(display="sdl")


def test_job_script_runs_in_a_shell(tmp_path):
    script = job_script(["sh", "-c", 'echo "$1|$FOO|$(pwd)"; echo e >&2', "x", "it's a b"],
                        str(tmp_path), {"FOO": "v w'x"}, "/run/svga-lab/io/job-1", merge_stderr=True)
    (tmp_path / "cmd").write_text(script)
    proc = subprocess.run(["sh", str(tmp_path / "cmd")], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == f"it's a b|v w'x|{tmp_path}\ne\n"
    assert proc.stderr == ""


def test_job_script_sets_the_job_folder_and_keeps_stderr_apart(tmp_path):
    script = job_script(["sh", "-c", 'echo "$SVGA_LAB_JOB"; echo e >&2; exit 5'], "/", {},
                        "/run/svga-lab/io/job-4", merge_stderr=False)
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (5, "/run/svga-lab/io/job-4\n", "e\n")


def test_job_script_missing_folder_is_126(tmp_path):
    script = job_script(["true"], str(tmp_path / "nope"), {}, "/j", merge_stderr=True)
    assert subprocess.run(["sh", "-c", script], capture_output=True).returncode == 126


def test_job_script_refuses_an_empty_command():
    with pytest.raises(ValueError):
        job_script([], "/", {}, "/j", merge_stderr=True)


def test_default_env_puts_this_python_first(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("PYTHONPATH", "/some/where")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    env = default_env()
    assert env["PATH"] == os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    assert env["PYTHONPATH"] == "/some/where"
    assert "VIRTUAL_ENV" not in env
