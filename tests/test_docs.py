"""The project's docs/ against the code that cites them.

The code, the tests and the benchmarks cite device facts as ``docs/NAME.md 'Heading'`` (also
``docs/NAME.md 'A', 'B' and 'C'``), ``docs/qemu-7.2.md quirk 6`` / ``quirks 6-8`` (items of the
numbered list under 'Quirks seen in a guest') and ``docs/qemu-7.2.md command table, id 22``.
This test reads the cited files as plain markdown (the oracle is the heading text written in
the doc, not anything computed by the project's code) and checks that every citation lands,
and that nothing cites a file outside the repository or a machine path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Where citations live. The brief's four trees, plus the docs themselves (they cross-reference
# each other) and the input bridge's user documentation.
CITING_TREES = ("svga", "vmmouse", "tests", "bench", "docs", "xorg-bridge")
CITING_FILES = ("README.md",)
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}
QUIRKS_HEADING = "Quirks seen in a guest"
COMMAND_TABLE_HEADING = "Command table"

# A citation: docs/NAME.md followed by one quoted heading, or a list of them. Between the parts
# there may be a line break (inside a docstring, or from one "#" comment line to the next).
_DOC = r"docs/(?P<doc>[A-Za-z0-9][\w.-]*?\.md)"
_GAP = r"(?:[ \t]+|[ \t]*\n[ \t]*(?:#[ \t]*)?)"
_NAME = r"[^'\n]+(?:\n[ \t]*(?:#[ \t]*)?[^'\n]+)?"
CITE_HEADING = re.compile(_DOC + _GAP + r"'(?P<first>" + _NAME + r")'(?P<after>\w?)")
CITE_MORE = re.compile(r"(?:,(?:" + _GAP + r")?(?:and" + _GAP + r")?|" + _GAP + r"and" + _GAP + r")'(?P<name>"
                       + _NAME + r")'(?P<after>\w?)")
CITE_QUIRK = re.compile(_DOC + r",?" + _GAP + r"quirks?" + _GAP + r"(?P<lo>\d+)(?:\s*-\s*(?P<hi>\d+))?")
CITE_ROW = re.compile(_DOC + r",?" + _GAP + r"command" + _GAP + r"table,?" + _GAP + r"(?:id|rows?)" + _GAP
                      + r"(?P<id>\d+)")
CITE_FILE = re.compile(_DOC)

# Files outside the repository that must never be cited; spelled in pieces so that this file
# does not cite them itself.
FORBIDDEN = (
    ("svga-on-qemu" + ".md", re.compile(re.escape("svga-on-qemu" + ".md"))),
    ("qemu-lab" + ".md", re.compile(re.escape("qemu-lab" + ".md"))),
    ("shared/" + "reference", re.compile(re.escape("shared/" + "reference"))),
    ("an absolute /" + "work/ path", re.compile(r"(?<![\w./-])/" + "work/")),
)

# Headings docs/qemu-7.2.md promises to keep (the code cites many of them; the rest are the
# sections its readers are sent to).
QEMU_DOC_HEADINGS = (
    "PCI", "Registers", "ID", "CAPABILITIES", "MAX_WIDTH / MAX_HEIGHT", "WIDTH/HEIGHT", "BITS_PER_PIXEL",
    "BYTES_PER_LINE", "Addresses and sizes", "Other registers", "ENABLE", "SYNC / BUSY", "Cursor registers",
    "Reset", "FIFO processing", "What triggers a run", "Per-run cap", "Checks each run",
    "Incomplete commands", "Length-accounting overrun", "Bad commands", "Stale-stride quirk",
    "Command table", "DEFINE_CURSOR rules", "What newer QEMU changed", "FIFO protocol (developer kit)",
    "FIFO registers", "Capability bits", "Reserve and commit", "Fences and waiting",
    "Hostile-input classes", "Do and don't", "Do", "Do not", QUIRKS_HEADING,
)


# --- reading markdown -------------------------------------------------------------------------

def headings(text: str) -> list[str]:
    """The text of every ATX heading (``#`` to ``######``) outside fenced code blocks."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            found.append(m.group(1))
    return found


def section(text: str, title: str) -> str:
    """The lines under heading ``title`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m and m.group(2) == title:
            level = len(m.group(1))
            body = []
            for rest in lines[i + 1:]:
                n = re.match(r"^(#{1,6})\s", rest)
                if n and len(n.group(1)) <= level:
                    break
                body.append(rest)
            return "\n".join(body)
    raise LookupError(title)


def numbered_items(text: str) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(r"^(\d+)\.\s", text, re.M)}


def table_ids(text: str) -> set[int]:
    """Command ids in the first column of a markdown table: "1", "26, 27, 29", "4-12, 15-18"."""
    ids: set[int] = set()
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        first = line.strip("|").split("|")[0]
        for part in first.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if m:
                lo = int(m.group(1))
                ids.update(range(lo, int(m.group(2) or lo) + 1))
    return ids


# --- finding citations ------------------------------------------------------------------------

def heading_citations(text: str) -> list[tuple[str, str, bool]]:
    """(doc, heading, cut) for each quoted heading; ``cut`` when an apostrophe ended the quote
    inside a word (``'Do and don't'`` reads as ``Do and don``), so only a prefix is known."""
    out = []
    for m in CITE_HEADING.finditer(text):
        out.append((m.group("doc"), _unwrap(m.group("first")), bool(m.group("after"))))
        pos = m.end()
        while not m.group("after"):
            m = CITE_MORE.match(text, pos)
            if not m:
                break
            out.append((out[-1][0], _unwrap(m.group("name")), bool(m.group("after"))))
            pos = m.end()
    return out


def _unwrap(name: str) -> str:
    """A quoted name as one line: a line break (and a comment's "#") becomes one space."""
    return re.sub(r"\s*\n[ \t]*(?:#[ \t]*)?", " ", name).strip()


def quirk_citations(text: str) -> list[tuple[str, int]]:
    out = []
    for m in CITE_QUIRK.finditer(text):
        lo = int(m.group("lo"))
        hi = int(m.group("hi") or lo)
        out += [(m.group("doc"), n) for n in range(lo, max(lo, hi) + 1)]
    return out


def citing_files() -> list[Path]:
    """Every file that may cite the docs, except this one (its strings are test data)."""
    files = [ROOT / name for name in CITING_FILES if (ROOT / name).is_file()]
    for tree in CITING_TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
                files.append(path)
    return [f for f in files if f.resolve() != Path(__file__).resolve()]


def read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None            # binary (a PNG fixture, say)
    return data.decode("utf-8", errors="replace")


def _all_texts() -> list[tuple[str, str]]:
    out = []
    for path in citing_files():
        text = read_text(path)
        if text is not None:
            out.append((str(path.relative_to(ROOT)), text))
    return out


TEXTS = _all_texts()


def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _line(text: str, needle_pos: int) -> int:
    return text.count("\n", 0, needle_pos) + 1


# --- the parser itself, on known inputs ---------------------------------------------------------

def test_citation_parser_on_known_forms() -> None:
    sample = ("see docs/qemu-7.2.md 'Per-run cap'; docs/qemu-7.2.md quirks 6-8 and "
              "docs/qemu-7.2.md 'Do and don't' and docs/vmmouse.md 'Status', 'Data' and 'Queue'. "
              "docs/lab.md, docs/qemu-7.2.md quirk 1; docs/qemu-7.2.md command table, id 22\n"
              "    # (docs/qemu-7.2.md 'What triggers\n    # a run') docs/lab.md 'The qtest\n    protocol'"
              " docs/vmmouse.md\n    # 'Queue' and\n    # 'Status'; docs/qemu-7.2.md\n  quirk 2")
    assert heading_citations(sample) == [
        ("qemu-7.2.md", "Per-run cap", False), ("qemu-7.2.md", "Do and don", True),
        ("vmmouse.md", "Status", False), ("vmmouse.md", "Data", False), ("vmmouse.md", "Queue", False),
        ("qemu-7.2.md", "What triggers a run", False), ("lab.md", "The qtest protocol", False),
        ("vmmouse.md", "Queue", False), ("vmmouse.md", "Status", False)]
    assert quirk_citations(sample) == [("qemu-7.2.md", 6), ("qemu-7.2.md", 7), ("qemu-7.2.md", 8),
                                       ("qemu-7.2.md", 1), ("qemu-7.2.md", 2)]
    assert [m.group("id") for m in CITE_ROW.finditer(sample)] == ["22"]
    assert headings("# A\n```\n# not a heading\n```\n### B ###\n") == ["A", "B"]
    assert table_ids("| id | x |\n|---|---|\n| 0 | a |\n| 4-6, 9 | b |\n| other | c |\n") == {0, 4, 5, 6, 9}


# --- the citations in the repository ------------------------------------------------------------

def test_the_scan_sees_the_known_citations() -> None:
    """Guard against a scanner that silently finds nothing: the code is known to cite a lot."""
    pairs = {(d, h) for _, text in TEXTS for d, h, _ in heading_citations(text)}
    assert ("qemu-7.2.md", "Per-run cap") in pairs
    assert ("lab.md", "The devices the guest sees") in pairs
    assert any(d == "vmmouse.md" for d, _ in pairs)
    assert len(pairs) >= 30
    quirks = {n for _, text in TEXTS for _, n in quirk_citations(text)}
    assert {1, 2, 3, 6, 7, 8} <= quirks


def test_cited_files_exist() -> None:
    missing = []
    for where, text in TEXTS:
        for m in CITE_FILE.finditer(text):
            if not (DOCS / m.group("doc")).is_file():
                missing.append(f"{where}:{_line(text, m.start())}: docs/{m.group('doc')}")
    assert not missing, "citations of missing docs:\n" + "\n".join(sorted(set(missing)))


def test_cited_headings_exist() -> None:
    bad = []
    for where, text in TEXTS:
        for doc, name, cut in heading_citations(text):
            path = DOCS / doc
            if not path.is_file():
                continue          # reported by test_cited_files_exist
            titles = headings(_doc(doc))
            ok = any(t.startswith(name) for t in titles) if cut else name in titles
            if not ok:
                bad.append(f"{where}: docs/{doc} '{name}'{' (cut by an apostrophe)' if cut else ''}")
    assert not bad, "cited sections that the docs do not have:\n" + "\n".join(sorted(set(bad)))


def test_cited_quirks_exist() -> None:
    bad = []
    for where, text in TEXTS:
        for doc, n in quirk_citations(text):
            path = DOCS / doc
            if not path.is_file():
                continue
            try:
                items = numbered_items(section(_doc(doc), QUIRKS_HEADING))
            except LookupError:
                bad.append(f"{where}: docs/{doc} has no '{QUIRKS_HEADING}' section")
                continue
            if n not in items:
                bad.append(f"{where}: docs/{doc} quirk {n}")
    assert not bad, "cited quirks that the docs do not have:\n" + "\n".join(sorted(set(bad)))


def test_cited_command_table_rows_exist() -> None:
    bad = []
    for where, text in TEXTS:
        for m in CITE_ROW.finditer(text):
            ids = table_ids(section(_doc(m.group("doc")), COMMAND_TABLE_HEADING))
            if int(m.group("id")) not in ids:
                bad.append(f"{where}:{_line(text, m.start())}: command table id {m.group('id')}")
    assert not bad, "\n".join(bad)


def test_nothing_cites_outside_the_repository() -> None:
    bad = []
    for where, text in TEXTS:
        for what, pattern in FORBIDDEN:
            for m in pattern.finditer(text):
                bad.append(f"{where}:{_line(text, m.start())}: cites {what}")
    assert not bad, "citations of files outside the repository:\n" + "\n".join(bad)


# --- the docs' own shape ------------------------------------------------------------------------

@pytest.mark.parametrize("title", QEMU_DOC_HEADINGS)
def test_qemu_doc_keeps_its_sections(title: str) -> None:
    assert title in headings(_doc("qemu-7.2.md"))


def test_qemu_quirks_are_numbered_one_to_eight() -> None:
    assert numbered_items(section(_doc("qemu-7.2.md"), QUIRKS_HEADING)) == set(range(1, 9))


def test_index_names_every_doc() -> None:
    index = _doc("README.md")
    for path in sorted(DOCS.glob("*.md")):
        if path.name != "README.md":
            assert path.name in index, f"docs/README.md does not mention {path.name}"


def _slug(title: str) -> str:
    """The anchor a markdown renderer (GitHub's rule) gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


@pytest.mark.parametrize("name", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_inside_each_doc_resolve(name: str) -> None:
    text = _doc(name)
    anchors = {_slug(t) for t in headings(text)}
    bad = [m.group(1) for m in re.finditer(r"\]\(#([^)]+)\)", text) if m.group(1) not in anchors]
    assert not bad, f"docs/{name}: links to missing sections: {bad}"
