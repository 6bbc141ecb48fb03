"""Topic administration and many partitions, over a real socket, checked field by field."""

import uuid

import pytest

from broker.config import BrokerConfig
from broker.handlers import metadata as metadata_handler
from broker.server import Broker
from protocol import records
from protocol.errors import ErrorCode
from protocol.messages import ApiKey
from wire_client import WireClient

TOPIC_RESOURCE, BROKER_RESOURCE = 2, 4


async def create(client, name, partitions=3, configs=None, *, replication_factor=-1, validate_only=False,
                 version=7):
    response = await client.request(ApiKey.CREATE_TOPICS, version, {
        "topics": [{"name": name, "num_partitions": partitions, "replication_factor": replication_factor,
                    "assignments": [], "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
        "timeout_ms": 5000, "validate_only": validate_only})
    return response.topics[0]


async def metadata(client, names=None, *, auto_create=False):
    topics = None if names is None else [{"name": n, "topic_id": uuid.UUID(int=0)} for n in names]
    return await client.request(ApiKey.METADATA, 12, {"topics": topics, "allow_auto_topic_creation": auto_create,
                                               "include_topic_authorized_operations": False})


async def describe_topic_configs(client, name, keys=None, synonyms=False):
    response = await client.request(ApiKey.DESCRIBE_CONFIGS, 4, {
        "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": name, "configuration_keys": keys}],
        "include_synonyms": synonyms, "include_documentation": False})
    return response.results[0]


def batch(*values):
    return records.build_batch([records.Record(value=v) for v in values])


async def produce_many(client, placements):
    """One Produce request for several (topic, partition, value) triples."""
    by_topic = {}
    for topic, partition, value in placements:
        by_topic.setdefault(topic, []).append({"index": partition, "records": batch(value)})
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": t, "partition_data": p} for t, p in by_topic.items()]})
    return {(t.name, p.index): p for t in response.responses for p in t.partition_responses}


class TestCreateTopics:
    async def test_created_topic_is_in_metadata_with_its_partitions(self, broker, client):
        created = await create(client, "orders", 4)
        assert (created.error_code, created.num_partitions, created.replication_factor) == (0, 4, 1)
        [topic] = (await metadata(client, ["orders"])).topics
        assert topic.error_code == ErrorCode.NONE and topic.topic_id == created.topic_id
        assert [p.partition_index for p in topic.partitions] == [0, 1, 2, 3]
        assert all(p.leader_id == broker.config.node_id for p in topic.partitions)

    async def test_default_partition_count(self, client):
        assert (await create(client, "defaulted", -1)).num_partitions == 1

    @pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "bad/name", "spaces here", "__consumer_offsets"])
    async def test_names_kafka_rejects(self, client, name):
        assert (await create(client, name)).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION

    async def test_colliding_name_is_rejected(self, client):
        await create(client, "a.b")
        result = await create(client, "a_b")
        assert result.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION and "collides" in result.error_message

    async def test_existing_topic(self, client):
        await create(client, "twice")
        assert (await create(client, "twice")).error_code == ErrorCode.TOPIC_ALREADY_EXISTS

    async def test_replication_factor_above_one(self, client):
        assert (await create(client, "rf3", replication_factor=3)).error_code == ErrorCode.INVALID_REPLICATION_FACTOR

    @pytest.mark.parametrize("partitions", [0, -5])
    async def test_bad_partition_count(self, client, partitions):
        assert (await create(client, "np", partitions)).error_code == ErrorCode.INVALID_PARTITIONS

    @pytest.mark.parametrize("configs, words", [
        ({"no.such.config": "1"}, "no.such.config"),
        ({"retention.ms": "soon"}, "retention.ms"),
        ({"message.timestamp.type": "WallClock"}, "WallClock"),
        ({"cleanup.policy": "compacted"}, "compact, delete"),
    ])
    async def test_bad_configs_are_invalid_config_naming_the_problem(self, client, configs, words):
        result = await create(client, "configured", configs=configs)
        assert result.error_code == ErrorCode.INVALID_CONFIG and words in result.error_message
        assert (await metadata(client, ["configured"])).topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    async def test_validate_only_creates_nothing(self, client, broker):
        result = await create(client, "dry", 2, validate_only=True)
        assert (result.error_code, result.num_partitions) == (ErrorCode.NONE, 2)
        assert "dry" not in broker.registry.topics
        assert not (broker.config.data_dir / "dry-0").exists()


