"""ACLs change what each SASL principal may do, API by API, with real clients: confluent-kafka
(librdkafka) and kafka-python, authenticated as admin (a super user), alice and bob over one
SASL_PLAINTEXT listener with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, against the broker process
run with Kafka's standard authorizer and no allow-everyone fallback.

Before any ACL alice may do nothing, and each refused request leaves the broker as it was (checked
as admin: the topic absent or still there, the log end offset, the configs, the group's offsets,
the ACLs). Admin then grants rights with either client's create_acls (WRITE, READ on a topic and a
prefixed group, CREATE on a prefixed topic pattern, DESCRIBE_CONFIGS, ALTER_CONFIGS, DESCRIBE; a
DENY beside a User:* ALLOW), both clients' describe_acls report exactly what was created, alice
may then do just that, and after delete_acls she is refused again. The ACLs outlive restarts.

Client quirks the tests account for: librdkafka drops DescribeAcls' error (an unauthorized
principal sees no ACLs), and kafka-python's describe_configs drops each resource's error (an
unauthorized principal sees no configs)."""

from __future__ import annotations

import time
import uuid
from typing import Iterator, NamedTuple

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, OffsetSpec,
                                   ResourcePatternType, ResourceType)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern,
                         ResourcePatternFilter)
from kafka.admin import ConfigResource as KafkaPythonConfigResource
from kafka.admin import NewTopic as KafkaPythonNewTopic
from kafka.admin import ResourceType as KafkaPythonResourceType
from kafka.errors import (ClusterAuthorizationFailedError, GroupAuthorizationFailedError, NoError,
                          TopicAuthorizationFailedError)
from kafka.errors import KafkaError as KafkaPythonError

from interop.admin_clients import kafka_error
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
USERS = ("admin", "alice", "bob")
LISTENER = "SASL"
DEFAULT_RETENTION_MS = "604800000"
EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
EVERY_KAFKA_PYTHON_ACL = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, ResourcePatternFilter(
    KafkaPythonResourceType.ANY, None, ACLResourcePatternType.ANY))
TOPIC_DENIED = "TOPIC_AUTHORIZATION_FAILED"
GROUP_DENIED = "GROUP_AUTHORIZATION_FAILED"
CLUSTER_DENIED = "CLUSTER_AUTHORIZATION_FAILED"


def broker_args(listeners: str) -> list[str]:
    return ["--listeners", listeners, "--override", f"listener.security.protocol.map={LISTENER}:SASL_PLAINTEXT",
            "--override", "comlog.sasl.users=" + ",".join(f"{user}:{user}-secret" for user in USERS),
            "--authorizer-class-name", STANDARD_AUTHORIZER, "--super-users", "User:admin"]


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    with BrokerProcess(tmp_path_factory.mktemp("acl-principals") / "data", *broker_args(f"{LISTENER}://127.0.0.1:0"),
                       port=None) as process:
        yield process


class Login(NamedTuple):
    user: str
    mechanism: str

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    def confluent(self, broker: BrokerProcess) -> dict:
        return {"bootstrap.servers": broker.address(LISTENER), "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": self.mechanism, "sasl.username": self.user, "sasl.password": f"{self.user}-secret",
                "socket.timeout.ms": TIMEOUT_MS}

    def kafka_python(self, broker: BrokerProcess) -> dict:
        return {"bootstrap_servers": broker.address(LISTENER), "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": self.mechanism, "sasl_plain_username": self.user,
                "sasl_plain_password": f"{self.user}-secret", "request_timeout_ms": TIMEOUT_MS}


ADMIN = Login("admin", "SCRAM-SHA-512")
ALICE_PLAIN = Login("alice", "PLAIN")
ALICE_SCRAM = Login("alice", "SCRAM-SHA-256")
BOB = Login("bob", "SCRAM-SHA-512")


