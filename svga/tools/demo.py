"""Tools layer: the test pattern of ``svga demo``.

A scene that exercises the driver end to end and is easy to recognise by eye: a
horizontal/vertical colour gradient drawn by the CPU into the framebuffer, a row of
colour bars and a checker block made with fills, copies of a block (one overlapping its
source), many tiny updates, and an arrow cursor (the hardware cursor where the device
offers one, else drawn into the framebuffer). Every step uses the public Device API only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svga import pixels
from svga.device import Device

BARS = (0xFFFFFF, 0xFFFF00, 0x00FFFF, 0x00FF00, 0xFF00FF, 0xFF0000, 0x0000FF, 0x000000)


def arrow_cursor(size: int = 32) -> np.ndarray:
    """A white arrow with a black outline, (size, size, 4) RGBA, hotspot (0, 0)."""
    img = np.zeros((size, size, 4), dtype=np.uint8)
    tip = size * 3 // 4
    for y in range(tip):
        width = y * 2 // 3 + 1
        img[y, :width] = (255, 255, 255, 255)
        img[y, 0] = img[y, width - 1] = (0, 0, 0, 255)
    img[tip - 1, : (tip - 1) * 2 // 3 + 1] = (0, 0, 0, 255)
    return img


def gradient(width: int, height: int) -> np.ndarray:
    """(height, width) 0x00RRGGBB: red grows left to right, green top to bottom, blue fixed."""
    r = (np.arange(width, dtype=np.uint32) * 255 // max(width - 1, 1))[None, :]
    g = (np.arange(height, dtype=np.uint32) * 255 // max(height - 1, 1))[:, None]
    return (r << 16) | (g << 8) | np.uint32(0x60)


def draw_demo(dev: Device, width: int = 800, height: int = 600,
              progress: Callable[[str], None] = lambda s: None) -> dict[str, int]:
    """Draw the pattern on ``dev`` at ``width`` x ``height``; returns counts of what was sent."""
    dev.set_mode(width, height)
    progress(f"mode {width}x{height}x32 set")
    fb = dev.framebuffer
    fb[:, :] = gradient(width, height)
    dev.update()
    progress("gradient drawn")

    bar_w, bar_h = width // (len(BARS) * 2), height // 8
    fills = 0
    for i, color in enumerate(BARS):
        dev.fill(color, width // 2 + i * bar_w, height // 16, bar_w, bar_h)
        fills += 1
    cell = max(height // 40, 4)
    for cy in range(8):
        for cx in range(8):
            color = 0x202020 if (cx + cy) % 2 else 0xE0E0E0
            dev.fill(color, width // 16 + cx * cell, height // 2 + cy * cell, cell, cell)
            fills += 1
    progress(f"{fills} fills sent")

    # Copies: the checker block to the right, then an overlapping copy of the bars downwards.
    block = 8 * cell
    copies = 0
    dev.copy(width // 16, height // 2, width // 16 + block + cell, height // 2, block, block)
    copies += 1
    dev.copy(width // 2, height // 16, width // 2 + bar_w // 2, height // 16 + bar_h // 2,
             bar_w * len(BARS) - bar_w, bar_h)
    copies += 1
    progress(f"{copies} copies sent")

    # Many tiny updates: a diagonal line of 2x2 dots, each shown on its own.
    dots = 0
    for i in range(0, min(width, height) // 3, 3):
        x, y = width // 2 + i, height // 2 + i
        if x + 2 <= width and y + 2 <= height:
            fb[y: y + 2, x: x + 2] = 0xFFFFFF
            dev.update(x, y, 2, 2)
            dots += 1
    progress(f"{dots} tiny updates sent")

    cursor = arrow_cursor()
    cx, cy = width * 3 // 4, height * 3 // 4
    if dev.has_cursor:
        dev.define_cursor(cursor, hotspot=(0, 0))
        dev.move_cursor(cx, cy)
        progress("hardware cursor defined")
    else:
        # No hardware cursor (QEMU without a display that draws one): draw it ourselves.
        h, w = cursor.shape[:2]
        region = fb[cy: cy + h, cx: cx + w]
        alpha = cursor[: region.shape[0], : region.shape[1], 3] >= 128
        rgb = cursor[: region.shape[0], : region.shape[1], :3].astype(np.uint32)
        region[alpha] = pixels.from_rgb(rgb)[alpha]
        dev.update(cx, cy, region.shape[1], region.shape[0])
        progress("software cursor drawn (the device has no hardware cursor)")
    fence = dev.fence()
    dev.wait_fence(fence)
    dev.sync()
    return {"fills": fills, "copies": copies, "updates": dots + 1}
