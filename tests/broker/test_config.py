import dataclasses
import logging
import re
from pathlib import Path

import pytest

from broker.config import (
    PASS_THROUGH_PROPERTIES, BrokerConfig, build_parser, env_name, log_property_notes, parse_config,
)
from broker.topic_config import TOPIC_CONFIGS, TopicConfig


def _refused(argv, capsys, environ=None) -> str:
    """The one error line parse_config exits with, as argparse does (code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv, environ=environ or {})
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("python -m broker: error: ") or ": error: " in lines[-1]
    return lines[-1].partition(": error: ")[2]


@pytest.fixture
def properties_file(tmp_path):
    """Writes a server.properties of the given text; its --config arguments."""
    def write(text: str, name: str = "server.properties") -> list[str]:
        path = tmp_path / name
        path.write_text(text, encoding="iso-8859-1")
        return ["--config", str(path)]
    return write


def test_defaults_match_kafkas():
    config = parse_config([], environ={})
    assert config == BrokerConfig()
    assert (config.host, config.port) == ("127.0.0.1", 9092)
    assert config.max_request_bytes == 100 * 1024 * 1024
    assert config.max_message_bytes == 1048588
    assert (config.segment_bytes, config.retention_ms) == (1 << 30, 7 * 24 * 60 * 60 * 1000)


def test_topic_config_flags_come_from_the_table_and_are_checked_as_the_configs_are():
    for definition in TOPIC_CONFIGS.values():
        if definition.flag:
            assert getattr(BrokerConfig(), definition.attribute) == definition.default
    config = parse_config(["--segment-bytes", "14", "--message-timestamp-type", "LogAppendTime"],
                          environ={"COMLOG_RETENTION_MS": "-1"})
    assert (config.segment_bytes, config.message_timestamp_type, config.retention_ms) == (14, "LogAppendTime", -1)
    assert TopicConfig(config).log_config().segment_bytes == 14


def test_flags_win_over_environment():
    config = parse_config(["--port", "19092"], environ={"COMLOG_PORT": "29092", "COMLOG_TOPIC": "events"})
    assert config.port == 19092
    assert config.topic == "events"


def test_precedence_flag_then_override_then_file_then_environment_then_default(properties_file):
    argv = properties_file("num.partitions=2\nlog.segment.bytes=1000\nlog.retention.check.interval.ms=7\n"
                           "comlog.topic=from-file\n")
    environ = {"COMLOG_NUM_PARTITIONS": "9", "COMLOG_SEGMENT_BYTES": "9999", "COMLOG_TOPIC": "from-env",
               "COMLOG_NODE_ID": "4", "COMLOG_RETENTION_CHECK_INTERVAL_MS": "8"}
    config = parse_config([*argv, "--override", "log.segment.bytes=2000", "--override", "comlog.topic=overridden",
                           "--topic", "flagged"], environ=environ)
    assert config.num_partitions == 2            # the file over the environment
    assert config.segment_bytes == 2000          # --override over the file
    assert config.topic == "flagged"             # a flag over --override
    assert config.node_id == 4                   # the environment over the default
    assert config.retention_check_interval_ms == 7
    assert config.auto_create_topics is True     # the default
    assert config.properties["log.segment.bytes"] == "2000"


def test_every_kafka_name_sets_its_field(properties_file):
    argv = properties_file("""
