"""aiokafka against the real broker process: its producer (plain, idempotent, compressed) and its
consumer without a group (assign + seeks).

aiokafka runs on asyncio while the suite runs async tests under trio, so these tests are plain
functions that drive their own asyncio loop, bounded by one overall timeout."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from interop.clients import (TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, assert_broker_healthy, compressible_value,
                             consume, kafka_python_producer, send_all, stored_batches)

PARTITION = TopicPartition(TOPIC, 0)
HEADERS = [("trace", b"\x00\x01"), ("origin", b"aiokafka")]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 3 * TIMEOUT_SECONDS))


def aiokafka_producer(broker, **config) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS, **config)


async def produce(broker, values: list[bytes], **config) -> list[int]:
    """Send each value with send_and_wait, then the same values once more as one explicit batch;
    the offsets the producer reported."""
    producer = aiokafka_producer(broker, **config)
    await producer.start()
    try:
        offsets = [(await producer.send_and_wait(TOPIC, value, key=b"aio", headers=HEADERS)).offset
                   for value in values]
        batch = producer.create_batch()
        for value in values:
            assert batch.append(key=b"aio", value=value, timestamp=None, headers=HEADERS) is not None
        base = (await (await producer.send_batch(batch, TOPIC, partition=0))).offset
        return offsets + list(range(base, base + len(values)))
    finally:
        await producer.stop()


@pytest.mark.parametrize("config", [{}, {"enable_idempotence": True}, {"compression_type": "gzip"}],
                         ids=["plain", "idempotent", "gzip"])
def test_producer(shared_broker, config):
    values = [compressible_value("aiokafka", i) for i in range(3)]
    offsets = run(produce(shared_broker, values, **config))
    assert offsets == list(range(offsets[0], offsets[0] + 6))
    records = consume(shared_broker, offsets[0], 6)
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == \
        [(offset, b"aio", value, HEADERS) for offset, value in zip(offsets, values * 2)]
    batches = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert {batch.codec for batch in batches} == {config.get("compression_type", "none")}
    producer_ids = {batch.producer_id for batch in batches}
    if config.get("enable_idempotence"):
        assert len(producer_ids) == 1 and min(producer_ids) >= 0
    else:
        assert producer_ids == {-1}


async def next_records(consumer: AIOKafkaConsumer, count: int) -> list:
    """The next `count` records the consumer returns; fails if they don't all arrive in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_SECONDS
    received = []
    while len(received) < count and loop.time() < deadline:
        batches = await consumer.getmany(PARTITION, timeout_ms=200, max_records=count - len(received))
        received.extend(batches.get(PARTITION, []))
    assert len(received) == count, f"read {len(received)} of {count} records within {TIMEOUT_SECONDS} s"
    return received


async def read_with_seeks(broker, start: int, values: list[bytes]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=TIMEOUT_MS)
    await consumer.start()
    try:
        consumer.assign([PARTITION])
        end = start + len(values)
        consumer.seek(PARTITION, start)
        assert [(r.offset, r.value) for r in await next_records(consumer, len(values))] == \
            list(zip(range(start, end), values))
        consumer.seek(PARTITION, end - 2)
        assert [r.offset for r in await next_records(consumer, 2)] == [end - 2, end - 1]
        await consumer.seek_to_beginning(PARTITION)
        assert await consumer.position(PARTITION) == 0
        await consumer.seek_to_end(PARTITION)
        assert await consumer.position(PARTITION) == end
        assert await consumer.end_offsets([PARTITION]) == {PARTITION: end}
        # From the end, the consumer gets only what is appended after the seek.
        producer = aiokafka_producer(broker)
        await producer.start()
        try:
            appended = await producer.send_and_wait(TOPIC, b"after-end")
        finally:
            await producer.stop()
        (record,) = await next_records(consumer, 1)
        assert (record.offset, record.value) == (appended.offset, b"after-end") and appended.offset == end
    finally:
        await consumer.stop()


def test_group_less_consumer_with_seeks(shared_broker):
    values = [f"for-aiokafka-{i}".encode() for i in range(6)]
    with kafka_python_producer(shared_broker) as producer:
        start = send_all(producer, values)[0]
    run(read_with_seeks(shared_broker, start, values))
    assert_broker_healthy(shared_broker)
