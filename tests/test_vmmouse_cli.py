"""vmmouse.cli: help text, one-line errors with a non-zero status, and the events command on
the QEMU model (no hardware needed)."""

import subprocess
import sys
from pathlib import Path

import pytest

import vmmouse.cli as cli
from vmmouse.absolute import VMMouse
from vmmouse.errors import BackdoorUnavailable, NoDevice
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


def _fail(error):
    def opener():
        raise error
    return opener


def test_no_source_is_one_line_and_status_1(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_openers", lambda z: {"backdoor": _fail(BackdoorUnavailable("x")),
                                                    "usb": _fail(NoDevice("y"))})
    assert cli.main(["events"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "vmmouse: error: no pointer source: backdoor: x; usb: y"


def test_events_prints_decoded_packets_from_the_model(monkeypatch, capsys):
    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.enable()
    model.mouse_event(16384, 8192, 0, Buttons.LEFT)
    model.mouse_event(16384, 8192, -1, Buttons.NONE)
    mouse.mouse = mouse                                     # the backdoor source's shape
    monkeypatch.setattr(cli, "_openers", lambda z: {"backdoor": lambda: mouse, "usb": _fail(NoDevice("y"))})
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


def test_prepare_with_an_unknown_group_is_one_line(capsys):
    assert cli.main(["prepare", "--group", "no-such-group-xyz"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vmmouse: error: no such group 'no-such-group-xyz' (groupadd --system no-such-group-xyz)"]


def test_sigterm_during_set_up_still_ends_cleanly(monkeypatch, capsys):
    # A SIGTERM before the loop's handlers are in (while the source opens) ends the command
    # with status 0 and the vmmouse disabled, not by the signal's default action.
    import os
    import signal

    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.mouse = mouse

    def slow_open():
        mouse.enable()
        os.kill(os.getpid(), signal.SIGTERM)
        return mouse

    monkeypatch.setattr(cli, "_openers", lambda z: {"backdoor": slow_open, "usb": _fail(NoDevice("y"))})
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["events", "--source", "backdoor", "--wakeup", "poll"]) == 0
    assert not model.hooked and signal.getsignal(signal.SIGTERM) == before
