"""CreateTopics (19), DeleteTopics (20), CreatePartitions (37), and topic auto-creation."""

from __future__ import annotations

import logging

import trio

from broker.handlers.base import handles
from broker.registry import Topic
from broker.topic_config import TOPIC_CONFIGS, InvalidConfig, validate_overrides
from broker.topic_names import topic_name_problem
from log import LogError
from protocol.errors import ErrorCode

logger = logging.getLogger(__name__)

CREATE_TOPICS = 19
DELETE_TOPICS = 20
CREATE_PARTITIONS = 37
DEFAULT = -1
# Reserved for the group coordinator's committed-offsets log, as in Kafka.
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
_MAX_PARTITIONS = 10_000


class TopicRefused(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


def check_new_topic_name(broker, name: str) -> None:
    """Raise TopicRefused unless `name` can be created as Kafka would allow."""
    if name in broker.registry.topics or broker.registry.is_changing(name):
        raise TopicRefused(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
    problem = topic_name_problem(name)
    if problem:
        raise TopicRefused(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
    if name in INTERNAL_TOPICS:
        raise TopicRefused(ErrorCode.INVALID_TOPIC_EXCEPTION, f"'{name}' is reserved for internal use")
    # Kafka's metric names replace '.' with '_', so two such topics would collide.
    normalised = name.replace(".", "_")
    for existing in broker.registry.names_in_use():
        if existing.replace(".", "_") == normalised:
            raise TopicRefused(ErrorCode.INVALID_TOPIC_EXCEPTION,
                               f"Topic '{name}' collides with existing topic: {existing}")


def storage_refusal(exc: LogError) -> TopicRefused:
    """Kafka's answer when the log directory cannot hold the topic's files."""
    return TopicRefused(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot create the topic's files: {exc}")


async def auto_create(broker, name: str) -> Topic | ErrorCode:
    """The topic `name` created with the broker's defaults (auto.create.topics.enable), or why not."""
    if broker.registry.is_changing(name):
        # Being created: as for a topic Kafka has just created, the client asks again.
        return ErrorCode.LEADER_NOT_AVAILABLE
    try:
        check_new_topic_name(broker, name)
        try:
            return await broker.registry.create_topic(name, broker.config.num_partitions)
        except LogError as exc:
            raise storage_refusal(exc) from exc
    except TopicRefused as exc:
        return exc.error


def _checked_partition_count(broker, topic) -> int:
    if topic.assignments:
        if topic.num_partitions != DEFAULT or topic.replication_factor != DEFAULT:
            raise TopicRefused(ErrorCode.INVALID_REQUEST,
                               "Both numPartitions or replicationFactor and replicasAssignments were set.")
        node = broker.config.node_id
        indexes = sorted(a.partition_index for a in topic.assignments)
        if indexes != list(range(len(indexes))):
            raise TopicRefused(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                               "Partitions should be a consecutive 0-based integer sequence")
        for assignment in topic.assignments:
            if list(assignment.broker_ids) != [node]:
                raise TopicRefused(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                   f"partition {assignment.partition_index} must be assigned to broker {node} only")
        return len(indexes)
    if topic.replication_factor not in (DEFAULT, 1):
        raise TopicRefused(ErrorCode.INVALID_REPLICATION_FACTOR,
                           f"Replication factor: {topic.replication_factor} larger than available brokers: 1.")
    count = broker.config.num_partitions if topic.num_partitions == DEFAULT else topic.num_partitions
    if not 1 <= count <= _MAX_PARTITIONS:
        raise TopicRefused(ErrorCode.INVALID_PARTITIONS, f"Number of partitions must be at least 1, got {count}.")
    return count


def _creatable_configs(topic: Topic) -> list[dict]:
    return [{"name": name, "value": str(topic.config.value(name)), "read_only": False,
             "config_source": topic.config.source(name), "is_sensitive": False}
            for name in TOPIC_CONFIGS]


@handles(CREATE_TOPICS)
async def create_topics(broker, header, request) -> dict:
    names = [t.name for t in request.topics]
    results = [{"name": wanted.name, "error_code": ErrorCode.NONE, "error_message": None,
                "num_partitions": -1, "replication_factor": -1, "configs": None} for wanted in request.topics]

    async def create(wanted, result: dict) -> None:
        # Checked and claimed before the first await, so concurrent creations see each other.
        try:
            if names.count(wanted.name) > 1:
                raise TopicRefused(ErrorCode.INVALID_REQUEST, f"Create topics request from client contains "
                                                              f"the topic '{wanted.name}' more than once.")
            check_new_topic_name(broker, wanted.name)
            count = _checked_partition_count(broker, wanted)
            try:
                overrides = validate_overrides({c.name: c.value for c in wanted.configs})
            except InvalidConfig as exc:
                raise TopicRefused(ErrorCode.INVALID_CONFIG, str(exc)) from None
            if not request.get("validate_only", False):
                try:
                    topic = await broker.registry.create_topic(wanted.name, count, overrides)
                except LogError as exc:
                    raise storage_refusal(exc) from exc
                result.update(topic_id=topic.topic_id, configs=_creatable_configs(topic))
            result.update(num_partitions=count, replication_factor=1)
        except TopicRefused as exc:
            result.update(error_code=exc.error, error_message=str(exc))

    # The topics' files are made concurrently: their fsyncs share the file system's commits.
    async with trio.open_nursery() as nursery:
        for wanted, result in zip(request.topics, results):
            nursery.start_soon(create, wanted, result)
    return {"throttle_time_ms": 0, "topics": results}


async def _forget_committed_offsets(broker, topic_name: str) -> None:
    try:
        await broker.coordinator.offsets.delete_topic(topic_name)
    except LogError as exc:
        # The topic is deleted all the same, as in Kafka, where its offsets are removed later.
        logger.warning("topic %s deleted, but its committed offsets stay: %s", topic_name, exc)


@handles(DELETE_TOPICS)
async def delete_topics(broker, header, request) -> dict:
    registry = broker.registry
    wanted = request.topics if "topics" in request else [{"name": n, "topic_id": None} for n in request.topic_names]
    responses = []
    for entry in wanted:
        name, topic_id = entry["name"], entry["topic_id"]
        topic = registry.topics.get(name) if name is not None else registry.topics_by_id.get(topic_id)
        response = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.NONE, "error_message": None}
        if topic is None:
            response["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if name is not None \
                else ErrorCode.UNKNOWN_TOPIC_ID
        else:
            response.update(name=topic.name, topic_id=topic.topic_id)
            try:
                await registry.delete_topic(topic)
            except LogError as exc:
                response.update(error_code=ErrorCode.KAFKA_STORAGE_ERROR, error_message=str(exc))
            else:
                await _forget_committed_offsets(broker, topic.name)
        responses.append(response)
    return {"throttle_time_ms": 0, "responses": responses}


@handles(CREATE_PARTITIONS)
async def create_partitions(broker, header, request) -> dict:
    results = []
    for wanted in request.topics:
        result = {"name": wanted.name, "error_code": ErrorCode.NONE, "error_message": None}
        # Checked and changed without an await in between, so no other change slips in.
        await broker.registry.settled(wanted.name)
        topic = broker.registry.topics.get(wanted.name)
        current = len(topic.partitions) if topic else 0
        if topic is None:
            result.update(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                          error_message=f"The topic '{wanted.name}' does not exist.")
        elif wanted.count <= current:
            result.update(error_code=ErrorCode.INVALID_PARTITIONS,
                          error_message=f"Topic currently has {current} partitions, which is higher than or "
                                        f"equal to the requested {wanted.count}.")
        elif wanted.count > _MAX_PARTITIONS:
            result.update(error_code=ErrorCode.INVALID_PARTITIONS,
                          error_message=f"at most {_MAX_PARTITIONS} partitions per topic")
        elif wanted.assignments is not None and len(wanted.assignments) != wanted.count - current:
            result.update(error_code=ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                          error_message=f"Attempted to add {wanted.count - current} additional partition(s), but "
                                        f"only {len(wanted.assignments)} assignment(s) were specified.")
        elif wanted.assignments is not None and any(list(a.broker_ids) != [broker.config.node_id]
                                                     for a in wanted.assignments):
            result.update(error_code=ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                          error_message=f"every new partition must be assigned to broker {broker.config.node_id}")
        elif not request.validate_only:
            try:
                await broker.registry.create_partitions(topic, wanted.count)
            except LogError as exc:
                result.update(error_code=ErrorCode.KAFKA_STORAGE_ERROR,
                              error_message=f"cannot create the new partitions' files: {exc}")
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}
