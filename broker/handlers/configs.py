"""DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44): topic and broker configs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator

from broker.config import BrokerConfig
from broker.handlers.base import Services, error_fields, handles
from broker.registry import Topic
from broker.topic_config import (
    TOPIC_CONFIGS, ConfigSource, ConfigType, InvalidConfig, TopicConfig, config_text, validate_overrides,
)
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.admin import ALTER_CONFIGS_RESPONSE, DESCRIBE_CONFIGS_RESPONSE, INCREMENTAL_ALTER_CONFIGS_RESPONSE
from protocol.schema import MessageCodec

_Result = DESCRIBE_CONFIGS_RESPONSE.DescribeConfigsResult
_Config = DESCRIBE_CONFIGS_RESPONSE.DescribeConfigsResourceResult
_Synonym = DESCRIBE_CONFIGS_RESPONSE.DescribeConfigsSynonym


class ResourceType(enum.IntEnum):
    TOPIC = 2
    BROKER = 4


class AlterOp(enum.IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


# Broker-only settings shown by DescribeConfigs (name, BrokerConfig field, type); read-only here,
# since this broker takes its settings from the command line (Kafka's static broker configs).
_BROKER_ONLY = (
    ("broker.id", "node_id", ConfigType.INT),
    ("num.partitions", "num_partitions", ConfigType.INT),
    ("auto.create.topics.enable", "auto_create_topics", ConfigType.BOOLEAN),
    ("socket.request.max.bytes", "max_request_bytes", ConfigType.INT),
    ("connections.max.idle.ms", "connections_max_idle_ms", ConfigType.LONG),
    ("log.retention.check.interval.ms", "retention_check_interval_ms", ConfigType.LONG),
    ("group.initial.rebalance.delay.ms", "group_initial_rebalance_delay_ms", ConfigType.INT),
)


def _static_if(set_by_broker: bool) -> ConfigSource:
    return ConfigSource.STATIC_BROKER_CONFIG if set_by_broker else ConfigSource.DEFAULT_CONFIG


def _config(name: str, value: object, source: ConfigSource, config_type: ConfigType, *, read_only: bool,
            synonyms: list) -> _Config:
    # No topic or broker config this broker has holds a secret.
    return _Config(name=name, value=config_text(value), read_only=read_only, config_source=source, is_sensitive=False,
                   is_default=source == ConfigSource.DEFAULT_CONFIG, synonyms=synonyms, config_type=config_type,
                   documentation=None)


def _synonyms(config: TopicConfig, name: str) -> list:
    """Every place a topic config's value could come from, in precedence order, as Kafka lists them."""
    definition = TOPIC_CONFIGS[name]
    synonyms = []
    if name in config.overrides:
        synonyms.append(_Synonym(name=name, value=config.overrides[name], source=ConfigSource.TOPIC_CONFIG))
    if definition.broker_name is None:
        return synonyms  # a config no broker setting defaults, as remote.storage.enable
    if definition.set_by_broker(config.broker):
        synonyms.append(_Synonym(name=definition.broker_name, value=config_text(definition.broker_value(config.broker)),
                                 source=ConfigSource.STATIC_BROKER_CONFIG))
    synonyms.append(_Synonym(name=definition.broker_name, value=config_text(definition.default),
                             source=ConfigSource.DEFAULT_CONFIG))
    return synonyms


def _topic_configs(config: TopicConfig, include_synonyms: bool) -> list:
    return [_config(name, config.value(name), config.source(name), definition.type, read_only=False,
                    synonyms=_synonyms(config, name) if include_synonyms else [])
            for name, definition in TOPIC_CONFIGS.items()]


def _broker_settings(config: BrokerConfig) -> Iterator[tuple[str, object, ConfigSource, ConfigType]]:
    """(name, value, source, type) of each broker config shown: the topic configs' defaults, then the rest."""
    for definition in TOPIC_CONFIGS.values():
        if definition.broker_name is None:
            continue
        yield (definition.broker_name, definition.broker_value(config), _static_if(definition.set_by_broker(config)),
               definition.type)
    for name, field, config_type in _BROKER_ONLY:
        value = getattr(config, field)
        yield name, value, _static_if(value != getattr(BrokerConfig, field)), config_type


def _broker_configs(config: BrokerConfig, include_synonyms: bool) -> list:
    return [_config(name, value, source, config_type, read_only=True,
                    synonyms=[_Synonym(name=name, value=config_text(value), source=source)] if include_synonyms else [])
            for name, value, source, config_type in _broker_settings(config)]


