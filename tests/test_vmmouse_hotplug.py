"""Hot-plug and faults with fakes (issue 16 item 5, issue 17 item 4): a USB tablet that goes
away and comes back, a vmmouse disabled and re-enabled by someone else (on the port model), a
uinput device whose writes fail, a serio wake-up whose port was unbound. Nothing may stay
pressed, and the bridge goes on without a restart.

Oracles: the scripts of the fakes (what each device sent and when it went away), the port
model's state (hooked, calls), and the frames written.
"""

from __future__ import annotations

import errno

import pytest
from evdev import ecodes as e
from vmmouse_fakes import Frames

from vmmouse.absolute import VMMouse
from vmmouse.daemon import Daemon
from vmmouse.errors import BackdoorUnavailable, NoDevice, SinkLost, SourceLost, WakeupLost
from vmmouse.events import Buttons, PointerEvent, PointerInfo
from vmmouse.model import VMPortModel
from vmmouse.protocol import Command, PointerCommand
from vmmouse.supervisor import SourceSet
from vmmouse.uinput_sink import PointerBridge
from vmmouse.wakeup import PollWakeup

TABLET_INFO = PointerInfo("vmmouse USB tablet bridge", (0, 0x7FFF), (0, 0x7FFF))


class Sink:
    """A sink with an info, as UInputSink has, around a PointerBridge on a recorder."""

    made: list = []

    def __init__(self, info):
        self.info = info
        self.rec = Frames()
        self.bridge = PointerBridge(self.rec, info)
        self.closed = False
        Sink.made.append(self)

    def handle_batch(self, events):
        return self.bridge.handle_batch(events)

    def release_all(self):
        return self.bridge.release_all()

    @property
    def frames(self):
        return self.bridge.frames

    def close(self):
        self.bridge.release_all()
        self.closed = True


class Tablet:
    """A USB tablet that plays its batches, then is unplugged (SourceLost)."""

    def __init__(self, batches):
        self.info = TABLET_INFO
        self.batches = list(batches)
        self.closed = False

    def read_events(self):
        if not self.batches:
            raise SourceLost("the USB tablet at usb-1-1 went away")
        return self.batches.pop(0)

    def reset(self):
        pass

    def close(self):
        self.closed = True


class Blocks:
    def wait(self):
        return "source"

    def activity(self, had):
        pass

    def reset(self):
        pass

    def close(self):
        pass


class Backdoor:
    def __init__(self, mouse):
        self.mouse = mouse
        self.info = mouse.info

    def read_events(self):
        return self.mouse.read_events()

    def reset(self):
        self.mouse.reset()

    def close(self):
        self.mouse.close()


def openers_from(script):
    """An opener that answers from a list: an exception is raised, anything else returned."""
    def opener():
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item
    return opener


def fresh_sinks():
    Sink.made = []


def test_tablet_unplugged_with_a_button_held_is_released_then_used_again_when_back():
    fresh_sinks()
    first = Tablet([[PointerEvent(Buttons.LEFT, 10, 20)]])
    second = Tablet([[PointerEvent(Buttons.NONE, 30, 40)]] + [[]] * 50)
    usb = openers_from([first, NoDevice("no USB absolute pointer"), NoDevice("no USB absolute pointer"),
                        second])
    sources = SourceSet("auto", {"backdoor": openers_from([BackdoorUnavailable("iopl")]), "usb": usb},
                        lambda name, source: Blocks())
    name, source, wakeup = sources.first()
    assert name == "usb" and source is first
    d = Daemon(source, wakeup, Sink(source.info), sources=sources, source_name=name,
               sink_factory=Sink, retry_s=0.001, limit=2)
    d.run()
    sink = Sink.made[0]
    assert len(Sink.made) == 1                       # the same device: the tablet came back alike
    assert sink.rec.frames == [
        [(e.EV_ABS, e.ABS_X, 10), (e.EV_ABS, e.ABS_Y, 20), (e.EV_KEY, e.BTN_LEFT, 1)],
        [(e.EV_KEY, e.BTN_LEFT, 0)],                 # released when the tablet went away
        [(e.EV_ABS, e.ABS_X, 30), (e.EV_ABS, e.ABS_Y, 40)],
    ]
    assert first.closed and d.source is second and d.stats.losses == 1
    assert "backdoor" in sources.unusable            # not tried again: it cannot come back


def test_explicit_usb_source_waits_for_its_tablet():
    fresh_sinks()
    first = Tablet([[]])
    second = Tablet([[PointerEvent(Buttons.RIGHT, 1, 1)]])
    sources = SourceSet("usb", {"usb": openers_from([first, NoDevice("none"), second])},
                        lambda name, source: Blocks())
    name, source, wakeup = sources.first()
    d = Daemon(source, wakeup, Sink(source.info), sources=sources, source_name=name,
               sink_factory=Sink, retry_s=0.001, limit=1)
    d.run()
    assert d.source is second and Sink.made[0].rec.frames[-1][-1] == (e.EV_KEY, e.BTN_RIGHT, 1)


