"""The broker's settings, each with a Kafka property name (comlog.* for ComLog's own): set in a
properties file (--config) and with --override as Kafka's start script takes them, by
command-line flags, and by each flag's COMLOG_<FLAG> environment twin. One table (_SETTINGS)
declares them all; the parser, the help, the precedence and the checks derive from it."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from broker.acls import AUTHORIZER_CLASS_NAMES
from broker.connection import UNLIMITED_CONNECTIONS
from broker.listeners import (
    DEFAULT_PROTOCOL_MAP, META_ADDRESSES, SASL_MECHANISMS, Listener, kafka_list, listeners_from, parse_endpoints,
    parse_protocol_map,
)
from broker.topic_config import TOPIC_CONFIGS, ConfigDef, InvalidConfig
from broker.topic_names import topic_name_problem

logger = logging.getLogger("broker.config")

# The topic configs whose broker-level value a flag sets.
_FLAGGED_TOPIC_CONFIGS = [d for d in TOPIC_CONFIGS.values() if d.flag]


def _with_topic_config_defaults(cls):
    """Adds a field per flagged topic config to BrokerConfig: the broker's value of it (Kafka's
    log.segment.bytes for segment.bytes), named as in LogConfig (segment_bytes), Kafka's default
    unless its flag says otherwise."""
    for definition in _FLAGGED_TOPIC_CONFIGS:
        cls.__annotations__[definition.attribute] = type(definition.default).__name__
        setattr(cls, definition.attribute, definition.default)
    return cls


@dataclasses.dataclass(frozen=True)
@_with_topic_config_defaults
class BrokerConfig:
    # The first listener's address (see effective_listeners), which the flags --host and --port set
    # when listeners is not given.
    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    data_dir: Path = Path("comlog-data")
    topic: str = "comlog"
    num_partitions: int = 1
    auto_create_topics: bool = True
    node_id: int = 1
    max_request_bytes: int = 100 * 1024 * 1024
    connections_max_idle_ms: int = 10 * 60 * 1000
    # None: half the open-file limit (see broker.connection.default_max_connections).
    max_connections: int | None = None
    max_connections_per_ip: int = UNLIMITED_CONNECTIONS
    queued_max_request_bytes: int = 100 * 1024 * 1024
    request_read_timeout_ms: int = 30_000
    retention_check_interval_ms: int = 5 * 60 * 1000
    log_cleaner_enable: bool = True
    log_cleaner_backoff_ms: int = 15_000
    log_cleaner_dedupe_buffer_size: int = 128 * 1024 * 1024
    flush_on_ack: bool = False
    group_initial_rebalance_delay_ms: int = 0
    transaction_max_timeout_ms: int = 15 * 60 * 1000
    transactional_id_expiration_ms: int = 7 * 24 * 60 * 60 * 1000
    max_incremental_fetch_session_cache_slots: int = 1000
    log_level: str = "INFO"
    # Kafka's authorizer.class.name; empty: none.
    authorizer_class_name: str = ""
    # Principals ("User:admin") every ACL check allows (super.users).
    super_users: tuple[str, ...] = ()
    # Whether a resource no ACL names is open to everyone (allow.everyone.if.no.acl.found).
    allow_everyone_if_no_acl_found: bool = False
    # The SASL mechanisms SASL listeners offer (sasl.enabled.mechanisms; Kafka's default, GSSAPI,
    # is not one this broker has).
    sasl_enabled_mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    # An authenticated SASL session lasts at most this long before the client must authenticate
    # again (KIP-368's connections.max.reauth.ms); 0: for the connection's life.
    connections_max_reauth_ms: int = 0
    # A connection whose authentication failed is closed this long after its answer, as Kafka
    # delays it (connection.failed.authentication.delay.ms): guessing passwords gets slower, and
    # the client reads its answer before the connection goes.
    connection_failed_authentication_delay_ms: int = 100
    # The Kafka-named properties given (in --config's file and --override), every one as text:
    # the ones with no field of their own (ssl.*, listener.name.*.sasl.jaas.config, ...) are read
    # from here with listener_property.
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Where the broker accepts connections (Kafka's listeners); none: see effective_listeners.
    listeners: tuple[Listener, ...] = ()
    # A file each request and response is written to as a JSON line (broker.request_trace).
    trace: Path | None = None
    # The loopback port of the fault-injection control interface (broker.control); None: none.
    control_port: int | None = None

    @property
    def advertised_address(self) -> tuple[str, int]:
        return self.advertised_host or self.host, self.advertised_port or self.port

    @property
    def effective_listeners(self) -> tuple[Listener, ...]:
        """The listeners given, or else one PLAINTEXT listener on host and port, advertised as
        advertised_host and advertised_port."""
        return self.listeners or (Listener("PLAINTEXT", "PLAINTEXT", self.host, self.port,
                                           self.advertised_host, self.advertised_port),)

    def listener_property_name(self, listener: str, name: str) -> str:
        """The name a listener's property is given under: Kafka's listener.name.<listener>.<name>
        (listener in lower case) when given, else <name> (what error messages name)."""
        scoped = f"listener.name.{listener.lower()}.{name}"
        return scoped if scoped in self.properties else name

    def listener_property(self, listener: str, name: str) -> str | None:
        """A property as a listener sees it (see listener_property_name); None when not given."""
        return self.properties.get(self.listener_property_name(listener, name))


# Parsers: each turns a setting's text into its value or raises ValueError with the reason.
Parse = Callable[[str], object]
_WHOLE = re.compile(r"[+-]?[0-9]+")  # what Java's Integer.parseInt takes, after Kafka's trim


def _int_in(low: int | None, high: int | None, meaning: str) -> Parse:
    """Integers from `low` to `high` (None: no bound)."""
    def parse(text: str) -> int:
        trimmed = text.strip()
        if not _WHOLE.fullmatch(trimmed):
            raise ValueError(f"must be {meaning}, got {text}")
        value = int(trimmed)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"must be {meaning}, got {text}")
        return value
    return parse


_positive_int = _int_in(1, None, "a positive integer")
_port = _int_in(0, 65535, "a port number 0-65535")
_non_negative_int = _int_in(0, None, "0 or more")
_int = _int_in(None, None, "an integer")


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {text}")


def _text(text: str) -> str:
    return text.strip()


def _log_dirs(text: str) -> Path:
    directories = kafka_list(text)
    if len(directories) != 1:
        raise ValueError(f"must name one directory (this broker keeps all its data in one), got {text!r}")
    return Path(directories[0])


def _path(text: str) -> Path:
    return Path(text.strip())


def _topic(text: str) -> str:
    problem = topic_name_problem(text.strip())
    if problem:
        raise ValueError(problem)
    return text.strip()


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(text: str) -> str:
    if text.strip().upper() not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}, got {text}")
    return text.strip().upper()


def _authorizer(text: str) -> str:
    if text.strip() not in ("", *AUTHORIZER_CLASS_NAMES):
        raise ValueError(f"unknown authorizer {text.strip()!r}: this broker has Kafka's standard one, named "
                         f"{' or '.join(AUTHORIZER_CLASS_NAMES)}, or none (empty)")
    return text.strip()


def _principals(text: str) -> tuple[str, ...]:
    """super.users: principals separated by ';' (as Kafka's authorizer splits them), each Type:name."""
    principals = tuple(p.strip() for p in text.split(";") if p.strip())
    for principal in principals:
        if ":" not in principal:
            raise ValueError(f"expected principals as principalType:principalName separated by ';', got {principal!r}")
    return principals


def _mechanisms(text: str) -> tuple[str, ...]:
    mechanisms = tuple(kafka_list(text))
    for mechanism in mechanisms:
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"unknown SASL mechanism {mechanism!r}: this broker has {', '.join(SASL_MECHANISMS)}")
    return mechanisms