def _unsupported(resource) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type {resource.resource_type}")


def _named_topic(broker: Services, resource) -> Topic:
    topic = broker.topics.get(resource.resource_name)
    if topic is None:
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {resource.resource_name} does not exist")
    return topic


def _described_configs(broker: Services, resource, include_synonyms: bool) -> list:
    """The configs a DescribeConfigs resource asks for."""
    if resource.resource_type == ResourceType.TOPIC:
        configs = _topic_configs(_named_topic(broker, resource).config, include_synonyms)
    elif resource.resource_type == ResourceType.BROKER:
        # An empty name means the cluster-wide default resource, which this broker's settings are.
        if resource.resource_name not in ("", str(broker.config.node_id)):
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unexpected broker id, expected {broker.config.node_id}")
        configs = _broker_configs(broker.config, include_synonyms)
    else:
        raise _unsupported(resource)
    keys = resource.configuration_keys
    return configs if keys is None else [c for c in configs if c["name"] in keys]


@handles(ApiKey.DESCRIBE_CONFIGS)
async def describe_configs(broker: Services, header, request):
    include_synonyms = request.get("include_synonyms", False)
    results = []
    for resource in request.resources:
        try:
            fields = {"configs": _described_configs(broker, resource, include_synonyms), "error_message": None}
        except ApiError as exc:
            fields = error_fields(_Result, exc)
        results.append(_Result(resource_type=resource.resource_type, resource_name=resource.resource_name, **fields))
    return DESCRIBE_CONFIGS_RESPONSE(results=results)


def _incremental(config: TopicConfig, changes) -> dict[str, str]:
    overrides = dict(config.overrides)
    for change in changes:
        if change.name not in TOPIC_CONFIGS:
            raise InvalidConfig(f"Unknown topic config name: {change.name}")
        op = change.config_operation
        if op == AlterOp.SET:
            overrides[change.name] = change.value
        elif op == AlterOp.DELETE:
            overrides.pop(change.name, None)
        elif op in (AlterOp.APPEND, AlterOp.SUBTRACT):
            if TOPIC_CONFIGS[change.name].type != ConfigType.LIST:
                raise InvalidConfig(f"Config value append/subtract is not allowed for config key {change.name} "
                                    f"which is not of type LIST")
            items = list(config.value(change.name))
            values = [v for v in (change.value or "").split(",") if v]
            if op == AlterOp.APPEND:
                items += [v for v in values if v not in items]
            else:
                items = [i for i in items if i not in values]
            overrides[change.name] = ",".join(items)
        else:
            raise InvalidConfig(f"Unknown config operation {op}")
    return overrides


# Given a topic and a request's configs for it, the topic's complete overrides after the request.
NewOverrides = Callable[[Topic, list], dict[str, str | None]]


async def _alter_resource(broker: Services, resource, new_overrides: NewOverrides, validate_only: bool) -> None:
    if resource.resource_type == ResourceType.BROKER:
        raise ApiError(ErrorCode.INVALID_REQUEST, "broker configs are static here: set them on the command line")
    if resource.resource_type != ResourceType.TOPIC:
        raise _unsupported(resource)
    topic = _named_topic(broker, resource)
    overrides = validate_overrides(new_overrides(topic, resource.configs))
    if validate_only:
        return
    await broker.topics.alter_config(topic, overrides)


async def _alter(broker: Services, request, response: MessageCodec, new_overrides: NewOverrides):
    """AlterConfigs and IncrementalAlterConfigs, which differ in what the request's configs mean."""
    result = response.AlterConfigsResourceResponse
    results = []
    for resource in request.resources:
        try:
            await _alter_resource(broker, resource, new_overrides, request.validate_only)
            fields = {"error_message": None}
        except ApiError as exc:
            fields = error_fields(result, exc)
        results.append(result(resource_type=resource.resource_type, resource_name=resource.resource_name, **fields))
    return response(responses=results)


@handles(ApiKey.ALTER_CONFIGS)
async def alter_configs(broker: Services, header, request):
    # AlterConfigs replaces the whole set of overrides with the one given.
    return await _alter(broker, request, ALTER_CONFIGS_RESPONSE,
                        lambda topic, configs: {c.name: c.value for c in configs})


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS)
async def incremental_alter_configs(broker: Services, header, request):
    return await _alter(broker, request, INCREMENTAL_ALTER_CONFIGS_RESPONSE,
                        lambda topic, configs: _incremental(topic.config, configs))
