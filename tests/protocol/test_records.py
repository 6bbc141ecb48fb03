"""Record batches (magic 2): header, CRC, attributes, records, building, the LogAppendTime rewrite and
transaction markers (control batches)."""

import struct

import pytest
from crc32c import crc32c

from protocol.compression import Compression, compress, compression_of
from protocol.errors import CorruptRecordError, ErrorCode, ProtocolError
from protocol.record_batch import (
    NO_TIMESTAMP,
    CorruptBatchError,
    UnsupportedMagicError,
    parse_header,
    set_log_append_time,
)
from protocol.record_batch import BATCH_HEADER_SIZE, TimestampType
from protocol.records import (
    ControlType,
    EndTxnMarker,
    InvalidRecordError,
    Record,
    build_batch,
    build_control_batch,
    control_type,
    end_txn_marker,
    iter_batches,
    iter_records,
    validate_batch,
    validate_records,
)

RECORDS = [
    Record(b"key-0", b"value-0", (), 1_700_000_000_000),
    Record(None, b"value-1", (("trace", b"abc"), ("empty", b""), ("null", None)), 1_700_000_000_005),
    Record(b"key-2", None, (), 1_699_999_999_990),  # earlier than the first: negative delta
    Record(b"", b"", (), 1_700_000_000_001),  # empty is not null
]


def reseal(batch: bytearray) -> bytearray:
    """Recompute the CRC so that a deliberately altered batch reaches the record decoder."""
    struct.pack_into(">I", batch, 17, crc32c(memoryview(batch)[21:]))
    return batch


def patched(batch: bytes, fmt: str, position: int, value: int) -> bytearray:
    altered = bytearray(batch)
    struct.pack_into(fmt, altered, position, value)
    return reseal(altered)


def validate_produced(batch, **options) -> None:
    """validate_records as the produce path calls it, with the header it parsed."""
    validate_records(parse_header(batch), batch, **options)


def test_header_fields_are_where_kafka_puts_them():
    batch = build_batch(
        RECORDS,
        base_offset=1000,
        producer_id=77,
        producer_epoch=3,
        base_sequence=40,
        partition_leader_epoch=9,
    )
    header = validate_batch(batch)
    assert BATCH_HEADER_SIZE == 61
    assert struct.unpack_from(">qiib", batch) == (1000, len(batch) - 12, 9, 2)
    assert header.base_offset == 1000
    assert header.size == len(batch)
    assert header.last_offset_delta == 3
    assert header.last_offset == 1003
    assert header.next_offset == 1004
    assert header.base_timestamp == 1_700_000_000_000
    assert header.max_timestamp == 1_700_000_000_005
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (77, 3, 40)
    assert header.last_sequence == 43
    assert header.records_count == 4
    assert header.crc == crc32c(batch[21:])
    assert parse_header(b"padding" + batch, 7) == header
    assert parse_header(batch[:BATCH_HEADER_SIZE]) == header  # the records need not be present


def test_records_come_back_with_absolute_offsets_and_timestamps():
    batch = build_batch(RECORDS, base_offset=500)
    decoded = list(iter_records(batch))
    assert decoded == [record._replace(offset=500 + i) for i, record in enumerate(RECORDS)]


@pytest.mark.parametrize("codec", list(Compression))
def test_every_codec_round_trips_and_is_named_in_the_attributes(codec):
    batch = build_batch(RECORDS * 50, compression=codec)
    header = validate_batch(batch)
    assert compression_of(header.attributes) is codec
    assert header.is_compressed == (codec != Compression.NONE)
    assert header.attributes & 0x07 == codec
    assert [r.value for r in iter_records(batch)] == [r.value for r in RECORDS * 50]


def test_plain_batch_attributes_are_zero():
    header = validate_batch(build_batch(RECORDS))
    assert header.attributes == 0
    assert header.timestamp_type is TimestampType.CREATE_TIME
    assert not header.is_transactional
    assert not header.is_control
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (-1, -1, -1)
    assert header.last_sequence == -1
    assert header.partition_leader_epoch == -1


def test_transactional_and_control_flags_are_bits_4_and_5():
    header = validate_batch(build_batch(RECORDS, transactional=True, producer_id=5, producer_epoch=0))
    assert header.attributes == 0x10
    assert header.is_transactional and not header.is_control
    header = validate_batch(build_batch(RECORDS, control=True))
    assert header.attributes == 0x20
    assert header.is_control and not header.is_transactional


