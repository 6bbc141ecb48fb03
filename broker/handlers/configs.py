"""DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44): topic and broker configs."""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Iterator
from typing import NamedTuple

from broker import dynamic_config
from broker.acls import ResourceType as AclResourceType, authorized
from broker.authorized_operations import AclOperation
from broker.config import BrokerConfig
from broker.dynamic_config import DynamicBrokerConfigs
from broker.handlers.base import Services, error_fields, handles
from broker.registry import Topic
from broker.topic_config import (
    TOPIC_CONFIGS, AlterOp, ConfigSource, ConfigType, InvalidConfig, TopicConfig, config_text, validate_overrides,
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


# Broker-only settings shown by DescribeConfigs (name, BrokerConfig field, type), which this broker
# takes from the command line (Kafka's static broker configs).
_BROKER_ONLY = (
    ("broker.id", "node_id", ConfigType.INT),
    ("num.partitions", "num_partitions", ConfigType.INT),
    ("auto.create.topics.enable", "auto_create_topics", ConfigType.BOOLEAN),
    ("socket.request.max.bytes", "max_request_bytes", ConfigType.INT),
    ("connections.max.idle.ms", "connections_max_idle_ms", ConfigType.LONG),
    ("log.retention.check.interval.ms", "retention_check_interval_ms", ConfigType.LONG),
    ("group.initial.rebalance.delay.ms", "group_initial_rebalance_delay_ms", ConfigType.INT),
    ("max.incremental.fetch.session.cache.slots", "max_incremental_fetch_session_cache_slots", ConfigType.INT),
    # Clients read these to know how a SASL listener behaves (librdkafka's re-authentication tests).
    ("connections.max.reauth.ms", "connections_max_reauth_ms", ConfigType.LONG),
    ("sasl.enabled.mechanisms", "sasl_enabled_mechanisms", ConfigType.LIST),
)


def _static_if(set_by_broker: bool) -> ConfigSource:
    return ConfigSource.STATIC_BROKER_CONFIG if set_by_broker else ConfigSource.DEFAULT_CONFIG


def _config(name: str, value: str | None, source: ConfigSource, config_type: ConfigType, *, read_only: bool,
            synonyms: list) -> _Config:
    # A secret (a PASSWORD config, set dynamically) is never shown, as Kafka shows none.
    sensitive = config_type == ConfigType.PASSWORD
    return _Config(name=name, value=None if sensitive else value, read_only=read_only, config_source=source,
                   is_sensitive=sensitive, is_default=source == ConfigSource.DEFAULT_CONFIG,
                   synonyms=[s | {"value": None} for s in synonyms] if sensitive else synonyms,
                   config_type=config_type, documentation=None)


def _dynamic_synonyms(dynamic: DynamicBrokerConfigs, name: str) -> list:
    return [_Synonym(name=name, value=level[name], source=source)
            for level, source in ((dynamic.per_broker, ConfigSource.DYNAMIC_BROKER_CONFIG),
                                  (dynamic.cluster_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG))
            if name in level]


def _synonyms(config: TopicConfig, name: str, dynamic: DynamicBrokerConfigs) -> list:
    """Every place a topic config's value could come from, in precedence order, as Kafka lists them."""
    definition = TOPIC_CONFIGS[name]
    synonyms = []
    if name in config.overrides:
        synonyms.append(_Synonym(name=name, value=config.overrides[name], source=ConfigSource.TOPIC_CONFIG))
    if definition.broker_name is None:
        return synonyms  # a config no broker setting defaults, as remote.storage.enable
    synonyms += _dynamic_synonyms(dynamic, definition.broker_name)
    return synonyms + _static_synonyms(definition.broker_name, definition.broker_value(config.broker),
                                       definition.default)


def _static_synonyms(name: str, value: object, default: object) -> list:
    """A broker config's static value (when not Kafka's default) and its default."""
    synonyms = [_Synonym(name=name, value=config_text(value), source=ConfigSource.STATIC_BROKER_CONFIG)]
    return (synonyms if value != default else []) + [
        _Synonym(name=name, value=config_text(default), source=ConfigSource.DEFAULT_CONFIG)]


def _topic_configs(config: TopicConfig, include_synonyms: bool, dynamic: DynamicBrokerConfigs) -> list:
    return [_config(name, config_text(config.value(name)), config.source(name), definition.type, read_only=False,
                    synonyms=_synonyms(config, name, dynamic) if include_synonyms else [])
            for name, definition in TOPIC_CONFIGS.items()]


def _static_settings(config: BrokerConfig) -> Iterator[tuple[str, object, object, ConfigType]]:
    """(name, value, Kafka's default, type) of each broker config this broker has: the topic
    configs' defaults, then the rest."""
    for definition in TOPIC_CONFIGS.values():
        if definition.broker_name is not None:
            yield definition.broker_name, definition.broker_value(config), definition.default, definition.type
    for name, field, config_type in _BROKER_ONLY:
        yield name, getattr(config, field), getattr(BrokerConfig, field), config_type


def _broker_configs(config: BrokerConfig, dynamic: DynamicBrokerConfigs, include_synonyms: bool) -> list:
    """This broker's configs: each config's dynamic value over its static one, and the dynamic
    configs it has no static setting of."""
    described = []
    static_names = set()
    for name, value, default, config_type in _static_settings(config):
        static_names.add(name)
        synonyms = _dynamic_synonyms(dynamic, name) + _static_synonyms(name, value, default)
        described.append(_config(name, synonyms[0]["value"], synonyms[0]["source"], config_type,
                                 read_only=name not in dynamic_config.DYNAMIC_CONFIGS,
                                 synonyms=synonyms if include_synonyms else []))
    for name in sorted({*dynamic.per_broker, *dynamic.cluster_default} - static_names):
        synonyms = _dynamic_synonyms(dynamic, name)
        described.append(_config(name, synonyms[0]["value"], synonyms[0]["source"],
                                 dynamic_config.config_type(name) or ConfigType.UNKNOWN, read_only=False,
                                 synonyms=synonyms if include_synonyms else []))
    return described


def _cluster_default_configs(dynamic: DynamicBrokerConfigs, include_synonyms: bool) -> list:
    """The cluster-wide default resource: the dynamic defaults set, and nothing else (as Kafka)."""
    return [_config(name, value, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                    dynamic_config.config_type(name) or ConfigType.UNKNOWN, read_only=False,
                    synonyms=[_Synonym(name=name, value=value, source=ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)]
                    if include_synonyms else [])
            for name, value in sorted(dynamic.cluster_default.items())]


def _unsupported(resource) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type {resource.resource_type}")


def _check_authorized(broker: Services, operation: AclOperation, resource, *, with_message: bool) -> None:
    """Raises TOPIC_AUTHORIZATION_FAILED, or CLUSTER_AUTHORIZATION_FAILED for a broker resource,
    unless the session may perform `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on it: on the
    topic, or on the cluster. Kafka words the error of DescribeConfigs, not of the alterations."""
    if resource.resource_type == ResourceType.TOPIC:
        if not authorized(broker.authorizer, operation, AclResourceType.TOPIC, resource.resource_name):
            raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                           "Topic authorization failed." if with_message else None)
    elif resource.resource_type == ResourceType.BROKER:
        if not authorized(broker.authorizer, operation, AclResourceType.CLUSTER):
            raise ApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                           "Cluster authorization failed." if with_message else None)


