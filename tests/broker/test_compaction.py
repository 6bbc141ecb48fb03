"""Compacted topics over a real socket: keyless records refused as Kafka refuses them, and the
broker's cleaner (each pass in a process of its own) leaving the latest record of each key, on a
clock the test sets."""

from __future__ import annotations

import pytest

from broker.groups import OffsetAndMetadata
from protocol import records
from protocol.compression import Compression
from protocol.errors import ErrorCode
from test_produce_topic_configs import NOW, cluster  # noqa: F401 (the fixture)

COMPACTED = {"cleanup_policy": "compact", "segment_bytes": "1000", "min_cleanable_dirty_ratio": "0.01"}


def keyed(key: bytes | None, value: bytes | None, timestamp: int = NOW) -> bytes:
    return records.build_batch([records.Record(key, value, (), timestamp)])


async def latest_values(cluster, topic: str) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(record.offset, record.key, record.value)
            for header, batch in await cluster.stored(topic) if not header.is_control
            for record in records.iter_records(batch)]


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.ZSTD])
async def test_records_without_a_key_are_refused_invalid_record(cluster, codec):
    topic = await cluster.topic("keyed", cleanup_policy="compact")
    sent = records.build_batch([records.Record(b"k", b"1"), records.Record(None, b"2"), records.Record(None, b"3")],
                               compression=codec)
    answer = await cluster.produce(topic, sent)
    why = "Compacted topic cannot accept message without key in topic partition keyed-0."
    assert answer.error_code == ErrorCode.INVALID_RECORD
    assert [(e.batch_index, e.batch_index_error_message) for e in answer.record_errors] == [(1, why), (2, why)]
    assert answer.error_message == (
        "One or more records have been rejected due to 2 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{why}'), "
        f"RecordError(batchIndex=2, message='{why}')]")
    assert await cluster.stored(topic) == []
    assert (await cluster.produce(topic, keyed(b"k", b"kept"))).error_code == ErrorCode.NONE


async def test_a_delete_topic_takes_keyless_records(cluster):
    topic = await cluster.topic("plain")
    assert (await cluster.produce(topic, keyed(None, b"v"))).error_code == ErrorCode.NONE


async def test_the_cleaner_leaves_the_latest_record_of_each_key(cluster):
    topic = await cluster.topic("table", **COMPACTED)
    for number in range(120):
        await cluster.produce(topic, keyed(b"key-%d" % (number % 6), b"value-%d" % number))
    log = cluster.broker.registry.partition(topic, 0).log
    active = log.segments[-1].base_offset  # never cleaned
    before = await latest_values(cluster, topic)
    assert await cluster.broker.log_cleaner.clean_due() == 1
    after = await latest_values(cluster, topic)
    sealed_latest = {key: (offset, key, value) for offset, key, value in before if offset < active}
    assert [r for r in after if r[0] < active] == sorted(sealed_latest.values())
    assert [r for r in after if r[0] >= active] == [r for r in before if r[0] >= active]
    assert await cluster.broker.log_cleaner.clean_due() == 0  # nothing dirty left


async def test_a_quiet_log_is_rolled_after_segment_ms_and_cleaned(cluster):
    topic = await cluster.topic("quiet", cleanup_policy="compact", segment_ms="60000")
    for number in range(10):
        await cluster.produce(topic, keyed(b"only", b"%d" % number))
    assert await cluster.broker.log_cleaner.clean_due() == 0  # one active segment: nothing to clean
    cluster.now[0] += 60_001
    assert await cluster.broker.log_cleaner.clean_due() == 1
    assert await latest_values(cluster, topic) == [(9, b"only", b"9")]


async def test_tombstones_go_once_delete_retention_ms_passed(cluster):
    topic = await cluster.topic("deletes", cleanup_policy="compact", segment_ms="1000",
                                delete_retention_ms="600000", min_cleanable_dirty_ratio="0.01")
    await cluster.produce(topic, keyed(b"gone", b"value"))
    await cluster.produce(topic, keyed(b"stays", b"value"))
    await cluster.produce(topic, keyed(b"gone", None))
    cluster.now[0] += 1001
    assert await cluster.broker.log_cleaner.clean_due() == 1
    assert await latest_values(cluster, topic) == [(1, b"stays", b"value"), (2, b"gone", None)]
    cluster.now[0] += 600_000
    await cluster.produce(topic, keyed(b"stays", b"again", cluster.now[0]))
    cluster.now[0] += 1001
    assert await cluster.broker.log_cleaner.clean_due() == 1
    assert await latest_values(cluster, topic) == [(3, b"stays", b"again")]


async def test_the_cleaner_compacts_the_committed_offsets_log_too(cluster):
    offsets = cluster.broker.coordinator.offsets
    offsets.internal_log.min_dead_records = 10
    for offset in range(30):
        await offsets.commit("group", {("t", 0): OffsetAndMetadata(offset, -1, "", NOW)})
    assert offsets.log_records == 30
    assert await cluster.broker.log_cleaner.clean_due() == 1
    assert offsets.log_records == 1
    assert offsets.group_offsets("group") == {("t", 0): OffsetAndMetadata(29, -1, "", NOW)}


async def test_a_log_error_in_an_internal_logs_pass_is_logged_and_tried_again(cluster, caplog):
    offsets = cluster.broker.coordinator.offsets
    offsets.internal_log.min_dead_records = 10
    for offset in range(30):
        await offsets.commit("group", {("t", 0): OffsetAndMetadata(offset, -1, "", NOW)})
    offsets.internal_log.close()  # its roll before the pass now fails
    assert await cluster.broker.log_cleaner.clean_due() == 0
    assert "cleaning failed, tried again later" in caplog.text
