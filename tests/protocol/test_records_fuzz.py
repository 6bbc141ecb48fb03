"""Fuzzing: random and mutated record sets raise ProtocolError and nothing else."""

import struct

from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.compression import Compression
from protocol.errors import ProtocolError
from protocol.record_batch import BATCH_HEADER_SIZE
from protocol.records import Record, build_batch, iter_batches, iter_records, validate_records

SEED_RECORDS = [
    Record(b"key", b"value", (("header", b"x"), ("null", None)), 1_700_000_000_000),
    Record(None, b"v" * 300, (), 1_700_000_000_010),
    Record(b"k2", None, (), 1_700_000_000_005),
]
SEED_BATCHES = [build_batch(SEED_RECORDS, base_offset=3, compression=codec) for codec in Compression]
FUZZ_MAX_DECOMPRESSED = 1024 * 1024


def consume(record_set, allow_truncated_tail):
    """Decode everything the way the broker and a consumer would; count the records."""
    count = 0
    try:
        for header, batch in iter_batches(record_set, allow_truncated_tail=allow_truncated_tail):
            check_validation(header, batch)
            count += sum(1 for _ in iter_records(batch, max_decompressed_size=FUZZ_MAX_DECOMPRESSED))
    except ProtocolError:
        return None
    return count


def check_validation(header, batch):
    """The produce-time walk raises ProtocolError only, and passes only batches that decode to
    their declared count of records at consecutive offsets."""
    try:
        validate_records(header, batch, max_decompressed_size=FUZZ_MAX_DECOMPRESSED)
    except ProtocolError:
        return
    offsets = [r.offset for r in iter_records(batch, max_decompressed_size=FUZZ_MAX_DECOMPRESSED)]
    assert offsets == list(range(header.base_offset, header.base_offset + header.records_count))


def reseal_crc(batch: bytearray) -> None:
    if len(batch) > 21:
        struct.pack_into(">I", batch, 17, crc32c(memoryview(batch)[21:]))


mutations = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(1, 255)),
        st.tuples(st.just("cut"), st.integers(min_value=0), st.just(0)),
        st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(0, 255)),
    ),
    min_size=1,
    max_size=5,
)


def mutate(batch: bytes, edits) -> bytearray:
    data = bytearray(batch)
    for kind, position, byte in edits:
        position %= max(len(data), 1)
        if kind == "flip" and data:
            data[position] ^= byte
        elif kind == "cut":
            del data[position:]
        else:
            data.insert(position, byte)
    return data


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=400), allow_truncated_tail=st.booleans())
def test_random_bytes(data, allow_truncated_tail):
    consume(data, allow_truncated_tail)


@settings(max_examples=500, deadline=None)
@given(header_tail=st.binary(min_size=BATCH_HEADER_SIZE - 17, max_size=200), allow_truncated_tail=st.booleans())
def test_random_bytes_behind_a_plausible_batch_start(header_tail, allow_truncated_tail):
    """Offset, a length that fits, epoch and magic 2, then noise with a valid CRC."""
    data = bytearray(struct.pack(">qiib", 0, len(header_tail) + 5, 0, 2)) + header_tail
    reseal_crc(data)
    consume(data, allow_truncated_tail)


@settings(max_examples=1000, deadline=None)
@given(seed=st.sampled_from(SEED_BATCHES), edits=mutations, fix_crc=st.booleans())
def test_mutated_valid_batches(seed, edits, fix_crc):
    """With the CRC recomputed after mutation the damage reaches the record decoder."""
    data = mutate(seed, edits)
    if fix_crc:
        reseal_crc(data)
    consume(bytes(data), allow_truncated_tail=False)


@settings(max_examples=500, deadline=None)
@given(edits=mutations)
def test_mutated_uncompressed_records_section(edits):
    """Mutations confined to the records, so that lengths and counts stay plausible."""
    seed = SEED_BATCHES[Compression.NONE]
    body = mutate(seed[BATCH_HEADER_SIZE:], edits)
    data = bytearray(seed[:BATCH_HEADER_SIZE]) + body
    struct.pack_into(">i", data, 8, len(data) - 12)
    reseal_crc(data)
    consume(bytes(data), allow_truncated_tail=False)


def test_the_seeds_themselves_decode():
    assert [consume(seed, False) for seed in SEED_BATCHES] == [3] * len(SEED_BATCHES)
