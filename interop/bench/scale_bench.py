"""Many partitions and many groups: how the broker's costs grow from 100 to 1,000 to 10,000
partitions over 100 topics.

Run from the repository root: ``python -m interop.bench.scale_bench [--scales 100,1000,10000]``
(about 5 minutes). For each scale, against a fresh broker process:

- create the 100 topics through the admin API;
- one confluent-kafka producer writes 10 records of 100 bytes to every partition;
- one consumer group member (confluent-kafka) subscribed to every topic reads them all, then
  keeps fetching at the log end for a few seconds: broker CPU per second of an idle consumer;
- Metadata for every topic, one request at a time: broker CPU per request;
- a clean stop (SIGTERM), then a restart to the ready line and to the first Metadata answer
  listing every partition; the broker's resident memory then.

Then once: 1,000 consumer groups each committing one offset every second for 10 seconds (one
connection, the commits spread over each second), with broker CPU per second and commit latency.

Broker CPU is the process's user + system time from /proc, so client costs are not in it. The
last columns give each cost's growth per tenfold partitions: 10x or less is linear or better.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from broker.wire_connection import WireConnection
from interop.bench.request_cost import cpu_seconds
from interop.bench.servers import metadata_answered, resident_bytes
from interop.broker_process import BrokerProcess
from protocol.messages import ApiKey

TOPICS = 100
RECORDS_PER_PARTITION = 10
VALUE = b"x" * 100
IDLE_SECONDS = 5
METADATA_REQUESTS = 50
GROUPS = 1000
COMMIT_SECONDS = 10
TIMEOUT_SECONDS = 300


def topic_names() -> list[str]:
    return [f"scale-{number:03d}" for number in range(TOPICS)]


def measure_scale(directory: Path, partitions: int, idle_seconds: float = IDLE_SECONDS) -> dict[str, float]:
    each = partitions // TOPICS
    results: dict[str, float] = {}
    broker = BrokerProcess(directory / f"scale-{partitions}", "--auto-create-topics", "false").start()
    try:
        pid = broker.process.pid
        cpu, started = cpu_seconds(pid), time.perf_counter()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for future in admin.create_topics([NewTopic(name, each, 1) for name in topic_names()],
                                          operation_timeout=TIMEOUT_SECONDS, request_timeout=TIMEOUT_SECONDS).values():
            future.result(TIMEOUT_SECONDS)
        results["create topics, s"] = time.perf_counter() - started
        results["create topics, broker CPU s"] = cpu_seconds(pid) - cpu

        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
        producer.list_topics(timeout=TIMEOUT_SECONDS)
        cpu, started = cpu_seconds(pid), time.perf_counter()
        for name in topic_names():
            for partition in range(each):
                for _ in range(RECORDS_PER_PARTITION):
                    producer.produce(name, VALUE, partition=partition)
                producer.poll(0)
        if producer.flush(TIMEOUT_SECONDS):
            raise RuntimeError("records left unacknowledged")
        results["produce to every partition, s"] = time.perf_counter() - started
        results["produce, broker CPU µs per partition"] = (cpu_seconds(pid) - cpu) / partitions * 1e6

        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"scale-{partitions}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(topic_names())
        cpu, started = cpu_seconds(pid), time.perf_counter()
        wanted, received = partitions * RECORDS_PER_PARTITION, 0
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while received < wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"read {received} of {wanted} records")
            received += sum(1 for message in consumer.consume(10_000, 1) if not message.error())
        results["group forms and reads everything, s"] = time.perf_counter() - started
        results["consume, broker CPU µs per partition"] = (cpu_seconds(pid) - cpu) / partitions * 1e6
        cpu, started = cpu_seconds(pid), time.perf_counter()
        while time.perf_counter() - started < idle_seconds:
            consumer.consume(10_000, 0.5)
        results["idle consumer at the log end, broker CPU %"] = (
            (cpu_seconds(pid) - cpu) / (time.perf_counter() - started) * 100)
        consumer.close()

        with WireConnection.connect(broker.port, timeout=TIMEOUT_SECONDS) as connection:
            body = {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
            cpu = cpu_seconds(pid)
            for _ in range(METADATA_REQUESTS):
                listed = connection.request(ApiKey.METADATA, 12, body)
            results["Metadata of every topic, broker CPU ms"] = (cpu_seconds(pid) - cpu) / METADATA_REQUESTS * 1e3
            assert sum(len(topic.partitions) for topic in listed.topics if topic.name.startswith("scale-")) == partitions

        started = time.perf_counter()
        broker.stop(signal.SIGTERM, timeout=TIMEOUT_SECONDS)
        results["clean stop (every log flushed), s"] = time.perf_counter() - started
        started = time.perf_counter()
        broker.start()
        results["restart to ready line, s"] = time.perf_counter() - started
        while not metadata_answered(broker.port):
            pass
        results["restart to first Metadata, s"] = time.perf_counter() - started
        results["RSS after restart, MB"] = resident_bytes(broker.process.pid) / 1e6
    finally:
        broker.kill()
    return results


def measure_commits(directory: Path, groups: int = GROUPS, seconds: int = COMMIT_SECONDS) -> dict[str, float]:
    """`groups` groups committing one offset each every second for `seconds`, as simple
    (group-less member) commits."""
    broker = BrokerProcess(directory / "commits", "--num-partitions", "1").start()
    try:
        pid = broker.process.pid
        latencies = []
        with WireConnection.connect(broker.port, timeout=TIMEOUT_SECONDS) as connection:
            def commit(group: int, offset: int) -> None:
                sent = time.perf_counter()
                answer = connection.request(ApiKey.OFFSET_COMMIT, 8, {
                    "group_id": f"group-{group}", "generation_id_or_member_epoch": -1, "member_id": "",
                    "group_instance_id": None, "topics": [{"name": "comlog", "partitions": [
                        {"partition_index": 0, "committed_offset": offset, "committed_metadata": ""}]}]})
                latencies.append(time.perf_counter() - sent)
                if answer.topics[0].partitions[0].error_code:
                    raise RuntimeError(f"OffsetCommit answered {answer.topics[0].partitions[0].error_code}")

            for group in range(groups):  # the groups exist before the timing
                commit(group, 0)
            latencies.clear()
            cpu, started = cpu_seconds(pid), time.perf_counter()
            for second in range(1, seconds + 1):
                for group in range(groups):
                    # Spread over the second, as independent consumers' commits are.
                    while time.perf_counter() < started + second - 1 + group / groups:
                        pass
                    commit(group, second)
            elapsed = time.perf_counter() - started
        latencies.sort()
        return {f"{groups:,} groups committing every second, broker CPU %": (cpu_seconds(pid) - cpu) / elapsed * 100,
                "commit latency p50, ms": statistics.median(latencies) * 1e3,
                "commit latency p99, ms": latencies[int(len(latencies) * 0.99)] * 1e3,
                f"seconds for {seconds} seconds of commits": elapsed}
    finally:
        broker.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="100,1000,10000", help="partition counts, comma separated")
    options = parser.parse_args(argv)
    scales = [int(scale) for scale in options.scales.split(",")]
    with tempfile.TemporaryDirectory(prefix="comlog-scale-") as directory:
        by_scale = {scale: measure_scale(Path(directory), scale) for scale in scales}
        commits = measure_commits(Path(directory))
    print(f"{'partitions (over 100 topics)':<48}" + "".join(f"{scale:>10}" for scale in scales)
          + "".join(f"{'x' + str(b // a):>8}" for a, b in zip(scales, scales[1:])))
    for name in by_scale[scales[0]]:
        values = [by_scale[scale][name] for scale in scales]
        growth = "".join(f"{b / a:>8.1f}" if a else f"{'-':>8}" for a, b in zip(values, values[1:]))
        print(f"{name:<48}" + "".join(f"{value:>10.3f}" for value in values) + growth)
    for name, value in commits.items():
        print(f"{name:<48}{value:>10.3f}")


if __name__ == "__main__":
    main()
