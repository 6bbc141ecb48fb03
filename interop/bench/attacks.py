"""Attacks on the broker over loopback while a well-behaved client produces and consumes.

Run: python -m interop.bench.attacks [--quick] [--sasl] [--directory DIR]

Each attack gets a fresh broker (`python -m broker`, default flags) on a free 127.0.0.1 port.
A well-behaved confluent-kafka client produces one 1 KiB record at a time (acks=all, linger 0)
and a confluent-kafka consumer reads them back; once both are connected and records flow, the
attack runs for its duration beside them, then stops. With --sasl the broker's one listener is
SASL_PLAINTEXT: the good client authenticates with PLAIN, the attackers never authenticate (so
their requests are refused before any handler, and their frames are held to the 512 KiB limit of
a connection not yet authenticated). Printed per attack, and for a baseline with no attack: the
broker's peak resident memory (VmHWM), whether it stayed up (alive and answering Metadata
afterwards, with every acknowledged record consumed), and the good client's produce latency
p50/p99 during the attack. Targets: stays up, peak RSS under 300 MB, p99 under
50 ms.

The attacks:
- descriptor flood: the broker runs with an open-file limit of 1024 (common on Linux) and the
  attacker opens connections as fast as it can (up to 3000) and holds them;
- half frames: 30 connections each send the size of a 100 MiB frame and 1 KiB of it, then stop;
- slowloris: 500 connections each send one byte of a frame per second, for longer than the
  request read timeout (30 s), so the figures show whether they are closed;
- CreateTopics with 10,000 partitions in one topic;
- partitions past the file limit: with an open-file limit of 1024, topics of 100 partitions are
  created until the broker refuses one;
- gzip bomb: produce requests whose one record set is gzip expanding to 256 MiB of zeros.
The CreateTopics attacks use confluent-kafka's admin client, or with --sasl a connection that sends
the request unauthenticated; the gzip bomb replaces a connection the broker closes with a new one.
Only 127.0.0.0/8 is ever connected to; every wait is bounded.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import select
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker.wire_connection import WireConnection
from interop.bench.servers import free_port, metadata_answered, peak_resident_bytes
from interop.broker_process import BrokerProcess
from protocol import records
from protocol.errors import ErrorCode, ProtocolError
from protocol.framing import SIZE_PREFIX, framed
from protocol.messages import ApiKey

MIB = 1 << 20
TOPIC = "comlog"  # the topic the broker creates at start
VALUE = bytes(range(256)) * 4
# The well-behaved client's settings: one record in flight, each acknowledged by the log.
GOOD_PRODUCER = {"acks": "all", "linger.ms": 0, "message.timeout.ms": 10_000}
# Targets from the issue: the broker stays up, under this much memory, and the good client's p99 under this.
RSS_TARGET_BYTES = 300 * 1000 * 1000
P99_TARGET_SECONDS = 0.050
# An open-file limit many Linux machines start processes with.
LOW_OPEN_FILES = 1024
# Every client wait is bounded by this.
TIMEOUT_SECONDS = 30
_PRODUCE_VERSION = 9
_CREATE_TOPICS_VERSION = 5
_METADATA_VERSION = 12
# The SASL run's one user, whom only the good client knows.
SASL_USER, SASL_PASSWORD = "good", "good-secret"
GOOD_SASL = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
             "sasl.username": SASL_USER, "sasl.password": SASL_PASSWORD}
# What an attacker whose connection the broker closed without answering is told.
UNANSWERED = "closed unanswered"


class AuthenticationRefused(ConnectionError):
    """A SASL listener refused the handshake or the credentials."""


def authenticate_plain(connection: WireConnection, user: str, password: str) -> None:
    """SaslHandshake v1 and SaslAuthenticate with PLAIN, as the first requests on `connection` to a
    SASL listener; AuthenticationRefused when the broker refuses."""
    handshake = connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    if handshake.error_code != ErrorCode.NONE:
        raise AuthenticationRefused(f"SaslHandshake PLAIN: {ErrorCode(handshake.error_code).name}")
    answer = connection.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": f"\0{user}\0{password}".encode()})
    if answer.error_code != ErrorCode.NONE:
        raise AuthenticationRefused(f"SaslAuthenticate: {answer.error_message}")


@dataclasses.dataclass(frozen=True)
class Target:
    """The listener under attack: its port, and whether it is SASL_PLAINTEXT (the attackers never
    authenticate; the good client does, as SASL_USER)."""

    port: int
    sasl: bool = False

    def answers_metadata(self) -> bool:
        """Whether the broker answers Metadata here (after authenticating, on a SASL listener)."""
        if not self.sasl:
            return metadata_answered(self.port)
        try:
            with WireConnection.connect(self.port) as connection:
                authenticate_plain(connection, SASL_USER, SASL_PASSWORD)
                metadata = connection.request(ApiKey.METADATA, _METADATA_VERSION,
                                              {"topics": None, "allow_auto_topic_creation": False})
        except (ConnectionError, ProtocolError):
            return False
        return bool(metadata.brokers)


@dataclasses.dataclass(frozen=True)
class Scale:
    attack_seconds: float
    slowloris_seconds: float
    flood_connections: int
    half_frames: int
    slowloris_connections: int
    topic_partitions: int
    file_limit_topics: int
    bomb_bytes: int


FULL = Scale(attack_seconds=10, slowloris_seconds=40, flood_connections=3000, half_frames=30,
             slowloris_connections=500, topic_partitions=10_000, file_limit_topics=30, bomb_bytes=256 * MIB)
QUICK = dataclasses.replace(FULL, attack_seconds=5, slowloris_seconds=35)


@dataclasses.dataclass
class Outcome:
    name: str
    peak_rss: int = 0
    stayed_up: bool = False
    latencies: list[float] = dataclasses.field(default_factory=list)
    note: str = ""

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")

    @property
    def meets_targets(self) -> bool:
        return self.stayed_up and self.peak_rss < RSS_TARGET_BYTES and self.percentile(0.99) < P99_TARGET_SECONDS


class PeakWatcher(threading.Thread):
    """Keeps the process's peak resident set size (VmHWM in /proc/PID/status), read every 50 ms
    until stopped or the process is gone, so a broker that dies still has a figure."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, peak_resident_bytes(self.pid))
            except OSError:  # the process has exited
                return
            if self.done.wait(0.05):
                return

    def stop(self) -> int:
        self.done.set()
        self.join(TIMEOUT_SECONDS)
        return self.peak


