"""Producer state of one partition: idempotent producers' epochs and the sequence numbers of their
recent batches, and transactional producers' ongoing transactions.

Follows Kafka's ProducerStateManager and ProducerAppendInfo: a batch from a known producer and
epoch must continue its sequence; one that repeats any of the last five batches exactly is a
duplicate (a retry), answered with the offsets it was first written at and not appended again. A
producer's first transactional batch here starts its transaction, which its COMMIT or ABORT marker
ends; the oldest ongoing transaction's first offset is the partition's first unstable offset, which
read_committed consumers do not read past.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path

from log import AbortedTxn, LastRecord
from protocol.errors import ErrorCode
from protocol.record_batch import NO_TIMESTAMP

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_COORDINATOR_EPOCH = -1
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
    # From the producer's last marker here: a marker from an older coordinator is fenced.
    coordinator_epoch: int = NO_COORDINATOR_EPOCH
    # Of its last batch or marker (DescribeProducers reports it).
    last_timestamp: int = NO_TIMESTAMP
    # The first offset of its ongoing transaction here; None when it has none.
    current_txn_first_offset: int | None = None

    @property
    def last_sequence(self) -> int | None:
        return self.batches[-1].last_sequence if self.batches else None

    def new_epoch(self, epoch: int) -> None:
        # A new epoch starts its sequences afresh (Kafka's maybeUpdateProducerEpoch).
        self.epoch = epoch
        self.batches.clear()


class SequenceCheck:
    """Outcome of checking a batch against producer state: append, duplicate, or an error."""

    __slots__ = ("error", "duplicate")

    def __init__(self, error: ErrorCode = ErrorCode.NONE, duplicate: BatchMetadata | None = None) -> None:
        self.error = error
        self.duplicate = duplicate


APPEND = SequenceCheck()
_OUT_OF_ORDER = SequenceCheck(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
_FENCED_EPOCH = SequenceCheck(ErrorCode.INVALID_PRODUCER_EPOCH)
_NOT_TRANSACTIONAL = SequenceCheck(ErrorCode.INVALID_TXN_STATE)


def _in_sequence(last_sequence: int, next_sequence: int) -> bool:
    return next_sequence == last_sequence + 1 or (next_sequence == 0 and last_sequence == _INT32_MAX)


def _last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    # Sequence numbers wrap at INT32_MAX, as Kafka's DefaultRecordBatch.incrementSequence does.
    return (base_sequence + last_offset_delta) % (_INT32_MAX + 1)


class ProducerStateTable:
    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        # Producer id -> first offset of its ongoing transaction, oldest first: transactions start
        # in offset order, so the first is the first unstable offset, read without a scan.
        self._ongoing: collections.OrderedDict[int, int] = collections.OrderedDict()
        # KIP-890: producer id -> the token of a transaction verification in flight, which the end
        # of the producer's transaction voids (Kafka's VerificationGuard).
        self._verifying: dict[int, object] = {}

    def check(self, producer_id: int, epoch: int, base_sequence: int, last_offset_delta: int,
              transactional: bool = False) -> SequenceCheck:
        """Validate a batch before it is appended (Kafka's analyzeAndValidateProducerState)."""
        if producer_id == NO_PRODUCER_ID:
            return APPEND
        entry = self.producers.get(producer_id)
        if entry is None:
            # Unknown producer (new, or its state is gone with retention): accept any sequence.
            return APPEND
        if epoch < entry.epoch:
            return _FENCED_EPOCH
        if epoch > entry.epoch:
            if base_sequence != 0:
                return _OUT_OF_ORDER
        else:
            last_sequence = _last_sequence(base_sequence, last_offset_delta)
            for batch in entry.batches:
                if batch.first_sequence == base_sequence and batch.last_sequence == last_sequence:
                    return SequenceCheck(duplicate=batch)
            # No batch yet at this epoch (a marker bumped it): the sequence starts at 0.
            if not _in_sequence(-1 if entry.last_sequence is None else entry.last_sequence, base_sequence):
                return _OUT_OF_ORDER
        if entry.current_txn_first_offset is not None and not transactional:
            return _NOT_TRANSACTIONAL
        return APPEND

    def record(self, producer_id: int, epoch: int, base_sequence: int, base_offset: int,
               last_offset: int, timestamp: int, transactional: bool = False) -> None:
        """Remember an appended batch (also used when replaying the log); a producer's first
        transactional batch starts its transaction."""
        if producer_id == NO_PRODUCER_ID:
            return
        entry = self._entry_at(producer_id, epoch)
        entry.batches.append(BatchMetadata(
            base_sequence, _last_sequence(base_sequence, last_offset - base_offset),
            base_offset, last_offset, timestamp))
        entry.last_timestamp = timestamp
        if transactional:
            self._verifying.pop(producer_id, None)
            if entry.current_txn_first_offset is None:
                entry.current_txn_first_offset = base_offset
                self._ongoing[producer_id] = base_offset

    def _entry_at(self, producer_id: int, epoch: int) -> ProducerEntry:
        """The producer's entry, made for a new producer and moved to `epoch` when it changed."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(epoch)
        elif epoch != entry.epoch:
            entry.new_epoch(epoch)
        return entry

    def last_records(self) -> dict[int, LastRecord]:
        """Each producer's last batch here, which the log cleaner keeps (its sequence, or a marker's
        epoch, is what this table is rebuilt from after a restart)."""
        return {producer_id: LastRecord(entry.batches[-1].last_offset if entry.batches else None, entry.epoch)
                for producer_id, entry in self.producers.items()}

    # -- transactions ----------------------------------------------------------------------------

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest ongoing transaction, None when none is."""
        for first_offset in self._ongoing.values():
            return first_offset
        return None

    def has_ongoing(self, producer_id: int) -> bool:
        return producer_id in self._ongoing

    def start_verification(self, producer_id: int) -> object:
        """The token of a verification, with the transaction coordinator, that the producer's
        transaction holds this partition (KIP-890). The end of that transaction voids it (see
        verified), so that a verification an abort overtook does not let a batch open a transaction
        the coordinator has ended. Verifications in flight together share one."""
        return self._verifying.setdefault(producer_id, object())

    def verified(self, producer_id: int, token: object) -> bool:
        """Whether the producer's transaction has not ended since start_verification gave `token`,
        or it is ongoing here (and needs no verification)."""
        return self._verifying.get(producer_id) is token or producer_id in self._ongoing

    def cancel_verification(self, producer_id: int) -> None:
        """The producer's transaction ended without a marker here: a verification in flight is void."""
        self._verifying.pop(producer_id, None)

    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> ErrorCode:
        """Whether the producer's COMMIT or ABORT marker may be written (Kafka's appendEndTxnMarker
        checks): not from an older producer epoch, nor from an older coordinator."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return ErrorCode.NONE
        if producer_epoch < entry.epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if coordinator_epoch < entry.coordinator_epoch:
            return ErrorCode.TRANSACTION_COORDINATOR_FENCED
        return ErrorCode.NONE

    def complete_transaction(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                             marker_offset: int, commit: bool, *, timestamp: int) -> AbortedTxn | None:
        """Apply the producer's marker appended at `marker_offset` with `timestamp` (also when
        replaying the log).
        An ABORT that ends a transaction here gives its transaction index entry, with the last
        stable offset as it is once the transaction is complete (as Kafka records it)."""
        self._verifying.pop(producer_id, None)
        entry = self._entry_at(producer_id, producer_epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = timestamp
        first_offset = entry.current_txn_first_offset
        if first_offset is None:
            return None
        entry.current_txn_first_offset = None
        del self._ongoing[producer_id]
        if commit:
            return None
        stable = self.first_unstable_offset
        return AbortedTxn(producer_id, first_offset, marker_offset, marker_offset + 1 if stable is None else stable)

    # Snapshots let a restart skip replaying the whole log (Kafka's .snapshot files).

    def snapshot(self, log_end_offset: int) -> str:
        """The table as snapshot text; taken where the table changes (the event loop), so that
        writing it can go to a worker thread."""
        return json.dumps({
            "log_end_offset": log_end_offset,
            "producers": {str(pid): {"epoch": e.epoch, "batches": [dataclasses.astuple(b) for b in e.batches],
                                     "coordinator_epoch": e.coordinator_epoch, "last_timestamp": e.last_timestamp,
                                     "current_txn_first_offset": e.current_txn_first_offset}
                          for pid, e in self.producers.items()},
        })

    @classmethod
    def read_snapshot(cls, path: Path) -> tuple[ProducerStateTable, int] | None:
        """The table and the log end offset it was taken at, or None if absent or unreadable.
        Snapshots written before transactions (epochs and batches only) read as producers
        without any."""
        try:
            state = json.loads(path.read_text())
            table = cls()
            ongoing = []
            for pid, value in state["producers"].items():
                producer_id = int(pid)
                entry = table.producers[producer_id] = ProducerEntry(int(value["epoch"]))
                entry.batches.extend(BatchMetadata(*map(int, b)) for b in value["batches"])
                entry.coordinator_epoch = int(value.get("coordinator_epoch", NO_COORDINATOR_EPOCH))
                entry.last_timestamp = int(value.get("last_timestamp",
                                                     entry.batches[-1].timestamp if entry.batches else NO_TIMESTAMP))
                first_offset = value.get("current_txn_first_offset")
                if first_offset is not None:
                    entry.current_txn_first_offset = int(first_offset)
                    ongoing.append((entry.current_txn_first_offset, producer_id))
            for first_offset, producer_id in sorted(ongoing):
                table._ongoing[producer_id] = first_offset
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
