"""ACLs enforced, API by API, on a real broker with Kafka's standard authorizer: each request is
answered through Broker.handle_frame in a task whose session names the principal (the wire
decoding and encoding included), and over a real socket for the anonymous principal. For each
API: what an ACL allows, what is denied with Kafka's code and changes nothing, and the
authorized-operations fields."""

from __future__ import annotations

import uuid

import pytest

from broker.acls import (
    AUTHORIZER_CLASS_NAMES, CLUSTER_NAME, AccessControlEntry, AclBinding, AclBindingFilter, AclPermissionType,
    PatternType, ResourcePattern, ResourceType,
)
from broker.authorized_operations import CLUSTER, OMITTED, TOPIC, AclOperation, bits
from broker.config import BrokerConfig
from broker.server import Broker
from broker.session import ANONYMOUS, CURRENT_SESSION, Session
from protocol import headers, records
from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, ApiKey
from protocol.primitives import ZERO_UUID
from wire_client import WireClient

Op = AclOperation
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
ALICE, ADMIN = "User:alice", "User:admin"
DENIED_TOPIC = ErrorCode.TOPIC_AUTHORIZATION_FAILED
DENIED_GROUP = ErrorCode.GROUP_AUTHORIZATION_FAILED
DENIED_CLUSTER = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
DENIED_TXN = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, PatternType.ANY, None, None, Op.ANY, AclPermissionType.ANY)


@pytest.fixture
def broker_config(tmp_path):
    return BrokerConfig(port=0, data_dir=tmp_path / "data", num_partitions=1,
                        authorizer_class_name=AUTHORIZER_CLASS_NAMES[0])


def acl(resource_type: ResourceType, name: str, operation: AclOperation, permission: AclPermissionType = ALLOW, *,
        pattern_type: PatternType = LITERAL, principal: str = ALICE, host: str = "*") -> AclBinding:
    return AclBinding(ResourcePattern(resource_type, name, pattern_type),
                      AccessControlEntry(principal, host, operation, permission))


def topic_acl(name: str, operation: AclOperation, permission: AclPermissionType = ALLOW, **kwargs) -> AclBinding:
    return acl(ResourceType.TOPIC, name, operation, permission, **kwargs)


def group_acl(name: str, operation: AclOperation, **kwargs) -> AclBinding:
    return acl(ResourceType.GROUP, name, operation, **kwargs)


def cluster_acl(operation: AclOperation, **kwargs) -> AclBinding:
    return acl(ResourceType.CLUSTER, CLUSTER_NAME, operation, **kwargs)


def txn_acl(name: str, operation: AclOperation, **kwargs) -> AclBinding:
    return acl(ResourceType.TRANSACTIONAL_ID, name, operation, **kwargs)


async def grant(broker: Broker, *bindings: AclBinding) -> None:
    await broker.authorizer.create_acls(bindings)


@pytest.fixture
async def acl_broker(broker):
    """The broker with topics payments, orders and payments.secret, and an admin who may do anything."""
    await grant(broker, *(acl(resource_type, "*", Op.ALL, principal=ADMIN) for resource_type in
                          (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID)),
                cluster_acl(Op.ALL, principal=ADMIN))
    for name in ("payments", "orders", "payments.secret"):
        await broker.topics.create(name, 1, 1, [], {})
    return broker


async def call(broker: Broker, principal: str, api_key: ApiKey, version: int, *, host: str = "127.0.0.1", **fields):
    """The response to a request from `principal`, as the broker encodes it, decoded."""
    frame = headers.encode_request(api_key, version, 7, "acl-test", REQUESTS[api_key](**fields))
    token = CURRENT_SESSION.set(Session(principal=principal, client_host=host))
    try:
        chunks = await broker.handle_frame(frame)
    finally:
        CURRENT_SESSION.reset(token)
    response = b"".join(bytes(chunk) for chunk in chunks[1:])
    _, offset = headers.decode_response_header(response, api_key, version)
    return headers.decode_response_body(response, offset, api_key, version)


def batch(value: bytes = b"v", **kwargs):
    return records.build_batch([records.Record(value=value, timestamp=1_000)], **kwargs)


def log_end(broker: Broker, topic: str) -> int:
    return broker.topics.partition(topic, 0).log.log_end_offset


