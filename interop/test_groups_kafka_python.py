"""kafka-python consumer groups against the real broker process: subscribe with auto-commit and
manual commit, committed(), resuming after the last commit, a static member coming back, and the
group admin calls (describe, list, delete)."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import OffsetAndMetadata

from interop.clients import PARTITION, TIMEOUT_MS, TOPIC, assert_broker_healthy
from interop.group_clients import group_consumer, poll_values, produce


def assert_nothing_more(consumer: KafkaConsumer) -> None:
    """Nothing else arrives after the consumer has caught up (one poll after it has its assignment)."""
    assert consumer.poll(timeout_ms=500) == {}


def test_manual_commit_committed_and_resume(broker):
    values = produce(broker, "manual", 10)
    with group_consumer(broker, "manual") as consumer:
        assert poll_values(consumer, 4) == values[:4]
        consumer.commit()
        assert consumer.committed(PARTITION) == 4
        consumer.commit({PARTITION: OffsetAndMetadata(6, "after six", -1)})
        assert consumer.committed(PARTITION) == 6
    with group_consumer(broker, "manual") as resumed:
        # The restarted consumer resumes after the last commit, not after what was read.
        assert poll_values(resumed, 4) == values[6:]
        assert resumed.committed(PARTITION, metadata=True).metadata == "after six"
    assert_broker_healthy(broker)


def test_auto_commit_then_resume(broker):
    values = produce(broker, "auto", 6)
    with group_consumer(broker, "auto", enable_auto_commit=True, auto_commit_interval_ms=200) as consumer:
        assert poll_values(consumer, 6) == values
    # Closing commits the consumed position: a new consumer of the group starts after it.
    more = produce(broker, "auto-more", 3)
    with group_consumer(broker, "auto", enable_auto_commit=True) as resumed:
        assert poll_values(resumed, 3) == more
        assert resumed.committed(PARTITION) == 6
        assert_nothing_more(resumed)
    assert_broker_healthy(broker)


def test_a_restarted_static_member_resumes_its_assignment(broker):
    values = produce(broker, "static", 4)
    options = {"group_instance_id": "instance-1", "session_timeout_ms": 30000}
    with group_consumer(broker, "static", **options) as consumer:
        assert poll_values(consumer, 2) == values[:2]
        consumer.commit()
    # A static member leaves no group on close: its place waits for it, so coming back needs no rebalance.
    with KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS) as admin:
        (described,) = admin.describe_groups(["static"]).values()
    assert described["group_state"] == "Stable"
    (member,) = described["members"]
    assert member["group_instance_id"] == "instance-1"
    rebalances = broker.log_text().count("preparing to rebalance group static")
    with group_consumer(broker, "static", **options) as restarted:
        assert poll_values(restarted, 2) == values[2:]
    assert broker.log_text().count("preparing to rebalance group static") == rebalances
    assert_broker_healthy(broker)


def test_admin_describe_list_and_delete_groups(broker):
    produce(broker, "admin", 2)
    with group_consumer(broker, "admin-live", client_id="live-client") as consumer, \
            KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS) as admin:
        poll_values(consumer, 2)
        consumer.commit()
        described = admin.describe_groups(["admin-live", "admin-unknown"])
        live = described["admin-live"]
        assert (live["error"], live["group_state"], live["protocol_type"], live["protocol_data"]) == (
            None, "Stable", "consumer", "range")
        (member,) = live["members"]
        assert member["client_id"] == "live-client"
        assert member["member_id"].startswith("live-client-")
        assert member["member_assignment"]["assigned_partitions"] == [{"topic": TOPIC, "partitions": [0]}]
        assert member["member_metadata"]["topics"] == [TOPIC]
        assert described["admin-unknown"]["group_state"] == "Dead"
        listed = {group["group_id"]: group for group in admin.list_groups()}
        assert listed["admin-live"]["group_state"] == "Stable"
        assert listed["admin-live"]["protocol_type"] == "consumer"
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Empty"])] == []
        assert admin.delete_groups(["admin-live"]) == {"admin-live": "NonEmptyGroupError"}
        assert admin.list_group_offsets("admin-live")["admin-live"][PARTITION].offset == 2
    with KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS) as admin:
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Empty"])] == ["admin-live"]
        assert admin.delete_groups(["admin-live", "admin-unknown"]) == {
            "admin-live": "OK", "admin-unknown": "GroupIdNotFoundError"}
        assert admin.list_groups() == []
        assert admin.list_group_offsets("admin-live") == {"admin-live": {}}
    assert_broker_healthy(broker)


@pytest.mark.parametrize("api_version", [(0, 11, 0), (2, 0, 0)])
def test_older_protocol_versions(broker, api_version):
    """Clients pinned to an older release use JoinGroup v0-v3 (no MEMBER_ID_REQUIRED) and older offset APIs."""
    values = produce(broker, "old", 3)
    with group_consumer(broker, "old", api_version=api_version) as consumer:
        assert poll_values(consumer, 3) == values
        consumer.commit()
        assert consumer.committed(PARTITION) == 3
    assert_broker_healthy(broker)
