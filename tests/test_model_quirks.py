"""Tests of svga.model.quirks and svga.model.profiles: the QEMU quirk table is complete and
documented, the switches it lists are really consulted by the model's code, and the
profiles' data and command availability match svga_reg.h / docs/qemu-7.2.md."""

from __future__ import annotations

import pathlib

import pytest

from svga.commands import Cmd
from svga.errors import ModelError
from svga.model import PROFILES, get_profile
from svga.model.profiles import AVAILABILITY, QEMU, QEMU_CURSOR, VMWARE
from svga.model.quirks import QEMU_7_2, Q, Via, table_text

MODEL_DIR = pathlib.Path(__file__).resolve().parent.parent / "svga" / "model"


def test_every_key_has_one_documented_row() -> None:
    assert set(QEMU_7_2) == set(Q)
    for key, row in QEMU_7_2.items():
        assert row.key is key
        assert row.qemu and row.model and row.source, key
        assert ".md" in row.source or "VV" in row.source, key


def test_switch_rows_are_consulted_by_the_model_code() -> None:
    code = "".join(p.read_text() for p in MODEL_DIR.glob("*.py") if p.name != "quirks.py")
    for key, row in QEMU_7_2.items():
        if row.via is Via.SWITCH:
            assert f"Q.{key.name}" in code, f"quirk {key} is a switch but no module looks it up"


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


def test_table_text_lists_every_row() -> None:
    text = table_text()
    for key in Q:
        assert key.value in text


def test_profiles() -> None:
    assert set(PROFILES) == {"qemu", "qemu-cursor", "vmware"}
    assert get_profile("qemu", cursor=True) is QEMU_CURSOR
    assert get_profile("QEMU") is QEMU
    assert get_profile("qemu-cursor", cursor=False) is QEMU
    with pytest.raises(ModelError, match="unknown model profile"):
        get_profile("virtualbox")
    with pytest.raises(ModelError):
        get_profile("qemu", accelfront=True)


def test_availability_covers_the_command_table() -> None:
    assert set(AVAILABILITY) == {int(c) for c in Cmd if c != Cmd.INVALID_CMD}


@pytest.mark.parametrize(("profile", "ext", "offered"), [
    (QEMU, False, {"UPDATE", "RECT_FILL", "RECT_COPY"}),
    (QEMU_CURSOR, False, {"UPDATE", "RECT_FILL", "RECT_COPY", "DEFINE_CURSOR"}),
    (VMWARE, False, {"UPDATE", "RECT_FILL", "RECT_COPY", "DEFINE_CURSOR", "DEFINE_ALPHA_CURSOR",
                     "UPDATE_VERBOSE"}),
    (VMWARE, True, {"UPDATE", "RECT_FILL", "RECT_COPY", "DEFINE_CURSOR", "DEFINE_ALPHA_CURSOR",
                    "UPDATE_VERBOSE", "FENCE", "ESCAPE", "DEFINE_SCREEN", "DESTROY_SCREEN", "DEFINE_GMRFB",
                    "BLIT_GMRFB_TO_SCREEN", "BLIT_SCREEN_TO_GMRFB", "ANNOTATION_FILL", "ANNOTATION_COPY"}),
])
def test_offered_commands(profile: object, ext: bool, offered: set[str]) -> None:
    got = {c.name for c in Cmd if c != Cmd.INVALID_CMD and profile.offers(int(c), ext)}  # type: ignore[attr-defined]
    assert got == offered


def test_extended_fifo_needs_room_for_the_mandatory_registers() -> None:
    # svga_reg.h: SVGA_FIFO_EXTENDED_MANDATORY_REGS = 3D_CAPS_LAST + 1 = 288 words.
    assert VMWARE.extended_active(288 * 4) and not VMWARE.extended_active(287 * 4)
    assert not QEMU.extended_active(291 * 4)