def _named_topic(broker: Services, resource) -> Topic:
    topic = broker.topics.get(resource.resource_name)
    if topic is None:
        raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {resource.resource_name} does not exist")
    return topic


def _described_configs(broker: Services, resource, include_synonyms: bool) -> list:
    """The configs a DescribeConfigs resource asks for."""
    _check_authorized(broker, AclOperation.DESCRIBE_CONFIGS, resource, with_message=True)
    if resource.resource_type == ResourceType.TOPIC:
        configs = _topic_configs(_named_topic(broker, resource).config, include_synonyms, broker.dynamic_config)
    elif resource.resource_type == ResourceType.BROKER:
        if resource.resource_name == "":
            configs = _cluster_default_configs(broker.dynamic_config, include_synonyms)
        else:
            _check_broker_id(broker, resource.resource_name)
            configs = _broker_configs(broker.config, broker.dynamic_config, include_synonyms)
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


def _check_broker_id(broker: Services, name: str) -> None:
    """A broker resource other than the cluster default ("") must name this broker, as in Kafka."""
    try:
        node_id = int(name)
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Node id must be an integer, but it is: {name}") from None
    if node_id != broker.config.node_id:
        raise ApiError(ErrorCode.INVALID_REQUEST,
                       f"Unexpected broker id, expected {broker.config.node_id}, but received {name}")


