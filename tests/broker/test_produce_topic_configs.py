"""Produce honouring its topic's compression.type (and levels) and timestamp bounds, over a real
socket: the batch the log stores, and the errors the producer gets, as Kafka's LogValidator."""

from __future__ import annotations

import pytest

from broker.config import BrokerConfig
from broker.server import Broker
from protocol import legacy, record_batch, records
from protocol.compression import Compression, compress
from protocol.errors import ErrorCode
from protocol.messages import ApiKey
from wire_client import WireClient

NOW = 1_700_000_000_000
CODEC_NAMES = {"uncompressed": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
               "lz4": Compression.LZ4, "zstd": Compression.ZSTD}
# Keys, values (null included), headers and timestamps out of order: all must survive a recompression.
RECORDS = [
    records.Record(b"key-0", b"value " * 50, (("h", b"1"), ("empty", None)), NOW - 5),
    records.Record(None, None, (), NOW + 7),
    records.Record(b"key-2", b"x" * 3000, (("h", b"3"),), NOW),
]


class Cluster:
    """A broker on a clock the test sets, and a connection to it."""

    def __init__(self, broker: Broker, client: WireClient, now: list[int]) -> None:
        self.broker, self.client, self.now = broker, client, now

    async def topic(self, name: str, **configs: str) -> str:
        await self.broker.registry.create_topic(name, 1, {k.replace("_", "."): v for k, v in configs.items()})
        return name

    async def produce(self, topic: str, record_set: bytes, version: int = 9):
        body = {"transactional_id": None, "acks": -1, "timeout_ms": 5000,
                "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": record_set}]}]}
        response = await self.client.request(ApiKey.PRODUCE, version, body)
        return response.responses[0].partition_responses[0]

    async def stored(self, topic: str) -> list[tuple[record_batch.BatchHeader, bytes]]:
        """The batches the partition holds, as fetches from the start return them (a fetch answers
        with one segment's batches at most)."""
        found = []
        offset = 0
        while True:
            body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 50 << 20, "isolation_level": 0,
                    "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
                    "topics": [{"topic": topic, "partitions": [{"partition": 0, "fetch_offset": offset,
                                                                "partition_max_bytes": 50 << 20}]}]}
            response = await self.client.request(ApiKey.FETCH, 12, body)
            data = bytes(response.responses[0].partitions[0].records or b"")
            if not data:
                return found
            found += [(header, bytes(batch)) for header, batch in records.iter_batches(data)]
            offset = found[-1][0].next_offset


@pytest.fixture
async def cluster(tmp_path, nursery):
    now = [NOW]
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "data"), clock=lambda: now[0]) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        yield Cluster(broker, client, now)
        await client.aclose()


def batch(codec: Compression = Compression.NONE, **kwargs) -> bytes:
    return records.build_batch(RECORDS, compression=codec, **kwargs)


def codec_of(header: record_batch.BatchHeader) -> Compression:
    return records.compression_of(header.attributes)


def without_offset(stored: bytes) -> bytes:
    """A stored batch as its producer sent it: the log wrote the base offset in place."""
    return bytes(8) + stored[8:]


@pytest.mark.parametrize("sent", [Compression.NONE, Compression.GZIP, Compression.LZ4, Compression.ZSTD])
@pytest.mark.parametrize("topic_codec", sorted(CODEC_NAMES))
async def test_a_batch_is_stored_with_the_topics_codec(cluster, topic_codec, sent):
    topic = await cluster.topic("t", compression_type=topic_codec)
    await cluster.produce(topic, batch(Compression.NONE))  # a first batch, so that offsets are assigned
    response = await cluster.produce(topic, batch(sent))
    assert (response.error_code, response.base_offset) == (ErrorCode.NONE, 3)
    [_, (header, stored)] = await cluster.stored(topic)
    assert codec_of(header) == CODEC_NAMES[topic_codec]
    assert list(records.iter_records(stored)) == [r._replace(offset=3 + i) for i, r in enumerate(RECORDS)]
    assert header.max_timestamp == NOW + 7 and header.timestamp_type == record_batch.TimestampType.CREATE_TIME
    if sent == CODEC_NAMES[topic_codec]:
        assert without_offset(stored) == batch(sent)  # the same codec: stored as sent


