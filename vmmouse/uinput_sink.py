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
from collections.abc import Sequence
from typing import Protocol

from evdev import AbsInfo, ecodes

from vmmouse.errors import SetupError, SinkLost
from vmmouse.events import Buttons, PointerEvent, PointerInfo
from vmmouse.mapping import Mapping

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
    """Keeps the state last written and writes only the difference.

    ``handle_batch`` takes every packet of one drain and coalesces motion: positions (or
    relative steps) between two button changes become one frame, while each packet that
    changes a button or turns a wheel gets a frame of its own, in order, at its own position,
    so no press or release is ever dropped or reordered (docs/vmmouse.md 'Bursts').

    Relative packets (docs/vmmouse.md 'Relative flag') go to ``relative``, a second device with
    REL_X/REL_Y, never to the absolute one: a device with both ABS and REL axes is not an
    absolute mouse to libinput. A button is released on the device it was pressed on, and
    pressed on the device of the packet that pressed it (the rule of Linux's vmmouse driver,
    docs/vmmouse.md 'Linux vmmouse driver'). Without a relative device, relative motion is
    counted in ``dropped_relative`` and its buttons and wheel still count.
    """

    def __init__(self, writer: EventWriter, info: PointerInfo, *, mapping: Mapping | None = None,
                 relative: EventWriter | None = None) -> None:
        check_info(info)
        self.writer = writer
        self.relative = relative
        self.info = info
        self.mapping = mapping
        self.buttons = Buttons.NONE
        self.owner: dict[Buttons, EventWriter] = {}     # the device each held button was pressed on
        self.x: int | None = None
        self.y: int | None = None
        self.dropped_relative = 0
        self.frames = 0                                 # SYN_REPORTs written, on both devices

    def _clamp(self, value: int, bounds: tuple[int, int]) -> int:
        return min(max(value, bounds[0]), bounds[1])

    def _position(self, event: PointerEvent) -> tuple[int, int]:
        assert event.x is not None and event.y is not None
        if self.mapping is not None:
            return self.mapping.apply(event.x, event.y, self.info.x_range, self.info.y_range)
        return self._clamp(event.x, self.info.x_range), self._clamp(event.y, self.info.y_range)

    def _flush(self, out: dict[int, list[tuple[int, int, int]]], devices: dict[int, EventWriter]) -> int:
        written = 0
        for key, events in out.items():
            if not events:
                continue
            writer = devices[key]
            for etype, code, value in events:
                writer.write(etype, code, value)
            writer.syn()
            self.frames += 1
            written += len(events)
        return written

    def _frame(self, event: PointerEvent | None, position: tuple[int, int] | None,
               motion: tuple[int, int]) -> int:
        """Write one frame per device touched: a position or a relative step, then the button
        changes and wheels of ``event`` (None: motion only)."""
        devices = {id(self.writer): self.writer}
        out: dict[int, list[tuple[int, int, int]]] = {id(self.writer): []}
        here = self.writer
        if event is not None and event.relative:
            here = self.relative if self.relative is not None else self.writer
        if self.relative is not None:
            devices[id(self.relative)] = self.relative
            out.setdefault(id(self.relative), [])
        if position is not None:
            x, y = position
            if x != self.x:
                out[id(self.writer)].append((ecodes.EV_ABS, ecodes.ABS_X, x))
                self.x = x
            if y != self.y:
                out[id(self.writer)].append((ecodes.EV_ABS, ecodes.ABS_Y, y))
                self.y = y
        dx, dy = motion
        if dx or dy:
            if self.relative is None:
                self.dropped_relative += 1
            else:
                if dx:
                    out[id(self.relative)].append((ecodes.EV_REL, ecodes.REL_X, dx))
                if dy:
                    out[id(self.relative)].append((ecodes.EV_REL, ecodes.REL_Y, dy))
        if event is not None:
            for button, code in BUTTON_CODES.items():
                now = button in event.buttons
                if now == (button in self.buttons):
                    continue
                if now:
                    self.owner[button] = here
                    out[id(here)].append((ecodes.EV_KEY, code, 1))
                else:
                    owner = self.owner.pop(button, self.writer)
                    out[id(owner)].append((ecodes.EV_KEY, code, 0))
            self.buttons = event.buttons
            # A wheel value past what a signed 32-bit hi-res value holds is clamped, not an
            # error: the device sent it, and evdev cannot carry more.
            wheel = self._clamp(event.wheel, (-WHEEL_MAX, WHEEL_MAX))
            hwheel = self._clamp(event.hwheel, (-WHEEL_MAX, WHEEL_MAX))
            if wheel:
                out[id(here)].append((ecodes.EV_REL, ecodes.REL_WHEEL_HI_RES, wheel * HI_RES_PER_DETENT))
                out[id(here)].append((ecodes.EV_REL, ecodes.REL_WHEEL, wheel))
            if hwheel and self.info.hwheel:
                out[id(here)].append((ecodes.EV_REL, ecodes.REL_HWHEEL_HI_RES, hwheel * HI_RES_PER_DETENT))
                out[id(here)].append((ecodes.EV_REL, ecodes.REL_HWHEEL, hwheel))
        return self._flush(out, devices)

    def handle(self, event: PointerEvent) -> int:
        """Write one packet's changes and a SYN_REPORT; returns how many events were written
        (0 means nothing changed, and then no empty frame is sent either)."""
        return self.handle_batch([event])

    def handle_batch(self, events: Sequence[PointerEvent]) -> int:
        """Write a drain's packets, motion coalesced between button and wheel changes; returns
        how many evdev events were written (SYN_REPORTs not counted)."""
        written = 0
        position: tuple[int, int] | None = None     # the newest absolute position not yet written
        dx = dy = 0                                 # relative steps not yet written
        for event in events:
            if event.relative:
                if position is not None:            # absolute motion first, in its own frame
                    written += self._frame(None, position, (0, 0))
                    position = None
                dx += event.dx
                dy += event.dy
            else:
                if dx or dy:
                    written += self._frame(None, None, (dx, dy))
                    dx = dy = 0
                position = self._position(event)
            if event.buttons != self.buttons or event.wheel or (event.hwheel and self.info.hwheel):
                written += self._frame(event, position, (dx, dy))
                position = None
                dx = dy = 0
        if position is not None or dx or dy:
            written += self._frame(None, position, (dx, dy))
        return written

    def release_all(self) -> int:
        """Release every held button (shutdown, SIGHUP, a lost source); returns how many."""
        out: dict[int, list[tuple[int, int, int]]] = {}
        devices: dict[int, EventWriter] = {}
        released = 0
        for button, code in BUTTON_CODES.items():
            if button in self.buttons:
                owner = self.owner.pop(button, self.writer)
                devices[id(owner)] = owner
                out.setdefault(id(owner), []).append((ecodes.EV_KEY, code, 0))
                released += 1
        self.buttons = Buttons.NONE
        self.owner.clear()
        self._flush(out, devices)
        return released


