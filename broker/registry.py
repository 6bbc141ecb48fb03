"""Topics and partitions: each partition is one directory `<topic>-<partition>` holding its own log.

Topic metadata (topic id, partition count, config overrides) lives in `topics/<name>.json`,
written atomically; each partition directory also carries Kafka's `partition.metadata` with the
topic id. A deleted topic's partition directories are first renamed `<dir>.<id>-delete` (as Kafka
does) and then removed, so a crash half-way leaves nothing that looks like a live partition.

File work (creating partitions, writing metadata, closing logs) runs off the event loop through
broker.storage_work, so a topic of 10,000 partitions does not stall it. A topic appears in the
registry only once all its files exist; a creation that fails half-way removes what it made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import logging
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import trio

from broker.metadata import PARTITION_METADATA, MetadataError, write_atomically, write_topic_id
from broker.producer_state import ProducerStateTable, write_snapshot_text
from broker.storage_work import run_storage_work, run_storage_work_each
from broker.topic_config import DynamicValue, TopicConfig
from log import BatchInfo, CorruptLogError, Log, LogError, LogStorageError
from log.checkpoint import fsync_directory
from log.log import CLEAN_SHUTDOWN_MARKER, current_time_ms
from protocol import records
from protocol.errors import ApiError, CorruptRecordError, ErrorCode
from protocol.record_batch import CONTROL_MASK, TRANSACTIONAL_MASK

logger = logging.getLogger(__name__)

LEADER_EPOCH = 0
_PRODUCER_SNAPSHOT = "producer-state.snapshot"
_TOPICS_DIRECTORY = "topics"
_DELETED_SUFFIX = "-delete"
_MAX_FILE_NAME = 255
_PARTITION_DIRECTORY = re.compile(r".+-\d+")


class Partition:
    def __init__(self, topic: Topic, index: int, log: Log, producers: ProducerStateTable,
                 snapshot_offset: int | None = None, *, clock: Callable[[], int] = current_time_ms) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.producers = producers
        # The broker's clock: the timestamps of the transaction markers written here.
        self.clock = clock
        # The log end offset of the snapshot on disk (None: none, or an outdated one).
        self._snapshot_offset = snapshot_offset
        self._flush_running = False
        self._flush_done = trio.Event()

    @property
    def directory(self) -> Path:
        return self.log.directory

    @property
    def last_stable_offset(self) -> int:
        """Where read_committed consumers stop: the first offset of the oldest ongoing transaction
        (not below the log start offset, as Kafka raises it when retention or DeleteRecords passes
        it), else the log end offset (the high watermark of a single broker)."""
        first_unstable = self.producers.first_unstable_offset
        if first_unstable is None:
            return self.log.log_end_offset
        return max(first_unstable, self.log.log_start_offset)

    def write_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int, commit: bool) -> bool:
        """End the producer's transaction here with a COMMIT or ABORT marker, appended only if it
        has one ongoing (an ABORT is recorded in the transaction index); whether it was appended.
        Raises ApiError for a marker of an older producer epoch or coordinator, or when the log
        cannot be written. On the event loop: the append does not block."""
        error = self.producers.check_marker(producer_id, producer_epoch, coordinator_epoch)
        if error != ErrorCode.NONE:
            raise ApiError(error, f"{self.topic.name}-{self.index}: marker of producer {producer_id} epoch "
                                  f"{producer_epoch}, coordinator epoch {coordinator_epoch}, is stale")
        if not self.producers.has_ongoing(producer_id):
            # Nothing to end here; a verification in flight is void all the same (KIP-890).
            self.producers.cancel_verification(producer_id)
            return False
        timestamp = self.clock()
        marker = records.build_control_batch(
            records.ControlType.COMMIT if commit else records.ControlType.ABORT, producer_id=producer_id,
            producer_epoch=producer_epoch, coordinator_epoch=coordinator_epoch, timestamp=timestamp)
        try:
            appended = self.log.append(marker)
        except LogStorageError as exc:
            logger.error("%s-%d: cannot append a transaction marker: %s", self.topic.name, self.index, exc)
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from exc
        aborted = self.producers.complete_transaction(producer_id, producer_epoch, coordinator_epoch,
                                                      appended.base_offset, commit, timestamp=timestamp)
        if aborted is not None:
            self.log.add_aborted_transaction(aborted)
        return True

    async def flush_to(self, offset: int) -> None:
        """Return once everything below `offset` is fsynced.

        The fsync runs off the event loop, which keeps serving; callers that arrive
        while one runs share the next one (group commit) instead of queueing an fsync each.
        """
        await self._flush_until(lambda: self.log.flushed_offset >= offset)

    async def delete_records(self, before_offset: int) -> int:
        """Kafka's DeleteRecords: the new log start offset, made durable (fsynced off the loop) first."""
        log_start_offset = self.log.delete_records(before_offset)
        await self._flush_until(lambda: self.log.durable_log_start_offset >= log_start_offset)
        await self.remove_deleted_files()
        return log_start_offset

    async def remove_deleted_files(self) -> None:
        """Unlink the files of the segments retention or DeleteRecords took out file.delete.delay.ms
        ago or more, off the event loop (unlinking a file still being written back can block)."""
        due = self.log.file_removal_due_ms
        if due is None or due > self.clock():
            return
        try:
            await run_storage_work(self.log.remove_deleted_files)
        except LogStorageError as exc:
            logger.warning("%s: cannot remove deleted segment files, retried later: %s", self.directory, exc)

    async def _flush_until(self, done) -> None:
        while not done() and not self.log.closed:
            if self._flush_running:
                await self._flush_done.wait()
                continue
            self._flush_running = True
            try:
                await run_storage_work(self.log.flush)
            finally:
                self._flush_running = False
                self._flush_done.set()
                self._flush_done = trio.Event()

    def take_producer_snapshot(self) -> tuple[Path, str] | None:
        """The producer-state snapshot to write (path, text), unless nothing was appended since
        the last one taken. Taken on the event loop; written anywhere (write_snapshot_text)."""
        end = self.log.log_end_offset
        if end == self._snapshot_offset:
            return None
        self._snapshot_offset = end
        return self.directory / _PRODUCER_SNAPSHOT, self.producers.snapshot(end)

    def snapshot_not_written(self) -> None:
        """The snapshot taken last could not be written: take the next one even if nothing changes."""
        self._snapshot_offset = None

    def close(self, outcome: CloseOutcome) -> None:
        """Snapshot the producer state and close the log, noting in `outcome` what could not be
        written. Blocks on fsyncs: at shutdown it runs in a worker thread, nothing else using it."""
        if (self.directory / CLEAN_SHUTDOWN_MARKER).exists():
            # The last clean shutdown's marker, which the log removes before its first change:
            # nothing was appended since, and its files, indexes and snapshot are as they were.
            return
        taken = self.take_producer_snapshot()
        if taken is not None:
            try:
                write_snapshot_text(*taken)
            except OSError as exc:
                outcome.unwritten.append(f"{taken[0]}: {exc.strerror}")
        close_log(self.log, outcome)


