"""The log cleaner (log/cleaner.py): its throughput against raw file I/O, its peak memory against
the configured dedupe buffer, and what it costs the broker's produce latency.

Run: python -m interop.bench.cleaner_bench [--dirty-mib 256] [--backlog-mib 256] [--window-seconds 20]

Measures, in one run and in a temporary directory that is removed afterwards:
- cleaning throughput: MB/s of dirty log cleaned by one pass run as the broker runs it (a `python
  -m log.cleaner` process, the plan pickled on its stdin, from spawn to exit), over compacted logs
  of 12-byte keys with 100 B, 1 KiB and 10 KiB values in 64 KiB batches, every key written twice
  in random order (half the records superseded, most batches rebuilt), the map holding every key;
  next to reading the same segment files in 1 MiB reads and writing them to a new file (page cache,
  no fsync). Best of a few alternating rounds, as the page cache makes single runs noisy;
- the pass process's peak resident memory (VmHWM) above that of a pass with nothing to clean
  ("idle": the interpreter, the cleaner's imports, the plan), with dedupe buffers of 8 MiB, 64 MiB
  and one just large enough for every key of the 100 B log (about a million keys: the small
  buffers map part of it, as a broker's passes then do), next to a pass whose map holds one key
  (the fixed overhead: read buffer, the batch being rebuilt, the segment being written);
- the broker's produce latency, one 1 KiB record in flight (confluent-kafka, acks=all, linger 0)
  to a plain topic for --window-seconds, while the cleaner works through a backlog of dirty
  compacted data (100 B values, 16 MiB dedupe buffer, so that passes follow one another all
  window long), next to the same broker over a copy of the same data with --log-cleaner-enable
  false; two rounds, alternating which goes first. The cleaner's passes in each window are
  counted from the broker's log, and how much of the window a pass process was running.

Targets (issue 13): cleaning >= 25% of the raw copy rate; produce p99 with the cleaner running
<= 1.5x without; the pass's memory bounded by the configured buffer plus the fixed overhead,
not by the log's size.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

import log as log_package
from interop.bench import workloads
from interop.broker_process import BrokerProcess
from log import CleaningPlan, CleaningResult, Log, LogConfig
from log.cleaner import OffsetMap, group_files
from log.segment import segment_file_name

MIB = 1 << 20
ROUNDS = 3
BROKER_ROUNDS = 2
VALUE_SIZES = (100, 1024, 10 * 1024)
BATCH_BYTES = 64 * 1024
KEY_FORMAT = b"%012d"
MEMORY_BUFFERS = (8 * MIB, 64 * MIB)
BROKER_BUFFER = 16 * MIB
COPY_CHUNK = MIB
COMPACTED_TOPIC = "bench-compacted"
LATENCY_TOPIC = "bench-latency"
# Every wait on a pass, a broker or a client is bounded by this.
TIMEOUT_SECONDS = 300
# As broker/log_cleaner.py runs passes: the `log` package importable whatever the working directory.
_PASS_ENVIRONMENT = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(log_package.__file__).resolve().parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
_CLEANED_LINE = re.compile(rf"cleaned {COMPACTED_TOPIC}-0: .*\(([\d.]+) of ([\d.]+) MB\)")


def compacted_config(segment_bytes: int) -> LogConfig:
    return LogConfig(compact=True, segment_bytes=segment_bytes, min_cleanable_dirty_ratio=0.0)


def build_batch(keys: list[int], value: bytes, timestamp: int) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=BATCH_BYTES,
    )
    for delta, key in enumerate(keys):
        if builder.append(delta, timestamp=timestamp, key=KEY_FORMAT % key, value=value, headers=[]) is None:
            raise ValueError(f"{len(keys)} records of {len(value)} B do not fit in {BATCH_BYTES} B")
    return builder.build()


def fill(log: Log, value_bytes: int, total_bytes: int, seed: int) -> int:
    """Append about `total_bytes` of keyed batches, every key twice in random order, then roll so
    that all of it is in sealed (dirty) segments. Returns the number of distinct keys."""
    value = b"v" * value_bytes
    timestamp = int(time.time() * 1000)
    # As many records per batch as a producer with this batch size would put in it.
    probe = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                      producer_epoch=-1, base_sequence=-1, batch_size=BATCH_BYTES)
    per_batch = 0
    while probe.append(per_batch, timestamp=timestamp, key=KEY_FORMAT % 0, value=value, headers=[]) is not None:
        per_batch += 1
    batch_bytes = len(probe.build())
    distinct = max(1, total_bytes // batch_bytes * per_batch // 2)
    keys = list(range(distinct)) * 2
    random.Random(seed).shuffle(keys)
    for start in range(0, len(keys), per_batch):
        log.append(build_batch(keys[start : start + per_batch], value, timestamp))
    log.roll()
    return distinct


@dataclasses.dataclass(frozen=True)
class Pass:
    result: CleaningResult
    seconds: float
    peak_bytes: int


def run_pass(plan: CleaningPlan) -> Pass:
    """Run `plan` in a process of its own as the broker does, then remove what it wrote (the log
    is left as it was, so the same plan runs again)."""
    stdin = pickle.dumps(plan)
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-m", "log.cleaner"], input=stdin, capture_output=True,
                              env=_PASS_ENVIRONMENT, timeout=TIMEOUT_SECONDS)
    seconds = time.perf_counter() - started
    if finished.returncode:
        raise RuntimeError(f"the pass failed: {finished.stderr.decode(errors='replace').strip()}")
    result = pickle.loads(finished.stdout)
    for group in result.groups:
        for path in group_files(plan.directory, group):
            path.unlink()
    return Pass(result, seconds, result.peak_memory_bytes)


def copy_seconds(sources: list[Path], target: Path, synced: bool = False) -> float:
    """Seconds to read `sources` in 1 MiB reads and write them all to `target`, a new file, fsynced
    at the end when `synced` (a pass syncs what it wrote before its swap); `target` is removed
    afterwards."""
    buffer = memoryview(bytearray(COPY_CHUNK))
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        started = time.perf_counter()
        for source in sources:
            fd = os.open(source, os.O_RDONLY)
            try:
                while count := os.readv(fd, [buffer]):
                    os.write(out, buffer[:count])
            finally:
                os.close(fd)
        if synced:
            os.fsync(out)
        return time.perf_counter() - started
    finally:
        os.close(out)
        target.unlink()


@dataclasses.dataclass(frozen=True)
class Throughput:
    dirty_bytes: int
    records: int
    kept: int
    keys: int
    pass_seconds: float
    copy_seconds: float
    synced_copy_seconds: float
    best: Pass


def measure_throughput(directory: Path, value_bytes: int, args: argparse.Namespace) -> tuple[Throughput, Log]:
    """Best pass and best raw copy over ROUNDS alternating rounds on one dirty log; the log stays
    open (and unchanged) for the memory passes."""
    log = Log(directory / f"values-{value_bytes}", compacted_config(args.segment_mib * MIB))
    distinct = fill(log, value_bytes, args.dirty_mib * MIB, seed=value_bytes)
    # The log's write-back done first, so that it falls into neither the passes nor the copies.
    os.sync()
    # Just room for every key: one pass cleans the whole dirty section.
    plan = log.cleaning_plan(log.log_end_offset, {}, (distinct + 1) * OffsetMap.ENTRY_BYTES)
    files = [log.directory / segment_file_name(segment.base_offset, ".log") for segment in plan.segments]
    dirty_bytes = sum(segment.size_in_bytes for segment in plan.segments)
    passes, copies, synced_copies = [], [], []
    for _ in range(ROUNDS):
        passes.append(run_pass(plan))
        copies.append(copy_seconds(files, directory / "raw-copy"))
        synced_copies.append(copy_seconds(files, directory / "raw-copy", synced=True))
    best = min(passes, key=lambda done: done.seconds)
    result = best.result
    if result.bytes_read != dirty_bytes or result.keys_mapped != distinct:
        raise RuntimeError(f"the pass cleaned {result.bytes_read} of {dirty_bytes} dirty bytes, "
                           f"{result.keys_mapped} of {distinct} keys")
    return Throughput(dirty_bytes, result.records_read, result.records_kept, distinct, best.seconds,
                      min(copies), min(synced_copies), best), log


def idle_pass(plan: CleaningPlan) -> Pass:
    """A pass process with nothing to clean: the interpreter, the cleaner's imports and the plan."""
    return run_pass(dataclasses.replace(plan, segments=()))


