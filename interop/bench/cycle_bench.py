"""What a test suite pays per test: ComLog embedded in the benchmark's process against Tansu as a
process, in one run.

Run: python -m interop.bench.cycle_bench [--cycles 30] [--tansu-cycles 3] [--starts 10]  (about 2 minutes)

Measures:
- broker start: an embedded broker from construction to accepting connections (--starts times,
  after import); `python -m broker` as users run it (the wheel built from this checkout, installed
  with its compiled bytecode into a fresh virtual environment) from its spawn to its first
  answered Metadata; Tansu's spawn to its first answered Metadata;
- a test cycle, --cycles times against ComLog and --tansu-cycles against Tansu (whose groups take
  over 20 s each to form here): create a topic, produce one record (confluent-kafka,
  acks=all, waiting for its delivery), consume it with a new group (subscribe, poll until it
  comes: the group forms, the offset is reset), delete the topic. Each step's median and p99,
  and the whole cycle's.
Targets (issue 14): a whole ComLog cycle under the time a consumer group needs to form against
Tansu (its consume step); ComLog's embedded start and `python -m broker`'s start under 0.15 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from broker.embedded import EmbeddedBroker
from interop.bench.servers import ComLogServer, TansuServer
from interop.installed_wheel import build_wheel, install_wheel

TIMEOUT_SECONDS = 30
STEPS = ("create topic", "produce one record", "consume it with a new group", "delete topic")


def cycle(bootstrap: str, admin: AdminClient, producer: Producer) -> list[float]:
    """One test's Kafka work; the seconds each step took."""
    topic = f"cycle-{uuid.uuid4().hex[:12]}"
    times = []
    started = time.perf_counter()
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT_SECONDS)
    times.append(time.perf_counter() - started)

    started = time.perf_counter()
    delivered = []
    producer.produce(topic, b"one record", on_delivery=lambda error, _: delivered.append(error))
    if producer.flush(TIMEOUT_SECONDS) or delivered != [None]:
        raise RuntimeError(f"the record was not delivered: {delivered}")
    times.append(time.perf_counter() - started)

    started = time.perf_counter()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    deadline = started + TIMEOUT_SECONDS
    while (message := consumer.poll(0.05)) is None or message.error():
        if time.perf_counter() > deadline:
            raise RuntimeError("the record was never consumed")
    times.append(time.perf_counter() - started)
    consumer.close()

    started = time.perf_counter()
    admin.delete_topics([topic])[topic].result(TIMEOUT_SECONDS)
    times.append(time.perf_counter() - started)
    return times


def cycles(bootstrap: str, count: int) -> list[list[float]]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    cycle(bootstrap, admin, producer)  # warm-up: connections made, metadata cached
    return [cycle(bootstrap, admin, producer) for _ in range(count)]


def process_starts(count: int) -> list[float]:
    """`python -m broker` from the installed wheel: seconds from each spawn to its first Metadata."""
    with tempfile.TemporaryDirectory(prefix="comlog-cycle-") as directory:
        root = Path(directory)
        (root / "wheel").mkdir()
        python = install_wheel(build_wheel(root / "wheel")[0], root / "venv")
        server = ComLogServer(root / "data", command=(str(python), "-m", "broker"))
        starts = []
        for _ in range(count):
            starts.append(server.start())
            server.stop()
        return starts


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--tansu-cycles", type=int, default=3)
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    began = time.perf_counter()

    embedded_starts = []
    for _ in range(args.starts):
        started = time.perf_counter()
        broker = EmbeddedBroker().start()
        embedded_starts.append(time.perf_counter() - started)
        broker.stop()
    with EmbeddedBroker() as broker:
        comlog = cycles(broker.bootstrap_servers, args.cycles)
    process_start = process_starts(args.starts)
    tansu_starts, tansu = [], []
    for round_number in range(max(1, args.starts // 3)):
        server = TansuServer()
        tansu_starts.append(server.start())
        try:
            if round_number == 0:
                tansu = cycles(server.bootstrap, args.tansu_cycles)
        finally:
            server.stop()

    rows = [("step", "ComLog median", "ComLog p99", "Tansu median", "Tansu p99")]
    rows.append(("broker start (embedded)", ms(statistics.median(embedded_starts)), ms(p99(embedded_starts)),
                 ms(statistics.median(tansu_starts)), ms(p99(tansu_starts))))
    rows.append(("broker start (python -m broker)", ms(statistics.median(process_start)), ms(p99(process_start)),
                 ms(statistics.median(tansu_starts)), ms(p99(tansu_starts))))
    for index, step in enumerate(STEPS):
        ours, theirs = [c[index] for c in comlog], [c[index] for c in tansu]
        rows.append((step, ms(statistics.median(ours)), ms(p99(ours)), ms(statistics.median(theirs)),
                     ms(p99(theirs))))
    ours, theirs = [sum(c) for c in comlog], [sum(c) for c in tansu]
    rows.append(("whole cycle", ms(statistics.median(ours)), ms(p99(ours)), ms(statistics.median(theirs)),
                 ms(p99(theirs))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if number == 0:
            print("| " + " | ".join("-" * width for width in widths) + " |")
    group_forming = statistics.median([c[2] for c in tansu])
    print(f"\n{'met   ' if statistics.median(ours) < group_forming else 'MISSED'} whole ComLog cycle "
          f"({ms(statistics.median(ours))}) under Tansu's group forming ({ms(group_forming)})")
    print(f"{'met   ' if statistics.median(embedded_starts) < 0.15 else 'MISSED'} embedded broker start "
          f"({ms(statistics.median(embedded_starts))}) under 150 ms")
    print(f"{'met   ' if statistics.median(process_start) < 0.15 else 'MISSED'} python -m broker start "
          f"({ms(statistics.median(process_start))}) under 150 ms")
    print(f"\nwhole run: {time.perf_counter() - began:.0f} s ({args.cycles} ComLog cycles, {args.tansu_cycles} "
          f"Tansu cycles, {args.starts} embedded and process starts each, {len(tansu_starts)} Tansu starts)")


if __name__ == "__main__":
    main()
