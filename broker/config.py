"""The broker's settings: command-line flags, each with a COMLOG_<FLAG> environment twin."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from broker.acls import AUTHORIZER_CLASS_NAMES
from broker.connection import UNLIMITED_CONNECTIONS
from broker.listeners import Listener
from broker.topic_config import TOPIC_CONFIGS, ConfigDef, InvalidConfig
from broker.topic_names import topic_name_problem

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

    def listener_property(self, listener: str, name: str) -> str | None:
        """A property as a listener sees it: Kafka's listener.name.<listener>.<name> (listener in
        lower case) when given, else <name>; None when neither is."""
        scoped = self.properties.get(f"listener.name.{listener.lower()}.{name}")
        return scoped if scoped is not None else self.properties.get(name)


def _int_in(low: int, high: int | None, meaning: str):
    """An argparse type for integers from `low` to `high` (None: no upper bound)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {text}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its "invalid ... value" message
    return parse


_positive_int = _int_in(1, None, "a positive integer")
_port = _int_in(0, 65535, "a port number 0-65535")
_non_negative_int = _int_in(0, None, "0 or more")


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text}")


# (flag, type, help); the destination and default come from BrokerConfig's field of the same name.
_BROKER_FLAGS: list[tuple[str, object, str]] = [
    ("--host", str, "address to listen on"),
    ("--port", _port, "TCP port to listen on (0 picks a free one)"),
    ("--advertised-host", str, "host given to clients in Metadata (default: --host)"),
    ("--advertised-port", _port, "port given to clients in Metadata (default: the listening port)"),
    ("--data-dir", Path, "directory holding the topic logs and broker metadata"),
    ("--topic", str, "a topic created at start if it does not exist yet, with --num-partitions partitions"),
    ("--num-partitions", _positive_int,
     "partition count of topics created without one: auto-created, or CreateTopics with -1 (num.partitions)"),
    ("--auto-create-topics", _flag,
     "create unknown topics on Metadata requests that allow it and on Produce (auto.create.topics.enable)"),
    ("--node-id", int, "this broker's node id"),
    ("--max-request-bytes", _positive_int,
     "largest request frame accepted; a larger one closes the connection (socket.request.max.bytes)"),
    ("--connections-max-idle-ms", _positive_int,
     "close connections idle this long (connections.max.idle.ms)"),
    ("--max-connections", _positive_int,
     "connections open at once; new ones over it are closed at once (max.connections; "
     "default: half the open-file limit, leaving the rest for log files)"),
    ("--max-connections-per-ip", _positive_int,
     "connections open at once from one address; new ones over it are closed (max.connections.per.ip)"),
    ("--queued-max-request-bytes", _positive_int,
     "bytes of large requests (over 16 KiB) being read or answered at once; a connection whose next "
     "request does not fit waits (queued.max.request.bytes; at least --max-request-bytes)"),
    ("--request-read-timeout-ms", _positive_int,
     "a request frame begun must arrive whole within this long, waiting for request budget included, "
     "else its connection is closed"),
    ("--retention-check-interval-ms", _positive_int,
     "how often retention runs (log.retention.check.interval.ms)"),
    ("--log-cleaner-enable", _flag,
     "clean the logs of compacted topics (cleanup.policy=compact), keeping the latest record per key "
     "(log.cleaner.enable)"),
    ("--log-cleaner-backoff-ms", _positive_int,
     "how long the cleaner waits between its checks for logs to clean (log.cleaner.backoff.ms)"),
    ("--log-cleaner-dedupe-buffer-size", _positive_int,
     "memory for the cleaner's key map, which bounds the keys one pass cleans; more passes clean the rest "
     "(log.cleaner.dedupe.buffer.size)"),
    ("--flush-on-ack", _flag,
     "fsync before answering an acks=all produce request, so acknowledged data survives power loss"),
    ("--group-initial-rebalance-delay-ms", _non_negative_int,
     "how long an empty group waits for more members before its first rebalance "
     "(group.initial.rebalance.delay.ms; Kafka's default is 3000)"),
    ("--transaction-max-timeout-ms", _positive_int,
     "the longest transaction timeout a producer may ask for; InitProducerId over it is refused "
     "INVALID_TRANSACTION_TIMEOUT (transaction.max.timeout.ms). A transaction open longer than its "
     "timeout is aborted when the timeout passes, not on Kafka's 10 s check "
     "(transaction.abort.timed.out.transaction.cleanup.interval.ms)"),
    ("--transactional-id-expiration-ms", _positive_int,
     "a transactional id without a transaction for this long is forgotten, when that time passes "
     "(transactional.id.expiration.ms)"),
    ("--log-level", str, "DEBUG, INFO, WARNING or ERROR"),
    ("--control-port", _port, "serve the fault-injection control interface on this loopback port (0: a free "
     "one, logged): JSON lines that inject, list and clear faults and pause partitions, for tests"),
    ("--trace", Path, "append one JSON line per request and its response to this file, record data "
     "summarised (python -m broker.request_trace FILE prints it as a table)"),
    ("--authorizer-class-name", str,
     f"Kafka's authorizer.class.name: {' or '.join(AUTHORIZER_CLASS_NAMES)} turns on the ACL APIs, "
     "with the ACLs kept in the data directory (not enforced yet: every client keeps every right); "
     "without one they answer SECURITY_DISABLED"),
]


