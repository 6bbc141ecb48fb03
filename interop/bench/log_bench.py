"""Throughput and latency of the commit log (log/) against plain file I/O on the same machine.

Run: python -m interop.bench.log_bench [--append-mib 256] [--big-log-mib 1024]

Measures, in one run and in a temporary directory that is removed afterwards:
- append throughput for 1 KiB, 16 KiB and 1 MiB record batches, next to os.write of the same
  bytes to a plain file (the ceiling);
- sequential read throughput (fetch-sized reads turned into bytes), next to plain 1 MiB preads;
- random offset lookups per second on a log of 100+ segments;
- reopen time of a cleanly closed 1 GiB log and recovery time of a 1 GiB log with a torn tail.

Append and read figures are the best of a few alternating rounds, because the page cache makes
single runs on a VM noisy. Targets (issue 2): append of 16 KiB+ batches >= 60% of the raw write
rate, clean reopen of 1 GiB < 100 ms, recovery of a 1 GiB active segment < 3 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatchBuilder

from log import Log, LogConfig

MIB = 1 << 20
ROUNDS = 3
FETCH_BYTES = MIB
# Fields a consumer reads to step over a batch: baseOffset, batchLength, lastOffsetDelta.
_BATCH_FRAME = struct.Struct(">qi")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_CONFIG = LogConfig(max_message_bytes=2 * MIB)


def build_batch(batch_size: int) -> bytearray:
    """A magic 2 batch as kafka-python's producer builds it with this batch_size: 100-byte records
    until the next one would not fit, so a little under batch_size, not a multiple of the page size.

    A bytearray, like the request frames the broker reads batches from: the log sets the base
    offset in place."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=batch_size,
    )
    timestamp = int(time.time() * 1000)
    offset = 0
    while builder.append(offset, timestamp=timestamp, key=None, value=b"x" * 100, headers=[]) is not None:
        offset += 1
    return builder.build()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def append_all(log: Log, batch: bytearray, count: int) -> None:
    for _ in range(count):
        log.append(batch)


def write_all(fd: int, batch: bytearray, count: int) -> None:
    for _ in range(count):
        os.write(fd, batch)


def measure_append(directory: Path, batch: bytearray, count: int) -> tuple[float, float]:
    """Best seconds to append `batch` `count` times to a new log, and to os.write it as often to a
    new file; creating, syncing and closing stay outside the timing for both. Leaves the last log
    and file in place for the read measurement."""
    log_seconds, raw_seconds = [], []
    for _ in range(ROUNDS):
        shutil.rmtree(directory / "log", ignore_errors=True)
        log = Log(directory / "log", _CONFIG)
        log_seconds.append(timed(lambda: append_all(log, batch, count)))
        log.close()
        (directory / "raw").unlink(missing_ok=True)
        fd = os.open(directory / "raw", os.O_WRONLY | os.O_CREAT, 0o644)
        raw_seconds.append(timed(lambda: write_all(fd, batch, count)))
        os.fsync(fd)
        os.close(fd)
    return min(log_seconds), min(raw_seconds)


def read_log(log: Log) -> int:
    """Read the whole log as a consumer would: fetch-sized reads, each ending where the last whole
    batch of the previous one ended. Returns the bytes of whole batches received."""
    offset, total = log.log_start_offset, 0
    while offset < log.log_end_offset:
        data = bytes(log.read(offset, FETCH_BYTES))
        position = 0
        while position + 27 <= len(data):
            base_offset, length = _BATCH_FRAME.unpack_from(data, position)
            if position + 12 + length > len(data):
                break
            offset = base_offset + _LAST_OFFSET_DELTA.unpack_from(data, position + 23)[0] + 1
            position += 12 + length
        total += position
    return total