def _in_ms(parse: Parse, unit_ms: int) -> Parse:
    """A synonym in coarser units (log.retention.hours) as milliseconds; Kafka takes any negative
    result as -1 (forever)."""
    def in_ms(text: str) -> int:
        value = parse(text) * unit_ms
        return -1 if value < 0 else value
    return in_ms


def _topic_default(definition: ConfigDef) -> Parse:
    """A topic config's broker-level value, checked as the config is (log.segment.bytes as segment.bytes)."""
    def parse(text: str) -> object:
        try:
            return definition.parse(text)
        except InvalidConfig as exc:
            raise ValueError(f"{exc.message}, got {text}") from None
    return parse


@dataclasses.dataclass(frozen=True, eq=False)
class Setting:
    # The BrokerConfig field set; None for the listener settings, which parse_config combines.
    field: str | None
    # Kafka's property name, or comlog.<name> for ComLog's own; None: the flag only (--host and
    # the like, which `listeners` replaces in properties).
    name: str | None
    flag: str | None
    help: str
    parse: Parse
    # Other names of the setting, each with its parser to the field's value, in Kafka's precedence
    # order after `name` (log.retention.ms over log.retention.minutes over log.retention.hours).
    synonyms: tuple[tuple[str, Parse], ...] = ()

    def names(self) -> list[tuple[str, Parse]]:
        return ([(self.name, self.parse)] if self.name else []) + list(self.synonyms)


