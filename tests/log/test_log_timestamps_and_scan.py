"""Offset for timestamp through the time indexes, and iterating the stored batch headers."""

import pytest
from log_batches import build_batch, open_log

from log import OffsetOutOfRangeError, TimestampOffset


def log_with_timestamps(tmp_path, timestamps, **config):
    """One two-record batch per entry of `timestamps` (its records at t and t + 1)."""
    log = open_log(tmp_path, **config)
    for timestamp in timestamps:
        log.append(build_batch(2, timestamp=timestamp, value_size=60))
    return log


def test_offset_for_timestamp_finds_the_first_batch_at_or_after_it(tmp_path):
    log = log_with_timestamps(tmp_path, range(0, 1_000, 10), segment_bytes=1_500, index_interval_bytes=200)
    assert log.segment_count > 5
    assert log.offset_for_timestamp(0) == TimestampOffset(1, 0)
    assert log.offset_for_timestamp(11) == TimestampOffset(11, 2)  # max timestamp 11 >= 11
    assert log.offset_for_timestamp(12) == TimestampOffset(21, 4)
    assert log.offset_for_timestamp(991) == TimestampOffset(991, 198)
    assert log.offset_for_timestamp(992) is None
    for target in range(0, 992, 37):
        found = log.offset_for_timestamp(target)
        assert found is not None and found.timestamp >= target > found.timestamp - 10


def test_offset_for_timestamp_with_timestamps_out_of_order(tmp_path):
    log = log_with_timestamps(tmp_path, [500, 100, 700, 300, 900], segment_bytes=300, index_interval_bytes=0)
    assert log.offset_for_timestamp(200) == TimestampOffset(501, 0)
    assert log.offset_for_timestamp(600) == TimestampOffset(701, 4)
    assert log.offset_for_timestamp(800) == TimestampOffset(901, 8)


def test_offset_for_timestamp_ignores_deleted_records(tmp_path):
    log = log_with_timestamps(tmp_path, [100, 200, 300, 400])
    log.delete_records(3)
    assert log.offset_for_timestamp(0) == TimestampOffset(201, 3)  # inside the batch [2, 3]
    log.delete_records(4)
    assert log.offset_for_timestamp(0) == TimestampOffset(301, 4)


def test_offset_for_timestamp_after_reopening(tmp_path):
    log = log_with_timestamps(tmp_path, range(0, 500, 10), segment_bytes=1_000, index_interval_bytes=100)
    log.close()
    log = open_log(tmp_path)
    assert log.offset_for_timestamp(250) == TimestampOffset(251, 50)
    assert open_log(tmp_path / "empty").offset_for_timestamp(0) is None


def test_max_timestamp_is_the_largest_over_all_segments(tmp_path):
    log = log_with_timestamps(tmp_path, [500, 100, 900, 300, 700], segment_bytes=300)
    assert log.segment_count == 5
    assert log.max_timestamp == 901
    log.close()
    assert open_log(tmp_path).max_timestamp == 901
    assert open_log(tmp_path / "empty").max_timestamp is None
    untimed = open_log(tmp_path / "untimed")
    untimed.append(build_batch(1, timestamp=-1))
    assert untimed.max_timestamp is None


def test_iter_batches_yields_each_stored_header(tmp_path):
    log = open_log(tmp_path, segment_bytes=400)
    sizes = []
    for number in range(8):
        batch = build_batch(
            number + 1, timestamp=1_000 * number, producer_id=42, producer_epoch=3, base_sequence=10 * number
        )
        sizes.append(len(batch))
        log.append(batch)
    batches = list(log.iter_batches())
    assert [b.base_offset for b in batches] == [n * (n + 1) // 2 for n in range(8)]
    assert [b.last_offset - b.base_offset + 1 for b in batches] == [n + 1 for n in range(8)]
    assert [b.records_count for b in batches] == [n + 1 for n in range(8)]
    assert [b.max_timestamp for b in batches] == [1_000 * n + n for n in range(8)]
    assert {(b.producer_id, b.producer_epoch) for b in batches} == {(42, 3)}
    assert [b.base_sequence for b in batches] == [10 * n for n in range(8)]
    assert [b.size for b in batches] == sizes
    assert {b.segment_base_offset for b in batches} == {s.base_offset for s in log.segments if s.size_in_bytes}
    for info in batches:
        assert bytes(log.read(info.base_offset, 0))[:8] == info.base_offset.to_bytes(8, "big")
        assert log.read(info.base_offset, 0).position == info.position


def test_iter_batches_from_an_offset_inside_a_batch(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=0)
    for _ in range(5):
        log.append(build_batch(4))
    assert [b.base_offset for b in log.iter_batches(start_offset=9)] == [8, 12, 16]
    assert list(log.iter_batches(start_offset=log.log_end_offset)) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.iter_batches(start_offset=21)
