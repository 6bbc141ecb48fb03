"""Every topic config Kafka 3.9 has, over a real socket: created, described (type, default, source,
synonyms), altered and kept across a restart, with Kafka's values and Kafka's error messages."""

import pytest

from broker.config import BrokerConfig
from broker.server import Broker
from protocol.errors import ErrorCode
from protocol.messages import ApiKey
from wire_client import WireClient

from kafka_topic_configs import BOOLEAN, DOUBLE, INT, KAFKA_3_9, LIST, LONG, STRING
from test_admin import TOPIC_RESOURCE, create, describe_topic_configs

TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5

# (config, value given, value as Kafka prints it back)
ACCEPTED = [
    ("delete.retention.ms", "3600000", "3600000"),
    ("cleanup.policy", "compact", "compact"),
    ("cleanup.policy", "delete, compact", "delete,compact"),
    ("min.compaction.lag.ms", " 1000 ", "1000"),
    ("max.compaction.lag.ms", "+86400000", "86400000"),
    ("min.cleanable.dirty.ratio", "0.25", "0.25"),
    ("min.cleanable.dirty.ratio", "1", "1.0"),
    ("min.cleanable.dirty.ratio", "1e-4", "1.0E-4"),
    ("segment.index.bytes", "65536", "65536"),
    ("index.interval.bytes", "0", "0"),
    ("unclean.leader.election.enable", "TRUE", "true"),
    ("message.format.version", "2.8", "2.8"),
    ("message.format.version", "0.10.0.1", "0.10.0.1"),
    ("message.format.version", "3.9-IV0", "3.9-IV0"),
    ("message.timestamp.difference.max.ms", "60000", "60000"),
    ("message.downconversion.enable", "False", "false"),
    ("leader.replication.throttled.replicas", "0:1 , 1:1", "0:1,1:1"),
    ("follower.replication.throttled.replicas", "*", "*"),
    ("preallocate", "true", "true"),
    ("remote.storage.enable", "false", "false"),
    ("local.retention.ms", "-1", "-1"),
    ("local.retention.bytes", "1048576", "1048576"),
    ("remote.log.copy.disable", "true", "true"),
    ("remote.log.delete.on.disable", "true", "true"),
    ("cleanup.policy", " delete ", "delete"),
    ("cleanup.policy", "", ""),
    ("compression.gzip.level", "9", "9"),
    ("retention.bytes", "-5", "-5"),
    ("segment.index.bytes", "4", "4"),
]

# (configs, Kafka's message)
REFUSED = [
    ({"delete.retention.ms": "-1"}, "Invalid value -1 for configuration delete.retention.ms: Value must be at least 0"),
    ({"max.compaction.lag.ms": "0"}, "Invalid value 0 for configuration max.compaction.lag.ms: Value must be at least 1"),
    ({"min.cleanable.dirty.ratio": "1.5"},
     "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
    ({"min.cleanable.dirty.ratio": "-0.1"},
     "Invalid value -0.1 for configuration min.cleanable.dirty.ratio: Value must be at least 0"),
    ({"min.cleanable.dirty.ratio": "half"},
     "Invalid value half for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE"),
    ({"segment.index.bytes": "3"}, "Invalid value 3 for configuration segment.index.bytes: Value must be at least 4"),
    ({"index.interval.bytes": "4294967296"},
     "Invalid value 4294967296 for configuration index.interval.bytes: Not a number of type INT"),
    ({"unclean.leader.election.enable": "yes"},
     "Invalid value yes for configuration unclean.leader.election.enable: Expected value to be either true or false"),
    ({"message.format.version": "4.0"},
     "Invalid value 4.0 for configuration message.format.version: Version 4.0 is not a valid version"),
    ({"message.timestamp.difference.max.ms": "-1"},
     "Invalid value -1 for configuration message.timestamp.difference.max.ms: Value must be at least 0"),
    ({"leader.replication.throttled.replicas": "0:1,broker"},
     "Invalid value [0:1, broker] for configuration leader.replication.throttled.replicas: "
     "leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following "
     "format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
    ({"local.retention.ms": "-3"}, "Invalid value -3 for configuration local.retention.ms: Value must be at least -2"),
    ({"preallocate": "1"}, "Invalid value 1 for configuration preallocate: Expected value to be either true or false"),
    ({"cleanup.policy": "delete,Compact"},
     "Invalid value Compact for configuration cleanup.policy: String must be one of: compact, delete"),
    ({"compression.gzip.level": "0"},
     "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"),
    ({"compression.lz4.level": "18"},
     "Invalid value 18 for configuration compression.lz4.level: Value must be no more than 17"),
    ({"compression.type": "brotli"}, "Invalid value brotli for configuration compression.type: "
                                     "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
    ({"min.compaction.lag.ms": "20", "max.compaction.lag.ms": "10"},
     "conflict topic config setting min.compaction.lag.ms (20) > max.compaction.lag.ms (10)"),
    ({"remote.storage.enable": "true"},
     "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."),
]


async def described(client, topic, synonyms=False, version=4):
    result = await client.request(ApiKey.DESCRIBE_CONFIGS, version, {
        "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configuration_keys": None}],
        "include_synonyms": synonyms, "include_documentation": False})
    return {c.name: c for c in result.results[0].configs}


async def incremental(client, topic, *changes):
    response = await client.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {
        "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configs": [
            {"name": name, "config_operation": op, "value": value} for op, name, value in changes]}],
        "validate_only": False})
    return response.responses[0]


