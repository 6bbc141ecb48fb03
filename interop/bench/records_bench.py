"""Record batch codec costs: validation, record iteration, building, codecs, legacy conversion.

Run from the repository root: ``python -m interop.bench.records_bench``. Prints the median of
several timed runs per case; the broker's produce path pays ``parse_header`` and
``verify_crc`` once per batch, and ``validate_records`` (the record walk of Kafka's
LogValidator; decompression first for a compressed batch); consumers of stored batches pay
``iter_batches`` (header + CRC).
"""

from __future__ import annotations

import os
import statistics
import timeit

from protocol.compression import Compression, compress, decompress
from protocol.legacy import build_message_set, to_record_batch
from protocol.record_batch import parse_header, set_log_append_time, verify_crc
from protocol.records import Record, build_batch, iter_batches, iter_records, recompress, validate_records

REPEATS = 7


def median_seconds(function, number: int) -> float:
    runs = timeit.repeat(function, number=number, repeat=REPEATS)
    return statistics.median(runs) / number


def report(name: str, seconds: float, unit: str = "") -> None:
    print(f"{name:<58} {seconds * 1e6:>10.1f} µs {unit}")


def records_of(count: int, value_size: int) -> list[Record]:
    """Values half random, half repeated: they compress about 2:1."""
    half = value_size // 2
    return [
        Record(b"key-%d" % i, os.urandom(half) + b"x" * (value_size - half), (), 1_700_000_000_000 + i)
        for i in range(count)
    ]


def main() -> None:
    big = records_of(1000, 1024)  # one ~1 MiB batch
    one_mib_batch = build_batch(big)
    one_mib_header = parse_header(one_mib_batch)
    small_batches = b"".join(
        build_batch(records_of(5, 100), base_offset=5 * i) for i in range(100)
    )
    print(f"1 MiB batch: {len(one_mib_batch)} bytes, 1000 records of 1 KiB")

    report("parse_header + verify_crc (produce), one 1 MiB batch",
           median_seconds(lambda: verify_crc(one_mib_batch, parse_header(one_mib_batch)), 200))
    report("iter_batches (header + CRC-32C), one 1 MiB batch",
           median_seconds(lambda: list(iter_batches(one_mib_batch)), 200))
    report("iter_batches, 100 small batches (5 records each)",
           median_seconds(lambda: list(iter_batches(small_batches)), 200))
    seconds = median_seconds(lambda: validate_records(one_mib_header, one_mib_batch), 20)
    report("validate_records, 1000 records of 1 KiB (uncompressed)", seconds,
           f"({seconds / 1000 * 1e6:.2f} µs/record)")
    seconds = median_seconds(lambda: sum(1 for _ in iter_records(one_mib_batch)), 10)
    report("iter_records, 1000 records of 1 KiB (uncompressed)", seconds,
           f"({seconds / 1000 * 1e6:.2f} µs/record)")
    report("build_batch, 1000 records of 1 KiB (uncompressed)",
           median_seconds(lambda: build_batch(big, base_timestamp=0), 10))
    writable = bytearray(one_mib_batch)
    report("set_log_append_time, 1 MiB batch (CRC recomputed)",
           median_seconds(lambda: set_log_append_time(writable, one_mib_header, 1), 200))

    body = one_mib_batch[61:]
    for codec in (Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD):
        blob = compress(codec, body)
        report(f"compress {codec.name:<6} 1 MiB -> {len(blob):>7} bytes",
               median_seconds(lambda: compress(codec, body), 5))
        report(f"decompress {codec.name:<6} back to 1 MiB",
               median_seconds(lambda: decompress(codec, blob), 20))
        compressed_batch = build_batch(big, compression=codec)
        compressed_header = parse_header(compressed_batch)
        report(f"iter_records, 1000 records, {codec.name}",
               median_seconds(lambda: sum(1 for _ in iter_records(compressed_batch)), 10))
        report(f"validate_records, 1000 records, {codec.name}",
               median_seconds(lambda: validate_records(compressed_header, compressed_batch), 10))
        # What a produce to a topic whose compression.type is this codec adds to an uncompressed batch.
        section = validate_records(one_mib_header, one_mib_batch)
        report(f"recompress, 1000 records, NONE -> {codec.name}",
               median_seconds(lambda: recompress(one_mib_header, section, codec), 5))

    legacy = build_message_set(records_of(100, 100), magic=1, compression=Compression.GZIP)
    report("legacy to_record_batch, 100 messages (gzip v1 -> gzip v2)",
           median_seconds(lambda: to_record_batch(legacy), 50))


if __name__ == "__main__":
    main()
