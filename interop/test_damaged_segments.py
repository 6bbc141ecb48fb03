"""Damage beyond the torn tail, under the real broker process and real clients: a damaged older
segment or a damaged batch of the offsets log neither stops the broker from starting nor from
serving everything that is intact; reads of the damaged range answer CORRUPT_MESSAGE and the
broker log names the file and offset once."""

import signal
import struct
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import CorruptRecordError

from interop.broker_process import BrokerProcess

TOPIC = "comlog"
RECORDS = 100
TIMEOUT_SECONDS = 30
DAMAGED, INTACT = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def batch_positions(path: Path) -> list[int]:
    """Where each record batch of a segment file starts (from their length fields)."""
    data, positions, position = path.read_bytes(), [], 0
    while position + 12 <= len(data):
        positions.append(position)
        position += 12 + struct.unpack_from(">i", data, position + 8)[0]
    return positions


def flip_last_byte_of_batch(path: Path, number: int) -> None:
    """Flip a byte inside the records of the `number`th batch: its CRC-32C fails, its header holds."""
    positions = batch_positions(path)
    end = positions[number + 1] if number + 1 < len(positions) else path.stat().st_size
    data = bytearray(path.read_bytes())
    data[end - 1] ^= 0xFF
    path.write_bytes(bytes(data))


def stop(broker: BrokerProcess, clean: bool) -> None:
    if clean:
        assert broker.stop(signal.SIGTERM) == 0
    else:
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()


def poll_until(consumer: KafkaConsumer, end_offset: int, tp: TopicPartition) -> tuple[list[int], Exception | None]:
    """Offsets consumed until `end_offset`, or until the client raises (with what it raised)."""
    offsets: list[int] = []
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while consumer.position(tp) < end_offset and time.monotonic() < deadline:
        try:
            for records in consumer.poll(500).values():
                offsets.extend(record.offset for record in records)
        except CorruptRecordError as error:
            return offsets, error
    return offsets, None


def confluent_error_at(broker: BrokerProcess, offset: int) -> int | None:
    """The error code librdkafka hands the application when consuming partition 0 from `offset`."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "damage-probe",
                         "enable.auto.commit": False})
    try:
        consumer.assign([ConfluentPartition(TOPIC, 0, offset)])
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                return message.error().code() if message.error() else None
        return None
    finally:
        consumer.close()


@pytest.mark.parametrize("clean", [True, False], ids=["clean-stop", "kill-9"])
@pytest.mark.parametrize("damage", ["flipped-byte", "truncated"])
def test_a_damaged_older_segment_is_refused_only_where_damaged(tmp_path, clean, damage):
    broker = BrokerProcess(tmp_path / "data", "--segment-bytes", "2000", "--num-partitions", "2",
                           "--flush-messages", "1").start()
    try:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
        for i in range(RECORDS):
            for tp in (DAMAGED, INTACT):
                producer.send(TOPIC, value=b"value-%04d" % i, partition=tp.partition).get(TIMEOUT_SECONDS)
        producer.close()
        stop(broker, clean)
        segments = sorted((tmp_path / "data" / f"{TOPIC}-0").glob("*.log"))
        victim, after_victim = segments[1], int(segments[2].stem)
        first_damaged = int(victim.stem) + 2  # the segment's third batch (one record each)
        if damage == "flipped-byte":
            flip_last_byte_of_batch(victim, 2)
            resume = first_damaged + 1
        else:
            victim.write_bytes(victim.read_bytes()[: batch_positions(victim)[2] + 30])
            resume = after_victim

        broker.start()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        consumer.assign([INTACT])
        consumer.seek_to_beginning(INTACT)
        assert poll_until(consumer, RECORDS, INTACT) == (list(range(RECORDS)), None)

        consumer.assign([DAMAGED])
        consumer.seek_to_beginning(DAMAGED)
        offsets, error = poll_until(consumer, RECORDS, DAMAGED)
        assert offsets == list(range(first_damaged)) and error is not None
        assert confluent_error_at(broker, first_damaged) == KafkaError.INVALID_MSG  # CORRUPT_MESSAGE (2)
        consumer.seek(DAMAGED, resume)
        assert poll_until(consumer, RECORDS, DAMAGED) == (list(range(resume, RECORDS)), None)
        consumer.close()

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        assert producer.send(TOPIC, value=b"after", partition=0).get(TIMEOUT_SECONDS).offset == RECORDS
        producer.close()
        warnings = [line for line in broker.log_text().splitlines() if "damaged record batches" in line]
        assert len(warnings) == 1, warnings  # once per damaged spot, not per fetch
        assert f"{victim} at byte {batch_positions(victim)[2]} (offset {first_damaged})" in warnings[0]
        assert "Traceback" not in broker.log_text()
        assert broker.stop(signal.SIGTERM) == 0
    finally:
        broker.kill()


@pytest.mark.parametrize("clean", [True, False], ids=["clean-stop", "kill-9"])
def test_a_damaged_batch_of_the_offsets_log_loses_only_its_own_commit(tmp_path, clean):
    broker = BrokerProcess(tmp_path / "data", "--num-partitions", "4").start()
    try:
        partitions = [TopicPartition(TOPIC, number) for number in range(4)]
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="damaged-offsets",
                                 enable_auto_commit=False)
        consumer.assign(partitions)
        for number, tp in enumerate(partitions):  # one commit, so one batch, per partition
            consumer.commit({tp: OffsetAndMetadata(10 + number, "", -1)})
        consumer.close()
        stop(broker, clean)
        offsets_log = tmp_path / "data" / "__consumer_offsets" / "00000000000000000000.log"
        assert len(batch_positions(offsets_log)) == 4
        flip_last_byte_of_batch(offsets_log, 2)

        broker.start()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="damaged-offsets",
                                 enable_auto_commit=False)
        committed = [consumer.committed(tp) for tp in partitions]
        consumer.close()
        assert committed == [10, 11, None, 13]
        assert "__consumer_offsets/00000000000000000000.log at byte" in broker.log_text()
        assert "the commits at offsets 2 to 2 are lost to damage" in broker.log_text()
        assert broker.stop(signal.SIGTERM) == 0
    finally:
        broker.kill()
