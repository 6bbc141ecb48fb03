"""Damage beyond the torn tail: a log with a damaged sealed segment opens, serves what is intact
and refuses only the damaged range, with an error naming the file, byte and offsets."""

import logging
import struct

import pytest
from log_batches import build_batch, open_log, same_batch_at

from log import CorruptLogError

CONFIG = {"segment_bytes": 1_000}


def fill(directory, count=40, **config):
    """A log of `count` two-record batches over several segments; (log, produced batches by base offset)."""
    log = open_log(directory, **{**CONFIG, **config})
    produced = {}
    for _ in range(count):
        payload = build_batch(2)
        produced[log.append(payload).base_offset] = payload
    return log, produced


def segment_path(directory, base_offset):
    return directory / f"{base_offset:020d}.log"


def flip(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def readable(log, produced, base_offset):
    return same_batch_at(bytes(log.read(base_offset, 0)), produced[base_offset], base_offset)


def damage_warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING and "damaged record batches" in r.getMessage()]


@pytest.mark.parametrize("clean", [True, False], ids=["clean-stop", "crash-after-flush"])
def test_a_batch_failing_its_crc_in_a_sealed_segment_is_refused_alone(tmp_path, caplog, clean):
    log, produced = fill(tmp_path)
    second = log.segments[1]
    size = len(produced[0])
    if clean:
        log.close()
    else:
        log.flush()  # the damaged segment lies before the recovery point: recovery does not read it
        del log
    damaged = second.base_offset + 4  # the segment's third batch
    flip(segment_path(tmp_path, second.base_offset), 2 * size + 70)  # inside its records
    log = open_log(tmp_path, **CONFIG)
    assert log.log_end_offset == 80
    assert all(readable(log, produced, offset) for offset in produced if offset != damaged)
    for _ in range(3):
        with pytest.raises(CorruptLogError) as raised:
            log.read(damaged, 10_000)
    error = raised.value
    assert error.path == str(segment_path(tmp_path, second.base_offset))
    assert (error.position, error.offset, error.resume_offset) == (2 * size, damaged, damaged + 2)
    assert f"{second.base_offset:020d}.log at byte {2 * size} (offset {damaged})" in str(error)
    # One warning for the damaged spot, however often it is read.
    assert len(damage_warnings(caplog)) == 1
    # A read from before the damage stops in front of it.
    assert len(log.read(second.base_offset, 10_000)) == 2 * size
    # Offsets past it are found through the batch after it, even from a walk that starts before it.
    assert readable(log, produced, damaged + 2)
    assert log.append(build_batch(2)).base_offset == 80


def test_a_truncated_sealed_segment_serves_what_is_left(tmp_path, caplog):
    log, produced = fill(tmp_path)
    second, third = log.segments[1], log.segments[2]
    size = len(produced[0])
    log.close()
    path = segment_path(tmp_path, second.base_offset)
    path.write_bytes(path.read_bytes()[: 3 * size + 20])  # in the middle of its fourth batch
    log = open_log(tmp_path, **CONFIG)
    assert log.log_end_offset == 80
    kept = range(second.base_offset, second.base_offset + 6, 2)
    assert all(readable(log, produced, offset) for offset in produced if offset in kept or offset >= third.base_offset)
    for offset in range(second.base_offset + 6, third.base_offset):
        with pytest.raises(CorruptLogError) as raised:
            log.read(offset, 10_000)
        assert (raised.value.offset, raised.value.resume_offset) == (second.base_offset + 6, third.base_offset)
        assert raised.value.position == 3 * size
    assert len(damage_warnings(caplog)) == 1
    assert [batch.base_offset for batch in log.iter_batches()] == [
        offset for offset in sorted(produced) if offset < second.base_offset + 6 or offset >= third.base_offset
    ]


