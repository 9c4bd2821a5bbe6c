"""Errors of the svga package: every failure a user can meet is one of these, with a
one-line message that says what went wrong and, where there is one, what to do."""


class SVGAError(Exception):
    """Base class: the message is one line, fit to print after ``svga: error:``."""


class DeviceNotFound(SVGAError):
    """No SVGA II device where one was asked for."""


class DeviceBusy(SVGAError):
    """A kernel driver owns the device."""


class AccessDenied(SVGAError):
    """Not root, kernel lockdown, or a file that cannot be opened."""


class UnsupportedDevice(SVGAError):
    """The device answered, but not as an SVGA II device we can drive (ID, BAR sizes)."""


class ProtocolError(SVGAError):
    """A command stream that cannot be encoded or decoded."""


class UnknownCommand(ProtocolError):
    """A command id that is not in the command table."""

    def __init__(self, cmd_id: int, offset: int | None = None) -> None:
        where = f" at FIFO offset {offset}" if offset is not None else ""
        super().__init__(f"unknown command id {cmd_id}{where}")
        self.cmd_id = cmd_id
        self.offset = offset


class IncompleteCommand(ProtocolError):
    """A command whose words run past the end of the data given."""

    def __init__(self, name: str, needed: int, available: int, offset: int | None = None) -> None:
        where = f" at FIFO offset {offset}" if offset is not None else ""
        super().__init__(
            f"{name}{where} needs {needed} words but only {available} are there"
        )
        self.name = name
        self.needed = needed
        self.available = available
        self.offset = offset


class DeviceError(SVGAError):
    """The device (real, model or QEMU) rejected a command or stopped answering."""


class FifoError(DeviceError):
    """The FIFO is stalled or its pointers are broken."""


class ModelError(DeviceError):
    """The software model refused a register write or a FIFO command: a driver bug that a
    real device would often swallow silently. ``command`` and ``offset`` say which FIFO
    command (by name) and where (FIFO byte offset), when the error is about one;
    ``errors`` lists every error of the same FIFO run (this one first). ``key`` names what
    happened (a :class:`svga.facts.effects.E` value, e.g. ``"rect-outside"``) and ``detail``
    is the message without the "NAME at FIFO offset N: " prefix."""

    def __init__(self, message: str, command: str | None = None, offset: int | None = None,
                 key: str = "model-rejects", detail: str | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.offset = offset
        self.key = key
        self.detail = message if detail is None else detail
        self.errors: list[ModelError] = [self]
