"""Committed offsets: served from memory, made durable in an internal log, kept compact.

Every commit is appended to an internal log (broker/internal_log.py; in the data directory,
under `OFFSETS_LOG_DIRECTORY`) before it is acknowledged, as one record batch whose records use
Kafka's own `__consumer_offsets` layout, declared in protocol.messages.group_data: the key is
an OffsetCommitKey (version 1: group, topic, partition), the value an OffsetCommitValue
(version 3: offset, leader epoch, metadata, commit timestamp), and a deleted group leaves a
tombstone (null value) for each of its offsets. Every version Kafka declares is read back.

Offsets committed in a transaction (TxnOffsetCommit, KIP-98/447) are appended as a
transactional batch of the producer and stay pending, invisible to OffsetFetch, until the
producer's COMMIT or ABORT marker: a commit makes them the group's committed offsets unless a
later plain commit replaced them meanwhile (Kafka keeps the newer one by its place in the log),
an abort drops them. A tombstone removes a partition's committed and pending offsets alike, as
Kafka's GroupMetadata.removeOffsets does.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from broker.internal_log import (
    MIN_DEAD_RECORDS_FOR_COMPACTION,
    Entry,
    InternalLog,
    Producer,
    read_versioned,
    versioned,
)
from broker.registry import CloseOutcome
from log import current_time_ms
from protocol import records
from protocol.errors import ApiError, ErrorCode
from protocol.messages.group_data import OFFSET_COMMIT_KEY, OFFSET_COMMIT_VALUE
from protocol.record_batch import NO_PARTITION_LEADER_EPOCH

# Not `<name>-<partition>`: the topic registry never takes this directory for a topic's.
OFFSETS_LOG_DIRECTORY = "__consumer_offsets"

# The record versions written; any version Kafka declares is read.
OFFSET_COMMIT_KEY_VERSION = 1
OFFSET_COMMIT_VALUE_VERSION = 3
_MAX_STRING_BYTES = 32767

TopicPartition = tuple[str, int]


@dataclasses.dataclass(frozen=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


class _Written(NamedTuple):
    value: OffsetAndMetadata
    # Where it was written in the log's order (compaction keeps that order): a transaction's
    # commit replaces only an older offset, as Kafka's CommitRecordMetadataAndOffset.olderThan.
    order: int


@dataclasses.dataclass
class _OpenTransaction:
    """A producer with pending offsets: its latest epoch, and the groups it committed to."""

    producer_epoch: int
    groups: set[str] = dataclasses.field(default_factory=set)


def fits_in_key(name: str) -> bool:
    """Whether a group id or topic name fits the 16-bit length of Kafka's offset key strings."""
    return len(name.encode()) <= _MAX_STRING_BYTES


def encode_key(group_id: str, topic: str, partition: int) -> bytes:
    return versioned(OFFSET_COMMIT_KEY, OFFSET_COMMIT_KEY_VERSION,
                     OFFSET_COMMIT_KEY(group=group_id, topic=topic, partition=partition))


def decode_key(data: bytes) -> tuple[str, TopicPartition]:
    key = read_versioned(OFFSET_COMMIT_KEY, data)
    return key.group, (key.topic, key.partition)


def encode_value(value: OffsetAndMetadata) -> bytes:
    return versioned(OFFSET_COMMIT_VALUE, OFFSET_COMMIT_VALUE_VERSION, OFFSET_COMMIT_VALUE(
        offset=value.offset, leader_epoch=value.leader_epoch, metadata=value.metadata,
        commit_timestamp=value.commit_timestamp))


def decode_value(data: bytes) -> OffsetAndMetadata:
    value = read_versioned(OFFSET_COMMIT_VALUE, data)
    # Versions before 3 have no leader epoch: it is unknown.
    return OffsetAndMetadata(value.offset, value.get("leader_epoch", NO_PARTITION_LEADER_EPOCH), value.metadata,
                             value.commit_timestamp)


