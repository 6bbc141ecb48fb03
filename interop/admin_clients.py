"""Helpers for the topic and admin interop tests: bounded admin clients of kafka-python and
confluent-kafka, the topic configs Kafka reports by default, waiting for a condition with a
deadline, and reading any set of partitions back."""

from __future__ import annotations

import contextlib
import re
import time
from concurrent.futures import Future
from typing import Callable, Iterator, TypeVar

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource as KafkaPythonConfigResource
from kafka.consumer.fetcher import ConsumerRecord

from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy
from tests.broker.kafka_topic_configs import KAFKA_3_9

T = TypeVar("T")
# Every topic config, with the value Kafka gives a topic that does not override it.
KAFKA_TOPIC_DEFAULTS = {name: default for name, (_, default, _) in KAFKA_3_9.items()}
# A cleanup policy Kafka does not know, and its message for it.
BAD_POLICY = "compacted"
BAD_POLICY_REFUSED = "String must be one of: compact, delete"
BAD_TOPIC_NAMES = {"too-long": "x" * 250, "space": "bad name", "slash": "a/b", "dot": ".", "dot-dot": ".."}


def eventually(probe: Callable[[], T], what: str, timeout: float = TIMEOUT_SECONDS) -> T:
    """Call `probe` until it returns something truthy, and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def kafka_python_admin(broker: BrokerProcess) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS,
                             bootstrap_timeout_ms=TIMEOUT_MS)
    try:
        yield admin
    finally:
        admin.close()


def confluent_admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": TIMEOUT_MS})


def kafka_error(future: Future) -> str:
    """The name of the Kafka error a confluent-kafka admin future failed with."""
    error = future.exception(TIMEOUT_SECONDS)
    assert isinstance(error, KafkaException), f"expected a Kafka error, got {error!r}"
    return error.args[0].name()


def kafka_error_message(future: Future) -> str:
    return future.exception(TIMEOUT_SECONDS).args[0].str()


def kafka_python_topic_configs(admin: KafkaAdminClient, topic: str) -> dict[str, tuple[str, str]]:
    """(value, source) of every config of `topic`, as kafka-python's DescribeConfigs reports it."""
    described = admin.describe_configs([KafkaPythonConfigResource("TOPIC", topic)], config_filter="all")
    return {name: (entry["value"], entry["config_source"]) for name, entry in described["topic"][topic].items()}


def confluent_topic_configs(admin: AdminClient, topic: str) -> dict[str, tuple[str, str]]:
    """(value, source) of every config of `topic`, as confluent-kafka's DescribeConfigs reports it."""
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)],
                                       request_timeout=TIMEOUT_SECONDS).values()
    return {name: (entry.value, ConfigSource(entry.source).name) for name, entry in future.result(TIMEOUT_SECONDS).items()}


def partition_directories(broker: BrokerProcess, topic: str) -> list[str]:
    """The partition directories `<topic>-<n>` of `topic` in the broker's data directory."""
    pattern = re.compile(re.escape(topic) + r"-\d+")
    return sorted(path.name for path in broker.data_dir.iterdir() if pattern.fullmatch(path.name))


def read_partitions(broker: BrokerProcess, counts: dict[TopicPartition, int]) -> dict[TopicPartition, list[ConsumerRecord]]:
    """The first `count` records of each partition (from its log start), read by one group-less
    kafka-python consumer; fails unless exactly that many arrive within the timeout."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=TIMEOUT_MS,
                             bootstrap_timeout_ms=TIMEOUT_MS)
    received: dict[TopicPartition, list[ConsumerRecord]] = {partition: [] for partition in counts}
    try:
        consumer.assign(list(counts))
        consumer.seek_to_beginning()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while any(len(received[p]) < n for p, n in counts.items()) and time.monotonic() < deadline:
            for partition, records in consumer.poll(timeout_ms=200).items():
                received[partition].extend(records)
    finally:
        consumer.close()
    assert {p: len(r) for p, r in received.items()} == counts, "not every partition read back in time"
    assert_broker_healthy(broker)
    return received