class GoodClient:
    """A producer sending one record at a time and a consumer reading them back, in two threads."""

    def __init__(self, bootstrap: str, settings: dict[str, str | int]) -> None:
        self.bootstrap = bootstrap
        # Both clients' own settings beside their defaults (GOOD_SASL on a SASL listener).
        self.settings = settings
        self.stop = threading.Event()
        # Set once the producer has stopped; the consumer then waits for the last records until
        # the monotonic time _give_up.
        self._produced = threading.Event()
        self._give_up = 0.0
        self.acknowledged = 0
        self.consumed = 0
        self.errors: list[str] = []
        # (perf_counter at send, seconds to the delivery report) of every record.
        self.sends: list[tuple[float, float]] = []
        self._threads = [threading.Thread(target=self._produce, daemon=True),
                         threading.Thread(target=self._consume, daemon=True)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while self.consumed < 10 and not self.errors:
            if time.monotonic() > deadline:
                raise RuntimeError("the good client never got going")
            time.sleep(0.01)

    def latencies_between(self, start: float, end: float) -> list[float]:
        return [latency for sent, latency in self.sends if start <= sent < end]

    def finish(self) -> bool:
        """Stop producing; whether every acknowledged record was consumed, without errors."""
        self.stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT_SECONDS)
        return not self.errors and self.consumed >= self.acknowledged

    def _produce(self) -> None:
        delivered: list[object] = []
        producer = Producer({"bootstrap.servers": self.bootstrap, **GOOD_PRODUCER, **self.settings,
                             "on_delivery": lambda error, _message: delivered.append(error)})
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                producer.produce(TOPIC, VALUE, partition=0)
                while not delivered:
                    producer.poll(0.1)
                error = delivered.pop()
                if error is not None:
                    self.errors.append(f"delivery failed: {error}")
                    return
                self.sends.append((started, time.perf_counter() - started))
                self.acknowledged += 1
        finally:
            producer.flush(TIMEOUT_SECONDS)
            self._give_up = time.monotonic() + TIMEOUT_SECONDS
            self._produced.set()

    def _consume(self) -> None:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"good-{uuid.uuid4()}",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 10, **self.settings})
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        try:
            while not self._produced.is_set() or self.consumed < self.acknowledged:
                if self._produced.is_set() and time.monotonic() > self._give_up:
                    return
                for message in consumer.consume(100, 0.1):
                    if message.error():
                        self.errors.append(f"consume failed: {message.error()}")
                        return
                    self.consumed += 1
        finally:
            consumer.close()