def test_sequence_numbers_wrap_like_kafkas():
    header = validate_batch(build_batch(RECORDS, producer_id=1, producer_epoch=0, base_sequence=2**31 - 2))
    assert header.last_sequence == 1


def test_records_at_given_offsets_keep_their_gaps():
    batch = build_batch(
        [Record(b"a", offset=10), Record(b"b", offset=13), Record(b"c")],
        base_offset=10,
        base_timestamp=5,
    )
    header = validate_batch(batch)
    assert [r.offset for r in iter_records(batch)] == [10, 13, 14]
    assert header.last_offset_delta == 4
    assert header.records_count == 3


@pytest.mark.parametrize("offsets", [[3, 3], [5, 4], [-1]])
def test_offsets_must_increase_from_the_base_offset(offsets):
    with pytest.raises(ValueError, match="offset"):
        build_batch([Record(b"x", offset=o) for o in offsets], base_timestamp=0)


def test_an_empty_batch_cannot_be_built():
    with pytest.raises(ValueError):
        build_batch([])


def test_records_without_timestamp_take_the_base_timestamp():
    batch = build_batch([Record(b"a"), Record(b"b", timestamp=30)], base_timestamp=20)
    assert [r.timestamp for r in iter_records(batch)] == [20, 30]


def test_without_a_base_timestamp_records_have_none():
    """No clock is read here: Kafka's NO_TIMESTAMP, as for its SimpleRecord without one."""
    batch = build_batch([Record(b"a"), Record(b"b")])
    assert [r.timestamp for r in iter_records(batch)] == [NO_TIMESTAMP, NO_TIMESTAMP]


def test_header_keys_survive_any_bytes():
    odd_key = b"\xff\xfe not utf-8".decode("utf-8", "surrogateescape")
    batch = build_batch([Record(b"k", b"v", ((odd_key, b"1"), ("ключ", b"2")), 0)])
    assert list(iter_records(batch))[0].headers == ((odd_key, b"1"), ("ключ", b"2"))


# LogAppendTime


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.ZSTD])
def test_set_log_append_time_sets_bit_3_and_max_timestamp_and_keeps_the_crc_valid(codec):
    batch = bytearray(build_batch(RECORDS, compression=codec, base_offset=7))
    returned = set_log_append_time(batch, parse_header(batch), 1_800_000_000_000)
    header = validate_batch(batch)
    assert returned == header
    assert header.attributes & 0x08
    assert compression_of(header.attributes) is codec
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == 1_800_000_000_000
    assert header.base_timestamp == RECORDS[0].timestamp
    assert {r.timestamp for r in iter_records(batch)} == {1_800_000_000_000}


@pytest.mark.parametrize("number", [0, 1])
def test_set_log_append_time_works_on_a_batch_inside_a_larger_buffer(number):
    """The CRC covers the batch the header describes, not the rest of the buffer."""
    batches = [build_batch(RECORDS), build_batch(RECORDS, base_offset=4)]
    record_set = bytearray(b"".join(batches))
    view = memoryview(record_set)[len(batches[0]) * number :]
    set_log_append_time(view, parse_header(view), 99)
    types = [header.timestamp_type for header, _ in iter_batches(record_set)]
    assert types.index(TimestampType.LOG_APPEND_TIME) == number


def test_built_with_log_append_time():
    header = validate_batch(build_batch(RECORDS, log_append_time=42))
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == 42


# Splitting record sets


def test_iter_batches_slices_without_copying():
    batches = [build_batch(RECORDS, base_offset=4 * i) for i in range(3)]
    record_set = b"".join(batches)
    split = list(iter_batches(record_set))
    assert [bytes(view) for _, view in split] == batches
    assert all(view.obj is record_set for _, view in split)
    assert [header.base_offset for header, _ in split] == [0, 4, 8]


@pytest.mark.parametrize("cut", [1, 30, BATCH_HEADER_SIZE, BATCH_HEADER_SIZE + 5])
def test_a_partial_last_batch_ends_a_fetched_record_set(cut):
    whole = build_batch(RECORDS)
    record_set = whole + whole[:cut]
    assert [bytes(v) for _, v in iter_batches(record_set, allow_truncated_tail=True)] == [whole]
    with pytest.raises(CorruptRecordError):
        list(iter_batches(record_set))


def test_empty_record_set_has_no_batches():
    assert list(iter_batches(b"")) == []


# Malformed batches


