"""Timing pointer input through a lab guest from the host (tools layer, lab): a back channel
the guest writes one byte on per event it sees, and a second QMP socket that sends input
without waiting for each reply.

Used by tests/test_wayland_lab.py and bench/input.py. The guest's second serial port
(/dev/ttyS1, an ISA 16550 at 0x2f8) is a QEMU chardev on a Unix socket the host reads, so a
guest reader that writes a byte as soon as an event frame reaches it lets the host time the
whole trip: QMP ``input-send-event`` -> QEMU -> the guest's device -> evdev -> the byte back.
The trip back is the same for every device measured, so two devices are compared by the same
clock (the host's); the facts are in docs/lab.md 'Timing input from the host'.

    opts = PointerOptions(folder)               # paths of the two sockets
    with Guest(extra_args=opts.qemu_args()) as guest:
        guest.start()
        back = BackChannel(opts.back_socket)    # connect once QEMU listens
        qmp = FastQMP(opts.qmp_socket)
        rtt = round_trip(qmp, back, move_events(100, 200))      # seconds, or None
        qmp.burst([...])                        # every command written at once, then the replies
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svga.lab.errors import LabError

#: The guest's Linux sees QEMU's VMware hypervisor only this way under TCG: with the CPUID
#: hypervisor bit off, Linux falls back to a DMI serial number containing "VMware" plus the
#: backdoor answering, and the kernel's own vmmouse driver then binds
#: (docs/lab.md 'The kernel vmmouse driver under TCG').
VMWARE_PLATFORM_ARGS: tuple[str, ...] = ("-cpu", "max,hypervisor=off", "-smbios", "type=1,serial=VMware-lab")

#: Bytes a QMP reply may take before it is called broken (a reply to input-send-event is tiny).
_MAX_LINE = 1 << 20


@dataclass(frozen=True)
class PointerOptions:
    """Where the two sockets live (a short folder: a Unix socket path has at most 107 bytes)."""

    folder: Path

    @property
    def back_socket(self) -> Path:
        return self.folder / "back.sock"

    @property
    def qmp_socket(self) -> Path:
        return self.folder / "qmp-input.sock"

    def qemu_args(self, vmware_platform: bool = True) -> list[str]:
        """QEMU arguments: the back channel as the second serial port and a second QMP
        monitor; with ``vmware_platform`` also VMWARE_PLATFORM_ARGS."""
        for path in (self.back_socket, self.qmp_socket):
            if len(str(path)) > 100:
                raise LabError(f"socket path too long for a Unix socket: {path}")
        args = ["-chardev", f"socket,id=back,path={self.back_socket},server=on,wait=off",
                "-serial", "chardev:back",
                "-qmp", f"unix:{self.qmp_socket},server=on,wait=off"]
        return [*VMWARE_PLATFORM_ARGS, *args] if vmware_platform else args


def _connect(path: Path, timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError as exc:
            sock.close()
            if time.monotonic() > deadline:
                raise LabError(f"cannot connect to {path}: {exc.strerror}") from None
            time.sleep(0.05)


class BackChannel:
    """The host's end of the guest's /dev/ttyS1: bytes with the host time they arrived."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.sock = _connect(path, timeout)
        self.sock.setblocking(False)

    def drain(self) -> bytes:
        """Whatever has arrived, without waiting."""
        data = b""
        while select.select([self.sock], [], [], 0)[0]:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def wait(self, count: int = 1, timeout: float = 5.0) -> float | None:
        """Wait for ``count`` more bytes: the host's time.monotonic() when the last came, or
        None past ``timeout``."""
        got = 0
        deadline = time.monotonic() + timeout
        while got < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            chunk = self.sock.recv(count - got)
            if not chunk:
                raise LabError("the guest's back channel closed (QEMU exited?)")
            got += len(chunk)
        return time.monotonic()

    def close(self) -> None:
        self.sock.close()


