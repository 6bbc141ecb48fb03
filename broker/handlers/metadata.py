"""Metadata (3): this broker, the cluster, and the topics with their single-replica partitions."""

from __future__ import annotations

from broker import authorized_operations
from broker.handlers.base import Services, error_fields, handles
from broker.registry import LEADER_EPOCH, Topic
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.metadata import METADATA_RESPONSE

_MetadataResponseTopic = METADATA_RESPONSE.MetadataResponseTopic
_MetadataResponsePartition = METADATA_RESPONSE.MetadataResponsePartition


def _topic_metadata(broker: Services, topic: Topic, operations: int):
    node = broker.config.node_id
    partitions = [_MetadataResponsePartition(partition_index=p.index, leader_id=node, leader_epoch=LEADER_EPOCH,
                                             replica_nodes=[node], isr_nodes=[node])
                  for p in topic.partitions]
    return _MetadataResponseTopic(name=topic.name, topic_id=topic.topic_id, partitions=partitions,
                                  topic_authorized_operations=operations)


async def _wanted_topic(broker: Services, wanted, allow_auto_create: bool, operations: int):
    """The metadata of a topic the request names (by name, or by id in v10+), or its error."""
    topic_id = wanted.get("topic_id")
    try:
        if wanted.name is not None:
            topic = await broker.topics.metadata_topic(wanted.name, allow_auto_create)
        else:
            topic = broker.topics.by_id(topic_id)
            if topic is None:
                raise ApiError(ErrorCode.UNKNOWN_TOPIC_ID)
    except ApiError as exc:
        return _MetadataResponseTopic(name=wanted.name, topic_id=topic_id, **error_fields(_MetadataResponseTopic, exc))
    return _topic_metadata(broker, topic, operations)


@handles(ApiKey.METADATA)
async def metadata(broker: Services, header, request):
    topic_operations = authorized_operations.reported(request.get("include_topic_authorized_operations", False),
                                                      authorized_operations.TOPIC)
    # v0 asks for every topic with an empty list; v1+ with a null list.
    if request.topics is None or (header.request_api_version == 0 and not request.topics):
        topics = [_topic_metadata(broker, topic, topic_operations) for topic in broker.topics.all()]
    else:
        # v0-v3 requests always allow auto-creation; v4+ say whether they do.
        allow_auto_create = request.get("allow_auto_topic_creation", True)
        topics = [await _wanted_topic(broker, wanted, allow_auto_create, topic_operations) for wanted in request.topics]
    host, port = broker.advertised_address
    node = broker.config.node_id
    return METADATA_RESPONSE(
        brokers=[METADATA_RESPONSE.MetadataResponseBroker(node_id=node, host=host, port=port)],
        cluster_id=broker.cluster_id, controller_id=node, topics=topics,
        cluster_authorized_operations=authorized_operations.reported(
            request.get("include_cluster_authorized_operations", False), authorized_operations.CLUSTER))
