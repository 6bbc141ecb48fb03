"""Topic administration through aiokafka's AIOKafkaAdminClient, which speaks the older versions of
the admin APIs (CreateTopics v3, DescribeConfigs v2, AlterConfigs v1, CreatePartitions v1,
DeleteRecords v0, DeleteTopics v3): the same answers as the newer versions, in their older shapes.

aiokafka runs on asyncio while the suite runs async tests under trio, so the test is a plain
function driving its own asyncio loop, bounded by one overall timeout."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (InvalidConfigurationError, InvalidPartitionsError, InvalidReplicationFactorError,
                             InvalidTopicError, NoError, TopicAlreadyExistsError, UnknownTopicOrPartitionError)
from aiokafka.structs import TopicPartition

from interop.admin_clients import KAFKA_TOPIC_DEFAULTS, eventually, partition_directories
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy, kafka_python_producer

TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5


def topic_configs(response) -> dict[str, tuple[str, int]]:
    (resource,) = response.resources
    assert resource[0] == NoError.errno
    return {entry[0]: (entry[1], entry[3]) for entry in resource[4]}


async def administer(broker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        created = await admin.create_topics([
            NewTopic("aio-admin", 3, 1, topic_configs={"retention.ms": "60000"}), NewTopic("aio-admin", 1, 1),
            NewTopic("aio bad", 1, 1), NewTopic("aio-rf3", 1, 3), NewTopic("aio-grow", 2, 1),
            NewTopic("aio-policy", 1, 1, topic_configs={"cleanup.policy": "compacted"})])
        # The request names aio-admin twice, so Kafka refuses both mentions of it.
        assert [(topic, code) for topic, code, _ in created.topic_errors] == [
            ("aio-admin", 42), ("aio-admin", 42), ("aio bad", InvalidTopicError.errno),
            ("aio-rf3", InvalidReplicationFactorError.errno), ("aio-grow", NoError.errno),
            ("aio-policy", InvalidConfigurationError.errno)]
        created = await admin.create_topics([NewTopic("aio-admin", 3, 1, topic_configs={"retention.ms": "60000"}),
                                             NewTopic("aio-grow", 1, 1)])
        assert [(topic, code) for topic, code, _ in created.topic_errors] == [
            ("aio-admin", NoError.errno), ("aio-grow", TopicAlreadyExistsError.errno)]
        assert {"aio-admin", "aio-grow"} <= set(await admin.list_topics())

        resource = ConfigResource(ConfigResourceType.TOPIC, "aio-admin")
        (described,) = await admin.describe_configs([resource])
        defaults = {name: (value, DEFAULT_CONFIG) for name, value in KAFKA_TOPIC_DEFAULTS.items()}
        assert topic_configs(described) == {**defaults, "retention.ms": ("60000", TOPIC_CONFIG)}
        # AlterConfigs v1 replaces every override with the ones given.
        (altered,) = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "aio-admin",
                                                               {"segment.ms": "3600000"})])
        assert [entry[0] for entry in altered.resources] == [NoError.errno]
        (described,) = await admin.describe_configs([resource])
        assert topic_configs(described) == {**defaults, "segment.ms": ("3600000", TOPIC_CONFIG)}
        (refused,) = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "aio-admin",
                                                               {"retention.bytes": "lots"})])
        assert [entry[0] for entry in refused.resources] == [InvalidConfigurationError.errno]

        grown = await admin.create_partitions({"aio-grow": NewPartitions(4)})
        assert [(topic, code) for topic, code, _ in grown.topic_errors] == [("aio-grow", NoError.errno)]
        with pytest.raises(InvalidPartitionsError):
            await admin.create_partitions({"aio-admin": NewPartitions(2)})
        with pytest.raises(UnknownTopicOrPartitionError):
            await admin.create_partitions({"aio-none": NewPartitions(2)})
        assert partition_directories(broker, "aio-grow") == [f"aio-grow-{i}" for i in range(4)]

        with kafka_python_producer(broker) as producer:
            for i in range(5):
                producer.send("aio-grow", value=b"%d" % i, partition=3)
            producer.flush(timeout=TIMEOUT_SECONDS)
        trimmed = await admin.delete_records({TopicPartition("aio-grow", 3): RecordsToDelete(2)})
        assert trimmed == {TopicPartition("aio-grow", 3): 2}

        deleted = await admin.delete_topics(["aio-admin", "aio-grow", "aio-none"])
        assert deleted.topic_error_codes == [("aio-admin", NoError.errno), ("aio-grow", NoError.errno),
                                             ("aio-none", UnknownTopicOrPartitionError.errno)]
        assert not {"aio-admin", "aio-grow"} & set(await admin.list_topics())
    finally:
        await admin.close()


def test_admin_with_the_older_api_versions(shared_broker):
    asyncio.run(asyncio.wait_for(administer(shared_broker), 3 * TIMEOUT_SECONDS))
    eventually(lambda: not partition_directories(shared_broker, "aio-admin") + partition_directories(
        shared_broker, "aio-grow"), "the deleted topics' data to leave the disk")
    assert_broker_healthy(shared_broker)
