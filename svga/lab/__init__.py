"""The QEMU guest lab (tools layer): a real QEMU guest with the real SVGA II device
(``-vga vmware``), the vmmouse (``pc`` machine default) and a USB tablet, booted from the
host's kernel with the host's root file system, driven and checked from outside.

Modules, one job each:

- ``packages``  the Debian packages it needs; check (dpkg-query) and install (apt-get).
- ``cpio``      the initramfs archive format (newc), written and read in Python.
- ``kernel``    which kernel to boot, and its unpacked PVH vmlinux (a faster boot).
- ``initramfs`` the module list, the guest's /init scripts, the cached initramfs.
- ``vm``        ``Guest`` (boot, jobs, markers, QMP screendump and input), ``run``.
- ``marker``    the guest side of markers ("drawn": the host may look now).
- ``cli``       ``svga lab setup|run|screenshot``.

Quick start (as root, after ``svga lab setup``)::

    from svga.lab import Guest, run
    status, output = run(["uname", "-r"])
    with Guest() as g:
        cap = g.capture(["python3", "-m", "some.demo"])   # cap.image: (H, W, 3) uint8

See svga/lab/vm.py for the whole API and the job/marker protocol.
"""

from svga.lab.errors import GuestFailed, GuestTimeout, LabError, MissingPackages
from svga.lab.vm import BootFiles, Capture, Guest, Job, boot, capture, prepare, run

__all__ = ["BootFiles", "Capture", "Guest", "GuestFailed", "GuestTimeout", "Job", "LabError",
           "MissingPackages", "boot", "capture", "prepare", "run"]
