"""vmmouse.usbtablet: discovery and reading on fake pyusb objects shaped like QEMU's usb-tablet
(descriptors from QEMU hw/usb/dev-hid.c: HID class descriptor announcing 74 bytes, endpoint
0x81 interrupt IN, 8-byte packets)."""

import errno

import pytest
import usb.core
import usb.util

from vmmouse.errors import NoDevice
from vmmouse.events import Buttons, PointerEvent
from vmmouse.usbtablet import DEVICE_NAME, UsbTablet, find_tablets, open_tablet, report_descriptor_length

try:                                   # the descriptors are written down once, in the HID tests
    from test_vmmouse_hid import QEMU_KEYBOARD, QEMU_MOUSE, QEMU_TABLET
except ImportError:                    # tests/ imported as a package
    from tests.test_vmmouse_hid import QEMU_KEYBOARD, QEMU_MOUSE, QEMU_TABLET

# dev-hid.c desc_iface_tablet: bLength 9, HID 0x21, bcdHID 0x0001, country 0, 1 descriptor,
# type 0x22 (report), length 74.
NOSYS = "/nonexistent"          # no sysfs: descriptors come from GET_DESCRIPTOR
TABLET_HID_DESCRIPTOR = bytes([0x09, 0x21, 0x01, 0x00, 0x00, 0x01, 0x22, 74, 0])


class FakeEndpoint:
    def __init__(self, address=0x81, attributes=0x03, size=8):
        self.bEndpointAddress, self.bmAttributes, self.wMaxPacketSize = address, attributes, size


class FakeInterface:
    def __init__(self, number, hid_descriptor, cls=3, endpoints=None):
        self.bInterfaceNumber, self.bInterfaceClass, self.bAlternateSetting = number, cls, 0
        self.extra_descriptors = list(hid_descriptor)
        self._eps = endpoints if endpoints is not None else [FakeEndpoint()]

    def __iter__(self):
        return iter(self._eps)


class FakeDevice:
    def __init__(self, report_descriptors, interfaces, reports=()):
        self.idVendor, self.idProduct, self.bus, self.address, self.port_numbers = 0x0627, 0x0001, 1, 2, (1,)
        self.iProduct = 2
        self._descriptors = report_descriptors
        self._interfaces = interfaces
        self.reports = list(reports)
        self.kernel_driver = {i.bInterfaceNumber: True for i in interfaces}
        self.busy_when_bound = False
        self.log = []

    def get_active_configuration(self):
        return self._interfaces

    def ctrl_transfer(self, request_type, request, value, index, length, timeout):
        self.log.append(("ctrl", request_type, request, value, index, length))
        if self.kernel_driver.get(index) and self.busy_when_bound:
            raise usb.core.USBError("Resource busy", errno=errno.EBUSY)
        return self._descriptors[index][:length]

    def is_kernel_driver_active(self, n):
        return self.kernel_driver[n]

    def detach_kernel_driver(self, n):
        self.log.append(("detach", n))
        self.kernel_driver[n] = False

    def attach_kernel_driver(self, n):
        self.log.append(("attach", n))
        self.kernel_driver[n] = True

    def read(self, endpoint, size, timeout):
        self.log.append(("read", endpoint, size, timeout))
        item = self.reports.pop(0)
        if isinstance(item, Exception):
            raise item
        return bytearray(item)


@pytest.fixture(autouse=True)
def fake_usb_util(monkeypatch):
    monkeypatch.setattr(usb.util, "claim_interface", lambda d, n: d.log.append(("claim", n)))
    monkeypatch.setattr(usb.util, "release_interface", lambda d, n: d.log.append(("release", n)))
    monkeypatch.setattr(usb.util, "dispose_resources", lambda d: d.log.append(("dispose",)))
    monkeypatch.setattr(usb.util, "get_string", lambda d, i: "QEMU USB Tablet")


def tablet(reports=()):
    return FakeDevice({0: QEMU_TABLET}, [FakeInterface(0, TABLET_HID_DESCRIPTOR)], reports)