@pytest.mark.parametrize("sent", [Compression.NONE, Compression.SNAPPY, Compression.ZSTD])
async def test_producer_keeps_every_batch_as_sent(cluster, sent):
    topic = await cluster.topic("t", compression_type="producer")
    assert (await cluster.produce(topic, batch(sent))).error_code == ErrorCode.NONE
    [(_, stored)] = await cluster.stored(topic)
    assert stored == batch(sent)


async def test_the_same_codec_is_not_recompressed_to_the_topics_level(cluster):
    # As Kafka: a zstd batch into a zstd topic keeps the producer's level.
    topic = await cluster.topic("t", compression_type="zstd", compression_zstd_level="19")
    sent = batch(Compression.ZSTD)
    await cluster.produce(topic, sent)
    [(_, stored)] = await cluster.stored(topic)
    assert stored == sent


@pytest.mark.parametrize(("codec", "config", "level"), [
    ("gzip", "compression.gzip.level", "1"), ("gzip", "compression.gzip.level", "9"),
    ("lz4", "compression.lz4.level", "1"), ("lz4", "compression.lz4.level", "17"),
    ("zstd", "compression.zstd.level", "-5"), ("zstd", "compression.zstd.level", "19"),
])
async def test_recompression_uses_the_topics_level(cluster, codec, config, level):
    topic = await cluster.topic("t", compression_type=codec, **{config.replace(".", "_"): level})
    sent = batch(Compression.NONE)
    await cluster.produce(topic, sent)
    [(_, stored)] = await cluster.stored(topic)
    section = sent[record_batch.BATCH_HEADER_SIZE:]
    assert stored[record_batch.BATCH_HEADER_SIZE:] == compress(CODEC_NAMES[codec], section, int(level))


async def test_recompression_keeps_the_producer_state_and_its_deduplication(cluster):
    topic = await cluster.topic("t", compression_type="lz4")
    sent = batch(Compression.GZIP, producer_id=7, producer_epoch=2, base_sequence=0)
    first = await cluster.produce(topic, sent)
    retry = await cluster.produce(topic, sent)
    assert (first.error_code, retry.error_code, retry.base_offset) == (ErrorCode.NONE, ErrorCode.NONE, first.base_offset)
    [(header, stored)] = await cluster.stored(topic)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 0)
    assert codec_of(header) == Compression.LZ4
    record_batch.verify_crc(stored, header)
    following = await cluster.produce(topic, batch(Compression.GZIP, producer_id=7, producer_epoch=2, base_sequence=3))
    assert (following.error_code, following.base_offset) == (ErrorCode.NONE, 3)


async def test_a_log_append_time_topic_stamps_the_recompressed_batch(cluster):
    topic = await cluster.topic("t", compression_type="zstd", message_timestamp_type="LogAppendTime")
    cluster.now[0] = NOW + 60_000
    response = await cluster.produce(topic, batch(Compression.NONE))
    assert response.log_append_time_ms == NOW + 60_000
    [(header, stored)] = await cluster.stored(topic)
    assert (codec_of(header), header.timestamp_type, header.max_timestamp) == (
        Compression.ZSTD, record_batch.TimestampType.LOG_APPEND_TIME, NOW + 60_000)
    record_batch.verify_crc(stored, header)


async def test_a_batch_too_large_once_decompressed_is_message_too_large(cluster):
    topic = await cluster.topic("t", compression_type="uncompressed", max_message_bytes="10000")
    record = records.Record(value=bytes(50_000))
    response = await cluster.produce(topic, records.build_batch([record], compression=Compression.GZIP))
    assert response.error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert response.error_message == (
        f"Message batch size is {len(records.build_batch([record]))} bytes in append topartition t-0 which exceeds the maximum "
        f"configured size of 10000.")
    assert await cluster.stored(topic) == []


