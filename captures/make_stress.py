"""Writes a stress capture: N commands (default 100,000) on QEMU's profile, RECT_FILL, RECT_COPY
and small CPU-drawn UPDATEs in a seeded mix, a SYNC and a frame marker every 1,000 commands.
``.venv/bin/python captures/make_stress.py OUT.svgacap [N]`` (a name not ending in .svgacap
gets the text form). The benchmark (bench/captures.py) and the tests make it the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from svga.captures.files import save_capture  # noqa: E402
from svga.commands import decode, encode  # noqa: E402
from svga.stream.capture import Capture, Frame, Header, Pixels  # noqa: E402
from svga.stream.items import Mode, Position, StreamItem, Sync  # noqa: E402

WIDTH, HEIGHT = 640, 480
FRAME_COMMANDS = 1000


def stress_capture(n: int = 100_000, seed: int = 13) -> Capture:
    rng = np.random.default_rng(seed)
    where = Position("<stress>")
    events: list[object] = [Frame(0), Mode(WIDTH, HEIGHT),
                            Pixels(0, 0, WIDTH, HEIGHT, bytes(WIDTH * HEIGHT * 4), key=True)]
    kinds = rng.random(n)
    xs, ys = rng.integers(0, WIDTH - 32, n), rng.integers(0, HEIGHT - 32, n)
    ws, hs = rng.integers(1, 32, n), rng.integers(1, 32, n)
    colors = rng.integers(0, 1 << 24, n)
    for i in range(n):
        x, y, w, h = int(xs[i]), int(ys[i]), int(ws[i]), int(hs[i])
        if kinds[i] < 0.7:
            data = encode("RECT_FILL", color=int(colors[i]), x=x, y=y, width=w, height=h)
        elif kinds[i] < 0.85:
            dx, dy = int(xs[-i - 1]), int(ys[-i - 1])
            data = encode("RECT_COPY", src_x=x, src_y=y, dest_x=dx, dest_y=dy, width=w, height=h)
        else:
            w, h = min(w, 8), min(h, 8)
            events.append(Pixels(x, y, w, h, np.full(w * h, colors[i], "<u4").tobytes()))
            data = encode("UPDATE", x=x, y=y, width=w, height=h)
        events.append(decode(data)[0])
        if (i + 1) % FRAME_COMMANDS == 0:
            events += [Sync(), Frame((i + 1) // FRAME_COMMANDS)]
    events.append(Sync())
    header = Header(kind="script", profile="qemu", max_width=2368, max_height=1770)
    return Capture(header, [StreamItem(where, ev) for ev in events])  # type: ignore[arg-type]


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    n = int(argv[1]) if len(argv) > 1 else 100_000
    save_capture(argv[0], stress_capture(n))
    print(f"{argv[0]}: {n} commands")


if __name__ == "__main__":
    main(sys.argv[1:])
