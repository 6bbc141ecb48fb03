"""Many topics as kcat and the producers see them: `kcat -L` lists every topic and partition, a
producer writing to a new topic creates it with the broker's --num-partitions (kafka-python,
confluent-kafka, kcat) and a consumer reads the records back, and with --auto-create-topics false
each producer is told UNKNOWN_TOPIC_OR_PARTITION and nothing is created."""

from __future__ import annotations

import json
import subprocess

import kafka.errors as Errors
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from kafka import KafkaProducer, TopicPartition
from kafka.admin import ConfigResource

from interop.admin_clients import confluent_admin, kafka_python_admin, partition_directories, read_partitions
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, assert_broker_healthy, kafka_python_producer
from interop.test_kcat import KCAT, kcat

pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed (Debian package kcat)")
DEFAULT_PARTITIONS = 3
VALUES = [f"auto-{i}" for i in range(6)]


@pytest.fixture(scope="module")
def auto_creating_broker(tmp_path_factory):
    with BrokerProcess(tmp_path_factory.mktemp("auto") / "data", "--num-partitions", str(DEFAULT_PARTITIONS)) as process:
        yield process
        assert_broker_healthy(process)


@pytest.fixture(scope="module")
def strict_broker(tmp_path_factory):
    with BrokerProcess(tmp_path_factory.mktemp("strict") / "data", "--auto-create-topics", "false") as process:
        yield process


def listed_partitions(node_id: int, count: int) -> list[dict]:
    return [{"partition": i, "leader": node_id, "replicas": [{"id": node_id}], "isrs": [{"id": node_id}]}
            for i in range(count)]


def test_kcat_lists_every_topic_and_partition(auto_creating_broker):
    counts = {f"listed-{i:02}": i % 5 + 1 for i in range(20)}
    admin = confluent_admin(auto_creating_broker)
    futures = admin.create_topics([NewTopic(name, count, 1) for name, count in counts.items()],
                                  request_timeout=TIMEOUT_SECONDS)
    assert [future.result(TIMEOUT_SECONDS) for future in futures.values()] == [None] * 20
    listing = json.loads(kcat(auto_creating_broker, "-L", "-J"))
    topics = {topic["topic"]: topic["partitions"] for topic in listing["topics"] if topic["topic"].startswith("listed-")}
    assert topics == {name: listed_partitions(1, count) for name, count in counts.items()}
    # The broker's own topic was created with --num-partitions too.
    (own,) = json.loads(kcat(auto_creating_broker, "-L", "-J", "-t", TOPIC))["topics"]
    assert own == {"topic": TOPIC, "partitions": listed_partitions(1, DEFAULT_PARTITIONS)}


def test_create_topics_without_a_partition_count_takes_num_partitions(auto_creating_broker):
    with kafka_python_admin(auto_creating_broker) as admin:
        # A bare list of names asks for -1 partitions and replication factor -1.
        (created,) = admin.create_topics(["defaulted-kafka-python"])["topics"]
        assert (created["error_code"], created["num_partitions"], created["replication_factor"]) == \
            (0, DEFAULT_PARTITIONS, 1)
        described = admin.describe_configs([ConfigResource("BROKER", "1")], config_filter="all")["broker"]["1"]
        assert (described["num.partitions"]["value"], described["num.partitions"]["config_source"]) == \
            (str(DEFAULT_PARTITIONS), "STATIC_BROKER_CONFIG")
    admin = confluent_admin(auto_creating_broker)
    (future,) = admin.create_topics([NewTopic("defaulted-confluent")], request_timeout=TIMEOUT_SECONDS).values()
    assert future.result(TIMEOUT_SECONDS) is None
    metadata = admin.list_topics(timeout=TIMEOUT_SECONDS).topics
    assert {name: len(metadata[name].partitions) for name in ("defaulted-kafka-python", "defaulted-confluent")} == \
        dict.fromkeys(("defaulted-kafka-python", "defaulted-confluent"), DEFAULT_PARTITIONS)


def produce_with_kafka_python(broker, topic: str) -> list[int]:
    with kafka_python_producer(broker) as producer:
        futures = [producer.send(topic, value=value.encode()) for value in VALUES]
        producer.flush(timeout=TIMEOUT_SECONDS)
        return [future.get(timeout=TIMEOUT_SECONDS).partition for future in futures]


def produce_with_confluent(broker, topic: str) -> list[int]:
    reports = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": TIMEOUT_MS,
                         "socket.timeout.ms": TIMEOUT_MS})
    for value in VALUES:
        producer.produce(topic, value=value.encode(),
                         on_delivery=lambda error, message: reports.append((error, message.value(), message.partition())))
    assert producer.flush(TIMEOUT_SECONDS) == 0, "messages left undelivered"
    assert [error for error, _, _ in reports] == [None] * len(VALUES)
    partition_of = {value.decode(): partition for _, value, partition in reports}
    return [partition_of[value] for value in VALUES]


