"""Keyed records on a many-partition topic: each client's partitioner picks the partition (checked
against the partition in the delivery report and against the partitioner's own hash), and every
partition reads back exactly its records, in the order they were sent."""

from __future__ import annotations

import zlib

import pytest
from confluent_kafka import Producer
from kafka import TopicPartition
from kafka.partitioner import murmur2

from interop.admin_clients import kafka_python_admin, read_partitions
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, kafka_python_producer

PARTITIONS = 7
KEYS = [f"customer-{i}".encode() for i in range(60)]
# Each key three times, interleaved with the others, so per-partition order is worth checking.
SENDS = [(key, f"{key.decode()}#{round_}".encode()) for round_ in range(3) for key in KEYS]


def java_partition(key: bytes) -> int:
    """The Java client's (and kafka-python's) choice: positive murmur2 of the key, modulo the count."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def crc32_partition(key: bytes) -> int:
    """librdkafka's `consistent` partitioner: CRC-32 of the key, modulo the count."""
    return zlib.crc32(key) % PARTITIONS


def create_topic(broker, name: str) -> None:
    with kafka_python_admin(broker) as admin:
        admin.create_topics({name: {"num_partitions": PARTITIONS}})


def assert_each_partition_reads_back_in_order(broker, topic: str, partitions: list[int]) -> None:
    """`partitions[i]` is where SENDS[i] was reported to land."""
    expected = {TopicPartition(topic, p): [] for p in range(PARTITIONS)}
    for (key, value), partition in zip(SENDS, partitions):
        expected[TopicPartition(topic, partition)].append((key, value))
    expected = {tp: records for tp, records in expected.items() if records}
    assert len(expected) == PARTITIONS, "the keys should spread over every partition"
    read = read_partitions(broker, {tp: len(records) for tp, records in expected.items()})
    assert {tp: [(r.offset, r.key, r.value) for r in records] for tp, records in read.items()} == \
        {tp: [(offset, key, value) for offset, (key, value) in enumerate(records)] for tp, records in expected.items()}


def test_kafka_python_keyed_records(shared_broker):
    create_topic(shared_broker, "keyed-kafka-python")
    with kafka_python_producer(shared_broker, linger_ms=5) as producer:
        futures = [producer.send("keyed-kafka-python", key=key, value=value) for key, value in SENDS]
        producer.flush(timeout=TIMEOUT_SECONDS)
        partitions = [future.get(timeout=TIMEOUT_SECONDS).partition for future in futures]
    assert partitions == [java_partition(key) for key, _ in SENDS]
    assert_each_partition_reads_back_in_order(shared_broker, "keyed-kafka-python", partitions)


@pytest.mark.parametrize(("partitioner", "expected_partition"), [
    ("consistent_random", crc32_partition),  # librdkafka's default
    ("murmur2_random", java_partition),  # the Java client's, so keys land where kafka-python puts them
])
def test_confluent_keyed_records(shared_broker, partitioner, expected_partition):
    topic = f"keyed-confluent-{partitioner}"
    create_topic(shared_broker, topic)
    reports = []
    producer = Producer({"bootstrap.servers": shared_broker.bootstrap, "partitioner": partitioner,
                         "linger.ms": 5, "message.timeout.ms": TIMEOUT_MS, "socket.timeout.ms": TIMEOUT_MS})
    for key, value in SENDS:
        producer.produce(topic, key=key, value=value,
                         on_delivery=lambda error, message: reports.append((error, message.value(), message.partition())))
    assert producer.flush(TIMEOUT_SECONDS) == 0, "messages left undelivered"
    assert [error for error, _, _ in reports] == [None] * len(SENDS)
    # Delivery reports come per partition, so match them to the sends by value.
    partition_of = {value: partition for _, value, partition in reports}
    partitions = [partition_of[value] for _, value in SENDS]
    assert partitions == [expected_partition(key) for key, _ in SENDS]
    assert_each_partition_reads_back_in_order(shared_broker, topic, partitions)
