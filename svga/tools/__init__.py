"""Tools layer: the ``svga`` command line and the helpers behind it. Uses only the
driver's public API (svga.device) and the transports' constructors."""