def test_crc_mismatch_is_corrupt():
    batch = bytearray(build_batch(RECORDS))
    batch[-1] ^= 0x01
    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batch(batch)
    with pytest.raises(CorruptRecordError, match="CRC"):
        list(iter_batches(batch))


def test_attributes_are_inside_the_crc():
    batch = bytearray(build_batch(RECORDS))
    batch[22] ^= 0x10  # transactional bit
    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batch(batch)


def test_validate_batch_wants_exactly_one_batch():
    batch = build_batch(RECORDS)
    for wrong in (batch[:-1], batch + b"\x00"):
        with pytest.raises(CorruptRecordError, match="length"):
            validate_batch(wrong)


@pytest.mark.parametrize(
    ("fmt", "position", "value", "message"),
    [
        (">b", 16, 1, "magic"),
        (">i", 8, 10, "length"),
        (">h", 21, 5, "codec"),
        (">i", 57, -1, "counts"),
        (">i", 23, -1, "counts"),
    ],
)
def test_bad_header_fields_are_corrupt(fmt, position, value, message):
    with pytest.raises(CorruptRecordError, match=message):
        validate_batch(patched(build_batch(RECORDS), fmt, position, value))


def test_the_magic_byte_is_read_first_to_tell_legacy_message_sets_apart():
    legacy_message = struct.pack(">qiIbb", 0, 14, 0, 1, 0) + struct.pack(">ii", -1, -1)
    with pytest.raises(UnsupportedMagicError) as caught:
        parse_header(legacy_message)
    assert caught.value.magic == 1
    assert caught.value.error_code == ErrorCode.INVALID_RECORD  # Kafka's answer to producing one
    with pytest.raises(CorruptBatchError, match="too few") as caught:
        parse_header(build_batch(RECORDS)[:16])
    assert caught.value.error_code == ErrorCode.CORRUPT_MESSAGE


def test_too_short_for_a_header_is_corrupt():
    with pytest.raises(CorruptBatchError, match="header"):
        parse_header(build_batch(RECORDS)[:60])


@pytest.mark.parametrize(
    ("records_count", "message"),
    [(5, "premature EOF"), (3, "still remaining"), (2**31 - 1, "premature EOF")],
)
@pytest.mark.parametrize("walk", [validate_produced, lambda batch: list(iter_records(batch))])
def test_records_count_must_match_the_records(records_count, message, walk):
    batch = patched(patched(build_batch(RECORDS), ">i", 57, records_count), ">i", 23, records_count - 1)
    validate_batch(batch)
    with pytest.raises(InvalidRecordError, match=message) as caught:
        walk(batch)
    assert caught.value.error_code == ErrorCode.INVALID_RECORD


def record_batch_with_body(body: bytes, records_count: int = 1) -> bytearray:
    """A batch whose records section is ``body``, CRC valid."""
    batch = bytearray(build_batch([Record(b"k", b"v", (), 0)]))
    del batch[BATCH_HEADER_SIZE:]
    batch += body
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    struct.pack_into(">i", batch, 57, records_count)
    return reseal(batch)


MALFORMED_RECORDS = {
    "record length -64": b"\x7f",
    "varint longer than 5 bytes": b"\x80\x80\x80\x80\x80\x01",
    "length says 10 bytes, 8 follow": b"\x14\x00\x00\x00\x02k\x02v\x00",
    "key length -2": b"\x10\x00\x00\x00\x03k\x02v\x00",
    "key longer than its record": b"\x10\x00\x00\x00\x0ak\x02v\x00",
    "value longer than its record": b"\x10\x00\x00\x00\x02k\x0av\x00",
    "value length -3": b"\x10\x00\x00\x00\x02k\x05v\x00",
    "key running past the batch": b"\x10\x00\x00\x00\x40k\x02v\x00",
    "one header announced, none present": b"\x10\x00\x00\x00\x02k\x02v\x02",
    "header value longer than its record": b"\x16\x00\x00\x00\x02k\x02v\x02\x02h\x10x",
    "a byte beyond the record's fields": b"\x12\x00\x00\x00\x02k\x02v\x00\x00",
    "null header key": b"\x16\x00\x00\x00\x02k\x02v\x02\x01\x00\x00",
    "negative header count": b"\x10\x00\x00\x00\x02k\x02v\x7f",
    "empty record": b"\x00",
    "truncated inside the timestamp varint": b"\x10\x00\x80",
    "truncated inside the record length": b"\x90",
    "timestamp varlong longer than 10 bytes": b"\x1c\x00" + b"\x80" * 10 + b"\x00\x00\x00\x00\x00",
    "bytes after the last record": b"\x10\x00\x00\x00\x02k\x02v\x00\x00\x00",
}


