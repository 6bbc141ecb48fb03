"""Rolling segments, retention by size and age, and DeleteRecords."""

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from log_batches import Clock, build_batch, open_log, segment_files

from log import OffsetOutOfRangeError

DAY_MS = 24 * 3600 * 1000


def test_segments_roll_when_the_next_batch_would_not_fit(tmp_path):
    batch = build_batch(value_size=300)
    log = open_log(tmp_path, segment_bytes=3 * len(batch) + 10)
    for _ in range(7):
        log.append(batch)
    assert [(s.base_offset, s.next_offset) for s in log.segments] == [(0, 3), (3, 6), (6, 7)]
    assert all(s.size_in_bytes <= 3 * len(batch) + 10 for s in log.segments)
    assert [p.name for p in segment_files(tmp_path, ".log")] == [
        "00000000000000000000.log",
        "00000000000000000003.log",
        "00000000000000000006.log",
    ]
    assert len(segment_files(tmp_path, ".index")) == len(segment_files(tmp_path, ".timeindex")) == 2


def test_segments_roll_by_age_of_their_first_batch(tmp_path):
    log = open_log(tmp_path, segment_ms=DAY_MS)
    log.append(build_batch(timestamp=10 * DAY_MS))
    log.append(build_batch(timestamp=11 * DAY_MS))  # exactly segment_ms later: not yet
    log.append(build_batch(timestamp=11 * DAY_MS + 1))
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_segments_without_timestamps_roll_by_the_clock(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock, segment_ms=1_000)
    log.append(build_batch(timestamp=-1))
    clock.now += 1_001
    log.append(build_batch(timestamp=-1))
    assert log.segment_count == 2


def test_segments_roll_when_an_index_is_full(tmp_path):
    # Room for three offset index entries (8 bytes each) but two time index entries (12 bytes).
    # The first batch of a segment is never indexed, later ones all are (index_interval_bytes=0).
    same_time = open_log(tmp_path / "a", segment_index_bytes=8 * 3 + 4, index_interval_bytes=0)
    rising_time = open_log(tmp_path / "b", segment_index_bytes=8 * 3 + 4, index_interval_bytes=0)
    for number in range(10):
        same_time.append(build_batch())
        rising_time.append(build_batch(timestamp=1_000 + number))
    # Equal timestamps add no time index entries: the offset index fills after four batches.
    assert [s.base_offset for s in same_time.segments] == [0, 4, 8]
    assert [s.base_offset for s in rising_time.segments] == [0, 3, 6, 9]


def test_segments_roll_before_relative_offsets_overflow(tmp_path):
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )
    builder.append((1 << 30) - 1, timestamp=1_000, key=None, value=b"x", headers=[])
    wide = bytes(builder.build())  # one record, lastOffsetDelta 2**30 - 1
    log = open_log(tmp_path)
    log.append(wide)
    log.append(wide)
    log.append(wide)
    assert [s.base_offset for s in log.segments] == [0, 2 << 30]


def test_explicit_roll_starts_a_segment_unless_the_active_one_is_empty(tmp_path):
    log = open_log(tmp_path)
    log.roll()
    assert log.segment_count == 1
    log.append(build_batch(2))
    log.roll()
    log.roll()
    assert [s.base_offset for s in log.segments] == [0, 2]
    assert log.append(build_batch()).base_offset == 2


def segmented_log(tmp_path, clock=None, count=5, **config):
    """A log of `count` full segments plus an active one; batch i has timestamp i days."""
    batch_size = len(build_batch(value_size=100))
    log = open_log(tmp_path, clock, segment_bytes=2 * batch_size, **config)
    for day in range(2 * count + 1):
        log.append(build_batch(value_size=100, timestamp=day * DAY_MS))
    assert log.segment_count == count + 1
    return log


def test_retention_by_size_deletes_the_oldest_segments(tmp_path):
    log = segmented_log(tmp_path, retention_bytes=1)
    sizes = [s.size_in_bytes for s in log.segments]
    deleted = log.apply_retention()
    assert [s.base_offset for s in deleted] == [0, 2, 4, 6, 8]
    assert [s.size_in_bytes for s in deleted] == sizes[:-1]
    assert [s.base_offset for s in log.segments] == [10]  # never the active segment
    assert log.log_start_offset == 10
    assert len(segment_files(tmp_path, ".log")) == 1 and len(segment_files(tmp_path, ".index")) == 0


def test_deleted_segments_files_are_renamed_then_removed_apart(tmp_path):
    log = segmented_log(tmp_path, retention_bytes=1, file_delete_delay_ms=0)
    log.apply_retention()
    # Out of the log at once, unlinked later (in a worker thread, by the broker).
    assert len(segment_files(tmp_path, ".deleted")) == 15
    log.remove_deleted_files()
    assert segment_files(tmp_path, ".deleted") == []
    assert [p.name for p in segment_files(tmp_path, ".log")] == ["00000000000000000010.log"]


