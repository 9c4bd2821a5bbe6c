"""The lab guest's kernel: which installed kernel to boot, and an uncompressed copy of it
that boots faster (tools layer, lab).

Debian's linux-image-amd64 installs /boot/vmlinuz-<ver> (a bzImage whose payload is
xz-compressed) and /lib/modules/<ver>. Under TCG the bzImage spends about 3 s
decompressing itself before the kernel starts. The payload is an ELF vmlinux with a Xen
PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY, type 18; Debian sets CONFIG_PVH=y), and QEMU's
``-kernel`` boots such an ELF directly. So the lab unpacks it once into its cache and
boots that; a kernel without the note, or with a payload Python cannot unpack (zstd,
lz4), is booted as the bzImage.

    k = find_kernel()           # Kernel(version, image=/boot/vmlinuz-<ver>, modules_dir)
    image = boot_image(k)       # the cached PVH vmlinux, or k.image
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from svga.lab.errors import LabError

_XEN_ELFNOTE_PHYS32_ENTRY = 18
#: Payload formats Python can unpack: magic bytes and a decompressor that stops at the
#: end of the stream (the bzImage has trailing data after the payload).
_PAYLOADS = (
    (b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
    (b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
    (b"BZh", lambda: bz2.BZ2Decompressor()),
    (b"\x5d\x00\x00", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)),
)


@dataclass(frozen=True)
class Kernel:
    """An installed kernel: its version string, image and module tree."""

    version: str
    image: Path
    modules_dir: Path


def _version_key(version: str) -> tuple[tuple[int, object], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-+~]", version))


def find_kernel(version: str | None = None, boot: Path = Path("/boot"),
                modules_root: Path = Path("/lib/modules")) -> Kernel:
    """The kernel to boot: the given version, else the newest /boot/vmlinuz-<ver> that has
    a /lib/modules/<ver> tree (linux-image-amd64 installs both)."""
    candidates = []
    for image in boot.glob("vmlinuz-*"):
        ver = image.name[len("vmlinuz-"):]
        if (modules_root / ver / "modules.dep").is_file():
            candidates.append(Kernel(ver, image, modules_root / ver))
    if version is not None:
        for k in candidates:
            if k.version == version:
                return k
        raise LabError(f"kernel {version} not found: need {boot}/vmlinuz-{version} and "
                       f"{modules_root}/{version}/modules.dep")
    if not candidates:
        raise LabError(f"no kernel with modules in {boot} and {modules_root}: "
                       "run `apt-get install -y linux-image-amd64` as root")
    return max(candidates, key=lambda k: _version_key(k.version))


def has_pvh_note(elf: bytes) -> bool:
    """True when a 64-bit little-endian ELF has a Xen PHYS32_ENTRY note (PVH boot)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        base = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", elf, base)
        if p_type != 4:  # PT_NOTE
            continue
        offset, = struct.unpack_from("<Q", elf, base + 8)
        size, = struct.unpack_from("<Q", elf, base + 32)
        pos, end = offset, offset + size
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12: pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage, or None when no payload Python can unpack holds one."""
    for magic, make in _PAYLOADS:
        start = bzimage.find(magic)
        while start != -1:
            try:
                out = make().decompress(bzimage[start:])
            except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError):
                out = b""
            if out[:4] == b"\x7fELF":
                return out
            start = bzimage.find(magic, start + 1)
    return None


def boot_image(kernel: Kernel, cache: Path) -> Path:
    """The image to pass to ``-kernel``: a cached PVH vmlinux when one can be made, else
    the bzImage. The cache file is named after the version and the bzImage's size and
    mtime, so a reinstalled kernel is unpacked again."""
    with open(kernel.image, "rb") as f:
        if f.read(4) == b"\x7fELF":  # already an uncompressed kernel
            return kernel.image
    st = kernel.image.stat()
    path = cache / f"vmlinux-{kernel.version}-{st.st_size}-{int(st.st_mtime)}"
    if path.is_file():
        return path
    no_pvh = path.with_name(path.name + ".no-pvh")
    if no_pvh.exists():
        return kernel.image
    try:
        bz = kernel.image.read_bytes()
    except OSError as exc:
        raise LabError(f"cannot read {kernel.image}: {exc.strerror} (the lab needs root)") from exc
    elf = extract_vmlinux(bz)
    cache.mkdir(parents=True, exist_ok=True)
    if elf is None or not has_pvh_note(elf):
        no_pvh.write_text("this kernel cannot be booted through PVH; the lab uses the bzImage\n")
        return kernel.image
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(elf)
    os.replace(tmp, path)
    return path
