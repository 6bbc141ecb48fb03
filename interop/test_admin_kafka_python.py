"""Topic administration through kafka-python's KafkaAdminClient against the real broker process:
twenty topics created, listed, described and deleted (by name and by id), configs altered both
ways and read back, partitions added, records deleted, and every refusal answered with its code."""

from __future__ import annotations

import uuid

import kafka.errors as Errors
import pytest
from kafka import OffsetAndMetadata, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource
from kafka.protocol.consumer import OffsetSpec

from interop.admin_clients import (BAD_POLICY, BAD_POLICY_REFUSED, BAD_TOPIC_NAMES, KAFKA_TOPIC_DEFAULTS,
                                   eventually, kafka_python_admin, kafka_python_topic_configs, partition_directories,
                                   read_partitions)
from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy, kafka_python_producer
from interop.group_clients import assigned, group_consumer

DEFAULTS = {name: (value, "DEFAULT_CONFIG") for name, value in KAFKA_TOPIC_DEFAULTS.items()}


@pytest.fixture(scope="module")
def admin(shared_broker):
    with kafka_python_admin(shared_broker) as client:
        yield client
    assert_broker_healthy(shared_broker)


def create(admin, topics: dict[str, dict]) -> dict[str, tuple[int, str | None]]:
    """Create in one request; (error code, error message) per topic name."""
    result = admin.create_topics(topics, raise_errors=False)
    return {t["name"]: (t["error_code"], t["error_message"]) for t in result["topics"]}


def produce(broker, topic: str, partition: int, count: int) -> list[bytes]:
    values = [f"{topic}-{partition}-{i}".encode() for i in range(count)]
    with kafka_python_producer(broker) as producer:
        futures = [producer.send(topic, value=value, partition=partition) for value in values]
        producer.flush(timeout=TIMEOUT_SECONDS)
        assert [f.get(timeout=TIMEOUT_SECONDS).partition for f in futures] == [partition] * count
    return values


def test_twenty_topics_created_listed_described_and_deleted(admin, shared_broker):
    names = [f"kp-many-{i:02}" for i in range(20)]
    result = admin.create_topics({name: {"num_partitions": 4, "replication_factor": 1} for name in names})
    assert [(t["name"], t["error_code"], t["num_partitions"], t["replication_factor"]) for t in result["topics"]] \
        == [(name, 0, 4, 1) for name in names]
    # CreateTopics v5+ answers with the configs the topic got.
    assert {name: (c["value"], c["config_source"]) for name, c in result["topics"][0]["configs"].items()} == DEFAULTS
    assert set(names) <= set(admin.list_topics())

    described = admin.describe_topics(names)
    assert [(t["name"], t["error_code"]) for t in described] == [(name, 0) for name in names]
    for topic in described:
        assert [(p["partition_index"], p["leader_id"], p["replica_nodes"], p["isr_nodes"], p["error_code"])
                for p in topic["partitions"]] == [(i, 1, [1], [1], 0) for i in range(4)]
    topic_ids = {t["name"]: uuid.UUID(t["topic_id"]) for t in described}
    assert len(set(topic_ids.values())) == 20
    for name in names:
        assert partition_directories(shared_broker, name) == [f"{name}-{i}" for i in range(4)]
    assert kafka_python_topic_configs(admin, names[7]) == DEFAULTS

    # Half by name, half by topic id (DeleteTopics v6).
    by_name, by_id = names[:10], names[10:]
    deleted = admin.delete_topics(by_name + [topic_ids[name] for name in by_id])
    assert [(t["name"], t["error_code"]) for t in deleted["topics"]] == [(name, 0) for name in names]
    assert not set(names) & set(admin.list_topics())
    assert [t["error_code"] for t in admin.describe_topics(names)] == \
        [Errors.UnknownTopicOrPartitionError.errno] * 20
    eventually(lambda: all(not partition_directories(shared_broker, name) for name in names),
               "the deleted topics' data to leave the disk")


