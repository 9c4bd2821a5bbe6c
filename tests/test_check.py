"""svga/tools/check.py: the rules, the stream player, the CLI, and a cross-check of the
"breaks" rules against the software model (svga.model), driven through its ports and FIFO."""

import json
import re
import struct
from pathlib import Path

import pytest

from svga.commands import encode
from svga.errors import ModelError
from svga.model import ModelTransport
from svga.registers import FIFO_NUM_REGS, SVGA_ID_2, FifoReg, Reg, RegisterFile
from svga.tools.check import EXAMPLE_SCRIPT, QEMU_RULES, VMWARE_RULES, Severity, check_stream
from svga.tools.cli import main
from svga.tools.script import parse_script
from svga.tools.stream import CursorMove, Mode, Raw, Refresh, Sync, command_words

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CURSOR_1BPP_32 = ("DEFINE_CURSOR id=0 hotspot_x=0 hotspot_y=0 width=32 height=32 and_mask_depth=1 "
                  "xor_mask_depth=1 and_mask=zeros xor_mask=zeros")
SETUP = "mode 800x600\nrefresh\n"  # a mode the display has adopted: lines 1-2


def cursor(w, h, and_depth=1, xor_depth=1):
    return (f"DEFINE_CURSOR id=0 hotspot_x=0 hotspot_y=0 width={w} height={h} "
            f"and_mask_depth={and_depth} xor_mask_depth={xor_depth} and_mask=zeros xor_mask=zeros")


def alpha(w, h):
    return f"DEFINE_ALPHA_CURSOR id=0 hotspot_x=0 hotspot_y=0 width={w} height={h} image=zeros"


def updates(n):
    return "".join("UPDATE x=0 y=0 width=1 height=1\n" for _ in range(n))


# (profile, script, line of the finding) that fires each rule; the line is where the
# command sits in the script.
QEMU_SAMPLES = {
    "parser-desync": ("qemu", SETUP + "FENCE fence=1\nsync\n", 3),
    "unknown-id": ("qemu", SETUP + "raw 0x0\nsync\n", 3),
    "cursor-and-mask-depth": ("qemu-cursor", SETUP + cursor(32, 1, and_depth=32) + "\nsync\n", 3),
    "larger-than-fifo": ("qemu", SETUP + alpha(200, 200) + "\nsync\n", 3),
    "truncated": ("qemu", SETUP + "raw 0x2 0xff\nsync\n", 3),
    "undecodable": ("qemu", SETUP + "raw 0x22 20 0 0 1 1 0 0\nsync\n", 3),
    "bpp-clears-config-done": ("qemu", SETUP + "mode 800x600x8\nRECT_FILL color=1 x=0 y=0 width=1 height=1\n"
                                               "sync\n", 3),
    "mode-over-max": ("qemu", "mode 2369x600\n", 1),
    "mode-640x480": ("qemu", "mode 640x480\n", 1),
    "cursor-without-cap": ("qemu", CURSOR_1BPP_32 + "\n", 1),
    # 96x96 at 32 bpp: 9216 XOR words, over QEMU's 4096.
    "cursor-limits": ("qemu-cursor", cursor(96, 96, xor_depth=32) + "\n", 1),
    "cursor-width": ("qemu-cursor", cursor(16, 16) + "\n", 1),
    "cursor-bpp": ("qemu-cursor", cursor(32, 32, xor_depth=8) + "\n", 1),
    "alpha-cursor-ignored": ("qemu", alpha(4, 4) + "\n", 1),
    "stale-surface": ("qemu", "mode 800x600\nRECT_FILL color=1 x=0 y=0 width=8 height=8\nsync\n", 2),
    "rect-outside": ("qemu", SETUP + "RECT_COPY src_x=0 src_y=0 dest_x=0 dest_y=590 width=8 height=11\n", 3),
    "update-bad-rect": ("qemu", SETUP + "UPDATE x=0 y=0 width=801 height=1\n", 3),
    "cursor-move-without-cap": ("qemu", "cursor 1 2 show\n", 1),
    "cursor-move-latch": ("qemu-cursor", "cursor 1 2\n", 1),
    "run-cap": ("qemu", updates(1024) + "sync\n", 1024),
}
VMWARE_SAMPLES = {
    "not-offered": ("vmware", "RECT_ROP_FILL color=0 x=0 y=0 width=1 height=1 rop=3\n", 1),
    "unknown-id": ("vmware", "raw 0x1a 0 0 1 1\n", 1),
    # 256x256 BGRA: 262,168 bytes, more than the 256 KiB FIFO can hold.
    "larger-than-fifo": ("vmware", alpha(256, 256) + "\n", 1),
    "truncated": ("vmware", "UPDATE x=0 y=0 width=1 height=1\nraw 0x1 0\n", 2),
    "undecodable": ("vmware", "raw 0x22 20 0 0 1 1 0 0\n", 1),
    "rect-outside": ("vmware", "mode 800x600\nUPDATE x=700 y=0 width=101 height=1\n", 2),
    "cursor-size": ("vmware", alpha(300, 2) + "\n", 1),
    "cursor-depth": ("vmware", cursor(32, 1, and_depth=8) + "\n", 1),
    "mode-over-max": ("vmware", "mode 2361x100\n", 1),
    "mode-bpp": ("vmware", "mode 800x600x16\n", 1),
}


