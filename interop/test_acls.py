"""ACL administration through confluent-kafka's AdminClient (librdkafka) and kafka-python's
KafkaAdminClient against the real broker process run with Kafka's standard authorizer: ACLs
created, described with each kind of filter, kept across restarts and deleted several at once by
one filter; the bindings Kafka refuses, with its codes and messages; SECURITY_DISABLED without an
authorizer; a damaged ACL file stopping the start with a clear message; and the ACLs enforced, a
client's rights changing as an admin client creates and deletes them.

The clients here are anonymous (plaintext, User:ANONYMOUS): the administering broker makes that
principal a super user, as an operator's admin principal would be."""

from __future__ import annotations

import subprocess
import sys

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, NewTopic,
                                   ResourcePatternType, ResourceType)
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ResourcePattern, ResourcePatternFilter)
from kafka.admin import ResourceType as KafkaPythonResourceType
from kafka.errors import InvalidRequestError, NoError, SecurityDisabledError

from interop.admin_clients import confluent_admin, kafka_error, kafka_error_message, kafka_python_admin
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS, assert_broker_healthy

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# What the broker logs at each start with an authorizer.
LOADED = "authorizer: "
ANONYMOUS = "User:ANONYMOUS"
LITERAL, PREFIXED, MATCH = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED, ResourcePatternType.MATCH
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)


@pytest.fixture
def acl_broker(tmp_path):
    with BrokerProcess(tmp_path / "data", "--authorizer-class-name", STANDARD_AUTHORIZER,
                       "--super-users", ANONYMOUS) as process:
        yield process


def assert_healthy(broker: BrokerProcess, starts: int) -> None:
    """Healthy, with the authorizer's ACLs loaded once at each start."""
    assert_broker_healthy(broker)
    assert broker.log_text().count(LOADED) == starts


def restarted(broker: BrokerProcess):
    assert broker.stop() == 0
    broker.start()
    return confluent_admin(broker)


def create(admin, bindings: list[AclBinding]) -> dict:
    """Each binding's outcome: None, or the name and message of the Kafka error refusing it."""
    futures = admin.create_acls(bindings, request_timeout=TIMEOUT_SECONDS)
    return {binding: None if future.exception(TIMEOUT_SECONDS) is None
            else (kafka_error(future), kafka_error_message(future)) for binding, future in futures.items()}


def describe(admin, acl_filter: AclBindingFilter = EVERY_ACL) -> list[AclBinding]:
    return sorted(admin.describe_acls(acl_filter, request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS))


