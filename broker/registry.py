"""Topics and partitions: each partition is one directory `<topic>-<partition>` holding its own log.

Topic metadata (topic id, partition count, config overrides) lives in `topics/<name>.json`,
written atomically; each partition directory also carries Kafka's `partition.metadata` with the
topic id. A deleted topic's partition directories are first renamed `<dir>.<id>-delete` (as Kafka
does) and then removed, so a crash half-way leaves nothing that looks like a live partition.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path

import trio

from broker.metadata import MetadataError, write_atomically, write_topic_id
from broker.producer_state import ProducerStateTable
from broker.topic_config import TopicConfig
from log import Log

logger = logging.getLogger(__name__)

LEADER_EPOCH = 0
_PRODUCER_SNAPSHOT = "producer-state.snapshot"
_TOPICS_DIRECTORY = "topics"
_DELETED_SUFFIX = "-delete"
_MAX_FILE_NAME = 255


class Partition:
    def __init__(self, topic: Topic, index: int, log: Log, producers: ProducerStateTable) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.producers = producers
        self._snapshot_offset: int | None = None
        self._flush_running = False
        self._flush_done = trio.Event()

    @property
    def directory(self) -> Path:
        return self.log.directory

    async def flush_to(self, offset: int) -> None:
        """Return once everything below `offset` is fsynced.

        The fsync runs in a worker thread so the event loop keeps serving; callers that arrive
        while one runs share the next one (group commit) instead of queueing an fsync each.
        """
        while self.log.flushed_offset < offset and not self.log.closed:
            if self._flush_running:
                await self._flush_done.wait()
                continue
            self._flush_running = True
            try:
                await trio.to_thread.run_sync(self.log.flush)
            finally:
                self._flush_running = False
                self._flush_done.set()
                self._flush_done = trio.Event()

    def write_producer_snapshot(self) -> None:
        """Snapshot the producer state, unless nothing was appended since the last snapshot."""
        if self.log.log_end_offset != self._snapshot_offset:
            self.producers.write_snapshot(self.directory / _PRODUCER_SNAPSHOT, self.log.log_end_offset)
            self._snapshot_offset = self.log.log_end_offset

    def close(self) -> None:
        self.write_producer_snapshot()
        self.log.close()


class Topic:
    def __init__(self, name: str, topic_id: uuid.UUID, config: TopicConfig) -> None:
        self.name = name
        self.topic_id = topic_id
        self.config = config
        self.partitions: list[Partition] = []

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "topic_id": str(self.topic_id),
                           "partitions": len(self.partitions), "configs": self.config.overrides})


def _deleted_name(directory_name: str, topic_id: uuid.UUID) -> str:
    """`<dir>.<topic id>-delete`, the directory name cut so that the whole stays within 255 bytes
    (a topic name may be 249 characters long), as Kafka cuts it."""
    suffix = f".{topic_id.hex}{_DELETED_SUFFIX}"
    return directory_name[:_MAX_FILE_NAME - len(suffix)] + suffix


def _load_producer_state(log: Log, directory: Path) -> ProducerStateTable:
    """The snapshot written at the last close, brought up to the log end by replaying what follows it."""
    snapshot = ProducerStateTable.read_snapshot(directory / _PRODUCER_SNAPSHOT)
    if snapshot is not None and snapshot[1] <= log.log_end_offset:
        table, start = snapshot
    else:
        table, start = ProducerStateTable(), log.log_start_offset
    if start < log.log_end_offset:
        for batch in log.iter_batches(max(start, log.log_start_offset)):
            table.record(batch.producer_id, batch.producer_epoch, batch.base_sequence,
                          batch.base_offset, batch.last_offset, batch.max_timestamp)
    return table


class TopicRegistry:
    """Every topic and partition this broker hosts, by name and by topic id."""

    def __init__(self, data_dir: Path, broker_config) -> None:
        self.data_dir = data_dir
        self.broker_config = broker_config
        self.topics: dict[str, Topic] = {}
        self.topics_by_id: dict[uuid.UUID, Topic] = {}
        self._topics_dir = data_dir / _TOPICS_DIRECTORY

    def _metadata_path(self, name: str) -> Path:
        return self._topics_dir / f"{name}.json"

    def _open_partition(self, topic: Topic, index: int) -> Partition:
        directory = self.data_dir / f"{topic.name}-{index}"
        log = Log(directory, topic.config.log_config())
        return Partition(topic, index, log, _load_producer_state(log, directory))

    def load(self) -> None:
        """Open every topic recorded in the data directory, and finish interrupted deletions."""
        self._topics_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.data_dir.glob(f"*{_DELETED_SUFFIX}"):
            shutil.rmtree(leftover, ignore_errors=True)
        for path in sorted(self._topics_dir.glob("*.json")):
            try:
                stored = json.loads(path.read_text())
                topic = Topic(stored["name"], uuid.UUID(stored["topic_id"]),
                              TopicConfig(self.broker_config, dict(stored["configs"])))
                count = int(stored["partitions"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise MetadataError(f"{path}: unreadable topic metadata ({exc})") from exc
            topic.partitions = [self._open_partition(topic, i) for i in range(count)]
            self._add(topic)

    def create_topic(self, name: str, num_partitions: int, overrides: dict[str, str] | None = None) -> Topic:
        """Create a topic whose name, partition count and configs the caller has validated."""
        topic = Topic(name, uuid.uuid4(), TopicConfig(self.broker_config, dict(overrides or {})))
        self._add_partitions(topic, num_partitions)
        self._add(topic)
        logger.info("created topic %s with %d partition(s)", name, num_partitions)
        return topic

    def _add_partitions(self, topic: Topic, count: int) -> None:
        for index in range(len(topic.partitions), count):
            directory = self.data_dir / f"{topic.name}-{index}"
            directory.mkdir(parents=True, exist_ok=True)
            write_topic_id(directory, topic.topic_id)
            topic.partitions.append(self._open_partition(topic, index))
        # The metadata file is written last: a crash before it leaves no half-created topic.
        self._topics_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._metadata_path(topic.name), topic.to_json())

    def create_partitions(self, topic: Topic, count: int) -> None:
        self._add_partitions(topic, count)
        logger.info("topic %s now has %d partition(s)", topic.name, count)

    def alter_config(self, topic: Topic, overrides: dict[str, str]) -> None:
        """Replace the topic's overrides, persist them, and apply them to its open logs."""
        topic.config = TopicConfig(self.broker_config, dict(overrides))
        write_atomically(self._metadata_path(topic.name), topic.to_json())
        log_config = topic.config.log_config()
        for partition in topic.partitions:
            partition.log.reconfigure(log_config)

    async def delete_topic(self, topic: Topic) -> None:
        """Forget the topic at once; remove its data in a worker thread."""
        del self.topics[topic.name]
        del self.topics_by_id[topic.topic_id]
        self._metadata_path(topic.name).unlink(missing_ok=True)
        doomed = []
        for partition in topic.partitions:
            partition.log.close()
            target = partition.directory.with_name(_deleted_name(partition.directory.name, topic.topic_id))
            partition.directory.rename(target)
            doomed.append(target)
        logger.info("deleted topic %s", topic.name)
        for target in doomed:
            await trio.to_thread.run_sync(shutil.rmtree, target, True)

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

    def close(self) -> None:
        for partition in self.all_partitions():
            partition.close()
