"""Device facts: capability profiles, as data.

A profile is everything that differs between the devices the model can be: the fixed
register values, SVGA_REG_CAPABILITIES, the FIFO capabilities it publishes in FIFO
memory, sizes and limits, whether it runs the FIFO as it is written, and (for ``qemu``)
the table of QEMU's quirks (:mod:`svga.facts.qemu`), or else the developer kit's strict
rules (:mod:`svga.facts.kit`), with the effects the lint names. The model's register file
and FIFO engine read the profile; no module asks which profile it is.

- ``qemu``: QEMU 7.2 ``-vga vmware -display none`` (docs/qemu-7.2.md). ``qemu-cursor``
  (or ``cursor=True``) is the same device as with a VNC display, whose UI can define a
  cursor: CAPABILITIES 0xE3.
- ``vmware``: a VMware SVGA II device as the developer kit defines it, with the capability
  bits a current host reports for the features the model implements: the extended FIFO,
  fences, FIFO reservations, cursor bypass 3, escapes, Screen Objects (1 and 2), GMR and GMR2,
  and no deprecated bit such as RECT_FILL (docs/svga-kit.md 'Capability bits').

Which command needs which capability (the "Availability" lines of svga_reg.h) is in the
command table (:func:`svga.commands.offered`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from svga.commands import BY_ID
from svga.errors import ModelError
from svga.facts import kit
from svga.facts import qemu as quirks
from svga.facts.effects import E, Effect
from svga.facts.qemu import Q, Quirk
from svga.registers import FIFO_EXTENDED_MANDATORY_REGS, FIFO_NUM_REGS, Cap, FifoCap, FifoFlag


@dataclass(frozen=True)
class Profile:
    name: str
    device: str
    """Which real device this imitates, for the transport's description."""
    capabilities: Cap
    fifo_capabilities: FifoCap
    """Published in FIFO word CAPABILITIES (only with SVGA_CAP_EXTENDED_FIFO)."""
    fifo_flags: FifoFlag
    mem_regs: int
    """SVGA_REG_MEM_REGS: FIFO registers the host knows (0 = no extended FIFO)."""
    fifo_size: int
    max_width: int
    max_height: int
    scratch_size: int
    num_displays: int
    fb_start: int
    """Nominal bus addresses of BAR1/BAR2 for FB_START/MEM_START (the model has no PCI)."""
    mem_start: int
    initial_width: int = 640
    initial_height: int = 480
    max_cursor: int = 256
    """Largest cursor width/height (svga_reg.h gives no number; 256 is what vmwgfx and
    QEMU use)."""
    quirks: Mapping[Q, Quirk] = field(default_factory=lambda: quirks.NONE, hash=False, compare=False)
    effects: Mapping[E, Effect] = field(default_factory=lambda: kit.KIT_EFFECTS, hash=False, compare=False)
    """What the device does with each thing the model reports (the lint's findings)."""
    sources: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    """Where each value comes from (field name -> a citation of the project's docs), for
    ``svga info --profile``."""
    runs_as_written: bool = True
    """The host processes the FIFO soon after the guest writes it (VMware, asynchronously);
    QEMU runs it only on a SYNC write or a display refresh (docs/qemu-7.2.md 'What triggers
    a run')."""

    @property
    def extended_fifo(self) -> bool:
        return bool(self.capabilities & Cap.EXTENDED_FIFO)

    def quirk(self, key: Q) -> Quirk | None:
        """The quirk row if this profile imitates that QEMU behaviour, else None."""
        row = self.quirks.get(key)
        return row if row is not None and row.imitated else None

    def note(self, key: Q) -> Quirk | None:
        """The quirk row whether imitated or only documented (for error messages)."""
        return self.quirks.get(key)

    def extended_active(self, fifo_min: int) -> bool:
        """The host enables the extended FIFO only if MIN leaves room for all mandatory
        extended registers (svga_reg.h SVGA_FIFO_EXTENDED_MANDATORY_REGS)."""
        return self.extended_fifo and fifo_min >= FIFO_EXTENDED_MANDATORY_REGS * 4

    def offers(self, cmd_id: int, extended_active: bool) -> bool:
        spec = BY_ID.get(int(cmd_id))
        return spec is not None and spec.needs.met(self.capabilities, self.fifo_capabilities,
                                                   extended_active)

    def not_offered(self, cmd_id: int) -> E:
        """What the device does with a command its capabilities do not offer."""
        if not self.quirks:
            return E.NOT_OFFERED
        if int(cmd_id) in quirks.QEMU_NOT_OFFERED:
            return quirks.QEMU_NOT_OFFERED[int(cmd_id)]
        return E.PARSER_DESYNC if int(cmd_id) not in quirks.QEMU_COUNTED_IDS else E.NOT_OFFERED

    def effect(self, key: E) -> Effect:
        """The effect of a report on this device (anything unnamed: the model's rejection)."""
        return self.effects.get(key) or self.effects[E.MODEL_REJECTS]


