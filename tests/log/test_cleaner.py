"""The log cleaner on real segment files: what a pass keeps, its bounded key map, transactions,
producers' last batches, and crash safety at every rename of a swap. Cleaned batches are read back
with kafka-python's decoder, as a client reads them."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
import tracemalloc

import pytest
from kafka.record.default_records import DefaultRecordBatch

from log import AbortedTxn, Log, LogConfig
from log.cleaner import LastRecord, OffsetMap, clean
from protocol.records import ControlType, Record, build_batch, build_control_batch
from tests.log.log_batches import Clock

DAY_MS = 24 * 60 * 60 * 1000


def open_log(directory, clock, **config) -> Log:
    settings = {"segment_bytes": 600, "compact": True, "min_cleanable_dirty_ratio": 0.0, **config}
    return Log(directory, LogConfig(**settings), clock=clock)


def put(log: Log, key: bytes | None, value: bytes | None, clock: Clock, **batch) -> int:
    return log.append(build_batch([Record(key, value, (), clock.now)], **batch)).base_offset


def stored(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record, read as a consumer from the beginning reads them."""
    found = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = bytes(log.read(offset, 1 << 20))
        if not data:
            break
        position = 0
        while position < len(data):
            size = int.from_bytes(data[position + 8 : position + 12], "big") + 12
            if position + size > len(data):
                break  # cut short by the read's size, as a fetch's last batch may be: read on from it
            batch = DefaultRecordBatch(data[position : position + size])
            assert batch.validate_crc()
            if not batch.is_control_batch:
                found += [(record.offset, record.key, record.value) for record in batch]
            offset = batch.base_offset + batch.last_offset_delta + 1
            position += size
    return found


def latest(written: list[tuple[int, bytes, bytes | None]]) -> list[tuple[int, bytes, bytes | None]]:
    last = {}
    for offset, key, value in written:
        last[key] = (offset, key, value)
    return sorted(last.values())


def run_pass(log: Log, *, producers=None, buffer_bytes=1 << 20, last_stable_offset=None) -> bool:
    plan = log.cleaning_plan(log.log_end_offset if last_stable_offset is None else last_stable_offset,
                             producers or {}, buffer_bytes)
    if plan is None:
        return False
    assert log.replace_segments(clean(plan))
    return True


def overwrite(log: Log, clock: Clock, count: int, keys: int) -> list[tuple[int, bytes, bytes]]:
    written = []
    for number in range(count):
        key, value = b"k%d" % (number % keys), b"v%d" % number
        written.append((put(log, key, value, clock), key, value))
        clock.now += 1
    return written


def test_keeps_the_latest_record_of_each_key_in_offset_order(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock)
    written = overwrite(log, clock, 200, 7)
    log.roll()
    segments_before = log.segment_count
    assert run_pass(log)
    expected = latest(written)
    assert stored(log) == expected
    assert log.log_end_offset == written[-1][0] + 1  # offsets kept: the log goes on where it was
    assert not run_pass(log)  # nothing dirty is left
    written.append((put(log, b"k0", b"after", clock), b"k0", b"after"))
    log.roll()
    assert run_pass(log)
    assert log.segment_count <= 2 < segments_before  # the small cleaned segments merged
    log.close()
    reopened = open_log(tmp_path, clock)
    assert stored(reopened) == latest(written)
    assert reopened.first_dirty_offset == reopened.log_end_offset


def test_batches_across_the_cleaners_read_chunks_are_read_whole(tmp_path):
    # 60 KB batches in 4 MiB segments: several run past the end of a 1 MiB read of their segment.
    clock = Clock()
    log = open_log(tmp_path, clock, segment_bytes=4 << 20)
    written = []
    for n in range(160):
        key = b"k%d" % (n % 40)
        value = bytes([n % 251]) * 60_000
        written.append((put(log, key, value, clock), key, value))
    log.roll()
    assert run_pass(log)
    assert stored(log) == latest(written)


