"""Device facts: what particular devices do, written once, below the model, the lint and the
driver (docs/qemu-7.2.md).

The protocol layer (:mod:`svga.registers`, :mod:`svga.commands`) says what the SVGA II
interface *is*; this layer says what a given device *does* with it:

- :mod:`~svga.facts.effects`: the names and impacts of what a device does with something a
  driver should not send (the findings ``svga check`` reports, the reports the model makes);
- :mod:`~svga.facts.qemu`: QEMU 7.2's ``-vga vmware`` quirks and limits, one table, each row
  with its reason and source;
- :mod:`~svga.facts.kit`: the developer kit's rules a strict device enforces (the ``vmware``
  profile), and the FIFO-size rule every device shares;
- :mod:`~svga.facts.profiles`: the profiles' numbers (capabilities, sizes, limits) and which
  of the tables above each carries.

The software model reads these to behave like a device, the lint reads them (through the
model) to name findings, the driver reads them for the limits it must respect.
"""
