"""SCRAM credential administration (KIP-554) through confluent-kafka's AdminClient (librdkafka) and
kafka-python's KafkaAdminClient against the real broker process: credentials set, described,
deleted and refused with Kafka's errors, stored as the keys of the password the client salted,
and kept across a kill -9 and a clean restart."""

from __future__ import annotations

import hashlib
import signal

from confluent_kafka.admin import (
    ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion, UserScramCredentialUpsertion,
)
from kafka.admin import (
    UserScramCredentialDeletion as KafkaPythonDeletion, UserScramCredentialUpsertion as KafkaPythonUpsertion,
)

from broker import scram
from interop.admin_clients import confluent_admin, kafka_error, kafka_error_message, kafka_python_admin
from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy

SHA_256, SHA_512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512


def upsertion(user: str, mechanism: ScramMechanism = SHA_256, iterations: int = 4096,
              password: bytes = b"secret", salt: bytes = b"some salt") -> UserScramCredentialUpsertion:
    return UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, iterations), password, salt)


def alter(admin, alterations) -> dict[str, str | None]:
    """Each user's outcome: None when done, else the Kafka error's name."""
    futures = admin.alter_user_scram_credentials(alterations, request_timeout=TIMEOUT_SECONDS)
    return {user: None if future.exception(TIMEOUT_SECONDS) is None else kafka_error(future)
            for user, future in futures.items()}


def described_all(admin) -> dict[str, list[tuple[ScramMechanism, int]]]:
    future = admin.describe_user_scram_credentials(request_timeout=TIMEOUT_SECONDS)
    return {user: [(info.mechanism, info.iterations) for info in description.scram_credential_infos]
            for user, description in future.result(TIMEOUT_SECONDS).items()}


def described(admin, users: list[str]) -> dict[str, list[tuple[ScramMechanism, int]] | str]:
    """Each named user's credentials, or the name of the error describing it failed with."""
    futures = admin.describe_user_scram_credentials(users, request_timeout=TIMEOUT_SECONDS)
    return {user: kafka_error(future) if future.exception(TIMEOUT_SECONDS) is not None
            else [(info.mechanism, info.iterations) for info in future.result().scram_credential_infos]
            for user, future in futures.items()}


def test_confluent_sets_describes_and_deletes_credentials(broker):
    admin = confluent_admin(broker)
    assert described(admin, ["alice"]) == {"alice": "RESOURCE_NOT_FOUND"}
    assert alter(admin, [upsertion("alice", SHA_256, 8192), upsertion("bob", SHA_512)]) == {"alice": None, "bob": None}
    assert alter(admin, [upsertion("alice", SHA_512, 16384)]) == {"alice": None}
    assert described_all(admin) == {"alice": [(SHA_256, 8192), (SHA_512, 16384)], "bob": [(SHA_512, 4096)]}
    assert described(admin, ["bob", "carol"]) == {"bob": [(SHA_512, 4096)], "carol": "RESOURCE_NOT_FOUND"}

    assert alter(admin, [UserScramCredentialDeletion("alice", SHA_256), UserScramCredentialDeletion("bob", SHA_512)]) == {
        "alice": None, "bob": None}
    assert described_all(admin) == {"alice": [(SHA_512, 16384)]}
    assert described(admin, ["bob"]) == {"bob": "RESOURCE_NOT_FOUND"}
    assert_broker_healthy(broker)


def test_confluent_gets_kafkas_refusals_and_the_rest_is_done(broker):
    admin = confluent_admin(broker)
    assert alter(admin, [upsertion("few", iterations=4095), upsertion("many", iterations=16385),
                         upsertion("twice", SHA_256), upsertion("twice", SHA_512),
                         UserScramCredentialDeletion("ghost", SHA_256), upsertion("fine")]) == {
        "few": "UNACCEPTABLE_CREDENTIAL", "many": "UNACCEPTABLE_CREDENTIAL", "twice": "DUPLICATE_RESOURCE",
        "ghost": "RESOURCE_NOT_FOUND", "fine": None}
    assert described_all(admin) == {"fine": [(SHA_256, 4096)]}

    (future,) = admin.alter_user_scram_credentials([upsertion("few", iterations=1)],
                                                   request_timeout=TIMEOUT_SECONDS).values()
    assert kafka_error_message(future) == "Too few iterations"
    assert_broker_healthy(broker)


def test_credentials_are_the_keys_of_the_salted_password_and_survive_restarts(broker):
    admin = confluent_admin(broker)
    # librdkafka salts the password itself (PBKDF2, as RFC 5802's Hi()); the broker keeps the
    # keys derived from what it sent.
    assert alter(admin, [upsertion("alice", SHA_256, 5000, b"pencil", b"alice's salt"),
                         upsertion("bob", SHA_512, 4096, b"\0pass\0word", b"s\0lt")]) == {"alice": None, "bob": None}
    expected = described_all(admin)

    broker.stop(signal.SIGKILL)
    broker.start()
    admin = confluent_admin(broker)
    assert described_all(admin) == expected
    assert alter(admin, [UserScramCredentialDeletion("bob", SHA_512), upsertion("carol", SHA_512, 6000)]) == {
        "bob": None, "carol": None}
    expected = {"alice": [(SHA_256, 5000)], "carol": [(SHA_512, 6000)]}

    assert broker.stop() == 0
    stored = scram.ScramCredentials.load(broker.data_dir)
    assert stored.credential("alice", scram.ScramMechanism.SCRAM_SHA_256) == scram.ScramCredential.from_salted_password(
        scram.ScramMechanism.SCRAM_SHA_256, b"alice's salt", hashlib.pbkdf2_hmac("sha256", b"pencil", b"alice's salt", 5000),
        5000)
    assert stored.credential("bob", scram.ScramMechanism.SCRAM_SHA_512) is None
    broker.start()
    assert described_all(confluent_admin(broker)) == expected
    assert_broker_healthy(broker)


def test_kafka_python_sets_describes_and_deletes_credentials(broker):
    with kafka_python_admin(broker) as admin:
        assert admin.alter_user_scram_credentials([
            KafkaPythonUpsertion("kp", "SCRAM-SHA-512", "secret", iterations=5000),
            KafkaPythonUpsertion("weak", "SCRAM-SHA-256", "secret", iterations=1000),
            KafkaPythonDeletion("odd", 0)]) == {
            "kp": None, "weak": "Too few iterations", "odd": "Unknown SCRAM mechanism"}
        assert admin.describe_user_scram_credentials() == {
            "kp": {"error": None, "credential_infos": [{"mechanism": 2, "iterations": 5000}]}}
        # A user named twice is answered once, refused.
        assert admin.describe_user_scram_credentials(["kp", "kp", "nobody"]) == {
            "kp": {"error": "Cannot describe SCRAM credentials for the same user twice in a single request: kp",
                   "credential_infos": []},
            "nobody": {"error": "Attempt to describe a user credential that does not exist: nobody",
                       "credential_infos": []}}
        assert admin.alter_user_scram_credentials([KafkaPythonDeletion("kp", "SCRAM-SHA-512")]) == {"kp": None}
        assert admin.describe_user_scram_credentials([]) == {}
    assert_broker_healthy(broker)
