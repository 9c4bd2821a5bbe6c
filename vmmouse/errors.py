"""Errors of the vmmouse package.

Each is a subclass of the suite's own ``svga.errors`` class that fits it, so one
``except SVGAError`` in a tool catches both packages; the message is one line, fit to print
after ``vmmouse: error:``.
"""

from svga.errors import AccessDenied, DeviceBusy, DeviceError, DeviceNotFound, SVGAError


class VMMouseError(SVGAError):
    """Base class of the errors below."""


class BackdoorUnavailable(VMMouseError, AccessDenied):
    """The backdoor cannot be used from here: another architecture, no I/O privilege (not root,
    kernel lockdown, iopl compiled out, seccomp) or no executable memory."""


class NoDevice(VMMouseError, DeviceNotFound):
    """The pointer source asked for is not there (no VMware-compatible backdoor, no vmmouse,
    no USB absolute pointer)."""


class SourceBusy(VMMouseError, DeviceBusy):
    """A kernel driver already reads the device (psmouse's vmmouse protocol)."""


class ProtocolFault(VMMouseError, DeviceError):
    """The device answered, but not as the protocol says, and recovery failed."""


class SetupError(VMMouseError, AccessDenied):
    """A file the bridge needs (uinput, serio sysfs, serio_raw node) is missing or refused."""


class SourceLost(NoDevice):
    """A source that was working went away: the USB tablet was unplugged, or someone else
    disabled the vmmouse. The daemon releases held buttons and waits for a source again."""


class WakeupLost(SetupError):
    """The wake-up's device went away (the serio port was unbound from serio_raw): the daemon
    polls instead."""


class SinkLost(SetupError):
    """A write to the uinput device failed (the device or its module went away under the bridge)."""