def relative_capabilities(info: PointerInfo) -> dict[int, list]:
    """The codes of the relative device: REL_X/REL_Y, the buttons and the wheels, no ABS axis,
    so that udev tags it ID_INPUT_MOUSE and libinput moves the pointer by it."""
    rel = [ecodes.REL_X, ecodes.REL_Y, ecodes.REL_WHEEL, ecodes.REL_WHEEL_HI_RES]
    if info.hwheel:
        rel += [ecodes.REL_HWHEEL, ecodes.REL_HWHEEL_HI_RES]
    return {ecodes.EV_KEY: list(BUTTON_CODES.values()), ecodes.EV_REL: rel}


def _event_node(fd: int) -> str | None:
    """/dev/input/eventN of the uinput device on ``fd``, from UI_GET_SYSNAME and sysfs."""
    from evdev import _uinput

    try:
        sysname = _uinput.get_sysname(fd)
        entries = os.listdir(os.path.join("/sys/devices/virtual/input", sysname))
    except (OSError, ValueError):
        return None
    return next((os.path.join("/dev/input", n) for n in sorted(entries)
                 if n.startswith("event") and n[5:].isdigit()), None)


def _uinput_class():
    from evdev import UInput

    class BridgeUInput(UInput):
        """python-evdev's UInput without opening the new /dev/input/eventN for reading: the bridge
        only writes, and as an unprivileged user (not in group ``input``) that open would fail
        after two seconds of retries (docs/vmmouse.md 'uinput'). ``event_path`` names the node."""

        def _find_device(self, fd: int):        # noqa: ANN202 - python-evdev's hook
            self.event_path = _event_node(fd)
            return None

    return BridgeUInput