# -- produce latency on a broker with and without the cleaner ------------------------------------


def create_topics(bootstrap: str, segment_bytes: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(COMPACTED_TOPIC, 1, 1, config={"cleanup.policy": "compact", "segment.bytes": str(segment_bytes),
                                                      "min.cleanable.dirty.ratio": "0.01"}),
              NewTopic(LATENCY_TOPIC, 1, 1)]
    for future in admin.create_topics(topics, operation_timeout=TIMEOUT_SECONDS,
                                      request_timeout=TIMEOUT_SECONDS).values():
        future.result(TIMEOUT_SECONDS)


def broker(data_dir: Path, cleaner: bool) -> BrokerProcess:
    # Passes one after another (Kafka's default backoff is 15 s), each mapping part of the backlog.
    return BrokerProcess(data_dir, "--log-cleaner-enable", str(cleaner).lower(), "--log-cleaner-backoff-ms", "100",
                         "--log-cleaner-dedupe-buffer-size", str(BROKER_BUFFER))


def stop(process: BrokerProcess) -> None:
    try:
        if process.stop() != 0:
            raise RuntimeError("the broker did not stop cleanly:\n" + process.log_text()[-2000:])
    finally:
        process.kill()


def prepare_backlog(data_dir: Path, args: argparse.Namespace) -> int:
    """A data directory with the two topics, the compacted one holding the dirty backlog (written
    with the log engine, as a producer would have sent it) and a producer-state snapshot; the
    backlog's distinct keys."""
    process = broker(data_dir, cleaner=False).start()
    try:
        create_topics(process.bootstrap, args.segment_mib * MIB)
    finally:
        stop(process)
    log = Log(data_dir / f"{COMPACTED_TOPIC}-0", compacted_config(args.segment_mib * MIB))
    distinct = fill(log, 100, args.backlog_mib * MIB, seed=0)
    log.close()
    stop(process.start())
    return distinct


