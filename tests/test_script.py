"""svga/stream/script.py: the command-script format, parsed and printed."""

import struct

import pytest

from svga.commands import COMMANDS, encode
from svga.errors import SVGAError
from svga.stream.items import CursorMove, Mode, Position, Raw, Refresh, Sync
from svga.stream.script import ScriptError, format_command, format_event, format_script, parse_script

# Fixed fields for one command of every kind, written down from svga_reg.h's structs (signed
# fields negative where the struct has int32), and tails of the size the fields call for.
SAMPLES = {
    "UPDATE": ({"x": 1, "y": 2, "width": 3, "height": 4}, {}),
    "RECT_FILL": ({"color": 0xFF0000, "x": 0, "y": 0, "width": 8, "height": 8}, {}),
    "RECT_COPY": ({"src_x": 1, "src_y": 2, "dest_x": 3, "dest_y": 4, "width": 5, "height": 6}, {}),
    "RECT_ROP_FILL": ({"color": 7, "x": 0, "y": 0, "width": 1, "height": 1, "rop": 3}, {}),
    "RECT_ROP_COPY": ({"src_x": 0, "src_y": 0, "dest_x": 1, "dest_y": 1, "width": 1, "height": 1,
                       "rop": 3}, {}),
    # 40x2 at 1 bpp: rows of 8 bytes (40 bits padded to 64); at 32 bpp 160 bytes a row.
    "DEFINE_CURSOR": ({"id": 0, "hotspot_x": 3, "hotspot_y": 4, "width": 40, "height": 2,
                       "and_mask_depth": 1, "xor_mask_depth": 32},
                      {"and_mask": bytes(range(16)), "xor_mask": bytes(i % 251 for i in range(320))}),
    "DEFINE_ALPHA_CURSOR": ({"id": 0, "hotspot_x": 0, "hotspot_y": 0, "width": 2, "height": 1},
                            {"image": bytes.fromhex("0102030405060708")}),
    "UPDATE_VERBOSE": ({"x": 0, "y": 0, "width": 1, "height": 1, "reason": 0xDEAD}, {}),
    "FRONT_ROP_FILL": ({"color": 1, "x": 2, "y": 3, "width": 4, "height": 5, "rop": 3}, {}),
    "FENCE": ({"fence": 0xFFFFFFFF}, {}),
    "ESCAPE": ({"nsid": 0x10, "size": 6}, {"data": b"\xaa\xbb\xcc\xdd\xee\xff"}),
    "DEFINE_SCREEN": ({"struct_size": 44, "id": 1, "flags": 3, "width": 640, "height": 480,
                       "root_x": -640, "root_y": -1}, {"extension": bytes(range(16))}),
    "DESTROY_SCREEN": ({"screen_id": 1}, {}),
    "DEFINE_GMRFB": ({"gmr_id": 0xFFFFFFFE, "offset": 0, "bytes_per_line": 3200, "format": 0x1820}, {}),
    "BLIT_GMRFB_TO_SCREEN": ({"src_x": -1, "src_y": -2, "left": 0, "top": 0, "right": 10, "bottom": 10,
                              "dest_screen_id": 0}, {}),
    "BLIT_SCREEN_TO_GMRFB": ({"dest_x": 5, "dest_y": 6, "left": -3, "top": 0, "right": 10, "bottom": 10,
                              "src_screen_id": 0}, {}),
    "ANNOTATION_FILL": ({"color": 0x123456}, {}),
    "ANNOTATION_COPY": ({"src_x": -7, "src_y": 8, "src_screen_id": 2}, {}),
    "DEFINE_GMR2": ({"gmr_id": 1, "num_pages": 16}, {}),
    # Three 32-bit page numbers (no flags).
    "REMAP_GMR2": ({"gmr_id": 1, "flags": 0, "offset_pages": 0, "num_pages": 3},
                   {"pages": struct.pack("<3I", 10, 11, 12)}),
}


IDS = {
    # svga_reg.h's SVGA_CMD_* ids (RECT_FILL, RECT_ROP_FILL and RECT_ROP_COPY from the older
    # header QEMU implements); docs/qemu-7.2.md 'Command table' lists them.
    "UPDATE": 1, "RECT_FILL": 2, "RECT_COPY": 3, "RECT_ROP_FILL": 13, "RECT_ROP_COPY": 14,
    "DEFINE_CURSOR": 19, "DEFINE_ALPHA_CURSOR": 22, "UPDATE_VERBOSE": 25, "FRONT_ROP_FILL": 29,
    "FENCE": 30, "ESCAPE": 33, "DEFINE_SCREEN": 34, "DESTROY_SCREEN": 35, "DEFINE_GMRFB": 36,
    "BLIT_GMRFB_TO_SCREEN": 37, "BLIT_SCREEN_TO_GMRFB": 38, "ANNOTATION_FILL": 39,
    "ANNOTATION_COPY": 40, "DEFINE_GMR2": 41, "REMAP_GMR2": 42,
}


