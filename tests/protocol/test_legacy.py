"""Legacy message sets (magic 0/1): kafka-python cross-check, conversion to magic 2, bad input."""

import struct
import zlib

import kafka.codec
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from protocol.compression import Compression, compress, compression_of
from protocol.errors import CorruptRecordError, ProtocolError
from protocol.legacy import build_message_set, iter_messages, to_record_batch
from protocol.record_batch import TimestampType
from protocol.records import Record, iter_records, validate_batch

LEGACY_CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4]
KAFKA_PYTHON_CODEC_PACKAGE = {
    Compression.NONE: ("nothing", lambda: True),
    Compression.GZIP: ("gzip", kafka.codec.has_gzip),
    Compression.SNAPPY: ("python-snappy", kafka.codec.has_snappy),
    Compression.LZ4: ("lz4 and xxhash", kafka.codec.has_lz4),
}
RECORDS = [
    Record(b"key", b"value", (), 1_600_000_000_000),
    Record(None, b"no key", (), 1_600_000_000_002),
    Record(b"no value", None, (), 1_599_999_999_999),
    Record(b"", b"", (), 1_600_000_000_001),
] + [Record(b"k%d" % i, b"compressible value " * 20, (), 1_600_000_000_100 + i) for i in range(30)]


@pytest.fixture(params=LEGACY_CODECS, ids=lambda codec: codec.name)
def codec(request):
    package, available = KAFKA_PYTHON_CODEC_PACKAGE[request.param]
    assert available(), f"kafka-python needs the {package} package for {request.param.name}"
    return request.param


def kafka_python_message_set(magic, codec, records=RECORDS):
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=1 << 24)
    for offset, record in enumerate(records):
        builder.append(offset, record.timestamp, record.key, record.value)
    return bytes(builder.build())


def kafka_python_messages(message_set):
    decoded = []
    for entry in MemoryRecords(message_set):
        assert entry.validate_crc()
        decoded += [(r.offset, r.timestamp, r.key, r.value) for r in entry]
    return decoded


def ours(message_set):
    return [(m.offset, m.timestamp, m.key, m.value) for m in iter_messages(message_set)]


def expected(magic, base_offset=0):
    return [
        (base_offset + i, r.timestamp if magic else None, r.key, r.value)
        for i, r in enumerate(RECORDS)
    ]


@pytest.mark.parametrize("magic", [0, 1])
def test_we_decode_kafka_python_message_sets(magic, codec):
    message_set = kafka_python_message_set(magic, codec)
    assert ours(message_set) == kafka_python_messages(message_set) == expected(magic)
    messages = list(iter_messages(message_set))
    assert {m.compression for m in messages} == {codec}
    assert {m.magic for m in messages} == {magic}
    assert {m.timestamp_type for m in messages} == {TimestampType.CREATE_TIME if magic else None}


@pytest.mark.parametrize("magic", [0, 1])
def test_kafka_python_decodes_ours(magic, codec):
    message_set = build_message_set(RECORDS, magic=magic, compression=codec, base_offset=100)
    assert kafka_python_messages(message_set) == ours(message_set) == expected(magic, 100)


@pytest.mark.parametrize("magic", [0, 1])
def test_uncompressed_message_sets_are_byte_identical(magic):
    assert build_message_set(RECORDS, magic=magic) == kafka_python_message_set(magic, Compression.NONE)


def test_magic_1_wrapper_carries_the_last_absolute_offset_and_max_timestamp():
    message_set = build_message_set(RECORDS, magic=1, compression=Compression.GZIP, base_offset=50)
    offset, _size, _crc, magic, attributes, timestamp = struct.unpack_from(">qiIbbq", message_set)
    assert (offset, magic, attributes) == (50 + len(RECORDS) - 1, 1, Compression.GZIP)
    assert timestamp == max(r.timestamp for r in RECORDS)


def test_magic_0_lz4_uses_the_kafka_0_8_header_checksum():
    frame = compress(Compression.LZ4, b"payload")
    wrapper = build_message_set([Record(b"k", b"v")], magic=0, compression=Compression.LZ4)
    value = wrapper[12 + 4 + 2 + 4 + 4 :]
    assert value[:6] == frame[:6]
    assert value[6] == (xxhash.xxh32_intdigest(value[:6]) >> 8) & 0xFF