class TestTopicsSurviveRestart:
    async def test_ids_partitions_and_configs_come_back(self, broker_config, nursery):
        async with Broker(broker_config) as broker:
            await nursery.start(broker.serve)
            client = await WireClient.connect(broker.port)
            created = await create(client, "kept", 5, {"retention.ms": "3600000", "cleanup.policy": "delete"})
            await client.aclose()

        async with Broker(broker_config) as broker:
            await nursery.start(broker.serve)
            client = await WireClient.connect(broker.port)
            [topic] = (await metadata(client, ["kept"])).topics
            assert topic.topic_id == created.topic_id and len(topic.partitions) == 5
            configs = {c.name: (c.value, c.config_source)
                       for c in (await describe_topic_configs(client, "kept")).configs}
            assert configs["retention.ms"] == ("3600000", 1)
            assert configs["cleanup.policy"] == ("delete", 1)
            await client.aclose()


class TestAutoCreation:
    async def test_metadata_creates_the_topic_with_a_leader(self, client):
        [topic] = (await metadata(client, ["auto"], auto_create=True)).topics
        assert topic.error_code == ErrorCode.NONE and topic.partitions[0].leader_id == 1

    async def test_produce_creates_the_topic(self, client):
        result = await produce_many(client, [("auto-produce", 0, b"v")])
        assert result[("auto-produce", 0)].error_code == ErrorCode.NONE
        assert (await metadata(client, ["auto-produce"])).topics[0].error_code == ErrorCode.NONE

    async def test_invalid_name_is_not_created(self, client):
        [topic] = (await metadata(client, ["bad/name"], auto_create=True)).topics
        assert topic.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION

    @pytest.fixture
    def broker_config(self, tmp_path):
        return BrokerConfig(port=0, data_dir=tmp_path / "data", num_partitions=3)

    async def test_uses_the_default_partition_count(self, client):
        [topic] = (await metadata(client, ["three"], auto_create=True)).topics
        assert len(topic.partitions) == 3


async def test_auto_creation_off(tmp_path, nursery):
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "data", auto_create_topics=False)) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        [topic] = (await metadata(client, ["missing"], auto_create=True)).topics
        assert topic.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        result = await produce_many(client, [("missing", 0, b"v")])
        assert result[("missing", 0)].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


class TestManyPartitionsInOneRequest:
    async def test_each_partition_gets_its_own_answer(self, client):
        await create(client, "multi", 3)
        result = await produce_many(client, [("multi", 0, b"a"), ("multi", 2, b"b"), ("multi", 7, b"c"),
                                             ("comlog", 0, b"d")])
        assert {k: v.error_code for k, v in result.items()} == {
            ("multi", 0): 0, ("multi", 2): 0, ("multi", 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ("comlog", 0): 0}
        response = await client.request(ApiKey.FETCH, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": "multi", "partitions": [
                {"partition": i, "fetch_offset": 0, "partition_max_bytes": 1 << 20} for i in range(4)]}]})
        answers = {p.partition_index: p for p in response.responses[0].partitions}
        assert answers[3].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert [answers[i].high_watermark for i in range(3)] == [1, 0, 1]
        values = [r.value for _, b in records.iter_batches(bytes(answers[2].records)) for r in records.iter_records(b)]
        assert values == [b"b"]


