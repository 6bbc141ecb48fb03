"""Record batches built by a real encoder (kafka-python's DefaultRecordBatchBuilder) and other
shared helpers for the log tests."""

from __future__ import annotations

import os
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from log import Log, LogConfig


def build_batch(
    records: int = 1,
    *,
    timestamp: int = 1_000,
    value_size: int = 10,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    compression_type: int = 0,
) -> bytes:
    """A magic 2 batch of `records` records with timestamps timestamp, timestamp+1, ..."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression_type,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        batch_size=1 << 30,
    )
    for number in range(records):
        builder.append(number, timestamp=timestamp + number, key=None, value=b"v" * value_size, headers=[])
    return bytes(builder.build())


def decode(stored: bytes) -> DefaultRecordBatch:
    """kafka-python's view of a stored batch; asserts its CRC still holds."""
    batch = DefaultRecordBatch(stored)
    assert batch.validate_crc()
    return batch


def same_batch_at(stored: bytes, produced: bytes, base_offset: int) -> bool:
    """Whether `stored` is `produced` with only its baseOffset field set to `base_offset`."""
    return stored[8:] == produced[8:] and int.from_bytes(stored[:8], "big", signed=True) == base_offset


class Clock:
    """A settable clock in milliseconds, for segment_ms, retention_ms and flush_ms."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def open_log(directory: Path, clock: Clock | None = None, **config: int) -> Log:
    return Log(directory, LogConfig(**config), clock=clock or Clock())


def segment_files(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob(f"*{suffix}"))


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))
