"""Committed offsets: served from memory, made durable in an internal log, kept compact.

Every commit is appended to a log on the `log/` engine (in the data directory, under
`OFFSETS_LOG_DIRECTORY`) before it is acknowledged, as one record batch whose records use
Kafka's own `__consumer_offsets` layout, declared in protocol.messages.group_data: the key is
an OffsetCommitKey (version 1: group, topic, partition), the value an OffsetCommitValue
(version 3: offset, leader epoch, metadata, commit timestamp), and a deleted group leaves a
tombstone (null value) for each of its offsets. Every version Kafka declares is read back.

On start the log is replayed into memory. The log only grows, so once the records that later
ones superseded (or tombstones) outnumber the live ones, the live entries are written into a
fresh log that replaces the old one: start-up time follows the number of live offsets, not the
number of commits ever made. That rewrite is crash-safe: the new log is complete and fsynced
before a rename swaps it in, and a start-up finishes or discards an interrupted swap.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import trio
from construct import Container

from broker.metadata import MetadataError
from broker.registry import CloseOutcome, close_log
from broker.storage_work import run_storage_work
from log import CorruptLogError, Log, LogConfig, current_time_ms
from log.checkpoint import fsync_directory
from protocol import records
from protocol.errors import ProtocolError
from protocol.messages.group_data import OFFSET_COMMIT_KEY, OFFSET_COMMIT_VALUE
from protocol.schema import MessageCodec

logger = logging.getLogger(__name__)

# Not `<name>-<partition>`: the topic registry never takes this directory for a topic's.
OFFSETS_LOG_DIRECTORY = "__consumer_offsets"
_COMPACTED_SUFFIX = ".compacted"
_RETIRED_SUFFIX = ".retired"
# Kafka's offsets.topic.segment.bytes; a commit is one batch, so a batch may be as large.
OFFSETS_SEGMENT_BYTES = 100 * 1024 * 1024
# Rewrite the log once superseded records are at least this many and outnumber live ones.
MIN_DEAD_RECORDS_FOR_COMPACTION = 10_000
_RECORDS_PER_COMPACTED_BATCH = 1000
_REPLAY_READ_BYTES = 1024 * 1024

# The record versions written; any version Kafka declares is read.
OFFSET_COMMIT_KEY_VERSION = 1
OFFSET_COMMIT_VALUE_VERSION = 3
_VERSION = struct.Struct(">h")
_MAX_STRING_BYTES = 32767
NO_LEADER_EPOCH = -1

TopicPartition = tuple[str, int]


class OffsetsLogError(MetadataError):
    """The offsets log holds a record this broker cannot read."""


@dataclasses.dataclass(frozen=True)
class OffsetAndMetadata:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


def fits_in_key(name: str) -> bool:
    """Whether a group id or topic name fits the 16-bit length of Kafka's offset key strings."""
    return len(name.encode()) <= _MAX_STRING_BYTES


def _versioned(codec: MessageCodec, version: int, fields: dict) -> bytes:
    return _VERSION.pack(version) + codec.encode(version, fields)


def _read_versioned(codec: MessageCodec, data: bytes) -> Container:
    """A record written as an int16 version and `codec`'s message of that version."""
    try:
        (version,) = _VERSION.unpack_from(data)
        if version not in codec.valid_versions:
            raise OffsetsLogError(f"{codec.name} version {version} is not one of {codec.valid_versions}")
        return codec.decode(version, data, _VERSION.size)
    except (struct.error, ProtocolError) as exc:
        raise OffsetsLogError(f"unreadable {codec.name}: {exc}") from exc


def encode_key(group_id: str, topic: str, partition: int) -> bytes:
    return _versioned(OFFSET_COMMIT_KEY, OFFSET_COMMIT_KEY_VERSION,
                      OFFSET_COMMIT_KEY(group=group_id, topic=topic, partition=partition))


def decode_key(data: bytes) -> tuple[str, TopicPartition]:
    key = _read_versioned(OFFSET_COMMIT_KEY, data)
    return key.group, (key.topic, key.partition)


