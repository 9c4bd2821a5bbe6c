"""The pointer-event type shared by every source, and the description of a source's axes.

Sources (``vmmouse.absolute``, ``vmmouse.usbtablet``) turn their device's packets into
``PointerEvent``; the sink (``vmmouse.uinput_sink``) turns those into evdev events and builds
its uinput device from a ``PointerInfo``. Signs follow evdev, so no later layer flips them:
``wheel`` > 0 is a detent away from the user (REL_WHEEL up), ``hwheel`` > 0 is to the right,
``dy`` > 0 is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag


class Buttons(IntFlag):
    """Pointer buttons held, as a source-independent bit set (not the vmmouse or HID bits)."""

    NONE = 0
    LEFT = 1
    RIGHT = 2
    MIDDLE = 4


@dataclass(frozen=True, slots=True)
class PointerEvent:
    """One decoded packet: the full button state, and either an absolute position or a motion.

    ``x``/``y`` are in the source's own range (``PointerInfo.x_range``); they are None for a
    relative packet, which carries ``dx``/``dy`` instead. Wheel values are in detents.
    """

    buttons: Buttons = Buttons.NONE
    x: int | None = None
    y: int | None = None
    dx: int = 0
    dy: int = 0
    wheel: int = 0
    hwheel: int = 0

    @property
    def relative(self) -> bool:
        return self.x is None or self.y is None

    def describe(self) -> str:
        """A one-line human reading, used by ``vmmouse events``."""
        names = "+".join(b.name.lower() for b in (Buttons.LEFT, Buttons.MIDDLE, Buttons.RIGHT)
                         if b in self.buttons) or "-"
        where = f"rel dx={self.dx:+d} dy={self.dy:+d}" if self.relative else f"abs x={self.x} y={self.y}"
        text = f"{where} buttons={names}"
        if self.wheel:
            text += f" wheel={self.wheel:+d}"
        if self.hwheel:
            text += f" hwheel={self.hwheel:+d}"
        return text


@dataclass(frozen=True, slots=True)
class PointerInfo:
    """What a sink needs to build a device for a source: its name, axis ranges and identity.

    ``bus`` is a name ("virtual", "usb") that the sink maps to the kernel's BUS_* number.
    ``relative_name`` names the second, relative device of a source that can send relative
    packets (the vmmouse); empty for a source that never does.
    """

    name: str
    x_range: tuple[int, int]
    y_range: tuple[int, int]
    hwheel: bool = False
    bus: str = "virtual"
    vendor: int = 0
    product: int = 0
    version: int = 1
    phys: str = ""
    relative_name: str = ""
