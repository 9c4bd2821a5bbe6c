"""svga/lab/initramfs.py: module order, the /init scripts and the archive, on a made-up
module tree and, where installed, on the real Debian kernel."""

import gzip
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from svga.lab import initramfs
from svga.lab.cpio import read_newc
from svga.lab.errors import LabError
from svga.lab.kernel import Kernel, find_kernel


def _fake_kernel(tmp_path: Path, dep: str, builtin: str = "") -> Kernel:
    mods = tmp_path / "lib" / "modules" / "9.9.9"
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text(dep)
    (mods / "modules.builtin").write_text(builtin)
    for line in dep.splitlines():
        rel = line.split(":")[0]
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(b"\x7fELF module " + rel.encode())
    return Kernel("9.9.9", tmp_path / "vmlinuz-9.9.9", mods)


FAKE_DEP = """\
kernel/a/top.ko: kernel/b/mid-dash.ko kernel/c/base.ko
kernel/b/mid-dash.ko: kernel/c/base.ko
kernel/c/base.ko:
kernel/d/other.ko:
"""


def test_dependencies_come_first_and_dash_underscore_match(tmp_path):
    k = _fake_kernel(tmp_path, FAKE_DEP)
    assert initramfs.resolve_modules(k, ("top", "mid_dash", "other")) == \
        ["base", "mid-dash", "top", "other"]


def test_builtin_module_is_skipped_and_unknown_one_refused(tmp_path):
    k = _fake_kernel(tmp_path, FAKE_DEP, builtin="kernel/x/virtio.ko\n")
    assert initramfs.resolve_modules(k, ("virtio", "base")) == ["base"]
    with pytest.raises(LabError, match="no_such"):
        initramfs.resolve_modules(k, ("no_such",))


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
@pytest.mark.parametrize("which", ["stage1", "stage2"])
def test_scripts_parse_in_busybox_sh(tmp_path, which):
    text = initramfs.stage1_script(["a", "b-c"]) if which == "stage1" else initramfs.stage2_script()
    script = tmp_path / which
    script.write_text(text)
    proc = subprocess.run(["busybox", "sh", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_stage1_loads_modules_in_order_and_mounts_both_shares():
    text = initramfs.stage1_script(["virtio", "9p", "uhci-hcd"])
    assert "for m in virtio 9p uhci-hcd; do" in text
    assert "insmod /modules/$m.ko" in text
    assert "ro hostroot /lower" in text
    assert "labio /newroot/run/svga-lab/io" in text
    assert "lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work" in text
    assert "exec switch_root /newroot /run/svga-lab/busybox sh /run/svga-lab/stage2" in text


def test_stage2_runs_jobs_and_reports_status_by_rename():
    text = initramfs.stage2_script()
    assert "job=$IO/job-$n" in text
    assert "$BB sh $job/cmd < /dev/null > $job/out 2> $job/err" in text
    assert "$BB mv $job/status.tmp $job/status" in text
    assert "$BB mv $IO/ready.tmp $IO/ready" in text


def test_archive_holds_busybox_modules_scripts_and_console(tmp_path):
    k = _fake_kernel(tmp_path, FAKE_DEP)
    members = {m.name: m for m in read_newc(initramfs.initramfs_bytes(k, b"BB", ["base", "mid-dash"]))}
    assert members["bin/busybox"].data == b"BB"
    assert members["bin/busybox"].mode == stat.S_IFREG | 0o755
    assert members["bin/sh"].data == b"busybox"
    assert members["dev/console"].rdev == (5, 1)
    assert members["modules/base.ko"].data == b"\x7fELF module kernel/c/base.ko"
    assert members["modules/mid-dash.ko"].data == b"\x7fELF module kernel/b/mid-dash.ko"
    assert members["init"].mode & 0o111
    assert members["init"].data.decode() == initramfs.stage1_script(["base", "mid-dash"])
    for d in ("proc", "sys", "dev", "lower", "upper", "newroot"):
        assert stat.S_ISDIR(members[d].mode)


def test_check_static_refuses_a_dynamic_executable():
    with pytest.raises(LabError, match="dynamically linked"):
        initramfs.check_static(Path(sys.executable).resolve())


def test_cached_build_is_reused(tmp_path):
    k = _fake_kernel(tmp_path, FAKE_DEP)
    fake_bb = tmp_path / "busybox"
    fake_bb.write_bytes(_static_elf())
    cache = tmp_path / "cache"
    path = initramfs.build_initramfs(k, cache, busybox=fake_bb, wanted=("top",))
    mtime = path.stat().st_mtime_ns
    again = initramfs.build_initramfs(k, cache, busybox=fake_bb, wanted=("top",))
    assert again == path and again.stat().st_mtime_ns == mtime
    assert path.name.startswith("initramfs-9.9.9-") and path.name.endswith(".cpio.gz")
    names = [m.name for m in read_newc(gzip.decompress(path.read_bytes()))]
    assert ["modules/base.ko", "modules/mid-dash.ko", "modules/top.ko"] == \
        [n for n in names if n.startswith("modules/")]


def _static_elf() -> bytes:
    """A 64-bit ELF header with one PT_LOAD program header and no PT_INTERP."""
    import struct
    eh = bytearray(64)
    eh[:4] = b"\x7fELF"
    eh[4], eh[5], eh[6] = 2, 1, 1
    struct.pack_into("<Q", eh, 0x20, 64)          # e_phoff
    struct.pack_into("<HH", eh, 0x36, 56, 1)      # e_phentsize, e_phnum
    ph = bytearray(56)
    struct.pack_into("<I", ph, 0, 1)              # PT_LOAD
    return bytes(eh + ph)


@pytest.fixture(scope="module")
def real_kernel() -> Kernel:
    # The installed Debian kernel is one of the lab's packages: without it these lab tests
    # fail with the reason (they are deselected by `make test-fast`).
    try:
        return find_kernel()
    except LabError as exc:
        pytest.fail(f"no Debian kernel installed (svga lab setup): {exc}")


@pytest.mark.lab
def test_real_kernel_modules_cover_the_verified_recipe(real_kernel):
    order = initramfs.resolve_modules(real_kernel)
    # The list verified in docs/lab.md (when built as modules, as in Debian 6.1).
    for name in ("virtio_ring", "virtio", "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio",
                 "9p", "overlay", "uinput", "evdev", "serio_raw", "usb-common", "usbcore", "uhci-hcd"):
        assert name in order
    # Every module comes after each module it depends on, as modules.dep says.
    dep = {}
    for line in (real_kernel.modules_dir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        stem = lambda p: p.rsplit("/", 1)[-1].split(".ko")[0]  # noqa: E731
        dep[stem(target)] = [stem(d) for d in rest.split()]
    for i, name in enumerate(order):
        for d in dep[name]:
            assert d in order[:i], f"{name} is loaded before its dependency {d}"
