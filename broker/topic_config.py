"""Topic configs: the one table of their Kafka names, types, defaults, valid values and broker-level
synonyms, from which topics' effective configs, their logs' settings and the broker's flags derive.

A topic stores only its overrides (as Kafka does); every other value comes from the broker's
setting of the synonym, which itself is the command-line flag or Kafka's default. The configs the
log holds take their default and range from its own table (log.config.SETTINGS), unless Kafka's
range is wider.
"""

from __future__ import annotations

import dataclasses
import decimal
import enum
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable

from log import LogConfig
from log.config import SETTINGS as LOG_SETTINGS
from log.config import UNLIMITED
from protocol.errors import ApiError, ErrorCode

if TYPE_CHECKING:
    from broker.config import BrokerConfig


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


class AlterOp(enum.IntEnum):
    """IncrementalAlterConfigs' config_operation."""
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class InvalidConfig(ApiError):
    """A config name or value Kafka refuses with INVALID_CONFIG; the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_CONFIG, message)


class InvalidValue(InvalidConfig):
    """A value its config's type or validator refuses: the reason as Kafka words it, and the value
    as Kafka shows it before the reason (parsed when a validator refused it, as typed otherwise)."""

    def __init__(self, shown: object, reason: str) -> None:
        super().__init__(reason)
        self.shown = shown


def _java_double(value: float) -> str:
    """A double as Java's Double.toString writes it (0.5, 1.0, 1.0E-4), which Kafka's config texts use."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)  # positional in this range, as Java's, and always with a fraction
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    fraction = text[1:] or "0"
    return f"{'-' if sign else ''}{text[0]}.{fraction}E{exponent + len(text) - 1}"


def config_text(value: object) -> str:
    """A config value as Kafka writes it in DescribeConfigs and CreateTopics: "true", not "True";
    0.5; a list joined by commas."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


# The texts Java's Integer/Long.parseLong and Double.parseDouble accept (after Kafka's trim).
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DOUBLE = re.compile(r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)")
_BOUNDS = {ConfigType.SHORT: 15, ConfigType.INT: 31, ConfigType.LONG: 63}


def _whole(config_type: ConfigType) -> Callable[[str], int]:
    bits = _BOUNDS[config_type]

    def parse(text: str) -> int:
        trimmed = text.strip()
        if _WHOLE.fullmatch(trimmed) and -(1 << bits) <= int(trimmed) < 1 << bits:
            return int(trimmed)
        raise InvalidValue(text, f"Not a number of type {config_type.name}")
    return parse


def _double(text: str) -> float:
    trimmed = text.strip()
    if not _DOUBLE.fullmatch(trimmed):
        raise InvalidValue(text, "Not a number of type DOUBLE")
    return float(trimmed.rstrip("fFdD"))


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidValue(text, "Expected value to be either true or false")
    return lowered == "true"


def _list(text: str) -> tuple[str, ...]:
    trimmed = text.strip()
    return tuple(re.split(r"\s*,\s*", trimmed)) if trimmed else ()


# How Kafka's ConfigDef turns each type's text into a value (a LIST into a tuple of its items).
_PARSERS: dict[ConfigType, Callable[[str], object]] = {
    ConfigType.SHORT: _whole(ConfigType.SHORT), ConfigType.INT: _whole(ConfigType.INT),
    ConfigType.LONG: _whole(ConfigType.LONG), ConfigType.DOUBLE: _double, ConfigType.BOOLEAN: _boolean,
    ConfigType.STRING: str.strip, ConfigType.LIST: _list, ConfigType.CLASS: str.strip, ConfigType.PASSWORD: str,
}


def parse_typed(config_type: ConfigType, text: str) -> object:
    """A config's text as Kafka's ConfigDef parses its type, before any validator; raises InvalidValue."""
    return _PARSERS[config_type](text)

# A validator, given a config's name and parsed value, raises InvalidValue when Kafka refuses it.
Validator = Callable[[str, object], None]


def _range(low: int, high: int | None = None) -> Validator:
    """Kafka's Range: atLeast(low), or between(low, high)."""
    def check(name: str, value) -> None:
        # Comparisons with NaN are false, so Kafka's Range lets a NaN double through; so does this.
        if value < low:
            raise InvalidValue(value, f"Value must be at least {low}")
        if high is not None and value > high:
            raise InvalidValue(value, f"Value must be no more than {high}")
    return check


def _one_of(*allowed: str) -> Validator:
    """Kafka's ValidString (case-sensitive)."""
    def check(name: str, value) -> None:
        if value not in allowed:
            raise InvalidValue(value, f"String must be one of: {', '.join(allowed)}")
    return check


