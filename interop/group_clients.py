"""Helpers shared by the consumer-group interop tests: producing labelled values, a bounded
kafka-python group consumer, and collecting what any client polls within a deadline."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, TypeVar

from kafka import KafkaConsumer

from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, kafka_python_producer, send_all

T = TypeVar("T")


def produce(broker, label: str, count: int) -> list[bytes]:
    """Produce `label-0` ... with kafka-python; the values, in offset order."""
    values = [f"{label}-{i}".encode() for i in range(count)]
    with kafka_python_producer(broker) as producer:
        send_all(producer, values)
    return values


@contextlib.contextmanager
def group_consumer(broker, group: str, *, topic: str = TOPIC, **config) -> Iterator[KafkaConsumer]:
    """A kafka-python consumer subscribed to `topic` with `group`, every wait bounded, closed on exit."""
    settings = {"auto_offset_reset": "earliest", "enable_auto_commit": False, "heartbeat_interval_ms": 500,
                "request_timeout_ms": TIMEOUT_MS, "bootstrap_timeout_ms": TIMEOUT_MS, **config}
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, **settings)
    # kafka-python 3.0.12 can leave a rejoin half done when the topic's metadata arrives after it
    # joined (and the member is then evicted), so it learns the partitions before it subscribes.
    assert consumer.partitions_for_topic(topic)
    consumer.subscribe([topic])
    try:
        yield consumer
    finally:
        consumer.close(timeout_ms=TIMEOUT_MS)


def collect(poll: Callable[[int], list[T]], count: int, what: str = "records") -> list[T]:
    """The next `count` items that `poll(at_most)` returns, a batch at a time; fails if they don't come in time."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    items: list[T] = []
    while len(items) < count and time.monotonic() < deadline:
        items.extend(poll(count - len(items)))
    assert len(items) == count, f"got {len(items)} of {count} {what} within {TIMEOUT_SECONDS} s"
    return items


def poll_values(consumer: KafkaConsumer, count: int) -> list[bytes]:
    """The next `count` values the consumer gets (joining the group first)."""
    def poll(at_most: int) -> list[bytes]:
        batches = consumer.poll(timeout_ms=200, max_records=at_most).values()
        return [record.value for records in batches for record in records]
    return collect(poll, count)


def assigned(consumer: KafkaConsumer) -> set:
    """The consumer's assignment after one short poll (which is what lets it join)."""
    consumer.poll(timeout_ms=100)
    return consumer.assignment()
