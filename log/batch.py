"""What the log adds to protocol.record_batch: where a batch lies in a segment, and the checks of
a batch it stores or steps over (whole, offsets not running backwards, CRC-32C).

Everything after the header (the records, possibly compressed) stays opaque bytes."""

from __future__ import annotations

from typing import NamedTuple

from protocol.record_batch import LOG_OVERHEAD, BatchHeader, CorruptBatchError, parse_header, verify_crc


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


def whole_batch_header(buffer: bytes | bytearray | memoryview, position: int, available: int) -> BatchHeader:
    """The header of the batch at `position`, of which `available` bytes are present, checked to be
    that of a whole batch whose offsets do not run backwards; not the CRC-32C.

    Raises CorruptBatchError (UnsupportedMagicError for another magic)."""
    header = parse_header(buffer, position, available)
    if header.batch_length + LOG_OVERHEAD > available:
        raise CorruptBatchError(f"batchLength {header.batch_length} runs past the {available} bytes present")
    if header.last_offset_delta < 0:
        raise CorruptBatchError(f"lastOffsetDelta {header.last_offset_delta} is negative")
    return header


def verify_batch(batch: memoryview) -> BatchHeader:
    """The header of the one batch `batch` holds, checked whole and matching its CRC-32C."""
    size = len(batch)
    header = whole_batch_header(batch, 0, size)
    if header.batch_length + LOG_OVERHEAD != size:
        raise CorruptBatchError(f"batchLength {header.batch_length} does not match the {size} bytes given")
    verify_crc(batch, header)
    return header


def batch_info(header: BatchHeader, segment_base_offset: int, position: int) -> BatchInfo:
    """The BatchInfo of the batch `header` starts, found at `position` of a segment."""
    # Unpacked at once, not read field by field: reads build one per batch they step over.
    base_offset, batch_length, epoch, _, _, attributes, delta, _, max_timestamp, producer_id, producer_epoch, sequence, count = (
        header
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
