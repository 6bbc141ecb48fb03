"""Topic administration through confluent-kafka's AdminClient (librdkafka) against the real broker
process: twenty topics created, listed, described and deleted, configs altered both ways and read
back, partitions added, records deleted, the cluster described, and every refusal answered with
its code and message."""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicCollection, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic, OffsetSpec, ResourceType)
from kafka import TopicPartition as KafkaPythonTopicPartition

from interop.admin_clients import (BAD_POLICY, BAD_POLICY_REFUSED, BAD_TOPIC_NAMES, KAFKA_TOPIC_DEFAULTS,
                                   confluent_admin, confluent_topic_configs, eventually, kafka_error, kafka_error_message,
                                   partition_directories, read_partitions)
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy, kafka_python_producer

DEFAULTS = {name: (value, "DEFAULT_CONFIG") for name, value in KAFKA_TOPIC_DEFAULTS.items()}


@pytest.fixture(scope="module")
def admin(shared_broker):
    yield confluent_admin(shared_broker)
    assert_broker_healthy(shared_broker)


def results(futures: dict) -> dict:
    """Each future's result, or the name of the Kafka error it failed with."""
    return {key: (future.result(TIMEOUT_SECONDS) if future.exception(TIMEOUT_SECONDS) is None else kafka_error(future))
            for key, future in futures.items()}


def create(admin, *topics: NewTopic, validate_only: bool = False) -> dict:
    return results(admin.create_topics(list(topics), validate_only=validate_only, request_timeout=TIMEOUT_SECONDS))


def describe(admin, names: list[str]) -> dict:
    return results(admin.describe_topics(TopicCollection(names), request_timeout=TIMEOUT_SECONDS))


def topic_names(admin) -> set[str]:
    return set(admin.list_topics(timeout=TIMEOUT_SECONDS).topics)


def alter(admin, method, resource: ConfigResource, **options) -> object:
    (outcome,) = results(method([resource], request_timeout=TIMEOUT_SECONDS, **options)).values()
    return outcome


def incremental(topic: str, *entries: tuple[str, str | None, AlterConfigOpType]) -> ConfigResource:
    return ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=op) for name, value, op in entries])


def produce(broker, topic: str, partition: int, count: int) -> list[bytes]:
    values = [f"{topic}-{partition}-{i}".encode() for i in range(count)]
    with kafka_python_producer(broker) as producer:
        for value in values:
            producer.send(topic, value=value, partition=partition)
        producer.flush(timeout=TIMEOUT_SECONDS)
    return values


def test_twenty_topics_created_listed_described_and_deleted(admin, shared_broker):
    names = [f"ck-many-{i:02}" for i in range(20)]
    assert create(admin, *(NewTopic(name, 4, 1) for name in names)) == dict.fromkeys(names)
    listed = admin.list_topics(timeout=TIMEOUT_SECONDS).topics
    assert {name: sorted(listed[name].partitions) for name in names} == {name: [0, 1, 2, 3] for name in names}

    described = describe(admin, names)
    for name in names:
        assert described[name].name == name
        assert [(p.id, p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr])
                for p in described[name].partitions] == [(i, 1, [1], [1]) for i in range(4)]
    assert len({str(topic.topic_id) for topic in described.values()}) == 20
    assert confluent_topic_configs(admin, names[3]) == DEFAULTS

    assert results(admin.delete_topics(names, request_timeout=TIMEOUT_SECONDS)) == dict.fromkeys(names)
    assert not set(names) & topic_names(admin)
    assert describe(admin, names[:2]) == dict.fromkeys(names[:2], "UNKNOWN_TOPIC_OR_PART")
    eventually(lambda: all(not partition_directories(shared_broker, name) for name in names),
               "the deleted topics' data to leave the disk")


