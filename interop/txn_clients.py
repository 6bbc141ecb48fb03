"""Transactions with real clients against the real broker process: the scenarios every client's
test module runs, and the client processes they drive.

Each client runs in a process of its own (interop/txn_driver.py for the Python clients,
interop/js/driver.js for KafkaJS) that takes one JSON request per line, so a scenario drives
every client through the same steps and can SIGKILL one in the middle of a transaction. A
scenario's topics, groups and transactional ids are its own, so the scenarios share a broker.

Reading back relies on order within a partition: every scenario ends with a committed
transaction that writes one last record to each partition, and a consumer reads until it has seen
those; everything before them in each partition has then been delivered to it (or dropped as
aborted), so what it saw is exactly what its isolation level shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from interop.bench.servers import create_topics
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy

INTEROP = Path(__file__).parent
PYTHON_DRIVER = INTEROP / "txn_driver.py"
JS_DIR = INTEROP / "js"
JS_DRIVER = JS_DIR / "driver.js"
PYTHON_CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka")
# The transaction timeout of the producers that die in the middle of a transaction.
SHORT_TRANSACTION_TIMEOUT_MS = 2000
# How long a consumer may take to see what it waits for: the broker aborting a dead producer's
# transaction after SHORT_TRANSACTION_TIMEOUT_MS included.
CONSUME_TIMEOUT_SECONDS = 20
# A driver answers within this (each client call inside it is bounded by TIMEOUT_SECONDS).
REQUEST_TIMEOUT_SECONDS = CONSUME_TIMEOUT_SECONDS + 2 * TIMEOUT_SECONDS


def kafkajs_missing() -> str | None:
    """Why the KafkaJS tests cannot run here, or None. CI (COMLOG_REQUIRE_KAFKAJS=1) never skips them."""
    if shutil.which("node") is None:
        return "node is not installed (Debian: apt-get install nodejs npm)"
    if not (JS_DIR / "node_modules" / "kafkajs" / "package.json").is_file():
        return f"kafkajs is not installed (npm ci --prefix {JS_DIR})"
    return None


def require_kafkajs() -> None:
    """Skip the calling test when KafkaJS is missing, or fail when the environment says it must be there."""
    reason = kafkajs_missing()
    if reason is None:
        return
    if os.environ.get("COMLOG_REQUIRE_KAFKAJS") == "1":
        pytest.fail(f"COMLOG_REQUIRE_KAFKAJS=1 but {reason}")
    pytest.skip(reason)


def unique(label: str) -> str:
    """A topic, group or transactional id no other test uses, even on a shared broker."""
    return f"{label}-{uuid.uuid4().hex[:10]}"


class ClientError(Exception):
    """A client call failed: `error` is the driver's description (name, code, fatal, message)."""

    def __init__(self, op: str, error: dict) -> None:
        super().__init__(f"{op} failed: {error}")
        self.error = error


class Driver:
    """One client process; `call` sends a request and returns its result or raises ClientError."""

    def __init__(self, client: str, broker: BrokerProcess) -> None:
        if client == "kafkajs":
            command = [shutil.which("node"), str(JS_DRIVER), broker.bootstrap]
        else:
            command = [sys.executable, str(PYTHON_DRIVER), client, broker.bootstrap]
        self.client = client
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self._answers: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_answers, daemon=True).start()
        threading.Thread(target=self.stderr.extend, args=(self.process.stderr,), daemon=True).start()

    def _read_answers(self) -> None:
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def call(self, op: str, **arguments):
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        try:
            line = self._answers.get(timeout=REQUEST_TIMEOUT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"{self.client} did not answer {op} within {REQUEST_TIMEOUT_SECONDS} s:\n"
                                 + "".join(self.stderr[-40:])) from None
        assert line is not None, f"{self.client} exited during {op}:\n" + "".join(self.stderr[-40:])
        answer = json.loads(line)
        if not answer["ok"]:
            raise ClientError(op, answer["error"])
        return answer["result"]

    def failure(self, op: str, **arguments) -> dict:
        """The error of a call that must fail."""
        with pytest.raises(ClientError) as failed:
            self.call(op, **arguments)
        return failed.value.error

    def kill(self) -> None:
        """SIGKILL: the client dies with whatever it had open."""
        self.process.kill()
        self.process.wait(TIMEOUT_SECONDS)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()


