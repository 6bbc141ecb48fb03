"""Helpers shared by the client interop tests: bounded kafka-python clients, and reading back
what a client produced.

`consume` reads through kafka-python's group-less consumer (what an application sees);
`stored_batches` fetches the raw record batches and decodes them with kafka-python's record
parser (what the broker stored: the codec, producer id and sequence of each batch). Both also
check that the broker process is still alive and has logged no warning since the last check,
so a broker problem a client silently retried past still fails the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from typing import Iterator

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.record.memory_records import MemoryRecords

from broker.wire_connection import WireConnection
from interop.broker_process import BrokerProcess
from protocol.messages import ApiKey

TOPIC = "comlog"
PARTITION = TopicPartition(TOPIC, 0)
# Every client call in these tests is bounded by this, so a hung client fails instead of hanging CI.
TIMEOUT_SECONDS = 15
TIMEOUT_MS = TIMEOUT_SECONDS * 1000
CODECS = ("gzip", "snappy", "lz4", "zstd")
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
# The codecs of librdkafka's compression.type. It compresses lz4 only when the broker advertises
# FindCoordinator (a proxy for "newer than Kafka 0.8"), and otherwise sends lz4 batches uncompressed.
LIBRDKAFKA_CODECS = ("none", *CODECS)

_FETCH_VERSION = 4
_PROBLEM = re.compile(r" (WARNING|ERROR|CRITICAL) |Traceback")
# How many lines of each broker's output have been checked already.
_checked_lines: dict[int, int] = {}


def compressible_value(label: str, index: int) -> bytes:
    """A value that every codec shrinks: clients send a batch uncompressed when compressing doesn't
    pay (kafka-python and librdkafka both do), which would hide whether the codec works."""
    return f"{label}-{index}:".encode() + b"the quick brown fox jumps over the lazy dog " * 8


def assert_broker_healthy(broker: BrokerProcess, expected: str | None = None) -> None:
    """The broker still runs and logged no warning, error or traceback since the last check, but
    for lines containing `expected`."""
    lines = list(broker.output)
    new_lines = lines[_checked_lines.get(id(broker), 0):]
    _checked_lines[id(broker)] = len(lines)
    assert broker.process.poll() is None, "the broker exited:\n" + broker.log_text()
    problems = [line for line in new_lines if _PROBLEM.search(line) and not (expected and expected in line)]
    assert not problems, "the broker logged problems:\n" + "".join(problems)


@contextlib.contextmanager
def kafka_python_producer(broker: BrokerProcess, **config) -> Iterator[KafkaProducer]:
    """A kafka-python producer whose every wait is bounded, closed on exit."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS,
                             max_block_ms=TIMEOUT_MS, bootstrap_timeout_ms=TIMEOUT_MS, **config)
    try:
        yield producer
    finally:
        producer.close(timeout=TIMEOUT_SECONDS)


def send_all(producer: KafkaProducer, values: list[bytes], **fields) -> list[int]:
    """Send each value with kafka-python, flush, and return the offsets the producer was told, in send order."""
    futures = [producer.send(TOPIC, value=value, **fields) for value in values]
    producer.flush(timeout=TIMEOUT_SECONDS)
    return [future.get(timeout=TIMEOUT_SECONDS).offset for future in futures]


@contextlib.contextmanager
def group_less_consumer(broker: BrokerProcess, **config) -> Iterator[KafkaConsumer]:
    """A kafka-python consumer without a group, assigned to the partition, closed on exit."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             request_timeout_ms=TIMEOUT_MS, bootstrap_timeout_ms=TIMEOUT_MS, **config)
    try:
        consumer.assign([PARTITION])
        yield consumer
    finally:
        consumer.close()


def poll_records(consumer: KafkaConsumer, count: int) -> list[ConsumerRecord]:
    """The next `count` records from an assigned consumer; fails if they don't all arrive in time."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    received: list[ConsumerRecord] = []
    while len(received) < count and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=200, max_records=count - len(received))
        received.extend(batches.get(PARTITION, []))
    assert len(received) == count, f"read {len(received)} of {count} records within {TIMEOUT_SECONDS} s"
    return received


def consume(broker: BrokerProcess, start: int, count: int) -> list[ConsumerRecord]:
    """`count` records from offset `start`, read by a fresh group-less consumer."""
    with group_less_consumer(broker) as consumer:
        consumer.seek(PARTITION, start)
        records = poll_records(consumer, count)
    assert_broker_healthy(broker)
    return records


def log_end_offset(broker: BrokerProcess) -> int:
    with group_less_consumer(broker) as consumer:
        return consumer.end_offsets([PARTITION])[PARTITION]


@dataclasses.dataclass(frozen=True)
class StoredBatch:
    base_offset: int
    last_offset: int
    size: int
    codec: str
    producer_id: int
    producer_epoch: int
    base_sequence: int
    values: list[bytes | None]


def _fetch_record_set(port: int, offset: int) -> bytes:
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 64 << 20, "isolation_level": 0,
            "topics": [{"topic": TOPIC, "partitions": [{"partition": 0, "fetch_offset": offset,
                                                        "partition_max_bytes": 64 << 20}]}]}
    with WireConnection.connect(port, timeout=TIMEOUT_SECONDS) as connection:
        response = connection.request(ApiKey.FETCH, _FETCH_VERSION, body)
    partition = response.responses[0].partitions[0]
    assert partition.error_code == 0, f"fetch at {offset} failed with error {partition.error_code}"
    return bytes(partition.records)


def stored_batches(broker: BrokerProcess, start: int, end: int) -> list[StoredBatch]:
    """The record batches holding offsets [start, end), as the broker serves them."""
    found: list[StoredBatch] = []
    offset = start
    while offset < end:
        record_set = MemoryRecords(_fetch_record_set(broker.port, offset))
        assert record_set.has_next(), f"no batch at offset {offset} (wanted up to {end})"
        while record_set.has_next() and offset < end:
            batch = record_set.next_batch()
            found.append(StoredBatch(batch.base_offset, batch.last_offset, batch.size_in_bytes,
                                     CODEC_NAMES[batch.compression_type], batch.producer_id,
                                     batch.producer_epoch, batch.base_sequence, [record.value for record in batch]))
            offset = batch.last_offset + 1
    assert_broker_healthy(broker)
    return found
