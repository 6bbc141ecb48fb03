"""SASL authentication with real clients against the broker process's SASL_PLAINTEXT listener:
kafka-python (PLAIN, SCRAM-SHA-256, OAUTHBEARER), confluent-kafka/librdkafka (SCRAM-SHA-512, PLAIN)
and aiokafka (PLAIN, SCRAM-SHA-256) each produce and read back a record. The SCRAM credentials
are set through the PLAINTEXT listener with AlterUserScramCredentials, as with Kafka."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from kafka import KafkaConsumer, KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider

from interop.admin_clients import confluent_admin
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS

TIMEOUT_MS = TIMEOUT_SECONDS * 1000
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret";')
OAUTH_JAAS = 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;'


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    with BrokerProcess(
            tmp_path_factory.mktemp("sasl") / "data", "--listeners", "PLAIN://127.0.0.1:0,SASL://127.0.0.1:0",
            "--override", "listener.security.protocol.map=PLAIN:PLAINTEXT,SASL:SASL_PLAINTEXT",
            "--override", "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "--override", f"listener.name.sasl.plain.sasl.jaas.config={PLAIN_JAAS}",
            "--override", f"listener.name.sasl.oauthbearer.sasl.jaas.config={OAUTH_JAAS}",
            port=None) as process:
        admin = confluent_admin(process)
        futures = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("carol", ScramCredentialInfo(mechanism, 4096), b"carol-secret")
             for mechanism in (ScramMechanism.SCRAM_SHA_256,)]
            + [UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                            b"dave-secret")],
            request_timeout=TIMEOUT_SECONDS)
        for future in futures.values():
            future.result(TIMEOUT_SECONDS)
        yield process


def topic() -> str:
    return f"sasl-{uuid.uuid4().hex[:8]}"


def kafka_python_round_trip(broker: BrokerProcess, **sasl) -> bytes:
    name = topic()
    settings = {"bootstrap_servers": broker.address("SASL"), "security_protocol": "SASL_PLAINTEXT",
                "request_timeout_ms": TIMEOUT_MS, **sasl}
    producer = KafkaProducer(**settings)
    try:
        producer.send(name, b"value").get(TIMEOUT_SECONDS)
    finally:
        producer.close()
    consumer = KafkaConsumer(name, auto_offset_reset="earliest", consumer_timeout_ms=TIMEOUT_MS, **settings)
    try:
        return next(consumer).value
    finally:
        consumer.close()


def test_kafka_python_plain(sasl_broker):
    assert kafka_python_round_trip(sasl_broker, sasl_mechanism="PLAIN", sasl_plain_username="alice",
                                   sasl_plain_password="alice-secret") == b"value"


def test_kafka_python_scram_sha_256(sasl_broker):
    assert kafka_python_round_trip(sasl_broker, sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="carol",
                                   sasl_plain_password="carol-secret") == b"value"


class UnsecuredToken(AbstractTokenProvider):
    """An unsecured JWS (alg none) for `sub`, valid for an hour, as Kafka's unsecured login makes them."""

    def __init__(self, sub: str) -> None:
        self._sub = sub

    def token(self) -> str:
        def part(value: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        now = time.time()
        return f"{part({'alg': 'none'})}.{part({'sub': self._sub, 'iat': now, 'exp': now + 3600})}."


def test_kafka_python_oauthbearer(sasl_broker):
    assert kafka_python_round_trip(sasl_broker, sasl_mechanism="OAUTHBEARER",
                                   sasl_oauth_token_provider=UnsecuredToken("erin")) == b"value"


@pytest.mark.parametrize(("mechanism", "user", "password"), [
    ("SCRAM-SHA-512", "dave", "dave-secret"), ("PLAIN", "alice", "alice-secret")])
def test_confluent_kafka(sasl_broker, mechanism, user, password):
    name = topic()
    settings = {"bootstrap.servers": sasl_broker.address("SASL"), "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    producer = Producer(settings)
    producer.produce(name, b"value")
    assert producer.flush(TIMEOUT_SECONDS) == 0
    consumer = Consumer({**settings, "group.id": name, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([name])
        message = consumer.poll(TIMEOUT_SECONDS)
        assert message is not None and message.error() is None
        assert message.value() == b"value"
    finally:
        consumer.close()


@pytest.mark.parametrize(("mechanism", "user", "password"), [
    ("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "carol", "carol-secret")])
def test_aiokafka(sasl_broker, mechanism, user, password):
    name = topic()
    settings = {"bootstrap_servers": sasl_broker.address("SASL"), "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password}

    async def round_trip() -> bytes:
        producer = AIOKafkaProducer(**settings)
        await producer.start()
        try:
            await producer.send_and_wait(name, b"value")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(name, auto_offset_reset="earliest", **settings)
        await consumer.start()
        try:
            return (await asyncio.wait_for(consumer.getone(), TIMEOUT_SECONDS)).value
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == b"value"
