"""svga/registers.py and svga/commands.py against the kernel's copy of VMware's svga_reg.h.

The oracle is linux-source-6.1 ``drivers/gpu/drm/vmwgfx/device_include/svga_reg.h`` (plus
``include/linux/pci_ids.h`` and ``vmwgfx_drv.h`` for the PCI ids), read by
tests/kernel_headers.py: every value is taken from the header, none is written here.

The kernel's copy is newer than the developer kit our tables follow. Where it spells a
name differently it is in RENAMED; where it has dropped a name (deprecated capability
bits and commands) the name is in DROPPED with its value and the line of an older VMware
header that still has it, so nothing goes unchecked silently:

- KIT: the developer kit, prepare/vmware-svga@eea7ddc ``lib/vmware/svga_reg.h``;
- OLD: the VMware ``svga_reg.h`` xf86-video-vmware shipped until 2008
  (tizenorg/platform.upstream.xf86-video-vmware@6849c0a ``src/svga_reg.h``). The kit itself
  never listed these ids: its header says the holes are deprecated ids (KIT l.403-405 for
  capability bits, l.997-998 for command ids).

The other way round, everything the kernel lists in the same families is in our tables
or in NOT_OURS with the reason. 3D commands live in another header (svga3d_cmd.h), not in
the SVGAFifoCmdId enum checked here.
"""

from __future__ import annotations

import re
from enum import Enum

import pytest
from kernel_headers import PCI_IDS_H, SVGA_REG_H, VMWGFX_DRV_H, header

from svga import commands, registers
from svga.commands import COMMANDS, Cmd
from svga.registers import Cap, FifoCap, FifoFlag, FifoReg, Reg

FAMILIES: dict[type[Enum], str] = {
    Reg: "SVGA_REG_", Cap: "SVGA_CAP_", FifoReg: "SVGA_FIFO_", FifoCap: "SVGA_FIFO_CAP_",
    FifoFlag: "SVGA_FIFO_FLAG_", Cmd: "SVGA_CMD_",
}

_DIGIT = "the header name starts with a digit, which a Python name cannot"
RENAMED: dict[str, tuple[str, str]] = {
    "Reg.CURSOR_ID": ("SVGA_REG_DEAD", "KIT l.143 calls register 24 SVGA_REG_CURSOR_ID (deprecated); "
                                       "the kernel renamed it SVGA_REG_DEAD"),
    "Cap.EIGHT_BIT_EMULATION": ("SVGA_CAP_8BIT_EMULATION", _DIGIT),
    "Cap.THREE_D": ("SVGA_CAP_3D", _DIGIT),
    "FifoReg.HWVERSION_3D": ("SVGA_FIFO_3D_HWVERSION", _DIGIT),
    "FifoReg.HWVERSION_3D_REVISED": ("SVGA_FIFO_3D_HWVERSION_REVISED", _DIGIT),
    "FifoReg.CAPS_3D": ("SVGA_FIFO_3D_CAPS", _DIGIT),
    "FifoReg.CAPS_3D_LAST": ("SVGA_FIFO_3D_CAPS_LAST", _DIGIT),
}

_CAP_GONE = "a deprecated bit: neither the kit (KIT l.403-405) nor the kernel lists it"
DROPPED: dict[str, tuple[int, str]] = {
    "Reg.TOP": (48, "KIT l.172 SVGA_REG_TOP = 48, one past the kit's last register; the kernel's "
                    "TOP moved to 85 when it added registers 48-84 (NOT_OURS)"),
    "Cap.RECT_FILL": (0x1, f"OLD l.165; {_CAP_GONE}; QEMU still offers it"),
    "Cap.RECT_PAT_FILL": (0x4, f"OLD l.167; {_CAP_GONE}"),
    "Cap.LEGACY_OFFSCREEN": (0x8, f"OLD l.168; {_CAP_GONE}"),
    "Cap.RASTER_OP": (0x10, f"OLD l.169; {_CAP_GONE}"),
    "Cap.GLYPH": (0x400, f"OLD l.175; {_CAP_GONE}"),
    "Cap.GLYPH_CLIPPING": (0x800, f"OLD l.176; {_CAP_GONE}"),
    "Cap.OFFSCREEN_1": (0x1000, f"OLD l.177; {_CAP_GONE}"),
    "Cap.ALPHA_BLEND": (0x2000, f"OLD l.178; {_CAP_GONE}"),
    "Cmd.RECT_FILL": (2, "OLD l.678; a deprecated id (KIT l.997-998) QEMU still implements"),
    "Cmd.RECT_ROP_FILL": (13, "OLD l.723; a deprecated id (KIT l.997-998)"),
    "ROP_COPY": (0x03, "KIT l.1179 SVGA_ROP_COPY (FRONT_ROP_FILL's only allowed rop); the kernel "
                       "keeps the rop field but not the constant"),
}

