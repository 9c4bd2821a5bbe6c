"""svga/native.py builds and loads the project's compiled cores (docs/native.md 'Building').

Each test builds small C files of its own in a temporary folder, with its own cache folder
(SVGA_NATIVE_DIR) and a fresh table of loaded libraries, so nothing depends on what another
test or an earlier run left. The oracles are independent of the code under test: the cached
file's name is recomputed here from what docs/native.md says goes into it (sha256 of the
source, the flags and the machine), a built library is called through ctypes and must return
what its source says, and the cache folder is listed with pathlib.

The tests that build need a C compiler; without one they fail in CI (tests/conftest.py) rather
than pass unseen.
"""

from __future__ import annotations

import ctypes
import hashlib
import platform
import sys
from pathlib import Path

import pytest

from svga import native

ANSWER = "int answer(void) { return %d; }\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own, and nothing loaded yet."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SVGA_NATIVE_DIR", str(folder))
    monkeypatch.setenv("SVGA_NATIVE", "auto")
    monkeypatch.setattr(native, "_loaded", {})
    return folder


def _needs_compiler() -> None:
    if native.compiler() is None:
        pytest.skip("no C compiler on this machine")


def _source(folder: Path, value: int, name: str = "core.c") -> Path:
    path = folder / name
    path.write_text(ANSWER % value)
    return path


def _answer(lib_path: Path) -> int:
    lib = ctypes.CDLL(str(lib_path))
    lib.answer.restype = ctypes.c_int
    return int(lib.answer())


def test_the_mode_comes_from_svga_native(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("0", "off"), ("off", "off"), ("no", "off"), ("false", "off"), (" FALSE ", "off"),
                            ("require", "require"), ("REQUIRE", "require"), ("", "auto"), ("1", "auto"),
                            ("auto", "auto")):
        monkeypatch.setenv("SVGA_NATIVE", value)
        assert native.mode() == expected, value
    monkeypatch.delenv("SVGA_NATIVE")
    assert native.mode() == "auto"


def test_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SVGA_NATIVE_DIR", str(tmp_path / "mine"))
    assert native.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SVGA_NATIVE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native.cache_dir() == tmp_path / "xdg" / "svga" / "native"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert native.cache_dir() == tmp_path / "home" / ".cache" / "svga" / "native"


def test_the_cached_name_carries_the_source_flags_and_machine(cache: Path, tmp_path: Path) -> None:
    src = _source(tmp_path, 41)
    digest = hashlib.sha256(src.read_bytes() + " ".join(native.FLAGS).encode()
                            + f"{platform.machine()} {sys.platform}".encode()).hexdigest()
    assert native.library_path(src) == cache / f"core-{digest[:16]}.so"
    # The same source elsewhere has the same name; another source another.
    (tmp_path / "elsewhere").mkdir()
    same = _source(tmp_path / "elsewhere", 41)
    assert native.library_path(same) == native.library_path(src)
    other = _source(tmp_path, 42, "core2.c")
    assert native.library_path(other).name.split("-")[1] != native.library_path(src).name.split("-")[1]


def test_a_build_is_cached_and_an_edited_source_builds_anew(cache: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_compiler()
    src = _source(tmp_path, 41)
    first = native.build(src)
    assert first.parent == cache and _answer(first) == 41
    assert sorted(p.name for p in cache.iterdir()) == [first.name]  # no temporary left behind
    # Built once: a second build with no compiler at all returns the same file.
    stamp = first.stat().st_mtime_ns
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert native.build(src) == first and first.stat().st_mtime_ns == stamp
    monkeypatch.delenv("CC")
    # An edited source gets a library of its own, with the new code; the old one is not reused.
    src.write_text(ANSWER % 42)
    second = native.build(src)
    assert second != first and _answer(second) == 42
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, second.name])


def test_load_builds_on_first_use_and_keeps_the_library(cache: Path, tmp_path: Path) -> None:
    _needs_compiler()
    src = _source(tmp_path, 7)
    lib = native.load(src)
    assert lib is not None and lib.answer() == 7
    assert native.load(src) is lib  # loaded once per process
    assert native.library_path(src).exists()


def test_svga_native_0_neither_builds_nor_loads(cache: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVGA_NATIVE", "0")
    src = _source(tmp_path, 1)
    assert native.load(src) is None
    assert not cache.exists()
    # Not remembered as a failure: with the switch back on the core loads (if it can be built).
    monkeypatch.setenv("SVGA_NATIVE", "auto")
    if native.compiler() is not None:
        lib = native.load(src)
        assert lib is not None and lib.answer() == 1


def test_a_failing_build_is_one_line_under_require_and_none_otherwise(
        cache: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_compiler()
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) {\n    int x = 1\n    return x;\n}\n")
    with pytest.raises(native.NativeError) as info:
        native.build(bad)
    message = str(info.value)
    assert "\n" not in message and message.startswith("building bad.c with ")
    assert "error" in message and "expected" in message  # the compiler's error line, not its context
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing half-built kept
    monkeypatch.setenv("SVGA_NATIVE", "require")
    with pytest.raises(native.NativeError) as again:
        native.load(bad)
    assert str(again.value) == message
    monkeypatch.setenv("SVGA_NATIVE", "auto")
    assert native.load(bad) is None


def test_no_compiler_means_none_in_auto_mode_and_an_error_under_require(
        cache: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))  # a CC that is not there: no fall-back to gcc
    assert native.compiler() is None
    src = _source(tmp_path, 3)
    monkeypatch.setenv("SVGA_NATIVE", "require")
    with pytest.raises(native.NativeError, match=r"^no C compiler to build core\.c"):
        native.load(src)
    monkeypatch.setenv("SVGA_NATIVE", "auto")
    assert native.load(src) is None
    assert not cache.exists()


def test_the_package_cores_build(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _needs_compiler()
    assert Path(native.PACKAGE / "model" / "fastpath.c") in native.sources()
    assert native.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(native.sources())
    for line in out:
        built = Path(line.split(": ", 1)[1])
        assert built.parent == cache and built.exists()
