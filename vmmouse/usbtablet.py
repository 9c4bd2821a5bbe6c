"""A USB HID absolute pointer (QEMU's usb-tablet and its kind) as a source of pointer events.

Transport of the USB source, through pyusb: find HID interfaces whose report descriptor
(parsed by ``vmmouse.hid``) describes absolute X and Y, take the interface from the kernel's
usbhid driver, read interrupt reports, give the interface back on close.

Device facts (QEMU hw/usb/dev-hid.c, hw/input/hid.c; docs/vmmouse.md 'Identifying it', 'Report
layout', 'Idle and queue' and 'Taking it from usbhid'):
- 0627:0001 is shared by QEMU's usb-mouse, usb-tablet and usb-kbd, so the id alone proves
  nothing; the report descriptor decides (the tablet's is 74 bytes, X/Y absolute 0..0x7FFF);
- with nothing to report, an interrupt IN poll is NAKed, which libusb reports as a timeout:
  a timeout is "no event", not an error;
- the wheel is already in HID's sign (+1 = up), the same as REL_WHEEL;
- while usbhid owns the interface, usbfs refuses interface-addressed control requests
  (EBUSY), so the report descriptor is read from the HID device's sysfs
  ``report_descriptor`` then, and with GET_DESCRIPTOR only when no driver is bound.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vmmouse.errors import NoDevice, SetupError, SourceLost
from vmmouse.events import PointerEvent, PointerInfo
from vmmouse.hid import MAX_DESCRIPTOR_BYTES, MAX_REPORT_BYTES, DescriptorError, PointerLayout, pointer_layout

log = logging.getLogger(__name__)

DEVICE_NAME = "vmmouse USB tablet bridge"
CLASS_HID = 0x03
DT_HID = 0x21
DT_REPORT = 0x22
REQUEST_GET_DESCRIPTOR = 0x06
REQUEST_TYPE_IN_STANDARD_INTERFACE = 0x81
ENDPOINT_IN = 0x80
TRANSFER_INTERRUPT = 0x03
READ_TIMEOUT_MS = 250


def report_descriptor_length(hid_descriptor: bytes) -> int | None:
    """wDescriptorLength of the report descriptor listed in a HID class descriptor (HID 1.11,
    6.2.1: bLength, 0x21, bcdHID, bCountryCode, bNumDescriptors, then type/length pairs)."""
    i = 0
    data = bytes(hid_descriptor)
    while i + 1 < len(data):
        length, kind = data[i], data[i + 1]
        if length < 2 or i + length > len(data):
            return None  # a descriptor that claims more bytes than there are
        if kind == DT_HID and length >= 9:
            count = data[i + 5]
            for n in range(count):
                at = i + 6 + 3 * n
                if at + 3 > i + length or at + 3 > len(data):
                    break
                if data[at] == DT_REPORT:
                    return data[at + 1] | data[at + 2] << 8
        i += length
    return None


@dataclass
class TabletCandidate:
    """A HID interface that reads as an absolute pointer."""

    device: Any
    interface: int
    endpoint: int
    packet_size: int
    layout: PointerLayout
    product: str

    @property
    def location(self) -> str:
        ports = ".".join(str(p) for p in (getattr(self.device, "port_numbers", None) or ()))
        return f"usb-{self.device.bus}-{ports or self.device.address}"

    def describe(self) -> str:
        lay = self.layout
        extras = [f"{len(lay.buttons)} buttons"] + (["wheel"] if lay.wheel else []) + \
                 (["horizontal wheel"] if lay.pan else [])
        return (f"{self.product or 'unnamed'} {self.device.idVendor:04x}:{self.device.idProduct:04x} at "
                f"bus {self.device.bus} device {self.device.address}: absolute pointer "
                f"(X {lay.x.logical_min}..{lay.x.logical_max}, Y {lay.y.logical_min}..{lay.y.logical_max}, "
                f"{', '.join(extras)})")


def _product(device: Any) -> str:
    try:
        import usb.util

        return usb.util.get_string(device, device.iProduct) or ""
    except Exception:  # a missing string is no reason to skip a device
        return ""


def _configuration(device: Any) -> tuple[int, list[Any]]:
    """(bConfigurationValue, interfaces) of the active configuration."""
    try:
        config = device.get_active_configuration()
    except Exception:  # unconfigured or unreadable: fall back to the first one
        config = next(iter(device), None)
    if config is None:
        return 0, []
    return getattr(config, "bConfigurationValue", 1), list(config)


def _interrupt_in(interface: Any) -> Any | None:
    for ep in interface:
        if ep.bEndpointAddress & ENDPOINT_IN and ep.bmAttributes & 0x03 == TRANSFER_INTERRUPT:
            return ep
    return None


def sysfs_report_descriptor(device: Any, interface: int, config: int, sysfs: str = "/sys") -> bytes | None:
    """The report descriptor the kernel's HID driver read, if one is bound to the interface."""
    ports = ".".join(str(p) for p in (getattr(device, "port_numbers", None) or ()))
    if not ports:
        return None
    pattern = os.path.join(sysfs, "bus", "usb", "devices", f"{device.bus}-{ports}:{config}.{interface}",
                           "*", "report_descriptor")
    for path in sorted(glob.glob(pattern)):
        try:
            # O_NONBLOCK and regular files only: a sysfs attribute is one, and nothing planted
            # in its place (a FIFO, a device) can block or feed the bridge for ever.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb", buffering=0) as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                # One byte more than allowed, so that pointer_layout refuses a longer one.
                return f.read(MAX_DESCRIPTOR_BYTES + 1)
        except OSError:
            continue
    return None