def driver(client: str, broker: BrokerProcess) -> contextlib.closing[Driver]:
    """A client process, closed on leaving the block."""
    return contextlib.closing(Driver(client, broker))


def assert_error(error: dict, expected: dict) -> None:
    """The error has the expected fields among those the driver reports (name, code, fatal), and
    its message contains the expected "message"."""
    fields = {field: value for field, value in expected.items() if field != "message"}
    assert {field: error[field] for field in fields} == fields, error
    assert expected.get("message", "") in error["message"], error


def records(label: str, partitions: list[tuple[str, int]], count: int = 1) -> list[list]:
    """`count` records for each partition, values naming label, partition and index."""
    return [[topic, partition, f"{label}-{topic}-{partition}-{i}"]
            for topic, partition in partitions for i in range(count)]


def by_partition(partitions: list[tuple[str, int]], *record_lists: list[list]) -> dict[str, list[str]]:
    """What a consumer of `partitions` sees when these records are what it may see, in produce order."""
    seen = {f"{topic}:{partition}": [] for topic, partition in partitions}
    for record_list in record_lists:
        for topic, partition, value in record_list:
            seen[f"{topic}:{partition}"].append(value)
    return seen


def read(client: Driver, isolation: str, partitions: list[tuple[str, int]], until: list[list]) -> dict:
    """What the client's consumer sees of `partitions` from the beginning, once it has seen `until`."""
    return client.call("consume", group=unique("reader"), isolation=isolation, partitions=partitions,
                       until=until, timeout_s=CONSUME_TIMEOUT_SECONDS)


def run_transaction(client: Driver, producer: str, batch: list[list], *, commit: bool) -> None:
    client.call("begin", name=producer)
    client.call("send", name=producer, records=batch)
    client.call("commit" if commit else "abort", name=producer)


