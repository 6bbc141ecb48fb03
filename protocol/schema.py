"""The message declaration language and the construct built from it.

A message is declared once, the way Kafka's JSON definitions do it::

    PRODUCE_REQUEST = request(
        0, "ProduceRequest", "0-11", "9+",
        field("transactional_id", "string", "3+", nullable="3+", default=None),
        field("acks", "int16", "0+"),
        field("topic_data", "[]TopicProduceData", "0+", fields=(
            field("name", "string", "0+"),
            ...
        )),
    )

Version specs are Kafka's: ``"3+"``, ``"0-4"``, ``"7"``, ``"none"``. Types are Kafka's type
names: ``int8 int16 int32 int64 uint16 uint32 float64 bool uuid string bytes records``,
``[]T`` for arrays of those, and a struct type name (with nested fields) for structs or
``[]Name`` for arrays of structs. ``nullable`` gives the versions where null is allowed,
``tag``/``tagged`` make a field a tagged field in those versions, ``default`` is the value a
missing field encodes as and an absent tagged field decodes as (otherwise 0, "", b"",
False, [], the zero UUID, None for records, a struct of defaults), ``flexible="none"`` keeps
a field non-compact in flexible versions (the request header's client_id).

For each version, :class:`MessageCodec` turns the declaration into a :class:`KafkaStruct`
(fields of that version only, compact types and a tagged-field section in flexible versions)
and compiles it with construct's ``.compile()``; both are cached per version.
"""

from __future__ import annotations

import copy
import keyword
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, NamedTuple, Protocol

from construct import Compiled, Container

from .errors import ProtocolError
from .primitives import (
    BOOLEAN, FLOAT64, INT8, INT16, INT32, INT64, UINT16, UINT32, UUID, ZERO_UUID, ChunkWriter, FixedWidth,
    FrameReader, KafkaArray, KafkaBytes, KafkaString, KafkaType, Records, TaggedFields, ViewReader,
    emit_helpers_import, emit_struct_format, open_frame,
)

UNKNOWN_TAGS = "_unknown_tagged_fields"
"""Key under which decoded structs keep tagged fields this declaration does not know
(``{tag: bytes}``); encoding writes them back. Only present when there were any."""


class Encoded(bytes):
    """A struct's value already encoded, by :meth:`MessageCodec.encode_struct` for the version the
    message is written in: written as it is. For parts of a response that rarely change and are
    costly to encode (a topic of thousands of partitions in Metadata)."""


_OPEN = 0x7FFF  # "N+" reaches Kafka's highest possible version (INT16 max)
_FIXED_WIDTH = {"int8": INT8, "int16": INT16, "int32": INT32, "int64": INT64, "uint16": UINT16,
                "uint32": UINT32, "float64": FLOAT64, "bool": BOOLEAN}
_TYPE_DEFAULTS = {"string": "", "bytes": b"", "records": None, "uuid": ZERO_UUID, "float64": 0.0, "bool": False}


class Versions(NamedTuple):
    """An inclusive version range; ``version in versions`` tests membership."""

    low: int
    high: int

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and self.low <= version <= self.high

    @classmethod
    def parse(cls, spec: str) -> Versions | None:
        """Kafka's spec: "3+", "0-4", "7"; "none" gives None."""
        if spec == "none":
            return None
        if spec.endswith("+"):
            return cls(int(spec[:-1]), _OPEN)
        low, _, high = spec.partition("-")
        return cls(int(low), int(high or low))

    def __str__(self) -> str:
        if self.high == _OPEN:
            return f"{self.low}+"
        return f"{self.low}-{self.high}" if self.high != self.low else str(self.low)


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class Field:
    """One declared field; see the module docstring for the meaning of each attribute."""

    name: str
    type: str
    versions: Versions
    fields: tuple[Field, ...] = ()
    nullable: Versions | None = None
    tag: int | None = None
    tagged: Versions | None = None
    default: Any = NO_DEFAULT
    flexible: str | None = None

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    def default_value(self, version: int) -> Any:
        """The value a missing field encodes as, and an absent tagged field decodes as."""
        if self.default is not NO_DEFAULT:
            return self.default
        if self.is_array:
            return []
        if self.fields:
            return Container({sub.name: sub.default_value(version) for sub in self.fields if version in sub.versions})
        return _TYPE_DEFAULTS.get(self.type, 0)


