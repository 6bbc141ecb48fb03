"""Topic metadata survives a broker restart exactly (SIGTERM, then SIGKILL): topic ids, partition
counts, config overrides, deletions, log start offsets moved by DeleteRecords, and the records in
every partition, as both admin clients and a consumer see them."""

from __future__ import annotations

import base64
import signal
import uuid

from confluent_kafka import TopicCollection
from kafka import TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource

from interop.admin_clients import (confluent_admin, kafka_python_admin, kafka_python_topic_configs,
                                   partition_directories, read_partitions)
from interop.clients import TIMEOUT_SECONDS, TOPIC, kafka_python_producer

TOPICS = {"restart-a": {"num_partitions": 3, "configs": {"retention.ms": "86400000", "segment.bytes": "1048576"}},
          "restart-b": {"num_partitions": 1},
          "restart-c": {"num_partitions": 5, "configs": {"message.timestamp.type": "LogAppendTime"}},
          "restart-gone": {"num_partitions": 2}}


def confluent_topic_ids(broker, names: list[str]) -> dict[str, uuid.UUID]:
    """Topic ids as librdkafka reports them (Kafka's base64 form), as UUIDs."""
    admin = confluent_admin(broker)
    futures = admin.describe_topics(TopicCollection(names), request_timeout=TIMEOUT_SECONDS)
    ids = {name: str(future.result(TIMEOUT_SECONDS).topic_id) for name, future in futures.items()}
    return {name: uuid.UUID(bytes=base64.urlsafe_b64decode(text + "==")) for name, text in ids.items()}


def topic_state(broker) -> dict[str, tuple]:
    """(topic id, partition ids, configs) of every topic, and where the clients agree on the ids."""
    with kafka_python_admin(broker) as admin:
        described = admin.describe_topics()
        state = {t["name"]: (uuid.UUID(t["topic_id"]), [p["partition_index"] for p in t["partitions"]],
                             kafka_python_topic_configs(admin, t["name"]))
                 for t in described}
    assert confluent_topic_ids(broker, sorted(state)) == {name: topic_id for name, (topic_id, _, _) in state.items()}
    return state


def test_topics_come_back_exactly_after_restarts(broker):
    with kafka_python_admin(broker) as admin:
        admin.create_topics(TOPICS)
        admin.create_topics({"restart-dry-run": {"num_partitions": 2}}, validate_only=True)
        admin.create_partitions({"restart-c": 7})
        admin.alter_configs([ConfigResource("TOPIC", "restart-b", {"retention.bytes": "123456789"}),
                             ConfigResource("TOPIC", "restart-a", {"segment.bytes": (AlterConfigOp.DELETE, None)})])
        admin.delete_topics(["restart-gone"])
    placements = {TopicPartition("restart-a", 2): 3, TopicPartition("restart-c", 6): 2, TopicPartition(TOPIC, 0): 1}
    with kafka_python_producer(broker) as producer:
        for partition, count in placements.items():
            for i in range(count):
                producer.send(partition.topic, value=f"{partition.partition}-{i}".encode(), partition=partition.partition)
        producer.flush(timeout=TIMEOUT_SECONDS)
    with kafka_python_admin(broker) as admin:
        admin.delete_records({TopicPartition("restart-a", 2): 1})
    placements[TopicPartition("restart-a", 2)] = 2
    before = topic_state(broker)
    assert sorted(before) == [TOPIC, "restart-a", "restart-b", "restart-c"]
    assert [len(before[name][1]) for name in ("restart-a", "restart-b", "restart-c")] == [3, 1, 7]
    records = read_partitions(broker, placements)
    assert [r.offset for r in records[TopicPartition("restart-a", 2)]] == [1, 2]

    assert broker.stop(signal.SIGTERM) == 0
    broker.start()
    assert topic_state(broker) == before
    assert read_partitions(broker, placements) == records
    assert partition_directories(broker, "restart-gone") == []
    assert partition_directories(broker, "restart-c") == [f"restart-c-{i}" for i in range(7)]

    # An override changed and records deleted just before an unclean stop are there too: they were
    # on disk when acknowledged.
    with kafka_python_admin(broker) as admin:
        admin.alter_configs([ConfigResource("TOPIC", "restart-b", {"retention.ms": "60000"})])
        admin.create_topics({"restart-d": {"num_partitions": 2}})
        admin.delete_records({TopicPartition("restart-a", 2): 2})
    placements[TopicPartition("restart-a", 2)] = 1
    records[TopicPartition("restart-a", 2)] = records[TopicPartition("restart-a", 2)][1:]
    assert read_partitions(broker, placements) == records
    after_changes = topic_state(broker)
    assert after_changes["restart-b"][2]["retention.ms"] == ("60000", "DYNAMIC_TOPIC_CONFIG")
    broker.kill()
    broker.start()
    assert topic_state(broker) == after_changes
    assert read_partitions(broker, placements) == records
