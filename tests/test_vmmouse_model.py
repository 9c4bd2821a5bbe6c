"""vmmouse.model: the fake device behaves as QEMU hw/i386/vmmouse.c is written (values and
rules taken from that file and the reference note, not from vmmouse.absolute)."""

from vmmouse.events import Buttons
from vmmouse.model import VMPortModel
from vmmouse.protocol import MAGIC, PORT, VERSION_ID

STATUS, DATA, COMMAND = 40, 39, 41
READ_ID, DISABLE, ABSOLUTE = 0x45414552, 0xF5, 0x53424152


def enabled(**kw):
    m = VMPortModel(**kw)
    m.call(COMMAND, READ_ID)
    assert m.call(DATA, 1).eax == VERSION_ID
    m.call(COMMAND, ABSOLUTE)
    return m


def test_starts_disabled_and_drops_events():
    m = VMPortModel()
    assert m.call(STATUS).eax == 0xFFFF0000
    assert not m.mouse_event(1, 2)


def test_absolute_doubles_like_qemu_7_2():
    m = enabled()
    m.mouse_event(100, 32767, 0, Buttons.LEFT)
    assert m.call(STATUS).eax == 4
    assert tuple(m.call(DATA, 4))[:4] == (0x20, 0xC8, 0xFFFE, 0)   # docs/lab.md: 100 -> 0xc8, 32767 -> 0xfffe


def test_exact_scaling_like_qemu_8_2():
    m = enabled(exact_scaling=True)
    m.mouse_event(32767, 0)
    assert m.call(DATA, 2)[:2] == (0, 0xFFFF)


def test_data_too_much_unhooks_and_returns_registers_unchanged():
    m = enabled()
    m.mouse_event(1, 1)
    regs = m.call(DATA, 7)
    assert regs[:4] == (MAGIC, 7, DATA, PORT)
    assert m.call(STATUS).eax == 0xFFFF0004 and not m.hooked and m.faults
    m2 = enabled()
    m2.call(DATA, 1)                    # nothing queued
    assert m2.faults == ["driver requested too much data 1"]


def test_disable_keeps_the_queue_and_read_id_appends_after_it():
    m = enabled()
    m.mouse_event(1, 1)
    m.call(COMMAND, DISABLE)
    assert m.call(STATUS).eax == 0xFFFF0004
    m.call(COMMAND, READ_ID)
    assert m.call(STATUS).eax == 5
    assert m.call(DATA, 5)[4] == VERSION_ID


def test_request_ignored_while_status_set():
    m = VMPortModel()
    m.call(COMMAND, ABSOLUTE)
    assert not m.hooked


def test_relative_flag_and_unknown_command():
    m = VMPortModel()
    m.call(COMMAND, READ_ID)
    m.call(DATA, 1)
    m.mouse_event(-3, 5, 0, Buttons.RIGHT)
    assert m.call(DATA, 4)[:4] == (0x10010, 0xFFFFFFFD, 5, 0)
    assert m.call(86, 2).eax == 0xFFFFFFFF                 # RESTRICT is not implemented


def test_queue_caps_at_1020_words():
    m = enabled()
    results = [m.mouse_event(i, i) for i in range(300)]
    assert results.count(True) == 256 and m.call(STATUS).eax == 1024
