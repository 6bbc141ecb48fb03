"""The broker answering requests over a real socket, checked field by field."""

import uuid

import pytest
import trio
import trio.testing
from kafka.record.default_records import DefaultRecordBatchBuilder

from protocol import headers, record_batch, records
from protocol.errors import ErrorCode
from protocol.framing import framed
from protocol.messages import REQUESTS, ApiKey
from wire_client import WireClient

TOPIC = "comlog"


def batch(values, *, producer_id=-1, epoch=-1, sequence=-1, timestamp=1_000):
    return records.build_batch([records.Record(value=v, timestamp=timestamp + i) for i, v in enumerate(values)],
                               producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)


def produce_body(record_set, *, acks=-1, topic=TOPIC, partition=0):
    return {"transactional_id": None, "acks": acks, "timeout_ms": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": record_set}]}]}


async def produce(client, record_set, version=9, **kwargs):
    response = await client.request(ApiKey.PRODUCE, version, produce_body(record_set, **kwargs))
    return response.responses[0].partition_responses[0]


def fetch_body(offset, *, max_wait_ms=0, min_bytes=1, partition_max_bytes=1 << 20, max_bytes=50 << 20):
    return {"replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": min_bytes, "max_bytes": max_bytes,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": TOPIC, "partitions": [{"partition": 0, "fetch_offset": offset,
                                                        "partition_max_bytes": partition_max_bytes}]}],
            "forgotten_topics_data": [], "rack_id": ""}


async def fetch(client, offset, version=12, **kwargs):
    response = await client.request(ApiKey.FETCH, version, fetch_body(offset, **kwargs))
    return response.responses[0].partitions[0]


def values_of(record_set):
    return [r.value for _, b in records.iter_batches(bytes(record_set), allow_truncated_tail=True)
            for r in records.iter_records(b)]


async def test_api_versions_lists_every_served_api(client):
    response = await client.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert response.error_code == ErrorCode.NONE
    table = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert table[ApiKey.API_VERSIONS] == (0, 4)
    # The versions librdkafka and kafka-python key their features on must be in range.
    assert table[ApiKey.PRODUCE][0] <= 3 <= 7 <= table[ApiKey.PRODUCE][1]
    assert table[ApiKey.FETCH][0] <= 4 <= 10 <= table[ApiKey.FETCH][1]
    assert table[ApiKey.INIT_PRODUCER_ID][0] == 0
    for api_key, (low, high) in table.items():
        assert REQUESTS[api_key].valid_versions.low <= low <= high <= REQUESTS[api_key].valid_versions.high


async def test_api_versions_newer_than_known_gets_unsupported_version_and_the_table(client):
    # Patch the version of an encoded request: the codec cannot encode v99 itself.
    raw = bytearray(headers.encode_request(ApiKey.API_VERSIONS, 3, 77, "probe", {}))
    raw[2:4] = (99).to_bytes(2, "big")
    await client.send_raw(framed(raw))
    header, body = headers.decode_response(await client.receive_frame(), ApiKey.API_VERSIONS, 0)
    assert header.correlation_id == 77
    assert body.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert any(k.api_key == ApiKey.API_VERSIONS and k.max_version == 4 for k in body.api_keys)


@pytest.mark.parametrize("version", [0, 1, 4, 9, 12])
async def test_metadata_describes_this_broker_and_the_topic(broker, client, version):
    topics = [] if version == 0 else None
    response = await client.request(ApiKey.METADATA, version, {"topics": topics, "allow_auto_topic_creation": False})
    node = broker.config.node_id
    assert [(b.node_id, b.host, b.port) for b in response.brokers] == [(node, "127.0.0.1", broker.port)]
    if version >= 1:
        assert response.controller_id == node
    if version >= 2:
        assert response.cluster_id == broker.cluster_id
    [topic] = response.topics
    assert (topic.error_code, topic.name) == (ErrorCode.NONE, TOPIC)
    [partition] = topic.partitions
    assert (partition.partition_index, partition.leader_id, partition.replica_nodes, partition.isr_nodes) == \
        (0, node, [node], [node])
    if version >= 10:
        assert topic.topic_id == broker.registry.topics[TOPIC].topic_id != uuid.UUID(int=0)


