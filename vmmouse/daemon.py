"""The bridge's main loop: wait, drain the source, hand events to the sink; signals; privileges.

Top of the input side, driven by ``vmmouse.cli``. One thread does everything: the backdoor's
I/O privilege belongs to the thread that took it, and nothing here needs a second one.

- SIGTERM/SIGINT: leave the loop; the sink releases held buttons, the source disables the
  vmmouse (or gives the USB interface back to usbhid).
- SIGHUP: reset in place: re-enable the vmmouse (or re-arm the serio port) and release held
  buttons. Nothing is reopened: after the privilege drop the files could not be opened again.
- Privileges: started as root, the daemon first holds everything it needs (iopl in this
  thread, the uinput fd, the serio_raw fd, the claimed USB interface), then becomes ``nobody``
  (or --user). iopl's I/O bitmap is per thread and setuid() does not take it away.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import signal
from typing import Protocol

from vmmouse.errors import SetupError
from vmmouse.events import PointerEvent
from vmmouse.sources import Source, Wakeup

log = logging.getLogger(__name__)


class Sink(Protocol):
    def handle(self, event: PointerEvent) -> int: ...

    def release_all(self) -> int: ...


def drop_privileges(user: str) -> str:
    """Become ``user`` (no supplementary groups); returns what was done, for the log."""
    if os.geteuid() != 0:
        return f"running as uid {os.geteuid()}; no privileges to drop"
    try:
        entry = pwd.getpwnam(user)
    except KeyError as e:
        raise SetupError(f"no such user {user!r} to drop privileges to") from e
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if entry.pw_uid != 0 and (os.geteuid() == 0 or os.getuid() == 0):
        raise SetupError(f"could not drop privileges to {user}")
    # no_new_privs: no exec from here on can gain privileges (setuid binaries, file caps).
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1) != 0:
        raise SetupError("could not set no_new_privs after dropping privileges")
    return f"now running as {user} (uid {entry.pw_uid}, gid {entry.pw_gid}, no_new_privs)"


_PR_SET_NO_NEW_PRIVS = 38   # linux/prctl.h


def _prctl(option: int, arg: int) -> int:
    # ctypes is imported with the module: after the drop, nobody may not read the stdlib.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return -1
    return int(libc.prctl(option, arg, 0, 0, 0))


class Daemon:
    """One source, one wake-up, one sink."""

    def __init__(self, source: Source, wakeup: Wakeup, sink: Sink, *, limit: int | None = None) -> None:
        self.source = source
        self.wakeup = wakeup
        self.sink = sink
        self.limit = limit              # stop after this many events (for `vmmouse events --count`)
        self.handled = 0
        self.stopping = False
        self.hangup = False
        self.resets = 0

    # signal handlers only set flags; the wake-up's signal pipe ends the current wait
    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_hangup(self, signum: int, frame: object) -> None:
        self.hangup = True

    def install_signal_handlers(self) -> dict:
        """Install the handlers; returns the previous ones, for restore_signal_handlers."""
        wanted = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop, signal.SIGHUP: self._on_hangup}
        return {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}

    @staticmethod
    def restore_signal_handlers(previous: dict) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def reset(self) -> None:
        self.resets += 1
        log.info("SIGHUP: resetting the source and releasing held buttons")
        self.sink.release_all()
        self.source.reset()
        self.wakeup.reset()

    def drain(self) -> int:
        """Read what the source has and hand it to the sink; returns how many events."""
        events = self.source.read_events()
        self.wakeup.activity(bool(events))
        for event in events:
            self.sink.handle(event)
            self.handled += 1
            if self.limit is not None and self.handled >= self.limit:
                self.stopping = True
                break
        return len(events)

    def step(self) -> int:
        """One wait and one drain; returns how many events were handed to the sink."""
        self.wakeup.wait()
        if self.hangup:
            self.hangup = False
            self.reset()
        if self.stopping:
            return 0
        return self.drain()

    def run(self) -> None:
        # Drain once before the first wait: packets queued while the wake-up was being set
        # up raised no notification that the wait could see.
        self.drain()
        while not self.stopping:
            self.step()
