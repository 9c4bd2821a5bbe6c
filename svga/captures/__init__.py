"""Tools layer: FIFO captures for graphics developers.

A capture is a command stream grown with what a recording of a real session holds: register
writes, the pixels under each UPDATE and keyframes, frame markers and timestamps. The events,
the text form and the binary form ``.svgacap`` are the protocol layer's stream model
(:mod:`svga.stream`), and the recorder is a transport (:mod:`svga.transport.recorder`); this
package holds what plays and edits captures on a driver, one job each:

- :mod:`~svga.captures.replay`: plays a capture on any device;
- :mod:`~svga.captures.trim`: a frame range with a keyframe of the state at its start;
- :mod:`~svga.captures.diff`: replays on two devices and names where their screens part;
- :mod:`~svga.captures.files`: reading and writing either form by file name.
"""
