"""Dynamic broker configs, as Kafka's DynamicBrokerConfig has them: the broker configs that
AlterConfigs and IncrementalAlterConfigs may set on a broker resource, for this broker (resource
name "1") or as the cluster's default (resource name ""), kept in the data directory.

Those that are the defaults of topic configs (log.retention.ms for retention.ms, ...) take effect
at once on every topic without a value of its own, a broker's value over the cluster default, as
in Kafka. The others (listeners, TLS and SASL settings, thread counts, ...) are checked, kept and
described as Kafka does, and change nothing on this broker, whose other settings are fixed at
start."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import trio

from broker.metadata import MetadataError, write_atomically
from broker.storage_work import run_storage_work
from broker.topic_config import (
    TOPIC_CONFIGS, AlterOp, ConfigDef, ConfigSource, ConfigType, DynamicValue, InvalidValue, config_text,
    parse_typed,
)
from protocol.errors import ApiError, ErrorCode

FILE_NAME = "dynamic-broker-configs.json"

# The topic configs' broker-level names (Kafka's DynamicLogConfig), but for the one Kafka keeps static.
LOG_CONFIGS: dict[str, ConfigDef] = {
    d.broker_name: d for d in TOPIC_CONFIGS.values()
    if d.broker_name is not None and d.name != "message.format.version"
}

_S, _I, _L, _D, _B = ConfigType.STRING, ConfigType.INT, ConfigType.LONG, ConfigType.DOUBLE, ConfigType.BOOLEAN
_LIST, _P, _C, _SHORT = ConfigType.LIST, ConfigType.PASSWORD, ConfigType.CLASS, ConfigType.SHORT

# TLS key and trust material: dynamic only per listener (listener.name.NAME.ssl.keystore.location).
_LISTENER_ONLY: dict[str, ConfigType] = {
    "ssl.keystore.type": _S, "ssl.keystore.location": _S, "ssl.keystore.password": _P, "ssl.key.password": _P,
    "ssl.truststore.type": _S, "ssl.truststore.location": _S, "ssl.truststore.password": _P,
    "ssl.keystore.certificate.chain": _P, "ssl.keystore.key": _P, "ssl.truststore.certificates": _P,
}
# Kafka's DynamicListenerConfig: settable for one broker only, but for the three cluster-wide ones.
_PER_BROKER: dict[str, ConfigType] = {
    **_LISTENER_ONLY,
    "advertised.listeners": _S, "listeners": _S, "listener.security.protocol.map": _S,
    "principal.builder.class": _C, "ssl.protocol": _S, "ssl.provider": _S, "ssl.cipher.suites": _LIST,
    "ssl.enabled.protocols": _LIST, "ssl.keymanager.algorithm": _S, "ssl.trustmanager.algorithm": _S,
    "ssl.endpoint.identification.algorithm": _S, "ssl.secure.random.implementation": _S, "ssl.client.auth": _S,
    "ssl.engine.factory.class": _C, "sasl.mechanism.inter.broker.protocol": _S, "sasl.jaas.config": _P,
    "sasl.enabled.mechanisms": _LIST, "sasl.kerberos.service.name": _S, "sasl.kerberos.kinit.cmd": _S,
    "sasl.kerberos.ticket.renew.window.factor": _D, "sasl.kerberos.ticket.renew.jitter": _D,
    "sasl.kerberos.min.time.before.relogin": _L, "sasl.kerberos.principal.to.local.rules": _LIST,
    "sasl.login.refresh.window.factor": _D, "sasl.login.refresh.window.jitter": _D,
    "sasl.login.refresh.min.period.seconds": _SHORT, "sasl.login.refresh.buffer.seconds": _SHORT,
}
# The rest of Kafka's dynamic configs: the cleaner's, thread pools, connection limits, producer
# state, remote storage; settable for one broker or as the cluster default.
_CLUSTER_WIDE: dict[str, ConfigType] = {
    "max.connections": _I, "max.connection.creation.rate": _I, "num.network.threads": _I,
    "log.cleaner.threads": _I, "log.cleaner.dedupe.buffer.size": _L, "log.cleaner.io.buffer.load.factor": _D,
    "log.cleaner.io.buffer.size": _I, "log.cleaner.io.max.bytes.per.second": _D, "log.cleaner.backoff.ms": _L,
    "num.io.threads": _I, "num.replica.fetchers": _I, "num.recovery.threads.per.data.dir": _I,
    "background.threads": _I, "metric.reporters": _LIST, "max.connections.per.ip": _I,
    "max.connections.per.ip.overrides": _S, "producer.id.expiration.ms": _I,
    "transaction.partition.verification.enable": _B, "remote.log.index.file.cache.total.size.bytes": _L,
    "remote.fetch.max.wait.ms": _I, "remote.log.manager.copy.max.bytes.per.second": _L,
    "remote.log.manager.fetch.max.bytes.per.second": _L,
}
_OTHER_DYNAMIC: dict[str, ConfigType] = {**_PER_BROKER, **_CLUSTER_WIDE}
# Listener settings that a listener prefix may still set cluster-wide.
_CLUSTER_LEVEL_LISTENER = frozenset({"max.connections", "max.connection.creation.rate", "num.network.threads"})

# Kafka broker configs this broker has that Kafka does not let change while it runs (broker.id, and
# the names its flags set): AlterConfigs on them is refused, as Kafka refuses its static configs.
# A name Kafka does not know at all is kept, as Kafka keeps custom configs.
STATIC_CONFIGS = frozenset({
    "broker.id", "node.id", "num.partitions", "auto.create.topics.enable", "socket.request.max.bytes",
    "connections.max.idle.ms", "log.retention.check.interval.ms", "group.initial.rebalance.delay.ms",
    "log.dirs", "log.dir", "log.cleaner.enable", "queued.max.request.bytes", "transaction.max.timeout.ms",
    "transactional.id.expiration.ms", "log.message.format.version", "process.roles", "controller.listener.names",
    "inter.broker.listener.name", "authorizer.class.name", "super.users",
})

DYNAMIC_CONFIGS = frozenset(LOG_CONFIGS) | frozenset(_OTHER_DYNAMIC)

_LISTENER_PREFIX = "listener.name."


def config_type(name: str) -> ConfigType | None:
    """The type of a dynamic config (a listener's own one typed as its base config), None if unknown."""
    base = _listener_base(name) or name
    if base in LOG_CONFIGS:
        return LOG_CONFIGS[base].type
    return _OTHER_DYNAMIC.get(base)


def _listener_base(name: str) -> str | None:
    """ssl.keystore.location for listener.name.internal.ssl.keystore.location."""
    if not name.startswith(_LISTENER_PREFIX):
        return None
    _, _, base = name[len(_LISTENER_PREFIX):].partition(".")
    return base or None


def _kafka_set(names: Iterable[str]) -> str:
    """A set of names as Kafka's messages print a Scala Set."""
    return f"Set({', '.join(sorted(names))})"


def _check_value(name: str, text: str) -> None:
    base = _listener_base(name) or name
    try:
        if base in LOG_CONFIGS:
            LOG_CONFIGS[base].parse(text)
        elif base in _OTHER_DYNAMIC:
            parse_typed(_OTHER_DYNAMIC[base], text)
    except InvalidValue as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Invalid value {config_text(exc.shown)} for configuration "
                                                  f"{name}: {exc.message}") from None