def produce_fields(*topics: str, transactional_id: str | None = None, record_set=None) -> dict:
    return {"transactional_id": transactional_id, "acks": -1, "timeout_ms": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": record_set or batch()}]} for topic in topics]}


def produce_codes(response) -> dict[str, ErrorCode]:
    return {t.name: t.partition_responses[0].error_code for t in response.responses}


def fetch_fields(*topics: str, replica_id: int = -1) -> dict:
    return {"replica_id": replica_id, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "", "topics": [
                {"topic": topic, "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}
                for topic in topics]}


def fetch_codes(response) -> dict[str, ErrorCode]:
    return {t.topic: t.partitions[0].error_code for t in response.responses}


async def test_produce_needs_write_on_each_topic_and_a_denied_topic_is_not_written(acl_broker):
    await grant(acl_broker, topic_acl("pay", Op.WRITE, pattern_type=PREFIXED),
                topic_acl("payments.secret", Op.WRITE, DENY))
    response = await call(acl_broker, ALICE, ApiKey.PRODUCE, 9,
                          **produce_fields("payments", "orders", "payments.secret", "pay.unknown"))
    # A topic alice may write but that does not exist is not auto-created without CREATE.
    assert produce_codes(response) == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC,
                                       "payments.secret": DENIED_TOPIC,
                                       "pay.unknown": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert (log_end(acl_broker, "payments"), log_end(acl_broker, "orders"), log_end(acl_broker, "payments.secret")) \
        == (1, 0, 0)
    assert acl_broker.topics.get("pay.unknown") is None
    # A denied topic is denied whether it exists or not, so that its existence is not disclosed.
    assert produce_codes(await call(acl_broker, ALICE, ApiKey.PRODUCE, 9, **produce_fields("nowhere"))) == {
        "nowhere": DENIED_TOPIC}


async def test_produce_auto_creates_only_with_create_on_the_cluster_or_the_topic(acl_broker):
    await grant(acl_broker, topic_acl("*", Op.WRITE), topic_acl("new.", Op.CREATE, pattern_type=PREFIXED))
    response = await call(acl_broker, ALICE, ApiKey.PRODUCE, 9, **produce_fields("new.one", "other.one"))
    assert produce_codes(response) == {"new.one": ErrorCode.NONE, "other.one": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert acl_broker.topics.get("new.one") is not None and acl_broker.topics.get("other.one") is None
    await grant(acl_broker, cluster_acl(Op.CREATE))
    assert produce_codes(await call(acl_broker, ALICE, ApiKey.PRODUCE, 9, **produce_fields("other.one"))) == {
        "other.one": ErrorCode.NONE}


async def test_transactional_records_need_write_on_the_transactional_id_for_the_whole_request(acl_broker):
    await grant(acl_broker, topic_acl("*", Op.WRITE))
    transactional = batch(producer_id=5, producer_epoch=0, base_sequence=0, transactional=True)
    response = await call(acl_broker, ALICE, ApiKey.PRODUCE, 9, **produce_fields(
        "payments", transactional_id="txn", record_set=transactional))
    assert produce_codes(response) == {"payments": DENIED_TXN}
    assert log_end(acl_broker, "payments") == 0


async def test_fetch_needs_read_and_a_follower_cluster_action(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.READ))
    assert fetch_codes(await call(acl_broker, ALICE, ApiKey.FETCH, 12, **fetch_fields("payments", "orders", "nowhere"))) \
        == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC, "nowhere": DENIED_TOPIC}
    # A follower's fetch (a replica id) needs CLUSTER_ACTION, whatever the topics' ACLs.
    assert fetch_codes(await call(acl_broker, ALICE, ApiKey.FETCH, 12, **fetch_fields("payments", replica_id=1))) == {
        "payments": DENIED_TOPIC}
    await grant(acl_broker, cluster_acl(Op.CLUSTER_ACTION))
    assert fetch_codes(await call(acl_broker, ALICE, ApiKey.FETCH, 12,
                                  **fetch_fields("orders", replica_id=1))) == {"orders": ErrorCode.NONE}


async def test_fetch_by_topic_id_is_denied_per_topic_and_an_unknown_id_stays_unknown(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.READ))
    fields = fetch_fields()
    ids = {name: acl_broker.topics.get(name).topic_id for name in ("payments", "orders")}
    fields["topics"] = [{"topic_id": topic_id, "partitions": [{"partition": 0, "fetch_offset": 0,
                                                              "partition_max_bytes": 1024}]}
                        for topic_id in (*ids.values(), uuid.UUID(int=1))]
    response = await call(acl_broker, ALICE, ApiKey.FETCH, 13, **fields)
    assert [t.partitions[0].error_code for t in response.responses] == [
        ErrorCode.NONE, DENIED_TOPIC, ErrorCode.UNKNOWN_TOPIC_ID]


async def test_list_offsets_and_offset_for_leader_epoch_need_describe(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.READ))  # READ implies DESCRIBE
    topics = [{"name": name, "partitions": [{"partition_index": 0, "timestamp": -1}]}
              for name in ("payments", "orders", "nowhere")]
    response = await call(acl_broker, ALICE, ApiKey.LIST_OFFSETS, 7, replica_id=-1, topics=topics)
    assert [t.partitions[0].error_code for t in response.topics] == [ErrorCode.NONE, DENIED_TOPIC, DENIED_TOPIC]
    epochs = [{"topic": name, "partitions": [{"partition": 0, "leader_epoch": 0}]} for name in ("payments", "orders")]
    response = await call(acl_broker, ALICE, ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, replica_id=-1, topics=epochs)
    assert [t.partitions[0].error_code for t in response.topics] == [ErrorCode.NONE, DENIED_TOPIC]


