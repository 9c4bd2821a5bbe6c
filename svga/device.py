"""Driver layer: the SVGA II device as a user sees it.

    from svga.device import open_device

    with open_device("auto") as dev:          # "model", "qemu", or a PCI address too
        dev.set_mode(1024, 768)               # 32 bpp
        dev.framebuffer[:] = 0x202040         # a numpy (height, width) uint32 view, 0x00RRGGBB
        dev.update()                          # show it
        dev.fill(0xFF0000, 10, 10, 100, 50)   # device fill when offered, else CPU + UPDATE
        dev.copy(10, 10, 200, 10, 100, 50)
        dev.define_cursor(rgba, hotspot=(0, 0)); dev.move_cursor(300, 200)
        dev.wait_fence(dev.fence()); dev.sync()
        dev.screenshot().save("out.png")      # Pillow image of what the screen shows

It negotiates the version (ID_2, then ID_1, ID_0), reads the capabilities, and gates
every optional feature on them: the FIFO commands it sends are only those the device
promises to handle (on QEMU: UPDATE, RECT_FILL, RECT_COPY, DEFINE_CURSOR with the cursor
capability; never FENCE, UPDATE_VERBOSE or Screen Object commands). Leaving the ``with``
block drains the FIFO and hides the cursor; the mode stays up so what was drawn stays
visible (``close(disable=True)`` returns the device to VGA).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from svga import commands, pixels
from svga.errors import DeviceError, SVGAError, UnsupportedDevice
from svga.facts.qemu import QEMU_CURSOR_LIMITS
from svga.fifo import Fifo
from svga.registers import (
    SVGA_ID_0,
    SVGA_ID_1,
    SVGA_ID_2,
    Cap,
    FifoCap,
    FifoReg,
    Reg,
    RegisterFile,
    flag_names,
)
from svga.transport.base import Transport

log = logging.getLogger(__name__)

ACCEL_CHOICES = ("auto", "on", "off")
CURSOR_MAX = QEMU_CURSOR_LIMITS.largest_square(32)
"""Largest hardware cursor this driver defines: QEMU's limit for 32 bpp XOR masks (64), so the
same cursor works on every device."""


@dataclass(frozen=True)
class Mode:
    width: int
    height: int
    bpp: int
    pitch: int  # BYTES_PER_LINE
    fb_offset: int


class Device:
    """One SVGA II device over a transport. See the module docstring for a tour."""

    def __init__(self, transport: Transport, accel: str = "auto") -> None:
        if accel not in ACCEL_CHOICES:
            raise SVGAError(f"accel must be one of {', '.join(ACCEL_CHOICES)}, not {accel!r}")
        self.transport = transport
        self.regs = RegisterFile(transport)
        #: "auto", "on" or "off": whether fill() and copy() use RECT_FILL / RECT_COPY. A
        #: public attribute: change it at any time.
        self.accel = accel
        self.version = self._negotiate()
        self.caps = Cap(self.regs.read(Reg.CAPABILITIES)) if self.version >= 1 else Cap(0)
        self.vram_size = self.regs.read(Reg.VRAM_SIZE)
        self.fb_size = self.regs.read(Reg.FB_SIZE)
        self.mem_size = self.regs.read(Reg.MEM_SIZE) if self.version >= 1 else transport.fifo.size
        self.max_width = self.regs.read(Reg.MAX_WIDTH)
        self.max_height = self.regs.read(Reg.MAX_HEIGHT)
        mem_regs = self.regs.read(Reg.MEM_REGS) if self.caps & Cap.EXTENDED_FIFO else 0
        self.fifo = Fifo(self.regs, transport.fifo, self.caps, mem_regs, self.mem_size)
        self.mode: Mode | None = None
        self._fb: np.ndarray | None = None
        self._shadow = False
        self._cursor_count = 0
        self._closed = False

    # -- negotiation and facts ------------------------------------------------------------
    def _negotiate(self) -> int:
        """Write the newest ID we speak and read it back; fall back to older ones."""
        for version, ident in ((2, SVGA_ID_2), (1, SVGA_ID_1), (0, SVGA_ID_0)):
            self.regs.write(Reg.ID, ident)
            if self.regs.read(Reg.ID) == ident:
                return version
        raise UnsupportedDevice(
            f"{self.transport.description or 'device'} accepts none of SVGA_ID_2, _1, _0 "
            f"(ID reads 0x{self.regs.read(Reg.ID):08x}): not an SVGA II device"
        )

    @property
    def fifo_caps(self) -> FifoCap:
        return self.fifo.fifo_caps

    def has(self, cap: Cap) -> bool:
        return bool(self.caps & cap)

    def info(self) -> dict[str, Any]:
        """Everything ``svga info`` shows, as plain data."""
        if not self.fifo.initialised and self.caps & Cap.EXTENDED_FIFO:
            fifo_caps = FifoCap(self.transport.fifo.read32(FifoReg.CAPABILITIES * 4))
        else:
            fifo_caps = self.fifo_caps
        width = self.regs.read(Reg.WIDTH)
        height = self.regs.read(Reg.HEIGHT)
        return {
            "device": self.transport.description,
            "transport": self.transport.kind,
            "version": self.version,
            "capabilities": int(self.caps),
            "capability_names": flag_names(int(self.caps), Cap),
            "fifo_capabilities": int(fifo_caps),
            "fifo_capability_names": flag_names(int(fifo_caps), FifoCap),
            "vram_size": self.vram_size,
            "fb_size": self.fb_size,
            "fifo_size": self.mem_size,
            "max_mode": (self.max_width, self.max_height),
            "mode": {
                "enabled": self.regs.read(Reg.ENABLE),
                "width": width,
                "height": height,
                "bpp": self.regs.read(Reg.BITS_PER_PIXEL),
                "depth": self.regs.read(Reg.DEPTH),
                "bytes_per_line": self.regs.read(Reg.BYTES_PER_LINE),
                "fb_offset": self.regs.read(Reg.FB_OFFSET),
            },
        }

    # -- enabling and modes ---------------------------------------------------------------
    def enable(self) -> None:
        """Lay out the FIFO, enable SVGA mode and the FIFO (kit: SVGA_Enable)."""
        if not self.fifo.initialised:
            self.fifo.init()

    def set_mode(self, width: int, height: int, bpp: int = 32) -> Mode:
        """Switch to ``width`` x ``height`` at 32 bpp, and check the device took it."""
        if bpp != 32:
            raise SVGAError(f"only 32 bpp modes are supported, not {bpp}")
        if not (1 <= width <= self.max_width and 1 <= height <= self.max_height):
            raise SVGAError(
                f"mode {width}x{height} is outside the device's 1x1..{self.max_width}x{self.max_height}"
            )
        if width * height * 4 > self.fb_size:
            raise SVGAError(
                f"mode {width}x{height}x32 needs {width * height * 4} bytes; "
                f"the framebuffer has {self.fb_size}"
            )
        if self.fifo.initialised:
            self.fifo.sync()  # commands already queued refer to the old mode
        self.regs.write(Reg.WIDTH, width)
        self.regs.write(Reg.HEIGHT, height)
        self.regs.write(Reg.BITS_PER_PIXEL, bpp)
        self.enable()
        self.regs.write(Reg.ENABLE, 1)
        got_w, got_h = self.regs.read(Reg.WIDTH), self.regs.read(Reg.HEIGHT)
        pitch, offset = self.regs.read(Reg.BYTES_PER_LINE), self.regs.read(Reg.FB_OFFSET)
        if (got_w, got_h) != (width, height):
            raise DeviceError(f"the device did not take mode {width}x{height}: it reads {got_w}x{got_h}")
        if not self.regs.read(Reg.CONFIG_DONE):
            # QEMU clears CONFIG_DONE on a BITS_PER_PIXEL write it does not like.
            self.regs.write(Reg.CONFIG_DONE, 1)
        if pitch < width * 4 or offset + pitch * height > self.fb_size:
            raise DeviceError(
                f"the device reports BYTES_PER_LINE={pitch}, FB_OFFSET={offset} for {width}x{height}: "
                "that does not fit the framebuffer"
            )
        self.mode = Mode(width, height, bpp, pitch, offset)
        self._map_framebuffer()
        return self.mode

    def adopt_mode(self) -> Mode:
        """Take the mode the device is in now (set by an earlier program) without changing it."""
        if not self.regs.read(Reg.ENABLE):
            raise SVGAError("the device is not in SVGA mode: no mode to take a screenshot of")
        width, height = self.regs.read(Reg.WIDTH), self.regs.read(Reg.HEIGHT)
        pitch, offset = self.regs.read(Reg.BYTES_PER_LINE), self.regs.read(Reg.FB_OFFSET)
        if not width or not height or pitch < width * 4 or offset + pitch * height > self.fb_size:
            raise DeviceError(
                f"the device reports an unusable mode {width}x{height}, {pitch} bytes/line"
            )
        self.mode = Mode(width, height, 32, pitch, offset)
        self._map_framebuffer()
        return self.mode

    def _need_mode(self) -> Mode:
        if self.mode is None:
            raise SVGAError("no mode set: call set_mode() first")
        return self.mode

    def _map_framebuffer(self) -> None:
        mode = self._need_mode()
        rows = np.empty(0)
        arr = self.transport.vram.array()
        nbytes = mode.pitch * mode.height
        if arr is not None:
            rows = arr[mode.fb_offset: mode.fb_offset + nbytes]
            self._shadow = False
        else:
            # No direct mapping (qtest): draw into a shadow copy, uploaded by update().
            rows = np.frombuffer(bytearray(self.transport.vram.read(mode.fb_offset, nbytes)), np.uint8)
            self._shadow = True
        self._fb = rows.view("<u4").reshape(mode.height, mode.pitch // 4)

    @property
    def framebuffer(self) -> np.ndarray:
        """The visible framebuffer as a writable (height, width) uint32 array, 0x00RRGGBB.
        Draw into it, then call :meth:`update` for the area you changed."""
        mode = self._need_mode()
        assert self._fb is not None
        return self._fb[:, : mode.width]

    # -- drawing ----------------------------------------------------------------------------
    def _check_rect(self, what: str, x: int, y: int, w: int, h: int) -> None:
        mode = self._need_mode()
        if w < 0 or h < 0 or x < 0 or y < 0 or x + w > mode.width or y + h > mode.height:
            raise SVGAError(
                f"{what} rectangle {x},{y} {w}x{h} is outside the {mode.width}x{mode.height} mode"
            )

    def _upload(self, x: int, y: int, w: int, h: int) -> None:
        """Shadowed framebuffer: send the rectangle to VRAM. Whole-width rectangles are one
        contiguous write; narrower ones one write per row (a write-combining transport
        sends them as a batch)."""
        if not self._shadow or w <= 0 or h <= 0:
            return
        mode = self._need_mode()
        assert self._fb is not None
        vram = self.transport.vram
        if x == 0 and w == mode.width:
            vram.write(mode.fb_offset + y * mode.pitch, self._fb[y: y + h].reshape(-1))
            return
        for row in range(y, y + h):
            vram.write(mode.fb_offset + row * mode.pitch + x * 4, self._fb[row, x: x + w])

    def _reread(self, x: int, y: int, w: int, h: int) -> None:
        """Shadowed framebuffer after the device drew into it: take what VRAM now holds
        (not a prediction: QEMU may drop or misplace a fill, see the stale-stride quirk)."""
        if not self._shadow:
            return
        self.sync()
        mode = self._need_mode()
        assert self._fb is not None
        for row in range(y, y + h):
            raw = self.transport.vram.read(mode.fb_offset + row * mode.pitch + x * 4, w * 4)
            self._fb[row, x: x + w] = np.frombuffer(raw, "<u4")

    def update(self, x: int = 0, y: int = 0, width: int | None = None, height: int | None = None) -> None:
        """Show a rectangle of the framebuffer (all of it by default): SVGA_CMD_UPDATE."""
        mode = self._need_mode()
        w = mode.width - x if width is None else width
        h = mode.height - y if height is None else height
        self._check_rect("update", x, y, w, h)
        if w == 0 or h == 0:
            return
        self._upload(x, y, w, h)
        self.fifo.send(commands.Cmd.UPDATE, x=x, y=y, width=w, height=h)

    def _use_accel(self, cmd: commands.Cmd) -> bool:
        if self.accel == "off" or not self.fifo.offers(cmd):
            return False
        if self.accel == "on":
            return True
        # auto: QEMU (the device without the extended FIFO) fills and copies against the
        # display surface of its last refresh, which lags mode changes and never catches up
        # headless (docs/qemu-7.2.md, stale-stride quirk). CPU drawing + UPDATE is right there.
        return self.has(Cap.EXTENDED_FIFO)

    def fill(self, color: int, x: int, y: int, width: int, height: int) -> None:
        """Fill a rectangle with a 0x00RRGGBB colour."""
        self._check_rect("fill", x, y, width, height)
        if width == 0 or height == 0:
            return
        if self._use_accel(commands.Cmd.RECT_FILL):
            self.fifo.send(commands.Cmd.RECT_FILL, color=color & 0xFFFFFFFF, x=x, y=y,
                           width=width, height=height)
            self._reread(x, y, width, height)
            return
        self.framebuffer[y: y + height, x: x + width] = color & 0xFFFFFFFF
        self.update(x, y, width, height)

    def copy(self, src_x: int, src_y: int, dest_x: int, dest_y: int, width: int, height: int) -> None:
        """Copy a rectangle within the screen (overlap-safe)."""
        self._check_rect("copy source", src_x, src_y, width, height)
        self._check_rect("copy destination", dest_x, dest_y, width, height)
        if width == 0 or height == 0:
            return
        if self._use_accel(commands.Cmd.RECT_COPY):
            self.fifo.send(commands.Cmd.RECT_COPY, src_x=src_x, src_y=src_y, dest_x=dest_x,
                           dest_y=dest_y, width=width, height=height)
            self._reread(dest_x, dest_y, width, height)
            return
        fb = self.framebuffer
        # A copy of the source first: overlapping copies read the source as it was.
        fb[dest_y: dest_y + height, dest_x: dest_x + width] = fb[src_y: src_y + height,
                                                                 src_x: src_x + width].copy()
        self.update(dest_x, dest_y, width, height)

    # -- cursor ---------------------------------------------------------------------------
    @property
    def has_cursor(self) -> bool:
        offers = self.fifo.offers
        return offers(commands.Cmd.DEFINE_CURSOR) or offers(commands.Cmd.DEFINE_ALPHA_CURSOR)

    def define_cursor(self, rgba: np.ndarray, hotspot: tuple[int, int] = (0, 0)) -> None:
        """Define the hardware cursor from an (h, w, 4) uint8 RGBA image.

        With SVGA_CAP_ALPHA_CURSOR: DEFINE_ALPHA_CURSOR (BGRA). Else with SVGA_CAP_CURSOR:
        DEFINE_CURSOR with a 1 bpp AND mask (set = transparent) and a 32 bpp XOR image,
        the width padded to a multiple of 32 (QEMU steps mask rows by whole bytes, VMware by
        32-bit words: at multiples of 32 both agree)."""
        img = np.asarray(rgba, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 4:
            raise SVGAError("a cursor image must be an (height, width, 4) RGBA array")
        h, w = img.shape[:2]
        if not (1 <= w <= CURSOR_MAX and 1 <= h <= CURSOR_MAX):
            raise SVGAError(f"cursor {w}x{h} is outside 1x1..{CURSOR_MAX}x{CURSOR_MAX}")
        hx, hy = hotspot
        if not (0 <= hx < w and 0 <= hy < h):
            raise SVGAError(f"cursor hotspot {hx},{hy} is outside the {w}x{h} image")
        self.enable()
        if self.fifo.offers(commands.Cmd.DEFINE_ALPHA_CURSOR):
            bgra = img[..., [2, 1, 0, 3]].tobytes()
            self.fifo.send(commands.Cmd.DEFINE_ALPHA_CURSOR, id=0, hotspot_x=hx, hotspot_y=hy,
                           width=w, height=h, image=bgra)
            self._cursor_shape = (img.copy(), hx, hy, True)  # for screenshot(composite=True)
        elif self.fifo.offers(commands.Cmd.DEFINE_CURSOR):
            pw = (w + 31) // 32 * 32
            opaque = np.zeros((h, pw), dtype=bool)
            opaque[:, :w] = img[..., 3] >= 128
            and_mask = np.packbits(~opaque, axis=1, bitorder="big")  # MSB = leftmost pixel
            xor = np.zeros((h, pw), dtype="<u4")
            xor[:, :w] = pixels.from_rgb(img)
            xor[~opaque] = 0
            self.fifo.send(commands.Cmd.DEFINE_CURSOR, id=0, hotspot_x=hx, hotspot_y=hy, width=pw,
                           height=h, and_mask_depth=1, xor_mask_depth=32,
                           and_mask=and_mask.tobytes(), xor_mask=xor.tobytes())
            self._cursor_shape = (img.copy(), hx, hy, False)  # for screenshot(composite=True)
        else:
            raise SVGAError("this device offers no hardware cursor (no CURSOR capability)")

    def move_cursor(self, x: int, y: int, visible: bool = True) -> None:
        """Place (and show or hide) the hardware cursor: FIFO cursor bypass 3 when offered,
        else the legacy CURSOR_* registers (QEMU moves it only on the CURSOR_ON write)."""
        if not self.has_cursor:
            raise SVGAError("this device offers no hardware cursor (no CURSOR capability)")
        self._cursor_at = (x, y, visible)  # for screenshot(composite=True)
        if self.fifo.has_cap(FifoCap.CURSOR_BYPASS_3):
            mem = self.transport.fifo
            mem.write32(FifoReg.CURSOR_ON * 4, int(visible))
            mem.write32(FifoReg.CURSOR_X * 4, x & 0xFFFFFFFF)
            mem.write32(FifoReg.CURSOR_Y * 4, y & 0xFFFFFFFF)
            self._cursor_count = (mem.read32(FifoReg.CURSOR_COUNT * 4) + 1) & 0xFFFFFFFF
            mem.write32(FifoReg.CURSOR_COUNT * 4, self._cursor_count)
            mem.flush()
        else:
            self.regs.write(Reg.CURSOR_ID, 0)
            self.regs.write(Reg.CURSOR_X, x & 0xFFFFFFFF)
            self.regs.write(Reg.CURSOR_Y, y & 0xFFFFFFFF)
            self.regs.write(Reg.CURSOR_ON, int(visible))

    # -- synchronisation --------------------------------------------------------------------
    def fence(self) -> int:
        """Insert a fence (FIFO_CAP_FENCE) and return it; see :meth:`wait_fence`."""
        return self.fifo.insert_fence()

    def wait_fence(self, fence: int) -> None:
        """Wait until the device has passed ``fence`` (a full sync without fences)."""
        self.fifo.sync_to_fence(fence)

    def sync(self) -> None:
        """Wait until the device has processed every command sent so far."""
        self.fifo.sync()

    # -- reading back -----------------------------------------------------------------------
    def read_vram(self) -> np.ndarray:
        """The visible framebuffer as the device's memory holds it: (h, w) uint32."""
        mode = self._need_mode()
        raw = self.transport.vram.read(mode.fb_offset, mode.pitch * mode.height)
        return np.frombuffer(raw, "<u4").reshape(mode.height, mode.pitch // 4)[:, : mode.width]

    def screenshot_array(self, source: str = "display", cursor: bool = True,
                         composite: bool = False) -> np.ndarray:
        """(h, w, 3) uint8 RGB. ``display``: what the device shows, where the transport can
        tell (model, QEMU screendump), else VRAM; ``vram``: the framebuffer memory.
        ``composite`` (display only): also draw the hardware cursor this driver last defined
        and placed, as the device shows it, where the transport cannot (QEMU's screendump
        and VRAM never include it; the model draws its own)."""
        self.sync()
        if source == "display":
            img = self.transport.display_image(with_cursor=cursor or composite)
            if img is not None:
                return self._draw_cursor(img) if composite else img
        elif source != "vram":
            raise SVGAError(f"screenshot source must be display or vram, not {source!r}")
        px = self.read_vram()
        rgb = pixels.to_rgb(px)
        return self._draw_cursor(rgb) if composite and source == "display" else rgb

    def _draw_cursor(self, img: np.ndarray) -> np.ndarray:
        """The remembered cursor over ``img``: an alpha cursor as premultiplied alpha (how
        the device takes DEFINE_ALPHA_CURSOR), an AND/XOR cursor opaque where alpha >= 128."""
        shape, at = getattr(self, "_cursor_shape", None), getattr(self, "_cursor_at", None)
        if self.transport.kind == "model" or shape is None or at is None or not at[2]:
            return img
        rgba, hx, hy, alpha = shape
        left, top = at[0] - hx, at[1] - hy
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(left + rgba.shape[1], img.shape[1]), min(top + rgba.shape[0], img.shape[0])
        if x0 >= x1 or y0 >= y1:
            return img
        out = img.copy()
        src = rgba[y0 - top: y1 - top, x0 - left: x1 - left].astype(np.uint32)
        under = out[y0:y1, x0:x1].astype(np.uint32)
        if alpha:
            a = src[..., 3:4]
            out[y0:y1, x0:x1] = np.minimum(src[..., :3] + (under * (255 - a) + 127) // 255, 255)
        else:
            opaque = src[..., 3] >= 128
            out[y0:y1, x0:x1][opaque] = src[..., :3][opaque]
        return out

    def screenshot(self, source: str = "display", cursor: bool = True,
                   composite: bool = False) -> Image.Image:
        return Image.fromarray(self.screenshot_array(source, cursor, composite), "RGB")

    # -- life cycle -------------------------------------------------------------------------
    def close(self, disable: bool = False) -> None:
        """Drain the FIFO, hide the cursor, and release the transport. With ``disable``,
        also return the device to VGA mode. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.fifo.initialised:
                try:
                    self.fifo.sync()
                finally:
                    if self.has_cursor:
                        self.move_cursor(0, 0, visible=False)
                    if disable:
                        self.regs.write(Reg.ENABLE, 0)
        finally:
            self._fb = None
            self.transport.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DEVICE_KINDS = ("auto", "model", "qemu", "pci")


def open_transport(spec: str = "auto", *, profile: str = "vmware", qemu_display: str = "none",
                   sysfs_root: str = "/sys", cursor: bool | None = None) -> Transport:
    """Make the transport for a device spec: ``auto`` (the PCI device if there is one,
    else the software model), ``model``, ``qemu`` (QEMU's device through qtest), ``pci``
    (the first SVGA II PCI device) or a PCI address such as ``0000:00:02.0``.

    ``profile`` (vmware, qemu, qemu-cursor) and ``cursor`` (with qemu: offer the hardware
    cursor, as QEMU with a VNC display does) choose the model; ``qemu_display`` (none, vnc)
    QEMU's display."""
    if spec == "model":
        from svga.model import ModelTransport

        return ModelTransport(profile=profile, cursor=cursor)
    if spec == "qemu":
        from svga.transport.qtest import QtestTransport

        return QtestTransport(display=qemu_display)
    from svga.transport import pci

    if spec == "auto":
        if not pci.find_devices(sysfs_root):
            from svga.model import ModelTransport

            return ModelTransport(profile=profile, cursor=cursor)
        return pci.PciTransport(None, sysfs_root=sysfs_root)
    if spec == "pci":
        return pci.PciTransport(None, sysfs_root=sysfs_root)
    if ":" in spec:
        return pci.PciTransport(spec, sysfs_root=sysfs_root)
    raise SVGAError(
        f"unknown device {spec!r}: use auto, model, qemu, pci or a PCI address like 0000:00:02.0"
    )


def open_device(spec: str = "auto", *, accel: str = "auto", **transport_options: Any) -> Device:
    """Open a device (see :func:`open_transport` for ``spec``) and negotiate with it."""
    transport = open_transport(spec, **transport_options)
    try:
        return Device(transport, accel=accel)
    except BaseException:
        transport.close()
        raise
