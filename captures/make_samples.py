"""Writes the sample captures of captures/ (text form, .svgascript) and the PNG one of them
reads. Run from the repository: ``.venv/bin/python captures/make_samples.py``. The samples are
committed; this script says how each was made (all pixel data is seeded, nothing random).

Each sample's profile and where its golden comes from are in captures/samples.json.
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def zl(words: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(words, dtype="<u4").tobytes(), 9)).decode()


def pixels(x: int, y: int, block: np.ndarray, key: bool = False) -> str:
    h, w = block.shape
    return f"pixels {x} {y} {w} {h} zlib={zl(block)}" + (" key" if key else "")


def gradient(w: int, h: int) -> np.ndarray:
    r = (np.arange(w, dtype=np.uint32) * 255 // (w - 1))[None, :]
    g = (np.arange(h, dtype=np.uint32) * 255 // (h - 1))[:, None]
    return (r << 16) | (g << 8) | np.uint32(0x40)


def checker(w: int, h: int, cell: int, a: int, b: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.where(((xx // cell) + (yy // cell)) % 2 == 0, a, b).astype(np.uint32)


def header(title: str, lines: list[str]) -> list[str]:
    return [f"# {title}"] + [f"# {line}" for line in lines] + [""]


def mode_update() -> list[str]:
    img = gradient(320, 200)
    rgb = np.stack([(img >> 16) & 255, (img >> 8) & 255, img & 255], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(HERE / "mode-update.png")
    return header("Mode set and a full update: the CPU draws a gradient (from a PNG) and shows it.",
                  ["profile qemu; svga replay captures/mode-update.svgascript --screenshot out.png"]) + [
        "mode 320x200",
        "refresh                           # QEMU adopts the mode at a display refresh",
        "pixels 0 0 320 200 png=mode-update.png",
        "UPDATE x=0 y=0 width=320 height=200",
        "sync",
    ]


def fills() -> list[str]:
    out = header("Device fills (RECT_FILL), overlapping, on a CPU-drawn background.", ["profile qemu"])
    out += ["mode 320x240", "refresh", pixels(0, 0, checker(320, 240, 16, 0x303030, 0x505050), key=True),
            "UPDATE x=0 y=0 width=320 height=240", "sync", "frame 1"]
    colors = [0xFF0000, 0x00FF00, 0x0000FF, 0xFFFF00, 0x00FFFF, 0xFF00FF, 0xFFFFFF, 0x808000]
    for i, c in enumerate(colors):
        out.append(f"RECT_FILL color=0x{c:06x} x={10 + 30 * i} y={20 + 12 * i} width=60 height=40")
    out += ["RECT_FILL color=0x000000 x=0 y=230 width=320 height=10", "sync"]
    return out


def copies() -> list[str]:
    out = header("Overlapping RECT_COPY both ways: right/down over its own source, then left/up.",
                 ["profile qemu; the device must copy as if from a snapshot of the source"])
    block = checker(64, 64, 8, 0xE04040, 0x4040E0)
    block[::7, :] = 0xFFFFFF
    out += ["mode 320x240", "refresh", pixels(0, 0, np.zeros((240, 320), np.uint32), key=True),
            pixels(20, 20, block), "UPDATE x=20 y=20 width=64 height=64",
            pixels(200, 140, block.T.copy()), "UPDATE x=200 y=140 width=64 height=64", "sync", "frame 1",
            "RECT_COPY src_x=20 src_y=20 dest_x=36 dest_y=28 width=64 height=64   # right and down",
            "RECT_COPY src_x=200 src_y=140 dest_x=184 dest_y=128 width=64 height=64  # left and up",
            "RECT_COPY src_x=36 src_y=28 dest_x=36 dest_y=20 width=64 height=64   # straight up",
            "sync"]
    return out


def tiny_updates() -> list[str]:
    out = header("Many tiny updates: 1x1 and 2x2 CPU pixels, each shown on its own, over 6 frames.",
                 ["profile qemu"])
    out += ["mode 256x192", "refresh", pixels(0, 0, np.full((192, 256), 0x102030, np.uint32), key=True),
            "UPDATE x=0 y=0 width=256 height=192", "sync"]
    rng = np.random.default_rng(13)
    for f in range(1, 7):
        out.append(f"frame {f}")
        for _ in range(100):
            size = int(rng.integers(1, 3))
            x, y = int(rng.integers(0, 256 - size)), int(rng.integers(0, 192 - size))
            color = int(rng.integers(0, 1 << 24))
            out.append(pixels(x, y, np.full((size, size), color, np.uint32)))
            out.append(f"UPDATE x={x} y={y} width={size} height={size}")
        out.append("sync")
    return out


def glyph_line(width: int, row: int) -> np.ndarray:
    """An 8-pixel-high line of blocky 'text' (seeded by the row)."""
    rng = np.random.default_rng(row)
    line = np.full((8, width), 0x000020, np.uint32)
    x = 4
    while x < width - 8:
        if rng.random() < 0.8:
            glyph = rng.random((6, 5)) < 0.5
            line[1:7, x: x + 5][glyph] = 0x40FF40
        x += 6 + (6 if rng.random() < 0.15 else 0)
    return line


def scroll() -> list[str]:
    out = header("A scrolling terminal: each frame moves the screen up one 8-pixel line with RECT_COPY",
                 ["and the CPU draws the new line at the bottom, shown by a small UPDATE. profile qemu"])
    w, h = 320, 240
    out += ["mode 320x240", "refresh", pixels(0, 0, np.full((h, w), 0x000020, np.uint32), key=True),
            "UPDATE x=0 y=0 width=320 height=240", "sync"]
    for f in range(1, 61):
        out += [f"frame {f}", f"time {f / 60:.6f}",
                f"RECT_COPY src_x=0 src_y=8 dest_x=0 dest_y=0 width={w} height={h - 8}",
                pixels(0, h - 8, glyph_line(w, f)), f"UPDATE x=0 y={h - 8} width={w} height=8", "sync"]
    return out


def cursor_mono() -> list[str]:
    out = header("The monochrome (AND/XOR) hardware cursor, moved three times. profile qemu-cursor",
                 ["QEMU's screendump never shows the cursor: the golden is the framebuffer under it."])
    size = 32
    opaque = np.zeros((size, size), bool)
    for y in range(24):
        opaque[y, : y * 2 // 3 + 1] = True
    and_mask = np.packbits(~opaque, axis=1, bitorder="big").tobytes().hex()
    xor = np.where(opaque, 0xFFFFFF, 0).astype("<u4")
    xor[opaque & (np.arange(size)[None, :] == 0)] = 0
    out += ["mode 320x240", "refresh", pixels(0, 0, gradient(320, 240), key=True),
            "UPDATE x=0 y=0 width=320 height=240",
            f"DEFINE_CURSOR id=0 hotspot_x=0 hotspot_y=0 width={size} height={size} and_mask_depth=1 "
            f"xor_mask_depth=32 and_mask=hex:{and_mask} xor_mask=hex:{xor.tobytes().hex()}",
            "reg CURSOR_ID=0", "cursor 40 40 show", "sync", "frame 1", "cursor 120 90 show", "sync",
            "frame 2", "cursor 200 150 show", "sync"]
    return out


def cursor_alpha() -> list[str]:
    out = header("The alpha (BGRA) hardware cursor over a checker. profile vmware; golden from the model,",
                 ["with the cursor drawn (svga replay --cursor)."])
    size = 24
    yy, xx = np.mgrid[0:size, 0:size]
    alpha = np.clip(255 - (np.hypot(xx - 11.5, yy - 11.5) * 21).astype(int), 0, 255).astype(np.uint32)
    # Premultiplied BGRA: blue-ish, alpha falling off from the centre.
    b, g, r = alpha, alpha * 128 // 255, alpha * 32 // 255
    img = (alpha << 24) | (r << 16) | (g << 8) | b
    out += ["mode 320x240", pixels(0, 0, checker(320, 240, 20, 0xC0C0C0, 0x404040), key=True),
            "UPDATE x=0 y=0 width=320 height=240",
            f"DEFINE_ALPHA_CURSOR id=0 hotspot_x=12 hotspot_y=12 width={size} height={size} "
            f"image=hex:{img.astype('<u4').tobytes().hex()}",
            "cursor 160 120 show", "sync"]
    return out


def fences_screens() -> list[str]:
    out = header("Fences and a Screen Object. profile vmware (QEMU offers neither; golden from the model).",
                 ["DEFINE_SCREEN makes a primary 320x240 screen at 0,0 over the framebuffer."])
    out += ["mode 320x240", pixels(0, 0, np.full((240, 320), 0x204060, np.uint32), key=True), "FENCE fence=1",
            "DEFINE_SCREEN struct_size=28 id=0 flags=3 width=320 height=240 root_x=0 root_y=0",
            pixels(40, 40, np.full((60, 100), 0xFFC000, np.uint32)), "UPDATE x=40 y=40 width=100 height=60",
            "FENCE fence=2",
            "RECT_COPY src_x=40 src_y=40 dest_x=180 dest_y=140 width=100 height=60", "FENCE fence=3",
            "UPDATE x=0 y=0 width=320 height=240", "sync"]
    return out


def fifo_wrap() -> list[str]:
    out = header("FIFO wrap-around: 4096 RECT_FILLs (96 KiB of commands) through QEMU's 64 KiB FIFO,",
                 ["so the ring wraps while the device runs it (and a SYNC per 512). profile qemu"])
    out += ["mode 256x128", "refresh", pixels(0, 0, np.zeros((128, 256), np.uint32), key=True),
            "UPDATE x=0 y=0 width=256 height=128", "sync"]
    n = 0
    for rep in range(2):
        for ty in range(32):
            for tx in range(64):
                color = ((tx * 4) << 16) | ((ty * 8) << 8) | (0x80 if rep else 0x20)
                if rep and (tx + ty) % 3:
                    color ^= 0xFFFFFF
                out.append(f"RECT_FILL color=0x{color:06x} x={tx * 4} y={ty * 4} width=4 height=4")
                n += 1
                if n % 512 == 0:
                    out += ["sync", f"frame {n // 512}"]
    out.append("sync")
    return out


SAMPLES = {
    "mode-update": (mode_update, "qemu"),
    "fills": (fills, "qemu"),
    "copies": (copies, "qemu"),
    "tiny-updates": (tiny_updates, "qemu"),
    "scroll": (scroll, "qemu"),
    "cursor-mono": (cursor_mono, "qemu-cursor"),
    "cursor-alpha": (cursor_alpha, "vmware"),
    "fences-screens": (fences_screens, "vmware"),
    "fifo-wrap": (fifo_wrap, "qemu"),
}


def main() -> None:
    manifest = {}
    for name, (make, profile) in SAMPLES.items():
        lines = make()
        first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        lines.insert(first, f"capture kind=script profile={profile}   # the device it is written for")
        (HERE / f"{name}.svgascript").write_text("\n".join(lines) + "\n")
        manifest[name] = {"profile": profile, "golden": "model" if profile == "vmware" else "qemu",
                          "cursor": name == "cursor-alpha"}
    (HERE / "samples.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(SAMPLES)} samples to {HERE}")


if __name__ == "__main__":
    main()