async def test_metadata_leaves_out_what_the_principal_may_not_describe(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.WRITE), topic_acl("payments.", Op.DESCRIBE, DENY,
                                                                      pattern_type=PREFIXED))
    every = await call(acl_broker, ALICE, ApiKey.METADATA, 12, topics=None, allow_auto_topic_creation=False)
    assert [t.name for t in every.topics] == ["payments"]
    named = await call(acl_broker, ALICE, ApiKey.METADATA, 12, allow_auto_topic_creation=False, topics=[
        {"name": name, "topic_id": ZERO_UUID} for name in ("payments", "orders", "payments.secret", "nowhere")])
    assert [(t.name, t.error_code) for t in named.topics] == [
        ("payments", ErrorCode.NONE), ("orders", DENIED_TOPIC), ("payments.secret", DENIED_TOPIC),
        ("nowhere", DENIED_TOPIC)]
    # A denied topic's id is not told.
    assert named.topics[1].topic_id == ZERO_UUID
    everything = await call(acl_broker, ADMIN, ApiKey.METADATA, 12, topics=None, allow_auto_topic_creation=False)
    assert {t.name for t in everything.topics} >= {"payments", "orders", "payments.secret"}


async def test_metadata_auto_creates_only_with_create(acl_broker):
    await grant(acl_broker, topic_acl("*", Op.DESCRIBE), topic_acl("auto.", Op.CREATE, pattern_type=PREFIXED))
    response = await call(acl_broker, ALICE, ApiKey.METADATA, 12, allow_auto_topic_creation=True, topics=[
        {"name": name, "topic_id": ZERO_UUID} for name in ("auto.one", "manual.one")])
    assert [(t.name, t.error_code) for t in response.topics] == [("auto.one", ErrorCode.NONE),
                                                                 ("manual.one", DENIED_TOPIC)]
    assert acl_broker.topics.get("manual.one") is None
    # Without auto-creation asked for, an unknown topic is unknown, as without ACLs.
    response = await call(acl_broker, ALICE, ApiKey.METADATA, 12, allow_auto_topic_creation=False,
                          topics=[{"name": "manual.one", "topic_id": ZERO_UUID}])
    assert response.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_metadata_and_describe_cluster_report_the_principals_operations(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.READ), topic_acl("payments", Op.ALTER_CONFIGS))
    response = await call(acl_broker, ALICE, ApiKey.METADATA, 10, allow_auto_topic_creation=False,
                          include_cluster_authorized_operations=True, include_topic_authorized_operations=True,
                          topics=[{"name": "payments"}])
    assert response.topics[0].topic_authorized_operations == bits(
        [Op.READ, Op.DESCRIBE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS])
    # No DESCRIBE on the cluster: no operations at all, as Kafka answers.
    assert response.cluster_authorized_operations == 0
    cluster = await call(acl_broker, ALICE, ApiKey.DESCRIBE_CLUSTER, 0, include_cluster_authorized_operations=True)
    assert cluster.error_code == ErrorCode.NONE and cluster.cluster_authorized_operations == 0
    await grant(acl_broker, cluster_acl(Op.DESCRIBE), cluster_acl(Op.CREATE))
    cluster = await call(acl_broker, ALICE, ApiKey.DESCRIBE_CLUSTER, 0, include_cluster_authorized_operations=True)
    assert cluster.cluster_authorized_operations == bits([Op.DESCRIBE, Op.CREATE])
    admin = await call(acl_broker, ADMIN, ApiKey.METADATA, 10, allow_auto_topic_creation=False,
                       include_cluster_authorized_operations=True, include_topic_authorized_operations=True,
                       topics=[{"name": "payments"}])
    assert (admin.topics[0].topic_authorized_operations, admin.cluster_authorized_operations) == (TOPIC, CLUSTER)
    unasked = await call(acl_broker, ADMIN, ApiKey.METADATA, 10, allow_auto_topic_creation=False,
                         topics=[{"name": "payments"}])
    assert (unasked.topics[0].topic_authorized_operations, unasked.cluster_authorized_operations) == (OMITTED,
                                                                                                     OMITTED)


def join_fields(group_id: str, member_id: str = "") -> dict:
    return {"group_id": group_id, "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000,
            "member_id": member_id, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b""}]}


async def test_group_membership_needs_read_on_the_group(acl_broker):
    await grant(acl_broker, group_acl("team", Op.READ))
    joined = await call(acl_broker, ALICE, ApiKey.JOIN_GROUP, 5, **join_fields("team", "m"))
    assert joined.error_code == ErrorCode.UNKNOWN_MEMBER_ID  # allowed: the coordinator's answer
    denied = await call(acl_broker, ALICE, ApiKey.JOIN_GROUP, 5, **join_fields("other"))
    assert (denied.error_code, denied.member_id) == (DENIED_GROUP, "")
    assert "other" not in acl_broker.coordinator.groups
    for api_key, version, fields in (
            (ApiKey.SYNC_GROUP, 3, {"group_id": "other", "generation_id": 1, "member_id": "m", "assignments": []}),
            (ApiKey.HEARTBEAT, 3, {"group_id": "other", "generation_id": 1, "member_id": "m"}),
            (ApiKey.LEAVE_GROUP, 3, {"group_id": "other", "members": [{"member_id": "m"}]})):
        assert (await call(acl_broker, ALICE, api_key, version, **fields)).error_code == DENIED_GROUP, api_key