_CLEANUP_POLICY = _one_of("compact", "delete")


def _cleanup_policy(name: str, policies) -> None:
    for policy in policies:
        _CLEANUP_POLICY(name, policy)  # Kafka's ValidList: each item a ValidString


def _gzip_level(name: str, level) -> None:
    # -1 is zlib's default level; 0 (no compression) is refused by Kafka.
    if level > 9 or (level < 1 and level != -1):
        raise InvalidValue(level, "Value must be between 1 and 9 or equal to -1")


# Kafka 3.9's MetadataVersion releases and how many sub-versions (IV0, IV1, ...) each has; the
# oldest have none. A release's bare name stands for its latest sub-version, except for 4.0,
# which 3.9 does not count as a production release.
_RELEASES = {"0.8.0": 0, "0.8.1": 0, "0.8.2": 0, "0.9.0": 0, "0.10.0": 2, "0.10.1": 3, "0.10.2": 1,
             "0.11.0": 3, "1.0": 1, "1.1": 1, "2.0": 2, "2.1": 3, "2.2": 2, "2.3": 2, "2.4": 2, "2.5": 1,
             "2.6": 1, "2.7": 3, "2.8": 2, "3.0": 2, "3.1": 1, "3.2": 1, "3.3": 4, "3.4": 1, "3.5": 3,
             "3.6": 3, "3.7": 5, "3.8": 1, "3.9": 1, "4.0": 2}
_METADATA_VERSIONS = frozenset(
    [f"{release}-IV{i}" for release, count in _RELEASES.items() for i in range(count)]
    + [release for release in _RELEASES if release != "4.0"])


def _metadata_version(name: str, version) -> None:
    """Kafka's MetadataVersionValidator: the version, cut to its release (0.10.0.1 is 0.10.0,
    3.0.1 is 3.0), must be one Kafka 3.9 knows."""
    # Java's split drops trailing empty pieces: "3.0." has two.
    segments = version.split(".")
    while segments and not segments[-1]:
        segments.pop()
    kept = 3 if version.startswith("0.") else 2
    key = version if kept >= len(segments) else ".".join(segments[:kept])
    if key not in _METADATA_VERSIONS:
        raise InvalidValue(version, f"Version {version} is not a valid version")


_REPLICA = re.compile(r"(?:[0-9]+:[0-9]+)?")


def _throttled_replicas(name: str, replicas) -> None:
    """Kafka's ThrottledReplicaListValidator: "*", or partition:broker pairs."""
    items = [r.strip() for r in replicas]
    if not (all(_REPLICA.fullmatch(r) for r in items) or "".join(items) == "*"):
        raise InvalidValue(f"[{', '.join(replicas)}]", f"{name} must be the literal '*' or a list of replicas "
                                                     f"in the following format: [partitionId]:[brokerId],"
                                                     f"[partitionId]:[brokerId],...")


def _attribute(name: str) -> str:
    """A config's name in LogConfig and BrokerConfig: segment.bytes is segment_bytes there."""
    return name.replace(".", "_")


@dataclasses.dataclass(frozen=True)
class ConfigDef:
    name: str
    type: ConfigType
    # Kafka's broker config whose value is the default of topics without an override (its
    # ServerTopicConfigSynonyms entry); None for the few topic configs without one.
    broker_name: str | None
    default: object
    validator: Validator | None = None
    # The help of the command-line flag setting the broker's value; None: it is Kafka's default.
    flag: str | None = None

    @property
    def attribute(self) -> str:
        return _attribute(self.name)

    @property
    def in_log(self) -> bool:
        return self.attribute in LOG_SETTINGS

    def parse(self, text: str) -> object:
        """The value of a config's text, as Kafka parses and validates it; raises InvalidValue."""
        value = _PARSERS[self.type](text)
        if self.validator is not None:
            self.validator(self.name, value)
        return value

    def broker_value(self, broker: BrokerConfig) -> object:
        return getattr(broker, self.attribute) if self.flag else self.default

    def set_by_broker(self, broker: BrokerConfig) -> bool:
        """Whether the broker's value is its own (a flag), not Kafka's default."""
        return self.broker_value(broker) != self.default


