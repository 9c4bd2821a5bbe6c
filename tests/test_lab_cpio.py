"""svga/lab/cpio.py: the newc writer, checked byte by byte against the format, by our
reader, and by busybox's own cpio."""

import shutil
import stat
import subprocess

import pytest

from svga.lab.cpio import CpioWriter, read_newc


def test_first_member_bytes_follow_the_newc_layout():
    w = CpioWriter()
    w.file("a", b"xyz", mode=0o644)
    data = w.finish()
    # 13 fields of 8 hex digits: ino 1, mode 0o100644, uid, gid, nlink 1, mtime 0,
    # filesize 3, devmajor, devminor, rdevmajor, rdevminor, namesize 2 ("a\0"), check.
    header = (b"070701" + b"00000001" + b"000081A4" + b"00000000" * 2 + b"00000001"
              + b"00000000" + b"00000003" + b"00000000" * 4 + b"00000002" + b"00000000")
    assert len(header) == 110
    # 110 + 2 name bytes = 112, already a multiple of 4; data 3 bytes + 1 pad.
    assert data[:116] == header + b"a\0" + b"xyz\0"
    trailer = data[116:]
    assert trailer[:6] == b"070701"
    assert trailer[110:121] == b"TRAILER!!!\0"
    assert len(data) % 4 == 0


def _sample() -> bytes:
    w = CpioWriter()
    w.directory("bin")
    w.file("bin/busybox", bytes(range(256)) * 3 + b"z", mode=0o755)
    w.symlink("bin/sh", "busybox")
    w.char_device("console", 5, 1)
    w.file("init", b"#!/bin/sh\necho hi\n", mode=0o755)
    return w.finish()


def test_round_trip_through_our_reader():
    members = read_newc(_sample())
    assert [m.name for m in members] == ["bin", "bin/busybox", "bin/sh", "console", "init"]
    by_name = {m.name: m for m in members}
    assert stat.S_ISDIR(by_name["bin"].mode)
    assert by_name["bin/busybox"].data == bytes(range(256)) * 3 + b"z"
    assert by_name["bin/busybox"].mode == stat.S_IFREG | 0o755
    assert stat.S_ISLNK(by_name["bin/sh"].mode) and by_name["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(by_name["console"].mode) and by_name["console"].rdev == (5, 1)


def test_same_input_same_bytes():
    assert _sample() == _sample()


def test_duplicate_name_is_refused():
    w = CpioWriter()
    w.file("x", b"")
    with pytest.raises(ValueError):
        w.file("/x", b"")


def test_truncated_archive_is_refused():
    with pytest.raises(ValueError):
        read_newc(_sample()[:200])


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
def test_busybox_cpio_lists_and_extracts_it(tmp_path):
    data = _sample()
    listing = subprocess.run(["busybox", "cpio", "-t"], input=data, capture_output=True, check=True)
    assert listing.stdout.decode().split() == ["bin", "bin/busybox", "bin/sh", "console", "init"]
    # Extract everything but the device node (mknod would need privileges we may lack).
    subprocess.run(["busybox", "cpio", "-i", "-d", "bin", "bin/*", "init"], input=data,
                   cwd=tmp_path, capture_output=True, check=True)
    assert (tmp_path / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tmp_path / "bin" / "busybox").read_bytes() == bytes(range(256)) * 3 + b"z"
    assert (tmp_path / "bin" / "sh").is_symlink()
    assert str((tmp_path / "bin" / "sh").readlink()) == "busybox"