def test_a_swap_group_by_group_keeps_every_latest_record_readable_between_groups(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock)
    written = overwrite(log, clock, 300, 7)
    log.roll()
    result = clean(log.cleaning_plan(log.log_end_offset, {}, 1 << 20))
    assert len(result.groups) >= 3
    seen = []
    for swapped in log.swap_in_groups(result):
        assert swapped
        between = stored(log)
        # Some groups cleaned, the rest not yet: never a latest record missing, never one out of order.
        assert set(latest(written)) <= set(between) <= set(written)
        assert between == sorted(between)
        seen.append(len(between))
    assert len(seen) == len(result.groups) and seen == sorted(seen, reverse=True)
    assert stored(log) == latest(written)
    assert log.first_dirty_offset == log.log_end_offset


def test_never_touches_the_active_segment(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock, segment_bytes=1 << 20)
    overwrite(log, clock, 50, 2)
    assert not run_pass(log)  # all in the active segment
    assert len(stored(log)) == 50


def test_tombstones_go_after_delete_retention_ms(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock, delete_retention_ms=DAY_MS)
    put(log, b"gone", b"value", clock)
    written = overwrite(log, clock, 20, 3)
    tombstone = put(log, b"gone", None, clock)
    log.roll()
    assert run_pass(log)
    assert (tombstone, b"gone", None) in stored(log)  # kept: its horizon is a day away
    clock.now += DAY_MS - 100
    put(log, b"k0", b"dirty", clock)
    log.roll()
    assert run_pass(log)
    assert (tombstone, b"gone", None) in stored(log)
    clock.now += 200
    put(log, b"k1", b"dirty again", clock)
    log.roll()
    assert run_pass(log)
    remaining = stored(log)
    assert all(key != b"gone" for _, key, _ in remaining)
    assert {key for _, key, _ in remaining} == {key for _, key, _ in written}


def test_a_full_key_map_cleans_what_it_mapped_and_the_next_pass_the_rest(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock)
    written = overwrite(log, clock, 120, 40)
    log.roll()
    small = 10 * OffsetMap.ENTRY_BYTES  # ten keys
    passes = 0
    while run_pass(log, buffer_bytes=small):
        passes += 1
        assert passes < 20
    assert passes > 1
    assert stored(log) == latest(written)


def test_offset_map_memory_stays_within_its_buffer():
    buffer_bytes = 4 * 1024 * 1024
    tracemalloc.start()
    try:
        offset_map = OffsetMap(buffer_bytes)
        key = 0
        while offset_map.put(b"key-%d-of-a-long-name-that-is-hashed" % key if key % 2 else b"k%d" % key,
                             1_000_000 + key):
            key += 1
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(offset_map) == offset_map.capacity
    assert size <= buffer_bytes
    assert size > buffer_bytes / 2  # ENTRY_BYTES is not wildly above the real cost either


def test_a_pass_process_reports_its_own_peak_memory_not_its_parents(tmp_path):
    # Run as the broker runs it, from a parent 400 MB larger than any pass of this log needs.
    clock = Clock()
    log = open_log(tmp_path, clock)
    overwrite(log, clock, 200, 10)
    log.roll()
    plan = log.cleaning_plan(log.log_end_offset, {}, 1 << 20)
    ballast = b"\x01" * (400 << 20)
    passed = subprocess.run([sys.executable, "-m", "log.cleaner"], input=pickle.dumps(plan),
                            capture_output=True, check=True, cwd=tmp_path)
    del ballast
    result = pickle.loads(passed.stdout)
    assert result.records_read == 200
    assert 0 < result.peak_memory_bytes < 200 << 20


def test_keyless_records_are_removed(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock)
    put(log, None, b"no key", clock)
    written = overwrite(log, clock, 30, 2)
    log.roll()
    assert run_pass(log)
    assert stored(log) == latest(written)