@pytest.mark.parametrize("body", list(MALFORMED_RECORDS.values()), ids=list(MALFORMED_RECORDS))
@pytest.mark.parametrize("walk", [validate_produced, lambda batch: list(iter_records(batch))])
def test_malformed_records_are_invalid_records(body, walk):
    batch = record_batch_with_body(body)
    validate_batch(batch)
    with pytest.raises(InvalidRecordError) as caught:
        walk(batch)
    assert caught.value.error_code == ErrorCode.INVALID_RECORD


def test_the_record_at_fault_is_named():
    good = b"\x10\x00\x00\x00\x02k\x02v\x00"
    second = b"\x10\x00\x00\x02\x02k\x02v\x00"
    with pytest.raises(InvalidRecordError) as caught:
        validate_produced(record_batch_with_body(good + second + b"\x10\x00\x00\x04\x03k\x02v\x00", 3))
    assert caught.value.batch_index == 2


@pytest.mark.parametrize("offsets", [[0, 2], [1], [0, 1, 2, 3, 200], [0, 300]])
def test_produced_offset_deltas_must_count_from_zero(offsets):
    batch = build_batch([Record(b"x", offset=o) for o in offsets], base_timestamp=0)
    batch = patched(batch, ">i", 57, len(offsets))
    with pytest.raises(InvalidRecordError, match="offset delta") as caught:
        validate_produced(batch)
    assert caught.value.batch_index == next(i for i, offset in enumerate(offsets) if offset != i)
    assert [r.offset for r in iter_records(batch)] == offsets  # stored batches may have gaps


def test_a_repeated_offset_delta_is_invalid():
    body = b"".join(b"\x10\x00\x00" + bytes([raw_delta]) + b"\x02k\x02v\x00" for raw_delta in (0, 2, 2))
    with pytest.raises(InvalidRecordError, match="offset delta 1, not 2"):
        validate_produced(record_batch_with_body(body, 3))


@pytest.mark.parametrize("codec", list(Compression))
def test_well_formed_batches_validate(codec):
    validate_produced(build_batch(RECORDS * 100, compression=codec))
    validate_produced(build_batch([Record(b"k" * 200, b"v" * 20_000, (("h" * 70, b"x" * 300),), 5)] * 3,
                                 compression=codec))


@pytest.mark.parametrize("codec", [c for c in Compression if c != Compression.NONE])
def test_compressed_records_are_walked_like_uncompressed_ones(codec):
    body = b"\x10\x00\x00\x00\x02k\x02v\x00" * 2  # two records, the second with offset delta 0
    batch = bytearray(build_batch([Record(b"k", b"v", (), 0)], compression=codec))
    del batch[BATCH_HEADER_SIZE:]
    batch += compress(codec, body)
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    struct.pack_into(">i", batch, 57, 2)
    with pytest.raises(InvalidRecordError, match="offset delta") as caught:
        validate_produced(reseal(batch))
    assert caught.value.batch_index == 1


@pytest.mark.parametrize("codec", [c for c in Compression if c != Compression.NONE])
def test_garbage_inside_a_compressed_batch_is_corrupt_message(codec):
    batch = bytearray(build_batch(RECORDS * 20, compression=codec))
    batch[BATCH_HEADER_SIZE:] = b"\x82SNAPPY\x00" * 3 if codec == Compression.SNAPPY else bytes(range(200))
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    with pytest.raises(CorruptRecordError) as caught:
        validate_produced(reseal(batch))
    assert caught.value.error_code == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", [c for c in Compression if c != Compression.NONE])
def test_a_compression_bomb_is_refused_at_the_limit(codec):
    batch = build_batch([Record(b"k", bytes(3_000_000), (), 0)], compression=codec)
    with pytest.raises(CorruptRecordError, match="exceed") as caught:
        validate_produced(batch, max_decompressed_size=1_000_000)
    assert caught.value.error_code == ErrorCode.CORRUPT_MESSAGE
    validate_produced(batch, max_decompressed_size=4_000_000)


def test_a_well_formed_hand_written_record_decodes():
    (record,) = iter_records(record_batch_with_body(b"\x10\x00\x00\x00\x02k\x02v\x00"))
    assert (record.key, record.value, record.headers, record.offset) == (b"k", b"v", (), 0)