def test_a_damaged_header_hides_only_the_offsets_up_to_the_next_index_entry(tmp_path):
    log, produced = fill(tmp_path, index_interval_bytes=0)  # every batch indexed
    second = log.segments[1]
    size = len(produced[0])
    log.close()
    path = segment_path(tmp_path, second.base_offset)
    data = bytearray(path.read_bytes())
    struct.pack_into(">i", data, size + 8, 10**6)  # the second batch's length, outside its CRC
    path.write_bytes(bytes(data))
    log = open_log(tmp_path, index_interval_bytes=0, **CONFIG)
    with pytest.raises(CorruptLogError) as raised:
        log.read(second.base_offset + 2, 10_000)
    assert raised.value.position == size
    assert raised.value.resume_offset == log.segments[2].base_offset  # its length leads nowhere
    assert readable(log, produced, second.base_offset)
    assert readable(log, produced, second.base_offset + 4)  # its index entry steps over the damage


def test_a_crash_keeps_the_segments_after_a_damaged_one_and_cuts_only_the_torn_tail(tmp_path, caplog):
    log, produced = fill(tmp_path)
    segments = [s.base_offset for s in log.segments]
    second, third = segments[1], segments[2]
    size = len(produced[0])
    del log  # never flushed: recovery validates every segment
    path = segment_path(tmp_path, second)
    data = bytearray(path.read_bytes())
    data[size + 16] ^= 0xFF  # the second batch's magic: its length still leads to the third
    data[4 * size + 16] ^= 0xFF  # and the fifth's
    struct.pack_into(">i", data, 4 * size + 8, 10**6)  # whose length leads nowhere
    path.write_bytes(bytes(data))
    active_path = segment_path(tmp_path, segments[-1])
    active_path.write_bytes(active_path.read_bytes()[:-5])  # and a torn tail
    with caplog.at_level(logging.WARNING):
        log = open_log(tmp_path, **CONFIG)
    assert log.log_end_offset == 78
    assert [s.base_offset for s in log.segments] == segments
    unreadable = {second + 2, *range(second + 8, third)}
    assert all(readable(log, produced, offset) for offset in produced if offset not in unreadable and offset < 78)
    with pytest.raises(CorruptLogError) as raised:
        log.read(second + 2, 100)
    assert (raised.value.position, raised.value.resume_offset) == (size, second + 4)
    with pytest.raises(CorruptLogError) as raised:
        log.read(second + 9, 100)
    assert (raised.value.position, raised.value.resume_offset) == (4 * size, third)
    cut = [r.getMessage() for r in caplog.records if "cut" in r.getMessage()]
    assert cut == [f"{active_path}: cut {size - 5} bytes from byte {active_path.stat().st_size} (offset 78) on, "
                   f"after the last valid batch: batchLength {size - 12} runs past the {size - 5} bytes present"]
    assert len(damage_warnings(caplog)) == 2  # per damaged spot, found by recovery and again by reads
    assert log.append(build_batch(2)).base_offset == 78


def test_a_batch_failing_its_crc_in_the_active_segment_is_kept_after_a_crash(tmp_path):
    log = open_log(tmp_path)
    produced = {}
    for _ in range(6):
        payload = build_batch(2)
        produced[log.append(payload).base_offset] = payload
    size = len(produced[0])
    del log
    flip(segment_path(tmp_path, 0), 2 * size + 40)  # inside the third batch
    log = open_log(tmp_path)
    assert log.log_end_offset == 12  # valid batches follow: not a torn tail
    with pytest.raises(CorruptLogError) as raised:
        log.read(4, 100)
    assert (raised.value.offset, raised.value.resume_offset) == (4, 6)
    assert all(readable(log, produced, offset) for offset in (0, 2, 6, 8, 10))
    assert len(log.read(0, 10_000)) == 2 * size
    # The same damage at the very end is a torn tail: cut.
    del log
    flip(segment_path(tmp_path, 0), 5 * size + 40)
    assert open_log(tmp_path).log_end_offset == 10
