"""Real clients through the broker's TLS and SASL listeners: how each one (confluent-kafka,
kafka-python, aiokafka, kcat, KafkaJS) is told to reach a listener, a produce-and-read-back round
trip with each, and what each reports when it cannot connect.

An Endpoint says how to reach one listener (address, security protocol, CA, client certificate,
SASL mechanism and credentials); the functions turn it into each client's own settings. Every
client call is bounded by TIMEOUT_SECONDS, so a hang fails instead of stalling CI.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider as AioAbstractTokenProvider
from aiokafka.helpers import create_ssl_context
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.net.sasl.oauth import AbstractTokenProvider

from interop.broker_process import BrokerProcess
from interop.certificates import KEY_PASSWORD, KeyPair, TestCertificates
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS
from interop.txn_clients import JS_DIR

KCAT = shutil.which("kcat")
SECURE_ROUNDTRIP_JS = JS_DIR / "secure_roundtrip.js"
CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka", "kcat", "kafkajs")
SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
OAUTH_JAAS = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
# The users of every SASL listener (PLAIN and, seeded by the broker, SCRAM-SHA-256/512).
USERS = {"alice": "alice-secret"}


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """How a client reaches one listener."""

    bootstrap: str
    # PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL: what the client speaks (not always the listener's).
    security_protocol: str
    # The CA the client trusts (TLS).
    ca: Path | None = None
    # The client's certificate and key (mutual TLS).
    certificate: KeyPair | None = None
    mechanism: str | None = None
    user: str | None = None
    password: str | None = None
    # OAUTHBEARER: the seconds the unsecured token is valid for from now (negative: expired).
    token_lifetime_seconds: float = 3600

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def with_(self, **changes) -> Endpoint:
        return dataclasses.replace(self, **changes)


def login(bootstrap: str, security_protocol: str, ca: Path | None, mechanism: str, user: str = "alice",
          password: str | None = None) -> Endpoint:
    """An Endpoint of a SASL listener as `user` (by default with the user's right password)."""
    return Endpoint(bootstrap, security_protocol, ca if security_protocol == "SASL_SSL" else None, mechanism=mechanism,
                    user=user, password=USERS.get(user, "no-password") if password is None else password)


# --- The broker: one process with every kind of listener ---

class SecureListeners:
    """The certificates of a broker's TLS listeners and the client certificates the tests use."""

    def __init__(self, directory: Path) -> None:
        self.certificates = TestCertificates(directory)
        # A super user by its certificate's subject, and a subject no ACL names.
        self.super_client = self.certificates.client("CN=super,O=ComLog")
        self.nobody_client = self.certificates.client("CN=nobody,O=ComLog")
        # Mapped to User:carol and User:dave by MAPPING_RULE on the MAPPED listener.
        self.carol_client = self.certificates.client("CN=carol,O=ComLog")
        self.dave_client = self.certificates.client("CN=dave,O=ComLog")

    @property
    def ca(self) -> Path:
        return self.certificates.ca

    def tls_args(self) -> list[str]:
        """The broker's certificate (an encrypted key and its chain in one PEM file) and the CA it
        checks client certificates against."""
        broker = self.certificates.broker
        return ["--override", f"ssl.keystore.location={broker.encrypted_keystore}",
                "--override", f"ssl.key.password={KEY_PASSWORD}",
                "--override", f"ssl.truststore.location={self.certificates.ca}"]


# Every listener of the module's broker: its name and security protocol.
LISTENERS = {"PLAINTEXT": "PLAINTEXT", "SSL": "SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL",
             "MTLS": "SSL", "MAPPED": "SSL"}
# The MAPPED listener names a certificate's principal by its CN, in lower case.
MAPPING_RULE = "RULE:^CN=([a-z]+),.*$/$1/L"
SUPER_CERTIFICATE_PRINCIPAL = "User:CN=super,O=ComLog"
# A super user with no password at start: its SCRAM credentials are set with AlterUserScramCredentials.
ALTERED_USER = "erin"


def users_arg(users: dict[str, str] = USERS) -> list[str]:
    return ["--override", "comlog.sasl.users=" + ",".join(f"{user}:{password}" for user, password in users.items())]


def listeners_args(listeners: dict[str, str]) -> list[str]:
    return ["--listeners", ",".join(f"{name}://127.0.0.1:0" for name in listeners),
            "--override", "listener.security.protocol.map=" + ",".join(f"{name}:{protocol}"
                                                                       for name, protocol in listeners.items())]


def module_broker_args(secure: SecureListeners) -> list[str]:
    """Every listener type on one broker, with the standard authorizer: alice and ALTERED_USER
    (SASL), a client without a certificate (User:ANONYMOUS: PLAINTEXT, and SSL whose client auth is
    only requested) and the super certificate's subject are super users; anyone else needs an ACL."""
    return [*listeners_args(LISTENERS), *secure.tls_args(), *users_arg(),
            "--override", "listener.name.ssl.ssl.client.auth=requested",
            "--override", "listener.name.mtls.ssl.client.auth=required",
            "--override", "listener.name.mapped.ssl.client.auth=required",
            "--override", f"listener.name.mapped.ssl.principal.mapping.rules={MAPPING_RULE}",
            "--override", "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "--override", f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={OAUTH_JAAS}",
            "--override", f"listener.name.sasl_ssl.oauthbearer.sasl.jaas.config={OAUTH_JAAS}",
            "--authorizer-class-name", STANDARD_AUTHORIZER,
            "--super-users", f"User:alice;User:{ALTERED_USER};User:ANONYMOUS;{SUPER_CERTIFICATE_PRINCIPAL}"]


# --- Each client's settings ---

def confluent_settings(endpoint: Endpoint) -> dict:
    settings = {"bootstrap.servers": endpoint.bootstrap, "security.protocol": endpoint.security_protocol,
                "socket.timeout.ms": TIMEOUT_MS, "message.timeout.ms": TIMEOUT_MS,
                # librdkafka's own log lines would only repeat what the callbacks report.
                "log_level": 0}
    if endpoint.ca is not None:
        settings["ssl.ca.location"] = str(endpoint.ca)
    if endpoint.certificate is not None:
        settings.update({"ssl.certificate.location": str(endpoint.certificate.certificate),
                         "ssl.key.location": str(endpoint.certificate.encrypted_key),
                         "ssl.key.password": KEY_PASSWORD})
    if endpoint.mechanism == "OAUTHBEARER":
        settings.update({"sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                         "sasl.oauthbearer.config": f"principal={endpoint.user} "
                                                    f"lifeSeconds={int(endpoint.token_lifetime_seconds)}"})
    elif endpoint.mechanism is not None:
        settings.update({"sasl.mechanism": endpoint.mechanism, "sasl.username": endpoint.user,
                         "sasl.password": endpoint.password})
    return settings


def unsecured_token(sub: str, lifetime_seconds: float) -> str:
    """An unsecured JWS (alg none) for `sub`, valid for `lifetime_seconds` from now (negative:
    expired that long ago, issued a minute before), as Kafka's unsecured login makes them."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    now = time.time()
    issued = min(now, now + lifetime_seconds - 60)
    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'iat': issued, 'exp': now + lifetime_seconds})}."


class UnsecuredToken(AbstractTokenProvider):
    """kafka-python's token provider of unsecured_token."""

    def __init__(self, sub: str, lifetime_seconds: float) -> None:
        self._sub = sub
        self._lifetime_seconds = lifetime_seconds

    def token(self) -> str:
        return unsecured_token(self._sub, self._lifetime_seconds)


class AioUnsecuredToken(AioAbstractTokenProvider):
    """aiokafka's token provider of unsecured_token."""

    def __init__(self, sub: str, lifetime_seconds: float) -> None:
        self._sub = sub
        self._lifetime_seconds = lifetime_seconds

    async def token(self) -> str:
        return unsecured_token(self._sub, self._lifetime_seconds)


def _python_sasl(endpoint: Endpoint, token_provider: type) -> dict:
    """kafka-python's and aiokafka's SASL settings (the same names; each its own token provider)."""
    if endpoint.mechanism is None:
        return {}
    if endpoint.mechanism == "OAUTHBEARER":
        return {"sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_provider": token_provider(endpoint.user, endpoint.token_lifetime_seconds)}
    return {"sasl_mechanism": endpoint.mechanism, "sasl_plain_username": endpoint.user,
            "sasl_plain_password": endpoint.password}


def kafka_python_settings(endpoint: Endpoint) -> dict:
    settings = {"bootstrap_servers": endpoint.bootstrap, "security_protocol": endpoint.security_protocol,
                "request_timeout_ms": TIMEOUT_MS, **_python_sasl(endpoint, UnsecuredToken)}
    if endpoint.ca is not None:
        settings["ssl_cafile"] = str(endpoint.ca)
    if endpoint.certificate is not None:
        settings.update({"ssl_certfile": str(endpoint.certificate.certificate),
                         "ssl_keyfile": str(endpoint.certificate.encrypted_key), "ssl_password": KEY_PASSWORD})
    return settings


def aiokafka_settings(endpoint: Endpoint) -> dict:
    settings = {"bootstrap_servers": endpoint.bootstrap, "security_protocol": endpoint.security_protocol,
                "request_timeout_ms": TIMEOUT_MS, **_python_sasl(endpoint, AioUnsecuredToken)}
    if endpoint.tls:
        keys = endpoint.certificate
        settings["ssl_context"] = create_ssl_context(
            cafile=endpoint.ca, certfile=keys and keys.certificate, keyfile=keys and keys.encrypted_key,
            password=KEY_PASSWORD if keys else None)
    return settings


def kcat_args(endpoint: Endpoint) -> list[str]:
    settings = {"security.protocol": endpoint.security_protocol}
    if endpoint.ca is not None:
        settings["ssl.ca.location"] = str(endpoint.ca)
    if endpoint.mechanism is not None:
        settings.update({"sasl.mechanisms": endpoint.mechanism, "sasl.username": endpoint.user,
                         "sasl.password": endpoint.password})
    return ["-b", endpoint.bootstrap, *(arg for name, value in settings.items() for arg in ("-X", f"{name}={value}"))]


def kafkajs_options(endpoint: Endpoint) -> dict:
    """KafkaJS's `ssl` and `sasl` options, for secure_roundtrip.js."""
    options: dict = {}
    if endpoint.tls:
        options["ssl"] = {"ca": [endpoint.ca.read_text()]} if endpoint.ca else {"rejectUnauthorized": True}
    if endpoint.mechanism == "OAUTHBEARER":
        options["sasl"] = {"mechanism": "oauthbearer",
                           "token": unsecured_token(endpoint.user, endpoint.token_lifetime_seconds)}
    elif endpoint.mechanism is not None:
        options["sasl"] = {"mechanism": endpoint.mechanism.lower(), "username": endpoint.user,
                           "password": endpoint.password}
    return options


# --- Round trips: produce `values` to a new topic, read exactly those back ---

def confluent_round_trip(endpoint: Endpoint, topic: str, values: list[bytes]) -> list[bytes]:
    settings = confluent_settings(endpoint)
    producer = Producer(settings)
    failures = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda error, _: error and failures.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0 and not failures, f"not delivered: {failures}"
    consumer = Consumer({**settings, "group.id": topic, "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        return _poll_values(consumer, len(values))
    finally:
        consumer.close()


def _poll_values(consumer: Consumer, count: int) -> list[bytes]:
    seen = []
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while len(seen) < count and time.monotonic() < deadline:
        for message in consumer.consume(count - len(seen), timeout=max(0, deadline - time.monotonic())):
            assert message.error() is None, message.error()
            seen.append(message.value())
    return seen


def kafka_python_round_trip(endpoint: Endpoint, topic: str, values: list[bytes]) -> list[bytes]:
    settings = kafka_python_settings(endpoint)
    producer = KafkaProducer(**settings)
    try:
        for future in [producer.send(topic, value) for value in values]:
            future.get(TIMEOUT_SECONDS)
    finally:
        producer.close()
    consumer = KafkaConsumer(consumer_timeout_ms=TIMEOUT_MS, **settings)
    try:
        consumer.assign([KafkaPythonTopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return [record.value for _, record in zip(values, consumer)]
    finally:
        consumer.close()


def aiokafka_round_trip(endpoint: Endpoint, topic: str, values: list[bytes]) -> list[bytes]:
    settings = aiokafka_settings(endpoint)

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(**settings)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(auto_offset_reset="earliest", **settings)
        await consumer.start()
        try:
            consumer.subscribe([topic])
            return [(await asyncio.wait_for(consumer.getone(), TIMEOUT_SECONDS)).value for _ in values]
        finally:
            await consumer.stop()

    return asyncio.run(round_trip())


def kcat(endpoint: Endpoint, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([KCAT, *kcat_args(endpoint), *args], input=stdin, capture_output=True, text=True,
                          timeout=2 * TIMEOUT_SECONDS)


def kcat_round_trip(endpoint: Endpoint, topic: str, values: list[bytes]) -> list[bytes]:
    produced = kcat(endpoint, "-P", "-t", topic, stdin="".join(f"{value.decode()}\n" for value in values))
    assert produced.returncode == 0, f"kcat -P failed:\n{produced.stderr}"
    consumed = kcat(endpoint, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(len(values)))
    assert consumed.returncode == 0, f"kcat -C failed:\n{consumed.stderr}"
    return [line.encode() for line in consumed.stdout.splitlines()]


def kafkajs(endpoint: Endpoint, topic: str, values: list[bytes], retries: int = 5) -> dict:
    """secure_roundtrip.js's answer: {"values": [...]} or {"error": name, "message": text}."""
    request = {"bootstrap": endpoint.bootstrap, "topic": topic, "values": [value.decode() for value in values],
               "retries": retries, **kafkajs_options(endpoint)}
    result = subprocess.run(["node", str(SECURE_ROUNDTRIP_JS), json.dumps(request)], capture_output=True,
                            text=True, timeout=3 * TIMEOUT_SECONDS, cwd=JS_DIR)
    assert result.returncode == 0 and result.stdout, f"node failed:\n{result.stderr}"
    return json.loads(result.stdout)


def kafkajs_round_trip(endpoint: Endpoint, topic: str, values: list[bytes]) -> list[bytes]:
    answer = kafkajs(endpoint, topic, values)
    assert "values" in answer, f"KafkaJS failed: {answer}"
    return [value.encode() for value in answer["values"]]


ROUND_TRIPS: dict[str, Callable[[Endpoint, str, list[bytes]], list[bytes]]] = {
    "confluent-kafka": confluent_round_trip, "kafka-python": kafka_python_round_trip,
    "aiokafka": aiokafka_round_trip, "kcat": kcat_round_trip, "kafkajs": kafkajs_round_trip}


# --- What each client reports when it cannot connect ---

# kafka-python retries a failed bootstrap, authentication failures too, until this has passed,
# and reports each failure only in its log: the failure tests wait this long for it to give up.
KAFKA_PYTHON_BOOTSTRAP_TIMEOUT_MS = 1500


@dataclasses.dataclass(frozen=True)
class Failure:
    """The first error a client reported: its own name for it (confluent-kafka's KafkaError
    name, the Python clients' exception class, KafkaJS's error name), its text, and how long after
    the client started it came; and the name of each connection attempt's error, where the client
    tries more than once (kafka-python)."""

    kind: str
    message: str
    seconds: float
    kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.kinds:
            object.__setattr__(self, "kinds", (self.kind,))


class _LoggedErrors(logging.Handler):
    """The exceptions a client's logger was given as arguments (of the records whose message
    starts with `prefix`), and when the first came."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix
        self.errors: list[BaseException] = []
        self.first_at = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if not (isinstance(record.args, tuple) and str(record.msg).startswith(self._prefix)):
            return
        for arg in record.args:
            if isinstance(arg, BaseException):
                if not self.errors:
                    self.first_at = time.monotonic()
                self.errors.append(arg)
                return

    def failure(self, started: float) -> Failure:
        assert self.errors, "the client logged no error"
        first = self.errors[0]
        return Failure(type(first).__name__, str(first), self.first_at - started,
                       tuple(type(error).__name__ for error in self.errors))


@contextlib.contextmanager
def _logged_errors(logger_name: str, prefix: str):
    logger = logging.getLogger(logger_name)
    handler = _LoggedErrors(prefix)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def confluent_failure(endpoint: Endpoint) -> Failure:
    """librdkafka reports a connection's failure through error_cb (and then tries again, not
    sooner than reconnect.backoff.ms: long here, so one connection fails)."""
    errors: list[KafkaError] = []
    started = time.monotonic()
    producer = Producer({**confluent_settings(endpoint), "error_cb": errors.append,
                         "reconnect.backoff.ms": TIMEOUT_MS, "reconnect.backoff.max.ms": TIMEOUT_MS})
    while not errors and time.monotonic() < started + TIMEOUT_SECONDS:
        producer.poll(0.05)
    assert errors, f"confluent-kafka reported no error within {TIMEOUT_SECONDS} s"
    return Failure(errors[0].name(), errors[0].str(), time.monotonic() - started)


# How kafka-python reports an attempt its own bootstrap deadline ended.
_KAFKA_PYTHON_DEADLINE_ERRORS = ("RequestTimedOutError", "KafkaTimeoutError")


def kafka_python_failure(endpoint: Endpoint) -> Failure:
    """kafka-python logs each failed bootstrap connection's error and tries again until
    bootstrap_timeout_ms, then raises KafkaTimeoutError: the error is the first one logged."""
    started = time.monotonic()
    with _logged_errors("kafka.net.manager", "Bootstrap connection to") as logged:
        try:
            KafkaProducer(**kafka_python_settings(endpoint),
                          bootstrap_timeout_ms=KAFKA_PYTHON_BOOTSTRAP_TIMEOUT_MS).close()
        except KafkaTimeoutError:
            pass
        else:
            raise AssertionError("kafka-python connected")
    failure = logged.failure(started)
    if len(failure.kinds) > 1 and failure.kinds[-1] in _KAFKA_PYTHON_DEADLINE_ERRORS:
        # The last attempt cut short by bootstrap_timeout_ms itself (a request that "timed out
        # after 1 ms", or the bootstrap's own timeout): kafka-python's deadline, not an answer of
        # the broker's.
        failure = dataclasses.replace(failure, kinds=failure.kinds[:-1])
    return failure


def aiokafka_failure(endpoint: Endpoint) -> Failure:
    """aiokafka's start() raises KafkaConnectionError ("Unable to bootstrap") at once, having
    logged why each bootstrap server failed: the error is the one logged."""
    from aiokafka.errors import KafkaConnectionError

    async def start() -> None:
        producer = AIOKafkaProducer(**aiokafka_settings(endpoint))
        try:
            await producer.start()
        finally:
            await producer.stop()

    started = time.monotonic()
    with _logged_errors("aiokafka", "Unable connect to") as logged:
        try:
            asyncio.run(start())
        except KafkaConnectionError:
            pass
        else:
            raise AssertionError("aiokafka connected")
    return logged.failure(started)


def kafkajs_failure(endpoint: Endpoint) -> Failure:
    """KafkaJS's connect() rejects with the error (a connection error not retried here)."""
    started = time.monotonic()
    answer = kafkajs(endpoint, "never-created", [b"value"], retries=0)
    assert "error" in answer, f"KafkaJS connected: {answer}"
    return Failure(answer["error"], answer["message"], time.monotonic() - started)


FAILURES: dict[str, Callable[[Endpoint], Failure]] = {
    "confluent-kafka": confluent_failure, "kafka-python": kafka_python_failure, "aiokafka": aiokafka_failure,
    "kafkajs": kafkajs_failure}


# --- The broker's log ---

_PEER = re.compile(r" broker: (\d+\.\d+\.\d+\.\d+:\d+): ")


class LogWindow:
    """The lines a broker process logs from now on."""

    def __init__(self, broker: BrokerProcess) -> None:
        self._broker = broker
        self._start = len(broker.output)

    def lines(self) -> list[str]:
        return self._broker.output[self._start:]

    def wait_for(self, text: str, timeout: float = TIMEOUT_SECONDS) -> list[str]:
        """The lines containing `text`, once there is one (the broker logs a connection's end
        after the client has seen it)."""
        deadline = time.monotonic() + timeout
        while not (found := [line for line in self.lines() if text in line]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert found, f"the broker did not log {text!r}:\n" + "".join(self.lines())
        return found

    def closing_lines_by_peer(self) -> dict[str, list[str]]:
        by_peer: dict[str, list[str]] = {}
        for line in self.lines():
            match = _PEER.search(line)
            if match and "closing connection" in line:
                by_peer.setdefault(match[1], []).append(line)
        return by_peer