def close_log(log: Log, outcome: CloseOutcome) -> None:
    """Close `log` (blocking on fsyncs), noting in `outcome` what could not be written."""
    try:
        log.close()
    except LogError as exc:
        # Indexes or the clean-shutdown marker are missing: the next start recovers the log,
        # provided the appended data itself is on disk.
        outcome.unwritten.append(str(exc))
        try:
            log.flush()
        except LogError as flush_error:
            outcome.unsynced.append(str(flush_error))


@dataclasses.dataclass
class CloseOutcome:
    """What closing the logs could not write. `unwritten`: files the next start does without or
    rebuilds (indexes, snapshots, clean-shutdown markers); `unsynced`: logs whose appended data
    may not be on disk."""

    unwritten: list[str] = dataclasses.field(default_factory=list)
    unsynced: list[str] = dataclasses.field(default_factory=list)


class Topic:
    def __init__(self, name: str, topic_id: uuid.UUID, config: TopicConfig) -> None:
        self.name = name
        self.topic_id = topic_id
        self.config = config
        self.partitions: list[Partition] = []

    def to_json(self, partition_count: int, config: TopicConfig) -> str:
        """The topic's metadata file as it will be with `partition_count` partitions and `config`."""
        return json.dumps({"name": self.name, "topic_id": str(self.topic_id),
                           "partitions": partition_count, "configs": config.overrides})


