"""Flushing (also from another thread), clean shutdown, and recovery after a crash."""

import struct
import threading

import pytest
from log_batches import Clock, build_batch, decode, open_log, same_batch_at, segment_files

from log import CorruptLogError, LogStorageError

SEGMENT_0 = "00000000000000000000"


def append_all(log, count, **batch):
    produced = []
    for _ in range(count):
        payload = build_batch(2, **batch)
        produced.append((log.append(payload).base_offset, payload))
    return produced


def assert_readable(log, produced):
    for base_offset, batch in produced:
        assert same_batch_at(bytes(log.read(base_offset, 0)), batch, base_offset)


def test_flush_makes_everything_appended_durable(tmp_path):
    log = open_log(tmp_path)
    assert (log.flushed_offset, log.unflushed_messages) == (0, 0)
    append_all(log, 3)
    assert (log.flushed_offset, log.unflushed_messages) == (0, 6)
    assert log.flush() == 6
    assert (log.flushed_offset, log.unflushed_messages) == (6, 0)


def test_needs_flush_follows_flush_messages_and_flush_ms(tmp_path):
    clock = Clock()
    by_count = open_log(tmp_path / "count", clock, flush_messages=5)
    by_time = open_log(tmp_path / "time", clock, flush_ms=1_000)
    never = open_log(tmp_path / "default", clock)
    for log in (by_count, by_time, never):
        append_all(log, 2)
    assert not by_count.needs_flush() and not by_time.needs_flush()
    append_all(by_count, 1)
    assert by_count.needs_flush()
    clock.now += 1_000
    assert by_time.needs_flush() and by_time.needs_flush(clock.now - 1) is False
    clock.now += 10**12
    assert not never.needs_flush()
    by_time.flush()
    assert not by_time.needs_flush()


def test_flush_in_another_thread_while_appending_and_rolling(tmp_path):
    log = open_log(tmp_path, segment_bytes=2_000)
    stop = threading.Event()
    seen, errors = [], []

    def flush_repeatedly():
        try:
            while not stop.is_set():
                seen.append(log.flush())
        except Exception as error:  # reported to the test thread below
            errors.append(error)

    flusher = threading.Thread(target=flush_repeatedly)
    flusher.start()
    try:
        produced = append_all(log, 1_500)
    finally:
        stop.set()
        flusher.join()
    assert errors == []
    assert seen == sorted(seen) and seen[-1] <= log.log_end_offset
    assert log.segment_count > 50
    assert log.flush() == log.log_end_offset
    del log  # a crash after the flush loses nothing
    log = open_log(tmp_path)
    assert log.log_end_offset == 3_000
    assert_readable(log, produced[::50])


def test_close_leaves_a_marker_that_the_first_change_removes(tmp_path):
    log = open_log(tmp_path)
    append_all(log, 2)
    log.close()
    marker = tmp_path / "clean-shutdown"
    assert marker.exists()
    log = open_log(tmp_path)
    assert marker.exists() and log.flushed_offset == log.log_end_offset == 4
    bytes(log.read(0, 100))
    assert marker.exists()
    append_all(log, 1)
    assert not marker.exists()


def garble(path, position, length=None):
    """Flip every bit of the bytes from `position` (to the end of the file by default)."""
    data = bytearray(path.read_bytes())
    end = len(data) if length is None else position + length
    for number in range(position, end):
        data[number] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_clean_reopen_trusts_the_files_and_an_unclean_one_validates_them(tmp_path):
    log = open_log(tmp_path)
    produced = append_all(log, 10, value_size=50)
    size = len(produced[0][1])
    log.close()
    garble(tmp_path / f"{SEGMENT_0}.log", 4 * size + 30, 1)  # inside batch 4's records
    log = open_log(tmp_path)
    assert log.log_end_offset == 20  # no scan of the batches before the last index entry
    log.close()
    (tmp_path / "clean-shutdown").unlink()
    log = open_log(tmp_path)
    # The CRC of batch 4 fails; the valid batch after it shows the damage is no torn tail: kept.
    assert log.log_end_offset == 20
    assert_readable(log, produced[:4] + produced[5:])
    with pytest.raises(CorruptLogError) as raised:
        log.read(8, 100)
    assert (raised.value.position, raised.value.offset, raised.value.resume_offset) == (4 * size, 8, 10)
    assert (tmp_path / f"{SEGMENT_0}.log").stat().st_size == 10 * size