def read_file(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        position = 0
        while chunk := os.pread(fd, FETCH_BYTES, position):
            position += len(chunk)
        return position
    finally:
        os.close(fd)


def measure_read(directory: Path) -> tuple[float, float, int]:
    """Best seconds to read the log left by measure_append, and the raw file; and the byte count."""
    log = Log(directory / "log", _CONFIG)
    size = log.size_in_bytes
    log_seconds = [timed(lambda: read_log(log)) for _ in range(ROUNDS)]
    raw_seconds = [timed(lambda: read_file(directory / "raw")) for _ in range(ROUNDS)]
    assert read_log(log) == read_file(directory / "raw") == size
    log.close()
    return min(log_seconds), min(raw_seconds), size


def measure_lookups(directory: Path) -> tuple[float, int]:
    """Random reads (lookup + slice, no copy) per second on a log of 128 segments of 1 KiB batches."""
    batch = build_batch(1024)
    log = Log(directory / "lookups", LogConfig(segment_bytes=MIB))
    append_all(log, batch, 128 * MIB // len(batch))
    segments = log.segment_count
    offsets = [random.randrange(log.log_end_offset) for _ in range(50_000)]
    seconds = timed(lambda: [len(log.read(offset, 1)) for offset in offsets])
    log.close()
    shutil.rmtree(directory / "lookups")
    return len(offsets) / seconds, segments


def measure_reopen_and_recovery(directory: Path, batch: bytearray, count: int) -> tuple[float, float, float]:
    """Seconds for: reopening a cleanly closed log of `count` batches (best of 5), its first read
    after that reopen, and recovering it after a crash that tore its last batch."""
    path = directory / f"big-{len(batch)}"
    log = Log(path, _CONFIG)
    append_all(log, batch, count)
    log.close()
    reopen, first_read = [], []
    for _ in range(5):
        start = time.perf_counter()
        log = Log(path, _CONFIG)
        reopen.append(time.perf_counter() - start)
        first_read.append(timed(lambda: bytes(log.read(log.log_end_offset // 2, 1))))
        log.close()
    (path / "clean-shutdown").unlink()
    segment = sorted(path.glob("*.log"))[-1]
    with open(segment, "r+b") as file:
        file.truncate(segment.stat().st_size - len(batch) // 2)
    start = time.perf_counter()
    log = Log(path, _CONFIG)
    recovery = time.perf_counter() - start
    assert log.log_end_offset == (count - 1) * (_LAST_OFFSET_DELTA.unpack_from(batch, 23)[0] + 1)
    log.close()
    shutil.rmtree(path)
    return min(reopen), min(first_read), recovery


def rate(size: float, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--append-mib", type=int, default=256, help="bytes appended per batch size and round")
    parser.add_argument("--big-log-mib", type=int, default=1024, help="size of the reopen/recovery logs")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    checks: list[tuple[str, bool]] = []
    directory = Path(tempfile.mkdtemp(prefix="comlog-log-bench-"))
    try:
        for size in (1024, 16 * 1024, MIB):
            batch = build_batch(size)
            count = args.append_mib * MIB // len(batch)
            total = count * len(batch)
            log_seconds, raw_seconds = measure_append(directory, batch, count)
            ratio = raw_seconds / log_seconds
            rows.append((
                f"append {size // 1024} KiB batches ({len(batch):,} B)",
                f"{rate(total, log_seconds)}, {count / log_seconds:,.0f} batches/s",
                rate(total, raw_seconds),
                f"{ratio:.0%} of raw",
            ))
            if size >= 16 * 1024:
                checks.append((f"append of {size // 1024} KiB batches >= 60% of raw write", ratio >= 0.6))
            if size == 16 * 1024:
                log_seconds, raw_seconds, read_bytes = measure_read(directory)
                read_row = (
                    "sequential read, 1 MiB fetches",
                    rate(read_bytes, log_seconds),
                    rate(read_bytes, raw_seconds),
                    f"{raw_seconds / log_seconds:.0%} of raw",
                )
        rows.append(read_row)
        lookups, segments = measure_lookups(directory)
        rows.append((f"random offset lookups, {segments} segments", f"{lookups:,.0f} lookups/s", "", ""))
        for size in (16 * 1024, 1024):
            batch = build_batch(size)
            reopen, first_read, recovery = measure_reopen_and_recovery(directory, batch, args.big_log_mib * MIB // len(batch))
            label = f"{args.big_log_mib} MiB log of {size // 1024} KiB batches"
            rows.append((f"clean reopen, {label}", f"{reopen * 1e3:.1f} ms", "", f"then first read {first_read * 1e3:.2f} ms"))
            rows.append((f"recovery of a torn tail, {label}", f"{recovery:.2f} s", "", ""))
            checks.append((f"clean reopen ({size // 1024} KiB batches) < 100 ms", reopen < 0.1))
            checks.append((f"recovery ({size // 1024} KiB batches) < 3 s", recovery < 3))
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    header = ("measurement", "log", "raw file I/O", "")
    widths = [max(width, len(title)) for width, title in zip(widths, header)]
    for row in (header, tuple("-" * width for width in widths), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print()
    for name, met in checks:
        print(f"{'met   ' if met else 'MISSED'} {name}")


if __name__ == "__main__":
    main()
