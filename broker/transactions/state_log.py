"""The transaction state log: each transactional id's last logged state, durable and compact.

Kafka's `__transaction_state` on an internal log (broker/internal_log.py; in the data directory,
under `TRANSACTION_STATE_DIRECTORY`): a record per change, keyed by a TransactionLogKey
(the transactional id) with a TransactionLogValue, as protocol.messages.transaction_data
declares them; a tombstone (null value) removes an expired id. Every version Kafka declares is
read; version 1 is written, so that the KIP-890 producer ids (tagged fields) survive, as Kafka
writes it once transaction.version 1 is enabled.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

from broker.internal_log import (
    MIN_DEAD_RECORDS_FOR_COMPACTION,
    InternalLog,
    InternalLogError,
    Producer,
    read_versioned,
    versioned,
)
from broker.registry import CloseOutcome
from log import current_time_ms
from protocol import records
from protocol.record_batch import NO_PRODUCER_ID
from protocol.messages.transaction_data import TRANSACTION_LOG_KEY, TRANSACTION_LOG_VALUE

# Not `<name>-<partition>`: the topic registry never takes this directory for a topic's.
TRANSACTION_STATE_DIRECTORY = "__transaction_state"
TRANSACTION_LOG_KEY_VERSION = 0
TRANSACTION_LOG_VALUE_VERSION = 1
# How many transactional ids' encoded keys are kept: a transaction writes its id's state three
# or four times (Ongoing, PrepareCommit, CompleteCommit), and each encoding of the same key costs
# a quarter of what its value does.
_CACHED_KEYS = 4096


@dataclasses.dataclass(frozen=True)
class TransactionLogEntry:
    """A transactional id's state as logged (Kafka's TransactionLogValue). `state` is the id of
    Kafka's TransactionState: Empty 0, Ongoing 1, PrepareCommit 2, PrepareAbort 3,
    CompleteCommit 4, CompleteAbort 5, Dead 6, PrepareEpochFence 7."""

    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: int
    # Topic -> partition indexes; empty when the transaction has none (always so when Empty).
    partitions: dict[str, list[int]]
    last_update_ms: int
    start_ms: int
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID


@functools.lru_cache(maxsize=_CACHED_KEYS)
def encode_key(transactional_id: str) -> bytes:
    return versioned(TRANSACTION_LOG_KEY, TRANSACTION_LOG_KEY_VERSION, TRANSACTION_LOG_KEY(transactional_id=transactional_id))


def decode_key(data: bytes) -> str:
    return read_versioned(TRANSACTION_LOG_KEY, data).transactional_id


def encode_value(entry: TransactionLogEntry) -> bytes:
    # As Kafka's TransactionLog.valueToBytes, no partitions is null (Kafka's reader skips them when Empty).
    partitions = [TRANSACTION_LOG_VALUE.PartitionsSchema(topic=topic, partition_ids=indexes)
                  for topic, indexes in entry.partitions.items()] or None
    return versioned(TRANSACTION_LOG_VALUE, TRANSACTION_LOG_VALUE_VERSION, TRANSACTION_LOG_VALUE(
        producer_id=entry.producer_id, previous_producer_id=entry.previous_producer_id,
        next_producer_id=entry.next_producer_id, producer_epoch=entry.producer_epoch,
        transaction_timeout_ms=entry.timeout_ms, transaction_status=entry.state, transaction_partitions=partitions,
        transaction_last_update_timestamp_ms=entry.last_update_ms, transaction_start_timestamp_ms=entry.start_ms))


def decode_value(data: bytes) -> TransactionLogEntry:
    value = read_versioned(TRANSACTION_LOG_VALUE, data)
    partitions: dict[str, list[int]] = {}
    for topic in value.transaction_partitions or ():
        partitions.setdefault(topic.topic, []).extend(topic.partition_ids)
    # Version 0 has no tagged fields: the producer ids they carry are unknown.
    return TransactionLogEntry(
        producer_id=value.producer_id, producer_epoch=value.producer_epoch, timeout_ms=value.transaction_timeout_ms,
        state=value.transaction_status, partitions=partitions, last_update_ms=value.transaction_last_update_timestamp_ms,
        start_ms=value.transaction_start_timestamp_ms,
        previous_producer_id=value.get("previous_producer_id", NO_PRODUCER_ID),
        next_producer_id=value.get("next_producer_id", NO_PRODUCER_ID))


class TransactionStateStore:
    """Every transactional id's last logged state, durable in the transaction state log under
    `data_dir`, replayed on construction (blocking: build it in a worker thread). Writes are
    serialised, and with `fsync` fsynced before they return (writes waiting together share one)."""

    def __init__(self, data_dir: Path, *, fsync: bool = False,
                 min_dead_records: int = MIN_DEAD_RECORDS_FOR_COMPACTION,
                 clock: Callable[[], int] = current_time_ms) -> None:
        self.directory = data_dir / TRANSACTION_STATE_DIRECTORY
        self._entries: dict[str, TransactionLogEntry] = {}
        self._log = InternalLog(self.directory, self, records_are="transaction states", fsync=fsync,
                                min_dead_records=min_dead_records, clock=clock)

    @property
    def internal_log(self) -> InternalLog:
        return self._log

    @property
    def log_records(self) -> int:
        """How many records the log holds (superseded ones and tombstones included)."""
        return self._log.log_records

    def entries(self) -> dict[str, TransactionLogEntry]:
        """Each transactional id's last logged state (a copy; removed ids absent)."""
        return dict(self._entries)

    async def write(self, transactional_id: str, entry: TransactionLogEntry) -> None:
        """Log `entry` as the id's state. Raises RecordBatchTooLargeError when it does not fit
        one batch, or another LogError (LogStorageError when the disk refuses it)."""
        await self._log.append([(encode_key(transactional_id), encode_value(entry))],
                               lambda: self._entries.__setitem__(transactional_id, entry))

    async def remove(self, transactional_id: str) -> None:
        """Log a tombstone for the id (Kafka's expiration of a transactional id). Raises a LogError."""
        await self._log.append([(encode_key(transactional_id), None)],
                               lambda: self._entries.pop(transactional_id, None))

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the log (blocking on fsyncs); with `outcome`, a failure is noted there instead of raised."""
        self._log.close(outcome)

    # -- the state in memory (internal_log.KeyedState) -------------------------------------------

    @property
    def live_records(self) -> int:
        return len(self._entries)

    def replay_record(self, producer: Producer | None, record: records.Record) -> None:
        if producer is not None:
            raise InternalLogError(f"{self.directory}: transactional batch at offset {record.offset}")
        transactional_id = decode_key(record.key)
        if record.value is None:
            self._entries.pop(transactional_id, None)
        else:
            self._entries[transactional_id] = decode_value(record.value)

    def replay_marker(self, producer: Producer, control_type: records.ControlType) -> None:
        raise InternalLogError(f"{self.directory}: a {control_type.name} marker of producer {producer.producer_id}")
