"""Model layer: how the software model tells what it saw.

Everywhere the model meets something a driver should not do, it makes a report named by
:class:`svga.facts.effects.E`. There are two kinds:

- an *error* (:class:`svga.errors.ModelError`): something the model refuses (a strict check,
  or a QEMU behaviour it does not imitate). The command is skipped and later ones still run;
- a *note*: a QEMU behaviour the model imitates quietly (a mode over the maximum ignored, a
  fill with the stale stride, QEMU's run cap), which a driver should still know about.

By default (a strict model, what the driver's tests use) errors are raised, all errors of a
FIFO run together at its end, and notes are logged. With an *observer* (what ``svga check``
uses: :class:`svga.model.transport.ModelTransport` ``observer=``) nothing is raised: every
error and every note is handed to the observer as an :class:`Observation` as it happens, and
the model goes on exactly as it would after raising.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from svga.errors import ModelError
from svga.facts.effects import E

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    key: E
    detail: str
    """What the model saw, without the command's name and offset."""
    command: str | None = None
    offset: int | None = None
    """FIFO byte offset of the command, when it is about one."""
    error: bool = True
    """An error (the model refuses it) or a note (the model imitates it quietly)."""


Observer = Callable[[Observation], None]


class Reporter:
    """Raises or hands on what the model saw (see the module docstring)."""

    def __init__(self, observer: Observer | None = None) -> None:
        self.observer = observer

    def note(self, key: E, detail: str, command: str | None = None, offset: int | None = None) -> None:
        """A QEMU behaviour the model imitates: logged, or handed to the observer."""
        if self.observer is not None:
            self.observer(Observation(key, detail, command, offset, error=False))
        else:
            where = f"{command} at FIFO offset {offset}: " if command and offset is not None else ""
            log.info("%s%s (%s)", where, detail, key)

    def fail(self, errors: list[ModelError]) -> None:
        """Raise the errors as one (the first one's message; ``errors`` holds them all), or
        hand each to the observer."""
        if not errors:
            return
        if self.observer is not None:
            for e in errors:
                self.observer(Observation(E(e.key), e.detail, e.command, e.offset))
            return
        raise combined(errors)


def combined(errors: list[ModelError]) -> ModelError:
    first = errors[0]
    if len(errors) == 1:
        return first
    more = len(errors) - 1
    out = ModelError(f"{first} (and {more} more error{'s' if more > 1 else ''} in this FIFO run)",
                     first.command, first.offset, first.key, first.detail)
    out.errors = list(errors)
    return out
