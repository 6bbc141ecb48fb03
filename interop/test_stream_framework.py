"""A stateful stream-processing application on the broker: faust-streaming (aiokafka underneath)
running interop/stream_app.py, a running total per account kept in a faust Table, as a worker
process of its own, end to end:

- faust creates the table's changelog itself, as a compacted topic, and the broker's cleaner cleans
  it to one record per account, holding the account's total;
- a worker stopped with SIGTERM (a clean shutdown: offsets committed, LeaveGroup sent) and started
  again rebuilds the table from that cleaned changelog (the store is memory only) and adds new
  input to it, every input counted exactly once;
- a worker killed with SIGKILL once all it did was committed is replaced by one that waits for
  the dead member's session to time out, rebuilds the table and adds new input to the totals.

The inputs and outputs are produced and read with confluent-kafka, the changelog's configs read
with its admin client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from interop.admin_clients import confluent_admin, eventually
from interop.bench.servers import create_topics
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy
from interop.stream_app import CHANGELOG_CONFIGS, PARTITIONS, TABLE

REPO = Path(__file__).resolve().parent.parent
ACCOUNTS = [f"account-{n}" for n in range(4)]
# A worker's start (imports, group join, the table's recovery) and a rebalance that waits for a
# killed member's 6 s session to time out each fit well within this, even on a loaded machine.
WORKER_TIMEOUT_SECONDS = 60


class Worker:
    """One `faust worker` process running interop/stream_app.py, its output in a log file."""

    def __init__(self, directory: Path, env: dict[str, str], number: int) -> None:
        self.log_path = directory / f"worker-{number}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", "interop.stream_app", "worker", "-l", "info"],
                # Outside the clone, as for the broker; only `interop` comes from it.
                cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"the faust worker exited:\n{self.log_text()}"

    def wait_ready(self) -> None:
        """Until faust reports its tables recovered and its streams at their committed offsets.

        Input that is already there while a table recovers is fetched and processed during the
        recovery, then read again from the committed offsets after it: faust 0.15 counts it twice
        (every answer of the broker is right; the worker's debug log shows the changelog writes
        made before "Worker ready"). New input is produced once the worker is ready."""
        def ready() -> bool:
            self.assert_running()
            return "[^---Recovery]: Worker ready" in self.log_text()

        eventually(ready, f"the faust worker ready:\n{self.log_text()}", WORKER_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """SIGTERM: faust's clean shutdown, which commits and leaves the group."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(WORKER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the faust worker did not stop on SIGTERM:\n{self.log_text()}")
        assert code == 0, f"the faust worker exited {code}:\n{self.log_text()}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Outputs:
    """The output topic read from the beginning by a group-less consumer, kept per account in order."""

    def __init__(self, broker: BrokerProcess, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                                  "enable.auto.commit": False, "socket.timeout.ms": TIMEOUT_MS})
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        self.totals: dict[str, list[int]] = {account: [] for account in ACCOUNTS}

    def count(self) -> int:
        return sum(map(len, self.totals.values()))

    def wait_for(self, expected: dict[str, list[int]], worker: Worker) -> None:
        """Read until as many outputs as `expected` holds have come, then compare them."""
        wanted = sum(map(len, expected.values()))

        def arrived() -> bool:
            worker.assert_running()
            for message in self.consumer.consume(100, 0.2):
                assert message.error() is None, message.error()
                self.totals[message.key().decode()].append(int(message.value()))
            return self.count() >= wanted

        try:
            eventually(arrived, f"{wanted} outputs ({self.count()} so far)", WORKER_TIMEOUT_SECONDS)
        except AssertionError as error:
            raise AssertionError(f"{error}\nworker log:\n{worker.log_text()}") from None
        assert self.totals == expected, f"outputs {self.totals}, expected {expected}"

    def close(self) -> None:
        self.consumer.close()


def running_totals(amounts: list[tuple[str, int]]) -> dict[str, list[int]]:
    """What the application publishes for `amounts`: per account, its total after each amount."""
    totals = {account: [] for account in ACCOUNTS}
    for account, amount in amounts:
        totals[account].append((totals[account] or [0])[-1] + amount)
    return totals


def produce(broker: BrokerProcess, topic: str, amounts: list[tuple[str, int]]) -> None:
    failures = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "message.timeout.ms": TIMEOUT_MS, "linger.ms": 5})
    for account, amount in amounts:
        producer.produce(topic, key=account.encode(), value=str(amount).encode(),
                         on_delivery=lambda error, _: failures.append(error) if error else None)
    assert producer.flush(TIMEOUT_SECONDS) == 0
    assert not failures, failures