def delete(admin, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
    futures = admin.delete_acls(filters, request_timeout=TIMEOUT_SECONDS)
    return [sorted(futures[acl_filter].result(TIMEOUT_SECONDS)) for acl_filter in filters]


def test_confluent_acls_kept_across_restarts_and_deleted_several_by_one_filter(acl_broker):
    admin = confluent_admin(acl_broker)
    applying = [  # the ACLs that apply to the topic payments.received
        AclBinding(ResourceType.TOPIC, "payments.received", LITERAL, "User:alice", "*", AclOperation.READ, ALLOW),
        AclBinding(ResourceType.TOPIC, "payments.", PREFIXED, "User:bob", "*", AclOperation.WRITE, ALLOW),
        AclBinding(ResourceType.TOPIC, "*", LITERAL, "User:*", "10.0.0.1", AclOperation.DESCRIBE, DENY),
    ]
    others = [
        AclBinding(ResourceType.TOPIC, "payments.sent", LITERAL, "User:alice", "*", AclOperation.READ, ALLOW),
        AclBinding(ResourceType.GROUP, "payments.received", LITERAL, "User:alice", "*", AclOperation.READ, ALLOW),
        AclBinding(ResourceType.BROKER, "kafka-cluster", LITERAL, "User:admin", "*", AclOperation.ALTER, ALLOW),
    ]
    assert create(admin, applying + others) == dict.fromkeys(applying + others)
    # Already there: a success that adds nothing.
    assert create(admin, applying[:1]) == dict.fromkeys(applying[:1])
    match = AclBindingFilter(ResourceType.TOPIC, "payments.received", MATCH, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    assert describe(admin, match) == sorted(applying)
    literal_writes = AclBindingFilter(ResourceType.ANY, None, LITERAL, None, None, AclOperation.ANY, ALLOW)
    assert describe(admin, literal_writes) == sorted([applying[0], *others])

    admin = restarted(acl_broker)
    assert describe(admin) == sorted(applying + others)
    assert delete(admin, [match]) == [sorted(applying)]
    assert describe(admin) == sorted(others)
    assert describe(restarted(acl_broker)) == sorted(others)
    assert_healthy(acl_broker, starts=3)


def test_confluent_bindings_kafka_refuses_get_its_codes_and_messages(acl_broker):
    admin = confluent_admin(acl_broker)
    kept = AclBinding(ResourceType.TOPIC, "orders", LITERAL, "User:alice", "*", AclOperation.READ, ALLOW)
    refused = {
        AclBinding(ResourceType.BROKER, "my-cluster", LITERAL, "User:admin", "*", AclOperation.ALTER, ALLOW):
            "The only valid name for the CLUSTER resource is kafka-cluster",
        AclBinding(ResourceType.TOPIC, "", PREFIXED, "User:alice", "*", AclOperation.READ, ALLOW):
            "Invalid empty resource name",
        AclBinding(ResourceType.TOPIC, "orders", LITERAL, "alice", "*", AclOperation.READ, ALLOW):
            "Could not parse principal from `alice` (no colon is present separating the principal type from "
            "the principal name)",
    }
    assert create(admin, [*refused, kept]) == {
        **{binding: ("INVALID_REQUEST", message) for binding, message in refused.items()}, kept: None}
    assert describe(admin) == [kept]
    assert_healthy(acl_broker, starts=1)


def test_kafka_python_acls_created_described_deleted_and_refused(acl_broker):
    def acl(name: str, pattern_type=ACLResourcePatternType.LITERAL, operation=ACLOperation.READ,
            resource_type=KafkaPythonResourceType.TOPIC) -> ACL:
        return ACL("User:alice", "*", operation, ACLPermissionType.ALLOW, ResourcePattern(resource_type, name, pattern_type))

    def matching(name, pattern_type, resource_type=KafkaPythonResourceType.TOPIC) -> ACLFilter:
        return ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                         ResourcePatternFilter(resource_type, name, pattern_type))

    on_orders = [acl("orders"), acl("ord", ACLResourcePatternType.PREFIXED), acl("*", operation=ACLOperation.WRITE)]
    group = acl("orders", resource_type=KafkaPythonResourceType.GROUP)
    with kafka_python_admin(acl_broker) as admin:
        # kafka-python sends an UNKNOWN operation as it is: Kafka's code for it is 0.
        created = admin.create_acls([*on_orders, group, acl("orders", operation=ACLOperation.UNKNOWN)])
        assert created == {"succeeded": [*on_orders, group], "failed": [InvalidRequestError]}
        described, error = admin.describe_acls(matching("orders", ACLResourcePatternType.MATCH))
        assert (set(described), error) == (set(on_orders), NoError)

        [(_, deleted, error)] = admin.delete_acls([matching(None, ACLResourcePatternType.ANY)])
        assert (set(deleted), error) == (set(on_orders), NoError)
        described, _ = admin.describe_acls(matching(None, ACLResourcePatternType.ANY, KafkaPythonResourceType.ANY))
        assert described == [group]
    assert_healthy(acl_broker, starts=1)


def test_without_an_authorizer_both_clients_get_security_disabled(broker):
    binding = AclBinding(ResourceType.TOPIC, "orders", LITERAL, "User:alice", "*", AclOperation.READ, ALLOW)
    admin = confluent_admin(broker)
    assert create(admin, [binding]) == {binding: ("SECURITY_DISABLED", "No Authorizer is configured.")}
    # librdkafka reads DescribeAcls' error and drops it (rd_kafka_DescribeAclsResponse_parse), with
    # Kafka too: no ACLs is all it says. kafka-python, below, reports it.
    assert describe(admin) == []
    assert kafka_error(admin.delete_acls([EVERY_ACL], request_timeout=TIMEOUT_SECONDS)[EVERY_ACL]) == "SECURITY_DISABLED"

    every = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, ResourcePatternFilter(
        KafkaPythonResourceType.ANY, None, ACLResourcePatternType.ANY))
    with kafka_python_admin(broker) as admin:
        with pytest.raises(SecurityDisabledError, match="No Authorizer is configured on the broker"):
            admin.describe_acls(every)
        acl = ACL("User:alice", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                  ResourcePattern(KafkaPythonResourceType.TOPIC, "orders"))
        assert admin.create_acls([acl]) == {"succeeded": [], "failed": [SecurityDisabledError]}
        assert admin.delete_acls([every]) == [(every, [], SecurityDisabledError)]
    assert_broker_healthy(broker)
    assert not (broker.data_dir / "acls.json").exists()


