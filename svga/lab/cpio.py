"""The cpio "newc" archive format, written and read in Python (tools layer, lab).

The Linux kernel unpacks an initramfs from a (compressed) cpio archive in the "newc"
(SVR4, no CRC) format, magic ``070701``. Debian does not install the ``cpio`` tool by
default, so the lab writes the format itself. Each member is a 110-byte ASCII header of
thirteen 8-digit hex fields, the NUL-terminated name padded to a multiple of 4 bytes
(counting the header), then the data padded to a multiple of 4. A member named
``TRAILER!!!`` ends the archive.

Archives are deterministic (fixed mtime, inode numbers in order of addition), so the same
inputs give the same bytes and the initramfs cache key stays meaningful.

    w = CpioWriter()
    w.directory("bin")
    w.file("init", script_bytes, mode=0o755)
    w.symlink("bin/sh", "busybox")
    data = w.finish()            # bytes of the whole archive
    members = read_newc(data)    # [CpioMember(name, mode, data), ...]
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110
_FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
           "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check")


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


@dataclass(frozen=True)
class CpioMember:
    """One archive member: its path (no leading slash), full st_mode and contents
    (for a symlink, the link target)."""

    name: str
    mode: int
    data: bytes
    rdev: tuple[int, int] = (0, 0)


class CpioWriter:
    """Collects members and produces a newc archive. Names are relative paths such as
    ``bin/busybox``; parent directories must be added before their contents."""

    def __init__(self, mtime: int = 0) -> None:
        self._chunks: list[bytes] = []
        self._ino = 1
        self._mtime = mtime
        self._names: set[str] = set()
        self._finished = False

    def _member(self, name: str, mode: int, data: bytes, nlink: int = 1,
                rdev: tuple[int, int] = (0, 0)) -> None:
        if self._finished:
            raise ValueError("archive already finished")
        name = name.lstrip("/")
        if not name or name in self._names:
            raise ValueError(f"bad or duplicate cpio member name {name!r}")
        self._names.add(name)
        self._chunks.append(self._encode(name, mode, data, nlink, rdev, self._ino))
        self._ino += 1

    def _encode(self, name: str, mode: int, data: bytes, nlink: int, rdev: tuple[int, int],
                ino: int) -> bytes:
        raw_name = name.encode() + b"\0"
        values = (ino, mode, 0, 0, nlink, self._mtime, len(data), 0, 0, rdev[0], rdev[1],
                  len(raw_name), 0)
        header = MAGIC + b"".join(b"%08X" % v for v in values)
        return (header + raw_name + b"\0" * _pad4(_HEADER_LEN + len(raw_name))
                + data + b"\0" * _pad4(len(data)))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._member(name, stat.S_IFDIR | mode, b"", nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._member(name, stat.S_IFREG | mode, bytes(data))

    def symlink(self, name: str, target: str) -> None:
        self._member(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._member(name, stat.S_IFCHR | mode, b"", rdev=(major, minor))

    def finish(self) -> bytes:
        """The archive, trailer included. The writer accepts nothing after this."""
        if not self._finished:
            self._chunks.append(self._encode(TRAILER, 0, b"", 1, (0, 0), 0))
            self._finished = True
        return b"".join(self._chunks)


def read_newc(data: bytes) -> list[CpioMember]:
    """Parse a newc archive (uncompressed) up to its trailer. Raises ValueError on a
    malformed archive."""
    members: list[CpioMember] = []
    pos = 0
    while True:
        header = data[pos: pos + _HEADER_LEN]
        if len(header) < _HEADER_LEN or header[:6] != MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        fields = dict(zip(_FIELDS, (int(header[6 + 8 * i: 14 + 8 * i], 16) for i in range(13)),
                          strict=True))
        name_start = pos + _HEADER_LEN
        name_end = name_start + fields["namesize"]
        name = data[name_start: name_end - 1].decode()
        body = name_end + _pad4(_HEADER_LEN + fields["namesize"])
        content = data[body: body + fields["filesize"]]
        if len(content) != fields["filesize"]:
            raise ValueError(f"member {name!r} is truncated")
        pos = body + fields["filesize"] + _pad4(fields["filesize"])
        if name == TRAILER:
            return members
        members.append(CpioMember(name, fields["mode"], content,
                                  (fields["rdevmajor"], fields["rdevminor"])))
