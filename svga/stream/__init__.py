"""Protocol layer: the one stream model, and the capture format built on it.

A command stream is what a driver does to one SVGA II device, in order, as events with a
position (a script line or a byte offset). Every part of the suite that describes a stream
uses this package: command scripts and ``svga check`` (svga/tools/check.py), captures and
their replays (svga/captures/), the recorder (svga/transport/recorder.py) and the
differential tests (svga/tools/differential.py). It needs only the protocol modules
(svga.commands, svga.registers, svga.errors, svga.pixels), so every layer may use it.

- :mod:`~svga.stream.items`: the stream's events (Command, Raw, Mode, Sync, Refresh,
  CursorMove), :class:`~svga.stream.items.StreamItem`, and ``normalize`` (the stream as the
  device's FIFO parser sees it);
- :mod:`~svga.stream.capture`: the events a capture adds (register writes, pixels, frames,
  times), its header and :class:`~svga.stream.capture.CaptureError`;
- :mod:`~svga.stream.script`: the command-script grammar (``.svgascript``);
- :mod:`~svga.stream.text`: the capture's text form, that grammar with more lines;
- :mod:`~svga.stream.binary`: the chunked binary form ``.svgacap`` (docs/capture-format.md).
"""
