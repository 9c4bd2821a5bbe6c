"""Test helper (not a test): the Linux kernel's own copies of the device headers, as an oracle.

python-evdev does not hand-write the kernel's input codes, it reads them from the kernel's
header; the protocol tests do the same for the SVGA II and vmmouse numbers. The files come
from the Debian package ``linux-source-6.1`` (``/usr/src/linux-source-6.1.tar.xz``): the few
members in :data:`MEMBERS` are extracted once, in a single ``tar`` run (10-15 s: xz has to
unpack the whole archive), into ``~/.cache/vmware-svga-suite/`` under a name keyed by the
tarball's size and mtime, and are read from there afterwards. Without the tarball every
caller fails (never skips) with the ``apt-get install linux-source-6.1`` that fixes it.

The C reader is deliberately small and only as general as these files need:

- ``#define NAME VALUE`` and ``#define NAME(args) VALUE``, evaluated on demand: integer
  literals with U/L suffixes, ``+ - * / % << >> & | ^ ~``, parentheses, ``(uint32)``-style
  casts (which mask), and references to other macros and enum constants. A name defined
  twice with different bodies (the ``#if``/``#else`` branches it does not follow) cannot
  be read.
- ``enum { ... }``, typedef'd or not, with explicit values and implicit increments.
- ``typedef struct { ... } Name;`` member lists (nested structs and unions, bit-fields,
  arrays), and their layout as 32-bit words (:meth:`CHeader.words`).

Anything it cannot read raises :class:`HeaderError` naming the file and line.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import operator
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "linux-source-6.1"
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
TOP = "linux-source-6.1"

SVGA_REG_H = "drivers/gpu/drm/vmwgfx/device_include/svga_reg.h"
VMWGFX_DRV_H = "drivers/gpu/drm/vmwgfx/vmwgfx_drv.h"
PCI_IDS_H = "include/linux/pci_ids.h"
VMMOUSE_C = "drivers/input/mouse/vmmouse.c"
ASM_VMWARE_H = "arch/x86/include/asm/vmware.h"
CAPABILITY_H = "include/uapi/linux/capability.h"
SYSCALL_64_TBL = "arch/x86/entry/syscalls/syscall_64.tbl"
MEMBERS = (SVGA_REG_H, VMWGFX_DRV_H, PCI_IDS_H, VMMOUSE_C, ASM_VMWARE_H, CAPABILITY_H, SYSCALL_64_TBL)


class HeaderError(Exception):
    """A header could not be found or read as this module expects."""


# --- finding and extracting the files --------------------------------------------------------

def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vmware-svga-suite"


def _missing_message() -> str:
    where = "CI counts this as a failure" if os.environ.get("CI") else "the project does not skip it"
    return (f"{TARBALL} is missing: the protocol tests read the kernel's copy of the device headers "
            f"from it ({where}); install it with `apt-get install {PACKAGE}`")


@functools.cache
def source_dir() -> Path:
    """The directory holding the extracted :data:`MEMBERS` (extracting them on first use)."""
    try:
        st = TARBALL.stat()
    except FileNotFoundError:
        pytest.fail(_missing_message(), pytrace=False)
    key = hashlib.sha256("\n".join(MEMBERS).encode()).hexdigest()[:8]
    final = _cache_root() / f"{PACKAGE}-{st.st_size}-{st.st_mtime_ns}-{key}"
    if all((final / m).is_file() for m in MEMBERS):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=final.parent))
    try:
        cmd = ["tar", "-xJf", str(TARBALL), "-C", str(work), "--strip-components=1"]
        run = subprocess.run(cmd + [f"{TOP}/{m}" for m in MEMBERS], capture_output=True, text=True)
        missing = [m for m in MEMBERS if not (work / m).is_file()]
        if run.returncode != 0 or missing:
            err = run.stderr.strip().splitlines()[-1:] or [f"{missing[0]} not in the archive"]
            pytest.fail(f"extracting the kernel headers from {TARBALL} failed: {err[0]}", pytrace=False)
        try:
            work.rename(final)         # atomic: a parallel session either wins or finds it done
        except OSError:
            if not all((final / m).is_file() for m in MEMBERS):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def kernel_file(member: str) -> Path:
    return source_dir() / member


@functools.cache
def header(member: str) -> CHeader:
    """The parsed file (cached for the session)."""
    path = kernel_file(member)
    return CHeader(path.read_text(errors="replace"), f"{TOP}/{member}")


# --- the C reader -----------------------------------------------------------------------------

_LEXEMES = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_DEFINE = re.compile(r"#\s*define\s+(\w+)(\([^)]*\))?(.*)")
_TOKEN = re.compile(r"0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|\w+|##|<<|>>|\S")
_CASTS = {"uint8": 0xFF, "uint16": 0xFFFF, "uint32": 0xFFFFFFFF, "uint64": (1 << 64) - 1,
          "u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "u64": (1 << 64) - 1}
SCALARS = {"uint8": (1, False), "int8": (1, True), "uint16": (2, False), "int16": (2, True),
           "uint32": (4, False), "int32": (4, True), "uint64": (8, False), "int64": (8, True)}
"""The fixed-size types of vm_basic_types.h: (bytes, signed)."""
_QUALIFIERS = {"volatile", "const"}


def _blank_comments(text: str) -> str:
    """Comments become spaces (newlines kept, so offsets keep their line numbers)."""
    return _LEXEMES.sub(lambda m: re.sub(r"[^\n]", " ", m[0]) if m[0][0] == "/" else m[0], text)


@dataclass(frozen=True)
class Define:
    name: str
    params: tuple[str, ...] | None
    body: str
    line: int


@dataclass(frozen=True)
class EnumConst:
    name: str
    value: int | None
    line: int
    error: str = ""


@dataclass(frozen=True)
class CEnum:
    tag: str | None
    typedef: str | None
    consts: tuple[EnumConst, ...]
    line: int

    def names(self) -> list[str]:
        return [c.name for c in self.consts]


@dataclass(frozen=True)
class Member:
    """One struct or union member: a scalar or named type, or an inline struct/union (``members``)."""

    name: str | None
    ctype: str
    line: int
    members: tuple[Member, ...] | None = None
    array: int | None = None
    bits: int | None = None


@dataclass(frozen=True)
class CStruct:
    name: str
    kind: str
    members: tuple[Member, ...]
    line: int


@dataclass(frozen=True)
class Word:
    """One 32-bit word of a struct's layout: its member path (``srcOrigin.x``), type, signedness."""

    path: str
    ctype: str
    signed: bool


