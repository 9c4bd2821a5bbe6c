"""Tools layer: one capture on two devices, screens compared (``svga diff``).

Both devices play the capture in step; at the end of every frame their screens are compared
pixel for pixel. At the first frame that differs, both are played again from the start and
compared after every item of that frame, which names the first item (a command, pixels, a
register write) after which they differ. The two screenshots and a diff image (differing
pixels red over a dimmed copy of the first screen) can be written to a folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from svga.captures.replay import Player, replay
from svga.device import Device
from svga.stream.capture import Capture, CaptureError, Frame, frame_spans
from svga.stream.items import StreamItem
from svga.tools.check import describe

Opener = Callable[[], Device]


@dataclass
class DiffResult:
    frame: int | None
    """The first frame whose screens differ (None: they never do)."""
    item: StreamItem | None = None
    """The first item after which they differ."""
    pixels: int = 0
    """Pixels that differ there."""
    screens: tuple[np.ndarray, np.ndarray] | None = None

    def text(self, names: tuple[str, str]) -> str:
        if self.frame is None:
            return f"{names[0]} and {names[1]} show the same screens at every frame"
        where = (f"; first after {self.item.position}: {describe(self.item.event)}"
                 if self.item is not None else "")
        return f"screens differ from frame {self.frame} ({self.pixels} pixels){where}"

    def save(self, folder: str | Path, names: tuple[str, str]) -> list[str]:
        if self.screens is None:
            return []
        out = Path(folder)
        try:
            out.mkdir(parents=True, exist_ok=True)
            a, b = self.screens
            paths = [out / f"{names[0]}.png", out / f"{names[1]}.png", out / "diff.png"]
            Image.fromarray(a).save(paths[0])
            Image.fromarray(b).save(paths[1])
            Image.fromarray(diff_image(a, b)).save(paths[2])
        except OSError as e:
            raise CaptureError(f"cannot write {folder}: {e.strerror or e}") from None
        return [str(p) for p in paths]


def _same_shape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])

    def pad(x: np.ndarray) -> np.ndarray:
        if x.shape[:2] == (h, w):
            return x
        out = np.zeros((h, w, 3), np.uint8)
        out[: x.shape[0], : x.shape[1]] = x
        return out

    return pad(a), pad(b)


def differing(a: np.ndarray, b: np.ndarray) -> int:
    if a.shape != b.shape:
        a, b = _same_shape(a, b)
        return int((a != b).any(axis=2).sum()) or 1
    return int((a != b).any(axis=2).sum())


def diff_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _same_shape(a, b)
    out = (a // 3).astype(np.uint8)
    out[(a != b).any(axis=2)] = (255, 0, 0)
    return out


def diff_capture(capture: Capture, open_a: Opener, open_b: Opener, *, cursor: bool = False) -> DiffResult:
    """Where ``capture`` first shows differently on the two devices."""
    items = capture.items
    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    with open_a() as da, open_b() as db:
        pa, pb = Player(da), Player(db)
        pb.start(capture.header)

        def frame_end(n: int, p: Player) -> None:
            if found:
                return
            sa, sb = p.screen(cursor), pb.screen(cursor)
            if differing(sa, sb):
                found.append((n, sa, sb))

        def step(_: int, item: StreamItem) -> None:
            if not found:
                pb.play(item)

        _replay_until(items, pa, capture, frame_end, step, found)
    if not found:
        return DiffResult(None)
    frame = found[0][0]
    span = next(s for s in frame_spans(items) if s[0] == frame)
    with open_a() as da, open_b() as db:
        pa, pb = Player(da), Player(db)
        pa.start(capture.header)
        pb.start(capture.header)
        for i, item in enumerate(items[: span[2]]):
            if isinstance(item.event, Frame):
                continue
            pa.play(item)
            pb.play(item)
            if i >= span[1]:
                sa, sb = pa.screen(cursor), pb.screen(cursor)
                n = differing(sa, sb)
                if n:
                    return DiffResult(frame, item, n, (sa, sb))
    _, sa, sb = found[0]
    return DiffResult(frame, None, differing(sa, sb), (sa, sb))


def _replay_until(items: list[StreamItem], pa: Player, capture: Capture,
                  frame_end: Callable[[int, Player], None], step: Callable[[int, StreamItem], None],
                  found: list) -> None:
    class _Stop(Exception):
        pass

    def end(n: int, p: Player) -> None:
        frame_end(n, p)
        if found:
            raise _Stop

    try:
        replay(items, pa, capture.header, on_frame_end=end, on_item=step)
    except _Stop:
        pass
