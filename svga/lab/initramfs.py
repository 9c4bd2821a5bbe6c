"""The lab guest's initramfs: kernel choice, module list, the /init scripts and a cached
build (tools layer, lab).

The guest has no disk. Its kernel is the host's Debian kernel (/boot/vmlinuz-<ver>); its
initramfs holds only a static busybox, a handful of modules and two shell scripts:

- ``/init`` (stage 1, PID 1 in the initramfs) loads the modules, mounts the host's root
  (9p tag ``hostroot``, read-only) with a tmpfs-backed overlayfs on top so the guest can
  write, mounts a tmpfs on /run, mounts the host's job folder (9p tag ``labio``, writable)
  at /run/svga-lab/io, copies busybox and stage 2 to /run/svga-lab, moves /proc /sys /dev
  into the new root and switch_roots to stage 2.
- ``stage2`` (PID 1 on the new root) writes ``io/ready`` (the guest's uptime), then runs
  the jobs the host drops into the job folder, one after the other: it waits for
  ``io/job-<n>/cmd`` (n = 1, 2, ...), runs it with busybox sh, stdout to ``out``, stderr
  to ``err``, and writes the exit status to ``status`` (via a rename, so the host never
  reads half of it). It polls for the next job every 20 ms for 2 s, then every 250 ms
  (an idle guest then costs about 5 % of a host core). Progress lines ("svga-lab: ...")
  go to the serial console.

Any failure in stage 1 prints a line on the console and powers the guest off, so the host
sees QEMU exit at once instead of waiting for a timeout.

The modules are resolved from /lib/modules/<ver>/modules.dep, dependencies first; a
module the kernel has built in is skipped. The build is cached under
``$XDG_CACHE_HOME/svga-lab`` (default ~/.cache/svga-lab), keyed by the kernel version and
a hash of the scripts, the module list and busybox.

    kernel = find_kernel()                      # svga.lab.kernel.Kernel
    path = build_initramfs(kernel)              # cached .cpio.gz, built once
    modules = resolve_modules(kernel)           # ["virtio_ring", ..., "uhci-hcd"] (file stems)
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import struct
from pathlib import Path

from svga.lab.cpio import CpioWriter
from svga.lab.errors import LabError
from svga.lab.kernel import Kernel, find_kernel

#: Modules the guest needs, named as modprobe would; their dependencies come from
#: modules.dep. virtio/9p/overlay give the root; uinput, evdev and serio_raw serve the
#: vmmouse driver (input injection and the i8042 AUX wake-up); usbcore and uhci-hcd the
#: USB tablet (``-usb`` on the ``pc`` machine is the PIIX3 UHCI controller).
WANTED_MODULES: tuple[str, ...] = (
    "virtio_pci", "9pnet_virtio", "9p", "overlay",
    "uinput", "evdev", "serio_raw",
    "usbcore", "uhci_hcd",
)

#: 9p mount tags shared with vm.py: the host's root (read-only) and the job folder.
ROOT_TAG = "hostroot"
IO_TAG = "labio"
#: Where the job folder appears inside the guest.
GUEST_LAB_DIR = "/run/svga-lab"
GUEST_IO_DIR = GUEST_LAB_DIR + "/io"
#: 9p message size: the 6.1 default (8 KiB) makes every Python import slow.
MSIZE = 512 * 1024

BUSYBOX = Path("/bin/busybox")


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _module_stem(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0]


def _read_dep(kernel: Kernel) -> tuple[dict[str, str], dict[str, list[str]], set[str]]:
    """(module -> relative path, module -> dependency names, built-in modules), all keyed by
    the normalised name (dashes as underscores)."""
    paths: dict[str, str] = {}
    deps: dict[str, list[str]] = {}
    for line in (kernel.modules_dir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        target, rest = line.split(":", 1)
        name = _norm(_module_stem(target))
        paths[name] = target
        deps[name] = [_norm(_module_stem(d)) for d in rest.split()]
    builtin: set[str] = set()
    builtin_file = kernel.modules_dir / "modules.builtin"
    if builtin_file.is_file():
        builtin = {_norm(_module_stem(line)) for line in builtin_file.read_text().split()}
    return paths, deps, builtin


def resolve_modules(kernel: Kernel, wanted: tuple[str, ...] = WANTED_MODULES) -> list[str]:
    """Module file stems (as in /lib/modules, e.g. ``uhci-hcd``) in load order: each
    module after everything it depends on. Built-in modules are left out."""
    paths, deps, builtin = _read_dep(kernel)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name not in paths:
            if name in builtin:
                seen.add(name)
                return
            raise LabError(f"module {name} (needed by {' <- '.join(chain) or 'the lab'}) is "
                           f"neither in {kernel.modules_dir}/modules.dep nor built in")
        seen.add(name)
        # modules.dep lists the closest dependency first and modprobe loads from the end.
        for dep in reversed(deps[name]):
            visit(dep, (name, *chain))
        order.append(name)

    for name in wanted:
        visit(_norm(name), ())
    return [_module_stem(paths[n]) for n in order]


def _module_bytes(kernel: Kernel, rel: str) -> bytes:
    """The module's ELF bytes (``rel`` as in modules.dep), decompressed when the kernel tree
    ships .ko.xz/.ko.gz (busybox insmod wants a plain .ko)."""
    data = (kernel.modules_dir / rel).read_bytes()
    if rel.endswith(".ko"):
        return data
    if rel.endswith(".ko.xz"):
        return lzma.decompress(data)
    if rel.endswith(".ko.gz"):
        return gzip.decompress(data)
    raise LabError(f"cannot unpack module {rel}: only .ko, .ko.xz and .ko.gz are handled")


def check_static(path: Path) -> None:
    """Raise LabError unless path is a static ELF executable (no PT_INTERP segment): the
    initramfs has no dynamic loader."""
    try:
        head = path.read_bytes()
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc.strerror}; "
                       "run `apt-get install -y busybox-static` as root") from exc
    if head[:4] != b"\x7fELF" or head[4] != 2:
        raise LabError(f"{path} is not a 64-bit ELF executable")
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", head, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP: needs ld.so
            raise LabError(f"{path} is dynamically linked: run `apt-get install -y busybox-static` "
                           "as root (it replaces the dynamic busybox)")


def stage1_script(modules: list[str]) -> str:
    """The initramfs's /init: modules, the 9p root under a tmpfs overlay, switch_root."""
    mod_list = " ".join(modules)
    return f"""#!/bin/sh
# svga lab, stage 1 (PID 1 in the initramfs). Generated by svga/lab/initramfs.py.
/bin/busybox --install -s /bin
export PATH=/bin
fail() {{
    echo "svga-lab: stage 1 failed: $*"
    sync; poweroff -f; echo o > /proc/sysrq-trigger; exit 1
}}
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
for m in {mod_list}; do
    insmod /modules/$m.ko || fail "insmod $m"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize={MSIZE},cache=loose,ro {ROOT_TAG} /lower \\
    || fail "mount the host root (9p tag {ROOT_TAG})"
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "mount the overlay's tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot \\
    || fail "mount the overlay"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail "mount /run"
mkdir -p /newroot{GUEST_IO_DIR}
mount -t 9p -o trans=virtio,version=9p2000.L,msize={MSIZE},cache=none {IO_TAG} /newroot{GUEST_IO_DIR} \\
    || fail "mount the job folder (9p tag {IO_TAG})"
cp /bin/busybox /stage2 /newroot{GUEST_LAB_DIR}/ || fail "copy stage 2"
for d in proc sys dev; do
    mount --move /$d /newroot/$d || fail "move /$d"
done
exec switch_root /newroot {GUEST_LAB_DIR}/busybox sh {GUEST_LAB_DIR}/stage2
fail "switch_root"
"""


