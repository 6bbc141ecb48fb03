"""Per-log settings, named and defaulted after Kafka's topic configs (segment.bytes -> segment_bytes)."""

from __future__ import annotations

import dataclasses

from log.errors import LogConfigError

# Kafka spells "no limit" for flush.messages and flush.ms as Long.MAX_VALUE.
UNLIMITED = (1 << 63) - 1
_WEEK_MS = 7 * 24 * 60 * 60 * 1000
# Positions in the offset index are 4-byte fields, so a segment cannot outgrow a signed 32-bit int.
_MAX_SEGMENT_BYTES = (1 << 31) - 1


@dataclasses.dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 1 << 30
    segment_ms: int = _WEEK_MS
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_bytes: int = -1
    retention_ms: int = _WEEK_MS
    flush_messages: int = UNLIMITED
    flush_ms: int = UNLIMITED
    max_message_bytes: int = 1024 * 1024 + 12

    def __post_init__(self) -> None:
        _require(self.segment_bytes, "segment_bytes", 1, _MAX_SEGMENT_BYTES)
        _require(self.segment_ms, "segment_ms", 1, UNLIMITED)
        # Room for at least one time index entry (12 bytes), the larger of the two entry kinds.
        _require(self.segment_index_bytes, "segment_index_bytes", 12, _MAX_SEGMENT_BYTES)
        _require(self.index_interval_bytes, "index_interval_bytes", 0, _MAX_SEGMENT_BYTES)
        _require(self.retention_bytes, "retention_bytes", -1, UNLIMITED)
        _require(self.retention_ms, "retention_ms", -1, UNLIMITED)
        _require(self.flush_messages, "flush_messages", 1, UNLIMITED)
        _require(self.flush_ms, "flush_ms", 0, UNLIMITED)
        _require(self.max_message_bytes, "max_message_bytes", 0, _MAX_SEGMENT_BYTES)


def _require(value: int, name: str, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise LogConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
