"""Metadata (3): this broker, the cluster, and the topics with their single-replica partitions."""

from __future__ import annotations

import weakref

import trio

from broker.acls import ResourceType, authorized, reported_operations
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, error_fields, handles
from broker.handlers.produce import may_auto_create
from broker.registry import LEADER_EPOCH, Partition, Topic
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.metadata import METADATA_RESPONSE
from protocol.primitives import ZERO_UUID
from protocol.schema import Encoded

_MetadataResponseTopic = METADATA_RESPONSE.MetadataResponseTopic
_MetadataResponsePartition = METADATA_RESPONSE.MetadataResponsePartition

# Each topic's metadata as encoded last, by (version, authorized operations), with the partition
# count it was encoded for: it changes only when partitions are added, and encoding a topic of
# 10,000 partitions takes some 50 ms.
_ENCODED: weakref.WeakKeyDictionary[Topic, dict[tuple[int, int], tuple[int, Encoded]]] = weakref.WeakKeyDictionary()
# A request that needs more partitions than this encoded has them encoded in a worker thread, one
# such request at a time broker-wide, so that the loop keeps serving the other clients.
_MAX_PARTITIONS_ENCODED_ON_LOOP = 1_000
_ENCODER = trio.CapacityLimiter(1)


def _topic_metadata(node: int, topic: Topic, partitions: list[Partition], operations: int):
    return _MetadataResponseTopic(
        name=topic.name, topic_id=topic.topic_id, topic_authorized_operations=operations,
        partitions=[_MetadataResponsePartition(partition_index=p.index, leader_id=node, leader_epoch=LEADER_EPOCH,
                                               replica_nodes=[node], isr_nodes=[node])
                    for p in partitions])


def _describable(broker: Services, name: str) -> bool:
    return authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC, name)


async def _wanted_topic(broker: Services, wanted, allow_auto_create: bool):
    """The topic a request names (by name, or by id in v10+), or the metadata of its error. As
    Kafka: a topic the session may not describe is TOPIC_AUTHORIZATION_FAILED whether it exists or
    not (by id: with its id, which is not secret, and no name), and one it may not have created is
    too, when it would be auto-created."""
    topic_id = wanted.get("topic_id")
    name = wanted.name
    try:
        if name is None:
            topic = broker.topics.by_id(topic_id)
            if topic is None:
                raise ApiError(ErrorCode.UNKNOWN_TOPIC_ID)
            if not _describable(broker, topic.name):
                raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
            return topic
        # Not the id of a topic named: an error does not disclose it, as in Kafka.
        topic_id = ZERO_UUID
        if not _describable(broker, name):
            raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        if allow_auto_create and broker.topics.get(name) is None and not may_auto_create(broker, name):
            allow_auto_create = False
            if broker.topics.auto_create_enabled:
                raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        return await broker.topics.metadata_topic(name, allow_auto_create)
    except ApiError as exc:
        return _MetadataResponseTopic(name=name, topic_id=topic_id, **error_fields(_MetadataResponseTopic, exc))


async def _encoded(broker: Services, version: int, operations_requested: bool, found: list):
    """`found` (topics, and the metadata of topics in error) with each topic's metadata encoded,
    and its authorized operations when requested."""
    keys = {}
    missing = []
    for topic in found:
        if isinstance(topic, Topic):
            key = keys[topic] = (version, reported_operations(broker.authorizer, operations_requested,
                                                              ResourceType.TOPIC, topic.name))
            cached = _ENCODED.get(topic, {}).get(key)
            if cached is None or cached[0] != len(topic.partitions):
                missing.append((topic, list(topic.partitions)))

    node = broker.config.node_id

    def encode() -> list[Encoded]:
        return [METADATA_RESPONSE.encode_struct(version, "topics[]",
                                                _topic_metadata(node, topic, partitions, keys[topic][1]))
                for topic, partitions in missing]

    if sum(len(partitions) for _, partitions in missing) <= _MAX_PARTITIONS_ENCODED_ON_LOOP:
        encoded = encode()
    else:
        encoded = await trio.to_thread.run_sync(encode, limiter=_ENCODER)
    for (topic, partitions), topic_encoded in zip(missing, encoded):
        _ENCODED.setdefault(topic, {})[keys[topic]] = (len(partitions), topic_encoded)
    return [_ENCODED[topic][keys[topic]][1] if isinstance(topic, Topic) else topic for topic in found]


@handles(ApiKey.METADATA)
async def metadata(broker: Services, header, request):
    # v0 asks for every topic with an empty list; v1+ with a null list. Every topic is those the
    # session may describe, the others left out without a word, as Kafka does.
    if request.topics is None or (header.request_api_version == 0 and not request.topics):
        found = [topic for topic in broker.topics.all() if _describable(broker, topic.name)]
    else:
        # v0-v3 requests always allow auto-creation; v4+ say whether they do.
        allow_auto_create = request.get("allow_auto_topic_creation", True)
        found = [await _wanted_topic(broker, wanted, allow_auto_create) for wanted in request.topics]
    topics = await _encoded(broker, header.request_api_version,
                            request.get("include_topic_authorized_operations", False), found)
    host, port = broker.advertised_address
    node = broker.config.node_id
    return METADATA_RESPONSE(
        brokers=[METADATA_RESPONSE.MetadataResponseBroker(node_id=node, host=host, port=port)],
        cluster_id=broker.cluster_id, controller_id=node, topics=topics,
        cluster_authorized_operations=cluster_operations(broker, request.get("include_cluster_authorized_operations",
                                                                             False)))


def cluster_operations(broker: Services, requested: bool) -> int:
    """The cluster's authorized operations of Metadata and DescribeCluster: none at all for a
    session that may not describe the cluster, as Kafka answers."""
    if requested and not authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.CLUSTER):
        return 0
    return reported_operations(broker.authorizer, requested, ResourceType.CLUSTER)
