"""kafka-python 3.x against the real broker process: producers (idempotent default, acks 0/1,
every codec, keys, headers, the largest record the default max.message.bytes allows) and a
group-less consumer (assign, seeks, offsets_for_times)."""

from __future__ import annotations

import time

import pytest
from kafka.errors import MessageSizeTooLargeError
from kafka.record.default_records import DefaultRecordBatchBuilder

from interop.clients import (CODECS, PARTITION, TIMEOUT_SECONDS, assert_broker_healthy, compressible_value,
                             consume, group_less_consumer, kafka_python_producer, log_end_offset,
                             poll_records, send_all, stored_batches)

# The broker's default --max-message-bytes, Kafka's max.message.bytes default.
MAX_MESSAGE_BYTES = 1048588
HEADERS = [("trace", b"\x00\x01"), ("origin", b"kafka-python")]


def test_default_producer_is_idempotent_with_keys_and_headers(shared_broker):
    values = [f"default-{i}".encode() for i in range(5)]
    with kafka_python_producer(shared_broker) as producer:
        offsets = send_all(producer, values, key=b"the-key", headers=HEADERS)
    assert offsets == list(range(offsets[0], offsets[0] + 5))
    records = consume(shared_broker, offsets[0], 5)
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == \
        [(offset, b"the-key", value, HEADERS) for offset, value in zip(offsets, values)]
    # acks=all and idempotence by default: every batch carries a producer id and sequences from 0.
    batches = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert all(batch.producer_id >= 0 and batch.producer_epoch == 0 for batch in batches)
    assert batches[0].base_sequence == 0


def test_acks_1_producer_gets_offsets_without_idempotence(shared_broker):
    values = [f"acks1-{i}".encode() for i in range(3)]
    with kafka_python_producer(shared_broker, acks=1) as producer:
        offsets = send_all(producer, values, key=b"k")
    records = consume(shared_broker, offsets[0], 3)
    assert [(r.offset, r.value) for r in records] == list(zip(offsets, values))
    assert {batch.producer_id for batch in stored_batches(shared_broker, offsets[0], offsets[-1] + 1)} == {-1}


def test_acks_0_producer_records_are_appended(shared_broker):
    start = log_end_offset(shared_broker)
    values = [f"acks0-{i}".encode() for i in range(3)]
    with kafka_python_producer(shared_broker, acks=0) as producer:
        send_all(producer, values)
    # Nobody answers acks=0; the records show up at the log end offset seen before sending.
    records = consume(shared_broker, start, 3)
    assert [(r.offset, r.value) for r in records] == list(zip(range(start, start + 3), values))


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_are_stored_and_read_back(shared_broker, codec):
    values = [compressible_value(codec, i) for i in range(4)]
    # A linger gathers the four records into one batch, so the codec has something to shrink.
    with kafka_python_producer(shared_broker, compression_type=codec, linger_ms=50) as producer:
        offsets = send_all(producer, values, key=codec.encode(), headers=HEADERS)
    records = consume(shared_broker, offsets[0], 4)
    assert [(r.offset, r.key, r.value, r.headers) for r in records] == \
        [(offset, codec.encode(), value, HEADERS) for offset, value in zip(offsets, values)]
    (batch,) = stored_batches(shared_broker, offsets[0], offsets[-1] + 1)
    assert batch.codec == codec
    # A fetch from inside a compressed batch returns the whole batch; the client skips to its offset.
    assert [r.value for r in consume(shared_broker, offsets[2], 2)] == values[2:]


def _largest_value_that_fits(key: bytes) -> int:
    """The value size whose single-record batch is exactly MAX_MESSAGE_BYTES (just under 1 MiB)."""
    size = MAX_MESSAGE_BYTES
    while DefaultRecordBatchBuilder.header_size_in_bytes() + \
            DefaultRecordBatchBuilder.size_in_bytes(0, 0, key, b"x" * size, []) > MAX_MESSAGE_BYTES:
        size -= 1
    return size


def test_one_mebibyte_record_up_to_max_message_bytes(shared_broker):
    key = b"big"
    size = _largest_value_that_fits(key)
    value = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    # kafka-python refuses records over its max_request_size (1 MiB by default) before sending.
    with kafka_python_producer(shared_broker, max_request_size=2 * MAX_MESSAGE_BYTES) as producer:
        (offset,) = send_all(producer, [value], key=key)
        too_large = producer.send(PARTITION.topic, key=key, value=value + b"!")
        with pytest.raises(MessageSizeTooLargeError):
            too_large.get(timeout=TIMEOUT_SECONDS)
    (batch,) = stored_batches(shared_broker, offset, offset + 1)
    assert batch.size == MAX_MESSAGE_BYTES
    (record,) = consume(shared_broker, offset, 1)
    assert (record.offset, record.key, record.value) == (offset, key, value)
    # The rejected record was not appended.
    assert log_end_offset(shared_broker) == offset + 1


def test_consumer_seeks_to_beginning_offset_and_end(broker):
    values = [f"seek-{i}".encode() for i in range(10)]
    with kafka_python_producer(broker) as producer:
        assert send_all(producer, values) == list(range(10))
        with group_less_consumer(broker) as consumer:
            consumer.seek_to_beginning(PARTITION)
            assert [(r.offset, r.value) for r in poll_records(consumer, 10)] == list(enumerate(values))
            consumer.seek(PARTITION, 6)
            assert [r.offset for r in poll_records(consumer, 4)] == [6, 7, 8, 9]
            consumer.seek_to_end(PARTITION)
            assert consumer.position(PARTITION, timeout_ms=TIMEOUT_SECONDS * 1000) == 10
            # From the end, the consumer sees only what is appended after the seek.
            later = send_all(producer, [b"after-end-1", b"after-end-2"])
            assert [(r.offset, r.value) for r in poll_records(consumer, 2)] == \
                list(zip(later, [b"after-end-1", b"after-end-2"]))
            assert consumer.beginning_offsets([PARTITION]) == {PARTITION: 0}
            assert consumer.end_offsets([PARTITION]) == {PARTITION: 12}
    assert_broker_healthy(broker)


def test_offsets_for_times(broker):
    base = int(time.time() * 1000) - 60_000
    timestamps = [base + 100 * i for i in range(10)]
    with kafka_python_producer(broker, linger_ms=50) as producer:
        # Two flushes: two or more batches, so lookups land both on batch starts and inside batches.
        for half in (timestamps[:5], timestamps[5:]):
            for timestamp in half:
                producer.send(PARTITION.topic, value=str(timestamp).encode(), timestamp_ms=timestamp)
            producer.flush(timeout=TIMEOUT_SECONDS)
    assert len(stored_batches(broker, 0, 10)) >= 2
    with group_less_consumer(broker) as consumer:
        def lookup(timestamp):
            found = consumer.offsets_for_times({PARTITION: timestamp})[PARTITION]
            return found and (found.offset, found.timestamp)

        assert lookup(base - 1) == (0, base)
        assert lookup(base) == (0, base)
        assert lookup(base + 150) == (2, base + 200)
        assert lookup(base + 400) == (4, base + 400)
        assert lookup(base + 501) == (6, base + 600)
        assert lookup(base + 900) == (9, base + 900)
        assert lookup(base + 901) is None
    records = consume(broker, 0, 10)
    assert [(r.offset, r.timestamp, r.value) for r in records] == \
        [(i, timestamp, str(timestamp).encode()) for i, timestamp in enumerate(timestamps)]