def log_append_time_wrapper(timestamp):
    message_set = bytearray(build_message_set(RECORDS, magic=1, compression=Compression.GZIP))
    message_set[17] |= 0x08  # attributes
    struct.pack_into(">q", message_set, 18, timestamp)
    struct.pack_into(">I", message_set, 12, zlib.crc32(message_set[16:]))
    return bytes(message_set)


def test_log_append_time_wrapper_gives_its_timestamp_to_every_inner_message():
    message_set = log_append_time_wrapper(1_650_000_000_000)
    messages = list(iter_messages(message_set))
    assert {m.timestamp for m in messages} == {1_650_000_000_000}
    assert {m.timestamp_type for m in messages} == {TimestampType.LOG_APPEND_TIME}
    assert ours(message_set) == kafka_python_messages(message_set)


# Conversion to magic 2


@pytest.mark.parametrize("magic", [0, 1])
def test_to_record_batch_keeps_records_and_codec(magic, codec):
    batch = to_record_batch(kafka_python_message_set(magic, codec))
    header = validate_batch(batch)
    assert compression_of(header.attributes) is codec
    assert header.records_count == len(RECORDS)
    assert (header.base_offset, header.last_offset_delta) == (0, len(RECORDS) - 1)
    timestamps = [r.timestamp if magic else -1 for r in RECORDS]
    assert [(r.key, r.value, r.timestamp, r.offset) for r in iter_records(batch)] == [
        (r.key, r.value, t, i) for i, (r, t) in enumerate(zip(RECORDS, timestamps))
    ]
    theirs = DefaultRecordBatch(batch)
    assert theirs.validate_crc()
    assert [(r.key, r.value) for r in theirs] == [(r.key, r.value) for r in RECORDS]


def test_to_record_batch_can_change_the_codec():
    batch = to_record_batch(
        kafka_python_message_set(1, Compression.GZIP), compression=Compression.ZSTD
    )
    assert compression_of(validate_batch(batch).attributes) is Compression.ZSTD
    assert [r.value for r in iter_records(batch)] == [r.value for r in RECORDS]


def test_to_record_batch_flattens_several_wrappers_and_plain_messages():
    message_set = (
        build_message_set(RECORDS[:2], magic=1)
        + build_message_set(RECORDS[2:10], magic=1, compression=Compression.SNAPPY)
        + build_message_set(RECORDS[10:], magic=1, compression=Compression.GZIP)
    )
    batch = to_record_batch(message_set)
    assert compression_of(validate_batch(batch).attributes) is Compression.SNAPPY
    assert [r.value for r in iter_records(batch)] == [r.value for r in RECORDS]


def test_to_record_batch_refuses_an_empty_message_set():
    with pytest.raises(CorruptRecordError):
        to_record_batch(b"")


# Building


@pytest.mark.parametrize(
    ("arguments", "records"),
    [
        ({"magic": 2}, RECORDS),
        ({"magic": 1, "compression": Compression.ZSTD}, RECORDS),
        ({"magic": 1}, [Record(b"k", b"v", (("h", b"x"),), 0)]),
        ({"magic": 1}, []),
        ({"magic": 1}, [Record(b"a", offset=5), Record(b"b", offset=5)]),
    ],
)
def test_build_refuses_what_legacy_formats_cannot_hold(arguments, records):
    with pytest.raises(ValueError):
        build_message_set(records, **arguments)


# Malformed message sets


def resealed(message_set: bytes, fmt: str, position: int, value: int) -> bytes:
    """Patch the first message and recompute its CRC so the patch itself is what fails."""
    altered = bytearray(message_set)
    struct.pack_into(fmt, altered, position, value)
    struct.pack_into(">I", altered, 12, zlib.crc32(altered[16:]))
    return bytes(altered)


def test_crc_mismatch_is_corrupt():
    message_set = bytearray(build_message_set(RECORDS, magic=1))
    message_set[30] ^= 0x01
    with pytest.raises(CorruptRecordError, match="CRC"):
        list(iter_messages(message_set))


