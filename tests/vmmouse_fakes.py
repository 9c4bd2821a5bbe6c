"""Fakes shared by the input bridge's unit tests (not a test module): a uinput writer that
records frames, the events between two SYN_REPORTs, as the kernel's uinput would pass them on."""

from __future__ import annotations


class Frames:
    """A writer that records frames (the events between two SYN_REPORTs). With
    ``allow_empty=False`` an empty frame fails the test: the bridge must never send one."""

    def __init__(self, allow_empty: bool = True) -> None:
        self.frames: list[list[tuple[int, int, int]]] = []
        self.pending: list[tuple[int, int, int]] = []
        self.allow_empty = allow_empty

    def write(self, etype: int, code: int, value: int) -> None:
        self.pending.append((etype, code, value))

    def syn(self) -> None:
        assert self.allow_empty or self.pending, "an empty frame"
        self.frames.append(self.pending)
        self.pending = []

    def events(self) -> list[tuple[int, int, int]]:
        return [ev for f in self.frames for ev in f]
