"""Segmented commit log: one Log per partition directory, storing record batches as produced."""

from log.config import UNLIMITED, LogConfig
from log.errors import (
    CorruptLogError,
    LogClosedError,
    LogConfigError,
    LogError,
    LogStorageError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
)
from log.file_records import FileRecords
from log.batch import BatchInfo
from log.cleaner import CleaningPlan, CleaningResult, LastRecord
from log.log import AppendInfo, Log, SegmentInfo, TimestampOffset, current_time_ms
from log.txn_index import AbortedTxn

__all__ = [
    "AbortedTxn",
    "AppendInfo",
    "BatchInfo",
    "CleaningPlan",
    "CleaningResult",
    "CorruptLogError",
    "FileRecords",
    "LastRecord",
    "Log",
    "LogClosedError",
    "LogConfig",
    "LogConfigError",
    "LogError",
    "LogStorageError",
    "OffsetOutOfRangeError",
    "RecordBatchTooLargeError",
    "SegmentInfo",
    "TimestampOffset",
    "UNLIMITED",
    "current_time_ms",
]
