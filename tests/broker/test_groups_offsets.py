"""The committed-offset store: durable across reopen, tombstones, compaction and its crash recovery."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.groups import OFFSETS_LOG_DIRECTORY, OffsetAndMetadata, OffsetStore, OffsetsLogError
from broker.groups.offsets import decode_key, decode_value, encode_key, encode_value
from log import Log
from protocol import records


def value(offset: int, metadata: str = "") -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, 7, metadata, 1_700_000_000_000 + offset)


async def test_commits_come_back_exactly_after_a_reopen(tmp_path):
    store = OffsetStore(tmp_path)
    await store.commit("g1", {("t", 0): value(5, "meta"), ("t", 1): value(9)})
    await store.commit("g2", {("u", 0): value(1)})
    await store.commit("g1", {("t", 0): value(6, "newer")})
    store.close()
    reopened = OffsetStore(tmp_path)
    assert reopened.group_offsets("g1") == {("t", 0): value(6, "newer"), ("t", 1): value(9)}
    assert reopened.group_offsets("g2") == {("u", 0): value(1)}
    assert sorted(reopened.group_ids()) == ["g1", "g2"]
    assert (reopened.live_records, reopened.log_records) == (3, 4)
    reopened.close()


async def test_a_deleted_group_leaves_tombstones(tmp_path):
    store = OffsetStore(tmp_path)
    await store.commit("gone", {("t", 0): value(1), ("t", 1): value(2)})
    await store.commit("kept", {("t", 0): value(3)})
    assert await store.delete_group("gone") == 2
    assert await store.delete_group("never-existed") == 0
    store.close()
    reopened = OffsetStore(tmp_path)
    assert reopened.group_ids() == ["kept"]
    assert reopened.group_offsets("gone") == {}
    # Two commits of the deleted group, its two tombstones, and the kept commit.
    assert reopened.log_records == 5
    reopened.close()


async def test_a_deleted_topic_takes_every_groups_offsets_of_it_along(tmp_path):
    store = OffsetStore(tmp_path)
    await store.commit("g1", {("gone", 0): value(1), ("kept", 0): value(2)})
    await store.commit("g2", {("gone", 3): value(4)})
    assert await store.delete_topic("gone") == 2
    assert await store.delete_topic("never-existed") == 0
    store.close()
    reopened = OffsetStore(tmp_path)
    assert reopened.group_offsets("g1") == {("kept", 0): value(2)}
    assert reopened.group_offsets("g2") == {}
    assert reopened.group_ids() == ["g1"]
    reopened.close()


async def test_fsync_commits_are_flushed_before_returning(tmp_path):
    store = OffsetStore(tmp_path, fsync=True)
    await store.commit("g", {("t", 0): value(1)})
    assert store._log.flushed_offset == store._log.log_end_offset == 1
    store.close()


async def test_superseded_commits_are_compacted_away(tmp_path):
    store = OffsetStore(tmp_path, min_dead_records=10)
    for offset in range(100):
        await store.commit("g", {("t", 0): value(offset), ("t", 1): value(offset)})
        # The log never holds much more than the live entries and the compaction threshold.
        assert store.log_records <= 2 + 10 + 2
    await store.delete_group("g")
    await store.commit("h", {("t", 0): value(1)})
    store.close()
    assert sorted(os.listdir(tmp_path)) == [OFFSETS_LOG_DIRECTORY]
    reopened = OffsetStore(tmp_path, min_dead_records=10)
    assert reopened.group_ids() == ["h"]
    assert reopened.group_offsets("h") == {("t", 0): value(1)}
    reopened.close()


async def test_start_up_compacts_a_log_full_of_superseded_records(tmp_path):
    store = OffsetStore(tmp_path)
    for offset in range(50):
        await store.commit("g", {("t", 0): value(offset)})
    store.close()
    reopened = OffsetStore(tmp_path, min_dead_records=10)
    assert reopened.log_records == reopened.live_records == 1
    assert reopened.group_offsets("g") == {("t", 0): value(49)}
    reopened.close()


async def _store_with(directory, group: str, offset: int) -> None:
    store = OffsetStore(directory)
    await store.commit(group, {("t", 0): value(offset)})
    store.close()


async def test_a_compaction_interrupted_before_the_swap_is_discarded(tmp_path):
    await _store_with(tmp_path, "live", 1)
    await _store_with(tmp_path / "other", "partial-copy", 2)
    os.replace(tmp_path / "other" / OFFSETS_LOG_DIRECTORY, tmp_path / f"{OFFSETS_LOG_DIRECTORY}.compacted")
    store = OffsetStore(tmp_path)
    assert store.group_ids() == ["live"]
    assert not (tmp_path / f"{OFFSETS_LOG_DIRECTORY}.compacted").exists()
    store.close()


async def test_a_compaction_interrupted_between_the_renames_is_finished(tmp_path):
    await _store_with(tmp_path, "old", 1)
    await _store_with(tmp_path / "other", "compacted", 2)
    os.replace(tmp_path / OFFSETS_LOG_DIRECTORY, tmp_path / f"{OFFSETS_LOG_DIRECTORY}.retired")
    os.replace(tmp_path / "other" / OFFSETS_LOG_DIRECTORY, tmp_path / f"{OFFSETS_LOG_DIRECTORY}.compacted")
    store = OffsetStore(tmp_path)
    assert store.group_ids() == ["compacted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [OFFSETS_LOG_DIRECTORY, "other"]
    store.close()


@pytest.mark.parametrize("key, data", [
    (None, b"value"),
    (b"\x00\x07garbage", b"value"),
    (encode_key("g", "t", 0), b"\x00\x03short"),
])
def test_an_unreadable_record_stops_the_start_with_a_clear_error(tmp_path, key, data):
    log = Log(tmp_path / OFFSETS_LOG_DIRECTORY)
    log.append(records.build_batch([records.Record(key, data)]))
    log.close()
    with pytest.raises(OffsetsLogError):
        OffsetStore(tmp_path)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=50), st.text(max_size=50), st.integers(0, 2**31 - 1),
       st.integers(-1, 2**63 - 1), st.integers(-1, 2**31 - 1), st.text(max_size=100), st.integers(-1, 2**62))
def test_keys_and_values_round_trip(group, topic, partition, offset, leader_epoch, metadata, timestamp):
    assert decode_key(encode_key(group, topic, partition)) == (group, (topic, partition))
    committed = OffsetAndMetadata(offset, leader_epoch, metadata, timestamp)
    assert decode_value(encode_value(committed)) == committed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_keys_and_values_raise_only_offsets_log_error(data):
    for decode in (decode_key, decode_value):
        try:
            decode(data)
        except OffsetsLogError:
            pass
