"""Regenerates the goldens of captures/ (captures/goldens/NAME.png): each sample replayed on
the device captures/samples.json names, QEMU's ``-vga vmware`` through qtest for the qemu and
qemu-cursor samples (not the model), the software model for the vmware ones (no VMware device
is reachable). Run from the repository: ``.venv/bin/python captures/make_goldens.py [NAME...]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from svga.captures.files import load_capture  # noqa: E402
from svga.captures.replay import Player, model_device, replay  # noqa: E402
from svga.device import open_device  # noqa: E402


def golden_screen(name: str, spec: dict) -> Image.Image:
    cap = load_capture(HERE / f"{name}.svgascript")
    if spec["golden"] == "qemu":
        dev = open_device("qemu", qemu_display="vnc" if spec["profile"] == "qemu-cursor" else "none")
    else:
        dev = model_device(spec["profile"])
    with dev:
        player = Player(dev)
        replay(cap.items, player, cap.header)
        return Image.fromarray(player.screen(cursor=spec["cursor"]))


def main(names: list[str]) -> None:
    samples = json.loads((HERE / "samples.json").read_text())
    (HERE / "goldens").mkdir(exist_ok=True)
    for name, spec in samples.items():
        if names and name not in names:
            continue
        out = HERE / "goldens" / f"{name}.png"
        golden_screen(name, spec).save(out)
        print(f"{out.relative_to(HERE.parent)}  ({spec['golden']}, profile {spec['profile']})")


if __name__ == "__main__":
    main(sys.argv[1:])
