"""Idempotent-producer state of one partition: epochs and the sequence numbers of recent batches.

Follows Kafka's ProducerStateManager: a batch from a known producer and epoch must continue its
sequence; one that repeats any of the last five batches exactly is a duplicate (a retry), answered
with the offsets it was first written at and not appended again.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path

from protocol.errors import ErrorCode

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
# How many batches per producer Kafka remembers for de-duplication; clients keep at most this many
# requests in flight with idempotence on.
BATCHES_REMEMBERED = 5
_INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class BatchMetadata:
    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int
    timestamp: int


@dataclasses.dataclass
class ProducerEntry:
    epoch: int
    batches: collections.deque = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=BATCHES_REMEMBERED))

    @property
    def last_sequence(self) -> int | None:
        return self.batches[-1].last_sequence if self.batches else None


class SequenceCheck:
    """Outcome of checking a batch against producer state: append, duplicate, or an error."""

    __slots__ = ("error", "duplicate")

    def __init__(self, error: ErrorCode = ErrorCode.NONE, duplicate: BatchMetadata | None = None) -> None:
        self.error = error
        self.duplicate = duplicate


APPEND = SequenceCheck()


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == _INT32_MAX)


def _last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    # Sequence numbers wrap at INT32_MAX, as Kafka's DefaultRecordBatch.incrementSequence does.
    return (base_sequence + last_offset_delta) % (_INT32_MAX + 1)


class ProducerStateTable:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, producer_id: int, epoch: int, base_sequence: int, last_offset_delta: int) -> SequenceCheck:
        """Validate a batch before it is appended (Kafka's analyzeAndValidateProducerState)."""
        if producer_id == NO_PRODUCER_ID:
            return APPEND
        entry = self.producers.get(producer_id)
        if entry is None:
            # Unknown producer (new, or its state is gone with retention): accept any sequence.
            return APPEND
        if epoch < entry.epoch:
            return SequenceCheck(ErrorCode.INVALID_PRODUCER_EPOCH)
        if epoch > entry.epoch:
            if base_sequence != 0:
                return SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return APPEND
        last_sequence = _last_sequence(base_sequence, last_offset_delta)
        for batch in entry.batches:
            if batch.first_sequence == base_sequence and batch.last_sequence == last_sequence:
                return SequenceCheck(duplicate=batch)
        if entry.last_sequence is not None and not _in_sequence(entry.last_sequence, base_sequence):
            return SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        return APPEND

    def record(self, producer_id: int, epoch: int, base_sequence: int, base_offset: int,
               last_offset: int, timestamp: int) -> None:
        """Remember an appended batch (also used when replaying the log)."""
        if producer_id == NO_PRODUCER_ID:
            return
        entry = self.producers.get(producer_id)
        if entry is None or epoch != entry.epoch:
            entry = self.producers[producer_id] = ProducerEntry(epoch)
        entry.batches.append(BatchMetadata(
            base_sequence, _last_sequence(base_sequence, last_offset - base_offset),
            base_offset, last_offset, timestamp))

    # Snapshots let a restart skip replaying the whole log (Kafka's .snapshot files).

    def snapshot(self, log_end_offset: int) -> str:
        """The table as snapshot text; taken where the table changes (the event loop), so that
        writing it can go to a worker thread."""
        return json.dumps({
            "log_end_offset": log_end_offset,
            "producers": {str(pid): {"epoch": e.epoch, "batches": [dataclasses.astuple(b) for b in e.batches]}
                          for pid, e in self.producers.items()},
        })

    @classmethod
    def read_snapshot(cls, path: Path) -> tuple[ProducerStateTable, int] | None:
        """The table and the log end offset it was taken at, or None if absent or unreadable."""
        try:
            state = json.loads(path.read_text())
            table = cls()
            for pid, value in state["producers"].items():
                entry = table.producers[int(pid)] = ProducerEntry(int(value["epoch"]))
                entry.batches.extend(BatchMetadata(*map(int, b)) for b in value["batches"])
            return table, int(state["log_end_offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def write_snapshot_text(path: Path, text: str) -> None:
    """Replace the snapshot at `path`. Not fsynced: a snapshot lost in a crash (or one ahead of
    the recovered log) only makes the next start replay more of the log."""
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