# Field lists of the dropped commands: the "FIFO layout" comments of OLD.
DROPPED_LAYOUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "RECT_FILL": (("color", "x", "y", "width", "height"), "OLD l.679-680: Color, X, Y, Width, Height"),
    "RECT_ROP_FILL": (("color", "x", "y", "width", "height", "rop"),
                      "OLD l.724-725: Color, X, Y, Width, Height, ROP"),
}

# Module constants of svga.registers / svga.commands and the svga_reg.h name each one is.
CONSTANTS: dict[str, str] = {
    "INDEX_PORT": "SVGA_INDEX_PORT", "VALUE_PORT": "SVGA_VALUE_PORT", "BIOS_PORT": "SVGA_BIOS_PORT",
    "IRQSTATUS_PORT": "SVGA_IRQSTATUS_PORT",
    "SVGA_MAGIC": "SVGA_MAGIC", "SVGA_ID_0": "SVGA_ID_0", "SVGA_ID_1": "SVGA_ID_1",
    "SVGA_ID_2": "SVGA_ID_2", "SVGA_ID_INVALID": "SVGA_ID_INVALID",
    "ENABLE_DISABLE": "SVGA_REG_ENABLE_DISABLE", "ENABLE_ENABLE": "SVGA_REG_ENABLE_ENABLE",
    "ENABLE_HIDE": "SVGA_REG_ENABLE_HIDE",
    "CURSOR_ON_HIDE": "SVGA_CURSOR_ON_HIDE", "CURSOR_ON_SHOW": "SVGA_CURSOR_ON_SHOW",
    "CURSOR_ON_REMOVE_FROM_FB": "SVGA_CURSOR_ON_REMOVE_FROM_FB",
    "CURSOR_ON_RESTORE_TO_FB": "SVGA_CURSOR_ON_RESTORE_TO_FB",
    "PALETTE_BASE": "SVGA_PALETTE_BASE", "NUM_PALETTE_REGS": "SVGA_NUM_PALETTE_REGS",
    "SCRATCH_BASE": "SVGA_SCRATCH_BASE",
    "FIFO_NUM_REGS": "SVGA_FIFO_NUM_REGS",
    "FIFO_EXTENDED_MANDATORY_REGS": "SVGA_FIFO_EXTENDED_MANDATORY_REGS",
    "FIFO_RESERVED_UNKNOWN": "SVGA_FIFO_RESERVED_UNKNOWN",
    "GMR_NULL": "SVGA_GMR_NULL", "GMR_FRAMEBUFFER": "SVGA_GMR_FRAMEBUFFER",
    "SCREEN_MUST_BE_SET": "SVGA_SCREEN_MUST_BE_SET", "SCREEN_IS_PRIMARY": "SVGA_SCREEN_IS_PRIMARY",
    "SCREEN_FULLSCREEN_HINT": "SVGA_SCREEN_FULLSCREEN_HINT", "SCREEN_DEACTIVATE": "SVGA_SCREEN_DEACTIVATE",
    "SCREEN_BLANKING": "SVGA_SCREEN_BLANKING",
    "REMAP_GMR2_VIA_GMR": "SVGA_REMAP_GMR2_VIA_GMR", "REMAP_GMR2_PPN64": "SVGA_REMAP_GMR2_PPN64",
    "REMAP_GMR2_SINGLE_PPN": "SVGA_REMAP_GMR2_SINGLE_PPN",
    "MAX_DATASIZE": "SVGA_CMD_MAX_DATASIZE",
}
OTHER_FILES: dict[str, tuple[str, str]] = {
    "PCI_VENDOR_VMWARE": (PCI_IDS_H, "PCI_VENDOR_ID_VMWARE"),
    "PCI_DEVICE_SVGA2": (VMWGFX_DRV_H, "VMWGFX_PCI_ID_SVGA2"),
}
# Constants that are no #define but follow from the header; test_derived_constants checks each.
DERIVED = ("FIFO_MIN_SIZE_LEGACY", "SCREEN_OBJECT_V1_SIZE", "SCREEN_OBJECT_V2_SIZE")
NOT_IN_HEADER = {
    "FIFO_MIN_RING_BYTES": "only a comment in KIT l.458 (MIN to MAX at least 10K); the kernel's copy "
                           "has no comments",
}

