"""vmmouse.wakeup: the adaptive interval, finding and binding the i8042 AUX port in a fake
sysfs tree, and the serio wait on a pseudo-terminal standing in for /dev/serio_raw0 (a
thread plays the PS/2 mouse: it answers 0xF4 with 0xFA, as the PS/2 protocol says)."""

import os
import signal
import threading
import tty

import pytest

from vmmouse.errors import SetupError
from vmmouse.wakeup import (
    AdaptiveInterval,
    PollWakeup,
    SerioWakeup,
    SignalPipe,
    bind_serio_raw,
    find_aux_port,
)


def test_interval_backs_off_when_idle_and_snaps_back_on_activity():
    iv = AdaptiveInterval(minimum=0.005, maximum=0.1, growth=2)
    assert iv.current == 0.1
    assert iv.update(True) == 0.005
    assert [iv.update(False) for _ in range(6)] == [0.01, 0.02, 0.04, 0.08, 0.1, 0.1]
    assert iv.update(True) == 0.005
    with pytest.raises(ValueError):
        AdaptiveInterval(minimum=0.2, maximum=0.1)


def _serio_tree(tmp_path, driver="psmouse", with_raw_driver=True):
    base = tmp_path / "sys" / "bus" / "serio"
    kbd = base / "devices" / "serio0"
    aux = base / "devices" / "serio1"
    for d, desc in ((kbd, "i8042 KBD port"), (aux, "i8042 AUX port")):
        d.mkdir(parents=True)
        (d / "description").write_text(desc + "\n")
        (d / "drvctl").write_text("")
    (base / "drivers" / driver).mkdir(parents=True)
    (aux / "driver").symlink_to(base / "drivers" / driver)
    if with_raw_driver:
        (base / "drivers" / "serio_raw").mkdir(parents=True, exist_ok=True)
    (tmp_path / "dev").mkdir()
    return str(tmp_path / "sys"), str(tmp_path / "dev"), aux


def test_find_aux_port(tmp_path):
    sysfs, _, aux = _serio_tree(tmp_path)
    port = find_aux_port(sysfs)
    assert (port.name, port.description, port.driver) == ("serio1", "i8042 AUX port", "psmouse")
    assert find_aux_port(str(tmp_path / "nothing")) is None


def test_bind_writes_drvctl_and_returns_the_node(tmp_path):
    sysfs, dev, aux = _serio_tree(tmp_path)
    (aux / "misc" / "serio_raw0").mkdir(parents=True)       # what serio_raw's misc device adds
    (tmp_path / "dev" / "serio_raw0").write_text("")
    node = bind_serio_raw(find_aux_port(sysfs), sysfs=sysfs, dev=dev)
    assert node == os.path.join(dev, "serio_raw0")
    assert (aux / "drvctl").read_text() == "serio_raw"


def test_bind_needs_the_serio_raw_driver(tmp_path):
    sysfs, dev, aux = _serio_tree(tmp_path, with_raw_driver=False)
    with pytest.raises(SetupError, match="modprobe serio_raw"):
        bind_serio_raw(find_aux_port(sysfs), sysfs=sysfs, dev=dev)
    assert (aux / "drvctl").read_text() == ""


def test_bind_gives_up_when_no_node_appears(tmp_path):
    sysfs, dev, aux = _serio_tree(tmp_path, driver="serio_raw")
    with pytest.raises(SetupError, match="no /dev/serio_raw"):
        bind_serio_raw(find_aux_port(sysfs), sysfs=sysfs, dev=dev, timeout=0.05)
    assert (aux / "drvctl").read_text() == ""               # already serio_raw: nothing written


class FakePS2Mouse:
    """The far side of a pty: acknowledges 0xF4 with 0xFA, records what it was sent."""

    def __init__(self):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.received = bytearray()
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                data = os.read(self.master, 16)
            except OSError:
                return
            self.received += data
            if 0xF4 in data:
                os.write(self.master, b"\xfa")

    def packet(self):
        os.write(self.master, bytes([0x08, 0x01, 0x00]))     # QEMU's fake PS/2 packet: dx = +1

    def close(self):
        self._stop = True
        os.close(self._slave)
        os.close(self.master)


@pytest.fixture
def ps2():
    mouse = FakePS2Mouse()
    yield mouse
    mouse.close()


def test_serio_enables_reporting_and_wakes_on_packets(ps2):
    w = SerioWakeup(ps2.path, safety_timeout=0.05)
    try:
        assert w.acked and bytes(ps2.received) == b"\xf4"
        assert w.wait() == "timeout"                          # nothing pending: the safety timeout
        ps2.packet()
        assert w.wait() == "device"
        assert w.wait() == "timeout"                          # the packet bytes were consumed
        w.reset()
        assert bytes(ps2.received) == b"\xf4\xf4"
    finally:
        w.close()


def test_serio_wakes_on_a_signal(ps2):
    old = signal.signal(signal.SIGUSR1, lambda *a: None)
    pipe = SignalPipe()
    try:
        w = SerioWakeup(ps2.path, pipe, safety_timeout=30)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert w.wait() == "signal"
        w.close()
    finally:
        pipe.close()
        signal.signal(signal.SIGUSR1, old)


def test_serio_node_missing(tmp_path):
    with pytest.raises(SetupError, match="cannot open"):
        SerioWakeup(str(tmp_path / "serio_raw9"))


def test_poll_wakeup_adapts_and_wakes_on_a_signal():
    old = signal.signal(signal.SIGUSR1, lambda *a: None)
    pipe = SignalPipe()
    try:
        w = PollWakeup(pipe, AdaptiveInterval(0.001, 0.004, 2))
        assert w.wait() == "timeout"
        w.activity(True)
        assert w.interval.current == 0.001
        w.activity(False)
        assert w.interval.current == 0.002
        os.kill(os.getpid(), signal.SIGUSR1)
        assert w.wait() == "signal"
    finally:
        pipe.close()
        signal.signal(signal.SIGUSR1, old)
