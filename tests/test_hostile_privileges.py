"""Issue 17, deliverable 5: what the bridge keeps after dropping its privileges, and the
systemd unit's sandbox as systemd itself scores it.

What the daemon keeps (docs/vmmouse.md 'What the daemon keeps'): the descriptors it opened
before the drop, and the I/O permission iopl(3) gave its one thread; nothing else: no
capability in any set, no supplementary group, no_new_privs set. Two starts are checked: as
root, dropping to nobody (``vmmouse run --user``), and as the unit starts it, an unprivileged
user with the ambient CAP_SYS_RAWIO only (``setpriv`` from util-linux plays systemd's
AmbientCapabilities=). The I/O permission itself needs a VM: tests/test_vmmouse_lab_faults.py
checks it in the lab guest, where the backdoor answers after the drop.

Oracles: the kernel's own account of the process (/proc/self/status: Uid, Gid, Groups,
CapInh, CapPrm, CapEff, CapAmb, NoNewPrivs, Threads; /proc/self/fd), ``systemd-analyze
security --offline=true`` (systemd's exposure score of the unit file) and ``systemd-analyze
syscall-filter`` (systemd's own lists of the system call groups the unit names).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "xorg-bridge" / "vmmouse.service"
# Issue 17 asks for 1.5 or better (2.1 before it, 2.0 with the root-then-nobody unit); the unit
# scores 1.1 since it runs as its own user with the ambient CAP_SYS_RAWIO only.
EXPOSURE_AT_MOST = 1.5

CHILD = textwrap.dedent("""
    import json, os
    from vmmouse.daemon import drop_privileges
    keep = os.open("/dev/null", os.O_RDONLY)           # a device opened as root
    before = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    drop_privileges("nobody")
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    after = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    print(json.dumps({k: status[k].split() for k in ("Uid", "Gid", "Groups", "CapInh", "CapPrm",
                                                     "CapEff", "CapAmb", "NoNewPrivs", "Threads")}
                     | {"before": before, "after": after, "keep": keep,
                        "read": len(os.read(keep, 1)) == 0}))
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root (CI runs as root)")
def test_after_dropping_to_nobody_only_the_open_files_remain():
    import json

    p = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    nobody = pwd.getpwnam("nobody")
    assert got["Uid"] == [str(nobody.pw_uid)] * 4 and got["Gid"] == [str(nobody.pw_gid)] * 4
    assert got["Groups"] == []
    for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(got[caps][0], 16) == 0, (caps, got[caps])
    assert got["NoNewPrivs"] == ["1"] and got["Threads"] == ["1"]
    # No descriptor is opened by the drop; the ones opened before stay usable.
    assert set(got["after"]) <= set(got["before"]) | {max(got["before"]) + 1}
    assert got["keep"] in got["after"] and got["read"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is in Debian's systemd")
def test_the_unit_sandbox_score():
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout + p.stderr)
    assert m, p.stdout[-2000:] + p.stderr[-2000:]
    assert float(m[1]) <= EXPOSURE_AT_MOST, p.stdout


# As the unit starts it: the ambient CAP_SYS_RAWIO only, which drop_privileges empties.
CHILD_AMBIENT = textwrap.dedent("""
    import json, os
    def status():
        lines = open("/proc/self/status").read().splitlines()
        return {k: v.split() for k, v in (line.split(":", 1) for line in lines)}
    from vmmouse.daemon import drop_privileges
    keep = os.open("/dev/null", os.O_WRONLY)
    before = status()
    fds_before = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    message = drop_privileges("nobody")
    after = status()
    fds_after = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapAmb", "NoNewPrivs", "Threads")
    print(json.dumps({"before": {k: before[k] for k in keys}, "after": {k: after[k] for k in keys},
                      "fds_before": fds_before, "fds_after": fds_after, "keep": keep,
                      "written": os.write(keep, b"x"), "message": message}))
""")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="setpriv (util-linux) as root plays systemd's User= and AmbientCapabilities=")
def test_started_unprivileged_with_ambient_rawio_the_drop_empties_every_set():
    import json

    nobody = pwd.getpwnam("nobody")
    cmd = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
           "--inh-caps=+sys_rawio", "--ambient-caps=+sys_rawio", sys.executable, "-c", CHILD_AMBIENT]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    rawio = 1 << 17                                   # CAP_SYS_RAWIO (linux/capability.h)
    before, after = got["before"], got["after"]
    assert int(before["CapAmb"][0], 16) == rawio and int(before["CapEff"][0], 16) == rawio
    assert before["NoNewPrivs"] == ["0"]
    for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(after[caps][0], 16) == 0, (caps, after[caps])
    assert after["NoNewPrivs"] == ["1"] and after["Threads"] == ["1"]
    assert after["Uid"] == [str(nobody.pw_uid)] * 4 and after["Groups"] == []
    assert got["fds_after"] == got["fds_before"] and got["written"] == 1
    assert "capabilities dropped" in got["message"]


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_never_runs_the_daemon_as_root():
    unit = _unit_settings()
    assert unit["User"] == ["vmmouse"] and unit["Group"] == ["vmmouse"]
    assert unit["AmbientCapabilities"] == ["CAP_SYS_RAWIO"]
    assert unit["CapabilityBoundingSet"] == ["CAP_SYS_RAWIO"]
    # Only the ExecStartPre lines marked "+" run as root (outside the sandbox).
    assert all(v.lstrip("-").startswith("+") for v in unit["ExecStartPre"])
    assert not unit["ExecStart"][0].startswith(("+", "!", "-+"))
    assert "--user" not in unit["ExecStart"][0]


def _group(name: str) -> set[str]:
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name], capture_output=True,
                         text=True, timeout=60).stdout
    calls: set[str] = set()
    for word in out.split():
        if word.startswith("#") or word == name:
            continue
        calls |= _group(word) if word.startswith("@") else {word}
    return calls


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is in Debian's systemd")
def test_the_unit_system_call_filter_keeps_what_the_daemon_calls():
    # The allow list the unit builds: each SystemCallFilter= line in order, "~" removing
    # (systemd.exec: the first line sets the default, the next ones add or remove).
    allowed: set[str] = set()
    for line in _unit_settings()["SystemCallFilter"]:
        remove = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            names |= _group(word) if word.startswith("@") else {word}
        allowed = allowed - names if remove else allowed | names
    needed = {"iopl", "capset", "prctl", "mmap", "mprotect", "munmap", "ioctl", "poll", "select",
              "read", "write", "openat", "close", "rt_sigaction", "getrusage", "clock_gettime"}
    assert needed <= allowed, needed - allowed
    assert not {"setuid", "setgroups", "ioperm", "setrlimit", "mount", "init_module"} & allowed
