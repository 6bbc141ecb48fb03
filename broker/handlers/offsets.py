"""OffsetCommit (8), OffsetFetch (9) and OffsetDelete (47): committed offsets, stored by the
group coordinator."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from outcome import Error, Outcome, Value

from broker.acls import ResourceType, authorized_names
from broker.authorized_operations import AclOperation
from broker.groups import OffsetAndMetadata, TopicPartition
from broker.handlers.base import Services, error_fields, handles
from broker.handlers.groups import check_group, outcome_fields
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.groups import OFFSET_COMMIT_RESPONSE, OFFSET_DELETE_RESPONSE, OFFSET_FETCH_RESPONSE

# OffsetCommit v1 alone carries a commit timestamp per partition (-1: the broker's time).
COMMIT_TIMESTAMP_VERSION = 1
# OffsetFetch v2 answers "every committed offset" for null topics, and has a group-level error;
# v8 fetches several groups at once.
FIRST_GROUP_ERROR_VERSION = 2
FIRST_MULTI_GROUP_VERSION = 8
NO_OFFSET = -1
NO_LEADER_EPOCH = -1
NO_METADATA = ""
_UNKNOWN_PARTITION = Error(ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
_DENIED_TOPIC = Error(ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED))


def existing_partitions(broker: Services, request_topics,
                        group_error: ApiError | None = None) -> tuple[list, dict[TopicPartition, Outcome[None]]]:
    """The (topic, partition) pairs a commit names, in its order, as (request topic, request
    partition, pair); and the errors of those it cannot commit, in Kafka's order: every one's
    `group_error` (the group, or transactional id, the session may not use), else
    TOPIC_AUTHORIZATION_FAILED for the topics it may not READ, UNKNOWN_TOPIC_OR_PARTITION for
    those this broker does not have."""
    named = [(topic, partition, (topic.name, partition.partition_index))
             for topic in request_topics for partition in topic.partitions]
    if group_error is not None:
        return named, dict.fromkeys((key for _, _, key in named), Error(group_error))
    names = [topic.name for topic in request_topics]
    readable = authorized_names(broker.authorizer, AclOperation.READ, ResourceType.TOPIC, names)
    errors = {key: _DENIED_TOPIC if key[0] not in readable else _UNKNOWN_PARTITION
              for _, _, key in named if key[0] not in readable or broker.topics.partition(*key) is None}
    return named, errors


def denial(*checks: Callable[[], None]) -> ApiError | None:
    """The error of the first of the authorization `checks` that fails, in order; None if none does."""
    try:
        for check in checks:
            check()
    except ApiError as exc:
        return exc
    return None


def topics_answer(topic_result, partition_result, named: Iterable[TopicPartition],
                  results: dict[TopicPartition, Outcome[None]]) -> list:
    """The per-topic, per-partition answer of a batch of partitions, in the request's order."""
    topics: dict[str, list] = {}
    for name, index in named:
        topics.setdefault(name, []).append(
            partition_result(partition_index=index, **outcome_fields(partition_result, results[(name, index)])))
    return [topic_result(name=name, partitions=partitions) for name, partitions in topics.items()]


@handles(ApiKey.OFFSET_COMMIT)
async def offset_commit(broker: Services, header, request):
    now = broker.clock()
    named, results = existing_partitions(broker, request.topics, denial(
        lambda: check_group(broker, AclOperation.READ, request.group_id)))
    offsets = {}
    for _, partition, key in named:
        if key not in results:
            timestamp = partition.get("commit_timestamp", -1)
            if header.request_api_version != COMMIT_TIMESTAMP_VERSION or timestamp == -1:
                timestamp = now
            offsets[key] = OffsetAndMetadata(partition.committed_offset, partition.get("committed_leader_epoch", -1),
                                             partition.committed_metadata or NO_METADATA, timestamp)
    if offsets:
        try:
            results.update(await broker.coordinator.commit_offsets(
                request.group_id, request.get("generation_id_or_member_epoch", -1), request.get("member_id", ""),
                request.get("group_instance_id"), offsets))
        except ApiError as exc:
            # OffsetCommit has no group-level error: every partition carries it.
            results.update(dict.fromkeys(offsets, Error(exc)))
    return OFFSET_COMMIT_RESPONSE(topics=topics_answer(
        OFFSET_COMMIT_RESPONSE.OffsetCommitResponseTopic, OFFSET_COMMIT_RESPONSE.OffsetCommitResponsePartition,
        [key for _, _, key in named], results))