class FastQMP:
    """A bare QMP session for input: no event loop, commands may be written ahead of replies."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.sock = _connect(path, timeout)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rb")
        self._line()                                   # the greeting
        self.execute("qmp_capabilities")

    def _line(self) -> dict[str, Any]:
        line = self.file.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise LabError("QMP (input socket) closed or sent an over-long line")
        return json.loads(line)

    def _reply(self) -> dict[str, Any]:
        while True:
            msg = self._line()
            if "return" in msg:
                return msg
            if "error" in msg:
                raise LabError(f"QEMU refused a QMP input command: {msg['error'].get('desc', msg)}")

    def _write(self, cmd: str, args: Mapping[str, Any] | None) -> None:
        msg: dict[str, Any] = {"execute": cmd}
        if args:
            msg["arguments"] = dict(args)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def execute(self, cmd: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self._write(cmd, args)
        return self._reply()

    def send_input(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.execute("input-send-event", {"events": list(events)})

    def burst(self, batches: Sequence[Sequence[Mapping[str, Any]]], window: int = 1) -> float:
        """One input-send-event per batch, with at most ``window`` commands written ahead of
        their replies (1: each after the previous reply, as fast as QEMU answers); returns the
        host time (time.monotonic()) when the last reply came."""
        lines = [json.dumps({"execute": "input-send-event", "arguments": {"events": list(b)}}).encode()
                 + b"\n"
                 for b in batches]
        sent = answered = 0
        while answered < len(lines):
            if sent < len(lines) and sent - answered < window:
                self.sock.sendall(lines[sent])
                sent += 1
                continue
            self._reply()
            answered += 1
        return time.monotonic()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def move_events(x: int, y: int) -> list[dict[str, Any]]:
    """QMP absolute move events (0..32767 on each axis)."""
    return [{"type": "abs", "data": {"axis": "x", "value": x}},
            {"type": "abs", "data": {"axis": "y", "value": y}}]


def button_events(button: str, down: bool) -> list[dict[str, Any]]:
    return [{"type": "btn", "data": {"down": down, "button": button}}]


def round_trip(qmp: FastQMP, back: BackChannel, events: Sequence[Mapping[str, Any]],
               timeout: float = 5.0) -> float | None:
    """Seconds from writing one input-send-event to the guest's byte for it (None: no byte
    within ``timeout``). Bytes already waiting (late answers to earlier events) are dropped."""
    back.drain()
    t0 = time.monotonic()
    qmp.send_input(events)
    t1 = back.wait(1, timeout)
    return None if t1 is None else t1 - t0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def remove_stale(opts: PointerOptions) -> None:
    for path in (opts.back_socket, opts.qmp_socket):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class PointerLab:
    """One started lab guest with the back channel and the input QMP socket, running jobs of a
    guest-side script (``python3 SCRIPT ARGS...`` from ``cwd``) that ends by printing
    ``RESULT <json>``. A context manager; the sockets live in a private temporary folder.
    ``extra_args``: more QEMU arguments (devices)."""

    def __init__(self, script: str, cwd: str | Path, *, vmware_platform: bool = True,
                 extra_args: Sequence[str] = (), **guest_kwargs: Any) -> None:
        import tempfile

        from svga.lab.vm import Guest

        self.script = script
        self.cwd = str(cwd)
        self._tmp = tempfile.TemporaryDirectory(prefix="svga-pointer-")
        self.opts = PointerOptions(Path(self._tmp.name))
        self.guest = Guest(extra_args=[*self.opts.qemu_args(vmware_platform), *extra_args], **guest_kwargs)
        self.back: BackChannel | None = None
        self.qmp: FastQMP | None = None
        try:
            self.guest.start()
            self.back = BackChannel(self.opts.back_socket)
            self.qmp = FastQMP(self.opts.qmp_socket)
        except BaseException:
            self.close()
            raise

    def submit(self, args: Sequence[str]) -> Any:
        """Queue a job of the guest script (a svga.lab.vm.Job)."""
        return self.guest.submit(["python3", self.script, *args], cwd=self.cwd)

    @staticmethod
    def result(job: Any, timeout: float = 300.0) -> dict[str, Any]:
        """Wait for the job and return its RESULT json; LabError with its output if none."""
        status, output = job.wait(timeout=timeout)
        lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
        if status != 0 or not lines:
            last = output.strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"guest script failed (status {status}): {last[0][:300]}", output[-3000:])
        return json.loads(lines[-1][len("RESULT "):])

    def run(self, args: Sequence[str], timeout: float = 300.0) -> dict[str, Any]:
        return self.result(self.submit(args), timeout)

    def close(self) -> None:
        for part in (self.qmp, self.back):
            if part is not None:
                part.close()
        self.guest.close()
        self._tmp.cleanup()

    def __enter__(self) -> PointerLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