log.dirs=/var/lib/comlog
num.partitions=3
auto.create.topics.enable=false
node.id=7
socket.request.max.bytes=1000
connections.max.idle.ms=5000
max.connections=50
max.connections.per.ip=5
queued.max.request.bytes=2000
log.retention.check.interval.ms=1000
log.cleaner.enable=false
log.cleaner.backoff.ms=100
log.cleaner.dedupe.buffer.size=4096
group.initial.rebalance.delay.ms=3000
transaction.max.timeout.ms=60000
transactional.id.expiration.ms=120000
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin; User:CN=ops,O=example
allow.everyone.if.no.acl.found=true
sasl.enabled.mechanisms=PLAIN, SCRAM-SHA-512,OAUTHBEARER
connections.max.reauth.ms=60000
log.retention.ms=1000
log.retention.bytes=4096
log.segment.bytes=8192
log.roll.ms=2000
message.max.bytes=500
log.message.timestamp.type=LogAppendTime
log.flush.interval.messages=10
log.flush.interval.ms=20
comlog.topic=events
comlog.flush.on.ack=true
comlog.request.read.timeout.ms=900
comlog.log.level=debug
comlog.trace=/tmp/trace.jsonl
comlog.control.port=0
""")
    config = parse_config(argv, environ={})
    assert dataclasses.asdict(config) | {"properties": None} == dataclasses.asdict(BrokerConfig(
        data_dir=Path("/var/lib/comlog"), num_partitions=3, auto_create_topics=False, node_id=7,
        max_request_bytes=1000, connections_max_idle_ms=5000, max_connections=50, max_connections_per_ip=5,
        queued_max_request_bytes=2000, retention_check_interval_ms=1000, log_cleaner_enable=False,
        log_cleaner_backoff_ms=100, log_cleaner_dedupe_buffer_size=4096, group_initial_rebalance_delay_ms=3000,
        transaction_max_timeout_ms=60000, transactional_id_expiration_ms=120000,
        authorizer_class_name="org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        super_users=("User:admin", "User:CN=ops,O=example"), allow_everyone_if_no_acl_found=True,
        sasl_enabled_mechanisms=("PLAIN", "SCRAM-SHA-512", "OAUTHBEARER"), connections_max_reauth_ms=60000,
        retention_ms=1000, retention_bytes=4096, segment_bytes=8192, segment_ms=2000, max_message_bytes=500,
        message_timestamp_type="LogAppendTime", flush_messages=10, flush_ms=20, topic="events", flush_on_ack=True,
        request_read_timeout_ms=900, log_level="DEBUG", trace=Path("/tmp/trace.jsonl"), control_port=0,
    )) | {"properties": None}


# Kafka 3.9's names of the broker configs this broker has (KafkaConfig, SocketServerConfigs,
# ServerLogConfigs, ...), the topic defaults' among them.
KAFKA_NAMES = {
    "listeners", "advertised.listeners", "listener.security.protocol.map", "log.dirs", "num.partitions",
    "auto.create.topics.enable", "node.id", "socket.request.max.bytes", "connections.max.idle.ms", "max.connections",
    "max.connections.per.ip", "queued.max.request.bytes", "max.incremental.fetch.session.cache.slots", "log.retention.check.interval.ms", "log.cleaner.enable",
    "log.cleaner.backoff.ms", "log.cleaner.dedupe.buffer.size", "group.initial.rebalance.delay.ms",
    "transaction.max.timeout.ms", "transactional.id.expiration.ms", "authorizer.class.name", "super.users",
    "allow.everyone.if.no.acl.found", "sasl.enabled.mechanisms", "connections.max.reauth.ms",
    "connection.failed.authentication.delay.ms",
} | {d.broker_name for d in TOPIC_CONFIGS.values() if d.flag}


def test_every_field_has_a_kafka_or_comlog_property_and_the_flags_still_work():
    from broker.config import _SETTINGS

    named = {s.field: s.name for s in _SETTINGS if s.name}
    # The fields the listener properties set (host and port are the first listener's); properties
    # holds the properties given, as text.
    from_listeners = {"host": "listeners", "port": "listeners", "listeners": "listeners",
                      "advertised_host": "advertised.listeners", "advertised_port": "advertised.listeners"}
    for field in set(BrokerConfig.__dataclass_fields__) - {"properties"}:
        name = named.get(field) or from_listeners[field]
        assert name in KAFKA_NAMES or name.startswith("comlog."), field
    assert {s.name for s in _SETTINGS if s.name and not s.name.startswith("comlog.")} == KAFKA_NAMES
    text = " ".join(build_parser().format_help().split())
    for setting in _SETTINGS:
        assert setting.flag in text and env_name(setting.flag) in text
        if setting.name:
            assert f"property {setting.name};" in text
    old_flags = ["--host", "--port", "--advertised-host", "--advertised-port", "--data-dir", "--topic",
                 "--num-partitions", "--auto-create-topics", "--node-id", "--max-request-bytes",
                 "--connections-max-idle-ms", "--max-connections", "--max-connections-per-ip",
                 "--queued-max-request-bytes", "--request-read-timeout-ms", "--retention-check-interval-ms",
                 "--log-cleaner-enable", "--log-cleaner-backoff-ms", "--log-cleaner-dedupe-buffer-size",
                 "--flush-on-ack", "--group-initial-rebalance-delay-ms", "--transaction-max-timeout-ms",
                 "--transactional-id-expiration-ms", "--log-level", "--control-port", "--trace",
                 "--authorizer-class-name", "--retention-ms", "--retention-bytes", "--segment-bytes", "--segment-ms",
                 "--max-message-bytes", "--message-timestamp-type", "--flush-messages", "--flush-ms"]
    assert set(old_flags) <= {s.flag for s in _SETTINGS}


def test_new_security_fields_have_flags_and_environment_twins():
    config = parse_config(["--super-users", "User:a;User:b", "--allow-everyone-if-no-acl-found", "true",
                           "--sasl-enabled-mechanisms", "SCRAM-SHA-256"],
                          environ={"COMLOG_CONNECTIONS_MAX_REAUTH_MS": "1000", "COMLOG_SUPER_USERS": "User:c"})
    assert config.super_users == ("User:a", "User:b")
    assert config.allow_everyone_if_no_acl_found is True
    assert config.sasl_enabled_mechanisms == ("SCRAM-SHA-256",)
    assert config.connections_max_reauth_ms == 1000


def test_synonyms_in_kafkas_precedence(properties_file):
    hours = parse_config(properties_file("log.retention.hours=2\nlog.roll.hours=1\nbroker.id=5\nlog.dir=/d\n"), {})
    assert (hours.retention_ms, hours.segment_ms, hours.node_id, hours.data_dir) == (
        2 * 3_600_000, 3_600_000, 5, Path("/d"))
    minutes = parse_config(properties_file("log.retention.hours=2\nlog.retention.minutes=3\n"), {})
    assert minutes.retention_ms == 3 * 60_000
    ms = parse_config(properties_file("log.retention.ms=10\nlog.retention.minutes=3\nlog.dirs=/a\nlog.dir=/b\n"), {})
    assert (ms.retention_ms, ms.data_dir) == (10, Path("/a"))
    assert parse_config(properties_file("log.retention.hours=-1\n"), {}).retention_ms == -1
    same = parse_config(properties_file("node.id=3\nbroker.id=3\n"), {})
    assert same.node_id == 3


def test_a_higher_source_replaces_every_name_of_a_setting(properties_file):
    # The file's log.retention.hours beats the environment's COMLOG_RETENTION_MS, though ms is the
    # stronger name within one file.
    config = parse_config(properties_file("log.retention.hours=1\n"), {"COMLOG_RETENTION_MS": "5"})
    assert config.retention_ms == 3_600_000


def test_properties_file_syntax(properties_file):
    argv = properties_file(
        "# a comment\n"
        "! another comment\n"
        "num.partitions: 4\n"
        "comlog.topic   =  orders\n"
        "log.dirs = /data/\\\n"
        "           comlog\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n"
        "    username=\"admin\" password=\"caf\\u00e9=\\:#\";\n"
        "ssl.keystore.location=/etc/k\\\\s.pem\n"
        "ssl.truststore.password=caf\xe9\n")
    config = parse_config(argv, {})
    assert (config.num_partitions, config.topic, config.data_dir) == (4, "orders", Path("/data/comlog"))
    assert config.properties["sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="café=:#";')
    assert config.properties["ssl.keystore.location"] == "/etc/k\\s.pem"
    # ISO-8859-1, as Java reads a properties file.
    assert config.properties["ssl.truststore.password"] == "café"


def test_override_as_kafkas_start_script_takes_it():
    config = parse_config(["--override", "sasl.jaas.config=a=b", "--override", "ssl.key.password"], {})
    assert config.properties == {"sasl.jaas.config": "a=b", "ssl.key.password": ""}


def test_listener_property_prefers_the_listeners_own(properties_file):
    argv = properties_file("listeners=SASL_SSL://127.0.0.1:0\nssl.keystore.location=/all.pem\n"
                           "listener.name.sasl_ssl.ssl.keystore.location=/own.pem\n"
                           "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=x\n")
    config = parse_config(argv, {})
    assert config.listener_property("SASL_SSL", "ssl.keystore.location") == "/own.pem"
    assert config.listener_property("PLAINTEXT", "ssl.keystore.location") == "/all.pem"
    assert config.listener_property("SASL_SSL", "scram-sha-256.sasl.jaas.config") == "x"
    assert config.listener_property("SASL_SSL", "ssl.truststore.location") is None


def test_advertised_address_defaults_to_listen_address():
    config = parse_config(["--host", "0.0.0.0", "--advertised-host", "kafka.local"], environ={})
    assert config.advertised_address == ("kafka.local", 9092)


def test_data_dir_is_a_path():
    assert parse_config(["--data-dir", "/tmp/x"], environ={}).data_dir == Path("/tmp/x")


@pytest.mark.parametrize("argv", [
    ["--port", "70000"],
    ["--segment-bytes", "13"],  # Kafka's least segment.bytes is 14
    ["--segment-bytes", "1e6"],
    ["--retention-ms", "-5"],
    ["--message-timestamp-type", "WallClock"],
    ["--log-level", "chatty"],
    ["--flush-on-ack", "maybe"],
    ["--topic", "bad/name"],
])
def test_bad_values_are_refused_with_a_message(argv, capsys):
    assert _refused(argv, capsys).startswith(argv[0] + ": ")


@pytest.mark.parametrize("text, message", [
    ("num.partitions=x", "num.partitions: must be a positive integer, got x"),
    ("num.partitions=0", "num.partitions: must be a positive integer, got 0"),
    ("num.partitions=1_000", "num.partitions: must be a positive integer, got 1_000"),
    ("auto.create.topics.enable=maybe", "auto.create.topics.enable: must be true or false, got maybe"),
    ("log.dirs=/a,/b", "log.dirs: must name one directory (this broker keeps all its data in one), got '/a,/b'"),
    ("log.dirs=", "log.dirs: must name one directory"),
    ("node.id=one", "node.id: must be an integer, got one"),
    ("node.id=1\nbroker.id=2", "broker.id: must be the same as node.id when both are given"),
    ("log.segment.bytes=13", "log.segment.bytes: Value must be at least 14, got 13"),
    ("log.retention.hours=x", "log.retention.hours: must be an integer, got x"),
    ("log.roll.hours=0", "log.roll.hours: must be a positive integer, got 0"),
    ("log.message.timestamp.type=Wall", "log.message.timestamp.type: String must be one of: CreateTime, LogAppendTime"),
    ("comlog.log.level=chatty", "comlog.log.level: must be one of DEBUG, INFO, WARNING, ERROR, got chatty"),
    ("comlog.topic=bad/name", "comlog.topic: "),
    ("comlog.control.port=70000", "comlog.control.port: must be a port number 0-65535, got 70000"),
    ("authorizer.class.name=kafka.security.authorizer.Nope", "authorizer.class.name: unknown authorizer"),
    ("super.users=admin", "super.users: expected principals as principalType:principalName separated by ';'"),
    ("sasl.enabled.mechanisms=PLAIN,GSSAPI", "sasl.enabled.mechanisms: unknown SASL mechanism 'GSSAPI'"),
    ("connections.max.reauth.ms=-1", "connections.max.reauth.ms: must be 0 or more, got -1"),
    ("ssl.client.auth=sometimes", "ssl.client.auth: must be one of none, requested, required, got sometimes"),
    ("listener.name.ssl.ssl.client.auth=yes", "listener.name.ssl.ssl.client.auth: must be one of none"),
    ("socket.request.max.bytes=2000\nqueued.max.request.bytes=1000",
     "--max-request-bytes must not be over --queued-max-request-bytes (socket.request.max.bytes, "
     "queued.max.request.bytes)"),
])
def test_bad_property_values_are_refused_naming_the_property_and_the_reason(text, message, properties_file, capsys):
    assert _refused(properties_file(text + "\n"), capsys).startswith(message)


def test_a_bad_override_is_named_as_its_property(capsys):
    assert _refused(["--override", "num.partitions=-1"], capsys) == "num.partitions: must be a positive integer, got -1"


def test_bad_environment_value_names_the_variable(capsys):
    assert _refused([], capsys, {"COMLOG_PORT": "ninety"}) == "COMLOG_PORT: must be a port number 0-65535, got ninety"


def test_an_unreadable_or_malformed_file_is_refused(tmp_path, properties_file, capsys):
    assert _refused(["--config", str(tmp_path / "missing.properties")], capsys).startswith(
        f"--config: cannot read {tmp_path / 'missing.properties'}: No such file or directory")
    assert _refused(properties_file("sasl.jaas.config=\\uZZZZ\n"), capsys).startswith("--config ")


def test_unknown_properties_are_warned_about_by_name_and_secrets_never_logged(properties_file, caplog):
    secret = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="s3cret";'
    config = parse_config(properties_file(
        f"num.partitons=3\nlisteners=SASL_SSL://127.0.0.1:0\nlistener.name.sasl_ssl.plain.sasl.jaas.config={secret}\n"
        f"listener.name.other.sasl.jaas.config={secret}\nlistener.name.sasl_ssl.gssapi.sasl.jaas.config={secret}\n"
        "process.roles=broker,controller\nzookeeper.connect=localhost:2181\nlog.cleanup.policy=compact\n"
        "ssl.keystore.password=hunter2\nsasl.jaas.config=x\n"), {})
    with caplog.at_level(logging.INFO, logger="broker.config"):
        log_property_notes(config)
    notes = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert notes == [
        (logging.WARNING, "unknown property num.partitons: ignored"),
        (logging.WARNING, "property listener.name.other.sasl.jaas.config names no listener of this broker "
                          "(SASL_SSL): ignored"),
        (logging.WARNING, "unknown property listener.name.sasl_ssl.gssapi.sasl.jaas.config: ignored"),
        (logging.INFO, "property process.roles has no meaning for a single ComLog broker: ignored"),
        (logging.INFO, "property zookeeper.connect has no meaning for a single ComLog broker: ignored"),
        (logging.WARNING, "property log.cleanup.policy is not taken from the configuration by this broker, which "
                          "uses Kafka's default: set it per topic, or as a dynamic broker config (AlterConfigs)"),
    ]
    assert "s3cret" not in caplog.text and "hunter2" not in caplog.text


def test_every_pass_through_property_is_kept_quietly(caplog):
    names = sorted(PASS_THROUGH_PROPERTIES)
    config = parse_config([f"--override={name}=none" for name in names] +
                          [f"--override=listener.name.plaintext.{name}=none" for name in names] +
                          [f"--override=listener.name.plaintext.{m}.sasl.jaas.config=x"
                           for m in ("plain", "scram-sha-256", "scram-sha-512", "oauthbearer")], {})
    with caplog.at_level(logging.DEBUG, logger="broker.config"):
        log_property_notes(config)
    assert caplog.records == []
    assert config.listener_property("PLAINTEXT", "comlog.sasl.users") == "none"


def test_listening_on_every_address_needs_an_advertised_host_with_the_flags(capsys):
    for host in ("0.0.0.0", "::"):
        assert f"nonroutable meta-address {host}" in _refused(["--host", host], capsys)
        assert parse_config(["--host", host, "--advertised-host", "kafka.local"], environ={}).host == host


def test_the_advertised_host_cannot_be_the_meta_address(capsys):
    assert "nonroutable meta-address 0.0.0.0" in _refused(["--advertised-host", "0.0.0.0"], capsys)


def test_the_readme_lists_every_setting_with_its_property():
    from broker.config import _SETTINGS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for setting in _SETTINGS:
        property_cell = f"`{setting.name}`" if setting.name else "none: flag and environment only"
        assert re.search(rf"^\| `{setting.flag}( [A-Z]+)?` \| {re.escape(property_cell)} \|", readme, re.M), setting.flag
