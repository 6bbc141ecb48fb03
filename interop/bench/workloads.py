"""The side-by-side benchmark's workloads, each driving one server through real clients.

Every function takes the server's bootstrap address and a topic the server already has, uses the
same client settings whatever the server, bounds every wait, and raises WorkloadError when a
client reports an error or records go missing, so a number is never printed for a broken run.
Values are 1 KiB and uncompressed.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import uuid
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

VALUE_BYTES = 1024
VALUE = bytes(range(256)) * (VALUE_BYTES // 256)
# No workload may take longer than this, whatever the server does.
DEADLINE_SECONDS = 300
# Workload 1 (and the top-up to 1 GiB): acks=all, linger 5 ms, 1 MB batches, a queue deep
# enough that producing never waits for room.
THROUGHPUT_PRODUCER = {"acks": "all", "linger.ms": 5, "batch.size": 1_000_000,
                       "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 2_000_000}
# Workload 3: one record in flight, sent at once.
LATENCY_PRODUCER = {"acks": "all", "linger.ms": 0}
# Workloads 7 and 9: transactions of this many records, produced with THROUGHPUT_PRODUCER.
RECORDS_PER_TRANSACTION = 1000
# Workloads 7 and 8: the bound on each call that waits for the transaction coordinator.
TRANSACTION_CALL_SECONDS = 30
# librdkafka stops fetching for fetch.queue.backoff.ms (1 s by default) whenever its local queue
# holds more than queued.min.messages: a server that answers fetches quickly enough to fill it would
# be measured by that pause instead of by its speed.
CONSUMER = {"auto.offset.reset": "earliest", "fetch.queue.backoff.ms": 10}


class WorkloadError(Exception):
    """A client reported an error, or records were lost or duplicated."""


@dataclasses.dataclass(frozen=True)
class Throughput:
    records: int
    seconds: float

    @property
    def megabytes_per_second(self) -> float:
        return self.records * VALUE_BYTES / self.seconds / 1e6

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds


@dataclasses.dataclass(frozen=True)
class GroupRun:
    throughput: Throughput
    lost: int
    duplicated: int


def _check_deadline(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise WorkloadError(f"{what} did not finish within {DEADLINE_SECONDS} s")


class _Acknowledgements:
    """Counts a producer's delivery reports; the first error is kept."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, _message) -> None:
        if error is None:
            self.acknowledged += 1
        elif self.error is None:
            self.error = error

    def check(self, expected: int) -> None:
        if self.error is not None:
            raise WorkloadError(f"delivery failed: {self.error}")
        if self.acknowledged != expected:
            raise WorkloadError(f"{self.acknowledged} of {expected} records acknowledged")


def _produce_all(producer: Producer, topic: str, count: int, deadline: float, partition: int = -1,
                 label: str | None = None) -> None:
    """Queue `count` records (keyed `label:n` when a label is given), waiting for room when the
    queue is full, then flush."""
    for number in range(count):
        key = None if label is None else f"{label}:{number}".encode()
        while True:
            try:
                producer.produce(topic, VALUE, key, partition=partition)
                break
            except BufferError:
                _check_deadline(deadline, "producing")
                producer.poll(0.01)
    while producer.flush(1):
        _check_deadline(deadline, "flushing")


def confluent_produce(bootstrap: str, topic: str, count: int, security: Mapping[str, str] = {}) -> Throughput:
    """Workload 1: `count` records with confluent-kafka, each one acknowledged; `security` holds
    the client's TLS settings for a TLS listener (workload 10)."""
    acknowledgements = _Acknowledgements()
    producer = Producer({"bootstrap.servers": bootstrap, **THROUGHPUT_PRODUCER, **security,
                         "on_delivery": acknowledgements})
    deadline = time.monotonic() + DEADLINE_SECONDS
    # Connect and learn the partition leader first, so only producing is timed.
    producer.list_topics(topic, timeout=DEADLINE_SECONDS)
    started = time.perf_counter()
    _produce_all(producer, topic, count, deadline)
    seconds = time.perf_counter() - started
    acknowledgements.check(count)
    return Throughput(count, seconds)


