"""Waiting for the next vmmouse packet without busy polling.

Used by ``vmmouse.daemon`` between drains of the backdoor queue. Two ways:

- ``SerioWakeup``, the interrupt path: every event QEMU (or VMware) queues for the vmmouse
  also produces a real PS/2 packet on the i8042 AUX port (QEMU: i8042_isa_mouse_fake_event ->
  ps2_mouse_fake_event, an 08 01 00 packet raising IRQ 12). Binding that port to serio_raw and
  sending it 0xF4 (enable data reporting; it answers 0xFA) turns those packets into bytes on
  /dev/serio_rawN, so poll() sleeps until the pointer moves. The bytes themselves carry
  nothing; on each wake-up the daemon drains the backdoor queue. A long safety timeout drains
  anyway, in case a notification was lost (a full PS/2 queue). The facts: docs/vmmouse.md
  'PS/2 notifications' and 'Wake-up through serio_raw'.
- ``PollWakeup``, the fallback: poll the backdoor at an adaptive interval, fast right after
  activity and doubling up to ``max_interval`` when idle.

Both also wake at once for a signal (SIGTERM, SIGHUP), through ``SignalPipe``.
``SourceBlocks`` is the no-op for sources whose read itself blocks (the USB tablet).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import time
from dataclasses import dataclass

from vmmouse.errors import SetupError, WakeupLost

log = logging.getLogger(__name__)

AUX_DESCRIPTION_PREFIX = "i8042 AUX"     # serio description of the PS/2 mouse port(s)
PS2_ENABLE_REPORTING = 0xF4
PS2_ACK = 0xFA
SERIO_RAW = "serio_raw"
SAFETY_TIMEOUT_S = 5.0


class SignalPipe:
    """A self-pipe that signal.set_wakeup_fd writes to, so poll() returns on any signal."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)

    def fileno(self) -> int:
        return self.read_fd

    def drain(self) -> None:
        try:
            while os.read(self.read_fd, 256):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        signal.set_wakeup_fd(self._old)
        os.close(self.read_fd)
        os.close(self.write_fd)


# --- serio_raw --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SerioPort:
    name: str            # serio1
    path: str            # /sys/bus/serio/devices/serio1
    description: str
    driver: str | None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def find_aux_port(sysfs: str = "/sys") -> SerioPort | None:
    """The i8042 AUX (PS/2 mouse) serio port, where vmmouse notifications arrive."""
    base = os.path.join(sysfs, "bus", "serio", "devices")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return None
    for name in names:
        path = os.path.join(base, name)
        description = _read(os.path.join(path, "description")) or ""
        if description.startswith(AUX_DESCRIPTION_PREFIX):
            link = os.path.join(path, "driver")
            driver = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
            return SerioPort(name, path, description, driver)
    return None


def serio_raw_name(port: SerioPort) -> str | None:
    """The misc device (serio_rawN) serio_raw made for the port, from sysfs."""
    try:
        names = sorted(os.listdir(os.path.join(port.path, "misc")))
    except OSError:
        return None
    return next((n for n in names if n.startswith(SERIO_RAW)), None)


def bind_serio_raw(port: SerioPort, *, sysfs: str = "/sys", dev: str = "/dev", timeout: float = 2.0) -> str:
    """Give the port to serio_raw (through its drvctl file) and return /dev/serio_rawN."""
    if port.driver != SERIO_RAW:
        if not os.path.isdir(os.path.join(sysfs, "bus", "serio", "drivers", SERIO_RAW)):
            raise SetupError("the serio_raw driver is not loaded (modprobe serio_raw)")
        if port.driver:
            log.info("serio: taking %s (%s) from %s", port.name, port.description, port.driver)
        try:
            with open(os.path.join(port.path, "drvctl"), "w") as f:
                f.write(SERIO_RAW)
        except OSError as e:
            raise SetupError(f"cannot bind {port.name} to serio_raw through drvctl: {e.strerror or e}") from e
    deadline = time.monotonic() + timeout
    while True:
        name = serio_raw_name(port)
        if name and os.path.exists(os.path.join(dev, name)):
            return os.path.join(dev, name)
        if time.monotonic() > deadline:
            raise SetupError(f"{port.name} was bound to serio_raw but no /dev/serio_raw node appeared")
        time.sleep(0.02)


