"""vmmouse: the absolute pointer of VMware-compatible VMs, bridged to a Linux uinput device.

Two sources feed one pointer-event type into one uinput sink:

- the vmmouse behind the VMware backdoor (I/O port 0x5658): ``vmmouse.backdoor`` is the one
  ``in`` instruction, ``vmmouse.protocol`` the command numbers and packet layout as data,
  ``vmmouse.absolute`` the enable/read/recover logic;
- a USB HID absolute pointer such as QEMU's usb-tablet: ``vmmouse.hid`` parses its report
  descriptor, ``vmmouse.usbtablet`` reads its interrupt endpoint through pyusb.

``vmmouse.events`` holds the shared event type, ``vmmouse.uinput_sink`` turns events into evdev
events, ``vmmouse.wakeup`` waits for the next packet (serio_raw interrupts or adaptive polling),
``vmmouse.mapping`` maps the host's range onto a region of the desktop (``--map-to``),
``vmmouse.sources`` picks a source and its wake-up (and says why one is missing),
``vmmouse.supervisor`` switches sources when one goes away or comes back (hot-plug),
``vmmouse.daemon`` runs the loop and ``vmmouse.cli`` is the ``vmmouse`` command.
``vmmouse.errors`` holds the user-facing errors (``svga.errors`` subclasses) and
``vmmouse.model`` is a software model of QEMU's vmmouse, for tests.
The files around the daemon (udev rules, systemd unit, README) are in ``xorg-bridge/``.
"""
