"""svga/stream/items.py: stream items, binary FIFO words, and normalize()."""

import struct

import pytest

from svga.commands import encode
from svga.errors import SVGAError
from svga.stream.items import (
    Mode,
    Position,
    Raw,
    StreamItem,
    Sync,
    Truncated,
    Undecodable,
    Unknown,
    normalize,
    read_binary,
)
from svga.stream.script import parse_script


def events(items):
    return [it.event for it in items]


def lines(items):
    return [it.position.line for it in items]


def test_position_text_and_word_offsets():
    assert str(Position("a.txt", line=12)) == "a.txt:12"
    assert str(Position("a.bin", offset=0)) == "a.bin@0"
    assert Position("a.bin", offset=8).word(3) == Position("a.bin", offset=20)
    assert Position("a.txt", line=2).word(3) == Position("a.txt", line=2)


def test_read_binary():
    data = struct.pack("<3I", 1, 2, 3)
    assert read_binary(data, "f.bin") == [StreamItem(Position("f.bin", offset=0), Raw((1, 2, 3)))]
    assert read_binary(b"", "f.bin") == []
    with pytest.raises(SVGAError, match="f.bin is 5 bytes, not a whole number of 32-bit FIFO words"):
        read_binary(b"12345", "f.bin")


def test_commands_pass_through_and_raw_words_decode():
    items = parse_script("UPDATE x=0 y=0 width=8 height=8\nraw 1 0 0 8 8\nsync\n")
    out = normalize(items)
    assert lines(out) == [1, 2, 3]
    assert out[0].event.encode() == out[1].event.encode() == struct.pack("<5I", 1, 0, 0, 8, 8)
    assert out[2].event == Sync()


def test_a_command_split_over_lines_sits_at_its_first_word_and_completes_after_a_sync():
    # RECT_FILL's first three words, a SYNC, then the other three: the command is complete
    # only after the sync, so it comes after it; its position is the line of its id.
    items = parse_script("raw 2 0xff 0\nsync\nraw 0 4 4\nmode 8x8\n")
    out = normalize(items)
    assert [type(e).__name__ for e in events(out)] == ["Sync", "Command", "Mode"]
    assert lines(out) == [2, 1, 4]
    assert out[1].event.args == {"color": 0xFF, "x": 0, "y": 0, "width": 4, "height": 4}


def test_zero_words_are_one_unknown_and_decoding_goes_on():
    out = normalize(parse_script("raw 0 0\nraw 0 1 0 0 2 2\n"))
    assert events(out)[0] == Unknown(0, 3)
    assert out[1].event.name == "UPDATE" and out[1].position.line == 2


def test_an_unknown_id_skips_to_the_next_item():
    out = normalize(parse_script("raw 26 0 0 8 8\nUPDATE x=0 y=0 width=1 height=1\n"))
    assert events(out)[0] == Unknown(26, 5)
    assert out[1].event.name == "UPDATE" and lines(out) == [1, 2]


def test_truncated_command_comes_after_every_device_event():
    out = normalize(parse_script("raw 2 0xff 0\nsync\nrefresh\n"))
    assert [type(e).__name__ for e in events(out)] == ["Sync", "Refresh", "Truncated"]
    assert out[-1] == StreamItem(Position("<script>", line=1), Truncated("RECT_FILL", 6, 3))


def test_undecodable_tail_size():
    # DEFINE_SCREEN (34) with struct_size 20: its extension would be -8 bytes.
    out = normalize([StreamItem(Position("s", line=1), Raw((34, 20, 0, 0, 1, 1, 0, 0, 99)))])
    [item] = out
    assert isinstance(item.event, Undecodable)
    assert item.event.name == "DEFINE_SCREEN" and item.event.nwords == 9
    assert "extension size -8 is out of range" in item.event.reason


def test_binary_positions_are_byte_offsets():
    data = (encode("UPDATE", x=0, y=0, width=1, height=1) + encode("FENCE", fence=7) + bytes(8)
            + struct.pack("<I", 99) + encode("UPDATE", x=0, y=0, width=1, height=1))
    out = normalize(read_binary(data, "c.bin"))
    assert [str(it.position) for it in out] == ["c.bin@0", "c.bin@20", "c.bin@28", "c.bin@36"]
    assert out[1].event.name == "FENCE" and out[1].event.fence == 7
    assert out[2].event == Unknown(0, 2)
    # An unknown id in binary input: no next item, so the rest is skipped with it.
    assert out[3].event == Unknown(99, 6)


def test_device_events_keep_their_order_and_reject_others():
    items = [StreamItem(Position("s", line=1), Mode(8, 8)), StreamItem(Position("s", line=2), Sync())]
    assert normalize(items) == items
    with pytest.raises(TypeError):
        normalize([StreamItem(Position("s", line=1), Unknown(0))])