def test_configs_altered_incrementally_and_wholesale_are_read_back_and_applied(admin, shared_broker):
    assert create(admin, NewTopic("ck-configs", 1, 1, config={"retention.ms": "3600000"})) == {"ck-configs": None}
    assert confluent_topic_configs(admin, "ck-configs") == {
        **DEFAULTS, "retention.ms": ("3600000", "DYNAMIC_TOPIC_CONFIG")}

    changes = incremental("ck-configs", ("segment.bytes", "1024", AlterConfigOpType.SET),
                          ("retention.ms", None, AlterConfigOpType.DELETE),
                          ("message.timestamp.type", "LogAppendTime", AlterConfigOpType.SET))
    assert alter(admin, admin.incremental_alter_configs, changes) is None
    assert confluent_topic_configs(admin, "ck-configs") == {
        **DEFAULTS, "segment.bytes": ("1024", "DYNAMIC_TOPIC_CONFIG"),
        "message.timestamp.type": ("LogAppendTime", "DYNAMIC_TOPIC_CONFIG")}

    # The open log takes both at once: it stamps the broker's time on what is appended, and rolls
    # a new segment whenever the next batch would take one over 1 KiB.
    with kafka_python_producer(shared_broker) as producer:
        stamped = [producer.send("ck-configs", value=b"%d" % i + b"." * 400, timestamp_ms=1_000).get(
            timeout=TIMEOUT_SECONDS) for i in range(6)]
    assert all(metadata.timestamp > 1_000 for metadata in stamped)
    partition = KafkaPythonTopicPartition("ck-configs", 0)
    read = read_partitions(shared_broker, {partition: 6})[partition]
    assert [(r.offset, r.timestamp, r.timestamp_type) for r in read] == \
        [(i, metadata.timestamp, 1) for i, metadata in enumerate(stamped)]
    assert len(list((shared_broker.data_dir / "ck-configs-0").glob("*.log"))) >= 3

    # AlterConfigs replaces the whole set of overrides with the one given.
    with pytest.warns(DeprecationWarning):
        wholesale = ConfigResource(ResourceType.TOPIC, "ck-configs", set_config={"retention.bytes": "5000000"})
        assert alter(admin, admin.alter_configs, wholesale) is None
    assert confluent_topic_configs(admin, "ck-configs") == {
        **DEFAULTS, "retention.bytes": ("5000000", "DYNAMIC_TOPIC_CONFIG")}

    # APPEND is for LIST configs only; an unknown key or a bad value is INVALID_CONFIG with its reason.
    refused = {
        "append": incremental("ck-configs", ("retention.ms", "5", AlterConfigOpType.APPEND)),
        "unknown": incremental("ck-configs", ("no.such.config", "1", AlterConfigOpType.SET)),
        "bad value": incremental("ck-configs", ("segment.bytes", "huge", AlterConfigOpType.SET)),
        "policy": incremental("ck-configs", ("cleanup.policy", BAD_POLICY, AlterConfigOpType.SET)),
    }
    for change in refused.values():
        assert alter(admin, admin.incremental_alter_configs, change) == "INVALID_CONFIG"
    futures = admin.incremental_alter_configs([refused["policy"]], request_timeout=TIMEOUT_SECONDS)
    assert BAD_POLICY_REFUSED in kafka_error_message(*futures.values())
    futures = admin.incremental_alter_configs([refused["unknown"]], request_timeout=TIMEOUT_SECONDS)
    assert "no.such.config" in kafka_error_message(*futures.values())
    assert alter(admin, admin.incremental_alter_configs,
                 incremental("ck-no-such-topic", ("retention.ms", "5", AlterConfigOpType.SET))) \
        == "UNKNOWN_TOPIC_OR_PART"
    assert confluent_topic_configs(admin, "ck-configs")["segment.bytes"] == DEFAULTS["segment.bytes"]


def test_retention_altered_live_trims_the_log(tmp_path):
    """The broker applies retention every 100 ms here, so an altered retention.bytes shows at once."""
    with BrokerProcess(tmp_path / "data", "--retention-check-interval-ms", "100") as broker:
        admin = confluent_admin(broker)
        # Deleted segments' files removed at the next retention check, not a minute later.
        configs = {"segment.bytes": "1024", "file.delete.delay.ms": "0"}
        assert create(admin, NewTopic("ck-retained", 2, 1, config=configs)) == {"ck-retained": None}
        with kafka_python_producer(broker) as producer:
            for i in range(12):
                producer.send("ck-retained", value=b"%d" % i + b"." * 400, partition=1).get(timeout=TIMEOUT_SECONDS)
        partition = TopicPartition("ck-retained", 1)

        def log_start() -> int:
            (future,) = admin.list_offsets({partition: OffsetSpec.earliest()}, request_timeout=TIMEOUT_SECONDS).values()
            return future.result(TIMEOUT_SECONDS).offset

        assert log_start() == 0
        change = incremental("ck-retained", ("retention.bytes", "1500", AlterConfigOpType.SET))
        assert alter(admin, admin.incremental_alter_configs, change) is None
        start = eventually(log_start, "retention to delete the oldest segments")
        # Only whole segments go, and the active one stays.
        assert 0 < start < 12
        kept = read_partitions(broker, {KafkaPythonTopicPartition("ck-retained", 1): 12 - start})
        assert [r.offset for r in kept[KafkaPythonTopicPartition("ck-retained", 1)]] == list(range(start, 12))
        # The deleted segments' files leave the disk too (renamed first, removed in a worker thread).
        directory = broker.data_dir / "ck-retained-1"
        eventually(lambda: not list(directory.glob("*.deleted")), "the deleted segments' files to be removed")
        assert min(int(path.stem) for path in directory.glob("*.log")) <= start


