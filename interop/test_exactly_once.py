"""Exactly-once processing through broker crashes: a consume-transform-produce loop
(interop/eos_processor.py, confluent-kafka, send_offsets_to_transaction) copies a pre-filled input
topic to an output topic while the broker process is SIGKILLed and restarted on the same data
directory and port several times. At the end the output, read with read_committed, holds every
input record exactly once, in order per partition, and the group's committed offsets are the
input's ends.

Three kills land at chosen points of a transaction, the processor holding there until the test
lets it go on: after its records are appended (the transaction Ongoing in the partitions and the
coordinator), after its offsets are sent (pending in the group; the broker stays down while the
processor commits, so the commit retries into a dead port), and between transactions. Two more
land wherever the free-running processor is when the test sees a commit go by."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from interop.bench.servers import create_topics
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS
from interop.txn_clients import committed_offsets, unique

PROCESSOR = Path(__file__).parent / "eos_processor.py"
PARTITIONS = 3
PER_PARTITION = 400
TOTAL = PARTITIONS * PER_PARTITION
BATCH = 20
PAUSES = {"3": "produced", "9": "offsets_sent", "15": "committed"}
# Committed-record counts after which the broker is killed wherever the processor is.
FREE_KILLS = [TOTAL // 2, TOTAL * 3 // 4]
EVENT_TIMEOUT_SECONDS = 60
_BROKER_PROBLEM = re.compile(r" (ERROR|CRITICAL) |Traceback")


def prefill(broker: BrokerProcess, topic: str) -> dict[int, list[bytes]]:
    values = {partition: [f"in-{partition}-{i}".encode() for i in range(PER_PARTITION)]
              for partition in range(PARTITIONS)}
    errors = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "message.timeout.ms": TIMEOUT_MS, "linger.ms": 5})
    for partition, partition_values in values.items():
        for value in partition_values:
            producer.produce(topic, value=value, key=value, partition=partition,
                             on_delivery=lambda error, _: errors.append(error) if error else None)
    assert producer.flush(TIMEOUT_SECONDS) == 0 and not errors, errors
    return values


def read_committed(broker: BrokerProcess, topic: str, last: dict[int, bytes]) -> dict[int, list[bytes]]:
    """Every partition of `topic` read with read_committed up to its end, once its `last` value has
    been seen (that record's transaction is the last one, so its end is the partition's end)."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("eos-reader"),
                         "isolation.level": "read_committed", "enable.partition.eof": True,
                         "enable.auto.commit": False, "socket.timeout.ms": TIMEOUT_MS})
    seen: dict[int, list[bytes]] = {partition: [] for partition in last}
    at_end: set[int] = set()
    deadline = time.monotonic() + EVENT_TIMEOUT_SECONDS
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in last])
        while len(at_end) < len(last) and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is None:
                seen[message.partition()].append(message.value())
            elif message.error().code() == KafkaError._PARTITION_EOF:
                if last[message.partition()] in seen[message.partition()]:
                    at_end.add(message.partition())
            else:
                raise AssertionError(message.error())
    finally:
        consumer.close()
    assert at_end == set(last), f"partitions {set(last) - at_end} not read to their end in time"
    return seen


class ProcessorProcess:
    def __init__(self, spec: dict) -> None:
        self.process = subprocess.Popen([sys.executable, str(PROCESSOR), json.dumps(spec)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events: queue.Queue[dict | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_events, daemon=True).start()
        threading.Thread(target=self.stderr.extend, args=(self.process.stderr,), daemon=True).start()

    def _read_events(self) -> None:
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put(None)

    def next_event(self) -> dict:
        try:
            event = self.events.get(timeout=EVENT_TIMEOUT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"the processor said nothing for {EVENT_TIMEOUT_SECONDS} s:\n"
                                 + "".join(self.stderr[-40:])) from None
        assert event is not None, f"the processor exited ({self.process.wait()}):\n" + "".join(self.stderr[-40:])
        return event

    def go_on(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(TIMEOUT_SECONDS)


def test_consume_transform_produce_is_exactly_once_through_broker_kills(broker):
    input_topic, output_topic, group = unique("eos-in"), unique("eos-out"), unique("eos-group")
    create_topics(broker.bootstrap, {input_topic: PARTITIONS, output_topic: PARTITIONS})
    values = prefill(broker, input_topic)
    processor = ProcessorProcess({"bootstrap": broker.bootstrap, "input": input_topic, "output": output_topic,
                                  "group": group, "transactional_id": unique("eos"), "total": TOTAL,
                                  "batch": BATCH, "pauses": PAUSES})
    kills = []
    free_kills = list(FREE_KILLS)
    try:
        while "done" not in (event := processor.next_event()):
            if "paused" in event:
                kills.append(event["stage"])
                broker.stop(signal.SIGKILL)
                if event["stage"] == "offsets_sent":
                    processor.go_on()
                    broker.start()
                else:
                    broker.start()
                    processor.go_on()
            elif "committed" in event and free_kills and event["committed"] >= free_kills[0]:
                kills.append(f"after {free_kills.pop(0)} records")
                broker.stop(signal.SIGKILL)
                broker.start()
        assert processor.process.wait(TIMEOUT_SECONDS) == 0, "".join(processor.stderr[-40:])
    finally:
        processor.kill()
    assert len(kills) == len(PAUSES) + len(FREE_KILLS), f"only these kills happened mid-stream: {kills} ({event})"

    expected = {partition: [b"out:" + value for value in partition_values]
                for partition, partition_values in values.items()}
    output = read_committed(broker, output_topic, {partition: found[-1] for partition, found in expected.items()})
    for partition in range(PARTITIONS):
        assert output[partition] == expected[partition], \
            f"partition {partition}: {len(output[partition])} records, {len(set(output[partition]))} distinct, " \
            f"of {PER_PARTITION}; processor {event['done']}"
    assert committed_offsets(broker, group, [(input_topic, p) for p in range(PARTITIONS)], stable=True) == \
        {(input_topic, p): PER_PARTITION for p in range(PARTITIONS)}
    problems = [line for line in broker.output if _BROKER_PROBLEM.search(line)]
    assert not problems, "the broker logged errors:\n" + "".join(problems)
