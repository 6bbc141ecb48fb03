"""Per-log settings, named and defaulted after Kafka's topic configs (segment.bytes -> segment_bytes).

Each setting's default and valid range are declared once, on its field; ``SETTINGS`` lists them
by name, for the broker's topic configs that set the log to take theirs from. A setting's type is
its default's (int, float or bool): a true/false one has the range [False, True], so that every
entry reads as (default, low, high).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from log.errors import LogConfigError

# Kafka spells "no limit" for flush.messages and flush.ms as Long.MAX_VALUE.
UNLIMITED = (1 << 63) - 1
_WEEK_MS = 7 * 24 * 60 * 60 * 1000
# Positions in the offset index are 4-byte fields, so a segment cannot outgrow a signed 32-bit int.
_MAX_SEGMENT_BYTES = (1 << 31) - 1


class Setting(NamedTuple):
    default: int | float
    low: int | float
    high: int | float


def _setting(default: int | float, low: int | float, high: int | float):
    return dataclasses.field(default=default, metadata={"setting": Setting(default, low, high)})


def _switch(default: bool):
    return _setting(default, False, True)


@dataclasses.dataclass(frozen=True)
class LogConfig:
    # At least Kafka's 14 bytes: room for the smallest (v0) message.
    segment_bytes: int = _setting(1 << 30, 14, _MAX_SEGMENT_BYTES)
    segment_ms: int = _setting(_WEEK_MS, 1, UNLIMITED)
    segment_jitter_ms: int = _setting(0, 0, UNLIMITED)
    # Room for at least one time index entry (12 bytes), the larger of the two entry kinds.
    segment_index_bytes: int = _setting(10 * 1024 * 1024, 12, _MAX_SEGMENT_BYTES)
    index_interval_bytes: int = _setting(4096, 0, _MAX_SEGMENT_BYTES)
    retention_bytes: int = _setting(-1, -1, UNLIMITED)
    retention_ms: int = _setting(_WEEK_MS, -1, UNLIMITED)
    flush_messages: int = _setting(UNLIMITED, 1, UNLIMITED)
    flush_ms: int = _setting(UNLIMITED, 0, UNLIMITED)
    max_message_bytes: int = _setting(1024 * 1024 + 12, 0, _MAX_SEGMENT_BYTES)
    file_delete_delay_ms: int = _setting(60_000, 0, UNLIMITED)
    # Create each new segment's file at segment_bytes, cut to its batches when it is sealed.
    preallocate: bool = _switch(False)
    # Compaction (cleanup.policy includes compact): the cleaner keeps the latest record per key.
    compact: bool = _switch(False)
    delete_retention_ms: int = _setting(24 * 60 * 60 * 1000, 0, UNLIMITED)
    min_compaction_lag_ms: int = _setting(0, 0, UNLIMITED)
    max_compaction_lag_ms: int = _setting(UNLIMITED, 1, UNLIMITED)
    min_cleanable_dirty_ratio: float = _setting(0.5, 0.0, 1.0)

    def __post_init__(self) -> None:
        for name, (default, low, high) in SETTINGS.items():
            value = getattr(self, name)
            # An exact type: True is no integer setting's 1, nor 1 a switch's True.
            if type(value) is not type(default) or not low <= value <= high:
                kind = {bool: "a bool", int: "an integer", float: "a float"}[type(default)]
                expected = kind if type(default) is bool else f"{kind} in [{low}, {high}]"
                raise LogConfigError(f"{name} must be {expected}, got {value!r}")


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(LogConfig)}
