"""Topic configs: the one table of their Kafka names, types, defaults, valid values and broker-level
synonyms, from which topics' effective configs, their logs' settings and the broker's flags derive.

A topic stores only its overrides (as Kafka does); every other value comes from the broker's
setting of the synonym, which itself is the command-line flag or Kafka's default. The configs the
log holds take their default and range from its own table (log.config.SETTINGS).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Callable

from log import LogConfig
from log.config import SETTINGS as LOG_SETTINGS
from log.config import UNLIMITED
from protocol.errors import ApiError, ErrorCode

if TYPE_CHECKING:
    from broker.config import BrokerConfig

_INT32_MAX = 2**31 - 1


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


class InvalidConfig(ApiError):
    """A config name or value Kafka refuses with INVALID_CONFIG; the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_CONFIG, message)


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


def _attribute(name: str) -> str:
    """A config's name in LogConfig and BrokerConfig: segment.bytes is segment_bytes there."""
    return name.replace(".", "_")


@dataclasses.dataclass(frozen=True)
class ConfigDef:
    name: str
    type: ConfigType
    # Kafka's broker config whose value is the default of topics without an override.
    broker_name: str
    default: object
    parse: Callable[[str], object]
    # The help of the command-line flag setting the broker's value; None: it is Kafka's default.
    flag: str | None = None

    @property
    def attribute(self) -> str:
        return _attribute(self.name)

    @property
    def in_log(self) -> bool:
        return self.attribute in LOG_SETTINGS

    def broker_value(self, broker: BrokerConfig) -> object:
        return getattr(broker, self.attribute) if self.flag else self.default

    def set_by_broker(self, broker: BrokerConfig) -> bool:
        """Whether the broker's value is its own (a flag), not Kafka's default."""
        return self.broker_value(broker) != self.default


def _log_setting(name: str, type: ConfigType, broker_name: str, flag: str | None = None) -> ConfigDef:
    """A config the log holds, with the default and range LogConfig declares for it."""
    default, low, high = LOG_SETTINGS[_attribute(name)]
    return ConfigDef(name, type, broker_name, default, _number(low, high), flag)


def _table(*defs: ConfigDef) -> dict[str, ConfigDef]:
    return {d.name: d for d in defs}


# The policies naming compaction, however spelled, which this broker cannot serve.
_COMPACT = dict.fromkeys(("compact", "compact,delete", "delete,compact"),
                         "cleanup.policy=compact is not supported: this broker has no log compaction")

TOPIC_CONFIGS: dict[str, ConfigDef] = _table(
    ConfigDef("cleanup.policy", ConfigType.LIST, "log.cleanup.policy", "delete", _choice("delete", refused=_COMPACT)),
    _log_setting("retention.ms", ConfigType.LONG, "log.retention.ms",
                 flag="delete segments older than this, -1 = forever"),
    _log_setting("retention.bytes", ConfigType.LONG, "log.retention.bytes",
                 flag="delete old segments beyond this size, -1 = unlimited"),
    _log_setting("segment.bytes", ConfigType.INT, "log.segment.bytes", flag="roll to a new segment at this size"),
    _log_setting("segment.ms", ConfigType.LONG, "log.roll.ms", flag="roll to a new segment after this age"),
    _log_setting("max.message.bytes", ConfigType.INT, "message.max.bytes",
                 flag="largest record batch accepted; a larger one gets MESSAGE_TOO_LARGE"),
    ConfigDef("message.timestamp.type", ConfigType.STRING, "log.message.timestamp.type", "CreateTime",
              _choice("CreateTime", "LogAppendTime"), flag="CreateTime or LogAppendTime"),
    ConfigDef("min.insync.replicas", ConfigType.INT, "min.insync.replicas", 1, _number(1, _INT32_MAX)),
    _log_setting("flush.messages", ConfigType.LONG, "log.flush.interval.messages",
                 flag="fsync after this many record batches; by default the OS decides"),
    _log_setting("flush.ms", ConfigType.LONG, "log.flush.interval.ms",
                 flag="fsync at least this often; by default the OS decides"),
    _log_setting("segment.jitter.ms", ConfigType.LONG, "log.roll.jitter.ms"),
    _log_setting("file.delete.delay.ms", ConfigType.LONG, "log.segment.delete.delay.ms"),
    ConfigDef("compression.type", ConfigType.STRING, "compression.type", "producer",
              _choice("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
    ConfigDef("compression.gzip.level", ConfigType.INT, "compression.gzip.level", -1, _number(-1, 9)),
    ConfigDef("compression.lz4.level", ConfigType.INT, "compression.lz4.level", 9, _number(1, 17)),
    ConfigDef("compression.zstd.level", ConfigType.INT, "compression.zstd.level", 3, _number(-131072, 22)),
    ConfigDef("message.timestamp.before.max.ms", ConfigType.LONG, "log.message.timestamp.before.max.ms",
              UNLIMITED, _number(0, UNLIMITED)),
    ConfigDef("message.timestamp.after.max.ms", ConfigType.LONG, "log.message.timestamp.after.max.ms",
              UNLIMITED, _number(0, UNLIMITED)),
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
            raise InvalidConfig(f"Invalid value {text} for configuration {name}: {exc.message}") from None
    return checked


def config_text(value: object) -> str:
    """A config value as Kafka writes it in DescribeConfigs and CreateTopics ("true", not "True")."""
    return str(value).lower() if isinstance(value, bool) else str(value)


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
        if TOPIC_CONFIGS[name].set_by_broker(self.broker):
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
        return LogConfig(**{d.attribute: self.value(d.name) for d in TOPIC_CONFIGS.values() if d.in_log})
