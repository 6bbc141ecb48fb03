"""ComLog next to Tansu, the Kafka-compatible server people would otherwise run locally.

Run: python -m interop.bench [--quick] [--rounds N] [--directory DIR]

Each round measures the ceilings (a raw loopback TCP stream between two processes, a raw
sequential file write of the same volume), then starts each server afresh on a free loopback
port (the order alternates from round to round) and runs the same workloads with the same
client settings against it:

1. produce: confluent-kafka, 1 KiB values, acks=all, linger 5 ms, 1 MB batches; every record
   acknowledged;
2. consume: the same records from offset 0 with confluent-kafka;
3. latency: one 1 KiB record in flight (confluent-kafka, linger 0, acks=all), p50 and p99;
4. kafka-python's default producer (idempotent, acks=all), 1 KiB values;
5. 50 confluent-kafka producers and 50 group consumers at once on a 50-partition topic, every
   record consumed exactly once by the group;
6. the broker's resident memory once 1 GiB of values has been produced in the round (all the
   workloads, topped up by more of workload 1), and the time from process start to the first
   successful Metadata response;
7. transactional produce: confluent-kafka's transactional producer with workload 1's settings,
   transactions of 1,000 records committed one after another;
8. transaction commit latency: begin, one record (linger 0), commit, one transaction after
   another, p50 and p99;
9. the records of workload 7 (committed transactions only) consumed from offset 0 with
   isolation.level read_uncommitted and read_committed, in the order U, C, C, U so neither gains
   from going second; each level's MB/s over its two reads, and read_committed's share of
   read_uncommitted's.
10. TLS (ComLog only: the same broker process has an SSL listener beside its plaintext one, with
   a certificate made for the run): workload 1's records produced over TLS to a topic of their
   own and consumed back as in workload 2, and each as a share of the same round's plaintext
   figure (plaintext fetches go out with sendfile, TLS ones are read and encrypted).
After the rounds, ComLog's start-up is measured again with 10 GiB of log on disk after a clean
shutdown: the log is written straight into a data directory with the log engine (1 MiB record
batches, as a producer would have sent them), the broker is started and stopped once (its clean
shutdown writes the producer-state snapshot), then started again for each timed run.

ComLog keeps its data on disk with its default flush policy (write-back left to the OS, as Kafka
does); Tansu runs with its in-memory storage. The table shows each figure's median over the
rounds with the min and max, and ComLog/Tansu of the medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException

from interop.bench import ceilings, workloads
from interop.bench.servers import ComLogServer, TansuServer, create_topics, resident_bytes
from interop.certificates import TestCertificates

MIB = 1 << 20
COMLOG, TANSU = ComLogServer.name, TansuServer.name
THROUGHPUT_TOPIC = "bench-throughput"
LATENCY_TOPIC = "bench-latency"
KAFKA_PYTHON_TOPIC = "bench-kafka-python"
GROUP_TOPIC = "bench-group"
VOLUME_TOPIC = "bench-volume"
BIG_LOG_TOPIC = "bench-big-log"
TRANSACTIONAL_TOPIC = "bench-transactional"
COMMIT_LATENCY_TOPIC = "bench-commit-latency"
TLS_TOPIC = "bench-tls"
READ_UNCOMMITTED, READ_COMMITTED = "read_uncommitted", "read_committed"


@dataclasses.dataclass(frozen=True)
class Sizes:
    rounds: int
    produce_records: int
    latency_records: int
    kafka_python_records: int
    group_members: int
    group_records_each: int
    # Resident memory is read once this much has been produced in the round.
    volume_bytes: int
    # ComLog's start-up is timed again with a log this large on disk.
    big_log_bytes: int
    big_log_starts: int
    # Workload 7's transactions of workloads.RECORDS_PER_TRANSACTION records, read again by 9.
    transactions: int
    commit_latency_transactions: int

    @property
    def produce_bytes(self) -> int:
        return self.produce_records * workloads.VALUE_BYTES

    @property
    def transactional_records(self) -> int:
        return self.transactions * workloads.RECORDS_PER_TRANSACTION


FULL = Sizes(rounds=5, produce_records=256 * 1024, latency_records=2000, kafka_python_records=20_000,
             group_members=50, group_records_each=4000, volume_bytes=1 << 30, big_log_bytes=10 << 30,
             big_log_starts=3, transactions=256, commit_latency_transactions=1000)
QUICK = Sizes(rounds=1, produce_records=20 * 1024, latency_records=2000, kafka_python_records=2000,
              group_members=50, group_records_each=200, volume_bytes=64 << 20, big_log_bytes=256 << 20,
              big_log_starts=1, transactions=20, commit_latency_transactions=200)


class Results:
    """Every figure of every round, per measurement and server; failures kept as text."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], list[float]] = {}
        self.failures: dict[tuple[str, str], str] = {}

    def add(self, measurement: str, server: str, value: float) -> None:
        self.values.setdefault((measurement, server), []).append(value)

    def median(self, measurement: str, server: str) -> float | None:
        values = self.values.get((measurement, server))
        return statistics.median(values) if values else None

    def cell(self, measurement: str, server: str, digits: int) -> str:
        if (measurement, server) in self.failures:
            return "failed: " + self.failures[(measurement, server)]
        values = self.values.get((measurement, server))
        if not values:
            return "-"
        median = f"{statistics.median(values):,.{digits}f}"
        if len(values) == 1:
            return median
        return f"{median} [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"


