"""Protocol layer: the SVGA II FIFO command table, and encoders/decoders derived from it.

Each command is one row of :data:`COMMANDS`: its id, its name, its fixed 32-bit fields
in order, and its variable-length tails (byte strings whose size follows from the fixed
fields, padded to whole words). Every command's length comes from this one place, so the
driver's encoder, the model's decoder and the ``svga check`` lint can never disagree about
where the next command starts (the bug QEMU's hand-counted parser has).

Layouts are those of ``lib/vmware/svga_reg.h`` in the VMware SVGA Device Developer Kit;
the deprecated commands the header no longer lists (RECT_FILL, RECT_ROP_FILL,
RECT_ROP_COPY) follow the older header QEMU still implements.

Each row also says what the command needs (:class:`Needs`, the header's "Availability"
lines): the driver asks :func:`offered` before it sends a command, the software model before
it runs one, and the lint reports what a device does not offer; nobody gates by hand.

Encoding is precomputed once per row (:class:`Codec`, :func:`codec`): the ``struct.Struct``
of the fixed words at import and, for a command without tails, keyword-only ``pack``/
``pack_into`` functions made from the field names on the codec's first use, so :func:`encode`
builds no format per call (UPDATE and RECT_FILL, whose fields are encode()'s named
parameters, cost one dict lookup and ``struct.pack``). A value ``struct`` refuses sends the
call to the checked encoder, which names the field and the problem; :func:`encode_many`
fills a numpy array with many commands of one kind.
"""

from __future__ import annotations

import keyword
import operator
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from svga.errors import IncompleteCommand, ProtocolError, UnknownCommand
from svga.registers import Cap, FifoCap


class Cmd(IntEnum):
    """FIFO command ids."""

    INVALID_CMD = 0
    UPDATE = 1
    RECT_FILL = 2
    RECT_COPY = 3
    RECT_ROP_FILL = 13
    RECT_ROP_COPY = 14
    DEFINE_CURSOR = 19
    DEFINE_ALPHA_CURSOR = 22
    UPDATE_VERBOSE = 25
    FRONT_ROP_FILL = 29
    FENCE = 30
    ESCAPE = 33
    DEFINE_SCREEN = 34
    DESTROY_SCREEN = 35
    DEFINE_GMRFB = 36
    BLIT_GMRFB_TO_SCREEN = 37
    BLIT_SCREEN_TO_GMRFB = 38
    ANNOTATION_FILL = 39
    ANNOTATION_COPY = 40
    DEFINE_GMR2 = 41
    REMAP_GMR2 = 42


ROP_COPY = 0x03
GMR_NULL = 0xFFFFFFFF
GMR_FRAMEBUFFER = 0xFFFFFFFE
SCREEN_MUST_BE_SET = 1 << 0
SCREEN_IS_PRIMARY = 1 << 1
SCREEN_FULLSCREEN_HINT = 1 << 2
SCREEN_DEACTIVATE = 1 << 3
SCREEN_BLANKING = 1 << 4
SCREEN_OBJECT_V1_SIZE = 28
"""sizeof(SVGAScreenObject) without backingStore and cloneCount."""
SCREEN_OBJECT_V2_SIZE = 44
"""sizeof(SVGAScreenObject) with backingStore (ptr.gmrId, ptr.offset, pitch) and cloneCount."""
REMAP_GMR2_VIA_GMR = 1 << 0
REMAP_GMR2_PPN64 = 1 << 1
REMAP_GMR2_SINGLE_PPN = 1 << 2
MAX_DATASIZE = 256 * 1024


def _words(nbytes: int) -> int:
    return (nbytes + 3) // 4


def mask_row_bytes(width: int, depth: int) -> int:
    """Bytes in one cursor mask scanline: ``width * depth`` bits padded to 32 bits."""
    return (width * depth + 31) // 32 * 4


def _and_mask_bytes(f: Mapping[str, int]) -> int:
    return mask_row_bytes(f["width"], f["and_mask_depth"]) * f["height"]


def _xor_mask_bytes(f: Mapping[str, int]) -> int:
    return mask_row_bytes(f["width"], f["xor_mask_depth"]) * f["height"]


def _remap_bytes(f: Mapping[str, int]) -> int:
    flags = f["flags"]
    if flags & REMAP_GMR2_VIA_GMR:
        return 8
    entries = 1 if flags & REMAP_GMR2_SINGLE_PPN else f["num_pages"]
    return entries * (8 if flags & REMAP_GMR2_PPN64 else 4)


@dataclass(frozen=True)
class Field:
    name: str
    signed: bool = False


