"""Records of a magic-2 record batch: validate, iterate and build batches. Sans-IO.

The batch header, its attribute bits and its CRC-32C belong to ``protocol.record_batch``, which
this module builds on; import them from there.
A record: zigzag varint length, attributes i8, timestampDelta varlong, offsetDelta varint,
key and value (varint length, -1 = null), then a varint count of headers, each a string key
and a nullable bytes value.

Public API (everything malformed raises ``CorruptRecordError``, a ``ProtocolError``):

- ``validate_batch(batch) -> BatchHeader``: ``batch`` is exactly one whole batch: length,
  codec id, counts and CRC-32C.
- ``iter_batches(record_set, *, allow_truncated_tail=False)`` yields ``(BatchHeader,
  memoryview)`` per batch of concatenated batches, zero-copy, each validated. A partial last
  batch (as in fetch responses) ends the iteration when ``allow_truncated_tail``, else raises.
- ``iter_records(batch, *, max_decompressed_size=...) -> Iterator[Record]``: the records of one
  batch (not CRC-checked again: validate first). The header is read, the records section
  decompressed and walked when called; Records are built lazily while iterating. Offsets and
  timestamps are absolute (under LogAppendTime every record carries the batch's maxTimestamp).
- ``validate_records(header, batch, *, max_decompressed_size=...) -> memoryview``: what Kafka's
  LogValidator checks of a produced batch's records (after the CRC): ``records_count`` records
  with offset deltas 0, 1, 2..., each record's fields inside it, no bytes after the last;
  decompressed first if need be. ``header`` is the batch's, as ``parse_header`` read it. The
  same walk as ``iter_records``, copying nothing out. Returns the records section it walked
  (uncompressed), for ``record_timestamps`` and ``recompress``.
- ``record_timestamps(header, records_section) -> list[int]``: each record's timestamp, as
  ``iter_records`` gives it, from a records section ``validate_records`` returned.
- ``keyless_records(records_section, count) -> list[int]``: the indexes of the records without
  a key, which a compacted topic refuses.
- ``recompress(header, records_section, compression, *, level=None) -> bytearray``: the batch
  ``header`` describes, its records section (uncompressed, as ``validate_records`` returns it)
  compressed with ``compression`` at ``level`` (``compression.compress``): what a broker stores
  when a topic's compression.type differs from the producer's. Every header field is kept but
  the codec bits and batchLength; the CRC is recomputed.
- ``stored_records(header, batch, *, max_decompressed_size=...) -> (records_section,
  [StoredRecord])``: what the log cleaner weighs of each record of a stored batch (offset,
  timestamp, key, whether it has a value) and where its bytes lie, copying nothing.
- ``filtered_batch(header, records_section, kept, *, delete_horizon_ms=None) -> bytearray``: the
  batch holding only the records kept, offsets, producer fields and codec as they were; with a
  delete horizon (KIP-534) in its base timestamp; the header alone when none is kept.
- ``InvalidRecordError(CorruptRecordError)``: records that do not parse as their header says
  (``error_code`` INVALID_RECORD, ``batch_index`` the record at fault, if known); failures of
  the CRC, the header or the counts raise ``CorruptBatchError`` and decompression
  ``CorruptRecordError`` (both CORRUPT_MESSAGE), a batch of another magic
  ``UnsupportedMagicError`` (INVALID_RECORD).
- ``Record``: NamedTuple (key, value, headers, timestamp, offset); ``headers`` is a tuple of
  ``(str, bytes | None)``. Header keys are decoded as UTF-8 with surrogateescape, so any bytes
  survive a decode/build round trip.
- ``build_batch(records, *, base_offset=0, compression=Compression.NONE, producer_id=-1,
  producer_epoch=-1, base_sequence=-1, partition_leader_epoch=-1, transactional=False,
  control=False, log_append_time=None, base_timestamp=NO_TIMESTAMP) -> bytes``: one batch. A
  record's ``offset`` (if set) places it at that absolute offset (increasing), else it follows
  the previous one; a record without timestamp gets ``base_timestamp`` (no clock is read here:
  callers pass theirs). ``log_append_time`` (ms) sets the LogAppendTime bit and maxTimestamp.
  Bad arguments raise ValueError.
- ``ControlType``: the type of a control record (Kafka's ControlRecordType), ABORT or COMMIT.
- ``build_control_batch(control_type, *, producer_id, producer_epoch, coordinator_epoch,
  timestamp, base_offset=0) -> bytes``: the transaction marker a coordinator writes to each
  partition of a transaction it ends: one control record, its key (int16 version 0, int16
  type) and value (Kafka's EndTransactionMarker: int16 version 0, int32 coordinator epoch), in
  a transactional control batch without sequence.
- ``end_txn_marker(batch) -> EndTxnMarker``: the (control_type, coordinator_epoch) of one whole
  control batch, from its first record (not CRC-checked again); a batch that is not a readable
  transaction marker raises ``CorruptRecordError``. ``control_type(batch)`` is its type alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from enum import IntEnum
from typing import NamedTuple

from protocol.compression import (
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    Compression,
    compress,
    compression_of,
    decompress,
)
from protocol.errors import CorruptRecordError, ErrorCode
from protocol.record_batch import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    COMPRESSION_CODEC_MASK,
    CONTROL_MASK,
    DELETE_HORIZON_MASK,
    LOG_OVERHEAD,
    MAGIC,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    NO_TIMESTAMP,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    CorruptBatchError,
    parse_header,
    verify_crc,
    write_crc,
)


class InvalidRecordError(CorruptRecordError):
    """Records that do not parse as their CRC-valid batch header describes: Kafka's
    InvalidRecordException, answered INVALID_RECORD; ``batch_index`` is the record at fault."""

    error_code = ErrorCode.INVALID_RECORD

    def __init__(self, message: str, batch_index: int | None = None) -> None:
        super().__init__(message)
        self.batch_index = batch_index


class Record(NamedTuple):
    key: bytes | None = None
    value: bytes | None = None
    headers: Sequence[tuple[str, bytes | None]] = ()
    timestamp: int | None = None
    offset: int | None = None


def validate_batch(batch: bytes | bytearray | memoryview) -> BatchHeader:
    """Check that ``batch`` is exactly one sound record batch; return its header."""
    header = parse_header(batch)
    _check_whole(header, batch)
    _check_batch(header, batch)
    return header


def iter_batches(
    record_set: bytes | bytearray | memoryview, *, allow_truncated_tail: bool = False
) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Split concatenated batches into validated (header, memoryview slice) pairs."""
    view = memoryview(record_set)
    pos = 0
    end = len(view)
    while pos < end:
        remaining = end - pos
        if remaining < BATCH_HEADER_SIZE:
            if allow_truncated_tail:
                return
            raise CorruptBatchError(f"{remaining} trailing bytes are not a record batch")
        header = parse_header(view, pos)
        if header.size > remaining:
            if allow_truncated_tail:
                return
            raise CorruptBatchError(f"record batch length says {header.size} bytes, {remaining} present")
        batch = view[pos : pos + header.size]
        _check_batch(header, batch)
        yield header, batch
        pos += header.size


