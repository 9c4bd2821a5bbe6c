"""``svga info --device model`` imports only what it uses (issue "Fast paths", Deliver 3):
not the lab (svga.lab), not the lint (svga.tools.check), not Pillow (PIL).

The oracle is the interpreter's own table of the modules it imported, ``sys.modules``, read
at the exit of a fresh process that runs the command as ``python -m svga`` does (``-X
importtime`` would do, but it does not report a module imported through importlib).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_FOR_INFO = ("svga.lab", "svga.tools.check", "PIL", "svga.captures", "svga.qa", "svga.transport.qmp",
                "svga.transport.qtest", "qemu", "json", "shutil")
"""The lab, the lint, Pillow, the captures, QA, QEMU's transports and QMP client; and json and
shutil (with bz2, lzma), which the CLI used to import for every command (json for --json only;
shutil through argparse finding the terminal's width: svga.tools.cli.terminal_columns)."""


RUN = """\
import atexit, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "svga"
runpy.run_module("svga", run_name="__main__", alter_sys=True)
"""


def imported_by(tmp_path: Path, *argv: str) -> tuple[set[str], subprocess.CompletedProcess]:
    listing = tmp_path / "modules.txt"
    proc = subprocess.run([sys.executable, "-c", RUN, str(listing), *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    names = set(listing.read_text().split())
    assert "svga.tools.cli" in names, "no module list read: " + proc.stderr[-300:]
    return names, proc


def top(names: set[str], package: str) -> list[str]:
    return sorted(n for n in names if n == package or n.startswith(package + "."))


def test_info_on_the_model_imports_neither_the_lab_nor_the_lint_nor_pillow(tmp_path):
    names, proc = imported_by(tmp_path, "info", "--device", "model")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "device:" in proc.stdout and "SVGA_ID_2" in proc.stdout
    for package in NOT_FOR_INFO:
        assert top(names, package) == [], f"svga info imported {package}"


@pytest.mark.parametrize(("argv", "needs"), [(("check", "--help"), "svga.tools.check"),
                                             (("lab", "--help"), "svga.lab.cli"),
                                             (("compare", "--help"), "svga.tools.compare")])
def test_a_command_imports_its_own_module(tmp_path, argv, needs):
    """The other side of the lazy parsers: the command that runs does get its module (and the
    check above is not passing because the report is empty)."""
    names, proc = imported_by(tmp_path, *argv)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert needs in names
    assert "usage: svga " + argv[0] in proc.stdout


@pytest.mark.parametrize("columns", [None, "77", "0", "-3", "wide"])
def test_the_clis_terminal_width_is_shutils(monkeypatch, columns):
    """The CLI finds the width without importing shutil; the oracle is shutil's own answer."""
    import shutil

    from svga.tools.cli import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