# Each measurement's row label, in table order, and its digits after the point.
PRODUCE_MBS = "1. produce MB/s"
PRODUCE_RPS = "1. produce records/s"
CONSUME_MBS = "2. consume MB/s"
LATENCY_P50 = "3. latency p50 ms"
LATENCY_P99 = "3. latency p99 ms"
KAFKA_PYTHON_MBS = "4. kafka-python produce MB/s"
KAFKA_PYTHON_RPS = "4. kafka-python produce records/s"
GROUP_MBS = "5. {members}+{members} group clients MB/s"
GROUP_LOST = "5. records lost"
GROUP_DUPLICATED = "5. records duplicated"
RSS = "6. RSS after {volume} produced, MB"
READY = "6. ready (first Metadata), s"
READY_BIG = "6. ready with {big_log} on disk, s"
TRANSACTIONAL_MBS = "7. transactional produce MB/s"
COMMIT_P50 = "8. transaction commit p50 ms"
COMMIT_P99 = "8. transaction commit p99 ms"
READ_UNCOMMITTED_MBS = "9. read_uncommitted consume MB/s"
READ_COMMITTED_MBS = "9. read_committed consume MB/s"
READ_COMMITTED_SHARE = "9. read_committed / read_uncommitted"
TLS_PRODUCE_MBS = "10. produce over TLS MB/s"
TLS_CONSUME_MBS = "10. consume over TLS MB/s"
TLS_PRODUCE_SHARE = "10. TLS produce / plaintext"
TLS_CONSUME_SHARE = "10. TLS consume / plaintext"
TCP = "ceiling: loopback TCP MB/s"
FILE_WRITE = "ceiling: file write MB/s"
DIGITS = {PRODUCE_MBS: 0, PRODUCE_RPS: 0, CONSUME_MBS: 0, LATENCY_P50: 3, LATENCY_P99: 3, KAFKA_PYTHON_MBS: 1,
          KAFKA_PYTHON_RPS: 0, GROUP_MBS: 0, GROUP_LOST: 0, GROUP_DUPLICATED: 0, RSS: 0, READY: 3,
          READY_BIG: 3, TRANSACTIONAL_MBS: 0, COMMIT_P50: 3, COMMIT_P99: 3, READ_UNCOMMITTED_MBS: 0,
          READ_COMMITTED_MBS: 0, READ_COMMITTED_SHARE: 2, TLS_PRODUCE_MBS: 0, TLS_CONSUME_MBS: 0,
          TLS_PRODUCE_SHARE: 2, TLS_CONSUME_SHARE: 2, TCP: 0, FILE_WRITE: 0}
# ComLog's throughputs as fractions of the ceilings: (label, throughput, ceiling).
FRACTIONS = [("produce / loopback TCP", PRODUCE_MBS, TCP), ("produce / file write", PRODUCE_MBS, FILE_WRITE),
             ("consume / loopback TCP", CONSUME_MBS, TCP), ("group clients / loopback TCP", GROUP_MBS, TCP)]


@dataclasses.dataclass(frozen=True)
class Target:
    measurement: str
    text: str
    # Checked against ComLog/Tansu of the medians when relative, else against ComLog's median.
    met: Callable[[float], bool]
    relative: bool = False