def _check_whole(header: BatchHeader, batch: bytes | bytearray | memoryview) -> None:
    if header.size != len(batch):
        raise CorruptBatchError(f"record batch length says {header.size} bytes, {len(batch)} present")


def _check_batch(header: BatchHeader, batch: bytes | bytearray | memoryview) -> None:
    compression_of(header.attributes)  # raises for an unknown codec id
    if header.records_count < 0 or header.last_offset_delta < 0:
        raise CorruptBatchError(
            f"record batch counts {header.records_count} records, "
            f"last offset delta {header.last_offset_delta}"
        )
    verify_crc(batch, header)


def iter_records(
    batch: bytes | bytearray | memoryview,
    *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> Iterator[Record]:
    """Decompress and walk the records of one batch now; build Records while iterating."""
    header = parse_header(batch)
    body = _records_section(header, batch, max_decompressed_size)
    fields: list = []
    _walk_records(body, header.records_count, fields)
    return _decode_records(header, body, fields)


def validate_records(
    header: BatchHeader,
    batch: bytes | bytearray | memoryview,
    *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> memoryview:
    """Check, as Kafka's LogValidator does on produce, that the records of one batch parse:
    ``records_count`` records with offset deltas 0, 1, 2..., each field inside its record,
    nothing after the last. Nothing is copied out. Not the CRC: verify it first. Returns the
    records section, decompressed if it was compressed."""
    body = _records_section(header, batch, max_decompressed_size)
    _walk_records(body, header.records_count, None)
    return body


def record_timestamps(header: BatchHeader, records_section: memoryview) -> list[int]:
    """The timestamp of each record of the batch `header` describes, its records section
    uncompressed (as validate_records returns it)."""
    if header.attributes & TIMESTAMP_TYPE_MASK:
        return [header.max_timestamp] * header.records_count
    fields: list = []
    _walk_records(records_section, header.records_count, fields)
    base_timestamp = header.base_timestamp
    return [base_timestamp + timestamp_delta for timestamp_delta, *_ in fields]


def keyless_records(records_section: memoryview, count: int) -> list[int]:
    """The indexes of the records without a key (null) of a records section holding `count`
    records, uncompressed (as validate_records returns it)."""
    fields: list = []
    _walk_records(records_section, count, fields)
    return [index for index, record in enumerate(fields) if record[3] < 0]


def recompress(
    header: BatchHeader, records_section: bytes | bytearray | memoryview, compression: Compression, *,
    level: int | None = None,
) -> bytearray:
    """The batch `header` describes over `records_section` (its records, uncompressed) compressed with
    `compression` at `level`; its other header fields kept, its CRC recomputed."""
    body = compress(compression, records_section, level) if compression != Compression.NONE else records_section
    return _batch_of(body, header.base_offset, header.partition_leader_epoch,
                     (header.attributes & ~COMPRESSION_CODEC_MASK) | compression, header.last_offset_delta,
                     header.base_timestamp, header.max_timestamp, header.producer_id, header.producer_epoch,
                     header.base_sequence, header.records_count)


def _batch_of(body, base_offset: int, partition_leader_epoch: int, attributes: int, last_offset_delta: int,
              base_timestamp: int, max_timestamp: int, producer_id: int, producer_epoch: int, base_sequence: int,
              records_count: int) -> bytearray:
    """The magic-2 batch of these header fields over `body` (its records section, compressed as
    `attributes` say), with its length and CRC."""
    batch = bytearray(BATCH_HEADER_SIZE)
    BATCH_HEADER.pack_into(batch, 0, base_offset, BATCH_HEADER_SIZE + len(body) - LOG_OVERHEAD,
                           partition_leader_epoch, MAGIC, 0,  # crc, computed below over the finished bytes
                           attributes, last_offset_delta, base_timestamp, max_timestamp, producer_id,
                           producer_epoch, base_sequence, records_count)
    batch += body
    write_crc(batch, len(batch))
    return batch


class StoredRecord(NamedTuple):
    """A record of a stored batch as the log cleaner weighs it: its offset, timestamp and key (a
    slice of the records section, None for null), whether it has a value (else it is a tombstone),
    and where its bytes lie in the records section."""

    offset: int
    timestamp: int
    key: memoryview | None
    has_value: bool
    start: int
    # Where its timestamp delta ends and its end.
    timestamp_end: int
    end: int


def stored_records(
    header: BatchHeader, batch: bytes | bytearray | memoryview, *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> tuple[memoryview, list[StoredRecord]]:
    """The records section of one whole batch (decompressed) and its records, copying nothing."""
    body = _records_section(header, batch, max_decompressed_size)
    fields: list = []
    _walk_records(body, header.records_count, fields)
    base_offset, base_timestamp = header.base_offset, header.base_timestamp
    log_append_time = header.attributes & TIMESTAMP_TYPE_MASK
    return body, [
        StoredRecord(base_offset + offset_delta,
                     header.max_timestamp if log_append_time else base_timestamp + timestamp_delta,
                     None if key_length < 0 else body[key_start : key_start + key_length],
                     value_length >= 0, start, timestamp_end, end)
        for timestamp_delta, offset_delta, key_start, key_length, _, value_length, _, start, timestamp_end, end in fields
    ]


def filtered_batch(
    header: BatchHeader, records_section: memoryview, kept: Sequence[StoredRecord], *,
    delete_horizon_ms: int | None = None,
) -> bytearray:
    """The batch `header` describes holding only the `kept` records of its `records_section` (as
    stored_records gave them, in order), compressed as it was: its offsets, last offset delta,
    producer fields and sequence kept, as Kafka's cleaner keeps them for the producer state. With
    `delete_horizon_ms` that becomes its base timestamp (KIP-534; the records' timestamp deltas
    are rewritten to keep their timestamps), else the base timestamp stays and the records are
    copied as they are. None kept: the header alone, without records (Kafka's empty batch)."""
    attributes, base_timestamp = header.attributes, header.base_timestamp
    if not kept:
        return _batch_of(b"", header.base_offset, header.partition_leader_epoch,
                         attributes & (TIMESTAMP_TYPE_MASK | TRANSACTIONAL_MASK | CONTROL_MASK),
                         header.last_offset_delta, header.max_timestamp, header.max_timestamp,
                         header.producer_id, header.producer_epoch, header.base_sequence, 0)
    if delete_horizon_ms is None:
        body = bytearray().join([records_section[r.start : r.end] for r in kept])
    else:
        attributes |= DELETE_HORIZON_MASK
        base_timestamp = delete_horizon_ms
        body, record_bytes = bytearray(), bytearray()
        for record in kept:
            record_bytes.clear()
            record_bytes.append(0)  # record attributes
            _append_varint(record_bytes, record.timestamp - base_timestamp)
            record_bytes += records_section[record.timestamp_end : record.end]
            _append_varint(body, len(record_bytes))
            body += record_bytes
    if attributes & TIMESTAMP_TYPE_MASK:
        max_timestamp = header.max_timestamp
    else:
        max_timestamp = max(record.timestamp for record in kept)
    codec = compression_of(attributes)
    if codec != Compression.NONE:
        body = compress(codec, body)
    return _batch_of(body, header.base_offset, header.partition_leader_epoch, attributes, header.last_offset_delta,
                     base_timestamp, max_timestamp, header.producer_id, header.producer_epoch,
                     header.base_sequence, len(kept))


def _records_section(header: BatchHeader, batch, max_decompressed_size: int) -> memoryview:
    """The records of the batch `header` describes, decompressed if need be."""
    _check_whole(header, batch)
    body = memoryview(batch)[BATCH_HEADER_SIZE:]
    if header.is_compressed:
        body = decompress(compression_of(header.attributes), body, max_decompressed_size)
    return body


def _walk_records(body: memoryview, count: int, fields: list | None) -> None:
    """Walk ``count`` records that must fill ``body`` exactly, without copying anything.

    With ``fields`` None this is the produce-time validation: the offset deltas must count
    0, 1, 2... With a list, each record's ``(timestamp delta, offset delta, key start, key
    length, value start, value length, headers, record start, timestamp end, record end)`` is
    appended instead (lengths -1 for null, headers a tuple of ``(key start, key length, value
    start, value length)``; the record's bytes, length prefix included, span record start to
    record end, its timestamp delta ends at timestamp end), and deltas may leave gaps, as stored
    batches of compacted logs do.

    The hot loop of the produce path: varints of one byte (or two, for record and value
    lengths of about 1 KiB) are decoded inline, and fields are only checked against the
    record's end once it is reached, as Kafka's DefaultRecord does.
    """
    decode = fields is not None
    end = len(body)
    pos = record_end = 0
    index = -1
    try:
        for index in range(count):
            record_start = pos
            raw = body[pos]
            if raw < 0x80:
                pos += 1
            elif (second := body[pos + 1]) < 0x80:
                raw = (raw & 0x7F) | (second << 7)
                pos += 2
            else:
                raw, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
            record_end = pos + (raw >> 1)
            if raw & 1 or record_end > end:
                raise InvalidRecordError(
                    f"Invalid record size: expected {_zigzag(raw)} bytes in record payload, but "
                    f"instead the buffer has only {end - pos} remaining bytes", index)
            timestamp_delta = body[pos + 1]  # pos: the attributes byte, unused by every version
            if timestamp_delta < 0x80:
                pos += 2
            else:
                timestamp_delta, pos = _read_raw_varint(body, pos + 1, _VARLONG_BYTES)
            timestamp_end = pos
            offset_delta = body[pos]
            if offset_delta < 0x80:
                pos += 1
            elif (second := body[pos + 1]) < 0x80:
                offset_delta = (offset_delta & 0x7F) | (second << 7)
                pos += 2
            else:
                offset_delta, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
            key_length = body[pos]
            if key_length < 0x80:
                pos += 1
            else:
                key_length, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
            key_start = pos
            if not key_length & 1:  # odd: null (-1) or an invalid negative length
                pos += key_length >> 1
            value_length = body[pos]
            if value_length < 0x80:
                pos += 1
            elif (second := body[pos + 1]) < 0x80:
                value_length = (value_length & 0x7F) | (second << 7)
                pos += 2
            else:
                value_length, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
            value_start = pos
            if not value_length & 1:
                pos += value_length >> 1
            if key_length & 1 and key_length != 1 or value_length & 1 and value_length != 1:
                raise InvalidRecordError(
                    f"Found invalid record structure: key length {_zigzag(key_length)}, value length "
                    f"{_zigzag(value_length)}", index)
            if pos + 1 != record_end or body[pos]:  # not just "no headers", then the end
                headers, pos = _walk_headers(body, pos, record_end, decode, index)
                if pos != record_end:
                    raise InvalidRecordError(
                        f"Invalid record size: expected to read {raw >> 1} bytes in record payload, "
                        f"but instead read {pos - record_end + (raw >> 1)}", index)
            else:
                headers, pos = (), record_end
            if decode:  # the zigzag decoding inlined: this runs for every record a cleaner pass reads
                fields.append(((timestamp_delta >> 1) ^ -(timestamp_delta & 1), (offset_delta >> 1) ^ -(offset_delta & 1),
                               key_start, (key_length >> 1) ^ -(key_length & 1), value_start,
                               (value_length >> 1) ^ -(value_length & 1), headers, record_start, timestamp_end,
                               record_end))
            elif offset_delta != index << 1:
                raise InvalidRecordError(
                    f"record {index} has offset delta {_zigzag(offset_delta)}, not {index}", index)
    except IndexError:
        if pos == record_end:  # at a record's start: the batch holds fewer records than declared
            raise InvalidRecordError(
                f"Incorrect declared batch size, premature EOF reached: {count} records declared, "
                f"{index} present") from None
        raise InvalidRecordError(
            f"Found invalid record structure: record {index} runs past the batch", index) from None
    if pos != end:
        raise InvalidRecordError(
            f"Incorrect declared batch size, records still remaining in file: {end - pos} bytes "
            f"after the {count} records declared")


def _walk_headers(
    body: memoryview, pos: int, record_end: int, keep: bool, index: int
) -> tuple[tuple, int]:
    """The headers at ``pos``: their spans (if ``keep``) and the position after them."""
    count, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
    count = _zigzag(count)
    if count < 0 or count > record_end - pos:
        raise InvalidRecordError(f"Found invalid number of record headers {count}", index)
    spans = []
    for _ in range(count):
        key_length, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
        key_length = _zigzag(key_length)
        if key_length < 0:
            raise InvalidRecordError(f"Invalid negative header key size {key_length}", index)
        key_start = pos
        pos += key_length
        value_length, pos = _read_raw_varint(body, pos, _VARINT_BYTES)
        value_length = _zigzag(value_length)
        if value_length < -1:
            raise InvalidRecordError(f"Invalid header value size {value_length}", index)
        value_start = pos
        if value_length > 0:
            pos += value_length
        if pos > record_end:
            raise InvalidRecordError("Found invalid record structure: a header runs past its "
                                     "record", index)
        if keep:
            spans.append((key_start, key_length, value_start, value_length))
    return tuple(spans), pos


def _decode_records(header: BatchHeader, body: memoryview, fields: list) -> Iterator[Record]:
    def nullable(start: int, length: int) -> bytes | None:
        return None if length < 0 else bytes(body[start : start + length])

    log_append_time = header.attributes & TIMESTAMP_TYPE_MASK
    for timestamp_delta, offset_delta, key_start, key_length, value_start, value_length, headers, *_ in fields:
        yield Record(
            nullable(key_start, key_length),
            nullable(value_start, value_length),
            tuple((bytes(body[name_start : name_start + name_length]).decode("utf-8", "surrogateescape"),
                   nullable(data_start, data_length))
                  for name_start, name_length, data_start, data_length in headers),
            header.max_timestamp if log_append_time else header.base_timestamp + timestamp_delta,
            header.base_offset + offset_delta,
        )


_VARINT_BYTES = 5
_VARLONG_BYTES = 10


def _zigzag(raw: int) -> int:
    return (raw >> 1) ^ -(raw & 1)


def _read_raw_varint(buf: memoryview, pos: int, max_bytes: int) -> tuple[int, int]:
    """The unsigned (still zigzag-encoded) varint at ``pos`` and the position after it; past
    the end of ``buf`` raises IndexError, which the record walk reports."""
    raw = 0
    for shift in range(0, 7 * max_bytes, 7):
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return raw, pos
    raise InvalidRecordError(f"Found invalid record structure: varint longer than {max_bytes} bytes")


def _append_varint(out: bytearray, value: int) -> None:
    """Append ``value`` as a zigzag varint."""
    raw = (value << 1) if value >= 0 else ((-value) << 1) - 1
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)


def _append_nullable_bytes(out: bytearray, data: bytes | bytearray | memoryview | None) -> None:
    if data is None:
        _append_varint(out, -1)
        return
    _append_varint(out, len(data))
    out += data


def build_batch(
    records: Iterable[Record],
    *,
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    transactional: bool = False,
    control: bool = False,
    log_append_time: int | None = None,
    base_timestamp: int = NO_TIMESTAMP,
) -> bytes:
    """Encode ``records`` as one record batch (see the module docstring)."""
    body = bytearray()
    record_bytes = bytearray()
    first_timestamp = max_timestamp = None
    offset_delta = -1
    count = 0
    for record in records:
        timestamp = base_timestamp if record.timestamp is None else record.timestamp
        if first_timestamp is None:
            first_timestamp = max_timestamp = timestamp
        max_timestamp = max(max_timestamp, timestamp)
        if record.offset is None:
            offset_delta += 1
        elif record.offset - base_offset > offset_delta:
            offset_delta = record.offset - base_offset
        else:
            raise ValueError(f"record offset {record.offset} does not follow the previous one")
        record_bytes.clear()
        record_bytes.append(0)  # record attributes
        _append_varint(record_bytes, timestamp - first_timestamp)
        _append_varint(record_bytes, offset_delta)
        _append_nullable_bytes(record_bytes, record.key)
        _append_nullable_bytes(record_bytes, record.value)
        _append_varint(record_bytes, len(record.headers))
        for header_key, header_value in record.headers:
            _append_nullable_bytes(record_bytes, header_key.encode("utf-8", "surrogateescape"))
            _append_nullable_bytes(record_bytes, header_value)
        _append_varint(body, len(record_bytes))
        body += record_bytes
        count += 1
    if count == 0:
        raise ValueError("a record batch holds at least one record")
    if compression != Compression.NONE:
        body = compress(compression, body)
    attributes = int(compression)
    if log_append_time is not None:
        attributes |= TIMESTAMP_TYPE_MASK
        max_timestamp = log_append_time
    if transactional:
        attributes |= TRANSACTIONAL_MASK
    if control:
        attributes |= CONTROL_MASK
    return bytes(_batch_of(body, base_offset, partition_leader_epoch, attributes, offset_delta, first_timestamp,
                           max_timestamp, producer_id, producer_epoch, base_sequence, count))


class ControlType(IntEnum):
    """The type in a control record's key. Kafka's other types are KRaft's own, never in a
    partition's log."""

    ABORT = 0
    COMMIT = 1


# Version 0, the only one, of a control record's key (version, type) and of an end-transaction
# marker's value (version, coordinator epoch).
_CONTROL_KEY = struct.Struct(">hh")
_END_TXN_MARKER = struct.Struct(">hi")


def build_control_batch(
    control_type: ControlType,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
) -> bytes:
    """The marker that ends ``producer_id``'s transaction in a partition (see the module docstring)."""
    marker = Record(_CONTROL_KEY.pack(0, ControlType(control_type)), _END_TXN_MARKER.pack(0, coordinator_epoch),
                    timestamp=timestamp)
    return build_batch([marker], base_offset=base_offset, producer_id=producer_id, producer_epoch=producer_epoch,
                       transactional=True, control=True)


class EndTxnMarker(NamedTuple):
    control_type: ControlType
    coordinator_epoch: int


def end_txn_marker(batch: bytes | bytearray | memoryview) -> EndTxnMarker:
    """The marker in the control batch ``batch``, read from its first record. Versions above 0
    of the key and the value are read as version 0, as Kafka does: newer versions only append."""
    if not parse_header(batch).is_control:
        raise CorruptRecordError("not a control batch")
    record = next(iter_records(batch), None)
    if record is None:
        raise CorruptRecordError("control batch without records")
    type_id = _versioned(_CONTROL_KEY, record.key, "control record key")
    try:
        marker_type = ControlType(type_id)
    except ValueError:
        raise CorruptRecordError(f"unknown control record type {type_id}") from None
    return EndTxnMarker(marker_type, _versioned(_END_TXN_MARKER, record.value, "transaction marker value"))


def control_type(batch: bytes | bytearray | memoryview) -> ControlType:
    """The type of the control batch ``batch`` (see ``end_txn_marker``)."""
    return end_txn_marker(batch).control_type


def _versioned(layout: struct.Struct, data: bytes | None, what: str) -> int:
    """The field after the int16 version of the version-prefixed ``layout`` that ``data`` starts with."""
    if data is None or len(data) < layout.size:
        raise CorruptRecordError(f"{what} of {'null' if data is None else len(data)} bytes, "
                                 f"at least {layout.size} expected")
    version, value = layout.unpack_from(data)
    if version < 0:
        raise CorruptRecordError(f"{what} version {version}")
    return value