def stage2_script() -> str:
    """PID 1 on the new root: report ready, then run the host's jobs one after the other."""
    return f"""# svga lab, stage 2 (PID 1 on the overlay root). Generated by svga/lab/initramfs.py.
BB={GUEST_LAB_DIR}/busybox
IO={GUEST_IO_DIR}
TICK={GUEST_LAB_DIR}/tick
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
$BB mkdir -p /dev/pts /dev/shm
$BB mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$BB mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$BB ln -sf /proc/self/fd /dev/fd
$BB ln -sf /proc/self/fd/0 /dev/stdin
$BB ln -sf /proc/self/fd/1 /dev/stdout
$BB ln -sf /proc/self/fd/2 /dev/stderr
$BB hostname svga-lab
$BB mkfifo $TICK
read uptime idle < /proc/uptime
echo "$uptime" > $IO/ready.tmp && $BB mv $IO/ready.tmp $IO/ready
echo "svga-lab: ready after ${{uptime}} s"
n=1
while :; do
    job=$IO/job-$n
    # Poll the shared folder (9p has no change notification): every 20 ms for 2 s
    # after a job, then every 250 ms, so an idle guest costs the host little CPU. The
    # pause is the shell's own `read -t` on a FIFO nobody writes: no process per poll.
    idle=0
    while [ ! -e $job/cmd ]; do
        if [ $idle -lt 100 ]; then pause=0.02; else pause=0.25; fi
        read -t $pause _ <> $TICK
        idle=$((idle + 1))
    done
    echo "svga-lab: job $n started"
    $BB sh $job/cmd < /dev/null > $job/out 2> $job/err
    status=$?
    echo $status > $job/status.tmp && $BB mv $job/status.tmp $job/status
    echo "svga-lab: job $n exited with status $status"
    n=$((n + 1))
done
"""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "svga-lab"


