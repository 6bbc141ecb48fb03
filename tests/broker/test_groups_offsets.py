"""The committed-offset store: durable across reopen, tombstones, compaction and its crash recovery."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.groups import OFFSETS_LOG_DIRECTORY, OffsetAndMetadata, OffsetStore
from broker.groups.offsets import decode_key, decode_value, encode_key, encode_value
from broker.internal_log import InternalLogError
from test_internal_log import clean_now
from log import Log
from protocol import records
from protocol.errors import ApiError, ErrorCode
from protocol.messages.group_data import OFFSET_COMMIT_VALUE


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


async def store_with(directory, commits: dict[str, dict]) -> OffsetStore:
    """A store in `directory` holding `commits` (group -> offsets), committed one group at a time."""
    store = OffsetStore(directory)
    for group, offsets in commits.items():
        await store.commit(group, offsets)
    return store


def reopen(store: OffsetStore) -> OffsetStore:
    store.close()
    return OffsetStore(store.directory.parent)


async def test_a_deleted_group_leaves_tombstones(tmp_path):
    store = await store_with(tmp_path, {"gone": {("t", 0): value(1), ("t", 1): value(2)}, "kept": {("t", 0): value(3)}})
    assert (await store.delete_group("gone"), await store.delete_group("never-existed")) == (2, 0)
    reopened = reopen(store)
    assert (reopened.group_ids(), reopened.group_offsets("gone")) == (["kept"], {})
    # Two commits of the deleted group, its two tombstones, and the kept commit.
    assert reopened.log_records == 5
    reopened.close()


async def test_a_deleted_topic_takes_every_groups_offsets_of_it_along(tmp_path):
    store = await store_with(tmp_path, {"g1": {("gone", 0): value(1), ("kept", 0): value(2)},
                                        "g2": {("gone", 3): value(4)}})
    assert (await store.delete_topic("gone"), await store.delete_topic("never-existed")) == (2, 0)
    reopened = reopen(store)
    assert (reopened.group_offsets("g1"), reopened.group_offsets("g2")) == ({("kept", 0): value(2)}, {})
    assert reopened.group_ids() == ["g1"]
    reopened.close()


async def test_deleting_some_of_a_groups_offsets_tombstones_only_those_it_has(tmp_path):
    store = await store_with(tmp_path, {"g": {("t", 0): value(1), ("t", 1): value(2)}, "h": {("t", 0): value(3)}})
    assert await store.delete_offsets("g", [("t", 0), ("t", 9), ("u", 0)]) == 1
    reopened = reopen(store)
    assert (reopened.group_offsets("g"), reopened.group_offsets("h")) == ({("t", 1): value(2)}, {("t", 0): value(3)})
    assert await reopened.delete_offsets("g", [("t", 1)]) == 1
    assert reopened.group_ids() == ["h"]
    reopened.close()


async def test_fsync_commits_are_flushed_before_returning(tmp_path):
    store = OffsetStore(tmp_path, fsync=True)
    await store.commit("g", {("t", 0): value(1)})
    assert store._log._log.flushed_offset == store._log._log.log_end_offset == 1
    store.close()


async def test_superseded_commits_are_cleaned_away(tmp_path):
    store = OffsetStore(tmp_path, min_dead_records=10)
    for offset in range(100):
        await store.commit("g", {("t", 0): value(offset), ("t", 1): value(offset)})
        clean_now(store.internal_log)  # as the broker's log cleaner does on each check
        # The log never holds much more than the live entries and the cleaning threshold.
        assert store.log_records <= 2 + 10 + 2
    await store.delete_group("g")
    await store.commit("h", {("t", 0): value(1)})
    store.close()
    assert sorted(os.listdir(tmp_path)) == [OFFSETS_LOG_DIRECTORY]
    reopened = OffsetStore(tmp_path, min_dead_records=10)
    assert reopened.group_ids() == ["h"]
    assert reopened.group_offsets("h") == {("t", 0): value(1)}
    reopened.close()


async def test_the_first_pass_after_a_start_cleans_a_log_full_of_superseded_records(tmp_path):
    store = OffsetStore(tmp_path)
    for offset in range(50):
        await store.commit("g", {("t", 0): value(offset)})
    store.close()
    reopened = OffsetStore(tmp_path, min_dead_records=10)
    assert clean_now(reopened.internal_log)
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
    with pytest.raises(InternalLogError):
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
def test_garbage_keys_and_values_raise_only_internal_log_error(data):
    for decode in (decode_key, decode_value):
        try:
            decode(data)
        except InternalLogError:
            pass


# As the hand-written struct encoder of these records wrote them: what offsets logs on disk hold.
# Key: version 1, group "group-é", topic "topic", partition 7. Value: version 3, offset 42,
# leader epoch 5, metadata "meta", commit timestamp 1700000000123.
WRITTEN_KEY = bytes.fromhex("0001" "0008" "67726f75702dc3a9" "0005" "746f706963" "00000007")
WRITTEN_VALUE = bytes.fromhex("0003" "000000000000002a" "00000005" "0004" "6d657461" "0000018bcfe5687b")


def test_records_written_before_the_declarations_read_and_write_the_same():
    committed = OffsetAndMetadata(42, 5, "meta", 1700000000123)
    assert decode_key(WRITTEN_KEY) == ("group-é", ("topic", 7))
    assert decode_value(WRITTEN_VALUE) == committed
    assert (encode_key("group-é", "topic", 7), encode_value(committed)) == (WRITTEN_KEY, WRITTEN_VALUE)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_values_of_every_version_kafka_declares_are_read(version):
    fields = OFFSET_COMMIT_VALUE(offset=9, leader_epoch=2, metadata="m", commit_timestamp=77, expire_timestamp=99)
    data = version.to_bytes(2, "big") + OFFSET_COMMIT_VALUE.encode(version, fields)
    # Before version 3 there is no leader epoch: it reads as unknown.
    assert decode_value(data) == OffsetAndMetadata(9, 2 if version >= 3 else -1, "m", 77)


# -- offsets committed in transactions (KIP-98) ---------------------------------------------------

PRODUCER_ID, EPOCH = 4000, 2


async def test_transactional_offsets_are_pending_until_the_commit_marker(tmp_path):
    store = await store_with(tmp_path, {"g": {("t", 0): value(1)}})
    await store.commit_transactional("g", {("t", 0): value(5), ("t", 1): value(6)}, PRODUCER_ID, EPOCH)
    await store.commit_transactional("h", {("u", 0): value(7)}, PRODUCER_ID, EPOCH)
    assert store.group_offsets("g") == {("t", 0): value(1)}
    assert (store.pending_partitions("g"), store.pending_partitions("h")) == ({("t", 0), ("t", 1)}, {("u", 0)})
    assert sorted(store.group_ids()) == ["g", "h"] and store.has_offsets("h") and store.group_offsets("h") == {}
    assert await store.complete_transaction(PRODUCER_ID, EPOCH, commit=True)
    expected = {"g": {("t", 0): value(5), ("t", 1): value(6)}, "h": {("u", 0): value(7)}}
    for each in (store, reopened := reopen(store)):
        assert {group: each.group_offsets(group) for group in ("g", "h")} == expected
        assert each.pending_partitions("g") == each.pending_partitions("h") == set()
    # The plain commit, the two transactional batches' three records and the marker.
    assert (reopened.live_records, reopened.log_records) == (3, 5)
    reopened.close()


async def test_an_abort_marker_drops_the_producers_pending_offsets(tmp_path):
    store = await store_with(tmp_path, {"g": {("t", 0): value(1)}})
    await store.commit_transactional("g", {("t", 0): value(5)}, PRODUCER_ID, EPOCH)
    await store.commit_transactional("g", {("t", 1): value(8)}, PRODUCER_ID + 1, 0)
    # A marker of a newer epoch (the coordinator fenced the producer) ends the transaction too.
    assert await store.complete_transaction(PRODUCER_ID, EPOCH + 1, commit=False)
    assert (store.group_offsets("g"), store.pending_partitions("g")) == ({("t", 0): value(1)}, {("t", 1)})
    reopened = reopen(store)
    assert (reopened.group_offsets("g"), reopened.pending_partitions("g")) == ({("t", 0): value(1)}, {("t", 1)})
    reopened.close()


async def test_pending_offsets_stay_pending_across_a_restart_until_their_marker(tmp_path):
    store = OffsetStore(tmp_path)
    await store.commit_transactional("g", {("t", 0): value(5)}, PRODUCER_ID, EPOCH)
    reopened = reopen(store)
    assert (reopened.group_ids(), reopened.group_offsets("g"), reopened.pending_partitions("g")) == (
        ["g"], {}, {("t", 0)})
    assert await reopened.complete_transaction(PRODUCER_ID, EPOCH, commit=True)
    assert reopened.group_offsets("g") == {("t", 0): value(5)}
    reopened.close()


async def test_a_commit_marker_keeps_a_plain_commit_made_after_the_transactional_one(tmp_path):
    store = await store_with(tmp_path, {"g": {("t", 0): value(1), ("t", 1): value(1)}})
    await store.commit_transactional("g", {("t", 0): value(5), ("t", 1): value(5)}, PRODUCER_ID, EPOCH)
    # Newer than the transaction's offset of t-1: kept when the transaction commits, as in Kafka.
    await store.commit("g", {("t", 1): value(9)})
    reopened = reopen(store)
    assert await reopened.complete_transaction(PRODUCER_ID, EPOCH, commit=True)
    assert reopened.group_offsets("g") == {("t", 0): value(5), ("t", 1): value(9)}
    reopened.close()


async def test_cleaning_keeps_pending_offsets_pending_and_their_order(tmp_path):
    store = OffsetStore(tmp_path, min_dead_records=4)
    for offset in range(7):
        await store.commit("h", {("u", 0): value(offset)})
    await store.commit("g", {("t", 0): value(1)})
    assert clean_now(store.internal_log)
    await store.commit_transactional("g", {("t", 0): value(5), ("t", 1): value(5)}, PRODUCER_ID, EPOCH)
    await store.commit_transactional("g", {("t", 2): value(5)}, PRODUCER_ID, EPOCH + 1)
    await store.commit("g", {("t", 1): value(9)})
    for offset in range(7, 14):
        await store.commit("h", {("u", 0): value(offset)})
    # Nothing from the open transaction on is cleaned.
    assert not clean_now(store.internal_log)
    store.close()
    reopened = OffsetStore(tmp_path, min_dead_records=4)
    assert reopened.pending_partitions("g") == {("t", 0), ("t", 1), ("t", 2)}
    # A marker of the producer's older epoch is refused.
    with pytest.raises(ApiError) as refused:
        await reopened.complete_transaction(PRODUCER_ID, EPOCH, commit=True)
    assert refused.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert await reopened.complete_transaction(PRODUCER_ID, EPOCH + 1, commit=True)
    expected = {("t", 0): value(5), ("t", 1): value(9), ("t", 2): value(5)}
    assert reopened.group_offsets("g") == expected
    # Once the transaction ended the rest is cleaned; the plain commit after it still wins.
    records_before = reopened.log_records
    assert clean_now(reopened.internal_log)
    assert reopened.log_records < records_before
    again = reopen(reopened)
    assert again.group_offsets("g") == expected and again.group_offsets("h") == {("u", 0): value(13)}
    again.close()


async def test_an_older_epoch_is_refused_while_the_producer_has_pending_offsets(tmp_path):
    store = OffsetStore(tmp_path)
    await store.commit_transactional("g", {("t", 0): value(5)}, PRODUCER_ID, EPOCH)
    for attempt in (store.commit_transactional("g", {("t", 1): value(6)}, PRODUCER_ID, EPOCH - 1),
                    store.complete_transaction(PRODUCER_ID, EPOCH - 1, commit=True)):
        with pytest.raises(ApiError) as refused:
            await attempt
        assert refused.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert store.pending_partitions("g") == {("t", 0)}
    store.close()


async def test_a_marker_of_a_producer_without_pending_offsets_writes_nothing(tmp_path):
    store = await store_with(tmp_path, {"g": {("t", 0): value(1)}})
    assert not await store.complete_transaction(PRODUCER_ID, EPOCH, commit=True)
    assert store.log_records == 1
    store.close()


@pytest.mark.parametrize("delete", [
    lambda store: store.delete_group("g"),
    lambda store: store.delete_offsets("g", [("t", 0), ("t", 1)]),
    lambda store: store.delete_topic("t"),
])
async def test_deleting_offsets_removes_pending_ones_too(tmp_path, delete):
    store = await store_with(tmp_path, {"g": {("t", 0): value(1)}})
    await store.commit_transactional("g", {("t", 0): value(5), ("t", 1): value(5)}, PRODUCER_ID, EPOCH)
    # Both partitions: the committed and pending t-0, the pending t-1 (as GroupMetadata.removeOffsets).
    assert await delete(store) == 2
    assert (store.group_ids(), store.pending_partitions("g")) == ([], set())
    reopened = reopen(store)
    assert (reopened.group_ids(), reopened.live_records) == ([], 0)
    # The marker comes later: nothing is left for it to commit.
    assert not await reopened.complete_transaction(PRODUCER_ID, EPOCH, commit=True)
    assert reopened.group_offsets("g") == {}
    reopened.close()
