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
import dataclasses
import logging
import os
import pwd
import resource
import select
import signal
import time
from collections.abc import Callable
from typing import Protocol

from vmmouse.errors import SetupError, SinkLost, SourceLost, WakeupLost
from vmmouse.events import PointerEvent, PointerInfo
from vmmouse.sources import Source, Wakeup
from vmmouse.supervisor import RETRY_S, SourceSet
from vmmouse.wakeup import PollWakeup, SignalPipe

log = logging.getLogger(__name__)


class Sink(Protocol):
    def handle(self, event: PointerEvent) -> int: ...

    def release_all(self) -> int: ...


def drop_privileges(user: str) -> str:
    """Give up what set-up needed; returns what was done, for the log.

    Started as root: become ``user`` (no supplementary groups), which also empties every
    capability set. Started as another user (the unit's ``vmmouse`` user with the ambient
    CAP_SYS_RAWIO): keep the uid and groups, empty the ambient, inheritable, permitted and
    effective sets. Either way no_new_privs is set. What stays: the open descriptors and the
    I/O permission iopl(3) gave this thread (docs/vmmouse.md 'What the daemon keeps').
    """
    if os.geteuid() != 0:
        _drop_capabilities()
        return (f"running as uid {os.geteuid()} (gid {os.getegid()}); capabilities dropped, "
                "no_new_privs")
    try:
        entry = pwd.getpwnam(user)
    except KeyError as e:
        raise SetupError(f"no such user {user!r} to drop privileges to") from e
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if entry.pw_uid != 0 and (os.geteuid() == 0 or os.getuid() == 0):
        raise SetupError(f"could not drop privileges to {user}")
    _set_no_new_privs()
    return f"now running as {user} (uid {entry.pw_uid}, gid {entry.pw_gid}, no_new_privs)"


def _set_no_new_privs() -> None:
    # no_new_privs: no exec from here on can gain privileges (setuid binaries, file caps).
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1) != 0:
        raise SetupError("could not set no_new_privs after dropping privileges")


