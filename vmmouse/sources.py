"""Choosing a pointer source and its wake-up, and saying why one is not there.

Glue between the sources (``vmmouse.absolute`` over ``vmmouse.backdoor``, ``vmmouse.usbtablet``),
``vmmouse.wakeup`` and the command line: ``open_source`` for ``vmmouse run``/``events``,
``probe`` for ``vmmouse probe`` (one line per thing looked at).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Protocol

from vmmouse.errors import NoDevice, SetupError, VMMouseError
from vmmouse.events import PointerEvent, PointerInfo
from vmmouse.protocol import QUEUE_PACKETS
from vmmouse.wakeup import PollWakeup, SerioWakeup, SignalPipe, SourceBlocks, bind_serio_raw, find_aux_port

log = logging.getLogger(__name__)

SOURCES = ("auto", "backdoor", "usb")
WAKEUPS = ("auto", "serio", "poll")


class Source(Protocol):
    info: PointerInfo

    def read_events(self) -> list[PointerEvent]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class Wakeup(Protocol):
    def wait(self) -> str: ...

    def activity(self, had_events: bool) -> None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class BackdoorSource:
    """The vmmouse over the real backdoor port; closing disables the vmmouse, then unmaps the stub."""

    def __init__(self, sysfs: str = "/sys", z_horizontal: bool | None = None) -> None:
        from vmmouse.absolute import open_vmmouse
        from vmmouse.backdoor import Backdoor

        self.port = Backdoor.open()
        try:
            self.mouse = open_vmmouse(self.port, sysfs=sysfs, z_horizontal=z_horizontal)
        except BaseException:
            self.port.close()
            raise
        self.info = self.mouse.info
        self.batch_limit = QUEUE_PACKETS      # a drain this long may have left packets queued

    def read_events(self) -> list[PointerEvent]:
        return self.mouse.read_events()

    def reset(self) -> None:
        self.mouse.reset()

    def close(self) -> None:
        try:
            self.mouse.close()
        finally:
            self.port.close()


def open_source(kind: str = "auto", *, sysfs: str = "/sys", z_horizontal: bool | None = None,
                opener: dict[str, Callable[[], Source]] | None = None) -> tuple[str, Source]:
    """Open the source asked for; ``auto`` tries the backdoor, then the USB tablet."""
    if kind not in SOURCES:
        raise ValueError(f"unknown source {kind!r}")
    openers = opener or {
        "backdoor": lambda: BackdoorSource(sysfs, z_horizontal),
        "usb": open_usb,
    }
    order = ["backdoor", "usb"] if kind == "auto" else [kind]
    reasons = []
    for name in order:
        try:
            return name, openers[name]()
        except VMMouseError as e:
            if kind != "auto":
                raise
            reasons.append(f"{name}: {e}")
            log.info("source %s: %s", name, e)
    raise NoDevice("no pointer source: " + "; ".join(reasons))


def open_usb() -> Source:
    from vmmouse.usbtablet import open_tablet

    return open_tablet()


def prepare(*, group: str = "vmmouse", uinput: str = "/dev/uinput", sysfs: str = "/sys",
            dev: str = "/dev") -> list[str]:
    """As root, for an unprivileged ``vmmouse run``: bind the AUX port to serio_raw and give
    /dev/serio_rawN and /dev/uinput to ``group``, mode 0660 (what the udev rule
    60-vmmouse-uinput.rules also does, for when it is not installed). One log line per step."""
    import grp

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise SetupError(f"no such group {group!r} (groupadd --system {group})") from None
    lines = []
    nodes = []
    port = find_aux_port(sysfs)
    if port is None:
        lines.append("serio: no i8042 AUX port: the backdoor will be polled")
    else:
        node = bind_serio_raw(port, sysfs=sysfs, dev=dev)
        lines.append(f"serio: {port.name} bound to serio_raw ({node})")
        nodes.append(node)
    if os.path.exists(uinput):
        nodes.append(uinput)
    else:
        lines.append(f"uinput: {uinput} missing (modprobe uinput)")
    for node in nodes:
        try:
            os.chown(node, -1, gid)
            os.chmod(node, 0o660)
        except OSError as e:
            raise SetupError(f"cannot give {node} to group {group}: {e.strerror or e}") from e
        lines.append(f"{node}: group {group}, mode 0660")
    return lines


def open_wakeup(kind: str, source_name: str, signals: SignalPipe | None, *, sysfs: str = "/sys",
                dev: str = "/dev") -> tuple[str, Wakeup]:
    """The wake-up for a source: the USB tablet's reads block by themselves; the backdoor
    wakes on serio_raw notifications (``serio``) or polls (``poll``); ``auto`` tries serio."""
    if kind not in WAKEUPS:
        raise ValueError(f"unknown wake-up {kind!r}")
    if source_name != "backdoor":
        if kind != "auto":
            log.info("wake-up %s ignored: the %s source blocks on its own reads", kind, source_name)
        return "source", SourceBlocks()
    if kind in ("auto", "serio"):
        try:
            port = find_aux_port(sysfs)
            if port is None:
                raise SetupError("no i8042 AUX port in sysfs (no PS/2 controller)")
            node = bind_serio_raw(port, sysfs=sysfs, dev=dev)
            return "serio", SerioWakeup(node, signals)
        except SetupError as e:
            if kind == "serio":
                raise
            log.info("serio wake-up unavailable (%s); polling instead", e)
    return "poll", PollWakeup(signals)


def probe(*, sysfs: str = "/sys", dev: str = "/dev", handshake: bool = False) -> list[str]:
    """One line per source and facility: what is there, or why not."""
    from vmmouse.absolute import VMMouse, kernel_driver_devices
    from vmmouse.backdoor import Backdoor, get_version
    from vmmouse.usbtablet import find_tablets

    lines = []
    try:
        with Backdoor.open() as port:
            version = get_version(port)
            if version is None:
                lines.append("backdoor: absent: port 0x5658 did not answer GETVERSION "
                             "(not a VMware-compatible hypervisor, or QEMU with vmport=off)")
            else:
                lines.append(f"backdoor: present (version {version.version}, VMX type {version.vmx_type})")
                owners = kernel_driver_devices(sysfs)
                if owners:
                    lines.append(f"vmmouse: owned by the kernel's vmmouse driver ({', '.join(owners)}); "
                                 "the bridge will not start on it")
                elif handshake:
                    mouse = VMMouse(port)
                    try:
                        mouse.enable()
                        lines.append("vmmouse: present (READ_ID answered the version id; disabled again)")
                    except VMMouseError as e:
                        lines.append(f"vmmouse: absent: {e}")
                    finally:
                        mouse.disable(force=True)
                else:
                    lines.append("vmmouse: not checked (READ_ID would disturb a running reader; "
                                 "use --handshake)")
    except VMMouseError as e:
        lines.append(f"backdoor: unavailable: {e}")
    found, notes = find_tablets()
    for tablet in found:
        lines.append(f"usb: {tablet.describe()}")
    if not found:
        lines.append("usb: none" + (f" ({'; '.join(notes)})" if notes else " (no USB HID device)"))
    port_info = find_aux_port(sysfs)
    if port_info is None:
        lines.append("serio: no i8042 AUX port (no PS/2 controller): the backdoor would be polled")
    else:
        lines.append(f"serio: {port_info.name} ({port_info.description}), driver "
                     f"{port_info.driver or 'none'}: interrupt wake-up possible")
    uinput = os.path.join(dev, "uinput")
    if os.path.exists(uinput):
        writable = os.access(uinput, os.W_OK)
        lines.append(f"uinput: {uinput} present" + ("" if writable else " (not writable here)"))
    else:
        lines.append(f"uinput: {uinput} missing (modprobe uinput)")
    return lines
