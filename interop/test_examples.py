"""ComLog's own client examples, reproduced with kafka-python against the real broker process:
an async producer (linger 1 s, 40-byte batches, completion callbacks and an error channel), a
synchronous batch of 4 records with each record's offset, and a single synchronous append. Each
is checked by reading the records back at the offsets the producer was told."""

from __future__ import annotations

import threading

from kafka.errors import MessageSizeTooLargeError

from interop.clients import (TIMEOUT_SECONDS, TOPIC, consume, kafka_python_producer, send_all,
                             stored_batches)

MAX_MESSAGE_BYTES = 1048588


class Outcomes:
    """What the completion callbacks and the error channel received, from the producer's thread."""

    def __init__(self) -> None:
        self.offsets: dict[int, int] = {}
        self.errors: list[tuple[int, Exception]] = []
        self._changed = threading.Condition()

    def delivered(self, index: int, metadata) -> None:
        with self._changed:
            self.offsets[index] = metadata.offset
            self._changed.notify_all()

    def failed(self, index: int, error: Exception) -> None:
        with self._changed:
            self.errors.append((index, error))
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.offsets) + len(self.errors) >= count,
                                             timeout=TIMEOUT_SECONDS)
        assert arrived, f"{len(self.offsets) + len(self.errors)} of {count} outcomes within {TIMEOUT_SECONDS} s"


def send_with_callbacks(producer, outcomes: Outcomes, index: int, value: bytes) -> None:
    future = producer.send(TOPIC, key=f"key-{index}".encode(), value=value)
    future.add_callback(lambda metadata: outcomes.delivered(index, metadata))
    future.add_errback(lambda error: outcomes.failed(index, error))


def test_async_producer_with_linger_small_batches_callbacks_and_error_channel(shared_broker):
    values = [f"async record {i}".encode() for i in range(18)]
    outcomes = Outcomes()
    # The error channel must really carry errors: one record is over the broker's max.message.bytes
    # (the producer's own limit is raised so that the broker is the one refusing it).
    with kafka_python_producer(shared_broker, linger_ms=1000, batch_size=40,
                               max_request_size=2 * MAX_MESSAGE_BYTES) as producer:
        for index, value in enumerate(values):
            send_with_callbacks(producer, outcomes, index, value)
        send_with_callbacks(producer, outcomes, len(values), b"x" * MAX_MESSAGE_BYTES)
        producer.flush(timeout=TIMEOUT_SECONDS)
        outcomes.wait_for(len(values) + 1)
    assert [(index, type(error)) for index, error in outcomes.errors] == [(len(values), MessageSizeTooLargeError)]
    offsets = [outcomes.offsets[index] for index in range(len(values))]
    assert offsets == list(range(offsets[0], offsets[0] + len(values)))
    records = consume(shared_broker, offsets[0], len(values))
    assert [(r.offset, r.key, r.value) for r in records] == \
        [(offset, f"key-{i}".encode(), value) for i, (offset, value) in enumerate(zip(offsets, values))]
    # A 40-byte batch size is below one record: each record went out as its own batch.
    batches = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert [(batch.base_offset, batch.last_offset) for batch in batches] == [(offset, offset) for offset in offsets]


def test_sync_batch_of_four_reports_each_offset(shared_broker):
    values = [f"batch record {i}".encode() for i in range(4)]
    # The long linger holds the records until flush sends them, as one batch.
    with kafka_python_producer(shared_broker, linger_ms=TIMEOUT_SECONDS * 1000) as producer:
        offsets = send_all(producer, values)
    assert offsets == list(range(offsets[0], offsets[0] + 4))
    (batch,) = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert (batch.base_offset, batch.last_offset, batch.values) == (offsets[0], offsets[-1], values)
    for offset, value in zip(offsets, values):
        (record,) = consume(shared_broker, offset, 1)
        assert (record.offset, record.value) == (offset, value)


def test_single_synchronous_append(shared_broker):
    with kafka_python_producer(shared_broker) as producer:
        metadata = producer.send(TOPIC, key=b"single", value=b"one record").get(timeout=TIMEOUT_SECONDS)
    (record,) = consume(shared_broker, metadata.offset, 1)
    assert (record.offset, record.key, record.value) == (metadata.offset, b"single", b"one record")
    assert record.timestamp == metadata.timestamp
