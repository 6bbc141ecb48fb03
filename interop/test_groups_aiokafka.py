"""aiokafka consumer groups against the real broker process: a group consumer that commits, and a
new consumer of the group resuming after the commit (OffsetCommit v2, OffsetFetch v1-v3, JoinGroup
up to v5). Plain functions driving their own asyncio loop, as in test_aiokafka."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, assert_broker_healthy
from interop.group_clients import produce

PARTITION = TopicPartition(TOPIC, 0)
GROUP = "aiokafka-group"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 3 * TIMEOUT_SECONDS))


async def consume_then_commit(broker, count: int, commit_at: int | None = None) -> tuple[list[bytes], int]:
    """`count` values read by a fresh group consumer, which then commits (its position, or
    `commit_at`) and leaves; also returns what the group has committed then."""
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap, group_id=GROUP,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=6000, heartbeat_interval_ms=500, request_timeout_ms=TIMEOUT_MS)
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=count - len(values))
            values.extend(record.value for records in batches.values() for record in records)
        if commit_at is None:
            await consumer.commit()
        else:
            await consumer.commit({PARTITION: OffsetAndMetadata(commit_at, "aiokafka")})
        return values, await consumer.committed(PARTITION)
    finally:
        await consumer.stop()


def test_group_consumer_commits_and_a_new_one_resumes(broker):
    values = produce(broker, "aio-group", 9)
    assert run(consume_then_commit(broker, 3)) == (values[:3], 3)
    assert run(consume_then_commit(broker, 2, commit_at=7)) == (values[3:5], 7)
    assert run(consume_then_commit(broker, 2)) == (values[7:], 9)
    assert_broker_healthy(broker)
