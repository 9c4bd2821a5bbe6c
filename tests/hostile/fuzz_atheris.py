"""Coverage-guided fuzzing with atheris (``make fuzz``): one target per run, the same targets
and the same rule as tests/test_fuzz_*.py (only svga.errors.SVGAError and its subclasses may
escape; anything else is a crash that atheris reports with the input that caused it, to be
kept in tests/hostile/ as a regression test).

    python tests/hostile/fuzz_atheris.py TARGET [atheris/libFuzzer options, e.g. -runs=100000]

Targets: script, bin, hid, hid-class, packet, png, needle.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from svga.errors import SVGAError
    from svga.qa.images import read_rgb
    from svga.qa.needle import read_needle
    from svga.stream.items import read_binary
    from svga.stream.script import parse_script
    from svga.tools.check import check_stream
    from vmmouse.events import PointerInfo
    from vmmouse.hid import pointer_layout
    from vmmouse.protocol import decode_packet
    from vmmouse.uinput_sink import PointerBridge
    from vmmouse.usbtablet import report_descriptor_length

_DIR = tempfile.mkdtemp(prefix="svga-fuzz-")


class _S32:
    def write(self, etype: int, code: int, value: int) -> None:
        if not -(1 << 31) <= value < 1 << 31:
            raise OverflowError(f"event value {value} is not a signed 32-bit value")

    def syn(self) -> None:
        pass


def _script(data: bytes) -> None:
    check_stream(parse_script(data.decode("utf-8", "replace"), "fuzz"), "vmware")


def _bin(data: bytes) -> None:
    check_stream(read_binary(data[: len(data) // 4 * 4], "fuzz.bin"), "qemu")


def _hid(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    layout = pointer_layout(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512)))
    if layout is None:
        return
    bridge = PointerBridge(_S32(), PointerInfo("f", (layout.x.logical_min, layout.x.logical_max),
                                               (layout.y.logical_min, layout.y.logical_max), hwheel=True))
    while fdp.remaining_bytes():
        try:
            event = layout.decode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)))
        except SVGAError:
            continue
        if event is not None:
            bridge.handle(event)


def _hid_class(data: bytes) -> None:
    report_descriptor_length(data)


def _packet(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    words = [fdp.ConsumeUInt(4) for _ in range(fdp.ConsumeIntInRange(0, 6))]
    event = decode_packet(words, z_horizontal=fdp.ConsumeBool())
    PointerBridge(_S32(), PointerInfo("f", (0, 0xFFFF), (0, 0xFFFF), hwheel=True)).handle(event)


def _png(data: bytes) -> None:
    path = os.path.join(_DIR, "x.png")
    with open(path, "wb") as f:
        f.write(data)
    read_rgb(path)


_PNG = io.BytesIO()


def _needle(data: bytes) -> None:
    from PIL import Image

    if not _PNG.getvalue():
        Image.new("RGB", (8, 8)).save(_PNG, format="PNG")
    with open(os.path.join(_DIR, "n.png"), "wb") as f:
        f.write(_PNG.getvalue())
    with open(os.path.join(_DIR, "n.json"), "wb") as f:
        f.write(data)
    read_needle(os.path.join(_DIR, "n.json"))


TARGETS = {"script": _script, "bin": _bin, "hid": _hid, "hid-class": _hid_class, "packet": _packet,
           "png": _png, "needle": _needle}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv.pop(1)]

    def one(data: bytes) -> None:
        try:
            target(data)
        except SVGAError:
            pass

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
