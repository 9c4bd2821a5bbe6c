"""vmmouse.uinput_sink: the evdev event sequence (on a recording writer), the device's shape
(checked against udev's input_id rules and libinput's needs as the reference note states them),
and, where /dev/uinput exists, a real uinput device read back through evdev."""


import pytest
from evdev import ecodes as e

from vmmouse.events import Buttons, PointerEvent, PointerInfo
from vmmouse.uinput_sink import PointerBridge, capabilities

INFO = PointerInfo("VMware vmmouse absolute pointer", (0, 0xFFFF), (0, 0xFFFF), hwheel=True,
                   vendor=0x15AD, product=0x0001)
SYN = ("syn",)


class Recorder:
    def __init__(self):
        self.events = []

    def write(self, etype, code, value):
        self.events.append((etype, code, value))

    def syn(self):
        self.events.append(SYN)


def bridge(info=INFO):
    rec = Recorder()
    return rec, PointerBridge(rec, info)


def test_first_packet_writes_position_then_syn():
    rec, b = bridge()
    assert b.handle(PointerEvent(Buttons.NONE, 100, 200)) == 2
    assert rec.events == [(e.EV_ABS, e.ABS_X, 100), (e.EV_ABS, e.ABS_Y, 200), SYN]


def test_only_changes_are_written_and_no_empty_frames():
    rec, b = bridge()
    b.handle(PointerEvent(Buttons.NONE, 100, 200))
    rec.events.clear()
    assert b.handle(PointerEvent(Buttons.NONE, 100, 200)) == 0
    assert rec.events == []
    b.handle(PointerEvent(Buttons.NONE, 100, 201))
    assert rec.events == [(e.EV_ABS, e.ABS_Y, 201), SYN]


def test_click_press_and_release():
    rec, b = bridge()
    b.handle(PointerEvent(Buttons.NONE, 5, 5))
    rec.events.clear()
    b.handle(PointerEvent(Buttons.LEFT, 5, 5))
    b.handle(PointerEvent(Buttons.LEFT | Buttons.RIGHT, 6, 5))
    b.handle(PointerEvent(Buttons.NONE, 6, 5))
    assert rec.events == [
        (e.EV_KEY, e.BTN_LEFT, 1), SYN,
        (e.EV_ABS, e.ABS_X, 6), (e.EV_KEY, e.BTN_RIGHT, 1), SYN,
        (e.EV_KEY, e.BTN_LEFT, 0), (e.EV_KEY, e.BTN_RIGHT, 0), SYN,
    ]


def test_wheel_writes_hi_res_and_detents_in_one_frame_every_time():
    rec, b = bridge()
    b.handle(PointerEvent(Buttons.NONE, 0, 0))
    rec.events.clear()
    b.handle(PointerEvent(Buttons.NONE, 0, 0, wheel=1))
    b.handle(PointerEvent(Buttons.NONE, 0, 0, wheel=1))
    b.handle(PointerEvent(Buttons.NONE, 0, 0, wheel=-2, hwheel=1))
    assert rec.events == [
        (e.EV_REL, e.REL_WHEEL_HI_RES, 120), (e.EV_REL, e.REL_WHEEL, 1), SYN,
        (e.EV_REL, e.REL_WHEEL_HI_RES, 120), (e.EV_REL, e.REL_WHEEL, 1), SYN,
        (e.EV_REL, e.REL_WHEEL_HI_RES, -240), (e.EV_REL, e.REL_WHEEL, -2),
        (e.EV_REL, e.REL_HWHEEL_HI_RES, 120), (e.EV_REL, e.REL_HWHEEL, 1), SYN,
    ]


def test_horizontal_wheel_dropped_where_the_device_has_none():
    rec, b = bridge(PointerInfo("t", (0, 0x7FFF), (0, 0x7FFF)))
    b.handle(PointerEvent(Buttons.NONE, 0, 0))
    rec.events.clear()
    assert b.handle(PointerEvent(Buttons.NONE, 0, 0, hwheel=1)) == 0 and rec.events == []


