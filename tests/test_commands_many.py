"""encode_many: the compiled core (svga/commands.c) against the Python code (its oracle), and
both against an independent reading of the command layout (struct.pack of each row, written
here), on many kinds of input: every integer dtype, strided and reversed views, scalars, bad
values, wrong lengths, missing and unknown fields. The core must give the same array, or leave
the call to the Python code, which raises the same one-line error."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from svga import commands, native
from svga.errors import ProtocolError

CORE = commands._MANY_CORE[0] if commands._MANY_CORE else commands._many_core()
needs_core = pytest.mark.skipif(CORE is None, reason="no compiled core (SVGA_NATIVE=0 or no C compiler)")


def by_struct(fmt: str, cid: int, rows: list[tuple[int, ...]]) -> np.ndarray:
    """Each row packed by struct ('I' unsigned, 'i' signed fields), read back as uint32 words."""
    data = b"".join(struct.pack("<I" + fmt, cid, *row) for row in rows)
    return np.frombuffer(data, dtype="<u4").reshape(len(rows), 1 + len(fmt))


def both(cmd: object, count: int | None = None, **fields: object) -> tuple[object, object]:
    """(native result or error, Python result or error)."""
    out = []
    for fn in (commands.encode_many, commands._encode_many_py):
        try:
            out.append(fn(cmd, count, **fields))  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - compared below
            out.append(e)
    return out[0], out[1]


def same(a: object, b: object) -> None:
    if isinstance(b, Exception):
        assert type(a) is type(b) and str(a) == str(b)
    else:
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        assert a.dtype == b.dtype == np.dtype("<u4") and a.shape == b.shape and a.flags.c_contiguous
        assert (a == b).all()


@needs_core
def test_rect_fill_equals_struct_packing() -> None:
    i = np.arange(500, dtype=np.int64)
    colors, xs, ys = (i * 0x010203) & 0xFFFFFF, (i % 128) * 8, 128 + i // 128 * 8
    got = commands.encode_many("RECT_FILL", color=colors, x=xs, y=ys, width=8, height=8)
    rows = [(int(c), int(x), int(y)) for c, x, y in zip(colors, xs, ys, strict=True)]
    want = by_struct("IIIII", 2, [(c, x, y, 8, 8) for c, x, y in rows])
    assert got.dtype == np.dtype("<u4") and (got == want).all()
    assert got.tobytes() == b"".join(commands.encode("RECT_FILL", color=c, x=x, y=y, width=8, height=8)
                                     for c, x, y in rows)


@needs_core
@pytest.mark.parametrize("dtype", ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "?", ">i4", "<i8"])
def test_dtypes_and_views(dtype: str) -> None:
    rng = np.random.default_rng(len(dtype) * 7 + ord(dtype[-1]))
    base = rng.integers(0, 100, 40).astype(dtype)
    for view in (base, base[::2], base[::-3], base[5:25]):
        a, b = both("RECT_COPY", src_x=view, src_y=3, dest_x=view, dest_y=0, width=1, height=view)
        same(a, b)
        assert isinstance(b, np.ndarray) and (b[:, 1] == view.astype(np.int64)).all()


@needs_core
def test_signed_fields_two_complement() -> None:
    signed = [s for s in commands.COMMANDS if not s.tails and any(f.signed for f in s.fields)]
    for spec in signed:
        vals = np.array([-(1 << 31), -1, 0, 5, (1 << 31) - 1], dtype=np.int64)
        fields = {f.name: vals if f.signed else 7 for f in spec.fields}
        a, b = both(spec.name, **fields)
        same(a, b)
        fmt = "".join("i" if f.signed else "I" for f in spec.fields)
        rows = [tuple(int(v) if f.signed else 7 for f in spec.fields) for v in vals]
        assert (a == by_struct(fmt, int(spec.id), rows)).all()  # type: ignore[union-attr]
        over = {f.name: (vals + (1 << 31)) if f.signed else 7 for f in spec.fields}
        a, b = both(spec.name, **over)
        assert isinstance(b, ProtocolError)
        same(a, b)


@needs_core
@pytest.mark.parametrize("bad", [
    {"color": np.array([1, 2, 3]), "x": np.array([1, 2]), "y": 0, "width": 1, "height": 1},  # lengths
    {"color": np.array([-1, 2]), "x": 0, "y": 0, "width": 1, "height": 1},  # negative unsigned
    {"color": np.array([1 << 32], dtype=np.uint64), "x": 0, "y": 0, "width": 1, "height": 1},
    {"color": np.array([1.5, 2.0]), "x": 0, "y": 0, "width": 1, "height": 1},  # floats
    {"color": np.zeros((2, 2), np.int64), "x": 0, "y": 0, "width": 1, "height": 1},  # 2-D
    {"color": 1 << 32, "x": 0, "y": 0, "width": 1, "height": 1},  # int too big
    {"color": -1, "x": 0, "y": 0, "width": 1, "height": 1},
    {"color": 1, "x": 0, "y": 0, "width": 1},  # missing
    {"color": 1, "x": 0, "y": 0, "width": 1, "height": 1, "depth": 3},  # unknown
    {"color": 1, "x": 0, "y": 0, "width": 1, "hieght": 1},  # unknown with the same count
    {"color": b"\x01\x02", "x": 0, "y": 0, "width": 1, "height": 1},  # bytes are not an array here
    {"color": [1, 2], "x": np.array([3, 4]), "y": 0, "width": 1, "height": 1},  # a list: Python's
    {"color": np.int64(5), "x": np.array(7), "y": True, "width": 1, "height": 1},  # numpy scalars
    {"color": np.array([], dtype=np.float64), "x": 0, "y": 0, "width": 1, "height": 1},
])
def test_refused_or_odd_calls_match_python(bad: dict[str, object]) -> None:
    same(*both("RECT_FILL", **bad))


@needs_core
def test_count_and_command_kinds() -> None:
    same(*both("UPDATE", 4, x=1, y=2, width=3, height=4))
    same(*both("UPDATE", 0, x=1, y=2, width=3, height=4))
    same(*both("UPDATE", 3, x=np.arange(3), y=2, width=3, height=4))
    same(*both("UPDATE", 2, x=np.arange(3), y=2, width=3, height=4))  # count disagrees
    same(*both("UPDATE", -1, x=1, y=2, width=3, height=4))
    same(*both(commands.Cmd.UPDATE, x=1, y=2, width=3, height=4))
    same(*both(1, x=np.arange(2), y=2, width=3, height=4))
    same(*both("DEFINE_CURSOR", id=1))  # tails: the Python code's error
    same(*both("NO_SUCH", x=1))
    same(*both(["UPDATE"], x=1))


@needs_core
def test_random_fields_match_python() -> None:
    rng = np.random.default_rng(19)
    fixed = [s for s in commands.COMMANDS if not s.tails and 0 < len(s.fields) <= 8]
    for _ in range(300):
        spec = fixed[rng.integers(len(fixed))]
        n = int(rng.integers(0, 6))
        fields: dict[str, object] = {}
        for f in spec.fields:
            kind = rng.integers(4)
            if kind == 0:
                fields[f.name] = int(rng.integers(-(1 << 31), 1 << 32))
            else:
                dt = ["i8", "u4", "i4", "u2"][kind]
                fields[f.name] = rng.integers(0, 1 << 15, n).astype(dt)
        same(*both(spec.name, **fields))


def test_native_off_uses_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """With SVGA_NATIVE=0 the core is never loaded, and the Python code gives the layout."""
    monkeypatch.setenv("SVGA_NATIVE", "0")
    monkeypatch.setattr(commands, "_MANY_CORE", [])
    monkeypatch.setattr(native, "_loaded", {})
    got = commands.encode_many("UPDATE", x=np.array([1, 2]), y=0, width=5, height=6)
    assert commands._MANY_CORE == [None]
    assert (got == by_struct("IIII", 1, [(1, 0, 5, 6), (2, 0, 5, 6)])).all()


@needs_core
def test_word_copy_is_slice_assignment_or_refuses() -> None:
    """The core's word copy (for Fifo.write_words) against bytearray slice assignment, and
    its refusals (nothing written) for ranges out of bounds, offsets or sizes not of whole
    words, a read-only destination and a non-contiguous source."""
    copy = commands._many_copier()
    assert copy is not None
    src = np.arange(40, dtype=np.uint32) * 0x01010101
    raw = src.tobytes()
    for doff, soff, n in [(0, 0, 160), (4, 8, 100), (96, 0, 64), (12, 156, 4), (0, 0, 0)]:
        got, want = bytearray(range(160)), bytearray(range(160))
        assert copy(got, doff, src, soff, n) == 0
        want[doff: doff + n] = raw[soff: soff + n]
        assert got == want
    for doff, soff, n in [(100, 0, 64), (0, 100, 64), (-4, 0, 4), (0, -4, 4), (0, 0, -4),
                          (2, 0, 4), (0, 2, 4), (0, 0, 6)]:
        got = bytearray(160)
        assert copy(got, doff, src, soff, n) == -1
        assert got == bytearray(160)
    assert copy(bytes(160), 0, src, 0, 4) == -1
    assert copy(bytearray(160), 0, src[::2], 0, 4) == -1
    assert copy(bytearray(160), 0, "text", 0, 4) == -1


@needs_core
def test_word_copy_every_alignment_and_length() -> None:
    """The word copy against numpy slice assignment for every destination and source offset
    of 0 to 28 bytes (word-aligned: the 64-bit stores start on an odd word or an even one, the
    loads at any word) and every length of 0 to 260 bytes (the four-a-turn loop, the one-store
    loop and the last word, each entered or not)."""
    copy = commands._many_copier()
    assert copy is not None
    src = (np.arange(80, dtype=np.uint32) * 0x9E3779B1 + 7).astype(np.uint32)
    raw = np.frombuffer(src.tobytes(), np.uint8)
    for doff in range(0, 32, 4):
        for soff in range(0, 32, 4):
            for n in range(0, 264, 4):
                got = np.full(320, 0xA5, np.uint8)
                want = got.copy()
                assert copy(got, doff, src, soff, n) == 0
                want[doff: doff + n] = raw[soff: soff + n]
                assert (got == want).all(), (doff, soff, n)
