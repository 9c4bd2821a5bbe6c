"""Tests of the QEMU quirk table (svga.facts.qemu) and the profiles (svga.facts.profiles):
the table is complete and documented, each row the model carries out by a switch really
changes what the model does (checked by driving it, with and without the row), and the
profiles' data and command availability match svga_reg.h / docs/qemu-7.2.md."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MappingProxyType

import numpy as np
import pytest

from svga.commands import Cmd, encode
from svga.device import Device
from svga.errors import ModelError
from svga.facts.profiles import QEMU, QEMU_CURSOR, VMWARE, Profile
from svga.facts.qemu import QEMU_7_2, Q, Via
from svga.model import PROFILES, ModelTransport, get_profile
from svga.registers import BIOS_PORT, PALETTE_BASE, Cap, FifoReg, Reg


def test_every_key_has_one_documented_row() -> None:
    assert set(QEMU_7_2) == set(Q)
    for key, row in QEMU_7_2.items():
        assert row.key is key
        assert row.qemu and row.model and row.source, key
        assert ".md" in row.source or "VV" in row.source, key


# -- each switch row, seen from outside the model ------------------------------------------------
# A scenario drives a model device through its registers, FIFO and display (the public API of
# ModelTransport and the driver) and returns what it saw. With the row, it must see what the
# row (and docs/qemu-7.2.md) says QEMU 7.2 does, written down here; without it, something else.
W, H = 64, 48
COLOUR = 0x123456
ERROR = "ModelError"


def device(profile: Profile) -> Device:
    """A driver on a model of ``profile`` in a W x H mode, FIFO running."""
    dev = Device(ModelTransport(profile))
    dev.set_mode(W, H)
    return dev


def shown(dev: Device) -> Device:
    """The screen all COLOUR, and refreshed once: QEMU's display surface is now the mode."""
    dev.framebuffer[:] = COLOUR
    dev.update()
    dev.transport.display_image()
    return dev


def outcome(action: Callable[[], object]) -> object:
    """What ``action`` returns, or ERROR if the model refused it with ModelError."""
    try:
        return action()
    except ModelError:
        return ERROR


def send(dev: Device, name: str, **fields: int | bytes) -> None:
    """Put one command in the FIFO without asking the device to run it."""
    dev.fifo.write_command(encode(name, **fields))


def sync_once(dev: Device) -> object:
    """One SYNC register write (not the driver's sync loop), ERROR if the model raised."""
    return outcome(lambda: dev.regs.write(Reg.SYNC, 1))


def rgb(colour: int) -> tuple[int, int, int]:
    return (colour >> 16) & 0xFF, (colour >> 8) & 0xFF, colour & 0xFF


def commands_run_by_one_sync(profile: Profile) -> object:
    dev = device(profile)
    for _ in range(1500):
        send(dev, "UPDATE", x=0, y=0, width=1, height=1)  # 20 bytes each
    start = dev.transport.fifo.read32(FifoReg.STOP * 4)
    sync_once(dev)
    return (dev.transport.fifo.read32(FifoReg.STOP * 4) - start) // 20


def busy_read_with_a_command_pending(profile: Profile) -> object:
    dev = device(profile)
    send(dev, "UPDATE", x=0, y=0, width=1, height=1)
    mem = dev.transport.fifo
    busy = dev.regs.read(Reg.BUSY)
    return busy, mem.read32(FifoReg.STOP * 4) == mem.read32(FifoReg.NEXT_CMD * 4)


def config_done_after_bpp_8_then_32(profile: Profile) -> object:
    dev = device(profile)

    def act() -> object:
        dev.regs.write(Reg.BITS_PER_PIXEL, 8)
        after_8 = dev.regs.read(Reg.CONFIG_DONE)
        dev.regs.write(Reg.BITS_PER_PIXEL, 32)
        return after_8, dev.regs.read(Reg.CONFIG_DONE)
    return outcome(act)