@pytest.mark.parametrize("cut", [1, 30, 61, 62, 100])
def test_a_torn_tail_is_cut_at_the_last_whole_batch(tmp_path, cut):
    log = open_log(tmp_path, index_interval_bytes=100)
    produced = append_all(log, 20)
    size = len(produced[0][1])
    del log
    segment = tmp_path / f"{SEGMENT_0}.log"
    with open(segment, "r+b") as file:
        file.truncate(19 * size + cut % size)
    log = open_log(tmp_path)
    assert log.log_end_offset == 38
    assert_readable(log, produced[:19])
    assert log.append(build_batch()).base_offset == 38


def test_recovery_cuts_at_the_batch_where_garbage_starts(tmp_path):
    log = open_log(tmp_path)
    produced = append_all(log, 20)
    size = len(produced[0][1])
    del log
    for position in (15 * size + 13, 12 * size, 10 * size + 3):  # leader epoch, base offset, length
        garble(tmp_path / f"{SEGMENT_0}.log", position)
        log = open_log(tmp_path)
        assert log.log_end_offset == 2 * (position // size)
        assert_readable(log, produced[: position // size])
        del log


def test_recovery_refuses_batches_whose_offsets_run_backwards(tmp_path):
    log = open_log(tmp_path)
    produced = append_all(log, 5)
    size = len(produced[0][1])
    del log
    segment = tmp_path / f"{SEGMENT_0}.log"
    original = segment.read_bytes()
    data = bytearray(original)
    struct.pack_into(">q", data, 3 * size, 5)  # baseOffset is outside the CRC: only the offsets show
    segment.write_bytes(bytes(data))
    log = open_log(tmp_path)
    assert log.log_end_offset == 10  # the valid batch after it is kept
    with pytest.raises(CorruptLogError) as raised:
        log.read(6, 100)
    assert (raised.value.offset, raised.value.resume_offset) == (6, 8)
    del log
    data = bytearray(original)
    struct.pack_into(">q", data, 4 * size, 3)  # in the last batch nothing valid follows: cut
    segment.write_bytes(bytes(data))
    assert open_log(tmp_path).log_end_offset == 8


def test_gaps_between_batches_are_no_damage(tmp_path):
    """A cleaned log has gaps where the cleaner removed batches: recovery keeps what follows one,
    and a read from inside it starts at the next batch."""
    log = open_log(tmp_path)
    produced = append_all(log, 5)
    size = len(produced[0][1])
    del log
    segment = tmp_path / f"{SEGMENT_0}.log"
    data = bytearray(segment.read_bytes())
    struct.pack_into(">q", data, 4 * size, 20)  # the last batch moves from offsets 8-9 to 20-21
    segment.write_bytes(bytes(data))
    log = open_log(tmp_path)
    assert log.log_end_offset == 22
    records = bytes(log.read(9, 10_000))
    assert struct.unpack_from(">q", records)[0] == 20 and len(records) == size


def test_recovery_of_several_unflushed_segments(tmp_path):
    log = open_log(tmp_path, segment_bytes=1_000)
    produced = append_all(log, 60)
    segments = [s.base_offset for s in log.segments]
    assert len(segments) > 4
    del log
    for suffix in (".index", ".timeindex"):
        for path in segment_files(tmp_path, suffix):
            path.unlink()
    log = open_log(tmp_path)
    assert [s.base_offset for s in log.segments] == segments
    assert_readable(log, produced)
    assert len(segment_files(tmp_path, ".index")) == len(segments) - 1  # the active one's on close


def test_an_invalid_batch_in_an_earlier_segment_keeps_the_later_segments(tmp_path):
    log = open_log(tmp_path, segment_bytes=1_000)
    produced = append_all(log, 40)
    second, third = log.segments[1], log.segments[2]
    del log
    garble(tmp_path / f"{second.base_offset:020d}.log", len(produced[0][1]) + 10)  # its second batch on
    log = open_log(tmp_path)
    assert log.log_end_offset == 80
    unreadable = range(second.base_offset + 2, third.base_offset)
    assert_readable(log, [p for p in produced if p[0] not in unreadable])
    with pytest.raises(CorruptLogError) as raised:
        log.read(unreadable[0], 100)
    assert (raised.value.offset, raised.value.resume_offset) == (unreadable[0], third.base_offset)


def test_recovery_starts_at_the_segment_of_the_last_flush(tmp_path):
    log = open_log(tmp_path, segment_bytes=1_000)
    append_all(log, 30)
    log.flush()
    append_all(log, 3)
    del log
    # Damage in a segment that was flushed goes unnoticed by recovery: it does not read it again.
    garble(tmp_path / f"{SEGMENT_0}.log", 70, 1)
    assert open_log(tmp_path).log_end_offset == 66
    # Nor when its indexes must be rebuilt: the damage is reported with the file and byte on read.
    (tmp_path / f"{SEGMENT_0}.index").unlink()
    log = open_log(tmp_path)
    assert log.log_end_offset == 66
    with pytest.raises(CorruptLogError) as raised:
        log.read(0, 100)
    assert raised.value.path == str(tmp_path / f"{SEGMENT_0}.log")
    assert raised.value.position == 0  # the first batch is the damaged one
    assert f"{SEGMENT_0}.log at byte 0" in str(raised.value)


def test_missing_and_damaged_index_files_are_rebuilt(tmp_path):
    config = {"segment_bytes": 1_000, "index_interval_bytes": 100}
    log = open_log(tmp_path, **config)
    produced = append_all(log, 30)
    log.close()
    originals = {path.name: path.read_bytes() for path in segment_files(tmp_path, "index")}
    indexes = sorted(originals)
    (tmp_path / indexes[0]).unlink()
    (tmp_path / indexes[1]).write_bytes(b"\x00" * 7)  # not whole entries
    (tmp_path / indexes[2]).write_bytes(originals[indexes[2]] + struct.pack(">II", 10**6, 10**6))
    log = open_log(tmp_path, **config)
    assert_readable(log, produced)
    log.close()
    assert {path.name: path.read_bytes() for path in segment_files(tmp_path, "index")} == originals


def test_a_damaged_checkpoint_is_reported_with_its_file(tmp_path):
    log = open_log(tmp_path)
    append_all(log, 2)
    log.delete_records(1)
    log.close()
    (tmp_path / "log-start-offset.checkpoint").write_text("0\nseven\n")
    with pytest.raises(CorruptLogError) as raised:
        open_log(tmp_path)
    assert raised.value.path == str(tmp_path / "log-start-offset.checkpoint")


def test_leftovers_of_interrupted_operations_are_removed(tmp_path):
    log = open_log(tmp_path)
    append_all(log, 2)
    log.close()
    leftovers = [tmp_path / "00000000000000000099.index", tmp_path / "log-start-offset.checkpoint.tmp"]
    for path in leftovers:
        path.write_bytes(b"junk")
    assert open_log(tmp_path).log_end_offset == 4
    assert not any(path.exists() for path in leftovers)


def test_a_directory_that_cannot_be_used_is_reported(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(LogStorageError) as raised:
        open_log(tmp_path / "file")
    assert raised.value.path == str(tmp_path / "file")


def test_recovered_batches_decode_with_kafka_python(tmp_path):
    log = open_log(tmp_path)
    append_all(log, 3, timestamp=77)
    del log
    log = open_log(tmp_path)
    data = bytes(log.read(2, 0))
    assert [record.offset for record in decode(data)] == [2, 3]


def test_an_index_entry_pointing_at_the_wrong_batch_is_reported_on_read(tmp_path):
    log = open_log(tmp_path, index_interval_bytes=0)
    produced = append_all(log, 10)
    log.roll()
    log.close()
    index = tmp_path / f"{SEGMENT_0}.index"
    entries = bytearray(index.read_bytes())
    struct.pack_into(">I", entries, 12, struct.unpack_from(">I", entries, 4)[0])  # entry 1 -> entry 0's batch
    index.write_bytes(bytes(entries))
    log = open_log(tmp_path, index_interval_bytes=0)
    assert_readable(log, produced[:2])
    with pytest.raises(CorruptLogError) as raised:
        log.read(produced[2][0], 100)
    assert raised.value.path == str(tmp_path / f"{SEGMENT_0}.log")