def test_configs_altered_incrementally_and_wholesale_are_read_back_and_applied(admin, shared_broker):
    assert create(admin, {"kp-configs": {"num_partitions": 1, "configs": {"retention.ms": "3600000"}}}) == \
        {"kp-configs": (0, None)}
    assert kafka_python_topic_configs(admin, "kp-configs") == {
        **DEFAULTS, "retention.ms": ("3600000", "DYNAMIC_TOPIC_CONFIG")}

    # kafka-python uses IncrementalAlterConfigs when the broker offers it.
    resource = ConfigResource("TOPIC", "kp-configs", {"segment.bytes": "1048576",
                                                      "retention.ms": (AlterConfigOp.DELETE, None)})
    assert admin.alter_configs([resource]) == {"topic": {"kp-configs": "OK"}}
    assert kafka_python_topic_configs(admin, "kp-configs") == {
        **DEFAULTS, "segment.bytes": ("1048576", "DYNAMIC_TOPIC_CONFIG")}

    # AlterConfigs replaces the topic's whole set of overrides (kafka-python re-sends the ones it has).
    resource = ConfigResource("TOPIC", "kp-configs", {"max.message.bytes": "2000"})
    assert admin.alter_configs([resource], incremental=False) == {"topic": {"kp-configs": "OK"}}
    assert kafka_python_topic_configs(admin, "kp-configs") == {
        **DEFAULTS, "segment.bytes": ("1048576", "DYNAMIC_TOPIC_CONFIG"),
        "max.message.bytes": ("2000", "DYNAMIC_TOPIC_CONFIG")}

    # The new limit holds for the next produce at once.
    with kafka_python_producer(shared_broker, retries=0) as producer:
        with pytest.raises(Errors.MessageSizeTooLargeError):
            producer.send("kp-configs", value=b"x" * 3000).get(timeout=TIMEOUT_SECONDS)
        assert producer.send("kp-configs", value=b"small").get(timeout=TIMEOUT_SECONDS).offset == 0

    # With one replica, min.insync.replicas=2 fails acks=all produces, and only those.
    resource = ConfigResource("TOPIC", "kp-configs", {"min.insync.replicas": "2"})
    assert admin.alter_configs([resource]) == {"topic": {"kp-configs": "OK"}}
    with kafka_python_producer(shared_broker, retries=0, acks="all") as producer:
        with pytest.raises(Errors.NotEnoughReplicasError):
            producer.send("kp-configs", value=b"needs two").get(timeout=TIMEOUT_SECONDS)
    with kafka_python_producer(shared_broker, acks=1, enable_idempotence=False) as producer:
        assert producer.send("kp-configs", value=b"needs one").get(timeout=TIMEOUT_SECONDS).offset == 1
    admin.alter_configs([ConfigResource("TOPIC", "kp-configs", {"min.insync.replicas": (AlterConfigOp.DELETE, None)})])

    bad = ConfigResource("TOPIC", "kp-configs", {"retention.ms": "soon"})
    (refusal,) = admin.alter_configs([bad])["topic"].values()
    assert refusal.startswith("[Error 40] InvalidConfigurationError") and "retention.ms" in refusal
    policy = ConfigResource("TOPIC", "kp-configs", {"cleanup.policy": BAD_POLICY})
    (refusal,) = admin.alter_configs([policy])["topic"].values()
    assert refusal.startswith("[Error 40] InvalidConfigurationError") and BAD_POLICY_REFUSED in refusal
    unknown = ConfigResource("TOPIC", "kp-no-such-topic", {"retention.ms": "1000"})
    (refusal,) = admin.alter_configs([unknown], raise_on_unknown=False)["topic"].values()
    assert refusal.startswith("[Error 3] UnknownTopicOrPartitionError")
    # Nothing refused was applied.
    assert kafka_python_topic_configs(admin, "kp-configs")["retention.ms"] == DEFAULTS["retention.ms"]