TARGETS = {target.measurement: target for target in [
    Target(PRODUCE_MBS, ">= 1.0x Tansu", lambda ratio: ratio >= 1.0, relative=True),
    Target(CONSUME_MBS, ">= 1.0x Tansu", lambda ratio: ratio >= 1.0, relative=True),
    Target(KAFKA_PYTHON_MBS, ">= 1.0x Tansu", lambda ratio: ratio >= 1.0, relative=True),
    Target(LATENCY_P50, "<= 1.5x Tansu", lambda ratio: ratio <= 1.5, relative=True),
    Target(LATENCY_P99, "<= 2x Tansu", lambda ratio: ratio <= 2, relative=True),
    Target(RSS, "<= 100 MB", lambda megabytes: megabytes <= 100),
    Target(READY, "<= 0.5 s", lambda seconds: seconds <= 0.5),
    Target(READY_BIG, "<= 1 s", lambda seconds: seconds <= 1),
    Target(GROUP_LOST, "0", lambda count: count == 0),
    Target(GROUP_DUPLICATED, "0", lambda count: count == 0),
    Target(TRANSACTIONAL_MBS, ">= 1.0x Tansu", lambda ratio: ratio >= 1.0, relative=True),
    Target(COMMIT_P99, "<= 1.0x Tansu", lambda ratio: ratio <= 1.0, relative=True),
    Target(READ_COMMITTED_SHARE, ">= 0.90", lambda share: share >= 0.9),
]}


def topics(sizes: Sizes) -> dict[str, int]:
    """The topics every server gets before the workloads: {name: partitions}."""
    return {THROUGHPUT_TOPIC: 1, LATENCY_TOPIC: 1, KAFKA_PYTHON_TOPIC: 1, GROUP_TOPIC: sizes.group_members,
            VOLUME_TOPIC: 1, TRANSACTIONAL_TOPIC: 1, COMMIT_LATENCY_TOPIC: 1, TLS_TOPIC: 1}


def run_workloads(bootstrap: str, sizes: Sizes, record: Callable[[str, float], None],
                  fail: Callable[[list[str], Exception], None]) -> int:
    """Workloads 1-5 and 7-9 against a server that has `topics(sizes)`; returns the bytes
    produced. A workload that fails is reported through `fail` and the next one runs."""
    produced = 0

    def attempt(measurements: list[str], workload: Callable[[], None]) -> bool:
        """Whether the workload ran to the end."""
        try:
            workload()
        except (workloads.WorkloadError, KafkaException) as error:
            fail(measurements, error)
            return False
        return True

    def record_produced(result: workloads.Throughput, megabytes: str, records: str | None = None) -> None:
        nonlocal produced
        produced += result.records * workloads.VALUE_BYTES
        record(megabytes, result.megabytes_per_second)
        if records is not None:
            record(records, result.records_per_second)

    def produce() -> None:
        record_produced(workloads.confluent_produce(bootstrap, THROUGHPUT_TOPIC, sizes.produce_records),
                        PRODUCE_MBS, PRODUCE_RPS)

    def consume() -> None:
        record(CONSUME_MBS, workloads.confluent_consume(bootstrap, THROUGHPUT_TOPIC, sizes.produce_records).megabytes_per_second)

    def record_latencies(latencies: list[float], p50: str, p99: str) -> None:
        nonlocal produced
        latencies = sorted(latencies)
        produced += len(latencies) * workloads.VALUE_BYTES
        record(p50, statistics.median(latencies) * 1e3)
        record(p99, latencies[int(len(latencies) * 0.99)] * 1e3)

    def latency() -> None:
        record_latencies(workloads.produce_latencies(bootstrap, LATENCY_TOPIC, sizes.latency_records),
                         LATENCY_P50, LATENCY_P99)

    def kafka_python() -> None:
        record_produced(workloads.kafka_python_produce(bootstrap, KAFKA_PYTHON_TOPIC, sizes.kafka_python_records),
                        KAFKA_PYTHON_MBS, KAFKA_PYTHON_RPS)

    def group() -> None:
        result = workloads.group_produce_consume(bootstrap, GROUP_TOPIC, sizes.group_members, sizes.group_records_each)
        record_produced(result.throughput, GROUP_MBS)
        record(GROUP_LOST, result.lost)
        record(GROUP_DUPLICATED, result.duplicated)

    def transactional() -> None:
        record_produced(workloads.transactional_produce(bootstrap, TRANSACTIONAL_TOPIC, sizes.transactions),
                        TRANSACTIONAL_MBS)

    def commit_latency() -> None:
        record_latencies(workloads.transaction_commit_latencies(bootstrap, COMMIT_LATENCY_TOPIC,
                                                                sizes.commit_latency_transactions),
                         COMMIT_P50, COMMIT_P99)

    def isolation_levels() -> None:
        seconds = {READ_UNCOMMITTED: 0.0, READ_COMMITTED: 0.0}
        for level in (READ_UNCOMMITTED, READ_COMMITTED, READ_COMMITTED, READ_UNCOMMITTED):
            seconds[level] += workloads.confluent_consume(bootstrap, TRANSACTIONAL_TOPIC, sizes.transactional_records,
                                                          level).seconds
        megabytes = {level: workloads.Throughput(2 * sizes.transactional_records, spent).megabytes_per_second
                     for level, spent in seconds.items()}
        record(READ_UNCOMMITTED_MBS, megabytes[READ_UNCOMMITTED])
        record(READ_COMMITTED_MBS, megabytes[READ_COMMITTED])
        record(READ_COMMITTED_SHARE, megabytes[READ_COMMITTED] / megabytes[READ_UNCOMMITTED])

    attempt([PRODUCE_MBS, PRODUCE_RPS], produce)
    attempt([CONSUME_MBS], consume)
    attempt([LATENCY_P50, LATENCY_P99], latency)
    attempt([KAFKA_PYTHON_MBS, KAFKA_PYTHON_RPS], kafka_python)
    attempt([GROUP_MBS, GROUP_LOST, GROUP_DUPLICATED], group)
    committed = attempt([TRANSACTIONAL_MBS], transactional)
    attempt([COMMIT_P50, COMMIT_P99], commit_latency)
    isolation_measurements = [READ_UNCOMMITTED_MBS, READ_COMMITTED_MBS, READ_COMMITTED_SHARE]
    if committed:
        attempt(isolation_measurements, isolation_levels)
    else:
        fail(isolation_measurements, workloads.WorkloadError("workload 7 left nothing to read"))
    return produced


