"""Compression codecs: both directions, Kafka's framings, and bounded decompression."""

import os
import struct
import tracemalloc

import cramjam
import kafka.codec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.compression import (
    XERIAL_MAGIC,
    Compression,
    compress,
    compression_of,
    decompress,
)
from protocol.errors import CorruptRecordError

CODECS = [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]
# Half random, half repetitive: compresses somewhat, like real records.
PAYLOAD = os.urandom(50_000) + b"kafka record " * 10_000

KAFKA_PYTHON_ENCODE = {
    Compression.GZIP: kafka.codec.gzip_encode,
    Compression.SNAPPY: kafka.codec.snappy_encode,
    Compression.LZ4: kafka.codec.lz4_encode,
    Compression.ZSTD: kafka.codec.zstd_encode,
}
KAFKA_PYTHON_DECODE = {
    Compression.GZIP: kafka.codec.gzip_decode,
    Compression.SNAPPY: kafka.codec.snappy_decode,
    Compression.LZ4: kafka.codec.lz4_decode,
    Compression.ZSTD: kafka.codec.zstd_decode,
}
KAFKA_PYTHON_CODEC_PACKAGE = {
    Compression.GZIP: ("gzip", kafka.codec.has_gzip),
    Compression.SNAPPY: ("python-snappy", kafka.codec.has_snappy),
    Compression.LZ4: ("lz4", kafka.codec.has_lz4),
    Compression.ZSTD: ("zstandard", kafka.codec.has_zstd),
}


def require_kafka_python_codec(codec):
    package, available = KAFKA_PYTHON_CODEC_PACKAGE[codec]
    assert available(), f"kafka-python needs the {package} package for {codec.name}"


@pytest.mark.parametrize("codec", list(Compression))
@pytest.mark.parametrize("size", [1, 1000, len(PAYLOAD)])
def test_round_trip(codec, size):
    data = PAYLOAD[:size]
    assert decompress(codec, compress(codec, data)) == data


def test_none_passes_data_through():
    assert compress(Compression.NONE, b"abc") == b"abc"
    assert decompress(Compression.NONE, b"abc") == b"abc"


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_reads_ours(codec):
    require_kafka_python_codec(codec)
    assert KAFKA_PYTHON_DECODE[codec](compress(codec, PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("codec", CODECS)
def test_we_read_kafka_python(codec):
    require_kafka_python_codec(codec)
    assert decompress(codec, KAFKA_PYTHON_ENCODE[codec](PAYLOAD)) == PAYLOAD


def test_snappy_is_xerial_framed_in_32k_chunks_like_the_java_client():
    framed = compress(Compression.SNAPPY, PAYLOAD)
    assert framed[:16] == XERIAL_MAGIC + struct.pack(">ii", 1, 1)
    pos, chunks = 16, []
    while pos < len(framed):
        (length,) = struct.unpack_from(">i", framed, pos)
        chunks.append(bytes(cramjam.snappy.decompress_raw(framed[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    assert b"".join(chunks) == PAYLOAD
    assert {len(chunk) for chunk in chunks[:-1]} == {32 * 1024}


def test_raw_snappy_as_librdkafka_writes_it_is_read():
    require_kafka_python_codec(Compression.SNAPPY)
    raw = kafka.codec.snappy_encode(PAYLOAD, xerial_compatible=False)
    assert decompress(Compression.SNAPPY, raw) == PAYLOAD


def test_lz4_frames_have_independent_blocks_as_kafka_requires():
    frame = compress(Compression.LZ4, PAYLOAD)
    flags = frame[4]
    assert flags & 0x20, "block independence flag"


@pytest.mark.parametrize("codec", CODECS)
def test_exactly_max_size_is_accepted_one_more_byte_is_not(codec):
    data = PAYLOAD[:10_000]
    blob = compress(codec, data)
    assert decompress(codec, blob, max_size=len(data)) == data
    with pytest.raises(CorruptRecordError, match="exceed"):
        decompress(codec, blob, max_size=len(data) - 1)


@pytest.mark.parametrize("codec", CODECS)
def test_output_far_beyond_the_first_guess_still_decompresses(codec):
    data = bytes(3 * 1024 * 1024)  # compresses about 1000:1, far past the 8x first guess
    assert decompress(codec, compress(codec, data), max_size=4 * 1024 * 1024) == data


@pytest.mark.parametrize("codec", CODECS)
def test_compression_bomb_allocates_about_max_size_at_most(codec):
    bomb = compress(codec, bytes(48 * 1024 * 1024))
    max_size = 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError, match="exceed"):
            decompress(codec, bomb, max_size=max_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * max_size  # one output buffer at a time


def test_xerial_snappy_bomb_is_refused_before_any_chunk_is_allocated():
    chunk = bytes(cramjam.snappy.compress_raw(bytes(32 * 1024)))
    framed = XERIAL_MAGIC + struct.pack(">ii", 1, 1) + (struct.pack(">i", len(chunk)) + chunk) * 64
    with pytest.raises(CorruptRecordError, match="exceed"):
        decompress(Compression.SNAPPY, framed, max_size=100_000)


@pytest.mark.parametrize(
    "framed",
    [
        XERIAL_MAGIC + b"\x00\x00",  # header cut short
        XERIAL_MAGIC + struct.pack(">ii", 1, 1) + b"\x00\x00",  # chunk length cut short
        XERIAL_MAGIC + struct.pack(">iii", 1, 1, 1000) + b"abc",  # chunk beyond the frame
        XERIAL_MAGIC + struct.pack(">iii", 1, 1, -5),
        XERIAL_MAGIC + struct.pack(">iii", 1, 1, 3) + b"\xff\xff\xff",  # chunk not snappy
    ],
)
def test_broken_xerial_framing_is_corrupt(framed):
    with pytest.raises(CorruptRecordError):
        decompress(Compression.SNAPPY, framed)


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_input_is_corrupt(codec):
    blob = compress(codec, PAYLOAD)
    with pytest.raises(CorruptRecordError):
        decompress(codec, blob[: len(blob) // 2])


@pytest.mark.parametrize("attributes", [5, 6, 7, 0x25])
def test_unknown_codec_ids_are_corrupt(attributes):
    with pytest.raises(CorruptRecordError, match="codec"):
        compression_of(attributes)


def test_codec_id_is_the_low_three_bits():
    assert compression_of(0x3B) is Compression.LZ4
    assert compression_of(0) is Compression.NONE


@settings(max_examples=150, deadline=None)
@given(codec=st.sampled_from(CODECS), data=st.binary(max_size=300))
def test_random_input_decompresses_or_is_corrupt(codec, data):
    try:
        decompress(codec, data, max_size=64 * 1024)
    except CorruptRecordError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    codec=st.sampled_from(CODECS),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_mutated_input_decompresses_or_is_corrupt(codec, flips):
    blob = bytearray(compress(codec, PAYLOAD[:5000]))
    for position, mask in flips:
        blob[position % len(blob)] ^= mask
    try:
        decompress(codec, blob, max_size=64 * 1024)
    except CorruptRecordError:
        pass