def test_describe_cluster(admin, shared_broker):
    cluster = admin.describe_cluster()
    assert (cluster["controller_id"], cluster["brokers"]) == \
        (1, [{"broker_id": 1, "host": "127.0.0.1", "port": shared_broker.port, "rack": None}])
    assert f"cluster.id={cluster['cluster_id']}" in (shared_broker.data_dir / "meta.properties").read_text()


def test_describe_configs_with_synonyms_for_a_topic_and_the_broker(admin):
    assert create(admin, {"kp-synonyms": {"num_partitions": 1, "configs": {"retention.ms": "5000"}}}) == \
        {"kp-synonyms": (0, None)}
    described = admin.describe_configs([ConfigResource("TOPIC", "kp-synonyms")], include_synonyms=True,
                                       config_filter="all")["topic"]["kp-synonyms"]
    assert described["retention.ms"]["synonyms"] == [
        {"name": "retention.ms", "value": "5000", "source": "DYNAMIC_TOPIC_CONFIG"},
        {"name": "log.retention.ms", "value": "604800000", "source": "DEFAULT_CONFIG"}]
    assert described["segment.bytes"]["synonyms"] == [
        {"name": "log.segment.bytes", "value": "1073741824", "source": "DEFAULT_CONFIG"}]
    assert (described["retention.ms"]["config_type"], described["cleanup.policy"]["config_type"]) == ("LONG", "LIST")

    broker_configs = admin.describe_configs([ConfigResource("BROKER", "1")], config_filter="all")["broker"]["1"]
    assert {name: broker_configs[name]["value"] for name in ("broker.id", "num.partitions",
                                                             "auto.create.topics.enable", "log.retention.ms")} \
        == {"broker.id": "1", "num.partitions": "1", "auto.create.topics.enable": "true",
            "log.retention.ms": "604800000"}
    # Kafka's static broker configs are read-only; its dynamic ones, the topics' defaults among them, are not.
    assert broker_configs["broker.id"]["read_only"] and not broker_configs["log.retention.ms"]["read_only"]


def test_create_partitions_grows_a_topic_and_refuses_to_shrink_it(admin, shared_broker):
    assert create(admin, {"kp-grow": {"num_partitions": 2}}) == {"kp-grow": (0, None)}
    response = admin.create_partitions({"kp-grow": 5})
    assert [(r.name, r.error_code) for r in response.results] == [("kp-grow", 0)]
    (described,) = admin.describe_topics(["kp-grow"])
    assert [p["partition_index"] for p in described["partitions"]] == [0, 1, 2, 3, 4]
    assert partition_directories(shared_broker, "kp-grow") == [f"kp-grow-{i}" for i in range(5)]
    values = produce(shared_broker, "kp-grow", 4, 3)
    assert [r.value for r in read_partitions(shared_broker, {TopicPartition("kp-grow", 4): 3})[
        TopicPartition("kp-grow", 4)]] == values

    for count in (3, 5):
        response = admin.create_partitions({"kp-grow": count}, raise_errors=False)
        assert [r.error_code for r in response.results] == [Errors.InvalidPartitionsError.errno]
    response = admin.create_partitions({"kp-no-such-topic": 3}, raise_errors=False)
    assert [r.error_code for r in response.results] == [Errors.UnknownTopicOrPartitionError.errno]
    # Explicit assignments: one replica list per new partition, each naming this broker only.
    for assignments in ([[2], [1]], [[1]], [[1], [1], [1]]):
        response = admin.create_partitions({"kp-grow": {"count": 7, "assignments": assignments}}, raise_errors=False)
        assert [r.error_code for r in response.results] == [Errors.InvalidReplicationAssignmentError.errno], assignments
    (described,) = admin.describe_topics(["kp-grow"])
    assert len(described["partitions"]) == 5
    admin.create_partitions({"kp-grow": {"count": 7, "assignments": [[1], [1]]}})
    (described,) = admin.describe_topics(["kp-grow"])
    assert len(described["partitions"]) == 7