def test_describe_configs_of_the_broker_and_of_unknown_topics(admin):
    (future,) = admin.describe_configs([ConfigResource(ResourceType.BROKER, "1")],
                                       request_timeout=TIMEOUT_SECONDS).values()
    broker_configs = future.result(TIMEOUT_SECONDS)
    assert {name: broker_configs[name].value for name in ("broker.id", "num.partitions", "log.segment.bytes")} == \
        {"broker.id": "1", "num.partitions": "1", "log.segment.bytes": "1073741824"}
    # Kafka's static broker configs are read-only; its dynamic ones, the topics' defaults among them, are not.
    assert broker_configs["num.partitions"].is_read_only and not broker_configs["log.segment.bytes"].is_read_only

    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "ck-no-such-topic")],
                                       request_timeout=TIMEOUT_SECONDS).values()
    assert kafka_error(future) == "UNKNOWN_TOPIC_OR_PART"
    assert kafka_error_message(future) == "Topic ck-no-such-topic does not exist"


def test_describe_cluster(admin, shared_broker):
    cluster = admin.describe_cluster(request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS)
    assert (cluster.controller.id, [(n.id, n.host, n.port) for n in cluster.nodes]) == \
        (1, [(1, "127.0.0.1", shared_broker.port)])
    assert f"cluster.id={cluster.cluster_id}" in (shared_broker.data_dir / "meta.properties").read_text()


def test_a_dynamic_broker_config_defaults_every_topic_until_deleted(admin):
    # As kafka-configs.sh --entity-type brokers --entity-name 1 --alter --add-config does.
    broker = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    topic = ConfigResource(ResourceType.TOPIC, "ck-dynamic-default")
    admin.create_topics([NewTopic(topic.name, 1)])[topic.name].result(TIMEOUT_SECONDS)
    try:
        admin.incremental_alter_configs([broker])[broker].result(TIMEOUT_SECONDS)
        retention = admin.describe_configs([topic])[topic].result(TIMEOUT_SECONDS)["retention.ms"]
        assert (retention.value, retention.source) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        refused = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
            ConfigEntry("broker.id", "7", incremental_operation=AlterConfigOpType.SET)])
        future = admin.incremental_alter_configs([refused])[refused]
        assert kafka_error(future) == "INVALID_REQUEST"
        assert kafka_error_message(future) == "Cannot update these configs dynamically: Set(broker.id)"
    finally:
        broker = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
            ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
        admin.incremental_alter_configs([broker])[broker].result(TIMEOUT_SECONDS)
        admin.delete_topics([topic.name])[topic.name].result(TIMEOUT_SECONDS)
    retention = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "comlog")])[
        ConfigResource(ResourceType.TOPIC, "comlog")].result(TIMEOUT_SECONDS)["retention.ms"]
    assert (retention.value, retention.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)


def test_create_partitions_grows_a_topic_and_refuses_to_shrink_it(admin, shared_broker):
    assert create(admin, NewTopic("ck-grow", 3, 1)) == {"ck-grow": None}
    assert results(admin.create_partitions([NewPartitions("ck-grow", 6)], request_timeout=TIMEOUT_SECONDS)) == \
        {"ck-grow": None}
    assert [p.id for p in describe(admin, ["ck-grow"])["ck-grow"].partitions] == list(range(6))
    assert sorted(admin.list_topics("ck-grow", timeout=TIMEOUT_SECONDS).topics["ck-grow"].partitions) == \
        list(range(6))
    values = produce(shared_broker, "ck-grow", 5, 2)
    new_partition = KafkaPythonTopicPartition("ck-grow", 5)
    assert [r.value for r in read_partitions(shared_broker, {new_partition: 2})[new_partition]] == values

    for count in (2, 6):
        futures = admin.create_partitions([NewPartitions("ck-grow", count)], request_timeout=TIMEOUT_SECONDS)
        assert results(futures) == {"ck-grow": "INVALID_PARTITIONS"}
    futures = admin.create_partitions([NewPartitions("ck-grow", 2)], request_timeout=TIMEOUT_SECONDS)
    assert kafka_error_message(futures["ck-grow"]) == \
        "Topic currently has 6 partitions, which is higher than or equal to the requested 2."
    assert len(describe(admin, ["ck-grow"])["ck-grow"].partitions) == 6