@dataclass(frozen=True)
class Tail:
    """A variable-length byte string after the fixed fields; ``size`` gives its length in
    bytes from the fixed fields. It occupies whole words in the FIFO."""

    name: str
    size: Callable[[Mapping[str, int]], int]


@dataclass(frozen=True)
class Needs:
    """What a command needs: every bit of ``caps`` in SVGA_REG_CAPABILITIES, and any bit of
    ``fifo_any`` in the FIFO capabilities (which exist only with the extended FIFO)."""

    caps: Cap = Cap(0)
    fifo_any: FifoCap = FifoCap(0)

    def met(self, caps: int, fifo_caps: int, extended_active: bool) -> bool:
        """Whether a device with these capabilities offers the command; ``extended_active``
        says whether the extended FIFO (and so the FIFO capabilities) is in use."""
        if self.caps & ~caps:
            return False
        if self.fifo_any:
            return extended_active and bool(fifo_caps & self.fifo_any)
        return True

    def text(self) -> str:
        parts = [f"SVGA_CAP_{n}" for n in _flag_names(self.caps, Cap)]
        if self.fifo_any:
            parts.append(" or ".join(f"SVGA_FIFO_CAP_{n}" for n in _flag_names(self.fifo_any, FifoCap))
                         + " (extended FIFO)")
        return " and ".join(parts) or "nothing"


def _flag_names(flags: int, enum: type[Cap] | type[FifoCap]) -> list[str]:
    return [m.name or hex(m.value) for m in enum if m.value and flags & m.value]


@dataclass(frozen=True)
class CommandSpec:
    id: int
    name: str
    fields: tuple[Field, ...]
    tails: tuple[Tail, ...] = ()
    doc: str = ""
    needs: Needs = Needs()
    """svga_reg.h "Availability": what the device must offer for this command."""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def fixed_words(self) -> int:
        """Words including the command id, before any tail."""
        return 1 + len(self.fields)

    def tail_words(self, args: Mapping[str, int]) -> int:
        return sum(_words(t.size(args)) for t in self.tails)


def _f(*names: str) -> tuple[Field, ...]:
    return tuple(Field(n.lstrip("~"), signed=n.startswith("~")) for n in names)


