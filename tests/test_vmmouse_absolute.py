"""vmmouse.absolute: the enable handshake, whole-packet reads and recovery, on the QEMU model
(vmmouse.model) wrapped in a recorder that checks QEMU's DATA rule on every call."""

import pytest

from vmmouse.absolute import (
    DEVICE_NAME,
    VMMouse,
    kernel_driver_devices,
    open_vmmouse,
    z_is_horizontal,
)
from vmmouse.errors import NoDevice, ProtocolFault, SourceBusy, SourceLost
from vmmouse.events import Buttons, PointerEvent
from vmmouse.model import VMPortModel

STATUS, DATA, COMMAND, GETVERSION = 40, 39, 41, 10
READ_ID, DISABLE, ABSOLUTE = 0x45414552, 0xF5, 0x53424152


class Recorder:
    """Passes calls to the model; fails the test on any DATA(n) QEMU would punish."""

    def __init__(self, model):
        self.model = model
        self.queued = 0
        self.calls = []

    def call(self, command, argument=0):
        if command == DATA:
            assert 1 <= argument <= 6, f"DATA({argument})"
            assert argument <= self.queued, f"DATA({argument}) with {self.queued} queued"
        regs = self.model.call(command, argument)
        if command == STATUS:
            self.queued = regs.eax & 0xFFFF
        elif command == DATA:
            self.queued -= argument
        self.calls.append((command, argument))
        return regs


def make(**kw):
    model = VMPortModel(**kw)
    rec = Recorder(model)
    return model, rec, VMMouse(rec, z_horizontal=True)


def test_enable_handshake_order():
    model, rec, mouse = make()
    mouse.enable()
    assert rec.calls == [(COMMAND, DISABLE), (STATUS, 0), (COMMAND, READ_ID), (STATUS, 0), (DATA, 1),
                         (COMMAND, ABSOLUTE)]
    assert model.hooked and model.absolute and mouse.enabled
    assert 86 not in [c for c, _ in rec.calls]           # no RESTRICT


def test_events_decode_and_drain_everything():
    model, rec, mouse = make()
    mouse.enable()
    model.mouse_event(16384, 8192, 0, Buttons.LEFT)
    model.mouse_event(16384, 8192, 0, Buttons.NONE)
    model.mouse_event(16384, 8192, -1, Buttons.NONE)       # QEMU WHEEL_UP
    model.mouse_event(0, 0, -2, Buttons.NONE)              # QEMU WHEEL_RIGHT
    events = mouse.read_events()
    assert events == [
        PointerEvent(Buttons.LEFT, 0x8000, 0x4000),
        PointerEvent(Buttons.NONE, 0x8000, 0x4000),
        PointerEvent(Buttons.NONE, 0x8000, 0x4000, wheel=1),
        PointerEvent(Buttons.NONE, 0, 0, hwheel=1),
    ]
    assert model.queue == [] and model.faults == []
    assert mouse.read_events() == []


def test_stale_words_are_drained_in_chunks_of_at_most_six_before_read_id():
    model, rec, mouse = make()
    mouse.enable()
    for i in range(3):
        model.mouse_event(i, i)                            # 12 stale words
    mouse.enable()
    datas = [n for c, n in rec.calls[7:] if c == DATA]
    assert datas == [6, 6, 1]                              # 12 stale words, then the version id
    assert model.faults == [] and mouse.enabled


def test_disabled_by_someone_else_is_a_lost_source_not_a_fight():
    # docs/vmmouse.md 'Taken away and given back': the bridge does not re-enable it at once.
    model, rec, mouse = make()
    mouse.enable()
    model.call(COMMAND, DISABLE)                           # someone else disabled it: 0xffff0000
    assert model.call(STATUS).eax == 0xFFFF0000
    with pytest.raises(SourceLost, match="disabled under the bridge"):
        mouse.read_events()
    assert not model.hooked and not mouse.enabled
    assert not mouse.enabled_elsewhere()                   # still disabled: a STATUS call only
    assert rec.calls[-1] == (STATUS, 0)
    model.call(COMMAND, READ_ID)                           # someone enables it again
    assert mouse.enabled_elsewhere()
    mouse.reset()                                          # the bridge takes it back
    model.mouse_event(10, 20)
    assert mouse.read_events() == [PointerEvent(Buttons.NONE, 20, 40)]


def test_error_status_of_a_device_the_bridge_has_not_enabled_is_recovered():
    model, rec, mouse = make()                             # never enabled: status 0xffff
    assert mouse.read_events() == [] and mouse.resyncs == 1 and mouse.enabled and model.hooked


