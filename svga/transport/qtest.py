"""Transport to QEMU's real SVGA II device model, driven from the host through qtest.

Part of the transport layer: QEMU runs with its CPU stopped (``-S``) and the test
protocol (``-qtest``) lets this process do what a guest would: 32-bit port I/O and
physical memory reads and writes. No guest kernel, image, root or boot is needed, and the
device code is QEMU's own ``hw/display/vmware_vga.c``; QMP (``svga.transport.qmp``) gives
screendumps of what QEMU's display shows.

The firmware never runs, so this module programs the PCI BARs itself through
configuration space. Memory traffic is the expensive part of the line protocol, so both
BARs *write-combine*: writes land in a shadow copy and each contiguous dirty run goes out
as one base64 ``b64write`` just before anything that could observe it (a port access, a
read, a screendump, :meth:`QtestTransport.flush`). Requests that return nothing are
pipelined: their ``OK`` replies are collected later, while sending, so only reads wait for
a round trip. A port read that the driver follows with a read of the same FIFO word each
time (BUSY, then FIFO STOP, as every SYNC does) brings that word back in the same round
trip, and headless (``display="none"``), where QEMU writes FIFO memory only when a port
write or a QMP command makes it run the FIFO, a FIFO word read since then is answered from
what was read (:meth:`QtestMemory.read32`).

What this proves and what it does not: QEMU's behaviour for a command stream, fast and
without root; not the guest side (sysfs, mmap, the kernel), which only the guest lab sees.
"""

from __future__ import annotations

import base64
import bisect
import collections
import selectors
import socket
import sys
import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from svga.errors import DeviceError, DeviceNotFound, SVGAError, UnsupportedDevice
from svga.registers import PCI_DEVICE_SVGA2, PCI_VENDOR_VMWARE
from svga.transport.base import Memory, Transport
from svga.transport.qemu_process import DISPLAYS, QemuProcess, base_command, find_qemu, qmp_option
from svga.transport.qmp import QMPConnection

# PCI configuration mechanism #1 (the i440fx host bridge of the `pc` machine).
PCI_CONFIG_ADDRESS = 0xCF8
PCI_CONFIG_DATA = 0xCFC
PCI_CFG_ID = 0x00
PCI_CFG_COMMAND = 0x04
PCI_CFG_BAR0 = 0x10
PCI_COMMAND_IO = 0x1
PCI_COMMAND_MEMORY = 0x2
PCI_COMMAND_MASTER = 0x4
PCI_BAR_IO = 0x1
PCI_BAR_MEM_TYPE_64 = 0x4

# Where the BARs are placed: an I/O window above the legacy ports and a memory window in
# the `pc` machine's PCI hole (above its 128 MiB of RAM, below the IOAPIC at 0xFEC00000).
IO_WINDOW = 0xC000
MEM_WINDOW = 0xC0000000
MEM_WINDOW_END = 0xFEC00000

# Bytes per b64write/b64read request. QEMU's qtest reads its channel 1 KiB at a time and
# rescans the whole line buffer for a newline after each piece (softmmu/qtest.c
# qtest_can_read, qtest_read), so a request's cost grows with the square of its length.
# 64 KiB requests were the fastest measured (16 MiB: 0.14 s written, 0.09 s read; 4 MiB
# requests took 1.9 s to write the same); base64 was 2-10x faster than hex write/read.
MEM_CHUNK = 64 * 1024
# Bounds on what is queued before the channel is pumped (requests, bytes).
MAX_QUEUED_REQUESTS = 256
MAX_QUEUED_BYTES = 1 << 20
STDERR_TAIL_LINES = 3