_S = Setting
_SETTINGS: list[Setting] = [
    _S("host", None, "--host", "address to listen on, when listeners is not given", _text),
    _S("port", None, "--port", "TCP port to listen on (0 picks a free one), when listeners is not given", _port),
    _S("advertised_host", None, "--advertised-host", "host given to clients in Metadata (default: --host)", _text),
    _S("advertised_port", None, "--advertised-port",
       "port given to clients in Metadata (default: the listening port)", _port),
    _S(None, "listeners", "--listeners",
       "where to listen, as NAME://host:port,... (empty host: every interface; IPv6 in brackets; port 0: a free "
       "one); each NAME is a security protocol or mapped to one in listener.security.protocol.map", _text),
    _S(None, "advertised.listeners", "--advertised-listeners",
       "the NAME://host:port given to clients of each listener named (default: its own)", _text),
    _S(None, "listener.security.protocol.map", "--listener-security-protocol-map",
       "NAME:PROTOCOL,... mapping listener names to PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL "
       "(default: each protocol's name to itself)", _text),
    _S("data_dir", "log.dirs", "--data-dir", "directory holding the topic logs and broker metadata (one only)",
       _log_dirs, (("log.dir", _log_dirs),)),
    _S("topic", "comlog.topic", "--topic",
       "a topic created at start if it does not exist yet, with --num-partitions partitions", _topic),
    _S("num_partitions", "num.partitions", "--num-partitions",
       "partition count of topics created without one: auto-created, or CreateTopics with -1", _positive_int),
    _S("auto_create_topics", "auto.create.topics.enable", "--auto-create-topics",
       "create unknown topics on Metadata requests that allow it and on Produce", _boolean),
    _S("node_id", "node.id", "--node-id", "this broker's node id", _int, (("broker.id", _int),)),
    _S("max_request_bytes", "socket.request.max.bytes", "--max-request-bytes",
       "largest request frame accepted; a larger one closes the connection", _positive_int),
    _S("connections_max_idle_ms", "connections.max.idle.ms", "--connections-max-idle-ms",
       "close connections idle this long", _positive_int),
    _S("max_connections", "max.connections", "--max-connections",
       "connections open at once; new ones over it are closed at once (default: half the open-file limit, "
       "leaving the rest for log files)", _positive_int),
    _S("max_connections_per_ip", "max.connections.per.ip", "--max-connections-per-ip",
       "connections open at once from one address; new ones over it are closed", _positive_int),
    _S("queued_max_request_bytes", "queued.max.request.bytes", "--queued-max-request-bytes",
       "bytes of large requests (over 16 KiB) being read or answered at once; a connection whose next request "
       "does not fit waits (at least socket.request.max.bytes)", _positive_int),
    _S("request_read_timeout_ms", "comlog.request.read.timeout.ms", "--request-read-timeout-ms",
       "a request frame begun must arrive whole within this long, waiting for request budget included, else "
       "its connection is closed", _positive_int),
    _S("retention_check_interval_ms", "log.retention.check.interval.ms", "--retention-check-interval-ms",
       "how often retention runs", _positive_int),
    _S("log_cleaner_enable", "log.cleaner.enable", "--log-cleaner-enable",
       "clean the logs of compacted topics (cleanup.policy=compact), keeping the latest record per key", _boolean),
    _S("log_cleaner_backoff_ms", "log.cleaner.backoff.ms", "--log-cleaner-backoff-ms",
       "how long the cleaner waits between its checks for logs to clean", _positive_int),
    _S("log_cleaner_dedupe_buffer_size", "log.cleaner.dedupe.buffer.size", "--log-cleaner-dedupe-buffer-size",
       "memory for the cleaner's key map, which bounds the keys one pass cleans; more passes clean the rest",
       _positive_int),
    _S("flush_on_ack", "comlog.flush.on.ack", "--flush-on-ack",
       "fsync before answering an acks=all produce request, so acknowledged data survives power loss", _boolean),
    _S("group_initial_rebalance_delay_ms", "group.initial.rebalance.delay.ms", "--group-initial-rebalance-delay-ms",
       "how long an empty group waits for more members before its first rebalance (Kafka's default is 3000)",
       _non_negative_int),
    _S("transaction_max_timeout_ms", "transaction.max.timeout.ms", "--transaction-max-timeout-ms",
       "the longest transaction timeout a producer may ask for; InitProducerId over it is refused "
       "INVALID_TRANSACTION_TIMEOUT. A transaction open longer than its timeout is aborted when the timeout "
       "passes, not on Kafka's 10 s check (transaction.abort.timed.out.transaction.cleanup.interval.ms)",
       _positive_int),
    _S("transactional_id_expiration_ms", "transactional.id.expiration.ms", "--transactional-id-expiration-ms",
       "a transactional id without a transaction for this long is forgotten, when that time passes", _positive_int),
    _S("max_incremental_fetch_session_cache_slots", "max.incremental.fetch.session.cache.slots",
       "--max-incremental-fetch-session-cache-slots",
       "incremental fetch sessions (KIP-227) kept at once; a consumer without one sends full fetches",
       _non_negative_int),
    _S("log_level", "comlog.log.level", "--log-level", "DEBUG, INFO, WARNING or ERROR", _log_level),
    _S("control_port", "comlog.control.port", "--control-port",
       "serve the fault-injection control interface on this loopback port (0: a free one, logged): JSON lines "
       "that inject, list and clear faults and pause partitions, for tests", _port),
    _S("trace", "comlog.trace", "--trace",
       "append one JSON line per request and its response to this file, record data summarised "
       "(python -m broker.request_trace FILE prints it as a table)", _path),
    _S("authorizer_class_name", "authorizer.class.name", "--authorizer-class-name",
       f"{' or '.join(AUTHORIZER_CLASS_NAMES)} turns on ACLs, kept in the data directory: every request is "
       "authorized against them as Kafka's standard authorizer does (see --super-users, "
       "--allow-everyone-if-no-acl-found); without one every client may do anything and the ACL APIs answer "
       "SECURITY_DISABLED", _authorizer),
    _S("super_users", "super.users", "--super-users",
       "principals every ACL check allows, separated by ';' (User:admin;User:ops)", _principals),
    _S("allow_everyone_if_no_acl_found", "allow.everyone.if.no.acl.found", "--allow-everyone-if-no-acl-found",
       "whether a resource no ACL names is open to every principal", _boolean),
    _S("sasl_enabled_mechanisms", "sasl.enabled.mechanisms", "--sasl-enabled-mechanisms",
       f"the SASL mechanisms SASL listeners offer, separated by commas ({', '.join(SASL_MECHANISMS)})", _mechanisms),
    _S("connections_max_reauth_ms", "connections.max.reauth.ms", "--connections-max-reauth-ms",
       "an authenticated SASL session must authenticate again after this long (0: never)", _non_negative_int),
    _S("connection_failed_authentication_delay_ms", "connection.failed.authentication.delay.ms",
       "--connection-failed-authentication-delay-ms",
       "a connection whose authentication failed is closed this long after its answer (0: at once)",
       _non_negative_int),
]

