"""svga/lab/packages.py: the dpkg-query check and the one-line apt-get message."""

import shutil
import subprocess

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


def fake_run(calls):
    """A stand-in for subprocess.run that records each command (and DEBIAN_FRONTEND) and
    succeeds; dpkg-query reports every package installed."""
    def run(cmd, **kwargs):
        calls.append((list(cmd), kwargs.get("env", {}).get("DEBIAN_FRONTEND")))
        out = "install ok installed" if cmd[0] == "dpkg-query" else ""
        return subprocess.CompletedProcess(cmd, 0, out, "")
    return run


def test_nothing_to_install_is_a_no_op(monkeypatch):
    calls = []
    monkeypatch.setattr(packages.subprocess, "run", fake_run(calls))
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)  # not root: an install would refuse
    assert packages.install_packages([]) is None
    assert calls == []  # no apt-get, no dpkg-query


def test_install_runs_apt_get_update_then_install(monkeypatch):
    calls = []
    monkeypatch.setattr(packages.subprocess, "run", fake_run(calls))
    monkeypatch.setattr(packages.os, "geteuid", lambda: 0)
    packages.install_packages(["pkg-a", "pkg-b"], quiet=True)
    assert [c for c in calls if c[0][0] == "apt-get"] == [
        (["apt-get", "update"], "noninteractive"),
        (["apt-get", "install", "-y", "pkg-a", "pkg-b"], "noninteractive"),
    ]
    # Not root: nothing runs, and the error names what to install.
    calls.clear()
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    with pytest.raises(MissingPackages) as exc:
        packages.install_packages(["pkg-a"])
    assert exc.value.missing == ["pkg-a"] and calls == []


def test_not_ready_says_why(monkeypatch):
    monkeypatch.setattr(packages.os, "geteuid", lambda: 1000)
    assert packages.not_ready() == "the lab needs root"
    monkeypatch.setattr(packages.os, "geteuid", lambda: 0)
    assert "no-such-package-xyz" in packages.not_ready(("no-such-package-xyz",))
