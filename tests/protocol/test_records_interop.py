"""Record batches cross-checked with kafka-python 3.x, an independent implementation."""

import kafka.codec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from protocol.compression import Compression, compression_of
from protocol.record_batch import parse_header, set_log_append_time
from protocol.records import (
    ControlType,
    Record,
    build_batch,
    build_control_batch,
    iter_batches,
    iter_records,
    validate_batch,
)

KAFKA_PYTHON_CODEC_PACKAGE = {
    Compression.NONE: ("nothing", lambda: True),
    Compression.GZIP: ("gzip", kafka.codec.has_gzip),
    Compression.SNAPPY: ("python-snappy", kafka.codec.has_snappy),
    Compression.LZ4: ("lz4", kafka.codec.has_lz4),
    Compression.ZSTD: ("zstandard", kafka.codec.has_zstd),
}

RECORDS = [
    Record(None, b"value without key", (), 1_700_000_000_000, 0),
    Record(b"key", None, (), 1_700_000_000_003, 1),
    Record(b"", b"", (("h1", b"v1"), ("h2", None), ("h3", b"")), 1_699_999_999_000, 2),
    Record(b"big", b"0123456789" * 5000, (("utf8-ключ", b"x" * 300),), 1_700_000_000_010, 3),
] + [Record(b"k%d" % i, b"repeated value %d" % i, (), 1_700_000_000_100 + i, 4 + i) for i in range(200)]


@pytest.fixture(params=list(Compression), ids=lambda codec: codec.name)
def codec(request):
    package, available = KAFKA_PYTHON_CODEC_PACKAGE[request.param]
    assert available(), f"kafka-python needs the {package} package for {request.param.name}"
    return request.param


def kafka_python_batch(records, codec, producer=(-1, -1, -1), transactional=False):
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=transactional,
        producer_id=producer[0],
        producer_epoch=producer[1],
        base_sequence=producer[2],
        batch_size=16 * 1024 * 1024,
    )
    for record in records:
        builder.append(record.offset, record.timestamp, record.key, record.value, list(record.headers))
    return bytes(builder.build())


def kafka_python_records(batch_bytes):
    batch = DefaultRecordBatch(batch_bytes)
    assert batch.validate_crc()
    return [
        Record(r.key, r.value, tuple(r.headers), r.timestamp, r.offset) for r in batch
    ]


def test_we_decode_kafka_python_batches(codec):
    producer = (4242, 7, 100)
    batch = kafka_python_batch(RECORDS, codec, producer, transactional=True)
    header = validate_batch(batch)
    assert compression_of(header.attributes) is codec
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == producer
    assert header.is_transactional
    assert header.records_count == len(RECORDS)
    assert list(iter_records(batch)) == RECORDS


def test_kafka_python_decodes_our_batches(codec):
    batch = build_batch(RECORDS, compression=codec, producer_id=9, producer_epoch=1, base_sequence=5)
    theirs = DefaultRecordBatch(batch)
    assert theirs.compression_type == codec
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (9, 1, 5)
    assert theirs.last_offset_delta == len(RECORDS) - 1
    assert theirs.max_timestamp == max(r.timestamp for r in RECORDS)
    assert kafka_python_records(batch) == RECORDS


@pytest.mark.parametrize("marker", list(ControlType), ids=lambda marker: marker.name)
def test_kafka_python_reads_our_transaction_markers(marker):
    theirs = DefaultRecordBatch(build_control_batch(marker, producer_id=9, producer_epoch=2, coordinator_epoch=5,
                                                    timestamp=1_700_000_000_000, base_offset=30))
    assert theirs.validate_crc() and theirs.is_control_batch and theirs.is_transactional
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (9, 2, -1)
    [record] = list(theirs)
    assert (record.offset, record.version, record.type, record.commit) == (30, 0, marker, marker is ControlType.COMMIT)

def test_uncompressed_batches_are_byte_identical():
    ours = build_batch(
        RECORDS,
        producer_id=4242,
        producer_epoch=7,
        base_sequence=100,
        transactional=True,
        partition_leader_epoch=0,  # what kafka-python writes; Java writes -1
    )
    assert ours == kafka_python_batch(RECORDS, Compression.NONE, (4242, 7, 100), transactional=True)


def test_record_sets_split_the_same_way():
    batches = [
        build_batch(RECORDS[i : i + 50], base_offset=i, compression=Compression(i % 5))
        for i in range(0, 200, 50)
    ]
    record_set = b"".join(batches) + batches[0][:100]  # a fetch cut mid-batch
    ours = [
        (header.base_offset, bytes(view))
        for header, view in iter_batches(record_set, allow_truncated_tail=True)
    ]
    theirs = [(batch.base_offset, None) for batch in MemoryRecords(record_set)]
    assert [offset for offset, _ in ours] == [offset for offset, _ in theirs] == [0, 50, 100, 150]
    assert [data for _, data in ours] == batches


def test_kafka_python_sees_our_log_append_time(codec):
    batch = bytearray(build_batch(RECORDS, compression=codec))
    set_log_append_time(batch, parse_header(batch), 1_750_000_000_000)
    theirs = DefaultRecordBatch(bytes(batch))
    assert theirs.validate_crc()
    assert theirs.timestamp_type == 1
    assert {record.timestamp for record in theirs} == {1_750_000_000_000}


header_keys = st.text(st.characters(codec="utf-8"), max_size=8)
optional_bytes = st.none() | st.binary(max_size=40)
records_strategy = st.lists(
    st.tuples(
        optional_bytes,
        optional_bytes,
        st.lists(st.tuples(header_keys, optional_bytes), max_size=3).map(tuple),
        st.integers(0, 2**41),
        st.integers(1, 1000),  # gap to the previous offset
    ),
    min_size=1,
    max_size=20,
).map(
    lambda items: [
        Record(key, value, headers, timestamp, sum(gap for *_, gap in items[: i + 1]) - 1)
        for i, (key, value, headers, timestamp, _) in enumerate(items)
    ]
)


@settings(max_examples=100, deadline=None)
@given(records=records_strategy, codec=st.sampled_from([Compression.NONE, Compression.ZSTD, Compression.SNAPPY]))
def test_any_records_agree_with_kafka_python(records, codec):
    ours = build_batch(records, compression=codec, partition_leader_epoch=0)
    theirs = kafka_python_batch(records, codec)
    assert kafka_python_records(ours) == records
    assert list(iter_records(theirs)) == records
    if codec == Compression.NONE:
        assert ours == theirs
