"""Every real client over every listener type: confluent-kafka, kafka-python, aiokafka, kcat and
KafkaJS against one broker process with PLAINTEXT, SSL (client certificates requested), SASL_PLAINTEXT,
SASL_SSL and two mutual-TLS listeners (MTLS, and MAPPED, whose principal is the certificate's CN
by ssl.principal.mapping.rules), SASL with PLAIN, SCRAM-SHA-256/512 and unsecured OAUTHBEARER, and
the standard authorizer (interop/security_clients.py has the listeners and each client's settings).

- Each client produces a few records to a new topic through each listener and mechanism and reads
  exactly those back; confluent-kafka and kafka-python with OAUTHBEARER too, and with SCRAM
  credentials set through AlterUserScramCredentials.
- Mutual TLS: a client certificate's subject is the principal the ACLs see (a subject no ACL names
  is refused TOPIC_AUTHORIZATION_FAILED until one does; a super user's subject may do anything),
  and a mapping rule's short name is; without a certificate the handshake is refused.
- Failures: wrong passwords, unknown users, a mechanism the broker does not enable, an expired
  token and a CA the client does not trust each give the client a clear error at once (well
  before its timeouts), and the broker one clear line per connection and no traceback; a plaintext
  client on a TLS port and a TLS client on a plaintext port are told apart in one line each.
- Re-authentication (KIP-368), on a second broker with connections.max.reauth.ms=2000:
  confluent-kafka and kafka-python produce and consume across several sessions' expiry without
  losing or repeating a record and without the broker closing a connection.

kcat and KafkaJS are skipped where missing (KafkaJS fails instead with COMLOG_REQUIRE_KAFKAJS=1)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition

from interop import security_clients as sc
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS
from interop.security_clients import Endpoint, LogWindow, login
from interop.txn_clients import require_kafkajs

VALUES = [f"value-{i}".encode() for i in range(3)]
# An error that comes sooner than this came from the client's first attempt, not from a timeout
# (every client's timeouts are TIMEOUT_SECONDS): not a speed target.
CLEAR_ERROR_SECONDS = 5
SASL_CASES = [(protocol, mechanism) for protocol in ("SASL_PLAINTEXT", "SASL_SSL")
              for mechanism in ("PLAIN", *sc.SCRAM)]
def topic(label: str = "secure") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    return sc.SecureListeners(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, secure):
    with BrokerProcess(tmp_path_factory.mktemp("secure") / "data", *sc.module_broker_args(secure),
                       port=None) as process:
        yield process
    assert "Traceback" not in process.log_text(), process.log_text()


# The second broker: re-authentication every 2 s, and a mechanism (SCRAM-SHA-512) it does not enable.
REAUTH_MS = 2000
REAUTH_LISTENERS = {"SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"}


@pytest.fixture(scope="module")
def reauth_broker(tmp_path_factory, secure):
    with BrokerProcess(tmp_path_factory.mktemp("reauth") / "data", *sc.listeners_args(REAUTH_LISTENERS),
                       *secure.tls_args(), *sc.users_arg(),
                       "--override", "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
                       "--override", f"connections.max.reauth.ms={REAUTH_MS}", port=None) as process:
        yield process
    assert "Traceback" not in process.log_text(), process.log_text()


def require(client: str) -> None:
    if client == "kafkajs":
        require_kafkajs()
    elif client == "kcat" and sc.KCAT is None:
        pytest.skip("kcat is not installed (Debian package kcat)")


def ssl_endpoint(broker, secure) -> Endpoint:
    return Endpoint(broker.address("SSL"), "SSL", secure.ca)


def sasl_endpoint(broker, secure, protocol: str, mechanism: str, **credentials) -> Endpoint:
    return login(broker.address(protocol), protocol, secure.ca, mechanism, **credentials)


# --- 1. Round trips: every client, every listener and mechanism ---

def round_trip_cases():
    for client in sc.CLIENTS:
        yield pytest.param(client, "SSL", None, id=f"{client}-SSL")
        for protocol, mechanism in SASL_CASES:
            yield pytest.param(client, protocol, mechanism, id=f"{client}-{protocol}-{mechanism}")


@pytest.mark.parametrize(("client", "protocol", "mechanism"), round_trip_cases())
def test_round_trip(broker, secure, client, protocol, mechanism):
    require(client)
    endpoint = ssl_endpoint(broker, secure) if mechanism is None else sasl_endpoint(broker, secure, protocol, mechanism)
    assert sc.ROUND_TRIPS[client](endpoint, topic(), VALUES) == VALUES


def test_credentials_set_through_the_admin_api_log_in(broker, secure):
    """SCRAM credentials upserted with AlterUserScramCredentials (as kafka-configs does), not seeded
    from the users property, authenticate confluent-kafka and kafka-python at once."""
    client = admin(broker)
    password = b"erin-secret"
    # One alteration per user and request, as Kafka takes them.
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        upsertion = UserScramCredentialUpsertion(sc.ALTERED_USER, ScramCredentialInfo(mechanism, 4096), password)
        for future in client.alter_user_scram_credentials([upsertion], request_timeout=TIMEOUT_SECONDS).values():
            future.result(TIMEOUT_SECONDS)
    for client_name, mechanism in (("kafka-python", "SCRAM-SHA-256"), ("confluent-kafka", "SCRAM-SHA-512")):
        endpoint = sasl_endpoint(broker, secure, "SASL_PLAINTEXT", mechanism, user=sc.ALTERED_USER,
                                 password=password.decode())
        assert sc.ROUND_TRIPS[client_name](endpoint, topic("altered"), VALUES) == VALUES, (client_name, mechanism)


# --- 2. OAUTHBEARER (unsecured tokens) ---

@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_oauthbearer_round_trip(broker, secure, client, protocol):
    endpoint = sasl_endpoint(broker, secure, protocol, "OAUTHBEARER")
    assert sc.ROUND_TRIPS[client](endpoint, topic("oauth"), VALUES) == VALUES


# --- 3. Mutual TLS: the certificate is the principal ---

def mtls_endpoint(broker, secure, listener: str = "MTLS", certificate=None) -> Endpoint:
    return Endpoint(broker.address(listener), "SSL", secure.ca,
                    certificate=secure.super_client if certificate is None else certificate)


def admin(broker) -> AdminClient:
    """A super user's admin client (alice, over SASL_PLAINTEXT)."""
    return AdminClient(sc.confluent_settings(login(broker.address("SASL_PLAINTEXT"), "SASL_PLAINTEXT", None, "PLAIN")))


