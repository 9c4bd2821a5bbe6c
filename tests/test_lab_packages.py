"""svga/lab/packages.py: the dpkg-query check and the one-line apt-get message."""

import shutil

import pytest

from svga.lab import packages
from svga.lab.errors import MissingPackages

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian host")


def test_lab_package_list():
    assert packages.PACKAGES == ("qemu-system-x86", "linux-image-amd64", "busybox-static")


def test_installed_and_missing_packages_told_apart():
    assert packages.is_installed("dpkg")
    assert not packages.is_installed("svga-lab-no-such-package")
    assert packages.missing_packages(("dpkg", "svga-lab-no-such-package")) == ["svga-lab-no-such-package"]


def test_missing_packages_error_names_the_command():
    with pytest.raises(MissingPackages) as exc:
        packages.require_packages(("dpkg", "svga-lab-no-such-package", "svga-lab-other"))
    msg = str(exc.value)
    assert "apt-get update && apt-get install -y svga-lab-no-such-package svga-lab-other" in msg
    assert "\n" not in msg
    assert exc.value.missing == ["svga-lab-no-such-package", "svga-lab-other"]


def test_nothing_to_install_is_a_no_op():
    packages.install_packages([])


def test_not_ready_says_why(monkeypatch):
    from svga.lab import packages

    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    assert packages.not_ready() == "the lab needs root"
    monkeypatch.setattr(packages.os, "geteuid", lambda: 0)
    assert "no-such-package-xyz" in packages.not_ready(("no-such-package-xyz",))
