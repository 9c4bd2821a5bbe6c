"""The synchronous QMP wrapper (svga/transport/qmp.py), against a real QEMU."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile

import numpy as np
import pytest

from svga.errors import DeviceError
from svga.transport.qmp import QMPConnection, abs_events, btn_event, key_event, read_ppm, rel_events

pytestmark = pytest.mark.qemu

QEMU = "qemu-system-x86_64"


class Qemu:
    """A bare QEMU with a QMP socket (CPU stopped, no qtest)."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="svga-qmp-test-")
        self.sock = os.path.join(self.dir.name, "qmp.sock")
        self.proc = subprocess.Popen(
            [QEMU, "-machine", "pc", "-accel", "tcg", "-S", "-nodefaults", "-vga", "vmware",
             "-display", "none", "-qmp", f"unix:{self.sock},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.dir.cleanup()


@pytest.fixture(scope="module")
def qemu():
    q = Qemu()
    yield q
    q.stop()


@pytest.fixture(scope="module")
def qmp(qemu):
    c = QMPConnection(qemu.sock, timeout=10.0)
    yield c
    c.close()


def test_version_matches_the_binary(qmp):
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"version (\d+\.\d+\.\d+)", out).group(1) == qmp.version()


def test_execute_returns_the_value(qmp):
    status = qmp.execute("query-status")
    assert status["status"] == "prelaunch"       # -S: not started yet
    assert status["running"] is False


def test_refused_command_is_one_line_error(qmp):
    with pytest.raises(DeviceError) as info:
        qmp.execute("no-such-command")
    assert str(info.value) == "QEMU refused no-such-command: The command no-such-command has not been found"


def test_screendump_is_rgb_of_the_display(qmp):
    img = qmp.screendump()
    # No mode set yet: QEMU shows its 640x480 placeholder surface (docs/qemu-7.2.md quirk 1).
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8


def test_send_input_needs_a_running_vm():
    q = Qemu()
    try:
        with QMPConnection(q.sock) as c:
            with pytest.raises(DeviceError, match="QEMU refused input-send-event: VM not running"):
                c.send_input(rel_events(5, 5))
            c.execute("cont")
            # The pc machine's PS/2 mouse takes relative motion and buttons.
            c.send_input(rel_events(5, -3) + [btn_event("left", True), btn_event("left", False)])
            assert c.execute("query-status")["status"] == "running"
    finally:
        q.stop()


def test_event_helpers_build_qapi_input_events():
    assert abs_events(100, 200) == [
        {"type": "abs", "data": {"axis": "x", "value": 100}},
        {"type": "abs", "data": {"axis": "y", "value": 200}},
    ]
    assert rel_events(-1, 2)[0] == {"type": "rel", "data": {"axis": "x", "value": -1}}
    assert btn_event("wheel-up", True) == {"type": "btn", "data": {"button": "wheel-up", "down": True}}
    assert key_event("a", False) == {
        "type": "key", "data": {"key": {"type": "qcode", "data": "a"}, "down": False}}


def test_missing_socket_is_one_line_error(tmp_path):
    with pytest.raises(DeviceError) as info:
        QMPConnection(str(tmp_path / "nothing.sock"), timeout=0.2)
    assert "\n" not in str(info.value)
    assert "the socket does not exist" in str(info.value)


def test_check_callback_stops_the_wait(tmp_path):
    class Gone(Exception):
        pass

    def check():
        raise Gone

    with pytest.raises(Gone):
        QMPConnection(str(tmp_path / "nothing.sock"), timeout=10.0, check=check)


def test_killed_qemu_gives_one_line_error():
    q = Qemu()
    try:
        c = QMPConnection(q.sock)
        q.proc.kill()
        q.proc.wait(10)
        with pytest.raises(DeviceError) as info:
            c.execute("query-status")
        assert "\n" not in str(info.value) and "QEMU exited?" in str(info.value)
        c.close()
    finally:
        q.stop()


def test_stopped_qemu_times_out():
    q = Qemu()
    try:
        c = QMPConnection(q.sock, timeout=0.3)
        os.kill(q.proc.pid, signal.SIGSTOP)
        with pytest.raises(DeviceError, match="QEMU did not answer query-status on QMP within 0.3 s"):
            c.execute("query-status")
        os.kill(q.proc.pid, signal.SIGCONT)
        c.close()
    finally:
        q.stop()


def test_close_is_idempotent():
    q = Qemu()  # QEMU's QMP socket serves one client at a time: not the module's QEMU
    try:
        c = QMPConnection(q.sock)
        c.close()
        c.close()
        with pytest.raises(DeviceError, match="is closed; query-status not sent"):
            c.execute("query-status")
    finally:
        q.stop()


# QEMU's screendump PPM (no QEMU needed).
@pytest.mark.parametrize("data,want", [
    (b"P6\n2 1\n255\n" + bytes(range(6)), [[[0, 1, 2], [3, 4, 5]]]),
    # QEMU 7.2's rows are padded to 4 bytes: 1x2 pixels are 2 rows of 3 bytes + 1 pad byte.
    (b"P6\n1 2\n255\n" + bytes([1, 2, 3, 0, 4, 5, 6, 0]), [[[1, 2, 3]], [[4, 5, 6]]]),
    (b"P6 # comment\n1 1 255\n" + bytes([7, 8, 9]), [[[7, 8, 9]]]),
])
def test_read_ppm(data: bytes, want: list) -> None:
    assert read_ppm(data).tolist() == want


@pytest.mark.parametrize("data", [b"P5\n1 1\n255\n\0", b"P6\n1 1\n65535\n" + bytes(6),
                                  b"P6\n2 2\n255\n" + bytes(5), b"P6\n", b""])
def test_read_ppm_refuses(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_ppm(data)