class QtestTransport(Transport):
    """QEMU's ``-vga vmware`` device, reached through qtest and QMP. Use it from one thread.

    ``display`` is ``"none"`` (CAPABILITIES 0x3 on QEMU 7.2) or ``"vnc"`` (a VNC server on
    a Unix socket with no client: the cursor capabilities appear, 0xE3). ``qemu`` names the
    binary (default: ``qemu-system-x86_64`` on PATH). ``timeout`` bounds every wait for
    QEMU. ``vram_mb`` sets the framebuffer BAR (``vmware-svga.vgamem_mb``).
    ``extra_args`` are appended to QEMU's command line.

    QEMU never outlives this object: it is killed by :meth:`close`, at garbage collection,
    at interpreter exit, and (through a parent-death signal) if this process is killed.
    It is started, watched and reaped by svga.transport.qemu_process (through
    svga.transport.child, so it dies with this process whichever thread created the
    transport); its sockets live in that module's work folder (``svga-qtest-*``).
    """

    kind = "qemu"

    def __init__(self, display: str = "none", qemu: str | None = None, timeout: float = 10.0,
                 vram_mb: int = 16, extra_args: Sequence[str] = ()) -> None:
        if display not in DISPLAYS:
            raise SVGAError(f"unknown QEMU display {display!r}: use one of {', '.join(DISPLAYS)}")
        self.display = display
        self.timeout = timeout
        self.vram_mb = vram_mb
        self.description = f"QEMU -vga vmware through qtest (display {display})"
        binary = find_qemu(qemu)
        self._state = _State()
        self._closer = weakref.finalize(self, _release, self._state)
        st = self._state
        st.proc = QemuProcess("svga-qtest-")
        workdir = st.proc.workdir
        qtest_path = str(workdir / "qtest.sock")
        qmp_path = str(workdir / "qmp.sock")
        # -S: the CPU stays stopped (no firmware, no guest); -accel qtest is refused by 7.2,
        # so the qtest channel rides on TCG (docs/lab.md 'The qtest protocol').
        argv = [*base_command(binary, display, workdir / "vnc.sock"), "-S", "-nodefaults",
                "-global", f"vmware-svga.vgamem_mb={int(vram_mb)}",
                "-qtest", f"unix:{qtest_path}", "-qtest-log", "none", *qmp_option(qmp_path),
                *extra_args]
        self.argv = argv
        self.argv_extra = tuple(extra_args)
        t0 = time.monotonic()
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(qtest_path)
            listener.listen(1)
            try:
                st.proc.start(argv)
                conn = self._accept(listener)
            finally:
                listener.close()
            st.channel = _QtestChannel(conn, timeout, st.dead)
            st.qmp = QMPConnection(qmp_path, timeout, check=st.check_alive)
            self.qemu_version = st.qmp.version()
            self.description = f"QEMU {self.qemu_version} -vga vmware through qtest (display {display})"
            self._ch = st.channel
            self._setup_pci()
        except BaseException:
            self.close()
            raise
        #: seconds from launching QEMU to a device ready for the driver
        self.startup_seconds = time.monotonic() - t0

    # -- start-up -------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> socket.socket:
        # QEMU connects to our socket as it starts (-qtest unix:PATH is a client).
        listener.settimeout(0.05)
        deadline = time.monotonic() + self.timeout
        while True:
            self._check_alive()
            try:
                conn, _ = listener.accept()
                return conn
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise DeviceError(
                        f"QEMU did not open its qtest channel within {self.timeout:g} s"
                    ) from None

    def _check_alive(self) -> None:
        self._state.check_alive()

    def _cfg_addr(self, slot: int, reg: int) -> int:
        return 0x80000000 | (slot << 11) | (reg & 0xFC)

    def _cfg_read(self, slot: int, reg: int) -> int:
        self._ch.post(f"outl {PCI_CONFIG_ADDRESS:#x} {self._cfg_addr(slot, reg):#x}")
        return int(self._ch.query(f"inl {PCI_CONFIG_DATA:#x}"), 16)

    def _cfg_write(self, slot: int, reg: int, value: int, size: int = 4) -> None:
        op = {4: "outl", 2: "outw", 1: "outb"}[size]
        self._ch.post(f"outl {PCI_CONFIG_ADDRESS:#x} {self._cfg_addr(slot, reg):#x}")
        self._ch.post(f"{op} {PCI_CONFIG_DATA + (reg & 3):#x} {value:#x}")

    def _find_slot(self) -> int:
        want = PCI_VENDOR_VMWARE | PCI_DEVICE_SVGA2 << 16
        for slot in range(32):
            self._ch.post(f"outl {PCI_CONFIG_ADDRESS:#x} {self._cfg_addr(slot, PCI_CFG_ID):#x}")
            self._ch.ask(f"inl {PCI_CONFIG_DATA:#x}")
        ids = [int(r, 16) for r in self._ch.results()]
        if want not in ids:
            raise DeviceNotFound(
                f"QEMU shows no SVGA II device (PCI {PCI_VENDOR_VMWARE:04x}:{PCI_DEVICE_SVGA2:04x}) on bus 0"
            )
        return ids.index(want)

    def _probe_bar(self, slot: int, index: int) -> tuple[bool, int, bool]:
        """(is_io, size, is_64bit) of one BAR, by writing all ones and reading the mask back."""
        reg = PCI_CFG_BAR0 + 4 * index
        orig = self._cfg_read(slot, reg)
        self._cfg_write(slot, reg, 0xFFFFFFFF)
        mask = self._cfg_read(slot, reg)
        self._cfg_write(slot, reg, orig)
        if mask == 0:
            return False, 0, False
        if mask & PCI_BAR_IO:
            mask = (mask & ~0x3) | 0xFFFF0000  # 16-bit I/O decoders read the top half as 0
            return True, (~mask & 0xFFFFFFFF) + 1, False
        is64 = bool(mask & PCI_BAR_MEM_TYPE_64)
        mask &= ~0xF
        if is64:
            orig_hi = self._cfg_read(slot, reg + 4)
            self._cfg_write(slot, reg + 4, 0xFFFFFFFF)
            mask |= self._cfg_read(slot, reg + 4) << 32
            self._cfg_write(slot, reg + 4, orig_hi)
            return False, (~mask & 0xFFFFFFFFFFFFFFFF) + 1, True
        return False, (~mask & 0xFFFFFFFF) + 1, False

    def _setup_pci(self) -> None:
        slot = self._find_slot()
        self.pci_slot = slot
        bars: dict[int, tuple[bool, int, bool]] = {}
        index = 0
        while index < 6:
            bars[index] = self._probe_bar(slot, index)
            index += 2 if bars[index][2] else 1
        io0, mem1, mem2 = (bars.get(i, (False, 0, False)) for i in (0, 1, 2))
        if not (io0[0] and io0[1]) or mem1[0] or not mem1[1] or mem2[0] or not mem2[1]:
            raise UnsupportedDevice(
                "QEMU's SVGA device does not have the SVGA II BAR layout (BAR0 I/O, BAR1 and BAR2 memory)"
            )
        # Place memory BARs largest first, each aligned to its own size.
        self.bars: dict[int, int] = {0: IO_WINDOW}
        self.bar_sizes = {i: bars[i][1] for i in (0, 1, 2)}
        cursor = MEM_WINDOW
        for i in sorted((1, 2), key=lambda i: -bars[i][1]):
            size = bars[i][1]
            cursor = (cursor + size - 1) // size * size
            if cursor + size > MEM_WINDOW_END:
                raise UnsupportedDevice(f"BAR{i} of {size} bytes does not fit the PCI memory window")
            self.bars[i] = cursor
            cursor += size
        for i in (0, 1, 2):
            reg = PCI_CFG_BAR0 + 4 * i
            self._cfg_write(slot, reg, self.bars[i])
            if bars[i][2]:
                self._cfg_write(slot, reg + 4, self.bars[i] >> 32)
        self._cfg_write(slot, PCI_CFG_COMMAND,
                        PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, size=2)
        for i in (0, 1, 2):
            got = self._cfg_read(slot, PCI_CFG_BAR0 + 4 * i) & ~(0x3 if i == 0 else 0xF)
            if got != self.bars[i] & 0xFFFFFFFF:
                raise UnsupportedDevice(f"BAR{i} did not take address {self.bars[i]:#x} (reads {got:#x})")
        self.io_base = self.bars[0]
        self.vram = QtestMemory(self._ch, self.bars[1], self.bar_sizes[1], "BAR1")
        # Headless and with nothing added to the command line, nothing refreshes the display,
        # so the FIFO runs only on a SYNC write or a QMP screendump (docs/qemu-7.2.md 'What
        # triggers a run'): between port writes and QMP commands its words keep what was read.
        self.fifo = QtestMemory(self._ch, self.bars[2], self.bar_sizes[2], "BAR2",
                                quiet=self.display == "none" and not tuple(self.argv_extra))
        QtestMemory.link(self.vram, self.fifo)

    # -- Transport ------------------------------------------------------------------

    def _flush_writes(self) -> None:
        # Device-visible order: every pending memory write is queued on the channel before
        # the request that follows (the channel keeps order).
        self._live()
        self.vram.send_pending()
        self.fifo.send_pending()

    def _live(self) -> None:
        if self._state.closed:
            raise DeviceError("the QEMU qtest transport is closed")

    def port_read(self, offset: int) -> int:
        self._flush_writes()
        ch, fifo = self._ch, self.fifo
        fifo._known.clear()  # a register access may run the FIFO
        ahead = fifo._read_ahead_offset()
        if ahead is None:
            value = int(ch.query(f"inl {self.io_base + offset:#x}"), 16) & 0xFFFFFFFF
            fifo._port_read_at = ch.count
            return value
        # The FIFO word the driver read after the last port read: asked in the same round trip.
        ch.ask(f"inl {self.io_base + offset:#x}")
        ch.ask(f"readl {fifo.base + ahead:#x}")
        port, word = ch.results()
        fifo._read_ahead_done(ahead, int(word, 16) & 0xFFFFFFFF, ch.count)
        return int(port, 16) & 0xFFFFFFFF

    def port_write(self, offset: int, value: int) -> None:
        self._flush_writes()
        self.fifo._known.clear()  # a SYNC write runs the FIFO (and STOP moves)
        self._ch.post(f"outl {self.io_base + offset:#x} {int(value) & 0xFFFFFFFF:#x}")

    def flush(self) -> None:
        """Send every pending write and wait until QEMU has carried out every request."""
        self._flush_writes()
        self._ch.sync()

    def display_image(self, with_cursor: bool = False) -> np.ndarray:
        """QEMU's screendump (HxWx3 RGB). It is a display refresh: QEMU resizes its surface
        to the current mode, runs the FIFO and applies queued updates before it dumps.
        QEMU's screendump never shows the hardware cursor, whatever ``with_cursor`` says."""
        self.flush()
        return self.qmp.screendump()

    def read_vram_image(self, width: int, height: int, stride: int, offset: int = 0) -> np.ndarray:
        """What VRAM holds (memory reads, no refresh) as an HxWx3 RGB image of a 32 bpp
        framebuffer (pixels are 0x00RRGGBB words, so bytes B, G, R, X)."""
        if width <= 0 or height <= 0:
            return np.zeros((max(height, 0), max(width, 0), 3), dtype=np.uint8)
        length = stride * (height - 1) + width * 4
        raw = np.frombuffer(self.vram.read(offset, length) + bytes(stride * height - length), np.uint8)
        pix = raw.reshape(height, stride)[:, : width * 4].reshape(height, width, 4)
        return np.ascontiguousarray(pix[:, :, 2::-1])

    def config_read(self, reg: int) -> int:
        """32-bit read of the device's PCI configuration space (``reg`` is rounded down to 4)."""
        self._flush_writes()
        self.fifo._known.clear()
        return self._cfg_read(self.pci_slot, reg)

    @property
    def qmp(self) -> QMPConnection:
        self._live()
        assert self._state.qmp is not None
        # A QMP command can run the FIFO (a screendump is a display refresh): a word read
        # ahead before it is no longer what memory holds after it.
        self.fifo._ahead_at = -1
        self.fifo._known.clear()
        return self._state.qmp

    @property
    def pid(self) -> int | None:
        """QEMU's process id (None before it started)."""
        return self._state.proc.pid if self._state.proc is not None else None

    def qemu_output(self, lines: int = 50) -> list[str]:
        """The last lines QEMU printed (stdout and stderr interleaved). QEMU 7.2's device
        logs FIFO trouble to stdout, e.g. ``vmsvga_fifo_run: Unknown command 0x..``."""
        return self._state.proc.tail(lines) if self._state.proc is not None else []

    def close(self) -> None:
        """Kill QEMU and remove its sockets. Idempotent."""
        self._closer()

    def __repr__(self) -> str:
        return f"<QtestTransport {self.description} pid={self.pid}>"