@pytest.mark.parametrize("name, given, printed", ACCEPTED)
async def test_a_created_override_is_described_as_kafka_prints_it(client, name, given, printed):
    created = await create(client, "tuned", 1, {name: given})
    assert created.error_code == ErrorCode.NONE, created.error_message
    returned = {c.name: (c.value, c.config_source) for c in created.configs}
    assert returned[name] == (printed, TOPIC_CONFIG)
    config = (await described(client, "tuned", synonyms=True))[name]
    assert (config.value, config.config_source, config.is_sensitive, config.read_only) == (
        printed, TOPIC_CONFIG, False, False)
    assert (config.synonyms[0].name, config.synonyms[0].value, config.synonyms[0].source) == (name, printed, TOPIC_CONFIG)


@pytest.mark.parametrize("configs, message", REFUSED)
async def test_a_value_kafka_refuses_is_invalid_config_with_its_message(client, configs, message):
    created = await create(client, "refused", 1, configs)
    assert (created.error_code, created.error_message) == (ErrorCode.INVALID_CONFIG, message)
    await create(client, "plain", 1)
    altered = await incremental(client, "plain", *[(0, name, value) for name, value in configs.items()])
    assert (altered.error_code, altered.error_message) == (ErrorCode.INVALID_CONFIG, message)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
async def test_every_kafka_topic_config_is_described_in_every_version(client, version):
    configs = await described(client, "comlog", version=version)
    assert set(configs) == set(KAFKA_3_9)
    assert {name: c.value for name, c in configs.items()} == {name: d[1] for name, d in KAFKA_3_9.items()}
    assert not any(c.is_sensitive or c.read_only for c in configs.values())
    if version >= 1:
        assert {c.config_source for c in configs.values()} == {DEFAULT_CONFIG}
    if version >= 3:
        assert {name: c.config_type for name, c in configs.items()} == {name: d[0] for name, d in KAFKA_3_9.items()}


async def test_defaults_name_their_broker_synonym(client):
    configs = await described(client, "comlog", synonyms=True)
    for name, (_, default, broker_name) in KAFKA_3_9.items():
        synonyms = [(s.name, s.value, s.source) for s in configs[name].synonyms]
        assert synonyms == ([] if broker_name is None else [(broker_name, default, DEFAULT_CONFIG)]), name


async def test_a_flag_is_the_static_broker_synonym(tmp_path, nursery):
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "data", segment_bytes=1 << 20)) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        segment = (await described(client, "comlog", synonyms=True))["segment.bytes"]
        assert (segment.value, segment.config_source) == (str(1 << 20), STATIC_BROKER_CONFIG)
        assert [(s.name, s.value, s.source) for s in segment.synonyms] == [
            ("log.segment.bytes", str(1 << 20), STATIC_BROKER_CONFIG), ("log.segment.bytes", str(1 << 30), DEFAULT_CONFIG)]
        await client.aclose()


