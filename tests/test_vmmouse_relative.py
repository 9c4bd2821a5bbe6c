"""Relative packets (issue 16 item 4), on the port model with the version rules of
docs/vmmouse.md 'Relative flag': the host's relative motion goes to a second device with
REL_X/REL_Y (never ABS and REL axes on one device), the bridge returns to absolute when the
host does, and never asks for absolute mode again by itself.

Oracles: the host's own steps and positions (the script this test writes), QEMU's scaling as
the docs give it (7.2: doubled; 8.2: v * 0xFFFF // 0x7FFF), and the device shapes against
udev's input_id rule for a mouse (docs/vmmouse.md 'udev classification').
"""

from __future__ import annotations

from evdev import ecodes as e
from vmmouse_fakes import Frames

from vmmouse.absolute import RELATIVE_DEVICE_NAME, VMMouse
from vmmouse.events import Buttons, PointerEvent
from vmmouse.model import VMPortModel
from vmmouse.protocol import Command, PointerCommand
from vmmouse.uinput_sink import PointerBridge, capabilities, relative_capabilities


def setup(**model_kw):
    model = VMPortModel(**model_kw)
    mouse = VMMouse(model)
    mouse.enable()
    absolute, relative = Frames(), Frames()
    bridge = PointerBridge(absolute, mouse.info, relative=relative)
    return model, mouse, bridge, absolute, relative


def test_host_relative_motion_goes_to_the_relative_device_and_back():
    model, mouse, bridge, absolute, relative = setup(host_relative=False)
    enabled_at = len(model.calls)
    model.mouse_event(100, 200)
    bridge.handle_batch(mouse.read_events())
    model.host_relative = True                       # VMware "optimize mouse for games"
    steps = [(3, -4), (-10, 7), (1, 1)]
    for dx, dy in steps:
        model.mouse_event(dx, dy)
    bridge.handle_batch(mouse.read_events())
    model.host_relative = False                      # and back
    model.mouse_event(300, 400)
    bridge.handle_batch(mouse.read_events())
    abs_codes = {(t, c) for t, c, _ in absolute.events()}
    rel_codes = {(t, c) for t, c, _ in relative.events()}
    assert not any(t == e.EV_REL and c in (e.REL_X, e.REL_Y) for t, c in abs_codes)
    assert not any(t == e.EV_ABS for t, _ in rel_codes)
    # The steps of one drain are one frame with their sums.
    assert relative.frames == [[(e.EV_REL, e.REL_X, sum(d for d, _ in steps)),
                                (e.EV_REL, e.REL_Y, sum(d for _, d in steps))]]
    assert absolute.frames == [[(e.EV_ABS, e.ABS_X, 200), (e.EV_ABS, e.ABS_Y, 400)],
                               [(e.EV_ABS, e.ABS_X, 600), (e.EV_ABS, e.ABS_Y, 800)]]
    requests = [a for c, a in model.calls[enabled_at:] if c == Command.ABSPOINTER_COMMAND]
    assert requests == []                            # no REQUEST_ABSOLUTE: the host decides
    assert model.faults == []


def test_buttons_follow_the_device_they_were_pressed_on():
    model, mouse, bridge, absolute, relative = setup(host_relative=True)
    model.mouse_event(5, 0, 0, Buttons.LEFT)         # pressed during relative motion
    bridge.handle_batch(mouse.read_events())
    model.host_relative = False
    model.mouse_event(10, 10, 0, Buttons.LEFT | Buttons.RIGHT)
    model.mouse_event(10, 10, 0, Buttons.NONE)       # both released in absolute mode
    bridge.handle_batch(mouse.read_events())
    assert relative.frames == [[(e.EV_REL, e.REL_X, 5), (e.EV_KEY, e.BTN_LEFT, 1)],
                               [(e.EV_KEY, e.BTN_LEFT, 0)]]
    assert absolute.frames == [[(e.EV_ABS, e.ABS_X, 20), (e.EV_ABS, e.ABS_Y, 20), (e.EV_KEY, e.BTN_RIGHT, 1)],
                               [(e.EV_KEY, e.BTN_RIGHT, 0)]]
    assert bridge.release_all() == 0