def cleaner_running(pid: int) -> bool:
    """Whether process `pid` has a cleaning pass process running."""
    try:
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            for child in children.read_text().split():
                if b"log.cleaner" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return True
    except OSError:  # a process ended while being looked at
        pass
    return False


def timed_produces(bootstrap: str, seconds: float, warm_up: int = 100) -> list[float]:
    """Seconds from produce() to the delivery report of each record sent one at a time for
    `seconds` (after `warm_up` untimed ones)."""
    delivered: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, **workloads.LATENCY_PRODUCER,
                         "on_delivery": lambda error, _message: delivered.append(error)})
    producer.list_topics(LATENCY_TOPIC, timeout=TIMEOUT_SECONDS)
    latencies: list[float] = []
    number = 0
    end = None
    while end is None or time.perf_counter() < end:
        started = time.perf_counter()
        producer.produce(LATENCY_TOPIC, workloads.VALUE, partition=0)
        while len(delivered) <= number:
            if time.perf_counter() > started + TIMEOUT_SECONDS:
                raise RuntimeError("no delivery report")
            producer.poll(1)
        if delivered[number] is not None:
            raise RuntimeError(f"delivery failed: {delivered[number]}")
        number += 1
        if number == warm_up:
            end = time.perf_counter() + seconds
        elif number > warm_up:
            latencies.append(time.perf_counter() - started)
    return latencies


@dataclasses.dataclass
class Window:
    latencies: list[float]
    passes: int
    megabytes_read: float
    busy: float