# Kafka's coarser synonyms of the topic defaults' broker configs, in its precedence order.
_TOPIC_SYNONYMS: dict[str, tuple[tuple[str, Parse], ...]] = {
    "retention.ms": (("log.retention.minutes", _in_ms(_int_in(-(1 << 31), (1 << 31) - 1, "an integer"), 60_000)),
                     ("log.retention.hours", _in_ms(_int_in(-(1 << 31), (1 << 31) - 1, "an integer"), 3_600_000))),
    "segment.ms": (("log.roll.hours", _in_ms(_positive_int, 3_600_000)),),
}
_SETTINGS += [_S(d.attribute, d.broker_name, "--" + d.name.replace(".", "-"),
                 f"{d.flag} (the default of the topic config {d.name})", _topic_default(d),
                 _TOPIC_SYNONYMS.get(d.name, ())) for d in _FLAGGED_TOPIC_CONFIGS]

# Every property name a setting has, with its setting and parser.
_BY_NAME: dict[str, tuple[Setting, Parse]] = {
    name: (setting, parse) for setting in _SETTINGS for name, parse in setting.names()}

# Properties with no field of their own, kept as text in BrokerConfig.properties for the TLS and
# SASL code (each also as listener.name.<listener>.<name>).
PASS_THROUGH_PROPERTIES = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.keystore.certificate.chain",
    "ssl.keystore.key", "ssl.key.password", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.password", "ssl.truststore.certificates", "ssl.client.auth", "ssl.principal.mapping.rules",
    "ssl.enabled.protocols", "ssl.protocol", "ssl.cipher.suites", "ssl.endpoint.identification.algorithm",
    "sasl.jaas.config", "comlog.sasl.users",
})
# A mechanism's own JAAS config on a listener: listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config.
_MECHANISM_PROPERTIES = frozenset(f"{m.lower()}.sasl.jaas.config" for m in SASL_MECHANISMS)
_LISTENER_SCOPED = re.compile(r"listener\.name\.([^.]+)\.(.+)")
_SSL_CLIENT_AUTH = ("none", "requested", "required")