@pytest.mark.parametrize("cut", [5, 17, 30])
def test_partial_last_message_ends_a_fetched_set(cut):
    whole = build_message_set(RECORDS[:3], magic=1)
    first = build_message_set(RECORDS[:1], magic=1)
    message_set = whole + first[:cut]
    assert len(list(iter_messages(message_set, allow_truncated_tail=True))) == 3
    with pytest.raises(CorruptRecordError):
        list(iter_messages(message_set))


@pytest.mark.parametrize(
    ("fmt", "position", "value", "message"),
    [
        (">b", 16, 2, "magic"),
        (">b", 17, 4, "zstd"),
        (">b", 17, 5, "codec"),
        (">i", 8, 5, "minimum"),
        (">i", 26, 100, "exceeds"),  # key length beyond the message
        (">i", 26, -2, "exceeds"),
    ],
)
def test_bad_fields_are_corrupt(fmt, position, value, message):
    message_set = build_message_set([Record(b"key", b"value", (), 0)], magic=1)
    with pytest.raises(CorruptRecordError, match=message):
        list(iter_messages(resealed(message_set, fmt, position, value)))


def wrapper_around(inner_set: bytes, codec=Compression.GZIP, magic=1) -> bytes:
    """A compressed wrapper message holding ``inner_set`` as is."""
    body = struct.pack(">bb", magic, codec)
    if magic:
        body += struct.pack(">q", 0)
    value = compress(codec, inner_set)
    body += struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    return struct.pack(">qiI", 0, 4 + len(body), zlib.crc32(body)) + body


@pytest.mark.parametrize(
    ("inner_set", "message"),
    [
        (b"", "empty"),
        (build_message_set(RECORDS[:2], magic=1, compression=Compression.GZIP), "twice"),
        (build_message_set(RECORDS[:2], magic=0), "differs"),
        (build_message_set(RECORDS[:2], magic=1)[:-3], "exceeds"),
    ],
)
def test_bad_inner_message_sets_are_corrupt(inner_set, message):
    with pytest.raises(CorruptRecordError, match=message):
        list(iter_messages(wrapper_around(inner_set)))


def test_null_compressed_value_is_corrupt():
    body = struct.pack(">bbqii", 1, Compression.GZIP, 0, -1, -1)
    message_set = struct.pack(">qiI", 0, 4 + len(body), zlib.crc32(body)) + body
    with pytest.raises(CorruptRecordError, match="null"):
        list(iter_messages(message_set))


def test_wrapper_decompression_is_capped():
    message_set = build_message_set([Record(b"k", bytes(100_000), (), 0)], magic=1, compression=Compression.GZIP)
    with pytest.raises(CorruptRecordError, match="exceed"):
        list(iter_messages(message_set, max_decompressed_size=50_000))


SEEDS = [
    build_message_set(RECORDS[:4], magic=magic, compression=codec)
    for magic in (0, 1)
    for codec in LEGACY_CODECS
]


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=300), allow_truncated_tail=st.booleans())
def test_random_bytes_raise_only_protocol_errors(data, allow_truncated_tail):
    try:
        list(iter_messages(data, allow_truncated_tail=allow_truncated_tail, max_decompressed_size=1 << 20))
    except ProtocolError:
        pass


@settings(max_examples=500, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.integers(min_value=16), st.integers(1, 255)), min_size=1, max_size=4),
    cut=st.none() | st.integers(min_value=0),
)
def test_mutated_message_sets_raise_only_protocol_errors(seed, flips, cut):
    """The first message's CRC is recomputed so that mutations reach its fields and inner set."""
    data = bytearray(seed)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut is not None:
        del data[cut % len(data) :]
    if len(data) > 16:
        struct.pack_into(">I", data, 12, zlib.crc32(data[16:]))
    try:
        list(iter_messages(bytes(data), max_decompressed_size=1 << 20))
        to_record_batch(bytes(data), max_decompressed_size=1 << 20)
    except ProtocolError:
        pass
