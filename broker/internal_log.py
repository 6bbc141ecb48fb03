"""A compacted, keyed internal log: the durable half of a coordinator's in-memory state.

The committed offsets (broker/groups/offsets.py) and the transaction state
(broker/transactions/state_log.py) are each a map kept in memory and made durable in a log on
the `log/` engine, as Kafka keeps them in its compacted internal topics: every change is
appended, before it is acknowledged, as one record batch of (key, value) records, a null value
(a tombstone) removing its key. The owner of the map encodes keys and values; this module
appends and replays.

A batch may be transactional (the producer id and epoch in its header: offsets committed in a
transaction), and a control batch (a COMMIT or ABORT marker) ends a producer's transaction; an
ABORT is recorded in the log's transaction index, as a partition records it, so that the cleaner
removes the aborted records. On replay the owner is handed each record with the producer of its
batch, or None outside a transaction, and each marker with its producer and type.

The broker's log cleaner (broker/log_cleaner.py) compacts these logs as it compacts compacted
topics: once the records appended since its last pass are at least `min_dead_records` and as many
as the live entries, `cleaning_plan` rolls the active segment and hands the cleaner all of the log
below the oldest open transaction, so that start-up time follows the live entries, not every
change ever made. Tombstones and markers have no reader but the replay: they go in the pass after
the one that first keeps them.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import trio
from construct import Container

from broker.metadata import MetadataError
from broker.registry import CloseOutcome, close_log
from broker.storage_work import run_storage_work
from log import AbortedTxn, CleaningPlan, CleaningResult, CorruptLogError, Log, LogConfig, current_time_ms
from log.checkpoint import fsync_directory
from protocol import records
from protocol.errors import ProtocolError
from protocol.record_batch import BatchHeader
from protocol.schema import MessageCodec

logger = logging.getLogger(__name__)

# What the compaction of versions before the log cleaner left when a crash interrupted it.
_COMPACTED_SUFFIX = ".compacted"
_RETIRED_SUFFIX = ".retired"
# Kafka's offsets.topic.segment.bytes and transaction.state.log.segment.bytes; a change is one
# batch, so a batch may be as large.
SEGMENT_BYTES = 100 * 1024 * 1024
# Clean the log once the records appended since the last pass are at least this many and as many
# as the live ones.
MIN_DEAD_RECORDS_FOR_COMPACTION = 10_000
_REPLAY_READ_BYTES = 1024 * 1024
# Markers carry the transaction coordinator's epoch; this broker's never changes.
COORDINATOR_EPOCH = 0
_VERSION = struct.Struct(">h")

Entry = tuple[bytes, bytes | None]


class InternalLogError(MetadataError):
    """An internal log holds a record this broker cannot read."""


class Producer(NamedTuple):
    """The producer of a transactional batch, as its header names it."""

    producer_id: int
    producer_epoch: int


class KeyedState(Protocol):
    """What the owner of an internal log keeps in memory."""

    @property
    def live_records(self) -> int:
        """How many entries it holds (committed and pending)."""

    def replay_record(self, producer: Producer | None, record: records.Record) -> None:
        """Apply a record of the log (its key is not None); `producer` for a transactional batch."""

    def replay_marker(self, producer: Producer, control_type: records.ControlType) -> None:
        """Apply a COMMIT or ABORT marker ending `producer`'s transaction."""


def versioned(codec: MessageCodec, version: int, fields: dict) -> bytes:
    """A key or value as Kafka's internal topics write them: int16 version, then the message."""
    return _VERSION.pack(version) + codec.encode(version, fields)


def read_versioned(codec: MessageCodec, data: bytes) -> Container:
    """A record written by `versioned`, of any version `codec` declares."""
    try:
        (version,) = _VERSION.unpack_from(data)
        if version not in codec.valid_versions:
            raise InternalLogError(f"{codec.name} version {version} is not one of {codec.valid_versions}")
        return codec.decode(version, data, _VERSION.size)
    except (struct.error, ProtocolError) as exc:
        raise InternalLogError(f"unreadable {codec.name}: {exc}") from exc


def _log_config() -> LogConfig:
    # Never deleted by age or size: the cleaner alone bounds an internal log, when cleaning_plan
    # says. Tombstones and markers are kept by one pass only: the replay needs them no longer.
    return LogConfig(segment_bytes=SEGMENT_BYTES, max_message_bytes=SEGMENT_BYTES, retention_ms=-1, retention_bytes=-1,
                     compact=True, delete_retention_ms=0, min_cleanable_dirty_ratio=0.0)


