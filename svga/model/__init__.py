"""The software model of the SVGA II device (a transport from the driver's view)."""