def confluent_consume(bootstrap: str, topic: str, count: int, isolation_level: str = "read_committed",
                      security: Mapping[str, str] = {}) -> Throughput:
    """Workloads 2, 9 and 10: the first `count` records of partition 0 from offset 0, with
    confluent-kafka (read_committed is librdkafka's default)."""
    # confluent-kafka wants a group id even for a consumer that assigns its partition itself.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": isolation_level, **CONSUMER, **security})
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        consumer.list_topics(topic, timeout=DEADLINE_SECONDS)
        started = time.perf_counter()
        consumer.assign([TopicPartition(topic, 0, 0)])
        received = 0
        while received < count:
            _check_deadline(deadline, "consuming")
            # consume() waits for as many messages as asked for: never ask for more than remain.
            messages = consumer.consume(min(10_000, count - received), 1)
            errors = [message.error() for message in messages if message.error()]
            if errors:
                raise WorkloadError(f"consume failed: {errors[0]}")
            received += len(messages)
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return Throughput(count, seconds)


def produce_latencies(bootstrap: str, topic: str, count: int, warm_up: int = 100) -> list[float]:
    """Workload 3: seconds from produce() to the delivery report of each of `count` records sent
    one at a time (after `warm_up` untimed ones), with confluent-kafka."""
    acknowledgements = _Acknowledgements()
    producer = Producer({"bootstrap.servers": bootstrap, **LATENCY_PRODUCER, "on_delivery": acknowledgements})
    deadline = time.monotonic() + DEADLINE_SECONDS
    producer.list_topics(topic, timeout=DEADLINE_SECONDS)
    latencies = []
    for number in range(warm_up + count):
        started = time.perf_counter()
        producer.produce(topic, VALUE, partition=0)
        while acknowledgements.acknowledged <= number and acknowledgements.error is None:
            _check_deadline(deadline, "latency run")
            producer.poll(1)
        if number >= warm_up:
            latencies.append(time.perf_counter() - started)
        acknowledgements.check(number + 1)
    producer.flush(1)
    return latencies


def _transactional_producer(bootstrap: str, topic: str, settings: dict,
                            acknowledgements: _Acknowledgements) -> Producer:
    """A confluent-kafka producer with a transactional id of its own, its producer id obtained
    (InitProducerId) and the leader of `topic` known, so only transactions are timed."""
    producer = Producer({"bootstrap.servers": bootstrap, **settings, "transactional.id": f"bench-{uuid.uuid4()}",
                         "on_delivery": acknowledgements})
    producer.init_transactions(TRANSACTION_CALL_SECONDS)
    producer.list_topics(topic, timeout=DEADLINE_SECONDS)
    return producer


def transactional_produce(bootstrap: str, topic: str, transactions: int) -> Throughput:
    """Workload 7: `transactions` transactions of RECORDS_PER_TRANSACTION records to partition 0,
    one after another (begin, produce, commit), with confluent-kafka; every record acknowledged."""
    acknowledgements = _Acknowledgements()
    producer = _transactional_producer(bootstrap, topic, THROUGHPUT_PRODUCER, acknowledgements)
    deadline = time.monotonic() + DEADLINE_SECONDS
    started = time.perf_counter()
    for _ in range(transactions):
        producer.begin_transaction()
        _produce_all(producer, topic, RECORDS_PER_TRANSACTION, deadline, partition=0)
        producer.commit_transaction(TRANSACTION_CALL_SECONDS)
    seconds = time.perf_counter() - started
    count = transactions * RECORDS_PER_TRANSACTION
    acknowledgements.check(count)
    return Throughput(count, seconds)


def transaction_commit_latencies(bootstrap: str, topic: str, count: int, warm_up: int = 50) -> list[float]:
    """Workload 8: seconds from begin to the end of the commit of each of `count` transactions of
    one record (after `warm_up` untimed ones), one after another, with confluent-kafka sending at
    once (linger 0)."""
    acknowledgements = _Acknowledgements()
    producer = _transactional_producer(bootstrap, topic, LATENCY_PRODUCER, acknowledgements)
    deadline = time.monotonic() + DEADLINE_SECONDS
    latencies = []
    for number in range(warm_up + count):
        _check_deadline(deadline, "the commit latency run")
        started = time.perf_counter()
        producer.begin_transaction()
        producer.produce(topic, VALUE, partition=0)
        producer.commit_transaction(TRANSACTION_CALL_SECONDS)
        if number >= warm_up:
            latencies.append(time.perf_counter() - started)
        acknowledgements.check(number + 1)
    return latencies


