"""CreateTopics (19), DeleteTopics (20), CreatePartitions (37)."""

from __future__ import annotations

import trio

from broker.acls import ResourceType, authorized, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, error_fields, handles
from broker.registry import Topic
from broker.topic_config import TOPIC_CONFIGS, config_text
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.admin import CREATE_PARTITIONS_RESPONSE, CREATE_TOPICS_RESPONSE, DELETE_TOPICS_RESPONSE

_CreatableTopicResult = CREATE_TOPICS_RESPONSE.CreatableTopicResult
_DeletableTopicResult = DELETE_TOPICS_RESPONSE.DeletableTopicResult
_CreatePartitionsTopicResult = CREATE_PARTITIONS_RESPONSE.CreatePartitionsTopicResult


def _creatable_configs(topic: Topic) -> list:
    return [CREATE_TOPICS_RESPONSE.CreatableTopicConfigs(
                name=name, value=config_text(topic.config.value(name)), config_source=topic.config.source(name),
                read_only=False, is_sensitive=False)
            for name in TOPIC_CONFIGS]


@handles(ApiKey.CREATE_TOPICS)
async def create_topics(broker: Services, header, request):
    names = [t.name for t in request.topics]
    # Kafka's checks: CREATE on the cluster, or else on each topic; and DESCRIBE_CONFIGS on a topic
    # for its configs (and partition count) to be shown.
    creatable = set(names) if authorized(broker.authorizer, AclOperation.CREATE, ResourceType.CLUSTER) \
        else authorized_names(broker.authorizer, AclOperation.CREATE, ResourceType.TOPIC, names)
    describable = authorized_names(broker.authorizer, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, names)

    async def create(wanted, results: list, index: int) -> None:
        try:
            if names.count(wanted.name) > 1:
                raise ApiError(ErrorCode.INVALID_REQUEST, f"Create topics request from client contains "
                                                          f"the topic '{wanted.name}' more than once.")
            if wanted.name not in creatable:
                raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed.")
            topic, count = await broker.topics.create(
                wanted.name, wanted.num_partitions, wanted.replication_factor, wanted.assignments,
                {c.name: c.value for c in wanted.configs}, validate_only=request.get("validate_only", False))
        except ApiError as exc:
            results[index] = _CreatableTopicResult(name=wanted.name, configs=None, **error_fields(_CreatableTopicResult, exc))
            return
        shown = wanted.name in describable
        result = results[index] = _CreatableTopicResult(name=wanted.name, error_message=None, configs=None)
        if shown:
            result.update(num_partitions=count, replication_factor=1)
        else:
            result.update(topic_config_error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        if topic is not None:
            result.update(topic_id=topic.topic_id)
            if shown:
                result.update(configs=_creatable_configs(topic))

    results: list = [None] * len(request.topics)
    # The topics' files are made concurrently: their fsyncs share the file system's commits.
    async with trio.open_nursery() as nursery:
        for index, wanted in enumerate(request.topics):
            nursery.start_soon(create, wanted, results, index)
    return CREATE_TOPICS_RESPONSE(topics=results)


async def _delete(broker: Services, name: str | None, topic_id):
    """One topic deleted, in the order of checks of Kafka's controller (ControllerApis, where a
    KRaft broker sends DeleteTopics): DESCRIBE on the topic (without it, a topic named by id does
    not have its name told); an unknown name or id; DELETE."""
    topic = broker.topics.get(name) if name is not None else broker.topics.by_id(topic_id)
    try:
        if name is None and topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_ID)
        if not authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC, name or topic.name):
            raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        name = topic.name
        if not authorized(broker.authorizer, AclOperation.DELETE, ResourceType.TOPIC, name):
            raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        topic_id = topic.topic_id
        partitions = list(topic.partitions)  # deleting empties the list
        await broker.topics.delete(topic)
        for partition in partitions:
            broker.partition_changed(partition)
    except ApiError as exc:
        return _DeletableTopicResult(name=name, topic_id=topic_id, **error_fields(_DeletableTopicResult, exc))
    return _DeletableTopicResult(name=name, topic_id=topic_id)


@handles(ApiKey.DELETE_TOPICS)
async def delete_topics(broker: Services, header, request):
    wanted = [(t.name, t.topic_id) for t in request.topics] if "topics" in request \
        else [(name, None) for name in request.topic_names]
    return DELETE_TOPICS_RESPONSE(responses=[await _delete(broker, name, topic_id) for name, topic_id in wanted])


@handles(ApiKey.CREATE_PARTITIONS)
async def create_partitions(broker: Services, header, request):
    results = []
    alterable = authorized_names(broker.authorizer, AclOperation.ALTER, ResourceType.TOPIC,
                                 (wanted.name for wanted in request.topics))
    for wanted in request.topics:
        try:
            if wanted.name not in alterable:
                raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "The topic authorization is failed.")
            await broker.topics.create_partitions(wanted.name, wanted.count, wanted.assignments,
                                                  validate_only=request.validate_only)
        except ApiError as exc:
            results.append(_CreatePartitionsTopicResult(name=wanted.name, **error_fields(_CreatePartitionsTopicResult, exc)))
        else:
            results.append(_CreatePartitionsTopicResult(name=wanted.name))
    return CREATE_PARTITIONS_RESPONSE(results=results)
