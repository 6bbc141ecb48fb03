"""The topics service: Kafka's rules for which topics may exist and how they change.

Handlers look topics up and create, grow and delete them through `Topics`, which applies the
rules (names, internal topics, partition counts, auto-creation) and fails with `ApiError`; the
registry below it only keeps topics and their files.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NamedTuple

from broker.registry import Partition, Topic, TopicRegistry
from broker.topic_config import validate_overrides
from broker.topic_names import topic_name_problem
from log import LogError
from protocol.errors import ApiError, ErrorCode

logger = logging.getLogger(__name__)

# Reserved for the coordinators' internal logs, as in Kafka.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
MAX_PARTITIONS = 10_000
# What CreateTopics sends for "the broker's default" partition count and replication factor.
DEFAULT = -1


def _storage_error(exc: LogError, files: str) -> ApiError:
    """Kafka's answer when the log directory cannot hold a topic's files."""
    return ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot create the {files} files: {exc}")


class Created(NamedTuple):
    topic: Topic | None  # None when the request only validated
    partitions: int


class Topics:
    """Topic lookups and changes under Kafka's rules, for a broker that is node `node_id`."""

    def __init__(self, registry: TopicRegistry, *, node_id: int, num_partitions: int, auto_create: bool,
                 forget_offsets: Callable[[str], Awaitable[None]]) -> None:
        self.registry = registry
        self.node_id = node_id
        self.num_partitions = num_partitions
        self.auto_create_enabled = auto_create
        # Deleting a topic removes its committed offsets: the group coordinator's part.
        self._forget_offsets = forget_offsets

    def get(self, name: str) -> Topic | None:
        return self.registry.topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return self.registry.topics_by_id.get(topic_id)

    def all(self) -> Iterable[Topic]:
        return self.registry.topics.values()

    def partition(self, name: str, index: int) -> Partition | None:
        return self.registry.partition(name, index)

    def check_new_name(self, name: str) -> None:
        """Raise ApiError unless a topic `name` can be created as Kafka would allow."""
        if name in self.registry.topics or self.registry.is_changing(name):
            raise ApiError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        problem = topic_name_problem(name)
        if problem:
            raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
        if name in INTERNAL_TOPICS:
            raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"'{name}' is reserved for internal use")
        # Kafka's metric names replace '.' with '_', so two such topics would collide.
        normalised = name.replace(".", "_")
        for existing in self.registry.names_in_use():
            if existing.replace(".", "_") == normalised:
                raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"Topic '{name}' collides with existing topic: {existing}")

    def partition_count(self, num_partitions: int, replication_factor: int, assignments: Sequence) -> int:
        """The partitions a CreateTopics entry asks for (a count, or one assignment per partition)."""
        if assignments:
            if num_partitions != DEFAULT or replication_factor != DEFAULT:
                raise ApiError(ErrorCode.INVALID_REQUEST,
                               "Both numPartitions or replicationFactor and replicasAssignments were set.")
            indexes = sorted(a.partition_index for a in assignments)
            if indexes != list(range(len(indexes))):
                raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                               "Partitions should be a consecutive 0-based integer sequence")
            for assignment in assignments:
                self._check_assignment(assignment.broker_ids, f"partition {assignment.partition_index}")
            return len(indexes)
        if replication_factor not in (DEFAULT, 1):
            raise ApiError(ErrorCode.INVALID_REPLICATION_FACTOR,
                           f"Replication factor: {replication_factor} larger than available brokers: 1.")
        count = self.num_partitions if num_partitions == DEFAULT else num_partitions
        if not 1 <= count <= MAX_PARTITIONS:
            raise ApiError(ErrorCode.INVALID_PARTITIONS, f"Number of partitions must be at least 1, got {count}.")
        return count

    def _check_assignment(self, broker_ids: Sequence[int], what: str) -> None:
        if list(broker_ids) != [self.node_id]:
            raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"{what} must be assigned to broker {self.node_id} only")

    async def create(self, name: str, num_partitions: int, replication_factor: int, assignments: Sequence,
                     configs: dict[str, str | None], *, validate_only: bool = False) -> Created:
        """A CreateTopics entry, checked in Kafka's order and claimed before the first await, so
        that concurrent creations of one name see each other."""
        self.check_new_name(name)
        count = self.partition_count(num_partitions, replication_factor, assignments)
        overrides = validate_overrides(configs)
        if validate_only:
            return Created(None, count)
        try:
            return Created(await self.registry.create_topic(name, count, overrides), count)
        except LogError as exc:
            raise _storage_error(exc, "topic's") from exc

    async def auto_create(self, name: str) -> Topic:
        """The topic `name` created with the broker's defaults (auto.create.topics.enable)."""
        if self.registry.is_changing(name):
            # Being created: as for a topic Kafka has just created, the client asks again.
            raise ApiError(ErrorCode.LEADER_NOT_AVAILABLE)
        self.check_new_name(name)
        try:
            return await self.registry.create_topic(name, self.num_partitions)
        except LogError as exc:
            raise _storage_error(exc, "topic's") from exc

    async def metadata_topic(self, name: str, allow_auto_create: bool) -> Topic:
        """The topic a Metadata request names, created if it may be; ApiError if there is none."""
        topic = self.registry.topics.get(name)
        if topic is not None:
            return topic
        if allow_auto_create and self.auto_create_enabled:
            return await self.auto_create(name)
        if topic_name_problem(name):
            # Kafka calls an invalid name invalid even when it would not create the topic, so
            # clients fail at once instead of waiting for the topic to appear.
            raise ApiError(ErrorCode.INVALID_TOPIC_EXCEPTION)
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)

    async def producible_partition(self, name: str, index: int) -> Partition:
        """The partition a Produce names; an unknown topic is auto-created when the broker allows it."""
        partition = self.registry.partition(name, index)
        if partition is None and self.auto_create_enabled and name not in self.registry.topics:
            try:
                await self.auto_create(name)
            except ApiError:
                pass  # the produce reports the partition unknown, and the client asks again
            partition = self.registry.partition(name, index)
        if partition is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic-partition {name}-{index}")
        return partition

    async def alter_config(self, topic: Topic, overrides: dict[str, str]) -> None:
        try:
            await self.registry.alter_config(topic, overrides)
        except LogError as exc:
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from exc

    async def delete(self, topic: Topic) -> None:
        try:
            await self.registry.delete_topic(topic)
        except LogError as exc:
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from exc
        try:
            await self._forget_offsets(topic.name)
        except LogError as exc:
            # The topic is deleted all the same, as in Kafka, where its offsets are removed later.
            logger.warning("topic %s deleted, but its committed offsets stay: %s", topic.name, exc)

    async def create_partitions(self, name: str, count: int, assignments: Sequence | None, *,
                                validate_only: bool) -> None:
        """Grow topic `name` to `count` partitions, checked and changed without an await in
        between, so that no other change slips in."""
        await self.registry.settled(name)
        topic = self.registry.topics.get(name)
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist.")
        current = len(topic.partitions)
        if count <= current:
            raise ApiError(ErrorCode.INVALID_PARTITIONS, f"Topic currently has {current} partitions, which is "
                                                         f"higher than or equal to the requested {count}.")
        if count > MAX_PARTITIONS:
            raise ApiError(ErrorCode.INVALID_PARTITIONS, f"at most {MAX_PARTITIONS} partitions per topic")
        if assignments is not None:
            if len(assignments) != count - current:
                raise ApiError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                               f"Attempted to add {count - current} additional partition(s), but only "
                               f"{len(assignments)} assignment(s) were specified.")
            for assignment in assignments:
                self._check_assignment(assignment.broker_ids, "every new partition")
        if validate_only:
            return
        try:
            await self.registry.create_partitions(topic, count)
        except LogError as exc:
            raise _storage_error(exc, "new partitions'") from exc
