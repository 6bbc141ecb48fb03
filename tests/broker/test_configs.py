"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: each resource answered on its own,
with its error (and nothing else) when it cannot be described or changed."""

from __future__ import annotations

import pytest

from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, ApiKey

from test_handlers_direct import call, services  # noqa: F401 -- the fixture is used by name

TOPIC, BROKER, GROUP = 2, 4, 3
_Described = REQUESTS[ApiKey.DESCRIBE_CONFIGS].DescribeConfigsResource
_Altered = REQUESTS[ApiKey.ALTER_CONFIGS].AlterConfigsResource
_Change = REQUESTS[ApiKey.INCREMENTAL_ALTER_CONFIGS].AlterableConfig
_Incremental = REQUESTS[ApiKey.INCREMENTAL_ALTER_CONFIGS].AlterConfigsResource


@pytest.fixture
async def topic(services):
    await services.topics.create("tuned", 1, 1, [], {"retention.ms": "60000"})
    return "tuned"


async def describe(services, *resources):
    response = await call(services, ApiKey.DESCRIBE_CONFIGS, 4, resources=[
        _Described(resource_type=kind, resource_name=name, configuration_keys=None) for kind, name in resources])
    return [(r.error_code, r.error_message, {c.name: c.value for c in r.configs}) for r in response.results]


async def test_each_described_resource_has_its_configs_or_its_error(services, topic):
    tuned, cluster, this_broker, other_broker, missing, group = await describe(
        services, (TOPIC, topic), (BROKER, ""), (BROKER, "1"), (BROKER, "7"), (TOPIC, "missing"), (GROUP, "g"))
    assert tuned[:2] == (ErrorCode.NONE, None) and tuned[2]["retention.ms"] == "60000"
    # The cluster-wide default resource holds the dynamic defaults set, none yet.
    assert cluster == (ErrorCode.NONE, None, {}) and this_broker[2]["log.segment.bytes"] == str(1 << 30)
    assert other_broker == (ErrorCode.INVALID_REQUEST, "Unexpected broker id, expected 1, but received 7", {})
    assert missing == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "Topic missing does not exist", {})
    assert group == (ErrorCode.INVALID_REQUEST, "Unsupported resource type 3", {})


async def test_each_altered_resource_has_its_own_error(services, topic):
    def alter(kind, name, **configs):
        return _Altered(resource_type=kind, resource_name=name, configs=[
            {"name": key, "value": value} for key, value in configs.items()])

    await services.topics.create("second", 1, 1, [], {})
    response = await call(services, ApiKey.ALTER_CONFIGS, 2, validate_only=False, resources=[
        alter(TOPIC, topic, **{"segment.ms": "3600000"}), alter(TOPIC, "missing"), alter(BROKER, "1", **{"broker.id": "2"}),
        alter(TOPIC, "second", **{"segment.bytes": "13"}), alter(BROKER, ""), alter(BROKER, "")])
    assert [(r.resource_name, r.error_code) for r in response.responses] == [
        (topic, ErrorCode.NONE), ("missing", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), ("1", ErrorCode.INVALID_REQUEST),
        ("second", ErrorCode.INVALID_CONFIG), ("", ErrorCode.INVALID_REQUEST), ("", ErrorCode.INVALID_REQUEST)]
    assert response.responses[0].error_message is None
    assert response.responses[2].error_message == "Cannot update these configs dynamically: Set(broker.id)"
    assert response.responses[3].error_message == (
        "Invalid value 13 for configuration segment.bytes: Value must be at least 14")
    assert response.responses[4].error_message == "Each resource must appear at most once."
    assert services.topics.get(topic).config.overrides == {"segment.ms": "3600000"}
    assert services.topics.get("second").config.overrides == {}


async def test_incremental_changes_are_checked_before_any_is_applied(services, topic):
    response = await call(services, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, validate_only=False, resources=[
        _Incremental(resource_type=TOPIC, resource_name=topic, configs=[
            _Change(name="segment.ms", config_operation=0, value="3600000"),
            _Change(name="retention.ms", config_operation=2, value="1")])])
    result = response.responses[0]
    assert result.error_code == ErrorCode.INVALID_CONFIG
    assert "retention.ms which is not of type LIST" in result.error_message
    assert services.topics.get(topic).config.overrides == {"retention.ms": "60000"}