class Acl(NamedTuple):
    """One ACL binding, in the names both clients share (host *), made into either client's own."""

    resource_type: str
    name: str
    pattern: str
    principal: str
    operation: str
    permission: str = "ALLOW"

    def _confluent_fields(self) -> tuple:
        return (ResourceType[self.resource_type], self.name, ResourcePatternType[self.pattern], self.principal, "*",
                AclOperation[self.operation], AclPermissionType[self.permission])

    def confluent(self) -> AclBinding:
        return AclBinding(*self._confluent_fields())

    def confluent_filter(self) -> AclBindingFilter:
        """The filter matching this binding only."""
        return AclBindingFilter(*self._confluent_fields())

    def kafka_python(self) -> ACL:
        return ACL(self.principal, "*", ACLOperation[self.operation], ACLPermissionType[self.permission],
                   ResourcePattern(KafkaPythonResourceType[self.resource_type], self.name,
                                   ACLResourcePatternType[self.pattern]))

    def kafka_python_filter(self) -> ACLFilter:
        """The filter matching this binding only."""
        return ACLFilter(self.principal, "*", ACLOperation[self.operation], ACLPermissionType[self.permission],
                         ResourcePatternFilter(KafkaPythonResourceType[self.resource_type], self.name,
                                               ACLResourcePatternType[self.pattern]))

    @classmethod
    def of_confluent(cls, binding: AclBinding) -> Acl:
        assert binding.host == "*"
        return cls(binding.restype.name, binding.name, binding.resource_pattern_type.name, binding.principal,
                   binding.operation.name, binding.permission_type.name)

    @classmethod
    def of_kafka_python(cls, acl: ACL) -> Acl:
        assert acl.host == "*"
        pattern = acl.resource_pattern
        return cls(pattern.resource_type.name, pattern.resource_name, pattern.pattern_type.name, acl.principal,
                   acl.operation.name, acl.permission_type.name)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def confluent_admin(broker: BrokerProcess, login: Login = ADMIN) -> AdminClient:
    """Keep it referenced until its futures are done: librdkafka fails them once it is collected."""
    return AdminClient(login.confluent(broker))


def kafka_python_admin(broker: BrokerProcess, login: Login) -> KafkaAdminClient:
    return KafkaAdminClient(**login.kafka_python(broker), bootstrap_timeout_ms=TIMEOUT_MS)


@pytest.fixture
def alice_admin(acl_broker) -> Iterator[KafkaAdminClient]:
    """alice's kafka-python admin client (SCRAM-SHA-256)."""
    admin = kafka_python_admin(acl_broker, ALICE_SCRAM)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(autouse=True)
def no_acls_left(acl_broker):
    """Each test starts without ACLs and leaves none (so Metadata's answers are exact), and the
    broker logged no problem meanwhile."""
    yield
    admin = confluent_admin(acl_broker)
    admin.delete_acls([EVERY_ACL], request_timeout=TIMEOUT_SECONDS)[EVERY_ACL].result(TIMEOUT_SECONDS)
    assert described_acls(acl_broker) == set()
    assert_broker_healthy(acl_broker)


# --- what admin does and sees ---

def create_topics(broker: BrokerProcess, *names: str) -> None:
    admin = confluent_admin(broker)
    futures = admin.create_topics([NewTopic(name, 1, 1) for name in names], request_timeout=TIMEOUT_SECONDS)
    assert [future.result(TIMEOUT_SECONDS) for future in futures.values()] == [None] * len(names)


def topic_names(broker: BrokerProcess) -> set[str]:
    return set(confluent_admin(broker).list_topics(timeout=TIMEOUT_SECONDS).topics)


def log_end_offset(broker: BrokerProcess, topic: str) -> int:
    partition = TopicPartition(topic, 0)
    admin = confluent_admin(broker)
    futures = admin.list_offsets({partition: OffsetSpec.latest()}, request_timeout=TIMEOUT_SECONDS)
    return futures[partition].result(TIMEOUT_SECONDS).offset


def committed_offsets(broker: BrokerProcess, group: str) -> dict[tuple[str, int], int]:
    admin = confluent_admin(broker)
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_SECONDS)
    return {(p.topic, p.partition): p.offset for p in futures[group].result(TIMEOUT_SECONDS).topic_partitions}


