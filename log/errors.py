"""Every exception the log package raises but one, all derived from LogError: a malformed record
batch raises protocol.record_batch's CorruptBatchError, the format's own error."""

from __future__ import annotations

import os


class LogError(Exception):
    """Base of everything the log package raises."""


class LogConfigError(LogError, ValueError):
    """A LogConfig setting is outside its allowed range."""


class RecordBatchTooLargeError(LogError):
    """The batch is larger than max_message_bytes or than a whole segment (Kafka: MESSAGE_TOO_LARGE)."""


class OffsetOutOfRangeError(LogError):
    """The offset is below the log start offset or beyond the log end offset (Kafka: OFFSET_OUT_OF_RANGE)."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class CorruptLogError(LogError):
    """A file of the log directory holds something the log cannot make sense of (Kafka: CORRUPT_MESSAGE).

    `path` names the file and `position` the byte in it where the problem starts. For damaged
    record batches, `offset` is the first offset that cannot be read and `resume_offset` the first
    one after the damage from which reading can go on."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        position: int,
        reason: str,
        *,
        offset: int | None = None,
        resume_offset: int | None = None,
    ) -> None:
        at = f" (offset {offset})" if offset is not None else ""
        super().__init__(f"{os.fspath(path)} at byte {position}{at}: {reason}")
        self.path = os.fspath(path)
        self.position = position
        self.reason = reason
        self.offset = offset
        self.resume_offset = resume_offset


class LogStorageError(LogError):
    """The operating system refused a file operation (Kafka: KAFKA_STORAGE_ERROR)."""

    def __init__(self, path: str | os.PathLike[str], cause: OSError | str) -> None:
        super().__init__(f"{os.fspath(path)}: {cause}")
        self.path = os.fspath(path)


class LogClosedError(LogError):
    """The log was closed; it cannot be used any more."""