# Names the kernel lists that our tables leave out on purpose.
_AFTER_KIT = ("added after the kit (command buffers, guest-backed objects, ...): the driver speaks "
              "the kit's protocol")
NOT_OURS: dict[str, str] = {
    "SVGA_REG_ID_0_TOP": "an alias of SVGA_REG_CAPABILITIES marking where SVGA_ID_0's registers end",
    **dict.fromkeys((
        "SVGA_REG_COMMAND_LOW", "SVGA_REG_COMMAND_HIGH", "SVGA_REG_MAX_PRIMARY_MEM",
        "SVGA_REG_SUGGESTED_GBOBJECT_MEM_SIZE_KB", "SVGA_REG_DEV_CAP", "SVGA_REG_CMD_PREPEND_LOW",
        "SVGA_REG_CMD_PREPEND_HIGH", "SVGA_REG_SCREENTARGET_MAX_WIDTH", "SVGA_REG_SCREENTARGET_MAX_HEIGHT",
        "SVGA_REG_MOB_MAX_SIZE", "SVGA_REG_BLANK_SCREEN_TARGETS", "SVGA_REG_CAP2", "SVGA_REG_DEVEL_CAP",
        "SVGA_REG_GUEST_DRIVER_ID", "SVGA_REG_GUEST_DRIVER_VERSION1", "SVGA_REG_GUEST_DRIVER_VERSION2",
        "SVGA_REG_GUEST_DRIVER_VERSION3", "SVGA_REG_CURSOR_MOBID", "SVGA_REG_CURSOR_MAX_BYTE_SIZE",
        "SVGA_REG_CURSOR_MAX_DIMENSION", "SVGA_REG_FIFO_CAPS", "SVGA_REG_FENCE", "SVGA_REG_CURSOR4_ON",
        "SVGA_REG_CURSOR4_X", "SVGA_REG_CURSOR4_Y", "SVGA_REG_CURSOR4_SCREEN_ID", "SVGA_REG_CURSOR4_SUBMIT",
        "SVGA_REG_SCREENDMA", "SVGA_REG_GBOBJECT_MEM_SIZE_KB", "SVGA_REG_REGS_START_HIGH32",
        "SVGA_REG_REGS_START_LOW32", "SVGA_REG_FB_START_HIGH32", "SVGA_REG_FB_START_LOW32",
        "SVGA_REG_MSHINT", "SVGA_REG_IRQ_STATUS", "SVGA_REG_DIRTY_TRACKING", "SVGA_REG_FENCE_GOAL",
        "SVGA_CAP_COMMAND_BUFFERS", "SVGA_CAP_DEAD1", "SVGA_CAP_CMD_BUFFERS_2", "SVGA_CAP_GBOBJECTS",
        "SVGA_CAP_DX", "SVGA_CAP_HP_CMD_QUEUE", "SVGA_CAP_NO_BB_RESTRICTION", "SVGA_CAP_CAP2_REGISTER",
        "SVGA_CMD_DEAD", "SVGA_CMD_DEAD_2", "SVGA_CMD_NOP", "SVGA_CMD_NOP_ERROR",
    ), _AFTER_KIT),
    **dict.fromkeys(("SVGA_CAP_NONE", "SVGA_FIFO_CAP_NONE", "SVGA_FIFO_FLAG_NONE"), "zero, no bit"),
    "SVGA_FIFO_CAP_3D_HWVERSION_REVISED": "an alias of SVGA_FIFO_CAP_GMR2 (test_aliases)",
    "SVGA_FIFO_FLAG_RESERVED": "KIT l.826: internal use only",
    "SVGA_FIFO_NUM_REGS": "the enum's count: registers.FIFO_NUM_REGS (CONSTANTS)",
    "SVGA_CMD_MAX": "the enum's count, not a command",
}

# Fixed fields, by command: the header's word path -> our field name where the mechanical
# rule (snake_case of the path's last part) does not give it.
FIELD_RENAMES: dict[tuple[str, str], str] = {
    ("DEFINE_SCREEN", "screen.root.x"): "root_x", ("DEFINE_SCREEN", "screen.root.y"): "root_y",
    ("BLIT_GMRFB_TO_SCREEN", "srcOrigin.x"): "src_x", ("BLIT_GMRFB_TO_SCREEN", "srcOrigin.y"): "src_y",
    ("BLIT_SCREEN_TO_GMRFB", "destOrigin.x"): "dest_x", ("BLIT_SCREEN_TO_GMRFB", "destOrigin.y"): "dest_y",
    ("ANNOTATION_COPY", "srcOrigin.x"): "src_x", ("ANNOTATION_COPY", "srcOrigin.y"): "src_y",
}
# DEFINE_SCREEN carries an SVGAScreenObject whose last words (backingStore, cloneCount) are there
# only when structSize says so: our table has them as the 'extension' tail, after the first 7 words.
SCREEN_FIXED_WORDS = 7