def start(data_dir, *args: str) -> subprocess.CompletedProcess:
    """A start of the broker expected to stop at once."""
    return subprocess.run([sys.executable, "-m", "broker", "--port", "0", "--data-dir", str(data_dir), *args],
                          cwd=data_dir.parent, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)


def test_a_damaged_acls_file_or_an_unknown_authorizer_stops_the_start_with_a_clear_message(acl_broker):
    binding = AclBinding(ResourceType.TOPIC, "orders", LITERAL, "User:alice", "*", AclOperation.READ, ALLOW)
    assert create(confluent_admin(acl_broker), [binding]) == {binding: None}
    assert acl_broker.stop() == 0
    path = acl_broker.data_dir / "acls.json"
    stored = path.read_text()
    path.write_text(stored[:len(stored) // 2])  # torn

    refused = start(acl_broker.data_dir, "--authorizer-class-name", STANDARD_AUTHORIZER)
    assert refused.returncode == 1
    assert f"ERROR broker: cannot open the data directory: {path}: unreadable ACLs (JSONDecodeError" in refused.stderr
    assert "Traceback" not in refused.stderr

    refused = start(acl_broker.data_dir, "--authorizer-class-name", "com.example.MyAuthorizer")
    assert refused.returncode == 2
    assert "--authorizer-class-name: unknown authorizer 'com.example.MyAuthorizer'" in refused.stderr

    path.write_text(stored)
    assert describe(restarted(acl_broker)) == [binding]
    assert_healthy(acl_broker, starts=2)


def produced_error(broker: BrokerProcess, topic: str) -> KafkaError | None:
    """The error of one record confluent-kafka produces to `topic`, or None when it is written."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": TIMEOUT_MS,
                         "socket.timeout.ms": TIMEOUT_MS})
    reports = []
    producer.produce(topic, b"v", on_delivery=lambda error, message: reports.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0
    [error] = reports
    return error


def test_acls_created_and_deleted_by_admin_clients_change_what_a_client_may_do(tmp_path):
    """Open to everyone where no ACL is found: the topic an ACL names is closed to anyone it does
    not allow, and open again once it is deleted."""
    with BrokerProcess(tmp_path / "data", "--authorizer-class-name", STANDARD_AUTHORIZER,
                       "--allow-everyone-if-no-acl-found", "true") as broker:
        admin = confluent_admin(broker)
        futures = admin.create_topics([NewTopic(name, 1, 1) for name in ("guarded", "open")],
                                      request_timeout=TIMEOUT_SECONDS)
        assert [future.result(TIMEOUT_SECONDS) for future in futures.values()] == [None, None]
        assert produced_error(broker, "guarded") is None
        # An ACL for someone else names the topic: the anonymous client has no right left on it.
        alice = AclBinding(ResourceType.TOPIC, "guard", PREFIXED, "User:alice", "*", AclOperation.WRITE, ALLOW)
        assert create(admin, [alice]) == {alice: None}
        error = produced_error(broker, "guarded")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert produced_error(broker, "open") is None
        with kafka_python_admin(broker) as python_admin:
            [(_, deleted, error)] = python_admin.delete_acls([ACLFilter(
                None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                ResourcePatternFilter(KafkaPythonResourceType.TOPIC, "guard", ACLResourcePatternType.PREFIXED))])
            assert (len(deleted), error) == (1, NoError)
        assert produced_error(broker, "guarded") is None
        assert_healthy(broker, starts=1)