class TestMetadataOfManyPartitions:
    """Metadata encodes each topic once per version; a request with many partitions to encode
    has them encoded in a worker thread (past a limit this test lowers)."""

    @pytest.fixture(autouse=True)
    def few_on_the_loop(self, monkeypatch):
        monkeypatch.setattr(metadata_handler, "_MAX_PARTITIONS_ENCODED_ON_LOOP", 4)

    @pytest.mark.parametrize("version", [1, 9, 12])
    async def test_every_partition_in_each_version_asked_for(self, broker, client, version):
        await create(client, "wide", 5)
        await create(client, "narrow", 1)
        for asked in (version, 0, version):
            response = await client.request(ApiKey.METADATA, asked, {"topics": [] if asked == 0 else None})
            topics = {t.name: [(p.partition_index, p.leader_id, p.isr_nodes) for p in t.partitions]
                      for t in response.topics}
            node = broker.config.node_id
            assert topics == {"comlog": [(0, node, [node])], "narrow": [(0, node, [node])],
                              "wide": [(i, node, [node]) for i in range(5)]}

    async def test_a_recreated_topic_is_described_anew(self, client):
        await create(client, "again", 5)
        first = (await metadata(client, ["again"])).topics[0]
        await client.request(ApiKey.DELETE_TOPICS, 5, {"topic_names": ["again"], "timeout_ms": 5000})
        await create(client, "again", 2)
        second = (await metadata(client, ["again"])).topics[0]
        assert (len(second.partitions), len(first.partitions)) == (2, 5)
        assert second.topic_id != first.topic_id


