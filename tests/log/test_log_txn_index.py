"""Transaction indexes (.txnindex): aborted transactions per segment, their files across flushes,
rolls, clean and unclean reopens, damage and deletion; and reads that stop at a max offset."""

import logging
import struct
import threading

import pytest
from log_batches import build_batch, open_log, same_batch_at, segment_files

from log import AbortedTxn, OffsetOutOfRangeError

ENTRY = struct.Struct(">hqqqq")
CONFIG = {"segment_bytes": 1_000}


def txn_index(directory, base_offset):
    return directory / f"{base_offset:020d}.txnindex"


def abort(log, first_offset, *, records=2, producer_id=7):
    """Append a batch standing for an ABORT marker and index the transaction it ends; as the
    broker does, its last stable offset is the offset after the marker (nothing else open)."""
    info = log.append(build_batch(records))
    entry = AbortedTxn(producer_id, first_offset, info.last_offset, info.last_offset + 1)
    log.add_aborted_transaction(entry)
    return entry


def fill_with_aborts(log, batches):
    """`batches` batches, every third one ending a transaction begun by the one before it."""
    entries = []
    for number in range(batches):
        if number % 3 == 2:
            entries.append(abort(log, log.log_end_offset - 2))
        else:
            log.append(build_batch(2))
    return entries


def test_entries_are_found_by_the_range_they_overlap(tmp_path):
    log = open_log(tmp_path)
    log.append(build_batch(2))  # offsets 0-1
    first = abort(log, 0)  # marker 2-3
    log.append(build_batch(2))  # 4-5
    second = abort(log, 4)  # marker 6-7
    assert log.aborted_transactions(0, 8) == [first, second]
    assert log.aborted_transactions(0, 4) == [first]  # second starts at the upper bound
    assert log.aborted_transactions(4, 8) == [second]  # first's marker lies below the start
    assert log.aborted_transactions(3, 5) == [first, second]
    assert log.aborted_transactions(8, 8) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.aborted_transactions(9, 10)


