"""Produced batches whose CRC is valid but whose records are not what the header says, sent raw
to the real broker process: each gets Kafka's error code, the partition is left untouched, and
real clients go on producing to it and reading it."""

from __future__ import annotations

import struct
import threading
import time

import pytest
import trio
from confluent_kafka import Producer
from crc32c import crc32c

from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, assert_broker_healthy, consume, log_end_offset
from interop.bench.attacks import RSS_TARGET_BYTES
from interop.bench.servers import peak_resident_bytes
from protocol import record_batch, records
from protocol.compression import Compression, compress
from protocol.errors import ErrorCode
from tests.broker.wire_client import WireClient
from protocol.messages import ApiKey

PRODUCE_VERSION = 9
# Three records, offset deltas 0-2, as build_batch writes them: the records section of a good batch.
GOOD_SECTION = records.build_batch([records.Record(value=b"v%d" % i) for i in range(3)])[record_batch.BATCH_HEADER_SIZE:]
GAPPED_SECTION = records.build_batch(
    [records.Record(value=b"v%d" % i, offset=offset) for i, offset in enumerate((0, 2, 3))]
)[record_batch.BATCH_HEADER_SIZE:]
# Twelve gzip members of 80 MiB of zeros: under 1 MB on the wire, about 1 GiB inflated.
GZIP_BOMB = compress(Compression.GZIP, bytes(80 << 20)) * 12


def sealed_batch(section: bytes, records_count: int = 3, codec: Compression = Compression.NONE) -> bytes:
    """A batch announcing `records_count` records whose records section is `section`, with a
    consistent last offset delta and a valid CRC: what a buggy or hostile client can send."""
    now = int(time.time() * 1000)
    batch = bytearray(record_batch.BATCH_HEADER.pack(
        0, record_batch.BATCH_HEADER_SIZE - record_batch.LOG_OVERHEAD + len(section), -1, record_batch.MAGIC, 0, int(codec),
        records_count - 1, now, now, -1, -1, -1, records_count))
    batch += section
    struct.pack_into(">I", batch, 17, crc32c(memoryview(batch)[21:]))
    return bytes(batch)