QEMU = Profile(
    name="qemu",
    device="QEMU 7.2 -vga vmware -display none",
    capabilities=Cap.RECT_FILL | Cap.RECT_COPY,
    fifo_capabilities=FifoCap(0),
    fifo_flags=FifoFlag(0),
    mem_regs=0,
    fifo_size=64 * 1024,
    max_width=2368,
    max_height=1770,
    scratch_size=0x8000,
    num_displays=0,
    fb_start=0xFD000000,
    mem_start=0xFEBF0000,
    quirks=quirks.QEMU_7_2,
    effects=quirks.QEMU_EFFECTS,
    runs_as_written=False,
)

QEMU_CURSOR = dataclasses.replace(
    QEMU,
    name="qemu-cursor",
    device="QEMU 7.2 -vga vmware with a VNC display",
    capabilities=QEMU.capabilities | Cap.CURSOR | Cap.CURSOR_BYPASS | Cap.CURSOR_BYPASS_2,
)

_KIT_CAPS = "docs/svga-kit.md 'Capability bits'"

VMWARE = Profile(
    name="vmware",
    device="VMware SVGA II as the developer kit defines it (Screen Objects, GMRs)",
    capabilities=(Cap.RECT_COPY | Cap.CURSOR | Cap.CURSOR_BYPASS | Cap.CURSOR_BYPASS_2
                  | Cap.ALPHA_CURSOR | Cap.EXTENDED_FIFO | Cap.PITCHLOCK | Cap.GMR | Cap.GMR2
                  | Cap.SCREEN_OBJECT_2),
    fifo_capabilities=(FifoCap.FENCE | FifoCap.RESERVE | FifoCap.CURSOR_BYPASS_3 | FifoCap.ESCAPE
                       | FifoCap.SCREEN_OBJECT | FifoCap.SCREEN_OBJECT_2 | FifoCap.GMR2),
    fifo_flags=FifoFlag(0),
    mem_regs=FIFO_NUM_REGS,
    fifo_size=256 * 1024,
    max_width=2360,
    max_height=1770,
    scratch_size=64,
    num_displays=1,
    fb_start=0xE8000000,
    mem_start=0xFE000000,
    sources={
        "capabilities": _KIT_CAPS,
        "fifo_capabilities": _KIT_CAPS,
        "fifo_size": "docs/svga-kit.md 'Model choices' (a size of the model's own)",
        "max_width": "docs/svga-kit.md 'Model choices' (a size of the model's own)",
        "max_height": "docs/svga-kit.md 'Model choices' (a size of the model's own)",
        "scratch_size": "docs/svga-kit.md 'Model choices' (a size of the model's own)",
        "max_cursor": "docs/svga-kit.md 'Cursors' (screen-cursor defines 256x256 cursors)",
        "mem_regs": "docs/qemu-7.2.md 'FIFO protocol (developer kit)' (all FIFO registers)",
        "fb_start": "docs/svga-kit.md 'Model choices' (nominal: the model has no PCI bus)",
        "mem_start": "docs/svga-kit.md 'Model choices' (nominal: the model has no PCI bus)",
    },
)

PROFILES: Mapping[str, Profile] = {p.name: p for p in (QEMU, QEMU_CURSOR, VMWARE)}


def get_profile(name: str | Profile, cursor: bool | None = None, accelfront: bool = False) -> Profile:
    """A profile by name (a :class:`Profile` is taken as it is); ``cursor`` picks
    ``qemu-cursor`` for ``qemu`` (the vmware profile always has a cursor); ``accelfront``
    adds FIFO_CAP_ACCELFRONT to ``vmware`` (the FIFO flag ACCELFRONT, which asks the driver
    to prefer front-buffer commands, stays clear)."""
    if isinstance(name, Profile):
        return name
    key = name.lower()
    if key == "qemu" and cursor:
        key = "qemu-cursor"
    profile = PROFILES.get(key)
    if profile is None:
        raise ModelError(f"unknown model profile {name!r} (known: {', '.join(PROFILES)})")
    if cursor is False and profile is QEMU_CURSOR:
        profile = QEMU
    if cursor is False and profile is VMWARE:
        raise ModelError("the vmware profile always offers a hardware cursor")
    if accelfront:
        if not profile.extended_fifo:
            raise ModelError(f"profile {profile.name} has no extended FIFO, so no ACCELFRONT")
        profile = dataclasses.replace(
            profile, fifo_capabilities=profile.fifo_capabilities | FifoCap.ACCELFRONT)
    return profile