def test_positions_are_clamped_to_the_declared_range():
    rec, b = bridge(PointerInfo("t", (0, 0x7FFF), (0, 0x7FFF)))
    b.handle(PointerEvent(Buttons.NONE, 0x9000, -5))
    assert rec.events[:2] == [(e.EV_ABS, e.ABS_X, 0x7FFF), (e.EV_ABS, e.ABS_Y, 0)]


def test_relative_packet_keeps_buttons_and_wheel_but_not_motion():
    rec, b = bridge()
    b.handle(PointerEvent(Buttons.NONE, 10, 10))
    rec.events.clear()
    b.handle(PointerEvent(Buttons.MIDDLE, None, None, 3, 4, wheel=1))
    assert rec.events == [(e.EV_KEY, e.BTN_MIDDLE, 1), (e.EV_REL, e.REL_WHEEL_HI_RES, 120),
                          (e.EV_REL, e.REL_WHEEL, 1), SYN]
    assert b.dropped_relative == 1 and (b.x, b.y) == (10, 10)


def test_release_all_on_shutdown():
    rec, b = bridge()
    b.handle(PointerEvent(Buttons.LEFT | Buttons.MIDDLE, 1, 1))
    rec.events.clear()
    assert b.release_all() == 2
    assert rec.events == [(e.EV_KEY, e.BTN_LEFT, 0), (e.EV_KEY, e.BTN_MIDDLE, 0), SYN]
    rec.events.clear()
    assert b.release_all() == 0 and rec.events == []


def test_capabilities_make_an_absolute_mouse_not_a_touchscreen_or_tablet():
    caps = capabilities(INFO)
    keys = caps[e.EV_KEY]
    assert sorted(keys) == sorted([e.BTN_LEFT, e.BTN_RIGHT, e.BTN_MIDDLE])
    assert not {e.BTN_TOUCH, e.BTN_TOOL_PEN, e.BTN_STYLUS, e.BTN_TOOL_FINGER} & set(keys)
    abs_axes = dict(caps[e.EV_ABS])
    assert set(abs_axes) == {e.ABS_X, e.ABS_Y}
    assert (abs_axes[e.ABS_X].min, abs_axes[e.ABS_X].max, abs_axes[e.ABS_X].resolution) == (0, 0xFFFF, 0)
    assert set(caps[e.EV_REL]) == {e.REL_WHEEL, e.REL_WHEEL_HI_RES, e.REL_HWHEEL, e.REL_HWHEEL_HI_RES}
    no_pan = capabilities(PointerInfo("t", (0, 0x7FFF), (0, 0x7FFF)))
    assert set(no_pan[e.EV_REL]) == {e.REL_WHEEL, e.REL_WHEEL_HI_RES}


# Deselected where /dev/uinput is missing; tests/test_vmmouse_lab.py runs it in a guest.
@pytest.mark.needs_uinput
def test_real_uinput_device_reads_back():
    import select

    from evdev import InputDevice

    from vmmouse.uinput_sink import UInputSink

    sink = UInputSink(INFO)
    try:
        dev = InputDevice(sink.event_node)
        assert dev.name == INFO.name
        assert (dev.info.bustype, dev.info.vendor, dev.info.product) == (e.BUS_VIRTUAL, 0x15AD, 0x0001)
        assert e.INPUT_PROP_DIRECT not in dev.input_props()
        sink.handle(PointerEvent(Buttons.LEFT, 0x8000, 0x4000, wheel=1))
        sink.release_all()
        got = []
        # Read before closing: evdev drops a client's buffer once the device is gone.
        while select.select([dev], [], [], 1.0)[0]:
            got += [(ev.type, ev.code, ev.value) for ev in dev.read()]
            if (e.EV_KEY, e.BTN_LEFT, 0) in got:
                break
        assert got[:6] == [(e.EV_ABS, e.ABS_X, 0x8000), (e.EV_ABS, e.ABS_Y, 0x4000),
                           (e.EV_KEY, e.BTN_LEFT, 1), (e.EV_REL, e.REL_WHEEL_HI_RES, 120),
                           (e.EV_REL, e.REL_WHEEL, 1), (e.EV_SYN, e.SYN_REPORT, 0)]
        assert (e.EV_KEY, e.BTN_LEFT, 0) in got
        dev.close()
    finally:
        sink.close()