_RECT = ("x", "y", "width", "height")
_SCREEN = Needs(fifo_any=FifoCap.SCREEN_OBJECT | FifoCap.SCREEN_OBJECT_2)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(Cmd.UPDATE, "UPDATE", _f(*_RECT), doc="copy a GFB rectangle to the screen"),
    CommandSpec(Cmd.RECT_FILL, "RECT_FILL", _f("color", *_RECT),
                doc="fill a rectangle with a raw pixel value (deprecated cap bit 0x1)",
                needs=Needs(Cap.RECT_FILL)),
    CommandSpec(Cmd.RECT_COPY, "RECT_COPY",
                _f("src_x", "src_y", "dest_x", "dest_y", "width", "height"),
                doc="copy a rectangle within the framebuffer",
                needs=Needs(Cap.RECT_COPY)),
    CommandSpec(Cmd.RECT_ROP_FILL, "RECT_ROP_FILL", _f("color", *_RECT, "rop"),
                doc="legacy raster-op fill",
                needs=Needs(Cap.RECT_FILL | Cap.RASTER_OP)),
    CommandSpec(Cmd.RECT_ROP_COPY, "RECT_ROP_COPY",
                _f("src_x", "src_y", "dest_x", "dest_y", "width", "height", "rop"),
                doc="legacy raster-op copy",
                needs=Needs(Cap.RECT_COPY | Cap.RASTER_OP)),
    CommandSpec(Cmd.DEFINE_CURSOR, "DEFINE_CURSOR",
                _f("id", "hotspot_x", "hotspot_y", "width", "height", "and_mask_depth",
                   "xor_mask_depth"),
                (Tail("and_mask", _and_mask_bytes), Tail("xor_mask", _xor_mask_bytes)),
                doc="AND/XOR mask cursor; each scanline padded to 32 bits",
                needs=Needs(Cap.CURSOR)),
    CommandSpec(Cmd.DEFINE_ALPHA_CURSOR, "DEFINE_ALPHA_CURSOR",
                _f("id", "hotspot_x", "hotspot_y", "width", "height"),
                (Tail("image", lambda f: f["width"] * f["height"] * 4),),
                doc="32-bit BGRA cursor",
                needs=Needs(Cap.ALPHA_CURSOR)),
    CommandSpec(Cmd.UPDATE_VERBOSE, "UPDATE_VERBOSE", _f(*_RECT, "reason"),
                doc="UPDATE with a reason word",
                needs=Needs(Cap.EXTENDED_FIFO)),
    CommandSpec(Cmd.FRONT_ROP_FILL, "FRONT_ROP_FILL", _f("color", *_RECT, "rop"),
                doc="fill on the front buffer (FIFO_CAP_ACCELFRONT)",
                needs=Needs(fifo_any=FifoCap.ACCELFRONT)),
    CommandSpec(Cmd.FENCE, "FENCE", _f("fence"), doc="write the value to FIFO_FENCE when reached",
                needs=Needs(fifo_any=FifoCap.FENCE)),
    CommandSpec(Cmd.ESCAPE, "ESCAPE", _f("nsid", "size"), (Tail("data", lambda f: f["size"]),),
                doc="vendor escape with a payload of 'size' bytes",
                needs=Needs(fifo_any=FifoCap.ESCAPE)),
    CommandSpec(Cmd.DEFINE_SCREEN, "DEFINE_SCREEN",
                _f("struct_size", "id", "flags", "width", "height", "~root_x", "~root_y"),
                (Tail("extension", lambda f: f["struct_size"] - SCREEN_OBJECT_V1_SIZE),),
                doc="SVGAScreenObject; 'extension' is backingStore + cloneCount when struct_size is 44",
                needs=_SCREEN),
    CommandSpec(Cmd.DESTROY_SCREEN, "DESTROY_SCREEN", _f("screen_id"),
                needs=_SCREEN),
    CommandSpec(Cmd.DEFINE_GMRFB, "DEFINE_GMRFB",
                _f("gmr_id", "offset", "bytes_per_line", "format"),
                doc="format = bitsPerPixel | colorDepth << 8",
                needs=_SCREEN),
    CommandSpec(Cmd.BLIT_GMRFB_TO_SCREEN, "BLIT_GMRFB_TO_SCREEN",
                _f("~src_x", "~src_y", "~left", "~top", "~right", "~bottom", "dest_screen_id"),
                needs=_SCREEN),
    CommandSpec(Cmd.BLIT_SCREEN_TO_GMRFB, "BLIT_SCREEN_TO_GMRFB",
                _f("~dest_x", "~dest_y", "~left", "~top", "~right", "~bottom", "src_screen_id"),
                needs=_SCREEN),
    CommandSpec(Cmd.ANNOTATION_FILL, "ANNOTATION_FILL", _f("color"),
                doc="the next blit to a screen was a fill with this BGRX colour",
                needs=_SCREEN),
    CommandSpec(Cmd.ANNOTATION_COPY, "ANNOTATION_COPY", _f("~src_x", "~src_y", "src_screen_id"),
                doc="the next blit to a screen was a copy from this screen",
                needs=_SCREEN),
    CommandSpec(Cmd.DEFINE_GMR2, "DEFINE_GMR2", _f("gmr_id", "num_pages"),
                needs=Needs(Cap.GMR2)),
    CommandSpec(Cmd.REMAP_GMR2, "REMAP_GMR2", _f("gmr_id", "flags", "offset_pages", "num_pages"),
                (Tail("pages", _remap_bytes),),
                needs=Needs(Cap.GMR2)),
)

BY_ID: dict[int, CommandSpec] = {int(c.id): c for c in COMMANDS}
BY_NAME: dict[str, CommandSpec] = {c.name: c for c in COMMANDS}


def offered(cmd: int | str, caps: int, fifo_caps: int = 0, extended_active: bool = False) -> bool:
    """Whether a device with these capabilities offers a command (an id not in the table:
    never). ``extended_active``: the extended FIFO is in use, so ``fifo_caps`` count."""
    try:
        spec = spec_for(cmd)
    except ProtocolError:
        return False
    return spec.needs.met(caps, fifo_caps, extended_active)


def spec_for(cmd: int | str) -> CommandSpec:
    """The table row for a command id or name (``"RECT_FILL"``, ``2``)."""
    if isinstance(cmd, str):
        try:
            return BY_NAME[cmd.upper()]
        except KeyError:
            raise ProtocolError(f"unknown command name {cmd!r}") from None
    try:
        return BY_ID[int(cmd)]
    except KeyError:
        raise UnknownCommand(int(cmd)) from None


