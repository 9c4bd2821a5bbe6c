"""The model's FIFO fast path (svga/model/fastpath.py) and its compiled core
(svga/model/fastpath.c) change nothing but speed.

Random streams of small UPDATE, RECT_FILL and RECT_COPY commands (rectangles inside, at the
edge of and outside the target, zero sizes, fields up to 0xFFFFFFFF), with other commands mixed
in (FENCE, UPDATE_VERBOSE, RECT_ROP_FILL, DEFINE_CURSOR, ESCAPE, DEFINE_SCREEN, DESTROY_SCREEN,
an unknown id, a zero word), a last command cut short, rings that wrap, mode and pitch-lock
changes between runs, on the qemu profile (stale surface, placeholder, run cap) and the vmware
one (Screen Objects; with and without the RECT_FILL bit), are played by the same "guest" on three
models: one with the fast path and its compiled core, one with the fast path in Python alone
(the core taken away, as ``SVGA_NATIVE=0`` does), one with ``fast=False`` (every command
through the strict path). The oracle is the strict model, whose behaviour the other model
tests pin down: the other two must agree with it on VRAM, the whole FIFO memory (pointers,
FENCE, BUSY), every register, the state the model keeps (damage, counts, the redraw queue, the
placeholder, the screens, the cursor), what the display shows, the log lines, and every error
(type, message, and each error of the run with its key, command and offset).

The comparison is shown to catch what it is there to catch: bugs planted one at a time in a
copy of the C source (a copy of overlapping rectangles in the wrong row order, a whole-row copy
one row short, a rectangle one pixel past the edge taken, a wrong damage rectangle, a wrong
count, the run cap ignored, a fill with the wrong word, the kept damage misnumbered) each make a
fixed set of scenarios differ from the strict path.

The compiled core is required here (tests/conftest.py sets SVGA_NATIVE=require where there is
a C compiler); without one the tests of the core skip, which fails in CI, and the property test
compares only the Python fast path with the strict path.

Budget: a fixed number of hypothesis examples (80, or SVGA_FASTPATH_EXAMPLES), about 25 s of CPU
time (derandomized when CI is set), and a second or two per planted bug.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from planted import build_with_bug

from svga import native
from svga.errors import ModelError
from svga.facts.profiles import get_profile
from svga.model import ModelTransport, fastpath
from svga.registers import SVGA_ID_2, FifoReg, Reg, RegisterFile

VMWARE = get_profile("vmware")
PROFILES = {
    "qemu": get_profile("qemu"),
    "qemu-cursor": get_profile("qemu-cursor"),
    "vmware": VMWARE,
    # A kit device that still reports the deprecated RECT_FILL bit, so fills meet Screen Objects.
    "vmware-rect-fill": dataclasses.replace(VMWARE, capabilities=VMWARE.capabilities | 0x1),
}
VRAM = 2 << 20
RING = 10 * 1024
BUDGET = settings(max_examples=int(os.environ.get("SVGA_FASTPATH_EXAMPLES", "80")), deadline=None,
                  derandomize=bool(os.environ.get("CI")), database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- commands, encoded here with struct from svga_reg.h's layouts (not by svga.commands) -------


def _span(limit: int) -> st.SearchStrategy[tuple[int, int]]:
    """(start, size) along one axis of ``limit`` pixels: mostly inside, else ending exactly at
    the edge or one past it, a zero size anywhere, or fields near 2**32."""
    inside = st.integers(0, limit).flatmap(lambda a: st.tuples(st.just(a), st.integers(0, min(limit - a, 9))))
    edge = st.integers(0, min(limit, 9)).flatmap(
        lambda n: st.sampled_from([(limit - n, n), (limit - n, n + 1)]))
    return st.one_of(*[inside] * 12, edge,
                     st.tuples(st.integers(0, limit + 4), st.just(0)),
                     st.tuples(st.sampled_from([0, 1, limit, 0xFFFFFFFF, 0x80000000]),
                               st.sampled_from([1, 0xFFFFFFFF, 0x80000000, limit + 1])))


def _rect(w: int, h: int) -> st.SearchStrategy[tuple[int, int, int, int]]:
    return st.tuples(_span(w), _span(h)).map(lambda a: (a[0][0], a[1][0], a[0][1], a[1][1]))


def _source(size: int, limit: int) -> st.SearchStrategy[int]:
    """A copy's source start for ``size`` pixels: mostly where the source fits."""
    fits = st.integers(0, max(limit - size, 0))
    return st.one_of(*[fits] * 12, st.integers(0, limit + 2), st.just(0xFFFFFFFF))