def produce_raw(port: int, record_set: bytes, timeout: float = TIMEOUT_SECONDS):
    """One Produce v9 request (acks=all) over a fresh connection; the partition's response."""
    body = {"transactional_id": None, "acks": -1, "timeout_ms": TIMEOUT_MS,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": record_set}]}]}

    async def exchange():
        with trio.fail_after(timeout):
            client = await WireClient.connect(port)
            try:
                return await client.request(ApiKey.PRODUCE, PRODUCE_VERSION, body)
            finally:
                await client.aclose()

    return trio.run(exchange).responses[0].partition_responses[0]


def produce_with_librdkafka(broker, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": TIMEOUT_MS,
                         "socket.timeout.ms": TIMEOUT_MS, "linger.ms": 5})
    errors = []
    for value in values:
        producer.produce(TOPIC, value=value, on_delivery=lambda error, _message: errors.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0, "messages left undelivered"
    assert errors == [None] * len(values)


# name -> (batch, error code, index of the record at fault in record_errors, or None)
BAD_BATCHES = {
    "claims 2^31-1 records, holds 3": (sealed_batch(GOOD_SECTION, 2**31 - 1), ErrorCode.INVALID_RECORD, None),
    "claims 2 records, holds 3": (sealed_batch(GOOD_SECTION, 2), ErrorCode.INVALID_RECORD, None),
    "offset deltas 0, 2, 3": (sealed_batch(GAPPED_SECTION), ErrorCode.INVALID_RECORD, 1),
    "bytes after the last record": (sealed_batch(GOOD_SECTION + b"\x00"), ErrorCode.INVALID_RECORD, None),
    "value longer than its record": (sealed_batch(b"\x10\x00\x00\x00\x02k\x0av\x00", 1), ErrorCode.INVALID_RECORD, 0),
    "truncated inside a varint": (sealed_batch(b"\x10\x00\x80", 1), ErrorCode.INVALID_RECORD, 0),
    "gzip garbage": (sealed_batch(b"\x1f\x8b\x08\x00" + bytes(range(100)), 3, Compression.GZIP),
                     ErrorCode.CORRUPT_MESSAGE, None),
    "snappy garbage": (sealed_batch(bytes(range(1, 100)), 3, Compression.SNAPPY), ErrorCode.CORRUPT_MESSAGE, None),
    "lz4 garbage": (sealed_batch(b"\x04\x22\x4d\x18" + bytes(range(100)), 3, Compression.LZ4),
                    ErrorCode.CORRUPT_MESSAGE, None),
    "zstd garbage": (sealed_batch(b"\x28\xb5\x2f\xfd" + bytes(range(100)), 3, Compression.ZSTD),
                     ErrorCode.CORRUPT_MESSAGE, None),
    "gzip records with offset deltas 0, 2, 3": (
        sealed_batch(compress(Compression.GZIP, GAPPED_SECTION), 3, Compression.GZIP), ErrorCode.INVALID_RECORD, 1),
    "zstd records claiming 4 of 3": (
        sealed_batch(compress(Compression.ZSTD, GOOD_SECTION), 4, Compression.ZSTD), ErrorCode.INVALID_RECORD, None),
    "gzip bomb past the 64 MiB cap": (sealed_batch(GZIP_BOMB, 1, Compression.GZIP), ErrorCode.CORRUPT_MESSAGE, None),
}


@pytest.mark.parametrize("name", list(BAD_BATCHES))
def test_bad_records_are_refused_and_the_partition_is_untouched(shared_broker, name):
    batch, error, batch_index = BAD_BATCHES[name]
    produce_with_librdkafka(shared_broker, [b"before-" + name.encode()])
    start = log_end_offset(shared_broker) - 1

    response = produce_raw(shared_broker.port, batch)

    assert (response.error_code, response.base_offset) == (error, -1)
    assert response.error_message
    if batch_index is None:
        assert response.record_errors == []
    else:
        assert [e.batch_index for e in response.record_errors] == [batch_index]
    assert log_end_offset(shared_broker) == start + 1
    produce_with_librdkafka(shared_broker, [b"after-" + name.encode()])
    assert [r.value for r in consume(shared_broker, start, 2)] == [b"before-" + name.encode(),
                                                                  b"after-" + name.encode()]
    assert_broker_healthy(shared_broker)


def test_a_batch_damaged_in_transit_is_reported_as_failing_its_crc(shared_broker):
    batch = bytearray(BAD_BATCHES["claims 2^31-1 records, holds 3"][0])
    batch[-1] ^= 0xFF
    start = log_end_offset(shared_broker)
    response = produce_raw(shared_broker.port, bytes(batch))
    assert response.error_code == ErrorCode.CORRUPT_MESSAGE
    assert "CRC" in response.error_message
    assert log_end_offset(shared_broker) == start


def test_well_formed_raw_batches_of_every_codec_are_appended(shared_broker):
    for codec in Compression:
        start = log_end_offset(shared_broker)
        batch = records.build_batch([records.Record(value=b"%s-%d" % (codec.name.encode(), i)) for i in range(3)],
                                    compression=codec)
        assert produce_raw(shared_broker.port, batch).error_code == ErrorCode.NONE
        assert [r.value for r in consume(shared_broker, start, 3)] == [b"%s-%d" % (codec.name.encode(), i)
                                                                      for i in range(3)]


def test_thirty_clients_sending_gzip_bombs_at_once_leave_memory_bounded(broker):
    """Each bomb inflates past the 64 MiB cap; at one decompression at a time the broker's peak
    resident memory stays far below 30 of them, and a well-behaved client keeps producing."""
    senders = 30
    # The bombs are inflated one after another: the last may wait for all the others (seconds on a
    # busy machine), so each sender's bound only catches a hang.
    bomb_timeout = 10 * TIMEOUT_SECONDS
    bomb = sealed_batch(GZIP_BOMB, 1, Compression.GZIP)
    produce_with_librdkafka(broker, [b"first"])
    barrier = threading.Barrier(senders + 1, timeout=TIMEOUT_SECONDS)
    answers: list[int] = []
    failures: list[BaseException] = []

    def attack() -> None:
        try:
            barrier.wait()
            answers.append(produce_raw(broker.port, bomb, bomb_timeout).error_code)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=attack) for _ in range(senders)]
    for thread in threads:
        thread.start()
    barrier.wait()
    produce_with_librdkafka(broker, [b"during-%d" % i for i in range(20)])
    for thread in threads:
        thread.join(bomb_timeout)
    assert not failures
    assert answers == [ErrorCode.CORRUPT_MESSAGE] * senders
    assert peak_resident_bytes(broker.process.pid) < RSS_TARGET_BYTES
    assert log_end_offset(broker) == 21
    assert_broker_healthy(broker)