async def test_metadata_unknown_topic_without_auto_creation(client):
    response = await client.request(ApiKey.METADATA, 9, {"topics": [{"name": "nope"}], "allow_auto_topic_creation": False})
    assert [(t.name, t.error_code) for t in response.topics] == [("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]


async def test_produce_assigns_contiguous_offsets_and_fetch_returns_them(client):
    first = await produce(client, batch([b"a", b"b", b"c"]))
    second = await produce(client, batch([b"d"]))
    assert (first.error_code, first.base_offset, second.base_offset) == (0, 0, 3)
    assert first.log_start_offset == 0 and first.log_append_time_ms == -1
    partition = await fetch(client, 0)
    assert partition.error_code == ErrorCode.NONE
    assert (partition.high_watermark, partition.last_stable_offset, partition.log_start_offset) == (4, 4, 0)
    assert values_of(partition.records) == [b"a", b"b", b"c", b"d"]


async def test_fetch_starts_at_the_batch_holding_the_offset(client):
    await produce(client, batch([b"a", b"b"]))
    await produce(client, batch([b"c"]))
    assert values_of((await fetch(client, 1)).records) == [b"a", b"b", b"c"]
    assert values_of((await fetch(client, 2)).records) == [b"c"]


async def test_fetch_at_log_end_is_empty_not_null(client):
    await produce(client, batch([b"a"]))
    partition = await fetch(client, 1)
    assert partition.error_code == ErrorCode.NONE
    assert partition.records is not None and len(partition.records) == 0


async def test_fetch_outside_the_log_is_offset_out_of_range(client):
    await produce(client, batch([b"a"]))
    partition = await fetch(client, 5)
    assert partition.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert partition.high_watermark == 1


async def test_fetch_returns_a_whole_batch_over_the_limit(client):
    await produce(client, batch([b"x" * 5000]))
    await produce(client, batch([b"y"]))
    partition = await fetch(client, 0, partition_max_bytes=100)
    assert values_of(partition.records) == [b"x" * 5000]


async def test_long_poll_is_woken_by_the_next_append(broker, client, nursery):
    producer = await WireClient.connect(broker.port)
    result = {}
    answered = trio.Event()

    async def poll():
        result["partition"] = await fetch(client, 0, max_wait_ms=30_000)
        answered.set()

    nursery.start_soon(poll)
    await trio.testing.wait_all_tasks_blocked()
    assert not answered.is_set()
    await produce(producer, batch([b"wake"]))
    with trio.fail_after(10):
        await answered.wait()
    assert values_of(result["partition"].records) == [b"wake"]
    await producer.aclose()


async def test_long_poll_times_out_with_an_empty_answer(client):
    with trio.fail_after(10):
        partition = await fetch(client, 0, max_wait_ms=50)
    assert partition.error_code == ErrorCode.NONE and len(partition.records) == 0


async def test_bad_crc_is_corrupt_message_and_nothing_is_appended(client):
    bad = bytearray(batch([b"a"]))
    bad[-1] ^= 0xFF
    response = await produce(client, bytes(bad))
    assert response.error_code == ErrorCode.CORRUPT_MESSAGE
    assert (await fetch(client, 0)).high_watermark == 0


async def test_batch_over_max_message_bytes_is_message_too_large(client):
    response = await produce(client, batch([b"x" * 1_100_000]))
    assert response.error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert (await fetch(client, 0)).high_watermark == 0


async def test_two_batches_in_one_partition_are_invalid_record(client):
    response = await produce(client, batch([b"a"]) + batch([b"b"]))
    assert response.error_code == ErrorCode.INVALID_RECORD


async def test_unknown_partition(client):
    response = await produce(client, batch([b"a"]), partition=3)
    assert response.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_legacy_produce_v2_is_converted_to_magic_2(client):
    from kafka.record.legacy_records import LegacyRecordBatchBuilder
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    for i, value in enumerate([b"old-1", b"old-2"]):
        builder.append(i, timestamp=5_000 + i, key=None, value=value)
    response = await produce(client, bytes(builder.build()), version=2)
    assert (response.error_code, response.base_offset) == (ErrorCode.NONE, 0)
    partition = await fetch(client, 0)
    [(header, _)] = list(records.iter_batches(bytes(partition.records)))
    assert header.magic == 2
    assert values_of(partition.records) == [b"old-1", b"old-2"]


async def test_acks_zero_gets_no_response(client):
    await client.send(ApiKey.PRODUCE, 9, produce_body(batch([b"fire-and-forget"]), acks=0))
    # The next request's response is the first thing that comes back.
    partition = await fetch(client, 0)
    assert values_of(partition.records) == [b"fire-and-forget"]


async def test_pipelined_requests_are_answered_in_order(client):
    ids = [await client.send(ApiKey.PRODUCE, 9, produce_body(batch([b"%d" % i]))) for i in range(20)]
    offsets = []
    for correlation_id in ids:
        header, body = await client.receive()
        assert header.correlation_id == correlation_id
        offsets.append(body.responses[0].partition_responses[0].base_offset)
    assert offsets == list(range(20))


async def test_log_append_time_topic_stamps_the_batch(tmp_path, nursery):
    from broker.config import BrokerConfig
    from broker.server import Broker
    config = BrokerConfig(port=0, data_dir=tmp_path / "lat", message_timestamp_type="LogAppendTime")
    async with Broker(config) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        response = await produce(client, batch([b"a"], timestamp=42))
        assert response.log_append_time_ms > 1_600_000_000_000
        partition = await fetch(client, 0)
        [(header, _)] = list(records.iter_batches(bytes(partition.records)))
        assert header.timestamp_type == record_batch.TimestampType.LOG_APPEND_TIME
        assert header.max_timestamp == response.log_append_time_ms


async def test_the_logs_count_time_on_the_broker_clock(tmp_path):
    # flush.ms is measured by the flush policy and by the logs alike: on one clock, the broker's.
    from broker.config import BrokerConfig
    from broker.server import Broker
    now = [1_000_000]
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "clock"), clock=lambda: now[0]) as broker:
        await broker.registry.create_topic("timed", 1, {"flush.ms": "60000"})
        log = broker.registry.partition("timed", 0).log
        log.append(batch([b"a"]))
        now[0] += 59_999
        assert not log.needs_flush(broker.clock())
        now[0] += 1
        assert log.needs_flush(broker.clock())