def commit_fields(group_id: str, *topics: str) -> dict:
    return {"group_id": group_id, "generation_id_or_member_epoch": -1, "member_id": "", "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 3, "committed_metadata": ""}]}
        for topic in topics]}


def offset_codes(topics) -> dict[str, ErrorCode]:
    return {t.name: t.partitions[0].error_code for t in topics}


async def test_offset_commit_needs_read_on_the_group_and_each_topic(acl_broker):
    await grant(acl_broker, group_acl("team", Op.READ), topic_acl("payments", Op.READ))
    response = await call(acl_broker, ALICE, ApiKey.OFFSET_COMMIT, 8, **commit_fields("other", "payments"))
    assert offset_codes(response.topics) == {"payments": DENIED_GROUP}
    response = await call(acl_broker, ALICE, ApiKey.OFFSET_COMMIT, 8, **commit_fields("team", "payments", "orders"))
    assert offset_codes(response.topics) == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC}
    offsets = acl_broker.coordinator.fetch_offsets("team", None)
    assert list(offsets) == [("payments", 0)]
    assert acl_broker.coordinator.fetch_offsets("other", None) == {}


async def test_offset_fetch_needs_describe_on_the_group_and_hides_undescribable_topics(acl_broker):
    await call(acl_broker, ADMIN, ApiKey.OFFSET_COMMIT, 8, **commit_fields("team", "payments", "orders"))
    await grant(acl_broker, group_acl("team", Op.DESCRIBE), topic_acl("payments", Op.DESCRIBE))
    every = await call(acl_broker, ALICE, ApiKey.OFFSET_FETCH, 8, require_stable=False, groups=[
        {"group_id": "team", "topics": None}, {"group_id": "other", "topics": None}])
    assert [(g.group_id, g.error_code, offset_codes(g.topics)) for g in every.groups] == [
        ("team", ErrorCode.NONE, {"payments": ErrorCode.NONE}), ("other", DENIED_GROUP, {})]
    named = await call(acl_broker, ALICE, ApiKey.OFFSET_FETCH, 8, require_stable=False, groups=[
        {"group_id": "team", "topics": [{"name": "payments", "partition_indexes": [0]},
                                        {"name": "orders", "partition_indexes": [0]}]}])
    topics = named.groups[0].topics
    assert offset_codes(topics) == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC}
    assert [t.partitions[0].committed_offset for t in topics] == [3, -1]
    # Before v8 a group error is the response's, and before v2 each partition's.
    v7 = await call(acl_broker, ALICE, ApiKey.OFFSET_FETCH, 7, group_id="other", topics=None, require_stable=False)
    assert v7.error_code == DENIED_GROUP
    v1 = await call(acl_broker, ALICE, ApiKey.OFFSET_FETCH, 1, group_id="other",
                    topics=[{"name": "payments", "partition_indexes": [0]}])
    assert offset_codes(v1.topics) == {"payments": DENIED_GROUP}


async def test_offset_delete_needs_delete_on_the_group_and_read_on_each_topic(acl_broker):
    await call(acl_broker, ADMIN, ApiKey.OFFSET_COMMIT, 8, **commit_fields("team", "payments", "orders"))
    topics = [{"name": name, "partitions": [{"partition_index": 0}]} for name in ("payments", "orders")]
    denied = await call(acl_broker, ALICE, ApiKey.OFFSET_DELETE, 0, group_id="team", topics=topics)
    assert denied.error_code == DENIED_GROUP
    await grant(acl_broker, group_acl("team", Op.DELETE), topic_acl("payments", Op.READ))
    response = await call(acl_broker, ALICE, ApiKey.OFFSET_DELETE, 0, group_id="team", topics=topics)
    assert offset_codes(response.topics) == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC}
    assert list(acl_broker.coordinator.fetch_offsets("team", None)) == [("orders", 0)]


