"""Handlers called directly, with the services they use and no socket: the typed interface
(`Services`) is all a handler sees of the broker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from broker.config import BrokerConfig
from broker.dynamic_config import DynamicBrokerConfigs
from broker.faults import Faults
from broker.handlers import HANDLERS
from broker.registry import TopicRegistry
from broker.topics import Topics
from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, RESPONSES, ApiKey


@pytest.fixture
async def services(tmp_path):
    config = BrokerConfig(port=0, data_dir=tmp_path)
    dynamic_config = DynamicBrokerConfigs(tmp_path)
    registry = TopicRegistry(tmp_path, config, topic_defaults=dynamic_config.topic_defaults())
    registry.load()
    forgotten = []
    # (topic, partition) of each partition_changed call: what fetch sessions are told.
    changed = []

    async def forget_offsets(name: str) -> None:
        forgotten.append(name)

    topics = Topics(registry, node_id=config.node_id, num_partitions=2, auto_create=True, forget_offsets=forget_offsets)
    yield SimpleNamespace(config=config, topics=topics, dynamic_config=dynamic_config, trace=None, faults=Faults(), authorizer=None,
                          forgotten=forgotten, cluster_id="cluster", advertised_address=("127.0.0.1", 9092),
                          changed=changed, partition_changed=lambda p: changed.append((p.topic.name, p.index)))
    await registry.close()


async def call(services, api_key: ApiKey, version: int, **fields):
    """The handler's response to a request built with the request's constructor, as it would
    go out: encoded at `version` and decoded again."""
    request = REQUESTS[api_key].decode(version, REQUESTS[api_key].encode(version, REQUESTS[api_key](**fields)))
    header = SimpleNamespace(request_api_key=api_key, request_api_version=version, correlation_id=1)
    response = await HANDLERS[api_key].handle(services, header, request)
    return RESPONSES[api_key].decode(version, RESPONSES[api_key].encode(version, response))


async def test_create_describe_and_delete_a_topic_without_a_socket(services):
    topic = REQUESTS[ApiKey.CREATE_TOPICS].CreatableTopic
    created = await call(services, ApiKey.CREATE_TOPICS, 7, topics=[
        topic(name="direct", num_partitions=3, replication_factor=1),
        topic(name="__consumer_offsets", num_partitions=1, replication_factor=1),
        topic(name="bad/name", num_partitions=1, replication_factor=1)], timeout_ms=1000)
    assert [(t.name, t.error_code, t.num_partitions) for t in created.topics] == [
        ("direct", ErrorCode.NONE, 3), ("__consumer_offsets", ErrorCode.INVALID_TOPIC_EXCEPTION, -1),
        ("bad/name", ErrorCode.INVALID_TOPIC_EXCEPTION, -1)]

    wanted = REQUESTS[ApiKey.METADATA].MetadataRequestTopic
    described = await call(services, ApiKey.METADATA, 12, topics=[wanted(name="direct"), wanted(name="missing")],
                           allow_auto_topic_creation=False)
    assert [(t.name, t.error_code, len(t.partitions)) for t in described.topics] == [
        ("direct", ErrorCode.NONE, 3), ("missing", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0)]

    deleted = await call(services, ApiKey.DELETE_TOPICS, 5, topic_names=["direct", "never"], timeout_ms=1000)
    assert [(r.name, r.error_code) for r in deleted.responses] == [
        ("direct", ErrorCode.NONE), ("never", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
    assert services.forgotten == ["direct"]
    # Its partitions' fetch sessions answer them with the error next.
    assert services.changed == [("direct", 0), ("direct", 1), ("direct", 2)]
    assert services.topics.get("direct") is None