class TestDeleteTopics:
    async def test_by_name_removes_metadata_and_data(self, broker, client):
        await create(client, "doomed", 2)
        await produce_many(client, [("doomed", 1, b"x")])
        response = await client.request(ApiKey.DELETE_TOPICS, 5, {"topic_names": ["doomed", "never"], "timeout_ms": 5000})
        assert [(r.name, r.error_code) for r in response.responses] == [
            ("doomed", ErrorCode.NONE), ("never", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
        assert (await metadata(client, ["doomed"])).topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert not any(p.name.startswith("doomed-") for p in broker.config.data_dir.iterdir())

    async def test_by_topic_id(self, client):
        created = await create(client, "by-id", 1)
        response = await client.request(ApiKey.DELETE_TOPICS, 6, {
            "topics": [{"name": None, "topic_id": created.topic_id}, {"name": None, "topic_id": uuid.uuid4()}],
            "timeout_ms": 5000})
        assert [(r.name, r.error_code) for r in response.responses] == [
            ("by-id", ErrorCode.NONE), (None, ErrorCode.UNKNOWN_TOPIC_ID)]

    async def test_recreated_topic_starts_empty(self, client):
        await create(client, "again", 1)
        await produce_many(client, [("again", 0, b"old")])
        await client.request(ApiKey.DELETE_TOPICS, 5, {"topic_names": ["again"], "timeout_ms": 5000})
        await create(client, "again", 1)
        result = await produce_many(client, [("again", 0, b"new")])
        assert result[("again", 0)].base_offset == 0


class TestCreatePartitions:
    async def request(self, client, name, count, validate_only=False):
        response = await client.request(ApiKey.CREATE_PARTITIONS, 3, {
            "topics": [{"name": name, "count": count, "assignments": None}], "timeout_ms": 5000,
            "validate_only": validate_only})
        return response.results[0]

    async def test_increase(self, client):
        await create(client, "grow", 2)
        assert len((await metadata(client, ["grow"])).topics[0].partitions) == 2
        assert (await self.request(client, "grow", 5)).error_code == ErrorCode.NONE
        assert [p.partition_index for p in (await metadata(client, ["grow"])).topics[0].partitions] == list(range(5))

    async def test_decrease_or_same_is_invalid_partitions(self, client):
        await create(client, "fixed", 3)
        for count in (3, 2):
            assert (await self.request(client, "fixed", count)).error_code == ErrorCode.INVALID_PARTITIONS

    async def test_unknown_topic(self, client):
        assert (await self.request(client, "ghost", 3)).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    async def test_validate_only(self, client):
        await create(client, "dry-grow", 1)
        assert (await self.request(client, "dry-grow", 4, validate_only=True)).error_code == ErrorCode.NONE
        assert len((await metadata(client, ["dry-grow"])).topics[0].partitions) == 1


class TestConfigs:
    async def test_describe_defaults_with_sources_and_synonyms(self, client):
        await create(client, "described", 1, {"retention.ms": "1000"})
        result = await describe_topic_configs(client, "described", synonyms=True)
        configs = {c.name: c for c in result.configs}
        retention = configs["retention.ms"]
        assert (retention.value, retention.config_source, retention.read_only) == ("1000", 1, False)
        assert [(s.name, s.source) for s in retention.synonyms] == [("retention.ms", 1), ("log.retention.ms", 5)]
        segment = configs["segment.bytes"]
        assert (segment.value, segment.config_source, segment.config_type) == (str(1 << 30), 5, 3)
        assert configs["max.message.bytes"].value == "1048588"
        assert configs["cleanup.policy"].value == "delete"

    async def test_only_the_keys_asked_for(self, client):
        result = await describe_topic_configs(client, "comlog", keys=["retention.bytes"])
        assert [c.name for c in result.configs] == ["retention.bytes"]

    async def test_unknown_topic(self, client):
        assert (await describe_topic_configs(client, "ghost")).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    async def test_broker_resource_has_static_sources_and_its_dynamic_configs_writable(self, tmp_path, nursery):
        async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "data", retention_ms=60_000)) as broker:
            await nursery.start(broker.serve)
            client = await WireClient.connect(broker.port)
            response = await client.request(ApiKey.DESCRIBE_CONFIGS, 4, {
                "resources": [{"resource_type": BROKER_RESOURCE, "resource_name": "1", "configuration_keys": None}],
                "include_synonyms": False, "include_documentation": False})
            configs = {c.name: c for c in response.results[0].configs}
            assert (configs["log.retention.ms"].value, configs["log.retention.ms"].config_source) == ("60000", 4)
            assert configs["log.segment.bytes"].config_source == 5
            # Kafka's dynamic broker configs may be altered; its static ones (broker.id) may not.
            assert not configs["log.retention.ms"].read_only and configs["broker.id"].read_only
            # The broker's setting is the default of every topic that does not override it.
            topic_configs = {c.name: c for c in (await describe_topic_configs(client, "comlog")).configs}
            assert (topic_configs["retention.ms"].value, topic_configs["retention.ms"].config_source) == ("60000", 4)

    async def test_dynamic_broker_configs_default_topics_live_and_survive_a_restart(self, tmp_path, nursery):
        async def alter_broker(client, name, op, key, value):
            response = await client.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {
                "resources": [{"resource_type": BROKER_RESOURCE, "resource_name": name,
                               "configs": [{"name": key, "config_operation": op, "value": value}]}],
                "validate_only": False})
            return response.responses[0].error_code, response.responses[0].error_message

        async def retention(client, topic):
            found = {c.name: c for c in (await describe_topic_configs(client, topic, synonyms=True)).configs}
            entry = found["retention.ms"]
            return entry.value, entry.config_source, [(s.name, s.value, s.source) for s in entry.synonyms]

        config = BrokerConfig(port=0, data_dir=tmp_path / "data", retention_ms=60_000)
        async with Broker(config) as broker:
            await nursery.start(broker.serve)
            client = await WireClient.connect(broker.port)
            await create(client, "plain", 1)
            await create(client, "own", 1, {"retention.ms": "1000"})
            assert await alter_broker(client, "", 0, "log.retention.ms", "50000") == (ErrorCode.NONE, None)
            assert await alter_broker(client, "1", 0, "log.retention.ms", "40000") == (ErrorCode.NONE, None)
            # This broker's value over the cluster default, over the static one; a topic's own over all.
            assert await retention(client, "plain") == ("40000", 2, [
                ("log.retention.ms", "40000", 2), ("log.retention.ms", "50000", 3),
                ("log.retention.ms", "60000", 4), ("log.retention.ms", str(7 * 24 * 3600 * 1000), 5)])
            assert broker.registry.topics["plain"].partitions[0].log.config.retention_ms == 40_000
            assert (await retention(client, "own"))[:2] == ("1000", 1)
            assert broker.registry.topics["own"].partitions[0].log.config.retention_ms == 1000
            await create(client, "later", 1)
            assert broker.registry.topics["later"].partitions[0].log.config.retention_ms == 40_000
            assert await alter_broker(client, "", 0, "sasl.kerberos.min.time.before.relogin", "5") == (
                ErrorCode.INVALID_REQUEST, "Cannot update these configs at default cluster level, broker id must "
                "be specified: Set(sasl.kerberos.min.time.before.relogin)")
        async with Broker(config) as broker:
            await nursery.start(broker.serve)
            client = await WireClient.connect(broker.port)
            assert (await retention(client, "plain"))[:2] == ("40000", 2)
            assert broker.registry.topics["plain"].partitions[0].log.config.retention_ms == 40_000
            assert await alter_broker(client, "1", 1, "log.retention.ms", None) == (ErrorCode.NONE, None)
            assert (await retention(client, "plain"))[:2] == ("50000", 3)
            assert await alter_broker(client, "", 1, "log.retention.ms", None) == (ErrorCode.NONE, None)
            assert (await retention(client, "plain"))[:2] == ("60000", 4)
            assert broker.registry.topics["plain"].partitions[0].log.config.retention_ms == 60_000

    async def test_incremental_alter_set_and_delete_applies_live(self, broker, client):
        await create(client, "tuned", 1)

        async def alter(op, name, value):
            response = await client.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {
                "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": "tuned",
                               "configs": [{"name": name, "config_operation": op, "value": value}]}],
                "validate_only": False})
            return response.responses[0]

        assert (await alter(0, "max.message.bytes", "100")).error_code == ErrorCode.NONE
        value = {c.name: c.value for c in (await describe_topic_configs(client, "tuned")).configs}
        assert value["max.message.bytes"] == "100"
        result = await produce_many(client, [("tuned", 0, b"x" * 200)])
        assert result[("tuned", 0)].error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert broker.registry.topics["tuned"].partitions[0].log.config.max_message_bytes == 100

        assert (await alter(1, "max.message.bytes", None)).error_code == ErrorCode.NONE
        result = await produce_many(client, [("tuned", 0, b"x" * 200)])
        assert result[("tuned", 0)].error_code == ErrorCode.NONE

        bad = await alter(0, "segment.bytes", "-3")
        assert bad.error_code == ErrorCode.INVALID_CONFIG and "segment.bytes" in bad.error_message
        assert (await alter(2, "retention.ms", "5")).error_code == ErrorCode.INVALID_CONFIG

    async def test_alter_configs_replaces_every_override(self, client):
        await create(client, "replaced", 1, {"retention.ms": "1000", "segment.ms": "2000"})
        response = await client.request(ApiKey.ALTER_CONFIGS, 2, {
            "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": "replaced",
                           "configs": [{"name": "retention.bytes", "value": "4096"}]}],
            "validate_only": False})
        assert response.responses[0].error_code == ErrorCode.NONE
        sources = {c.name: c.config_source for c in (await describe_topic_configs(client, "replaced")).configs}
        assert (sources["retention.bytes"], sources["retention.ms"], sources["segment.ms"]) == (1, 5, 5)

    async def test_min_insync_replicas_above_one_refuses_acks_all(self, client):
        await create(client, "isr", 1, {"min.insync.replicas": "2"})
        result = await produce_many(client, [("isr", 0, b"x")])
        assert result[("isr", 0)].error_code == ErrorCode.NOT_ENOUGH_REPLICAS


