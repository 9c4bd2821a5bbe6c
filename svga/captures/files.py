"""Tools layer: a capture file by name, in either form: binary ``.svgacap`` (told by its magic,
:mod:`svga.stream.binary`) or text (:mod:`svga.stream.text`; every command script is one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from svga.stream import binary
from svga.stream.capture import Capture, CaptureError, Header
from svga.stream.items import StreamItem
from svga.stream.text import format_capture, parse_capture

BINARY_SUFFIX = ".svgacap"


def open_capture(path: str | Path, *, salvage: bool = False,
                 on_salvage: Callable[[str], None] | None = None) -> tuple[Header, Iterator[StreamItem]]:
    """The header and the items of a capture; a binary one is read lazily, chunk by chunk."""
    if binary.is_binary(path) or str(path).endswith(BINARY_SUFFIX):
        return binary.iter_capture(path, salvage=salvage, on_salvage=on_salvage)
    cap = load_text(path)
    return cap.header, iter(cap.items)


def load_text(path: str | Path) -> Capture:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CaptureError(f"cannot read {path}: {e.strerror or e}") from None
    if data[:4] == binary.MAGIC[:4]:
        # Starts like a capture but the magic is wrong: say so rather than parse binary as text.
        binary.decode_header(data[: binary.HEADER_SIZE], str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaptureError(f"{path}@{e.start}: neither a binary capture (magic {binary.MAGIC!r}) nor "
                           "UTF-8 text") from None
    return parse_capture(text, str(path))


def load_capture(path: str | Path, *, salvage: bool = False,
                 on_salvage: Callable[[str], None] | None = None) -> Capture:
    header, items = open_capture(path, salvage=salvage, on_salvage=on_salvage)
    return Capture(header, list(items))


def save_capture(path: str | Path, capture: Capture, fmt: str = "auto") -> None:
    """Write a capture: binary for a ``.svgacap`` name (or ``fmt="binary"``), else text."""
    if fmt == "auto":
        fmt = "binary" if str(path).endswith(BINARY_SUFFIX) else "text"
    if fmt == "binary":
        binary.write_capture(path, capture)
        return
    try:
        Path(path).write_text(format_capture(capture))
    except OSError as e:
        raise CaptureError(f"cannot write {path}: {e.strerror or e}") from None