# Kafka broker properties that mean nothing for one broker without ZooKeeper, a KRaft quorum,
# replication or thread pools of its own: a server.properties copied from Kafka carries them, so
# they are accepted with one info line rather than a warning each, which would bury the warnings
# about names that are really wrong.
_NOT_USED_HERE = frozenset({
    "zookeeper.connect", "zookeeper.connection.timeout.ms", "zookeeper.session.timeout.ms", "process.roles",
    "controller.quorum.voters", "controller.quorum.bootstrap.servers", "controller.listener.names",
    "inter.broker.listener.name", "inter.broker.protocol.version", "num.network.threads", "num.io.threads",
    "num.replica.fetchers", "num.recovery.threads.per.data.dir", "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes", "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr", "default.replication.factor", "log.cleaner.threads", "background.threads",
    "metadata.log.dir", "delete.topic.enable",
})

# Kafka's topic defaults a broker has a property for but this broker takes from Kafka's default
# only (set per topic, or as a dynamic broker config with AlterConfigs).
_TOPIC_DEFAULTS_NOT_TAKEN = frozenset(
    d.broker_name for d in TOPIC_CONFIGS.values() if d.broker_name and d.broker_name not in _BY_NAME)


def env_name(flag: str) -> str:
    return "COMLOG_" + flag.lstrip("-").replace("-", "_").upper()


def _dest(setting: Setting) -> str:
    return setting.flag.lstrip("-").replace("-", "_")


def _version() -> str:
    try:
        return importlib.metadata.version("comlog")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _prog() -> str:
    """The command as the user typed it: `comlog-broker`, or `python -m broker` (whose argv[0] is the
    package's __main__.py)."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m broker" if invoked in ("", "__main__.py", "-c") else invoked


def _shown_default(setting: Setting) -> object:
    if setting.field is None:
        return {"listeners": "PLAINTEXT on --host and --port",
                "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in DEFAULT_PROTOCOL_MAP.items())
                }.get(setting.name, "unset")
    default = getattr(BrokerConfig(), setting.field)
    if isinstance(default, tuple):
        return ",".join(default) or "unset"
    return "unset" if default is None or default == "" else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        # Short, as parser.error prints it above each error; --help lists the flags.
        usage="%(prog)s [--config FILE] [--override NAME=VALUE ...] [--FLAG VALUE ...]",
        description="ComLog: a single Kafka-compatible broker with a segmented commit log on disk. Every setting "
                    "has a flag, with the environment variable shown beside it, and a Kafka property name "
                    "(comlog.* for ComLog's own) for --config's file and --override. A flag wins over --override, "
                    "which wins over the file, which wins over the environment.",
        epilog="Properties without a flag, read by the TLS and SASL listeners (each also as "
               "listener.name.<listener>.<name>): " + ", ".join(sorted(PASS_THROUGH_PROPERTIES)) +
               "; and listener.name.<listener>.<mechanism>.sasl.jaas.config.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a Kafka server.properties file (name=value lines, # or ! comments)")
    parser.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                        help="set a property, over the file's value (repeatable), as Kafka's "
                             "kafka-server-start.sh takes it")
    for setting in _SETTINGS:
        named = f"property {setting.name}; " if setting.name else ""
        parser.add_argument(setting.flag, dest=_dest(setting), default=None, metavar="VALUE",
                            help=f"{setting.help} [{named}env {env_name(setting.flag)}; "
                                 f"default {_shown_default(setting)}]")
    return parser


@dataclasses.dataclass(frozen=True)
class _Given:
    """A setting's text as one source gave it: `label` names it in errors (the flag, the variable
    or the property name) and `parse` is that name's parser."""
    label: str
    parse: Parse
    text: str


