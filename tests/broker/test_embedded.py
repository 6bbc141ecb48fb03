"""The embedded broker (broker.embedded): started from synchronous, asyncio and trio code, used
by real clients, stopped with its temporary data removed, and never touching signal handling."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer

from broker.data_dir_lock import DataDirInUse
from broker.embedded import EmbeddedBroker
from protocol import records
from protocol.messages import ApiKey
from wire_client import WireClient

TIMEOUT_SECONDS = 30


def produce_and_consume_with_confluent(bootstrap_servers: str) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    for n in range(3):
        producer.produce("embedded", f"record-{n}".encode())
    assert producer.flush(TIMEOUT_SECONDS) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"g-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe(["embedded"])
        values = []
        while len(values) < 3:
            message = consumer.poll(TIMEOUT_SECONDS)
            assert message is not None and message.error() is None, message and message.error()
            values.append(message.value())
        return values
    finally:
        consumer.close()


def test_from_synchronous_code_served_to_real_clients_and_its_data_removed():
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with EmbeddedBroker(num_partitions=1) as broker:
        data_dir = broker.data_dir
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        assert produce_and_consume_with_confluent(broker.bootstrap_servers) == [b"record-0", b"record-1", b"record-2"]
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert not data_dir.exists()


def test_from_a_thread_other_than_the_main_one():
    found = []

    def run() -> None:
        with EmbeddedBroker() as broker:
            found.extend(produce_and_consume_with_confluent(broker.bootstrap_servers))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(2 * TIMEOUT_SECONDS)
    assert found == [b"record-0", b"record-1", b"record-2"]


def test_a_given_data_directory_is_kept_and_reopened(tmp_path):
    with EmbeddedBroker(data_dir=tmp_path / "data") as broker:
        produce_and_consume_with_confluent(broker.bootstrap_servers)
    with EmbeddedBroker(data_dir=tmp_path / "data") as broker:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "reader",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe(["embedded"])
        message = consumer.poll(TIMEOUT_SECONDS)
        consumer.close()
        assert message is not None and message.value() == b"record-0"
    assert (tmp_path / "data" / "embedded-0").is_dir()


def test_keep_data_keeps_the_temporary_directory():
    with EmbeddedBroker(keep_data=True) as broker:
        data_dir = broker.data_dir
    assert (data_dir / "meta.properties").exists()


def test_a_broker_that_cannot_start_says_why(tmp_path):
    with EmbeddedBroker(data_dir=tmp_path):
        with pytest.raises(DataDirInUse):
            EmbeddedBroker(data_dir=tmp_path).start()


def test_from_asyncio_code_with_aiokafka():
    async def run() -> list[bytes]:
        async with EmbeddedBroker() as broker:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
            await producer.start()
            try:
                await producer.send_and_wait("aio", b"from asyncio")
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer("aio", bootstrap_servers=broker.bootstrap_servers,
                                        auto_offset_reset="earliest", group_id="aio")
            await consumer.start()
            try:
                message = await asyncio.wait_for(consumer.getone(), TIMEOUT_SECONDS)
            finally:
                await consumer.stop()
            return [message.value]

    assert asyncio.run(run()) == [b"from asyncio"]


async def test_from_trio_code_in_the_callers_own_run():
    async with EmbeddedBroker() as broker:
        data_dir = broker.data_dir
        client = await WireClient.connect(broker.port)
        response = await client.request(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [{
                "name": "trio", "partition_data": [{"index": 0, "records": records.build_batch(
                    [records.Record(value=b"from trio")])}]}]})
        await client.aclose()
        assert response.responses[0].partition_responses[0].error_code == 0
        # No thread of its own: the broker is a task of this run.
        assert not [t for t in threading.enumerate() if t.name.startswith("comlog-broker")]
    assert not data_dir.exists()


def test_a_request_trace_from_the_embedded_api(tmp_path):
    with EmbeddedBroker(trace=tmp_path / "trace.jsonl") as broker:
        produce_and_consume_with_confluent(broker.bootstrap_servers)
    apis = {json.loads(line)["api"] for line in (tmp_path / "trace.jsonl").read_text().splitlines()}
    assert {"ApiVersions", "Metadata", "Produce", "Fetch", "JoinGroup"} <= apis