def run_tls_workloads(server: ComLogServer, certificates: TestCertificates, sizes: Sizes,
                      record: Callable[[str, float], None], fail: Callable[[list[str], Exception], None],
                      plaintext: Callable[[str], float | None]) -> int:
    """Workload 10 against ComLog's SSL listener, `plaintext` giving this round's plaintext
    figures; returns the bytes produced."""
    security = {"security.protocol": "SSL", "ssl.ca.location": str(certificates.ca)}
    try:
        produced = workloads.confluent_produce(server.tls_bootstrap, TLS_TOPIC, sizes.produce_records, security)
        consumed = workloads.confluent_consume(server.tls_bootstrap, TLS_TOPIC, sizes.produce_records,
                                               security=security)
    except (workloads.WorkloadError, KafkaException) as error:
        fail([TLS_PRODUCE_MBS, TLS_CONSUME_MBS, TLS_PRODUCE_SHARE, TLS_CONSUME_SHARE], error)
        return 0
    for measurement, share, result, baseline in ((TLS_PRODUCE_MBS, TLS_PRODUCE_SHARE, produced, PRODUCE_MBS),
                                                 (TLS_CONSUME_MBS, TLS_CONSUME_SHARE, consumed, CONSUME_MBS)):
        record(measurement, result.megabytes_per_second)
        if plaintext(baseline):
            record(share, result.megabytes_per_second / plaintext(baseline))
    return produced.records * workloads.VALUE_BYTES