def test_delete_records_moves_the_log_start_of_each_partition(admin, shared_broker):
    assert create(admin, {"kp-trim": {"num_partitions": 2}}) == {"kp-trim": (0, None)}
    first, second = TopicPartition("kp-trim", 0), TopicPartition("kp-trim", 1)
    values = {first: produce(shared_broker, "kp-trim", 0, 10), second: produce(shared_broker, "kp-trim", 1, 6)}
    # -1 deletes up to the high watermark.
    result = admin.delete_records({first: 4, second: -1})
    assert {tp: (r["low_watermark"], r["error_code"]) for tp, r in result.items()} == {first: (4, 0), second: (6, 0)}
    earliest = admin.list_partition_offsets({first: OffsetSpec.EARLIEST, second: OffsetSpec.EARLIEST})
    assert {tp: found.offset for tp, found in earliest.items()} == {first: 4, second: 6}
    read = read_partitions(shared_broker, {first: 6})[first]
    assert [(r.offset, r.value) for r in read] == list(enumerate(values[first]))[4:]
    with pytest.raises(Errors.OffsetOutOfRangeError):
        admin.delete_records({first: 11})


def test_create_topics_refusals_each_with_their_code_in_one_request(admin):
    assert create(admin, {"kp-exists": {"num_partitions": 1}}) == {"kp-exists": (0, None)}
    refused = {
        "kp-exists": {"num_partitions": 2},
        **{name: {"num_partitions": 1} for name in BAD_TOPIC_NAMES.values()},
        "kp-rf3": {"num_partitions": 1, "replication_factor": 3},
        "kp-unknown-config": {"configs": {"no.such.config": "1"}},
        "kp-bad-value": {"configs": {"retention.ms": "forever"}},
        "kp-policy": {"configs": {"cleanup.policy": BAD_POLICY}},
        "kp-zero-partitions": {"num_partitions": 0},
    }
    result = create(admin, refused)
    assert {name: code for name, (code, _) in result.items()} == {
        "kp-exists": Errors.TopicAlreadyExistsError.errno,
        **{name: Errors.InvalidTopicError.errno for name in BAD_TOPIC_NAMES.values()},
        "kp-rf3": Errors.InvalidReplicationFactorError.errno,
        "kp-unknown-config": Errors.InvalidConfigurationError.errno,
        "kp-bad-value": Errors.InvalidConfigurationError.errno,
        "kp-policy": Errors.InvalidConfigurationError.errno,
        "kp-zero-partitions": Errors.InvalidPartitionsError.errno,
    }
    assert "no.such.config" in result["kp-unknown-config"][1]
    assert "forever" in result["kp-bad-value"][1] and "retention.ms" in result["kp-bad-value"][1]
    assert BAD_POLICY_REFUSED in result["kp-policy"][1]
    assert not set(refused) - {"kp-exists"} & set(admin.list_topics())
    with pytest.raises(Errors.TopicAlreadyExistsError):
        admin.create_topics({"kp-exists": {"num_partitions": 1}})


def test_unknown_topics_are_unknown_topic_or_partition(admin):
    with pytest.raises(Errors.UnknownTopicOrPartitionError):
        admin.delete_topics(["kp-never-created"])
    with pytest.raises(Errors.UnknownTopicIdError):
        admin.delete_topics([uuid.uuid4()])
    # The admin client's Metadata requests do not auto-create.
    assert [t["error_code"] for t in admin.describe_topics(["kp-never-created"])] == \
        [Errors.UnknownTopicOrPartitionError.errno]
    assert "kp-never-created" not in admin.list_topics()


