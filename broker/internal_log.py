"""A compacted, keyed internal log: the durable half of a coordinator's in-memory state.

The committed offsets (broker/groups/offsets.py) and the transaction state
(broker/transactions/state_log.py) are each a map kept in memory and made durable in a log on
the `log/` engine, as Kafka keeps them in its compacted internal topics: every change is
appended, before it is acknowledged, as one record batch of (key, value) records, a null value
(a tombstone) removing its key. The owner of the map encodes keys and values; this module
appends, replays and compacts.

A batch may be transactional (the producer id and epoch in its header: offsets committed in a
transaction), and a control batch (a COMMIT or ABORT marker) ends a producer's transaction. On
replay the owner is handed each record with the producer of its batch, or None outside a
transaction, and each marker with its producer and type.

The log only grows, so once the records that later ones superseded (and tombstones and markers)
number at least `min_dead_records` and as many as the live entries, the live entries are written
into a fresh log that replaces the old one: start-up time follows the live entries, not every
change ever made. That rewrite is crash-safe: the new log is complete and fsynced before a rename
swaps it in, and a start-up finishes or discards an interrupted swap. Entries still in an open
transaction are rewritten as transactional batches of their producer, so that its marker, still
to come, finds them.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import trio
from construct import Container

from broker.metadata import MetadataError
from broker.registry import CloseOutcome, close_log
from broker.storage_work import run_storage_work
from log import CorruptLogError, Log, LogConfig, current_time_ms
from log.checkpoint import fsync_directory
from protocol import records
from protocol.errors import ProtocolError
from protocol.record_batch import BatchHeader
from protocol.schema import MessageCodec

logger = logging.getLogger(__name__)

_COMPACTED_SUFFIX = ".compacted"
_RETIRED_SUFFIX = ".retired"
# Kafka's offsets.topic.segment.bytes and transaction.state.log.segment.bytes; a change is one
# batch, so a batch may be as large.
SEGMENT_BYTES = 100 * 1024 * 1024
# Rewrite the log once dead records are at least this many and as many as the live ones.
MIN_DEAD_RECORDS_FOR_COMPACTION = 10_000
_RECORDS_PER_COMPACTED_BATCH = 1000
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
    """What the owner of an internal log keeps in memory and gives back to compaction."""

    @property
    def live_records(self) -> int:
        """How many entries `live_entries` yields."""

    def replay_record(self, producer: Producer | None, record: records.Record) -> None:
        """Apply a record of the log (its key is not None); `producer` for a transactional batch."""

    def replay_marker(self, producer: Producer, control_type: records.ControlType) -> None:
        """Apply a COMMIT or ABORT marker ending `producer`'s transaction."""

    def live_entries(self) -> Iterable[tuple[Producer | None, Entry]]:
        """Every live entry, in the order replaying them must see them, each with the producer
        of its open transaction (None: not in one). Runs in a worker thread while writes wait."""


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
    # Never deleted by age or size: compaction alone bounds an internal log.
    return LogConfig(segment_bytes=SEGMENT_BYTES, max_message_bytes=SEGMENT_BYTES, retention_ms=-1, retention_bytes=-1)


def _data_batch(entries: list[Entry], timestamp: int, producer: Producer | None) -> bytes:
    batch_records = [records.Record(key, value, (), timestamp) for key, value in entries]
    if producer is None:
        return records.build_batch(batch_records)
    return records.build_batch(batch_records, transactional=True, producer_id=producer.producer_id,
                               producer_epoch=producer.producer_epoch)