class OffsetStore:
    """Every group's committed offsets, durable in the offsets log under `data_dir`.

    Reads are from memory; writes go through the internal log, serialised, and with `fsync`
    are fsynced before they return.
    """

    def __init__(self, data_dir: Path, *, fsync: bool = False,
                 min_dead_records: int = MIN_DEAD_RECORDS_FOR_COMPACTION,
                 clock: Callable[[], int] = current_time_ms) -> None:
        self.directory = data_dir / OFFSETS_LOG_DIRECTORY
        self._offsets: dict[str, dict[TopicPartition, _Written]] = {}
        # Offsets of transactions not ended yet: group -> producer id -> partition.
        self._pending: dict[str, dict[int, dict[TopicPartition, _Written]]] = {}
        self._transactions: dict[int, _OpenTransaction] = {}
        # How many committed and pending offsets there are over all groups.
        self.live_records = 0
        self._order = itertools.count()
        self._log = InternalLog(self.directory, self, records_are="commits", fsync=fsync,
                                min_dead_records=min_dead_records, clock=clock)

    @property
    def internal_log(self) -> InternalLog:
        return self._log

    @property
    def log_records(self) -> int:
        """How many records the offsets log holds (superseded ones, tombstones and markers included)."""
        return self._log.log_records

    # -- reading ---------------------------------------------------------------------------------

    def group_ids(self) -> list[str]:
        """The groups with committed or pending offsets."""
        return [*self._offsets, *(group_id for group_id in self._pending if group_id not in self._offsets)]

    def has_offsets(self, group_id: str) -> bool:
        """Whether the group has committed or pending offsets (Kafka's GroupMetadata.hasOffsets)."""
        return group_id in self._offsets or group_id in self._pending

    def group_offsets(self, group_id: str) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (a copy; empty when it has none)."""
        return {partition: written.value for partition, written in self._offsets.get(group_id, {}).items()}

    def pending_partitions(self, group_id: str) -> set[TopicPartition]:
        """The partitions the group has offsets of in transactions not ended yet."""
        return {partition for pending in self._pending.get(group_id, {}).values() for partition in pending}

    # -- writing ---------------------------------------------------------------------------------

    async def commit(self, group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Append the offsets as one batch, then make them visible.

        Raises RecordBatchTooLargeError when they do not fit one batch, or another LogError."""
        def apply() -> None:
            for partition, value in offsets.items():
                self._put_committed(group_id, partition, _Written(value, next(self._order)))

        await self._log.append(_entries(group_id, offsets), apply)

    async def commit_transactional(self, group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata],
                                   producer_id: int, producer_epoch: int) -> None:
        """Append the offsets as one transactional batch of the producer; they stay pending until
        complete_transaction. Raises ApiError(INVALID_PRODUCER_EPOCH) for an epoch older than the
        producer's pending offsets have, or a LogError as commit does."""
        producer = Producer(producer_id, producer_epoch)
        self._check_epoch(producer)

        def apply() -> None:
            for partition, value in offsets.items():
                self._put_pending(group_id, producer, partition, _Written(value, next(self._order)))

        await self._log.append(_entries(group_id, offsets), apply, producer=producer)

    async def complete_transaction(self, producer_id: int, producer_epoch: int, commit: bool) -> bool:
        """End the producer's transaction: append its COMMIT or ABORT marker, then make its
        pending offsets in every group committed or drop them. Whether it had any (else nothing
        is written). Raises ApiError(INVALID_PRODUCER_EPOCH) for a marker older than the
        producer's offsets, or a LogError."""
        if producer_id not in self._transactions:
            return False
        producer = Producer(producer_id, producer_epoch)
        self._check_epoch(producer)
        control_type = records.ControlType.COMMIT if commit else records.ControlType.ABORT
        await self._log.append_marker(producer, control_type, lambda: self._complete(producer_id, commit))
        return True

    def _check_epoch(self, producer: Producer) -> None:
        # As a partition's producer state refuses a batch or marker of a fenced epoch.
        open_transaction = self._transactions.get(producer.producer_id)
        if open_transaction is not None and producer.producer_epoch < open_transaction.producer_epoch:
            raise ApiError(ErrorCode.INVALID_PRODUCER_EPOCH,
                           f"producer {producer.producer_id} epoch {producer.producer_epoch} is older than "
                           f"{open_transaction.producer_epoch}")

    async def delete_group(self, group_id: str) -> int:
        """Write a tombstone for each partition the group has committed or pending offsets of, and
        forget them; how many partitions there were."""
        return await self._tombstone({group_id: self._partitions_of(group_id)})

    async def delete_offsets(self, group_id: str, partitions: list[TopicPartition]) -> int:
        """Write a tombstone for each of `partitions` the group has committed or pending offsets
        of; how many it had."""
        held = self._partitions_of(group_id)
        return await self._tombstone({group_id: [partition for partition in partitions if partition in held]})

    async def delete_topic(self, topic: str) -> int:
        """Forget every group's offsets of a deleted topic, as Kafka does; how many there were."""
        return await self._tombstone({group_id: [tp for tp in self._partitions_of(group_id) if tp[0] == topic]
                                      for group_id in self.group_ids()})

    def _partitions_of(self, group_id: str) -> list[TopicPartition]:
        pending = self.pending_partitions(group_id)
        committed = self._offsets.get(group_id, {})
        return [*committed, *(partition for partition in pending if partition not in committed)]

    async def _tombstone(self, partitions_by_group: dict[str, list[TopicPartition]]) -> int:
        doomed = {group_id: partitions for group_id, partitions in partitions_by_group.items() if partitions}
        entries: list[Entry] = [(encode_key(group_id, topic, partition), None)
                                for group_id, partitions in doomed.items() for topic, partition in partitions]

        def forget() -> None:
            for group_id, partitions in doomed.items():
                self._forget(group_id, partitions)

        if entries:
            await self._log.append(entries, forget)
        return len(entries)

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the log; with `outcome`, a failure is noted there instead of raised."""
        self._log.close(outcome)

    # -- the state in memory (internal_log.KeyedState) -------------------------------------------

    def _put_committed(self, group_id: str, partition: TopicPartition, written: _Written) -> None:
        committed = self._offsets.setdefault(group_id, {})
        if partition not in committed:
            self.live_records += 1
        committed[partition] = written

    def _put_pending(self, group_id: str, producer: Producer, partition: TopicPartition, written: _Written) -> None:
        open_transaction = self._transactions.setdefault(producer.producer_id, _OpenTransaction(producer.producer_epoch))
        open_transaction.producer_epoch = producer.producer_epoch
        open_transaction.groups.add(group_id)
        pending = self._pending.setdefault(group_id, {}).setdefault(producer.producer_id, {})
        if partition not in pending:
            self.live_records += 1
        pending[partition] = written

    def _drop_pending(self, group_id: str, producer_id: int, partition: TopicPartition) -> None:
        by_producer = self._pending.get(group_id, {})
        pending = by_producer.get(producer_id, {})
        if pending.pop(partition, None) is None:
            return
        self.live_records -= 1
        if not pending:
            del by_producer[producer_id]
            if not by_producer:
                del self._pending[group_id]
            open_transaction = self._transactions[producer_id]
            open_transaction.groups.discard(group_id)
            if not open_transaction.groups:
                del self._transactions[producer_id]

    def _forget(self, group_id: str, partitions: list[TopicPartition]) -> None:
        # Only what the tombstones cover: a commit may have come in while they were being written.
        committed = self._offsets.get(group_id, {})
        for partition in partitions:
            if committed.pop(partition, None) is not None:
                self.live_records -= 1
            for producer_id in list(self._pending.get(group_id, {})):
                self._drop_pending(group_id, producer_id, partition)
        if not committed:
            self._offsets.pop(group_id, None)

    def _complete(self, producer_id: int, commit: bool) -> None:
        open_transaction = self._transactions.pop(producer_id, None)
        if open_transaction is None:
            return
        for group_id in open_transaction.groups:
            by_producer = self._pending[group_id]
            pending = by_producer.pop(producer_id)
            if not by_producer:
                del self._pending[group_id]
            self.live_records -= len(pending)
            if commit:
                committed = self._offsets.get(group_id, {})
                for partition, written in pending.items():
                    current = committed.get(partition)
                    if current is None or current.order < written.order:
                        self._put_committed(group_id, partition, written)

    def replay_record(self, producer: Producer | None, record: records.Record) -> None:
        group_id, partition = decode_key(record.key)
        if producer is None:
            if record.value is None:
                self._forget(group_id, [partition])
            else:
                self._put_committed(group_id, partition, _Written(decode_value(record.value), next(self._order)))
        elif record.value is None:
            self._drop_pending(group_id, producer.producer_id, partition)
        else:
            self._put_pending(group_id, producer, partition, _Written(decode_value(record.value), next(self._order)))

    def replay_marker(self, producer: Producer, control_type: records.ControlType) -> None:
        self._complete(producer.producer_id, control_type is records.ControlType.COMMIT)


def _entries(group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> list[Entry]:
    return [(encode_key(group_id, topic, partition), encode_value(value))
            for (topic, partition), value in offsets.items()]