def _data_batch(entries: list[Entry], timestamp: int, producer: Producer | None) -> bytes:
    batch_records = [records.Record(key, value, (), timestamp) for key, value in entries]
    if producer is None:
        return records.build_batch(batch_records)
    return records.build_batch(batch_records, transactional=True, producer_id=producer.producer_id,
                               producer_epoch=producer.producer_epoch)


class InternalLog:
    """The log in `directory` behind `state`, replayed into it on construction.

    With `fsync`, a write is also fsynced before it returns (writes waiting at the same time share
    one fsync), as acks=all produce requests are with --flush-on-ack.
    """

    def __init__(self, directory: Path, state: KeyedState, *, records_are: str, fsync: bool = False,
                 min_dead_records: int = MIN_DEAD_RECORDS_FOR_COMPACTION,
                 clock: Callable[[], int] = current_time_ms) -> None:
        self.directory = directory
        # What the records are, for the log ("commits"), when damage loses some.
        self.records_are = records_are
        self.fsync = fsync
        self.min_dead_records = min_dead_records
        self.clock = clock
        self._state = state
        # How many records the log holds: live ones, superseded ones, tombstones and markers.
        self.log_records = 0
        # Producer id -> the offset of its open transaction's first batch here.
        self._open_transactions: dict[int, int] = {}
        self._flushing = trio.Lock()
        self._finish_interrupted_compaction()
        self._log = Log(directory, _log_config(), clock=clock)
        try:
            self._replay()
        except BaseException:
            self._log.close()
            raise
        # What the last pass left; at the start, as if it had left the live entries alone.
        self._records_cleaned = state.live_records

    # -- writing ---------------------------------------------------------------------------------

    async def append(self, entries: list[Entry], apply: Callable[[], None], *,
                     producer: Producer | None = None) -> None:
        """Append `entries` as one batch (transactional, of `producer`, if given), then `apply()`
        them to the owner's memory. Raises RecordBatchTooLargeError when they do not fit one
        batch, or another LogError (and nothing is applied)."""
        appended = self._log.append(_data_batch(entries, self.clock(), producer))
        if producer is not None:
            self._open_transactions.setdefault(producer.producer_id, appended.base_offset)
        await self._applied(len(entries), apply)

    async def append_marker(self, producer: Producer, control_type: records.ControlType,
                            apply: Callable[[], None]) -> None:
        """Append a COMMIT or ABORT marker of `producer`'s transaction, then `apply()` it."""
        marker = records.build_control_batch(
            control_type, producer_id=producer.producer_id, producer_epoch=producer.producer_epoch,
            coordinator_epoch=COORDINATOR_EPOCH, timestamp=self.clock())
        self._end_transaction(producer.producer_id, control_type, self._log.append(marker).base_offset)
        await self._applied(1, apply)

    def _end_transaction(self, producer_id: int, control_type: records.ControlType, marker_offset: int) -> None:
        """The producer's transaction here ended at `marker_offset`: an ABORT of one with batches
        here goes in the transaction index, for the cleaner to remove them."""
        first_offset = self._open_transactions.pop(producer_id, None)
        if control_type is records.ControlType.ABORT and first_offset is not None:
            self._log.add_aborted_transaction(AbortedTxn(producer_id, first_offset, marker_offset,
                                                         self.last_stable_offset))

    async def _applied(self, count: int, apply: Callable[[], None]) -> None:
        """Count and apply what was just appended (on the event loop, with no await between the
        append and this), then fsync it if asked, whatever cancels the caller: the owner's memory
        never holds what the log may lose."""
        self.log_records += count
        apply()
        if self.fsync:
            log, end = self._log, self._log.log_end_offset
            with trio.CancelScope(shield=True):
                async with self._flushing:
                    if log.flushed_offset < end:
                        await run_storage_work(log.flush)

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the log; with `outcome`, a failure is noted there instead of raised."""
        if outcome is None:
            self._log.close()
        else:
            close_log(self._log, outcome)

    # -- cleaning --------------------------------------------------------------------------------

    @property
    def last_stable_offset(self) -> int:
        """The first offset of the oldest open transaction here, else the log end offset: the
        cleaner stops there, so that the open transactions' markers find their batches."""
        return min(self._open_transactions.values(), default=self._log.log_end_offset)

    def cleaning_plan(self, buffer_bytes: int) -> CleaningPlan | None:
        """The cleaner's next pass over this log (log.cleaner.clean runs it, swap_in_groups
        swaps its result in), once the records appended since the last pass are at least
        min_dead_records and as many as the live entries. Rolls the active segment, so that the
        pass cleans all of the log below the oldest open transaction."""
        if self.log_records - self._records_cleaned < max(self.min_dead_records, self._state.live_records):
            return None
        log = self._log
        if self.last_stable_offset > log.segments[-1].base_offset:
            log.roll()
        return log.cleaning_plan(self.last_stable_offset, {}, buffer_bytes)

    def replace_segments(self, result: CleaningResult) -> bool:
        """Swap in all of what a pass of `cleaning_plan` wrote at once; whether all of it was."""
        return all(self.swap_in_groups(result))

    def swap_in_groups(self, result: CleaningResult) -> Iterator[bool]:
        """Swap in what a pass of `cleaning_plan` wrote, group by group (Log.swap_in_groups); the
        next flush makes it durable."""
        swapped = True
        for swapped in self._log.swap_in_groups(result):
            yield swapped
        if swapped:
            self.log_records -= result.records_read - result.records_kept
            self._records_cleaned = self.log_records

    def flush(self) -> None:
        """fsync the log (blocks: in a worker thread)."""
        self._log.flush()

    # -- replay ----------------------------------------------------------------------------------

    def _replay(self) -> None:
        log = self._log
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            try:
                chunk = bytes(log.read(offset, _REPLAY_READ_BYTES))
            except CorruptLogError as exc:
                # Damaged batches (the log has named the file and byte): the records before and
                # after them are kept, and a key whose latest record was lost keeps its earlier one.
                logger.warning("%s: the %s at offsets %d to %d are lost to damage",
                               self.directory, self.records_are, exc.offset, exc.resume_offset - 1)
                offset = exc.resume_offset
                continue
            start = offset
            try:
                for header, batch in records.iter_batches(chunk, allow_truncated_tail=True):
                    self._replay_batch(header, batch)
                    offset = header.next_offset
            except ProtocolError as exc:
                raise InternalLogError(f"{self.directory}: unreadable batch at offset {offset}: {exc}") from exc
            if offset == start:
                raise InternalLogError(f"{self.directory}: no whole batch at offset {offset}")

    def _replay_batch(self, header: BatchHeader, batch: memoryview) -> None:
        producer = Producer(header.producer_id, header.producer_epoch) if header.is_transactional else None
        if header.is_control:
            if producer is None:
                raise InternalLogError(f"{self.directory}: control batch at offset {header.base_offset} "
                                       "is not transactional")
            self.log_records += header.records_count
            control_type = records.control_type(batch)
            # An ABORT's index entry is there already unless a crash reset the index: added again.
            self._end_transaction(producer.producer_id, control_type, header.base_offset)
            self._state.replay_marker(producer, control_type)
            return
        if producer is not None:
            self._open_transactions.setdefault(producer.producer_id, header.base_offset)
        for record in records.iter_records(batch):
            if record.key is None:
                raise InternalLogError(f"{self.directory}: record at offset {record.offset} has no key")
            self.log_records += 1
            self._state.replay_record(producer, record)

    # -- what versions before the log cleaner left ------------------------------------------------

    def _finish_interrupted_compaction(self) -> None:
        """Finish or discard a rewrite of the log that a crash interrupted, as versions before the
        log cleaner compacted: a complete, synced copy beside the log, then two renames."""
        compacted, retired = self._sibling(_COMPACTED_SUFFIX), self._sibling(_RETIRED_SUFFIX)
        if compacted.exists():
            if self.directory.exists():
                # Stopped before the swap: the old log is whole and the copy may not be.
                shutil.rmtree(compacted)
            else:
                # Stopped between the two renames: the copy was complete and synced.
                os.replace(compacted, self.directory)
                fsync_directory(self.directory.parent)
        if retired.exists():
            shutil.rmtree(retired)

    def _sibling(self, suffix: str) -> Path:
        return self.directory.with_name(self.directory.name + suffix)
