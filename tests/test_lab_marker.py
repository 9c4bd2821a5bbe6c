"""svga/lab/marker.py: the guest side of markers, on a local folder standing in for the
shared job folder."""

import threading
import time

from svga.lab import marker


def test_outside_the_lab_nothing_happens(monkeypatch, tmp_path):
    monkeypatch.delenv("SVGA_LAB_JOB", raising=False)
    assert not marker.in_lab()
    assert marker.signal("drawn") is False
    assert marker.main(["drawn"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_signal_creates_the_marker_and_waits_for_the_release(monkeypatch, tmp_path):
    monkeypatch.setenv("SVGA_LAB_JOB", str(tmp_path))
    seen = []

    def host():
        while not (tmp_path / "marker.drawn").exists():
            time.sleep(0.01)
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        (tmp_path / "release.drawn").write_text("")

    t = threading.Thread(target=host)
    t.start()
    assert marker.signal("drawn", timeout=30) is True
    t.join()
    assert seen == [["marker.drawn"]]     # the job was still waiting when the host looked


def test_no_release_in_time_is_false(monkeypatch, tmp_path):
    monkeypatch.setenv("SVGA_LAB_JOB", str(tmp_path))
    assert marker.signal("x", timeout=0.05) is False
    assert marker.main(["y", "--timeout", "0.05"]) == 1
    assert marker.main(["z", "--no-wait"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"marker.x", "marker.y", "marker.z"}