class TestIdempotence:
    async def test_producer_ids_are_unique_across_restarts(self, broker_config, nursery):
        from broker.server import Broker
        seen = []
        for _ in range(2):
            async with Broker(broker_config) as broker:
                await nursery.start(broker.serve)
                client = await WireClient.connect(broker.port)
                for _ in range(3):
                    response = await client.request(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None,
                                                                          "transaction_timeout_ms": 60000})
                    assert response.error_code == ErrorCode.NONE and response.producer_epoch == 0
                    seen.append(response.producer_id)
                await client.aclose()
        assert len(set(seen)) == 6

    async def test_retry_is_answered_with_the_original_offset_and_not_appended(self, client):
        await produce(client, batch([b"other"]))
        first = await produce(client, batch([b"a", b"b"], producer_id=9, epoch=0, sequence=0))
        retry = await produce(client, batch([b"a", b"b"], producer_id=9, epoch=0, sequence=0))
        assert (first.base_offset, retry.base_offset, retry.error_code) == (1, 1, ErrorCode.NONE)
        assert (await fetch(client, 0)).high_watermark == 3

    async def test_sequence_gap_is_out_of_order(self, client):
        await produce(client, batch([b"a"], producer_id=9, epoch=0, sequence=0))
        gap = await produce(client, batch([b"c"], producer_id=9, epoch=0, sequence=2))
        assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER

    async def test_stale_epoch_is_invalid_producer_epoch(self, client):
        await produce(client, batch([b"a"], producer_id=9, epoch=1, sequence=0))
        stale = await produce(client, batch([b"b"], producer_id=9, epoch=0, sequence=1))
        assert stale.error_code == ErrorCode.INVALID_PRODUCER_EPOCH

    async def test_retry_after_restart_is_still_deduplicated(self, broker_config, nursery):
        from broker.server import Broker
        snapshot = broker_config.data_dir / "comlog-0" / "producer-state.snapshot"
        # First the original send, then the same batch retried after a clean restart (state from
        # the snapshot) and after a crash (no snapshot: state replayed from the log).
        for attempt in ("send", "retry after clean restart", "retry after crash"):
            if attempt == "retry after crash":
                snapshot.unlink()
            async with Broker(broker_config) as broker:
                await nursery.start(broker.serve)
                client = await WireClient.connect(broker.port)
                response = await produce(client, batch([b"once"], producer_id=5, epoch=0, sequence=0))
                assert (response.error_code, response.base_offset) == (ErrorCode.NONE, 0), attempt
                assert (await fetch(client, 0)).high_watermark == 1, attempt
                await client.aclose()


