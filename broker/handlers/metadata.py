"""Metadata (3): this broker, the cluster, and the topics with their single-replica partitions."""

from __future__ import annotations

import weakref

import trio

from broker import authorized_operations
from broker.handlers.base import Services, error_fields, handles
from broker.registry import LEADER_EPOCH, Partition, Topic
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.metadata import METADATA_RESPONSE
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


async def _wanted_topic(broker: Services, wanted, allow_auto_create: bool):
    """The topic a request names (by name, or by id in v10+), or the metadata of its error."""
    topic_id = wanted.get("topic_id")
    try:
        if wanted.name is not None:
            return await broker.topics.metadata_topic(wanted.name, allow_auto_create)
        topic = broker.topics.by_id(topic_id)
        if topic is None:
            raise ApiError(ErrorCode.UNKNOWN_TOPIC_ID)
        return topic
    except ApiError as exc:
        return _MetadataResponseTopic(name=wanted.name, topic_id=topic_id, **error_fields(_MetadataResponseTopic, exc))


async def _encoded(broker: Services, version: int, operations: int, found: list):
    """`found` (topics, and the metadata of topics in error) with each topic's metadata encoded."""
    key = (version, operations)
    missing = []
    for topic in found:
        if isinstance(topic, Topic):
            cached = _ENCODED.get(topic, {}).get(key)
            if cached is None or cached[0] != len(topic.partitions):
                missing.append((topic, list(topic.partitions)))

    node = broker.config.node_id

    def encode() -> list[Encoded]:
        return [METADATA_RESPONSE.encode_struct(version, "topics[]", _topic_metadata(node, topic, partitions, operations))
                for topic, partitions in missing]

    if sum(len(partitions) for _, partitions in missing) <= _MAX_PARTITIONS_ENCODED_ON_LOOP:
        encoded = encode()
    else:
        encoded = await trio.to_thread.run_sync(encode, limiter=_ENCODER)
    for (topic, partitions), topic_encoded in zip(missing, encoded):
        _ENCODED.setdefault(topic, {})[key] = (len(partitions), topic_encoded)
    return [_ENCODED[topic][key][1] if isinstance(topic, Topic) else topic for topic in found]


@handles(ApiKey.METADATA)
async def metadata(broker: Services, header, request):
    topic_operations = authorized_operations.reported(request.get("include_topic_authorized_operations", False),
                                                      authorized_operations.TOPIC)
    # v0 asks for every topic with an empty list; v1+ with a null list.
    if request.topics is None or (header.request_api_version == 0 and not request.topics):
        found = list(broker.topics.all())
    else:
        # v0-v3 requests always allow auto-creation; v4+ say whether they do.
        allow_auto_create = request.get("allow_auto_topic_creation", True)
        found = [await _wanted_topic(broker, wanted, allow_auto_create) for wanted in request.topics]
    topics = await _encoded(broker, header.request_api_version, topic_operations, found)
    host, port = broker.advertised_address
    node = broker.config.node_id
    return METADATA_RESPONSE(
        brokers=[METADATA_RESPONSE.MetadataResponseBroker(node_id=node, host=host, port=port)],
        cluster_id=broker.cluster_id, controller_id=node, topics=topics,
        cluster_authorized_operations=authorized_operations.reported(
            request.get("include_cluster_authorized_operations", False), authorized_operations.CLUSTER))