def _copy(w: int, h: int) -> st.SearchStrategy[list[int]]:
    return _rect(w, h).flatmap(lambda r: st.tuples(_source(r[2], w), _source(r[3], h)).map(
        lambda src: _words(3, src[0], src[1], *r)))


def _words(*values: int) -> list[int]:
    return [v & 0xFFFFFFFF for v in values]


def _commands(w: int, h: int) -> st.SearchStrategy[list[int]]:
    colour = st.integers(0, 0xFFFFFFFF)
    update = _rect(w, h).map(lambda r: _words(1, *r))
    fill = st.tuples(colour, _rect(w, h)).map(lambda a: _words(2, a[0], *a[1]))
    copy = _copy(w, h)
    other = st.one_of(
        st.integers(0, 0xFFFFFFFF).map(lambda v: _words(30, v)),                        # FENCE
        _rect(w, h).map(lambda r: _words(25, *r, 7)),                                    # UPDATE_VERBOSE
        st.tuples(colour, _rect(w, h)).map(lambda a: _words(13, a[0], *a[1], 3)),        # RECT_ROP_FILL
        st.just(_words(19, 0, 0, 0, 2, 2, 1, 1, 0xC0000000, 0x40000000, 0x80000000, 0)),  # DEFINE_CURSOR 2x2
        st.just(_words(33, 0x10000, 4, 0x12345678)),                                     # ESCAPE, 4 bytes
        st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(1, w), st.integers(1, h),
                  st.integers(-4, w), st.integers(-4, h))
        .map(lambda a: _words(34, 28, a[0], a[1], a[2], a[3], a[4], a[5])),              # DEFINE_SCREEN v1
        st.integers(0, 2).map(lambda i: _words(35, i)),                                  # DESTROY_SCREEN
    )
    # An unknown id or a zero word drops the rest of the run: rare, so the runs go on.
    lost = st.sampled_from([[77], [0]])
    return st.one_of(*[update] * 8, *[fill] * 8, *[copy] * 8, other, other, lost)


