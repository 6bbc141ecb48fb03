"""Appending: offset assignment in place, and rejection of malformed batches."""

import struct

import crc32c
import pytest
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from log_batches import build_batch, decode, open_log, same_batch_at

from log import LogClosedError, LogConfig, LogConfigError, RecordBatchTooLargeError
from protocol.record_batch import CorruptBatchError, UnsupportedMagicError, parse_header


def test_append_assigns_consecutive_offsets_and_keeps_the_batch_valid(tmp_path):
    log = open_log(tmp_path)
    produced = [build_batch(3), build_batch(1), build_batch(5)]
    infos = [log.append(batch) for batch in produced]
    assert [(i.base_offset, i.last_offset) for i in infos] == [(0, 2), (3, 3), (4, 8)]
    assert log.log_end_offset == 9
    stored = (tmp_path / "00000000000000000000.log").read_bytes()
    positions = [info.position for info in infos]
    assert positions == [0, len(produced[0]), len(produced[0]) + len(produced[1])]
    for info, batch in zip(infos, produced):
        on_disk = stored[info.position : info.position + len(batch)]
        assert same_batch_at(on_disk, batch, info.base_offset)
        records = list(decode(on_disk))
        assert [r.offset for r in records] == list(range(info.base_offset, info.last_offset + 1))


def test_append_reports_the_max_timestamp(tmp_path):
    log = open_log(tmp_path)
    assert log.append(build_batch(4, timestamp=5_000)).max_timestamp == 5_003


def test_a_writable_batch_gets_its_base_offset_in_place_and_a_read_only_one_is_untouched(tmp_path):
    log = open_log(tmp_path)
    produced = build_batch(2)
    log.append(produced)
    assert produced == build_batch(2)
    writable = bytearray(produced)
    assert log.append(writable).base_offset == 2
    assert same_batch_at(bytes(writable), produced, 2)
    frame = bytearray(b"header" + produced)
    assert log.append(memoryview(frame)[6:]).base_offset == 4
    assert same_batch_at(bytes(frame[6:]), produced, 4)
    assert log.append(memoryview(produced)).base_offset == 6
    stored = bytes(log.read(0, 1 << 20))
    for number in range(4):
        chunk = stored[number * len(produced) : (number + 1) * len(produced)]
        assert same_batch_at(chunk, produced, 2 * number)


def test_compressed_batches_are_stored_as_produced(tmp_path):
    log = open_log(tmp_path)
    batch = build_batch(20, compression_type=DefaultRecordBatch.CODEC_GZIP)
    info = log.append(batch)
    stored = bytes(log.read(info.base_offset, 1 << 20))
    assert same_batch_at(stored, batch, 0)
    assert len(list(decode(stored))) == 20


def with_fixed_crc(batch: bytearray) -> bytes:
    struct.pack_into(">I", batch, 17, crc32c.crc32c(batch[21:]))
    return bytes(batch)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b + b"\0", id="trailing-byte"),
        pytest.param(lambda b: b[:40], id="shorter-than-header"),
        pytest.param(lambda b: b[:10], id="shorter-than-magic"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b[:8] + struct.pack(">i", 20) + b[12:], id="length-below-header"),
        pytest.param(lambda b: b + build_batch(), id="two-batches"),
    ],
)
def test_a_wrong_length_is_rejected(tmp_path, mangle):
    log = open_log(tmp_path)
    with pytest.raises(CorruptBatchError) as raised:
        log.append(mangle(build_batch(2)))
    assert not isinstance(raised.value, UnsupportedMagicError)
    assert log.log_end_offset == 0 and log.size_in_bytes == 0


def test_a_legacy_message_set_is_rejected_by_magic(tmp_path):
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    builder.append(0, timestamp=1_000, key=None, value=b"legacy")
    log = open_log(tmp_path)
    with pytest.raises(UnsupportedMagicError) as raised:
        log.append(bytes(builder.build()))
    assert raised.value.magic == 1


def test_a_changed_byte_under_the_crc_is_rejected(tmp_path):
    batch = bytearray(build_batch(2))
    batch[-1] ^= 0x01
    log = open_log(tmp_path)
    with pytest.raises(CorruptBatchError, match="CRC"):
        log.append(batch)
    assert log.log_end_offset == 0


def test_bytes_outside_the_crc_may_hold_anything(tmp_path):
    """baseOffset and partitionLeaderEpoch are not covered by the CRC: the producer's values do not matter."""
    batch = bytearray(build_batch(2))
    batch[0:8] = struct.pack(">q", 12345)
    batch[12:16] = struct.pack(">i", 7)
    log = open_log(tmp_path)
    assert log.append(batch).base_offset == 0
    assert log.append(batch).base_offset == 2


def test_a_negative_last_offset_delta_is_rejected(tmp_path):
    batch = bytearray(build_batch(2))
    struct.pack_into(">i", batch, 23, -1)
    log = open_log(tmp_path)
    with pytest.raises(CorruptBatchError, match="lastOffsetDelta"):
        log.append(with_fixed_crc(batch))


def test_a_verified_header_is_trusted_instead_of_checked_again(tmp_path):
    """The produce path hands over the header it parsed and the CRC it verified."""
    batch = bytearray(build_batch(3, timestamp=7_000))
    header = parse_header(batch)
    batch[-1] ^= 0x01  # a CRC mismatch the log no longer looks for
    log = open_log(tmp_path)
    info = log.append(batch, verified_header=header)
    assert (info.base_offset, info.last_offset, info.max_timestamp) == (0, 2, 7_002)
    assert log.append(build_batch(1), verified_header=parse_header(build_batch(1))).base_offset == 3


def test_a_verified_batch_too_large_is_still_rejected(tmp_path):
    batch = build_batch(value_size=500)
    with pytest.raises(RecordBatchTooLargeError):
        open_log(tmp_path, segment_bytes=len(batch) - 1).append(batch, verified_header=parse_header(batch))


def test_batches_larger_than_max_message_bytes_or_a_segment_are_rejected(tmp_path):
    batch = build_batch(value_size=500)
    with pytest.raises(RecordBatchTooLargeError):
        open_log(tmp_path / "a", max_message_bytes=len(batch) - 1).append(batch)
    with pytest.raises(RecordBatchTooLargeError):
        open_log(tmp_path / "b", segment_bytes=len(batch) - 1).append(batch)
    assert open_log(tmp_path / "c", max_message_bytes=len(batch)).append(batch).base_offset == 0


def test_a_closed_log_refuses_work(tmp_path):
    log = open_log(tmp_path)
    log.close()
    with pytest.raises(LogClosedError):
        log.append(build_batch())
    with pytest.raises(LogClosedError):
        log.read(0, 100)
    log.close()  # closing twice is harmless


@pytest.mark.parametrize(
    "setting",
    [
        {"segment_bytes": 0},
        {"segment_bytes": 1 << 31},
        {"index_interval_bytes": -1},
        {"retention_bytes": -2},
        {"flush_messages": 0},
        {"segment_index_bytes": 4},
        {"retention_ms": "7d"},
    ],
)
def test_out_of_range_settings_are_refused(setting):
    with pytest.raises(LogConfigError):
        LogConfig(**setting)


def test_defaults_are_kafkas():
    config = LogConfig()
    assert config.segment_bytes == 1 << 30
    assert config.segment_ms == config.retention_ms == 7 * 24 * 3600 * 1000
    assert config.index_interval_bytes == 4096
    assert config.retention_bytes == -1
    assert config.flush_messages == config.flush_ms == (1 << 63) - 1
