"""The vmmouse protocol over the backdoor: enable, read whole packets, recover, disable.

Sits on a backdoor port (``vmmouse.backdoor.Backdoor`` or ``vmmouse.model.VMPortModel``) and
produces ``vmmouse.events.PointerEvent``; the daemon feeds those to the uinput sink. The
device rules obeyed here (QEMU hw/i386/vmmouse.c, Linux vmmouse.c, xf86-input-vmmouse; in our
words in docs/vmmouse.md 'Fatal DATA requests', 'Reading packets', 'DISABLE and READ_ID',
'RESTRICT', 'Event routing' and 'Do and do not'):

- DATA(n) with n == 0, n > 6 or n > queued makes QEMU unhook the device for good, so every
  DATA here asks for 1..6 words and never more than STATUS said are queued;
- a packet is 4 words and is only read whole: a queue length that is not a multiple of 4
  means the stream is out of step (a stray VERSION_ID, another reader) and is resynchronised;
- status flags 0xffff (0xffff0000 with an empty queue) mean disabled or failed: resynchronise;
- READ_ID appends VERSION_ID *after* stale words, so a resync first disables the device,
  drains what is left, and only then re-enables and checks the version;
- REQUEST_ABSOLUTE is ignored unless the status is clear, so it follows READ_ID;
- RESTRICT (86) is not sent: QEMU does not implement it, and its IOPL level would check
  EFLAGS.IOPL, which Linux's emulated iopl(3) leaves at 0;
- on exit DISABLE, or QEMU keeps queueing (and keeps a USB tablet starved of events);
- relative packets (the host's choice: VMware's "optimize mouse for games", or QEMU >= 8.1
  marking them) are passed on as relative motion, and absolute mode is *not* requested again:
  the host switches back when it wants to (docs/vmmouse.md 'Relative flag');
- an error status while the bridge had the device enabled means someone else disabled it:
  that is a lost source (``SourceLost``), not something to undo at once; the daemon falls back
  or waits, and takes the device again once someone has re-enabled it (``enabled_elsewhere``;
  docs/vmmouse.md 'Taken away and given back').
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from vmmouse.backdoor import BackdoorPort, get_version
from vmmouse.errors import NoDevice, ProtocolFault, SourceBusy, SourceLost
from vmmouse.events import PointerEvent, PointerInfo
from vmmouse.protocol import (
    ABS_MAX,
    ABS_MIN,
    DATA_MAX_WORDS,
    PACKET_WORDS,
    QUEUE_PACKETS,
    QUEUE_WORDS,
    VERSION_ID,
    Command,
    PointerCommand,
    Status,
    decode_packet,
    decode_status,
)

log = logging.getLogger(__name__)

DEVICE_NAME = "VMware vmmouse absolute pointer"
RELATIVE_DEVICE_NAME = "VMware vmmouse relative pointer"
VMWARE_VENDOR = 0x15AD
VMMOUSE_PRODUCT = 0x0001
# What Linux's psmouse vmmouse protocol registers (docs/vmmouse.md 'Linux vmmouse driver').
KERNEL_DRIVER_NAME = "VirtualPS/2 VMware VMMouse"
MAX_RESYNCS_PER_READ = 3


def kernel_driver_devices(sysfs: str = "/sys") -> list[str]:
    """Input devices of the kernel's own vmmouse driver (psmouse), which reads the same queue."""
    found = []
    base = os.path.join(sysfs, "class", "input")
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return found
    for entry in entries:
        try:
            with open(os.path.join(base, entry, "name")) as f:
                name = f.read().strip()
        except OSError:
            continue
        if name.lower() == KERNEL_DRIVER_NAME.lower():
            found.append(entry)
    return found


def z_is_horizontal(sysfs: str = "/sys") -> bool:
    """Whether Z = +-2 means horizontal scrolling: true on QEMU (>= 7.0 sends it, older QEMU
    never sends +-2), which the firmware's DMI vendor string tells apart from VMware
    (docs/vmmouse.md 'Horizontal wheel', 'Telling QEMU from VMware')."""
    try:
        with open(os.path.join(sysfs, "class", "dmi", "id", "sys_vendor")) as f:
            return f.read().strip() == "QEMU"
    except OSError:
        return False