@pytest.fixture(scope="module")
def svga_reg():
    return header(SVGA_REG_H)


def _header_name(cls: type[Enum], member: str) -> str:
    key = f"{cls.__name__}.{member}"
    return RENAMED[key][0] if key in RENAMED else FAMILIES[cls] + member


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _members(cls: type[Enum]) -> list[str]:
    return [m.name for m in cls]  # type: ignore[misc]


def _struct_for(svga_reg, spec_name: str) -> str | None:
    found = [s for s in svga_reg.structs("SVGAFifoCmd")
             if s.removeprefix("SVGAFifoCmd").upper() == spec_name.replace("_", "")]
    assert len(found) <= 1, found
    return found[0] if found else None


# --- our names -> the header -------------------------------------------------------------------

@pytest.mark.parametrize("cls", list(FAMILIES), ids=lambda c: c.__name__)
def test_every_member_matches_the_header(svga_reg, cls):
    for name in _members(cls):
        key = f"{cls.__name__}.{name}"
        ours = int(cls[name])
        if key in DROPPED:
            assert ours == DROPPED[key][0], f"{key} = {ours:#x}, {DROPPED[key][1]}"
            continue
        hname = _header_name(cls, name)
        want = svga_reg.value(hname)
        assert ours == want, f"{key} = {ours:#x}, {hname} = {want:#x} (svga_reg.h:{svga_reg.line(hname)})"


def test_module_constants_match_the_header(svga_reg):
    for name, hname in CONSTANTS.items():
        mod = registers if hasattr(registers, name) else commands
        ours, want = getattr(mod, name), svga_reg.value(hname)
        assert ours == want, f"{mod.__name__}.{name} = {ours:#x}, {hname} = {want:#x}"
    for name, (member, hname) in OTHER_FILES.items():
        assert getattr(registers, name) == header(member).value(hname), (name, member, hname)
    assert commands.ROP_COPY == DROPPED["ROP_COPY"][0]


def test_derived_constants(svga_reg):
    # The legacy FIFO is the four words below the first extended register.
    assert registers.FIFO_MIN_SIZE_LEGACY == 4 * svga_reg.value("SVGA_FIFO_CAPABILITIES")
    # SVGAScreenObject: V1 ends after root (x, y), V2 is the whole struct.
    words = [w.path for w in svga_reg.words("SVGAScreenObject")]
    assert commands.SCREEN_OBJECT_V1_SIZE == 4 * (words.index("root.y") + 1)
    assert commands.SCREEN_OBJECT_V2_SIZE == 4 * len(words)


def test_every_public_constant_is_checked():
    checked = set(CONSTANTS) | set(OTHER_FILES) | set(DERIVED) | set(NOT_IN_HEADER) | set(DROPPED)
    for mod in (registers, commands):
        for name, value in vars(mod).items():
            public = not name.startswith("_")  # a module's private values are its own business
            if public and name.isupper() and isinstance(value, int) and not isinstance(value, bool | Enum):
                assert name in checked, f"{mod.__name__}.{name} is compared with nothing"


def test_the_tables_name_only_what_exists():
    for key in list(RENAMED) + [k for k in DROPPED if "." in k]:
        cls_name, name = key.split(".")
        cls = next(c for c in FAMILIES if c.__name__ == cls_name)
        assert name in _members(cls), key


def test_dropped_names_are_really_gone_and_their_ids_unused(svga_reg):
    families = {
        Cap: [n for n in svga_reg.defines("SVGA_CAP_")],
        Cmd: svga_reg.enum_of("SVGA_CMD_UPDATE").names(),
    }
    for key, (value, _reason) in DROPPED.items():
        if key == "ROP_COPY":
            assert not svga_reg.defines("SVGA_ROP_"), key
            continue
        cls_name, name = key.split(".")
        if cls_name == "Reg":
            continue      # TOP is still there, with another value: test_reg_top_is_where_the_kit_ends
        cls = next(c for c in families if c.__name__ == cls_name)
        assert FAMILIES[cls] + name not in families[cls], key
        # A hole: no name in the kernel's family has this value (the kit: ids are never reused).
        users = [n for n in families[cls] if svga_reg.value(n) == value]
        assert not users, f"{key} = {value:#x} is taken by {users} in the kernel's header"