def incremental(current: Mapping[str, str], changes) -> dict[str, str]:
    """One level's dynamic configs after IncrementalAlterConfigs' `changes` (SET, DELETE, APPEND,
    SUBTRACT), as Kafka's broker prepares them; APPEND and SUBTRACT only for LIST configs."""
    configs = dict(current)
    for change in changes:
        name, op = change.name, change.config_operation
        if op == AlterOp.SET:
            configs[name] = change.value
        elif op == AlterOp.DELETE:
            configs.pop(name, None)
        elif op in (AlterOp.APPEND, AlterOp.SUBTRACT):
            verb = "append" if op == AlterOp.APPEND else "subtract"
            if config_type(name) != ConfigType.LIST:
                raise ApiError(ErrorCode.INVALID_CONFIG, f"Config value {verb} is not allowed for config key: {name}")
            default = LOG_CONFIGS[name].default if name in LOG_CONFIGS else ()
            items = configs[name].split(",") if name in configs else list(default)
            given = (change.value or "").split(",")
            if op == AlterOp.APPEND:
                items += [v for v in given if v not in items]
            else:
                items = [i for i in items if i not in given]
            configs[name] = ",".join(item for item in items if item)
        else:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown operations type {op}")
    return configs


def validate(configs: Mapping[str, str], per_broker: bool) -> None:
    """Kafka's checks of a broker resource's complete new dynamic configs at one level (its
    DynamicBrokerConfig.validateConfigs): names, then values; raises ApiError(INVALID_REQUEST)."""
    static = [name for name in configs if name in STATIC_CONFIGS]
    if static:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"Cannot update these configs dynamically: {_kafka_set(static)}")
    unprefixed = [name for name in configs if name in _LISTENER_ONLY]
    if unprefixed:
        raise ApiError(ErrorCode.INVALID_REQUEST, "These security configs can be dynamically updated only "
                                                  f"per-listener using the listener prefix: {_kafka_set(unprefixed)}")
    for name, text in configs.items():
        _check_value(name, text)
    if not per_broker:
        one_broker = [name for name in configs if name in _PER_BROKER
                      or _listener_base(name) not in (None, *_CLUSTER_LEVEL_LISTENER)]
        if one_broker:
            raise ApiError(ErrorCode.INVALID_REQUEST, "Cannot update these configs at default cluster level, "
                                                      f"broker id must be specified: {_kafka_set(one_broker)}")