def mode_after_a_width_and_height_over_max(profile: Profile) -> object:
    dev = device(profile)
    width = outcome(lambda: dev.regs.write(Reg.WIDTH, 2369))
    height = outcome(lambda: dev.regs.write(Reg.HEIGHT, 1771))
    return width, height, dev.regs.read(Reg.WIDTH), dev.regs.read(Reg.HEIGHT)


def enable_after_writing_enable_hide(profile: Profile) -> object:
    dev = device(profile)
    dev.regs.write(Reg.ENABLE, 2)
    return dev.regs.read(Reg.ENABLE)


def screen_without_config_done(profile: Profile) -> object:
    dev = shown(device(profile))
    dev.regs.write(Reg.CONFIG_DONE, 0)
    return tuple(int(v) for v in dev.transport.display_image()[H // 2, W // 2])


def where_a_fill_lands_before_any_refresh(profile: Profile) -> object:
    # The mode is W x H but the display was never refreshed: QEMU's surface is still 640x480
    # with a stride of 2560 bytes, so a fill of (0, 1) lands 2560 bytes (10 mode rows) in.
    dev = device(profile)
    send(dev, "RECT_FILL", color=0xABCDEF, x=0, y=1, width=1, height=1)
    outcome(dev.sync)
    return [tuple(int(v) for v in p) for p in np.argwhere(dev.read_vram() == 0xABCDEF)]


def fill_drawn_by_a_refresh(profile: Profile) -> object:
    dev = shown(device(profile))
    send(dev, "RECT_FILL", color=0xABCDEF, x=3, y=4, width=1, height=1)
    outcome(dev.transport.display_image)
    return int(dev.read_vram()[4, 3]) == 0xABCDEF


def placeholder_before_and_after_an_update(profile: Profile) -> object:
    # The first mode is 640x480, QEMU's placeholder size: CPU drawing shows only once an
    # UPDATE has named it and a refresh has copied it.
    dev = Device(ModelTransport(profile))
    dev.set_mode(640, 480)
    dev.framebuffer[5, 5] = 0xFFFFFF
    before = tuple(int(v) for v in dev.transport.display_image()[5, 5])
    dev.update(5, 5, 1, 1)
    after = tuple(int(v) for v in dev.transport.display_image()[5, 5])
    return before, after


def mono_cursor_8_wide(profile: Profile) -> object:
    # An 8x2 1-bpp cursor, mask rows padded to 32 bits as svga_reg.h says: row 0 white, row 1
    # black, both opaque; the padding bytes are 0xff. QEMU steps the rows by one byte, so its
    # row 1 takes the AND mask's padding (transparent) and shows the screen.
    dev = shown(device(profile))
    send(dev, "DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=8, height=2, and_mask_depth=1,
         xor_mask_depth=1, and_mask=bytes([0x00, 0xFF, 0xFF, 0xFF] * 2),
         xor_mask=bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0xFF]))
    outcome(dev.sync)
    show_cursor(dev, 10, 10)
    img = dev.transport.display_image(with_cursor=True)
    return tuple(int(v) for v in img[10, 10]), tuple(int(v) for v in img[11, 10])


def show_cursor(dev: Device, x: int, y: int) -> None:
    """The legacy cursor registers; QEMU moves the cursor on the CURSOR_ON write."""
    for reg, value in ((Reg.CURSOR_ID, 0), (Reg.CURSOR_X, x), (Reg.CURSOR_Y, y), (Reg.CURSOR_ON, 1)):
        dev.regs.write(reg, value)


def update_outside_the_surface(profile: Profile) -> object:
    dev = shown(device(profile))
    send(dev, "UPDATE", x=W - 4, y=0, width=10, height=1)
    # The rectangle the model took: the whole surface with the quirk, else the part inside.
    return sync_once(dev), dev.transport.state.damage[-1] if dev.transport.state.damage else None


