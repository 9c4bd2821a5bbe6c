"""Stream layer: the base of the stream's small event classes (svga/stream/items.py,
svga/stream/capture.py): immutable values compared, hashed and printed by their fields, as
``@dataclass(frozen=True)`` makes them, without the code generation a dataclass runs at import.

Each class names its fields in ``__slots__`` and sets them in its own ``__init__`` with
:func:`init`; equality is by class and fields, the hash is the fields', ``repr`` is
``Mode(width=800, height=600, bpp=32)`` (fields named in ``_hidden`` are left out, as
``field(repr=False)`` does), assignment raises ``dataclasses.FrozenInstanceError``, and
:meth:`Value.replace` is ``dataclasses.replace``. Why: a frozen dataclass costs about 0.7 ms to
define (it compiles the source of six methods), and the recording path imports sixteen of
them, which made ``svga demo --record`` start about 12 ms later than ``svga demo``
(docs/capture-format.md 'Start-up cost of recording').
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, TypeVar

V = TypeVar("V", bound="Value")
_set = object.__setattr__


def init(obj: Value, *values: Any) -> None:
    """Set ``obj``'s fields, in ``__slots__`` order, to ``values`` (from its ``__init__``)."""
    for name, value in zip(obj.__slots__, values, strict=True):
        _set(obj, name, value)


class Value:
    """An immutable value of named fields (``__slots__``); see the module docstring."""

    __slots__: tuple[str, ...] = ()
    _hidden: frozenset[str] = frozenset()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self._fields()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__
                          if name not in self._hidden)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, self._fields()

    def replace(self: V, **changes: Any) -> V:
        """A copy with ``changes`` to some fields (``dataclasses.replace``)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{self.__class__.__name__} has no field {sorted(unknown)[0]!r}")
        return self.__class__(*(changes.get(name, getattr(self, name)) for name in self.__slots__))
