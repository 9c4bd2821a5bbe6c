"""Tests of svga.model.transport and svga.model.regfile: the model as the driver sees it
through BAR0 ports, FIFO memory and display_image(). Expected values are written down from
svga_reg.h and docs/qemu-7.2.md, not taken from the model's own tables."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import Guest, rgb_of

from svga.errors import DeviceError, ModelError, SVGAError
from svga.model import ModelTransport
from svga.registers import FifoReg, Reg, RegisterFile

ID_0, ID_1, ID_2 = 0x90000000, 0x90000001, 0x90000002


def regs(profile: str = "vmware", **kw: object) -> tuple[ModelTransport, RegisterFile]:
    t = ModelTransport(profile, **kw)  # type: ignore[arg-type]
    return t, RegisterFile(t)


# -- identity and construction ------------------------------------------------------------

def test_kind_description_and_memories() -> None:
    t = ModelTransport("qemu")
    assert t.kind == "model"
    assert "profile qemu" in t.description and "QEMU 7.2" in t.description
    assert t.vram.size == 16 << 20 and t.fifo.size == 64 * 1024
    assert t.vram.array().dtype == np.uint8 and t.fifo.array().dtype == np.uint8
    v = ModelTransport()
    assert "profile vmware" in v.description
    assert v.fifo.size == 256 * 1024


def test_model_error_is_a_device_error() -> None:
    assert issubclass(ModelError, DeviceError) and issubclass(ModelError, SVGAError)


@pytest.mark.parametrize("kw", [{"profile": "bochs"}, {"vram_size": 1000}, {"vram_size": (16 << 20) + 2},
                                {"fifo_size": 4096}, {"fifo_size": 65537}])
def test_bad_construction_is_a_model_error(kw: dict[str, object]) -> None:
    with pytest.raises(ModelError):
        ModelTransport(**kw)  # type: ignore[arg-type]


def test_sizes_follow_the_constructor() -> None:
    t, r = regs("vmware", vram_size=8 << 20, fifo_size=128 * 1024)
    assert r[Reg.VRAM_SIZE] == 8 << 20 and r[Reg.FB_SIZE] == 8 << 20
    assert r[Reg.MEM_SIZE] == 128 * 1024 and t.fifo.size == 128 * 1024


# -- ports ------------------------------------------------------------------------------------

def test_ports_qemu() -> None:
    t = ModelTransport("qemu")
    t.port_write(0, int(Reg.MAX_WIDTH))
    assert t.port_read(0) == Reg.MAX_WIDTH  # the index port reads back the index
    assert t.port_read(1) == 2368
    assert t.port_read(2) == 0xCAFE
    assert t.port_read(8) == 0xFFFFFFFF  # no IRQSTATUS port
    assert t.port_read(3) == 0xFFFFFFFF


def test_ports_vmware_have_no_bios_port() -> None:
    t = ModelTransport("vmware")
    assert t.port_read(2) == 0xFFFFFFFF
    assert t.port_read(8) == 0xFFFFFFFF  # no SVGA_CAP_IRQMASK, so no IRQSTATUS port


# -- ID negotiation ----------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_id_negotiation(profile: str) -> None:
    _, r = regs(profile)
    assert r[Reg.ID] == ID_2
    for value in (ID_0, ID_1, ID_2):
        r[Reg.ID] = value
        assert r[Reg.ID] == value
    r[Reg.ID] = 0x90000003  # unsupported: ignored, old value kept
    assert r[Reg.ID] == ID_2
    r[Reg.ID] = 12345
    assert r[Reg.ID] == ID_2


# -- capabilities and fixed values --------------------------------------------------------------

def test_capabilities_per_profile() -> None:
    # svga_reg.h bits: RECT_FILL 0x1, RECT_COPY 0x2, CURSOR 0x20, CURSOR_BYPASS 0x40,
    # CURSOR_BYPASS_2 0x80, ALPHA_CURSOR 0x200, EXTENDED_FIFO 0x8000, PITCHLOCK 0x20000.
    assert regs("qemu")[1][Reg.CAPABILITIES] == 0x3
    assert regs("qemu", cursor=True)[1][Reg.CAPABILITIES] == 0xE3
    assert regs("qemu-cursor")[1][Reg.CAPABILITIES] == 0xE3
    assert regs("vmware")[1][Reg.CAPABILITIES] == (0x2 | 0x20 | 0x40 | 0x80 | 0x200 | 0x8000 | 0x20000
                                                   | 0x100000 | 0x400000 | 0x800000)


def test_qemu_fixed_registers() -> None:
    _, r = regs("qemu")
    assert (r[Reg.MAX_WIDTH], r[Reg.MAX_HEIGHT]) == (2368, 1770)
    assert (r[Reg.DEPTH], r[Reg.BITS_PER_PIXEL], r[Reg.HOST_BITS_PER_PIXEL]) == (24, 32, 32)
    assert (r[Reg.RED_MASK], r[Reg.GREEN_MASK], r[Reg.BLUE_MASK]) == (0xFF0000, 0xFF00, 0xFF)
    assert r[Reg.PSEUDOCOLOR] == 0 and r[Reg.FB_OFFSET] == 0
    assert r[Reg.VRAM_SIZE] == r[Reg.FB_SIZE] == 16 << 20
    assert r[Reg.MEM_SIZE] == 0x10000
    assert r[Reg.MEM_REGS] == 0 and r[Reg.NUM_DISPLAYS] == 0 and r[Reg.PITCHLOCK] == 0
    assert r[Reg.SCRATCH_SIZE] == 0x8000
    assert (r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BYTES_PER_LINE]) == (640, 480, 2560)


def test_vmware_fixed_registers_and_fifo_caps_in_memory() -> None:
    t, r = regs("vmware")
    assert r[Reg.MEM_REGS] == 291
    assert r[Reg.MEM_SIZE] == 256 * 1024
    # FIFO caps FENCE 1<<0, CURSOR_BYPASS_3 1<<4, ESCAPE 1<<5, RESERVE 1<<6,
    # SCREEN_OBJECT 1<<7, GMR2 1<<8, SCREEN_OBJECT_2 1<<9: there before the driver starts.
    assert t.fifo.read32(FifoReg.CAPABILITIES * 4) == 0x1 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200
    assert t.fifo.read32(FifoReg.FLAGS * 4) == 0


def test_vmware_accelfront_option() -> None:
    t = ModelTransport("vmware", accelfront=True)
    assert t.fifo.read32(FifoReg.CAPABILITIES * 4) & 0x2


def test_qemu_fifo_words_beyond_four_are_plain_memory() -> None:
    t = ModelTransport("qemu")
    assert t.fifo.read32(FifoReg.CAPABILITIES * 4) == 0
    g = Guest(t).setup(fifo_min=1164)  # room for the registers, but QEMU has none
    for reg in (FifoReg.CAPABILITIES, FifoReg.FENCE, FifoReg.BUSY):
        t.fifo.write32(reg * 4, 0xAAAA0000 + reg)
    g.send("RECT_FILL", color=1, x=0, y=0, width=1, height=1)
    g.sync()
    assert g.stop == g.next_cmd
    for reg in (FifoReg.CAPABILITIES, FifoReg.FENCE, FifoReg.BUSY):
        assert t.fifo.read32(reg * 4) == 0xAAAA0000 + reg  # plain memory: never written


def test_fifo_caps_reasserted_at_config_done() -> None:
    t, r = regs("vmware")
    t.fifo.write(0, bytes(4096))  # a driver that clears FIFO memory first
    g = Guest(t).setup()  # MIN = 291 * 4: the extended FIFO is on
    assert g.fifo_min == 1164
    assert t.fifo.read32(FifoReg.CAPABILITIES * 4) == 0x3F1


def test_fifo_caps_not_written_into_a_legacy_ring() -> None:
    t = ModelTransport("vmware")
    t.fifo.write(0, bytes(4096))
    Guest(t).setup(fifo_min=16)  # word 4 is now command space
    assert t.fifo.read32(FifoReg.CAPABILITIES * 4) == 0


# -- mode registers -----------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_mode_registers(profile: str) -> None:
    _, r = regs(profile)
    r[Reg.WIDTH] = 1000
    r[Reg.HEIGHT] = 700
    assert (r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BYTES_PER_LINE]) == (1000, 700, 4000)
    r[Reg.BITS_PER_PIXEL] = 32  # accepted, changes nothing
    assert r[Reg.BITS_PER_PIXEL] == 32


def test_qemu_ignores_modes_above_max() -> None:
    _, r = regs("qemu")
    r[Reg.WIDTH] = 800
    r[Reg.WIDTH] = 3000
    r[Reg.HEIGHT] = 1771
    assert (r[Reg.WIDTH], r[Reg.HEIGHT]) == (800, 480)
    r[Reg.WIDTH] = 2368
    r[Reg.HEIGHT] = 1770
    assert (r[Reg.WIDTH], r[Reg.HEIGHT]) == (2368, 1770)


def test_vmware_refuses_modes_above_max() -> None:
    _, r = regs("vmware")
    with pytest.raises(ModelError, match="WIDTH 3000 is above MAX_WIDTH 2360"):
        r[Reg.WIDTH] = 3000
    assert r[Reg.WIDTH] == 640


def test_vmware_refuses_a_mode_larger_than_vram() -> None:
    _, r = regs("vmware", vram_size=4 << 20)
    r[Reg.WIDTH] = 1024
    r[Reg.HEIGHT] = 768  # 3 MiB: fits
    with pytest.raises(ModelError, match="more than the 4194304-byte VRAM"):
        r[Reg.HEIGHT] = 1200
    assert r[Reg.HEIGHT] == 768


def test_qemu_bits_per_pixel_clears_config_done() -> None:
    t = ModelTransport("qemu")
    g = Guest(t).setup()
    r = g.regs
    assert r[Reg.CONFIG_DONE] == 1
    r[Reg.BITS_PER_PIXEL] = 16
    assert r[Reg.CONFIG_DONE] == 0 and r[Reg.BITS_PER_PIXEL] == 32
    r[Reg.BITS_PER_PIXEL] = 32
    assert r[Reg.CONFIG_DONE] == 0  # not restored
    g.send("RECT_FILL", color=0x123456, x=0, y=0, width=1, height=1)
    g.sync()
    assert g.stop != g.next_cmd  # the FIFO is stopped
    r[Reg.CONFIG_DONE] = 1
    g.sync()
    assert g.stop == g.next_cmd


@pytest.mark.parametrize("bpp", [8, 16])
def test_vmware_ignores_other_bits_per_pixel(bpp: int) -> None:
    # svga_interface.txt: without SVGA_CAP_8BIT_EMULATION BITS_PER_PIXEL is read-only, and
    # values other than 8 and HOST_BITS_PER_PIXEL are ignored (the kit's screen-cursor writes 8).
    _, r = regs("vmware")
    r[Reg.CONFIG_DONE] = 1
    r[Reg.BITS_PER_PIXEL] = bpp
    assert (r[Reg.BITS_PER_PIXEL], r[Reg.CONFIG_DONE]) == (32, 1)


def test_enable_storage() -> None:
    _, q = regs("qemu")
    q[Reg.ENABLE] = 2
    assert q[Reg.ENABLE] == 1
    _, v = regs("vmware")
    v[Reg.ENABLE] = 2
    assert v[Reg.ENABLE] == 2


def test_pitchlock() -> None:
    _, q = regs("qemu")
    q[Reg.PITCHLOCK] = 8192
    assert q[Reg.PITCHLOCK] == 0 and q[Reg.BYTES_PER_LINE] == 2560
    t, v = regs("vmware")
    v[Reg.WIDTH] = 800
    v[Reg.HEIGHT] = 600
    v[Reg.PITCHLOCK] = 4096
    assert v[Reg.PITCHLOCK] == 4096 and v[Reg.BYTES_PER_LINE] == 4096
    with pytest.raises(ModelError):
        v[Reg.PITCHLOCK] = 4098
    # The display honours the locked pitch: row 1 starts at byte 4096.
    t.vram.write32(4096 + 8, 0x00ABCDEF)
    v[Reg.ENABLE] = 1
    assert tuple(t.display_image()[1, 2]) == (0xAB, 0xCD, 0xEF)


# -- other registers -----------------------------------------------------------------------------

def test_scratch_palette_and_unknown_registers() -> None:
    _, q = regs("qemu")
    q[1792] = 0xDEADBEEF
    q[1792 + 0x7FFF] = 7
    assert q[1792] == 0xDEADBEEF and q[1792 + 0x7FFF] == 7
    q[1792 + 0x8000] = 9
    assert q[1792 + 0x8000] == 0
    q[1024] = 0xFF
    assert q[1024] == 0  # QEMU: palette reads 0
    q[40] = 5
    assert q[40] == 0 and q[Reg.IRQMASK] == 0
    _, v = regs("vmware")
    assert v[Reg.SCRATCH_SIZE] == 64
    v[1024 + 3] = 0x80
    assert v[1024 + 3] == 0x80
    v[Reg.CAPABILITIES] = 0  # read-only
    assert v[Reg.CAPABILITIES] != 0


def test_guest_id_and_cursor_registers_are_stored() -> None:
    _, r = regs("qemu")
    r[Reg.GUEST_ID] = 0x5007
    r[Reg.CURSOR_ID] = 3
    r[Reg.CURSOR_X] = 100
    r[Reg.CURSOR_Y] = 200
    assert (r[Reg.GUEST_ID], r[Reg.CURSOR_ID], r[Reg.CURSOR_X], r[Reg.CURSOR_Y]) == (0x5007, 3, 100, 200)
    r[Reg.CURSOR_ON] = 2
    assert r[Reg.CURSOR_ON] == 0
    r[Reg.CURSOR_ON] = 1
    assert r[Reg.CURSOR_ON] == 1
    r[Reg.CURSOR_ON] = 3
    assert r[Reg.CURSOR_ON] == 1


def test_cursor_moves_only_on_cursor_on() -> None:
    t, r = regs("qemu", cursor=True)
    r[Reg.CURSOR_X] = 10
    r[Reg.CURSOR_Y] = 20
    assert not t.cursor_position.visible
    r[Reg.CURSOR_ON] = 1
    pos = t.cursor_position
    assert (pos.x, pos.y, pos.visible) == (10, 20, True)
    r[Reg.CURSOR_X] = 50  # stored, but the cursor stays
    assert t.cursor_position.x == 10
    r[Reg.CURSOR_ON] = 2  # REMOVE_FROM_FB: does not reach the display
    assert t.cursor_position.x == 10 and t.cursor_position.visible
    r[Reg.CURSOR_ON] = 1
    assert t.cursor_position.x == 50
    r[Reg.CURSOR_ON] = 0
    assert not t.cursor_position.visible


def test_sync_and_busy_on_qemu_read_zero_and_busy_runs_nothing() -> None:
    t = ModelTransport("qemu")
    g = Guest(t).setup()
    g.send("RECT_FILL", color=0xFF, x=0, y=0, width=1, height=1)
    assert g.regs[Reg.BUSY] == 0
    assert g.regs[Reg.SYNC] == 0
    assert g.stop != g.next_cmd  # the BUSY read processed nothing


def test_busy_on_vmware_processes_the_fifo() -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup()
    g.send("RECT_COPY", src_x=0, src_y=0, dest_x=1, dest_y=0, width=1, height=1)
    t.vram.write32(0, 0xFF)  # before the run: the copy reads it
    assert g.regs[Reg.BUSY] == 0
    assert g.stop == g.next_cmd
    assert g.fb()[0, 1] == 0xFF


def test_reset_keeps_mode_and_scratch() -> None:
    t = ModelTransport("qemu")
    g = Guest(t).setup(1024, 768)
    g.regs[1792] = 77
    g.regs[Reg.ID] = ID_1
    t.reset()
    r = g.regs
    assert (r[Reg.ENABLE], r[Reg.CONFIG_DONE], r[Reg.ID]) == (0, 0, ID_2)
    assert (r[Reg.WIDTH], r[Reg.HEIGHT], r[1792]) == (1024, 768, 77)
    assert t.fifo.read32(0) == g.fifo_min  # FIFO RAM untouched


# -- the display -------------------------------------------------------------------------------------

def test_display_black_before_enable_of_current_size() -> None:
    t, r = regs("vmware")
    t.vram.write(0, bytes([0xFF]) * 4096)
    img = t.display_image()
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8 and not img.any()
    r[Reg.WIDTH] = 800
    r[Reg.HEIGHT] = 600
    assert t.display_image().shape == (600, 800, 3)


@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_display_shows_vram(profile: str) -> None:
    t = ModelTransport(profile)
    g = Guest(t).setup(320, 200)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 1 << 32, size=(200, 320), dtype=np.uint64).astype(np.uint32)
    g.write_fb(pixels)
    assert np.array_equal(t.display_image(), rgb_of(pixels & 0xFFFFFF))


def test_display_needs_config_done_on_qemu_only() -> None:
    for profile, shown in (("qemu", False), ("vmware", True)):
        t, r = regs(profile)
        t.vram.write32(0, 0x00FFFFFF)
        r[Reg.ENABLE] = 1
        assert bool(t.display_image()[0, 0].any()) is shown, profile


def test_display_hidden_on_vmware_enable_hide() -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup(64, 64)
    t.vram.write32(0, 0x00FFFFFF)
    g.regs[Reg.ENABLE] = 2
    assert not t.display_image().any()


def test_display_of_a_mode_larger_than_vram_on_qemu_is_partial_not_an_overrun() -> None:
    t = ModelTransport("qemu", vram_size=2 << 20)
    g = Guest(t).setup(1024, 768)  # QEMU does not check the mode against VRAM
    t.vram.write(0, bytes([0x11]) * (2 << 20))
    img = t.display_image()
    rows = (2 << 20) // 4096
    assert img.shape == (768, 1024, 3)
    assert (img[:rows] == 0x11).all() and not img[rows:].any()
    assert g.regs[Reg.WIDTH] == 1024


def test_display_with_register_cursor() -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup(64, 64)
    # A 32x2 cursor, 1-bpp masks: AND 0 everywhere, XOR 1 everywhere -> white, opaque.
    g.send("DEFINE_CURSOR", id=0, hotspot_x=1, hotspot_y=1, width=32, height=2, and_mask_depth=1,
           xor_mask_depth=1, and_mask=bytes(8), xor_mask=b"\xff" * 8)
    g.sync()
    g.regs[Reg.CURSOR_X] = 11
    g.regs[Reg.CURSOR_Y] = 21
    g.regs[Reg.CURSOR_ON] = 1
    img = t.display_image(with_cursor=True)
    white = np.argwhere(img.all(axis=2))
    assert white[:, 0].min() == 20 and white[:, 0].max() == 21
    assert white[:, 1].min() == 10 and white[:, 1].max() == 41
    assert len(white) == 64
    assert not t.display_image().any()  # without the cursor: the framebuffer only


# -- QEMU's placeholder surface (quirk placeholder-shows-only-updates; seen on QEMU 7.2 by
# tests/test_differential.py) ------------------------------------------------------------------------

def _placeholder_guest() -> tuple[Guest, np.ndarray]:
    t = ModelTransport("qemu")
    g = Guest(t).setup(640, 480)  # 640x480: the first refresh keeps QEMU's 640x480 placeholder
    pixels = (np.arange(640 * 480, dtype=np.uint32).reshape(480, 640) * 2654435761) & 0xFFFFFF
    g.write_fb(pixels)
    return g, pixels


def test_placeholder_shows_only_flushed_update_rectangles() -> None:
    g, pixels = _placeholder_guest()
    g.send("UPDATE", x=0, y=0, width=640, height=480)
    assert not g.t.display_image().any()  # mode and enable writes since the last refresh: dropped
    assert not g.t.display_image().any()  # CPU drawing alone never shows
    g.send("UPDATE", x=10, y=20, width=30, height=40)
    g.send("RECT_FILL", color=0x123456, x=100, y=100, width=2, height=2)
    g.sync()
    img = g.t.display_image()
    want = np.zeros((480, 640), np.uint32)
    want[20:60, 10:40] = pixels[20:60, 10:40]
    want[100:102, 100:102] = 0x123456
    assert np.array_equal(img, rgb_of(want))


def test_placeholder_update_outside_copies_everything_and_queue_overflow() -> None:
    g, pixels = _placeholder_guest()
    g.t.display_image()
    for i in range(600):  # more than QEMU's 512 queued rectangles: copied early, none lost
        g.send("UPDATE", x=i, y=0, width=1, height=1)
    g.sync()
    want = np.zeros((480, 640), np.uint32)
    want[0, :600] = pixels[0, :600]
    assert np.array_equal(g.t.display_image(), rgb_of(want))
    g.send("UPDATE", x=600, y=0, width=41, height=1)  # one pixel past the edge: the whole surface
    assert np.array_equal(g.t.display_image(), rgb_of(pixels))


def test_placeholder_replaced_by_another_mode_for_good() -> None:
    g, pixels = _placeholder_guest()
    g.t.display_image()
    g.regs[Reg.WIDTH] = 800
    g.t.display_image()  # a refresh in 800x600: a surface made from VRAM
    g.regs[Reg.WIDTH] = 640
    g.write_fb(pixels)
    assert np.array_equal(g.t.display_image(), rgb_of(pixels))  # VRAM, no UPDATE needed


def test_no_placeholder_on_vmware() -> None:
    t = ModelTransport("vmware")
    g = Guest(t).setup(640, 480)
    g.write_fb(np.full((480, 640), 0x00FF00, np.uint32))
    assert (t.display_image()[..., 1] == 0xFF).all()
