"""svga/lab/kernel.py: kernel choice, the PVH note check and unpacking a bzImage's payload,
on hand-made files (and the installed Debian kernel where there is one)."""

import lzma
import struct

import pytest

from svga.lab import kernel as kmod
from svga.lab.errors import LabError


def _elf_with_notes(notes: list[tuple[bytes, int, bytes]]) -> bytes:
    """A 64-bit LE ELF: header, one PT_NOTE program header, then the notes."""
    body = b""
    for name, ntype, desc in notes:
        n = name + b"\0"
        body += struct.pack("<III", len(n), len(desc), ntype)
        body += n + b"\0" * (-len(n) % 4) + desc + b"\0" * (-len(desc) % 4)
    eh = bytearray(64)
    eh[:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<Q", eh, 0x20, 64)
    struct.pack_into("<HH", eh, 0x36, 56, 1)
    ph = bytearray(56)
    struct.pack_into("<I", ph, 0, 4)               # PT_NOTE
    struct.pack_into("<Q", ph, 8, 64 + 56)          # p_offset
    struct.pack_into("<Q", ph, 32, len(body))       # p_filesz
    return bytes(eh + ph) + body


def test_pvh_note_found_only_with_xen_type_18():
    assert kmod.has_pvh_note(_elf_with_notes([(b"GNU", 3, b"abcd"), (b"Xen", 18, b"\0\0\0\1")]))
    assert not kmod.has_pvh_note(_elf_with_notes([(b"Xen", 5, b"xen-3.0\0")]))
    assert not kmod.has_pvh_note(_elf_with_notes([(b"GNU", 18, b"\0\0\0\1")]))
    assert not kmod.has_pvh_note(b"MZ not an elf")


def test_payload_unpacked_from_xz_inside_junk():
    elf = _elf_with_notes([(b"Xen", 18, b"\0\0\0\1")]) + b"kernel text" * 100
    bz = b"setup code \xfd7z no stream here" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"trailer"
    assert kmod.extract_vmlinux(bz) == elf
    assert kmod.extract_vmlinux(b"nothing compressed") is None


def test_boot_image_caches_the_vmlinux_and_falls_back_without_pvh(tmp_path):
    elf = _elf_with_notes([(b"Xen", 18, b"\0\0\0\1")])
    img = tmp_path / "vmlinuz-1.0"
    img.write_bytes(b"hdr" + lzma.compress(elf, format=lzma.FORMAT_XZ))
    k = kmod.Kernel("1.0", img, tmp_path)
    out = kmod.boot_image(k, tmp_path / "cache")
    assert out.parent == tmp_path / "cache" and out.read_bytes() == elf
    assert kmod.boot_image(k, tmp_path / "cache") == out

    plain = tmp_path / "vmlinuz-2.0"
    plain.write_bytes(b"hdr" + lzma.compress(_elf_with_notes([]), format=lzma.FORMAT_XZ))
    k2 = kmod.Kernel("2.0", plain, tmp_path)
    assert kmod.boot_image(k2, tmp_path / "cache") == plain


def test_newest_kernel_with_modules_is_chosen(tmp_path):
    boot, mods = tmp_path / "boot", tmp_path / "modules"
    boot.mkdir()
    for ver, with_modules in (("6.1.0-9-amd64", True), ("6.1.0-10-amd64", True), ("6.2.0-1-amd64", False)):
        (boot / f"vmlinuz-{ver}").write_bytes(b"")
        if with_modules:
            (mods / ver).mkdir(parents=True)
            (mods / ver / "modules.dep").write_text("")
    assert kmod.find_kernel(boot=boot, modules_root=mods).version == "6.1.0-10-amd64"
    old = kmod.find_kernel("6.1.0-9-amd64", boot=boot, modules_root=mods)
    assert old.image == boot / "vmlinuz-6.1.0-9-amd64"
    with pytest.raises(LabError, match="6.2.0-1-amd64"):
        kmod.find_kernel("6.2.0-1-amd64", boot=boot, modules_root=mods)
    with pytest.raises(LabError, match="linux-image-amd64"):
        kmod.find_kernel(boot=tmp_path / "empty", modules_root=mods)
