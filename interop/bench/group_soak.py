"""`python -m interop.bench.group_soak`: does the broker answer group heartbeats late under load?

N producers and N group consumers (one group, on a topic of N partitions) run flat out for a
while, in a child process. Beside them, in this process and on its own connection, a probe member
of a group of its own sends a Heartbeat every 200 ms and times each answer: the round trip is the
broker's queueing plus its handling, without the load's clients' own scheduling in it. Printed: the
probe's heartbeat round trips (p50, p99, max), the members the broker evicted for missing
heartbeats, the rebalances, and the slow event-loop steps the broker logged.

    python -m interop.bench.group_soak [--members 50] [--seconds 120] [--client confluent|kafka-python]

Loopback only; every wait is bounded. Retention keeps the data directory under about 10 GB.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from interop.bench.servers import exchange
from interop.bench.workloads import CONSUMER, THROUGHPUT_PRODUCER, VALUE
from interop.broker_process import BrokerProcess
from protocol.errors import ErrorCode
from protocol.messages import ApiKey

# Versions before the member-id round trip of KIP-394, so the probe joins with one request.
JOIN_VERSION, SYNC_VERSION, HEARTBEAT_VERSION = 3, 2, 2
PROBE_INTERVAL_SECONDS = 0.2
PROBE_SESSION_TIMEOUT_MS = 45_000
TOPIC = "soak"
CLONE = Path(__file__).resolve().parents[2]
# Per partition: at most this much is kept (in segments of a tenth of it), so a long run fits on disk.
RETENTION_BYTES = 200_000_000
# Broker log lines counted in the report.
EVICTED = re.compile(r"sent no heartbeat within")
REBALANCE = re.compile(r"preparing to rebalance")
SLOW_STEP = re.compile(r"event loop blocked")


class HeartbeatProbe(threading.Thread):
    """A one-member group of its own that heartbeats on its own connection, timing each answer."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = stop
        self.round_trips: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        group = f"probe-{uuid.uuid4()}"
        timeout = PROBE_SESSION_TIMEOUT_MS / 1000
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as connection:
            correlation = iter(range(1, 1 << 30))
            joined = exchange(connection, ApiKey.JOIN_GROUP, JOIN_VERSION, next(correlation), {
                "group_id": group, "session_timeout_ms": PROBE_SESSION_TIMEOUT_MS,
                "rebalance_timeout_ms": PROBE_SESSION_TIMEOUT_MS, "member_id": "", "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": b""}]})
            member = {"group_id": group, "generation_id": joined.generation_id, "member_id": joined.member_id}
            exchange(connection, ApiKey.SYNC_GROUP, SYNC_VERSION, next(correlation), {**member, "assignments": []})
            while not self.stop.wait(PROBE_INTERVAL_SECONDS):
                sent = time.perf_counter()
                answer = exchange(connection, ApiKey.HEARTBEAT, HEARTBEAT_VERSION, next(correlation), member)
                self.round_trips.append(time.perf_counter() - sent)
                if answer.error_code != ErrorCode.NONE:
                    self.errors.append(ErrorCode(answer.error_code).name)


def run_load(bootstrap: str, members: int, seconds: float, client: str) -> None:
    """The load (the child process): `members` producers, one per partition, and `members`
    consumers in one group, for `seconds`."""
    end = time.monotonic() + seconds
    threads = [threading.Thread(target=_produce, args=(bootstrap, index, end), daemon=True) for index in range(members)]
    consume = _consume_confluent if client == "confluent" else _consume_kafka_python
    group = f"soak-{uuid.uuid4()}"
    threads += [threading.Thread(target=consume, args=(bootstrap, group, end), daemon=True) for _ in range(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)


def _produce(bootstrap: str, partition: int, end: float) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, **THROUGHPUT_PRODUCER})
    while time.monotonic() < end:
        try:
            producer.produce(TOPIC, VALUE, partition=partition)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.flush(10)


def _consume_confluent(bootstrap: str, group: str, end: float) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER})
    consumer.subscribe([TOPIC])
    while time.monotonic() < end:
        consumer.consume(1000, 0.1)
    consumer.close()


def _consume_kafka_python(bootstrap: str, group: str, end: float) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
    while time.monotonic() < end:
        consumer.poll(timeout_ms=100)
    consumer.close()


def _percentile(values: list[float], fraction: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * fraction))]


def soak(members: int, seconds: float, client: str) -> str:
    with tempfile.TemporaryDirectory() as scratch, BrokerProcess(
            Path(scratch) / "data", "--num-partitions", str(members), "--retention-bytes", str(RETENTION_BYTES),
            "--segment-bytes", str(RETENTION_BYTES // 10), "--retention-check-interval-ms", "5000") as broker:
        stop = threading.Event()
        probe = HeartbeatProbe(broker.port, stop)
        load = subprocess.Popen([sys.executable, "-m", "interop.bench.group_soak", "--load", broker.bootstrap,
                                 "--members", str(members), "--seconds", str(seconds), "--client", client],
                                cwd=CLONE)
        probe.start()
        try:
            load.wait(seconds + 120)
        finally:
            stop.set()
            load.kill()
            probe.join(PROBE_SESSION_TIMEOUT_MS / 1000)
        log = broker.log_text()
        alive = broker.process.poll() is None
    trips = [trip * 1000 for trip in probe.round_trips]
    lines = [f"{members} producers + {members} {client} group consumers for {seconds:.0f} s",
             f"broker stayed up: {'yes' if alive else 'NO'}",
             f"probe heartbeats: {len(trips)}, errors: {len(probe.errors)} {sorted(set(probe.errors))}"]
    if trips:
        lines.append(f"probe heartbeat round trip ms: p50 {statistics.median(trips):.2f}, "
                     f"p99 {_percentile(trips, 0.99):.2f}, max {max(trips):.2f}")
    lines += [f"members evicted for missing heartbeats: {len(EVICTED.findall(log))}",
              f"rebalances: {len(REBALANCE.findall(log))}",
              f"event-loop steps over 100 ms logged: {len(SLOW_STEP.findall(log))}"]
    lines += [f"  {line.split(': ', 1)[-1]}" for line in log.splitlines() if SLOW_STEP.search(line)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m interop.bench.group_soak", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--client", choices=("confluent", "kafka-python"), default="confluent")
    parser.add_argument("--load", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        run_load(args.load, args.members, args.seconds, args.client)
    else:
        print(soak(args.members, args.seconds, args.client))


if __name__ == "__main__":
    main()