def _deleted_name(directory_name: str, topic_id: uuid.UUID) -> str:
    """`<dir>.<topic id>-delete`, the directory name cut so that the whole stays within 255 bytes
    (a topic name may be 249 characters long), as Kafka cuts it."""
    suffix = f".{topic_id.hex}{_DELETED_SUFFIX}"
    return directory_name[:_MAX_FILE_NAME - len(suffix)] + suffix


def _load_producer_state(log: Log, directory: Path) -> tuple[ProducerStateTable, int | None]:
    """The snapshot written at the last close, brought up to the log end by replaying what follows
    it; and the log end offset of the snapshot on disk, if that is still the whole state.

    The replay also re-adds to the transaction index the aborted transactions whose markers lie at
    or past log.transaction_index_end (segments recovered or without an index). When markers lie
    there below the snapshot, their transactions may have started anywhere before: the replay then
    starts at the log start, with an empty table."""
    snapshot = ProducerStateTable.read_snapshot(directory / _PRODUCER_SNAPSHOT)
    index_end = log.transaction_index_end
    if snapshot is not None and snapshot[1] <= log.log_end_offset:
        table, start = snapshot
        if index_end < start and _has_markers(log, index_end, start):
            table, start = ProducerStateTable(), log.log_start_offset
    else:
        table, start = ProducerStateTable(), log.log_start_offset
    if start < log.log_end_offset:
        for batch in log.iter_batches(max(start, log.log_start_offset)):
            if batch.attributes & CONTROL_MASK:
                _replay_marker(log, table, batch, index_end)
            else:
                table.record(batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.base_offset,
                             batch.last_offset, batch.max_timestamp, bool(batch.attributes & TRANSACTIONAL_MASK))
    # An empty log needs no snapshot: there is nothing to replay.
    return table, (start if start == log.log_end_offset else None)


def _has_markers(log: Log, start: int, end: int) -> bool:
    """Whether a control batch lies in [start, end)."""
    for batch in log.iter_batches(start):
        if batch.base_offset >= end:
            return False
        if batch.attributes & CONTROL_MASK:
            return True
    return False


def _replay_marker(log: Log, table: ProducerStateTable, batch: BatchInfo, index_end: int) -> None:
    try:
        marker = records.end_txn_marker(bytes(log.read(batch.base_offset, batch.size)))
    except (CorruptRecordError, CorruptLogError) as exc:
        # Its transaction stays open here, as if the marker had not been written: the producer's
        # next marker here ends it.
        logger.error("%s: unreadable transaction marker at offset %d: %s", log.directory, batch.base_offset, exc)
        return
    aborted = table.complete_transaction(batch.producer_id, batch.producer_epoch, marker.coordinator_epoch,
                                         batch.base_offset, marker.control_type == records.ControlType.COMMIT,
                                         timestamp=batch.max_timestamp)
    if aborted is not None and batch.base_offset >= index_end:
        log.add_aborted_transaction(aborted)


