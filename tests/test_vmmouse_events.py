"""vmmouse.events: the shared event type."""

from vmmouse.events import Buttons, PointerEvent, PointerInfo


def test_absolute_and_relative():
    assert not PointerEvent(Buttons.NONE, 1, 2).relative
    assert PointerEvent(Buttons.NONE, None, None, 3, 4).relative


def test_describe_is_one_readable_line():
    text = PointerEvent(Buttons.LEFT | Buttons.RIGHT, 10, 20, wheel=-1).describe()
    assert text == "abs x=10 y=20 buttons=left+right wheel=-1"
    assert PointerEvent(dx=-3, dy=4, hwheel=1).describe() == "rel dx=-3 dy=+4 buttons=- hwheel=+1"


def test_events_are_values():
    assert PointerEvent(Buttons.LEFT, 1, 2) == PointerEvent(Buttons.LEFT, 1, 2)
    info = PointerInfo("n", (0, 9), (0, 9))
    assert (info.bus, info.hwheel) == ("virtual", False)