def test_validate_only_leaves_nothing_behind(admin, shared_broker):
    result = admin.create_topics({"kp-dry-run": {"num_partitions": 3, "configs": {"retention.ms": "1000"}}},
                                 validate_only=True)
    assert [(t["name"], t["error_code"], t["num_partitions"]) for t in result["topics"]] == [("kp-dry-run", 0, 3)]
    assert "kp-dry-run" not in admin.list_topics()
    assert partition_directories(shared_broker, "kp-dry-run") == []
    assert not (shared_broker.data_dir / "topics" / "kp-dry-run.json").exists()

    assert create(admin, {"kp-dry-run": {"num_partitions": 1}}) == {"kp-dry-run": (0, None)}
    admin.create_partitions({"kp-dry-run": 4}, validate_only=True)
    admin.alter_configs([ConfigResource("TOPIC", "kp-dry-run", {"retention.ms": "1000"})], validate_only=True)
    admin.alter_configs([ConfigResource("TOPIC", "kp-dry-run", {"retention.bytes": "1000"})], validate_only=True,
                        incremental=False)
    (described,) = admin.describe_topics(["kp-dry-run"])
    assert len(described["partitions"]) == 1
    assert partition_directories(shared_broker, "kp-dry-run") == ["kp-dry-run-0"]
    assert kafka_python_topic_configs(admin, "kp-dry-run") == DEFAULTS


def test_a_deleted_topic_created_again_starts_empty_without_its_old_commits(admin, shared_broker):
    assert create(admin, {"kp-reborn": {"num_partitions": 2}}) == {"kp-reborn": (0, None)}
    produce(shared_broker, "kp-reborn", 0, 5)
    first = TopicPartition("kp-reborn", 0)
    assert admin.alter_group_offsets("kp-reborn-group", {first: OffsetAndMetadata(5, "", -1)}) == {first: Errors.NoError}
    (old,) = admin.describe_topics(["kp-reborn"])

    admin.delete_topics(["kp-reborn"])
    assert create(admin, {"kp-reborn": {"num_partitions": 1}}) == {"kp-reborn": (0, None)}
    (new,) = admin.describe_topics(["kp-reborn"])
    assert new["topic_id"] != old["topic_id"] and len(new["partitions"]) == 1
    assert admin.list_partition_offsets({first: OffsetSpec.LATEST})[first].offset == 0
    assert admin.list_group_offsets({"kp-reborn-group": None}) == {"kp-reborn-group": {}}
    assert produce(shared_broker, "kp-reborn", 0, 1) == [b"kp-reborn-0-0"]
    assert [(r.offset, r.value) for r in read_partitions(shared_broker, {first: 1})[first]] == [(0, b"kp-reborn-0-0")]


def test_the_longest_legal_topic_name_is_created_deleted_and_created_again_empty(admin, shared_broker):
    name = "z" * 249
    assert create(admin, {name: {"num_partitions": 1}}) == {name: (0, None)}
    produce(shared_broker, name, 0, 2)
    admin.delete_topics([name])
    assert create(admin, {name: {"num_partitions": 1}}) == {name: (0, None)}
    partition = TopicPartition(name, 0)
    assert admin.list_partition_offsets({partition: OffsetSpec.LATEST})[partition].offset == 0


def test_delete_group_offsets_forgets_them_unless_the_group_consumes_the_topic(admin, shared_broker):
    assert create(admin, {"kp-forget": {"num_partitions": 2}}) == {"kp-forget": (0, None)}
    first, second = TopicPartition("kp-forget", 0), TopicPartition("kp-forget", 1)
    committed = {first: OffsetAndMetadata(3, "", -1), second: OffsetAndMetadata(4, "", -1)}
    assert admin.alter_group_offsets("kp-forget-group", committed) == {first: Errors.NoError, second: Errors.NoError}
    missing = TopicPartition("kp-no-such-topic", 0)
    assert admin.delete_group_offsets("kp-forget-group", [first, missing]) == {
        first: Errors.NoError, missing: Errors.UnknownTopicOrPartitionError}
    assert admin.list_group_offsets({"kp-forget-group": None})["kp-forget-group"] == {second: committed[second]}
    with pytest.raises(Errors.GroupIdNotFoundError):
        admin.delete_group_offsets("kp-never-committed", [first])
    with group_consumer(shared_broker, "kp-consuming", topic="kp-forget") as consumer:
        eventually(lambda: assigned(consumer), "the consumer's assignment")
        # The group's member subscribes to kp-forget: its offsets stay.
        assert admin.delete_group_offsets("kp-consuming", [first]) == {first: Errors.GroupSubscribedToTopicError}
    assert_broker_healthy(shared_broker)
