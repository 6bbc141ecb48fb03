"""Broker CPU per request, by request type, for ComLog and Tansu in one run.

Run from the repository root: ``python -m interop.bench.request_cost``. Each case sends the same
request over and over on one connection, one in flight (the shape a latency-bound client or a
consumer at the log end produces), and reads the broker process's CPU time (user + system, from
/proc) before and after: CPU per request is the difference over the count. The client's own time
is not in it. The servers take turns, case by case and round by round, so that a slow moment of the
machine does not land on one of them only; each row reports the median over the rounds.

The last row is the floor under ComLog's rows: ComLog's own connection layer (broker.connection
over trio) answering every request with a ready-made Heartbeat response, no decoding, no handler:
what the event loop and the system calls cost a request before any Kafka work.

The cases are the requests clients send most, at their usual sizes: a one-record Produce
(acks=all), an empty Fetch of 1, 100 and 1,000 partitions at the log end (max_wait_ms 0, so it is
answered at once, as a fetch is when the wait ends), full (as librdkafka, aiokafka and KafkaJS
send them) and through an incremental fetch session (as kafka-python and the Java client do, which
fall back to full fetches where the server opens no session), Metadata for one topic, a Heartbeat
of a group member, an OffsetCommit of one partition and a ListOffsets of one partition.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broker.request_trace import error_names
from broker.wire_connection import WireConnection
from interop.bench.servers import START_TIMEOUT_SECONDS, ComLogServer, TansuServer, create_topics
from protocol import records
from protocol.messages import ApiKey
from protocol.primitives import ZERO_UUID

PRODUCE_TOPIC = "cost-produce"
FETCH_TOPIC = "cost-fetch"
FETCH_PARTITIONS = 1000
GROUP = "cost-group"
# Versions librdkafka 2.x and the Java client send today; both servers support them.
VERSIONS = {ApiKey.PRODUCE: 9, ApiKey.FETCH: 12, ApiKey.METADATA: 12, ApiKey.HEARTBEAT: 4,
            ApiKey.JOIN_GROUP: 5, ApiKey.SYNC_GROUP: 5, ApiKey.OFFSET_COMMIT: 8, ApiKey.LIST_OFFSETS: 7}
MEMBER_ID_REQUIRED = 79
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A consumer protocol subscription with no topics (version 0, no topics, null user data).
SUBSCRIPTION = b"\x00\x00" + b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff"


FLOOR = "Floor: ComLog's connection layer, canned answer"


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Case:
    name: str
    api_key: int
    body: Callable[[], dict]
    # Sees each response (a fetch session's case keeps its session id and epoch).
    answered: Callable[[object], None] = lambda response: None


class IncrementalFetches:
    """A consumer's fetches of `partitions` through an incremental fetch session (KIP-227), as
    kafka-python and the Java client send them: one full fetch opens the session, then each fetch
    names no partition. A server that opens no session (session id 0) gets full fetches, as
    those clients then send."""

    def __init__(self, full: dict) -> None:
        self.full = full
        self.session_id = 0
        self.epoch = 0

    def body(self) -> dict:
        if self.session_id == 0:
            return {**self.full, "session_id": 0, "session_epoch": 0}
        return {**self.full, "session_id": self.session_id, "session_epoch": self.epoch, "topics": []}

    def answered(self, response) -> None:
        if response.error_code:
            raise RuntimeError(f"Fetch answered error {response.error_code}")
        if response.session_id:
            self.epoch = self.epoch + 1 if response.session_id == self.session_id else 1
        self.session_id = response.session_id


class Member:
    """A group member that has joined and synced, so that its Heartbeat and OffsetCommit are the
    ones a consumer in a stable group sends."""

    def __init__(self, connection: WireConnection) -> None:
        join = {"group_id": GROUP, "session_timeout_ms": 30_000, "rebalance_timeout_ms": 30_000,
                "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": SUBSCRIPTION}]}
        answer = connection.request(ApiKey.JOIN_GROUP, VERSIONS[ApiKey.JOIN_GROUP], join)
        if answer.error_code == MEMBER_ID_REQUIRED:
            answer = connection.request(ApiKey.JOIN_GROUP, VERSIONS[ApiKey.JOIN_GROUP],
                                        {**join, "member_id": answer.member_id})
        _check(answer.error_code, "JoinGroup")
        self.member_id, self.generation = answer.member_id, answer.generation_id
        sync = connection.request(ApiKey.SYNC_GROUP, VERSIONS[ApiKey.SYNC_GROUP], {
            "group_id": GROUP, "generation_id": self.generation, "member_id": self.member_id,
            "group_instance_id": None, "protocol_type": "consumer", "protocol_name": "range",
            "assignments": [{"member_id": self.member_id, "assignment": SUBSCRIPTION}]})
        _check(sync.error_code, "SyncGroup")


def _check(error_code: int, what: str) -> None:
    if error_code:
        raise RuntimeError(f"{what} answered error {error_code}")


def cases(member: Member) -> list[Case]:
    batch = records.build_batch([records.Record(value=b"v" * 100)])

    def fetch_body(partitions: int) -> dict:
        return {"max_wait_ms": 0, "min_bytes": 1, "max_bytes": 52_428_800, "isolation_level": 0,
                "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
                "topics": [{"topic": FETCH_TOPIC, "partitions": [
                    {"partition": index, "fetch_offset": 0, "partition_max_bytes": 1_048_576}
                    for index in range(partitions)]}]}

    def fetch(partitions: int) -> Callable[[], dict]:
        body = fetch_body(partitions)
        return lambda: body

    def session(name: str, partitions: int) -> Case:
        fetches = IncrementalFetches(fetch_body(partitions))
        return Case(name, ApiKey.FETCH, fetches.body, fetches.answered)

    return [
        Case("Produce, one record, acks=all", ApiKey.PRODUCE, lambda: {
            "transactional_id": None, "acks": -1, "timeout_ms": 30_000,
            "topic_data": [{"name": PRODUCE_TOPIC, "partition_data": [{"index": 0, "records": batch}]}]}),
        Case("Fetch, empty, 1 partition", ApiKey.FETCH, fetch(1)),
        Case("Fetch, empty, 100 partitions", ApiKey.FETCH, fetch(100)),
        Case("Fetch, empty, 1000 partitions", ApiKey.FETCH, fetch(1000)),
        session("Fetch session, empty, 1 partition", 1),
        session("Fetch session, empty, 100 partitions", 100),
        session("Fetch session, empty, 1000 partitions", 1000),
        Case("Metadata, one topic", ApiKey.METADATA, lambda: {
            "topics": [{"topic_id": ZERO_UUID, "name": PRODUCE_TOPIC}], "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False}),
        Case("Heartbeat", ApiKey.HEARTBEAT, lambda: {
            "group_id": GROUP, "generation_id": member.generation, "member_id": member.member_id,
            "group_instance_id": None}),
        Case("OffsetCommit, one partition", ApiKey.OFFSET_COMMIT, lambda: {
            "group_id": GROUP, "generation_id_or_member_epoch": member.generation, "member_id": member.member_id,
            "group_instance_id": None, "topics": [{"name": PRODUCE_TOPIC, "partitions": [
                {"partition_index": 0, "committed_offset": 0, "committed_metadata": ""}]}]}),
        Case("ListOffsets, one partition, latest", ApiKey.LIST_OFFSETS, lambda: {
            "replica_id": -1, "isolation_level": 0, "topics": [{"name": PRODUCE_TOPIC, "partitions": [
                {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}),
    ]


def measure(pid: int, connection: WireConnection, case: Case, count: int) -> tuple[float, float]:
    """Broker CPU seconds per request, and the median seconds a request took, over `count`
    requests of `case` one after another (after a tenth as many untimed ones, to warm up, whose
    answers must carry no error: both servers do the same work)."""
    version = VERSIONS[case.api_key]
    for _ in range(max(count // 10, 1)):
        response = connection.request(case.api_key, version, case.body())
        if errors := error_names(response):
            raise RuntimeError(f"{case.name}: answered {', '.join(errors)}")
        case.answered(response)
    latencies = []
    cpu_before = cpu_seconds(pid)
    for _ in range(count):
        started = time.perf_counter()
        case.answered(connection.request(case.api_key, version, case.body()))
        latencies.append(time.perf_counter() - started)
    return (cpu_seconds(pid) - cpu_before) / count, statistics.median(latencies)


async def _serve_floor() -> None:
    """The floor server: broker.connection's Connection over a SocketTransport on a free loopback
    port (printed), answering each request frame with an empty Heartbeat v4 response."""
    import trio

    from broker.connection import Connection, RequestBudget, SocketTransport

    # size, then correlation id, an empty header tag buffer, throttle time, error code, no tags.
    async def answer(frame):
        return [b"\x00\x00\x00\x0c", bytes(frame[4:8]), b"\x00" * 8]

    async def serve(stream):
        await Connection(SocketTransport(stream), 1 << 20, RequestBudget(1 << 20)).serve(answer)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, serve, 0)
        print(listeners[0].socket.getsockname()[1], flush=True)


class FloorServer:
    name = "floor"

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "interop.bench.request_cost", "--serve-floor"],
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(START_TIMEOUT_SECONDS)


def prepared(server) -> tuple[WireConnection, list[Case]]:
    """A connection to a started server with the cases' topics and group member, and the cases."""
    create_topics(server.bootstrap, {PRODUCE_TOPIC: 1, FETCH_TOPIC: FETCH_PARTITIONS})
    connection = WireConnection.connect(server.port)
    return connection, cases(Member(connection))