def measure_server(server: ComLogServer | TansuServer, sizes: Sizes, results: Results,
                   certificates: TestCertificates | None = None) -> None:
    """Start `server`, run every workload against it (workload 10 too when given `certificates`),
    read its resident memory, stop it."""
    this_round: dict[str, float] = {}

    def record(measurement: str, value: float) -> None:
        this_round[measurement] = value
        results.add(measurement, server.name, value)

    def fail(measurements: list[str], error: Exception) -> None:
        for measurement in measurements:
            results.failures[(measurement, server.name)] = f"{type(error).__name__}: {error}"[:80]

    record(READY, server.start())
    try:
        create_topics(server.bootstrap, topics(sizes))
        produced = run_workloads(server.bootstrap, sizes, record, fail)
        if certificates is not None:
            produced += run_tls_workloads(server, certificates, sizes, record, fail, this_round.get)
        remaining = sizes.volume_bytes - produced
        if remaining > 0:
            workloads.confluent_produce(server.bootstrap, VOLUME_TOPIC, -(-remaining // workloads.VALUE_BYTES))
        record(RSS, resident_bytes(server.pid) / 1e6)
    finally:
        server.stop()


def measure_ceilings(directory: Path, sizes: Sizes, results: Results) -> None:
    """The machine's ceilings for the volume of workload 1, shown in ComLog's column."""
    results.add(TCP, COMLOG, sizes.produce_bytes / ceilings.loopback_tcp_seconds(sizes.produce_bytes) / 1e6)
    results.add(FILE_WRITE, COMLOG, sizes.produce_bytes / ceilings.file_write_seconds(directory, sizes.produce_bytes) / 1e6)


def write_big_log(data_dir: Path, total: int) -> None:
    """Fill a ComLog data directory with `total` bytes of 1 MiB record batches in one topic
    partition: create the topic through the broker, append with the log engine, and let one clean
    broker start and stop write the producer-state snapshot."""
    from interop.bench.log_bench import append_all, build_batch
    from log import Log, LogConfig

    server = ComLogServer(data_dir)
    server.start()
    try:
        create_topics(server.bootstrap, {BIG_LOG_TOPIC: 1})
    finally:
        server.stop()
    batch = build_batch(MIB)
    log = Log(data_dir / f"{BIG_LOG_TOPIC}-0", LogConfig())
    append_all(log, batch, -(-total // len(batch)))
    log.close()
    server.start()
    server.stop()


def measure_big_log_start(directory: Path, sizes: Sizes, results: Results) -> None:
    """ComLog's time to its first Metadata response over a data directory holding a big log."""
    data_dir = directory / "big-log"
    try:
        write_big_log(data_dir, sizes.big_log_bytes)
        server = ComLogServer(data_dir)
        for _ in range(sizes.big_log_starts):
            results.add(READY_BIG, COMLOG, server.start())
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _size(size: int) -> str:
    return f"{size / 2**30:g} GiB" if size >= 2**30 else f"{size / 2**20:g} MiB"


def format_table(results: Results, sizes: Sizes) -> str:
    rows = [("measurement", COMLOG, TANSU, "ComLog/Tansu", "target", "")]
    for measurement, digits in DIGITS.items():
        comlog, tansu = results.median(measurement, COMLOG), results.median(measurement, TANSU)
        ratio = comlog / tansu if comlog is not None and tansu else None
        target = TARGETS.get(measurement)
        verdict = ""
        if target is not None:
            judged = ratio if target.relative else comlog
            verdict = "met" if judged is not None and target.met(judged) else "MISSED"
        label = measurement.format(volume=_size(sizes.volume_bytes), big_log=_size(sizes.big_log_bytes),
                                   members=sizes.group_members)
        rows.append((label, results.cell(measurement, COMLOG, digits), results.cell(measurement, TANSU, digits),
                     "" if ratio is None else f"{ratio:.2f}x", target.text if target else "", verdict))
    for label, throughput, ceiling in FRACTIONS:
        value, limit = results.median(throughput, COMLOG), results.median(ceiling, COMLOG)
        rows.append((f"ComLog {label}", f"{value / limit:.0%}" if value and limit else "-", "", "", "", ""))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    note = (f"{sizes.rounds} round(s), median [min-max]; ceilings are the machine's (one column); "
            f"volumes: {sizes.produce_records:,} x 1 KiB for 1-2, {sizes.latency_records} for 3, "
            f"{sizes.kafka_python_records:,} for 4, {sizes.group_members} x {sizes.group_records_each:,} for 5, "
            f"RSS after {_size(sizes.volume_bytes)}, start-up with {_size(sizes.big_log_bytes)} on disk, "
            f"{sizes.transactions} x {workloads.RECORDS_PER_TRANSACTION:,} for 7 and 9 (each level read twice), "
            f"{sizes.commit_latency_transactions} for 8.")
    return "\n".join(lines + ["", note])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m interop.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small volumes and one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, or 1 with --quick)")
    parser.add_argument("--directory", type=Path, help="where ComLog's data directories go (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    directory = Path(tempfile.mkdtemp(prefix="comlog-bench-", dir=args.directory))
    results = Results()
    certificates = TestCertificates(directory / "certificates")
    started = time.monotonic()
    try:
        for number in range(sizes.rounds):
            measure_ceilings(directory, sizes, results)
            servers = [ComLogServer(directory / f"round-{number}", certificates=certificates), TansuServer()]
            for server in servers if number % 2 == 0 else reversed(servers):
                print(f"round {number + 1}/{sizes.rounds}: {server.name}", flush=True)
                try:
                    measure_server(server, sizes, results, certificates if server.name == COMLOG else None)
                finally:
                    server.kill()
            shutil.rmtree(directory / f"round-{number}", ignore_errors=True)
        print(f"ComLog start-up with {_size(sizes.big_log_bytes)} on disk", flush=True)
        measure_big_log_start(directory, sizes, results)
    except Exception:
        traceback.print_exc()
        print("the run stopped early; what was measured so far:")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print()
    print(format_table(results, sizes))
    print(f"\nwhole run: {time.monotonic() - started:.0f} s")