def _bulk(seed: int, n: int, w: int, h: int) -> list[list[int]]:
    """``n`` small commands from a seeded generator (hypothesis picks the seed and ``n``): long
    runs that the fast path takes, with a few edge and outside rectangles and zero sizes."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kind = int(rng.integers(0, 3))
        rw, rh = int(rng.integers(0, min(w, 12) + 1)), int(rng.integers(0, min(h, 12) + 1))
        x, y = int(rng.integers(0, w - rw + 1)), int(rng.integers(0, h - rh + 1))
        odd = rng.random()
        if odd < 0.03:
            x = w - rw + 1  # one past the right edge
        elif odd < 0.06:
            y = h - rh + int(rng.integers(1, 3))
        if kind == 0:
            out.append(_words(1, x, y, rw, rh))
        elif kind == 1:
            out.append(_words(2, int(rng.integers(0, 1 << 32)), x, y, rw, rh))
        else:
            sx, sy = int(rng.integers(0, w - rw + 1)), int(rng.integers(0, h - rh + 1))
            if rng.random() < 0.03:
                sy = h - rh + 1
            out.append(_words(3, sx, sy, x, y, rw, rh))
    return out


_ACTIONS = st.sampled_from(["sync", "sync", "sync", "busy", "refresh", "mode", "pitchlock"])


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    profile = draw(st.sampled_from(sorted(PROFILES)))
    w, h = draw(st.sampled_from([(24, 16), (40, 30), (64, 48), (640, 480)]))
    segments = []
    for _ in range(draw(st.integers(1, 4))):
        drawn = draw(st.lists(_commands(w, h), min_size=1, max_size=30))
        bulk = _bulk(draw(st.integers(0, 2 ** 32 - 1)), draw(st.sampled_from([0, 20, 100, 300])), w, h)
        # The drawn commands go in among the bulk ones, at drawn places.
        at = sorted(draw(st.lists(st.integers(0, len(bulk)), min_size=len(drawn), max_size=len(drawn))))
        commands: list[list[int]] = []
        last = 0
        for i, cmd in zip(at, drawn, strict=True):
            commands += bulk[last:i] + [cmd]
            last = i
        commands += bulk[last:]
        segments.append((commands, draw(_ACTIONS), draw(st.sampled_from([(32, 24), (48, 20), (w, h)]))))
    cut = draw(st.integers(0, 6))
    # Screen Objects defined before the stream (vmware): fills, copies and updates then also
    # reach their base layers. (id, width, height, root x, root y); the ids 0..2.
    screens = draw(st.lists(st.tuples(st.integers(0, 2), st.integers(1, w), st.integers(1, h),
                                      st.integers(-8, w), st.integers(-8, h)), max_size=2))
    return {
        "screens": screens,
        "profile": profile, "mode": (w, h), "segments": segments, "cut": cut,
        "small_min": draw(st.booleans()), "refresh_first": draw(st.booleans()),
        "start": draw(st.integers(0, 200)), "seed": draw(st.integers(0, 2 ** 32 - 1)),
    }


# -- the guest, the same for both models ------------------------------------------------------------


NATIVE, PYTHON, STRICT = "native", "python", "strict"
"""The three models: the fast path with its compiled core, the fast path in Python, none."""


def _core() -> Callable[..., None]:
    """The compiled core; a test that needs it fails (skips outside CI) without a C compiler."""
    fn = fastpath.load_core()
    if fn is None:
        pytest.skip(f"no compiled core (SVGA_NATIVE={os.environ.get('SVGA_NATIVE', '')!r}, "
                    f"compiler {native.compiler()})")
    return fn


def _paths() -> list[str]:
    """The models there are here, the strict one last (the compiled one only with a core)."""
    return ([NATIVE] if fastpath.load_core() is not None else []) + [PYTHON, STRICT]


class Guest:
    def __init__(self, profile: str, path: str | Callable[..., None]) -> None:
        """``path``: NATIVE, PYTHON, STRICT, or a core's entry point to use (a planted bug's)."""
        self.t = ModelTransport(PROFILES[profile], vram_size=VRAM, fast=path != STRICT)
        fast = self.t.engine.fast
        if fast is not None:
            fast.core = None if path == PYTHON else _core() if path == NATIVE else path  # type: ignore[assignment]
        self.regs = RegisterFile(self.t)
        self.outcomes: list[object] = []

    def setup(self, width: int, height: int, small_min: bool, start: int, refresh_first: bool,
              seed: int, ring: int = RING) -> None:
        r = self.regs
        r[Reg.ID] = SVGA_ID_2
        r[Reg.WIDTH], r[Reg.HEIGHT], r[Reg.BITS_PER_PIXEL] = width, height, 32
        mem_regs = r[Reg.MEM_REGS]
        self.min = 16 if small_min or not mem_regs else mem_regs * 4
        self.max = self.min + ring
        self.ring = ring
        # Start near the end of the ring so the stream wraps at MAX.
        self.next = self.max - 4 * (start + 1)
        f = self.t.fifo
        for reg, value in ((FifoReg.MIN, self.min), (FifoReg.MAX, self.max),
                           (FifoReg.NEXT_CMD, self.next), (FifoReg.STOP, self.next)):
            f.write32(reg * 4, value)
        r[Reg.ENABLE] = 1
        r[Reg.CONFIG_DONE] = 1
        # Something in VRAM for copies to move (the same in both models).
        pixels = np.random.default_rng(seed).integers(0, 1 << 32, 700 * 500, dtype=np.uint32)
        self.t.vram.write(0, pixels.astype("<u4").tobytes())
        if refresh_first:
            self.act("refresh", (width, height))

    def define_screens(self, screens: list[tuple[int, int, int, int, int]]) -> None:
        # DEFINE_SCREEN with a v1 SVGAScreenObject, flags SVGA_SCREEN_MUST_BE_SET (refused
        # where the profile has no Screen Objects: the same on both models).
        for sid, w, h, x, y in screens:
            self.push(_words(34, 28, sid, 1, w, h, x, y))
        if screens:
            self.act("sync", (0, 0))

    def push(self, words: list[int]) -> None:
        """Write words at NEXT_CMD, wrapping at MAX, and move NEXT_CMD past them."""
        data = struct.pack(f"<{len(words)}I", *words)
        first = min(len(data), self.max - self.next)
        self.t.fifo.write(self.next, data[:first])
        if len(data) > first:
            self.t.fifo.write(self.min, data[first:])
        self.next += len(data)
        if self.next >= self.max:
            self.next -= self.ring
        self.t.fifo.write32(FifoReg.NEXT_CMD * 4, self.next)

    def act(self, action: str, mode: tuple[int, int]) -> None:
        try:
            if action == "sync":
                self.regs[Reg.SYNC] = 1
            elif action == "busy":
                self.regs[Reg.BUSY]
            elif action == "refresh":
                self.t.display_image()
            elif action == "mode":
                self.regs[Reg.WIDTH], self.regs[Reg.HEIGHT] = mode
            elif action == "pitchlock":
                self.regs[Reg.PITCHLOCK] = (mode[0] + 8) * 4
            self.outcomes.append(None)
        except ModelError as e:
            self.outcomes.append((type(e).__name__, str(e),
                                  [(str(x), x.key, x.command, x.offset, x.detail) for x in e.errors]))

    def snapshot(self) -> dict[str, object]:
        t, s = self.t, self.t.state
        regs = {}
        for reg in Reg:
            if reg not in (Reg.BUSY, Reg.SYNC):  # a BUSY read runs the FIFO on vmware
                regs[reg.name] = self.regs[reg]
        screens = {i: (scr.id, scr.flags, scr.width, scr.height, scr.root_x, scr.root_y,
                       None if scr.base is None else scr.base.tobytes())
                   for i, scr in s.screens.items()}
        return {
            "vram": t.vram.read(0, VRAM), "fifo": t.fifo.read(0, t.fifo.size), "registers": regs,
            "damage": list(s.damage), "counts": {k: v for k, v in s.counts.items() if v},
            "redraw": list(s.redraw),
            "placeholder": None if s.placeholder is None else s.placeholder.tobytes(),
            "surface": s.surface, "screens": screens, "legacy": s.legacy_screen, "cursor": s.cursor_pos,
            "fence": s.last_fence, "shown": t.screen(with_cursor=True).tobytes(), "outcomes": self.outcomes,
        }


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


def play(scenario: dict[str, Any], path: str | Callable[..., None]) -> dict[str, object]:
    log = logging.getLogger("svga.model")
    handler, level = Lines(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        g = Guest(scenario["profile"], path)
        g.setup(*scenario["mode"], scenario["small_min"], scenario["start"], scenario["refresh_first"],
                scenario["seed"], scenario.get("ring", RING))
        g.define_screens(scenario.get("screens", []))
        segments = scenario["segments"]
        for i, (commands, action, mode) in enumerate(segments):
            words = [w for c in commands for w in c]
            if i == len(segments) - 1 and commands and scenario["cut"]:
                words = words[: len(words) - min(scenario["cut"], len(commands[-1]) - 1)]
            g.push(words)
            g.act(action, mode)
        g.act("sync", scenario["mode"])
        out = g.snapshot()
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    out["log"] = handler.lines
    return out


def differences(fast: dict[str, object], strict: dict[str, object]) -> list[str]:
    assert fast.keys() == strict.keys()
    return [key for key in strict if fast[key] != strict[key]]


def assert_same(fast: dict[str, object], strict: dict[str, object], what: str = "fast") -> None:
    assert differences(fast, strict) == [], f"the {what} and the strict paths differ"


def _example(profile: str, mode: tuple[int, int], commands: list[list[int]], refresh_first: bool,
             screens: list[tuple[int, int, int, int, int]] | None = None, ring: int = RING,
             cut: int = 0) -> dict[str, Any]:
    return {"profile": profile, "mode": mode, "segments": [(commands, "sync", mode)], "cut": cut,
            "small_min": False, "refresh_first": refresh_first, "start": 3, "seed": 5,
            "screens": screens or [], "ring": ring}


_FEW = [_words(2, 0xABCDEF, 1, 1, 4, 4), _words(3, 0, 0, 10, 2, 5, 3), _words(1, 2, 2, 3, 3),
        _words(3, 1, 1, 2, 2, 4, 4)]
"""A fill, a copy, an update and an overlapping copy, none covering another."""
_OVERLAPS = [_words(3, 20, 20, 22, 23, 8, 8), _words(3, 30, 30, 28, 27, 8, 8), _words(3, 40, 5, 42, 5, 8, 4),
             _words(3, 44, 9, 41, 9, 8, 4), _words(3, 0, 10, 0, 12, 64, 6)]
"""Copies onto themselves over the random starting pixels: down, up, right, left, whole rows."""


@BUDGET
@given(scenarios())
# Cases the random search meets too seldom for every run to see them: fills and copies that
# reach Screen Objects, QEMU's redraw queue while its placeholder is shown, a stale surface.
@example(_example("vmware-rect-fill", (24, 16), _FEW, False, [(1, 24, 16, 0, 0), (2, 8, 8, 10, 4)]))
@example(_example("vmware", (24, 16), _FEW, False, [(0, 20, 10, 2, 2)]))
@example(_example("qemu", (640, 480), _FEW * 150, False, ring=60 * 1024))  # > 512 queued: early copies
@example(_example("qemu", (64, 48), _FEW, False))
@example(_example("qemu", (64, 48), _OVERLAPS, True))
@example(_example("qemu", (64, 48), _FEW[:2], True, cut=1))  # a RECT_COPY one word short
@example(_example("qemu", (64, 48), _FEW[:1], True, cut=1))  # a RECT_FILL one word short
@example(_example("qemu", (64, 48), _FEW[:3], True, cut=1))  # an UPDATE one word short
@example(_example("vmware", (64, 48), _FEW[2:] * 2600, True, ring=200 * 1024))  # > DAMAGE_KEPT in one call
def test_fast_and_strict_paths_agree(scenario: dict[str, Any]) -> None:
    # Without a compiled core (SVGA_NATIVE=0, no compiler) the Python fast path is still held
    # to the strict path here; test_the_compiled_core_is_there then says the core went untested.
    strict = play(scenario, STRICT)
    assert_same(play(scenario, PYTHON), strict, "Python fast")
    if fastpath.load_core() is not None:
        assert_same(play(scenario, NATIVE), strict, "compiled")


def test_the_compiled_core_is_there() -> None:
    assert callable(_core())


def _spy(real: Callable[..., Any], calls: list[tuple[object, ...]]) -> Callable[..., Any]:
    """``real``, noting the arguments of each call in ``calls``."""
    def spy(*a: object) -> Any:
        calls.append(a)
        return real(*a)
    return spy


def test_the_fast_path_runs_and_the_switch_turns_it_off() -> None:
    # Not a tautology of the property above: with fast=False no command may reach the fast path;
    # with it a plain stream must reach the compiled core in one call for the run (and the Python
    # loop not at all), and with the core taken away the Python loop (else the property test
    # would compare the strict path with itself).
    for path in _paths():
        calls: dict[str, list[tuple[object, ...]]] = {"core": [], "run": []}
        g = Guest("qemu", path)
        g.setup(64, 48, False, 0, True, 1)
        fast = g.t.engine.fast
        assert (fast is None) == (path == STRICT)
        if fast is not None:
            fast.run = _spy(fast.run, calls["run"])  # type: ignore[method-assign]
            if fast.core is not None:
                fast.core = _spy(fast.core, calls["core"])
        g.push(_words(2, 0xABCDEF, 1, 2, 3, 4) + _words(1, 0, 0, 64, 48) + _words(3, 1, 2, 10, 10, 3, 4))
        g.act("sync", (64, 48))
        fb = np.frombuffer(g.t.vram.read(0, 64 * 48 * 4), "<u4").reshape(48, 64)
        assert (fb[2:6, 1:4] == 0xABCDEF).all() and (fb[10:14, 10:13] == 0xABCDEF).all()
        assert list(g.t.state.damage) == [(1, 2, 3, 4), (0, 0, 64, 48), (10, 10, 3, 4)]
        assert g.outcomes == [None, None]  # the set-up refresh, the SYNC
        if path == NATIVE:
            assert calls["run"] == [] and len(calls["core"]) == 1
            assert calls["core"][0][1:4] == (18, 0, 1023)  # all 18 words, from 0, QEMU's 1023-command cap
        elif path == PYTHON:
            assert len(calls["run"]) == 1 and calls["run"][0][1:] == (0, 1023)


def test_svga_native_0_leaves_the_python_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVGA_NATIVE", "0")
    fast = ModelTransport(PROFILES["qemu"], vram_size=VRAM).engine.fast
    assert fast is not None and fast.core is None


def test_the_core_is_not_used_beside_screen_objects_or_the_redraw_queue() -> None:
    # Screen Objects (vmware) and QEMU's placeholder redraw queue are the Python loop's: the
    # core is never called while they are there, and the two still agree with the strict path
    # (the @example cases above).
    for profile, refresh, screens in (("vmware", False, [(0, 20, 10, 2, 2)]), ("qemu", False, [])):
        calls: list[tuple[object, ...]] = []
        g = Guest(profile, NATIVE)
        g.setup(24, 16, False, 0, refresh, 1)
        g.define_screens(screens)
        fast = g.t.engine.fast
        assert fast is not None and fast.core is not None
        fast.core = _spy(fast.core, calls)
        g.push(_FEW[2] * 3)
        g.act("sync", (24, 16))
        assert calls == [] and g.t.state.counts["UPDATE"] == 3


def _cap_scenario() -> dict[str, Any]:
    """1400 small commands in one ring: QEMU's 1023-command cap splits them over several SYNCs."""
    rng = np.random.default_rng(7)
    commands = []
    for i in range(1400):
        x, y = int(rng.integers(0, 56)), int(rng.integers(0, 40))
        commands.append([_words(1, x, y, 1, 1), _words(2, i, x, y, 8, 8),
                         _words(3, x, y, 50 - x // 2, 3, 6, 5)][i % 3])
    return {"profile": "qemu", "mode": (64, 48), "segments": [(commands, "sync", (64, 48))], "cut": 0,
            "small_min": False, "refresh_first": True, "start": 0, "seed": 3, "ring": 60 * 1024}


def test_runs_across_the_qemu_cap_agree() -> None:
    scenario = _cap_scenario()
    strict = play(scenario, STRICT)
    for path in _paths()[:-1]:
        assert_same(play(scenario, path), strict, path)
    assert any("already run 1023 commands" in line for line in strict["log"])  # type: ignore[union-attr]


# -- bugs planted in a copy of the C source: the comparison must see each -----------------------

FIXED = {
    "overlap": _example("qemu", (64, 48), _FEW + _OVERLAPS, True),
    "edges": _example("qemu", (400, 300), _bulk(11, 300, 400, 300), True, ring=20 * 1024),
    "cap": _cap_scenario(),
    "kept": _example("vmware", (64, 48), _FEW[2:] * 2600, True, ring=200 * 1024),
}
"""Scenarios where the compiled core runs (no placeholder, no Screen Objects), one per bug kind."""

PLANTED = {
    "none": None,  # the unchanged copy: the control
    "overlapping copy in the wrong row order": ("if (meet && y > sy)", "if (meet && y < sy)"),
    "a rectangle one past the right edge taken": ("return (int64_t)(x + w) > width ||",
                                                  "return (int64_t)(x + w) > width + 1 ||"),
    "width and height swapped in the damage": ("d[2] = w, d[3] = h", "d[2] = h, d[3] = w"),
    "a copy counted as a fill": ("n_copy++;", "n_fill++;"),
    "one command past the run cap": ("while (done < room)", "while (done <= room)"),
    "the fill colour from the wrong word": ("fill(fb, stride, x, y, w, h, a[0])",
                                            "fill(fb, stride, x, y, w, h, a[1])"),
    "a whole-row copy one row short": ("memmove(dst, src, bytes * h);",
                                       "memmove(dst, src, bytes * (h - 1));"),
    "the damage ring restarting at 1": ("k = 0;\n        p = q;", "k = 1;\n        p = q;"),
}

_strict_cache: dict[str, dict[str, object]] = {}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_comparison_catches_planted_bugs(bug: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _core()  # the real core must be there (else this says nothing about it)
    change = PLANTED[bug]
    planted = fastpath.bind(ctypes.CDLL(str(build_with_bug(fastpath.SOURCE, change, tmp_path, monkeypatch))))
    seen = {}
    for name, scenario in FIXED.items():
        if name not in _strict_cache:
            _strict_cache[name] = play(scenario, STRICT)
        seen[name] = differences(play(scenario, planted), _strict_cache[name])
    if change is None:
        assert all(d == [] for d in seen.values()), seen
    else:
        assert any(seen.values()), f"no scenario shows the planted bug ({bug})"
