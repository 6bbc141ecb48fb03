"""Reading by offset, the index files behind it, and the descriptors reads keep open."""

import os
import random
import socket
import struct

import pytest
from log_batches import build_batch, decode, open_descriptors, open_log, same_batch_at

from log import OffsetOutOfRangeError
from log.log import LOADED_SEALED_SEGMENTS


def fill(log, count, records=3, value_size=40):
    """Append `count` batches; returns (base offset, produced bytes) of each."""
    produced = []
    for number in range(count):
        batch = build_batch(records, timestamp=1_000 + number, value_size=value_size)
        produced.append((log.append(batch).base_offset, batch))
    return produced


def test_read_starts_at_the_batch_holding_the_offset(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=300)
    produced = fill(log, 200)
    for base_offset, batch in produced:
        for offset in (base_offset, base_offset + 2):
            records = log.read(offset, 1)
            assert len(records) == len(batch)  # the limit is below one batch: still one whole batch
            assert same_batch_at(bytes(records), batch, base_offset)


def test_read_returns_consecutive_batches_up_to_max_bytes(tmp_path):
    log = open_log(tmp_path)
    produced = fill(log, 10)
    size = len(produced[0][1])
    records = log.read(3, 3 * size + 5)
    data = bytes(records)
    assert len(data) == 3 * size + 5  # the last batch may be cut short, as Kafka does
    for number in range(3):
        base_offset, batch = produced[1 + number]
        assert same_batch_at(data[number * size : (number + 1) * size], batch, base_offset)


def test_without_min_one_batch_a_batch_over_the_limit_is_left_out(tmp_path):
    log = open_log(tmp_path)
    produced = fill(log, 4)
    size = len(produced[0][1])
    assert len(log.read(0, size - 1, min_one_batch=False)) == 0
    assert len(log.read(0, 0, min_one_batch=False)) == 0
    assert len(log.read(0, size, min_one_batch=False)) == size
    assert len(log.read(0, size + 1, min_one_batch=False)) == size + 1


def test_read_stops_at_the_end_of_the_segment(tmp_path):
    log = open_log(tmp_path)
    produced = fill(log, 4)
    log.roll()
    fill(log, 4)
    assert len(log.read(0, 1 << 20)) == sum(len(batch) for _, batch in produced)


def test_read_at_the_log_end_offset_is_empty(tmp_path):
    log = open_log(tmp_path)
    assert bytes(log.read(0, 100)) == b""
    fill(log, 2)
    records = log.read(log.log_end_offset, 100)
    assert len(records) == 0 and bytes(records) == b""


def test_offsets_outside_the_log_are_out_of_range(tmp_path):
    log = open_log(tmp_path)
    fill(log, 3)
    log.delete_records(4)
    for offset in (3, log.log_end_offset + 1, -1):
        with pytest.raises(OffsetOutOfRangeError) as raised:
            log.read(offset, 100)
        assert (raised.value.log_start_offset, raised.value.log_end_offset) == (4, 9)
    assert decode(bytes(log.read(4, 1))).base_offset == 3  # the batch holding offset 4


def test_records_can_be_sent_with_sendfile(tmp_path):
    log = open_log(tmp_path)
    produced = fill(log, 5)
    records = log.read(produced[2][0], 1 << 20)
    sender, receiver = socket.socketpair()
    with sender, receiver:
        sent = os.sendfile(sender.fileno(), records.fileno(), records.position, len(records))
        received = b""
        while len(received) < sent:
            received += receiver.recv(1 << 16)
    assert sent == len(records) and received == bytes(records)


def test_offset_index_is_sparse_by_index_interval_bytes(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=500)
    produced = fill(log, 100)
    log.close()
    index = (tmp_path / "00000000000000000000.index").read_bytes()
    data = (tmp_path / "00000000000000000000.log").read_bytes()
    batch_size = len(produced[0][1])
    entries = list(struct.iter_unpack(">II", index))
    assert entries
    for relative_offset, position in entries:
        assert decode(data[position : position + batch_size]).base_offset == relative_offset
    # Kafka's rule: an entry for the first batch that starts more than index_interval_bytes after
    # the previous entry (or the start of the segment).
    positions = [0] + [position for _, position in entries] + [len(data)]
    gaps = [b - a for a, b in zip(positions, positions[1:])]
    assert all(500 < gap <= 500 + batch_size for gap in gaps[:-1])
    assert gaps[-1] <= 500 + batch_size


def test_time_index_entries_rise_and_end_with_the_largest_timestamp(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=500)
    fill(log, 50)
    log.roll()
    entries = list(struct.iter_unpack(">qI", (tmp_path / "00000000000000000000.timeindex").read_bytes()))
    assert entries == sorted(entries) and len({t for t, _ in entries}) == len(entries)
    assert entries[-1] == (1_000 + 49 + 2, 49 * 3)  # the last batch's max timestamp and base offset


def test_lookups_on_a_log_of_many_segments(tmp_path):
    log = open_log(tmp_path, segment_bytes=4_000, index_interval_bytes=256)
    produced = fill(log, 600)
    assert log.segment_count > 30
    for base_offset, batch in random.Random(1).sample(produced, 100):
        assert same_batch_at(bytes(log.read(base_offset + 1, 0)), batch, base_offset)


def test_reads_of_sealed_segments_keep_few_descriptors_open(tmp_path):
    log = open_log(tmp_path, segment_bytes=2_000)
    produced = fill(log, 100)
    assert log.segment_count > 10
    before = open_descriptors()
    for base_offset, _ in produced:
        bytes(log.read(base_offset, 100))
    list(log.iter_batches())
    # Only the most recently read sealed segments stay open, shared by the reads of each.
    assert open_descriptors() - before == LOADED_SEALED_SEGMENTS
    held = [log.read(base_offset, 100) for base_offset, _ in produced]
    assert len({records.fileno() for records in held}) == log.segment_count
    del held
    log.close()
    assert open_descriptors() < before


def test_records_stay_readable_after_their_segment_is_deleted(tmp_path):
    log = open_log(tmp_path)
    produced = fill(log, 3)
    records = log.read(0, 1 << 20)
    log.roll()
    log.delete_records(log.log_end_offset)
    assert log.apply_retention() == [] and not (tmp_path / "00000000000000000000.log").exists()
    assert same_batch_at(bytes(records)[: len(produced[0][1])], produced[0][1], 0)