def test_decompressed_size_is_capped():
    batch = build_batch([Record(b"k", bytes(200_000), (), 0)], compression=Compression.GZIP)
    with pytest.raises(CorruptRecordError, match="exceed"):
        iter_records(batch, max_decompressed_size=100_000)
    assert len(list(iter_records(batch, max_decompressed_size=300_000))) == 1


def test_corrupt_compressed_records_are_corrupt():
    batch = bytearray(build_batch(RECORDS * 20, compression=Compression.LZ4))
    batch[BATCH_HEADER_SIZE + 20] ^= 0xFF
    with pytest.raises(ProtocolError):
        list(iter_records(reseal(batch)))


@pytest.mark.parametrize("marker", list(ControlType), ids=lambda marker: marker.name)
def test_a_control_batch_is_one_transactional_control_record_of_its_type(marker):
    batch = build_control_batch(marker, producer_id=4000, producer_epoch=7, coordinator_epoch=12,
                                timestamp=1_700_000_000_000, base_offset=55)
    header = validate_batch(batch)
    assert header.is_control and header.is_transactional and not header.is_compressed
    assert (header.base_offset, header.records_count, header.last_offset_delta) == (55, 1, 0)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (4000, 7, -1)
    assert header.base_timestamp == header.max_timestamp == 1_700_000_000_000
    [record] = iter_records(batch)
    # Key: version 0, type; value (Kafka's EndTransactionMarker): version 0, coordinator epoch.
    assert record.key == struct.pack(">hh", 0, marker)
    assert record.value == struct.pack(">hi", 0, 12)
    assert (record.offset, record.timestamp, record.headers) == (55, 1_700_000_000_000, ())
    for form in (batch, bytearray(batch), memoryview(batch)):
        assert end_txn_marker(form) == EndTxnMarker(marker, 12) and control_type(form) is marker


def control_batch_of(key, value=struct.pack(">hi", 0, 0)):
    return build_batch([Record(key, value, (), 0)], control=True, transactional=True, producer_id=1, producer_epoch=0)


def test_newer_key_and_value_versions_are_read_as_version_0():
    batch = control_batch_of(struct.pack(">hhi", 1, 1, 99), struct.pack(">hiq", 3, 17, 5))
    assert end_txn_marker(batch) == (ControlType.COMMIT, 17)


COMMIT_KEY = struct.Struct(">hh").pack(0, 1)


def control_batch_without_records():
    batch = bytearray(control_batch_of(COMMIT_KEY)[:BATCH_HEADER_SIZE])
    struct.pack_into(">i", batch, 8, BATCH_HEADER_SIZE - 12)  # the batch length, after offset and length
    struct.pack_into(">i", batch, 57, 0)  # records count
    return reseal(batch)


@pytest.mark.parametrize("batch, message", [
    (build_batch([Record(COMMIT_KEY, struct.pack(">hi", 0, 0))]), "not a control batch"),
    (control_batch_without_records(), "control batch without records"),
    (control_batch_of(None), "control record key of null bytes"),
    (control_batch_of(b"\x00\x00\x01"), "control record key of 3 bytes, at least 4 expected"),
    (control_batch_of(struct.pack(">hh", -1, 0)), "control record key version -1"),
    (control_batch_of(struct.pack(">hh", 0, 2)), "unknown control record type 2"),
    (control_batch_of(COMMIT_KEY, None), "transaction marker value of null bytes"),
    (control_batch_of(COMMIT_KEY, b"\x00\x00\x00\x00\x07"), "transaction marker value of 5 bytes"),
    (control_batch_of(COMMIT_KEY, struct.pack(">hi", -2, 0)), "transaction marker value version -2"),
    (control_batch_of(COMMIT_KEY)[:-3], "length says"),
    (patched(control_batch_of(COMMIT_KEY), ">i", 57, 2), "2 records declared"),
], ids=["not-control", "no-records", "null-key", "short-key", "negative-key-version", "unknown-type",
        "null-value", "short-value", "negative-value-version", "truncated", "wrong-count"])
def test_a_batch_that_is_no_readable_marker_raises_corrupt_record_error(batch, message):
    with pytest.raises(CorruptRecordError, match=message):
        end_txn_marker(batch)
    with pytest.raises(CorruptRecordError, match=message):
        control_type(batch)


def test_a_control_batch_of_an_unknown_type_is_not_built():
    with pytest.raises(ValueError):
        build_control_batch(2, producer_id=1, producer_epoch=0, coordinator_epoch=0, timestamp=0)