def group_ids(broker: BrokerProcess) -> set[str]:
    admin = confluent_admin(broker)
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS)
    return {group.group_id for group in listed.valid}


def retention_ms(broker: BrokerProcess, topic: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = confluent_admin(broker)
    (future,) = admin.describe_configs([resource], request_timeout=TIMEOUT_SECONDS).values()
    return future.result(TIMEOUT_SECONDS)["retention.ms"].value


def create_acls(broker: BrokerProcess, client: str, *acls: Acl) -> None:
    """Create `acls` as admin with `client`'s admin client ("confluent" or "kafka-python")."""
    if client == "confluent":
        admin = confluent_admin(broker)
        futures = admin.create_acls([acl.confluent() for acl in acls], request_timeout=TIMEOUT_SECONDS)
        assert [future.result(TIMEOUT_SECONDS) for future in futures.values()] == [None] * len(acls)
    else:
        admin = kafka_python_admin(broker, ADMIN)
        try:
            created = admin.create_acls([acl.kafka_python() for acl in acls])
        finally:
            admin.close()
        assert (len(created["succeeded"]), created["failed"]) == (len(acls), [])


def delete_acls(broker: BrokerProcess, client: str, *acls: Acl) -> None:
    """Delete `acls` as admin with `client`'s admin client, each by a filter matching only it."""
    if client == "confluent":
        filters = [acl.confluent_filter() for acl in acls]
        admin = confluent_admin(broker)
        futures = admin.delete_acls(filters, request_timeout=TIMEOUT_SECONDS)
        deleted = [[Acl.of_confluent(binding) for binding in futures[f].result(TIMEOUT_SECONDS)] for f in filters]
    else:
        admin = kafka_python_admin(broker, ADMIN)
        try:
            results = admin.delete_acls([acl.kafka_python_filter() for acl in acls])
        finally:
            admin.close()
        assert [error for _, _, error in results] == [NoError] * len(acls)
        deleted = [[Acl.of_kafka_python(acl) for acl in matched] for _, matched, _ in results]
    assert deleted == [[acl] for acl in acls]


def described_acls(broker: BrokerProcess) -> set[Acl]:
    """Every ACL as admin describes them, after checking that both admin clients report the same."""
    admin = confluent_admin(broker)
    confluent = admin.describe_acls(EVERY_ACL, request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS)
    admin = kafka_python_admin(broker, ADMIN)
    try:
        kafka_python, error = admin.describe_acls(EVERY_KAFKA_PYTHON_ACL)
    finally:
        admin.close()
    assert error is NoError
    from_confluent = {Acl.of_confluent(binding) for binding in confluent}
    assert len(from_confluent) == len(confluent)
    assert {Acl.of_kafka_python(acl) for acl in kafka_python} == from_confluent
    return from_confluent


# --- what alice and bob do ---

def confluent_produce(broker: BrokerProcess, login: Login, topic: str) -> str | None:
    """The name of the error the delivery report of one record gives, None when it is written.
    librdkafka treats TOPIC_AUTHORIZATION_FAILED as permanent: it is reported at once."""
    producer = Producer({**login.confluent(broker), "message.timeout.ms": TIMEOUT_MS})
    reports: list[KafkaError | None] = []
    producer.produce(topic, b"value", on_delivery=lambda error, message: reports.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0
    [error] = reports
    return error and error.name()


def kafka_python_produce(broker: BrokerProcess, login: Login, topic: str, **config) -> int:
    """The offset one record is written at; raises what refuses it. The producer is idempotent
    unless `config` says otherwise (kafka-python's default)."""
    producer = KafkaProducer(**login.kafka_python(broker), max_block_ms=TIMEOUT_MS, **config)
    try:
        return producer.send(topic, b"value").get(TIMEOUT_SECONDS).offset
    finally:
        producer.close(timeout=TIMEOUT_SECONDS)


def confluent_consume(broker: BrokerProcess, login: Login, topic: str, group: str, count: int) -> list[bytes] | str:
    """The values of the first `count` records a consumer of `group` reads from `topic`, their
    offsets then committed; or the name of the first error its poll reports."""
    consumer = Consumer({**login.confluent(broker), "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        values: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(values) < count:
            assert time.monotonic() < deadline, f"read {len(values)} of {count} records in time"
            message = consumer.poll(0.2)
            if message is not None:
                if message.error() is not None:
                    return message.error().name()
                values.append(message.value())
        consumer.commit(asynchronous=False)
        return values
    finally:
        consumer.close()


def kafka_python_consume(broker: BrokerProcess, login: Login, topic: str, group: str, count: int) -> list[bytes]:
    """As confluent_consume with kafka-python, whose poll raises the error refusing it."""
    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                             bootstrap_timeout_ms=TIMEOUT_MS, **login.kafka_python(broker))
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(values) < count:
            assert time.monotonic() < deadline, f"read {len(values)} of {count} records in time"
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(record.value for record in records)
        consumer.commit()
        return values
    finally:
        consumer.close()


def confluent_errors(futures: dict) -> list[str | None]:
    """The name of the error each of a confluent admin call's futures fails with, None for a success."""
    return [None if future.exception(TIMEOUT_SECONDS) is None else kafka_error(future) for future in futures.values()]


# --- before any ACL ---

def test_without_acls_alice_cannot_produce_and_the_log_is_unchanged(acl_broker):
    topic = unique("produce")
    create_topics(acl_broker, topic)
    assert kafka_python_produce(acl_broker, ADMIN, topic) == 0
    assert confluent_produce(acl_broker, ALICE_SCRAM, topic) == TOPIC_DENIED
    with pytest.raises(TopicAuthorizationFailedError):
        kafka_python_produce(acl_broker, ALICE_PLAIN, topic)
    assert log_end_offset(acl_broker, topic) == 1


def test_without_acls_alice_cannot_consume_in_a_group_and_commits_nothing(acl_broker):
    topic, group = unique("consume"), unique("group")
    create_topics(acl_broker, topic)
    assert kafka_python_produce(acl_broker, ADMIN, topic) == 0
    # The group is checked first (FindCoordinator: DESCRIBE on it), the topic only after.
    assert confluent_consume(acl_broker, ALICE_PLAIN, topic, group, 1) == GROUP_DENIED
    with pytest.raises(GroupAuthorizationFailedError):
        kafka_python_consume(acl_broker, ALICE_SCRAM, topic, group, 1)
    assert committed_offsets(acl_broker, group) == {}
    assert group not in group_ids(acl_broker)


def test_without_acls_alice_cannot_create_or_delete_topics(acl_broker, alice_admin):
    kept, wanted, absent = unique("kept"), unique("wanted"), unique("absent")
    create_topics(acl_broker, kept)
    assert kafka_python_produce(acl_broker, ADMIN, kept) == 0
    alice = confluent_admin(acl_broker, ALICE_PLAIN)

    assert confluent_errors(alice.create_topics([NewTopic(wanted, 1, 1)], request_timeout=TIMEOUT_SECONDS)) \
        == [TOPIC_DENIED]
    with pytest.raises(TopicAuthorizationFailedError):
        alice_admin.create_topics([KafkaPythonNewTopic(wanted, 1, 1)])
    # Nor does her producer auto-create it (Metadata: she may not describe it).
    with pytest.raises(TopicAuthorizationFailedError):
        kafka_python_produce(acl_broker, ALICE_PLAIN, wanted)
    # DELETE is checked before the topic is looked for: an absent topic is not told from one she
    # may not delete.
    assert confluent_errors(alice.delete_topics([kept, absent], request_timeout=TIMEOUT_SECONDS)) \
        == [TOPIC_DENIED, TOPIC_DENIED]
    with pytest.raises(TopicAuthorizationFailedError):
        alice_admin.delete_topics([kept])

    names = topic_names(acl_broker)
    assert kept in names and not {wanted, absent} & names
    assert log_end_offset(acl_broker, kept) == 1


def test_without_acls_alice_cannot_describe_or_alter_configs(acl_broker, alice_admin):
    topic = unique("configs")
    create_topics(acl_broker, topic)
    alice = confluent_admin(acl_broker, ALICE_SCRAM)
    node = str(next(iter(alice.list_topics(timeout=TIMEOUT_SECONDS).brokers)))
    topic_resource = ConfigResource(ResourceType.TOPIC, topic)
    broker_resource = ConfigResource(ResourceType.BROKER, node)

    assert confluent_errors(alice.describe_configs([topic_resource], request_timeout=TIMEOUT_SECONDS)) \
        == [TOPIC_DENIED]
    assert confluent_errors(alice.describe_configs([broker_resource], request_timeout=TIMEOUT_SECONDS)) \
        == [CLUSTER_DENIED]
    setting = [ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)]
    assert confluent_errors(alice.incremental_alter_configs(
        [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=setting)], request_timeout=TIMEOUT_SECONDS)) \
        == [TOPIC_DENIED]
    assert confluent_errors(alice.incremental_alter_configs(
        [ConfigResource(ResourceType.BROKER, node, incremental_configs=[
            ConfigEntry("log.cleaner.threads", "2", incremental_operation=AlterConfigOpType.SET)])],
        request_timeout=TIMEOUT_SECONDS)) == [CLUSTER_DENIED]
    # kafka-python drops DescribeConfigs' per-resource error: she is shown no configs.
    assert alice_admin.describe_configs([KafkaPythonConfigResource("TOPIC", topic)], config_filter="all") \
        == {"topic": {topic: {}}}
    altered = alice_admin.alter_configs([KafkaPythonConfigResource("TOPIC", topic, {"retention.ms": "1000"})],
                                        raise_on_unknown=False)
    assert altered["topic"][topic].startswith("[Error 29] TopicAuthorizationFailedError")

    assert retention_ms(acl_broker, topic) == DEFAULT_RETENTION_MS


def test_without_acls_alice_cannot_list_create_or_delete_acls(acl_broker, alice_admin):
    bobs = Acl("TOPIC", unique("bobs"), "LITERAL", BOB.principal, "READ")
    create_acls(acl_broker, "confluent", bobs)
    alice = confluent_admin(acl_broker, ALICE_PLAIN)
    hers = Acl("TOPIC", "*", "LITERAL", ALICE_PLAIN.principal, "ALL")

    # librdkafka drops DescribeAcls' error: she is shown no ACLs. kafka-python raises it.
    assert alice.describe_acls(EVERY_ACL, request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS) == []
    with pytest.raises(ClusterAuthorizationFailedError):
        alice_admin.describe_acls(EVERY_KAFKA_PYTHON_ACL)
    assert confluent_errors(alice.create_acls([hers.confluent()], request_timeout=TIMEOUT_SECONDS)) == [CLUSTER_DENIED]
    assert alice_admin.create_acls([hers.kafka_python()]) == {"succeeded": [],
                                                              "failed": [ClusterAuthorizationFailedError]}
    assert confluent_errors(alice.delete_acls([EVERY_ACL], request_timeout=TIMEOUT_SECONDS)) == [CLUSTER_DENIED]
    [(_, deleted, error)] = alice_admin.delete_acls([bobs.kafka_python_filter()])
    assert (deleted, error) == ([], ClusterAuthorizationFailedError)

    assert described_acls(acl_broker) == {bobs}


# --- ACLs created, then deleted ---

@pytest.mark.parametrize(("creating", "deleting"), [("confluent", "kafka-python"), ("kafka-python", "confluent")])
def test_write_lets_alice_produce_until_it_is_deleted(acl_broker, creating, deleting):
    topic = unique("write")
    create_topics(acl_broker, topic)
    write = Acl("TOPIC", topic, "LITERAL", ALICE_PLAIN.principal, "WRITE")
    create_acls(acl_broker, creating, write)
    assert described_acls(acl_broker) == {write}

    assert confluent_produce(acl_broker, ALICE_SCRAM, topic) is None
    assert kafka_python_produce(acl_broker, ALICE_PLAIN, topic) == 1
    # Bob, whom no ACL names, is still refused.
    assert confluent_produce(acl_broker, BOB, topic) == TOPIC_DENIED

    delete_acls(acl_broker, deleting, write)
    assert confluent_produce(acl_broker, ALICE_SCRAM, topic) == TOPIC_DENIED
    with pytest.raises(TopicAuthorizationFailedError):
        kafka_python_produce(acl_broker, ALICE_PLAIN, topic)
    assert log_end_offset(acl_broker, topic) == 2


def test_read_on_a_topic_and_a_prefixed_group_lets_alice_consume_and_commit(acl_broker):
    topic, groups = unique("read"), unique("readers")
    create_topics(acl_broker, topic)
    assert [kafka_python_produce(acl_broker, ADMIN, topic) for _ in range(3)] == [0, 1, 2]
    read_topic = Acl("TOPIC", topic, "LITERAL", ALICE_PLAIN.principal, "READ")
    read_groups = Acl("GROUP", f"{groups}-", "PREFIXED", ALICE_PLAIN.principal, "READ")
    create_acls(acl_broker, "kafka-python", read_topic, read_groups)
    assert described_acls(acl_broker) == {read_topic, read_groups}

    assert confluent_consume(acl_broker, ALICE_PLAIN, topic, f"{groups}-1", 3) == [b"value"] * 3
    assert kafka_python_consume(acl_broker, ALICE_SCRAM, topic, f"{groups}-2", 3) == [b"value"] * 3
    assert committed_offsets(acl_broker, f"{groups}-1") == committed_offsets(acl_broker, f"{groups}-2") \
        == {(topic, 0): 3}
    # A group outside the prefix is still refused, and READ is not WRITE.
    assert confluent_consume(acl_broker, ALICE_PLAIN, topic, f"other-{groups}", 1) == GROUP_DENIED
    assert confluent_produce(acl_broker, ALICE_PLAIN, topic) == TOPIC_DENIED

    delete_acls(acl_broker, "confluent", read_topic)
    # Her group may still be joined, but the topic may no longer be read: the group's offsets stay.
    assert confluent_consume(acl_broker, ALICE_PLAIN, topic, f"{groups}-3", 1) == TOPIC_DENIED
    delete_acls(acl_broker, "kafka-python", read_groups)
    with pytest.raises(GroupAuthorizationFailedError):
        kafka_python_consume(acl_broker, ALICE_SCRAM, topic, f"{groups}-1", 1)
    assert committed_offsets(acl_broker, f"{groups}-1") == {(topic, 0): 3}
    assert committed_offsets(acl_broker, f"{groups}-3") == {}
    assert log_end_offset(acl_broker, topic) == 3


def test_a_deny_for_bob_wins_over_an_allow_for_every_user(acl_broker):
    topic = unique("deny")
    create_topics(acl_broker, topic)
    everyone = Acl("TOPIC", topic, "LITERAL", "User:*", "WRITE")
    not_bob = Acl("TOPIC", topic, "LITERAL", BOB.principal, "WRITE", "DENY")
    create_acls(acl_broker, "confluent", everyone)
    create_acls(acl_broker, "kafka-python", not_bob)
    assert described_acls(acl_broker) == {everyone, not_bob}

    assert confluent_produce(acl_broker, ALICE_SCRAM, topic) is None
    assert kafka_python_produce(acl_broker, ALICE_PLAIN, topic) == 1
    assert confluent_produce(acl_broker, BOB, topic) == TOPIC_DENIED
    with pytest.raises(TopicAuthorizationFailedError):
        kafka_python_produce(acl_broker, Login("bob", "PLAIN"), topic, enable_idempotence=False)
    # An idempotent producer needs WRITE on some topic (or IDEMPOTENT_WRITE on the cluster) for
    # InitProducerId: his one WRITE is denied, so Kafka refuses the cluster action.
    with pytest.raises(KafkaPythonError, match="InitProducerIdResponse: .* ClusterAuthorizationFailedError"):
        kafka_python_produce(acl_broker, BOB, topic)
    assert log_end_offset(acl_broker, topic) == 2

    delete_acls(acl_broker, "confluent", not_bob)
    assert kafka_python_produce(acl_broker, BOB, topic) == 2


def test_create_on_a_prefixed_pattern_lets_alice_create_only_topics_with_the_prefix(acl_broker, alice_admin):
    prefix = unique("mine") + "-"
    outside = unique("theirs")
    create = Acl("TOPIC", prefix, "PREFIXED", ALICE_PLAIN.principal, "CREATE")
    create_acls(acl_broker, "kafka-python", create)
    assert described_acls(acl_broker) == {create}
    alice = confluent_admin(acl_broker, ALICE_PLAIN)

    assert confluent_errors(alice.create_topics([NewTopic(f"{prefix}a", 1, 1), NewTopic(outside, 1, 1)],
                                                request_timeout=TIMEOUT_SECONDS)) == [None, TOPIC_DENIED]
    alice_admin.create_topics([KafkaPythonNewTopic(f"{prefix}b", 2, 1)])
    with pytest.raises(TopicAuthorizationFailedError):
        alice_admin.create_topics([KafkaPythonNewTopic(f"{outside}-b", 1, 1)])
    # CREATE does not let her delete what she created.
    assert confluent_errors(alice.delete_topics([f"{prefix}a"], request_timeout=TIMEOUT_SECONDS)) == [TOPIC_DENIED]

    delete_acls(acl_broker, "confluent", create)
    assert confluent_errors(alice.create_topics([NewTopic(f"{prefix}c", 1, 1)], request_timeout=TIMEOUT_SECONDS)) \
        == [TOPIC_DENIED]
    names = topic_names(acl_broker)
    assert {f"{prefix}a", f"{prefix}b"} <= names
    assert not {outside, f"{outside}-b", f"{prefix}c"} & names


def test_describe_configs_then_alter_configs_let_alice_read_then_change_a_topics_configs(acl_broker, alice_admin):
    topic = unique("configs")
    create_topics(acl_broker, topic)
    alice = confluent_admin(acl_broker, ALICE_SCRAM)
    resource = ConfigResource(ResourceType.TOPIC, topic)

    def alice_sets(value: str) -> list[str | None]:
        entry = ConfigEntry("retention.ms", value, incremental_operation=AlterConfigOpType.SET)
        return confluent_errors(alice.incremental_alter_configs(
            [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])], request_timeout=TIMEOUT_SECONDS))

    describe = Acl("TOPIC", topic, "LITERAL", ALICE_SCRAM.principal, "DESCRIBE_CONFIGS")
    create_acls(acl_broker, "confluent", describe)
    (future,) = alice.describe_configs([resource], request_timeout=TIMEOUT_SECONDS).values()
    assert future.result(TIMEOUT_SECONDS)["retention.ms"].value == DEFAULT_RETENTION_MS
    described = alice_admin.describe_configs([KafkaPythonConfigResource("TOPIC", topic)], config_filter="all")
    assert described["topic"][topic]["retention.ms"]["value"] == DEFAULT_RETENTION_MS
    assert alice_sets("1000") == [TOPIC_DENIED]
    assert retention_ms(acl_broker, topic) == DEFAULT_RETENTION_MS

    alter = Acl("TOPIC", topic, "LITERAL", ALICE_SCRAM.principal, "ALTER_CONFIGS")
    create_acls(acl_broker, "kafka-python", alter)
    assert described_acls(acl_broker) == {describe, alter}
    assert alice_sets("1000") == [None]
    assert retention_ms(acl_broker, topic) == "1000"
    assert alice_admin.alter_configs([KafkaPythonConfigResource("TOPIC", topic, {"retention.ms": "2000"})]) \
        == {"topic": {topic: "OK"}}
    assert retention_ms(acl_broker, topic) == "2000"

    delete_acls(acl_broker, "kafka-python", describe, alter)
    assert confluent_errors(alice.describe_configs([resource], request_timeout=TIMEOUT_SECONDS)) == [TOPIC_DENIED]
    assert alice_sets("3000") == [TOPIC_DENIED]
    assert retention_ms(acl_broker, topic) == "2000"


