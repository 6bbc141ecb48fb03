"""Rebalances with real kafka-python group members against the real broker process: members joining
one after another, a clean leave, and a member killed without leaving (expired by its session
timeout, its partition taken over from the last commit)."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from interop.clients import PARTITION, TIMEOUT_MS, TIMEOUT_SECONDS, TOPIC, assert_broker_healthy
from interop.group_clients import produce

GROUP = "rebalance"
# The shortest session Kafka allows by default (group.min.session.timeout.ms).
SESSION_TIMEOUT_MS = 6000
MEMBER_CONFIG = {"group_id": GROUP, "session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 300,
                 "auto_offset_reset": "earliest", "request_timeout_ms": TIMEOUT_MS}


def wait_until(condition, what: str, timeout: float = TIMEOUT_SECONDS) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Ledger:
    """What the group's members owned and consumed, recorded from their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owners: set[str] = set()
        self.overlaps: list[tuple[str, set[str]]] = []
        self.consumed: list[tuple[str, bytes]] = []

    def assigned(self, name: str, partitions) -> None:
        with self.lock:
            if PARTITION in partitions:
                if self.owners - {name}:
                    self.overlaps.append((name, set(self.owners)))
                self.owners.add(name)

    def released(self, name: str) -> None:
        with self.lock:
            self.owners.discard(name)

    def record(self, name: str, values: list[bytes]) -> None:
        with self.lock:
            self.consumed.extend((name, value) for value in values)

    def values(self) -> list[bytes]:
        with self.lock:
            return [value for _, value in self.consumed]

    def owner(self) -> str | None:
        with self.lock:
            return next(iter(self.owners), None)


class Member(threading.Thread):
    """A group member in its own thread. Auto-commit commits the position on every rebalance and on
    close (before LeaveGroup), so partitions change hands exactly at what was consumed."""

    def __init__(self, broker, name: str, ledger: Ledger) -> None:
        super().__init__(name=name, daemon=True)
        self.broker = broker
        self.ledger = ledger
        self.assignments = 0
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        ledger, name = self.ledger, self.name
        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                ledger.released(name)

            def on_partitions_assigned(self, assigned):
                member.assignments += 1
                ledger.assigned(name, assigned)

        try:
            consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, client_id=name, enable_auto_commit=True,
                                     auto_commit_interval_ms=60_000, max_poll_records=3, **MEMBER_CONFIG)
            # kafka-python 3.0.12 can leave a rejoin half done when its metadata for the topic
            # arrives after it joined (a leader without it assigns nothing, and the member is then
            # evicted): so each member learns the topic's partitions before it joins.
            assert consumer.partitions_for_topic(TOPIC) == {PARTITION.partition}
            consumer.subscribe([TOPIC], listener=Listener())
            while not self.stopping.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    ledger.record(name, [record.value for record in records])
            # Released before LeaveGroup is sent, so no other member can be given it first.
            ledger.released(name)
            consumer.close(timeout_ms=TIMEOUT_MS)
        except BaseException as exc:  # reported by stop()
            self.failure = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join(TIMEOUT_SECONDS)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert self.failure is None, f"{self.name} failed: {self.failure!r}"


def owners(broker) -> dict[str, int] | None:
    """How many partitions each member (by client id) was assigned; None while the group is not stable."""
    with KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS) as admin:
        group = admin.describe_groups([GROUP])[GROUP]
    if group["group_state"] != "Stable":
        return None
    return {member["client_id"]: sum(len(topic["partitions"])
                                     for topic in member["member_assignment"]["assigned_partitions"])
            for member in group["members"]}


def test_members_join_one_after_another_and_one_leaves_cleanly(broker):
    ledger = Ledger()
    members: list[Member] = []
    produced = produce(broker, "first", 15)
    try:
        for name in ("member-a", "member-b", "member-c"):
            member = Member(broker, name, ledger)
            members.append(member)
            member.start()
            wait_until(lambda: member.assignments > 0, f"{name} to get an assignment")
            produced += produce(broker, name, 15)
        wait_until(lambda: len(ledger.values()) >= len(produced), "every record to be consumed")
        # Three members, one partition: one owner, two members with an empty assignment.
        wait_until(lambda: owners(broker) is not None, "a stable group")
        assert sorted(owners(broker).values()) == [0, 0, 1]
        owner = next(m for m in members if m.name == ledger.owner())
        owner.stop()
        wait_until(lambda: ledger.owner() not in (None, owner.name), "another member to take the partition")
        produced += produce(broker, "after-leave", 15)
        wait_until(lambda: len(ledger.values()) >= len(produced), "every record to be consumed")
    finally:
        for member in members:
            member.stop()
    assert ledger.overlaps == []
    assert sorted(ledger.values()) == sorted(produced), "a record was consumed twice or not at all"
    assert_broker_healthy(broker)


VICTIM = """
import sys
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata
config = eval(sys.argv[2])
consumer = KafkaConsumer(bootstrap_servers=sys.argv[1], client_id="a-victim", enable_auto_commit=False, **config)

consumer.subscribe(["comlog"])
while True:
    for partition, records in consumer.poll(timeout_ms=100).items():
        for record in records:
            consumer.commit({partition: OffsetAndMetadata(record.offset + 1, "", -1)})
            print("committed", record.offset + 1, flush=True)
"""


def test_a_killed_member_expires_and_a_survivor_resumes_from_the_last_commit(broker):
    produced = produce(broker, "before-kill", 10)
    victim = subprocess.Popen([sys.executable, "-c", VICTIM, broker.bootstrap, repr(MEMBER_CONFIG)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in victim.stdout], daemon=True).start()
    seen: list[str] = []

    def victim_said(line: str) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        return line in seen

    ledger = Ledger()
    # Member ids start with the client id and the range assignor gives the partition to the first
    # member id: the victim keeps the partition when the survivor ("b-...") joins.
    survivor = Member(broker, "b-survivor", ledger)
    try:
        wait_until(lambda: victim_said("committed 10"), "the victim to commit its records")
        survivor.start()
        wait_until(lambda: survivor.assignments > 0, "the survivor to join")
        wait_until(lambda: owners(broker) == {"a-victim": 1, "b-survivor": 0},
                   "a stable group of two where the victim keeps the partition")
        assert ledger.owner() is None
        victim.kill()
        victim.wait(TIMEOUT_SECONDS)
        produced += produce(broker, "after-kill", 10)
        # The victim's session has to run out before the survivor gets the partition.
        wait_until(lambda: ledger.owner() == "b-survivor", "the survivor to take the partition",
                   timeout=SESSION_TIMEOUT_MS / 1000 + TIMEOUT_SECONDS)
        wait_until(lambda: len(ledger.values()) >= 10, "the survivor to consume")
    finally:
        victim.kill()
        victim.wait(TIMEOUT_SECONDS)
        survivor.stop()
    # It resumed right after the victim's last commit: no gap, nothing read twice.
    assert ledger.values() == produced[10:]
    assert re.search(r"member a-victim-\S+ sent no heartbeat within 6000 ms", broker.log_text())
    assert_broker_healthy(broker)