def findings_of(script, profile):
    return check_stream(parse_script(script, "s"), profile)


def test_every_rule_has_a_sample():
    assert set(QEMU_SAMPLES) == {r.key for r in QEMU_RULES}
    assert set(VMWARE_SAMPLES) == {r.key for r in VMWARE_RULES}


def test_every_rule_cites_a_source():
    for rule in QEMU_RULES + VMWARE_RULES:
        assert rule.source and rule.reason, rule.key


@pytest.mark.parametrize("table,key",
                         [("qemu", k) for k in QEMU_SAMPLES] + [("vmware", k) for k in VMWARE_SAMPLES])
def test_rule_fires_at_its_line(table, key):
    rules, samples = (QEMU_RULES, QEMU_SAMPLES) if table == "qemu" else (VMWARE_RULES, VMWARE_SAMPLES)
    profile, script, line = samples[key]
    [rule] = [r for r in rules if r.key == key]
    hits = [f for f in findings_of(script, profile) if f.rule == key]
    assert len(hits) == 1, hits
    assert hits[0].position.line == line
    assert hits[0].severity is rule.severity
    assert hits[0].source == rule.source and rule.reason in hits[0].reason


@pytest.mark.parametrize("profile", ["qemu", "qemu-cursor", "vmware"])
def test_clean_example_has_no_findings(profile):
    items = parse_script((EXAMPLES / "clean-qemu.svgascript").read_text(), "clean")
    assert check_stream(items, profile) == []


def test_breaks_example():
    items = parse_script((EXAMPLES / "breaks-qemu.svgascript").read_text(), "b")
    found = {(f.position.line, f.rule, str(f.severity)) for f in check_stream(items, "qemu")}
    assert found == {
        (7, "stale-surface", "not as intended"),
        (11, "parser-desync", "breaks"),
        (13, "unknown-id", "breaks"),
        (15, "rect-outside", "not as intended"),
        (17, "cursor-and-mask-depth", "breaks"),
        (17, "cursor-without-cap", "not as intended"),
        (17, "cursor-width", "not as intended"),
    }


# -- rules that must not fire ---------------------------------------------------------------
def test_good_cursor_on_qemu_cursor_is_clean():
    assert findings_of(SETUP + CURSOR_1BPP_32 + "\ncursor 10 10 show\nsync\n", "qemu-cursor") == []
    # 64x64 at 32 bpp is QEMU's largest: 4096 XOR words.
    assert findings_of(cursor(64, 64, xor_depth=32) + "\n", "qemu-cursor") == []


def test_refresh_before_the_fill_runs_adopts_the_mode():
    # QEMU's refresh adopts the mode and then runs the FIFO: the fill pending at the refresh
    # uses the new surface.
    script = "mode 800x600\nRECT_FILL color=1 x=700 y=500 width=8 height=8\nrefresh\n"
    assert findings_of(script, "qemu") == []
    # A SYNC before the refresh runs it with the old 640x480 surface.
    script = "mode 800x600\nRECT_FILL color=1 x=700 y=500 width=8 height=8\nsync\nrefresh\n"
    assert {f.rule for f in findings_of(script, "qemu")} == {"stale-surface", "rect-outside"}


def test_mode_over_max_keeps_the_old_mode():
    script = SETUP + "mode 3000x600\nRECT_FILL color=1 x=700 y=0 width=64 height=8\nsync\n"
    assert [f.rule for f in findings_of(script, "qemu")] == ["mode-over-max"]


