"""Which source the bridge reads now, and what it reads after one went away (hot-plug).

Between ``vmmouse.sources`` (how one source is opened) and ``vmmouse.daemon`` (the loop). The
daemon asks ``SourceSet`` for a source at start (``first``), after a source was lost
(``reopen``, tried about once a second until something answers) and, while it reads a
fallback, whether the preferred one is back (``better``). The rules (docs/vmmouse.md 'Taken
away and given back'):

- ``auto`` prefers the vmmouse, then the USB tablet; ``backdoor`` and ``usb`` wait for their
  own source only;
- the backdoor source is opened once and kept, also while someone else has the vmmouse
  disabled: its I/O privilege belongs to this thread and could not be taken again after the
  privilege drop. It is taken back only once someone else has re-enabled the vmmouse
  (``VMMouse.enabled_elsewhere``: a STATUS call, which changes nothing); the bridge never
  re-enables a vmmouse that someone disabled, so it does not fight its owner;
- the USB tablet is closed when it goes away and looked for again (udev gives a new device
  node to the ``vmmouse`` group, docs xorg-bridge/README.md), and given back to usbhid when
  the vmmouse takes over;
- a backdoor that was not usable at start (no backdoor, no I/O privilege) is not tried again:
  neither comes back while the machine runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from vmmouse.errors import NoDevice, VMMouseError

log = logging.getLogger(__name__)

#: Seconds between two looks for a source after a loss, and for a preferred one while on a fallback.
RETRY_S = 1.0


class SourceSet:
    """The sources of one run and their wake-ups.

    ``openers`` map "backdoor" and "usb" to functions returning a source; ``wakeup_for(name,
    source)`` gives a source its wake-up. The backdoor's source must have ``mouse`` (a
    ``vmmouse.absolute.VMMouse``) for the look at its status.
    """

    def __init__(self, kind: str, openers: dict[str, Callable[[], Any]],
                 wakeup_for: Callable[[str, Any], Any]) -> None:
        if kind not in ("auto", "backdoor", "usb"):
            raise ValueError(f"unknown source {kind!r}")
        self.kind = kind
        self.order = ["backdoor", "usb"] if kind == "auto" else [kind]
        self.openers = openers
        self.wakeup_for = wakeup_for
        self.backdoor: Any = None            # kept once opened, whether reading or not
        self.backdoor_wakeup: Any = None
        self.unusable: set[str] = set()      # sources refused at start for good
        self.notes: dict[str, str] = {}      # the last reason each source was not taken

    # --- opening ----------------------------------------------------------------------------

    def _open(self, name: str, *, at_start: bool) -> tuple[Any, Any] | None:
        if name in self.unusable:
            return None
        if name == "backdoor" and self.backdoor is not None:
            mouse = self.backdoor.mouse
            if mouse.enabled:
                return self.backdoor, self.backdoor_wakeup
            try:
                if not mouse.enabled_elsewhere():
                    self.notes[name] = "the vmmouse is disabled (waiting for someone to enable it)"
                    return None
                log.info("source backdoor: the vmmouse was enabled again; taking it back")
                self.backdoor.reset()
            except VMMouseError as e:
                self.notes[name] = str(e)
                return None
            return self.backdoor, self.backdoor_wakeup
        try:
            source = self.openers[name]()
        except VMMouseError as e:
            self.notes[name] = str(e)
            if at_start:
                log.info("source %s: %s", name, e)
                if name == "backdoor":
                    self.unusable.add(name)      # no backdoor or no privilege: neither comes back
            return None
        try:
            wakeup = self.wakeup_for(name, source)
        except BaseException:
            source.close()
            raise
        if name == "backdoor":
            self.backdoor, self.backdoor_wakeup = source, wakeup
        return source, wakeup

    def first(self) -> tuple[str, Any, Any]:
        """The first source, in order; NoDevice naming each one's reason if there is none (or
        the source's own error when one was asked for by name)."""
        for name in self.order:
            if self.kind != "auto":
                source = self.openers[name]()           # its own error, as it is
                wakeup = self.wakeup_for(name, source)
                if name == "backdoor":
                    self.backdoor, self.backdoor_wakeup = source, wakeup
                return name, source, wakeup
            got = self._open(name, at_start=True)
            if got is not None:
                return name, *got
        raise NoDevice("no pointer source: " + "; ".join(f"{n}: {self.notes[n]}" for n in self.order
                                                         if n in self.notes))

    def reopen(self) -> tuple[str, Any, Any] | None:
        """After a loss: the first source that answers now, or None (try again later)."""
        for name in self.order:
            got = self._open(name, at_start=False)
            if got is not None:
                return name, *got
        return None

    def better(self, current: str) -> tuple[str, Any, Any] | None:
        """A source before ``current`` in the order that is available again, or None."""
        for name in self.order[: self.order.index(current)]:
            got = self._open(name, at_start=False)
            if got is not None:
                return name, *got
        return None

    # --- closing ----------------------------------------------------------------------------

    def release(self, name: str, source: Any, wakeup: Any) -> None:
        """Stop reading ``source`` (lost, or left for a better one): the USB tablet is closed
        (given back to usbhid if it is still there); the backdoor is kept."""
        if name == "backdoor":
            return
        for what, thing in (("wake-up", wakeup), ("source", source)):
            try:
                thing.close()
            except Exception as e:  # noqa: BLE001 - a device that is gone may fail to close
                log.debug("closing the lost %s %s: %s", name, what, e)

    def close(self) -> None:
        """At exit: the kept backdoor (DISABLE if the bridge has it enabled) and its wake-up."""
        for what, thing in (("wake-up", self.backdoor_wakeup), ("source", self.backdoor)):
            if thing is not None:
                try:
                    thing.close()
                except Exception as e:  # noqa: BLE001 - shutdown goes on
                    log.warning("closing the backdoor %s: %s", what, e)
        self.backdoor = self.backdoor_wakeup = None