def test_report_descriptor_length_from_the_hid_descriptor():
    assert report_descriptor_length(TABLET_HID_DESCRIPTOR) == 74
    # a HID descriptor listing a physical descriptor (0x23) first, then the report one
    assert report_descriptor_length(bytes([12, 0x21, 0x11, 0x01, 0, 2, 0x23, 9, 0, 0x22, 0x3F, 0])) == 0x3F
    assert report_descriptor_length(b"") is None


def test_finds_the_tablet_and_reads_its_descriptor_with_a_standard_request():
    dev = tablet()
    found, notes = find_tablets([dev], NOSYS)
    assert len(found) == 1 and notes == []
    assert dev.log == [("ctrl", 0x81, 0x06, 0x2200, 0, 74)]
    assert (found[0].endpoint, found[0].packet_size, found[0].product) == (0x81, 8, "QEMU USB Tablet")
    assert "X 0..32767" in found[0].describe()


def test_same_vendor_and_product_but_mouse_or_keyboard_is_passed_over():
    mouse = FakeDevice({0: QEMU_MOUSE}, [FakeInterface(0, bytes([9, 0x21, 1, 0, 0, 1, 0x22, 52, 0]))])
    kbd = FakeDevice({0: QEMU_KEYBOARD}, [FakeInterface(0, bytes([9, 0x21, 0x11, 1, 0, 1, 0x22, 0x3F, 0]))])
    found, notes = find_tablets([mouse, kbd], NOSYS)
    assert found == [] and len(notes) == 2 and all("not an absolute pointer" in n for n in notes)
    with pytest.raises(NoDevice, match="no USB absolute pointer"):
        open_tablet([mouse, kbd], NOSYS)


def test_non_hid_interfaces_are_ignored():
    storage = FakeDevice({}, [FakeInterface(0, b"", cls=8)])
    assert find_tablets([storage], NOSYS) == ([], [])


def test_open_detaches_read_decodes_close_gives_back():
    dev = tablet([bytes.fromhex("006400c80000"), usb.core.USBTimeoutError("timeout"),
                  bytes.fromhex("01ff7fff7f01")])
    t = open_tablet([dev], NOSYS)
    assert t.info.name == DEVICE_NAME and t.info.x_range == (0, 0x7FFF) and not t.info.hwheel
    assert (t.info.vendor, t.info.product) == (0x0627, 0x0001)
    assert t.read_events() == [PointerEvent(Buttons.NONE, 100, 200)]
    assert t.read_events() == []                                   # a NAK: no event, no error
    assert t.read_events() == [PointerEvent(Buttons.LEFT, 0x7FFF, 0x7FFF, wheel=1)]
    t.close()
    steps = [e for e in dev.log if e[0] != "ctrl"]
    assert steps == [("detach", 0), ("claim", 0), ("read", 0x81, 8, 250), ("read", 0x81, 8, 250),
                     ("read", 0x81, 8, 250), ("release", 0), ("attach", 0), ("dispose",)]


def test_not_reattached_if_no_kernel_driver_was_bound():
    dev = tablet()
    dev.kernel_driver[0] = False
    t = open_tablet([dev], NOSYS)
    t.close()
    assert ("detach", 0) not in dev.log and ("attach", 0) not in dev.log


def test_device_gone_is_no_device():
    dev = tablet([usb.core.USBError("No such device", error_code=-4, errno=errno.ENODEV)])
    t = UsbTablet(find_tablets([dev], NOSYS)[0][0]).open()
    with pytest.raises(NoDevice, match="went away"):
        t.read_events()


def test_with_usbhid_bound_the_descriptor_comes_from_sysfs(tmp_path):
    # usbfs answers EBUSY to interface requests while usbhid owns the interface; the kernel's
    # copy is in sysfs under <bus>-<ports>:<config>.<interface>/<hid device>/report_descriptor.
    dev = tablet()
    dev.busy_when_bound = True
    hid_dir = tmp_path / "bus" / "usb" / "devices" / "1-1:1.0" / "0003:0627:0001.0001"
    hid_dir.mkdir(parents=True)
    (hid_dir / "report_descriptor").write_bytes(QEMU_TABLET)
    found, notes = find_tablets([dev], str(tmp_path))
    assert len(found) == 1 and notes == [] and dev.log == []
    found, notes = find_tablets([dev], NOSYS)
    assert found == [] and "Resource busy" in notes[0]
