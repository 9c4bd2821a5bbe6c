"""Transports: where the device's registers and memory live.

Every transport offers the same small interface (:class:`svga.transport.base.Transport`):
32-bit port reads and writes in BAR0, and the framebuffer (BAR1) and FIFO (BAR2) as
:class:`svga.transport.base.Memory` objects. The driver only ever speaks to this
interface, so it runs unchanged on the PCI device (``svga.transport.pci``), on the
software model (``svga.model``), on QEMU through qtest (``svga.transport.qtest``), and
through a recording wrapper.
"""

from svga.transport.base import ArrayMemory, Memory, Transport

__all__ = ["ArrayMemory", "Memory", "Transport"]