def _read_properties(parser: argparse.ArgumentParser, path: Path | None, overrides: list[str]) -> dict[str, str]:
    """The file's properties, each --override's over them (as Kafka merges them)."""
    properties: dict[str, str] = {}
    if path is not None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            parser.error(f"--config: cannot read {path}: {exc.strerror or exc}")
        import jproperties  # only with a file: every start without one is the faster for it

        loaded = jproperties.Properties()
        try:
            # ISO-8859-1, as Java's Properties.load(InputStream) reads the file Kafka is given;
            # \uXXXX escapes give every other character.
            loaded.load(data, "iso-8859-1")
        except jproperties.PropertyError as exc:
            parser.error(f"--config {path}: {exc}")
        properties = {name: loaded[name].data for name in loaded}
    for item in overrides:
        # Kafka's parseKeyValueArgs: split at the first '='; a name without one is set empty.
        name, _, value = item.partition("=")
        properties[name.strip()] = value
    return properties


def _from_properties(parser: argparse.ArgumentParser, properties: Mapping[str, str]) -> dict[Setting, _Given]:
    """Each setting a property names, by the highest of its names in Kafka's precedence."""
    given: dict[Setting, _Given] = {}
    for setting in _SETTINGS:
        for name, parse in setting.names():
            if name in properties:
                given[setting] = _Given(name, parse, properties[name])
                break
    if "node.id" in properties and "broker.id" in properties \
            and properties["node.id"].strip() != properties["broker.id"].strip():
        parser.error("broker.id: must be the same as node.id when both are given, as Kafka requires")
    for name, value in properties.items():
        scoped = _LISTENER_SCOPED.fullmatch(name)
        if (scoped[2] if scoped else name) == "ssl.client.auth" and value.strip() not in _SSL_CLIENT_AUTH:
            parser.error(f"{name}: must be one of {', '.join(_SSL_CLIENT_AUTH)}, got {value}")
    return given


def _listeners(parser: argparse.ArgumentParser, given: dict[Setting, _Given],
               properties: Mapping[str, str]) -> tuple[Listener, ...]:
    """The listeners of listeners, listener.security.protocol.map and advertised.listeners, but for
    the KRaft controller's (controller.listener.names), which one broker without a quorum has no use for."""
    texts = {s.name: g for s, g in given.items() if s.field is None}
    protocols = DEFAULT_PROTOCOL_MAP
    if "listener.security.protocol.map" in texts:
        chosen = texts["listener.security.protocol.map"]
        try:
            protocols = parse_protocol_map(chosen.text)
        except ValueError as exc:
            parser.error(f"{chosen.label}: {exc}")
    controller = {n.strip().upper() for n in properties.get("controller.listener.names", "").split(",")}
    endpoints = {}
    for name in ("listeners", "advertised.listeners"):
        if name in texts:
            try:
                endpoints[name] = [e for e in parse_endpoints(texts[name].text, protocols) if e.name not in controller]
            except ValueError as exc:
                parser.error(f"{texts[name].label}: {exc}")
    if "listeners" not in endpoints:
        if "advertised.listeners" in endpoints:
            parser.error(f"{texts['advertised.listeners'].label}: needs listeners (or --advertised-host and "
                         "--advertised-port with --host and --port)")
        return ()
    if not endpoints["listeners"]:
        parser.error(f"{texts['listeners'].label}: must name at least one listener")
    try:
        return listeners_from(endpoints["listeners"], endpoints.get("advertised.listeners"))
    except ValueError as exc:
        parser.error(str(exc))