def cursor_defined_without_the_cursor_cap(profile: Profile) -> object:
    # -display none: no SVGA_CAP_CURSOR. A white 32x1 cursor all the same.
    dev = shown(device(profile))
    send(dev, "DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=32, height=1, and_mask_depth=1,
         xor_mask_depth=1, and_mask=bytes(4), xor_mask=b"\xff" * 4)
    refused = sync_once(dev)
    show_cursor(dev, 10, 10)
    return refused, tuple(int(v) for v in dev.transport.display_image(with_cursor=True)[10, 20])


def bios_port_read(profile: Profile) -> object:
    return ModelTransport(profile).port_read(BIOS_PORT)


def palette_read_back(profile: Profile) -> object:
    dev = device(profile)
    dev.regs.write(PALETTE_BASE + 3, 0x55)
    return dev.regs.read(PALETTE_BASE + 3)


def pitch_after_a_pitchlock_write(profile: Profile) -> object:
    dev = device(profile)
    dev.regs.write(Reg.PITCHLOCK, 512)
    return dev.regs.read(Reg.PITCHLOCK), dev.regs.read(Reg.BYTES_PER_LINE)


QEMU_PITCHLOCK = dataclasses.replace(QEMU, capabilities=QEMU.capabilities | Cap.PITCHLOCK)
"""QEMU with SVGA_CAP_PITCHLOCK: QEMU's own profile offers no pitch lock, so there the
missing capability alone makes PITCHLOCK ignored; the row's switch shows only where the
capability is offered."""

SCENARIOS: dict[Q, tuple[Callable[[Profile], object], object, Profile]] = {
    # key: (scenario, what QEMU 7.2 does (docs/qemu-7.2.md, the row's own text), base profile)
    Q.SYNC_CAP: (commands_run_by_one_sync, 1023, QEMU),
    Q.BUSY_READS_ZERO: (busy_read_with_a_command_pending, (0, False), QEMU),
    Q.BPP_CLEARS_CONFIG: (config_done_after_bpp_8_then_32, (0, 0), QEMU),
    Q.MODE_OVER_MAX_IGNORED: (mode_after_a_width_and_height_over_max, (None, None, W, H), QEMU),
    Q.ENABLE_BOOL: (enable_after_writing_enable_hide, 1, QEMU),
    Q.DISPLAY_NEEDS_CONFIG: (screen_without_config_done, (0, 0, 0), QEMU),
    Q.STALE_SURFACE: (where_a_fill_lands_before_any_refresh, [(10, 0)], QEMU),
    Q.REFRESH_RUNS_FIFO: (fill_drawn_by_a_refresh, True, QEMU),
    Q.PLACEHOLDER_UPDATES: (placeholder_before_and_after_an_update, ((0, 0, 0), (255, 255, 255)), QEMU),
    Q.CURSOR_DECODE: (mono_cursor_8_wide, ((255, 255, 255), rgb(COLOUR)), QEMU_CURSOR),
    # QEMU updates the whole surface; a kit device copies the part inside the mode.
    Q.UPDATE_BAD_RECT_FULL: (update_outside_the_surface, (None, (0, 0, W, H)), QEMU),
    Q.CURSOR_WITHOUT_CAP: (cursor_defined_without_the_cursor_cap, (ERROR, (255, 255, 255)), QEMU),
    Q.BIOS_PORT: (bios_port_read, 0xCAFE, QEMU),
    Q.PALETTE_READS_ZERO: (palette_read_back, 0, QEMU),
    Q.PITCHLOCK_IGNORED: (pitch_after_a_pitchlock_write, (0, W * 4), QEMU_PITCHLOCK),
}


def without(profile: Profile, key: Q) -> Profile:
    return dataclasses.replace(profile, name=f"{profile.name}-without-{key}",
                               quirks=MappingProxyType({k: v for k, v in profile.quirks.items() if k != key}))


def test_every_switch_row_has_a_behavioural_check() -> None:
    switches = {key for key, row in QEMU_7_2.items() if row.via is Via.SWITCH}
    assert set(SCENARIOS) == switches, "a switch row needs a scenario here (and only switch rows have one)"