def test_delete_records_moves_the_log_start_of_each_partition(admin, shared_broker):
    assert create(admin, NewTopic("ck-trim", 2, 1)) == {"ck-trim": None}
    first_values = produce(shared_broker, "ck-trim", 0, 8)
    produce(shared_broker, "ck-trim", 1, 3)
    deleted = results(admin.delete_records([TopicPartition("ck-trim", 0, 5), TopicPartition("ck-trim", 1, 3)],
                                           request_timeout=TIMEOUT_SECONDS))
    assert {(tp.topic, tp.partition): result.low_watermark for tp, result in deleted.items()} == \
        {("ck-trim", 0): 5, ("ck-trim", 1): 3}
    earliest = results(admin.list_offsets({TopicPartition("ck-trim", p): OffsetSpec.earliest() for p in (0, 1)},
                                          request_timeout=TIMEOUT_SECONDS))
    assert {tp.partition: info.offset for tp, info in earliest.items()} == {0: 5, 1: 3}
    first = KafkaPythonTopicPartition("ck-trim", 0)
    assert [(r.offset, r.value) for r in read_partitions(shared_broker, {first: 3})[first]] == \
        list(enumerate(first_values))[5:]
    beyond = admin.delete_records([TopicPartition("ck-trim", 1, 99)], request_timeout=TIMEOUT_SECONDS)
    assert results(beyond) == {TopicPartition("ck-trim", 1, 99): "OFFSET_OUT_OF_RANGE"}


def test_create_topics_refusals_each_with_their_code_and_message(admin):
    assert create(admin, NewTopic("ck-exists", 1, 1)) == {"ck-exists": None}
    outcome = create(
        admin, NewTopic("ck-exists", 2, 1), *(NewTopic(name, 1, 1) for name in BAD_TOPIC_NAMES.values()),
        NewTopic("ck-rf3", 1, 3), NewTopic("ck-unknown-config", 1, 1, config={"no.such.config": "1"}),
        NewTopic("ck-bad-value", 1, 1, config={"max.message.bytes": "-5"}),
        NewTopic("ck-policy", 1, 1, config={"cleanup.policy": BAD_POLICY}))
    assert outcome == {
        "ck-exists": "TOPIC_ALREADY_EXISTS",
        **dict.fromkeys(BAD_TOPIC_NAMES.values(), "TOPIC_EXCEPTION"),
        "ck-rf3": "INVALID_REPLICATION_FACTOR",
        "ck-unknown-config": "INVALID_CONFIG", "ck-bad-value": "INVALID_CONFIG", "ck-policy": "INVALID_CONFIG",
    }
    futures = admin.create_topics([NewTopic("ck-policy", 1, 1, config={"cleanup.policy": BAD_POLICY}),
                                   NewTopic("ck-exists", 1, 1)], request_timeout=TIMEOUT_SECONDS)
    assert BAD_POLICY_REFUSED in kafka_error_message(futures["ck-policy"])
    assert kafka_error_message(futures["ck-exists"]) == "Topic 'ck-exists' already exists."
    assert not (set(outcome) - {"ck-exists"}) & topic_names(admin)


def test_unknown_topics_are_unknown_topic_or_partition(admin):
    futures = admin.delete_topics(["ck-never-created"], request_timeout=TIMEOUT_SECONDS)
    assert results(futures) == {"ck-never-created": "UNKNOWN_TOPIC_OR_PART"}
    assert describe(admin, ["ck-never-created"]) == {"ck-never-created": "UNKNOWN_TOPIC_OR_PART"}
    futures = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("ck-no-group", [TopicPartition("ck-never-created", 0)])],
        request_timeout=TIMEOUT_SECONDS)
    (offsets,) = results(futures).values()
    assert [(tp.topic, tp.offset) for tp in offsets.topic_partitions] == [("ck-never-created", -1001)]
    assert "ck-never-created" not in topic_names(admin)


def test_validate_only_leaves_nothing_behind(admin, shared_broker):
    assert create(admin, NewTopic("ck-dry-run", 3, 1, config={"retention.ms": "1000"}), validate_only=True) == \
        {"ck-dry-run": None}
    assert "ck-dry-run" not in topic_names(admin)
    assert partition_directories(shared_broker, "ck-dry-run") == []

    assert create(admin, NewTopic("ck-dry-run", 1, 1)) == {"ck-dry-run": None}
    futures = admin.create_partitions([NewPartitions("ck-dry-run", 4)], validate_only=True,
                                      request_timeout=TIMEOUT_SECONDS)
    assert results(futures) == {"ck-dry-run": None}
    change = incremental("ck-dry-run", ("retention.ms", "1000", AlterConfigOpType.SET))
    assert alter(admin, admin.incremental_alter_configs, change, validate_only=True) is None
    assert len(describe(admin, ["ck-dry-run"])["ck-dry-run"].partitions) == 1
    assert partition_directories(shared_broker, "ck-dry-run") == ["ck-dry-run-0"]
    assert confluent_topic_configs(admin, "ck-dry-run") == DEFAULTS
