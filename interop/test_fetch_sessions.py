"""Incremental fetch sessions (KIP-227) with kafka-python, which opens one by default: a consumer
of many partitions reads every record once, in order, through incremental fetches that name only
what moved; and a broker restart, which forgets every session, costs it nothing but a full fetch."""

from __future__ import annotations

import json
import time

from kafka import KafkaConsumer, TopicPartition

from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy, kafka_python_producer

TOPIC = "sessions"
PARTITIONS = 12
FETCH_SESSION_ID_NOT_FOUND = 70


def produce_round(broker: BrokerProcess, round_number: int, per_partition: int) -> None:
    """`per_partition` records to each of half the partitions (alternating halves by round), so
    that each incremental fetch has partitions that moved and partitions that did not."""
    with kafka_python_producer(broker) as producer:
        futures = [producer.send(TOPIC, value=b"%d-%d-%d" % (round_number, partition, n), partition=partition)
                   for partition in range(round_number % 2, PARTITIONS, 2) for n in range(per_partition)]
        producer.flush(timeout=TIMEOUT_SECONDS)
        for future in futures:
            future.get(timeout=TIMEOUT_SECONDS)


def read(consumer: KafkaConsumer, received: dict[int, list[bytes]], count: int) -> None:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    wanted = sum(map(len, received.values())) + count
    while sum(map(len, received.values())) < wanted and time.monotonic() < deadline:
        for partition, batch in consumer.poll(timeout_ms=200).items():
            received[partition.partition].extend(record.value for record in batch)
    assert sum(map(len, received.values())) == wanted, "records missing"


def expected(rounds: int, per_partition: int) -> dict[int, list[bytes]]:
    values: dict[int, list[bytes]] = {partition: [] for partition in range(PARTITIONS)}
    for round_number in range(rounds):
        for partition in range(round_number % 2, PARTITIONS, 2):
            values[partition].extend(b"%d-%d-%d" % (round_number, partition, n) for n in range(per_partition))
    return values


def test_kafka_python_reads_through_an_incremental_session_and_over_a_restart(tmp_path):
    trace = tmp_path / "trace.jsonl"
    rounds, per_partition = 6, 20
    with BrokerProcess(tmp_path / "data", "--num-partitions", str(PARTITIONS), "--trace", str(trace)) as broker:
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest", request_timeout_ms=TIMEOUT_MS,
                                 bootstrap_timeout_ms=TIMEOUT_MS, reconnect_backoff_max_ms=500)
        try:
            produce_round(broker, 0, per_partition)
            consumer.assign([TopicPartition(TOPIC, partition) for partition in range(PARTITIONS)])
            received: dict[int, list[bytes]] = {partition: [] for partition in range(PARTITIONS)}
            read(consumer, received, PARTITIONS // 2 * per_partition)
            for round_number in range(1, rounds):
                if round_number == rounds // 2:
                    broker.stop()
                    broker.start()  # every session is gone
                produce_round(broker, round_number, per_partition)
                read(consumer, received, PARTITIONS // 2 * per_partition)
        finally:
            consumer.close()
        assert_broker_healthy(broker)
    # Every record once, in order per partition.
    assert received == expected(rounds, per_partition)

    fetches = [line for line in map(json.loads, trace.read_text().splitlines()) if line["api"] == "Fetch"]
    incremental = [line for line in fetches if line["request"]["session_epoch"] > 0]
    assert incremental, "kafka-python never fetched incrementally"
    # The trace leaves out fields at their defaults (error code 0, session id 0).
    answered = [line for line in incremental if not line["response"].get("error_code")]
    assert answered and all(line["response"].get("session_id") == line["request"]["session_id"] for line in answered)
    # An incremental answer holds only the partitions with something new: with half of them idle
    # each round, never all of them.
    sent = [sum(len(topic["partitions"]) for topic in line["response"].get("responses", [])) for line in answered]
    assert max(sent) < PARTITIONS
    # After the restart, its session was unknown: it opened a new one with a full fetch.
    restarted = [line for line in incremental if line["response"].get("error_code") == FETCH_SESSION_ID_NOT_FOUND]
    assert restarted
    later = fetches[fetches.index(restarted[0]) + 1:]
    assert any(line["request"]["session_epoch"] == 0 and line["response"].get("session_id") for line in later)