def measure_window(backlog: Path, data_dir: Path, cleaner: bool, seconds: float) -> Window:
    """Produce latency for `seconds` on a broker over a fresh copy of `backlog`, with or without
    its cleaner, and the cleaner's passes meanwhile."""
    shutil.copytree(backlog, data_dir)
    os.sync()  # the copy's write-back done before the window, not during it
    process = broker(data_dir, cleaner)
    try:
        process.start()
        samples: list[bool] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                samples.append(cleaner_running(process.process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        first_line = len(process.output)
        sampler.start()
        latencies = timed_produces(process.bootstrap, seconds)
        done.set()
        sampler.join(TIMEOUT_SECONDS)
        cleaned = [match for line in process.output[first_line:] if (match := _CLEANED_LINE.search(line))]
        stop(process)
    finally:
        process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return Window(latencies, len(cleaned), sum(float(match.group(2)) for match in cleaned),
                  sum(samples) / max(1, len(samples)))


def percentile(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# -- the report ----------------------------------------------------------------------------------


def megabytes(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


def rate(size: float, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


def value_label(value_bytes: int) -> str:
    return f"{value_bytes // 1024} KiB" if value_bytes >= 1024 else f"{value_bytes} B"


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("measurement", "cleaner", "reference", "ratio", "target")
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    for row in (header, tuple("-" * width for width in widths), *rows):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dirty-mib", type=int, default=256, help="dirty log per value size for the throughput passes")
    parser.add_argument("--backlog-mib", type=int, default=256, help="dirty compacted data the broker starts with")
    parser.add_argument("--window-seconds", type=float, default=20, help="each produce latency window")
    parser.add_argument("--segment-mib", type=int, default=16, help="segment.bytes of the compacted logs")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[tuple[str, ...]] = []
    checks: list[tuple[str, bool]] = []
    directory = Path(tempfile.mkdtemp(prefix="comlog-cleaner-bench-"))
    try:
        print("cleaning throughput", flush=True)
        throughputs = []
        for value_bytes in VALUE_SIZES:
            throughput, log = measure_throughput(directory, value_bytes, args)
            throughputs.append(throughput)
            ratio = throughput.copy_seconds / throughput.pass_seconds
            rows.append((f"clean {megabytes(throughput.dirty_bytes)} of {value_label(value_bytes)} values "
                         f"({throughput.records:,} records, {throughput.kept:,} kept)",
                         rate(throughput.dirty_bytes, throughput.pass_seconds),
                         f"raw copy {rate(throughput.dirty_bytes, throughput.copy_seconds)}", f"{ratio:.1%}", ">= 25%"))
            checks.append((f"cleaning {value_label(value_bytes)} values >= 25% of the raw copy rate", ratio >= 0.25))
            # Information: a pass fsyncs what it wrote, the copy above does not.
            rows.append(("  the same against a copy fsynced at its end", "",
                         f"synced copy {rate(throughput.dirty_bytes, throughput.synced_copy_seconds)}",
                         f"{throughput.synced_copy_seconds / throughput.pass_seconds:.1%}", ""))
            if value_bytes == VALUE_SIZES[0]:
                memory_log = log
            else:
                log.close()

        print("pass memory", flush=True)
        plan = memory_log.cleaning_plan(memory_log.log_end_offset, {}, MEMORY_BUFFERS[0])
        idle_run = idle_pass(plan)
        idle = idle_run.peak_bytes
        overhead = run_pass(dataclasses.replace(plan, buffer_bytes=OffsetMap.ENTRY_BYTES)).peak_bytes - idle
        memory = [(buffer, run_pass(dataclasses.replace(plan, buffer_bytes=buffer))) for buffer in MEMORY_BUFFERS]
        memory.append((throughputs[0].best.result.keys_mapped * OffsetMap.ENTRY_BYTES, throughputs[0].best))
        memory_log.close()
        for buffer, done in memory:
            above_idle = done.peak_bytes - idle
            rows.append((f"pass memory (idle {megabytes(idle)}), {done.result.keys_mapped:,} of "
                         f"{throughputs[0].keys:,} keys mapped, {megabytes(done.result.bytes_read)} of "
                         f"{megabytes(throughputs[0].dirty_bytes)} cleaned",
                         f"{megabytes(above_idle)} over idle", f"buffer {megabytes(buffer)}",
                         f"{above_idle / buffer:.2f}x", f"<= buffer + {megabytes(overhead)}"))
            checks.append((f"pass memory with a {megabytes(buffer)} buffer within it plus the fixed overhead",
                           above_idle <= buffer + overhead))

        print("produce latency with and without the cleaner", flush=True)
        backlog = directory / "backlog"
        backlog_keys = prepare_backlog(backlog, args)
        windows: dict[bool, list[Window]] = {True: [], False: []}
        for number in range(BROKER_ROUNDS):
            for cleaner in (True, False) if number % 2 == 0 else (False, True):
                print(f"  round {number + 1}/{BROKER_ROUNDS}: cleaner {'on' if cleaner else 'off'}", flush=True)
                windows[cleaner].append(measure_window(backlog, directory / "window", cleaner, args.window_seconds))
        with_cleaner = [latency for window in windows[True] for latency in window.latencies]
        without = [latency for window in windows[False] for latency in window.latencies]
        for name, fraction in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)):
            on, off = percentile(with_cleaner, fraction), percentile(without, fraction)
            rows.append((f"produce {name}, 1 KiB, one in flight ({len(with_cleaner):,} / {len(without):,} records)",
                         f"{on * 1e3:.2f} ms", f"without {off * 1e3:.2f} ms", f"{on / off:.2f}x",
                         "<= 1.5x" if name == "p99" else ""))
            if name == "p99":
                checks.append(("produce p99 with the cleaner running <= 1.5x without", on <= 1.5 * off))
        passes = [f"{window.passes} ({window.megabytes_read:,.0f} MB read, busy {window.busy:.0%})"
                  for window in windows[True]]
        rows.append((f"cleaner passes per {args.window_seconds:g} s window, backlog {args.backlog_mib} MiB "
                     f"({backlog_keys:,} keys)", ", ".join(passes),
                     f"without {', '.join(str(window.passes) for window in windows[False])}", "", ""))
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    print()
    print_table(rows)
    print(f"\nA pass's time counts its process start and unpickling ({idle_run.seconds:.2f} s for one with nothing "
          f"to clean). Segments of {args.segment_mib} MiB. Busy: the share of 50 ms samples with a pass process "
          "running.\n")
    for name, met in checks:
        print(f"{'met   ' if met else 'MISSED'} {name}")
    print(f"\nwhole run: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