class VMMouse:
    """The vmmouse behind a backdoor port, as a source of pointer events."""

    def __init__(self, port: BackdoorPort, *, z_horizontal: bool = False) -> None:
        self.port = port
        self.z_horizontal = z_horizontal
        self.enabled = False
        self.resyncs = 0
        self.info = PointerInfo(
            name=DEVICE_NAME, x_range=(ABS_MIN, ABS_MAX), y_range=(ABS_MIN, ABS_MAX),
            hwheel=z_horizontal, bus="virtual", vendor=VMWARE_VENDOR, product=VMMOUSE_PRODUCT,
            phys="vmmouse/backdoor", relative_name=RELATIVE_DEVICE_NAME)
        self.relative_mode = False      # the kind of the last packet read (for the log)

    # --- the raw calls ----------------------------------------------------------------------

    def _command(self, sub: PointerCommand) -> None:
        self.port.call(Command.ABSPOINTER_COMMAND, sub)

    def status(self) -> Status:
        return decode_status(self.port.call(Command.ABSPOINTER_STATUS, 0).eax)

    def data(self, n: int, queued: int) -> tuple[int, ...]:
        """DATA(n): the one place words are read; refuses what would make QEMU unhook the device."""
        if not 1 <= n <= DATA_MAX_WORDS or n > queued:
            raise ValueError(f"DATA({n}) with {queued} words queued would disable the device")
        return tuple(self.port.call(Command.ABSPOINTER_DATA, n))[:n]

    # --- lifecycle --------------------------------------------------------------------------

    def check_present(self) -> None:
        """GETVERSION, without touching the vmmouse (so a running reader is not disturbed)."""
        if get_version(self.port) is None:
            raise NoDevice("no VMware-compatible backdoor: port 0x5658 did not answer GETVERSION "
                           "(not a VMware/QEMU VM, or QEMU runs with vmport=off)")

    def drain(self) -> int:
        """Throw away every queued word, in DATA calls of at most 6; returns how many."""
        thrown = 0
        for _ in range(QUEUE_WORDS):
            queued = self.status().words
            if queued == 0:
                break
            n = min(queued, DATA_MAX_WORDS)
            self.data(n, queued)
            thrown += n
        return thrown

    def enable(self) -> None:
        """DISABLE, drain, READ_ID, check VERSION_ID, REQUEST_ABSOLUTE."""
        self._command(PointerCommand.DISABLE)
        stale = self.drain()
        if stale:
            log.info("vmmouse: dropped %d stale queued words", stale)
        self._command(PointerCommand.READ_ID)
        status = self.status()
        if status.error or status.words == 0:
            raise NoDevice("the backdoor answers but has no vmmouse (READ_ID queued nothing)")
        version = self.data(1, status.words)[0]
        if version != VERSION_ID:
            self._command(PointerCommand.DISABLE)
            raise ProtocolFault(f"vmmouse answered READ_ID with {version:#010x}, "
                                f"not the version id {VERSION_ID:#010x}")
        self._command(PointerCommand.REQUEST_ABSOLUTE)
        self.enabled = True

    def disable(self, force: bool = False) -> None:
        if self.enabled or force:
            self._command(PointerCommand.DISABLE)
            self.enabled = False

    def reset(self) -> None:
        """Start over (SIGHUP, or a device that reported an error)."""
        self.enable()

    def _resync(self, why: str) -> None:
        self.resyncs += 1
        log.warning("vmmouse: %s; re-enabling", why)
        self.enable()

    # --- reading ----------------------------------------------------------------------------

    def packets(self, limit: int = QUEUE_PACKETS) -> Iterator[tuple[int, ...]]:
        """Raw 4-word packets, until the queue is empty or ``limit`` packets were read."""
        resyncs = 0
        read = 0
        while read < limit:
            status = self.status()
            if status.error and self.enabled:
                self.enabled = False        # not ours any more: nothing to DISABLE on close
                raise SourceLost(f"the vmmouse was disabled under the bridge (status flags "
                                 f"{status.flags:#06x}, {status.words} words queued)")
            if status.error or status.words % PACKET_WORDS:
                resyncs += 1
                if resyncs > MAX_RESYNCS_PER_READ:
                    raise ProtocolFault(f"vmmouse keeps failing (status flags {status.flags:#06x}, "
                                        f"{status.words} words queued) after {MAX_RESYNCS_PER_READ} "
                                        "re-enables")
                if status.error:
                    self._resync(f"status reports an error ({status.flags:#06x}, {status.words} words)")
                else:
                    self._resync(f"{status.words} words queued is not a whole number of packets")
                continue
            if status.words == 0:
                return
            yield self.data(PACKET_WORDS, status.words)
            read += 1

    def read_events(self, limit: int = QUEUE_PACKETS) -> list[PointerEvent]:
        """Drain the queue into events (the daemon calls this on each wake-up): at most
        ``limit`` packets, the queue's size, so one call is bounded whatever the host sends."""
        events = []
        for words in self.packets(limit):
            event = decode_packet(words, z_horizontal=self.z_horizontal)
            if event.relative != self.relative_mode:
                self.relative_mode = event.relative
                log.info("vmmouse: the host sends %s packets now",
                         "relative" if event.relative else "absolute")
            events.append(event)
        return events

    def enabled_elsewhere(self) -> bool:
        """Whether someone else has enabled the vmmouse since it was taken from the bridge
        (its status is clear again); a STATUS call only, which changes nothing."""
        return not self.enabled and not self.status().error

    def close(self) -> None:
        self.disable()


def open_vmmouse(port: BackdoorPort, *, sysfs: str = "/sys", z_horizontal: bool | None = None) -> VMMouse:
    """Check the backdoor and that no kernel driver reads the vmmouse, then enable it."""
    mouse = VMMouse(port, z_horizontal=z_is_horizontal(sysfs) if z_horizontal is None else z_horizontal)
    mouse.check_present()
    owners = kernel_driver_devices(sysfs)
    if owners:
        raise SourceBusy(f"the kernel's vmmouse driver already reads the device ({', '.join(owners)}); "
                         "boot with psmouse.proto=imps or unload psmouse")
    mouse.enable()
    return mouse
