"""Start-up of a broker hosting 1,000 partitions (issue 7's target: ready in under 1 s after a
clean shutdown), and the cost of creating them.

Run: python -m interop.bench.partitions_bench [--topics 250] [--partitions-each 4] [--rounds 3]

Creates the topics through kafka-python's admin client against a real broker process, writes
one record batch to every partition, stops the broker with SIGTERM, then times restarts from
process start to the broker's ready line, and to the first Metadata answer listing every topic.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer
from kafka.admin import KafkaAdminClient, NewTopic

from interop.broker_process import BrokerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=250)
    parser.add_argument("--partitions-each", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    partitions = args.topics * args.partitions_each
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            started = time.perf_counter()
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=120_000)
            admin.create_topics([NewTopic(f"t{i}", args.partitions_each, 1) for i in range(args.topics)])
            admin.close()
            created = time.perf_counter() - started
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
            for i in range(args.topics):
                for partition in range(args.partitions_each):
                    producer.produce(f"t{i}", b"x" * 100, partition=partition)
            producer.flush(60)
            broker.stop(signal.SIGTERM)

            ready, listed = [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                broker.start()
                ready.append(time.perf_counter() - started)
                metadata = Producer({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=30)
                listed.append(time.perf_counter() - started)
                assert sum(len(t.partitions) for n, t in metadata.topics.items() if n.startswith("t")) == partitions
                broker.stop(signal.SIGTERM)
        finally:
            broker.kill()
    print(f"{partitions} partitions ({args.topics} topics x {args.partitions_each})")
    print(f"  create through the admin API            {created:8.2f} s")
    print(f"  restart to ready line (median of {args.rounds})     {statistics.median(ready):8.3f} s "
          f"(min {min(ready):.3f}, max {max(ready):.3f})")
    print(f"  restart to full Metadata (median)        {statistics.median(listed):8.3f} s")
    print(f"  target: ready < 1 s: {'met' if statistics.median(ready) < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
