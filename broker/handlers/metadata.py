"""Metadata (3): this broker, the cluster, and the topics with their single-replica partitions."""

from __future__ import annotations

from broker import authorized_operations
from broker.handlers.base import handles
from broker.handlers.topics import auto_create
from broker.registry import LEADER_EPOCH, Topic
from broker.topic_names import topic_name_problem
from protocol.errors import ErrorCode

METADATA = 3


def _partition_metadata(broker, topic: Topic) -> list[dict]:
    node = broker.config.node_id
    return [{"error_code": ErrorCode.NONE, "partition_index": p.index, "leader_id": node,
             "leader_epoch": LEADER_EPOCH, "replica_nodes": [node], "isr_nodes": [node],
             "offline_replicas": []}
            for p in topic.partitions]


def _topic_metadata(broker, topic: Topic, operations: int) -> dict:
    return {"error_code": ErrorCode.NONE, "name": topic.name, "topic_id": topic.topic_id,
            "is_internal": False, "partitions": _partition_metadata(broker, topic),
            "topic_authorized_operations": operations}


def _unknown_topic(name: str | None, topic_id, error: ErrorCode | None) -> dict:
    if error is None:
        error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if name is not None else ErrorCode.UNKNOWN_TOPIC_ID
    return {"error_code": error,
            "name": name, "topic_id": topic_id, "is_internal": False, "partitions": [],
            "topic_authorized_operations": authorized_operations.OMITTED}


@handles(METADATA)
async def metadata(broker, header, request) -> dict:
    registry = broker.registry
    topic_operations = authorized_operations.reported(request.get("include_topic_authorized_operations", False),
                                                      authorized_operations.TOPIC)
    # v0 asks for every topic with an empty list; v1+ with a null list.
    if request.topics is None or (header.request_api_version == 0 and not request.topics):
        topics = [_topic_metadata(broker, topic, topic_operations) for topic in registry.topics.values()]
    else:
        # v0-v3 requests always allow auto-creation; v4+ say whether they do.
        allow_auto_create = broker.config.auto_create_topics and request.get("allow_auto_topic_creation", True)
        topics = []
        for wanted in request.topics:
            topic_id = wanted.get("topic_id")
            if wanted.name is not None:
                topic = registry.topics.get(wanted.name)
                if topic is None and allow_auto_create:
                    topic = await auto_create(broker, wanted.name)
                elif topic is None and topic_name_problem(wanted.name):
                    # Kafka calls an invalid name invalid even when it would not create the topic, so
                    # clients fail at once instead of waiting for the topic to appear.
                    topic = ErrorCode.INVALID_TOPIC_EXCEPTION
            else:
                topic = registry.topics_by_id.get(topic_id)
            if isinstance(topic, Topic):
                topics.append(_topic_metadata(broker, topic, topic_operations))
            else:
                topics.append(_unknown_topic(wanted.name, topic_id, topic))
    host, port = broker.advertised_address
    node = broker.config.node_id
    return {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": node, "host": host, "port": port, "rack": None}],
        "cluster_id": broker.cluster_id,
        "controller_id": node,
        "topics": topics,
        "cluster_authorized_operations": authorized_operations.reported(
            request.get("include_cluster_authorized_operations", False), authorized_operations.CLUSTER),
    }