def test_release_all_reaches_both_devices():
    model, mouse, bridge, absolute, relative = setup(host_relative=True)
    model.mouse_event(1, 1, 0, Buttons.MIDDLE)
    model.host_relative = False
    model.mouse_event(1, 1, 0, Buttons.MIDDLE | Buttons.LEFT)
    bridge.handle_batch(mouse.read_events())
    assert bridge.release_all() == 2
    assert relative.frames[-1] == [(e.EV_KEY, e.BTN_MIDDLE, 0)]
    assert absolute.frames[-1] == [(e.EV_KEY, e.BTN_LEFT, 0)]


def test_guest_requested_relative_mode_on_qemu_8_1_is_marked():
    # QEMU >= 8.1 (relative_flag): a guest program's REQUEST_RELATIVE gives marked packets.
    model, mouse, bridge, absolute, relative = setup(relative_flag=True)
    model.call(Command.ABSPOINTER_COMMAND, PointerCommand.REQUEST_RELATIVE)
    model.mouse_event(-7, 9, -1, Buttons.NONE)
    assert mouse.read_events() == [PointerEvent(Buttons.NONE, None, None, -7, 9, wheel=1)]


def test_before_qemu_8_1_relative_packets_are_unmarked_and_read_as_positions():
    # docs/vmmouse.md 'Relative flag': QEMU < 8.1 sets no flag, so a relative packet cannot be
    # told from an absolute one; its steps read as positions (low 16 bits).
    model, mouse, bridge, absolute, relative = setup(relative_flag=False)
    model.call(Command.ABSPOINTER_COMMAND, PointerCommand.REQUEST_RELATIVE)
    model.mouse_event(-7, 9)
    assert mouse.read_events() == [PointerEvent(Buttons.NONE, (-7) & 0xFFFF, 9)]


def test_qemu_8_2_exact_scaling_is_read_unchanged():
    model, mouse, bridge, absolute, relative = setup(exact_scaling=True)
    model.mouse_event(32767, 16384)
    assert mouse.read_events() == [PointerEvent(Buttons.NONE, 32767 * 0xFFFF // 0x7FFF,
                                                16384 * 0xFFFF // 0x7FFF)]


def test_the_two_devices_are_each_a_mouse_and_never_mix_axes():
    info = VMMouse(VMPortModel()).info
    assert info.relative_name == RELATIVE_DEVICE_NAME
    abs_caps, rel_caps = capabilities(info), relative_capabilities(info)
    assert e.EV_ABS not in rel_caps and {e.REL_X, e.REL_Y} <= set(rel_caps[e.EV_REL])
    assert not {e.REL_X, e.REL_Y} & set(abs_caps[e.EV_REL])
    # udev input_id: relative X/Y with BTN_LEFT, or absolute X/Y with a mouse button: a mouse.
    for caps in (abs_caps, rel_caps):
        assert e.BTN_LEFT in caps[e.EV_KEY]
        assert not {e.BTN_TOUCH, e.BTN_TOOL_PEN, e.BTN_STYLUS} & set(caps[e.EV_KEY])


def test_without_a_relative_device_motion_is_dropped_but_buttons_count():
    model = VMPortModel(host_relative=True)
    mouse = VMMouse(model)
    mouse.enable()
    absolute = Frames()
    bridge = PointerBridge(absolute, mouse.info)
    model.mouse_event(3, 4, 0, Buttons.MIDDLE)
    bridge.handle_batch(mouse.read_events())
    assert absolute.frames == [[(e.EV_KEY, e.BTN_MIDDLE, 1)]] and bridge.dropped_relative == 1
