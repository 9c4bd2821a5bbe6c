"""The software model of the SVGA II device: a transport from the driver's point of view.

``ModelTransport(profile="vmware" | "qemu" | "qemu-cursor", vram_size, fifo_size)`` is the
device a machine without a VM gets. Its modules, bottom up:

- what device it is comes from the device-facts layer below (:mod:`svga.facts`: the
  profiles, QEMU 7.2's quirks, the kit's rules);
- :mod:`~svga.model.report`: how errors and imitated quirks are raised or observed;
- :mod:`~svga.model.cursor`: cursor mask decoding (VMware's and QEMU's readings);
- :mod:`~svga.model.state`: the device's mutable state;
- :mod:`~svga.model.raster`: numpy fill / copy / read-out / cursor compositing;
- :mod:`~svga.model.executor`: what each FIFO command does, with strict checks;
- :mod:`~svga.model.fastpath`: UPDATE, RECT_FILL and RECT_COPY straight from the FIFO words,
  handing anything unusual to the strict path;
- :mod:`~svga.model.engine`: FIFO pointer checks, decoding with the command table, dispatch;
- :mod:`~svga.model.regfile`: register semantics;
- :mod:`~svga.model.transport`: :class:`ModelTransport`, wiring it together.
"""

from svga.errors import ModelError
from svga.facts.profiles import PROFILES, Profile, get_profile
from svga.model.transport import ModelTransport

__all__ = ["ModelTransport", "ModelError", "Profile", "PROFILES", "get_profile"]