def _report_descriptor(device: Any, config: int, number: int, length: int, sysfs: str) -> bytes:
    from_sysfs = sysfs_report_descriptor(device, number, config, sysfs)
    if from_sysfs:
        return from_sysfs
    return bytes(device.ctrl_transfer(REQUEST_TYPE_IN_STANDARD_INTERFACE, REQUEST_GET_DESCRIPTOR,
                                      DT_REPORT << 8, number, length, 1000))


def examine(device: Any, sysfs: str = "/sys") -> tuple[list[TabletCandidate], list[str]]:
    """The absolute-pointer interfaces of one device, and a note for each HID interface that is not."""
    found, notes = [], []
    ident = f"{device.idVendor:04x}:{device.idProduct:04x} (bus {device.bus} device {device.address})"
    config, interfaces = _configuration(device)
    for intf in interfaces:
        if intf.bInterfaceClass != CLASS_HID or intf.bAlternateSetting != 0:
            continue
        number = intf.bInterfaceNumber
        try:
            length = report_descriptor_length(bytes(getattr(intf, "extra_descriptors", b"") or b""))
        except Exception as e:  # noqa: BLE001 - whatever a device sends, the device is skipped
            notes.append(f"{ident} interface {number}: unreadable HID class descriptor ({e})")
            continue
        if not length:
            notes.append(f"{ident} interface {number}: HID without a report descriptor length")
            continue
        if length > MAX_DESCRIPTOR_BYTES:
            notes.append(f"{ident} interface {number}: a {length}-byte report descriptor is longer "
                         f"than the {MAX_DESCRIPTOR_BYTES} bytes allowed")
            continue
        try:
            descriptor = _report_descriptor(device, config, number, length, sysfs)
            layout = pointer_layout(descriptor)
        except DescriptorError as e:
            notes.append(f"{ident} interface {number}: bad report descriptor ({e})")
            continue
        except Exception as e:  # usb.core.USBError and permission errors
            notes.append(f"{ident} interface {number}: cannot read its report descriptor ({e})")
            continue
        if layout is None:
            notes.append(f"{ident} interface {number}: HID, but not an absolute pointer")
            continue
        ep = _interrupt_in(intf)
        if ep is None:
            notes.append(f"{ident} interface {number}: no interrupt IN endpoint")
            continue
        if not 1 <= ep.wMaxPacketSize <= MAX_REPORT_BYTES:
            notes.append(f"{ident} interface {number}: interrupt IN packets of {ep.wMaxPacketSize} "
                         f"bytes (1..{MAX_REPORT_BYTES} are read)")
            continue
        found.append(TabletCandidate(device, number, ep.bEndpointAddress, ep.wMaxPacketSize, layout,
                                     _product(device)))
    return found, notes


