"""The stream's event classes (svga/stream/value.py) behave as the frozen dataclasses they
replace: each is checked against a ``@dataclass(frozen=True)`` with the same fields, defined
here as the oracle."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from svga.stream.capture import Capture, FifoRegWrite, Frame, Header, Pixels, RegWrite, Time
from svga.stream.items import CursorMove, Mode, Position, Raw, Refresh, StreamItem, Sync, Truncated


@dataclasses.dataclass(frozen=True)
class ModeDC:
    width: int
    height: int
    bpp: int = 32


@dataclasses.dataclass(frozen=True)
class PixelsDC:
    x: int
    y: int
    width: int
    height: int
    data: bytes = dataclasses.field(repr=False)
    key: bool = False


def _name_swapped(text: str, old: str, new: str) -> str:
    return text.replace(old, new, 1)


def test_repr_is_the_dataclass_repr():
    assert repr(Mode(800, 600)) == _name_swapped(repr(ModeDC(800, 600)), "ModeDC", "Mode")
    px = Pixels(1, 2, 1, 1, b"\0\0\0\0", key=True)
    assert repr(px) == _name_swapped(repr(PixelsDC(1, 2, 1, 1, b"\0\0\0\0", key=True)), "PixelsDC", "Pixels")
    assert repr(Sync()) == "Sync()"


def test_equality_is_by_class_and_fields():
    assert Mode(800, 600) == Mode(800, 600, 32) == Mode(width=800, height=600)
    assert Mode(800, 600) != Mode(800, 601)
    assert Sync() == Sync() and Sync() != Refresh()  # no fields, still not equal across classes
    assert RegWrite(1, 2) != FifoRegWrite(1, 2) and Frame(3) != Time(3)
    assert Mode(1, 2) != (1, 2, 32)
    assert len({Mode(1, 2), Mode(1, 2), Mode(2, 1)}) == 2
    assert hash(CursorMove(1, 2, True)) == hash(CursorMove(1, 2, True))


def test_frozen_as_a_dataclass():
    m = Mode(800, 600)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.width = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModeDC(800, 600).width = 1  # type: ignore[misc]  # the oracle raises the same
    with pytest.raises(dataclasses.FrozenInstanceError):
        del m.height


def test_constructor_errors_as_a_dataclass():
    for cls in (Mode, ModeDC):
        with pytest.raises(TypeError):
            cls(800)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(800, 600, depth=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="need 4 bytes, got 3"):
        Pixels(0, 0, 1, 1, b"abc")


def test_replace_pickle_and_positions():
    h = Header(kind="model", vram_size=16 << 20)
    h2 = h.replace(start_mode=(640, 480, 32))
    assert h2.start_mode == (640, 480, 32) and h2.vram_size == h.vram_size and h.start_mode == (0, 0, 0)
    with pytest.raises(TypeError):
        h.replace(colour=1)
    for v in (h, Mode(1, 2), Raw((1, 2)), Truncated("UPDATE", 5, 2), Position("f", offset=8)):
        assert pickle.loads(pickle.dumps(v)) == v
    p = Position("cap.bin", offset=16)
    assert p.word(2) == Position("cap.bin", None, 24) and str(p.word(2)) == "cap.bin@24"
    assert Position("s", line=3).word(5) == Position("s", 3) and str(Position("s", 3)) == "s:3"


def test_capture_compares_by_header_and_items():
    item = StreamItem(Position("s", 1), Sync())
    assert Capture(Header(), [item]) == Capture(Header(), [item])
    assert Capture(Header(), [item]) != Capture(Header(kind="model"), [item])
    with pytest.raises(TypeError):
        hash(Capture(Header(), []))