def test_metadata_lists_exactly_the_topics_alice_may_describe(acl_broker, alice_admin):
    prefix = unique("listed") + "-"
    by_prefix, read, hidden = f"{prefix}a", unique("read"), unique("hidden")
    create_topics(acl_broker, by_prefix, f"{prefix}b", read, hidden)
    alice = confluent_admin(acl_broker, ALICE_PLAIN)

    def listed() -> set[str]:
        names = set(alice.list_topics(timeout=TIMEOUT_SECONDS).topics)
        assert set(alice_admin.list_topics()) == names
        return names

    assert listed() == set()
    # A topic she names but may not describe is refused, whether or not it exists, and not created.
    absent = unique("absent")
    for name in (hidden, absent):
        error = alice.list_topics(topic=name, timeout=TIMEOUT_SECONDS).topics[name].error
        assert error is not None and error.name() == TOPIC_DENIED
    assert absent not in topic_names(acl_broker)

    describe = Acl("TOPIC", prefix, "PREFIXED", ALICE_PLAIN.principal, "DESCRIBE")
    read_it = Acl("TOPIC", read, "LITERAL", ALICE_PLAIN.principal, "READ")  # READ implies DESCRIBE
    create_acls(acl_broker, "confluent", describe)
    create_acls(acl_broker, "kafka-python", read_it)
    assert listed() == {by_prefix, f"{prefix}b", read}

    delete_acls(acl_broker, "kafka-python", describe)
    assert listed() == {read}
    delete_acls(acl_broker, "confluent", read_it)
    assert listed() == set()