def test_aborted_transactions_are_removed_and_committed_ones_kept(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock, delete_retention_ms=1000)
    txn = {"transactional": True, "producer_epoch": 0}
    aborted_first = put(log, b"a", b"aborted", clock, producer_id=1, **txn)
    committed = put(log, b"c", b"committed", clock, producer_id=2, **txn)
    abort = log.append(build_control_batch(ControlType.ABORT, producer_id=1, producer_epoch=0,
                                           coordinator_epoch=0, timestamp=clock.now)).base_offset
    log.add_aborted_transaction(AbortedTxn(1, aborted_first, abort, committed))
    log.append(build_control_batch(ControlType.COMMIT, producer_id=2, producer_epoch=0, coordinator_epoch=0,
                                   timestamp=clock.now))
    plain = overwrite(log, clock, 20, 2)
    log.roll()
    assert run_pass(log)
    assert stored(log) == [(committed, b"c", b"committed"), *latest(plain)]
    # The ABORT marker stays while its transaction had batches in the pass, with its index entry.
    assert log.aborted_transactions(0, log.log_end_offset) == [AbortedTxn(1, aborted_first, abort, committed)]
    for _ in range(3):  # then it gets a horizon, which passes
        clock.now += 2000
        put(log, b"k0", b"more", clock)
        log.roll()
        assert run_pass(log)
    markers = [b for b in log.iter_batches() if b.attributes & 0x20]
    assert [m.producer_id for m in markers] == [2]  # the COMMIT stays while its data does
    assert log.aborted_transactions(0, log.log_end_offset) == []


def test_an_active_producers_last_batch_is_kept_empty(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock)
    last = put(log, b"k0", b"idempotent", clock, producer_id=9, producer_epoch=3, base_sequence=41)
    overwrite(log, clock, 20, 1)  # supersedes its record
    log.roll()
    assert run_pass(log, producers={9: LastRecord(last, 3)})
    kept = [b for b in log.iter_batches() if b.producer_id == 9]
    assert [(b.base_offset, b.last_offset, b.producer_epoch, b.base_sequence, b.records_count) for b in kept] == [
        (last, last, 3, 41, 0)]
    assert all(offset != last for offset, _, _ in stored(log))


def test_a_read_holding_a_replaced_segment_keeps_its_bytes(tmp_path):
    clock = Clock()
    log = open_log(tmp_path, clock)
    overwrite(log, clock, 100, 3)
    log.roll()
    held = log.read(0, 1 << 20)
    before = bytes(held)
    assert run_pass(log)
    assert bytes(held) == before
    assert bytes(log.read(0, 1 << 20)) != before


class _Crash(Exception):
    pass


# A pass over this many records has RENAMES renames (three segments of one group each).
SWAPPED_RECORDS = 20
RENAMES = 36


def test_the_crash_test_crashes_at_every_rename(tmp_path):
    assert _renames_of_a_pass(tmp_path) == RENAMES


def _renames_of_a_pass(tmp_path) -> int:
    clock = Clock()
    log = open_log(tmp_path, clock)
    overwrite(log, clock, SWAPPED_RECORDS, 4)
    log.roll()
    plan = log.cleaning_plan(log.log_end_offset, {}, 1 << 20)
    result = clean(plan)
    count = 0
    original = pathlib.Path.rename

    def counting(self, target):
        nonlocal count
        count += 1
        return original(self, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pathlib.Path, "rename", counting)
        log.replace_segments(result)
    return count


@pytest.mark.parametrize("crash_at", range(RENAMES))
def test_a_crash_at_any_rename_of_a_swap_reopens_old_or_new(tmp_path, crash_at):
    clock = Clock()
    log = open_log(tmp_path, clock)
    written = overwrite(log, clock, SWAPPED_RECORDS, 4)
    log.roll()
    old = stored(log)
    result = clean(log.cleaning_plan(log.log_end_offset, {}, 1 << 20))
    renames = 0
    original = pathlib.Path.rename

    def crashing(self, target):
        nonlocal renames
        if renames == crash_at:
            raise _Crash
        renames += 1
        return original(self, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pathlib.Path, "rename", crashing)
        try:
            log.replace_segments(result)
        except _Crash:
            pass
    del log  # as a kill -9 leaves it: nothing closed
    reopened = open_log(tmp_path, clock)
    after = stored(reopened)
    # Each group of segments is the old one or its cleaned one: nothing lost, nothing made up.
    assert set(after) <= set(old) and after == sorted(after)
    assert latest(after) == latest(written)
    assert put(reopened, b"k0", b"on", clock) == written[-1][0] + 1
    assert not [p.name for p in tmp_path.iterdir() if ".cleaned" in p.name or ".swap" in p.name]