def test_a_transaction_spanning_segments_is_found_from_its_first_segment(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    log.append(build_batch(2))
    while log.segment_count < 3:
        log.append(build_batch(2))
    entry = abort(log, 0)
    assert log.segments[-1].base_offset <= entry.last_offset
    assert log.aborted_transactions(0, 2) == [entry]
    assert log.aborted_transactions(entry.last_offset, entry.last_offset + 1) == [entry]
    assert log.aborted_transactions(entry.last_offset + 1, log.log_end_offset) == []


def test_the_search_stops_at_an_entry_whose_last_stable_offset_reaches_the_upper_bound(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    log.append(build_batch(2))
    early = abort(log, 0)
    while log.segment_count < 2:
        log.append(build_batch(2))
    # An entry in a later segment that (falsely) claims to overlap the range: Kafka's search stops
    # before it, as the last stable offset of `early` shows nothing open below it went on.
    late = AbortedTxn(9, 0, log.log_end_offset - 1, log.log_end_offset)
    log.add_aborted_transaction(late)
    assert log.aborted_transactions(0, early.last_stable_offset) == [early]
    assert log.aborted_transactions(0, early.last_stable_offset + 1) == [early, late]


def test_adding_an_entry_again_changes_nothing_and_markers_must_be_in_the_log(tmp_path):
    log = open_log(tmp_path)
    log.append(build_batch(2))
    entry = abort(log, 0)
    log.add_aborted_transaction(entry._replace(producer_id=8))  # same marker: a replay
    assert log.aborted_transactions(0, 10) == [entry]
    for offset in (log.log_end_offset, log.log_end_offset + 5, -1):
        with pytest.raises(OffsetOutOfRangeError):
            log.add_aborted_transaction(entry._replace(last_offset=offset))


def test_files_are_written_by_the_flush_and_hold_kafkas_layout(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    entries = fill_with_aborts(log, 60)
    sealed = log.segments[:-1]
    assert len(sealed) >= 3
    assert not segment_files(tmp_path, ".txnindex")  # nothing written on the appending thread
    log.flush()
    for segment in sealed:
        data = txn_index(tmp_path, segment.base_offset).read_bytes()
        assert len(data) % 34 == 0
        stored = [AbortedTxn(*fields[1:]) for fields in ENTRY.iter_unpack(data)]
        assert {fields[0] for fields in ENTRY.iter_unpack(data)} <= {0}
        assert stored == [e for e in entries if segment.base_offset <= e.last_offset < segment.next_offset]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_clean_reopen_loads_every_entry_without_a_rebuild(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    entries = fill_with_aborts(log, 60)
    log.close()
    assert len(segment_files(tmp_path, ".txnindex")) == log.segment_count
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == log.log_end_offset == 120
    assert log.aborted_transactions(0, 120) == entries
    abort(log, 0)  # the active segment goes on from its file
    log.close()
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == log.log_end_offset
    assert len(log.aborted_transactions(0, log.log_end_offset)) == len(entries) + 1


def test_an_unclean_reopen_resets_the_recovered_segments(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    entries = fill_with_aborts(log, 30)
    log.flush()
    flushed = log.log_end_offset
    entries += fill_with_aborts(log, 30)
    bases = [s.base_offset for s in log.segments]
    del log  # a crash
    log = open_log(tmp_path, **CONFIG)
    assert log.log_end_offset == 120
    # Recovery starts at the segment holding the last flushed offset; its index and later ones are empty.
    recovered_from = max(base for base in bases if base <= flushed)
    assert log.transaction_index_end == recovered_from
    assert log.aborted_transactions(0, 120) == [e for e in entries if e.last_offset < recovered_from]
    # The broker replays from there and adds the entries again (those below are no-ops).
    for entry in entries:
        log.add_aborted_transaction(entry)
    assert log.aborted_transactions(0, 120) == entries
    log.flush()
    del log
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == log.segments[-1].base_offset  # only the active one recovered
    assert log.aborted_transactions(0, log.segments[-1].base_offset) == [
        e for e in entries if e.last_offset < log.segments[-1].base_offset
    ]


def test_a_second_crash_before_the_rebuilt_indexes_are_flushed_resets_them_again(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    fill_with_aborts(log, 30)
    entries = fill_with_aborts(log, 3)
    flushing = log.segments[-1]
    log.flush()  # writes the active segment's index, with the entries so far
    assert txn_index(tmp_path, flushing.base_offset).stat().st_size
    entries += fill_with_aborts(log, 30)
    assert log.segment_count > 4
    del log
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == flushing.base_offset
    for entry in entries:
        log.add_aborted_transaction(entry)
    del log  # before a flush wrote them: the stale file of `flushing` must not be trusted now
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == flushing.base_offset
    assert log.aborted_transactions(flushing.base_offset, log.log_end_offset) == []
    for entry in entries:
        log.add_aborted_transaction(entry)
    log.flush()
    del log
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == log.segments[-1].base_offset
    assert log.aborted_transactions(flushing.base_offset, log.segments[-1].base_offset) == [
        e for e in entries if e.last_offset < log.segments[-1].base_offset
    ]


def test_entries_added_while_another_thread_flushes_survive_a_clean_close(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    stop = threading.Event()
    errors = []

    def flush_repeatedly():
        try:
            while not stop.is_set():
                log.flush()
        except Exception as error:  # reported to the test thread below
            errors.append(error)

    flusher = threading.Thread(target=flush_repeatedly)
    flusher.start()
    try:
        entries = fill_with_aborts(log, 1_500)
    finally:
        stop.set()
        flusher.join()
    assert errors == []
    log.close()
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == log.log_end_offset
    assert log.aborted_transactions(0, log.log_end_offset) == entries


def test_a_roll_right_after_a_flush_finds_the_sealed_index_on_disk(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    while log.segment_count < 2:
        log.append(build_batch(2))
    entry = abort(log, log.log_end_offset)
    active = log.segments[-1]
    log.flush()  # the recovery point moves to the end of the active segment...
    log.roll()
    log.append(build_batch(2))
    del log  # ... which rolled since: after the crash it is trusted, index and all
    log = open_log(tmp_path, **CONFIG)
    assert log.aborted_transactions(active.base_offset, log.log_end_offset) == [entry]
    assert log.transaction_index_end == entry.last_offset + 1  # the new active segment's base


@pytest.mark.parametrize(
    "damage",
    ["missing", "torn", "out of order", "outside the segment", "unknown version"],
)
def test_a_missing_or_unreadable_index_is_reset(tmp_path, caplog, damage):
    log = open_log(tmp_path, **CONFIG)
    entries = fill_with_aborts(log, 60)
    second = log.segments[1]
    log.close()
    path = txn_index(tmp_path, second.base_offset)
    data = path.read_bytes()
    assert len(data) >= 2 * 34
    if damage == "missing":
        path.unlink()
    elif damage == "torn":
        path.write_bytes(data[:-5])
    elif damage == "out of order":
        path.write_bytes(data[34:68] + data[:34] + data[68:])
    elif damage == "outside the segment":
        path.write_bytes(data + ENTRY.pack(0, 7, 0, second.next_offset, second.next_offset + 1))
    else:
        path.write_bytes(data + ENTRY.pack(1, 7, second.next_offset - 2, second.next_offset - 1, second.next_offset))
    with caplog.at_level(logging.WARNING, logger="log.segment"):
        log = open_log(tmp_path, **CONFIG)
    assert (str(path) in caplog.text) == (damage != "missing")
    assert log.transaction_index_end == second.base_offset
    assert log.aborted_transactions(0, log.log_end_offset) == [e for e in entries if not second.base_offset <= e.last_offset < second.next_offset]
    for entry in entries:
        if entry.last_offset >= log.transaction_index_end:
            log.add_aborted_transaction(entry)
    log.close()
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == log.log_end_offset
    assert log.aborted_transactions(0, log.log_end_offset) == entries


def test_a_log_without_index_files_has_all_of_it_rebuilt_once(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    fill_with_aborts(log, 30)
    log.close()
    for path in segment_files(tmp_path, ".txnindex"):
        path.unlink()
    log = open_log(tmp_path, **CONFIG)
    assert log.transaction_index_end == 0
    log.flush()  # the broker added nothing again: no aborted transactions there
    assert len(segment_files(tmp_path, ".txnindex")) == log.segment_count - 1
    log.close()
    assert open_log(tmp_path, **CONFIG).transaction_index_end == 60


def test_leftovers_of_interrupted_writes_and_deletions_are_removed(tmp_path):
    log = open_log(tmp_path)
    fill_with_aborts(log, 3)
    log.close()
    leftovers = [
        tmp_path / "00000000000000000000.txnindex.tmp",
        tmp_path / "00000000000000000099.txnindex",
        tmp_path / "00000000000000000000.txnindex.deleted",
    ]
    for path in leftovers:
        path.write_bytes(b"junk")
    log = open_log(tmp_path)
    assert log.transaction_index_end == log.log_end_offset
    assert not any(path.exists() for path in leftovers)


def test_retention_and_delete_records_remove_the_index_files(tmp_path):
    log = open_log(tmp_path, **CONFIG, retention_bytes=2_500, file_delete_delay_ms=0)
    entries = fill_with_aborts(log, 60)
    log.flush()
    bases = [s.base_offset for s in log.segments]
    deleted = log.apply_retention()
    assert deleted
    log.remove_deleted_files()
    for segment in deleted:
        assert not txn_index(tmp_path, segment.base_offset).exists()
    start = log.segments[1].base_offset + 1
    log.delete_records(start)
    log.remove_deleted_files()
    files = set(segment_files(tmp_path, ".txnindex"))
    assert {txn_index(tmp_path, s.base_offset) for s in log.segments[:-1]} <= files
    assert files <= {txn_index(tmp_path, s.base_offset) for s in log.segments}
    assert len(files) < len(bases) - 1
    assert not list(tmp_path.glob("*.deleted"))
    assert log.aborted_transactions(start, log.log_end_offset) == [e for e in entries if e.last_offset >= start]


def test_read_stops_before_the_batch_at_max_offset(tmp_path):
    log = open_log(tmp_path, **CONFIG)
    produced = []
    for _ in range(40):
        batch = build_batch(2)
        produced.append((log.append(batch).base_offset, batch))
    size = len(produced[0][1])
    active = log.segments[-1]
    sealed = log.segments[0]
    for offset, max_offset in [
        (0, 2),
        (0, 10),
        (1, 10),  # the batch holding the offset starts below it
        (4, sealed.next_offset),  # the segment's end: nothing to cut
        (4, sealed.next_offset + 10),  # beyond this segment
        (active.base_offset, active.base_offset + 4),  # inside the active segment
        (active.base_offset + 2, log.log_end_offset),
        (log.log_end_offset - 2, log.log_end_offset),
        (0, 10**9),
    ]:
        records = bytes(log.read(offset, 10**6, max_offset=max_offset))
        segment_end = min(s.next_offset for s in log.segments if s.next_offset > offset)
        wanted = [(b, p) for b, p in produced if b + 1 >= offset and b < min(max_offset, segment_end)]
        assert len(records) == len(wanted) * size, (offset, max_offset)
        for number, (base_offset, batch) in enumerate(wanted):
            assert same_batch_at(records[number * size : (number + 1) * size], batch, base_offset)
    # max_bytes still cuts first, and a max offset inside the first batch keeps that batch whole.
    assert len(log.read(0, 3 * size + 5, max_offset=10)) == 3 * size + 5
    assert len(log.read(0, 1, max_offset=1)) == size
    for offset, max_offset in [(4, 4), (5, 4), (4, 0), (log.log_end_offset, log.log_end_offset)]:
        assert len(log.read(offset, 10**6, max_offset=max_offset)) == 0
    with pytest.raises(OffsetOutOfRangeError):
        log.read(log.log_end_offset + 1, 100, max_offset=0)


def test_a_reads_upper_bound_is_the_first_indexed_offset_past_its_bytes(tmp_path):
    # An index entry for every batch, so the bound is the very next batch's offset.
    log = open_log(tmp_path, index_interval_bytes=0, **CONFIG)
    for _ in range(6):
        log.append(build_batch(2))
    assert log.segment_count == 1
    batch_size = len(bytes(log.read(0, 1_000_000))) // 6
    # Two whole batches (offsets 0-3), then one cut short (4-5): nothing of it reaches offset 6.
    records = log.read(0, 2 * batch_size + 5)
    assert log.fetch_upper_bound(0, records) == 6
    records = log.read(2, 2 * batch_size)
    assert log.fetch_upper_bound(2, records) == 6
    # Read to the end of the segment: its next offset.
    assert log.fetch_upper_bound(0, log.read(0, 1_000_000)) == log.log_end_offset


def test_a_far_behind_read_committed_fetch_is_named_only_the_aborts_it_reads(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=0)
    entries = fill_with_aborts(log, 30)
    records = log.read(0, len(bytes(log.read(0, 1_000_000))) // 10)
    upper_bound = log.fetch_upper_bound(0, records)
    assert upper_bound < log.log_end_offset
    found = log.aborted_transactions(0, upper_bound)
    assert found == [entry for entry in entries if entry.first_offset < upper_bound]
    assert len(found) < len(entries)
