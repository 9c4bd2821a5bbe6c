"""svga: a userspace driver for the VMware SVGA II display adapter (PCI 15ad:0405).

Layers, bottom up (nothing below reaches up):

- protocol: ``svga.registers`` (register indices, IDs, capabilities, FIFO registers),
  ``svga.commands`` (the FIFO command table, encoders and decoders);
- transports: ``svga.transport`` (sysfs PCI BARs, qtest) and ``svga.model`` (the software
  device model), all behind one small interface;
- driver: ``svga.fifo`` (the command ring) and ``svga.device`` (the user-facing API);
- tools: ``svga.tools`` (the ``svga`` command line).
"""

from svga.errors import SVGAError

__all__ = ["SVGAError", "open_device"]


def open_device(spec: str = "auto", **kwargs):  # noqa: ANN201 - re-exported below
    """Open a device by name: ``auto``, ``model``, ``qemu`` or a PCI address. See svga.device."""
    from svga.device import open_device as _open

    return _open(spec, **kwargs)