def find_tablets(devices: Iterable[Any] | None = None, sysfs: str = "/sys"
                 ) -> tuple[list[TabletCandidate], list[str]]:
    """Every USB absolute pointer, with notes on HID interfaces that were passed over."""
    if devices is None:
        try:
            import usb.core

            devices = list(usb.core.find(find_all=True))
        except Exception as e:  # no libusb backend, no usbfs
            return [], [f"cannot list USB devices: {e}"]
    found, notes = [], []
    for device in devices:
        f, n = examine(device, sysfs)
        found += f
        notes += n
    return found, notes


class UsbTablet:
    """One claimed absolute-pointer interface; reads block in libusb (no busy polling)."""

    def __init__(self, candidate: TabletCandidate) -> None:
        self.candidate = candidate
        self.device = candidate.device
        self.layout = candidate.layout
        self._detached = False
        self._claimed = False
        self.info = PointerInfo(
            name=DEVICE_NAME,
            x_range=(self.layout.x.logical_min, self.layout.x.logical_max),
            y_range=(self.layout.y.logical_min, self.layout.y.logical_max),
            hwheel=self.layout.pan is not None, bus="virtual",
            vendor=self.device.idVendor, product=self.device.idProduct,
            phys=f"{candidate.location}/input{candidate.interface}/bridge")

    def open(self) -> UsbTablet:
        number = self.candidate.interface
        try:
            if self.device.is_kernel_driver_active(number):
                self.device.detach_kernel_driver(number)
                self._detached = True
            import usb.util

            usb.util.claim_interface(self.device, number)
            self._claimed = True
        except Exception as e:
            self.close()
            where = f"{self.candidate.location} interface {number}"
            if isinstance(e, NotImplementedError):
                raise SetupError(f"cannot detach the kernel driver from {where}: {e}") from e
            raise SetupError(f"cannot claim {where}: {e}") from e
        return self

    def read_events(self, timeout_ms: int = READ_TIMEOUT_MS) -> list[PointerEvent]:
        """Wait up to ``timeout_ms`` for one report; [] on timeout (the device NAKs when idle)."""
        import usb.core

        try:
            data = bytes(self.device.read(self.candidate.endpoint, self.candidate.packet_size, timeout_ms))
            data = data[: MAX_REPORT_BYTES + 2]  # libusb reads at most packet_size; a wrapper may not
        except usb.core.USBTimeoutError:
            return []
        except usb.core.USBError as e:
            # Unplugged: libusb says NO_DEVICE (-4), or IO (-1, EIO) when the unplug lands
            # during a transfer (lab: QMP device_del). Either way the tablet is closed and
            # looked for again, so a transient EIO costs a re-claim, not the bridge.
            if e.errno in (errno.ENODEV, errno.ESHUTDOWN, errno.EPIPE, errno.EIO) or \
                    e.backend_error_code in (-4, -1):
                raise SourceLost(f"the USB tablet at {self.candidate.location} went away") from e
            if e.errno == errno.EINTR:
                return []
            raise
        try:
            event = self.layout.decode(data)
        except ValueError as e:
            log.warning("usb tablet: ignoring a report of %d bytes %s (%s)", len(data), data[:16].hex(), e)
            return []
        return [event] if event is not None else []

    def reset(self) -> None:
        """Nothing to re-negotiate: the device keeps no mode the bridge set."""

    def close(self) -> None:
        number = self.candidate.interface
        import usb.util

        if self._claimed:
            try:
                usb.util.release_interface(self.device, number)
            except Exception as e:  # the device may be gone
                log.debug("usb tablet: release_interface: %s", e)
            self._claimed = False
        if self._detached:
            try:
                self.device.attach_kernel_driver(number)
            except Exception as e:
                log.warning("usb tablet: could not give interface %d back to the kernel: %s", number, e)
            self._detached = False
        try:
            usb.util.dispose_resources(self.device)
        except Exception as e:
            log.debug("usb tablet: dispose_resources: %s", e)


def open_tablet(devices: Iterable[Any] | None = None, sysfs: str = "/sys") -> UsbTablet:
    found, notes = find_tablets(devices, sysfs)
    if not found:
        why = "; ".join(notes) if notes else "no USB HID device"
        raise NoDevice(f"no USB absolute pointer found ({why})")
    if len(found) > 1:
        log.info("usb tablet: %d candidates, using %s", len(found), found[0].describe())
    return UsbTablet(found[0]).open()