def cache_key(kernel: Kernel, modules: list[str], busybox: bytes) -> str:
    """Kernel version plus a hash of everything else that goes into the archive."""
    h = hashlib.sha256()
    for part in (stage1_script(modules), stage2_script(), " ".join(modules)):
        h.update(part.encode() + b"\0")
    h.update(hashlib.sha256(busybox).digest())
    return f"{kernel.version}-{h.hexdigest()[:16]}"


def initramfs_bytes(kernel: Kernel, busybox: bytes, modules: list[str]) -> bytes:
    """The uncompressed cpio archive."""
    w = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "lower", "upper", "newroot", "modules"):
        w.directory(d)
    # The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
    w.char_device("dev/console", 5, 1)
    w.file("bin/busybox", busybox, mode=0o755)
    w.symlink("bin/sh", "busybox")
    paths, _, _ = _read_dep(kernel)
    for stem in modules:
        w.file(f"modules/{stem}.ko", _module_bytes(kernel, paths[_norm(stem)]))
    w.file("init", stage1_script(modules).encode(), mode=0o755)
    w.file("stage2", stage2_script().encode(), mode=0o644)
    return w.finish()


def initramfs_path(kernel: Kernel, cache: Path | None = None, busybox: Path = BUSYBOX,
                   wanted: tuple[str, ...] = WANTED_MODULES) -> Path:
    """Where the initramfs for ``kernel`` is cached (whether or not it is built yet)."""
    check_static(busybox)
    key = cache_key(kernel, resolve_modules(kernel, wanted), busybox.read_bytes())
    return (cache or cache_dir()) / f"initramfs-{key}.cpio.gz"


def build_initramfs(kernel: Kernel | None = None, cache: Path | None = None,
                    busybox: Path = BUSYBOX, force: bool = False,
                    wanted: tuple[str, ...] = WANTED_MODULES) -> Path:
    """The path of the gzip'ed initramfs for ``kernel``, built unless the cache has it.
    ``wanted``: the modules to load (their dependencies are added)."""
    kernel = kernel or find_kernel()
    path = initramfs_path(kernel, cache, busybox, wanted)
    if path.is_file() and not force:
        return path
    bb = busybox.read_bytes()
    modules = resolve_modules(kernel, wanted)
    cache = path.parent
    cache.mkdir(parents=True, exist_ok=True)
    data = gzip.compress(initramfs_bytes(kernel, bb, modules), compresslevel=6, mtime=0)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
