"""No request blocks the event loop: while one client creates a topic of 10,000 partitions (the
file work of which takes seconds), the broker keeps answering the others, and its loop monitor
reports no task step that held the loop for more than its threshold."""

from __future__ import annotations

import signal
import uuid

import trio

from interop.broker_process import BrokerProcess
from protocol import records
from protocol.errors import ErrorCode
from tests.broker.wire_client import WireClient
from protocol.messages import ApiKey

PARTITIONS = 10_000
# Only catches a hang: creating 10,000 partitions takes seconds on a loaded machine.
CREATE_TIMEOUT_SECONDS = 300
BLOCKED = "event loop blocked"


async def create_topic(client: WireClient, name: str, partitions: int):
    response = await client.request(ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                    "assignments": [], "configs": []}], "timeout_ms": CREATE_TIMEOUT_SECONDS * 1000})
    [result] = response.topics
    return result


async def metadata(client: WireClient, names: list[str]):
    return await client.request(ApiKey.METADATA, 12, {
        "topics": [{"name": name, "topic_id": uuid.UUID(int=0)} for name in names],
        "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})


async def produce_one(client: WireClient, value: bytes) -> int:
    batch = records.build_batch([records.Record(None, value, (), 0)])
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": 1, "timeout_ms": 10_000,
        "topic_data": [{"name": "comlog", "partition_data": [{"index": 0, "records": batch}]}]})
    return response.responses[0].partition_responses[0].error_code


async def test_other_clients_are_served_while_a_huge_topic_is_created(tmp_path):
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        creator, other = await WireClient.connect(broker.port), await WireClient.connect(broker.port)
        answered_meanwhile = 0
        created = None

        async def create() -> None:
            nonlocal created
            created = await create_topic(creator, "huge", PARTITIONS)

        with trio.fail_after(CREATE_TIMEOUT_SECONDS):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(create)
                # Until the creation is answered, the other client goes on producing and asking for
                # metadata; each answer comes while the creation runs.
                while created is None:
                    assert await produce_one(other, b"meanwhile") == ErrorCode.NONE
                    [comlog] = (await metadata(other, ["comlog"])).topics
                    assert comlog.error_code == ErrorCode.NONE
                    if created is None:
                        answered_meanwhile += 1
        assert created.error_code == ErrorCode.NONE, created.error_message
        assert answered_meanwhile >= 10
        [huge] = (await metadata(other, ["huge"])).topics
        assert huge.error_code == ErrorCode.NONE and len(huge.partitions) == PARTITIONS
        await creator.aclose()
        await other.aclose()
        assert broker.stop(signal.SIGTERM, timeout=CREATE_TIMEOUT_SECONDS) == 0
        blocked = [line for line in broker.output if BLOCKED in line]
        assert not blocked, "".join(blocked)
        assert sum(1 for _ in broker.data_dir.glob("huge-*")) == PARTITIONS
    finally:
        broker.kill()
