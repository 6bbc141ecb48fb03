"""Compacted topics under real clients and a real broker process: keyed overwrites and tombstones
cleaned to the latest value of each key as confluent-kafka, kafka-python and aiokafka consumers
read them; a kill -9 in the middle of a cleaning pass losing nothing; an idempotent producer's
state surviving a cleaning and a restart; transactional data read the same before and after."""

from __future__ import annotations

import asyncio
import uuid

import trio
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition

from interop.admin_clients import eventually
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy
from protocol.messages import ApiKey
from tests.broker.wire_client import WireClient

# The cleaner looks for work every 50 ms; segments roll after 200 ms without appends, so that
# everything produced becomes cleanable soon after.
CLEANER_FLAGS = ("--log-cleaner-backoff-ms", "50")
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "16384", "segment.ms": "200",
             "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"}
# A pass long enough to be killed in the middle of; any dirty byte calls for one, so that the
# record produced after the kill is cleaned however small it is next to the rest.
LARGE = {**COMPACTED, "segment.bytes": "1048576", "min.cleanable.dirty.ratio": "0"}

Record = tuple[int, bytes, bytes | None]


def create_topic(broker: BrokerProcess, name: str, configs: dict[str, str]) -> str:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=configs)])[name].result(TIMEOUT_SECONDS)
    return name


