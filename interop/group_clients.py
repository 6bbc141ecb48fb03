"""Helpers shared by the consumer-group interop tests: producing labelled values, and a bounded
kafka-python group consumer."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from kafka import KafkaConsumer

from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, kafka_python_producer, send_all


def produce(broker, label: str, count: int) -> list[bytes]:
    """Produce `label-0` ... with kafka-python; the values, in offset order."""
    values = [f"{label}-{i}".encode() for i in range(count)]
    with kafka_python_producer(broker) as producer:
        send_all(producer, values)
    return values


@contextlib.contextmanager
def group_consumer(broker, group: str, **config) -> Iterator[KafkaConsumer]:
    """A kafka-python consumer subscribed with `group`, every wait bounded, closed on exit."""
    settings = {"auto_offset_reset": "earliest", "enable_auto_commit": False, "heartbeat_interval_ms": 500,
                "request_timeout_ms": TIMEOUT_MS, "bootstrap_timeout_ms": TIMEOUT_MS, **config}
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, **settings)
    # kafka-python 3.0.12 can leave a rejoin half done when the topic's metadata arrives after it
    # joined (and the member is then evicted), so it learns the partitions before it subscribes.
    assert consumer.partitions_for_topic(TOPIC)
    consumer.subscribe([TOPIC])
    try:
        yield consumer
    finally:
        consumer.close(timeout_ms=TIMEOUT_MS)


def poll_values(consumer: KafkaConsumer, count: int) -> list[bytes]:
    """The next `count` values the consumer gets (joining the group first); fails if they don't come in time."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    values: list[bytes] = []
    while len(values) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=count - len(values)).values():
            values.extend(record.value for record in records)
    assert len(values) == count, f"got {len(values)} of {count} records within {TIMEOUT_SECONDS} s"
    return values