def test_deleted_files_left_by_a_crash_or_a_close_are_removed(tmp_path):
    log = segmented_log(tmp_path, retention_bytes=1)
    log.delete_records(5)
    assert len(segment_files(tmp_path, ".deleted")) == 6
    log = open_log(tmp_path)  # a crash before they were removed
    assert segment_files(tmp_path, ".deleted") == []
    log.delete_records(log.segments[1].base_offset)
    log.close()
    assert segment_files(tmp_path, ".deleted") == []


def test_retention_by_size_keeps_at_least_retention_bytes(tmp_path):
    log = segmented_log(tmp_path)
    segment = log.segments[0].size_in_bytes
    log = segmented_log(tmp_path / "limited", retention_bytes=log.size_in_bytes - segment - 1)
    assert [s.base_offset for s in log.apply_retention()] == [0]
    assert log.size_in_bytes >= log.config.retention_bytes


def test_retention_by_age_goes_by_each_segments_largest_timestamp(tmp_path):
    log = segmented_log(tmp_path, retention_ms=3 * DAY_MS)
    # Segment [2, 3] holds days 2 and 3: older than three days at day 6 + 1 ms, not at day 6.
    assert [s.base_offset for s in log.apply_retention(6 * DAY_MS)] == [0]
    assert [s.base_offset for s in log.apply_retention(6 * DAY_MS + 1)] == [2]
    assert [s.base_offset for s in log.apply_retention(100 * DAY_MS)] == [4, 6, 8]
    assert log.log_start_offset == 10
    with pytest.raises(OffsetOutOfRangeError):
        log.read(9, 100)


def test_retention_uses_the_clock_and_can_be_disabled(tmp_path):
    clock = Clock(100 * DAY_MS)
    assert segmented_log(tmp_path / "a", clock).apply_retention() != []
    assert segmented_log(tmp_path / "b", clock, retention_ms=-1).apply_retention() == []


def test_delete_records_moves_the_log_start_offset_inside_a_segment(tmp_path):
    log = segmented_log(tmp_path)
    assert log.delete_records(5) == 5
    assert [s.base_offset for s in log.segments] == [4, 6, 8, 10]  # wholly-deleted segments go at once
    assert log.delete_records(3) == 5  # never backwards
    with pytest.raises(OffsetOutOfRangeError):
        log.read(4, 100)
    assert log.read(5, 1).position == log.read(4 + 1, 1).position
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records(log.log_end_offset + 1)


def test_delete_records_up_to_the_log_end_offset_empties_the_log(tmp_path):
    log = segmented_log(tmp_path)
    end = log.log_end_offset
    assert log.delete_records(end) == end
    assert log.segment_count == 1 and bytes(log.read(end, 100)) == b""
    assert log.append(build_batch()).base_offset == end


def test_the_log_start_offset_is_durable_once_flushed(tmp_path):
    log = segmented_log(tmp_path)
    first_segment_end = log.segments[0].next_offset
    log.delete_records(first_segment_end + 1)
    log = open_log(tmp_path)  # not flushed: a crash keeps the segments deletion left, no more
    assert log.log_start_offset == first_segment_end
    log.delete_records(first_segment_end + 1)
    log.flush()
    log = open_log(tmp_path)
    assert log.log_start_offset == first_segment_end + 1


def test_the_log_start_offset_survives_reopening(tmp_path):
    log = segmented_log(tmp_path)
    log.delete_records(7)
    log.close()
    log = open_log(tmp_path)
    assert log.log_start_offset == 7
    log.apply_retention()  # retention alone needs no checkpoint: the first segment says it
    log = open_log(tmp_path)  # not closed: a crash
    assert log.log_start_offset == 7


def test_a_log_start_offset_beyond_what_survived_a_crash_starts_the_log_there(tmp_path):
    log = open_log(tmp_path)
    log.append(build_batch(3))
    log.flush()
    log.append(build_batch(3))
    log.delete_records(6)
    log.flush()  # the log start offset is durable from here on
    segment = tmp_path / "00000000000000000000.log"
    with open(segment, "r+b") as file:  # a crash that lost the second batch all the same
        file.truncate(segment.stat().st_size // 2)
    log = open_log(tmp_path)
    assert (log.log_start_offset, log.log_end_offset) == (6, 6)
    assert [p.name for p in segment_files(tmp_path, ".log")] == ["00000000000000000006.log"]
    assert log.append(build_batch()).base_offset == 6
