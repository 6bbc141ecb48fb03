"""Legacy message sets (magic 0 and 1): decode, encode, and convert to a magic-2 batch.

Produce v0-v2 and Fetch v0-v3 carry message sets: concatenated entries of
``offset i64 | message_size i32 | message``, where a message is (big endian)::

    crc u32 | magic i8 | attributes i8 | [timestamp i64, magic 1 only] | key | value

with key and value as i32-length bytes (-1 = null) and the CRC-32 (zlib) over magic..end.
Attributes: bits 0-2 codec (none, gzip, snappy, lz4), bit 3 LogAppendTime (magic 1).
A compressed message is a wrapper whose value is the compressed inner message set. Under
magic 1 the inner offsets are relative (0..n-1) and the wrapper carries the absolute offset
of the last inner message; under magic 0 inner offsets are absolute. Magic-0 LZ4 frames carry
the header checksum of Kafka 0.8/0.9, computed over the frame magic too (KAFKA-3160).

Public API (malformed input raises ``CorruptRecordError``, a ``ProtocolError``):

- ``LegacyMessage``: NamedTuple (offset, magic, timestamp, timestamp_type, key, value,
  compression); ``timestamp`` and ``timestamp_type`` are None under magic 0; ``compression``
  is the codec of the wrapper the message came in (NONE if it was not compressed).
- ``iter_messages(message_set, *, allow_truncated_tail=False, max_decompressed_size=...)``
  yields the messages, wrappers flattened into their inner messages, each entry CRC-checked.
  Magic-1 inner offsets become absolute as Kafka computes them (wrapper offset minus the last
  relative offset, plus each relative offset), unless that base would be negative (producers
  such as kafka-python leave the wrapper offset 0); inner timestamps become the wrapper's
  under LogAppendTime. A partial last entry ends the iteration when
  ``allow_truncated_tail`` (fetch responses), else raises.
- ``build_message_set(records, *, magic, compression=Compression.NONE, base_offset=0,
  base_timestamp=NO_TIMESTAMP) -> bytes``: encode ``records.Record`` values (no headers under
  magic 0/1). Offsets and timestamps default as in ``records.build_batch``; compressed sets are
  one wrapper as Kafka's Java client writes it. Bad arguments raise ValueError.
- ``to_record_batch(message_set, *, compression=None, max_decompressed_size=...) -> bytes``:
  one magic-2 batch holding every message, offsets 0..n-1, timestamps kept (-1 under magic
  0), compressed with ``compression`` or, when None, with the codec the producer used.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import xxhash

from protocol.compression import (
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    Compression,
    compress,
    compression_of,
    decompress,
)
from protocol.errors import CorruptRecordError
from protocol.record_batch import NO_TIMESTAMP, TIMESTAMP_TYPE_MASK, TimestampType
from protocol.records import Record, build_batch

_ENTRY_HEADER = struct.Struct(">qi")  # offset, message size
# By magic: crc, magic, attributes, and from magic 1 on a timestamp.
_MESSAGE_HEADER = (struct.Struct(">Ibb"), struct.Struct(">Ibbq"))
_BYTES_LENGTH = struct.Struct(">i")
_MAGIC_AT = _ENTRY_HEADER.size + 4  # after offset, size and crc
_MIN_MESSAGE_SIZE = tuple(h.size + 2 * _BYTES_LENGTH.size for h in _MESSAGE_HEADER)


class LegacyMessage(NamedTuple):
    offset: int
    magic: int
    timestamp: int | None
    timestamp_type: TimestampType | None
    key: bytes | None
    value: bytes | None
    compression: Compression = Compression.NONE


class _Entry(NamedTuple):
    offset: int
    magic: int
    attributes: int
    timestamp: int | None
    key: memoryview | None
    value: memoryview | None


def _iter_entries(view: memoryview, allow_truncated_tail: bool) -> Iterator[_Entry]:
    """Split a message set into CRC-checked entries, compressed or not."""
    pos = 0
    end = len(view)
    while pos < end:
        remaining = end - pos
        if remaining < _MAGIC_AT + 1:
            if allow_truncated_tail:
                return
            raise CorruptRecordError(f"{remaining} trailing bytes are not a message")
        offset, size = _ENTRY_HEADER.unpack_from(view, pos)
        magic = view[pos + _MAGIC_AT]
        if magic > 1:
            raise CorruptRecordError(f"legacy message magic {magic}, expected 0 or 1")
        if size < _MIN_MESSAGE_SIZE[magic]:
            raise CorruptRecordError(f"legacy message of {size} bytes is below its minimum")
        entry_end = pos + _ENTRY_HEADER.size + size
        if entry_end > end:
            if allow_truncated_tail:
                return
            raise CorruptRecordError(f"legacy message of {size} bytes exceeds its message set")
        message = view[pos + _ENTRY_HEADER.size : entry_end]
        fields = _MESSAGE_HEADER[magic].unpack_from(message)
        crc = zlib.crc32(message[4:])
        if crc != fields[0]:
            raise CorruptRecordError(
                f"legacy message at offset {offset} fails its CRC "
                f"(stored {fields[0]:#010x}, computed {crc:#010x})"
            )
        key, field_pos = _read_bytes(message, _MESSAGE_HEADER[magic].size)
        value, field_pos = _read_bytes(message, field_pos)
        if field_pos != len(message):
            raise CorruptRecordError(f"legacy message has {len(message) - field_pos} extra bytes")
        timestamp = fields[3] if magic else None
        yield _Entry(offset, magic, fields[2], timestamp, key, value)
        pos = entry_end


def _read_bytes(message: memoryview, pos: int) -> tuple[memoryview | None, int]:
    if len(message) - pos < _BYTES_LENGTH.size:
        raise CorruptRecordError("legacy message truncated inside a length")
    (length,) = _BYTES_LENGTH.unpack_from(message, pos)
    pos += _BYTES_LENGTH.size
    if length == -1:
        return None, pos
    if length < -1 or length > len(message) - pos:
        raise CorruptRecordError(f"legacy message field of {length} bytes exceeds its message")
    return message[pos : pos + length], pos + length


def _optional_bytes(data: memoryview | None) -> bytes | None:
    return None if data is None else bytes(data)


def _timestamp_type(entry: _Entry) -> TimestampType | None:
    if entry.magic == 0:
        return None
    if entry.attributes & TIMESTAMP_TYPE_MASK:
        return TimestampType.LOG_APPEND_TIME
    return TimestampType.CREATE_TIME


def iter_messages(
    message_set: bytes | bytearray | memoryview,
    *,
    allow_truncated_tail: bool = False,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> Iterator[LegacyMessage]:
    """Yield the messages of a message set, compressed wrappers flattened."""
    for entry in _iter_entries(memoryview(message_set), allow_truncated_tail):
        codec = compression_of(entry.attributes)
        timestamp_type = _timestamp_type(entry)
        if codec == Compression.NONE:
            yield LegacyMessage(
                entry.offset,
                entry.magic,
                entry.timestamp,
                timestamp_type,
                _optional_bytes(entry.key),
                _optional_bytes(entry.value),
            )
            continue
        yield from _unwrap(entry, codec, timestamp_type, max_decompressed_size)


def _unwrap(
    wrapper: _Entry,
    codec: Compression,
    timestamp_type: TimestampType | None,
    max_decompressed_size: int,
) -> Iterator[LegacyMessage]:
    if codec == Compression.ZSTD:
        raise CorruptRecordError("zstd needs magic 2, found in a legacy message")
    if wrapper.value is None:
        raise CorruptRecordError(f"compressed legacy message at offset {wrapper.offset} is null")
    compressed = wrapper.value
    if codec == Compression.LZ4 and wrapper.magic == 0:
        compressed = _with_lz4_header_checksum(compressed, start=4)
    inner_set = decompress(codec, compressed, max_decompressed_size)
    inner = list(_iter_entries(inner_set, allow_truncated_tail=False))
    if not inner:
        raise CorruptRecordError(f"compressed legacy message at offset {wrapper.offset} is empty")
    base_offset = -1
    if wrapper.magic == 1:
        base_offset = wrapper.offset - inner[-1].offset
    log_append_time = timestamp_type == TimestampType.LOG_APPEND_TIME
    for entry in inner:
        if entry.attributes & 0x07:
            raise CorruptRecordError(f"legacy message at offset {entry.offset} is compressed twice")
        if entry.magic != wrapper.magic:
            raise CorruptRecordError(
                f"inner legacy message magic {entry.magic} differs from its wrapper's"
            )
        yield LegacyMessage(
            entry.offset + base_offset if base_offset >= 0 else entry.offset,
            entry.magic,
            wrapper.timestamp if log_append_time else entry.timestamp,
            timestamp_type,
            _optional_bytes(entry.key),
            _optional_bytes(entry.value),
            codec,
        )


def build_message_set(
    records: Iterable[Record],
    *,
    magic: int,
    compression: Compression = Compression.NONE,
    base_offset: int = 0,
    base_timestamp: int = NO_TIMESTAMP,
) -> bytes:
    """Encode records as a magic 0 or 1 message set (one wrapper if compressed)."""
    if magic not in (0, 1):
        raise ValueError(f"legacy message sets have magic 0 or 1, not {magic}")
    if compression == Compression.ZSTD:
        raise ValueError("zstd needs magic 2")
    entries = []
    offset = base_offset - 1
    for record in records:
        if record.headers:
            raise ValueError("record headers need magic 2")
        if record.offset is None:
            offset += 1
        elif record.offset > offset:
            offset = record.offset
        else:
            raise ValueError(f"record offset {record.offset} does not follow the previous one")
        timestamp = base_timestamp if record.timestamp is None else record.timestamp
        entries.append((offset, timestamp, record.key, record.value))
    if not entries:
        raise ValueError("a message set holds at least one message")
    if compression == Compression.NONE:
        return b"".join(_encode_message(magic, 0, *entry) for entry in entries)
    # Magic 1 inner offsets are relative to the first; the wrapper takes the last absolute one.
    relative_to = base_offset if magic == 1 else 0
    inner_set = b"".join(
        _encode_message(magic, 0, offset - relative_to, timestamp, key, value)
        for offset, timestamp, key, value in entries
    )
    compressed = compress(compression, inner_set)
    if compression == Compression.LZ4 and magic == 0:
        compressed = _with_lz4_header_checksum(memoryview(compressed), start=0)
    last_offset = entries[-1][0]
    max_timestamp = max(entry[1] for entry in entries)
    return _encode_message(magic, compression, last_offset, max_timestamp, None, compressed)


def _encode_message(
    magic: int,
    attributes: int,
    offset: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
) -> bytes:
    fields = [struct.pack(">bb", magic, attributes)]
    if magic == 1:
        fields.append(struct.pack(">q", timestamp))
    for data in (key, value):
        if data is None:
            fields.append(_BYTES_LENGTH.pack(-1))
        else:
            fields.append(_BYTES_LENGTH.pack(len(data)))
            fields.append(bytes(data))
    body = b"".join(fields)
    return _ENTRY_HEADER.pack(offset, 4 + len(body)) + struct.pack(">I", zlib.crc32(body)) + body


def to_record_batch(
    message_set: bytes | bytearray | memoryview,
    *,
    compression: Compression | None = None,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> bytes:
    """Convert a produced message set to one magic-2 batch (see the module docstring)."""
    messages = list(iter_messages(message_set, max_decompressed_size=max_decompressed_size))
    if not messages:
        raise CorruptRecordError("message set holds no messages")
    if compression is None:
        compression = next(
            (m.compression for m in messages if m.compression != Compression.NONE),
            Compression.NONE,
        )
    records = [
        Record(
            key=m.key,
            value=m.value,
            timestamp=NO_TIMESTAMP if m.timestamp is None else m.timestamp,
        )
        for m in messages
    ]
    return build_batch(records, compression=compression)


# LZ4 frame: magic (4 bytes), FLG, BD, [content size, 8 bytes], [dictionary id, 4 bytes], HC.
_LZ4_CONTENT_SIZE_FLAG = 0x08
_LZ4_DICTIONARY_ID_FLAG = 0x01


def _with_lz4_header_checksum(frame: memoryview, start: int) -> bytes:
    """The frame with its header checksum byte computed over ``frame[start:HC]``.

    ``start=4`` gives the correct checksum (over the descriptor), which cramjam needs to
    read a magic-0 frame; ``start=0`` gives the checksum Kafka 0.8/0.9 computed and expects.
    """
    if len(frame) < 7:
        raise CorruptRecordError("truncated LZ4 frame header")
    flags = frame[4]
    checksum_at = 6
    if flags & _LZ4_CONTENT_SIZE_FLAG:
        checksum_at += 8
    if flags & _LZ4_DICTIONARY_ID_FLAG:
        checksum_at += 4
    if len(frame) <= checksum_at:
        raise CorruptRecordError("truncated LZ4 frame header")
    checksum = (xxhash.xxh32_intdigest(bytes(frame[start:checksum_at])) >> 8) & 0xFF
    return bytes(frame[:checksum_at]) + bytes((checksum,)) + bytes(frame[checksum_at + 1 :])