class TestDeleteRecords:
    async def request(self, client, offset, topic="comlog", partition=0):
        response = await client.request(ApiKey.DELETE_RECORDS, 2, {
            "topics": [{"name": topic, "partitions": [{"partition_index": partition, "offset": offset}]}],
            "timeout_ms": 5000})
        return response.topics[0].partitions[0]

    async def test_advances_the_log_start_offset(self, client):
        for value in (b"a", b"b", b"c"):
            await produce_many(client, [("comlog", 0, value)])
        result = await self.request(client, 2)
        assert (result.error_code, result.low_watermark) == (ErrorCode.NONE, 2)
        response = await client.request(ApiKey.LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": "comlog", "partitions": [{"partition_index": 0, "timestamp": -2}]}]})
        assert response.topics[0].partitions[0].offset == 2

    async def test_minus_one_means_the_high_watermark(self, client):
        await produce_many(client, [("comlog", 0, b"a")])
        assert (await self.request(client, -1)).low_watermark == 1

    async def test_beyond_the_high_watermark(self, client):
        assert (await self.request(client, 10)).error_code == ErrorCode.OFFSET_OUT_OF_RANGE

    async def test_unknown_partition(self, client):
        assert (await self.request(client, 0, partition=4)).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_describe_cluster(broker, client):
    response = await client.request(ApiKey.DESCRIBE_CLUSTER, 1, {"include_cluster_authorized_operations": False,
                                                          "endpoint_type": 1})
    assert (response.error_code, response.cluster_id, response.controller_id) == (0, broker.cluster_id, 1)
    assert [(b.broker_id, b.host, b.port) for b in response.brokers] == [(1, "127.0.0.1", broker.port)]


@pytest.mark.parametrize("current, asked, expected", [
    (-1, 0, (ErrorCode.NONE, 0, 2)),
    (0, 0, (ErrorCode.NONE, 0, 2)),
    (-1, 5, (ErrorCode.NONE, -1, -1)),
    (3, 0, (ErrorCode.UNKNOWN_LEADER_EPOCH, -1, -1)),
])
async def test_offset_for_leader_epoch(client, current, asked, expected):
    await produce_many(client, [("comlog", 0, b"a")])
    await produce_many(client, [("comlog", 0, b"b")])
    response = await client.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {"replica_id": -1, "topics": [
        {"topic": "comlog", "partitions": [{"partition": 0, "current_leader_epoch": current, "leader_epoch": asked}]}]})
    result = response.topics[0].partitions[0]
    assert (result.error_code, result.leader_epoch, result.end_offset) == expected


