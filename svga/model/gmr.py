"""Model layer: guest memory, Guest Memory Regions (GMRs) and the GMRFB's pixel formats.

The model owns a guest memory of its own (a numpy array of 4 KiB pages that the transport
exposes as ``ModelTransport.guest_memory``), standing for the guest's physical memory: a
physical page number (PPN) is an index into it. A GMR is a list of PPNs, one per page of the
region (None where a page is not mapped); it is defined by the GMR registers
(SVGA_CAP_GMR: a descriptor list read from guest memory) or by DEFINE_GMR2 and REMAP_GMR2
(SVGA_CAP_GMR2). GMR_FRAMEBUFFER is VRAM itself (docs/svga-kit.md 'GMRs').

Rectangles of pixels are read and written through :meth:`GuestMemory.read_rect` and
:meth:`GuestMemory.write_rect`, which gather the bytes page by page (a GMR need not be
contiguous) and raise :class:`GmrError` for an undefined GMR, an unmapped page or bytes past
the region's end. :func:`decode` and :func:`encode` convert between the four GMRFB formats and
0x00RRGGBB words (docs/svga-kit.md 'GMRFB').
"""

from __future__ import annotations

import numpy as np

from svga.commands import GMR_FRAMEBUFFER

PAGE_SIZE = 4096
GMR_MAX_IDS = 64
"""SVGA_REG_GMR_MAX_IDS of the model: user GMR ids 0..63."""
GMR_MAX_DESCRIPTOR_LENGTH = 4096
"""SVGA_REG_GMR_MAX_DESCRIPTOR_LENGTH: descriptors the model reads for one GMR."""
FORMATS: dict[tuple[int, int], str] = {
    (32, 24): "32-bit BGRX",
    (24, 24): "24-bit BGR",
    (16, 16): "RGB 5-6-5",
    (16, 15): "RGB 5-5-5",
}
"""The GMRFB formats of svga_reg.h SVGAGMRImageFormat, by (bits per pixel, colour depth)."""


class GmrError(Exception):
    """A GMR access that cannot be made; the message says why."""


class GuestMemory:
    """The model's guest memory and its GMR table."""

    def __init__(self, size: int, vram: np.ndarray) -> None:
        if size % PAGE_SIZE:
            raise ValueError(f"guest memory size {size} is not a whole number of pages")
        self.memory = np.zeros(size, dtype=np.uint8)
        self.vram = vram
        self.gmrs: dict[int, list[int | None]] = {}

    @property
    def pages(self) -> int:
        return len(self.memory) // PAGE_SIZE

    def page(self, ppn: int) -> np.ndarray:
        """A writable view of one page of guest memory."""
        self._check_ppn(ppn)
        return self.memory[ppn * PAGE_SIZE: (ppn + 1) * PAGE_SIZE]

    def _check_ppn(self, ppn: int) -> None:
        if not 0 <= ppn < self.pages:
            raise GmrError(f"PPN {ppn:#x} is outside the {self.pages}-page guest memory")

    def _check_id(self, gmr_id: int) -> None:
        if not 0 <= gmr_id < GMR_MAX_IDS:
            raise GmrError(f"GMR id {gmr_id:#x} is not below SVGA_REG_GMR_MAX_IDS ({GMR_MAX_IDS})")

    # -- defining GMRs -----------------------------------------------------------------------
    def define_from_descriptor(self, gmr_id: int, ppn: int) -> None:
        """SVGA_REG_GMR_DESCRIPTOR: PPN 0 deletes the GMR; else read the SVGAGuestMemDescriptor
        list at page ``ppn`` ((ppn, numPages) pairs; (0, 0) ends it, (ppn, 0) continues at
        page ppn) and make the GMR those pages, in order."""
        self._check_id(gmr_id)
        if ppn == 0:
            self.gmrs.pop(gmr_id, None)
            return
        pages: list[int | None] = []
        read = 0
        page = ppn
        while True:
            words = self.page(page).view("<u4")
            for i in range(0, len(words), 2):
                read += 1
                if read > GMR_MAX_DESCRIPTOR_LENGTH:
                    raise GmrError(f"the descriptor list of GMR {gmr_id} is longer than "
                                   f"SVGA_REG_GMR_MAX_DESCRIPTOR_LENGTH ({GMR_MAX_DESCRIPTOR_LENGTH})")
                first, count = int(words[i]), int(words[i + 1])
                if first == 0 and count == 0:
                    self._set(gmr_id, pages)
                    return
                if count == 0:
                    page = first  # the next page of descriptors
                    break
                self._check_ppn(first + count - 1)
                pages.extend(range(first, first + count))
            else:
                raise GmrError(f"the descriptor list of GMR {gmr_id} runs off page {page:#x} "
                               "without a terminator or a link (the device never crosses a page)")

    def _set(self, gmr_id: int, pages: list[int | None]) -> None:
        if pages:
            self.gmrs[gmr_id] = pages
        else:
            self.gmrs.pop(gmr_id, None)  # an empty GMR is an undefined one (kit gmr.c)

    def define2(self, gmr_id: int, num_pages: int) -> None:
        """DEFINE_GMR2: (re)define a GMR of ``num_pages`` pages, none mapped; 0 deletes it.
        Pages a redefinition keeps stay mapped."""
        self._check_id(gmr_id)
        if num_pages > self.pages:
            raise GmrError(f"{num_pages} pages are more than SVGA_REG_GMRS_MAX_PAGES ({self.pages})")
        old = self.gmrs.get(gmr_id, [])
        self._set(gmr_id, (old + [None] * num_pages)[:num_pages])

    def remap2(self, gmr_id: int, offset_pages: int, ppns: list[int]) -> None:
        """REMAP_GMR2: map pages offset_pages.. of the GMR to ``ppns`` (one per page)."""
        pages = self.gmrs.get(gmr_id)
        if pages is None:
            raise GmrError(f"GMR {gmr_id} is not defined (DEFINE_GMR2 first)")
        if offset_pages + len(ppns) > len(pages):
            raise GmrError(f"pages {offset_pages}..{offset_pages + len(ppns) - 1} are past the end "
                           f"of the {len(pages)}-page GMR {gmr_id}")
        for ppn in ppns:
            self._check_ppn(ppn)
        pages[offset_pages: offset_pages + len(ppns)] = ppns

    # -- access ------------------------------------------------------------------------------
    def size(self, gmr_id: int) -> int:
        if gmr_id == GMR_FRAMEBUFFER:
            return len(self.vram)
        pages = self.gmrs.get(gmr_id)
        if pages is None:
            raise GmrError(f"GMR {gmr_id:#x} is not defined")
        return len(pages) * PAGE_SIZE

    def _addresses(self, gmr_id: int, offset: int, stride: int, row_bytes: int, rows: int
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(target array, byte indices) of a rectangle of bytes in a GMR."""
        addr = offset + np.arange(rows, dtype=np.int64)[:, None] * stride + np.arange(row_bytes)[None, :]
        end = int(addr.max()) + 1 if addr.size else 0
        if offset < 0 or end > self.size(gmr_id):
            raise GmrError(f"bytes {offset}..{end} are outside GMR {gmr_id:#x} "
                           f"({self.size(gmr_id)} bytes)")
        if gmr_id == GMR_FRAMEBUFFER:
            return self.vram, addr
        table = np.array([-1 if p is None else p for p in self.gmrs[gmr_id]], dtype=np.int64)
        ppn = table[addr // PAGE_SIZE]
        if (ppn < 0).any():
            page = int((addr // PAGE_SIZE)[ppn < 0].flat[0])
            raise GmrError(f"page {page} of GMR {gmr_id} is not mapped (REMAP_GMR2 it first)")
        return self.memory, ppn * PAGE_SIZE + addr % PAGE_SIZE

    def read_rect(self, gmr_id: int, offset: int, stride: int, row_bytes: int, rows: int) -> np.ndarray:
        """(rows, row_bytes) uint8: a copy of the bytes of a rectangle of a GMR."""
        buf, idx = self._addresses(gmr_id, offset, stride, row_bytes, rows)
        return buf[idx]

    def write_rect(self, gmr_id: int, offset: int, stride: int, data: np.ndarray) -> None:
        """Write (rows, row_bytes) uint8 ``data`` into a GMR; with a stride of 0 the last row wins."""
        buf, idx = self._addresses(gmr_id, offset, stride, data.shape[1], data.shape[0])
        buf[idx] = data


def bytes_per_pixel(bpp: int) -> int:
    return bpp // 8


def decode(raw: np.ndarray, bpp: int, depth: int) -> np.ndarray:
    """(h, w * bytes per pixel) uint8 in a GMRFB format -> (h, w) uint32 0x00RRGGBB. 5- and
    6-bit channels are widened by repeating their top bits (docs/svga-kit.md 'GMRFB')."""
    h = raw.shape[0]
    if (bpp, depth) == (32, 24):
        return np.ascontiguousarray(raw).view("<u4").reshape(h, -1) & 0x00FFFFFF
    if (bpp, depth) == (24, 24):
        px = raw.reshape(h, -1, 3).astype(np.uint32)
        return px[..., 2] << 16 | px[..., 1] << 8 | px[..., 0]
    v = np.ascontiguousarray(raw).view("<u2").reshape(h, -1).astype(np.uint32)
    if (bpp, depth) == (16, 16):
        r, g, b = v >> 11 & 0x1F, v >> 5 & 0x3F, v & 0x1F
        r8, g8, b8 = r << 3 | r >> 2, g << 2 | g >> 4, b << 3 | b >> 2
    else:
        r, g, b = v >> 10 & 0x1F, v >> 5 & 0x1F, v & 0x1F
        r8, g8, b8 = r << 3 | r >> 2, g << 3 | g >> 2, b << 3 | b >> 2
    return (r8 << 16 | g8 << 8 | b8).astype(np.uint32)


def encode(words: np.ndarray, bpp: int, depth: int) -> np.ndarray:
    """(h, w) uint32 0x00RRGGBB -> (h, w * bytes per pixel) uint8 in a GMRFB format (channels
    narrowed by dropping their low bits; the X byte of BGRX written as 0)."""
    h = words.shape[0]
    w = words.astype(np.uint32)
    if (bpp, depth) == (32, 24):
        return (w & 0x00FFFFFF).astype("<u4").view(np.uint8).reshape(h, -1)
    r, g, b = w >> 16 & 0xFF, w >> 8 & 0xFF, w & 0xFF
    if (bpp, depth) == (24, 24):
        return np.stack([b, g, r], axis=-1).astype(np.uint8).reshape(h, -1)
    if (bpp, depth) == (16, 16):
        v = (r >> 3) << 11 | (g >> 2) << 5 | b >> 3
    else:
        v = (r >> 3) << 10 | (g >> 3) << 5 | b >> 3
    return v.astype("<u2").view(np.uint8).reshape(h, -1)
