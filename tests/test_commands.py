"""svga/commands.py: every command's bytes against layouts written down from
lib/vmware/svga_reg.h (and the older header for the deprecated RECT_FILL / RECT_ROP_*),
encode/decode round trips, and the decoder's errors."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svga import commands
from svga.commands import COMMANDS, Cmd, decode, decode_all, encode, mask_row_bytes
from svga.errors import IncompleteCommand, ProtocolError, UnknownCommand


def words(*w):
    return struct.pack(f"<{len(w)}I", *[x & 0xFFFFFFFF for x in w])


# (name, fields, tails, expected words) — the word order is the struct's field order in
# svga_reg.h, with the command id first.
CASES = [
    ("UPDATE", dict(x=1, y=2, width=3, height=4), {}, words(1, 1, 2, 3, 4)),
    ("RECT_FILL", dict(color=0xFF8000, x=1, y=2, width=3, height=4), {}, words(2, 0xFF8000, 1, 2, 3, 4)),
    ("RECT_COPY", dict(src_x=1, src_y=2, dest_x=3, dest_y=4, width=5, height=6), {},
     words(3, 1, 2, 3, 4, 5, 6)),
    ("RECT_ROP_FILL", dict(color=7, x=1, y=2, width=3, height=4, rop=3), {}, words(13, 7, 1, 2, 3, 4, 3)),
    ("RECT_ROP_COPY", dict(src_x=1, src_y=2, dest_x=3, dest_y=4, width=5, height=6, rop=3), {},
     words(14, 1, 2, 3, 4, 5, 6, 3)),
    ("UPDATE_VERBOSE", dict(x=1, y=2, width=3, height=4, reason=0x55), {}, words(25, 1, 2, 3, 4, 0x55)),
    ("FRONT_ROP_FILL", dict(color=9, x=1, y=2, width=3, height=4, rop=3), {}, words(29, 9, 1, 2, 3, 4, 3)),
    ("FENCE", dict(fence=0xABCD), {}, words(30, 0xABCD)),
    ("ESCAPE", dict(nsid=0x7, size=5), {"data": b"hello"}, words(33, 7, 5) + b"hello\0\0\0"),
    ("DEFINE_SCREEN", dict(struct_size=28, id=0, flags=3, width=640, height=480, root_x=-10, root_y=20),
     {"extension": b""}, words(34, 28, 0, 3, 640, 480, -10, 20)),
    ("DEFINE_SCREEN", dict(struct_size=44, id=1, flags=1, width=8, height=9, root_x=0, root_y=0),
     {"extension": words(0xFFFFFFFE, 0x1000, 32, 0)},
     words(34, 44, 1, 1, 8, 9, 0, 0, 0xFFFFFFFE, 0x1000, 32, 0)),
    ("DESTROY_SCREEN", dict(screen_id=5), {}, words(35, 5)),
    ("DEFINE_GMRFB", dict(gmr_id=0xFFFFFFFE, offset=64, bytes_per_line=4096, format=32 | 24 << 8), {},
     words(36, 0xFFFFFFFE, 64, 4096, 0x1820)),
    ("BLIT_GMRFB_TO_SCREEN", dict(src_x=-1, src_y=2, left=3, top=4, right=5, bottom=6, dest_screen_id=0), {},
     words(37, -1, 2, 3, 4, 5, 6, 0)),
    ("BLIT_SCREEN_TO_GMRFB", dict(dest_x=1, dest_y=2, left=-3, top=4, right=5, bottom=6, src_screen_id=1),
     {}, words(38, 1, 2, -3, 4, 5, 6, 1)),
    ("ANNOTATION_FILL", dict(color=0x00112233), {}, words(39, 0x00112233)),
    ("ANNOTATION_COPY", dict(src_x=-5, src_y=6, src_screen_id=2), {}, words(40, -5, 6, 2)),
    ("DEFINE_GMR2", dict(gmr_id=3, num_pages=10), {}, words(41, 3, 10)),
    ("REMAP_GMR2", dict(gmr_id=3, flags=0, offset_pages=0, num_pages=2), {"pages": words(100, 101)},
     words(42, 3, 0, 0, 2, 100, 101)),
    ("REMAP_GMR2", dict(gmr_id=3, flags=commands.REMAP_GMR2_PPN64 | commands.REMAP_GMR2_SINGLE_PPN,
                        offset_pages=1, num_pages=9), {"pages": words(7, 0)},
     words(42, 3, 6, 1, 9, 7, 0)),
    # 2x2 alpha cursor: 5 header words then w*h BGRA pixels.
    ("DEFINE_ALPHA_CURSOR", dict(id=0, hotspot_x=1, hotspot_y=1, width=2, height=2),
     {"image": words(0xFF0000FF, 0x80808080, 0, 0xFFFFFFFF)},
     words(22, 0, 1, 1, 2, 2, 0xFF0000FF, 0x80808080, 0, 0xFFFFFFFF)),
    # 3x2 cursor, 1 bpp AND mask (each row padded to 32 bits: 1 word) then 32 bpp XOR (3 words a row).
    ("DEFINE_CURSOR", dict(id=0, hotspot_x=0, hotspot_y=1, width=3, height=2, and_mask_depth=1,
                           xor_mask_depth=32),
     {"and_mask": words(0xE0000000, 0x40000000), "xor_mask": words(1, 2, 3, 4, 5, 6)},
     words(19, 0, 0, 1, 3, 2, 1, 32, 0xE0000000, 0x40000000, 1, 2, 3, 4, 5, 6)),
]


CASE_IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def test_every_table_command_has_a_written_down_case():
    assert {c.name for c in COMMANDS} <= {name for name, *_ in CASES}


@pytest.mark.parametrize("name,fields,tails,expected", CASES, ids=CASE_IDS)
def test_encode_matches_header_layout(name, fields, tails, expected):
    assert encode(name, **fields, **tails) == expected


@pytest.mark.parametrize("name,fields,tails,expected", CASES, ids=CASE_IDS)
def test_decode_of_header_bytes(name, fields, tails, expected):
    cmd, n = decode(expected)
    assert cmd.name == name
    assert n * 4 == len(expected)
    assert cmd.args == fields
    for k, v in tails.items():
        assert cmd.tails[k] == v


def test_ids_match_the_header():
    # svga_reg.h l.1008-1026 and the deprecated ids QEMU still knows
    assert (Cmd.UPDATE, Cmd.RECT_FILL, Cmd.RECT_COPY, Cmd.RECT_ROP_COPY, Cmd.DEFINE_CURSOR,
            Cmd.DEFINE_ALPHA_CURSOR, Cmd.UPDATE_VERBOSE, Cmd.FRONT_ROP_FILL, Cmd.FENCE, Cmd.ESCAPE,
            Cmd.DEFINE_SCREEN, Cmd.DESTROY_SCREEN, Cmd.DEFINE_GMRFB, Cmd.BLIT_GMRFB_TO_SCREEN,
            Cmd.BLIT_SCREEN_TO_GMRFB, Cmd.ANNOTATION_FILL, Cmd.ANNOTATION_COPY, Cmd.DEFINE_GMR2,
            Cmd.REMAP_GMR2) == (1, 2, 3, 14, 19, 22, 25, 29, 30, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42)


def test_mask_rows_are_padded_to_32_bits():
    assert mask_row_bytes(1, 1) == 4
    assert mask_row_bytes(32, 1) == 4
    assert mask_row_bytes(33, 1) == 8
    assert mask_row_bytes(3, 32) == 12
    assert mask_row_bytes(5, 8) == 8
    assert mask_row_bytes(64, 32) == 256


def test_decode_all_walks_a_stream():
    stream = b"".join(c[3] for c in CASES)
    got = decode_all(stream)
    assert [c.name for c in got] == [c[0] for c in CASES]


def test_unknown_id_names_id_and_offset():
    with pytest.raises(UnknownCommand, match="unknown command id 99 at FIFO offset 1180"):
        decode(words(99, 0), base_offset=1180)
    with pytest.raises(UnknownCommand):
        decode(words(0))  # INVALID_CMD is not a command


def test_incomplete_command_names_it():
    with pytest.raises(IncompleteCommand, match="RECT_FILL at FIFO offset 16 needs 6 words but only 3"):
        decode(words(2, 1, 2), base_offset=16)
    # tail missing
    with pytest.raises(IncompleteCommand, match="ESCAPE"):
        decode(words(33, 0, 16, 1))


def test_encode_errors():
    with pytest.raises(ProtocolError, match="needs field 'height'"):
        encode("UPDATE", x=0, y=0, width=1)
    with pytest.raises(ProtocolError, match="no field 'z'"):
        encode("UPDATE", x=0, y=0, width=1, height=1, z=3)
    with pytest.raises(ProtocolError, match="does not fit"):
        encode("UPDATE", x=-1, y=0, width=1, height=1)
    with pytest.raises(ProtocolError, match="must be 4 bytes"):
        encode("ESCAPE", nsid=0, size=4, data=b"abc")
    with pytest.raises(ProtocolError, match="unknown command name"):
        encode("NOPE")
    with pytest.raises(ProtocolError, match="out of range"):
        decode(words(34, 20, 0, 0, 1, 1, 0, 0))  # struct_size below the v1 size


def test_attribute_access_and_text():
    cmd, _ = decode(encode("RECT_FILL", color=5, x=1, y=2, width=3, height=4))
    assert (cmd.color, cmd.x, cmd.height) == (5, 1, 4)
    assert cmd.text() == "RECT_FILL color=5 x=1 y=2 width=3 height=4"
    assert cmd.nwords == 6


u32 = st.integers(0, 0xFFFFFFFF)
s32 = st.integers(-(1 << 31), (1 << 31) - 1)


@st.composite
def any_command(draw):
    spec = draw(st.sampled_from([c for c in COMMANDS if not c.tails]))
    args = {f.name: draw(s32 if f.signed else u32) for f in spec.fields}
    return spec.name, args


@settings(max_examples=300, deadline=None)
@given(st.lists(any_command(), min_size=1, max_size=20))
def test_round_trip_fixed_commands(cmds):
    blob = b"".join(encode(n, **a) for n, a in cmds)
    back = decode_all(np.frombuffer(blob, dtype="<u4"))
    assert [(c.name, c.args) for c in back] == cmds
    assert b"".join(c.encode() for c in back) == blob


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 10), st.sampled_from([1, 32]), st.randoms(use_true_random=False))
def test_round_trip_cursor(w, h, depth, rnd):
    and_len = mask_row_bytes(w, 1) * h
    xor_len = mask_row_bytes(w, depth) * h
    and_mask = bytes(rnd.getrandbits(8) for _ in range(and_len))
    xor_mask = bytes(rnd.getrandbits(8) for _ in range(xor_len))
    blob = encode("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=w, height=h, and_mask_depth=1,
                  xor_mask_depth=depth, and_mask=and_mask, xor_mask=xor_mask)
    assert len(blob) == 32 + and_len + xor_len
    cmd, n = decode(blob)
    assert (cmd.and_mask, cmd.xor_mask) == (and_mask, xor_mask)
    assert n * 4 == len(blob)


# -- the fast encode() against the checked encoder ---------------------------------------------

def _outcome(fn):
    try:
        return fn()
    except ProtocolError as e:
        return ("error", type(e), str(e))


_field_value = st.one_of(
    st.integers(-(1 << 33), 1 << 33), st.integers(0, 0xFFFFFFFF), st.booleans(),
    st.floats(allow_nan=False, width=32), st.none(), st.text(max_size=2))


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(["UPDATE", "RECT_FILL", 1, 2, Cmd.UPDATE, Cmd.RECT_FILL, "update", "RECT_COPY"]),
       fields=st.dictionaries(st.sampled_from(["x", "y", "width", "height", "color", "rop", "z"]),
                              _field_value, max_size=7))
def test_fast_encode_agrees_with_the_checked_encoder(name, fields):
    """encode()'s one-lookup path (UPDATE, RECT_FILL) gives the checked encoder's bytes, or
    its ProtocolError with the same message, for any fields, right or wrong."""
    spec = commands.spec_for(name)
    got = _outcome(lambda: encode(name, **fields))
    want = _outcome(lambda: commands._encode_checked(spec, dict(fields)))
    assert got == want
    if not isinstance(got, tuple):  # and the bytes are the header layout, by an independent struct
        values = [fields[f.name] for f in spec.fields]
        assert got == struct.pack(f"<{1 + len(values)}I", int(spec.id), *values)


def test_codec_functions_are_made_on_first_use():
    """Import makes no pack function (one compile per command is most of the table's cost);
    the first use of any of a codec's six makes all six."""
    import subprocess
    import sys
    probe = (
        "from svga import commands as c\n"
        "def made(x, n):\n"
        "    try:\n"
        "        type(x).__dict__[n].__get__(x)\n"
        "        return True\n"
        "    except AttributeError:\n"
        "        return False\n"
        "fixed = [x for k, x in c.CODECS.items() if isinstance(k, int) and x.fixed]\n"
        "print(sum(made(x, n) for x in fixed for n in c._PACK_FUNCTIONS))\n"
        "x = c.codec('RECT_COPY')\n"
        "assert x.pack_values(1, 2, 3, 4, 5, 6) == c.encode('RECT_COPY', src_x=1, src_y=2, dest_x=3, "
        "dest_y=4, width=5, height=6)\n"
        "print(sum(made(x, n) for n in c._PACK_FUNCTIONS), len(fixed))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    before, after = out.stdout.split("\n", 1)
    assert before == "0"
    made, fixed = after.split()
    assert made == "6" and int(fixed) > 10


@st.composite
def _any_fields(draw):
    spec = draw(st.sampled_from([c for c in COMMANDS if not c.tails]))
    names = [f.name for f in spec.fields]
    picked = draw(st.lists(st.sampled_from(names + ["x", "z"]), unique=True, max_size=len(names) + 1))
    if draw(st.booleans()):
        picked = list(dict.fromkeys(names + picked))  # mostly complete, so values get checked too
    return spec, {n: draw(_field_value) for n in picked}


@settings(max_examples=400, deadline=None)
@given(_any_fields())
def test_every_fixed_command_encodes_as_the_checked_encoder(case):
    """Every command without tails (the generated pack_dict path, signed fields included): the
    checked encoder's bytes or its ProtocolError, and the header layout with signed fields as
    two's complement, by an independent struct."""
    spec, fields = case
    got = _outcome(lambda: encode(spec.name, **fields))
    assert got == _outcome(lambda: commands._encode_checked(spec, dict(fields)))
    if not isinstance(got, tuple):
        values = [fields[f.name] & 0xFFFFFFFF for f in spec.fields]
        assert got == struct.pack(f"<{1 + len(values)}I", int(spec.id), *values)