def open_uinput(info: PointerInfo, devnode: str = "/dev/uinput", *,
                relative: bool = False):  # -> evdev.UInput
    """Create the uinput device for a source (``relative``: its second, relative device).
    Raises SetupError with the reason if it cannot."""
    from evdev import UInputError

    UInput = _uinput_class()

    if not os.path.exists(devnode):
        raise SetupError(f"{devnode} does not exist: load the uinput module (modprobe uinput)")
    name = (info.relative_name if relative else info.name).encode()[:UINPUT_NAME_MAX].decode(errors="ignore")
    caps = relative_capabilities(info) if relative else capabilities(info)
    phys = (info.phys or "vmmouse") + ("/relative" if relative else "")
    try:
        return UInput(caps, name=name, vendor=info.vendor, product=info.product,
                      version=info.version, bustype=BUS_TYPES[info.bus], devnode=devnode, phys=phys)
    except UInputError as e:
        raise SetupError(f"cannot create the uinput device: {e}") from e
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            raise SetupError(f"{devnode}: permission denied (run as root, or install the udev rule "
                             "that gives it to the vmmouse group)") from e
        raise SetupError(f"{devnode}: {e.strerror or e}") from e


class UInputSink:
    """The uinput device(s) of one source with their bridge: ``handle_batch`` events, ``close``
    releases held buttons and destroys the devices.

    A source that can send relative packets (``PointerInfo.relative_name``, the vmmouse) gets
    its relative device at once, while the privileges to open /dev/uinput are still held (the
    kernel's vmmouse driver also registers both of its devices up front)."""

    def __init__(self, info: PointerInfo, devnode: str = "/dev/uinput", *,
                 mapping: Mapping | None = None) -> None:
        self.info = info
        self.device = open_uinput(info, devnode)
        self.relative_device = None
        try:
            if info.relative_name:
                self.relative_device = open_uinput(info, devnode, relative=True)
        except BaseException:
            self.device.close()
            raise
        self.bridge = PointerBridge(self.device, info, mapping=mapping, relative=self.relative_device)

    @property
    def event_node(self) -> str | None:
        return getattr(self.device, "event_path", None)

    @property
    def frames(self) -> int:
        return self.bridge.frames

    def _guard(self, write, *args) -> int:
        try:
            return write(*args)
        except OSError as e:
            raise SinkLost(f"writing to the uinput device failed: {e.strerror or e}") from e

    def handle(self, event: PointerEvent) -> int:
        return self._guard(self.bridge.handle, event)

    def handle_batch(self, events: Sequence[PointerEvent]) -> int:
        return self._guard(self.bridge.handle_batch, events)

    def release_all(self) -> int:
        return self._guard(self.bridge.release_all)

    def close(self) -> None:
        try:
            self.bridge.release_all()
        except OSError:
            pass                   # the device is gone already; the kernel released its keys
        finally:
            for device in (self.relative_device, self.device):
                if device is not None:
                    try:
                        device.close()
                    except OSError:
                        pass
