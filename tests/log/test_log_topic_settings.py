"""The topic configs segment.jitter.ms, file.delete.delay.ms and preallocate, as Kafka's log honours them."""

import logging
import os

import pytest
from log_batches import Clock, build_batch, open_log, segment_files

from log import Log, LogConfig, LogConfigError
from log.config import SETTINGS

HOUR_MS = 60 * 60 * 1000


class FixedJitter:
    """A random.Random stand-in: the bounds asked for, and always the same answer."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.bounds: list[int] = []

    def randrange(self, stop: int) -> int:
        self.bounds.append(stop)
        return self.value


# -- the setting ---------------------------------------------------------------------------------


def test_preallocate_is_a_setting_read_as_default_low_high():
    default, low, high = SETTINGS["preallocate"]
    assert (default, low, high) == (False, False, True) and LogConfig().preallocate is False


@pytest.mark.parametrize("config", [{"preallocate": 1}, {"preallocate": "true"}, {"segment_ms": True}])
def test_a_setting_of_another_type_is_refused(config):
    with pytest.raises(LogConfigError):
        LogConfig(**config)


# -- segment.jitter.ms ---------------------------------------------------------------------------


def jittered_log(tmp_path, jitter: FixedJitter, clock: Clock, **config) -> Log:
    return Log(tmp_path, LogConfig(segment_ms=HOUR_MS, **config), clock=clock, rng=jitter)


def test_a_segment_rolls_its_jitter_before_segment_ms(tmp_path):
    clock, jitter = Clock(), FixedJitter(600_000)
    log = jittered_log(tmp_path, jitter, clock, segment_jitter_ms=2 * HOUR_MS)
    log.append(build_batch(timestamp=0))
    log.append(build_batch(timestamp=HOUR_MS - 600_000))  # waited exactly segment_ms - jitter
    assert log.segment_count == 1
    log.append(build_batch(timestamp=HOUR_MS - 600_000 + 1))
    assert log.segment_count == 2
    # Drawn below min(segment.jitter.ms, segment.ms), once per segment: opened and rolled.
    assert jitter.bounds == [HOUR_MS, HOUR_MS]


def test_without_jitter_nothing_is_drawn(tmp_path):
    clock, jitter = Clock(), FixedJitter(0)
    log = jittered_log(tmp_path, jitter, clock)
    log.append(build_batch(timestamp=0))
    log.append(build_batch(timestamp=HOUR_MS))
    assert log.segment_count == 1 and jitter.bounds == []


def test_each_segment_draws_its_own_jitter(tmp_path):
    clock, jitter = Clock(), FixedJitter(0)
    log = jittered_log(tmp_path, jitter, clock, segment_jitter_ms=HOUR_MS // 2)
    log.append(build_batch(timestamp=0))
    jitter.value = HOUR_MS // 4  # the next segment's
    log.append(build_batch(timestamp=HOUR_MS + 1))
    assert log.segment_count == 2
    log.append(build_batch(timestamp=HOUR_MS + 1 + HOUR_MS * 3 // 4 + 1))
    assert log.segment_count == 3
    assert jitter.bounds == [HOUR_MS // 2] * 3


def test_a_reopened_active_segment_gets_a_jitter_too(tmp_path):
    clock = Clock()
    log = jittered_log(tmp_path, FixedJitter(0), clock, segment_jitter_ms=HOUR_MS)
    log.append(build_batch(timestamp=0))
    log.close()
    log = jittered_log(tmp_path, FixedJitter(HOUR_MS // 2), clock, segment_jitter_ms=HOUR_MS)
    log.append(build_batch(timestamp=HOUR_MS // 2 + 1))
    assert log.segment_count == 2


# -- file.delete.delay.ms ------------------------------------------------------------------------


def trimmed_log(tmp_path, clock: Clock, **config) -> Log:
    """A log whose three full segments retention then took out (the active one stays)."""
    log = open_log(tmp_path, clock, segment_bytes=len(build_batch()) * 2, retention_bytes=1, **config)
    for _ in range(7):
        log.append(build_batch())
    assert log.segment_count == 4
    return log


def test_deleted_segment_files_wait_for_the_delay(tmp_path):
    clock = Clock()
    log = trimmed_log(tmp_path, clock, file_delete_delay_ms=60_000)
    assert log.file_removal_due_ms is None
    assert len(log.apply_retention()) == 3
    marked = segment_files(tmp_path, ".deleted")
    assert len(segment_files(tmp_path, ".log.deleted")) == 3 and len(segment_files(tmp_path, ".log")) == 1
    assert log.file_removal_due_ms == clock.now + 60_000
    clock.now += 59_999
    log.remove_deleted_files()
    assert segment_files(tmp_path, ".deleted") == marked
    clock.now += 1
    log.remove_deleted_files()
    assert segment_files(tmp_path, ".deleted") == [] and log.file_removal_due_ms is None


def test_each_deletion_waits_its_own_delay(tmp_path):
    clock = Clock()
    log = trimmed_log(tmp_path, clock, file_delete_delay_ms=60_000)
    log.delete_records(2)
    clock.now += 30_000
    log.delete_records(4)
    assert len(segment_files(tmp_path, ".log.deleted")) == 2
    clock.now += 30_000
    log.remove_deleted_files()
    assert [p.name for p in segment_files(tmp_path, ".log.deleted")] == ["00000000000000000002.log.deleted"]
    assert log.file_removal_due_ms == clock.now + 30_000


def test_a_read_of_a_deleted_segment_keeps_its_bytes(tmp_path):
    clock = Clock()
    log = trimmed_log(tmp_path, clock, file_delete_delay_ms=0)
    records = log.read(0, 1 << 20)
    expected = bytes(records)
    log.apply_retention()
    assert bytes(records) == expected  # renamed under it
    log.remove_deleted_files()
    assert segment_files(tmp_path, ".deleted") == []
    assert bytes(records) == expected  # unlinked under it


def test_close_and_open_remove_deleted_files_before_their_delay(tmp_path):
    clock = Clock()
    log = trimmed_log(tmp_path, clock)
    log.apply_retention()
    del log  # a crash
    log = open_log(tmp_path, clock)
    assert segment_files(tmp_path, ".deleted") == []
    log.delete_records(log.log_end_offset)
    log.roll()
    log.append(build_batch())
    log.apply_retention()
    assert segment_files(tmp_path, ".deleted")
    log.close()
    assert segment_files(tmp_path, ".deleted") == []


# -- preallocate ---------------------------------------------------------------------------------

SEGMENT_BYTES = 4096


def preallocated_log(tmp_path, clock: Clock | None = None) -> Log:
    return open_log(tmp_path, clock, segment_bytes=SEGMENT_BYTES, preallocate=True)


def file_sizes(directory) -> list[int]:
    return [path.stat().st_size for path in segment_files(directory, ".log")]


def fill_two_segments(log: Log) -> list[bytes]:
    batches = []
    while log.segment_count < 2:
        batches.append(build_batch(value_size=300))
        log.append(batches[-1])
    return batches


def test_a_new_segment_file_is_segment_bytes_long(tmp_path):
    log = preallocated_log(tmp_path)
    assert file_sizes(tmp_path) == [SEGMENT_BYTES] and log.size_in_bytes == 0
    batch = build_batch()
    log.append(batch)
    assert file_sizes(tmp_path) == [SEGMENT_BYTES] and log.size_in_bytes == len(batch)
    assert bytes(log.read(0, SEGMENT_BYTES))[8:] == batch[8:]


def test_a_roll_and_a_close_trim_the_files_to_their_batches(tmp_path):
    log = preallocated_log(tmp_path)
    fill_two_segments(log)
    sizes = [segment.size_in_bytes for segment in log.segments]
    assert file_sizes(tmp_path) == [sizes[0], SEGMENT_BYTES]
    log.close()
    assert file_sizes(tmp_path) == sizes
    log = preallocated_log(tmp_path)  # resumes the active segment as it is: no preallocation
    assert [s.size_in_bytes for s in log.segments] == sizes
    log.append(build_batch())
    assert file_sizes(tmp_path)[-1] == log.segments[-1].size_in_bytes


def test_a_crash_recovers_a_preallocated_tail_without_reporting_damage(tmp_path, caplog):
    log = preallocated_log(tmp_path)
    batches = fill_two_segments(log)
    end, sizes = log.log_end_offset, [segment.size_in_bytes for segment in log.segments]
    del log  # a crash: the active file is still segment_bytes long
    with caplog.at_level(logging.INFO, logger="log.segment"):
        log = preallocated_log(tmp_path)
    assert log.log_end_offset == end == len(batches)
    assert file_sizes(tmp_path) == sizes
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "zero bytes" in caplog.text
    assert bytes(log.read(end - 1, SEGMENT_BYTES))[8:] == batches[-1][8:]


def test_a_torn_batch_before_the_zeros_is_still_reported(tmp_path, caplog):
    log = preallocated_log(tmp_path)
    log.append(build_batch())
    size = log.size_in_bytes
    active = segment_files(tmp_path, ".log")[-1]
    del log
    with open(active, "r+b") as file:  # the first bytes of a next batch, then the preallocated zeros
        file.seek(size)
        file.write(build_batch()[:20])
    log = preallocated_log(tmp_path)
    assert log.log_end_offset == 1 and file_sizes(tmp_path) == [size]
    assert "cut" in caplog.text and any(r.levelno == logging.WARNING for r in caplog.records)


def test_a_segment_sealed_after_the_last_flush_is_recovered_if_its_trim_was_lost(tmp_path, caplog):
    clock = Clock()
    log = preallocated_log(tmp_path, clock)
    fill_two_segments(log)
    log.flush()
    log.flush()  # the recovery point is now the log end offset, in the active segment
    sealed_end = log.log_end_offset
    log.roll()  # seals the active segment right at the recovery point, trimming it
    log.append(build_batch())
    end = log.log_end_offset
    sealed = segment_files(tmp_path, ".log")[-2]
    trimmed_size = sealed.stat().st_size
    del log  # a crash, before a flush made the trim durable: say it was lost
    os.truncate(sealed, SEGMENT_BYTES)
    with caplog.at_level(logging.INFO, logger="log.segment"):
        log = preallocated_log(tmp_path, clock)
    assert log.log_end_offset == end and sealed.stat().st_size == trimmed_size
    assert [s.next_offset for s in log.segments][-2] == sealed_end
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_flush_makes_the_trim_of_a_segment_sealed_at_the_recovery_point_durable(tmp_path, monkeypatch):
    log = preallocated_log(tmp_path)
    fill_two_segments(log)
    log.flush()
    log.flush()
    log.roll()
    log.append(build_batch())
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    log.flush()
    assert str(segment_files(tmp_path, ".log")[-2]) in synced
