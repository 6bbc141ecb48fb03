"""Settings changed on an open log (a topic config altered live) govern what comes next."""

import pytest
from log_batches import build_batch, open_log

from log import LogConfig, RecordBatchTooLargeError


def test_smaller_max_message_bytes_refuses_the_next_large_batch(tmp_path):
    log = open_log(tmp_path)
    big = build_batch(value_size=500)
    log.append(big)
    log.reconfigure(LogConfig(max_message_bytes=len(big) - 1))
    with pytest.raises(RecordBatchTooLargeError):
        log.append(big)
    assert log.log_end_offset == 1
    log.close()


def test_smaller_segment_bytes_rolls_at_the_next_append(tmp_path):
    log = open_log(tmp_path)
    for _ in range(3):
        log.append(build_batch())
    assert log.segment_count == 1
    log.reconfigure(LogConfig(segment_bytes=100))
    log.append(build_batch())
    assert log.segment_count == 2
    log.close()


def test_retention_uses_the_new_setting(tmp_path):
    log = open_log(tmp_path, segment_bytes=200)
    for _ in range(4):
        log.append(build_batch(value_size=50))
    segments = log.segment_count
    assert segments > 1 and log.apply_retention() == []
    log.reconfigure(LogConfig(segment_bytes=200, retention_bytes=1))
    assert len(log.apply_retention()) == segments - 1
    log.close()
