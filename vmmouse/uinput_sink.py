"""The sink: pointer events into a uinput device that udev and libinput take for an absolute mouse.

Top of the data path: sources produce ``vmmouse.events.PointerEvent``; ``PointerBridge`` turns
each into evdev events on an ``EventWriter`` (python-evdev's ``UInput``, or a recording fake in
tests). The device's shape follows udev's input_id and libinput (docs/vmmouse.md 'udev
classification', 'libinput', 'Wheel events' and 'uinput'):

- ABS_X/ABS_Y with the source's range plus BTN_LEFT/RIGHT/MIDDLE: udev's input_id tags a device
  with absolute axes and a mouse button ID_INPUT_MOUSE, and libinput's fallback dispatch turns
  ABS_X/ABS_Y into absolute pointer motion;
- no BTN_TOUCH, no BTN_TOOL_*, no INPUT_PROP_DIRECT: those make a touchscreen or a tablet;
- REL_WHEEL with REL_WHEEL_HI_RES (120 per detent) in the same frame, as the kernel's HID
  driver sends them (libinput >= 1.19 reads the hi-res axis, older readers the plain one);
  REL_HWHEEL and REL_HWHEEL_HI_RES only where the source has a horizontal wheel;
- only what changed is written, then one SYN_REPORT; on close every held button is released
  (the kernel would also release them when the uinput fd closes, but a reader should see it).
"""

from __future__ import annotations

import errno
import os
from typing import Protocol

from evdev import AbsInfo, ecodes

from vmmouse.errors import SetupError
from vmmouse.events import Buttons, PointerEvent, PointerInfo

HI_RES_PER_DETENT = 120
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1   # evdev values and absinfo are signed 32-bit
WHEEL_MAX = INT32_MAX // HI_RES_PER_DETENT          # detents in one frame whose hi-res value fits
UINPUT_NAME_MAX = 79          # python-evdev copies at most 79 bytes of the 80 the kernel keeps
                              # (docs/vmmouse.md 'uinput')

BUTTON_CODES = {Buttons.LEFT: ecodes.BTN_LEFT, Buttons.RIGHT: ecodes.BTN_RIGHT,
                Buttons.MIDDLE: ecodes.BTN_MIDDLE}
BUS_TYPES = {"virtual": ecodes.BUS_VIRTUAL, "usb": ecodes.BUS_USB}


class EventWriter(Protocol):
    """The part of python-evdev's UInput the bridge uses."""

    def write(self, etype: int, code: int, value: int) -> None: ...

    def syn(self) -> None: ...


def check_info(info: PointerInfo) -> None:
    """SetupError unless each axis range is a signed 32-bit range with min <= max (what
    uinput's absinfo holds and uinput_validate_absinfo accepts: docs/vmmouse.md 'uinput')."""
    for axis, (lo, hi) in (("X", info.x_range), ("Y", info.y_range)):
        if not INT32_MIN <= lo <= hi <= INT32_MAX:
            raise SetupError(f"the source's {axis} range {lo}..{hi} does not fit a uinput axis "
                             "(signed 32-bit, minimum <= maximum)")


def capabilities(info: PointerInfo) -> dict[int, list]:
    """The event codes the uinput device declares, for ``evdev.UInput(events=...)``."""
    check_info(info)
    rel = [ecodes.REL_WHEEL, ecodes.REL_WHEEL_HI_RES]
    if info.hwheel:
        rel += [ecodes.REL_HWHEEL, ecodes.REL_HWHEEL_HI_RES]
    # No resolution: libinput rejects a device with resolution on one axis only, and an
    # absolute pointer has no physical size anyway.
    (xmin, xmax), (ymin, ymax) = info.x_range, info.y_range
    x = AbsInfo(value=xmin, min=xmin, max=xmax, fuzz=0, flat=0, resolution=0)
    y = AbsInfo(value=ymin, min=ymin, max=ymax, fuzz=0, flat=0, resolution=0)
    return {
        ecodes.EV_KEY: list(BUTTON_CODES.values()),
        ecodes.EV_ABS: [(ecodes.ABS_X, x), (ecodes.ABS_Y, y)],
        ecodes.EV_REL: rel,
    }