class InternalLog:
    """The log in `directory` behind `state`, replayed into it on construction.

    Writes are serialised (one append at a time, none during a compaction). With `fsync`, a write
    is also fsynced before it returns (writes waiting at the same time share one fsync), as
    acks=all produce requests are with --flush-on-ack.
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
        self._writing = trio.Lock()
        self._flushing = trio.Lock()
        self._finish_interrupted_compaction()
        self._log = Log(directory, _log_config(), clock=clock)
        try:
            self._replay()
        except BaseException:
            self._log.close()
            raise
        if self._needs_compaction():
            self._compact()

    # -- writing ---------------------------------------------------------------------------------

    async def append(self, entries: list[Entry], apply: Callable[[], None], *,
                     producer: Producer | None = None) -> None:
        """Append `entries` as one batch (transactional, of `producer`, if given), then `apply()`
        them to the owner's memory. Raises RecordBatchTooLargeError when they do not fit one
        batch, or another LogError (and nothing is applied)."""
        await self._write(_data_batch(entries, self.clock(), producer), len(entries), apply)

    async def append_marker(self, producer: Producer, control_type: records.ControlType,
                            apply: Callable[[], None]) -> None:
        """Append a COMMIT or ABORT marker of `producer`'s transaction, then `apply()` it."""
        marker = records.build_control_batch(
            control_type, producer_id=producer.producer_id, producer_epoch=producer.producer_epoch,
            coordinator_epoch=COORDINATOR_EPOCH, timestamp=self.clock())
        await self._write(marker, 1, apply)

    async def _write(self, batch: bytes, count: int, apply: Callable[[], None]) -> None:
        """Cancellable only while it waits for another write, before anything is written: once
        appended and applied, the compaction and fsync that follow are finished whatever cancels
        the caller, so that the owner's memory never holds what the log may lose."""
        try:
            # Taken without a checkpoint when free: a checkpoint costs more than the append.
            self._writing.acquire_nowait()
        except trio.WouldBlock:
            await self._writing.acquire()
        try:
            log = self._log
            log.append(batch)
            self.log_records += count
            apply()
            end = log.log_end_offset
            if self._needs_compaction():
                with trio.CancelScope(shield=True):
                    async with self._flushing:
                        await run_storage_work(self._compact)
        finally:
            self._writing.release()
        if self.fsync:
            with trio.CancelScope(shield=True):
                async with self._flushing:
                    # A compaction meanwhile closed `log`, fsyncing it, and swapped in a synced copy.
                    if log is self._log and log.flushed_offset < end:
                        await run_storage_work(log.flush)

    def close(self, outcome: CloseOutcome | None = None) -> None:
        """Close the log; with `outcome`, a failure is noted there instead of raised."""
        if outcome is None:
            self._log.close()
        else:
            close_log(self._log, outcome)

    # -- replay and compaction -------------------------------------------------------------------

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
            self._state.replay_marker(producer, records.control_type(batch))
            return
        for record in records.iter_records(batch):
            if record.key is None:
                raise InternalLogError(f"{self.directory}: record at offset {record.offset} has no key")
            self.log_records += 1
            self._state.replay_record(producer, record)

    def _needs_compaction(self) -> bool:
        live = self._state.live_records
        dead = self.log_records - live
        return dead > 0 and dead >= max(self.min_dead_records, live)

    def _compact(self) -> None:
        """Replace the log with one holding only the live entries (tombstones have nothing left
        to hide, and markers no transaction left to end)."""
        compacted = self._sibling(_COMPACTED_SUFFIX)
        shutil.rmtree(compacted, ignore_errors=True)
        fresh = Log(compacted, _log_config(), clock=self.clock)
        now = self.clock()
        written = 0
        for producer, chunk in _batches(self._state.live_entries(), _RECORDS_PER_COMPACTED_BATCH):
            fresh.append(_data_batch(chunk, now, producer))
            written += len(chunk)
        fresh.close()
        self._log.close()
        retired = self._sibling(_RETIRED_SUFFIX)
        os.replace(self.directory, retired)
        os.replace(compacted, self.directory)
        fsync_directory(self.directory.parent)
        shutil.rmtree(retired)
        logger.info("compacted %s from %d records to %d", self.directory, self.log_records, written)
        self._log = Log(self.directory, _log_config(), clock=self.clock)
        self.log_records = written

    def _finish_interrupted_compaction(self) -> None:
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


def _batches(entries: Iterable[tuple[Producer | None, Entry]], size: int
             ) -> Iterator[tuple[Producer | None, list[Entry]]]:
    """Consecutive entries of one producer (or of none), in batches of at most `size`."""
    for producer, run in itertools.groupby(entries, key=lambda item: item[0]):
        chunk: list[Entry] = []
        for _, entry in run:
            chunk.append(entry)
            if len(chunk) == size:
                yield producer, chunk
                chunk = []
        if chunk:
            yield producer, chunk