def create_topic(broker) -> str:
    name = topic("acl")
    client = admin(broker)
    for future in client.create_topics([NewTopic(name, 1)], request_timeout=TIMEOUT_SECONDS).values():
        future.result(TIMEOUT_SECONDS)
    return name


def allow(broker, name: str, principal: str, *operations: AclOperation) -> None:
    bindings = [AclBinding(ResourceType.TOPIC, name, ResourcePatternType.LITERAL, principal, "*", operation,
                           AclPermissionType.ALLOW) for operation in operations]
    client = admin(broker)
    for future in client.create_acls(bindings, request_timeout=TIMEOUT_SECONDS).values():
        future.result(TIMEOUT_SECONDS)


def confluent_produce_error(endpoint: Endpoint, name: str) -> KafkaError | None:
    """The delivery error of one record produced through `endpoint` (None: delivered)."""
    producer = Producer(sc.confluent_settings(endpoint))
    outcome = []
    producer.produce(name, b"value", on_delivery=lambda error, _: outcome.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0
    return outcome[0]


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python"])
def test_mutual_tls_round_trip(broker, secure, client):
    assert sc.ROUND_TRIPS[client](mtls_endpoint(broker, secure), topic("mtls"), VALUES) == VALUES


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python"])
def test_mutual_tls_without_a_certificate_is_refused_in_the_handshake(broker, secure, client):
    log = LogWindow(broker)
    failure = sc.FAILURES[client](Endpoint(broker.address("MTLS"), "SSL", secure.ca))
    # TLS 1.3: the client learns of the refusal from the broker's alert, after its Finished.
    expected = {"confluent-kafka": ("_TRANSPORT", "certificate required"),
                "kafka-python": ("KafkaConnectionError", "TLSV13_ALERT_CERTIFICATE_REQUIRED")}[client]
    assert_clear_failure(failure, expected[1], expected[0])
    log.wait_for("the client sent no certificate, and ssl.client.auth is required")
    assert_one_clear_line_per_connection(log)


def test_a_certificate_subject_is_the_principal_acls_see(broker, secure):
    name = create_topic(broker)
    nobody = mtls_endpoint(broker, secure, certificate=secure.nobody_client)
    error = confluent_produce_error(nobody, name)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    # The super user's certificate may write anywhere.
    assert confluent_produce_error(mtls_endpoint(broker, secure), name) is None
    # An ACL for the subject, as Kafka writes it (RFC 2253), lets it write.
    allow(broker, name, "User:CN=nobody,O=ComLog", AclOperation.WRITE)
    assert confluent_produce_error(nobody, name) is None


def test_a_mapping_rule_names_the_principal_acls_see(broker, secure):
    name = create_topic(broker)
    allow(broker, name, "User:carol", AclOperation.WRITE, AclOperation.READ)
    carol = mtls_endpoint(broker, secure, "MAPPED", secure.carol_client)
    assert sc.ROUND_TRIPS["kafka-python"](carol, name, VALUES) == VALUES
    # dave's certificate is mapped to User:dave, whom no ACL names.
    error = confluent_produce_error(mtls_endpoint(broker, secure, "MAPPED", secure.dave_client), name)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


# --- 4. Failures: a clear error at once, one clear line in the broker's log ---

# Each client's name for a refused SASL authentication.
SASL_FAILED = {"confluent-kafka": "_AUTHENTICATION", "kafka-python": "SaslAuthenticationFailedError",
               "aiokafka": "SaslAuthenticationFailed", "kafkajs": "KafkaJSSASLAuthenticationError"}


def assert_one_clear_line_per_connection(log: LogWindow) -> None:
    lines = log.lines()
    assert not [line for line in lines if "Traceback" in line or " ERROR " in line], "".join(lines)
    several = {peer: found for peer, found in log.closing_lines_by_peer().items() if len(found) > 1}
    assert not several, several


def assert_clear_failure(failure: sc.Failure, text: str, *kinds: str) -> None:
    """Every connection attempt failed with one of `kinds`, the first one's message saying `text`,
    well before any timeout."""
    assert set(failure.kinds) <= set(kinds) and text in failure.message, failure
    assert failure.seconds < CLEAR_ERROR_SECONDS, failure


def failure_cases():
    for client in sc.FAILURES:
        for mechanism in ("PLAIN", "SCRAM-SHA-256"):
            for case in ("wrong-password", "unknown-user"):
                yield pytest.param(client, mechanism, case, id=f"{client}-{mechanism}-{case}")


@pytest.mark.parametrize(("client", "mechanism", "case"), failure_cases())
def test_refused_credentials_fail_at_once(broker, secure, client, mechanism, case):
    require(client)
    credentials = {"password": "not-the-password"} if case == "wrong-password" else {"user": "mallory"}
    log = LogWindow(broker)
    failure = sc.FAILURES[client](sasl_endpoint(broker, secure, "SASL_PLAINTEXT", mechanism, **credentials))
    # An unknown user is refused exactly as a wrong password is.
    reason = ("Invalid username or password" if mechanism == "PLAIN" else
              f"invalid credentials with SASL mechanism {mechanism}")
    assert_clear_failure(failure, reason, SASL_FAILED[client])
    log.wait_for("closing connection after the response: Authentication failed")
    assert_one_clear_line_per_connection(log)


@pytest.mark.parametrize("client", sc.FAILURES)
def test_a_mechanism_the_broker_does_not_enable_is_refused(reauth_broker, secure, client):
    require(client)
    log = LogWindow(reauth_broker)
    failure = sc.FAILURES[client](sasl_endpoint(reauth_broker, secure, "SASL_PLAINTEXT", "SCRAM-SHA-512"))
    kind, text = {"confluent-kafka": ("_AUTHENTICATION", "broker's supported mechanisms: PLAIN,SCRAM-SHA-256"),
                  "kafka-python": ("UnsupportedSaslMechanismError", "UnsupportedSaslMechanismError"),
                  # aiokafka's message names only the connection.
                  "aiokafka": ("UnsupportedSaslMechanismError", ""),
                  # KafkaJS's name for the error code UNSUPPORTED_SASL_MECHANISM.
                  "kafkajs": ("KafkaJSProtocolError", "does not support the requested SASL mechanism")}[client]
    assert_clear_failure(failure, text, kind)
    log.wait_for("Unsupported SASL mechanism SCRAM-SHA-512")
    assert_one_clear_line_per_connection(log)


# The broker answers an invalid token with RFC 7628's error challenge, which the client must answer
# with \x01 to be told the exchange failed. KafkaJS 2.2.4 takes the challenge for success and sends
# its next request, which the broker refuses (ILLEGAL_SASL_STATE) as one made during
# authentication, as Kafka does: the error comes at once, under another name. aiokafka 0.14 does
# the same but only fails on its first produce (UnknownTopicOrPartitionError): not tried.
EXPIRED_TOKEN = {"kafka-python": ("SaslAuthenticationFailedError", "invalid_token",
                                  'closing connection after the response: {"status":"invalid_token"}'),
                 "kafkajs": ("KafkaJSNonRetriableError", "Request is not valid given the current SASL state",
                             "closing connection after the response: Unexpected Kafka request of type METADATA "
                             "during SASL authentication")}


@pytest.mark.parametrize("client", ["kafka-python", "kafkajs"])
def test_an_expired_oauthbearer_token_is_refused(broker, secure, client):
    require(client)
    kind, text, logged = EXPIRED_TOKEN[client]
    log = LogWindow(broker)
    endpoint = sasl_endpoint(broker, secure, "SASL_PLAINTEXT", "OAUTHBEARER").with_(token_lifetime_seconds=-60)
    assert_clear_failure(sc.FAILURES[client](endpoint), text, kind)
    log.wait_for(logged)
    assert_one_clear_line_per_connection(log)


@pytest.mark.parametrize("client", sc.FAILURES)
def test_a_client_that_does_not_trust_the_brokers_ca_fails_the_handshake(broker, secure, client, tmp_path):
    require(client)
    other_ca = sc.TestCertificates(tmp_path).ca
    log = LogWindow(broker)
    failure = sc.FAILURES[client](Endpoint(broker.address("SSL"), "SSL", other_ca))
    # librdkafka names it _SSL or _TRANSPORT, as its handshake fails in a read or a write.
    kinds = {"confluent-kafka": ("_SSL", "_TRANSPORT"), "kafka-python": ("KafkaConnectionError",),
             "aiokafka": ("SSLCertVerificationError",), "kafkajs": ("KafkaJSNumberOfRetriesExceeded",)}[client]
    text = {"confluent-kafka": "certificate verify failed", "kafka-python": "CERTIFICATE_VERIFY_FAILED",
            "aiokafka": "CERTIFICATE_VERIFY_FAILED", "kafkajs": "self-signed certificate"}[client]
    assert_clear_failure(failure, text, *kinds)
    if client in ("confluent-kafka", "kafka-python"):
        log.wait_for("TLS handshake with a client of listener SSL failed: the client refused it with the alert")
    # aiokafka and KafkaJS close without an alert: the broker logs "the client closed the connection in
    # the middle of it", or, when the close comes as a reset, nothing above debug (as Kafka).
    assert_one_clear_line_per_connection(log)


# --- 5. The wrong protocol on a port ---

@pytest.mark.parametrize(("listener", "protocol", "expected"), [
    ("SSL", "PLAINTEXT", "a plaintext client connected to TLS listener SSL"),
    ("PLAINTEXT", "SSL", "a TLS client connected to plaintext listener PLAINTEXT")])
def test_the_wrong_protocol_on_a_port_is_named_in_one_line(broker, secure, listener, protocol, expected):
    log = LogWindow(broker)
    failure = sc.confluent_failure(Endpoint(broker.address(listener), protocol, secure.ca))
    assert failure.seconds < CLEAR_ERROR_SECONDS, failure
    assert len(log.wait_for(expected)) == 1
    assert not [line for line in log.lines() if "frame of" in line], "".join(log.lines())
    assert_one_clear_line_per_connection(log)


# --- 6. Re-authentication (KIP-368) ---

# Producing lasts this many sessions, one record each PACE_SECONDS.
REAUTH_PERIODS = 3.5
PACE_SECONDS = 0.05
REAUTH_CASES = [("SASL_PLAINTEXT", "PLAIN"), ("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SASL_SSL", "SCRAM-SHA-256")]


@dataclasses.dataclass
class Paced:
    """What a paced run saw: the records produced and consumed, the connections its producer and
    consumer made, and how often each re-authenticated (the fewest of the two)."""

    produced: list[bytes]
    consumed: list[bytes]
    # The connections made, by client and broker.
    connections: dict[str, int]
    reauthentications: int


class _Counter(logging.Handler):
    """Counts the log records `accept` accepts."""

    def __init__(self, accept) -> None:
        super().__init__()
        self._accept = accept
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self._accept(record):
            self.count += 1


def paced_loop(produce, serve, started: float) -> list[bytes]:
    """Produce a record every PACE_SECONDS for REAUTH_PERIODS sessions, serving the clients (for
    at most the given seconds) until each next record is due: the pace is the workload."""
    produced = []
    end = started + REAUTH_PERIODS * REAUTH_MS / 1000
    while time.monotonic() < end:
        value = f"record-{len(produced)}".encode()
        produce(value)
        produced.append(value)
        next_at = started + len(produced) * PACE_SECONDS
        while (now := time.monotonic()) < next_at:
            serve(next_at - now)
    return produced


def confluent_paced(endpoint: Endpoint) -> Paced:
    """Produce and consume at once with confluent-kafka; its connections counted by librdkafka's
    statistics, its re-authentications by its security debug log."""
    name = topic("reauth")
    settings = {**sc.confluent_settings(endpoint), "debug": "security", "log_level": 7}
    stats, counters = [], []

    def logger(label: str) -> logging.Logger:
        counter = _Counter(lambda record: "Auth in state REAUTH" in record.getMessage())
        counters.append(counter)
        client_logger = logging.getLogger(f"interop.security.{name}.{label}")
        client_logger.addHandler(counter)
        client_logger.propagate = False
        client_logger.setLevel(logging.DEBUG)
        return client_logger

    producer = Producer({**settings, "linger.ms": 0, "statistics.interval.ms": 1000, "logger": logger("producer"),
                         "stats_cb": lambda text: stats.append(json.loads(text))})
    consumer = Consumer({**settings, "group.id": name, "enable.auto.commit": False, "logger": logger("consumer"),
                         "statistics.interval.ms": 1000, "stats_cb": lambda text: stats.append(json.loads(text))})
    delivered, consumed = [], []

    def take(timeout: float) -> None:
        producer.poll(0)
        consumed.extend(message.value() for message in consumer.consume(100, timeout=timeout)
                        if message.error() is None)

    try:
        consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        produced = paced_loop(lambda value: producer.produce(
            name, value, on_delivery=lambda error, message: delivered.append((error, message.value()))),
            take, time.monotonic())
        assert producer.flush(TIMEOUT_SECONDS) == 0
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(consumed) < len(produced) and time.monotonic() < deadline:
            take(0.5)
        # One more statistics report from each, with every connection made.
        reports = len(stats)
        while len(stats) < reports + 2 and time.monotonic() < deadline:
            take(0.2)
    finally:
        consumer.close()
    assert [error for error, _ in delivered if error is not None] == []
    assert [value for _, value in delivered] == produced
    # Each client's connections to the broker by its id. (The consumer's logical group coordinator
    # connection is left out: librdkafka may make it again when it learns the coordinator's
    # address, re-authentication or not.)
    connections = {f"{report['type']} {name}": broker["connects"] for report in stats[-2:]
                   for name, broker in report["brokers"].items() if name != "GroupCoordinator"}
    return Paced(produced, consumed, connections, min(counter.count for counter in counters))


# kafka-python's connections log when they are made and when they re-authenticate, at debug level.
KAFKA_PYTHON_CONNECTION_LOG = logging.getLogger("kafka.net.connection")


@pytest.fixture
def kafka_python_connection_debug_log():
    """kafka-python's connection log at debug level, to the counters of kafka_python_paced only
    (not on to pytest's capture, which would format every record), and without them after."""
    handlers, level, propagate = list(KAFKA_PYTHON_CONNECTION_LOG.handlers), KAFKA_PYTHON_CONNECTION_LOG.level, \
        KAFKA_PYTHON_CONNECTION_LOG.propagate
    KAFKA_PYTHON_CONNECTION_LOG.setLevel(logging.DEBUG)
    KAFKA_PYTHON_CONNECTION_LOG.propagate = False
    yield
    KAFKA_PYTHON_CONNECTION_LOG.handlers[:] = handlers
    KAFKA_PYTHON_CONNECTION_LOG.setLevel(level)
    KAFKA_PYTHON_CONNECTION_LOG.propagate = propagate


def kafka_python_paced(endpoint: Endpoint) -> Paced:
    """As confluent_paced, with kafka-python: its connections counted by its metrics, its
    re-authentications by its debug log."""
    name = topic("reauth")
    settings = sc.kafka_python_settings(endpoint)
    client_ids = (f"{name}-producer", f"{name}-consumer")

    def counter(message: str, client_id: str) -> _Counter:
        counter = _Counter(lambda record: record.msg == message and record.args[0].config["client_id"] == client_id)
        counter.name = client_id
        return counter

    reauthentications = [counter("%s: Beginning SASL re-authentication", client_id) for client_id in client_ids]
    connections_made = [counter("%s: Connection made", client_id) for client_id in client_ids]
    for handler in (*reauthentications, *connections_made):
        KAFKA_PYTHON_CONNECTION_LOG.addHandler(handler)
    producer = KafkaProducer(**settings, linger_ms=0, client_id=f"{name}-producer")
    consumer = KafkaConsumer(**settings, enable_auto_commit=False, auto_offset_reset="earliest",
                             client_id=f"{name}-consumer")
    futures, consumed = [], []

    def take(timeout: float) -> None:
        for records in consumer.poll(timeout_ms=max(0, timeout * 1000), max_records=100).values():
            consumed.extend(record.value for record in records)

    try:
        consumer.assign([KafkaPythonTopicPartition(name, 0)])
        produced = paced_loop(lambda value: futures.append(producer.send(name, value)), take, time.monotonic())
        producer.flush(TIMEOUT_SECONDS)
        for future in futures:
            future.get(TIMEOUT_SECONDS)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(consumed) < len(produced) and time.monotonic() < deadline:
            take(0.5)
    finally:
        producer.close()
        consumer.close()
    return Paced(produced, consumed, {counter.name: counter.count for counter in connections_made},
                 min(counter.count for counter in reauthentications))


@pytest.mark.parametrize(("paced", "most_connections"), [
    # librdkafka: one connection to the broker (by its id) for each client.
    pytest.param(confluent_paced, 1, id="confluent-kafka"),
    # kafka-python: its bootstrap connection and one to the broker, for each client.
    pytest.param(kafka_python_paced, 2, id="kafka-python")])
def test_clients_re_authenticate_without_losing_a_record(reauth_broker, secure, kafka_python_connection_debug_log,
                                                         paced, most_connections):
    log = LogWindow(reauth_broker)
    endpoints = [sasl_endpoint(reauth_broker, secure, protocol, mechanism) for protocol, mechanism in REAUTH_CASES]
    # The cases at once: each paces itself, so running them together only saves time.
    with concurrent.futures.ThreadPoolExecutor(len(endpoints)) as pool:
        results = list(pool.map(paced, endpoints))
    lines = log.lines()
    assert not [line for line in lines if "closing connection" in line or "expired" in line], "".join(lines)
    for case, run in zip(REAUTH_CASES, results):
        assert len(run.produced) >= REAUTH_PERIODS * REAUTH_MS / 1000 / PACE_SECONDS * 0.8, case
        # Every record delivered and read once, in order.
        assert run.consumed == run.produced, (case, len(run.produced), len(run.consumed))
        assert max(run.connections.values()) <= most_connections, (case, run.connections)
        # Each of the producer and the consumer re-authenticated once a session, on the same connection.
        assert run.reauthentications >= 3, (case, run.reauthentications)