@pytest.mark.parametrize(("topic_codec", "stored_codec"), [("zstd", Compression.ZSTD), ("producer", Compression.GZIP),
                                                           ("uncompressed", Compression.NONE)])
async def test_a_legacy_message_set_is_stored_with_the_topics_codec(cluster, topic_codec, stored_codec):
    topic = await cluster.topic("t", compression_type=topic_codec)
    legacy_records = [records.Record(b"k%d" % i, b"old-%d" % i, timestamp=NOW + i) for i in range(3)]
    message_set = legacy.build_message_set(legacy_records, magic=1, compression=Compression.GZIP)
    response = await cluster.produce(topic, message_set, version=2)
    assert response.error_code == ErrorCode.NONE
    [(header, stored)] = await cluster.stored(topic)
    assert codec_of(header) == stored_codec
    assert list(records.iter_records(stored)) == [r._replace(offset=i) for i, r in enumerate(legacy_records)]


def stamped(*timestamps: int) -> bytes:
    return records.build_batch([records.Record(value=b"v%d" % i, timestamp=t) for i, t in enumerate(timestamps)])


async def test_timestamps_outside_the_bounds_are_invalid_timestamp_with_each_record_named(cluster):
    topic = await cluster.topic("t", message_timestamp_before_max_ms="1000", message_timestamp_after_max_ms="2000")
    response = await cluster.produce(topic, stamped(NOW - 1001, NOW - 1000, NOW + 2000, NOW + 2001, -1))
    assert response.error_code == ErrorCode.INVALID_TIMESTAMP
    assert response.error_message == "One or more records have been rejected due to invalid timestamp"
    window = f"The timestamp should be within [{NOW - 1000}, {NOW + 2000}]"
    assert [(e.batch_index, e.batch_index_error_message) for e in response.record_errors] == [
        (0, f"Timestamp {NOW - 1001} of message with offset 0 is out of range. {window}"),
        (3, f"Timestamp {NOW + 2001} of message with offset 3 is out of range. {window}")]
    assert await cluster.stored(topic) == []
    # The bounds move with the broker's clock.
    cluster.now[0] += 1
    assert (await cluster.produce(topic, stamped(NOW - 999, NOW + 2001, -1))).error_code == ErrorCode.NONE


async def test_one_bound_alone_and_a_compressed_batch(cluster):
    topic = await cluster.topic("t", message_timestamp_after_max_ms="0", compression_type="zstd")
    late = records.build_batch([records.Record(value=b"a", timestamp=1), records.Record(value=b"b", timestamp=NOW + 1)],
                               compression=Compression.LZ4)
    response = await cluster.produce(topic, late)
    assert response.error_code == ErrorCode.INVALID_TIMESTAMP
    assert [e.batch_index for e in response.record_errors] == [1]
    assert (await cluster.produce(topic, stamped(1, NOW))).error_code == ErrorCode.NONE


async def test_produce_versions_before_8_get_the_code_alone(cluster):
    topic = await cluster.topic("t", message_timestamp_before_max_ms="0")
    response = await cluster.produce(topic, stamped(NOW - 1), version=7)
    assert response.error_code == ErrorCode.INVALID_TIMESTAMP


async def test_log_append_time_topics_take_any_timestamp(cluster):
    topic = await cluster.topic("t", message_timestamp_type="LogAppendTime", message_timestamp_before_max_ms="0",
                                message_timestamp_after_max_ms="0")
    assert (await cluster.produce(topic, stamped(0, NOW * 2))).error_code == ErrorCode.NONE


async def test_the_deprecated_difference_bounds_what_before_and_after_leave_at_their_default(cluster):
    topic = await cluster.topic("t", message_timestamp_difference_max_ms="100", message_timestamp_after_max_ms="5000")
    response = await cluster.produce(topic, stamped(NOW - 101, NOW - 100, NOW + 5000, NOW + 5001))
    assert response.error_code == ErrorCode.INVALID_TIMESTAMP
    assert [e.batch_index for e in response.record_errors] == [0, 3]
