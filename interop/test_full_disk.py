"""A full disk, and a process out of file descriptors: each request that needs a new file gets
the error code Kafka answers, nothing half-made stays behind, the broker goes on serving, and a
SIGTERM still stops it cleanly with a message that says what could not be written.

The data directory is a small tmpfs filled up with a filler file (mounting needs root)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from interop.broker_process import BrokerProcess
from protocol import records
from protocol.errors import ErrorCode
from tests.broker.wire_client import WireClient
from protocol.messages import ApiKey

TOPIC_RESOURCE = 2
DISK_SIZE = "4m"
LATEST = -1
COMMIT_RETRIES = 20
# Larger than what is left of the offsets log's last page: the commit needs a new one.
PAGE_FILLING_METADATA = "m" * 4000
STORAGE_WARNING = "cannot write committed offsets"


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the data directory needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


@pytest.fixture
def disk_broker(small_disk):
    """A broker whose data directory is on the small disk, killed after the test."""
    with BrokerProcess(small_disk / "data") as process:
        yield process


def stop_cleanly(broker: BrokerProcess) -> None:
    assert broker.stop(signal.SIGTERM) == 0
    assert problems(broker) == []


async def restart_with_room(broker: BrokerProcess, client: WireClient, filler: Path) -> WireClient:
    """Stop the broker cleanly, free the disk, start it again: a client of the new process."""
    await client.aclose()
    stop_cleanly(broker)
    filler.unlink()
    broker.start()
    return await WireClient.connect(broker.port)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with a filler file; remove it to free the space again."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(chunk)
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC
        # What the last, partial write did not take.
        try:
            while True:
                file.write(b"\0")
        except OSError:
            pass
    return filler


def partition_directories(data_dir: Path, topic: str) -> list[str]:
    return sorted(path.name for path in data_dir.glob(f"{topic}-*"))


async def create_topic(client: WireClient, name: str, partitions: int):
    response = await client.request(ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                    "assignments": [], "configs": []}], "timeout_ms": 30_000})
    [result] = response.topics
    return result


async def topic_metadata(client: WireClient, name: str):
    response = await client.request(ApiKey.METADATA, 12, {
        "topics": [{"name": name, "topic_id": uuid.UUID(int=0)}], "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False})
    return response.topics[0]


async def topic_error(client: WireClient, name: str) -> ErrorCode:
    return (await topic_metadata(client, name)).error_code


async def commit(client: WireClient, offset: int, metadata: str = "") -> ErrorCode:
    response = await client.request(ApiKey.OFFSET_COMMIT, 8, {
        "group_id": "full-disk", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": "comlog", "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                       "committed_leader_epoch": -1, "committed_metadata": metadata}]}]})
    return response.topics[0].partitions[0].error_code


async def committed(client: WireClient) -> int:
    response = await client.request(ApiKey.OFFSET_FETCH, 8, {"require_stable": False, "groups": [
        {"group_id": "full-disk", "topics": [{"name": "comlog", "partition_indexes": [0]}]}]})
    return response.groups[0].topics[0].partitions[0].committed_offset


async def produce(client: WireClient, values: list[bytes]) -> ErrorCode:
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": 1, "timeout_ms": 10_000,
        "topic_data": [{"name": "comlog", "partition_data": [
            {"index": 0, "records": records.build_batch([records.Record(value=value) for value in values])}]}]})
    return response.responses[0].partition_responses[0].error_code


async def log_end_offset(client: WireClient) -> int:
    response = await client.request(ApiKey.LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "comlog", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": LATEST}]}]})
    return response.topics[0].partitions[0].offset


def problems(broker: BrokerProcess) -> list[str]:
    return [line for line in broker.output if "Traceback" in line or "cannot start" in line]


async def test_create_topics_on_a_full_disk_answers_storage_error_and_leaves_nothing(small_disk, disk_broker):
    broker = disk_broker
    client = await WireClient.connect(broker.port)
    filler = fill(small_disk)
    result = await create_topic(client, "no-room", 8)
    assert result.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert "No space left on device" in result.error_message
    assert partition_directories(broker.data_dir, "no-room") == []
    # The same connection is served on, and the topic does not exist.
    assert await topic_error(client, "no-room") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    client = await restart_with_room(broker, client, filler)
    assert await topic_error(client, "no-room") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert partition_directories(broker.data_dir, "no-room") == []
    # With room again, the same topic can be created.
    assert (await create_topic(client, "no-room", 8)).error_code == ErrorCode.NONE
    assert len(partition_directories(broker.data_dir, "no-room")) == 8
    await client.aclose()
    stop_cleanly(broker)


async def test_create_partitions_and_alter_configs_on_a_full_disk_answer_storage_error_and_delete_topics_works(
        small_disk, disk_broker):
    client = await WireClient.connect(disk_broker.port)
    assert (await create_topic(client, "grows", 2)).error_code == ErrorCode.NONE
    filler = fill(small_disk)
    response = await client.request(ApiKey.CREATE_PARTITIONS, 3, {
        "topics": [{"name": "grows", "count": 6, "assignments": None}], "timeout_ms": 30_000, "validate_only": False})
    assert response.results[0].error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert len((await topic_metadata(client, "grows")).partitions) == 2
    assert partition_directories(disk_broker.data_dir, "grows") == ["grows-0", "grows-1"]
    altered = await client.request(ApiKey.ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
        {"resource_type": TOPIC_RESOURCE, "resource_name": "grows",
         "configs": [{"name": "retention.ms", "value": "60000"}]}]})
    assert altered.responses[0].error_code == ErrorCode.KAFKA_STORAGE_ERROR
    # Deleting needs no room: the topic goes, and its directories with it.
    deleted = await client.request(ApiKey.DELETE_TOPICS, 4, {"topic_names": ["grows"], "timeout_ms": 30_000})
    assert deleted.responses[0].error_code == ErrorCode.NONE
    assert partition_directories(disk_broker.data_dir, "grows") == []
    client = await restart_with_room(disk_broker, client, filler)
    assert await topic_error(client, "grows") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    await client.aclose()
    stop_cleanly(disk_broker)


async def test_offset_commit_on_a_full_disk_answers_not_coordinator_with_one_warning(small_disk, disk_broker):
    client = await WireClient.connect(disk_broker.port)
    assert await commit(client, 1) == ErrorCode.NONE
    filler = fill(small_disk)
    # As a client does when told NOT_COORDINATOR: ask again, many times.
    for _ in range(COMMIT_RETRIES):
        assert await commit(client, 2, PAGE_FILLING_METADATA) == ErrorCode.NOT_COORDINATOR
    assert await committed(client) == 1
    warnings = [line for line in disk_broker.output if STORAGE_WARNING in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0], warnings
    assert not [line for line in disk_broker.output if " ERROR " in line]

    filler.unlink()
    assert await commit(client, 3) == ErrorCode.NONE
    assert await committed(client) == 3
    await client.aclose()
    stop_cleanly(disk_broker)


async def test_init_producer_id_on_a_full_disk_answers_coordinator_load_in_progress_with_one_warning(
        small_disk, disk_broker):
    client = await WireClient.connect(disk_broker.port)
    filler = fill(small_disk)
    request = {"transactional_id": None, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
    for _ in range(COMMIT_RETRIES):
        refused = await client.request(ApiKey.INIT_PRODUCER_ID, 4, request)
        assert (refused.error_code, refused.producer_id) == (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, -1)
    assert len([line for line in disk_broker.output if "cannot reserve producer ids" in line]) == 1

    filler.unlink()
    granted = await client.request(ApiKey.INIT_PRODUCER_ID, 4, request)
    assert granted.error_code == ErrorCode.NONE and granted.producer_id >= 0
    await client.aclose()
    stop_cleanly(disk_broker)


async def test_sigterm_on_a_full_disk_stops_and_says_what_the_next_start_recovers(small_disk, disk_broker):
    client = await WireClient.connect(disk_broker.port)
    for round_number in range(3):
        assert await produce(client, [b"kept %d" % round_number] * 10) == ErrorCode.NONE
    await client.aclose()
    filler = fill(small_disk)
    # Everything acknowledged was written before the disk filled: the broker stops with 0.
    stop_cleanly(disk_broker)
    text = disk_broker.log_text()
    assert "could not be written" in text and "the next start recovers" in text, text

    filler.unlink()
    disk_broker.start()
    client = await WireClient.connect(disk_broker.port)
    assert await log_end_offset(client) == 30
    assert await produce(client, [b"after"]) == ErrorCode.NONE
    await client.aclose()
    stop_cleanly(disk_broker)


async def test_create_topics_without_file_descriptors_left_answers_storage_error_and_leaves_nothing(broker):
    client = await WireClient.connect(broker.port)
    pid = broker.process.pid
    # Room for a few more descriptors, far fewer than 500 partitions need.
    limit = len(os.listdir(f"/proc/{pid}/fd")) + 40
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    result = await create_topic(client, "too-many", 500)
    assert result.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert "Too many open files" in result.error_message
    assert partition_directories(broker.data_dir, "too-many") == []
    # The descriptors of the partitions opened before the failure were given back.
    assert len(os.listdir(f"/proc/{pid}/fd")) < limit - 20
    assert await topic_error(client, "too-many") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert (await create_topic(client, "fits", 4)).error_code == ErrorCode.NONE
    await client.aclose()
    stop_cleanly(broker)
