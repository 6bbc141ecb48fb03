"""The record batch format (magic 2): its 61-byte header, attribute bits and CRC-32C. Sans-IO.

The one owner of the layout: ``protocol.records`` builds and walks batches on it, and the log
stores and recovers them with it, importing nothing else of ``protocol`` (as Kafka's storage
uses org.apache.kafka.common.record). Everything after the header stays opaque bytes here.

Layout (big endian)::

    baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
    attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
    producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...

``batchLength`` counts the bytes after itself; the CRC-32C covers attributes (byte 21) to the
end, so the broker rewrites baseOffset and partitionLeaderEpoch without recomputing it.
Attributes: bits 0-2 codec, bit 3 LogAppendTime, bit 4 transactional, bit 5 control batch.

Public API:

- ``BatchHeader``: NamedTuple of the 13 header fields, with ``size``, ``last_offset``,
  ``next_offset``, ``is_compressed``, ``timestamp_type``, ``is_transactional``, ``is_control``
  and ``last_sequence``.
- ``parse_header(buffer, position=0, available=None) -> BatchHeader``: the header of the batch
  at ``position``, of which ``available`` bytes are present (default: the rest of ``buffer``).
  Checks that the magic byte is present and 2, that the header is present and that
  batchLength covers it; neither the CRC nor that the whole batch is present.
- ``verify_crc(buffer, header, position=0)``: the batch at ``position`` matches its CRC-32C.
- ``write_crc(batch, size) -> int``: compute and store the CRC-32C of a batch being written.
- ``set_log_append_time(batch, header, log_append_time) -> BatchHeader``: in a writable
  buffer, set the LogAppendTime bit and maxTimestamp and recompute the CRC (what a broker does
  on append for topics with message.timestamp.type=LogAppendTime); the new header.
- ``CorruptBatchError(CorruptRecordError)``: a batch whose header, length or CRC is unsound
  (CORRUPT_MESSAGE, as Kafka's CorruptRecordException); ``UnsupportedMagicError`` under it
  for another magic (INVALID_RECORD, Kafka's answer to a produce of one).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from crc32c import crc32c

from protocol.errors import CorruptRecordError, ErrorCode

MAGIC = 2
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_HEADER_SIZE = BATCH_HEADER.size  # 61
# baseOffset and batchLength come before the bytes batchLength counts (Kafka: Records.LOG_OVERHEAD).
LOG_OVERHEAD = 12
# baseOffset, at byte 0: the field the log sets on append.
BASE_OFFSET = struct.Struct(">q")
PARTITION_LEADER_EPOCH_POSITION = 12
# Every message format (magic 0, 1 and 2) keeps its magic byte here, so it can be read before the
# rest of the header is trusted.
MAGIC_POSITION = 16
CRC_POSITION = 17
# The CRC-32C covers the attributes field and everything after it.
CRC_START = ATTRIBUTES_POSITION = 21
MAX_TIMESTAMP_POSITION = 35

COMPRESSION_CODEC_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
# KIP-534: the batch's base timestamp is the time after which the log cleaner may remove its
# tombstones or transaction marker.
DELETE_HORIZON_MASK = 0x40

NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1

_INT16 = struct.Struct(">h")
_UINT32 = struct.Struct(">I")
_INT64 = struct.Struct(">q")


class CorruptBatchError(CorruptRecordError):
    """A record batch whose header, length or CRC-32C is not that of a sound magic-2 batch."""


class UnsupportedMagicError(CorruptBatchError):
    """Not a magic-2 batch: a legacy message set, or garbage. Kafka answers a produce of one
    INVALID_RECORD (Produce v3 and later carry only magic 2)."""

    error_code = ErrorCode.INVALID_RECORD

    def __init__(self, magic: int) -> None:
        super().__init__(f"record batch has magic {magic}, only magic {MAGIC} is supported")
        self.magic = magic


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """Where the log end offset stands after appending this batch."""
        return self.last_offset + 1

    @property
    def is_compressed(self) -> bool:
        return bool(self.attributes & COMPRESSION_CODEC_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        if self.attributes & TIMESTAMP_TYPE_MASK:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def delete_horizon_ms(self) -> int | None:
        """When the log cleaner may remove this batch's tombstones or marker; None until it set one."""
        return self.base_timestamp if self.attributes & DELETE_HORIZON_MASK else None

    @property
    def last_sequence(self) -> int:
        """Sequence number of the last record; sequences wrap from 2**31 - 1 to 0 as in Kafka."""
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) % 0x80000000


# tuple.__new__, not BatchHeader._make, which checks a length the struct guarantees: a header is
# parsed per batch appended, produced or recovered.
_new_tuple = tuple.__new__
_unpack_header = BATCH_HEADER.unpack_from
_MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD


def parse_header(
    buffer: bytes | bytearray | memoryview, position: int = 0, available: int | None = None
) -> BatchHeader:
    """The header of the batch at `position`, of which `available` bytes are present (default:
    the rest of `buffer`). The magic byte is checked first: it tells a legacy message set apart
    before anything else of it is trusted."""
    if available is None:
        available = len(buffer) - position
    if available <= MAGIC_POSITION:
        raise CorruptBatchError(f"{available} bytes are too few to hold a record batch")
    magic = buffer[position + MAGIC_POSITION]
    if magic != MAGIC:
        raise UnsupportedMagicError(magic)
    if available < BATCH_HEADER_SIZE:
        raise CorruptBatchError(f"record batch header needs {BATCH_HEADER_SIZE} bytes, {available} present")
    header = _new_tuple(BatchHeader, _unpack_header(buffer, position))
    if header.batch_length < _MIN_BATCH_LENGTH:
        raise CorruptBatchError(f"record batch length {header.batch_length} is below its header")
    return header


def verify_crc(buffer: bytes | bytearray | memoryview, header: BatchHeader, position: int = 0) -> None:
    """Raise CorruptBatchError unless the batch at `position`, wholly in `buffer`, matches its CRC-32C."""
    crc = crc32c(memoryview(buffer)[position + CRC_START : position + LOG_OVERHEAD + header.batch_length])
    if crc != header.crc:
        raise CorruptBatchError(
            f"record batch at offset {header.base_offset} fails its CRC "
            f"(stored {header.crc:#010x}, computed {crc:#010x})"
        )


def write_crc(batch: bytearray | memoryview, size: int) -> int:
    """Store the CRC-32C of the first `size` bytes of `batch` in its header; return it."""
    crc = crc32c(memoryview(batch)[CRC_START:size])
    _UINT32.pack_into(batch, CRC_POSITION, crc)
    return crc


def set_log_append_time(batch: bytearray | memoryview, header: BatchHeader, log_append_time: int) -> BatchHeader:
    """Mark the batch `header` describes LogAppendTime with maxTimestamp `log_append_time` (ms)
    and fix its CRC; the header it has now."""
    attributes = header.attributes | TIMESTAMP_TYPE_MASK
    _INT16.pack_into(batch, ATTRIBUTES_POSITION, attributes)
    _INT64.pack_into(batch, MAX_TIMESTAMP_POSITION, log_append_time)
    crc = write_crc(batch, header.size)
    return header._replace(crc=crc, attributes=attributes, max_timestamp=log_append_time)
