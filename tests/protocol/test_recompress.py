"""A batch's records section recompressed with another codec and level, and its timestamps read:
what the broker does to a batch whose codec is not its topic's."""

from __future__ import annotations

import pytest
from kafka.record.default_records import DefaultRecordBatch

from protocol.compression import Compression, compress, decompress
from protocol.record_batch import BATCH_HEADER_SIZE, TimestampType, parse_header, set_log_append_time, verify_crc
from protocol.records import Record, build_batch, iter_records, recompress, record_timestamps, validate_records

CODECS = list(Compression)
RECORDS = [Record(b"k%d" % i, b"value %d " % i * 40, (("h", b"%d" % i), ("null", None)), 1_000 + (i * 37) % 11)
           for i in range(50)] + [Record(None, None, (), 999)]
PRODUCER = dict(producer_id=12, producer_epoch=3, base_sequence=40, transactional=True, partition_leader_epoch=5)


@pytest.mark.parametrize("target", CODECS)
@pytest.mark.parametrize("source", CODECS)
def test_recompress_keeps_every_record_and_header_field(source, target):
    sent = build_batch(RECORDS, compression=source, base_offset=0, **PRODUCER)
    header = parse_header(sent)
    section = validate_records(header, sent)
    rebuilt = recompress(header, section, target)
    new_header = parse_header(rebuilt)
    verify_crc(rebuilt, new_header)
    assert new_header.size == len(rebuilt)
    assert new_header.attributes & 0x07 == target
    assert new_header._replace(crc=0, attributes=0, batch_length=0) == header._replace(crc=0, attributes=0,
                                                                                      batch_length=0)
    assert new_header.attributes & ~0x07 == header.attributes & ~0x07  # transactional bit kept
    assert list(iter_records(rebuilt)) == list(iter_records(sent))
    # Another implementation reads it too.
    assert [r.value for r in DefaultRecordBatch(bytearray(rebuilt))] == [r.value for r in RECORDS]


def test_recompress_to_the_same_codec_changes_only_the_level():
    sent = build_batch(RECORDS, compression=Compression.ZSTD)
    header = parse_header(sent)
    section = validate_records(header, sent)
    fast, small = recompress(header, section, Compression.ZSTD, level=-5), recompress(header, section,
                                                                                     Compression.ZSTD, level=19)
    assert len(small) < len(fast)
    assert bytes(decompress(Compression.ZSTD, fast[BATCH_HEADER_SIZE:])) == bytes(section)
    assert small[BATCH_HEADER_SIZE:] == compress(Compression.ZSTD, section, 19)


def test_recompress_then_log_append_time():
    sent = build_batch(RECORDS)
    header = parse_header(sent)
    rebuilt = recompress(header, validate_records(header, sent), Compression.LZ4)
    stamped = set_log_append_time(rebuilt, parse_header(rebuilt), 5_000)
    verify_crc(rebuilt, stamped)
    assert stamped.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert {r.timestamp for r in iter_records(rebuilt)} == {5_000}


@pytest.mark.parametrize("codec", CODECS)
def test_validate_records_returns_the_uncompressed_section(codec):
    sent = build_batch(RECORDS, compression=codec)
    assert bytes(validate_records(parse_header(sent), sent)) == build_batch(RECORDS)[BATCH_HEADER_SIZE:]


def test_record_timestamps_in_record_order():
    sent = build_batch(RECORDS, compression=Compression.GZIP)
    header = parse_header(sent)
    assert record_timestamps(header, validate_records(header, sent)) == [r.timestamp for r in RECORDS]
    stamped = bytearray(build_batch(RECORDS))
    stamped_header = set_log_append_time(stamped, parse_header(stamped), 7)
    assert record_timestamps(stamped_header, validate_records(stamped_header, stamped)) == [7] * len(RECORDS)


@pytest.mark.parametrize(("codec", "levels"), [
    (Compression.GZIP, (-1, 1, 9)), (Compression.LZ4, (1, 9, 17)), (Compression.ZSTD, (-131072, -5, 1, 3, 22))])
def test_compress_takes_kafkas_levels(codec, levels):
    data = b"kafka record " * 5_000 + bytes(range(256)) * 20
    for level in levels:
        assert bytes(decompress(codec, compress(codec, data, level))) == data
    assert compress(Compression.GZIP, data, -1) == compress(Compression.GZIP, data)  # -1: zlib's default