class _Meaning(NamedTuple):
    """What a request's configs make of a resource's: a topic's complete new overrides (from its
    config), or a broker level's complete new dynamic configs (from the level's current ones)."""
    topic: Callable[[TopicConfig, list], dict[str, str | None]]
    broker: Callable[[dict[str, str], list], dict[str, str]]


async def _alter_broker(broker: Services, resource, meaning: _Meaning, validate_only: bool) -> None:
    """Kafka's checks of a broker resource's change (ConfigAdminManager.preprocess), then the
    change, applied to the topics' defaults at once."""
    names = [config.name for config in resource.configs]
    if len(set(names)) < len(names):
        raise ApiError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
    nulls = [c.name for c in resource.configs if c.value is None and c.get("config_operation") != AlterOp.DELETE]
    if nulls:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Null value not supported for : {', '.join(nulls)}")
    per_broker = resource.resource_name != ""
    if per_broker:
        _check_broker_id(broker, resource.resource_name)
    dynamic = broker.dynamic_config
    await dynamic.change(per_broker, lambda current: meaning.broker(current, resource.configs),
                         validate_only=validate_only)
    if not validate_only:
        broker.topics.registry.set_topic_defaults(dynamic.topic_defaults())


async def _alter_resource(broker: Services, resource, meaning: _Meaning, validate_only: bool) -> None:
    if resource.resource_type == ResourceType.BROKER:
        return await _alter_broker(broker, resource, meaning, validate_only)
    if resource.resource_type != ResourceType.TOPIC:
        raise _unsupported(resource)
    topic = _named_topic(broker, resource)
    overrides = validate_overrides(meaning.topic(topic.config, resource.configs))
    if validate_only:
        return
    await broker.topics.alter_config(topic, overrides)


async def _alter(broker: Services, request, response: MessageCodec, meaning: _Meaning):
    """AlterConfigs and IncrementalAlterConfigs, which differ in what the request's configs mean."""
    result = response.AlterConfigsResourceResponse
    results = []
    seen = collections.Counter((r.resource_type, r.resource_name) for r in request.resources)
    for resource in request.resources:
        try:
            if seen[resource.resource_type, resource.resource_name] > 1:
                raise ApiError(ErrorCode.INVALID_REQUEST, "Each resource must appear at most once.")
            _check_authorized(broker, AclOperation.ALTER_CONFIGS, resource, with_message=False)
            await _alter_resource(broker, resource, meaning, request.validate_only)
            fields = {"error_message": None}
        except ApiError as exc:
            fields = error_fields(result, exc)
        results.append(result(resource_type=resource.resource_type, resource_name=resource.resource_name, **fields))
    return response(responses=results)


def _given(configs) -> dict[str, str | None]:
    return {c.name: c.value for c in configs}


@handles(ApiKey.ALTER_CONFIGS)
async def alter_configs(broker: Services, header, request):
    # AlterConfigs replaces the whole set of overrides (or of a broker level's configs) with the one given.
    return await _alter(broker, request, ALTER_CONFIGS_RESPONSE,
                        _Meaning(lambda config, configs: _given(configs), lambda current, configs: _given(configs)))


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS)
async def incremental_alter_configs(broker: Services, header, request):
    return await _alter(broker, request, INCREMENTAL_ALTER_CONFIGS_RESPONSE,
                        _Meaning(_incremental, dynamic_config.incremental))