# Attacks: each runs in its own thread until `stop` is set and returns a note for the table.
Attack = Callable[[Target, Scale, threading.Event], str]


def _connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def _closed(sock: socket.socket) -> bool:
    """Whether the broker has closed `sock` (a readable socket with nothing to read)."""
    readable = select.poll()  # not select(): the flood's descriptors go past FD_SETSIZE
    readable.register(sock, select.POLLIN)
    if not readable.poll(0):
        return False
    try:
        return sock.recv(65536) == b""
    except OSError:
        return True


def _hold(held: list[socket.socket], stop: threading.Event) -> int:
    """Keep `held` open until `stop`, then close them; how many the broker had closed by then."""
    try:
        stop.wait()
        return sum(_closed(sock) for sock in held)
    finally:
        for sock in held:
            sock.close()


def no_attack(target: Target, scale: Scale, stop: threading.Event) -> str:
    stop.wait()
    return ""


def descriptor_flood(target: Target, scale: Scale, stop: threading.Event) -> str:
    held: list[socket.socket] = []
    failed = 0
    while len(held) + failed < scale.flood_connections and not stop.is_set():
        try:
            held.append(_connect(target.port, timeout=1))
        except OSError:
            failed += 1
    closed = _hold(held, stop)
    return f"{len(held)} connected, {closed} closed by the broker, {failed} failed to connect"


def half_frames(target: Target, scale: Scale, stop: threading.Event) -> str:
    held = [_connect(target.port) for _ in range(scale.half_frames)]
    for sock in held:
        sock.sendall(SIZE_PREFIX.pack(100 * MIB) + bytes(1024))
    closed = _hold(held, stop)
    return f"{closed} of {len(held)} closed by the broker"


def slowloris(target: Target, scale: Scale, stop: threading.Event) -> str:
    # Each connection dribbles a 4 KiB frame, one byte a second: never idle, never finished.
    frame = framed(bytes(4096))
    started = time.monotonic()
    open_sockets = {_connect(target.port): 0 for _ in range(scale.slowloris_connections)}
    closed_after: list[float] = []
    try:
        while not stop.wait(1):
            for sock in list(open_sockets):
                if _closed(sock):
                    closed_after.append(time.monotonic() - started)
                    del open_sockets[sock]
                    sock.close()
                    continue
                try:
                    sock.send(frame[open_sockets[sock]:open_sockets[sock] + 1])
                    open_sockets[sock] += 1
                except OSError:
                    closed_after.append(time.monotonic() - started)
                    del open_sockets[sock]
                    sock.close()
    finally:
        for sock in open_sockets:
            sock.close()
    if not closed_after:
        return f"none of {scale.slowloris_connections} closed in {time.monotonic() - started:.0f} s"
    return (f"{len(closed_after)} of {scale.slowloris_connections} closed by the broker, "
            f"the last after {max(closed_after):.0f} s")


def _create_topics(target: Target, topics: dict[str, int]) -> dict[str, str]:
    """CreateTopics through confluent-kafka's admin client, or unauthenticated on a SASL listener:
    each topic's outcome ('ok', the error, or UNANSWERED)."""
    if target.sasl:
        return {name: _create_topic_unauthenticated(target.port, name, partitions)
                for name, partitions in topics.items()}
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{target.port}", "socket.timeout.ms": TIMEOUT_SECONDS * 1000})
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics.items()],
                                  operation_timeout=TIMEOUT_SECONDS, request_timeout=TIMEOUT_SECONDS)
    outcomes = {}
    for name, future in futures.items():
        try:
            future.result(TIMEOUT_SECONDS)
            outcomes[name] = "ok"
        except KafkaException as exc:
            outcomes[name] = exc.args[0].name()
        except Exception as exc:  # noqa: BLE001 - a timeout of the future; reported in the table
            outcomes[name] = type(exc).__name__
    return outcomes