class TestListOffsets:
    async def list_offsets(self, client, timestamp, version=7):
        response = await client.request(ApiKey.LIST_OFFSETS, version, {
            "replica_id": -1, "isolation_level": 0,
            "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "timestamp": timestamp,
                                                        "max_num_offsets": 1}]}]})
        return response.topics[0].partitions[0]

    async def test_latest_and_earliest(self, client):
        await produce(client, batch([b"a", b"b", b"c"]))
        latest = await self.list_offsets(client, -1)
        earliest = await self.list_offsets(client, -2)
        assert (latest.error_code, latest.offset, earliest.offset) == (ErrorCode.NONE, 3, 0)

    async def test_by_timestamp_finds_the_exact_record_inside_a_batch(self, client):
        await produce(client, batch([b"a", b"b", b"c"], timestamp=1_000))   # timestamps 1000-1002
        await produce(client, batch([b"d"], timestamp=5_000))
        found = await self.list_offsets(client, 1_001)
        assert (found.offset, found.timestamp) == (1, 1_001)
        found = await self.list_offsets(client, 1_003)
        assert (found.offset, found.timestamp) == (3, 5_000)
        missing = await self.list_offsets(client, 9_000)
        assert (missing.offset, missing.timestamp) == (-1, -1)

    async def test_max_timestamp_is_the_record_with_the_largest_timestamp(self, client):
        await produce(client, batch([b"a", b"b"], timestamp=7_000))          # 7000, 7001
        await produce(client, batch([b"c"], timestamp=2_000))
        found = await self.list_offsets(client, -3)
        assert (found.offset, found.timestamp) == (1, 7_001)

    async def test_version_zero_answers_with_old_style_offsets(self, client):
        await produce(client, batch([b"a", b"b"]))
        found = await self.list_offsets(client, -1, version=0)
        assert found.old_style_offsets == [2]

    async def test_unknown_partition(self, client):
        response = await client.request(ApiKey.LIST_OFFSETS, 7, {
            "replica_id": -1, "isolation_level": 0,
            "topics": [{"name": "nope", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
        assert response.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_idle_connection_is_closed(tmp_path, nursery):
    from broker.config import BrokerConfig
    from broker.server import Broker
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "idle", connections_max_idle_ms=100)) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        with trio.fail_after(10):
            assert await client.receive_frame() is None


async def test_bytes_after_the_message_are_ignored_as_kafka_does(client):
    # librdkafka 2.x sends Metadata v12 requests with three extra bytes; Kafka answers them.
    raw = headers.encode_request(ApiKey.METADATA, 12, 5, "rdkafka", {"topics": None}) + b"\x01\x00\x00"
    await client.send_raw(framed(raw))
    header, body = headers.decode_response(await client.receive_frame(), ApiKey.METADATA, 12)
    assert header.correlation_id == 5 and [t.name for t in body.topics] == [TOPIC]


async def test_stop_does_not_wait_for_idle_or_half_sent_connections(broker_config, nursery):
    from broker.server import Broker
    async with Broker(broker_config) as broker:
        await nursery.start(broker.serve)
        idle = await WireClient.connect(broker.port)
        half_sent = await WireClient.connect(broker.port)
        await half_sent.send_raw(b"\x00\x00\x01\x00\x00\x03")   # a 256-byte frame, 2 bytes of it sent
        await trio.testing.wait_all_tasks_blocked()
        broker.stop()
        with trio.fail_after(5):
            await broker.stopped.wait()
        assert await idle.receive_frame() is None and await half_sent.receive_frame() is None