async def test_group_administration_is_per_group_or_by_cluster_describe(acl_broker):
    for group in ("team", "other"):
        await call(acl_broker, ADMIN, ApiKey.OFFSET_COMMIT, 8, **commit_fields(group, "payments"))
    await grant(acl_broker, group_acl("team", Op.READ), group_acl("team", Op.DELETE))
    listed = await call(acl_broker, ALICE, ApiKey.LIST_GROUPS, 4, states_filter=[])
    assert [g.group_id for g in listed.groups] == ["team"]
    every = await call(acl_broker, ADMIN, ApiKey.LIST_GROUPS, 4, states_filter=[])
    assert sorted(g.group_id for g in every.groups) == ["other", "team"]
    described = await call(acl_broker, ALICE, ApiKey.DESCRIBE_GROUPS, 5, groups=["team", "other"],
                           include_authorized_operations=True)
    assert [(g.group_id, g.error_code, g.authorized_operations) for g in described.groups] == [
        ("team", ErrorCode.NONE, bits([Op.READ, Op.DESCRIBE, Op.DELETE])), ("other", DENIED_GROUP, OMITTED)]
    deleted = await call(acl_broker, ALICE, ApiKey.DELETE_GROUPS, 2, groups_names=["other", "team"])
    assert [(r.group_id, r.error_code) for r in deleted.results] == [("other", DENIED_GROUP),
                                                                      ("team", ErrorCode.NONE)]
    assert acl_broker.coordinator.fetch_offsets("other", None)


async def test_find_coordinator_needs_describe_on_the_group_or_transactional_id(acl_broker):
    await grant(acl_broker, group_acl("team", Op.READ), txn_acl("txn", Op.WRITE))
    groups = await call(acl_broker, ALICE, ApiKey.FIND_COORDINATOR, 4, key_type=0, coordinator_keys=["team", "x"])
    # Kafka's batched answers leave the message unset, "", even for an error.
    assert [(c.key, c.error_code, c.error_message, c.node_id) for c in groups.coordinators] == [
        ("team", ErrorCode.NONE, "", acl_broker.config.node_id), ("x", DENIED_GROUP, "", -1)]
    txns = await call(acl_broker, ALICE, ApiKey.FIND_COORDINATOR, 4, key_type=1, coordinator_keys=["txn", "x"])
    assert [c.error_code for c in txns.coordinators] == [ErrorCode.NONE, DENIED_TXN]
    old = await call(acl_broker, ALICE, ApiKey.FIND_COORDINATOR, 3, key="x", key_type=0)
    assert old.error_code == DENIED_GROUP


def creatable(name: str) -> dict:
    return {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}


async def test_create_topics_needs_create_and_shows_configs_only_with_describe_configs(acl_broker):
    await grant(acl_broker, topic_acl("team.", Op.CREATE, pattern_type=PREFIXED),
                topic_acl("team.shown", Op.DESCRIBE_CONFIGS))
    response = await call(acl_broker, ALICE, ApiKey.CREATE_TOPICS, 7, timeout_ms=5000, validate_only=False,
                          topics=[creatable("team.shown"), creatable("team.hidden"), creatable("elsewhere")])
    shown, hidden, elsewhere = response.topics
    assert (shown.error_code, shown.topic_config_error_code, shown.num_partitions) == (ErrorCode.NONE, 0, 1)
    assert shown.configs
    assert (hidden.error_code, hidden.topic_config_error_code, hidden.num_partitions, hidden.configs) == (
        ErrorCode.NONE, DENIED_TOPIC, -1, None)
    assert (elsewhere.error_code, elsewhere.error_message) == (DENIED_TOPIC, "Authorization failed.")
    assert acl_broker.topics.get("team.hidden") is not None and acl_broker.topics.get("elsewhere") is None
    await grant(acl_broker, cluster_acl(Op.CREATE))
    response = await call(acl_broker, ALICE, ApiKey.CREATE_TOPICS, 7, timeout_ms=5000, validate_only=False,
                          topics=[creatable("elsewhere")])
    assert response.topics[0].error_code == ErrorCode.NONE


async def test_delete_topics_and_create_partitions_need_delete_and_alter(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.DELETE), topic_acl("orders", Op.ALTER))
    orders_id = acl_broker.topics.get("orders").topic_id
    response = await call(acl_broker, ALICE, ApiKey.DELETE_TOPICS, 6, timeout_ms=5000, topics=[
        {"name": "payments", "topic_id": ZERO_UUID}, {"name": "payments.secret", "topic_id": ZERO_UUID},
        {"name": None, "topic_id": orders_id}])
    # By id: ALTER implies DESCRIBE, so orders is named, but may not be deleted.
    assert [(r.name, r.error_code) for r in response.responses] == [
        ("payments", ErrorCode.NONE), ("payments.secret", DENIED_TOPIC), ("orders", DENIED_TOPIC)]
    secret_id = acl_broker.topics.get("payments.secret").topic_id
    response = await call(acl_broker, ALICE, ApiKey.DELETE_TOPICS, 6, timeout_ms=5000,
                          topics=[{"name": None, "topic_id": secret_id}])
    # Not even DESCRIBE: the name is not told.
    assert [(r.name, r.error_code) for r in response.responses] == [(None, DENIED_TOPIC)]
    assert acl_broker.topics.get("payments") is None and acl_broker.topics.get("payments.secret") is not None
    response = await call(acl_broker, ALICE, ApiKey.CREATE_PARTITIONS, 3, timeout_ms=5000, validate_only=False,
                          topics=[{"name": "orders", "count": 2, "assignments": None},
                                  {"name": "payments.secret", "count": 2, "assignments": None}])
    assert [(r.name, r.error_code) for r in response.results] == [("orders", ErrorCode.NONE),
                                                                   ("payments.secret", DENIED_TOPIC)]
    assert len(acl_broker.topics.get("payments.secret").partitions) == 1