def _create_topic_unauthenticated(port: int, name: str, partitions: int) -> str:
    """CreateTopics as the first request of a connection: 'ok', the error, or UNANSWERED."""
    topic = {"name": name, "num_partitions": partitions, "replication_factor": 1}
    with WireConnection.connect(port, timeout=TIMEOUT_SECONDS, client_id="attack") as connection:
        try:
            response = connection.request(ApiKey.CREATE_TOPICS, _CREATE_TOPICS_VERSION,
                                          {"topics": [topic], "timeout_ms": TIMEOUT_SECONDS * 1000})
        except ConnectionError:
            return UNANSWERED
    code = response.topics[0].error_code
    return "ok" if code == ErrorCode.NONE else ErrorCode(code).name


def huge_topic(target: Target, scale: Scale, stop: threading.Event) -> str:
    started = time.monotonic()
    outcome = _create_topics(target, {"attack-huge": scale.topic_partitions})["attack-huge"]
    note = f"{scale.topic_partitions} partitions: {outcome} after {time.monotonic() - started:.1f} s"
    stop.wait()
    return note


def partitions_past_file_limit(target: Target, scale: Scale, stop: threading.Event) -> str:
    created = 0
    refusal = "none refused"
    for number in range(scale.file_limit_topics):
        if stop.is_set():
            break
        outcome = _create_topics(target, {f"attack-files-{number}": 100})[f"attack-files-{number}"]
        if outcome != "ok":
            refusal = f"then {outcome}"
            break
        created += 1
    stop.wait()
    return f"{created} topics of 100 partitions created, {refusal}"