def kafka_python_produce(bootstrap: str, topic: str, count: int) -> Throughput:
    """Workload 4: `count` records with kafka-python's default producer (idempotent, acks=all)."""
    from kafka import KafkaProducer

    # Its own defaults bound every wait: 60 s to connect and learn the leader, 120 s per delivery.
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        producer.partitions_for(topic)  # connect and learn the leader first, as for workload 1
        started = time.perf_counter()
        futures = [producer.send(topic, VALUE, partition=0) for _ in range(count)]
        producer.flush(timeout=DEADLINE_SECONDS)
        seconds = time.perf_counter() - started
        failed = [future.exception for future in futures if not future.succeeded()]
    finally:
        producer.close(timeout=DEADLINE_SECONDS)
    if failed:
        raise WorkloadError(f"{len(failed)} of {count} records failed: {failed[0]}")
    return Throughput(count, seconds)


class _GroupMember(threading.Thread):
    """One confluent-kafka group consumer polling in its own thread, keeping the keys it receives."""

    def __init__(self, bootstrap: str, group: str, topic: str, expected: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER})
        self.topic = topic
        self.expected = expected
        self.stop = stop
        self.keys: list[bytes] = []
        self.error: str | None = None
        # The partitions the group gave this member, kept by the rebalance callbacks (which run in
        # this thread): asking the consumer from another thread can block on its group state.
        self.owned: list[int] = []

    def _assigned(self, _consumer, partitions: list[TopicPartition]) -> None:
        self.owned = [assigned.partition for assigned in partitions]

    def _revoked(self, _consumer, _partitions: list[TopicPartition]) -> None:
        self.owned = []

    def run(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked)
        try:
            while not self.stop.is_set():
                # consume() waits for as many messages as asked for: ask for the ones still due
                # from this member's partition, then one at a time to catch any duplicate.
                wanted = min(1000, max(self.expected - len(self.keys), 1))
                for message in self.consumer.consume(wanted, 0.1):
                    if message.error():
                        self.error = self.error or str(message.error())
                    else:
                        self.keys.append(message.key())
        finally:
            self.consumer.close()


def _await_balanced_group(members: list[_GroupMember], partitions: int, deadline: float) -> None:
    """Wait until every member owns one partition, so that no rebalance runs while records flow."""
    while True:
        _check_deadline(deadline, "the group's first rebalance")
        owned = [member.owned for member in members]
        if all(len(mine) == 1 for mine in owned) and {p for mine in owned for p in mine} == set(range(partitions)):
            return
        time.sleep(0.05)


def group_produce_consume(bootstrap: str, topic: str, members: int, records_each: int) -> GroupRun:
    """Workload 5: `members` producers (producer i writes to partition i) and `members` consumers
    in one group, each client on its own connection, running at once, on a topic of `members`
    partitions that holds no records yet (the group reads from the earliest offset). Timed from the
    first record produced to the last one consumed, once the group has given each consumer its
    partition."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    stop = threading.Event()
    group = f"bench-group-{uuid.uuid4()}"
    consumers = [_GroupMember(bootstrap, group, topic, records_each, stop) for _ in range(members)]
    for consumer in consumers:
        consumer.start()
    try:
        _await_balanced_group(consumers, members, deadline)
        acknowledgements = [_Acknowledgements() for _ in range(members)]
        producers = [Producer({"bootstrap.servers": bootstrap, **THROUGHPUT_PRODUCER, "on_delivery": acks})
                     for acks in acknowledgements]
        for producer in producers:
            producer.list_topics(topic, timeout=DEADLINE_SECONDS)
        started = time.perf_counter()
        threads = [threading.Thread(target=_produce_all, args=(producer, topic, records_each, deadline, index, str(index)))
                   for index, producer in enumerate(producers)]
        for thread in threads:
            thread.start()
        expected = members * records_each
        while sum(len(consumer.keys) for consumer in consumers) < expected:
            _check_deadline(deadline, "the group's consumption")
            if any(consumer.error for consumer in consumers):
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        for thread in threads:
            thread.join(DEADLINE_SECONDS)
        for acks in acknowledgements:
            acks.check(records_each)
    finally:
        stop.set()
        for consumer in consumers:
            consumer.join(DEADLINE_SECONDS)
    errors = [consumer.error for consumer in consumers if consumer.error]
    if errors:
        raise WorkloadError(f"a group consumer failed: {errors[0]}")
    received = collections.Counter(key for consumer in consumers for key in consumer.keys)
    produced = {f"{index}:{number}".encode() for index in range(members) for number in range(records_each)}
    lost = len(produced - received.keys())
    duplicated = sum(times - 1 for times in received.values())
    return GroupRun(Throughput(expected, seconds), lost, duplicated)