def parse_config(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> BrokerConfig:
    """A flag wins over --override, which wins over --config's file, which wins over the environment,
    which wins over the defaults. A bad value exits as argparse does (code 2), naming where it was given."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    properties = _read_properties(parser, args.config, args.override)
    given = {s: _Given(env_name(s.flag), s.parse, environ[env_name(s.flag)])
             for s in _SETTINGS if env_name(s.flag) in environ}
    given.update(_from_properties(parser, properties))
    given.update({s: _Given(s.flag, s.parse, getattr(args, _dest(s)))
                  for s in _SETTINGS if getattr(args, _dest(s)) is not None})

    values: dict[str, object] = {}
    for setting, source in given.items():
        if setting.field is not None:
            try:
                values[setting.field] = source.parse(source.text)
            except ValueError as exc:
                parser.error(f"{source.label}: {exc}")
    listeners = _listeners(parser, given, properties)
    if listeners:
        single = [g.label for s, g in given.items()
                  if s.field in ("host", "port", "advertised_host", "advertised_port")]
        if single:
            listening = next(g.label for s, g in given.items() if s.name == "listeners")
            parser.error(f"{single[0]}: both it and {listening} say where to listen: give listeners only "
                         "(and advertised.listeners for the address clients are given)")
        first = listeners[0]
        values.update(host=first.host, port=first.port, advertised_host=first.advertised_host,
                      advertised_port=first.advertised_port)
    config = BrokerConfig(**values, properties=properties, listeners=listeners)

    if not listeners and (config.advertised_host or config.host) in META_ADDRESSES:
        # Kafka's rule for advertised.listeners: clients cannot connect to the wildcard address.
        parser.error(f"the advertised host cannot be the nonroutable meta-address "
                     f"{config.advertised_host or config.host}: pass --advertised-host with a routable address "
                     f"when listening on {config.host}")
    if config.max_request_bytes > config.queued_max_request_bytes:
        parser.error("--max-request-bytes must not be over --queued-max-request-bytes (socket.request.max.bytes, "
                     "queued.max.request.bytes): a request that large could never be read")
    sasl = [listener.name for listener in config.effective_listeners if listener.sasl]
    if sasl and not config.sasl_enabled_mechanisms:
        parser.error(f"sasl.enabled.mechanisms: must name a mechanism for the SASL listener {sasl[0]}")
    return config


def _property_note(name: str, listener_names: set[str]) -> tuple[int, str] | None:
    """The log level and message a property given earns: None for one that is used."""
    scoped = _LISTENER_SCOPED.fullmatch(name)
    if scoped and (scoped[2] in PASS_THROUGH_PROPERTIES or scoped[2] in _MECHANISM_PROPERTIES):
        if scoped[1].upper() in listener_names:
            return None
        return logging.WARNING, (f"property {name} names no listener of this broker "
                                 f"({', '.join(sorted(listener_names))}): ignored")
    if name in _BY_NAME or name in PASS_THROUGH_PROPERTIES:
        return None
    if name in _NOT_USED_HERE:
        return logging.INFO, f"property {name} has no meaning for a single ComLog broker: ignored"
    if name in _TOPIC_DEFAULTS_NOT_TAKEN:
        return logging.WARNING, (f"property {name} is not taken from the configuration by this broker, which uses "
                                 "Kafka's default: set it per topic, or as a dynamic broker config (AlterConfigs)")
    return logging.WARNING, f"unknown property {name}: ignored"


def log_property_notes(config: BrokerConfig) -> None:
    """One log line for each property given that the broker does not use (by name only: values can be secrets)."""
    listener_names = {listener.name for listener in config.effective_listeners}
    for name in config.properties:
        note = _property_note(name, listener_names)
        if note:
            logger.log(*note)


def configure_logging(config: BrokerConfig) -> None:
    logging.basicConfig(level=getattr(logging, config.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_property_notes(config)
