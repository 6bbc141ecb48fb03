"""confluent-kafka (librdkafka) against the real broker process: producers read back with
kafka-python's group-less consumer, and confluent's own Consumer on explicitly assigned offsets
(it requires a group.id, but only reaches for the group coordinator to look up committed offsets)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from interop.clients import (LIBRDKAFKA_CODECS, TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, compressible_value,
                             consume, stored_batches)

HEADERS = [("trace", b"\x00\x01"), ("origin", b"librdkafka")]


def produce(broker, values: list[bytes], key: bytes, timestamps: list[int] | None = None, **config) -> list[int]:
    """Produce `values` with one producer; the offsets of the delivery reports, in produce order."""
    reports = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": TIMEOUT_MS,
                         "socket.timeout.ms": TIMEOUT_MS, "linger.ms": 20, **config})
    for value, timestamp in zip(values, timestamps or [0] * len(values)):
        # Timestamp 0 lets librdkafka stamp the current time.
        producer.produce(TOPIC, value=value, key=key, headers=HEADERS, timestamp=timestamp,
                         on_delivery=lambda error, message: reports.append((error, message.offset())))
    assert producer.flush(TIMEOUT_SECONDS) == 0, "messages left undelivered"
    assert [error for error, _ in reports] == [None] * len(values)
    return [offset for _, offset in reports]


def assert_read_back(broker, offsets: list[int], values: list[bytes], key: bytes) -> None:
    assert offsets == list(range(offsets[0], offsets[0] + len(values)))
    records = consume(broker, offsets[0], len(values))
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == \
        [(offset, key, value, HEADERS) for offset, value in zip(offsets, values)]


@pytest.mark.parametrize("codec", LIBRDKAFKA_CODECS)
def test_producer_with_codec(shared_broker, codec):
    values = [compressible_value(f"librdkafka-{codec}", i) for i in range(5)]
    offsets = produce(shared_broker, values, codec.encode(), **{"compression.type": codec})
    assert_read_back(shared_broker, offsets, values, codec.encode())
    batches = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert {batch.codec for batch in batches} == {codec}
    # Idempotence is off by default in librdkafka.
    assert {batch.producer_id for batch in batches} == {-1}


def test_idempotent_producer(shared_broker):
    values = [f"idempotent-{i}".encode() for i in range(20)]
    # Small batches, so the sequence has to continue correctly from one batch to the next.
    offsets = produce(shared_broker, values, b"idem", **{"enable.idempotence": True, "batch.num.messages": 4})
    assert_read_back(shared_broker, offsets, values, b"idem")
    batches = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert len(batches) >= 2
    assert len({(batch.producer_id, batch.producer_epoch) for batch in batches}) == 1
    assert batches[0].producer_id >= 0
    assert [batch.base_sequence for batch in batches] == [batch.base_offset - offsets[0] for batch in batches]


def poll_messages(consumer: Consumer, count: int) -> list:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    received = []
    while len(received) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None:
            assert message.error() is None, message.error()
            received.append(message)
    assert len(received) == count, f"read {len(received)} of {count} messages within {TIMEOUT_SECONDS} s"
    return received


def test_consumer_on_assigned_offsets_with_watermarks_and_offsets_for_times(broker):
    base = int(time.time() * 1000) - 60_000
    timestamps = [base + 100 * i for i in range(6)]
    values = [f"assigned-{i}".encode() for i in range(6)]
    assert produce(broker, values, b"assigned", timestamps) == list(range(6))
    partition = TopicPartition(TOPIC, 0)
    # A short fetch wait: lookups queue behind the consumer's long-polling fetch on the same
    # connection, as they would with Kafka, which also serves one request per connection at a time.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused-without-commits",
                         "enable.auto.commit": False, "socket.timeout.ms": TIMEOUT_MS, "fetch.wait.max.ms": 50})
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 2)])
        messages = poll_messages(consumer, 4)
        assert [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in messages] == \
            [(i, b"assigned", values[i], HEADERS, timestamps[i]) for i in range(2, 6)]
        assert consumer.get_watermark_offsets(partition, timeout=TIMEOUT_SECONDS) == (0, 6)

        def lookup(timestamp):
            (found,) = consumer.offsets_for_times([TopicPartition(TOPIC, 0, timestamp)], timeout=TIMEOUT_SECONDS)
            return found.offset

        assert [lookup(base - 1), lookup(base + 150), lookup(base + 500)] == [0, 2, 5]
        # No record that late: Kafka answers offset -1.
        assert lookup(base + 501) == -1
    finally:
        consumer.close()