def test_reg_top_is_where_the_kit_ends(svga_reg):
    # Our TOP is the kit's: the first register the kernel has that we do not.
    first_new = min(svga_reg.value(n) for n in NOT_OURS
                    if n.startswith("SVGA_REG_") and n != "SVGA_REG_ID_0_TOP")
    assert Reg.TOP == first_new == svga_reg.value("SVGA_REG_COMMAND_LOW")


def test_aliases(svga_reg):
    assert svga_reg.value("SVGA_FIFO_CAP_3D_HWVERSION_REVISED") == FifoCap.GMR2
    assert svga_reg.value("SVGA_REG_ID_0_TOP") == Reg.CAPABILITIES


# --- the header -> our names -------------------------------------------------------------------

def _ours_by_header_name() -> dict[str, int]:
    out = {}
    for cls in FAMILIES:
        for name in _members(cls):
            if f"{cls.__name__}.{name}" not in DROPPED:
                out[_header_name(cls, name)] = int(cls[name])
    return out


def _check_family(names: list[str]) -> None:
    ours = _ours_by_header_name()
    missing = [n for n in names if n not in ours and n not in NOT_OURS]
    assert not missing, f"in the kernel's svga_reg.h but not in our tables nor in NOT_OURS: {missing}"


def test_every_register_below_top_is_ours(svga_reg):
    top = svga_reg.value("SVGA_REG_TOP")
    regs = [n for n in svga_reg.enum_of("SVGA_REG_ID").names()
            if n.startswith("SVGA_REG_") and svga_reg.value(n) < top]
    assert len(regs) > 80
    _check_family(regs)


def test_every_capability_bit_is_ours(svga_reg):
    _check_family([n for n in svga_reg.defines("SVGA_CAP_")])


def test_every_fifo_register_and_flag_is_ours(svga_reg):
    _check_family(svga_reg.enum_of("SVGA_FIFO_MIN").names())
    _check_family(svga_reg.defines("SVGA_FIFO_CAP_"))
    _check_family(svga_reg.defines("SVGA_FIFO_FLAG_"))


def test_every_2d_command_is_ours(svga_reg):
    enum = svga_reg.enum_of("SVGA_CMD_UPDATE")
    assert enum.typedef == "SVGAFifoCmdId"
    _check_family(enum.names())


def test_not_ours_lists_only_names_the_kernel_has(svga_reg):
    for name in NOT_OURS:
        svga_reg.value(name)  # raises for a name the header does not have


# --- command layouts ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec", COMMANDS, ids=lambda s: s.name)
def test_command_layout_matches_the_header(svga_reg, spec):
    struct = _struct_for(svga_reg, spec.name)
    if struct is None:
        fields, reason = DROPPED_LAYOUTS[spec.name]
        assert spec.field_names == fields, reason
        assert not any(f.signed for f in spec.fields), reason
        return
    words = svga_reg.words(struct)
    if spec.name == "DEFINE_SCREEN":
        extension = words[SCREEN_FIXED_WORDS:]
        words = words[:SCREEN_FIXED_WORDS]
        assert [t.name for t in spec.tails] == ["extension"]
        assert 4 * len(extension) == commands.SCREEN_OBJECT_V2_SIZE - commands.SCREEN_OBJECT_V1_SIZE
    names = [FIELD_RENAMES.get((spec.name, w.path), _snake(w.path.split(".")[-1])) for w in words]
    assert spec.fixed_words == 1 + len(words), f"{struct}: {[w.path for w in words]}"
    assert spec.field_names == tuple(names), struct
    assert [f.signed for f in spec.fields] == [w.signed for w in words], \
        f"{struct}: int32 fields are {[w.path for w in words if w.signed]}"


def test_every_command_struct_is_in_the_table(svga_reg):
    ours = {spec.name.replace("_", "") for spec in COMMANDS}
    structs = svga_reg.structs("SVGAFifoCmd")
    assert len(structs) >= 18
    for s in structs:
        assert s.removeprefix("SVGAFifoCmd").upper() in ours, s


def test_field_renames_name_real_words(svga_reg):
    for spec_name, path in FIELD_RENAMES:
        struct = _struct_for(svga_reg, spec_name)
        assert struct and path in [w.path for w in svga_reg.words(struct)], (spec_name, path)
