"""Tools layer: FIFO captures for graphics developers.

A capture is a command stream (:mod:`svga.tools.stream`) grown with what a recording of a
real session holds: register writes, the pixels under each UPDATE and keyframes, frame
markers and timestamps. Its modules, one job each:

- :mod:`~svga.captures.events`: the capture's own events (beside the stream's), its header,
  and the error every reader raises;
- :mod:`~svga.captures.text`: the text form, the ``.svgascript`` grammar with more lines;
- :mod:`~svga.captures.binary`: the chunked binary form ``.svgacap`` (docs/capture-format.md);
- :mod:`~svga.captures.recorder`: a transport wrapper that records what a driver does;
- :mod:`~svga.captures.replay`: plays a capture on any device;
- :mod:`~svga.captures.trim`: a frame range with a keyframe of the state at its start;
- :mod:`~svga.captures.diff`: replays on two devices and names where their screens part;
- :mod:`~svga.captures.files`: reading and writing either form by file name.
"""
