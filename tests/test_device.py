"""svga/device.py: the user-facing API on the software model, in both profiles. Expected
pixels come from plain numpy computations written here, not from the driver."""

import numpy as np
import pytest

from svga.commands import Cmd
from svga.device import Device, open_device
from svga.errors import SVGAError
from svga.model import ModelTransport
from svga.registers import Cap, Reg

PROFILES = ["qemu", "vmware"]


def rgb(img):
    a = np.asarray(img).astype(np.uint32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


@pytest.fixture(params=PROFILES)
def dev(request):
    d = Device(ModelTransport(profile=request.param))
    yield d
    d.close()


def test_negotiates_version_2_and_reads_facts(dev):
    assert dev.version == 2
    assert dev.regs.read(Reg.ID) == 0x90000002
    assert dev.vram_size == 16 << 20
    assert dev.max_width >= 1024 and dev.max_height >= 768
    info = dev.info()
    assert info["version"] == 2 and info["transport"] == "model"
    assert "RECT_COPY" in info["capability_names"]


def test_profiles_differ_as_the_devices_do():
    q = Device(ModelTransport(profile="qemu"))
    v = Device(ModelTransport(profile="vmware"))
    assert q.caps == Cap.RECT_FILL | Cap.RECT_COPY  # QEMU 7.2, -display none: 0x3
    assert q.mem_size == 65536
    assert v.caps & Cap.EXTENDED_FIFO and v.caps & Cap.ALPHA_CURSOR
    assert q.info()["fifo_capability_names"] == []
    assert "FENCE" in v.info()["fifo_capability_names"]


def test_set_mode_and_read_back(dev):
    mode = dev.set_mode(1024, 768)
    assert (mode.width, mode.height, mode.bpp) == (1024, 768, 32)
    assert mode.pitch == 4096
    assert dev.framebuffer.shape == (768, 1024)
    assert dev.regs.read(Reg.WIDTH) == 1024


def test_bad_modes_are_refused(dev):
    with pytest.raises(SVGAError, match="outside the device"):
        dev.set_mode(dev.max_width + 1, 100)
    with pytest.raises(SVGAError, match="only 32 bpp"):
        dev.set_mode(640, 480, 16)


def test_cpu_drawing_and_update(dev):
    dev.set_mode(320, 200)
    yy, xx = np.mgrid[0:200, 0:320].astype(np.uint32)
    picture = ((xx & 0xFF) << 16) | (yy << 8) | 0x42
    dev.framebuffer[:] = picture
    dev.update()
    assert (rgb(dev.screenshot(cursor=False)) == picture).all()
    assert (dev.read_vram() == picture).all()


@pytest.mark.parametrize("accel", ["auto", "on", "off"])
def test_fill(dev, accel):
    dev.accel = accel
    dev.set_mode(100, 80)
    dev.screenshot()  # a refresh: on QEMU device fills use the surface of the last refresh
    dev.fill(0x112233, 0, 0, 100, 80)
    dev.fill(0xFF0000, 10, 20, 30, 5)
    dev.fill(0x00FF00, 99, 79, 1, 1)  # the last pixel
    dev.sync()
    want = np.full((80, 100), 0x112233, np.uint32)
    want[20:25, 10:40] = 0xFF0000
    want[79, 99] = 0x00FF00
    assert (dev.read_vram() == want).all()
    assert (rgb(dev.screenshot(cursor=False)) == want).all()


@pytest.mark.parametrize("accel", ["on", "off"])
@pytest.mark.parametrize("shift", [(5, 3), (-5, -3), (7, 0), (0, -7)])
def test_overlapping_copy(dev, accel, shift):
    dev.accel = accel
    dev.set_mode(64, 48)
    dev.screenshot()  # a refresh (see test_fill)
    yy, xx = np.mgrid[0:48, 0:64].astype(np.uint32)
    picture = (xx * 3) << 16 | (yy * 5) << 8 | (xx ^ yy)
    dev.framebuffer[:] = picture
    dev.update()
    dx, dy = shift
    sx, sy, w, h = 20, 15, 20, 15
    dev.copy(sx, sy, sx + dx, sy + dy, w, h)
    dev.sync()
    want = picture.copy()
    want[sy + dy: sy + dy + h, sx + dx: sx + dx + w] = picture[sy: sy + h, sx: sx + w]
    assert (dev.read_vram() == want).all()


def test_accel_auto_uses_the_device_only_where_it_is_right():
    v = Device(ModelTransport(profile="vmware"))
    q = Device(ModelTransport(profile="qemu"))
    for d in (v, q):
        d.set_mode(64, 48)
    # A current VMware host reports no RECT_FILL (a deprecated bit, svga_reg.h): fills are
    # CPU + UPDATE there; RECT_COPY is offered and used.
    assert not v._use_accel(Cmd.RECT_FILL) and v._use_accel(Cmd.RECT_COPY)
    assert not q._use_accel(Cmd.RECT_FILL)  # QEMU's stale display surface: CPU + UPDATE
    q.accel = "on"
    assert q._use_accel(Cmd.RECT_FILL)


def test_rectangles_outside_the_mode_are_refused(dev):
    dev.set_mode(100, 80)
    with pytest.raises(SVGAError, match="fill rectangle 95,0 10x1 is outside the 100x80 mode"):
        dev.fill(0, 95, 0, 10, 1)
    with pytest.raises(SVGAError, match="copy destination"):
        dev.copy(0, 0, 99, 0, 2, 2)
    with pytest.raises(SVGAError, match="update"):
        dev.update(0, 0, 101, 1)
    with pytest.raises(SVGAError, match="no mode set"):
        Device(ModelTransport()).fill(0, 0, 0, 1, 1)


def arrow(w, h):
    img = np.zeros((h, w, 4), np.uint8)
    for y in range(h):
        img[y, : min(w, y + 1)] = (200, 100, 50, 255)
    return img


@pytest.mark.parametrize("profile,cursor", [("vmware", False), ("qemu", True)])
def test_hardware_cursor_shows_in_the_display(profile, cursor):
    kwargs = {"cursor": True} if cursor else {}
    dev = Device(ModelTransport(profile=profile, **kwargs))
    assert dev.has_cursor
    dev.set_mode(200, 100)
    dev.fill(0x000000, 0, 0, 200, 100)
    img = arrow(32, 16)
    dev.define_cursor(img, hotspot=(0, 0))
    dev.move_cursor(50, 40)
    shot = rgb(dev.screenshot(cursor=True))
    opaque = img[..., 3] >= 128
    region = shot[40:56, 50:82]
    assert (region[opaque] == 0xC86432).all()
    assert (region[~opaque] == 0).all()
    assert (shot[:40] == 0).all()
    # Without the cursor the screen is just the framebuffer; hiding it removes it too.
    assert (rgb(dev.screenshot(cursor=False)) == 0).all()
    dev.move_cursor(50, 40, visible=False)
    assert (rgb(dev.screenshot(cursor=True)) == 0).all()


def test_no_cursor_capability_is_a_clear_error():
    dev = Device(ModelTransport(profile="qemu"))
    dev.set_mode(64, 48)
    assert not dev.has_cursor
    with pytest.raises(SVGAError, match="no hardware cursor"):
        dev.define_cursor(arrow(8, 8))
    with pytest.raises(SVGAError, match="no hardware cursor"):
        dev.move_cursor(1, 1)


def test_cursor_argument_checks():
    dev = Device(ModelTransport(profile="vmware"))
    dev.set_mode(64, 48)
    with pytest.raises(SVGAError, match="RGBA"):
        dev.define_cursor(np.zeros((4, 4, 3), np.uint8))
    # Alpha cursors on a kit device: up to 256x256 (the kit's screen-cursor defines 256x256).
    with pytest.raises(SVGAError, match="outside 1x1..256x256"):
        dev.define_cursor(np.zeros((257, 4, 4), np.uint8))
    q = Device(ModelTransport(profile="qemu-cursor"))
    q.set_mode(64, 48)
    with pytest.raises(SVGAError, match="outside 1x1..64x64"):  # QEMU's limit for 32 bpp masks
        q.define_cursor(np.zeros((65, 4, 4), np.uint8))
    with pytest.raises(SVGAError, match="hotspot"):
        dev.define_cursor(np.zeros((4, 4, 4), np.uint8), hotspot=(4, 0))


def test_context_manager_drains_and_hides_the_cursor():
    t = ModelTransport(profile="vmware")
    with Device(t) as dev:
        dev.set_mode(64, 48)
        dev.define_cursor(arrow(8, 8))
        dev.move_cursor(3, 3)
        dev.fill(0xABCDEF, 0, 0, 64, 48)
    # after close: FIFO drained, cursor hidden, mode still up
    assert t.fifo.read32(8) == t.fifo.read32(12)
    assert (rgb(t.display_image(with_cursor=True)) == 0xABCDEF).all()


def test_adopt_mode_of_an_earlier_program():
    t = ModelTransport(profile="qemu")
    d1 = Device(t)
    d1.set_mode(80, 60)
    d1.fill(0x00FF00, 0, 0, 80, 60)
    d1.sync()
    d2 = Device(t)
    assert d2.adopt_mode().width == 80
    assert (rgb(d2.screenshot()) == 0x00FF00).all()


def test_open_device_kinds():
    with open_device("model", profile="qemu") as d:
        assert d.transport.kind == "model"
    with open_device("auto", sysfs_root="/nonexistent") as d:  # no PCI device: the model
        assert d.transport.kind == "model"
    with pytest.raises(SVGAError, match="unknown device"):
        open_device("floppy")
    with pytest.raises(SVGAError, match="accel"):
        open_device("model", accel="sometimes")