_PR_SET_NO_NEW_PRIVS = 38   # linux/prctl.h
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522   # linux/capability.h: two 32-bit words per set


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    """Empty the ambient set, then the effective, permitted and inheritable sets (capset with
    zeroes), then set no_new_privs. SetupError if the kernel refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as e:
        raise SetupError(f"cannot drop capabilities: {e}") from e
    if libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        if err != 22:                    # EINVAL: a kernel before 4.3 has no ambient set
            raise SetupError(f"cannot clear the ambient capabilities: {os.strerror(err)}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:          # glibc's wrapper of capset(2)
        raise SetupError(f"cannot drop capabilities: {os.strerror(ctypes.get_errno())}")
    _set_no_new_privs()


def _prctl(option: int, arg: int) -> int:
    # ctypes is imported with the module: after the drop, nobody may not read the stdlib.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return -1
    return int(libc.prctl(option, arg, 0, 0, 0))


class Stats:
    """What the loop did and what it cost, for ``--stats`` and SIGUSR1 (docs/vmmouse.md 'Bursts').

    ``cpu_s`` is the process's CPU time (user + system, from getrusage) since the loop started;
    ``handling_s`` the part spent reading packets and writing frames (thread CPU time around each
    drain); ``max_drain`` the most packets one wake-up read.
    """

    def __init__(self) -> None:
        self.events = 0
        self.wakeups = 0
        self.drains = 0
        self.max_drain = 0
        self.losses = 0
        self.switches = 0
        self.handling_s = 0.0
        self._cpu0 = _process_cpu()

    @property
    def cpu_s(self) -> float:
        return _process_cpu() - self._cpu0

    def line(self, frames: int | None) -> str:
        per_event = self.cpu_s / self.events * 1e6 if self.events else 0.0
        handling = self.handling_s / self.events * 1e6 if self.events else 0.0
        return (f"stats: events={self.events} frames={frames if frames is not None else '-'} "
                f"wakeups={self.wakeups} drains={self.drains} max_drain={self.max_drain} "
                f"cpu_s={self.cpu_s:.4f} cpu_us_per_event={per_event:.1f} "
                f"handling_us_per_event={handling:.1f} losses={self.losses} switches={self.switches}")


def _same_device(a: PointerInfo, b: PointerInfo) -> bool:
    """Whether a sink made for ``a`` fits ``b``: all but the place (a tablet plugged back in
    another port keeps its device, so readers see no device come and go)."""
    return dataclasses.replace(a, phys="") == dataclasses.replace(b, phys="")


def _process_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Daemon:
    """One source at a time, its wake-up, one sink.

    With ``sources`` (a ``vmmouse.supervisor.SourceSet``) a lost source is survived: held
    buttons are released, the daemon waits (``RETRY_S``) for any source of the set, and while on
    a fallback it looks for the preferred one; ``sink_factory(info)`` makes a new sink when the
    new source's device would differ. A serio wake-up whose port was unbound is replaced by
    polling. Without ``sources`` a lost source ends the loop with its error.
    """

    def __init__(self, source: Source | None, wakeup: Wakeup | None, sink: Sink, *,
                 limit: int | None = None, sources: SourceSet | None = None, source_name: str = "",
                 sink_factory: Callable[[PointerInfo], Sink] | None = None,
                 signals: SignalPipe | None = None, retry_s: float = RETRY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.wakeup = wakeup
        self.sink = sink
        self.limit = limit              # stop after this many events (for `vmmouse events --count`)
        self.sources = sources
        self.source_name = source_name
        self.sink_factory = sink_factory
        self.signals = signals
        self.retry_s = retry_s
        self.clock = clock
        self.handled = 0
        self.stopping = False
        self.hangup = False
        self.report = False
        self.resets = 0
        self.more = False               # the last drain stopped at its limit: read on, no wait
        self.stats = Stats()
        self._next_look = 0.0

    # signal handlers only set flags; the wake-up's signal pipe ends the current wait
    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_hangup(self, signum: int, frame: object) -> None:
        self.hangup = True

    def _on_report(self, signum: int, frame: object) -> None:
        self.report = True

    def install_signal_handlers(self) -> dict:
        """Install the handlers; returns the previous ones, for restore_signal_handlers."""
        wanted = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop, signal.SIGHUP: self._on_hangup,
                  signal.SIGUSR1: self._on_report}
        return {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}

    @staticmethod
    def restore_signal_handlers(previous: dict) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def stats_line(self) -> str:
        return self.stats.line(getattr(self.sink, "frames", None))

    def reset(self) -> None:
        self.resets += 1
        log.info("SIGHUP: resetting the source and releasing held buttons")
        self.sink.release_all()
        if self.source is not None:
            self.source.reset()
        if self.wakeup is not None:
            self.wakeup.reset()

    # --- reading ------------------------------------------------------------------------------

    def drain(self) -> int:
        """Read what the source has and hand it to the sink in one batch; returns how many events."""
        if self.source is None:
            return 0
        t0 = time.thread_time()
        events = self.source.read_events()
        if self.limit is not None:
            events = events[: max(0, self.limit - self.handled)]
        limit = getattr(self.source, "batch_limit", None)
        self.more = bool(limit) and len(events) >= limit
        if self.wakeup is not None:
            self.wakeup.activity(bool(events))
        if events:
            handle_batch = getattr(self.sink, "handle_batch", None)
            if handle_batch is not None:
                self._to_sink(handle_batch, events)
            else:
                for event in events:
                    self._to_sink(self.sink.handle, event)
            self.handled += len(events)
            if self.limit is not None and self.handled >= self.limit:
                self.stopping = True
        self.stats.drains += 1
        self.stats.events += len(events)
        self.stats.max_drain = max(self.stats.max_drain, len(events))
        self.stats.handling_s += time.thread_time() - t0
        return len(events)

    def _to_sink(self, write: Callable, arg: object) -> None:
        try:
            write(arg)
        except SinkLost as e:
            if self.sink_factory is None or self.source is None:
                raise
            log.warning("%s; creating the device again", e)
            self._close(self.sink, "sink")
            self.sink = self.sink_factory(self.source.info)
            write = getattr(self.sink, write.__name__)
            write(arg)

    # --- losing and finding sources -----------------------------------------------------------

    @staticmethod
    def _close(thing: object, what: str) -> None:
        try:
            thing.close()       # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001 - whatever a dead device says, the bridge goes on
            log.debug("closing the %s: %s", what, e)

    def _lost(self, error: SourceLost) -> None:
        self.stats.losses += 1
        released = self.sink.release_all()
        log.warning("source %s lost: %s; %d held button(s) released; waiting for a source",
                    self.source_name, error, released)
        if self.sources is None:
            raise error
        self.sources.release(self.source_name, self.source, self.wakeup)
        self.source = self.wakeup = None
        self.more = False

    def _take(self, got: tuple[str, Source, Wakeup]) -> None:
        name, source, wakeup = got
        if self.source is not None:
            self.sink.release_all()
            assert self.sources is not None
            self.sources.release(self.source_name, self.source, self.wakeup)
        self.stats.switches += 1
        self.source_name, self.source, self.wakeup = name, source, wakeup
        log.info("source: %s (%s)", name, source.info.name)
        if self.sink_factory is not None and not _same_device(getattr(self.sink, "info", source.info),
                                                              source.info):
            self._close(self.sink, "sink")
            self.sink = self.sink_factory(source.info)
        self.drain()            # what was queued before this wake-up existed

    def _look(self) -> None:
        """Every ``retry_s``: with no source, any source; on a fallback, a preferred one."""
        if self.sources is None or self.clock() < self._next_look:
            return
        self._next_look = self.clock() + self.retry_s
        got = self.sources.reopen() if self.source is None else self.sources.better(self.source_name)
        if got is not None:
            self._take(got)

    def _idle_wait(self) -> str:
        """No source: sleep until the next look, or a signal."""
        timeout = max(0.0, self._next_look - self.clock())
        fds = [self.signals.fileno()] if self.signals is not None else []
        if select.select(fds, [], [], timeout)[0] and self.signals is not None:
            self.signals.drain()
            return "signal"
        return "timeout"

    def _wait(self) -> str:
        if self.wakeup is None:
            return self._idle_wait()
        try:
            return self.wakeup.wait()
        except WakeupLost as e:
            log.warning("%s; polling instead", e)
            self._close(self.wakeup, "wake-up")
            self.wakeup = PollWakeup(self.signals)
            if self.sources is not None and self.sources.backdoor_wakeup is not None:
                self.sources.backdoor_wakeup = self.wakeup
            return "lost"

    def step(self) -> int:
        """One wait (none if the last drain stopped at its limit) and one drain; returns how
        many events were handed to the sink."""
        if not self.more:
            self._wait()
            self.stats.wakeups += 1
        if self.report:
            self.report = False
            log.info(self.stats_line())
        if self.hangup:
            self.hangup = False
            self.reset()
        if self.stopping:
            return 0
        try:
            n = self.drain()
        except SourceLost as e:
            self._lost(e)
            n = 0
        self._look()
        return n

    def run(self) -> None:
        # Drain once before the first wait: packets queued while the wake-up was being set
        # up raised no notification that the wait could see.
        self._next_look = self.clock() + self.retry_s
        try:
            self.drain()
        except SourceLost as e:
            self._lost(e)
        while not self.stopping:
            self.step()
