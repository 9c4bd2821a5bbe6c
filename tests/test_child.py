"""svga/transport/child.py: children tied to this process, not to the thread that asked."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from svga.transport.child import spawn


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_child_outlives_the_thread_that_started_it():
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("p", spawn(["sleep", "30"])))
    t.start()
    t.join()
    p = box["p"]
    try:
        time.sleep(0.3)  # a death signal tied to the finished thread would have fired by now
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


def test_missing_program_raises_in_the_caller():
    with pytest.raises(FileNotFoundError):
        spawn(["/nonexistent/qemu-system-x86_64"])


def test_child_dies_with_its_parent_process():
    code = (
        "import sys, time; from svga.transport.child import spawn\n"
        "p = spawn(['sleep', '60']); print(p.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(child), "the child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
