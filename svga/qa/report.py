"""QA layer: one HTML page with every failed golden check (expected, actual, diff side by
side), for a person to look at after a run.

The images are PNG files in a folder beside the page (``report.html`` ->
``report_files/``), linked by relative paths, so the page and its folder can be moved or
archived together. The page has no script and no external resource.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Failure:
    test: str
    name: str
    message: str
    expected: Path
    actual: Path
    diff: Path


STYLE = """body{font-family:sans-serif;margin:1em;background:#fafafa}
section{border:1px solid #ccc;background:#fff;margin:1em 0;padding:.5em}
.row{display:flex;gap:1em;flex-wrap:wrap}figure{margin:0}
img{max-width:32vw;border:1px solid #888;image-rendering:pixelated}
figcaption{font-size:90%;color:#444}code{background:#eee}"""


def write_report(path: str | Path, failures: list[Failure], title: str = "svga golden images") -> Path:
    """Write the page (and copy the images into its folder). Returns the page's path."""
    page = Path(path)
    files = page.with_name(page.stem + "_files")
    page.parent.mkdir(parents=True, exist_ok=True)
    if files.exists():
        shutil.rmtree(files)
    files.mkdir()
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{len(failures)} failed check{'s' if len(failures) != 1 else ''}.</p>"]
    for i, f in enumerate(failures):
        cells = []
        for label, src in (("expected", f.expected), ("actual", f.actual), ("diff", f.diff)):
            dest = files / f"{i:03d}-{label}.png"
            shutil.copyfile(src, dest)
            rel = f"{files.name}/{dest.name}"
            cells.append(f"<figure><img src='{html.escape(rel)}' alt='{label}'>"
                         f"<figcaption>{label}: <code>{html.escape(str(src))}</code></figcaption></figure>")
        parts.append(f"<section><h2>{html.escape(f.test)}: {html.escape(f.name)}</h2>"
                     f"<p>{html.escape(f.message)}</p><div class='row'>{''.join(cells)}</div></section>")
    if not failures:
        parts.append("<p>Every golden image matched.</p>")
    parts.append("</body></html>\n")
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
