"""Tools layer: a capture cut to frames A..B (``svga trim``).

The frames before A are played on the software model of the capture's profile (in its
non-raising mode); the state they leave becomes a keyframe that opens frame A: the mode (and a
display refresh if one followed it: QEMU adopts a mode there), the
framebuffer (a key ``pixels`` and an UPDATE of the whole screen), and the cursor (its last
definition and its last position, by register or cursor bypass 3). Frames A..B follow as they
were; frame numbers are kept. Replayed, the result shows the same pixels as the original at
every kept frame, as long as the original had shown what it drew by then (an UPDATE after the
CPU's drawing): a keyframe cannot bring back a screen that differs from its framebuffer.
"""

from __future__ import annotations

from collections.abc import Iterable

from svga.captures.replay import Player, model_device
from svga.commands import Cmd, Command, decode, encode
from svga.registers import FifoReg
from svga.stream.capture import Capture, CaptureError, FifoRegWrite, Frame, Header, Pixels, frame_spans
from svga.stream.items import CursorMove, Mode, Position, Refresh, StreamItem

_CURSOR_DEFS = (int(Cmd.DEFINE_CURSOR), int(Cmd.DEFINE_ALPHA_CURSOR))
_BYPASS = (FifoReg.CURSOR_ON, FifoReg.CURSOR_X, FifoReg.CURSOR_Y, FifoReg.CURSOR_COUNT)


def trim(capture: Capture, lo: int, hi: int, name: str = "<trim>") -> Capture:
    """Frames ``lo``..``hi`` of ``capture``, opened by a keyframe of the state at ``lo``."""
    items = capture.items
    spans = [s for s in frame_spans(items) if lo <= s[0] <= hi]
    if not spans:
        known = [s[0] for s in frame_spans(items)]
        raise CaptureError(f"{name}: no frame in {lo}..{hi} (the capture has frames "
                           f"{known[0]}..{known[-1]})" if known else f"{name}: the capture is empty")
    first = spans[0][1]
    before = items[:first]
    kept = items[first: spans[-1][2]]
    if kept and isinstance(kept[0].event, Frame):
        kept = kept[1:]
    start = spans[0][0]
    key = keyframe(before, capture.header, Position(name, line=0))
    head = [StreamItem(Position(name, line=0), Frame(start))]
    header = capture.header.replace(start_mode=(0, 0, 0))
    return Capture(header, head + key + kept)


def keyframe(before: Iterable[StreamItem], header: Header, where: Position) -> list[StreamItem]:
    """The items that bring a fresh device to the state ``before`` leaves it in."""
    before = list(before)
    dev = model_device(header.profile or "vmware")
    with dev:
        player = Player(dev)
        player.start(header)
        cursor_def: Command | None = None
        cursor_move: CursorMove | None = None
        bypass: dict[int, int] = {}
        refreshed = False  # a display refresh since the last mode (QEMU adopts the mode there)
        for item in before:
            ev = item.event
            if isinstance(ev, Frame):
                continue
            player.play(item)
            if isinstance(ev, Command) and ev.cmd_id in _CURSOR_DEFS:
                cursor_def = ev
            elif isinstance(ev, CursorMove):
                cursor_move = ev
            elif isinstance(ev, Mode):
                refreshed = False
            elif isinstance(ev, Refresh):
                refreshed = True
            elif isinstance(ev, FifoRegWrite) and ev.index in _BYPASS:
                bypass[ev.index] = ev.value
        dev.sync()
        out: list[object] = []
        mode = dev.mode
        if mode is not None:
            out.append(Mode(mode.width, mode.height, mode.bpp))
            if refreshed:
                out.append(Refresh())
            data = dev.read_vram().astype("<u4").tobytes()
            out.append(Pixels(0, 0, mode.width, mode.height, data, key=True))
            out.append(_command("UPDATE", x=0, y=0, width=mode.width, height=mode.height))
        if cursor_def is not None:
            out.append(cursor_def)
        if cursor_move is not None:
            out.append(cursor_move)
        for reg in _BYPASS:
            if reg in bypass:
                out.append(FifoRegWrite(int(reg), bypass[reg]))
    return [StreamItem(where, ev) for ev in out]  # type: ignore[arg-type]


def _command(name: str, **fields: int) -> Command:
    return decode(encode(name, **fields))[0]
