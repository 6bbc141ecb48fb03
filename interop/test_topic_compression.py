"""A topic's compression.type with real clients: confluent-kafka (librdkafka) produces with its own
codec into topics configured otherwise, the broker stores every batch with the topic's codec (read
back from the partition's log file), and kafka-python and confluent-kafka consumers read every
record as it was produced."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy, compressible_value
from kafka import KafkaConsumer, TopicPartition
from protocol import records

CODEC_IDS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
COUNT = 500


def create_topic(broker, name: str, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(name, 1, 1, config=config)],
                                      request_timeout=TIMEOUT_SECONDS).values():
        future.result(TIMEOUT_SECONDS)


def produce(broker, topic: str, codec: str) -> list[tuple[bytes, bytes]]:
    """COUNT records with keys and headers, sent with librdkafka's `codec`, every one acknowledged."""
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50,
                         "enable.idempotence": True, "acks": "all",
                         "on_delivery": lambda error, _message: error and errors.append(error)})
    sent = [(b"key-%d" % i, compressible_value(codec, i)) for i in range(COUNT)]
    for key, value in sent:
        producer.produce(topic, value, key, partition=0, headers=[("codec", codec.encode())])
    assert producer.flush(TIMEOUT_SECONDS) == 0 and not errors, errors
    return sent


def stored_codecs(broker, topic: str) -> set[int]:
    """The codecs of the batches in the partition's log file."""
    data = (broker.data_dir / f"{topic}-0" / "00000000000000000000.log").read_bytes()
    return {records.compression_of(header.attributes) for header, _ in records.iter_batches(data)}


def read_with_kafka_python(broker, topic: str) -> list[tuple[bytes, bytes, list]]:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=TIMEOUT_SECONDS * 1000)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        received = []
        for message in consumer:
            received.append((message.key, message.value, message.headers))
            if len(received) == COUNT:
                break
        return received
    finally:
        consumer.close()


def read_with_confluent(broker, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"read-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        received = []
        for message in iter(lambda: consumer.poll(TIMEOUT_SECONDS), None):
            assert message.error() is None, message.error()
            received.append((message.key(), message.value()))
            if len(received) == COUNT:
                break
        return received
    finally:
        consumer.close()


@pytest.mark.parametrize(("topic_codec", "producer_codec"), [
    ("zstd", "lz4"), ("zstd", "none"), ("gzip", "snappy"), ("uncompressed", "zstd"), ("lz4", "lz4")])
def test_batches_are_stored_with_the_topics_codec_and_read_back(shared_broker, topic_codec, producer_codec):
    topic = f"compressed-{topic_codec}-{producer_codec}"
    create_topic(shared_broker, topic, {"compression.type": topic_codec, "compression.zstd.level": "1"})
    sent = produce(shared_broker, topic, producer_codec)
    assert stored_codecs(shared_broker, topic) == {CODEC_IDS[topic_codec]}
    assert read_with_kafka_python(shared_broker, topic) == [
        (key, value, [("codec", producer_codec.encode())]) for key, value in sent]
    assert read_with_confluent(shared_broker, topic) == sent
    assert_broker_healthy(shared_broker)


def test_the_producer_setting_keeps_the_clients_codec(shared_broker):
    create_topic(shared_broker, "compressed-producer", {"compression.type": "producer"})
    sent = produce(shared_broker, "compressed-producer", "snappy")
    assert stored_codecs(shared_broker, "compressed-producer") == {CODEC_IDS["snappy"]}
    assert read_with_confluent(shared_broker, "compressed-producer") == sent