def test_run_cap_only_past_1023_commands():
    assert findings_of(updates(1023) + "sync\n", "qemu") == []
    # 1100 pending: the first SYNC leaves 77 behind, the second runs them.
    [f] = findings_of(updates(1100) + "sync\nsync\n", "qemu")
    assert f.position.line == 1024 and f.rule == "run-cap"
    assert findings_of(updates(1100) + "sync\n", "vmware") == []


def test_vmware_runs_commands_as_they_are_written():
    script = "mode 800x600\nRECT_FILL color=1 x=700 y=0 width=64 height=8\nmode 640x480\nsync\n"
    assert findings_of(script, "vmware") == []


def test_vmware_offers_what_qemu_does_not():
    script = "FENCE fence=1\nUPDATE_VERBOSE x=0 y=0 width=1 height=1 reason=0\n" + alpha(16, 16) + "\n"
    assert findings_of(script, "vmware") == []
    assert {f.rule for f in findings_of(script, "qemu")} == {"parser-desync", "alpha-cursor-ignored"}


# -- the command line -------------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


LINE = re.compile(r"^(?P<pos>.+?):(?P<line>\d+): (?P<sev>breaks|not as intended): (?P<cmd>[^:]+): .+ \[.+\]$")


def test_cli_breaks_example_exits_1(capsys):
    path = str(EXAMPLES / "breaks-qemu.svgascript")
    code, out, _ = run(capsys, "check", path, "--profile", "qemu")
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == f"{path}: 7 findings on profile qemu: 3 break the device, 4 not as intended"
    parsed = [LINE.match(line) for line in lines[:-1]]
    assert all(parsed) and [int(m["line"]) for m in parsed] == [7, 11, 13, 15, 17, 17, 17]
    assert parsed[1]["sev"] == "breaks" and parsed[1]["cmd"] == "FENCE fence=1"


def test_cli_clean_exits_0(capsys):
    path = str(EXAMPLES / "clean-qemu.svgascript")
    code, out, _ = run(capsys, "check", path)
    assert code == 0 and out == f"{path}: clean on profile qemu (7 commands checked)\n"


def test_cli_not_as_intended_only_exits_0(capsys, tmp_path):
    f = tmp_path / "c.svgascript"
    f.write_text(CURSOR_1BPP_32 + "\n")
    code, out, _ = run(capsys, "check", str(f), "--profile", "qemu")
    assert code == 0 and f"{f}:1: not as intended: DEFINE_CURSOR" in out
    # With a VNC display QEMU has the cursor capability.
    code, out, _ = run(capsys, "check", str(f), "--profile", "qemu", "--qemu-display", "vnc")
    assert code == 0 and "clean on profile qemu-cursor" in out