def produce_with_kcat(broker, topic: str) -> list[int]:
    # kcat reports no partitions, so it places the records itself: one on each partition, in turn.
    partitions = [i % DEFAULT_PARTITIONS for i in range(len(VALUES))]
    for partition in range(DEFAULT_PARTITIONS):
        kcat(broker, "-P", "-t", topic, "-p", str(partition),
             stdin="".join(f"{v}\n" for v, p in zip(VALUES, partitions) if p == partition))
    return partitions


PRODUCERS = {"kafka-python": produce_with_kafka_python, "confluent-kafka": produce_with_confluent,
             "kcat": produce_with_kcat}


@pytest.mark.parametrize("client", PRODUCERS)
def test_a_producer_creates_a_new_topic(auto_creating_broker, client):
    topic = f"auto-created-by-{client}"
    partitions = PRODUCERS[client](auto_creating_broker, topic)
    with kafka_python_admin(auto_creating_broker) as admin:
        (described,) = admin.describe_topics([topic])
    assert (described["error_code"], [p["partition_index"] for p in described["partitions"]]) == \
        (0, list(range(DEFAULT_PARTITIONS)))
    assert partition_directories(auto_creating_broker, topic) == [f"{topic}-{i}" for i in range(DEFAULT_PARTITIONS)]

    # A consumer of the new topic sees every record, on the partition the producer was told.
    expected = {TopicPartition(topic, p): [v.encode() for v, q in zip(VALUES, partitions) if q == p]
                for p in sorted(set(partitions))}
    read = read_partitions(auto_creating_broker, {tp: len(values) for tp, values in expected.items()})
    assert {tp: [r.value for r in records] for tp, records in read.items()} == expected
    output = kcat(auto_creating_broker, "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%p\t%s\n")
    assert sorted(output.splitlines()) == sorted(f"{p}\t{v}" for v, p in zip(VALUES, partitions))


def assert_not_created(broker, topic: str) -> None:
    with kafka_python_admin(broker) as admin:
        assert [t["error_code"] for t in admin.describe_topics([topic])] == \
            [Errors.UnknownTopicOrPartitionError.errno]
        assert topic not in admin.list_topics()
    assert partition_directories(broker, topic) == []
    assert_broker_healthy(broker)


def test_without_auto_creation_kafka_python_cannot_produce_to_an_unknown_topic(strict_broker):
    # kafka-python waits for the topic to appear in metadata, which never happens.
    producer = KafkaProducer(bootstrap_servers=strict_broker.bootstrap, max_block_ms=1000)
    try:
        with pytest.raises(Errors.KafkaTimeoutError):
            producer.send("strict-kafka-python", value=b"lost")
    finally:
        producer.close(timeout=TIMEOUT_SECONDS)
    assert_not_created(strict_broker, "strict-kafka-python")


def test_without_auto_creation_confluent_is_told_unknown_topic(strict_broker):
    reports = []
    # librdkafka fails queued messages once metadata keeps saying the topic is unknown for this long.
    producer = Producer({"bootstrap.servers": strict_broker.bootstrap, "topic.metadata.propagation.max.ms": 500,
                         "message.timeout.ms": TIMEOUT_MS, "socket.timeout.ms": TIMEOUT_MS})
    producer.produce("strict-confluent", value=b"lost", on_delivery=lambda error, message: reports.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0
    assert [error.name() for error in reports] == ["UNKNOWN_TOPIC_OR_PART"]
    assert_not_created(strict_broker, "strict-confluent")


def test_without_auto_creation_an_invalid_name_is_refused_at_once(strict_broker):
    # Kafka names an invalid topic as such in Metadata whether or not it would create it, and
    # librdkafka then fails the message at once instead of waiting for the topic to appear.
    reports = []
    producer = Producer({"bootstrap.servers": strict_broker.bootstrap, "message.timeout.ms": TIMEOUT_MS,
                         "socket.timeout.ms": TIMEOUT_MS})
    producer.produce("strict bad/name", value=b"lost", on_delivery=lambda error, message: reports.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0
    assert [error.name() for error in reports] == ["TOPIC_EXCEPTION"]
    assert_broker_healthy(strict_broker)


def test_without_auto_creation_kcat_is_told_unknown_topic(strict_broker):
    result = subprocess.run([KCAT, "-b", strict_broker.bootstrap, "-P", "-t", "strict-kcat",
                             "-X", "topic.metadata.propagation.max.ms=500"],
                            input="lost\n", capture_output=True, text=True, timeout=2 * TIMEOUT_SECONDS)
    assert result.returncode != 0
    assert "Delivery failed for message: Broker: Unknown topic or partition" in result.stderr
    assert_not_created(strict_broker, "strict-kcat")
