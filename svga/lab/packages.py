"""The Debian packages the QEMU guest lab needs, checked with dpkg-query and installed
with apt-get (tools layer, lab).

- ``qemu-system-x86``: the emulator (7.2 in Debian 12), with the real SVGA II device.
- ``linux-image-amd64``: a kernel for the guest (/boot/vmlinuz-<ver>) and its modules
  (/lib/modules/<ver>); the guest sees the host's root, so it also loads modules from it.
- ``busybox-static``: a static shell and tools for the initramfs's /init.

    missing = missing_packages()      # [] when all are there
    require_packages()                # raises MissingPackages naming the apt-get command
    install_packages(missing)         # as root: apt-get update; apt-get install -y ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from svga.lab.errors import LabError, MissingPackages

PACKAGES: tuple[str, ...] = ("qemu-system-x86", "linux-image-amd64", "busybox-static")


def is_installed(package: str) -> bool:
    """True when dpkg reports the package as installed ("install ok installed")."""
    if shutil.which("dpkg-query") is None:
        raise LabError("dpkg-query not found: the lab's package check needs a Debian-based host")
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0 and proc.stdout.strip().endswith(" installed")


def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages of ``packages`` that are not installed, in the given order."""
    return [p for p in packages if not is_installed(p)]


def not_ready(extra: tuple[str, ...] = ()) -> str:
    """Why the lab cannot run here ('' when it can): not root, or packages missing (the
    lab's own plus ``extra``, e.g. the X session's)."""
    if os.geteuid() != 0:
        return "the lab needs root"
    try:
        missing = missing_packages() + missing_packages(extra)
    except LabError as exc:
        return str(exc)
    return f"missing packages: {' '.join(missing)} (svga lab setup, or apt-get install)" if missing else ""


def require_packages(packages: tuple[str, ...] = PACKAGES) -> None:
    """Raise MissingPackages (a one-line message with the apt-get command) if any is missing."""
    missing = missing_packages(packages)
    if missing:
        raise MissingPackages(missing)


def install_packages(packages: list[str], quiet: bool = False) -> None:
    """Install packages with apt-get (update first: a new machine's lists may be empty).
    Needs root; apt-get's own output goes to stderr unless quiet."""
    if not packages:
        return
    if os.geteuid() != 0:
        raise MissingPackages(packages)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    out = subprocess.DEVNULL if quiet else sys.stderr
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=out, check=False)
        if proc.returncode != 0:
            raise LabError(f"`{' '.join(cmd)}` failed with status {proc.returncode}")
    still = missing_packages(tuple(packages))
    if still:
        raise MissingPackages(still)