async def test_delete_records_needs_delete(acl_broker):
    await call(acl_broker, ADMIN, ApiKey.PRODUCE, 9, **produce_fields("payments", "orders"))
    await grant(acl_broker, topic_acl("payments", Op.DELETE))
    response = await call(acl_broker, ALICE, ApiKey.DELETE_RECORDS, 2, timeout_ms=5000, topics=[
        {"name": name, "partitions": [{"partition_index": 0, "offset": 1}]} for name in ("payments", "orders")])
    assert [(t.partitions[0].error_code, t.partitions[0].low_watermark) for t in response.topics] == [
        (ErrorCode.NONE, 1), (DENIED_TOPIC, -1)]
    assert acl_broker.topics.partition("orders", 0).log.log_start_offset == 0


async def test_configs_need_describe_configs_and_alter_configs_on_the_topic_or_cluster(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.ALTER_CONFIGS))
    node = str(acl_broker.config.node_id)
    resources = [{"resource_type": 2, "resource_name": "payments", "configuration_keys": ["retention.ms"]},
                 {"resource_type": 2, "resource_name": "orders", "configuration_keys": None},
                 {"resource_type": 4, "resource_name": node, "configuration_keys": None}]
    described = await call(acl_broker, ALICE, ApiKey.DESCRIBE_CONFIGS, 4, resources=resources,
                           include_synonyms=False, include_documentation=False)
    assert [(r.error_code, r.error_message) for r in described.results] == [
        (ErrorCode.NONE, None), (DENIED_TOPIC, "Topic authorization failed."),
        (DENIED_CLUSTER, "Cluster authorization failed.")]
    altered = await call(acl_broker, ALICE, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, validate_only=False, resources=[
        {"resource_type": 2, "resource_name": name, "configs": [
            {"name": "retention.ms", "config_operation": 0, "value": "1234"}]} for name in ("payments", "orders")]
        + [{"resource_type": 4, "resource_name": "", "configs": [
            {"name": "log.retention.ms", "config_operation": 0, "value": "1234"}]}])
    assert [r.error_code for r in altered.responses] == [ErrorCode.NONE, DENIED_TOPIC, DENIED_CLUSTER]
    assert acl_broker.topics.get("payments").config.overrides == {"retention.ms": "1234"}
    assert acl_broker.topics.get("orders").config.overrides == {}
    assert acl_broker.dynamic_config.cluster_default == {}
    replaced = await call(acl_broker, ALICE, ApiKey.ALTER_CONFIGS, 2, validate_only=False, resources=[
        {"resource_type": 2, "resource_name": "orders", "configs": [{"name": "retention.ms", "value": "5"}]}])
    assert [(r.error_code, r.error_message) for r in replaced.responses] == [(DENIED_TOPIC, None)]
    assert acl_broker.topics.get("orders").config.overrides == {}


async def test_init_producer_id_needs_write_on_the_transactional_id_or_idempotent_write(acl_broker):
    idempotent = {"transactional_id": None, "transaction_timeout_ms": 60_000, "producer_id": -1,
                  "producer_epoch": -1}
    assert (await call(acl_broker, ALICE, ApiKey.INIT_PRODUCER_ID, 4, **idempotent)).error_code == DENIED_CLUSTER
    # WRITE on some topic is enough (KIP-679), as is IDEMPOTENT_WRITE on the cluster.
    await grant(acl_broker, topic_acl("pay", Op.WRITE, pattern_type=PREFIXED))
    assert (await call(acl_broker, ALICE, ApiKey.INIT_PRODUCER_ID, 4, **idempotent)).error_code == ErrorCode.NONE
    bob = "User:bob"
    await grant(acl_broker, cluster_acl(Op.IDEMPOTENT_WRITE, principal=bob))
    assert (await call(acl_broker, bob, ApiKey.INIT_PRODUCER_ID, 4, **idempotent)).error_code == ErrorCode.NONE
    transactional = idempotent | {"transactional_id": "txn"}
    denied = await call(acl_broker, ALICE, ApiKey.INIT_PRODUCER_ID, 4, **transactional)
    assert (denied.error_code, denied.producer_id) == (DENIED_TXN, -1)
    await grant(acl_broker, txn_acl("txn", Op.WRITE))
    assert (await call(acl_broker, ALICE, ApiKey.INIT_PRODUCER_ID, 4, **transactional)).error_code == ErrorCode.NONE