class PointerBridge:
    """Keeps the state last written and writes only the difference, one frame per event."""

    def __init__(self, writer: EventWriter, info: PointerInfo) -> None:
        check_info(info)
        self.writer = writer
        self.info = info
        self.buttons = Buttons.NONE
        self.x: int | None = None
        self.y: int | None = None
        self.dropped_relative = 0

    def _clamp(self, value: int, bounds: tuple[int, int]) -> int:
        return min(max(value, bounds[0]), bounds[1])

    def handle(self, event: PointerEvent) -> int:
        """Write one packet's changes and a SYN_REPORT; returns how many events were written
        (0 means nothing changed, and then no empty frame is sent either)."""
        out: list[tuple[int, int, int]] = []
        if event.relative:
            # The device is absolute; relative motion (a source switched to relative mode by
            # someone else) has no axis here. Its buttons and wheel still count.
            if event.dx or event.dy:
                self.dropped_relative += 1
        else:
            x = self._clamp(event.x, self.info.x_range)
            y = self._clamp(event.y, self.info.y_range)
            if x != self.x:
                out.append((ecodes.EV_ABS, ecodes.ABS_X, x))
                self.x = x
            if y != self.y:
                out.append((ecodes.EV_ABS, ecodes.ABS_Y, y))
                self.y = y
        for button, code in BUTTON_CODES.items():
            now = button in event.buttons
            if now != (button in self.buttons):
                out.append((ecodes.EV_KEY, code, int(now)))
        self.buttons = event.buttons
        # A wheel value past what a signed 32-bit hi-res value holds is clamped, not an error:
        # the device sent it, and evdev cannot carry more.
        wheel = self._clamp(event.wheel, (-WHEEL_MAX, WHEEL_MAX))
        hwheel = self._clamp(event.hwheel, (-WHEEL_MAX, WHEEL_MAX))
        if wheel:
            out.append((ecodes.EV_REL, ecodes.REL_WHEEL_HI_RES, wheel * HI_RES_PER_DETENT))
            out.append((ecodes.EV_REL, ecodes.REL_WHEEL, wheel))
        if hwheel and self.info.hwheel:
            out.append((ecodes.EV_REL, ecodes.REL_HWHEEL_HI_RES, hwheel * HI_RES_PER_DETENT))
            out.append((ecodes.EV_REL, ecodes.REL_HWHEEL, hwheel))
        for etype, code, value in out:
            self.writer.write(etype, code, value)
        if out:
            self.writer.syn()
        return len(out)

    def release_all(self) -> int:
        """Release every held button (shutdown, SIGHUP); returns how many were released."""
        released = 0
        for button, code in BUTTON_CODES.items():
            if button in self.buttons:
                self.writer.write(ecodes.EV_KEY, code, 0)
                released += 1
        self.buttons = Buttons.NONE
        if released:
            self.writer.syn()
        return released


def open_uinput(info: PointerInfo, devnode: str = "/dev/uinput"):  # -> evdev.UInput
    """Create the uinput device for a source. Raises SetupError with the reason if it cannot."""
    from evdev import UInput, UInputError

    if not os.path.exists(devnode):
        raise SetupError(f"{devnode} does not exist: load the uinput module (modprobe uinput)")
    name = info.name.encode()[:UINPUT_NAME_MAX].decode(errors="ignore")
    try:
        return UInput(capabilities(info), name=name, vendor=info.vendor, product=info.product,
                      version=info.version, bustype=BUS_TYPES[info.bus], devnode=devnode,
                      phys=info.phys or "vmmouse")
    except UInputError as e:
        raise SetupError(f"cannot create the uinput device: {e}") from e
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            raise SetupError(f"{devnode}: permission denied (run as root, or install the udev rule "
                             "that gives it to the vmmouse group)") from e
        raise SetupError(f"{devnode}: {e.strerror or e}") from e


class UInputSink:
    """A uinput device with its bridge: ``handle`` events, ``close`` releases and destroys it."""

    def __init__(self, info: PointerInfo, devnode: str = "/dev/uinput") -> None:
        self.device = open_uinput(info, devnode)
        self.bridge = PointerBridge(self.device, info)

    @property
    def event_node(self) -> str | None:
        dev = getattr(self.device, "device", None)
        return getattr(dev, "path", None)

    def handle(self, event: PointerEvent) -> int:
        return self.bridge.handle(event)

    def release_all(self) -> int:
        return self.bridge.release_all()

    def close(self) -> None:
        try:
            self.bridge.release_all()
        finally:
            self.device.close()
