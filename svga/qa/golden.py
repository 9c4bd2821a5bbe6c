"""QA layer: golden images kept per device kind, the logic behind the ``svga_golden``
pytest fixture (:mod:`svga.qa.pytest_plugin`).

A golden is ``ROOT/KIND/NAME.png``: KIND is the kind of device the screenshot came from
(``model``, ``qemu``, ``pci``: ``Device.transport.kind``), because the model and QEMU draw
some things differently and each keeps its own truth. :meth:`GoldenStore.check` compares a
screenshot with its golden pixel for pixel (:mod:`svga.qa.pixels`); in update mode it
writes the golden instead of failing. On a failure it leaves the actual image and a diff
image (:mod:`svga.qa.diffimage`) in the store's output folder and says where.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svga.qa.diffimage import pixel_diff
from svga.qa.errors import BadInput
from svga.qa.images import as_rgb, read_rgb, write_png
from svga.qa.pixels import compare_pixels

NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


@dataclass(frozen=True)
class GoldenResult:
    name: str
    kind: str
    golden: Path
    status: str
    """"match", "differ", "missing", "size", "written" (created) or "updated"."""
    message: str
    actual: Path | None = None
    diff: Path | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("differ", "missing", "size")


def screenshot_of(image_or_device: object, kind: str | None = None) -> tuple[np.ndarray, str]:
    """(RGB array, device kind) of a Device (its screenshot, cursor composited as the device
    shows it) or of an image (a PIL image, an array or a PNG path; kind defaults to "image")."""
    if hasattr(image_or_device, "screenshot_array") and hasattr(image_or_device, "transport"):
        dev = image_or_device
        return dev.screenshot_array(composite=True), kind or dev.transport.kind  # type: ignore[attr-defined]
    return as_rgb(image_or_device), kind or "image"


class GoldenStore:
    def __init__(self, root: str | Path, out_dir: str | Path, update: bool = False) -> None:
        self.root = Path(root)
        self.out_dir = Path(out_dir)
        self.update = update

    def path(self, kind: str, name: str) -> Path:
        if not NAME.fullmatch(name) or ".." in name.split("/") or not NAME.fullmatch(kind):
            raise BadInput(f"golden name {name!r} (kind {kind!r}): use letters, digits, '_', '-', '.' "
                           "and '/' between parts")
        return self.root / kind / f"{name}.png"

    def check(self, image_or_device: object, name: str, *, kind: str | None = None, tolerance: int = 0,
              max_diff_pixels: int = 0) -> GoldenResult:
        actual, kind = screenshot_of(image_or_device, kind)
        golden = self.path(kind, name)
        if not golden.exists():
            return self._settle(name, kind, golden, actual, "written", f"golden {golden} written", "missing",
                                lambda saved: f"no golden image {golden} for {name!r} on {kind}; the "
                                f"screenshot is at {saved}; run pytest --svga-update-goldens to make it "
                                "the golden")
        expected = read_rgb(golden, "golden image")
        if expected.shape != actual.shape:
            return self._settle(name, kind, golden, actual, "updated", f"golden {golden} replaced (new size)",
                                "size", lambda saved: f"golden {name!r} on {kind} is {expected.shape[1]}x"
                                f"{expected.shape[0]}, the screenshot {actual.shape[1]}x{actual.shape[0]} "
                                f"(golden {golden}, actual {saved})")
        res = compare_pixels(actual, expected, tolerance, max_diff_pixels)
        if res.passed:
            return GoldenResult(name, kind, golden, "match", f"golden {name!r} on {kind} matches")
        result = self._settle(name, kind, golden, actual, "updated",
                              f"golden {golden} updated ({res.count} pixels changed)", "differ",
                              lambda saved: "")
        if result.status == "updated":
            return result
        saved = result.actual
        assert saved is not None
        diff = saved.with_name(saved.name.replace("-actual.png", "-diff.png"))
        pixel_diff(actual, res).save(diff)
        x, y, w, h = res.bbox or (0, 0, 0, 0)
        return GoldenResult(
            name, kind, golden, "differ",
            f"golden {name!r} on {kind}: {res.count} pixels differ (tolerance {tolerance}, "
            f"allowed {max_diff_pixels}) within {w}x{h} at {x},{y}; diff image {diff}, actual "
            f"{saved}, golden {golden}", saved, diff)

    def _settle(self, name: str, kind: str, golden: Path, actual: np.ndarray, new_status: str,
                new_message: str, fail_status: str, fail_message: Callable[[Path], str]) -> GoldenResult:
        """With --svga-update-goldens: write ``actual`` as the golden. Else keep it beside
        the report and fail, the message naming where it was kept."""
        if self.update:
            write_png(golden, actual)
            return GoldenResult(name, kind, golden, new_status, new_message)
        saved = self._save_actual(kind, name, actual)
        return GoldenResult(name, kind, golden, fail_status, fail_message(saved), saved)

    def _save_actual(self, kind: str, name: str, actual: np.ndarray) -> Path:
        path = self.out_dir / kind / f"{name.replace('/', '__')}-actual.png"
        write_png(path, actual)
        return path