def _produce_request(record_set: bytes) -> dict:
    return {"transactional_id": None, "acks": 1, "timeout_ms": TIMEOUT_SECONDS * 1000,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": record_set}]}]}


def gzip_bomb(target: Target, scale: Scale, stop: threading.Event) -> str:
    # One record of zeros, gzipped: a few hundred KiB on the wire, scale.bomb_bytes once inflated.
    bomb = records.build_batch([records.Record(value=bytes(scale.bomb_bytes))], compression=records.Compression.GZIP)
    answers: dict[int, int] = {}
    unanswered = 0
    while not stop.is_set():
        with WireConnection.connect(target.port, timeout=TIMEOUT_SECONDS, client_id="attack") as connection:
            try:
                while not stop.is_set():
                    response = connection.request(ApiKey.PRODUCE, _PRODUCE_VERSION, _produce_request(bomb))
                    code = response.responses[0].partition_responses[0].error_code
                    answers[code] = answers.get(code, 0) + 1
            except ConnectionError:
                unanswered += 1
    shown = ", ".join([f"{count} x error {code}" for code, count in sorted(answers.items())]
                      + ([f"{unanswered} x {UNANSWERED}"] if unanswered else []))
    return f"{len(bomb) // 1024} KiB inflating to {scale.bomb_bytes // MIB} MiB, answered {shown}"


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    attack: Attack
    # The broker's soft open-file limit (None: what this process has).
    open_files: int | None = None
    slow: bool = False  # runs for Scale.slowloris_seconds instead of Scale.attack_seconds


SCENARIOS = [
    Scenario("no attack (baseline)", no_attack),
    Scenario(f"descriptor flood (open-file limit {LOW_OPEN_FILES})", descriptor_flood, open_files=LOW_OPEN_FILES),
    Scenario("30 half-sent 100 MiB frames", half_frames),
    Scenario("500 slowloris connections", slowloris, slow=True),
    Scenario("CreateTopics with 10,000 partitions", huge_topic),
    Scenario(f"partitions past the open-file limit ({LOW_OPEN_FILES})", partitions_past_file_limit,
             open_files=LOW_OPEN_FILES),
    Scenario("gzip bomb produce", gzip_bomb),
]


def run_scenario(scenario: Scenario, scale: Scale, directory: Path, sasl: bool = False) -> Outcome:
    outcome = Outcome(scenario.name)
    command: tuple[str, ...] = (sys.executable, "-m", "broker")
    if scenario.open_files is not None:
        command = ("prlimit", f"--nofile={scenario.open_files}:", *command)
    target = Target(free_port(), sasl)
    listener = ("--listeners", f"SASL_PLAINTEXT://127.0.0.1:{target.port}",
                "--override", f"comlog.sasl.users={SASL_USER}:{SASL_PASSWORD}") if sasl else ()
    broker = BrokerProcess(directory / f"data-{uuid.uuid4()}", *listener, port=None if sasl else target.port,
                           command=command)
    broker.start()
    memory = PeakWatcher(broker.process.pid)
    memory.start()
    try:
        good = GoodClient(broker.bootstrap, GOOD_SASL if sasl else {})
        good.start()
        stop = threading.Event()
        notes: list[str] = []

        def attack() -> None:
            try:
                notes.append(scenario.attack(target, scale, stop))
            except Exception as exc:  # noqa: BLE001 - an attack that cannot go on is reported, not fatal
                notes.append(f"attack failed: {exc!r}")

        attacker = threading.Thread(target=attack, daemon=True)
        started = time.perf_counter()
        attacker.start()
        stop.wait(scale.slowloris_seconds if scenario.slow else scale.attack_seconds)
        stop.set()
        # An attack that outlasts its time (a CreateTopics still being answered) is timed to its end.
        attacker.join(TIMEOUT_SECONDS * 2)
        ended = time.perf_counter()
        consumed_all = good.finish()
        outcome.latencies = good.latencies_between(started, ended)
        outcome.stayed_up = broker.process.poll() is None and target.answers_metadata() and consumed_all
        outcome.note = "; ".join(notes + good.errors) if notes or good.errors else "attack still running"
        if not consumed_all and not good.errors:
            outcome.note += f"; {good.consumed} of {good.acknowledged} acknowledged records consumed"
        if broker.process.poll() is not None:
            outcome.note += f"; the broker exited with {broker.process.returncode}"
    finally:
        outcome.peak_rss = memory.stop()
        broker.kill()
    return outcome


def format_table(outcomes: list[Outcome]) -> str:
    rows = [("attack", "peak RSS", "stayed up", "good p50", "good p99", "targets", "what happened")]
    for outcome in outcomes:
        rows.append((outcome.name, f"{outcome.peak_rss / 1e6:.0f} MB", "yes" if outcome.stayed_up else "NO",
                     f"{outcome.percentile(0.5) * 1000:.1f} ms", f"{outcome.percentile(0.99) * 1000:.1f} ms",
                     "met" if outcome.meets_targets else "MISSED", outcome.note))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " | " + row[-1] for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines) + (f"\n\nTargets: stays up, peak RSS under {RSS_TARGET_BYTES / 1e6:.0f} MB, "
                               f"good client p99 under {P99_TARGET_SECONDS * 1000:.0f} ms.")


def run(scale: Scale, directory: Path, scenarios: list[Scenario] = SCENARIOS, *, sasl: bool = False) -> list[Outcome]:
    """Each scenario against a fresh broker: a PLAINTEXT listener, or with `sasl` a SASL_PLAINTEXT one."""
    # The attacks hold thousands of sockets on this side too.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    outcomes = []
    for scenario in scenarios:
        print(f"{scenario.name} ...", file=sys.stderr, flush=True)
        try:
            outcomes.append(run_scenario(scenario, scale, directory, sasl))
        except Exception:  # noqa: BLE001 - one broken scenario still leaves the others' figures
            traceback.print_exc()
            outcomes.append(Outcome(scenario.name, note="the scenario failed (traceback above)"))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m interop.bench.attacks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter attacks (5 s; slowloris 35 s)")
    parser.add_argument("--sasl", action="store_true",
                        help="attack a SASL_PLAINTEXT listener, unauthenticated; the good client authenticates")
    parser.add_argument("--directory", type=Path, help="where the brokers' data directories go (default: a temporary one)")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(dir=args.directory) as directory:
        outcomes = run(scale, Path(directory), sasl=args.sasl)
    if args.sasl:
        print(f"Against a SASL_PLAINTEXT listener (the attackers unauthenticated, the good client as {SASL_USER}):\n")
    print(format_table(outcomes))


if __name__ == "__main__":
    main()
