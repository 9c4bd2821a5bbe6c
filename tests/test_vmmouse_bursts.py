"""Bursts on the port model (issue 16 item 3): every wake-up drains the whole queue, motion
between button changes becomes one frame, and no press or release is lost or reordered.

The host side is QEMU's vmmouse as vmmouse.model plays it (QEMU 7.2: positions doubled, a queue
of 256 packets that drops past 1020 words); the oracle is the script of host events itself,
written by this test: the order of the button changes, the position of each, and the last
position.
"""

from __future__ import annotations

import random

from evdev import ecodes as e
from vmmouse_fakes import Frames

from vmmouse.absolute import VMMouse
from vmmouse.daemon import Daemon
from vmmouse.events import Buttons, PointerEvent, PointerInfo
from vmmouse.model import VMPortModel
from vmmouse.protocol import QUEUE_PACKETS
from vmmouse.uinput_sink import PointerBridge

BUTTON_CODES = {Buttons.LEFT: e.BTN_LEFT, Buttons.RIGHT: e.BTN_RIGHT, Buttons.MIDDLE: e.BTN_MIDDLE}


class Source:
    """The backdoor source's shape around a VMMouse on the model."""

    def __init__(self, mouse):
        self.mouse = mouse
        self.info = mouse.info
        self.batch_limit = QUEUE_PACKETS

    def read_events(self):
        return self.mouse.read_events()

    def reset(self):
        self.mouse.reset()

    def close(self):
        self.mouse.close()


class HostBurst:
    """A wake-up that, at each wait, queues the next part of the host's script on the model
    (at most what the queue holds, so the model drops nothing), like QEMU between two drains."""

    def __init__(self, model, script, rng):
        self.model, self.script, self.rng = model, list(script), rng
        self.waits = 0

    def wait(self):
        self.waits += 1
        n = self.rng.randint(1, QUEUE_PACKETS - 1)
        for x, y, dz, buttons in self.script[:n]:
            assert self.model.mouse_event(x, y, dz, buttons)
        del self.script[:n]
        return "device"

    def activity(self, had_events):
        pass

    def reset(self):
        pass

    def close(self):
        pass


def host_script(n: int, seed: int) -> list[tuple[int, int, int, Buttons]]:
    """n host events in QMP units (0..32767): moves, with a click (press, release) or a wheel
    detent now and then, and sometimes two buttons held together."""
    rng = random.Random(seed)
    held = Buttons.NONE
    x = y = 0
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            held ^= rng.choice([Buttons.LEFT, Buttons.RIGHT, Buttons.MIDDLE])
            out.append((x, y, 0, held))
        elif r < 0.1:
            out.append((x, y, rng.choice([-1, 1]), held))
        else:
            x, y = rng.randrange(32768), rng.randrange(32768)
            out.append((x, y, 0, held))
    return out


def expected_changes(script):
    """(button code, 1/0, x, y) for each button change, in order, in the vmmouse's units."""
    held = Buttons.NONE
    changes = []
    for x, y, _dz, buttons in script:
        for button, code in BUTTON_CODES.items():
            if (button in buttons) != (button in held):
                changes.append((code, int(button in buttons), 2 * x, 2 * y))
        held = buttons
    return changes


def play(frames):
    """Replay frames: the button changes with the position current at each, the last position."""
    x = y = None
    changes = []
    for frame in frames:
        for etype, code, value in frame:
            if etype == e.EV_ABS and code == e.ABS_X:
                x = value
            elif etype == e.EV_ABS and code == e.ABS_Y:
                y = value
        for etype, code, value in frame:
            if etype == e.EV_KEY:
                changes.append((code, value, x, y))
    return changes, (x, y)


def run_burst(n, seed):
    model = VMPortModel()
    mouse = VMMouse(model)
    mouse.enable()
    rec = Frames(allow_empty=False)
    bridge = PointerBridge(rec, mouse.info)
    script = host_script(n, seed)
    wake = HostBurst(model, script, random.Random(seed + 1))
    d = Daemon(Source(mouse), wake, bridge)
    queue_after = []
    while wake.script or model.queue:
        d.step()
        queue_after.append(len(model.queue))
    return model, rec, d, script, wake, queue_after


def test_a_burst_of_5000_packets_keeps_every_click_in_order_at_its_place():
    model, rec, d, script, wake, queue_after = run_burst(5000, seed=1)
    assert model.faults == []
    assert d.handled == 5000 and d.stats.events == 5000
    assert set(queue_after) == {0}                   # each wake-up drained the whole queue
    changes, last = play(rec.frames)
    assert changes == expected_changes(script)
    assert last == (2 * script[-1][0], 2 * script[-1][1])
    wheels = [v for f in rec.frames for t, c, v in f if (t, c) == (e.EV_REL, e.REL_WHEEL)]
    assert wheels == [-dz for _x, _y, dz, _b in script if dz]
    print(d.stats_line())


def test_motion_between_button_changes_is_one_frame():
    model, rec, d, script, wake, _ = run_burst(5000, seed=2)
    # A frame either changes a button or turns a wheel (one per such packet), or carries the
    # motion left at the end of a drain: at most one motion-only frame per wake-up.
    changers = sum(1 for i, (_x, _y, dz, b) in enumerate(script) if dz or b != (script[i - 1][3] if i else 0))
    motion_only = [f for f in rec.frames if all(t == e.EV_ABS for t, _c, _v in f)]
    assert len(motion_only) <= wake.waits
    assert len(rec.frames) <= changers + wake.waits
    assert len(rec.frames) < len(script) / 4         # 5000 packets, far fewer frames
    assert bridge_frames(d) == len(rec.frames)


def bridge_frames(d):
    return d.sink.frames


def test_a_drain_that_reaches_the_queue_size_reads_on_without_waiting():
    class Full:
        info = PointerInfo("t", (0, 100), (0, 100))
        batch_limit = QUEUE_PACKETS

        def __init__(self):
            self.batches = [[PointerEvent(Buttons.NONE, i % 100, 1)] * QUEUE_PACKETS for i in range(2)] + \
                           [[PointerEvent(Buttons.LEFT, 5, 5)]]

        def read_events(self):
            return self.batches.pop(0) if self.batches else []

    class Count:
        waits = 0

        def wait(self):
            self.waits += 1
            return "device"

        def activity(self, had):
            pass

    wake = Count()
    rec = Frames(allow_empty=False)
    d = Daemon(Full(), wake, PointerBridge(rec, Full.info))
    d.drain()                                   # the first drain, before any wait (as run() does)
    d.step()
    d.step()
    assert wake.waits == 0 and d.handled == 2 * QUEUE_PACKETS + 1
    d.step()
    assert wake.waits == 1


def test_stats_count_what_was_done():
    _model, rec, d, _script, wake, _ = run_burst(2000, seed=3)
    line = d.stats_line()
    fields = dict(part.split("=") for part in line.removeprefix("stats: ").split())
    assert int(fields["events"]) == 2000 and int(fields["frames"]) == len(rec.frames)
    assert int(fields["wakeups"]) == wake.waits and int(fields["max_drain"]) <= QUEUE_PACKETS
    assert float(fields["cpu_us_per_event"]) > 0 and float(fields["handling_us_per_event"]) > 0
