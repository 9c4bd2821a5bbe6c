"""Transport layer: start a child process (QEMU) that never outlives this one.

Used by svga.transport.qemu_process, which starts every QEMU (for the qtest transport and
the guest lab). The kernel delivers PR_SET_PDEATHSIG when the *thread* that forked the
child exits, not the process; a QEMU started from a short-lived worker thread would be
killed with that thread. So every child is forked from one long-lived daemon thread of
this module, and is SIGKILLed when this process dies, whichever thread asked for it.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1

_requests: queue.Queue[tuple[Callable[[], subprocess.Popen], queue.Queue]] = queue.Queue()
_spawner: threading.Thread | None = None
_lock = threading.Lock()


def _libc_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with_parent(parent: int, prctl: Callable[..., int] | None) -> Callable[[], None]:
    """A preexec_fn (it runs in the child between fork and exec): SIGKILL when the parent
    dies, and exit at once if it already died before the request was in place. The libc
    symbol is looked up before the fork: the child of a threaded process must not take the
    dynamic loader's lock."""

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _serve() -> None:
    while True:
        start, reply = _requests.get()
        try:
            reply.put((start(), None))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            reply.put((None, exc))


def spawn(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, **popen_kwargs)``, tied to this process's life. Errors of
    Popen (OSError for a missing program) are raised in the calling thread."""
    global _spawner
    with _lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_serve, daemon=True, name="svga-child-spawner")
            _spawner.start()
    preexec = _die_with_parent(os.getpid(), _libc_prctl())
    reply: queue.Queue = queue.Queue(maxsize=1)
    _requests.put((lambda: subprocess.Popen(list(argv), preexec_fn=preexec, **popen_kwargs), reply))
    proc, exc = reply.get()
    if exc is not None:
        raise exc
    return proc
