"""The recorder reading committed words out of a mapped ring (svga/fifo.py 'Ring reader',
docs/capture-format.md 'What a recording holds'), and its compiled splitter
(svga/transport/recorder.c) against its Python twin.

Oracles: the commands each test encodes itself, numpy drawings of the framebuffer, zlib for the
pixels' checksums, and the Python splitter for the compiled one's bytes."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from svga.commands import Cmd, Command, encode
from svga.device import Device, open_device
from svga.model import ModelTransport
from svga.registers import INDEX_PORT, VALUE_PORT, Reg
from svga.stream.binary import read_capture
from svga.stream.capture import Pixels
from svga.stream.items import Raw
from svga.transport import recorder
from svga.transport.recorder import RecordingTransport


def fifo_events(path) -> list:
    return [e for e in read_capture(path).events() if isinstance(e, Command | Raw)]


def copies(n: int, first: int = 0) -> list[bytes]:
    """n RECT_COPYs (28 bytes each; both profiles offer the command), each with its own fields."""
    return [encode("RECT_COPY", src_x=(first + i) % 50, src_y=i % 40, dest_x=i % 30, dest_y=(first + i) % 20,
                   width=3, height=2) for i in range(n)]


def test_the_driver_s_fifo_hands_the_reading_over_on_a_mapped_ring(tmp_path):
    with open_device("model", profile="qemu", record=str(tmp_path / "a.svgacap")) as dev:
        assert dev.fifo.listener is None and dev.fifo._ring_reader is not None
    # no mapped ring (the transport says so): the commit listener, as on qtest
    inner = ModelTransport("qemu")
    rec = RecordingTransport(inner, str(tmp_path / "b.svgacap"))
    rec._ring_b = None
    with Device(rec) as dev:
        assert dev.fifo.listener is not None and dev.fifo._ring_reader is None


@pytest.mark.parametrize("profile", ["qemu", "vmware"])
def test_commands_across_the_wrap_and_several_rings_are_recorded_in_order(tmp_path, profile):
    path = tmp_path / "wrap.svgacap"
    sent = copies(40_000)  # several times the ring, so the driver reuses it
    with open_device("model", profile=profile, record=str(path)) as dev:
        dev.set_mode(64, 48)
        dev.fifo.restart_at(dev.fifo.max - 20)  # the first command already crosses MAX
        laps = 40_000 * 28 / dev.fifo.ring_bytes
        for i in range(0, len(sent), 1000):
            dev.fifo.write_batch(sent[i: i + 1000])
            if i % 7000 == 0:
                dev.fifo.sync()
    assert laps > 2
    assert [e.encode() for e in fifo_events(path)] == sent


def test_a_command_split_over_two_reads_is_recorded_once_whole(tmp_path):
    path = tmp_path / "split.svgacap"
    fill = encode("RECT_COPY", src_x=1, src_y=2, dest_x=3, dest_y=4, width=5, height=6)
    with open_device("model", profile="vmware", record=str(path)) as dev:
        dev.set_mode(64, 48)
        res = dev.fifo.reserve(len(fill))
        res.buf[:] = np.frombuffer(fill, np.uint8)
        dev.fifo.commit(8)  # two words committed ...
        dev.regs.read(Reg.ID)  # ... a register access reads the ring: the command is not whole
        res2 = dev.fifo.reserve(len(fill) - 8)
        res2.buf[:] = np.frombuffer(fill[8:], np.uint8)
        dev.fifo.commit()
        dev.fifo.sync()
    assert [e.encode() for e in fifo_events(path)] == [fill]


def test_the_ring_is_read_before_space_the_device_ran_behind_the_driver_s_back_is_reused(tmp_path):
    # A device that runs the FIFO on its own (VMware; QEMU's display refresh): STOP moves with
    # no access by the driver. The driver reuses that space only after reading STOP, which the
    # recorder sees first: every command is recorded as sent, none overwritten.
    path = tmp_path / "async.svgacap"
    inner = ModelTransport("qemu")
    sent = copies(30_000)
    with Device(RecordingTransport(inner, str(path))) as dev:
        dev.set_mode(64, 48)
        per_ring = dev.fifo.ring_bytes // 28
        at = 0
        while at < len(sent):
            batch = sent[at: at + per_ring // 2]
            dev.fifo.write_batch(batch)
            at += len(batch)
            inner.port_write(INDEX_PORT, int(Reg.SYNC))  # the device runs what is pending,
            inner.port_write(VALUE_PORT, 1)              # the recorder not told
    assert [e.encode() for e in fifo_events(path)] == sent


def test_pixels_under_an_update_are_read_at_the_next_register_access(tmp_path):
    path = tmp_path / "px.svgacap"
    with open_device("model", profile="vmware", record=str(path)) as dev:
        dev.set_mode(64, 48)
        dev.framebuffer[2:6, 3:8] = 0x112233
        dev.update(3, 2, 5, 4)
        dev.sync()  # a frame: read here
        dev.framebuffer[2:6, 3:8] = 0x445566
        dev.update(3, 2, 5, 4)
        dev.framebuffer[2:6, 3:8] = 0x778899  # drawn over before any register access
        dev.update(3, 2, 5, 4)
        dev.sync()
    events = read_capture(path).events()
    px = [e for e in events if isinstance(e, Pixels) and not e.key]
    colours = [set(np.frombuffer(p.data, "<u4").tolist()) for p in px]
    assert colours == [{0x112233}, {0x778899}, {0x778899}]
    ups = [i for i, e in enumerate(events) if isinstance(e, Command) and e.name == "UPDATE"]
    assert all(isinstance(events[i - 1], Pixels) for i in ups) and len(ups) == 3


def stream(rng: np.random.Generator, n: int) -> list[bytes]:
    """Commands of every kind the splitter meets: fixed sizes, UPDATEs small, clipped, off the
    screen and large (more than one stored block's 65535 bytes), a size that depends on its
    fields (DEFINE_CURSOR), and at the end an unknown id or a command cut short."""
    out: list[bytes] = []
    for _ in range(n):
        k = rng.integers(0, 7)
        x, y = int(rng.integers(0, 700)), int(rng.integers(0, 500))
        w, h = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        if k == 0:
            out.append(encode("RECT_FILL", color=int(rng.integers(0, 1 << 24)), x=x, y=y, width=w, height=h))
        elif k == 1:
            out.append(encode("RECT_COPY", src_x=x, src_y=y, dest_x=y, dest_y=x % 400, width=w, height=h))
        elif k in (2, 3):
            out.append(encode("UPDATE", x=x, y=y, width=w, height=h))
        elif k == 4:
            out.append(encode("UPDATE", x=0, y=0, width=640, height=int(rng.integers(30, 120))))  # > 64 KiB
        elif k == 5:
            out.append(encode("UPDATE", x=0xFFFFFFF0, y=y, width=w, height=h))  # x beyond the mode
        else:
            out.append(encode("DEFINE_CURSOR", id=0, hotspot_x=0, hotspot_y=0, width=2, height=2,
                              and_mask_depth=1, xor_mask_depth=1, and_mask=bytes(8), xor_mask=bytes(8)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_splitter_writes_what_the_python_code_writes(seed):
    core = recorder._splitter()
    if core is None:
        pytest.skip(f"no compiled splitter (SVGA_NATIVE={os.environ.get('SVGA_NATIVE', '')!r})")
    native, python = splits(core, seed), splits(None, seed)
    assert native == python
    assert len(native[0]) > 400 * 20  # records were written (the 400 commands and pixels)


def test_the_compiled_splitter_s_records_decode_to_the_commands_and_pixels(tmp_path):
    # Independent of the Python twin: the capture read back holds the test's commands, and
    # before each UPDATE the pixels under it (numpy) with zlib's Adler-32 (the reader checks it).
    rng = np.random.default_rng(7)
    cursor_id = int(Cmd.DEFINE_CURSOR).to_bytes(4, "little")
    sent = [c for c in stream(rng, 300) if c[:4] != cursor_id]  # (the model's profile has no cursor)
    screen = rng.integers(0, 1 << 32, (480, 640), dtype=np.uint32)
    path = tmp_path / "core.svgacap"
    seen: list = []  # the model in its non-raising mode: commands off the screen are reported
    with Device(RecordingTransport(ModelTransport("qemu", observer=seen.append), str(path))) as dev:
        dev.set_mode(640, 480)
        dev.framebuffer[:] = screen
        dev.fifo.write_batch(sent)
        dev.regs.read(Reg.ID)  # the ring is read here, before the device has run anything
    events = read_capture(path).events()
    cmds = [e for e in events if isinstance(e, Command)]
    assert [c.encode() for c in cmds] == sent
    for i, e in enumerate(events):
        if isinstance(e, Command) and e.name == "UPDATE":
            x, y, w, h = (e.args[k] for k in ("x", "y", "width", "height"))
            x1, y1 = min(x + w, 640), min(y + h, 480)
            if x < x1 and y < y1:
                p = events[i - 1]
                assert isinstance(p, Pixels) and (p.x, p.y, p.width, p.height) == (x, y, x1 - x, y1 - y)
                assert p.data == screen[y:y1, x:x1].tobytes()
    assert zlib  # the reader inflated and checked every stored block


def test_record_and_replay_through_the_ring_give_the_same_screen(tmp_path):
    from svga.captures.replay import Player, model_device, replay

    rng = np.random.default_rng(3)
    path = tmp_path / "rr.svgacap"
    with open_device("model", profile="qemu", record=str(path)) as dev:
        dev.set_mode(320, 200)
        for frame in range(20):
            dev.framebuffer[frame: frame + 10, 0:320] = int(rng.integers(0, 1 << 24))
            dev.update(0, frame, 320, 10)
            dev.fifo.write_batch(copies(200, first=frame * 1000))
            dev.fifo.send("RECT_COPY", src_x=0, src_y=0, dest_x=100, dest_y=50, width=60, height=40)
            dev.sync()
        want = dev.screenshot_array()
    with model_device("qemu") as dev2:
        cap = read_capture(path)
        player = Player(dev2)
        replay(cap.items, player, cap.header)
        assert (player.screen() == want).all()


def splits(core, seed: int) -> tuple[bytes, bytes]:
    """The records ``core`` (None: the Python code) writes for one random stream of ``seed``
    on a 640x480 screen of random pixels, and the carry it leaves."""
    rng = np.random.default_rng(seed)
    words = b"".join(stream(rng, 400)) + (b"\x63\x00\x00\x00\x01\x00\x00\x00" if seed % 2 else
                                          encode("RECT_FILL", color=1, x=0, y=0, width=1, height=1)[:12])
    screen = rng.integers(0, 1 << 32, (480, 640), dtype=np.uint32)
    rec = RecordingTransport(ModelTransport("qemu"), sink=lambda ev: None)
    with Device(rec) as dev:
        dev.set_mode(640, 480)
        dev.framebuffer[:] = screen
        rec._split_fn = core
        rec._chunks.buf = bytearray()
        rec._chunks.room = 1 << 40  # one buffer: the two runs' bytes compared whole
        rec._commands(memoryview(words))
        out = (bytes(rec._chunks.buf), bytes(rec._carry))
        rec._carry, rec._chunks.buf = bytearray(), bytearray()  # not read back: compared as bytes
    return out


PLANTED = {
    "none": None,
    "Adler-32's halves swapped": ("return b << 16 | a;", "return a << 16 | b;"),
    "clipped one short": ("x1 = (uint64_t)width;", "x1 = (uint64_t)width - 1;"),
    "a word too many in the head": ("p = wr32(p, (uint32_t)(len / 4));",
                                    "p = wr32(p, (uint32_t)(len / 4 + 1));"),
    "one stored block past 65535 bytes": ("if (n > STORED_MAX || rows == NULL)",
                                          "if (n > 2 * STORED_MAX || rows == NULL)"),
    "the last row left out": ("r < h; r++", "r < h - 1; r++"),
    "marked a keyframe": ("*p++ = 0; /* not a keyframe */", "*p++ = 1;"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_comparison_catches_planted_bugs(bug: str, tmp_path, monkeypatch) -> None:
    import ctypes
    from pathlib import Path

    from planted import build_with_bug

    if recorder._splitter() is None:
        pytest.skip(f"no compiled splitter (SVGA_NATIVE={os.environ.get('SVGA_NATIVE', '')!r})")
    change = PLANTED[bug]
    lib = build_with_bug(Path(recorder.__file__).with_suffix(".c"), change, tmp_path, monkeypatch)
    core = recorder.bind(ctypes.CDLL(str(lib)))
    differ = [seed for seed in range(3) if splits(core, seed) != splits(None, seed)]
    if change is None:
        assert differ == []
    else:
        assert differ, f"no stream shows the planted bug ({bug})"