def confluent_read(broker: BrokerProcess, topic: str, isolation: str = "read_uncommitted") -> list[Record]:
    """Every record from the beginning to the end, as a librdkafka consumer reads them."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": True, "isolation.level": isolation})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        found = []
        while True:
            message = consumer.poll(TIMEOUT_SECONDS)
            assert message is not None, "no end of partition reached"
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                return found
            found.append((message.offset(), message.key(), message.value()))
    finally:
        consumer.close()


def kafka_python_read(broker: BrokerProcess, topic: str, end: int) -> list[Record]:
    partition = KafkaPythonTopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=TIMEOUT_SECONDS * 1000)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        found = []
        while consumer.position(partition) < end:
            for records in consumer.poll(1000).values():
                found += [(r.offset, r.key, r.value) for r in records]
        return found
    finally:
        consumer.close()


def aiokafka_read(broker: BrokerProcess, topic: str, end: int) -> list[Record]:
    async def read() -> list[Record]:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = AioTopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            found = []
            while await consumer.position(partition) < end:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found += [(r.offset, r.key, r.value) for r in records]
            return found
        finally:
            await consumer.stop()
    return asyncio.run(asyncio.wait_for(read(), TIMEOUT_SECONDS))


def latest(records: list[Record]) -> list[Record]:
    """Of each key its last record, tombstones left out: what a fully cleaned topic holds."""
    last = {key: (offset, key, value) for offset, key, value in records}
    return sorted(record for record in last.values() if record[2] is not None)


def produce(producer: Producer, topic: str, pairs: list[tuple[bytes, bytes | None]]) -> list[Record]:
    written: list[Record] = []
    failures: list[KafkaError] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(error)
        else:
            written.append((message.offset(), message.key(), message.value()))

    for key, value in pairs:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(TIMEOUT_SECONDS) == 0
    assert not failures, failures
    return sorted(written)


def cleaned(broker: BrokerProcess, topic: str, expected: list[Record], timeout: float = 60) -> None:
    eventually(lambda: confluent_read(broker, topic) == expected, f"{topic} cleaned to {len(expected)} records",
               timeout)


def overwrites(count: int, keys: int, tag: bytes = b"") -> list[tuple[bytes, bytes | None]]:
    return [(b"key-%d" % (n % keys), b"value-%d%s" % (n, tag)) for n in range(count)]


def active_producers(broker: BrokerProcess, topic: str) -> list[tuple[int, int, int]]:
    """(producer id, epoch, last sequence) of each producer DescribeProducers reports."""
    async def ask():
        client = await WireClient.connect(broker.port)
        try:
            response = await client.request(ApiKey.DESCRIBE_PRODUCERS, 0, {
                "topics": [{"name": topic, "partition_indexes": [0]}]})
        finally:
            await client.aclose()
        return [(p.producer_id, p.producer_epoch, p.last_sequence)
                for p in response.topics[0].partitions[0].active_producers]
    return trio.run(ask)


def test_overwrites_and_tombstones_are_cleaned_for_every_client(tmp_path):
    with BrokerProcess(tmp_path / "data", *CLEANER_FLAGS) as broker:
        topic = create_topic(broker, "table", COMPACTED)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 1,
                         "batch.size": 4096})
        written = produce(producer, topic, overwrites(3000, 50))
        written += produce(producer, topic, [(b"key-%d" % n, None) for n in range(10)])
        # Tombstones are kept by the first pass that sees them (delete.retention.ms from then on);
        # the pass that later writes call for removes them.
        expected = latest(written)
        eventually(lambda: [r for r in confluent_read(broker, topic) if r[2] is not None] == expected,
                   "the overwrites cleaned", 60)
        written += produce(producer, topic, [(b"key-10", b"last")])
        expected = latest(written)
        cleaned(broker, topic, expected)
        end = written[-1][0] + 1
        assert kafka_python_read(broker, topic, end) == expected
        assert aiokafka_read(broker, topic, end) == expected
        assert_broker_healthy(broker)


def test_a_kill_during_a_cleaning_pass_loses_nothing(tmp_path):
    with BrokerProcess(tmp_path / "data", *CLEANER_FLAGS) as broker:
        topic = create_topic(broker, "killed", LARGE)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "batch.num.messages": 10})
        written = produce(producer, topic, overwrites(60_000, 500))
        directory = tmp_path / "data" / f"{topic}-0"
        # Killed while a pass writes its cleaned segment.
        eventually(lambda: any(path.name.endswith(".cleaned") for path in directory.iterdir()),
                   "a cleaning pass under way", 60)
        broker.kill()
        broker.start()
        assert latest(confluent_read(broker, topic)) == latest(written)
        written += produce(producer, topic, [(b"key-0", b"after the kill")])
        cleaned(broker, topic, latest(written))
        assert_broker_healthy(broker)


def test_an_idempotent_producers_state_survives_cleaning_and_a_kill(tmp_path):
    with BrokerProcess(tmp_path / "data", *CLEANER_FLAGS) as broker:
        topic = create_topic(broker, "producers", COMPACTED)
        idempotent = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 1,
                         "batch.size": 4096})
        written = produce(idempotent, topic, overwrites(200, 5, b"-idempotent"))
        ((producer_id, epoch, last_sequence),) = active_producers(broker, topic)
        # Another producer overwrites every key: the idempotent one's last batch is kept, emptied.
        other = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
        for key, value in overwrites(5, 5, b"-other"):
            metadata = other.send(topic, key=key, value=value).get(TIMEOUT_SECONDS)
            written.append((metadata.offset, key, value))
        other.close()
        cleaned(broker, topic, latest(written))
        broker.kill()  # before any producer-state snapshot: the restart replays the cleaned log
        broker.start()
        assert active_producers(broker, topic) == [(producer_id, epoch, last_sequence)]
        written += produce(idempotent, topic, overwrites(20, 5, b"-again"))
        assert [p[:2] for p in active_producers(broker, topic)] == [(producer_id, epoch)]
        cleaned(broker, topic, latest(written))
        idempotent.flush(TIMEOUT_SECONDS)
        assert_broker_healthy(broker)


def test_transactions_on_a_compacted_topic_read_the_same_after_cleaning(tmp_path):
    with BrokerProcess(tmp_path / "data", *CLEANER_FLAGS, "--transaction-max-timeout-ms", "60000") as broker:
        # Not cleaned before the first read: its one segment rolls once segment.ms is altered.
        topic = create_topic(broker, "transactional", {**COMPACTED, "segment.ms": "604800000",
                                                       "delete.retention.ms": "86400000"})
        producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "compacting",
                             "linger.ms": 1})
        producer.init_transactions(TIMEOUT_SECONDS)
        committed: list[tuple[bytes, bytes]] = []
        for round_number in range(6):
            pairs = [(b"key-%d" % n, b"round-%d" % round_number) for n in range(8)]
            producer.begin_transaction()
            for key, value in pairs:
                producer.produce(topic, key=key, value=value)
            if round_number % 2:
                producer.abort_transaction(TIMEOUT_SECONDS)
            else:
                producer.commit_transaction(TIMEOUT_SECONDS)
                committed += pairs
        before = confluent_read(broker, topic, "read_committed")
        assert [(key, value) for _, key, value in before] == committed
        expected = latest(before)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        quick_roll = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("segment.ms", "200", incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([quick_roll])[quick_roll].result(TIMEOUT_SECONDS)
        # Aborted records go, and what read_committed sees of each key stays its latest.
        eventually(lambda: confluent_read(broker, topic, "read_uncommitted") == expected, "the aborts cleaned", 60)
        assert confluent_read(broker, topic, "read_committed") == expected
        assert_broker_healthy(broker)
