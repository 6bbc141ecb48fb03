"""Topic configs with Kafka's names, types, defaults and broker-level synonyms.

A topic stores only its overrides (as Kafka does); every other value comes from the broker's
setting of the synonym, which itself is the command-line flag or Kafka's default.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Callable

from broker.config import BrokerConfig
from log import UNLIMITED, LogConfig

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


class ConfigType(enum.IntEnum):
    """DescribeConfigs' config_type (v3+)."""
    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    """DescribeConfigs' config_source (v1+)."""
    UNKNOWN = 0
    TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


class InvalidConfig(ValueError):
    """A config name or value Kafka would refuse with INVALID_CONFIG; the message says which."""


def _number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise InvalidConfig(f"'{text}' is not a number") from None
        if not low <= value <= high:
            raise InvalidConfig(f"{value} is outside [{low}, {high}]")
        return value
    return parse


def _choice(*allowed: str, refused: dict[str, str] | None = None) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if refused and value in refused:
            raise InvalidConfig(refused[value])
        if value not in allowed:
            raise InvalidConfig(f"'{text}' is not one of {', '.join(allowed)}")
        return value
    return parse


@dataclasses.dataclass(frozen=True)
class ConfigDef:
    name: str
    type: ConfigType
    parse: Callable[[str], object]
    # Kafka's broker config that supplies the default, and the BrokerConfig field holding it.
    broker_name: str
    broker_field: str | None
    kafka_default: object

    def broker_value(self, config: BrokerConfig) -> object:
        value = getattr(config, self.broker_field) if self.broker_field else None
        return self.kafka_default if value is None else value


def _defs(*defs: ConfigDef) -> dict[str, ConfigDef]:
    return {d.name: d for d in defs}


_WEEK_MS = 7 * 24 * 60 * 60 * 1000

TOPIC_CONFIGS: dict[str, ConfigDef] = _defs(
    ConfigDef("cleanup.policy", ConfigType.LIST,
              _choice("delete", refused={
                  "compact": "cleanup.policy=compact is not supported: this broker has no log compaction",
                  "compact,delete": "cleanup.policy=compact is not supported: this broker has no log compaction",
                  "delete,compact": "cleanup.policy=compact is not supported: this broker has no log compaction"}),
              "log.cleanup.policy", None, "delete"),
    ConfigDef("retention.ms", ConfigType.LONG, _number(-1, _INT64_MAX), "log.retention.ms", "retention_ms", _WEEK_MS),
    ConfigDef("retention.bytes", ConfigType.LONG, _number(-1, _INT64_MAX), "log.retention.bytes",
              "retention_bytes", -1),
    ConfigDef("segment.bytes", ConfigType.INT, _number(14, _INT32_MAX), "log.segment.bytes",
              "segment_bytes", 1 << 30),
    ConfigDef("segment.ms", ConfigType.LONG, _number(1, _INT64_MAX), "log.roll.ms", "segment_ms", _WEEK_MS),
    ConfigDef("max.message.bytes", ConfigType.INT, _number(0, _INT32_MAX), "message.max.bytes",
              "max_message_bytes", 1048588),
    ConfigDef("message.timestamp.type", ConfigType.STRING, _choice("CreateTime", "LogAppendTime"),
              "log.message.timestamp.type", "message_timestamp_type", "CreateTime"),
    ConfigDef("min.insync.replicas", ConfigType.INT, _number(1, _INT32_MAX), "min.insync.replicas", None, 1),
    ConfigDef("flush.messages", ConfigType.LONG, _number(1, _INT64_MAX), "log.flush.interval.messages",
              "flush_messages", UNLIMITED),
    ConfigDef("flush.ms", ConfigType.LONG, _number(0, _INT64_MAX), "log.flush.interval.ms", "flush_ms", UNLIMITED),
)


def validate_overrides(overrides: dict[str, str | None]) -> dict[str, str]:
    """Check names and values; returns them normalised (values as Kafka would print them)."""
    checked = {}
    for name, text in overrides.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise InvalidConfig(f"Unknown topic config name: {name}")
        if text is None:
            raise InvalidConfig(f"Null value not supported for topic config: {name}")
        try:
            checked[name] = str(definition.parse(text))
        except InvalidConfig as exc:
            raise InvalidConfig(f"Invalid value {text} for configuration {name}: {exc}") from None
    return checked


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """A topic's effective configuration: its overrides over the broker's defaults."""

    broker: BrokerConfig
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)

    def value(self, name: str) -> object:
        definition = TOPIC_CONFIGS[name]
        if name in self.overrides:
            return definition.parse(self.overrides[name])
        return definition.broker_value(self.broker)

    def source(self, name: str) -> ConfigSource:
        if name in self.overrides:
            return ConfigSource.TOPIC_CONFIG
        definition = TOPIC_CONFIGS[name]
        if definition.broker_field and getattr(self.broker, definition.broker_field) != \
                getattr(BrokerConfig, definition.broker_field, None):
            return ConfigSource.STATIC_BROKER_CONFIG
        return ConfigSource.DEFAULT_CONFIG

    @property
    def max_message_bytes(self) -> int:
        return self.value("max.message.bytes")

    @property
    def message_timestamp_type(self) -> str:
        return self.value("message.timestamp.type")

    @property
    def min_insync_replicas(self) -> int:
        return self.value("min.insync.replicas")

    def log_config(self) -> LogConfig:
        return LogConfig(
            segment_bytes=self.value("segment.bytes"), segment_ms=self.value("segment.ms"),
            retention_bytes=self.value("retention.bytes"), retention_ms=self.value("retention.ms"),
            flush_messages=self.value("flush.messages"), flush_ms=self.value("flush.ms"),
            max_message_bytes=self.value("max.message.bytes"),
        )
