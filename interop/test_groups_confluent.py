"""confluent-kafka (librdkafka) consumer groups against the real broker process: subscribe with a
group, assign() with a group id (librdkafka still asks the coordinator for committed offsets),
commit and resume, and the AdminClient's group calls."""

from __future__ import annotations

import contextlib
from typing import Iterator

from confluent_kafka import OFFSET_STORED, Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, assert_broker_healthy
from interop.group_clients import collect, produce


@contextlib.contextmanager
def consumer(broker, group: str, **config) -> Iterator[Consumer]:
    settings = {"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                "socket.timeout.ms": TIMEOUT_MS, **config}
    client = Consumer(settings)
    try:
        yield client
    finally:
        client.close()


def poll_values(client: Consumer, count: int) -> list[bytes]:
    def poll(at_most: int) -> list[bytes]:
        message = client.poll(0.2)
        if message is None:
            return []
        assert message.error() is None, message.error()
        return [message.value()]
    return collect(poll, count)


def committed(client: Consumer) -> int:
    (partition,) = client.committed([TopicPartition(TOPIC, 0)], timeout=TIMEOUT_SECONDS)
    assert partition.error is None
    return partition.offset


def test_subscribe_commit_and_resume(broker):
    values = produce(broker, "subscribe", 8)
    with consumer(broker, "librdkafka-subscribe") as client:
        client.subscribe([TOPIC])
        assert poll_values(client, 5) == values[:5]
        client.commit(asynchronous=False)
        assert committed(client) == 5
    with consumer(broker, "librdkafka-subscribe") as resumed:
        resumed.subscribe([TOPIC])
        assert poll_values(resumed, 3) == values[5:]
    assert_broker_healthy(broker)


def test_assign_with_a_group_id_commits_and_resumes(broker):
    values = produce(broker, "assign", 6)
    with consumer(broker, "librdkafka-assign") as client:
        client.assign([TopicPartition(TOPIC, 0, OFFSET_STORED)])
        assert poll_values(client, 2) == values[:2]
        client.commit(offsets=[TopicPartition(TOPIC, 0, 4)], asynchronous=False)
        assert committed(client) == 4
    with consumer(broker, "librdkafka-assign") as resumed:
        # OFFSET_STORED: start at the group's committed offset.
        resumed.assign([TopicPartition(TOPIC, 0, OFFSET_STORED)])
        assert poll_values(resumed, 2) == values[4:]
    assert_broker_healthy(broker)


def test_admin_client_lists_describes_and_deletes_groups(broker):
    produce(broker, "admin", 1)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": TIMEOUT_MS})
    with consumer(broker, "librdkafka-admin", **{"client.id": "admin-test"}) as client:
        client.subscribe([TOPIC])
        poll_values(client, 1)
        client.commit(asynchronous=False)
        listed = admin.list_consumer_groups(request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS)
        assert [(g.group_id, g.state, g.is_simple_consumer_group) for g in listed.valid] == [
            ("librdkafka-admin", ConsumerGroupState.STABLE, False)]
        described = admin.describe_consumer_groups(["librdkafka-admin"], request_timeout=TIMEOUT_SECONDS)
        group = described["librdkafka-admin"].result(TIMEOUT_SECONDS)
        assert (group.state, group.partition_assignor, group.is_simple_consumer_group) == (
            ConsumerGroupState.STABLE, "range", False)
        (member,) = group.members
        assert member.client_id == "admin-test"
        assert [(p.topic, p.partition) for p in member.assignment.topic_partitions] == [(TOPIC, 0)]
        busy = admin.delete_consumer_groups(["librdkafka-admin"], request_timeout=TIMEOUT_SECONDS)
        error = busy["librdkafka-admin"].exception(TIMEOUT_SECONDS)
        assert isinstance(error, KafkaException) and error.args[0].name() == "NON_EMPTY_GROUP"
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS)
    assert [(g.group_id, g.state) for g in listed.valid] == [("librdkafka-admin", ConsumerGroupState.EMPTY)]
    deleted = admin.delete_consumer_groups(["librdkafka-admin"], request_timeout=TIMEOUT_SECONDS)
    assert deleted["librdkafka-admin"].result(TIMEOUT_SECONDS) is None
    assert admin.list_consumer_groups(request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS).valid == []
    assert_broker_healthy(broker)


def test_consumers_subscribing_together_share_the_first_generation(tmp_path):
    # librdkafka's 0113 l_unsubscribe: with Kafka's initial rebalance delay, two members that
    # subscribe together are both in generation 1, so each is assigned exactly once.
    with BrokerProcess(tmp_path / "data", "--num-partitions", "2", "--group-initial-rebalance-delay-ms", "3000") as broker:
        assigned = {"first": [], "second": []}
        clients = {}
        for name in assigned:
            clients[name] = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "together",
                                      "partition.assignment.strategy": "cooperative-sticky",
                                      "session.timeout.ms": 6000, "socket.timeout.ms": TIMEOUT_MS})
            clients[name].subscribe([TOPIC], on_assign=lambda _, partitions, name=name: assigned[name].append(
                sorted(p.partition for p in partitions)))

        def poll(at_most: int) -> list[str]:
            for client in clients.values():
                client.poll(0.1)
            return ["both assigned"] if all(client.assignment() for client in clients.values()) else []

        try:
            collect(poll, 1, "assignments of both consumers")
        finally:
            for client in clients.values():
                client.close()
        assert sorted(assigned.values()) == [[[0]], [[1]]]
        assert_broker_healthy(broker)
