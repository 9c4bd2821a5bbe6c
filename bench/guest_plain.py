"""The plain-Python program of the guest benchmark (bench/guest.py): the loops of bench/c/guest2d.c
in a few dozen lines of Python with no checks, through the same sysfs files. In a lab guest:
``python3 bench/guest_plain.py DEVDIR WIDTH HEIGHT WINDOW_S SIZES BACKGROUND``."""
import json
import mmap
import os
import struct
import sys
import time

dev, w, h, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sizes, bg = [int(s) for s in sys.argv[5].split(",")], int(sys.argv[6], 0)
fd = os.open(f"{dev}/resource0", os.O_RDWR)
vram, fifo = (mmap.mmap(os.open(f"{dev}/resource{bar}", os.O_RDWR), 0) for bar in (1, 2))
le = struct.Struct("<I")
SYNC, BUSY, ONE = le.pack(21), le.pack(22), le.pack(1)


def wr(reg, value):
    os.pwrite(fd, le.pack(reg), 0)
    os.pwrite(fd, le.pack(value), 1)


def rd(reg):
    os.pwrite(fd, le.pack(reg), 0)
    return le.unpack(os.pread(fd, 4, 1))[0]


def drain():  # SYNC until STOP reaches NEXT_CMD (QEMU's BUSY reads 0)
    while le.unpack_from(fifo, 12) != le.unpack_from(fifo, 8):
        os.pwrite(fd, SYNC, 0)
        os.pwrite(fd, ONE, 1)
        os.pwrite(fd, BUSY, 0)
        os.pread(fd, 4, 1)


def put(data):  # copy whole words into the ring (split at MAX), then move NEXT_CMD
    global nxt
    first = min(len(data), hi - nxt)
    fifo[nxt: nxt + first] = data[:first]
    fifo[lo: lo + len(data) - first] = data[first:]
    nxt = nxt + first if first == len(data) else lo + len(data) - first
    nxt = lo if nxt == hi else nxt
    le.pack_into(fifo, 8, nxt)


def timed(loop, step, **what):
    count, t0 = 0, time.perf_counter()
    while (t := time.perf_counter() - t0) < window:
        count += step()
    print(json.dumps({"loop": loop, **what, "commands": count, "seconds": t}), flush=True)


wr(0, 0x90000002)
mem = rd(19)
wr(2, w), wr(3, h), wr(7, 32), wr(20, 0)
lo, hi = 16, min(mem, len(fifo))
struct.pack_into("<4I", fifo, 0, lo, hi, lo, lo)
wr(1, 1), wr(20, 1)
pitch, off = rd(12), rd(14)
for y in range(h):
    vram[off + y * pitch: off + y * pitch + 4 * w] = le.pack(bg) * w
nxt = lo
put(struct.pack("<5I", 1, 0, 0, w, h))
drain()
if job := os.environ.get("SVGA_LAB_JOB"):  # the lab marker "ready" (svga/lab/marker.py)
    open(f"{job}/marker.ready", "w").close()
    while not os.path.exists(f"{job}/release.ready"):
        time.sleep(0.02)


def updates():  # 64 times UPDATE 0,0 n x n then drain (the kit's 2dmark loop)
    for _ in range(64):
        put(cmd)
        drain()
    return 64


for n in sizes:
    cmd = struct.pack("<5I", 1, 0, 0, n, n)
    timed("update", updates, n=n)
fill, batch = struct.Struct("<6I"), [0]
cells = [((i % (w // 8)) * 8, 128 + i // (w // 8) * 8) for i in range(500)]
pre = b"".join(fill.pack(2, i * 0x010203 & 0xFFFFFF, x, y, 8, 8) for i, (x, y) in enumerate(cells))


def batch_pre():
    put(pre)
    drain()
    return 500


def batch_encode():
    b = batch[0]
    put(b"".join([fill.pack(2, (b * 97 + i * 0x010203) & 0xFFFFFF, x, y, 8, 8)
                  for i, (x, y) in enumerate(cells)]))
    drain()
    batch[0] += 1
    return 500


timed("fill-pre", batch_pre)
timed("fill-encode", batch_encode)
