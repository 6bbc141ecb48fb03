"""Kafka's primitive wire types as construct types.

The type names follow Kafka's protocol guide: INT8/16/32/64, UINT16, UINT32, FLOAT64, BOOLEAN,
UUID, STRING / NULLABLE_STRING (INT16 length), BYTES / NULLABLE_BYTES (INT32 length), RECORDS,
ARRAY (INT32 count, -1 = null), and the COMPACT_* variants of flexible versions (unsigned
varint of N+1, 0 = null), plus TAGGED_FIELDS: the fixed-width ones are instances here, the
others classes (KafkaString, KafkaBytes, Records, KafkaArray, TaggedFields) that the
declarations instantiate per field, named after it. No message field is a varint (those are
inside record batches, which protocol.records reads).

Values: integers are ``int``, FLOAT64 is ``float``, BOOLEAN is ``bool`` (any non-zero byte reads
as true), strings are ``str`` (UTF-8), bytes are ``bytes``, UUID is ``uuid.UUID`` (always; the
all-zero id is ``ZERO_UUID``), arrays are ``list``, null is ``None``. RECORDS decode to a
``memoryview`` slice of the frame being decoded (zero copy) and encode from any bytes-like
object, or, through :class:`ChunkWriter`, from any object with ``__len__`` that is emitted as a
chunk of its own (e.g. a file slice sent with ``os.sendfile``).

Every type is a construct ``Construct``: it parses and builds like any construct, and it
compiles (``.compile()``) into straight-line code that calls the small module-level helpers
below, which are shared with the interpreted path so both behave identically. Each instance
carries ``path``, the field it decodes, and every failure raises :class:`ProtocolError` naming
it. Length fields are checked against the bytes left in the frame before anything is read or
allocated, so a frame claiming 2 GiB fails at once.
"""

from __future__ import annotations

import copy
import struct
import uuid
from collections.abc import Callable, Mapping
from io import BytesIO
from typing import Any

from construct import Construct

from .errors import ProtocolError

ZERO_UUID = uuid.UUID(int=0)
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_NULL_INT16 = _INT16.pack(-1)
_NULL_INT32 = _INT32.pack(-1)
_BYTES_LIKE = (bytes, bytearray, memoryview)
_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


class FrameReader(BytesIO):
    """Read stream over one frame that also exposes the frame and its end.

    ``frame`` lets RECORDS return slices of the caller's buffer, ``end`` lets length fields be
    checked against what is left. ``BytesIO`` shares a ``bytes`` frame instead of copying it;
    any other buffer it copies, which :func:`open_frame` avoids for large ones.
    """

    def __init__(self, frame: bytes | bytearray | memoryview, offset: int = 0) -> None:
        super().__init__(frame)
        self.frame = _byte_view(frame)
        self.end = self.frame.nbytes
        if offset:
            self.seek(offset)


class ViewReader:
    """Read stream over a buffer without copying it, for large frames that are not ``bytes``
    (the broker receives those into a bytearray). Its reads are Python calls, slower than
    ``BytesIO``'s, which only pays off when the copy it saves is large."""

    def __init__(self, frame: bytearray | memoryview, offset: int = 0) -> None:
        self.frame = _byte_view(frame)
        self.end = self.frame.nbytes
        self._position = offset

    def read(self, size: int = -1) -> bytes:
        start = self._position
        self._position = self.end if size < 0 else min(start + size, self.end)
        return self.frame[start:self._position].tobytes()

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, self.end)[whence]
        self._position = max(0, base + offset)
        return self._position


LARGE_FRAME = 64 * 1024


def open_frame(frame: bytes | bytearray | memoryview, offset: int = 0) -> FrameReader | ViewReader:
    """A read stream over ``frame`` from ``offset`` that never copies a large frame."""
    if isinstance(frame, bytes) or len(frame) < LARGE_FRAME:
        return FrameReader(frame, offset)
    return ViewReader(frame, offset)