# librdkafka names UNKNOWN_TOPIC_OR_PARTITION UNKNOWN_TOPIC_OR_PART.
def test_an_absent_topic_alice_may_describe_but_not_delete_is_unknown(acl_broker):
    prefix = unique("described") + "-"
    create_acls(acl_broker, "confluent", Acl("TOPIC", prefix, "PREFIXED", ALICE_PLAIN.principal, "DESCRIBE"))
    create_topics(acl_broker, f"{prefix}kept")
    alice = confluent_admin(acl_broker, ALICE_PLAIN)
    futures = alice.delete_topics([f"{prefix}kept", f"{prefix}absent"], request_timeout=TIMEOUT_SECONDS)
    assert confluent_errors(futures) == [TOPIC_DENIED, "UNKNOWN_TOPIC_OR_PART"]


# --- durability ---

def test_acls_and_their_deletion_survive_restarts(acl_broker):
    topic = unique("durable")
    create_topics(acl_broker, topic)
    write = Acl("TOPIC", topic, "LITERAL", ALICE_PLAIN.principal, "WRITE")
    read_groups = Acl("GROUP", unique("durable-groups"), "PREFIXED", ALICE_PLAIN.principal, "READ")
    create_acls(acl_broker, "confluent", write)
    create_acls(acl_broker, "kafka-python", read_groups)

    # The same listener port again, so that a producer made before the restart reconnects.
    pinned = broker_args(f"{LISTENER}://127.0.0.1:{acl_broker.ports[LISTENER]}")
    producer = Producer({**ALICE_SCRAM.confluent(acl_broker), "message.timeout.ms": TIMEOUT_MS})
    reports: list[KafkaError | None] = []
    assert acl_broker.stop() == 0
    try:
        with BrokerProcess(acl_broker.data_dir, *pinned, port=None) as restarted:
            assert described_acls(restarted) == {write, read_groups}
            producer.produce(topic, b"value", on_delivery=lambda error, message: reports.append(error))
            assert producer.flush(TIMEOUT_SECONDS) == 0
            assert reports == [None]
            assert kafka_python_produce(restarted, ALICE_PLAIN, topic) == 1

            delete_acls(restarted, "kafka-python", write)
            assert restarted.stop() == 0
            restarted.start()
            assert described_acls(restarted) == {read_groups}
            assert confluent_produce(restarted, ALICE_SCRAM, topic) == TOPIC_DENIED
            assert log_end_offset(restarted, topic) == 2
            assert_broker_healthy(restarted)
            assert restarted.stop() == 0
    finally:
        acl_broker.start()
    assert described_acls(acl_broker) == {read_groups}
