"""Committed offsets survive a broker restart (clean or killed): they come back exactly, and a
consumer that lived through the restart resumes with no gap."""

from __future__ import annotations

import signal

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import OffsetAndMetadata

from interop.clients import PARTITION, TIMEOUT_MS, assert_broker_healthy
from interop.group_clients import group_consumer, poll_values, produce


def committed_offsets(broker, group: str) -> dict:
    with KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS) as admin:
        return {partition: (value.offset, value.metadata)
                for partition, value in admin.list_group_offsets(group)[group].items()}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_committed_offsets_survive_a_restart_and_consumption_resumes(broker, stop_signal):
    values = produce(broker, "before", 6)
    with group_consumer(broker, "restart") as consumer:
        assert poll_values(consumer, 6) == values
        consumer.commit({PARTITION: OffsetAndMetadata(4, "four", -1)})
        consumer.commit({PARTITION: OffsetAndMetadata(6, "six", -1)})
        # A consumer without group management (assign()) commits for its group too.
        other = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="restart-other", enable_auto_commit=False,
                              request_timeout_ms=TIMEOUT_MS)
        other.assign([PARTITION])
        other.commit({PARTITION: OffsetAndMetadata(2, "", -1)})
        other.close()
        broker.stop(stop_signal)
        broker.start()
        assert committed_offsets(broker, "restart") == {PARTITION: (6, "six")}
        assert committed_offsets(broker, "restart-other") == {PARTITION: (2, "")}
        more = produce(broker, "after", 4)
        # The consumer that lived through the restart goes on where it was, with no gap.
        assert poll_values(consumer, 4) == more
    # Group membership does not survive the restart (the consumer has to join again), offsets do:
    # a new consumer of the group resumes after the last commit.
    with group_consumer(broker, "restart") as resumed:
        assert poll_values(resumed, 4) == more
        resumed.commit()
        assert resumed.committed(PARTITION) == 10
    assert_broker_healthy(broker)