def _byte_view(frame: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(frame)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class ChunkWriter(BytesIO):
    """Write stream that lets opaque RECORDS values (file slices) stay out of the bytes.

    :meth:`chunks` returns the encoded message as a list: ``bytes`` elements for everything
    encoded, each opaque value as its own element where it belongs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[Any] = []

    def write_opaque(self, value: Any) -> None:
        self._chunks.append(self.getvalue())
        self._chunks.append(value)
        self.seek(0)
        self.truncate()

    def chunks(self) -> list[Any]:
        parts = self._chunks + [self.getvalue()]
        return [part for part in parts if not isinstance(part, bytes) or part]


# ---------------------------------------------------------------------------
# Helpers shared by interpreted and compiled code (compiled code imports them by name).
# ---------------------------------------------------------------------------

def remaining(io: Any) -> int:
    """Bytes left to read in ``io``."""
    try:
        return io.end - io.tell()
    except AttributeError:  # a plain stream, e.g. when nested in a stock construct
        position = io.tell()
        end = io.seek(0, 2)
        io.seek(position)
        return end - position


def short_read(path: str, wanted: int, got: int) -> ProtocolError:
    return ProtocolError(f"{path}: needs {wanted} bytes, only {got} left")


def read_exact(io: Any, size: int, path: str) -> bytes:
    data = io.read(size)
    if len(data) != size:
        raise short_read(path, size, len(data))
    return data


def unpack_exact(fmt: struct.Struct, io: Any, path: str) -> tuple:
    data = io.read(fmt.size)
    if len(data) != fmt.size:
        raise short_read(path, fmt.size, len(data))
    return fmt.unpack(data)


def read_uvarint(io: Any, path: str) -> int:
    """Kafka's UNSIGNED_VARINT: unsigned LEB128 of at most 32 bits, so at most 5 bytes."""
    data = io.read(1)
    if data and data[0] < 0x80:
        return data[0]
    value = shift = 0
    while data:
        byte = data[0]
        value |= (byte & 0x7F) << shift
        if value >> 32:
            raise ProtocolError(f"{path}: varint exceeds 32 bits")
        if byte < 0x80:
            return value
        shift += 7
        if shift >= 35:
            raise ProtocolError(f"{path}: varint longer than 5 bytes")
        data = io.read(1)
    raise ProtocolError(f"{path}: truncated varint")


def encode_uvarint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return bytes((value,))
    if value < 0:
        raise ProtocolError(f"unsigned varint cannot hold {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_prefix(io: Any, compact: bool, wide: bool, path: str) -> int:
    """A length or count as sent, -1 meaning null: INT16 (strings) or INT32 (bytes, arrays),
    or in flexible versions an unsigned varint of N+1."""
    if compact:
        data = io.read(1)
        if data and data[0] < 0x80:
            return data[0] - 1
        io.seek(-len(data), 1)
        return read_uvarint(io, path) - 1
    fmt = _INT32 if wide else _INT16
    data = io.read(fmt.size)
    if len(data) != fmt.size:
        raise short_read(path, fmt.size, len(data))
    return fmt.unpack(data)[0]


def write_length(io: Any, length: int, compact: bool, wide: bool) -> None:
    if compact:
        length += 1
        io.write(_ONE_BYTE[length] if length < 0x80 else encode_uvarint(length))
    else:
        io.write((_INT32 if wide else _INT16).pack(length))


def read_size(io: Any, compact: bool, wide: bool, nullable: bool, path: str) -> int:
    """The length of a string, bytes or records value, -1 for null, checked against the bytes
    left before anything is read."""
    length = read_prefix(io, compact, wide, path)
    if length < 0:
        if length == -1 and nullable:
            return -1
        raise ProtocolError(f"{path}: invalid length {length}")
    try:
        left = io.end - io.tell()
    except AttributeError:
        left = remaining(io)
    if length > left:
        raise ProtocolError(f"{path}: length {length} exceeds the {left} bytes left")
    return length


def read_string(io: Any, compact: bool, nullable: bool, path: str) -> str | None:
    length = read_size(io, compact, False, nullable, path)
    if length < 0:
        return None
    try:
        return io.read(length).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{path}: invalid UTF-8 ({exc.reason})") from None


def read_bytes(io: Any, compact: bool, nullable: bool, path: str) -> bytes | None:
    length = read_size(io, compact, True, nullable, path)
    return None if length < 0 else io.read(length)


def read_records(io: Any, compact: bool, nullable: bool, path: str) -> memoryview | bytes | None:
    """RECORDS as a memoryview slice of the frame: the payload is never copied."""
    length = read_size(io, compact, True, nullable, path)
    if length < 0:
        return None
    frame = getattr(io, "frame", None)
    if frame is None:
        return io.read(length)
    start = io.tell()
    io.seek(start + length)
    return frame[start:start + length]


def _null_or_fail(io: Any, compact: bool, wide: bool, nullable: bool, path: str) -> None:
    if not nullable:
        raise ProtocolError(f"{path}: null is not allowed in this version")
    if compact:
        io.write(b"\x00")
    else:
        io.write(_NULL_INT32 if wide else _NULL_INT16)


def write_string(io: Any, value: str | None, compact: bool, nullable: bool, path: str) -> None:
    if value is None:
        _null_or_fail(io, compact, False, nullable, path)
        return
    data = value.encode("utf-8")
    if not compact and len(data) > 0x7FFF:
        raise ProtocolError(f"{path}: string of {len(data)} bytes is too long")
    write_length(io, len(data), compact, False)
    io.write(data)


def write_bytes(io: Any, value: Any, compact: bool, nullable: bool, path: str) -> None:
    if value is None:
        _null_or_fail(io, compact, True, nullable, path)
        return
    if not isinstance(value, _BYTES_LIKE):
        raise ProtocolError(f"{path}: expected bytes, got {type(value).__name__}")
    write_length(io, memoryview(value).nbytes, compact, True)
    io.write(value)


def write_records(io: Any, value: Any, compact: bool, nullable: bool, path: str) -> None:
    if value is None or isinstance(value, _BYTES_LIKE):
        write_bytes(io, value, compact, nullable, path)
        return
    write_opaque = getattr(io, "write_opaque", None)
    if write_opaque is None:
        raise ProtocolError(f"{path}: a {type(value).__name__} records value needs encode_chunks()")
    size = len(value)
    write_length(io, size, compact, True)
    if size:  # an empty slice is no chunk: each chunk costs the sender a system call
        write_opaque(value)


def read_array_count(io: Any, compact: bool, nullable: bool, min_element_size: int, path: str) -> int:
    """Element count of an array, -1 for null; rejects counts the frame cannot hold."""
    count = read_prefix(io, compact, True, path)
    if count < 0:
        if count == -1 and nullable:
            return -1
        raise ProtocolError(f"{path}: invalid array length {count}")
    left = remaining(io)
    if count * min_element_size > left:
        raise ProtocolError(f"{path}: {count} elements cannot fit in the {left} bytes left")
    return count


def write_array_count(io: Any, value: Any, compact: bool, nullable: bool, path: str) -> bool:
    """Writes the count (or null); True when elements follow."""
    if value is None:
        _null_or_fail(io, compact, True, nullable, path)
        return False
    write_length(io, len(value), compact, True)
    return True


def read_tagged_fields(io: Any, readers: Mapping[int, Callable[[Any], Any]], path: str) -> dict[int, Any]:
    """A tagged-field section: known tags decoded by their reader, unknown tags kept as bytes."""
    count = read_uvarint(io, path)
    left = remaining(io)
    if count * 2 > left:  # every entry needs at least a tag byte and a size byte
        raise ProtocolError(f"{path}: {count} tagged fields cannot fit in the {left} bytes left")
    tags: dict[int, Any] = {}
    for _ in range(count):
        tag = read_uvarint(io, path)
        size = read_uvarint(io, path)
        if size > remaining(io):
            raise ProtocolError(f"{path}: length {size} exceeds the {remaining(io)} bytes left")
        reader = readers.get(tag)
        if reader is None:
            tags[tag] = io.read(size)
            continue
        start = io.tell()
        tags[tag] = reader(io)
        if io.tell() - start != size:
            raise ProtocolError(f"{path}: tagged field {tag} declares {size} bytes but holds {io.tell() - start}")
    return tags


def write_tagged_fields(io: Any, tags: Mapping[int, Any], writers: Mapping[int, Callable[[Any, Any], Any]],
                        path: str) -> None:
    """Writes ``tags`` in tag order; a tag without a writer must hold its raw bytes."""
    if not tags:
        io.write(b"\x00")
        return
    io.write(encode_uvarint(len(tags)))
    for tag in sorted(tags):
        value = tags[tag]
        writer = writers.get(tag)
        if writer is not None:
            buffer = BytesIO()
            writer(buffer, value)
            value = buffer.getvalue()
        elif not isinstance(value, _BYTES_LIKE):
            raise ProtocolError(f"{path}: unknown tagged field {tag} must be bytes")
        io.write(encode_uvarint(tag))
        io.write(encode_uvarint(len(value)))
        io.write(value)


# ---------------------------------------------------------------------------
# The construct types.
# ---------------------------------------------------------------------------

_HELPERS = (
    "short_read, read_exact, unpack_exact, read_string, read_bytes, read_records, write_string, write_bytes, "
    "write_records, read_array_count, write_array_count, read_tagged_fields, write_tagged_fields"
)


def emit_helpers_import(code: Any) -> None:
    """Makes the helpers above visible to construct-compiled code."""
    code.append(f"from uuid import UUID\nfrom {__name__} import {_HELPERS}")


def emit_struct_format(code: Any, fmt: str) -> str:
    """A module-level precompiled ``struct.Struct`` in compiled code; returns its name."""
    name = "fmt_" + "".join(c if c.isalnum() else "_" for c in fmt.replace(">", "be_").replace("?", "bool"))
    code.append(f"{name} = struct.Struct({fmt!r})")
    return name


class KafkaType(Construct):
    """Base of all Kafka types: one ``read``/``write`` pair used by construct's interpreted
    ``_parse``/``_build`` and one ``emit_read``/``emit_write`` pair used by ``.compile()``.

    ``min_size`` is the fewest bytes one value takes on the wire (bounds array counts);
    ``path`` names the field in error messages; :meth:`at` copies the type for a given field.
    """

    min_size = 1

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def at(self, path: str) -> KafkaType:
        clone = copy.copy(self)
        clone.path = path
        return clone

    def read(self, io: Any) -> Any:
        raise NotImplementedError

    def write(self, io: Any, value: Any) -> None:
        raise NotImplementedError

    def emit_read(self, code: Any) -> str:
        """Python expression reading one value from ``io``."""
        raise NotImplementedError

    def emit_write(self, code: Any, value: str) -> str:
        """Python expression writing the value of expression ``value`` to ``io``."""
        raise NotImplementedError

    def parse(self, data: bytes | bytearray | memoryview, **contextkw: Any) -> Any:
        return self.parse_stream(open_frame(data), **contextkw)

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        return self.read(stream)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        try:
            self.write(stream, obj)
        except (struct.error, TypeError, ValueError, AttributeError, OverflowError, KeyError) as exc:
            raise ProtocolError(f"{self.path}: cannot encode {obj!r:.80}: {exc}") from exc
        return obj

    def _emitparse(self, code: Any) -> str:
        emit_helpers_import(code)
        return self.emit_read(code)

    def _emitbuild(self, code: Any) -> str:
        emit_helpers_import(code)
        return f"({self.emit_write(code, 'obj')}, obj)[1]"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


class FixedWidth(KafkaType):
    """INT8..INT64, UINT16, UINT32, FLOAT64, BOOLEAN: one ``struct`` format character.

    A struct of several fixed-width fields in a row reads them with one precompiled format.
    """

    def __init__(self, format_char: str, path: str) -> None:
        super().__init__(path)
        self.format_char = format_char
        self.format = struct.Struct(">" + format_char)
        self.min_size = self.format.size

    def read(self, io: Any) -> Any:
        return unpack_exact(self.format, io, self.path)[0]

    def write(self, io: Any, value: Any) -> None:
        io.write(self.format.pack(value))

    def emit_read(self, code: Any) -> str:
        return f"unpack_exact({emit_struct_format(code, self.format.format)}, io, {self.path!r})[0]"

    def emit_write(self, code: Any, value: str) -> str:
        return f"io.write({emit_struct_format(code, self.format.format)}.pack({value}))"

    def _sizeof(self, context: Any, path: str) -> int:
        return self.format.size


class Uuid(KafkaType):
    """UUID: 16 bytes, decoded to ``uuid.UUID``; encodes a ``uuid.UUID``."""

    min_size = 16

    def read(self, io: Any) -> uuid.UUID:
        return uuid.UUID(bytes=read_exact(io, 16, self.path))

    def write(self, io: Any, value: uuid.UUID) -> None:
        io.write(value.bytes)

    def emit_read(self, code: Any) -> str:
        return f"UUID(bytes=read_exact(io, 16, {self.path!r}))"

    def emit_write(self, code: Any, value: str) -> str:
        return f"io.write({value}.bytes)"

    def _sizeof(self, context: Any, path: str) -> int:
        return 16


class _LengthPrefixed(KafkaType):
    """Shared shape of STRING, BYTES and RECORDS: length (or compact N+1) then the bytes."""

    reader: Callable[..., Any]
    writer: Callable[..., None]
    length_size: int  # bytes of the non-compact length

    def __init__(self, compact: bool, nullable: bool, path: str) -> None:
        super().__init__(path)
        self.compact = compact
        self.nullable = nullable
        self.min_size = 1 if compact else self.length_size

    def read(self, io: Any) -> Any:
        return type(self).reader(io, self.compact, self.nullable, self.path)

    def write(self, io: Any, value: Any) -> None:
        type(self).writer(io, value, self.compact, self.nullable, self.path)

    def emit_read(self, code: Any) -> str:
        return f"{type(self).reader.__name__}(io, {self.compact}, {self.nullable}, {self.path!r})"

    def emit_write(self, code: Any, value: str) -> str:
        return f"{type(self).writer.__name__}(io, {value}, {self.compact}, {self.nullable}, {self.path!r})"


class KafkaString(_LengthPrefixed):
    """STRING family: INT16 length (-1 = null) or compact; UTF-8 ``str``."""

    reader = staticmethod(read_string)
    writer = staticmethod(write_string)
    length_size = 2


class KafkaBytes(_LengthPrefixed):
    """BYTES family: INT32 length (-1 = null) or compact; ``bytes``."""

    reader = staticmethod(read_bytes)
    writer = staticmethod(write_bytes)
    length_size = 4


class Records(KafkaBytes):
    """RECORDS: like BYTES, but decodes to a zero-copy ``memoryview`` of the frame and encodes
    non-bytes values (file slices) as opaque chunks of a :class:`ChunkWriter`."""

    reader = staticmethod(read_records)
    writer = staticmethod(write_records)


class KafkaArray(KafkaType):
    """ARRAY / COMPACT_ARRAY of ``element`` (any Kafka type, including structs): ``list``."""

    def __init__(self, element: KafkaType, compact: bool, nullable: bool, path: str) -> None:
        super().__init__(path)
        self.element = element
        self.compact = compact
        self.nullable = nullable
        self.min_size = 1 if compact else 4
        # Counting every element as at least one byte bounds the loop even for elements that
        # take no bytes in some version, as Kafka does.
        self.element_size = max(1, element.min_size)

    def read(self, io: Any) -> list | None:
        count = read_array_count(io, self.compact, self.nullable, self.element_size, self.path)
        if count < 0:
            return None
        return [self.element.read(io) for _ in range(count)]

    def write(self, io: Any, value: Any) -> None:
        if write_array_count(io, value, self.compact, self.nullable, self.path):
            for item in value:
                self.element._build(item, io, None, self.element.path)

    def emit_read(self, code: Any) -> str:
        name = f"read_array_{code.allocateId()}"
        if isinstance(self.element, FixedWidth):
            # All elements at once, with a format made for the count (struct caches those); the
            # count was checked against the bytes left, so they are all there.
            char, size = self.element.format_char, self.element.min_size
            elements = f"list(struct.unpack(f'>{{count}}{char}', io.read(count * {size})))"
        else:
            elements = f"[{self.element.emit_read(code)} for _ in range(count)]"
        code.append(f"""
def {name}(io, this):
    count = read_array_count(io, {self.compact}, {self.nullable}, {self.element_size}, {self.path!r})
    if count < 0:
        return None
    return {elements}
""")
        return f"{name}(io, this)"

    def emit_write(self, code: Any, value: str) -> str:
        name = f"write_array_{code.allocateId()}"
        element = self.element.emit_write(code, "item")
        code.append(f"""
def {name}(obj, io, this):
    if write_array_count(io, obj, {self.compact}, {self.nullable}, {self.path!r}):
        for item in obj:
            {element}
""")
        return f"{name}({value}, io, this)"


class TaggedFields(KafkaType):
    """TAGGED_FIELDS section: unsigned-varint count, then (tag, size, bytes) in tag order.

    Decodes to ``{tag: value}``: tags in ``known`` decode with their type, others stay raw
    ``bytes`` so they survive a decode/encode round trip. Encodes such a dict the same way.
    """

    def __init__(self, known: Mapping[int, KafkaType], path: str) -> None:
        super().__init__(path)
        self.known = dict(known)

    def read(self, io: Any) -> dict[int, Any]:
        return read_tagged_fields(io, {tag: kind.read for tag, kind in self.known.items()}, self.path)

    def write(self, io: Any, value: Mapping[int, Any]) -> None:
        write_tagged_fields(io, value, {tag: kind.write for tag, kind in self.known.items()}, self.path)

    def emit_read(self, code: Any) -> str:
        name = f"tag_readers_{code.allocateId()}"
        readers = ", ".join(f"{tag}: lambda io, this=None: {kind.emit_read(code)}" for tag, kind in self.known.items())
        code.append(f"{name} = {{{readers}}}")
        return f"read_tagged_fields(io, {name}, {self.path!r})"

    def emit_write(self, code: Any, value: str) -> str:
        name = f"tag_writers_{code.allocateId()}"
        writers = ", ".join(f"{tag}: lambda io, item, this=None: {kind.emit_write(code, 'item')}"
                            for tag, kind in self.known.items())
        code.append(f"{name} = {{{writers}}}")
        return f"write_tagged_fields(io, {value}, {name}, {self.path!r})"


INT8 = FixedWidth("b", "INT8")
INT16 = FixedWidth("h", "INT16")
INT32 = FixedWidth("i", "INT32")
INT64 = FixedWidth("q", "INT64")
UINT16 = FixedWidth("H", "UINT16")
UINT32 = FixedWidth("I", "UINT32")
FLOAT64 = FixedWidth("d", "FLOAT64")
BOOLEAN = FixedWidth("?", "BOOLEAN")
UUID = Uuid("UUID")