async def test_the_transaction_apis_check_the_transactional_id_the_group_and_the_topics(acl_broker):
    init = await call(acl_broker, ADMIN, ApiKey.INIT_PRODUCER_ID, 4, transactional_id="txn",
                      transaction_timeout_ms=60_000, producer_id=-1, producer_epoch=-1)
    ids = {"transactional_id": "txn", "producer_id": init.producer_id, "producer_epoch": init.producer_epoch}
    add = {"v3_and_below_transactional_id": "txn", "v3_and_below_producer_id": init.producer_id,
           "v3_and_below_producer_epoch": init.producer_epoch,
           "v3_and_below_topics": [{"name": name, "partitions": [0]} for name in ("payments", "orders")]}

    def add_codes(response):
        return {t.name: t.results_by_partition[0].partition_error_code for t in response.results_by_topic_v3_and_below}

    assert add_codes(await call(acl_broker, ALICE, ApiKey.ADD_PARTITIONS_TO_TXN, 3, **add)) == {
        "payments": DENIED_TXN, "orders": DENIED_TXN}
    assert (await call(acl_broker, ALICE, ApiKey.END_TXN, 3, **ids, committed=True)).error_code == DENIED_TXN
    assert (await call(acl_broker, ALICE, ApiKey.ADD_OFFSETS_TO_TXN, 3, **ids, group_id="team")).error_code \
        == DENIED_TXN
    await grant(acl_broker, txn_acl("txn", Op.WRITE), topic_acl("payments", Op.WRITE))
    assert add_codes(await call(acl_broker, ALICE, ApiKey.ADD_PARTITIONS_TO_TXN, 3, **add)) == {
        "payments": ErrorCode.OPERATION_NOT_ATTEMPTED, "orders": DENIED_TOPIC}
    assert (await call(acl_broker, ALICE, ApiKey.ADD_OFFSETS_TO_TXN, 3, **ids, group_id="team")).error_code \
        == DENIED_GROUP
    commit = {**ids, "group_id": "team", "generation_id": -1, "member_id": "", "topics": [
        {"name": "payments", "partitions": [{"partition_index": 0, "committed_offset": 1}]}]}
    response = await call(acl_broker, ALICE, ApiKey.TXN_OFFSET_COMMIT, 3, **commit)
    assert offset_codes(response.topics) == {"payments": DENIED_GROUP}
    response = await call(acl_broker, ALICE, ApiKey.TXN_OFFSET_COMMIT, 3, **commit | {"transactional_id": "other"})
    assert offset_codes(response.topics) == {"payments": DENIED_TXN}
    # A v4+ request comes from a broker: it needs CLUSTER_ACTION.
    verify = await call(acl_broker, ALICE, ApiKey.ADD_PARTITIONS_TO_TXN, 4, transactions=[])
    assert verify.error_code == DENIED_CLUSTER
    assert not acl_broker.transactions.describe("txn").partitions


async def test_describe_and_list_transactions_show_what_the_principal_may_describe(acl_broker):
    for transactional_id in ("txn", "hidden"):
        await call(acl_broker, ADMIN, ApiKey.INIT_PRODUCER_ID, 4, transactional_id=transactional_id,
                   transaction_timeout_ms=60_000, producer_id=-1, producer_epoch=-1)
    await grant(acl_broker, txn_acl("txn", Op.DESCRIBE))
    described = await call(acl_broker, ALICE, ApiKey.DESCRIBE_TRANSACTIONS, 0, transactional_ids=["txn", "hidden"])
    assert [(s.transactional_id, s.error_code) for s in described.transaction_states] == [
        ("txn", ErrorCode.NONE), ("hidden", DENIED_TXN)]
    listed = await call(acl_broker, ALICE, ApiKey.LIST_TRANSACTIONS, 0, state_filters=[], producer_id_filters=[])
    assert [s.transactional_id for s in listed.transaction_states] == ["txn"]


async def test_describe_producers_needs_read(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.READ))
    response = await call(acl_broker, ALICE, ApiKey.DESCRIBE_PRODUCERS, 0, topics=[
        {"name": name, "partition_indexes": [0]} for name in ("payments", "orders")])
    assert [t.partitions[0].error_code for t in response.topics] == [ErrorCode.NONE, DENIED_TOPIC]


def creation(name: str) -> dict:
    return {"resource_type": ResourceType.TOPIC, "resource_name": name, "resource_pattern_type": LITERAL,
            "principal": ALICE, "host": "*", "operation": Op.READ, "permission_type": ALLOW}


def describe_all() -> dict:
    return {"resource_type_filter": ResourceType.ANY, "resource_name_filter": None, "pattern_type_filter": 1,
            "principal_filter": None, "host_filter": None, "operation": Op.ANY, "permission_type": 1}


