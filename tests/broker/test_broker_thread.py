"""A broker runs in any trio run, in any thread: signal handling is its command line's business."""

import logging
import queue
import threading

import pytest
import trio

from broker.config import BrokerConfig
from broker.server import Broker
from protocol import records
from protocol.messages import ApiKey
from wire_client import WireClient



def run_broker_in_a_thread(config: BrokerConfig, opened: queue.Queue, failures: list) -> threading.Thread:
    async def run() -> None:
        async with Broker(config) as broker:
            opened.put((broker, trio.lowlevel.current_trio_token()))
            await broker.serve()

    def main() -> None:
        try:
            trio.run(run)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failures.append(exc)

    thread = threading.Thread(target=main, name="broker", daemon=True)
    thread.start()
    return thread


async def produce_one(port: int) -> int:
    client = await WireClient.connect(port)
    try:
        versions = await client.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
        assert versions.error_code == 0
        response = await client.request(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [{"name": "comlog", "partition_data": [
                {"index": 0, "records": records.build_batch([records.Record(value=b"from the main thread")])}]}]})
    finally:
        await client.aclose()
    partition = response.responses[0].partition_responses[0]
    assert partition.error_code == 0
    return partition.base_offset


async def reopen(config: BrokerConfig) -> None:
    async with Broker(config):
        pass


def test_a_broker_in_a_thread_of_its_own_serves_and_stops_cleanly(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="broker")
    config = BrokerConfig(port=0, data_dir=tmp_path / "data")
    opened: queue.Queue = queue.Queue()
    failures: list = []
    thread = run_broker_in_a_thread(config, opened, failures)
    broker, token = opened.get(timeout=30)
    try:
        assert trio.run(produce_one, broker.port) == 0
    finally:
        trio.from_thread.run_sync(broker.stop, trio_token=token)
        thread.join(30)
    assert not thread.is_alive() and not failures
    assert "stopped: logs closed cleanly" in caplog.text
    # Everything it opened is closed: the data directory's lock is free for the next broker.
    trio.run(reopen, config)


async def test_serving_a_broker_not_opened_says_how_to_open_it(tmp_path):
    with pytest.raises(RuntimeError, match="async with Broker"):
        await Broker(BrokerConfig(port=0, data_dir=tmp_path / "data")).serve()