def test_without_a_source_set_a_lost_source_ends_the_loop_after_releasing():
    fresh_sinks()
    tablet = Tablet([[PointerEvent(Buttons.MIDDLE, 1, 1)]])
    sink = Sink(TABLET_INFO)
    d = Daemon(tablet, Blocks(), sink)
    with pytest.raises(SourceLost):
        d.run()
    assert sink.rec.frames[-1] == [(e.EV_KEY, e.BTN_MIDDLE, 0)]


def test_vmmouse_disabled_by_someone_else_falls_back_to_the_tablet_and_is_taken_back():
    fresh_sinks()
    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.enable()
    backdoor = Backdoor(mouse)
    tablet = Tablet([[PointerEvent(Buttons.NONE, 7, 8)]] + [[]] * 1000)
    sources = SourceSet("auto", {"backdoor": lambda: backdoor, "usb": openers_from([tablet])},
                        lambda name, source: Blocks())
    name, source, wakeup = sources.first()
    assert name == "backdoor"
    d = Daemon(source, wakeup, Sink(source.info), sources=sources, source_name=name,
               sink_factory=Sink, retry_s=0.0)
    model.mouse_event(100, 100, 0, Buttons.LEFT)
    d.drain()
    # Someone else disables the vmmouse; QEMU then gives its events to the tablet.
    model.call(Command.ABSPOINTER_COMMAND, PointerCommand.DISABLE)
    calls_before = len(model.calls)
    d.step()                                         # lost, released, the tablet taken
    assert d.source_name == "usb" and not model.hooked
    vmmouse_sink, tablet_sink = Sink.made[0], Sink.made[-1]
    assert vmmouse_sink.rec.frames[-1] == [(e.EV_KEY, e.BTN_LEFT, 0)]
    assert vmmouse_sink.closed and tablet_sink.info == TABLET_INFO
    d.step()
    assert tablet_sink.rec.frames[0] == [(e.EV_ABS, e.ABS_X, 7), (e.EV_ABS, e.ABS_Y, 8)]
    d.step()                                         # still disabled: the bridge only looks
    commands = [a for c, a in model.calls[calls_before:] if c == Command.ABSPOINTER_COMMAND]
    assert commands == []                            # it did not re-enable it: no fight
    # Someone enables it again: the bridge takes it back and gives the tablet up.
    model.call(Command.ABSPOINTER_COMMAND, PointerCommand.READ_ID)
    model.call(Command.ABSPOINTER_COMMAND, PointerCommand.REQUEST_ABSOLUTE)
    d.step()
    assert d.source_name == "backdoor" and tablet.closed and model.hooked and mouse.enabled
    model.mouse_event(50, 60)
    d.step()
    assert Sink.made[-1].info == mouse.info
    assert Sink.made[-1].rec.frames[-1] == [(e.EV_ABS, e.ABS_X, 100), (e.EV_ABS, e.ABS_Y, 120)]
    assert model.faults == [] and d.stats.losses == 1 and d.stats.switches == 2
    sources.close()
    assert not model.hooked                          # DISABLE at exit


def test_a_failing_uinput_device_is_made_again():
    fresh_sinks()

    class Gone(Sink):
        def handle_batch(self, events):
            raise SinkLost("writing to the uinput device failed: No such device")

    made = []

    def factory(info):
        made.append(Sink(info))
        return made[-1]

    tablet = Tablet([[PointerEvent(Buttons.LEFT, 1, 2)]])
    d = Daemon(tablet, Blocks(), Gone(TABLET_INFO), sink_factory=factory, limit=1)
    d.run()
    assert made and made[0].rec.frames == [[(e.EV_ABS, e.ABS_X, 1), (e.EV_ABS, e.ABS_Y, 2),
                                            (e.EV_KEY, e.BTN_LEFT, 1)]]


def test_uinput_write_errors_become_sink_lost():
    from vmmouse.uinput_sink import UInputSink

    class Broken:
        def write(self, *a):
            raise OSError(errno.ENODEV, "No such device")

        def syn(self):
            pass

    sink = UInputSink.__new__(UInputSink)
    sink.bridge = PointerBridge(Broken(), TABLET_INFO)
    with pytest.raises(SinkLost, match="No such device"):
        sink.handle_batch([PointerEvent(Buttons.NONE, 1, 1)])


def test_an_unbound_serio_port_means_polling():
    class Unbound(Blocks):
        closed = False

        def wait(self):
            raise WakeupLost("/dev/serio_raw0 went away (serio port unbound)")

        def close(self):
            self.closed = True

    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.enable()
    wake = Unbound()
    d = Daemon(Backdoor(mouse), wake, Sink(mouse.info))
    model.mouse_event(1, 1)
    assert d.step() == 1                             # the wait failed; the drain still ran
    assert wake.closed and isinstance(d.wakeup, PollWakeup)