def topic_configs(broker: BrokerProcess, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = confluent_admin(broker)  # kept referenced: librdkafka fails the futures of a destroyed handle
    entries = admin.describe_configs([resource])[resource].result(TIMEOUT_SECONDS)
    return {name: entry.value for name, entry in entries.items()}


def read_topic(broker: BrokerProcess, topic: str) -> tuple[list[tuple[int, bytes, bytes]], int]:
    """Every record of every partition of `topic`, as (partition, key, value), and the sum of the
    partitions' end offsets."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "socket.timeout.ms": TIMEOUT_MS})
    try:
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        ends = sum(consumer.get_watermark_offsets(p, TIMEOUT_SECONDS)[1] for p in partitions)
        consumer.assign(partitions)
        found, at_end = [], set()
        while len(at_end) < PARTITIONS:
            message = consumer.poll(TIMEOUT_SECONDS)
            assert message is not None, f"no end of {topic} reached"
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                at_end.add(message.partition())
            else:
                found.append((message.partition(), message.key(), message.value()))
        return found, ends
    finally:
        consumer.close()


def changelog_cleaned_to(broker: BrokerProcess, changelog: str, totals: dict[str, int]) -> bool:
    """The changelog holds one record per account, its total: faust's keys and values are JSON."""
    records, _ = read_topic(broker, changelog)
    return sorted((json.loads(key), json.loads(value)) for _, key, value in records) == sorted(totals.items())


def committed_everything(broker: BrokerProcess, group: str, topic: str, changelog: str, inputs: int) -> bool:
    """The group's committed offsets are the input's ends, and the changelog took a write per input."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "socket.timeout.ms": TIMEOUT_MS})
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = [p.offset for p in consumer.committed(partitions, timeout=TIMEOUT_SECONDS)]
        ends = [consumer.get_watermark_offsets(p, TIMEOUT_SECONDS)[1] for p in partitions]
        changelog_end = sum(consumer.get_watermark_offsets(TopicPartition(changelog, p), TIMEOUT_SECONDS)[1]
                            for p in range(PARTITIONS))
        # A partition that never had input has nothing committed (OFFSET_INVALID).
        done = all(offset == end or (end == 0 and offset < 0) for offset, end in zip(committed, ends))
        return done and changelog_end == inputs
    finally:
        consumer.close()


@pytest.fixture
def workers(tmp_path):
    """Starts faust workers; any still running at the end of the test is killed."""
    started: list[Worker] = []
    app_id = f"totals-{uuid.uuid4().hex[:10]}"

    def start(broker: BrokerProcess) -> Worker:
        env = {"STREAM_BROKER": broker.bootstrap, "STREAM_APP_ID": app_id,
               "STREAM_DATADIR": str(tmp_path / "faust"),
               "STREAM_INPUT": "amounts", "STREAM_OUTPUT": "totals"}
        started.append(Worker(tmp_path, env, len(started) + 1))
        return started[-1]

    start.app_id = app_id
    yield start
    for worker in started:
        worker.kill()


def test_faust_table_is_rebuilt_from_its_compacted_changelog_after_restarts(tmp_path, workers):
    with BrokerProcess(tmp_path / "data", "--log-cleaner-backoff-ms", "100") as broker:
        create_topics(broker.bootstrap, {"amounts": PARTITIONS, "totals": PARTITIONS})
        changelog = f"{workers.app_id}-{TABLE}-changelog"
        outputs = Outputs(broker, "totals")
        try:
            # Amounts all different, so that a record counted twice or skipped shows in the totals.
            first = [(account, 1 + n) for n in range(10) for account in ACCOUNTS]
            produce(broker, "amounts", first)
            worker = workers(broker)
            outputs.wait_for(running_totals(first), worker)
            configs = topic_configs(broker, changelog)
            assert configs["cleanup.policy"] == "compact"
            assert {name: configs[name] for name in CHANGELOG_CONFIGS} == CHANGELOG_CONFIGS
            worker.stop()

            # Stopped, the worker wrote nothing more: the cleaner reduces its changelog, one write
            # per input, to the latest total of each account.
            sums = {account: total[-1] for account, total in running_totals(first).items()}
            eventually(lambda: changelog_cleaned_to(broker, changelog, sums), "the changelog cleaned")
            assert read_topic(broker, changelog)[1] == len(first)

            worker = workers(broker)
            worker.wait_ready()
            second = [(account, 100 + n) for n in range(5) for account in ACCOUNTS]
            produce(broker, "amounts", second)
            outputs.wait_for(running_totals(first + second), worker)

            # Killed once everything it did is committed, so that nothing is processed twice
            # whatever the order: the next worker rebuilds the table and adds to it.
            eventually(lambda: committed_everything(broker, workers.app_id, "amounts", changelog,
                                                    len(first + second)), "the offsets committed")
            worker.kill()
            worker = workers(broker)
            worker.wait_ready()
            third = [(account, 1000) for account in ACCOUNTS]
            produce(broker, "amounts", third)
            outputs.wait_for(running_totals(first + second + third), worker)
            worker.stop()
        finally:
            outputs.close()
        assert_broker_healthy(broker)