async def test_deleting_a_topic_drops_its_committed_offsets(client):
    await create(client, "committed", 1)
    commit = await client.request(8, 2, {
        "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
        "topics": [{"name": "committed", "partitions": [
            {"partition_index": 0, "committed_offset": 7, "committed_metadata": None}]}]})
    assert commit.topics[0].partitions[0].error_code == ErrorCode.NONE
    await client.request(ApiKey.DELETE_TOPICS, 5, {"topic_names": ["committed"], "timeout_ms": 5000})
    await create(client, "committed", 1)
    fetched = await client.request(9, 1, {"group_id": "g", "topics": [
        {"name": "committed", "partition_indexes": [0]}]})
    assert fetched.topics[0].partitions[0].committed_offset == -1


async def test_a_storage_failure_answers_kafka_storage_error_and_leaves_nothing(broker, client):
    # A file where the last partition's directory must go: creating the topic fails half-way.
    (broker.config.data_dir / "blocked-2").write_text("in the way")
    before = sorted(path.name for path in broker.config.data_dir.iterdir())
    response = await client.request(ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": "blocked", "num_partitions": 3, "replication_factor": 1,
                    "assignments": [], "configs": []}], "timeout_ms": 5000})
    [result] = response.topics
    assert result.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    assert "blocked-2" in result.error_message
    assert sorted(path.name for path in broker.config.data_dir.iterdir()) == before
    assert "blocked" not in broker.registry.topics
    # The same connection goes on being served.
    comlog, blocked = (await metadata(client, ["comlog", "blocked"])).topics
    assert (comlog.error_code, blocked.error_code) == (ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


async def test_authorized_operations_are_all_supported_ones_when_asked_for(client):
    # Kafka without an authorizer reports every operation the resource type supports.
    read, write, describe, describe_configs = 3, 4, 8, 10
    asked = await client.request(ApiKey.METADATA, 10, {"topics": [{"name": "comlog", "topic_id": uuid.UUID(int=0)}],
                                                "allow_auto_topic_creation": False,
                                                "include_cluster_authorized_operations": True,
                                                "include_topic_authorized_operations": True})
    operations = asked.topics[0].topic_authorized_operations
    assert all(operations & (1 << op) for op in (read, write, describe, describe_configs))
    assert asked.cluster_authorized_operations & (1 << describe)
    not_asked = await metadata(client, ["comlog"])
    assert not_asked.topics[0].topic_authorized_operations == -2**31
    cluster = await client.request(ApiKey.DESCRIBE_CLUSTER, 0, {"include_cluster_authorized_operations": True})
    assert cluster.cluster_authorized_operations == asked.cluster_authorized_operations