def test_cli_json(capsys):
    code, out, _ = run(capsys, "check", str(EXAMPLES / "breaks-qemu.svgascript"), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["profile"] == "qemu" and doc["breaks"] == 3 and doc["not_as_intended"] == 4
    assert doc["findings"][1]["line"] == 11 and doc["findings"][1]["rule"] == "parser-desync"


def test_cli_binary_input(capsys, tmp_path):
    f = tmp_path / "c.bin"
    f.write_bytes(encode("UPDATE", x=0, y=0, width=1, height=1) + encode("FENCE", fence=7) + bytes(8)
                  + encode("RECT_FILL", color=1, x=0, y=0, width=1, height=1))
    code, out, _ = run(capsys, "check", str(f), "--profile", "qemu")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{f}@20: breaks: FENCE fence=7: ")
    assert lines[1].startswith(f"{f}@28: breaks: raw 0x0: 2 zero words (INVALID_CMD padding): ")
    assert lines[2] == f"{f}: 2 findings on profile qemu: 2 break the device, 0 not as intended"
    code, out, _ = run(capsys, "check", str(f), "--profile", "vmware")
    assert code == 1 and len(out.splitlines()) == 2  # only the zero words on VMware
    # --format bin reads any name as FIFO words.
    g = tmp_path / "c.fifo"
    g.write_bytes(encode("UPDATE", x=0, y=0, width=1, height=1))
    code, out, _ = run(capsys, "check", str(g), "--format", "bin")
    assert code == 0 and "clean" in out


def test_cli_errors(capsys, tmp_path):
    bad = tmp_path / "bad.svgascript"
    bad.write_text("sync\nRECT_FILL color=1 x=0 y=0 width=8\n")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 1 and out == "" and err == f"svga: error: {bad}:2: RECT_FILL needs field 'height'\n"
    code, _, err = run(capsys, "check", str(tmp_path / "missing.svgascript"))
    assert code == 1 and err.startswith("svga: error: cannot read ") and "No such file" in err
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"123")
    code, _, err = run(capsys, "check", str(odd))
    assert code == 1 and "not a whole number of 32-bit FIFO words" in err
    binary = tmp_path / "x.svgascript"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = run(capsys, "check", str(binary))
    assert code == 1 and "is not a UTF-8 command script" in err
    with pytest.raises(SystemExit) as e:
        main(["check", str(bad), "--profile", "vmware", "--qemu-display", "vnc"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["check", str(bad), "--profile", "nope"])
    assert e.value.code == 2


def test_cli_help_shows_an_example_script(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for line in EXAMPLE_SCRIPT.splitlines():
        assert "  " + line in out
    # The example is a script that parses; on QEMU with a cursor only its raw FENCE breaks.
    found = check_stream(parse_script(EXAMPLE_SCRIPT, "help"), "qemu-cursor")
    assert [(f.position.line, f.rule, f.command) for f in found] == [(8, "parser-desync", "FENCE fence=1")]


# -- cross-check with the software model --------------------------------------------------------
class ModelGuest:
    """Plays a stream on svga.model.ModelTransport through its ports and FIFO memory, as a
    driver would: MIN = 1164 (valid on both hosts), whole commands committed at once, a SYNC
    when the ring is full; it records every ModelError."""

    def __init__(self, profile):
        self.t = ModelTransport(profile=profile)
        self.regs = r = RegisterFile(self.t)
        r[Reg.ID] = SVGA_ID_2
        r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BITS_PER_PIXEL] = 800, 600, 32
        self.min, self.max = FIFO_NUM_REGS * 4, r[Reg.MEM_SIZE]
        for reg, value in ((FifoReg.MIN, self.min), (FifoReg.MAX, self.max),
                           (FifoReg.NEXT_CMD, self.min), (FifoReg.STOP, self.min)):
            self.t.fifo.write32(reg * 4, value)
        r[Reg.ENABLE] = 1
        r[Reg.CONFIG_DONE] = 1
        self.errors = []

    def attempt(self, action):
        try:
            action()
        except ModelError as e:
            self.errors += e.errors

    def fifo(self, reg):
        return self.t.fifo.read32(reg * 4)

    def sync(self):
        self.attempt(lambda: self.regs.write(Reg.SYNC, 1))

    def push(self, words):
        ring = self.max - self.min
        free = ring - 4 - (self.fifo(FifoReg.NEXT_CMD) - self.fifo(FifoReg.STOP)) % ring
        if free < 4 * len(words):
            self.sync()
            free = ring - 4 - (self.fifo(FifoReg.NEXT_CMD) - self.fifo(FifoReg.STOP)) % ring
        nxt = self.fifo(FifoReg.NEXT_CMD)
        for w in words[: free // 4]:  # a command bigger than the ring: what fits
            self.t.fifo.write32(nxt, w)
            nxt = self.min if nxt + 4 == self.max else nxt + 4
        self.t.fifo.write32(FifoReg.NEXT_CMD * 4, nxt)

    def play(self, items):
        for item in items:
            ev = item.event
            if isinstance(ev, Raw):
                self.push(list(ev.words))
            elif isinstance(ev, Mode):
                def mode(ev=ev):
                    self.regs[Reg.WIDTH], self.regs[Reg.HEIGHT] = ev.width, ev.height
                    self.regs[Reg.BITS_PER_PIXEL] = ev.bpp
                self.attempt(mode)
            elif isinstance(ev, Sync):
                self.sync()
            elif isinstance(ev, Refresh):
                self.attempt(self.t.refresh)
            elif isinstance(ev, CursorMove):
                self.regs[Reg.CURSOR_X], self.regs[Reg.CURSOR_Y] = ev.x, ev.y
                if ev.show is not None:
                    self.regs[Reg.CURSOR_ON] = int(ev.show)
            else:
                self.push(command_words(ev))
        self.sync()
        return self


def fifo_offset(guest, items, line):
    """Where the model finds the command of script line ``line``: MIN plus the words before."""
    before = 0
    for item in items:
        if item.position.line >= line:
            break
        if isinstance(item.event, Raw):
            before += len(item.event.words)
        elif not isinstance(item.event, Mode | Sync | Refresh | CursorMove):
            before += len(command_words(item.event))
    return guest.min + 4 * before


BREAKS_QEMU = [r.key for r in QEMU_RULES if r.severity is Severity.BREAKS]
BREAKS_VMWARE = [r.key for r in VMWARE_RULES if r.severity is Severity.BREAKS]


@pytest.mark.parametrize("key", BREAKS_QEMU)
def test_model_stops_where_qemu_breaks(key):
    profile, script, line = QEMU_SAMPLES[key]
    items = parse_script(script)
    assert any(f.rule == key for f in check_stream(items, profile))
    # The clean setup alone gives the model nothing to complain about.
    assert ModelGuest(profile).play(parse_script(SETUP)).errors == []
    guest = ModelGuest(profile).play(items)
    if key == "bpp-clears-config-done":
        # The model imitates this one quietly: CONFIG_DONE is cleared and the FIFO stops,
        # so the fill after it is never taken from the ring.
        assert guest.errors == []
        assert guest.regs[Reg.CONFIG_DONE] == 0
        assert guest.fifo(FifoReg.STOP) != guest.fifo(FifoReg.NEXT_CMD)
    else:
        assert guest.errors, f"the model accepted the stream that breaks rule {key}"
        assert guest.errors[0].offset == fifo_offset(guest, items, line)


@pytest.mark.parametrize("line", [
    "FENCE fence=1",
    "UPDATE_VERBOSE x=0 y=0 width=1 height=1 reason=0",
    "ESCAPE nsid=0 size=4 data=zeros",
    "RECT_ROP_FILL color=0 x=0 y=0 width=1 height=1 rop=3",
    "RECT_ROP_COPY src_x=0 src_y=0 dest_x=1 dest_y=1 width=1 height=1 rop=3",
    "FRONT_ROP_FILL color=0 x=0 y=0 width=1 height=1 rop=3",
    "DEFINE_SCREEN struct_size=28 id=0 flags=3 width=8 height=8 root_x=0 root_y=0",
    "DESTROY_SCREEN screen_id=0",
    "DEFINE_GMRFB gmr_id=0xfffffffe offset=0 bytes_per_line=3200 format=0x1820",
    "ANNOTATION_FILL color=0",
    "DEFINE_GMR2 gmr_id=1 num_pages=1",
    "raw 0x1a 0 0 8 8",   # SURFACE_FILL (26), not in the command table
    "raw 0x4 1 2",        # a legacy id
    "raw 0x0",
])
def test_each_desync_command_breaks_qemu_and_the_model(line):
    items = parse_script(SETUP + line + "\nsync\n")
    found = check_stream(items, "qemu")
    assert [(f.position.line, f.severity) for f in found] == [(3, Severity.BREAKS)]
    guest = ModelGuest("qemu").play(items)
    assert guest.errors and guest.errors[0].offset == guest.min


@pytest.mark.parametrize("key", BREAKS_VMWARE)
def test_model_stops_where_vmware_breaks(key):
    profile, script, line = VMWARE_SAMPLES[key]
    items = parse_script(script)
    assert any(f.rule == key for f in check_stream(items, profile))
    guest = ModelGuest(profile).play(items)
    assert guest.errors and guest.errors[0].offset == fifo_offset(guest, items, line)


def test_words_the_guest_pushes_are_the_scripts():
    # The model guest writes exactly the encoded words (checked against struct.pack).
    g = ModelGuest("vmware")
    g.push([1, 0, 0, 8, 8])
    start = g.min
    assert g.t.fifo.read(start, 20) == struct.pack("<5I", 1, 0, 0, 8, 8)
    assert g.fifo(FifoReg.NEXT_CMD) == start + 20


def test_rules_follow_the_profile_data():
    # FIFO capabilities come from the profile: without FIFO_CAP_FENCE a FENCE breaks VMware's
    # device; with FIFO_CAP_ACCELFRONT (get_profile's accelfront) FRONT_ROP_FILL is offered.
    import dataclasses

    from svga.model import get_profile
    from svga.registers import FifoCap

    vmware = get_profile("vmware")
    no_fence = dataclasses.replace(vmware, fifo_capabilities=vmware.fifo_capabilities & ~FifoCap.FENCE)
    [f] = findings_of("FENCE fence=1\n", no_fence)
    assert f.rule == "not-offered" and "SVGA_FIFO_CAP_FENCE" in f.reason
    front = "FRONT_ROP_FILL color=0 x=0 y=0 width=1 height=1 rop=3\n"
    assert [f.rule for f in findings_of(front, "vmware")] == ["not-offered"]
    assert findings_of(front, get_profile("vmware", accelfront=True)) == []