def field(name: str, type: str, versions: str, *, nullable: str | None = None,  # noqa: A002
          tag: int | None = None, tagged: str | None = None, default: Any = NO_DEFAULT,
          flexible: str | None = None, fields: Sequence[Field] = ()) -> Field:
    """Declares a field; nested ``fields`` make ``type`` a struct (or ``[]Struct``) type."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"field name {name!r} is not usable as a Python identifier")
    element = type[2:] if type.startswith("[]") else type
    if not fields and element not in _FIXED_WIDTH and element not in _TYPE_DEFAULTS:
        raise ValueError(f"{name}: unknown type {type!r} (struct types need fields)")
    if fields and nullable and not type.startswith("[]"):
        raise ValueError(f"{name}: nullable structs are not supported")
    if (tag is None) != (tagged is None):
        raise ValueError(f"{name}: tag and tagged go together")
    return Field(name, type, Versions.parse(versions), tuple(fields),
                 Versions.parse(nullable) if nullable else None, tag,
                 Versions.parse(tagged) if tagged else None, default, flexible)


def collect_tags(obj: Mapping[str, Any], specs: Sequence[tuple[int, str, Any]]) -> dict[int, Any]:
    """Tagged fields to write: known ones that differ from their default, then unknown ones."""
    tags = {}
    for tag, name, default in specs:
        value = obj.get(name, default)
        if value is not default and value != default:
            tags[tag] = value
    unknown = obj.get(UNKNOWN_TAGS)
    if unknown:
        tags.update(unknown)
    return tags


class Constructor(Protocol):
    """A declared struct's constructor: ``PRODUCE_RESPONSE.PartitionProduceResponse(index=0,
    error_code=3)`` gives the dict of those fields; each field left out is encoded as its
    declared default. ``names`` are the fields any version declares, ``path`` where the struct
    sits in its message."""

    __name__: str
    names: frozenset[str]
    path: str

    def __call__(self, **fields: Any) -> dict[str, Any]: ...


def undeclared(value: Mapping[str, Any], names: frozenset[str], path: str) -> ProtocolError:
    """Why a struct holding a name that no version of it declares cannot be encoded: in a plain
    mapping a misspelled field would reach the encoder, which would send the field's default."""
    return ProtocolError(f"{path}: no version declares {', '.join(sorted(value.keys() - names))}")


def _declared_names(fields: Sequence[Field]) -> frozenset[str]:
    """The names a struct's value may hold: its fields in any version, and unknown tagged fields."""
    return frozenset(f.name for f in fields) | {UNKNOWN_TAGS}


def _constructor(name: str, path: str, fields: Sequence[Field]) -> Constructor:
    """The constructor of the struct of ``fields``. It returns its keyword arguments as they are
    (as cheap as a dict literal: the broker builds one per partition of every response); the
    encoder checks their names."""

    def construct(**given: Any) -> dict[str, Any]:
        return given

    construct.__name__ = construct.__qualname__ = name
    construct.names = _declared_names(fields)  # type: ignore[attr-defined]
    construct.path = path  # type: ignore[attr-defined]
    return construct  # type: ignore[return-value]


def _nested_constructors(message: str, path: str, fields: Sequence[Field]) -> dict[str, Constructor]:
    """The constructors of the structs nested in ``fields``, by declared type name
    ("[]TopicProduceData" declares TopicProduceData). A type may sit in several places with the
    same fields (Kafka's commonStructs); its constructor's path is then the first of them."""
    found: dict[str, Constructor] = {}
    declared: dict[str, tuple[Field, ...]] = {}

    def walk(path: str, fields: Sequence[Field]) -> None:
        for f in fields:
            if not f.fields:
                continue
            type_name = f.type.removeprefix("[]")
            nested_path = f"{path}.{f.name}" + ("[]" if f.is_array else "")
            if type_name not in declared:
                declared[type_name] = f.fields
                found[type_name] = _constructor(type_name, nested_path, f.fields)
            elif declared[type_name] != f.fields:
                raise ValueError(f"{message}: struct type {type_name} is declared twice, with different fields")
            walk(nested_path, f.fields)

    walk(path, fields)
    return found


class StructField(NamedTuple):
    name: str
    kind: KafkaType
    default: Any
    tag: int | None


