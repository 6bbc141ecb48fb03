"""A consumer group of three on a six-partition topic, kafka-python and confluent-kafka members in
the same group (both offer the `range` and `roundrobin` assignors by default, and the leader's
`range` assignment is read by either library): every partition has exactly one owner, a member
that leaves hands its partitions to the others, and nothing is read twice across the handoff
because each member commits what it read before it polls again. A pattern subscription takes in
topics and partitions created while it runs."""

from __future__ import annotations

import collections
import threading
import time

import pytest
from confluent_kafka import Consumer
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from interop.admin_clients import eventually, kafka_python_admin
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy, kafka_python_producer

PARTITIONS = 6
SESSION = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 300}
# Small polls spread the reading over time, so the leave happens with records still unread.
POLL_RECORDS = 5


class Ledger:
    """Who owns which partition and who read what, recorded from the members' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owners: dict[int, set[str]] = collections.defaultdict(set)
        self.overlaps: list[tuple[str, int, set[str]]] = []
        self.read: list[tuple[str, int, int, bytes]] = []
        self.strays: list[tuple[str, int, int]] = []

    def assigned(self, member: str, partitions: list[int]) -> None:
        with self.lock:
            for partition in partitions:
                if self.owners[partition] - {member}:
                    self.overlaps.append((member, partition, set(self.owners[partition])))
                self.owners[partition].add(member)

    def released(self, member: str) -> None:
        with self.lock:
            for owners in self.owners.values():
                owners.discard(member)

    def record(self, member: str, records: list[tuple[int, int, bytes]]) -> None:
        with self.lock:
            for partition, offset, value in records:
                if self.owners[partition] != {member}:
                    self.strays.append((member, partition, offset))
                self.read.append((member, partition, offset, value))

    def assignment(self) -> dict[str, list[int]]:
        with self.lock:
            by_member = collections.defaultdict(list)
            for partition, owners in sorted(self.owners.items()):
                for owner in owners:
                    by_member[owner].append(partition)
            return dict(by_member)

    def read_count(self) -> int:
        with self.lock:
            return len(self.read)


class Member(threading.Thread):
    """A group member polling in its own thread until told to leave; it commits after every poll
    that returned records, before the next poll (where a rebalance can take its partitions)."""

    library = ""

    def __init__(self, broker, topic: str, group: str, index: int, ledger: Ledger) -> None:
        super().__init__(name=f"{self.library}-{index}", daemon=True)
        self.broker, self.topic, self.group, self.ledger = broker, topic, group, ledger
        self.leaving = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.consume()
        except BaseException as exc:  # reported by the test thread
            self.failure = exc
        finally:
            self.ledger.released(self.name)

    def consume(self) -> None:
        raise NotImplementedError

    def leave(self) -> None:
        self.leaving.set()
        self.join(TIMEOUT_SECONDS)
        assert not self.is_alive(), f"{self.name} did not close in time"


class KafkaPythonMember(Member):
    library = "kafka-python"

    def consume(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=self.group,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=POLL_RECORDS, request_timeout_ms=TIMEOUT_MS,
                                 bootstrap_timeout_ms=TIMEOUT_MS, **SESSION)
        member, ledger = self.name, self.ledger

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                ledger.released(member)

            def on_partitions_assigned(self, assigned):
                ledger.assigned(member, [tp.partition for tp in assigned])

        # kafka-python 3.0.12 leaves a join half done when a poll times out during a rejoin that a
        # change of topic metadata triggered (its leader's assignment snapshot then matches again
        # and the sync result is never applied; it stops heartbeating and is evicted), so the
        # member learns the partitions before it joins, and polls for longer than a rebalance
        # takes on a loaded machine (the leader still rejoins once after its first assignment).
        assert consumer.partitions_for_topic(self.topic) == set(range(PARTITIONS))
        consumer.subscribe([self.topic], listener=Listener())
        try:
            while not self.leaving.is_set():
                batches = consumer.poll(timeout_ms=2000)
                if batches:
                    ledger.record(member, [(tp.partition, r.offset, r.value)
                                           for tp, records in batches.items() for r in records])
                    consumer.commit()
        finally:
            consumer.close(timeout_ms=TIMEOUT_MS)


class ConfluentMember(Member):
    library = "confluent-kafka"

    def consume(self) -> None:
        consumer = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": self.group,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "session.timeout.ms": SESSION["session_timeout_ms"],
                             "heartbeat.interval.ms": SESSION["heartbeat_interval_ms"],
                             "socket.timeout.ms": TIMEOUT_MS})
        member, ledger = self.name, self.ledger
        consumer.subscribe([self.topic],
                           on_assign=lambda _, partitions: ledger.assigned(member, [p.partition for p in partitions]),
                           on_revoke=lambda _, partitions: ledger.released(member))
        try:
            while not self.leaving.is_set():
                messages = consumer.consume(num_messages=POLL_RECORDS, timeout=0.1)
                for message in messages:
                    assert message.error() is None, message.error()
                if messages:
                    ledger.record(member, [(m.partition(), m.offset(), m.value()) for m in messages])
                    # Commits the offsets after what consume() returned (librdkafka stores them as it hands them out).
                    consumer.commit(asynchronous=False)
        finally:
            consumer.close()


LIBRARIES = {"kafka-python": KafkaPythonMember, "confluent-kafka": ConfluentMember}


def produce_round(broker, topic: str, label: str, per_partition: int) -> list[tuple[int, bytes]]:
    """`per_partition` records on each partition; (partition, value) of each."""
    sent = [(p, f"{label}-{p}-{i}".encode()) for i in range(per_partition) for p in range(PARTITIONS)]
    with kafka_python_producer(broker) as producer:
        for partition, value in sent:
            producer.send(topic, value=value, partition=partition)
        producer.flush(timeout=TIMEOUT_SECONDS)
    return sent


def wait_for_assignment(ledger: Ledger, members: list[Member], per_member: int) -> dict[str, list[int]]:
    """Wait until the members own every partition, `per_member` each, and return who owns what."""
    def settled():
        for member in members:
            assert member.failure is None, f"{member.name} failed: {member.failure!r}"
        assignment = ledger.assignment()
        owned = sorted(p for partitions in assignment.values() for p in partitions)
        return assignment if owned == list(range(PARTITIONS)) and sorted(assignment) == sorted(m.name for m in members) \
            and all(len(partitions) == per_member for partitions in assignment.values()) else None
    return eventually(settled, f"{per_member} partitions for each of {[m.name for m in members]}",
                      timeout=2 * TIMEOUT_SECONDS)


@pytest.mark.parametrize("libraries", [
    ("kafka-python", "confluent-kafka", "kafka-python"),
    ("confluent-kafka", "kafka-python", "confluent-kafka"),
    ("kafka-python", "kafka-python", "kafka-python"),
    ("confluent-kafka", "confluent-kafka", "confluent-kafka"),
], ids=["mixed-kafka-python-leaves", "mixed-confluent-leaves", "kafka-python-only", "confluent-only"])
def test_three_members_share_six_partitions_and_a_leaver_hands_over(shared_broker, libraries):
    """The last member of `libraries` is the one that leaves."""
    topic = group = "six-" + "-".join(library.split("-")[0] for library in libraries)
    with kafka_python_admin(shared_broker) as admin:
        admin.create_topics({topic: {"num_partitions": PARTITIONS}})
    ledger = Ledger()
    members = [LIBRARIES[library](shared_broker, topic, group, index, ledger) for index, library in enumerate(libraries)]
    for member in members:
        member.start()
    try:
        before = wait_for_assignment(ledger, members, per_member=2)
        sent = produce_round(shared_broker, topic, "before", 10)
        eventually(lambda: ledger.read_count() >= len(sent), "the first round to be read")
        with ledger.lock:
            readers = {partition: member for member, partition, _, _ in ledger.read}
        assert readers == {p: owner for owner, partitions in before.items() for p in partitions}

        sent += produce_round(shared_broker, topic, "during", 20)
        leaver, stayers = members[-1], members[:-1]
        leaver.leave()
        assert leaver.failure is None, f"{leaver.name} failed: {leaver.failure!r}"
        after = wait_for_assignment(ledger, stayers, per_member=3)
        sent += produce_round(shared_broker, topic, "after", 5)
        eventually(lambda: ledger.read_count() >= len(sent), "every record to be read")
    finally:
        for member in members:
            member.leave()
    for member in members:
        assert member.failure is None, f"{member.name} failed: {member.failure!r}"
    assert ledger.overlaps == [] and ledger.strays == []
    read = collections.Counter((partition, offset) for _, partition, offset, _ in ledger.read)
    assert [key for key, count in read.items() if count > 1] == [], "records read twice by the group"
    assert sorted((partition, value) for _, partition, _, value in ledger.read) == sorted(sent)
    # What the leaver's partitions got after it left went to their new owners.
    handed_over = {(partition, member) for member, partition, _, value in ledger.read
                   if partition in before[leaver.name] and value.startswith(b"after")}
    assert handed_over == {(p, owner) for owner, partitions in after.items() for p in partitions
                           if p in before[leaver.name]}
    with kafka_python_admin(shared_broker) as admin:
        committed = admin.list_group_offsets({group: None})[group]
    assert {tp: offset.offset for tp, offset in committed.items()} == \
        {TopicPartition(topic, p): 35 for p in range(PARTITIONS)}
    assert_broker_healthy(shared_broker)


def poll_confluent(consumer: Consumer, count: int) -> list[bytes]:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    values: list[bytes] = []
    while len(values) < count and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=count - len(values), timeout=0.1):
            assert message.error() is None, message.error()
            values.append(message.value())
    return values


def produce_values(broker, placements: dict[tuple[str, int], int]) -> list[bytes]:
    """`count` values on each (topic, partition); the values."""
    values = []
    with kafka_python_producer(broker) as producer:
        for (topic, partition), count in placements.items():
            for i in range(count):
                value = f"{topic}/{partition}/{i}".encode()
                producer.send(topic, value=value, partition=partition)
                values.append(value)
        producer.flush(timeout=TIMEOUT_SECONDS)
    return values


def test_a_pattern_subscription_follows_new_topics_and_partitions(shared_broker):
    """A member subscribed by pattern reads every matching topic, then a topic created later and
    partitions added later, once its metadata refresh shows them and its group rebalances. (With
    confluent-kafka: kafka-python 3.0.12 can leave such a metadata-triggered rejoin half done.)"""
    with kafka_python_admin(shared_broker) as admin:
        admin.create_topics({f"pattern-{i}": {"num_partitions": 2} for i in range(3)})
        first = produce_values(shared_broker, {(f"pattern-{i}", p): 2 for i in range(3) for p in range(2)})
        consumer = Consumer({"bootstrap.servers": shared_broker.bootstrap, "group.id": "pattern",
                             "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 300,
                             "socket.timeout.ms": TIMEOUT_MS})
        try:
            consumer.subscribe(["^pattern-.*"])
            assert sorted(poll_confluent(consumer, len(first))) == sorted(first)
            admin.create_topics({"pattern-late": {"num_partitions": 3}})
            admin.create_partitions({"pattern-0": 4})
            later = produce_values(shared_broker, {**{("pattern-late", p): 1 for p in range(3)},
                                                   ("pattern-0", 2): 1, ("pattern-0", 3): 1})
            assert sorted(poll_confluent(consumer, len(later))) == sorted(later)
        finally:
            consumer.close()
    assert_broker_healthy(shared_broker)
