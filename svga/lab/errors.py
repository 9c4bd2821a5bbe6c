"""Errors of the QEMU guest lab (tools layer). Each is an SVGAError with a one-line
message; a guest failure also carries the tail of the guest's serial console, which the
CLI prints below the message."""

from __future__ import annotations

from svga.errors import SVGAError


class LabError(SVGAError):
    """The lab cannot run: a missing package, kernel or busybox, or QEMU refused to start."""

    def __init__(self, message: str, console_tail: str = "") -> None:
        super().__init__(message)
        self.console_tail = console_tail


class MissingPackages(LabError):
    """Debian packages the lab needs are not installed."""

    def __init__(self, missing: list[str]) -> None:
        cmd = "apt-get update && apt-get install -y " + " ".join(missing)
        super().__init__(f"the lab needs {', '.join(missing)}: run `{cmd}` as root "
                         "(or `svga lab setup` as root)")
        self.missing = missing
        self.command = cmd


class GuestFailed(LabError):
    """The guest stopped (QEMU exited) before it did what was asked."""


class GuestTimeout(GuestFailed):
    """The guest did not finish in time and was killed."""