class KafkaStruct(KafkaType):
    """A struct of one version: positional fields in wire order, then (in flexible versions)
    the tagged-field section. Decodes to a construct ``Container`` holding the fields in
    declaration order (tagged fields absent from the wire take their default); encodes any
    mapping, missing keys taking their default.

    Compiled, runs of fixed-width fields are read and written with one precompiled
    ``struct.Struct`` and nothing but the fields is built per value.
    """

    def __init__(self, fields: Sequence[StructField], flexible: bool, path: str, names: frozenset[str],
                 declared_path: str) -> None:
        super().__init__(path)
        self.fields = tuple(fields)
        self.flexible = flexible
        # The names a value may hold (those of the struct in any version), and where its
        # declaration puts it, for the error that refuses any other name.
        self.names = names
        self.declared_path = declared_path
        self.positional = [f for f in self.fields if f.tag is None]
        self.tagged = [f for f in self.fields if f.tag is not None]
        self.section = TaggedFields({f.tag: f.kind for f in self.tagged}, f"{path}(tagged fields)")
        self.tag_specs = tuple((f.tag, f.name, f.default) for f in self.tagged)
        self.min_size = sum(f.kind.min_size for f in self.positional) + flexible

    def read(self, io: Any) -> Container:
        values = {f.name: f.kind.read(io) for f in self.positional}
        tags = self.section.read(io) if self.flexible else {}
        result = Container()
        for f in self.fields:
            if f.tag is None:
                result[f.name] = values[f.name]
            else:
                result[f.name] = tags.pop(f.tag) if f.tag in tags else copy.deepcopy(f.default)
        if tags:
            result[UNKNOWN_TAGS] = tags
        return result

    def write(self, io: Any, value: Mapping[str, Any]) -> None:
        if value.__class__ is Encoded:
            io.write(value)
            return
        if not self.names.issuperset(value):
            raise undeclared(value, self.names, self.declared_path)
        for f in self.positional:
            f.kind._build(value.get(f.name, f.default), io, None, f.kind.path)
        if self.flexible:
            self.section._build(collect_tags(value, self.tag_specs), io, None, self.section.path)

    def _groups(self) -> list[list[StructField]]:
        """Positional fields, consecutive fixed-width ones grouped together."""
        groups: list[list[StructField]] = []
        for f in self.positional:
            fixed = isinstance(f.kind, FixedWidth)
            if fixed and groups and isinstance(groups[-1][0].kind, FixedWidth):
                groups[-1].append(f)
            else:
                groups.append([f])
        return groups

    def _group_format(self, code: Any, group: list[StructField]) -> tuple[str, int]:
        """The name of the group's precompiled format in compiled code, and its size."""
        fmt = ">" + "".join(f.kind.format_char for f in group)
        return emit_struct_format(code, fmt), struct.calcsize(fmt)

    def emit_read(self, code: Any) -> str:
        emit_helpers_import(code)
        name = f"read_struct_{code.allocateId()}"
        variables = {f.name: f"v{i}" for i, f in enumerate(self.fields)}
        body = []
        for group in self._groups():
            if isinstance(group[0].kind, FixedWidth):
                fmt, size = self._group_format(code, group)
                label = group[0].kind.path if len(group) == 1 else f"{self.path}({', '.join(f.name for f in group)})"
                body += [f"data = io.read({size})",
                         f"if len(data) != {size}:",
                         f"    raise short_read({label!r}, {size}, len(data))",
                         f"{''.join(variables[f.name] + ', ' for f in group)}= {fmt}.unpack(data)"]
            else:
                body.append(f"{variables[group[0].name]} = {group[0].kind.emit_read(code)}")
        if self.flexible:
            # Nearly every tagged-field section is empty: one byte, read here without a call.
            body += ["first = io.read(1)",
                     "if first == b'\\x00':",
                     "    tags = {}",
                     "else:",
                     "    io.seek(-len(first), 1)",
                     f"    tags = {self.section.emit_read(code)}"]
        for f in self.tagged:
            body.append(f"{variables[f.name]} = tags.pop({f.tag}) if {f.tag} in tags else {f.default!r}")
        body.append(f"result = Container({', '.join(f'{f.name}={variables[f.name]}' for f in self.fields)})")
        if self.flexible:
            body += ["if tags:", f"    result[{UNKNOWN_TAGS!r}] = tags"]
        body.append("return result")
        code.append(f"def {name}(io, this):\n" + "".join(f"    {line}\n" for line in body))
        return f"{name}(io, this)"

    def emit_write(self, code: Any, value: str) -> str:
        emit_helpers_import(code)
        code.append(f"from {__name__} import Encoded, collect_tags, undeclared")
        name = f"write_struct_{code.allocateId()}"
        names = f"names_{code.allocateId()}"
        code.append(f"{names} = {self.names!r}")
        body = ["if obj.__class__ is Encoded:",
                "    io.write(obj)",
                "    return",
                f"if not {names}.issuperset(obj):",
                f"    raise undeclared(obj, {names}, {self.declared_path!r})",
                "get = obj.get"]
        for group in self._groups():
            if isinstance(group[0].kind, FixedWidth):
                values = ", ".join(f"get({f.name!r}, {f.default!r})" for f in group)
                body.append(f"io.write({self._group_format(code, group)[0]}.pack({values}))")
            else:
                f = group[0]
                body.append(f.kind.emit_write(code, f"get({f.name!r}, {f.default!r})"))
        if self.tagged:
            specs = f"tag_specs_{code.allocateId()}"
            code.append(f"{specs} = {self.tag_specs!r}")
            body.append(self.section.emit_write(code, f"collect_tags(obj, {specs})"))
        elif self.flexible:
            body += [f"if {UNKNOWN_TAGS!r} in obj:",
                     f"    {self.section.emit_write(code, 'collect_tags(obj, ())')}",
                     "else:",
                     "    io.write(b'\\x00')"]
        code.append(f"def {name}(obj, io, this):\n" + "".join(f"    {line}\n" for line in body))
        return f"{name}({value}, io, this)"


