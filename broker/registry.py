"""Topics and partitions: each partition is one directory `<topic>-<partition>` holding its own log."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from pathlib import Path

import trio

from broker.metadata import read_topic_id, write_topic_id
from broker.producer_state import ProducerStateTable
from log import Log, LogConfig

logger = logging.getLogger(__name__)

LEADER_EPOCH = 0
_PRODUCER_SNAPSHOT = "producer-state.snapshot"
@dataclasses.dataclass(frozen=True)
class TopicConfig:
    message_timestamp_type: str
    max_message_bytes: int


class Partition:
    def __init__(self, topic: Topic, index: int, log: Log, producers: ProducerStateTable) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.producers = producers
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
        while self.log.flushed_offset < offset:
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
        self.producers.write_snapshot(self.directory / _PRODUCER_SNAPSHOT, self.log.log_end_offset)

    def close(self) -> None:
        self.write_producer_snapshot()
        self.log.close()


@dataclasses.dataclass
class Topic:
    name: str
    topic_id: uuid.UUID
    config: TopicConfig
    partitions: list[Partition] = dataclasses.field(default_factory=list)


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

    def __init__(self, data_dir: Path, log_config: LogConfig) -> None:
        self.data_dir = data_dir
        self.log_config = log_config
        self.topics: dict[str, Topic] = {}
        self.topics_by_id: dict[uuid.UUID, Topic] = {}

    def _open_partition(self, topic: Topic, index: int) -> Partition:
        directory = self.data_dir / f"{topic.name}-{index}"
        log = Log(directory, self.log_config)
        return Partition(topic, index, log, _load_producer_state(log, directory))

    def load(self, topic_config: TopicConfig) -> None:
        """Open every partition directory found in the data directory."""
        found: dict[str, list[int]] = {}
        for path in sorted(self.data_dir.iterdir()):
            name, dash, index = path.name.rpartition("-")
            if path.is_dir() and dash and index.isdigit() and (path / "partition.metadata").exists():
                found.setdefault(name, []).append(int(index))
        for name, indexes in found.items():
            indexes.sort()
            topic = Topic(name, read_topic_id(self.data_dir / f"{name}-{indexes[0]}"), topic_config)
            topic.partitions = [self._open_partition(topic, i) for i in indexes]
            self._add(topic)

    def create_topic(self, name: str, num_partitions: int, topic_config: TopicConfig) -> Topic:
        topic = Topic(name, uuid.uuid4(), topic_config)
        for index in range(num_partitions):
            directory = self.data_dir / f"{name}-{index}"
            directory.mkdir(parents=True, exist_ok=True)
            write_topic_id(directory, topic.topic_id)
            topic.partitions.append(self._open_partition(topic, index))
        self._add(topic)
        logger.info("created topic %s with %d partition(s)", name, num_partitions)
        return topic

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