def _fetched_topics(broker: Services, group_id: str, wanted_topics, topic_result, partition_result, *,
                    require_stable: bool = False) -> list:
    """One group's committed offsets of `wanted_topics` (None: all of them), as response topics;
    with `require_stable` (v7+), partitions with offsets of an open transaction carry
    UNSTABLE_OFFSET_COMMIT. As Kafka: the group needs DESCRIBE, and the offsets of a topic the
    session may not describe are TOPIC_AUTHORIZATION_FAILED when named and left out otherwise."""
    check_group(broker, AclOperation.DESCRIBE, group_id)
    if wanted_topics is None:
        fetched = broker.coordinator.fetch_offsets(group_id, None, require_stable=require_stable)
        describable = authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC,
                                       (name for name, _ in fetched))
        wanted = sorted(key for key in fetched if key[0] in describable)
    else:
        wanted = [(topic.name, index) for topic in wanted_topics for index in topic.partition_indexes]
        describable = authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC,
                                       (name for name, _ in wanted))
        fetched = broker.coordinator.fetch_offsets(group_id, [key for key in wanted if key[0] in describable],
                                                   require_stable=require_stable)
        fetched.update({key: _DENIED_TOPIC for key in wanted if key[0] not in describable})
    topics: dict[str, list] = {}
    for name, index in wanted:
        outcome = fetched[(name, index)]
        value = outcome.value if isinstance(outcome, Value) else None
        topics.setdefault(name, []).append(partition_result(
            partition_index=index,
            committed_offset=value.offset if value else NO_OFFSET,
            committed_leader_epoch=value.leader_epoch if value else NO_LEADER_EPOCH,
            metadata=value.metadata if value else NO_METADATA,
            **outcome_fields(partition_result, outcome)))
    return [topic_result(name=name, partitions=partitions) for name, partitions in topics.items()]


_FetchedGroup = OFFSET_FETCH_RESPONSE.OffsetFetchResponseGroup


def _fetched_group(broker: Services, group, require_stable: bool) -> _FetchedGroup:
    try:
        topics = _fetched_topics(broker, group.group_id, group.topics, OFFSET_FETCH_RESPONSE.OffsetFetchResponseTopics,
                                 OFFSET_FETCH_RESPONSE.OffsetFetchResponsePartitions, require_stable=require_stable)
    except ApiError as exc:
        return _FetchedGroup(group_id=group.group_id, **error_fields(_FetchedGroup, exc))
    return _FetchedGroup(group_id=group.group_id, topics=topics)


def _fetched_before_group_errors(broker: Services, request):
    """Before v2 only partitions could carry the group's error: each wanted one does."""
    try:
        return OFFSET_FETCH_RESPONSE(topics=_fetched_topics(
            broker, request.group_id, request.topics, OFFSET_FETCH_RESPONSE.OffsetFetchResponseTopic,
            OFFSET_FETCH_RESPONSE.OffsetFetchResponsePartition))
    except ApiError as exc:
        partition = OFFSET_FETCH_RESPONSE.OffsetFetchResponsePartition
        return OFFSET_FETCH_RESPONSE(topics=[OFFSET_FETCH_RESPONSE.OffsetFetchResponseTopic(name=topic.name, partitions=[
            partition(partition_index=index, committed_offset=NO_OFFSET, metadata=NO_METADATA,
                      **error_fields(partition, exc))
            for index in topic.partition_indexes]) for topic in request.topics])


@handles(ApiKey.OFFSET_FETCH)
async def offset_fetch(broker: Services, header, request):
    version = header.request_api_version
    require_stable = request.get("require_stable", False)
    if version >= FIRST_MULTI_GROUP_VERSION:
        return OFFSET_FETCH_RESPONSE(groups=[_fetched_group(broker, group, require_stable) for group in request.groups])
    if version < FIRST_GROUP_ERROR_VERSION:
        return _fetched_before_group_errors(broker, request)
    # A group error: the response's top-level error (base.Api.respond).
    return OFFSET_FETCH_RESPONSE(topics=_fetched_topics(
        broker, request.group_id, request.topics, OFFSET_FETCH_RESPONSE.OffsetFetchResponseTopic,
        OFFSET_FETCH_RESPONSE.OffsetFetchResponsePartition, require_stable=require_stable))


@handles(ApiKey.OFFSET_DELETE)
async def offset_delete(broker: Services, header, request):
    # A group error is the response's top-level one, as Kafka answers it.
    check_group(broker, AclOperation.DELETE, request.group_id)
    named, results = existing_partitions(broker, request.topics)
    eligible = [key for _, _, key in named if key not in results]
    # A group error is the response's top-level one, with no topics, as Kafka answers it.
    results.update(await broker.coordinator.delete_offsets(request.group_id, eligible))
    return OFFSET_DELETE_RESPONSE(topics=topics_answer(
        OFFSET_DELETE_RESPONSE.OffsetDeleteResponseTopic, OFFSET_DELETE_RESPONSE.OffsetDeleteResponsePartition,
        [key for _, _, key in named], results))