def _leaf(type_name: str, compact: bool, nullable: bool, path: str) -> KafkaType:
    if type_name in _FIXED_WIDTH:
        return _FIXED_WIDTH[type_name].at(path)
    if type_name == "uuid":
        return UUID.at(path)
    kind = {"string": KafkaString, "bytes": KafkaBytes, "records": Records}[type_name]
    return kind(compact, nullable, path)


def build_struct(fields: Sequence[Field], version: int, flexible: bool, message: str, prefix: str = "") -> KafkaStruct:
    """The struct of ``fields`` as they are in ``version``; ``message`` names the message and
    ``prefix`` the struct's place in it (``"topics[]."``), for error messages."""
    root = f"{message} v{version}"
    members = []
    for f in fields:
        if version not in f.versions:
            continue
        field_path = f"{prefix}{f.name}"
        compact = flexible and (f.flexible is None or version in (Versions.parse(f.flexible) or ()))
        nullable = f.nullable is not None and version in f.nullable
        if f.is_array:
            if f.fields:
                element: KafkaType = build_struct(f.fields, version, flexible, message, f"{field_path}[].")
            else:
                element = _leaf(f.type[2:], compact, False, f"{root}: {field_path}[]")
            kind: KafkaType = KafkaArray(element, compact, nullable, f"{root}: {field_path}")
        elif f.fields:
            kind = build_struct(f.fields, version, flexible, message, f"{field_path}.")
        else:
            kind = _leaf(f.type, compact, nullable, f"{root}: {field_path}")
        tag = f.tag if flexible and f.tagged is not None and version in f.tagged else None
        members.append(StructField(f.name, kind, f.default_value(version), tag))
    declared_path = f"{message}.{prefix[:-1]}" if prefix else message
    return KafkaStruct(members, flexible, f"{root}: {prefix}", _declared_names(fields), declared_path)