class QtestMemory(Memory):
    """A BAR's memory over qtest, write-combining.

    Writes go to a shadow copy and a sorted list of dirty byte ranges; :meth:`send_pending`
    sends each contiguous dirty run as ``b64write`` requests of at most :data:`MEM_CHUNK`
    bytes. Reads always come from QEMU (the device writes this memory too: FIFO STOP,
    RECT_FILL and RECT_COPY pixels), after every pending write has been queued.

    The FIFO's one ordering rule is that a command is in memory before NEXT_CMD says it
    is there. QEMU only looks at the FIFO on a port access or a display refresh, and each
    request is carried out whole, so order only matters if a refresh falls between the
    requests of one flush. To keep the rule even then, runs go out in the order they were
    last written (NEXT_CMD, written after the commands, goes last) and a run split into
    chunks goes out from its end down (the FIFO registers sit at its lowest addresses).

    Read-ahead: when :meth:`read32` reads a word straight after a port read (no request in
    between), the transport asks for that word again in the round trip of the next port
    read, right after it, and the next :meth:`read32` of that word with no request in
    between returns it without a round trip. That is the value QEMU's memory held after
    every request this process made, so the answer is one a read at that moment gives (QEMU
    changes this memory only as it carries out requests, or on a display refresh that may
    come at any time anyway); a QMP command forgets it. A value read ahead and not used
    stops the read-ahead until the pattern is seen again.

    ``quiet`` (the transport sets it for the FIFO of a headless QEMU): QEMU writes this memory
    only when a request of ours makes it (a port access, a QMP command), so :meth:`read32`
    keeps each word it reads until the transport's next port access or QMP command, or a
    write of ours to that word, and answers from it meanwhile."""

    def __init__(self, channel: _QtestChannel, base: int, size: int, name: str, quiet: bool = False) -> None:
        self._ch = channel
        self.quiet = quiet
        self.base = base
        self.size = size
        self.name = name
        self._group: list[weakref.ref[QtestMemory]] = [weakref.ref(self)]
        self._shadow = np.zeros(size, dtype=np.uint8)  # pages are touched only where written
        # 32-bit stores into the shadow without a numpy temporary (a FIFO pointer per command).
        self._words = memoryview(self._shadow[: size // 4 * 4]).cast("I") \
            if sys.byteorder == "little" else None
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._seqs: list[int] = []  # when each run was last written
        self._seq = 0
        # Read-ahead state, in the channel's request count (see the class docstring).
        self._port_read_at = -1   # the count just after the transport's last plain port read
        self._ahead: int | None = None  # the offset to read ahead
        self._ahead_value = 0
        self._ahead_at = -1       # the count at which _ahead_value is current (-1: none)
        self._known: dict[int, int] = {}  # quiet: word offset -> value, until a port access

    @staticmethod
    def link(*memories: QtestMemory) -> None:
        """Make a read of any of these memories send the pending writes of all of them
        first, so that QEMU sees every write made before a read (weak links: no cycles)."""
        group = [weakref.ref(m) for m in memories]
        for m in memories:
            m._group = group

    def _send_group(self) -> None:
        for ref in self._group:
            mem = ref()
            if mem is not None:
                mem.send_pending()

    def _mark(self, start: int, end: int) -> None:
        starts, ends, seqs = self._starts, self._ends, self._seqs
        self._seq += 1
        if ends and starts[-1] <= start <= ends[-1]:  # the usual case: appending to the last run
            if end > ends[-1]:
                ends[-1] = end  # nothing follows the last run, so nothing to merge
            seqs[-1] = self._seq
            return
        i = bisect.bisect_left(ends, start)      # first run ending at or after start
        if i < len(starts) and starts[i] <= start and end <= ends[i]:
            seqs[i] = self._seq  # inside a run already (NEXT_CMD again, a word at a time)
            return
        j = bisect.bisect_right(starts, end)     # runs starting at or before end
        if i == j:
            starts.insert(i, start)
            ends.insert(i, end)
            seqs.insert(i, self._seq)
        else:
            starts[i:j] = [min(start, starts[i])]
            ends[i:j] = [max(end, ends[j - 1])]
            seqs[i:j] = [self._seq]

    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        if isinstance(data, np.ndarray):
            src = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        else:
            src = np.frombuffer(data, dtype=np.uint8)
        n = len(src)
        self._check(offset, n)
        if n == 0:
            return
        self._shadow[offset: offset + n] = src
        self._mark(offset, offset + n)
        if self._known:
            for k in [k for k in self._known if offset - 4 < k < offset + n]:
                del self._known[k]

    def write32(self, offset: int, value: int) -> None:
        if offset & 3 or not 0 <= offset <= self.size - 4:
            return super().write32(offset, value)
        if self._known:
            self._known.pop(offset, None)
        if self._words is not None:
            self._words[offset >> 2] = int(value) & 0xFFFFFFFF
        else:
            self._shadow[offset: offset + 4] = np.frombuffer(
                (int(value) & 0xFFFFFFFF).to_bytes(4, "little"), np.uint8)
        self._mark(offset, offset + 4)

    def pending(self) -> int:
        """Bytes waiting to be sent."""
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def send_pending(self) -> None:
        """Queue every dirty run on the channel, oldest-written first, and forget it."""
        if not self._starts:
            return
        runs = sorted(zip(self._seqs, self._starts, self._ends, strict=True))
        self._starts.clear()
        self._ends.clear()
        self._seqs.clear()
        shadow = self._shadow
        for _, start, end in runs:
            for a in reversed(range(start, end, MEM_CHUNK)):
                b = min(end, a + MEM_CHUNK)
                payload = base64.b64encode(shadow[a:b].data)
                self._ch.post(b"b64write %#x %#x " % (self.base + a, b - a) + payload)

    def flush(self) -> None:
        self._send_group()
        self._ch.sync()

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        if length == 0:
            return b""
        self._send_group()
        for a in range(offset, offset + length, MEM_CHUNK):
            self._ch.ask(b"b64read %#x %#x" % (self.base + a, min(offset + length, a + MEM_CHUNK) - a))
        parts = [base64.b64decode(r) for r in self._ch.results()]
        out = b"".join(parts)
        if len(out) != length:
            raise DeviceError(f"qtest read of {self.name} returned {len(out)} bytes, not {length}")
        return out

    def read32(self, offset: int) -> int:
        if offset & 3:
            return super().read32(offset)
        self._check(offset, 4)
        self._send_group()
        ch = self._ch
        if self._ahead_at == ch.count and offset == self._ahead:
            self._ahead_at = -1  # used once
            value = self._ahead_value
        else:
            known = self._known.get(offset)
            if known is not None:
                return known
            if self._port_read_at == ch.count:
                self._ahead = offset  # read right after a port read: read it ahead next time
            value = int(ch.query(f"readl {self.base + offset:#x}"), 16) & 0xFFFFFFFF
        if self.quiet:
            self._known[offset] = value
        return value

    def _read_ahead_offset(self) -> int | None:
        """The offset to read with the next port read, or None (also when the last word read
        ahead went unused: then none until :meth:`read32` sees the pattern again)."""
        if self._ahead_at != -1:
            self._ahead = None
            self._ahead_at = -1
        return self._ahead

    def _read_ahead_done(self, offset: int, value: int, count: int) -> None:
        self._ahead_value = value
        self._ahead_at = count
        self._port_read_at = count


class _QtestChannel:
    """The qtest line protocol on a socket, pipelined, with a timeout on every wait.

    ``post`` queues a request whose reply carries nothing (``OK``); ``ask`` queues one
    whose reply payload is wanted; ``results`` sends everything and returns the wanted
    payloads in order. Replies are read while sending, so neither side can block the
    other on a full socket buffer (QEMU's own reply writes block when ours is full: about
    300 unread ``OK`` lines are enough). Lines that are not replies (``IRQ ...`` events)
    are skipped. Any ``FAIL``/``ERR`` reply raises, naming the request."""

    def __init__(self, sock: socket.socket, timeout: float,
                 dead: Callable[[str], DeviceError]) -> None:
        self._sock = sock
        sock.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(sock, selectors.EVENT_READ)
        self._timeout = timeout
        self._dead = dead
        self._out = bytearray()
        self._expect: collections.deque[tuple[bool, bytes]] = collections.deque()
        self._results: list[bytes] = []
        self._inbuf = bytearray()
        self._scan = 0
        self._broken: DeviceError | None = None
        self._refused: DeviceError | None = None
        self._mask = selectors.EVENT_READ
        self.count = 0
        """Requests queued so far (what the read-ahead of QtestMemory.read32 goes by)."""

    def post(self, line: str | bytes) -> None:
        self._queue(line, False)

    def ask(self, line: str | bytes) -> None:
        self._queue(line, True)

    def query(self, line: str | bytes) -> str:
        self._queue(line, True)
        return self.results()[-1].decode()

    def results(self) -> list[bytes]:
        self._pump(wait_all=True)
        out, self._results = self._results, []
        return out

    def sync(self) -> None:
        self._pump(wait_all=True)

    def close(self) -> None:
        if self._broken is None:
            self._broken = DeviceError("the QEMU qtest transport is closed")
        self._sel.close()
        self._sock.close()

    def _queue(self, line: str | bytes, want: bool) -> None:
        if self._broken is not None:
            raise self._broken
        data = line.encode() if isinstance(line, str) else line
        self.count += 1
        self._out += data
        self._out += b"\n"
        self._expect.append((want, data[:40]))
        if len(self._expect) > MAX_QUEUED_REQUESTS or len(self._out) > MAX_QUEUED_BYTES:
            self._pump(wait_all=False)

    def _fail(self, reason: str) -> DeviceError:
        self._broken = self._dead(reason)
        return self._broken

    def _pump(self, wait_all: bool) -> None:
        """Send all queued bytes; with ``wait_all`` also read every outstanding reply.
        Without it, keep reading while sending, and stop once the queue is sent and the
        backlog of unread replies is small."""
        if self._broken is not None:
            raise self._broken
        view = memoryview(self._out)
        sent = 0
        try:
            while True:
                pending_out = sent < len(view)
                if not pending_out and (not self._expect
                                        or (not wait_all and len(self._expect) <= MAX_QUEUED_REQUESTS)):
                    break
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending_out else 0)
                if events != self._mask:
                    self._sel.modify(self._sock, events)
                    self._mask = events
                ready = self._sel.select(self._timeout)
                if not ready:
                    raise self._fail(f"no reply within {self._timeout:g} s")
                mask = ready[0][1]
                if mask & selectors.EVENT_READ:
                    self._receive()
                if mask & selectors.EVENT_WRITE and pending_out:
                    try:
                        sent += self._sock.send(view[sent: sent + (1 << 20)])
                    except BlockingIOError:
                        pass
                    except OSError as exc:
                        raise self._fail(f"sending failed: {exc.strerror or exc}") from None
        finally:
            view.release()
            del self._out[:sent]
        if self._refused is not None:
            err, self._refused = self._refused, None
            self._results.clear()
            raise err

    def _receive(self) -> None:
        try:
            chunk = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            raise self._fail(f"receiving failed: {exc.strerror or exc}") from None
        if not chunk:
            raise self._fail("the qtest channel was closed")
        buf = self._inbuf
        buf += chunk
        while True:
            nl = buf.find(b"\n", self._scan)
            if nl < 0:
                self._scan = len(buf)
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            self._scan = 0
            self._reply(line)

    def _reply(self, line: bytes) -> None:
        if line.startswith(b"OK"):
            if not self._expect:
                raise self._fail(f"unexpected reply {line[:40]!r}")
            want, _ = self._expect.popleft()
            if want:
                self._results.append(line[3:])
        elif line.startswith((b"FAIL", b"ERR")):
            want, req = self._expect.popleft() if self._expect else (False, b"?")
            if want:
                self._results.append(b"")
            if self._refused is None:  # reported once the batch is done, the first one
                text = line.decode(errors="replace")
                self._refused = DeviceError(f"QEMU's qtest refused '{req.decode(errors='replace')}': {text}")
        # anything else (IRQ raise/lower notices) is not a reply


class _State:
    """Everything close() releases; held by the finalizer, never the transport itself."""

    def __init__(self) -> None:
        self.closed = False
        self.proc: QemuProcess | None = None
        self.channel: _QtestChannel | None = None
        self.qmp: QMPConnection | None = None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode() is not None:
            raise DeviceError(self.exit_message("at start-up"))

    def exit_message(self, when: str) -> str:
        assert self.proc is not None
        self.proc.wait_drained(1.0)
        tail = " | ".join(self.proc.tail(STDERR_TAIL_LINES)) or "none"
        return f"QEMU exited ({self.proc.exit_status()}) {when}; its last output: {tail}"

    def dead(self, reason: str) -> DeviceError:
        """The channel failed: say whether QEMU exited (and what it said) or just hung."""
        if self.proc is not None and self.proc.wait(0.5) is not None:
            return DeviceError(self.exit_message(f"while in use ({reason})"))
        return DeviceError(f"QEMU stopped answering the qtest channel: {reason}")


def _release(st: _State) -> None:
    st.closed = True
    if st.qmp is not None:
        st.qmp.close()
    if st.channel is not None:
        st.channel.close()
    if st.proc is not None:
        st.proc.close()  # kills QEMU at once (grace 0) and removes its sockets' folder