@dataclass
class Command:
    """One decoded or to-be-encoded command."""

    spec: CommandSpec
    args: dict[str, int]
    tails: dict[str, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cmd_id(self) -> int:
        """The command id (``cmd.id`` is the ``id`` field of the commands that have one)."""
        return int(self.spec.id)

    def __getattr__(self, item: str) -> int | bytes:
        # Fields and tails read as attributes: cmd.width, cmd.xor_mask.
        if item in ("spec", "args", "tails"):
            raise AttributeError(item)
        if item in self.args:
            return self.args[item]
        if item in self.tails:
            return self.tails[item]
        raise AttributeError(f"{self.spec.name} has no field {item!r}")

    @property
    def nwords(self) -> int:
        return self.spec.fixed_words + self.spec.tail_words(self.args)

    def encode(self) -> bytes:
        return encode(self.spec.name, **self.args, **self.tails)

    def text(self) -> str:
        """``NAME field=value ...`` with tails shown by size."""
        parts = [self.spec.name]
        parts += [f"{k}={v}" for k, v in self.args.items()]
        parts += [f"{k}=<{len(v)} bytes>" for k, v in self.tails.items()]
        return " ".join(parts)


class Codec:
    """One command's encoder, made once from its table row.

    ``struct`` packs the fixed words (the id, then each field: ``I``, or ``i`` for a signed
    field, so the range check is struct's own). For a command without tails:

    - ``pack(**fields)`` returns the command's bytes, ``pack_into(buf, offset, **fields)``
      writes them into a buffer (keyword-only: exactly the field names);
    - ``pack_values(*values)`` and ``pack_values_into(buf, offset, *values)`` take the field
      values in table order (the fastest calls);
    - ``pack_dict(fields)`` and ``pack_dict_into(buf, offset, fields)`` take a dict of the
      fields (what :func:`encode` and ``Fifo.send`` are given).

    They raise ``TypeError`` or ``KeyError`` (a missing or unknown field, a wrong count) or
    ``struct.error`` (a value that is not an integer or does not fit), which :func:`encode`
    turns into the checked encoder's one-line ProtocolError. Commands with tails have all
    six None.

    The six functions are made on first use, all at once (:func:`_generate`: one
    ``compile`` per command, most of what building every codec at import would cost), so
    an import pays only for the ``struct.Struct`` of each row."""

    __slots__ = ("spec", "id", "name", "field_names", "struct", "nwords", "nbytes", "fixed",
                 "pack", "pack_into", "pack_values", "pack_values_into", "pack_dict", "pack_dict_into",
                 "_known")

    pack: Callable[..., bytes] | None
    pack_into: Callable[..., None] | None
    pack_values: Callable[..., bytes] | None
    pack_values_into: Callable[..., None] | None
    pack_dict: Callable[[Mapping[str, object]], bytes] | None
    pack_dict_into: Callable[..., None] | None

    def __init__(self, spec: CommandSpec) -> None:
        self.spec = spec
        self.id = int(spec.id)
        self.name = spec.name
        self.field_names = spec.field_names
        self.struct = struct.Struct("<I" + "".join("i" if f.signed else "I" for f in spec.fields))
        self.nwords = spec.fixed_words
        self.nbytes = 4 * self.nwords
        self.fixed = not spec.tails
        self._known = frozenset(self.field_names) | {t.name for t in spec.tails}
        if not self.fixed:
            for name in _PACK_FUNCTIONS:
                setattr(self, name, None)
        # A fixed command's six slots stay empty until __getattr__ fills them; its field
        # names are checked now, so that a bad table row fails at import.
        for n in self.field_names if self.fixed else ():
            if not n.isidentifier() or keyword.iskeyword(n) or n.startswith("_"):
                raise ValueError(f"field name {n!r} of {self.name} cannot be a parameter")

    def __getattr__(self, name: str) -> Any:
        # Only called for an empty slot (or a name that is not an attribute at all).
        if name not in _PACK_FUNCTIONS or not self.fixed:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        for fn_name, fn in _generate(self).items():
            setattr(self, fn_name, fn)
        return getattr(self, name)


_PACK_FUNCTIONS = ("pack", "pack_into", "pack_dict", "pack_dict_into", "pack_values", "pack_values_into")


def _generate(c: Codec) -> dict[str, Callable[..., object]]:
    """The pack functions of one fixed-size command, made from its field names (as
    dataclasses make their __init__): a call is one frame and one struct call, with no
    loop over the fields."""
    names = c.field_names
    kwonly = ("*, " + ", ".join(names)) if names else ""
    args = "".join(f", {n}" for n in names)
    from_dict = "".join(f", _f[{n!r}]" for n in names)
    k = len(names)
    src = f"""
def pack({kwonly}):
    return _pack({c.id}{args})
def pack_into(_buf, _offset{', ' + kwonly if kwonly else ''}):
    _pack_into(_buf, _offset, {c.id}{args})
def pack_dict(_f):
    if len(_f) != {k}:
        raise TypeError("wrong fields")
    return _pack({c.id}{from_dict})
def pack_dict_into(_buf, _offset, _f):
    if len(_f) != {k}:
        raise TypeError("wrong fields")
    _pack_into(_buf, _offset, {c.id}{from_dict})
def pack_values(*_v):
    return _pack({c.id}, *_v)
def pack_values_into(_buf, _offset, *_v):
    _pack_into(_buf, _offset, {c.id}, *_v)
"""
    ns: dict[str, object] = {"_pack": c.struct.pack, "_pack_into": c.struct.pack_into}
    exec(compile(src, f"<svga.commands {c.name}>", "exec"), ns)  # noqa: S102 - names from the table
    out: dict[str, Callable[..., object]] = {}
    for name in _PACK_FUNCTIONS:
        fn = ns[name]
        fn.__qualname__ = f"{c.name}.{name}"  # type: ignore[attr-defined]
        out[name] = fn  # type: ignore[assignment]
    return out


CODECS: dict[int | str, Codec] = {}
"""Every command's :class:`Codec`, by id and by (upper-case) name."""
for _spec in COMMANDS:
    CODECS[int(_spec.id)] = CODECS[_spec.name] = Codec(_spec)
del _spec


def codec(cmd: int | str) -> Codec:
    """The :class:`Codec` of a command id or name (errors as :func:`spec_for`)."""
    found = CODECS.get(cmd) if isinstance(cmd, (int, str)) else None
    return found if found is not None else CODECS[int(spec_for(cmd).id)]


ABSENT: object = type("Absent", (), {"__repr__": lambda self: "<absent>"})()
"""Default of encode()'s named fields: the field was not given."""


def encode(cmd: int | str, /, *, x: Any = ABSENT, y: Any = ABSENT, width: Any = ABSENT,
           height: Any = ABSENT, color: Any = ABSENT, **fields: int | bytes) -> bytes:
    """Encode one command: ``encode("RECT_FILL", color=0xff0000, x=0, y=0, width=8, height=8)``.

    Every fixed field is required; tails are byte strings of exactly the size the fixed
    fields call for (zero-padded to a whole word here). ``x``, ``y``, ``width``, ``height``
    and ``color`` are named parameters only for speed (UPDATE's and RECT_FILL's fields then
    need no keyword dict): they are fields like any other."""
    if not fields:
        # UPDATE and RECT_FILL, the commands whose fields are exactly the named ones: one
        # dict lookup (KeyError for any other command) and the row's struct.pack, whose
        # refusal (struct.error: a missing, non-integer or out-of-range field) sends the
        # call to the checked encoder below for its message.
        try:
            if color is ABSENT:
                return _RECT_PACK[cmd](_RECT_ID, x, y, width, height)
            return _COLOR_RECT_PACK[cmd](_COLOR_RECT_ID, color, x, y, width, height)
        except (KeyError, struct.error):
            pass
    return _encode_general(cmd, fields, x, y, width, height, color)


def _by_fields(names: tuple[str, ...]) -> tuple[dict[int | str, Callable[..., bytes]], int]:
    """({id and name: struct.pack}, id) of the one fixed command whose fields are ``names``."""
    (c,) = (c for c in {id(c): c for c in CODECS.values()}.values() if c.fixed and c.field_names == names)
    return {c.id: c.struct.pack, c.name: c.struct.pack}, c.id


_RECT_PACK, _RECT_ID = _by_fields(("x", "y", "width", "height"))
_COLOR_RECT_PACK, _COLOR_RECT_ID = _by_fields(("color", "x", "y", "width", "height"))


def _encode_general(cmd: int | str, fields: dict[str, Any], x: Any, y: Any, width: Any, height: Any,
                    color: Any) -> bytes:
    """encode() of everything but its first two cases: the codec's generated ``pack_dict``
    for a fixed command, else (tails, or anything ``pack_dict`` refuses) the checked
    encoder."""
    _gather(fields, x, y, width, height, color)
    c = CODECS.get(cmd)  # type: ignore[call-overload]
    if c is not None and c.fixed:
        try:
            return c.pack_dict(fields)  # type: ignore[misc]
        except (TypeError, KeyError, struct.error):
            pass
    return _encode_checked(c.spec if c is not None else spec_for(cmd), fields)


def _gather(fields: dict[str, Any], x: Any, y: Any, width: Any, height: Any, color: Any) -> None:
    """Put encode()'s named fields that were given into the keyword dict."""
    for name, value in (("x", x), ("y", y), ("width", width), ("height", height), ("color", color)):
        if value is not ABSENT:
            fields[name] = value


def _encode_checked(spec: CommandSpec, kwargs: Mapping[str, object]) -> bytes:
    """The encoder with every check spelled out: one ProtocolError naming the field."""
    c = CODECS[int(spec.id)]
    unknown = set(kwargs) - c._known
    if unknown:
        raise ProtocolError(f"{spec.name} has no field {sorted(unknown)[0]!r}")
    values: list[int] = [c.id]
    args: dict[str, int] = {}
    for f in spec.fields:
        if f.name not in kwargs:
            raise ProtocolError(f"{spec.name} needs field {f.name!r}")
        args[f.name] = v = _field_value(spec, f, kwargs[f.name])
        values.append(v)
    out = bytearray(c.struct.pack(*values))
    for t in spec.tails:
        want = t.size(args)
        if want < 0 or want > MAX_DATASIZE:
            raise ProtocolError(f"{spec.name}.{t.name} would be {want} bytes")
        tail = kwargs.get(t.name, b"")
        if not isinstance(tail, (bytes, bytearray, memoryview, np.ndarray)):
            raise ProtocolError(f"{spec.name}.{t.name} must be bytes, not {type(tail).__name__}")
        data = bytes(tail)
        if len(data) != want:
            raise ProtocolError(
                f"{spec.name}.{t.name} must be {want} bytes for these fields, got {len(data)}"
            )
        out += data + bytes(-len(data) % 4)
    return bytes(out)


def _field_value(spec: CommandSpec, f: Field, value: object) -> int:
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ProtocolError(f"{spec.name}.{f.name} must be an integer, not "
                            f"{type(value).__name__} {value!r:.40}") from None
    lo, hi = (-(1 << 31), (1 << 31) - 1) if f.signed else (0, 0xFFFFFFFF)
    if not lo <= v <= hi:
        raise ProtocolError(f"{spec.name}.{f.name}={v} does not fit a 32-bit field")
    return v


def encode_many(cmd: int | str, count: int | None = None, **fields: object) -> np.ndarray:
    """Encode many commands of one fixed-size kind at once, as a C-contiguous
    ``(n, words)`` uint32 array: row i is command i, column 0 its id, then the fields in
    table order. Each field is one integer (the same in every row) or a 1-D integer array
    of length n; ``count`` gives n when every field is one integer (default 1).

    ``encode_many("RECT_FILL", color=colors, x=xs, y=ys, width=8, height=8)`` is
    ``b"".join(encode("RECT_FILL", ...) for each row)`` as an array, with the same checks
    (every field given, no unknown one, integers that fit 32 bits; signed fields as two's
    complement), made on whole arrays; hand it to ``Fifo.write_words``.

    Speed: where the compiled core (svga/commands.c, built by :mod:`svga.native`) loads, the
    usual call (Python ints and 1-D numpy integer arrays, at most eight fields) is one pass
    in C, which in a TCG guest costs a small fraction of the numpy calls (issue 19); anything
    else, and any call the core refuses (a value out of range, a wrong length), runs the
    Python code below, which gives the same array or raises the one-line error."""
    core = _MANY_CORE[0] if _MANY_CORE else _many_core()
    if core is not None:
        out = core(cmd, count, fields)
        if out is not None:
            return out  # type: ignore[no-any-return]
        if _many_new_plan(cmd):
            out = core(cmd, count, fields)  # the first call for this command: now with its plan
            if out is not None:
                return out  # type: ignore[no-any-return]
    return _encode_many_py(cmd, count, **fields)


_MANY_CORE: list[Callable[..., Any] | None] = []
"""The compiled core's entry point once looked for (None: the Python code runs alone):
``core(cmd, count, fields)`` gives the array, or None where the Python code is to run."""
_MANY_COPY: list[Callable[..., int] | None] = []
"""The compiled core's word copy, once looked for (None: none):
``copy(dst, dst_offset, src, src_offset, nbytes)`` copies 32 bits at a time and gives 0, or -1
(nothing copied) for buffers or ranges it does not take. For Fifo.write_words: glibc's memcpy of
a batch is slower in a TCG guest than a word loop (docs/lab.md 'The guest benchmark')."""
_MANY_U4 = np.dtype("<u4")
"""The dtype of encode_many's arrays (the one object numpy hands out for it), which
Fifo.write_words's short path tests for by identity."""
_MANY_PLANS: dict[object, tuple[tuple[str, ...], bytes] | None] = {}
"""Per command id or name: its field names and the plan svga/commands.c reads (its plan_t: word
count, id, which fields are signed), or None for a command the core does not take."""


def _many_plan(cmd: object) -> tuple[tuple[str, ...], bytes] | None:
    try:
        c = CODECS.get(cmd)  # type: ignore[call-overload]
    except TypeError:
        return None  # unhashable: the Python code names the problem
    if c is None or not c.fixed or len(c.field_names) > 8:
        return None
    signed = sum(1 << j for j, f in enumerate(c.spec.fields) if f.signed)
    plan = (c.field_names, struct.pack("<iII", c.nwords, c.id, signed))
    _MANY_PLANS[cmd] = plan
    return plan


def _many_new_plan(cmd: object) -> bool:
    """Whether ``cmd`` had no plan yet and now has one (the core takes it from now on)."""
    try:
        if cmd in _MANY_PLANS:
            return False
    except TypeError:
        return False  # unhashable: the Python code names the problem
    return _many_plan(cmd) is not None


def _many_copier() -> Callable[..., int] | None:
    """The word copy of the compiled core (loading it the first time), or None."""
    if not _MANY_COPY:
        _many_core()
    return _MANY_COPY[0] if _MANY_COPY else None


def _many_core() -> Callable[..., Any] | None:
    """Load svga/commands.c (docs/native.md 'Building'), set it up, and check it on a sample
    of several array kinds against the Python code (and its copy on a sample); where any of
    that fails the Python code runs alone."""
    import ctypes
    from pathlib import Path

    from svga import native

    fn: Callable[..., Any] | None = None
    cp: Callable[..., int] | None = None
    py: ctypes.PyDLL | None = None
    lib = native.load(Path(__file__).with_name("commands.c"))
    if lib is not None:
        try:
            py = ctypes.PyDLL(lib._name)  # keeps the GIL: the core calls the Python C API
        except OSError:
            py = None  # a python that does not export its C API to loaded libraries
    if py is not None:
        obj = ctypes.py_object
        setup = py.svga_setup
        setup.argtypes, setup.restype = [obj] * 5, ctypes.c_int64
        setup(int, np.ndarray, None, np.empty, np.dtype("<u4"))
        functions = py.svga_functions
        functions.argtypes, functions.restype = [obj], obj
        try:
            enc, copy = functions(_MANY_PLANS)
        except (ValueError, TypeError):  # NULL: not set up
            enc = copy = None
        i = np.arange(7, dtype=np.int64)
        sample: dict[str, object] = {"color": i * 0x01020304, "x": (i * 3).astype(np.uint16), "y": 5,
                                     "width": i[::-1] + 1, "height": (i + 2).astype(np.uint32)}
        _many_plan("RECT_FILL")
        want = _encode_many_py("RECT_FILL", **sample)
        got = enc("RECT_FILL", None, sample) if enc is not None else None
        if isinstance(got, np.ndarray) and got.shape == want.shape \
                and got.dtype == want.dtype and bool((got == want).all()):
            fn = enc
            dst = bytearray(want.nbytes + 8)
            if copy(dst, 4, want, 4, want.nbytes - 4) == 0 \
                    and bytes(dst) == bytes(4) + want.tobytes()[4:] + bytes(8) \
                    and copy(dst, 8, want, 0, want.nbytes + 4) == -1:
                cp = copy
    _MANY_CORE.append(fn)
    if cp is not None or not _MANY_COPY:  # (a copy once checked stays: it needs no set-up)
        _MANY_COPY[:] = [cp]
    return fn


def _encode_many_py(cmd: int | str, count: int | None = None, **fields: object) -> np.ndarray:
    """encode_many in Python and numpy: every case, every error; the compiled core's oracle."""
    c = codec(cmd)
    spec = c.spec
    if not c.fixed:
        raise ProtocolError(f"{spec.name} has variable-length tails: encode it with encode()")
    unknown = set(fields) - c._known
    if unknown:
        raise ProtocolError(f"{spec.name} has no field {sorted(unknown)[0]!r}")
    columns: list[int | np.ndarray] = []
    n = count
    for f in spec.fields:
        if f.name not in fields:
            raise ProtocolError(f"{spec.name} needs field {f.name!r}")
        value = fields[f.name]
        if isinstance(value, (int, np.integer)) or (isinstance(value, np.ndarray) and value.ndim == 0):
            columns.append(_field_value(spec, f, value))
            continue
        arr = np.asarray(value)
        if arr.ndim != 1:
            raise ProtocolError(f"{spec.name}.{f.name} must be an integer or a 1-D array of them, "
                                f"not an array of shape {arr.shape}")
        if arr.dtype.kind not in "iub":
            if arr.size:
                raise ProtocolError(f"{spec.name}.{f.name} must hold integers, not {arr.dtype}")
            arr = arr.astype(np.int64)
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise ProtocolError(f"{spec.name}.{f.name} has {len(arr)} values where "
                                f"{'count is' if count is not None else 'an earlier field has'} {n}")
        lo, hi = (-(1 << 31), (1 << 31) - 1) if f.signed else (0, 0xFFFFFFFF)
        info = np.iinfo(arr.dtype) if arr.dtype.kind != "b" else None
        if arr.size and info is not None and (info.min < lo or info.max > hi):
            bad = (arr < lo) | (arr > hi)
            if bad.any():
                i = int(np.argmax(bad))
                raise ProtocolError(f"{spec.name}.{f.name}={int(arr[i])} (row {i}) does not fit a "
                                    "32-bit field")
        columns.append(arr)
    if n is None:
        n = 1
    if n < 0:
        raise ProtocolError(f"count must not be negative, not {n}")
    out = np.empty((n, c.nwords), dtype="<u4")
    out[:, 0] = c.id
    for j, col in enumerate(columns, start=1):
        if isinstance(col, int):
            out[:, j] = col & 0xFFFFFFFF
        else:
            out[:, j] = col  # unsafe cast: a negative signed value becomes its two's complement
    return out


def length_at(words: np.ndarray | memoryview, pos: int) -> int:
    """Words of the command starting at word ``pos`` of a uint32 sequence, from the table
    (errors as :func:`decode`). Only the fixed fields a tail's size depends on are read."""
    if pos >= len(words):
        raise IncompleteCommand("command", 1, 0, None)
    c = CODECS.get(int(words[pos]))
    if c is None:
        raise UnknownCommand(int(words[pos]))
    if c.fixed:
        return c.nwords
    arr = words if isinstance(words, np.ndarray) else np.frombuffer(words, dtype="<u4")
    return decode(arr, pos)[1]


def decode(words: np.ndarray | bytes | memoryview, pos: int = 0, base_offset: int | None = None
           ) -> tuple[Command, int]:
    """Decode the command starting at word ``pos`` of ``words`` (uint32, little-endian).

    Returns the command and its length in words. Raises :class:`UnknownCommand` for an id
    not in the table and :class:`IncompleteCommand` when the words run out; ``base_offset``
    (a byte offset) only makes those messages name where the command sits."""
    if not isinstance(words, np.ndarray):
        words = np.frombuffer(bytes(words), dtype="<u4")
    where = None if base_offset is None else base_offset
    avail = len(words) - pos
    if avail <= 0:
        raise IncompleteCommand("command", 1, 0, where)
    cid = int(words[pos])
    spec = BY_ID.get(cid)
    if spec is None:
        raise UnknownCommand(cid, where)
    if avail < spec.fixed_words:
        raise IncompleteCommand(spec.name, spec.fixed_words, avail, where)
    args: dict[str, int] = {}
    for i, f in enumerate(spec.fields):
        v = int(words[pos + 1 + i])
        if f.signed and v & 0x80000000:
            v -= 1 << 32
        args[f.name] = v
    total = spec.fixed_words
    tails: dict[str, bytes] = {}
    for t in spec.tails:
        size = t.size(args)
        if size < 0 or size > MAX_DATASIZE:
            raise ProtocolError(
                f"{spec.name}"
                + (f" at FIFO offset {where}" if where is not None else "")
                + f": {t.name} size {size} is out of range"
            )
        n = _words(size)
        if avail < total + n:
            raise IncompleteCommand(spec.name, total + n, avail, where)
        tails[t.name] = words[pos + total: pos + total + n].astype("<u4").tobytes()[:size]
        total += n
    return Command(spec, args, tails), total


def decode_all(data: bytes | np.ndarray) -> list[Command]:
    """Decode a whole linear command stream (for tools and tests)."""
    words = data if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), dtype="<u4")
    out, pos = [], 0
    while pos < len(words):
        cmd, n = decode(words, pos, base_offset=pos * 4)
        out.append(cmd)
        pos += n
    return out


def command_words(cmd: int | str, **fields: int) -> int:
    """Length in words of a command with these fixed fields (no tail data needed)."""
    spec = spec_for(cmd)
    return spec.fixed_words + spec.tail_words(fields)