def _log_setting(name: str, type: ConfigType, broker_name: str, flag: str | None = None, *,
                 kafka_low: int | None = None) -> ConfigDef:
    """A config the log holds, with the default LogConfig declares for it, and its range too unless
    Kafka's minimum is lower (kafka_low; see TopicConfig.log_config for what such values mean)."""
    default, low, _ = LOG_SETTINGS[_attribute(name)]
    # The log's maxima are the type's own, which parsing already enforces, as Kafka's do.
    return ConfigDef(name, type, broker_name, default, _range(low if kafka_low is None else kafka_low), flag)


def _table(*defs: ConfigDef) -> dict[str, ConfigDef]:
    return {d.name: d for d in defs}


_LONG_MIN = -(1 << 63)

TOPIC_CONFIGS: dict[str, ConfigDef] = _table(
    ConfigDef("cleanup.policy", ConfigType.LIST, "log.cleanup.policy", ("delete",), _cleanup_policy),
    _log_setting("retention.ms", ConfigType.LONG, "log.retention.ms",
                 flag="delete segments older than this, -1 = forever"),
    # Kafka gives retention.bytes no range: every negative value means no limit.
    _log_setting("retention.bytes", ConfigType.LONG, "log.retention.bytes",
                 flag="delete old segments beyond this size, -1 = unlimited", kafka_low=_LONG_MIN),
    _log_setting("segment.bytes", ConfigType.INT, "log.segment.bytes", flag="roll to a new segment at this size"),
    _log_setting("segment.ms", ConfigType.LONG, "log.roll.ms", flag="roll to a new segment after this age"),
    _log_setting("segment.jitter.ms", ConfigType.LONG, "log.roll.jitter.ms"),
    _log_setting("segment.index.bytes", ConfigType.INT, "log.index.size.max.bytes", kafka_low=4),
    _log_setting("index.interval.bytes", ConfigType.INT, "log.index.interval.bytes"),
    _log_setting("max.message.bytes", ConfigType.INT, "message.max.bytes",
                 flag="largest record batch accepted; a larger one gets MESSAGE_TOO_LARGE"),
    ConfigDef("message.timestamp.type", ConfigType.STRING, "log.message.timestamp.type", "CreateTime",
              _one_of("CreateTime", "LogAppendTime"), flag="CreateTime or LogAppendTime"),
    ConfigDef("message.timestamp.before.max.ms", ConfigType.LONG, "log.message.timestamp.before.max.ms",
              UNLIMITED, _range(0)),
    ConfigDef("message.timestamp.after.max.ms", ConfigType.LONG, "log.message.timestamp.after.max.ms",
              UNLIMITED, _range(0)),
    ConfigDef("message.timestamp.difference.max.ms", ConfigType.LONG, "log.message.timestamp.difference.max.ms",
              UNLIMITED, _range(0)),
    ConfigDef("min.insync.replicas", ConfigType.INT, "min.insync.replicas", 1, _range(1)),
    _log_setting("flush.messages", ConfigType.LONG, "log.flush.interval.messages",
                 flag="fsync after this many record batches; by default the OS decides"),
    _log_setting("flush.ms", ConfigType.LONG, "log.flush.interval.ms",
                 flag="fsync at least this often; by default the OS decides"),
    _log_setting("file.delete.delay.ms", ConfigType.LONG, "log.segment.delete.delay.ms"),
    ConfigDef("preallocate", ConfigType.BOOLEAN, "log.preallocate", False),
    ConfigDef("compression.type", ConfigType.STRING, "compression.type", "producer",
              _one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
    ConfigDef("compression.gzip.level", ConfigType.INT, "compression.gzip.level", -1, _gzip_level),
    ConfigDef("compression.lz4.level", ConfigType.INT, "compression.lz4.level", 9, _range(1, 17)),
    ConfigDef("compression.zstd.level", ConfigType.INT, "compression.zstd.level", 3, _range(-131072, 22)),
    # Compaction's settings, which the log's cleaner takes (their defaults are LogConfig's too).
    ConfigDef("delete.retention.ms", ConfigType.LONG, "log.cleaner.delete.retention.ms", 24 * 60 * 60 * 1000,
              _range(0)),
    ConfigDef("min.compaction.lag.ms", ConfigType.LONG, "log.cleaner.min.compaction.lag.ms", 0, _range(0)),
    ConfigDef("max.compaction.lag.ms", ConfigType.LONG, "log.cleaner.max.compaction.lag.ms", UNLIMITED,
              _range(1)),
    ConfigDef("min.cleanable.dirty.ratio", ConfigType.DOUBLE, "log.cleaner.min.cleanable.ratio", 0.5,
              _range(0, 1)),
    # Settings of replication, which one broker has no use for, and of old message formats.
    ConfigDef("unclean.leader.election.enable", ConfigType.BOOLEAN, "unclean.leader.election.enable", False),
    ConfigDef("leader.replication.throttled.replicas", ConfigType.LIST, None, (), _throttled_replicas),
    ConfigDef("follower.replication.throttled.replicas", ConfigType.LIST, None, (), _throttled_replicas),
    ConfigDef("message.format.version", ConfigType.STRING, "log.message.format.version", "3.0-IV1",
              _metadata_version),
    ConfigDef("message.downconversion.enable", ConfigType.BOOLEAN, "log.message.downconversion.enable", True),
    # Tiered storage's settings; remote.storage.enable=true is refused (validate_overrides), as by a
    # Kafka broker without remote storage. -2: the local retention is retention.ms / retention.bytes.
    ConfigDef("remote.storage.enable", ConfigType.BOOLEAN, None, False),
    ConfigDef("local.retention.ms", ConfigType.LONG, "log.local.retention.ms", -2, _range(-2)),
    ConfigDef("local.retention.bytes", ConfigType.LONG, "log.local.retention.bytes", -2, _range(-2)),
    ConfigDef("remote.log.copy.disable", ConfigType.BOOLEAN, None, False),
    ConfigDef("remote.log.delete.on.disable", ConfigType.BOOLEAN, None, False),
)


def _check_together(values: dict[str, object]) -> None:
    """Kafka's checks of configs against each other, on the topic's overrides over the defaults
    (neither config here has a broker flag, so Kafka's default is the broker's)."""
    def value(name: str) -> object:
        return values.get(name, TOPIC_CONFIGS[name].default)

    low, high = value("min.compaction.lag.ms"), value("max.compaction.lag.ms")
    if low > high:
        raise InvalidConfig(f"conflict topic config setting min.compaction.lag.ms ({low}) > "
                            f"max.compaction.lag.ms ({high})")
    if value("remote.storage.enable"):
        raise InvalidConfig("Tiered Storage functionality is disabled in the broker. "
                            "Topic cannot be configured with remote log storage.")


def validate_overrides(overrides: dict[str, str | None]) -> dict[str, str]:
    """Check names and values, each on its own and then against each other, as Kafka does;
    returns them normalised (values as Kafka prints them)."""
    values = {}
    for name, text in overrides.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise InvalidConfig(f"Unknown topic config name: {name}")
        if text is None:
            raise InvalidConfig(f"Null value not supported for topic config: {name}")
        try:
            values[name] = definition.parse(text)
        except InvalidValue as exc:
            raise InvalidConfig(f"Invalid value {config_text(exc.shown)} for configuration {name}: "
                                f"{exc.message}") from None
    _check_together(values)
    return {name: config_text(value) for name, value in values.items()}


@dataclasses.dataclass(frozen=True)
class DynamicValue:
    """A topic config's broker-level default set while the broker runs (see broker.dynamic_config):
    its parsed value, and its source (this broker or the cluster)."""
    value: object
    source: ConfigSource


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """A topic's effective configuration: its overrides over the broker's dynamic defaults, over its
    static ones."""

    broker: BrokerConfig
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    # By topic config name.
    dynamic: Mapping[str, DynamicValue] = dataclasses.field(default_factory=dict)
    # The overrides' values, parsed once: produce reads several configs of its topic per batch.
    _parsed: dict[str, object] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parsed", {name: TOPIC_CONFIGS[name].parse(text)
                                             for name, text in self.overrides.items()})

    def value(self, name: str) -> object:
        if name in self._parsed:
            return self._parsed[name]
        if name in self.dynamic:
            return self.dynamic[name].value
        return TOPIC_CONFIGS[name].broker_value(self.broker)

    def source(self, name: str) -> ConfigSource:
        if name in self.overrides:
            return ConfigSource.TOPIC_CONFIG
        if name in self.dynamic:
            return self.dynamic[name].source
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
        settings = {d.attribute: self.value(d.name) for d in TOPIC_CONFIGS.values() if d.in_log}
        for attribute, value in settings.items():
            # Kafka accepts a few values under the log's minimum, meaning what the minimum does: any
            # negative retention.bytes is no limit; an index too small for an entry is full at once.
            if type(value) is int:
                settings[attribute] = max(value, LOG_SETTINGS[attribute].low)
        policy = self.value("cleanup.policy")
        if "delete" not in policy:
            # A policy without delete (Kafka 3.9 accepts an empty one) keeps every segment.
            settings.update(retention_ms=-1, retention_bytes=-1)
        return LogConfig(**settings, compact="compact" in policy)