def measure_floor(count: int) -> tuple[float, float]:
    """measure() of a Heartbeat against the floor server."""
    floor = FloorServer()
    floor.start()
    try:
        with WireConnection.connect(floor.port) as connection:
            return measure(floor.pid, connection, Case(FLOOR, ApiKey.HEARTBEAT, lambda: {
                "group_id": GROUP, "generation_id": 1, "member_id": "m", "group_instance_id": None}), count)
    finally:
        floor.stop()


def run(rounds: int, count: int, directory: Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{case: {server: [(cpu per request, median latency) per round]}}."""
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for number in range(rounds):
        servers = [ComLogServer(directory / f"round-{number}"), TansuServer()]
        if number % 2:
            servers.reverse()
        for server in servers:
            server.start()
        try:
            ready = {server.name: prepared(server) for server in servers}
            for index in range(len(ready[servers[0].name][1])):
                for server in servers:
                    connection, server_cases = ready[server.name]
                    case = server_cases[index]
                    results.setdefault(case.name, {}).setdefault(server.name, []).append(
                        measure(server.pid, connection, case, count))
        finally:
            for server in servers:
                server.stop()
        results.setdefault(FLOOR, {}).setdefault("ComLog", []).append(measure_floor(count))
    return results


def report(results: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
    medians = {name: {server: (statistics.median(cpu for cpu, _ in runs),
                               statistics.median(latency for _, latency in runs))
                      for server, runs in by_server.items()} for name, by_server in results.items()}
    # The floor has no Tansu row of its own: it is set against Tansu's whole Heartbeat.
    medians[FLOOR]["Tansu"] = medians["Heartbeat"]["Tansu"]
    print(f"{'request':<48} {'ComLog CPU':>11} {'Tansu CPU':>10} {'ratio':>6}   "
          f"{'ComLog p50':>10} {'Tansu p50':>10}")
    for name, by_server in medians.items():
        (comlog_cpu, comlog_latency), (tansu_cpu, tansu_latency) = by_server["ComLog"], by_server["Tansu"]
        print(f"{name:<48} {comlog_cpu * 1e6:>9.0f}µs {tansu_cpu * 1e6:>8.0f}µs {comlog_cpu / tansu_cpu:>5.2f}x   "
              f"{comlog_latency * 1e6:>8.0f}µs {tansu_latency * 1e6:>8.0f}µs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=3000, help="requests per case and round")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve_floor:
        import trio

        trio.run(_serve_floor)
        return
    with tempfile.TemporaryDirectory(prefix="comlog-request-cost-") as directory:
        report(run(options.rounds, options.count, Path(directory)))


if __name__ == "__main__":
    main()