class DynamicBrokerConfigs:
    """This broker's dynamic configs and the cluster-wide default ones, durable in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / FILE_NAME
        self.per_broker: dict[str, str] = {}
        self.cluster_default: dict[str, str] = {}
        # One change at a time, each from what the previous one left (its write awaits a thread).
        self._changing = trio.Lock()

    def load(self) -> None:
        """Read the file, if any; a damaged one stops the start (MetadataError) rather than lose configs."""
        try:
            stored = json.loads(self._path.read_text())
            per_broker, cluster_default = dict(stored["broker"]), dict(stored["cluster_default"])
            if not all(isinstance(v, str) for v in [*per_broker.values(), *cluster_default.values()]):
                raise ValueError("values must be strings")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MetadataError(f"{self._path}: unreadable dynamic broker configs ({exc})") from exc
        self.per_broker, self.cluster_default = per_broker, cluster_default

    async def change(self, per_broker: bool, new_level: Callable[[dict[str, str]], dict[str, str]], *,
                     validate_only: bool = False) -> None:
        """One level's new configs, `new_level` of its current ones, checked (validate) and, unless
        `validate_only`, made durable; raises ApiError, the level unchanged."""
        async with self._changing:
            configs = new_level(dict(self.per_broker if per_broker else self.cluster_default))
            validate(configs, per_broker)
            if not validate_only:
                await self.replace(per_broker, configs)

    async def replace(self, per_broker: bool, configs: dict[str, str]) -> None:
        """Make `configs` the whole of one level, durably, then in memory; KAFKA_STORAGE_ERROR,
        nothing changed, when the file cannot be written."""
        stored = {"broker": self.per_broker, "cluster_default": self.cluster_default}
        stored["broker" if per_broker else "cluster_default"] = configs
        try:
            # Password configs are kept as given, as KRaft keeps them in its metadata log.
            await run_storage_work(functools.partial(write_atomically, private=True), self._path,
                                   json.dumps(stored, indent=2, sort_keys=True))
        except OSError as exc:
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self._path}: {exc.strerror or exc}") from exc
        if per_broker:
            self.per_broker = dict(configs)
        else:
            self.cluster_default = dict(configs)

    def value(self, name: str) -> tuple[str, ConfigSource] | None:
        """A config's dynamic text and source: this broker's over the cluster default; None if unset."""
        if name in self.per_broker:
            return self.per_broker[name], ConfigSource.DYNAMIC_BROKER_CONFIG
        if name in self.cluster_default:
            return self.cluster_default[name], ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        return None

    def topic_defaults(self) -> dict[str, DynamicValue]:
        """The topic configs whose broker-level default is set dynamically, by topic config name.
        A stored value that no longer parses (written by another version) is left out."""
        defaults = {}
        for broker_name, definition in LOG_CONFIGS.items():
            found = self.value(broker_name)
            if found is None:
                continue
            text, source = found
            try:
                defaults[definition.name] = DynamicValue(definition.parse(text), source)
            except InvalidValue:
                continue
        return defaults
