"""svga/lab/cli.py: argument parsing and error reporting, without booting a guest."""

import argparse

import pytest

from svga.lab import cli
from svga.lab.errors import GuestTimeout, LabError


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="svga")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["lab", *argv])


def test_run_takes_the_command_after_dashes():
    args = _parse("run", "--timeout", "5", "--display", "vnc", "-e", "A=1", "--", "uname", "-r")
    assert cli._strip_dashes(args.command) == ["uname", "-r"]
    assert (args.timeout, args.display, args.env, args.func) == (5.0, "vnc", ["A=1"], cli.handle)


def test_run_without_dashes_keeps_option_like_words():
    args = _parse("run", "ls", "-l", "/")
    assert cli._strip_dashes(args.command) == ["ls", "-l", "/"]


def test_screenshot_after_takes_the_rest():
    args = _parse("screenshot", "out.png", "--marker", "m", "--after", "sh", "-c", "x --y")
    assert (args.output, args.marker) == ("out.png", "m")
    assert cli._strip_dashes(args.after) == ["sh", "-c", "x --y"]
    assert _parse("screenshot", "o.png").after is None


def test_bad_display_is_refused(capsys):
    with pytest.raises(SystemExit):
        _parse("run", "--display", "sdl", "--", "true")


def test_env_items_parse():
    assert cli._parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(LabError):
        cli._parse_env(["novalue"])


def test_errors_print_console_tail_then_one_line(monkeypatch, capsys):
    def boom(args):
        raise GuestTimeout("guest command `x` took more than 1 s; the guest was killed", "line1\nline2")
    monkeypatch.setattr(cli, "_run", boom)
    assert cli.handle(_parse("run", "--", "x")) == cli.EXIT_TIMEOUT
    err = capsys.readouterr().err
    assert err.index("line2") < err.index("svga: error: guest command `x` took more than 1 s")

    monkeypatch.setattr(cli, "_run", lambda a: (_ for _ in ()).throw(LabError("no qemu")))
    assert cli.handle(_parse("run", "--", "x")) == cli.EXIT_LAB_ERROR
    assert capsys.readouterr().err == "svga: error: no qemu\n"


def test_empty_command_is_an_error(capsys):
    assert cli.handle(_parse("run")) == cli.EXIT_LAB_ERROR
    assert "no command given" in capsys.readouterr().err
