"""DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44): topic and broker configs."""

from __future__ import annotations

import enum

from broker.config import BrokerConfig
from broker.handlers.base import handles
from broker.topic_config import TOPIC_CONFIGS, ConfigSource, ConfigType, InvalidConfig, TopicConfig, validate_overrides
from log import LogError
from protocol.errors import ErrorCode

DESCRIBE_CONFIGS = 32
ALTER_CONFIGS = 33
INCREMENTAL_ALTER_CONFIGS = 44


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


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _entry(name: str, value: object, source: ConfigSource, config_type: ConfigType, *, read_only: bool,
           synonyms: list[dict]) -> dict:
    return {"name": name, "value": _text(value), "read_only": read_only,
            "is_default": source == ConfigSource.DEFAULT_CONFIG, "config_source": source, "is_sensitive": False,
            "synonyms": synonyms, "config_type": config_type, "documentation": None}


def _broker_source(broker, field: str) -> ConfigSource:
    return ConfigSource.STATIC_BROKER_CONFIG if getattr(broker.config, field) != getattr(BrokerConfig, field) \
        else ConfigSource.DEFAULT_CONFIG


def _synonyms(config: TopicConfig, name: str) -> list[dict]:
    """Every place a topic config's value could come from, in precedence order, as Kafka lists them."""
    definition = TOPIC_CONFIGS[name]
    synonyms = []
    if name in config.overrides:
        synonyms.append({"name": name, "value": config.overrides[name], "source": ConfigSource.TOPIC_CONFIG})
    if TopicConfig(config.broker).source(name) == ConfigSource.STATIC_BROKER_CONFIG:
        synonyms.append({"name": definition.broker_name, "value": _text(definition.broker_value(config.broker)),
                         "source": ConfigSource.STATIC_BROKER_CONFIG})
    synonyms.append({"name": definition.broker_name, "value": _text(definition.default),
                     "source": ConfigSource.DEFAULT_CONFIG})
    return synonyms


def _topic_configs(config: TopicConfig, include_synonyms: bool) -> list[dict]:
    return [_entry(name, config.value(name), config.source(name), definition.type, read_only=False,
                   synonyms=_synonyms(config, name) if include_synonyms else [])
            for name, definition in TOPIC_CONFIGS.items()]


def _broker_configs(broker, include_synonyms: bool) -> list[dict]:
    entries = []
    topic_defaults = TopicConfig(broker.config)
    for definition in TOPIC_CONFIGS.values():
        source = topic_defaults.source(definition.name)
        value = definition.broker_value(broker.config)
        synonyms = [{"name": definition.broker_name, "value": _text(value), "source": source}] if include_synonyms else []
        entries.append(_entry(definition.broker_name, value, source, definition.type, read_only=True,
                              synonyms=synonyms))
    for name, field, config_type in _BROKER_ONLY:
        source = _broker_source(broker, field)
        value = getattr(broker.config, field)
        synonyms = [{"name": name, "value": _text(value), "source": source}] if include_synonyms else []
        entries.append(_entry(name, value, source, config_type, read_only=True, synonyms=synonyms))
    return entries


def _is_this_broker(broker, resource_name: str) -> bool:
    # An empty name means the cluster-wide default resource, which this broker's settings are.
    return resource_name in ("", str(broker.config.node_id))


def _named_topic(broker, resource, answer: dict):
    """The topic a topic resource names; None, with UNKNOWN_TOPIC_OR_PARTITION in `answer`, if none."""
    topic = broker.registry.topics.get(resource.resource_name)
    if topic is None:
        answer.update(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                      error_message=f"Topic {resource.resource_name} does not exist")
    return topic


@handles(DESCRIBE_CONFIGS)
async def describe_configs(broker, header, request) -> dict:
    include_synonyms = request.get("include_synonyms", False)
    results = []
    for resource in request.resources:
        result = {"error_code": ErrorCode.NONE, "error_message": None, "resource_type": resource.resource_type,
                  "resource_name": resource.resource_name, "configs": []}
        if resource.resource_type == ResourceType.TOPIC:
            topic = _named_topic(broker, resource, result)
            if topic is not None:
                result["configs"] = _topic_configs(topic.config, include_synonyms)
        elif resource.resource_type == ResourceType.BROKER:
            if _is_this_broker(broker, resource.resource_name):
                result["configs"] = _broker_configs(broker, include_synonyms)
            else:
                result.update(error_code=ErrorCode.INVALID_REQUEST,
                              error_message=f"Unexpected broker id, expected {broker.config.node_id}")
        else:
            result.update(error_code=ErrorCode.INVALID_REQUEST,
                          error_message=f"Unsupported resource type {resource.resource_type}")
        if resource.configuration_keys is not None:
            result["configs"] = [c for c in result["configs"] if c["name"] in resource.configuration_keys]
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


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
            items = [i for i in str(config.value(change.name)).split(",") if i]
            values = [v for v in (change.value or "").split(",") if v]
            if op == AlterOp.APPEND:
                items += [v for v in values if v not in items]
            else:
                items = [i for i in items if i not in values]
            overrides[change.name] = ",".join(items)
        else:
            raise InvalidConfig(f"Unknown config operation {op}")
    return overrides


async def _alter(broker, request, new_overrides) -> dict:
    """Shared by AlterConfigs and IncrementalAlterConfigs: `new_overrides(topic, configs)` gives the
    topic's complete overrides after the request."""
    responses = []
    for resource in request.resources:
        response = {"error_code": ErrorCode.NONE, "error_message": None,
                    "resource_type": resource.resource_type, "resource_name": resource.resource_name}
        if resource.resource_type == ResourceType.TOPIC:
            topic = _named_topic(broker, resource, response)
            if topic is not None:
                try:
                    overrides = validate_overrides(new_overrides(topic, resource.configs))
                except InvalidConfig as exc:
                    response.update(error_code=ErrorCode.INVALID_CONFIG, error_message=str(exc))
                else:
                    if not request.validate_only:
                        try:
                            await broker.registry.alter_config(topic, overrides)
                        except LogError as exc:
                            response.update(error_code=ErrorCode.KAFKA_STORAGE_ERROR, error_message=str(exc))
        elif resource.resource_type == ResourceType.BROKER:
            response.update(error_code=ErrorCode.INVALID_REQUEST,
                            error_message="broker configs are static here: set them on the command line")
        else:
            response.update(error_code=ErrorCode.INVALID_REQUEST,
                            error_message=f"Unsupported resource type {resource.resource_type}")
        responses.append(response)
    return {"throttle_time_ms": 0, "responses": responses}


@handles(ALTER_CONFIGS)
async def alter_configs(broker, header, request) -> dict:
    # AlterConfigs replaces the whole set of overrides with the one given.
    return await _alter(broker, request, lambda topic, configs: {c.name: c.value for c in configs})


@handles(INCREMENTAL_ALTER_CONFIGS)
async def incremental_alter_configs(broker, header, request) -> dict:
    return await _alter(broker, request, lambda topic, configs: _incremental(topic.config, configs))