class CHeader:
    """The #defines, enums and typedef'd structs of one C file."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.text = text
        self._code = _blank_comments(text)
        self._defines: dict[str, list[Define]] = {}
        self._aliases: dict[str, str] = {}
        self._enum_list: list[CEnum] | None = None
        self._current: list[EnumConst] = []
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self._code)]
        for line, logical in self._logical_lines():
            m = _DEFINE.match(logical.strip())
            if m:
                params = tuple(p.strip() for p in m[2][1:-1].split(",")) if m[2] else None
                self._defines.setdefault(m[1], []).append(Define(m[1], params, m[3].strip(), line))
        for m in re.finditer(r"\btypedef\s+(\w+)\s+(\w+)\s*;", self._code):
            self._aliases[m[2]] = m[1]

    # ... lines and errors
    def _logical_lines(self) -> list[tuple[int, str]]:
        out, pending, start = [], "", 0
        for number, raw in enumerate(self._code.split("\n"), 1):
            if not pending:
                start = number
            if raw.endswith("\\"):
                pending += raw[:-1] + " "
                continue
            out.append((start, pending + raw))
            pending = ""
        return out

    def _line_at(self, offset: int) -> int:
        return bisect.bisect_right(self._line_starts, offset)

    def error(self, line: int, what: str) -> HeaderError:
        return HeaderError(f"{self.name}:{line}: {what}")

    # ... macros and constants
    def defines(self, prefix: str = "") -> list[str]:
        """Names of the object-like macros starting with ``prefix``, in file order."""
        found = [(d[0].line, n) for n, d in self._defines.items()
                 if n.startswith(prefix) and d[0].params is None]
        return [n for _, n in sorted(found)]

    def define(self, name: str) -> Define:
        found = self._defines.get(name)
        if not found:
            raise HeaderError(f"{self.name}: no #define {name}")
        if len({(d.params, d.body) for d in found}) > 1:
            lines = ", ".join(str(d.line) for d in found)
            raise HeaderError(f"{self.name}: {name} is defined differently at lines {lines} (#if branches)")
        return found[0]

    def line(self, name: str) -> int:
        """The line that defines a macro or an enum constant."""
        if name in self._defines:
            return self._defines[name][0].line
        return self._enum_const(name).line

    def value(self, name: str) -> int:
        """The integer value of a macro or an enum constant."""
        return self._resolve(name, None, frozenset())

    def _enum_const(self, name: str) -> EnumConst:
        for const in [c for e in self.enums() for c in e.consts] + self._current:
            if const.name == name:
                return const
        raise HeaderError(f"{self.name}: {name} is neither a #define nor an enum constant")

    def _resolve(self, name: str, args: list[list[str]] | None, seen: frozenset[str]) -> int:
        if name in seen:
            raise HeaderError(f"{self.name}: {name} refers to itself")
        if name not in self._defines:
            const = self._enum_const(name)
            if const.value is None:
                raise self.error(const.line, f"{name}: {const.error}")
            return const.value
        d = self.define(name)
        tokens = _TOKEN.findall(d.body)
        if d.params is not None:
            if args is None or len(args) != len(d.params):
                raise self.error(d.line, f"{name} needs {len(d.params)} argument(s)")
            bound = dict(zip(d.params, args, strict=True))
            tokens = [t for tok in tokens for t in bound.get(tok, [tok])]
        elif args is not None:
            raise self.error(d.line, f"{name} takes no arguments")
        try:
            return _Expr(tokens, self, seen | {name}).parse()
        except HeaderError as e:
            raise self.error(d.line, f"{name} = {d.body!r}: {e}") from None

    # ... enums
    def enums(self) -> tuple[CEnum, ...]:
        if self._enum_list is None:
            self._enum_list = []        # visible while it grows: entries may use earlier ones
            self._parse_enums()
        return tuple(self._enum_list)

    def _parse_enums(self) -> None:
        assert self._enum_list is not None
        pattern = r"(\btypedef\s+)?\benum\s*(\w+)?\s*\{([^{}]*)\}\s*(\w+)?\s*;"
        for m in re.finditer(pattern, self._code):
            nxt: int | None = 0
            err = ""
            offset = m.start(3)
            self._current = []
            for entry in m[3].split(","):
                line = self._line_at(offset + len(entry) - len(entry.lstrip()))
                offset += len(entry) + 1
                if not entry.strip():
                    continue
                name, _, expr = (p.strip() for p in entry.partition("="))
                if not re.fullmatch(r"\w+", name):
                    raise self.error(line, f"cannot read enum entry {entry.strip()!r}")
                if expr:
                    try:
                        nxt, err = _Expr(_TOKEN.findall(expr), self, frozenset()).parse(), ""
                    except HeaderError as e:
                        nxt, err = None, str(e)
                elif nxt is None:
                    err = "follows an entry that could not be evaluated"
                self._current.append(EnumConst(name, nxt, line, err))
                if nxt is not None:
                    nxt += 1
            self._enum_list.append(CEnum(m[2], m[4] if m[1] else None, tuple(self._current),
                                         self._line_at(m.start())))
            self._current = []

    def enum_of(self, const: str) -> CEnum:
        """The enum that declares ``const``."""
        for enum in self.enums():
            if const in enum.names():
                return enum
        raise HeaderError(f"{self.name}: no enum declares {const}")

    def _enum_typedefs(self) -> set[str]:
        return {e.typedef for e in self.enums() if e.typedef}

    # ... structs
    @functools.cached_property
    def _structs(self) -> dict[str, CStruct]:
        out = {}
        for m in re.finditer(r"\btypedef\s+(struct|union)\s*(\w+)?\s*\{", self._code):
            end = self._matching_brace(m.end() - 1)
            tail = re.match(r"\s*(\w+)\s*;", self._code[end + 1:])
            if not tail:
                raise self.error(self._line_at(end), "typedef struct without a name")
            tokens = [(t[0], self._line_at(m.end() + t.start())) for t in
                      _TOKEN.finditer(self._code[m.end():end])]
            members, _ = self._members(tokens, 0)
            out[tail[1]] = CStruct(tail[1], m[1], members, self._line_at(m.start()))
        return out

    def structs(self, prefix: str = "") -> list[str]:
        return [n for n in self._structs if n.startswith(prefix)]

    def struct(self, name: str) -> CStruct:
        if name not in self._structs:
            raise HeaderError(f"{self.name}: no typedef struct {name}")
        return self._structs[name]

    def _matching_brace(self, start: int) -> int:
        depth = 0
        for i in range(start, len(self._code)):
            depth += {"{": 1, "}": -1}.get(self._code[i], 0)
            if depth == 0:
                return i
        raise self.error(self._line_at(start), "unbalanced braces")

    def _members(self, tokens: list[tuple[str, int]], i: int) -> tuple[tuple[Member, ...], int]:
        """Members from ``tokens[i]`` up to the closing brace (or the end)."""
        out: list[Member] = []
        while i < len(tokens) and tokens[i][0] != "}":
            tok, line = tokens[i]
            if tok in ("struct", "union") and i + 1 < len(tokens) and tokens[i + 1][0] == "{":
                inner, i = self._members(tokens, i + 2)
                decl = []
                i += 1                                  # the closing brace
                while tokens[i][0] != ";":
                    decl.append(tokens[i][0])
                    i += 1
                out.append(Member(decl[0] if decl else None, tok, line, inner))
                i += 1
                continue
            decl = []
            while i < len(tokens) and tokens[i][0] != ";":
                decl.append(tokens[i][0])
                i += 1
            i += 1
            decl = [t for t in decl if t not in _QUALIFIERS]
            bits = array = None
            if ":" in decl:
                bits = int(decl[decl.index(":") + 1], 0)
                decl = decl[:decl.index(":")]
            if "[" in decl:
                array = _Expr(decl[decl.index("[") + 1:decl.index("]")], self, frozenset()).parse()
                decl = decl[:decl.index("[")]
            if len(decl) < 2 or not all(re.fullmatch(r"\w+", t) for t in decl):
                raise self.error(line, f"cannot read struct member {' '.join(decl)!r}")
            out.append(Member(decl[-1], " ".join(decl[:-1]), line, None, array, bits))
        return tuple(out), i

    # ... layout in 32-bit words
    def size(self, member: Member) -> int:
        """Bytes a member takes (packed structs, as every struct of svga_reg.h is)."""
        if member.members is not None:
            sizes = self._sizes(member.members)
            whole = max(sizes) if member.ctype == "union" else sum(sizes)
        else:
            whole = self._type_size(member.ctype, member.line)
        return whole * (member.array or 1)

    def _sizes(self, members: tuple[Member, ...]) -> list[int]:
        sizes, bits, unit = [], 0, 0
        for m in members:
            if m.bits is None:
                sizes.append(self.size(m))
                bits = unit = 0
                continue
            width = self._type_size(m.ctype, m.line)
            if bits + m.bits > width * 8 or width != unit:   # a bit-field that starts a new unit
                sizes.append(width)
                bits, unit = 0, width
            bits += m.bits
        return sizes

    def _type_size(self, ctype: str, line: int) -> int:
        return self._scalar(ctype, line)[0] if self._is_scalar(ctype) else self.size(
            Member(ctype, self.struct(ctype).kind, line, self.struct(ctype).members))

    def _is_scalar(self, ctype: str) -> bool:
        ctype = self._aliases.get(ctype, ctype)
        return ctype in SCALARS or ctype in self._enum_typedefs()

    def _scalar(self, ctype: str, line: int) -> tuple[int, bool]:
        base = self._aliases.get(ctype, ctype)
        if base in SCALARS:
            return SCALARS[base]
        if base in self._enum_typedefs():
            return 4, False                            # a C enum with no negative values: unsigned int
        raise self.error(line, f"unknown type {ctype}")

    def words(self, struct: str) -> list[Word]:
        """The struct's layout as 32-bit words, nested structs expanded (``srcOrigin.x``,
        ``destRect.left``). A union is as many words as its largest member, named after the
        union, unsigned. Members that are not whole 32-bit words raise."""
        s = self.struct(struct)
        return self._words(s.members, "")

    def _words(self, members: tuple[Member, ...], prefix: str) -> list[Word]:
        out: list[Word] = []
        for m in members:
            if m.bits is not None:
                raise self.error(m.line, f"bit-field {m.name} outside a union is not a whole word")
            path = ".".join(p for p in (prefix, m.name) if p)
            for k in range(m.array or 1):
                here = f"{path}[{k}]" if m.array else path
                if m.members is not None and m.ctype == "struct":
                    out += self._words(m.members, here)
                elif m.members is not None or (not self._is_scalar(m.ctype) and
                                               self.struct(m.ctype).kind == "union"):
                    n = self.size(Member(m.name, m.ctype, m.line, m.members))
                    if n % 4:
                        raise self.error(m.line, f"union {here} is {n} bytes, not whole words")
                    out += [Word(here, m.ctype if m.members is None else "union", False)] * (n // 4)
                elif self._is_scalar(m.ctype):
                    size, signed = self._scalar(m.ctype, m.line)
                    if size != 4:
                        raise self.error(m.line, f"{here} is {size} bytes, not a 32-bit word")
                    out.append(Word(here, m.ctype, signed))
                else:
                    out += self._words(self.struct(m.ctype).members, here)
        return out


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)                               # C truncates toward zero
    return q if (a < 0) == (b < 0) else -q


_OPS = {"|": operator.or_, "^": operator.xor, "&": operator.and_, "<<": operator.lshift,
        ">>": operator.rshift, "+": operator.add, "-": operator.sub, "*": operator.mul,
        "/": _c_div, "%": lambda a, b: a - _c_div(a, b) * b}


class _Expr:
    """A C integer constant expression over tokens, by precedence climbing."""

    _LEVELS = (("|",), ("^",), ("&",), ("<<", ">>"), ("+", "-"), ("*", "/", "%"))

    def __init__(self, tokens: list[str], header: CHeader, seen: frozenset[str]) -> None:
        self.t, self.i, self.h, self.seen = tokens, 0, header, seen

    def parse(self) -> int:
        if not self.t:
            raise HeaderError("empty expression")
        value = self._binary(0)
        if self.i != len(self.t):
            raise HeaderError(f"unexpected {self.t[self.i]!r}")
        return value

    def _peek(self, k: int = 0) -> str | None:
        return self.t[self.i + k] if self.i + k < len(self.t) else None

    def _take(self, want: str | None = None) -> str:
        tok = self._peek()
        if tok is None or (want is not None and tok != want):
            raise HeaderError(f"expected {want or 'more'}, got {tok!r}")
        self.i += 1
        return tok

    def _binary(self, level: int) -> int:
        if level == len(self._LEVELS):
            return self._unary()
        value = self._binary(level + 1)
        while self._peek() in self._LEVELS[level]:
            op = self._take()
            value = _OPS[op](value, self._binary(level + 1))
        return value

    def _unary(self) -> int:
        tok = self._peek()
        if tok in ("-", "+", "~"):
            self._take()
            v = self._unary()
            return {"-": -v, "+": v, "~": ~v}[tok]
        if tok == "(" and self._peek(1) in _CASTS and self._peek(2) == ")":
            mask = _CASTS[self.t[self.i + 1]]
            self.i += 3
            return self._unary() & mask
        return self._primary()

    def _primary(self) -> int:
        tok = self._take()
        if tok == "(":
            value = self._binary(0)
            self._take(")")
            return value
        if re.fullmatch(r"0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*", tok):
            digits = tok.rstrip("uUlL")
            if digits[:2].lower() == "0x":
                return int(digits, 16)
            return int(digits, 8 if digits.startswith("0") else 10)
        if re.fullmatch(r"[A-Za-z_]\w*", tok):
            args = None
            if self._peek() == "(":
                args = self._args()
            return self.h._resolve(tok, args, self.seen)
        raise HeaderError(f"unexpected {tok!r}")

    def _args(self) -> list[list[str]]:
        self._take("(")
        args, current, depth = [], [], 0
        while True:
            tok = self._take()
            if tok == ")" and depth == 0:
                break
            if tok == "," and depth == 0:
                args.append(current)
                current = []
                continue
            depth += {"(": 1, ")": -1}.get(tok, 0)
            current.append(tok)
        args.append(current)
        return [] if args == [[]] else args