def test_partial_queue_length_resyncs_instead_of_reading_half_a_packet():
    model, rec, mouse = make()
    mouse.enable()
    model.mouse_event(1, 1)
    model.call(COMMAND, READ_ID)                           # another reader: a stray VERSION_ID
    assert model.call(STATUS).eax & 0xFFFF == 5
    events = mouse.read_events()
    assert events == [] and mouse.resyncs == 1 and model.faults == []
    model.mouse_event(2, 3)
    assert mouse.read_events() == [PointerEvent(Buttons.NONE, 4, 6)]


def test_persistent_failure_is_a_protocol_fault():
    class Broken:
        def call(self, command, argument=0):
            from vmmouse.backdoor import Registers
            if command == STATUS:
                return Registers(0x00000003, 0, 0, 0, 0, 0)    # 3 words, forever
            if command == DATA:
                return Registers(0x3442554A, 0, 0, 0, 0, 0)
            return Registers(0, 0, 0, 0, 0, 0)
    mouse = VMMouse(Broken())
    with pytest.raises(ProtocolFault):
        mouse.read_events()


def test_data_guard_refuses_what_qemu_punishes():
    model, rec, mouse = make()
    for n, queued in ((0, 4), (7, 10), (4, 3)):
        with pytest.raises(ValueError):
            mouse.data(n, queued)
    assert rec.calls == []


def test_read_is_capped_at_the_queue_size():
    model, rec, mouse = make()
    mouse.enable()
    for i in range(300):
        model.mouse_event(i, 0)
    assert len(mouse.read_events(limit=256)) == 256
    assert model.faults == []


def test_relative_packets_are_passed_on_and_absolute_is_not_requested_again():
    # docs/vmmouse.md 'Relative flag': the host chose relative; the bridge does not fight it.
    model, rec, mouse = make()
    mouse.enable()
    model.call(COMMAND, 0x4C455252)                        # relative mode (QEMU >= 8.1 marks it)
    since = len(rec.calls)
    model.mouse_event(-2, 3, 0, Buttons.MIDDLE)
    events = mouse.read_events()
    assert events == [PointerEvent(Buttons.MIDDLE, None, None, -2, 3)]
    assert (COMMAND, ABSOLUTE) not in rec.calls[since:] and not model.absolute
    assert rec.calls[-2:] == [(DATA, 4), (STATUS, 0)]


def test_close_disables():
    model, rec, mouse = make()
    mouse.enable()
    mouse.close()
    assert rec.calls[-1] == (COMMAND, DISABLE) and not model.hooked
    assert model.call(STATUS).eax >> 16 == 0xFFFF


def test_absent_backdoor_and_absent_vmmouse():
    with pytest.raises(NoDevice, match="0x5658"):
        open_vmmouse(VMPortModel(present=False), sysfs="/nonexistent")
    with pytest.raises(NoDevice, match="no vmmouse"):
        open_vmmouse(VMPortModel(vmmouse=False), sysfs="/nonexistent")


def _fake_input(tmp_path, names):
    for i, name in enumerate(names):
        d = tmp_path / "class" / "input" / f"input{i}"
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")


def test_kernel_driver_is_detected_and_respected(tmp_path):
    _fake_input(tmp_path, ["AT Translated Set 2 keyboard", "VirtualPS/2 VMware VMMouse",
                           "VirtualPS/2 VMware VMMouse"])
    assert kernel_driver_devices(str(tmp_path)) == ["input1", "input2"]
    model = VMPortModel()
    with pytest.raises(SourceBusy, match="psmouse"):
        open_vmmouse(model, sysfs=str(tmp_path))
    assert model.calls == [(GETVERSION, 0xA9B2A797)]       # only GETVERSION: the queue was not touched


def test_open_enables_and_names_the_device(tmp_path):
    _fake_input(tmp_path, ["ImExPS/2 Generic Explorer Mouse"])
    dmi = tmp_path / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("QEMU\n")
    mouse = open_vmmouse(VMPortModel(), sysfs=str(tmp_path))
    assert mouse.enabled and mouse.z_horizontal
    assert mouse.info.name == DEVICE_NAME == "VMware vmmouse absolute pointer"
    assert (mouse.info.x_range, mouse.info.y_range, mouse.info.vendor) == ((0, 0xFFFF), (0, 0xFFFF), 0x15AD)
    (dmi / "sys_vendor").write_text("VMware, Inc.\n")
    assert not z_is_horizontal(str(tmp_path))