def encode_value(value: OffsetAndMetadata) -> bytes:
    return _versioned(OFFSET_COMMIT_VALUE, OFFSET_COMMIT_VALUE_VERSION, OFFSET_COMMIT_VALUE(
        offset=value.offset, leader_epoch=value.leader_epoch, metadata=value.metadata,
        commit_timestamp=value.commit_timestamp))


def decode_value(data: bytes) -> OffsetAndMetadata:
    value = _read_versioned(OFFSET_COMMIT_VALUE, data)
    # Versions before 3 have no leader epoch: it is unknown.
    return OffsetAndMetadata(value.offset, value.get("leader_epoch", NO_LEADER_EPOCH), value.metadata,
                             value.commit_timestamp)


def _offsets_log_config() -> LogConfig:
    # Never deleted by age or size: compaction alone bounds this log.
    return LogConfig(segment_bytes=OFFSETS_SEGMENT_BYTES, max_message_bytes=OFFSETS_SEGMENT_BYTES,
                     retention_ms=-1, retention_bytes=-1)


def _batch(entries: list[tuple[bytes, bytes | None]], timestamp: int) -> bytes:
    return records.build_batch([records.Record(key, value, (), timestamp) for key, value in entries])


class OffsetStore:
    """Every group's committed offsets, durable in the offsets log under `data_dir`.

    Writes are serialised (one append at a time, none during a compaction); reads are from
    memory. With `fsync`, a commit is also fsynced before it returns (commits waiting at the
    same time share one fsync), as acks=all produce requests are with --flush-on-ack.
    """

    def __init__(self, data_dir: Path, *, fsync: bool = False,
                 min_dead_records: int = MIN_DEAD_RECORDS_FOR_COMPACTION,
                 clock: Callable[[], int] = current_time_ms) -> None:
        self.directory = data_dir / OFFSETS_LOG_DIRECTORY
        self.fsync = fsync
        self.min_dead_records = min_dead_records
        self.clock = clock
        self._offsets: dict[str, dict[TopicPartition, OffsetAndMetadata]] = {}
        # How many offsets are committed over all groups, and how many records the log holds
        # (superseded ones and tombstones included).
        self.live_records = 0
        self.log_records = 0
        self._writing = trio.Lock()
        self._flushing = trio.Lock()
        self._finish_interrupted_compaction()
        self._log = Log(self.directory, _offsets_log_config(), clock=self.clock)
        try:
            self._replay()
        except BaseException:
            self._log.close()
            raise
        if self._needs_compaction():
            self._compact()

    # -- reading ---------------------------------------------------------------------------------

    def group_ids(self) -> list[str]:
        return list(self._offsets)

    def group_offsets(self, group_id: str) -> dict[TopicPartition, OffsetAndMetadata]:
        """The group's committed offsets (a copy; empty when it has none)."""
        return dict(self._offsets.get(group_id, {}))

    # -- writing ---------------------------------------------------------------------------------

    async def commit(self, group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Append the offsets as one batch, then make them visible.

        Raises RecordBatchTooLargeError when they do not fit one batch, or another LogError."""
        entries = [(encode_key(group_id, topic, partition), encode_value(value))
                   for (topic, partition), value in offsets.items()]
        await self._write(entries, lambda: self._apply_commit(group_id, offsets))

    async def delete_group(self, group_id: str) -> int:
        """Write a tombstone for each of the group's offsets and forget them; how many there were."""
        return await self._tombstone({group_id: list(self._offsets.get(group_id, {}))})

    async def delete_offsets(self, group_id: str, partitions: list[TopicPartition]) -> int:
        """Write a tombstone for each of `partitions` the group has an offset of; how many it had."""
        committed = self._offsets.get(group_id, {})
        return await self._tombstone({group_id: [partition for partition in partitions if partition in committed]})

    async def delete_topic(self, topic: str) -> int:
        """Forget every group's offsets of a deleted topic, as Kafka does; how many there were."""
        return await self._tombstone({group_id: [tp for tp in offsets if tp[0] == topic]
                                      for group_id, offsets in self._offsets.items()})

    async def _tombstone(self, partitions_by_group: dict[str, list[TopicPartition]]) -> int:
        doomed = {group_id: partitions for group_id, partitions in partitions_by_group.items() if partitions}
        entries = [(encode_key(group_id, topic, partition), None)
                   for group_id, partitions in doomed.items() for topic, partition in partitions]
        def forget() -> None:
            for group_id, partitions in doomed.items():
                self._forget(group_id, partitions)

        if entries:
            await self._write(entries, forget)
        return len(entries)

    async def _write(self, entries: list[tuple[bytes, bytes | None]], apply: Callable[[], None]) -> None:
        async with self._writing:
            log = self._log
            log.append(_batch(entries, self.clock()))
            self.log_records += len(entries)
            apply()
            end = log.log_end_offset
            if self._needs_compaction():
                async with self._flushing:
                    await run_storage_work(self._compact)
        if self.fsync:
            async with self._flushing:
                # A compaction meanwhile closed `log`, fsyncing it, and swapped in a synced copy.
                if log is self._log and log.flushed_offset < end:
                    await run_storage_work(log.flush)

    def _apply_commit(self, group_id: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        committed = self._offsets.setdefault(group_id, {})
        before = len(committed)
        committed.update(offsets)
        self.live_records += len(committed) - before

    def _forget(self, group_id: str, partitions: list[TopicPartition]) -> None:
        # Only what the tombstones cover: a commit may have come in while they were being written.
        committed = self._offsets.get(group_id, {})
        for partition in partitions:
            if committed.pop(partition, None) is not None:
                self.live_records -= 1
        if not committed:
            self._offsets.pop(group_id, None)

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
                # Damaged batches (the log has named the file and byte): the commits before and
                # after them are kept, and a partition whose latest commit was lost keeps its earlier one.
                logger.warning("%s: the commits at offsets %d to %d are lost to damage",
                               self.directory, exc.offset, exc.resume_offset - 1)
                offset = exc.resume_offset
                continue
            start = offset
            try:
                for header, batch in records.iter_batches(chunk, allow_truncated_tail=True):
                    for record in records.iter_records(batch):
                        self._replay_record(record)
                    offset = header.next_offset
            except ProtocolError as exc:
                raise OffsetsLogError(f"{self.directory}: unreadable batch at offset {offset}: {exc}") from exc
            if offset == start:
                raise OffsetsLogError(f"{self.directory}: no whole batch at offset {offset}")

    def _replay_record(self, record: records.Record) -> None:
        if record.key is None:
            raise OffsetsLogError(f"{self.directory}: record at offset {record.offset} has no key")
        group_id, partition = decode_key(record.key)
        self.log_records += 1
        committed = self._offsets.setdefault(group_id, {})
        before = len(committed)
        if record.value is None:
            committed.pop(partition, None)
        else:
            committed[partition] = decode_value(record.value)
        self.live_records += len(committed) - before
        if not committed:
            del self._offsets[group_id]

    def _needs_compaction(self) -> bool:
        dead = self.log_records - self.live_records
        return dead > 0 and dead >= max(self.min_dead_records, self.live_records)

    def _live_entries(self) -> Iterator[tuple[bytes, bytes]]:
        for group_id, committed in self._offsets.items():
            for (topic, partition), value in committed.items():
                yield encode_key(group_id, topic, partition), encode_value(value)

    def _compact(self) -> None:
        """Replace the log with one holding only the live entries (tombstones have nothing left to hide)."""
        compacted = self._sibling(_COMPACTED_SUFFIX)
        shutil.rmtree(compacted, ignore_errors=True)
        fresh = Log(compacted, _offsets_log_config(), clock=self.clock)
        now = self.clock()
        for chunk in _chunks(self._live_entries(), _RECORDS_PER_COMPACTED_BATCH):
            fresh.append(_batch(chunk, now))
        fresh.close()
        self._log.close()
        retired = self._sibling(_RETIRED_SUFFIX)
        os.replace(self.directory, retired)
        os.replace(compacted, self.directory)
        fsync_directory(self.directory.parent)
        shutil.rmtree(retired)
        logger.info("compacted the offsets log from %d records to %d", self.log_records, self.live_records)
        self._log = Log(self.directory, _offsets_log_config(), clock=self.clock)
        self.log_records = self.live_records

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


def _chunks(entries: Iterable[tuple[bytes, bytes]], size: int) -> Iterator[list[tuple[bytes, bytes]]]:
    chunk: list[tuple[bytes, bytes]] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
