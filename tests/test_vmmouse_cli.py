"""vmmouse.cli: help text, one-line errors with a non-zero status, and the events command on
the QEMU model (no hardware needed)."""

import subprocess
import sys
from pathlib import Path

import pytest

import vmmouse.cli as cli
from vmmouse.absolute import VMMouse
from vmmouse.errors import NoDevice
from vmmouse.events import Buttons
from vmmouse.model import VMPortModel

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for word in ("run", "probe", "events", "libinput debug-events", "psmouse.proto=imps"):
        assert word in out


def test_run_help_documents_the_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    for word in ("--source", "backdoor", "usb", "--wakeup", "serio", "poll", "--user", "nobody"):
        assert word in out


def test_bad_choice_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--source", "joystick"])
    assert e.value.code == 1  # one line and exit 1, as every error (README)


def test_no_source_is_one_line_and_status_1(monkeypatch, capsys):
    def nothing(kind, **kw):
        raise NoDevice("no pointer source: backdoor: x; usb: y")
    monkeypatch.setattr(cli, "open_source", nothing)
    assert cli.main(["events"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "vmmouse: error: no pointer source: backdoor: x; usb: y"


def test_events_prints_decoded_packets_from_the_model(monkeypatch, capsys):
    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.enable()
    model.mouse_event(16384, 8192, 0, Buttons.LEFT)
    model.mouse_event(16384, 8192, -1, Buttons.NONE)
    monkeypatch.setattr(cli, "open_source", lambda kind, **kw: ("backdoor", mouse))
    assert cli.main(["events", "--source", "backdoor", "--wakeup", "poll", "--count", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "abs x=32768 y=16384 buttons=left",
        "abs x=32768 y=16384 buttons=- wheel=+1",
    ]
    assert not model.hooked                                 # closing disabled the vmmouse


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "vmmouse", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage: vmmouse")