def committed_offsets(broker: BrokerProcess, group: str, partitions: list[tuple[str, int]], *,
                      stable: bool) -> dict[tuple[str, int], int | None]:
    """The group's committed offsets, read with confluent-kafka. `stable` asks with require_stable (which
    librdkafka sets for a read_committed consumer): the broker answers UNSTABLE_OFFSET_COMMIT while a
    transaction holds offsets of the group pending, and librdkafka asks again until it settles."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "socket.timeout.ms": TIMEOUT_MS,
                         "isolation.level": "read_committed" if stable else "read_uncommitted"})
    try:
        found = consumer.committed([TopicPartition(topic, partition) for topic, partition in partitions],
                                   timeout=TIMEOUT_SECONDS)
    finally:
        consumer.close()
    for partition in found:
        assert partition.error is None, partition.error
    return {(partition.topic, partition.partition): partition.offset if partition.offset >= 0 else None
            for partition in found}


def new_topics(broker: BrokerProcess, label: str, count: int, partitions: int) -> list[tuple[str, int]]:
    """`count` new topics of `partitions` partitions each; every (topic, partition)."""
    names = [unique(f"{label}-{i}") for i in range(count)]
    create_topics(broker.bootstrap, {name: partitions for name in names})
    return [(name, partition) for name in names for partition in range(partitions)]


# The scenarios. Each takes the broker and a client name (a key of the drivers above).

def commit_and_abort(broker: BrokerProcess, client_name: str) -> None:
    """A committed and an aborted transaction over several partitions of two topics: read_committed
    consumers see exactly the committed records, read_uncommitted ones see all of them."""
    partitions = new_topics(broker, "txn", 2, 3)
    committed = records("committed", partitions, 2)
    aborted = records("aborted", partitions, 2)
    last = records("last", partitions)
    with driver(client_name, broker) as client:
        client.call("producer", name="p", transactional_id=unique("txn"))
        run_transaction(client, "p", committed, commit=True)
        run_transaction(client, "p", aborted, commit=False)
        run_transaction(client, "p", last, commit=True)
        assert read(client, "read_committed", partitions, last) == by_partition(partitions, committed, last)
        assert read(client, "read_uncommitted", partitions, last) == \
            by_partition(partitions, committed, aborted, last)
        client.call("close", name="p")
    assert_broker_healthy(broker)


def offsets_in_transactions(broker: BrokerProcess, client_name: str) -> None:
    """Offsets sent in a transaction are the group's once it commits; pending, they are not visible;
    aborted, they never are."""
    (output,) = new_topics(broker, "offsets-out", 1, 1)
    consumed = new_topics(broker, "offsets-in", 1, 3)
    group = unique("offsets-group")
    with driver(client_name, broker) as client:
        client.call("producer", name="p", transactional_id=unique("offsets"))
        client.call("begin", name="p")
        client.call("send", name="p", records=[[*output, "with-offsets"]])
        client.call("send_offsets", name="p", group=group, offsets=[[*consumed[0], 5], [*consumed[1], 7]])
        client.call("commit", name="p")
        first = {consumed[0]: 5, consumed[1]: 7, consumed[2]: None}
        assert committed_offsets(broker, group, consumed, stable=True) == first

        client.call("begin", name="p")
        client.call("send", name="p", records=[[*output, "aborted-offsets"]])
        client.call("send_offsets", name="p", group=group,
                    offsets=[[*consumed[0], 50], [*consumed[1], 70], [*consumed[2], 3]])
        assert committed_offsets(broker, group, consumed, stable=False) == first
        client.call("abort", name="p")
        assert committed_offsets(broker, group, consumed, stable=True) == first
        client.call("close", name="p")
    assert_broker_healthy(broker)


def fencing(broker: BrokerProcess, client_name: str, *, fenced_commit: dict, late_send: dict) -> None:
    """A second producer with a transactional id fences the first: the first one's open transaction
    is aborted and its next operation, a commit, fails with the client's fenced error. Another
    fenced producer's late produce, its first request after the fencing, is rejected and never
    appended. The newer producers' transactions commit."""
    partitions = new_topics(broker, "fencing", 1, 2)
    fenced_records = records("fenced", partitions)
    zombie_records = records("zombie", partitions)
    late = records("late", partitions[:1])
    newer_records = records("newer", partitions)
    newest_records = records("newest", partitions)
    with driver(client_name, broker) as client:
        for name, transactional_id, batch in (("fenced", "fenced", fenced_records),
                                              ("zombie", "zombie", zombie_records)):
            client.call("producer", name=name, transactional_id=f"{partitions[0][0]}-{transactional_id}")
            client.call("begin", name=name)
            client.call("send", name=name, records=batch)
        client.call("producer", name="newer", transactional_id=f"{partitions[0][0]}-fenced")
        client.call("begin", name="newer")
        assert_error(client.failure("commit", name="fenced"), fenced_commit)
        client.call("producer", name="newest", transactional_id=f"{partitions[0][0]}-zombie")
        client.call("begin", name="newest")
        # To a partition already in the zombie's transaction, so that the produce request itself
        # reaches the partition (no AddPartitionsToTxn first).
        assert_error(client.failure("send", name="zombie", records=late), late_send)
        for name, batch in (("newer", newer_records), ("newest", newest_records)):
            client.call("send", name=name, records=batch)
            client.call("commit", name=name)
        assert read(client, "read_committed", partitions, newest_records) == \
            by_partition(partitions, newer_records, newest_records)
        assert read(client, "read_uncommitted", partitions, newest_records) == \
            by_partition(partitions, fenced_records, zombie_records, newer_records, newest_records)
        client.call("close", name="newer")
        client.call("close", name="newest")
    assert_broker_healthy(broker)


def abandoned_transaction_times_out(broker: BrokerProcess, client_name: str) -> None:
    """A producer dies (SIGKILL) with its transaction open: the broker aborts the transaction after
    the producer's transaction.timeout.ms, and a read_committed consumer moves past it to the records
    another producer committed after it."""
    partitions = new_topics(broker, "timeout", 1, 2)
    hung = records("hung", partitions)
    later = records("later", partitions)
    with driver(client_name, broker) as dying:
        dying.call("producer", name="p", transactional_id=unique("dies"),
                   transaction_timeout_ms=SHORT_TRANSACTION_TIMEOUT_MS)
        dying.call("begin", name="p")
        dying.call("send", name="p", records=hung)
        dying.kill()
    with driver(client_name, broker) as client:
        client.call("producer", name="p", transactional_id=unique("lives"))
        run_transaction(client, "p", later, commit=True)
        # The last stable offset stays at the hung transaction's first records until the broker
        # aborts it, so these reads wait for that.
        assert read(client, "read_committed", partitions, later) == by_partition(partitions, later)
        assert read(client, "read_uncommitted", partitions, later) == by_partition(partitions, hung, later)
        client.call("close", name="p")
    assert_broker_healthy(broker)
