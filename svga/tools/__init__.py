"""Tools layer: the ``svga`` command line and the helpers behind it (the lint, the demo, the
command-script format, QA compare and needles). They use the driver's public API
(svga.device), the transports' constructors, and the software model as a device of its own
(``svga check`` plays streams on it); nothing below imports them."""
