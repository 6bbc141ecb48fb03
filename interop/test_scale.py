"""A thousand partitions on one broker: bounded file descriptors, and all of them back after a restart."""

import os
import signal

from confluent_kafka import Producer
from kafka.admin import KafkaAdminClient, NewTopic

from interop.broker_process import BrokerProcess

TOPICS, PARTITIONS_EACH = 250, 4
PARTITIONS = TOPICS * PARTITIONS_EACH
ROUNDS = 3


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_thousand_partitions(tmp_path):
    # Tiny segments, so every partition has several of them on disk.
    broker = BrokerProcess(tmp_path / "data", "--segment-bytes", "2000").start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=60_000)
        admin.create_topics([NewTopic(f"t{i}", PARTITIONS_EACH, 1) for i in range(TOPICS)])
        admin.close()
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
        for round_number in range(ROUNDS):
            for i in range(TOPICS):
                for partition in range(PARTITIONS_EACH):
                    producer.produce(f"t{i}", b"%d" % round_number * 1000, partition=partition)
            assert producer.flush(60) == 0
        segments = sum(1 for path in broker.data_dir.glob("t*-*/*.log"))
        assert segments >= PARTITIONS * ROUNDS
        # Old segments are opened on demand: one descriptor per partition, not one per segment.
        assert open_descriptors(broker.process.pid) < PARTITIONS + 100
        assert broker.stop(signal.SIGTERM) == 0

        broker.start()
        consumer_view = Producer({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=30)
        counts = {name: len(topic.partitions) for name, topic in consumer_view.topics.items()}
        assert all(counts[f"t{i}"] == PARTITIONS_EACH for i in range(TOPICS))
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "scale-check"})
        for name in ("t0", f"t{TOPICS - 1}"):
            for partition in range(PARTITIONS_EACH):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                assert (low, high) == (0, ROUNDS)
        consumer.close()
    finally:
        broker.kill()
