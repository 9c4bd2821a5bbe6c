"""Fuzzing the svga readers and the software model with hypothesis, on a fixed budget.

Targets: the command-script parser, the .bin reader with `svga check`'s player (the driver's
FIFO writer feeding the model's FIFO processor), the model's FIFO processor with hostile FIFO
registers, the model's register file, the needle reader and the PNG reader. The only
exceptions allowed to escape are svga.errors.SVGAError and its subclasses; anything else is a
crash, and its input is kept here as an @example (none so far: see the README's table).

Budget: about 30 s for this file in a normal run (each target's max_examples below). CI sets
CI, which derandomizes the search so a run is repeatable. ``make fuzz`` multiplies every
budget by SVGA_FUZZ_SCALE and runs the atheris harness (tests/hostile/fuzz_atheris.py).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from svga.commands import BY_ID, BY_NAME
from svga.errors import SVGAError
from svga.model import ModelTransport
from svga.qa.images import read_rgb
from svga.qa.needle import read_needle
from svga.registers import FifoReg, Reg
from svga.stream.items import read_binary
from svga.stream.script import parse_script
from svga.tools.check import check_stream

SCALE = int(os.environ.get("SVGA_FUZZ_SCALE", "1"))


def budget(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=bool(os.environ.get("CI")),
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                          HealthCheck.function_scoped_fixture])


# -- the script parser ----------------------------------------------------------------------
NAMES = sorted(BY_NAME)
WORDS = st.sampled_from(NAMES + ["mode", "sync", "refresh", "cursor", "raw", "show", "hide", "#", "x="])
TOKENS = st.one_of(
    WORDS,
    st.from_regex(r"[a-z_]{1,12}=(0x[0-9a-f]{0,12}|-?\d{0,12}|hex:[0-9a-f]{0,40}|zeros)", fullmatch=True),
    st.from_regex(r"-?\d{1,7}x-?\d{1,7}(x\d{1,3})?", fullmatch=True),
    st.text(max_size=12),
)
LINES = st.lists(st.lists(TOKENS, max_size=10).map(" ".join), max_size=20).map("\n".join)


@budget(80)
@given(LINES)
@example("RECT_FILL color=0x1 x=0 y=0 width=1 height=1 width=2")
@example("raw " + " ".join(["0x1"] * 3))
@example("DEFINE_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=99999 height=99999 and_mask_depth=32 "
         "xor_mask_depth=32 and_mask=zeros xor_mask=zeros")
def test_fuzz_script_parser(text):
    try:
        items = parse_script(text, "fuzz")
    except SVGAError:
        return
    try:
        check_stream(items, "vmware")
    except SVGAError:
        pass


# -- FIFO words through svga check's player -------------------------------------------------
IDS = st.sampled_from(sorted(BY_ID))
WORD = st.one_of(IDS, st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 1, 0xFFFFFFFF, 0x80000000, 4096]))


@budget(150)
@given(st.lists(WORD, max_size=200), st.sampled_from(["qemu", "qemu-cursor", "vmware"]))
def test_fuzz_fifo_words_through_check(words, profile):
    items = read_binary(struct.pack(f"<{len(words)}I", *words), "fuzz.bin")
    try:
        check_stream(items, profile)
    except SVGAError:
        pass


# -- the model's FIFO processor with hostile FIFO registers ----------------------------------
@budget(200)
@given(st.lists(WORD, min_size=4, max_size=64),
       st.tuples(*[st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 16, 1024, 4096, 65536]))] * 4),
       st.booleans(), st.sampled_from(["qemu", "vmware"]))
def test_fuzz_model_fifo_processor(words, regs, observe, profile):
    seen = []
    model = ModelTransport(profile, vram_size=2 << 20, fifo_size=64 << 10,
                           observer=seen.append if observe else None)
    try:
        _write_reg(model, Reg.WIDTH, 64)
        _write_reg(model, Reg.HEIGHT, 64)
        _write_reg(model, Reg.ENABLE, 1)
        fifo = model.fifo
        start = 4096
        for i, w in enumerate(words):
            fifo.write32(start + 4 * i, w)
        for reg, value in zip((FifoReg.MIN, FifoReg.MAX, FifoReg.NEXT_CMD, FifoReg.STOP), regs, strict=True):
            fifo.write32(int(reg) * 4, value)
        _write_reg(model, Reg.CONFIG_DONE, 1)
        _write_reg(model, Reg.SYNC, 1)
        model.display_image()
    except SVGAError:
        pass


def _write_reg(model: ModelTransport, reg: int, value: int) -> None:
    model.port_write(0, int(reg))
    model.port_write(1, value)


# -- the model's register file --------------------------------------------------------------
REGS = st.one_of(st.sampled_from([int(r) for r in Reg]), st.integers(0, 0x1FF), st.integers(0, 0xFFFFFFFF))


@budget(300)
@given(st.lists(st.tuples(st.booleans(), REGS, WORD), max_size=40), st.booleans(),
       st.sampled_from(["qemu", "qemu-cursor", "vmware"]))
@example([(True, int(Reg.PITCHLOCK), 4), (True, int(Reg.WIDTH), 0)], False, "vmware")
def test_fuzz_model_register_file(ops, observe, profile):
    model = ModelTransport(profile, vram_size=2 << 20, fifo_size=64 << 10,
                           observer=(lambda o: None) if observe else None)
    for write, reg, value in ops:
        try:
            if write:
                _write_reg(model, reg, value)
            else:
                model.port_write(0, reg)
                assert 0 <= model.port_read(1) <= 0xFFFFFFFF
        except SVGAError:
            pass
    try:
        model.display_image()
    except SVGAError:
        pass


# -- the needle and PNG readers -------------------------------------------------------------
def _png(width: int = 8, height: int = 8, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG")
    return buf.getvalue()


VALID_PNGS = [_png(), _png(3, 5, "RGBA"), _png(4, 4, "L"), _png(2, 2, "P"), _png(5, 1, "I;16")]


@budget(300)
@given(st.sampled_from(VALID_PNGS), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                             max_size=8), st.integers(0, 1 << 16))
def test_fuzz_png_reader(png, flips, cut):
    data = bytearray(png)
    for at, value in flips:
        data[at % len(data)] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.png"
        path.write_bytes(bytes(data[: max(cut, 8)]))
        try:
            rgb = read_rgb(path)
        except SVGAError:
            return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4),
                    max_leaves=20)
AREA = st.fixed_dictionaries({}, optional={
    "xpos": JSON | st.integers(-5, 20), "ypos": JSON | st.integers(-5, 20),
    "width": JSON | st.integers(-5, 20), "height": JSON | st.integers(-5, 20),
    "type": st.sampled_from(["match", "exclude", "ocr"]) | JSON, "match": JSON | st.floats(0, 100),
    "margin": JSON | st.integers(-5, 400), "click_point": JSON,
})
NEEDLE = st.one_of(JSON, st.fixed_dictionaries({"area": st.lists(AREA, max_size=4) | JSON},
                                               optional={"tags": JSON, "properties": JSON}))


@budget(300)
@given(NEEDLE, st.booleans())
@example({"area": [{"xpos": 0, "ypos": 0, "width": 1e308, "height": 1, "type": "match"}]}, False)
def test_fuzz_needle_reader(doc, raw_bytes):
    text = json.dumps(doc, allow_nan=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "n.json").write_bytes(text.encode()[:-1] if raw_bytes else text.encode())
        (folder / "n.png").write_bytes(VALID_PNGS[0])
        try:
            read_needle(folder / "n.json")
        except SVGAError:
            pass