@pytest.mark.parametrize("key", list(SCENARIOS), ids=str)
def test_switch_row_changes_what_the_model_does(key: Q) -> None:
    scenario, qemu_does, base = SCENARIOS[key]
    assert base.quirk(key) is not None
    assert scenario(base) == qemu_does, f"with {key}, the model does not do what the row says QEMU does"
    assert scenario(without(base, key)) != qemu_does, f"without {key}, the model still does it"


def test_quirk_values_from_the_reference() -> None:
    assert QEMU_7_2[Q.SYNC_CAP].value == 1023
    surface = QEMU_7_2[Q.STALE_SURFACE].value
    assert (surface.width, surface.height, surface.stride) == (640, 480, 2560)  # type: ignore[attr-defined]
    lim = QEMU_7_2[Q.CURSOR_LIMITS].value
    assert (lim.max_width, lim.max_height, lim.max_and_words, lim.max_xor_words) == (256, 256, 1024, 4096)  # type: ignore[attr-defined]
    assert QEMU_7_2[Q.BIOS_PORT].value == 0xCAFE
    assert not QEMU_7_2[Q.PARSER_DESYNC].imitated
    assert not QEMU_7_2[Q.MODE_640X480_PLACEHOLDER].imitated


def test_only_qemu_profiles_carry_quirks() -> None:
    assert QEMU.quirk(Q.SYNC_CAP) is not None and QEMU_CURSOR.quirk(Q.SYNC_CAP) is not None
    assert VMWARE.quirk(Q.SYNC_CAP) is None and not VMWARE.quirks
    assert QEMU.quirk(Q.PARSER_DESYNC) is None  # documented, not imitated
    assert QEMU.note(Q.PARSER_DESYNC) is not None


def test_profiles() -> None:
    assert set(PROFILES) == {"qemu", "qemu-cursor", "vmware"}
    assert get_profile("qemu", cursor=True) is QEMU_CURSOR
    assert get_profile("QEMU") is QEMU
    assert get_profile("qemu-cursor", cursor=False) is QEMU
    with pytest.raises(ModelError, match="unknown model profile"):
        get_profile("virtualbox")
    with pytest.raises(ModelError):
        get_profile("qemu", accelfront=True)


@pytest.mark.parametrize(("profile", "ext", "offered"), [
    (QEMU, False, {"UPDATE", "RECT_FILL", "RECT_COPY"}),
    (QEMU_CURSOR, False, {"UPDATE", "RECT_FILL", "RECT_COPY", "DEFINE_CURSOR"}),
    # The kit's header: RECT_FILL is a deprecated bit a current host never reports; GMR2
    # commands need SVGA_CAP_GMR2 only (no FIFO capability).
    (VMWARE, False, {"UPDATE", "RECT_COPY", "DEFINE_CURSOR", "DEFINE_ALPHA_CURSOR",
                     "UPDATE_VERBOSE", "DEFINE_GMR2", "REMAP_GMR2"}),
    (VMWARE, True, {"UPDATE", "RECT_COPY", "DEFINE_CURSOR", "DEFINE_ALPHA_CURSOR",
                    "UPDATE_VERBOSE", "FENCE", "ESCAPE", "DEFINE_SCREEN", "DESTROY_SCREEN", "DEFINE_GMRFB",
                    "BLIT_GMRFB_TO_SCREEN", "BLIT_SCREEN_TO_GMRFB", "ANNOTATION_FILL", "ANNOTATION_COPY",
                    "DEFINE_GMR2", "REMAP_GMR2"}),
])
def test_offered_commands(profile: object, ext: bool, offered: set[str]) -> None:
    got = {c.name for c in Cmd if c != Cmd.INVALID_CMD and profile.offers(int(c), ext)}  # type: ignore[attr-defined]
    assert got == offered


def test_extended_fifo_needs_room_for_the_mandatory_registers() -> None:
    # svga_reg.h: SVGA_FIFO_EXTENDED_MANDATORY_REGS = 3D_CAPS_LAST + 1 = 288 words.
    assert VMWARE.extended_active(288 * 4) and not VMWARE.extended_active(287 * 4)
    assert not QEMU.extended_active(291 * 4)
