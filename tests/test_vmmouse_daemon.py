"""vmmouse.daemon: the loop with fake parts, the signal flags, and the privilege drop (in a
forked child, so this test process keeps its own ids)."""

import os
import pwd
import signal

import pytest

from vmmouse.daemon import Daemon, drop_privileges
from vmmouse.errors import SetupError
from vmmouse.events import Buttons, PointerEvent


class FakeSource:
    def __init__(self, batches):
        self.batches = list(batches)
        self.resets = 0

    def read_events(self):
        return self.batches.pop(0) if self.batches else []

    def reset(self):
        self.resets += 1


class FakeWakeup:
    def __init__(self, on_wait=None):
        self.log = []
        self.on_wait = on_wait

    def wait(self):
        self.log.append("wait")
        if self.on_wait:
            self.on_wait()
        return "timeout"

    def activity(self, had_events):
        self.log.append(had_events)

    def reset(self):
        self.log.append("reset")


class FakeSink:
    def __init__(self):
        self.events = []
        self.released = 0

    def handle(self, event):
        self.events.append(event)
        return 1

    def release_all(self):
        self.released += 1
        return 0


A = PointerEvent(Buttons.LEFT, 1, 2)
B = PointerEvent(Buttons.NONE, 3, 4)


def test_each_wake_drains_and_reports_activity():
    src, wake, sink = FakeSource([[A, B], []]), FakeWakeup(), FakeSink()
    d = Daemon(src, wake, sink)
    assert d.step() == 2 and d.step() == 0
    assert sink.events == [A, B]
    assert wake.log == ["wait", True, "wait", False]


def test_run_drains_before_the_first_wait():
    # Packets queued before the wake-up was armed raised no notification: read them first.
    src, wake, sink = FakeSource([[A]]), FakeWakeup(), FakeSink()
    d = Daemon(src, wake, sink, limit=1)
    d.run()
    assert sink.events == [A] and wake.log == [True]


def test_limit_stops_the_loop():
    d = Daemon(FakeSource([[A], [B, A, B]]), FakeWakeup(), FakeSink(), limit=3)
    d.run()
    assert d.handled == 3 and d.stopping


def test_sighup_resets_source_wakeup_and_releases_buttons():
    src, wake, sink = FakeSource([[A]]), FakeWakeup(), FakeSink()
    d = Daemon(src, wake, sink)
    d._on_hangup(signal.SIGHUP, None)
    d.step()
    assert (src.resets, sink.released, d.resets) == (1, 1, 1)
    assert wake.log[:2] == ["wait", "reset"] and sink.events == [A]


def test_sigterm_during_the_wait_ends_without_reading():
    src, sink = FakeSource([[], [A]]), FakeSink()       # the first, empty batch is the initial drain
    d = Daemon(src, None, sink)
    d.wakeup = FakeWakeup(on_wait=lambda: d._on_stop(signal.SIGTERM, None))
    d.run()
    assert sink.events == [] and src.batches == [[A]]


def test_real_signals_set_the_flags():
    d = Daemon(FakeSource([]), FakeWakeup(), FakeSink())
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)}
    previous = d.install_signal_handlers()
    try:
        assert previous == old
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert d.hangup and d.stopping and d.report
    finally:
        Daemon.restore_signal_handlers(previous)
    assert {s: signal.getsignal(s) for s in old} == old


def test_unknown_user():
    if os.geteuid() != 0:
        assert "no privileges to drop" in drop_privileges("no-such-user-xyz")
    else:
        with pytest.raises(SetupError, match="no such user"):
            drop_privileges("no-such-user-xyz")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drop_to_nobody_in_a_child_keeps_open_files():
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    held = os.open("/proc/self/status", os.O_RDONLY)          # a file opened as root stays usable
    pid = os.fork()
    if pid == 0:
        try:
            drop_privileges("nobody")
            ok = (os.getuid(), os.geteuid(), os.getgid(), os.getgroups()) == \
                 (nobody.pw_uid, nobody.pw_uid, nobody.pw_gid, [])
            ok = ok and len(os.pread(held, 10, 0)) == 10
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    os.close(r)
    os.close(held)
