"""Faults injected through the embedded broker's API, with real clients on their retry and
error paths: confluent-kafka's idempotent producer through NOT_LEADER_OR_FOLLOWER and a dropped
answer, a group consumer through REBALANCE_IN_PROGRESS on its heartbeats, kafka-python on a
non-retriable error, librdkafka on a closed connection; a partition's appends and fetches paused
and resumed; and the faults listed and cleared."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaProducer
from kafka.errors import TopicAuthorizationFailedError

from broker.embedded import EmbeddedBroker
from interop.admin_clients import eventually
from interop.clients import TIMEOUT_SECONDS
from protocol import records
from protocol.errors import ErrorCode
from protocol.messages import ApiKey
from tests.broker.wire_client import WireClient


@pytest.fixture
def broker():
    with EmbeddedBroker() as broker:
        yield broker


def produce_idempotently(broker, topic: str, values: list[bytes], **config) -> None:
    failures = []
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True,
                         "linger.ms": 0, "retry.backoff.ms": 10, **config})
    for value in values:
        producer.produce(topic, value, on_delivery=lambda error, _: failures.append(error) if error else None)
        producer.poll(0)
    assert producer.flush(TIMEOUT_SECONDS) == 0
    assert not failures, failures


def read_all(broker, topic: str, count: int) -> list[tuple[int, bytes]]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": f"reader-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found = []
    try:
        while len(found) < count:
            message = consumer.poll(TIMEOUT_SECONDS)
            assert message is not None and message.error() is None, message and message.error()
            found.append((message.offset(), message.value()))
        assert consumer.poll(0.5) is None  # nothing more: no record was written twice
    finally:
        consumer.close()
    return found


def test_an_idempotent_producer_retries_not_leader_and_a_dropped_answer_and_writes_each_record_once(broker):
    values = [b"record-%d" % n for n in range(20)]
    broker.faults.inject("PRODUCE", count=3, error="NOT_LEADER_OR_FOLLOWER", topic="retried")
    produce_idempotently(broker, "retried", values[:10])
    assert broker.faults.list() == []
    broker.faults.inject("PRODUCE", drop=True, topic="retried")
    # librdkafka gives up on an unanswered request after socket.timeout.ms, then retries it.
    produce_idempotently(broker, "retried", values[10:], **{"socket.timeout.ms": 1000})
    assert broker.faults.list() == []
    assert read_all(broker, "retried", 20) == list(enumerate(values))


def test_a_group_consumer_rejoins_through_rebalance_in_progress_on_its_heartbeats(broker):
    group = f"g-{uuid.uuid4()}"
    produce_idempotently(broker, "grouped", [b"before"])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                         "auto.offset.reset": "earliest", "heartbeat.interval.ms": 100})
    consumer.subscribe(["grouped"])
    try:
        first = consumer.poll(TIMEOUT_SECONDS)
        assert first is not None and first.value() == b"before"
        consumer.commit(first, asynchronous=False)
        broker.faults.inject("HEARTBEAT", count=2, error="REBALANCE_IN_PROGRESS", group=group)
        produce_idempotently(broker, "grouped", [b"after"])
        received = []

        def rejoined_and_consumed() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                received.append(message.value())
            return not broker.faults.list() and received

        eventually(rejoined_and_consumed, "the heartbeats' faults applied and the next record consumed")
        assert received == [b"after"]
    finally:
        consumer.close()


def test_kafka_python_surfaces_a_non_retriable_error(broker):
    broker.faults.inject("PRODUCE", error="TOPIC_AUTHORIZATION_FAILED")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, retries=5)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("refused", b"x").get(TIMEOUT_SECONDS)
    finally:
        producer.close()


def test_a_closed_connection_fails_the_request_and_the_client_reconnects(broker):
    broker.faults.inject("METADATA", close=True, topic="comlog")
    broker.faults.inject("METADATA", delay_ms=200, topic="comlog")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    try:
        admin.list_topics("comlog", timeout=TIMEOUT_SECONDS)
    except KafkaException as failed:  # else librdkafka sent it again on its new connection, in time
        assert failed.args[0].code() == KafkaError._TRANSPORT
    # On a new connection, answered after the delay.
    assert "comlog" in admin.list_topics("comlog", timeout=TIMEOUT_SECONDS).topics
    assert broker.faults.list() == []


def test_faults_are_listed_cleared_and_refused_when_impossible(broker):
    first = broker.faults.inject("FETCH", count=5, error="NOT_LEADER_OR_FOLLOWER", topic="t", partition=2)
    second = broker.faults.inject("HEARTBEAT", delay_ms=50, group="g")
    assert [(f.id, f.api.name, f.remaining) for f in broker.faults.list()] == [
        (first.id, "FETCH", 5), (second.id, "HEARTBEAT", 1)]
    broker.faults.clear(first.id)
    assert [f.id for f in broker.faults.list()] == [second.id]
    broker.faults.clear()
    assert broker.faults.list() == []
    with pytest.raises(ValueError, match="METADATA responses have no error code"):
        broker.faults.inject("METADATA", error="NOT_CONTROLLER")
    with pytest.raises(ValueError, match="give at least one"):
        broker.faults.inject("PRODUCE")
    with pytest.raises(KeyError):
        broker.faults.inject("PRODUCE", error="NO_SUCH_ERROR")


def test_paused_appends_wait_for_resume_and_paused_fetches_find_nothing_new(broker):
    produce_idempotently(broker, "paused", [b"first"])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": f"g-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 50})
    consumer.subscribe(["paused"])
    try:
        assert consumer.poll(TIMEOUT_SECONDS).value() == b"first"
        broker.faults.pause_fetches("paused", 0)
        broker.faults.pause_appends("paused", 0)
        assert broker.faults.paused() == [("fetches", "paused", 0), ("appends", "paused", 0)]
        delivered = []
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 0})
        producer.produce("paused", b"second", on_delivery=lambda error, message: delivered.append(error))
        # A second's worth of polling: the append waits, undelivered, while paused.
        assert producer.flush(1) == 1 and delivered == []
        broker.faults.resume_appends("paused", 0)
        assert producer.flush(TIMEOUT_SECONDS) == 0 and delivered == [None]
        # Appended, but not fetched while the partition's fetches are paused.
        assert consumer.poll(1) is None
        broker.faults.clear()
        assert broker.faults.paused() == []
        assert consumer.poll(TIMEOUT_SECONDS).value() == b"second"
    finally:
        consumer.close()


async def test_a_paused_append_times_out_as_its_request_says_and_appends_nothing():
    async with EmbeddedBroker() as broker:
        broker.faults.pause_appends("comlog", 0)
        client = await WireClient.connect(broker.port)
        response = await client.request(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": -1, "timeout_ms": 100, "topic_data": [{
                "name": "comlog", "partition_data": [{"index": 0, "records": records.build_batch(
                    [records.Record(value=b"late")])}]}]})
        partition = response.responses[0].partition_responses[0]
        assert partition.error_code == ErrorCode.REQUEST_TIMED_OUT
        assert "paused" in partition.error_message
        latest = await client.request(ApiKey.LIST_OFFSETS, 7, {
            "replica_id": -1, "isolation_level": 0, "topics": [{
                "name": "comlog", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
        await client.aclose()
        assert latest.topics[0].partitions[0].offset == 0