class TopicRegistry:
    """Every topic and partition this broker hosts, by name and by topic id."""

    def __init__(self, data_dir: Path, broker_config, *, clock: Callable[[], int] = current_time_ms,
                 topic_defaults: Mapping[str, DynamicValue] | None = None) -> None:
        self.data_dir = data_dir
        self.broker_config = broker_config
        # The topic configs' defaults set by dynamic broker configs, by topic config name.
        self.topic_defaults: Mapping[str, DynamicValue] = topic_defaults or {}
        # The broker's clock, every log's: append times, segment ages, retention, flush.ms.
        self.clock = clock
        self.topics: dict[str, Topic] = {}
        self.topics_by_id: dict[uuid.UUID, Topic] = {}
        self._topics_dir = data_dir / _TOPICS_DIRECTORY
        # Topics whose files are being changed in a worker thread, with the event set when done.
        self._changing: dict[str, trio.Event] = {}

    def _config(self, overrides: dict[str, str]) -> TopicConfig:
        return TopicConfig(self.broker_config, overrides, self.topic_defaults)

    def _configure(self, topic: Topic, overrides: dict[str, str]) -> None:
        """Give the topic `overrides` over the broker's current defaults, in its logs too."""
        topic.config = self._config(overrides)
        log_config = topic.config.log_config()
        for partition in topic.partitions:
            partition.log.reconfigure(log_config)

    def set_topic_defaults(self, topic_defaults: Mapping[str, DynamicValue]) -> None:
        """New dynamic defaults, applied at once to every topic: those without a value of their
        own take them."""
        self.topic_defaults = topic_defaults
        for topic in self.topics.values():
            self._configure(topic, topic.config.overrides)

    def _metadata_path(self, name: str) -> Path:
        return self._topics_dir / f"{name}.json"

    def _partition_directory(self, topic: Topic, index: int) -> Path:
        return self.data_dir / f"{topic.name}-{index}"

    def _open_partition(self, topic: Topic, index: int) -> Partition:
        directory = self._partition_directory(topic, index)
        log = Log(directory, topic.config.log_config(), clock=self.clock)
        return Partition(topic, index, log, *_load_producer_state(log, directory), clock=self.clock)

    def load(self) -> None:
        """Open every topic recorded in the data directory, and finish interrupted creations and
        deletions."""
        self._topics_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.data_dir.glob(f"*{_DELETED_SUFFIX}"):
            shutil.rmtree(leftover, ignore_errors=True)
        for path in sorted(self._topics_dir.glob("*.json")):
            try:
                stored = json.loads(path.read_text())
                topic = Topic(stored["name"], uuid.UUID(stored["topic_id"]),
                              self._config(dict(stored["configs"])))
                count = int(stored["partitions"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise MetadataError(f"{path}: unreadable topic metadata ({exc})") from exc
            topic.partitions = [self._open_partition(topic, i) for i in range(count)]
            self._add(topic)
        self._remove_unfinished_partitions()
        _out_of_collections()

    def _remove_unfinished_partitions(self) -> None:
        """Remove the partition directories that no topic's metadata counts: what a creation (whose
        metadata file is written last) or a deletion (whose metadata file goes first) left behind
        when the broker stopped half-way. A directory without partition.metadata that is not
        empty is not one of ours, and stays."""
        live = {partition.directory.name for partition in self.all_partitions()}
        for directory in self.data_dir.iterdir():
            if directory.name in live or not _PARTITION_DIRECTORY.fullmatch(directory.name) or not directory.is_dir():
                continue
            if (directory / PARTITION_METADATA).exists() or not any(directory.iterdir()):
                logger.info("removing %s: no topic has this partition (its creation or deletion was interrupted)",
                            directory)
                shutil.rmtree(directory, ignore_errors=True)

    def names_in_use(self) -> list[str]:
        """Every topic's name, with those of topics being created."""
        return [*self.topics, *(name for name in self._changing if name not in self.topics)]

    def is_changing(self, name: str) -> bool:
        """Whether the topic `name` is being created, grown, reconfigured or deleted right now."""
        return name in self._changing

    async def settled(self, name: str) -> None:
        """Return once no change of the topic `name` is in flight. Callers that check the topic
        and then change it do so without an await in between, so no other change slips in."""
        while name in self._changing:
            await self._changing[name].wait()

    @contextlib.asynccontextmanager
    async def _change(self, name: str) -> AsyncIterator[None]:
        """One change of the topic `name` at a time, visible to is_changing while it runs."""
        await self.settled(name)
        done = self._changing[name] = trio.Event()
        try:
            yield
        finally:
            del self._changing[name]
            done.set()

    async def create_topic(self, name: str, num_partitions: int, overrides: dict[str, str] | None = None) -> Topic:
        """Create a topic whose name, partition count and configs the caller has validated.

        Raises LogError, having removed what it made, when its files cannot be made."""
        topic = Topic(name, uuid.uuid4(), self._config(dict(overrides or {})))
        async with self._change(name):
            topic.partitions = await self._make_partitions(topic, num_partitions)
            if topic.config.dynamic is not self.topic_defaults:  # changed while the files were made
                self._configure(topic, topic.config.overrides)
            self._add(topic)
        logger.info("created topic %s with %d partition(s)", name, num_partitions)
        return topic

    async def create_partitions(self, topic: Topic, count: int) -> None:
        """Grow the topic to `count` partitions; raises LogError, having removed what it made."""
        async with self._change(topic.name):
            added = await self._make_partitions(topic, count)
            topic.partitions.extend(added)
        logger.info("topic %s now has %d partition(s)", topic.name, count)

    async def _make_partitions(self, topic: Topic, count: int) -> list[Partition]:
        """Make and open the topic's partitions from len(topic.partitions) up to `count`, then
        record the new count in its metadata file. The file work, in worker threads, touches only
        what no one else sees yet. On any failure (full disk, no descriptors left, ...) it closes
        and removes what it made, and raises LogError (LogStorageError for what the system refused).
        It is not cancelled half-way: its files are made or removed whole."""
        made: list[Path] = []  # appended to by the threads of run_storage_work_each

        def make(index: int) -> Partition:
            directory = self._partition_directory(topic, index)
            if not directory.exists():
                directory.mkdir(parents=True)
                made.append(directory)
            write_topic_id(directory, topic.topic_id)
            partition = self._open_partition(topic, index)
            _out_of_collections()
            return partition

        opened: list[Partition] = []
        with trio.CancelScope(shield=True):
            try:
                opened = await run_storage_work_each(make, range(len(topic.partitions), count))
                # The metadata file is written last: a crash before it leaves no half-created topic.
                await run_storage_work(self._write_metadata, topic, count, topic.config)
            except (OSError, LogError) as exc:
                # Dropping the logs closes their descriptors, which removing their files may need.
                opened.clear()
                await run_storage_work(_remove_directories, made)
                logger.error("topic %s: cannot create partitions %d to %d: %s", topic.name,
                             len(topic.partitions), count - 1, exc)
                if isinstance(exc, OSError):
                    raise LogStorageError(exc.filename or self.data_dir, exc.strerror or str(exc)) from exc
                raise
        return opened

    def _write_metadata(self, topic: Topic, partition_count: int, config: TopicConfig) -> None:
        """Durably record the topic with `partition_count` partitions and `config` (blocks on fsyncs)."""
        self._topics_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._metadata_path(topic.name), topic.to_json(partition_count, config))

    async def alter_config(self, topic: Topic, overrides: dict[str, str]) -> None:
        """Replace the topic's overrides, persist them, and apply them to its open logs.

        Raises LogStorageError, the topic unchanged, when the metadata file cannot be written."""
        async with self._change(topic.name):
            if self.topics.get(topic.name) is not topic:
                return  # deleted while this waited: no metadata file may bring it back
            config = self._config(dict(overrides))
            try:
                await run_storage_work(self._write_metadata, topic, len(topic.partitions), config)
            except OSError as exc:
                raise LogStorageError(self._metadata_path(topic.name), exc.strerror or str(exc)) from exc
            # Over the defaults as they are now: they may have changed while the file was written.
            self._configure(topic, config.overrides)

    async def delete_topic(self, topic: Topic) -> None:
        """Forget the topic at once; remove its data off the event loop.

        Its logs are not closed (that would fsync data about to be removed): dropping them
        releases their files, and a request still holding one writes or reads an unlinked file.
        Raises LogStorageError, the topic kept, when its metadata file cannot be removed."""
        async with self._change(topic.name):
            if self.topics.get(topic.name) is not topic:
                return  # deleted while this waited
            path = self._metadata_path(topic.name)
            try:
                await run_storage_work(functools.partial(path.unlink, missing_ok=True))
            except OSError as exc:
                raise LogStorageError(path, exc.strerror or str(exc)) from exc
            del self.topics[topic.name]
            del self.topics_by_id[topic.topic_id]
            await run_storage_work(self._remove_partition_directories, topic)
        # Without the cycle topic <-> partitions, reference counting frees them, collector or not.
        topic.partitions = []
        logger.info("deleted topic %s", topic.name)

    def _remove_partition_directories(self, topic: Topic) -> None:
        doomed = []
        try:
            for partition in topic.partitions:
                target = partition.directory.with_name(_deleted_name(partition.directory.name, topic.topic_id))
                partition.directory.rename(target)
                doomed.append(target)
            fsync_directory(self.data_dir)
        except OSError as exc:
            # The topic is gone with its metadata file: the next start removes what is left.
            logger.warning("topic %s: cannot rename its partition directories for removal: %s", topic.name, exc)
        _remove_directories(doomed)

    def _add(self, topic: Topic) -> None:
        self.topics[topic.name] = topic
        self.topics_by_id[topic.topic_id] = topic

    def partition(self, topic_name: str, index: int) -> Partition | None:
        topic = self.topics.get(topic_name)
        if topic is None or not 0 <= index < len(topic.partitions):
            return None
        return topic.partitions[index]

    def all_partitions(self):
        for topic in self.topics.values():
            yield from topic.partitions

    async def maintain(self, now_ms: int) -> list[Partition]:
        """Retention, then producer-state snapshots of the partitions appended to since the last;
        the partitions whose log start offset retention moved.

        Retention changes a log's segment list, which appends change too, so it runs on the event
        loop, one partition per step (a few unlinks); the snapshots are written off it."""
        snapshots = []
        moved = []
        partitions = list(self.all_partitions())
        for partition in partitions:
            await trio.lowlevel.checkpoint()
            if partition.log.closed:
                continue
            log_start_offset = partition.log.log_start_offset
            try:
                partition.log.apply_retention(now_ms)
            except LogError as exc:
                logger.warning("%s: retention failed: %s", partition.directory, exc)
            if partition.log.log_start_offset != log_start_offset:
                moved.append(partition)
            taken = partition.take_producer_snapshot()
            if taken is not None:
                snapshots.append((partition, *taken))
        for partition in partitions:  # those whose deleted files are due
            await partition.remove_deleted_files()
        failed = await run_storage_work(_write_snapshots, snapshots)
        for partition, _ in failed:
            partition.snapshot_not_written()
        if failed:
            logger.warning("cannot write %d producer-state snapshot(s), retried next time (%s: %s)",
                           len(failed), failed[0][0].directory, failed[0][1].strerror)
        return moved

    async def close(self) -> CloseOutcome:
        """Close every partition, in worker threads; what could not be written."""
        outcome = CloseOutcome()
        await run_storage_work_each(lambda partition: partition.close(outcome), list(self.all_partitions()))
        # Stopped: what _out_of_collections kept is the collector's again (an embedding process
        # may start another broker).
        gc.unfreeze()
        return outcome


def _write_snapshots(snapshots: list[tuple[Partition, Path, str]]) -> list[tuple[Partition, OSError]]:
    """Write each snapshot; the partitions whose snapshot could not be written, and why."""
    failed = []
    for partition, path, text in snapshots:
        try:
            write_snapshot_text(path, text)
        except OSError as exc:
            failed.append((partition, exc))
    return failed


def _out_of_collections() -> None:
    """Move every object made so far out of the cyclic collector's way (gc.freeze): partitions
    live as long as their topic, and with thousands of them a full collection scanning them held
    the event loop (or the GIL) for 100+ ms. Deleted topics' partitions are freed by reference
    counting, their one cycle broken."""
    gc.freeze()


def _remove_directories(directories: list[Path]) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
