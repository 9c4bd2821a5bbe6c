"""One benchmark table: the row every bench module reports (issue "Fast paths", item 5).

Place in the whole: a tool outside the installed package. Each bench module that takes part in
``make bench`` exposes ``rows(quick: bool = False) -> list[Row]``; :mod:`bench.run` collects
them into ``bench/results.json``, ``bench/results.md`` and the plot. A row is one figure beside
its limit (an anchor measured in the same run: numpy, a C program, a lean Python loop, QEMU)
and, where the issue sets one, its target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One figure. ``ratio`` is value / limit (so for a time, above 1 is slower than the limit;
    for a rate, below 1 is slower). ``target`` is the figure the issue asks for, in the same
    unit, with ``higher_is_better`` saying which way it counts; ``met`` is None without one."""

    group: str            # "model", "driver", "screenshot", "start-up", "qtest", "guest", "input", "qa", ...
    figure: str           # what was measured, in words a reader understands
    value: float
    unit: str             # "commands/s", "ms", "MB/s", "%", ...
    limit: float | None = None
    limit_label: str = ""  # what the limit is: "numpy fill of the same array", "C through sysfs", ...
    target: float | None = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if self.limit in (None, 0):
            return None
        return self.value / self.limit

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["met"] = self.met
        return d


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def markdown(rows: list[Row]) -> str:
    """The rows as one Markdown table (figure, value, unit, limit, what it is, ratio, target,
    met): what a bench module's own ``main`` prints."""
    out = ["| figure | value | unit | limit | limit is | ratio | target | met |",
           "|---|---:|---|---:|---|---:|---:|---|"]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        met = "—" if r.met is None else ("yes" if r.met else "no")
        out.append(f"| {r.figure} | {_fmt(r.value)} | {r.unit} | {_fmt(r.limit)} | {r.limit_label} | "
                   f"{ratio} | {_fmt(r.target)} | {met} |")
    return "\n".join(out)
