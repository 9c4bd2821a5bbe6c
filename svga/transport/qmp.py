"""A small synchronous client for QEMU's monitor protocol (QMP).

Part of the transport layer's QEMU support: the qtest transport uses it for screendumps
(what QEMU's display shows) and the QEMU guest lab uses it for screendumps and pointer
input. It wraps QEMU's own asyncio client library, ``qemu.qmp``, running it on a private
event loop in a background thread, so callers stay synchronous and the wrapper works even
from code that already runs an asyncio loop of its own.

Every call has a timeout, and every failure (no socket, QEMU gone, a command QEMU
refuses, no answer in time) is an :class:`svga.errors.DeviceError` with a one-line
message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import numpy as np

from svga.errors import DeviceError

try:  # the optional dependency "qemu" in pyproject.toml
    from qemu.qmp import (
        ExecInterruptedError,
        ExecuteError,
        QMPClient,
        QMPError,
        Runstate,
        StateError,
    )
except ImportError:  # pragma: no cover - exercised only where qemu.qmp is missing
    QMPClient = None  # type: ignore[assignment,misc]

# How long to wait between attempts while QEMU has not yet created its QMP socket.
_CONNECT_RETRY_S = 0.02

MAX_REPLY_BYTES = 1 << 20
"""The longest QMP message (one JSON line) read from QEMU: the replies used here are a few
hundred bytes; a longer line ends the connection with a DeviceError (qemu.qmp's own default
is 10 MiB)."""
MAX_SCREENDUMP_BYTES = 32 << 20
"""The largest screendump file read back (a PPM of the largest SVGA mode, 2360x1770x3 bytes
plus row padding, is under 13 MiB)."""

# qemu.qmp logs every failure itself ("Negotiation failed: EOFError", tracebacks at debug
# level) before raising it; this wrapper turns each into one DeviceError, so the library's
# records go to a logger that shows nothing, not to the caller's handlers or Python's
# last-resort stderr handler.
_LIBRARY_LOG = logging.getLogger(__name__ + ".qemu_qmp")
_LIBRARY_LOG.addHandler(logging.NullHandler())
_LIBRARY_LOG.propagate = False


class QMPConnection:
    """One QMP session on a Unix socket (QEMU started with ``-qmp unix:PATH,server=on,wait=off``).

    ``timeout`` bounds every call, the connection included (QEMU may still be creating
    the socket when this is constructed, so connecting retries until then). ``check``, if
    given, is called between connection attempts and may raise to give up early (the
    caller's "has QEMU exited?" test).
    """

    def __init__(self, socket_path: str, timeout: float = 10.0,
                 check: Callable[[], None] | None = None) -> None:
        if QMPClient is None:
            raise DeviceError("the Python package qemu.qmp is missing: pip install qemu.qmp")
        self.socket_path = socket_path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._s = _LoopState()
        # Disconnects and stops the loop at close(), at garbage collection or at interpreter
        # exit, whichever comes first; it holds the state, never self.
        self._finalizer = weakref.finalize(self, _shutdown, self._s)
        self._s.thread.start()
        try:
            self._s.client = self._run(self._make_client(), "creating the QMP client")
            self._connect(check)
        except BaseException:
            self.close()
            raise

    # -- plumbing -------------------------------------------------------------------

    @staticmethod
    async def _make_client() -> Any:
        # Created inside the loop so that its asyncio objects belong to our loop.
        client = QMPClient("svga", readbuflen=MAX_REPLY_BYTES)
        client.logger = _LIBRARY_LOG
        return client

    def _run(self, coro: Coroutine[Any, Any, Any], what: str, timeout: float | None = None) -> Any:
        if self._s.closed:
            coro.close()
            raise DeviceError(f"QMP connection to {self.socket_path} is closed ({what})")
        limit = self.timeout if timeout is None else timeout
        fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, limit), self._s.loop)
        try:
            # The inner wait_for fires first; the margin only guards a stuck loop thread.
            return fut.result(limit + 5.0)
        except TimeoutError:
            fut.cancel()
            raise DeviceError(f"QEMU did not answer {what} on QMP within {round(limit, 2):g} s") from None

    def _connect(self, check: Callable[[], None] | None) -> None:
        deadline = time.monotonic() + self.timeout
        last = "no attempt"
        while True:
            if check is not None:
                check()
            if os.path.exists(self.socket_path):
                try:
                    self._run(self._s.client.connect(self.socket_path), "the greeting",
                              max(0.1, deadline - time.monotonic()))
                    return
                except (QMPError, DeviceError) as exc:
                    last = _one_line(exc)
                    self._reset()
            else:
                last = "the socket does not exist"
            if time.monotonic() >= deadline:
                raise DeviceError(
                    f"cannot connect to QMP at {self.socket_path} within {self.timeout:g} s: {last}"
                )
            time.sleep(_CONNECT_RETRY_S)

    def _reset(self) -> None:
        # Back to IDLE after a failed or timed-out attempt, so that the next one may start.
        try:
            self._run(self._s.client.disconnect(), "disconnect", 1.0)
        except Exception:  # noqa: BLE001 - nothing was connected; nothing to report
            pass

    # -- public API -----------------------------------------------------------------

    def execute(self, cmd: str, args: Mapping[str, object] | None = None,
                timeout: float | None = None) -> Any:
        """Run one QMP command and return its ``return`` value."""
        with self._lock:
            if self._s.closed:
                raise DeviceError(f"QMP connection to {self.socket_path} is closed; {cmd} not sent")
            if self._s.client is None or self._s.client.runstate != Runstate.RUNNING:
                raise DeviceError(
                    f"QMP connection to {self.socket_path} is down (QEMU exited?); {cmd} not sent")
            try:
                return self._run(self._s.client.execute(cmd, dict(args) if args else None), cmd, timeout)
            except ExecuteError as exc:
                raise DeviceError(f"QEMU refused {cmd}: {_one_line(exc)}") from None
            except (ExecInterruptedError, StateError, EOFError, ConnectionError) as exc:
                raise DeviceError(f"QMP connection lost during {cmd} (QEMU exited?): {_one_line(exc)}") \
                    from None
            except QMPError as exc:
                raise DeviceError(f"QMP error during {cmd}: {_one_line(exc)}") from None

    def version(self) -> str:
        """QEMU's version as ``major.minor.micro``."""
        v = self.execute("query-version")["qemu"]
        return f"{v['major']}.{v['minor']}.{v['micro']}"

    def screendump(self, device: str | None = None, head: int | None = None) -> np.ndarray:
        """What QEMU's display shows now, as an HxWx3 uint8 RGB array.

        QEMU writes a PPM to a file it is given; on QEMU a screendump is also a display
        refresh (for the SVGA device: surface resize, FIFO processing, queued updates)."""
        fd, path = tempfile.mkstemp(prefix="svga-screendump-", suffix=".ppm")
        os.close(fd)
        try:
            args: dict[str, object] = {"filename": path}
            if device is not None:
                args["device"] = device
            if head is not None:
                args["head"] = head
            self.execute("screendump", args)
            try:
                with open(path, "rb") as f:
                    data = f.read(MAX_SCREENDUMP_BYTES + 1)
                if len(data) > MAX_SCREENDUMP_BYTES:
                    raise ValueError(f"longer than {MAX_SCREENDUMP_BYTES} bytes")
                return read_ppm(data)
            except (OSError, ValueError) as exc:
                raise DeviceError(f"QEMU's screendump {path} is unreadable: {_one_line(exc)}") from None
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass

    def send_input(self, events: Sequence[Mapping[str, object]], device: str | None = None,
                   head: int | None = None) -> None:
        """Inject input events (QMP ``input-send-event``); see :func:`abs_events`, :func:`btn_event`."""
        args: dict[str, object] = {"events": [dict(e) for e in events]}
        if device is not None:
            args["device"] = device
        if head is not None:
            args["head"] = head
        self.execute("input-send-event", args)

    def close(self) -> None:
        """Disconnect and stop the private loop. Idempotent; never raises."""
        self._finalizer()

    def __enter__(self) -> QMPConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LoopState:
    """The private event loop, its thread and the client: everything close() releases."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="qmp-loop", daemon=True)
        self.client: Any = None
        self.closed = False


def _shutdown(s: _LoopState) -> None:
    s.closed = True
    if s.client is not None and s.loop.is_running():
        try:
            fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(s.client.disconnect(), 2.0), s.loop)
            fut.result(3.0)
        except BaseException:  # noqa: BLE001 - the peer may be gone already; nothing to report
            pass
    if s.loop.is_running():
        s.loop.call_soon_threadsafe(s.loop.stop)
    if s.thread.is_alive() and s.thread is not threading.current_thread():
        s.thread.join(2.0)
    if not s.thread.is_alive():
        s.loop.close()


# -- input event helpers (QMP InputEvent union) -----------------------------------------

ABS_MAX = 32767
"""QMP absolute axes run 0..ABS_MAX."""


def abs_events(x: int, y: int) -> list[dict[str, object]]:
    """Absolute pointer position, each axis 0..ABS_MAX."""
    return [
        {"type": "abs", "data": {"axis": "x", "value": int(x)}},
        {"type": "abs", "data": {"axis": "y", "value": int(y)}},
    ]


def rel_events(dx: int, dy: int) -> list[dict[str, object]]:
    """Relative pointer motion."""
    return [
        {"type": "rel", "data": {"axis": "x", "value": int(dx)}},
        {"type": "rel", "data": {"axis": "y", "value": int(dy)}},
    ]


def btn_event(button: str, down: bool) -> dict[str, object]:
    """A button press or release: ``left``, ``middle``, ``right``, ``wheel-up``, ``wheel-down``, ..."""
    return {"type": "btn", "data": {"button": button, "down": bool(down)}}


def key_event(qcode: str, down: bool) -> dict[str, object]:
    """A key press or release by QEMU key code name (``a``, ``ret``, ``shift``...)."""
    return {"type": "key", "data": {"key": {"type": "qcode", "data": qcode}, "down": bool(down)}}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def read_ppm(data: bytes) -> np.ndarray:
    """A binary PPM (P6, maxval 255) as (H, W, 3) RGB, rows padded or not: QEMU 7.2's
    screendump pads every row to a multiple of 4 bytes (it writes its pixman line buffer
    whole), so for a width that is not a multiple of 4 the file is longer than W*H*3 and a
    plain PPM reader skews each row by the padding of the rows above it."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":  # a comment runs to the end of the line
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255" or not (fields[1].isdigit() and fields[2].isdigit()):
        raise ValueError(f"not an 8-bit binary PPM (header {b' '.join(fields)!r})")
    width, height = int(fields[1]), int(fields[2])
    payload = np.frombuffer(data, dtype=np.uint8, offset=pos + 1)
    row = len(payload) // height if height else 0
    if height == 0 or width == 0 or row * height != len(payload) or row < width * 3:
        raise ValueError(f"PPM of {width}x{height} has {len(payload)} bytes of pixels")
    return np.ascontiguousarray(payload.reshape(height, row)[:, : width * 3].reshape(height, width, 3))
