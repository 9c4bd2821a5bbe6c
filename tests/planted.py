"""Test helper: a compiled core's C source with one bug planted, built (docs/native.md 'Same
results': each core's comparison with its Python twin must catch bugs planted one at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from svga import native


def build_with_bug(source: Path, change: tuple[str, str] | None, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of ``source`` with ``change`` made (the text to replace, which must occur once,
    and its replacement; None: the source as it is), built into a cache under ``tmp_path``;
    the library's path."""
    text = source.read_text()
    if change is not None:
        assert text.count(change[0]) == 1, f"the planted bug's place is gone from {source.name}: {change[0]}"
        text = text.replace(*change)
    copy = tmp_path / source.name
    copy.write_text(text)
    monkeypatch.setenv("SVGA_NATIVE_DIR", str(tmp_path / "cache"))
    return native.build(copy)