class SerioWakeup:
    """Sleep in poll() on /dev/serio_rawN until the PS/2 port reports a (fake) packet."""

    def __init__(self, devnode: str, signals: SignalPipe | None = None,
                 safety_timeout: float = SAFETY_TIMEOUT_S) -> None:
        self.devnode = devnode
        self.signals = signals
        self.safety_timeout = safety_timeout
        try:
            self.fd = os.open(devnode, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise SetupError(f"cannot open {devnode}: {e.strerror or e}") from e
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)
        if signals is not None:
            self.poller.register(signals.fileno(), select.POLLIN)
        self.acked = self.enable_reporting()

    def _drain(self) -> bytes:
        data = b""
        while True:
            try:
                chunk = os.read(self.fd, 256)
            except BlockingIOError:
                return data
            except OSError as e:
                if e.errno == errno.ENODEV:
                    raise WakeupLost(f"{self.devnode} went away (serio port unbound)") from e
                raise
            if not chunk:
                return data
            data += chunk

    def enable_reporting(self, timeout: float = 1.0) -> bool:
        """Send 0xF4 and wait for its 0xFA; returns whether the acknowledgement came."""
        self._drain()
        os.write(self.fd, bytes([PS2_ENABLE_REPORTING]))
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            ready = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]
            if ready:
                seen += self._drain()
                if PS2_ACK in seen:
                    return True
        log.warning("serio: no 0xFA after 0xF4 on %s (got %s); waking may not work", self.devnode,
                    seen.hex() or "nothing")
        return False

    def wait(self) -> str:
        """Block until 'device' (a PS/2 notification), 'signal' or 'timeout'."""
        result = "timeout"
        for fd, mask in self.poller.poll(self.safety_timeout * 1000):
            if fd == self.fd:
                if mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    raise WakeupLost(f"{self.devnode} went away (serio port unbound)")
                self._drain()
                result = "device"
            elif self.signals is not None and fd == self.signals.fileno():
                self.signals.drain()
                if result == "timeout":
                    result = "signal"
        return result

    def activity(self, had_events: bool) -> None:
        """Interrupt-driven: nothing to adapt."""

    def reset(self) -> None:
        self.acked = self.enable_reporting()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- polling ----------------------------------------------------------------------------------

class AdaptiveInterval:
    """The polling interval: ``minimum`` right after activity, times ``growth`` per idle poll,
    capped at ``maximum`` (so an idle bridge polls ten times a second)."""

    def __init__(self, minimum: float = 0.005, maximum: float = 0.1, growth: float = 2.0) -> None:
        if not 0 < minimum <= maximum or growth <= 1:
            raise ValueError("need 0 < minimum <= maximum and growth > 1")
        self.minimum, self.maximum, self.growth = minimum, maximum, growth
        self.current = maximum

    def update(self, had_events: bool) -> float:
        self.current = self.minimum if had_events else min(self.current * self.growth, self.maximum)
        return self.current


class PollWakeup:
    """Sleep the adaptive interval (or until a signal), then let the daemon poll the queue."""

    def __init__(self, signals: SignalPipe | None = None, interval: AdaptiveInterval | None = None) -> None:
        self.signals = signals
        self.interval = interval or AdaptiveInterval()
        self.poller = select.poll()
        if signals is not None:
            self.poller.register(signals.fileno(), select.POLLIN)

    def wait(self) -> str:
        ready = self.poller.poll(self.interval.current * 1000)
        if ready and self.signals is not None:
            self.signals.drain()
            return "signal"
        return "timeout"

    def activity(self, had_events: bool) -> None:
        self.interval.update(had_events)

    def reset(self) -> None:
        self.interval.current = self.interval.minimum

    def close(self) -> None:
        pass


class SourceBlocks:
    """For a source whose read blocks by itself (the USB tablet's interrupt endpoint)."""

    def wait(self) -> str:
        return "source"

    def activity(self, had_events: bool) -> None:
        pass

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass
