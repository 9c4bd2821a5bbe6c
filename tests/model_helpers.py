"""Test helpers for the model's tests: a minimal "guest" that drives a ModelTransport
through its ports and FIFO memory directly (the driver is not used, so the model is
tested on its own), and an independent numpy reading of VRAM."""

from __future__ import annotations

import numpy as np

from svga.commands import encode
from svga.model import ModelTransport
from svga.registers import SVGA_ID_2, FifoReg, Reg, RegisterFile


class Guest:
    def __init__(self, transport: ModelTransport) -> None:
        self.t = transport
        self.regs = RegisterFile(transport)
        self.fifo_min = 0
        self.fifo_max = 0

    def setup(self, width: int = 800, height: int = 600, fifo_min: int | None = None,
              fifo_max: int | None = None) -> Guest:
        r = self.regs
        r[Reg.ID] = SVGA_ID_2
        r[Reg.WIDTH] = width
        r[Reg.HEIGHT] = height
        r[Reg.BITS_PER_PIXEL] = 32
        mem_regs = r[Reg.MEM_REGS]
        self.fifo_min = fifo_min if fifo_min is not None else (mem_regs * 4 if mem_regs else 16)
        self.fifo_max = fifo_max if fifo_max is not None else r[Reg.MEM_SIZE]
        f = self.t.fifo
        f.write32(FifoReg.MIN * 4, self.fifo_min)
        f.write32(FifoReg.MAX * 4, self.fifo_max)
        f.write32(FifoReg.NEXT_CMD * 4, self.fifo_min)
        f.write32(FifoReg.STOP * 4, self.fifo_min)
        r[Reg.ENABLE] = 1
        r[Reg.CONFIG_DONE] = 1
        return self

    @property
    def next_cmd(self) -> int:
        return self.t.fifo.read32(FifoReg.NEXT_CMD * 4)

    @property
    def stop(self) -> int:
        return self.t.fifo.read32(FifoReg.STOP * 4)

    def set_pointers(self, nxt: int, stop: int | None = None) -> None:
        self.t.fifo.write32(FifoReg.NEXT_CMD * 4, nxt)
        self.t.fifo.write32(FifoReg.STOP * 4, nxt if stop is None else stop)

    def push(self, data: bytes, commit: bool = True) -> int:
        """Write bytes at NEXT_CMD, wrapping at MAX, then move NEXT_CMD (if ``commit``).
        Returns the FIFO offset where the data starts."""
        assert len(data) % 4 == 0
        start = nxt = self.next_cmd
        for i in range(0, len(data), 4):
            self.t.fifo.write(nxt, data[i:i + 4])
            nxt += 4
            if nxt == self.fifo_max:
                nxt = self.fifo_min
        if commit:
            self.t.fifo.write32(FifoReg.NEXT_CMD * 4, nxt)
        return start

    def send(self, name: str, **fields: int | bytes) -> int:
        return self.push(encode(name, **fields))

    def sync(self) -> None:
        self.regs[Reg.SYNC] = 1

    def fb(self) -> np.ndarray:
        """The mode's pixels as (h, w) uint32, read independently of the model's raster code."""
        w, h, bpl = self.regs[Reg.WIDTH], self.regs[Reg.HEIGHT], self.regs[Reg.BYTES_PER_LINE]
        raw = np.frombuffer(self.t.vram.read(0, bpl * h), dtype="<u4").reshape(h, bpl // 4)
        return raw[:, :w].copy()

    def write_fb(self, pixels: np.ndarray) -> None:
        """CPU drawing: (h, w) uint32 into VRAM with the mode's stride."""
        bpl = self.regs[Reg.BYTES_PER_LINE]
        for y, row in enumerate(pixels.astype("<u4")):
            self.t.vram.write(y * bpl, row.tobytes())


def rgb_of(pixels: np.ndarray) -> np.ndarray:
    """(h, w) 0x00RRGGBB words -> (h, w, 3) uint8 RGB."""
    p = pixels.astype(np.uint32)
    return np.stack([(p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF], axis=-1).astype(np.uint8)
