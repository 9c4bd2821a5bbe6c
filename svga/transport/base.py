"""The transport interface: BAR0 ports, BAR1 framebuffer memory, BAR2 FIFO memory.

Kept deliberately small so that a recording wrapper, a qtest client or a mmap of sysfs
resources can each implement it in one module. Memory is byte-addressed; 32-bit accesses
are little-endian, as on the device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from svga.errors import DeviceError


class MemoryRangeError(DeviceError, IndexError):
    """An access outside a device memory region (an IndexError too, for older callers)."""


class Memory(ABC):
    """A device memory region (the framebuffer or the FIFO)."""

    size: int

    @abstractmethod
    def read(self, offset: int, length: int) -> bytes: ...

    @abstractmethod
    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None: ...

    def read32(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 4), "little")

    def write32(self, offset: int, value: int) -> None:
        self.write(offset, (int(value) & 0xFFFFFFFF).to_bytes(4, "little"))

    def array(self) -> np.ndarray | None:
        """A writable uint8 view of the memory when it is directly mapped (mmap, model),
        else None (the caller then keeps a shadow copy and writes it back)."""
        return None

    def flush(self) -> None:
        """Make every earlier write visible to the device (no-op when mapped)."""

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise MemoryRangeError(
                f"access of {length} bytes at offset {offset} is outside a {self.size}-byte region"
            )


class ArrayMemory(Memory):
    """Memory backed by a numpy uint8 array (a mmap'ed BAR, or the model's own memory)."""

    def __init__(self, buf: np.ndarray) -> None:
        if buf.dtype != np.uint8 or buf.ndim != 1:
            raise TypeError("ArrayMemory needs a 1-D uint8 array")
        self._a = buf
        self._w = buf[: len(buf) // 4 * 4].view("<u4")
        self.size = len(buf)

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return self._a[offset: offset + length].tobytes()

    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        src = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
            else data.reshape(-1).view(np.uint8)
        self._check(offset, len(src))
        self._a[offset: offset + len(src)] = src

    def read32(self, offset: int) -> int:
        if offset & 3:
            return super().read32(offset)
        self._check(offset, 4)
        return int(self._w[offset >> 2])

    def write32(self, offset: int, value: int) -> None:
        if offset & 3:
            return super().write32(offset, value)
        self._check(offset, 4)
        self._w[offset >> 2] = int(value) & 0xFFFFFFFF

    def array(self) -> np.ndarray:
        return self._a


class Transport(ABC):
    """One SVGA II device, as the driver sees it."""

    #: short name of the kind of transport: "model", "pci", "qemu", ...
    kind: str = "?"
    #: one line saying which device this is (shown by ``svga info``).
    description: str = ""
    vram: Memory
    fifo: Memory

    @abstractmethod
    def port_read(self, offset: int) -> int:
        """32-bit read of BAR0 + offset."""

    @abstractmethod
    def port_write(self, offset: int, value: int) -> None:
        """32-bit write of BAR0 + offset."""

    def display_image(self, with_cursor: bool = False) -> np.ndarray | None:
        """What the device's display shows now, as an HxWx3 uint8 RGB array, when the
        transport can tell (the model, QEMU's screendump); None otherwise, and the driver
        reads the framebuffer instead. ``with_cursor`` composites the hardware cursor where
        the transport knows it (QEMU's screendump never shows it)."""
        return None

    def close(self) -> None:
        """Release the device. Idempotent."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