def fifo_bytes(name):
    """The FIFO bytes of SAMPLES[name], laid out by hand as svga_reg.h says: the id, each
    fixed field as one little-endian 32-bit word in struct order (int32 fields in two's
    complement), then each tail padded with zero bytes to whole words."""
    fields, tails = SAMPLES[name]
    out = struct.pack("<I", IDS[name])
    out += b"".join(struct.pack("<I", v & 0xFFFFFFFF) for v in fields.values())
    for tail in tails.values():
        out += tail + bytes(-len(tail) % 4)
    return out


def line_of(name):
    fields, tails = SAMPLES[name]
    parts = [name] + [f"{k}={v}" for k, v in fields.items()]
    parts += [f"{k}=hex:{v.hex()}" for k, v in tails.items()]
    return " ".join(parts)


def test_samples_cover_the_command_table():
    assert set(SAMPLES) == set(IDS) == {c.name for c in COMMANDS}
    assert all(IDS[c.name] == c.id for c in COMMANDS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_command_parses_to_the_bytes_of_svga_reg_h(name):
    fields, tails = SAMPLES[name]
    [item] = parse_script(line_of(name), "s")
    assert item.position == Position("s", line=1)
    cmd = item.event
    assert cmd.name == name and cmd.args == fields and cmd.tails == tails
    assert cmd.encode() == fifo_bytes(name)
    assert encode(name, **fields, **tails) == fifo_bytes(name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_format_parse_encode_round_trip(name):
    fields, tails = SAMPLES[name]
    [item] = parse_script(line_of(name))
    text = format_command(item.event)
    [again] = parse_script(text)
    assert again.event.encode() == fifo_bytes(name)
    assert format_command(again.event) == text


def test_a_line_encodes_to_the_words_of_svga_reg_h():
    [item] = parse_script("RECT_FILL color=0xff0000 x=1 y=2 width=3 height=4")
    # SVGA_CMD_RECT_FILL = 2, then color, x, y, width, height.
    assert item.event.encode() == struct.pack("<6I", 2, 0xFF0000, 1, 2, 3, 4)
    [item] = parse_script("ANNOTATION_COPY src_x=-7 src_y=0x10 src_screen_id=2")
    assert item.event.encode() == struct.pack("<4I", 40, 0xFFFFFFF9, 16, 2)


def test_fixed_fields_print_as_command_text():
    [item] = parse_script(line_of("DEFINE_SCREEN"))
    assert format_command(item.event) == (
        "DEFINE_SCREEN struct_size=44 id=1 flags=3 width=640 height=480 root_x=-640 root_y=-1 "
        "extension=hex:000102030405060708090a0b0c0d0e0f")


def test_tails_zeros_and_omitted():
    [item] = parse_script("DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=2 height=3 image=zeros")
    assert item.event.image == bytes(24)
    assert format_command(item.event).endswith(" image=zeros")
    # A tail of size 0 may be left out, and is not printed.
    [item] = parse_script("ESCAPE nsid=1 size=0")
    assert item.event.encode() == struct.pack("<3I", 33, 1, 0)
    assert format_command(item.event) == "ESCAPE nsid=1 size=0"
    # ESCAPE's payload is 'size' bytes, padded to whole words in the FIFO.
    [item] = parse_script("ESCAPE nsid=1 size=5 data=hex:0102030405")
    assert item.event.encode() == struct.pack("<3I", 33, 1, 5) + bytes([1, 2, 3, 4, 5, 0, 0, 0])


def test_device_lines_comments_and_blank_lines():
    text = """\
# a comment

mode 800x600          # trailing comment
mode 1024X768x32
MODE 640x480x8
sync
refresh
cursor 10 20 show
cursor -1 5 hide
cursor 3 4
raw 0x0 30 0xFFFFFFFF
rect_fill color=1 x=0 y=0 width=1 height=1
"""
    items = parse_script(text, "t.svgascript")
    assert [it.position.line for it in items] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert [it.event for it in items[:-1]] == [
        Mode(800, 600, 32), Mode(1024, 768, 32), Mode(640, 480, 8), Sync(), Refresh(),
        CursorMove(10, 20, True), CursorMove(-1, 5, False), CursorMove(3, 4, None),
        Raw((0, 30, 0xFFFFFFFF)),
    ]
    assert items[-1].event.name == "RECT_FILL"
    assert str(items[0].position) == "t.svgascript:3"


def test_format_script_round_trip():
    items = parse_script("mode 800x600\nmode 8x8x16\nsync\nrefresh\ncursor 1 2 show\ncursor 1 2\n"
                         "cursor 0 0 hide\nraw 0x1e 0x5\n" + line_of("DEFINE_CURSOR") + "\n")
    text = format_script(items)
    assert text.splitlines()[:8] == ["mode 800x600", "mode 8x8x16", "sync", "refresh", "cursor 1 2 show",
                                     "cursor 1 2", "cursor 0 0 hide", "raw 0x1e 0x5"]
    again = parse_script(text)
    assert [it.event for it in again[:8]] == [it.event for it in items[:8]]
    assert again[8].event.encode() == items[8].event.encode() == fifo_bytes("DEFINE_CURSOR")
    assert format_event(Raw((1,))) == "raw 0x1"


ERRORS = [
    ("RECT_FILL color=1 x=0 y=0 width=8", "RECT_FILL needs field 'height'"),
    ("RECT_FILL color=1 x=0 y=0 width=8 height=8 depth=3", "RECT_FILL has no field 'depth'"),
    ("RECT_FILL color=red x=0 y=0 width=8 height=8",
     "RECT_FILL.color 'red' is not a number (decimal or 0x-hex)"),
    ("RECT_FILL x", "RECT_FILL: expected field=value, got 'x'"),
    ("RECT_FILL =1", "RECT_FILL: expected field=value, got '=1'"),
    ("UPDATE x=1 x=2 y=0 width=1 height=1", "UPDATE: field 'x' given twice"),
    ("UPDATE x=0x100000000 y=0 width=1 height=1", "UPDATE.x 0x100000000 is out of range"),
    ("UPDATE x=-1 y=0 width=1 height=1", "UPDATE.x=-1 does not fit a 32-bit field"),
    ("UPDATE x=zeros y=0 width=1 height=1", "UPDATE.x is a 32-bit field: give a number, not 'zeros'"),
    ("BLIT x=1", "unknown command 'BLIT' (not in the command table nor one of mode, sync, refresh, "
                 "cursor, raw; write other ids with raw)"),
    ("DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=2 height=2",
     "DEFINE_ALPHA_CURSOR needs image=hex:<16 bytes> or image=zeros"),
    ("DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=1 height=1 image=0",
     "DEFINE_ALPHA_CURSOR.image is a byte string: give image=hex:<bytes> or image=zeros"),
    ("DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=1 height=1 image=hex:00",
     "DEFINE_ALPHA_CURSOR.image must be 4 bytes for these fields, got 1"),
    ("DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=1 height=1 image=hex:abc",
     "DEFINE_ALPHA_CURSOR.image: 'abc'... is not an even number of hex digits"),
    ("DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=1000 height=1000 image=zeros",
     "DEFINE_ALPHA_CURSOR.image would be 4000000 bytes"),
    ("DEFINE_SCREEN struct_size=20 id=0 flags=0 width=1 height=1 root_x=0 root_y=0",
     "DEFINE_SCREEN.extension would be -8 bytes"),
    ("raw", "raw needs at least one FIFO word"),
    ("raw 1 -1", "raw word -1 is out of range"),
    ("raw 0x100000000", "raw word 0x100000000 is out of range"),
    ("raw 0xzz", "raw word '0xzz' is not a number (decimal or 0x-hex)"),
    ("mode 800", "mode needs one WIDTHxHEIGHT or WIDTHxHEIGHTxBPP, got '800'"),
    ("mode 800x600 32", "mode needs one WIDTHxHEIGHT or WIDTHxHEIGHTxBPP, got '800x600 32'"),
    ("sync now", "sync takes no arguments, got 'now'"),
    ("refresh 1", "refresh takes no arguments, got '1'"),
    ("cursor 1", "cursor needs X Y [show|hide], got '1'"),
    ("cursor 1 2 blink", "cursor needs X Y [show|hide], got '1 2 blink'"),
    ("cursor a 2", "cursor x 'a' is not a number (decimal or 0x-hex)"),
]


@pytest.mark.parametrize("line,message", ERRORS)
def test_parse_errors_name_file_and_line(line, message):
    text = f"# header\n\nsync\n{line}\nsync\n"
    with pytest.raises(ScriptError) as e:
        parse_script(text, "script.txt")
    assert str(e.value) == f"script.txt:4: {message}"
    assert isinstance(e.value, SVGAError)
    assert "\n" not in str(e.value)