async def test_the_acl_apis_need_describe_and_alter_on_the_cluster(acl_broker):
    created = await call(acl_broker, ALICE, ApiKey.CREATE_ACLS, 2, creations=[creation("orders")])
    assert [r.error_code for r in created.results] == [DENIED_CLUSTER]
    assert (await call(acl_broker, ALICE, ApiKey.DESCRIBE_ACLS, 2, **describe_all())).error_code == DENIED_CLUSTER
    deleted = await call(acl_broker, ALICE, ApiKey.DELETE_ACLS, 2, filters=[describe_all()])
    assert [r.error_code for r in deleted.filter_results] == [DENIED_CLUSTER]
    assert len(acl_broker.authorizer.acls(EVERY_ACL)) == 4
    # Granted by the admin over the API, the ACL takes effect at once.
    created = await call(acl_broker, ADMIN, ApiKey.CREATE_ACLS, 2, creations=[creation("orders")])
    assert [r.error_code for r in created.results] == [ErrorCode.NONE]
    assert fetch_codes(await call(acl_broker, ALICE, ApiKey.FETCH, 12, **fetch_fields("orders"))) == {
        "orders": ErrorCode.NONE}
    await grant(acl_broker, cluster_acl(Op.DESCRIBE))
    described = await call(acl_broker, ALICE, ApiKey.DESCRIBE_ACLS, 2, **describe_all())
    assert described.error_code == ErrorCode.NONE and len(described.resources) == 5


async def test_scram_credentials_need_describe_and_alter_on_the_cluster(acl_broker):
    described = await call(acl_broker, ALICE, ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, users=None)
    assert (described.error_code, described.error_message) == (DENIED_CLUSTER, "Cluster authorization failed.")
    upsertion = {"name": "carol", "mechanism": 1, "iterations": 4096, "salt": b"salt", "salted_password": b"p" * 32}
    altered = await call(acl_broker, ALICE, ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, deletions=[
        {"name": "zed", "mechanism": 1}], upsertions=[upsertion])
    assert [(r.user, r.error_code) for r in altered.results] == [("carol", DENIED_CLUSTER), ("zed", DENIED_CLUSTER)]
    every = await call(acl_broker, ADMIN, ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, users=None)
    assert every.error_code == ErrorCode.NONE and every.results == []


async def test_api_versions_is_never_checked(acl_broker):
    response = await call(acl_broker, "User:nobody", ApiKey.API_VERSIONS, 3, client_software_name="t",
                          client_software_version="1")
    assert response.error_code == ErrorCode.NONE and response.api_keys


async def test_the_host_of_an_acl_is_the_clients_address(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.READ, host="10.0.0.1"))
    assert fetch_codes(await call(acl_broker, ALICE, ApiKey.FETCH, 12, host="10.0.0.1",
                                  **fetch_fields("payments"))) == {"payments": ErrorCode.NONE}
    assert fetch_codes(await call(acl_broker, ALICE, ApiKey.FETCH, 12, host="10.0.0.2",
                                  **fetch_fields("payments"))) == {"payments": DENIED_TOPIC}


async def test_an_anonymous_client_over_a_socket_gets_what_its_acls_allow(acl_broker):
    await grant(acl_broker, topic_acl("payments", Op.WRITE, principal=ANONYMOUS),
                topic_acl("payments", Op.READ, principal="User:*", host="127.0.0.1"))
    client = await WireClient.connect(acl_broker.port)
    try:
        produced = await client.request(ApiKey.PRODUCE, 9, produce_fields("payments", "orders"))
        assert produce_codes(produced) == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC}
        fetched = await client.request(ApiKey.FETCH, 12, fetch_fields("payments", "orders"))
        assert fetch_codes(fetched) == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC}
        assert len(fetched.responses[0].partitions[0].records) > 0
    finally:
        await client.aclose()
    assert log_end(acl_broker, "orders") == 0


async def test_super_users_and_allow_everyone_come_from_the_broker_config(tmp_path, nursery):
    config = BrokerConfig(port=0, data_dir=tmp_path / "data", authorizer_class_name=AUTHORIZER_CLASS_NAMES[0],
                          super_users=(ADMIN,), allow_everyone_if_no_acl_found=True)
    async with Broker(config) as broker:
        await broker.topics.create("payments", 1, 1, [], {})
        await broker.topics.create("orders", 1, 1, [], {})
        await grant(broker, topic_acl("orders", Op.ALL, DENY, principal="User:*"))
        assert produce_codes(await call(broker, ALICE, ApiKey.PRODUCE, 9, **produce_fields("payments", "orders"))) \
            == {"payments": ErrorCode.NONE, "orders": DENIED_TOPIC}
        assert produce_codes(await call(broker, ADMIN, ApiKey.PRODUCE, 9, **produce_fields("orders"))) == {
            "orders": ErrorCode.NONE}


async def test_without_an_authorizer_every_client_keeps_every_right(tmp_path, nursery):
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path / "data")) as broker:
        await broker.topics.create("payments", 1, 1, [], {})
        response = await call(broker, ALICE, ApiKey.METADATA, 10, allow_auto_topic_creation=False,
                              include_cluster_authorized_operations=True, include_topic_authorized_operations=True,
                              topics=[{"name": "payments"}])
        assert (response.topics[0].topic_authorized_operations, response.cluster_authorized_operations) == (
            TOPIC, CLUSTER)
        assert produce_codes(await call(broker, ALICE, ApiKey.PRODUCE, 9, **produce_fields("payments"))) == {
            "payments": ErrorCode.NONE}