def _topic_flag(definition: ConfigDef) -> tuple[str, object, str]:
    """The flag of a topic config's broker-level value, checked as the config is (--segment-bytes)."""
    def parse(text: str) -> object:
        try:
            return definition.parse(text)
        except InvalidConfig as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    return "--" + definition.name.replace(".", "-"), parse, f"{definition.flag} ({definition.name})"


_FLAGS = _BROKER_FLAGS + [_topic_flag(definition) for definition in _FLAGGED_TOPIC_CONFIGS]
_META_ADDRESSES = ("0.0.0.0", "::", "")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def env_name(flag: str) -> str:
    return "COMLOG_" + flag.lstrip("-").replace("-", "_").upper()


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="ComLog: a single Kafka-compatible broker with a segmented commit log on disk. "
                    "Every flag can also be set through the environment variable shown beside it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    defaults = BrokerConfig()
    for flag, kind, text in _FLAGS:
        dest = flag.lstrip("-").replace("-", "_")
        default = getattr(defaults, dest)
        shown = "unset" if default is None or default == "" else default
        parser.add_argument(flag, dest=dest, type=kind, default=None,
                            help=f"{text} [env {env_name(flag)}; default {shown}]")
    return parser


def parse_config(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> BrokerConfig:
    """Flags win over the environment, which wins over the defaults."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    values: dict[str, object] = {}
    for flag, kind, _ in _FLAGS:
        dest = flag.lstrip("-").replace("-", "_")
        value = getattr(args, dest)
        if value is None and env_name(flag) in environ:
            try:
                value = kind(environ[env_name(flag)])
            except (ValueError, argparse.ArgumentTypeError) as exc:
                parser.error(f"{env_name(flag)}: {exc}")
        if value is not None:
            values[dest] = value
    config = BrokerConfig(**values)
    if config.log_level.upper() not in _LOG_LEVELS:
        parser.error(f"--log-level must be one of {', '.join(_LOG_LEVELS)}")
    if (config.advertised_host or config.host) in _META_ADDRESSES:
        # Kafka's rule for advertised.listeners: clients cannot connect to the wildcard address.
        parser.error(f"the advertised host cannot be the nonroutable meta-address {config.advertised_host or config.host}: "
                     f"pass --advertised-host with a routable address when listening on {config.host}")
    if config.max_request_bytes > config.queued_max_request_bytes:
        parser.error("--max-request-bytes must not be over --queued-max-request-bytes: "
                     "a request that large could never be read")
    if config.authorizer_class_name not in ("", *AUTHORIZER_CLASS_NAMES):
        parser.error(f"--authorizer-class-name: unknown authorizer {config.authorizer_class_name!r}: this broker "
                     f"has Kafka's standard one, named {' or '.join(AUTHORIZER_CLASS_NAMES)}, or none (empty)")
    problem = topic_name_problem(config.topic)
    if problem:
        parser.error(f"--topic: {problem}")
    return config


def configure_logging(config: BrokerConfig) -> None:
    logging.basicConfig(level=getattr(logging, config.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