class MessageCodec:
    """One declared message (or header): its metadata and per-version codecs.

    ``decode``/``encode`` work on whole message bodies; ``read``/``write`` continue on a stream
    from :func:`open_frame` / a writable stream (headers use them to share the frame with the
    body). The first use of a version builds and compiles its construct (about a millisecond).
    """

    def __init__(self, kind: str, api_key: int | None, name: str, valid: str, flexible: str,
                 fields: Sequence[Field]) -> None:
        self.kind = kind
        self.api_key = api_key
        self.name = name
        self.valid_versions = Versions.parse(valid)
        self.flexible_versions = Versions.parse(flexible)
        self.fields = tuple(fields)
        self._message = _constructor(name, name, self.fields)
        # Nested structs' constructors as attributes named after their declared types, so that
        # `PRODUCE_RESPONSE.PartitionProduceResponse` is a plain attribute read.
        self.__dict__.update(_nested_constructors(name, name, self.fields))
        self._structs: dict[int, KafkaStruct] = {}
        self._compiled: dict[int, Compiled] = {}
        # Structs encoded on their own (encode_struct), by (version, path): interpreted and compiled.
        self._nested: dict[tuple[int, str], tuple[KafkaStruct, Compiled]] = {}

    @property
    def names(self) -> frozenset[str]:
        """The top-level field names of every version."""
        return self._message.names

    def __call__(self, **fields: Any) -> dict[str, Any]:
        """The message with ``fields``; every other field is encoded as its declared default."""
        return self._message(**fields)

    def __repr__(self) -> str:
        return f"<{self.name} v{self.valid_versions}>"

    def is_flexible(self, version: int) -> bool:
        """Flexible versions are open-ended, so this also answers for versions past the newest."""
        return self.flexible_versions is not None and version >= self.flexible_versions.low

    def struct(self, version: int) -> KafkaStruct:
        """The interpreted construct of ``version``."""
        built = self._structs.get(version)
        if built is None:
            if version not in self.valid_versions:
                raise ProtocolError(f"{self.name}: version {version} is not supported "
                                    f"(valid {self.valid_versions})")
            built = build_struct(self.fields, version, self.is_flexible(version), self.name)
            self._structs[version] = built
        return built

    def compiled(self, version: int) -> Compiled:
        """The compiled construct of ``version``."""
        built = self._compiled.get(version)
        if built is None:
            built = self._compiled[version] = self.struct(version).compile()
        return built

    def read(self, version: int, reader: FrameReader | ViewReader) -> Container:
        compiled = self._compiled.get(version) or self.compiled(version)
        return compiled._parse(reader, None, self.name)

    def read_to_end(self, version: int, reader: FrameReader | ViewReader) -> Container:
        """``read``, and the message must end the frame."""
        value = self.read(version, reader)
        if reader.tell() != reader.end:
            raise ProtocolError(f"{self.name} v{version}: {reader.end - reader.tell()} bytes left after the message")
        return value

    def decode(self, version: int, buf: bytes | bytearray | memoryview, offset: int = 0) -> Container:
        """Decodes the message at ``buf[offset:]``, which it must consume entirely."""
        return self.read_to_end(version, open_frame(buf, offset))

    def write(self, version: int, value: Mapping[str, Any], io: Any) -> None:
        compiled = self._compiled.get(version) or self.compiled(version)
        _write(compiled, self._structs[version], value, io, self.name, version)

    def encode_struct(self, version: int, path: str, value: Mapping[str, Any]) -> Encoded:
        """The struct at ``path`` ("topics[]", "topics[].partitions[]") encoded in ``version``, to
        be given in place of such a struct to a message of this codec written in that version."""
        key = (version, path)
        nested = self._nested.get(key)
        if nested is None:
            interpreted = self._nested_struct(version, path)
            nested = self._nested[key] = interpreted, interpreted.compile()
        io = BytesIO()
        _write(nested[1], nested[0], value, io, f"{self.name}.{path}", version)
        return Encoded(io.getvalue())

    def _nested_struct(self, version: int, path: str) -> KafkaStruct:
        found: KafkaType | None = self.struct(version)
        for step in path.split("."):
            kinds = {f.name: f.kind for f in found.fields} if isinstance(found, KafkaStruct) else {}
            found = kinds.get(step.removesuffix("[]"))
            if step.endswith("[]"):
                found = found.element if isinstance(found, KafkaArray) else None
        if not isinstance(found, KafkaStruct):
            raise ValueError(f"{self.name} v{version} has no struct at {path}")
        return found

    def encode(self, version: int, value: Mapping[str, Any]) -> bytes:
        """The message body; records values must be bytes-like."""
        io = BytesIO()
        self.write(version, value, io)
        return io.getvalue()

    def encode_chunks(self, version: int, value: Mapping[str, Any]) -> list[Any]:
        """The message body as a list: ``bytes`` elements, and every records value that is not
        bytes-like (e.g. a log file slice for ``os.sendfile``) as an element of its own."""
        io = ChunkWriter()
        self.write(version, value, io)
        return io.chunks()


def _write(compiled: Compiled, interpreted: KafkaStruct, value: Mapping[str, Any], io: Any, label: str,
           version: int) -> None:
    try:
        compiled._build(value, io, None, label)
    except (struct.error, TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        # The compiled code does not track which field it was on; the interpreted struct does.
        interpreted._build(value, ChunkWriter(), None, label)
        raise ProtocolError(f"{label} v{version}: cannot encode: {exc}") from exc


def request(api_key: int, name: str, valid: str, flexible: str, *fields: Field) -> MessageCodec:
    return MessageCodec("request", api_key, name, valid, flexible, fields)


def response(api_key: int, name: str, valid: str, flexible: str, *fields: Field) -> MessageCodec:
    return MessageCodec("response", api_key, name, valid, flexible, fields)


def header(name: str, valid: str, flexible: str, *fields: Field) -> MessageCodec:
    return MessageCodec("header", None, name, valid, flexible, fields)


def data(name: str, valid: str, flexible: str, *fields: Field) -> MessageCodec:
    """A record the broker keeps rather than sends (Kafka's "data" messages: committed offsets, group metadata)."""
    return MessageCodec("data", None, name, valid, flexible, fields)
