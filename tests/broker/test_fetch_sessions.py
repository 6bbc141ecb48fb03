"""Incremental fetch sessions (KIP-227) over a real socket: what each fetch of a session answers,
its errors, and that a session's fetch reads only the partitions that changed."""

import pytest
import trio
import trio.testing

from broker.acls import (AUTHORIZER_CLASS_NAMES, AccessControlEntry, AclBinding, AclPermissionType, PatternType,
                         ResourcePattern, ResourceType)
from broker.authorized_operations import AclOperation
from broker.config import BrokerConfig
from broker.fetch_sessions import EVICTION_MS
from broker.server import Broker
from protocol import records
from protocol.errors import ErrorCode
from protocol.messages import ApiKey
from wire_client import WireClient

TOPIC = "sessions"
PARTITIONS = 4


def batch(*values):
    return records.build_batch([records.Record(value=value) for value in values])


def wanted(partition, offset=0):
    return {"partition": partition, "fetch_offset": offset, "partition_max_bytes": 1 << 20}


def fetch_body(session_id, epoch, partitions=(), forgotten=(), *, topic=TOPIC, max_wait_ms=0, topic_id=None):
    key = {"topic": topic} if topic_id is None else {"topic_id": topic_id}
    return {"replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": 1, "max_bytes": 50 << 20,
            "isolation_level": 0, "session_id": session_id, "session_epoch": epoch,
            "topics": [{**key, "partitions": list(partitions)}] if partitions else [],
            "forgotten_topics_data": [{**key, "partitions": list(forgotten)}] if forgotten else [], "rack_id": ""}


async def fetch(client, session_id, epoch, partitions=(), forgotten=(), version=12, **kwargs):
    return await client.request(ApiKey.FETCH, version, fetch_body(session_id, epoch, partitions, forgotten, **kwargs))


def answered(response) -> dict[int, object]:
    """partition -> its answer, of a response about TOPIC (or its id)."""
    return {partition.partition_index: partition for topic in response.responses for partition in topic.partitions}


def values_of(record_set):
    return [r.value for _, b in records.iter_batches(bytes(record_set)) for r in records.iter_records(b)]


async def produce(client, partition, *values):
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": TOPIC, "partition_data": [{"index": partition, "records": batch(*values)}]}]})
    assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE


@pytest.fixture
async def topic(broker):
    await broker.registry.create_topic(TOPIC, PARTITIONS)


async def open_session(client, version=12, **kwargs):
    """A session of every partition from offset 0: its id."""
    response = await fetch(client, 0, 0, [wanted(p) for p in range(PARTITIONS)], version=version, **kwargs)
    assert response.error_code == ErrorCode.NONE and response.session_id != 0
    assert sorted(answered(response)) == list(range(PARTITIONS))  # a full answer
    return response.session_id


async def test_a_session_answers_only_what_changed(broker, client, topic):
    session_id = await open_session(client)
    # Nothing new: an empty answer, and the session goes on.
    response = await fetch(client, session_id, 1)
    assert (response.error_code, response.session_id, answered(response)) == (ErrorCode.NONE, session_id, {})

    await produce(client, 2, b"a", b"b")
    response = await fetch(client, session_id, 2)
    [(index, partition)] = answered(response).items()
    assert (index, partition.high_watermark, values_of(partition.records)) == (2, 2, [b"a", b"b"])
    # Until its consumer moves past them, the records are answered again, as Kafka does.
    assert values_of(answered(await fetch(client, session_id, 3))[2].records) == [b"a", b"b"]
    # The consumer moves on: nothing new again.
    assert answered(await fetch(client, session_id, 4, [wanted(2, 2)])) == {}
    await produce(client, 0, b"c")
    await produce(client, 2, b"d")
    response = await fetch(client, session_id, 5)
    assert {index: values_of(p.records) for index, p in answered(response).items()} == {0: [b"c"], 2: [b"d"]}


async def test_the_session_keeps_every_partition_it_did_not_need_to_read(broker, client, topic):
    session_id = await open_session(client)
    session = broker.fetch_sessions.get(session_id)
    # All at the log end: no partition is read on the next fetch.
    assert len(session.partitions) == PARTITIONS and not session.dirty
    await produce(client, 1, b"x")
    assert list(session.dirty) == [(TOPIC, 1)]
    # Answered, but not yet moved past: read again next time.
    await fetch(client, session_id, 1)
    assert list(session.dirty) == [(TOPIC, 1)]
    await fetch(client, session_id, 2, [wanted(1, 1)])
    assert not session.dirty


async def test_errors_of_the_session_itself(broker, client, topic):
    session_id = await open_session(client)
    assert (await fetch(client, session_id, 5)).error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    assert (await fetch(client, session_id + 1, 1)).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    topic_id = broker.registry.topics[TOPIC].topic_id
    response = await fetch(client, session_id, 1, version=13, topic_id=topic_id)
    assert response.error_code == ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    # None of these used up the epoch.
    assert (await fetch(client, session_id, 1)).error_code == ErrorCode.NONE


async def test_a_session_by_topic_id(broker, client, topic):
    topic_id = broker.registry.topics[TOPIC].topic_id
    session_id = await open_session(client, version=13, topic_id=topic_id)
    await produce(client, 3, b"v13")
    response = await fetch(client, session_id, 1, version=13, topic_id=topic_id)
    assert [t.topic_id for t in response.responses] == [topic_id]
    assert values_of(answered(response)[3].records) == [b"v13"]