async def test_alter_then_describe(broker, client):
    await create(client, "altered", 1)
    result = await incremental(client, "altered", (0, "min.cleanable.dirty.ratio", "0.75"),
                               (0, "segment.index.bytes", "1024"), (0, "index.interval.bytes", "100"),
                               (2, "leader.replication.throttled.replicas", "0:1,1:1"),
                               (0, "preallocate", "true"))
    assert result.error_code == ErrorCode.NONE, result.error_message
    assert (await incremental(client, "altered", (3, "leader.replication.throttled.replicas", "0:1"),
                              (1, "preallocate", None))).error_code == ErrorCode.NONE
    configs = await described(client, "altered")
    assert {name: (configs[name].value, configs[name].config_source) for name in (
        "min.cleanable.dirty.ratio", "segment.index.bytes", "leader.replication.throttled.replicas", "preallocate")} == {
        "min.cleanable.dirty.ratio": ("0.75", TOPIC_CONFIG), "segment.index.bytes": ("1024", TOPIC_CONFIG),
        "leader.replication.throttled.replicas": ("1:1", TOPIC_CONFIG), "preallocate": ("false", DEFAULT_CONFIG)}
    # The index settings reach the open log.
    log_config = broker.registry.topics["altered"].partitions[0].log.config
    assert (log_config.segment_index_bytes, log_config.index_interval_bytes) == (1024, 100)

    response = await client.request(ApiKey.ALTER_CONFIGS, 2, {"validate_only": False, "resources": [
        {"resource_type": TOPIC_RESOURCE, "resource_name": "altered",
         "configs": [{"name": "unclean.leader.election.enable", "value": "true"}]}]})
    assert response.responses[0].error_code == ErrorCode.NONE
    configs = await described(client, "altered")
    assert (configs["unclean.leader.election.enable"].value, configs["min.cleanable.dirty.ratio"].config_source) == (
        "true", DEFAULT_CONFIG)


async def test_turning_remote_storage_on_is_refused_and_changes_nothing(client):
    await create(client, "local", 1, {"remote.log.copy.disable": "true"})
    result = await incremental(client, "local", (0, "remote.storage.enable", "true"))
    assert result.error_code == ErrorCode.INVALID_CONFIG and result.error_message.startswith("Tiered Storage")
    configs = await described(client, "local")
    assert configs["remote.storage.enable"].value == "false"
    assert (configs["remote.log.copy.disable"].value, configs["remote.log.copy.disable"].config_source) == (
        "true", TOPIC_CONFIG)


async def test_values_under_the_logs_minimum_mean_what_kafka_means(broker, client):
    await create(client, "lenient", 1, {"retention.bytes": "-5", "segment.index.bytes": "4"})
    await create(client, "kept-forever", 1, {"cleanup.policy": "", "retention.ms": "1000"})
    lenient = broker.registry.topics["lenient"].partitions[0].log.config
    assert (lenient.retention_bytes, lenient.segment_index_bytes) == (-1, 12)
    kept = broker.registry.topics["kept-forever"].partitions[0].log.config
    assert (kept.retention_ms, kept.retention_bytes) == (-1, -1)
    assert (await described(client, "kept-forever"))["retention.ms"].value == "1000"


async def test_overrides_survive_a_restart(broker_config, nursery):
    overrides = {name: given for name, given, _ in ACCEPTED}
    printed = {name: shown for name, _, shown in ACCEPTED}
    async with Broker(broker_config) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        assert (await create(client, "kept", 1, overrides)).error_code == ErrorCode.NONE
        await client.aclose()

    async with Broker(broker_config) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        configs = await described(client, "kept")
        assert {name: (configs[name].value, configs[name].config_source) for name in overrides} == {
            name: (value, TOPIC_CONFIG) for name, value in printed.items()}
        assert broker.registry.topics["kept"].partitions[0].log.config.segment_index_bytes == 12
        await client.aclose()
