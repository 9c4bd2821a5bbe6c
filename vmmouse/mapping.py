"""Where on the desktop the host's absolute range lands: ``vmmouse run --map-to X,Y,W,H --desktop W,H``.

Part of the sink side (used by ``vmmouse.uinput_sink``; parsed by ``vmmouse.cli``). A
compositor maps an absolute pointer's axis range over its whole desktop (the bounding box of
its outputs): libinput hands out positions scaled by the axis range ``max - min + 1``
(docs/vmmouse.md 'libinput'), and every compositor then multiplies by the desktop size. So a
bridge that wants the host's range to cover only one output, or any region, need not ask the
compositor: it writes the value that the compositor's own scaling turns into a point of that
region (docs/vmmouse.md 'Multi-monitor mapping'). That works under every compositor, Xorg
included, with no compositor setting.

With a source range ``lo..hi`` (``n = hi - lo + 1`` values) and the same range on the uinput
axis, a source value ``v`` is the fraction ``(v - lo) / n`` of the host window; the point
wanted is ``X + W * (v - lo) / n`` desktop pixels, which the compositor reaches from the axis
value ``u`` with ``u / n * D`` (``D`` the desktop width). Hence

    u = lo + ceil((X * n + W * (v - lo)) / D)

rounded up, so that the compositor's own rounding down lands on the pixel wanted (not the one
before it), and kept between the first and the last value whose pixel is in the region; the
same with Y, H and the desktop height. With no mapping (the default) ``u = v``: the
host's range spans the whole desktop.
"""

from __future__ import annotations

from dataclasses import dataclass


class MappingError(ValueError):
    """A --map-to or --desktop value that cannot describe a region of the desktop (one line)."""


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle of the desktop in pixels, from its top-left corner (0, 0)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Mapping:
    """The host's whole absolute range onto ``region`` of a ``desktop`` (width, height) pixels."""

    region: Region
    desktop: tuple[int, int]

    def __post_init__(self) -> None:
        dw, dh = self.desktop
        r = self.region
        if dw < 1 or dh < 1:
            raise MappingError(f"the desktop {dw}x{dh} must be at least 1x1 pixels")
        if r.width < 1 or r.height < 1:
            raise MappingError(f"the region's size {r.width}x{r.height} must be at least 1x1 pixels")
        if r.x < 0 or r.y < 0:
            raise MappingError(f"the region's corner {r.x},{r.y} must not be negative "
                               "(desktop coordinates start at the top-left corner, 0,0)")
        if r.x + r.width > dw or r.y + r.height > dh:
            raise MappingError(f"the region {r.x},{r.y},{r.width},{r.height} reaches past the "
                               f"{dw}x{dh} desktop (x + w <= {dw} and y + h <= {dh} are needed)")

    @staticmethod
    def _axis(value: int, lo: int, hi: int, start: int, size: int, total: int) -> int:
        n = hi - lo + 1
        v = min(max(value, lo), hi)
        u = -(-(start * n + size * (v - lo)) // total)            # rounded up
        first = -(-start * n // total)                            # the first value on the region
        last = -(-(start + size) * n // total) - 1                # the last value on the region
        return lo + min(max(u, first), max(first, last), n - 1)

    def apply(self, x: int, y: int, x_range: tuple[int, int], y_range: tuple[int, int]) -> tuple[int, int]:
        """The uinput axis values for a source position (the axes keep the source's ranges)."""
        r = self.region
        return (self._axis(x, *x_range, r.x, r.width, self.desktop[0]),
                self._axis(y, *y_range, r.y, r.height, self.desktop[1]))


def _ints(text: str, count: int, what: str, shape: str) -> list[int]:
    parts = text.split(",")
    if len(parts) != count:
        raise MappingError(f"{what} {text!r}: expected {shape} ({count} whole numbers separated by commas)")
    try:
        return [int(p.strip(), 10) for p in parts]
    except ValueError:
        raise MappingError(f"{what} {text!r}: expected {shape} (whole numbers, no units)") from None


def parse_region(text: str) -> Region:
    """``X,Y,W,H`` in desktop pixels."""
    x, y, w, h = _ints(text, 4, "--map-to", "X,Y,W,H")
    return Region(x, y, w, h)


def parse_desktop(text: str) -> tuple[int, int]:
    """``W,H`` in pixels (``WxH`` is accepted too)."""
    w, h = _ints(text.replace("x", ","), 2, "--desktop", "W,H")
    return w, h


def build_mapping(map_to: str | None, desktop: str | None) -> Mapping | None:
    """The mapping of the command-line options, None for the default (the whole desktop)."""
    if map_to is None:
        if desktop is not None:
            parse_desktop(desktop)          # still refuse a malformed value
        return None
    if desktop is None:
        raise MappingError("--map-to needs --desktop W,H: the size of the whole desktop (the bounding "
                           "box of all outputs) that the compositor spreads the pointer over")
    return Mapping(parse_region(map_to), parse_desktop(desktop))