async def test_forgetting_every_partition_or_a_final_epoch_closes_the_session(broker, client, topic):
    session_id = await open_session(client)
    response = await fetch(client, session_id, 1, forgotten=range(PARTITIONS))
    assert (response.error_code, response.session_id) == (ErrorCode.NONE, 0)
    assert (await fetch(client, session_id, 2)).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND

    session_id = await open_session(client)
    response = await fetch(client, session_id, -1, [wanted(0)])
    assert (response.session_id, sorted(answered(response))) == (0, [0])
    assert broker.fetch_sessions.get(session_id) is None
    # A full fetch with epoch -1 creates none.
    assert (await fetch(client, 0, -1, [wanted(0)])).session_id == 0
    assert len(broker.fetch_sessions) == 0


async def test_a_full_fetch_naming_a_session_replaces_it(broker, client, topic):
    first = await open_session(client)
    response = await fetch(client, first, 0, [wanted(1)])
    assert response.session_id not in (0, first) and sorted(answered(response)) == [1]
    assert broker.fetch_sessions.get(first) is None


async def test_forgotten_and_added_partitions(broker, client, topic):
    session_id = await open_session(client)
    await fetch(client, session_id, 1, forgotten=[0])
    await produce(client, 0, b"forgotten")
    assert answered(await fetch(client, session_id, 2)) == {}
    # Added back: answered at once (its consumer knows nothing of it yet), records included.
    response = await fetch(client, session_id, 3, [wanted(0)])
    assert values_of(answered(response)[0].records) == [b"forgotten"]


async def test_log_start_moves_and_deleted_topics_reach_the_session(broker, client, topic):
    session_id = await open_session(client)
    await produce(client, 0, b"a", b"b", b"c")
    await fetch(client, session_id, 1, [wanted(0, 3)])
    assert answered(await fetch(client, session_id, 2)) == {}
    deleted = await client.request(ApiKey.DELETE_RECORDS, 2, {"topics": [
        {"name": TOPIC, "partitions": [{"partition_index": 0, "offset": 2}]}], "timeout_ms": 5000})
    assert deleted.topics[0].partitions[0].error_code == ErrorCode.NONE
    [(index, partition)] = answered(await fetch(client, session_id, 3)).items()
    assert (index, partition.log_start_offset, len(partition.records)) == (0, 2, 0)

    await client.request(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": TOPIC}], "timeout_ms": 5000})
    response = answered(await fetch(client, session_id, 4))
    assert {index: p.error_code for index, p in response.items()} == {
        index: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION for index in range(PARTITIONS)}


async def test_a_long_poll_of_a_session_is_woken_by_an_append(broker, client, topic, nursery):
    session_id = await open_session(client)
    producer = await WireClient.connect(broker.port)
    result = {}
    done = trio.Event()

    async def poll():
        result["response"] = await fetch(client, session_id, 1, max_wait_ms=30_000)
        done.set()

    nursery.start_soon(poll)
    await trio.testing.wait_all_tasks_blocked()
    assert not done.is_set()
    await produce(producer, 3, b"woken")
    with trio.fail_after(10):
        await done.wait()
    [(index, partition)] = answered(result["response"]).items()
    assert (index, values_of(partition.records)) == (3, [b"woken"])
    await producer.aclose()


async def test_the_cache_gives_a_slot_to_a_new_session_as_kafka_evicts(tmp_path, nursery):
    now = [1_000_000]
    config = BrokerConfig(port=0, data_dir=tmp_path / "data", max_incremental_fetch_session_cache_slots=1)
    async with Broker(config, clock=lambda: now[0]) as broker:
        await nursery.start(broker.serve)
        await broker.registry.create_topic(TOPIC, PARTITIONS)
        client = await WireClient.connect(broker.port)
        first = await open_session(client)
        # No slot: the newcomer goes on without a session; the first one is untouched.
        assert (await fetch(client, 0, 0, [wanted(0)])).session_id == 0
        # A larger one takes the slot of a smaller one once that is old enough.
        now[0] += EVICTION_MS + 1
        await fetch(client, first, 1)  # used: not stale, only old
        assert (await fetch(client, 0, 0, [wanted(0)])).session_id == 0
        response = await fetch(client, 0, 0, [wanted(p) for p in range(PARTITIONS)] + [wanted(PARTITIONS)])
        assert response.session_id not in (0, first)
        assert (await fetch(client, first, 2)).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
        # Unused for two minutes: stale, evicted for any newcomer.
        now[0] += EVICTION_MS + 1
        assert (await fetch(client, 0, 0, [wanted(0)])).session_id != 0
        await client.aclose()


async def test_an_acl_change_reaches_the_session(tmp_path, nursery):
    config = BrokerConfig(port=0, data_dir=tmp_path / "data", authorizer_class_name=AUTHORIZER_CLASS_NAMES[0],
                          allow_everyone_if_no_acl_found=True)
    async with Broker(config) as broker:
        await nursery.start(broker.serve)
        await broker.registry.create_topic(TOPIC, PARTITIONS)
        client = await WireClient.connect(broker.port)
        session_id = await open_session(client)
        assert answered(await fetch(client, session_id, 1)) == {}
        assert not broker.fetch_sessions.get(session_id).dirty
        await broker.authorizer.create_acls([AclBinding(
            ResourcePattern(ResourceType.TOPIC, TOPIC, PatternType.LITERAL),
            AccessControlEntry("User:ANONYMOUS", "*", AclOperation.READ, AclPermissionType.DENY))])
        response = answered(await fetch(client, session_id, 2))
        assert {index: p.error_code for index, p in response.items()} == {
            index: ErrorCode.TOPIC_AUTHORIZATION_FAILED for index in range(PARTITIONS)}
        await client.aclose()
