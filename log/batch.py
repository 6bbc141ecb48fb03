"""The part of a record batch (magic 2) the log understands: its 61-byte header and its CRC-32C.

Everything after the header (the records, possibly compressed) stays opaque bytes."""

from __future__ import annotations

import struct
from typing import NamedTuple

import crc32c

from log.errors import (
    CorruptRecordBatchError,
    InvalidBatchLengthError,
    InvalidRecordBatchError,
    UnsupportedMagicError,
)

MAGIC = 2
HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size
BASE_OFFSET = struct.Struct(">q")
# baseOffset and batchLength come before the bytes batchLength counts (Kafka: Records.LOG_OVERHEAD).
LOG_OVERHEAD = 12
# Every message format (magic 0, 1 and 2) keeps its magic byte here, so it can be read before the
# rest of the header is trusted.
MAGIC_POSITION = 16
# The CRC-32C covers the attributes field and everything after it, not baseOffset nor the leader epoch.
CRC_START = 21
NO_TIMESTAMP = -1


class BatchInfo(NamedTuple):
    """A stored batch's header fields and where it lies: what reads step over and what the broker
    rebuilds its state from (producer ids and sequences, leader epochs)."""

    base_offset: int
    last_offset: int
    partition_leader_epoch: int
    attributes: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    segment_base_offset: int
    # Where the batch starts in its segment's .log file, and the bytes it takes there.
    position: int
    size: int


def parse_header(buffer: bytes | bytearray | memoryview, position: int, available: int) -> tuple[int, ...]:
    """The header fields of the batch at `position`, of which `available` bytes are present, in
    their order on the wire (a plain tuple: append and recovery parse one per batch).

    Raises an InvalidRecordBatchError subclass when the header cannot be that of a whole v2 batch.
    """
    if available <= MAGIC_POSITION:
        raise InvalidBatchLengthError(f"{available} bytes are too few for a record batch")
    magic = buffer[position + MAGIC_POSITION]
    if magic != MAGIC:
        raise UnsupportedMagicError(magic)
    if available < HEADER_SIZE:
        raise InvalidBatchLengthError(f"{available} bytes are too few for a record batch header")
    fields = HEADER.unpack_from(buffer, position)
    batch_length = fields[1]
    if batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise InvalidBatchLengthError(f"batchLength {batch_length} is shorter than the header")
    if batch_length + LOG_OVERHEAD > available:
        raise InvalidBatchLengthError(f"batchLength {batch_length} runs past the {available} bytes present")
    if fields[6] < 0:
        raise InvalidRecordBatchError(f"lastOffsetDelta {fields[6]} is negative")
    return fields


def read_batch_info(
    buffer: bytes | bytearray | memoryview, available: int, segment_base_offset: int, position: int
) -> BatchInfo:
    """The BatchInfo of the batch whose header starts `buffer`, found at `position` of a segment."""
    base_offset, batch_length, epoch, _, _, attributes, delta, _, max_timestamp, producer_id, producer_epoch, sequence, count = (
        parse_header(buffer, 0, available)
    )
    return BatchInfo(
        base_offset,
        base_offset + delta,
        epoch,
        attributes,
        max_timestamp,
        producer_id,
        producer_epoch,
        sequence,
        count,
        segment_base_offset,
        position,
        batch_length + LOG_OVERHEAD,
    )


def verify_crc(buffer: memoryview, position: int, batch_length: int, crc: int) -> None:
    """Raise CorruptRecordBatchError unless the batch at `position` matches its CRC-32C."""
    if crc32c.crc32c(buffer[position + CRC_START : position + LOG_OVERHEAD + batch_length]) != crc:
        raise CorruptRecordBatchError("CRC-32C mismatch")
