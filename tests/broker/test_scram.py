"""SCRAM credentials (KIP-554): the keys derived from a salted password, Kafka's validation of
alterations and descriptions, the credentials file, and both APIs over a socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import stat

import pytest

from broker.metadata import MetadataError
from broker.scram import (
    CREDENTIALS_FILE, ScramCredential, ScramCredentialDeletion as Deletion, ScramCredentials,
    ScramCredentialUpsertion as Upsertion, ScramMechanism,
)
from protocol.errors import ApiError, ErrorCode
from protocol.messages import REQUESTS, ApiKey

SHA_256, SHA_512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512
SALT = b"a salt of sixteen"


def upsertion(name: str, mechanism: int = SHA_256, iterations: int = 4096, password: bytes = b"secret",
              salt: bytes = SALT) -> Upsertion:
    """The upsertion a client sends: the password salted with PBKDF2, as RFC 5802's Hi() (with
    any hash and at least one iteration where the mechanism or the count is invalid)."""
    hash_name = ScramMechanism(mechanism).hash_name if mechanism in (SHA_256, SHA_512) else "sha256"
    salted_password = hashlib.pbkdf2_hmac(hash_name, password, salt, max(iterations, 1))
    return Upsertion(name, mechanism, iterations, salt, salted_password)


def outcome(results: list[tuple[str, ApiError | None]]) -> list[tuple[str, ErrorCode, str | None]]:
    return [(user, ErrorCode.NONE, None) if error is None else (user, error.code, error.message)
            for user, error in results]


@pytest.fixture
def store(tmp_path) -> ScramCredentials:
    return ScramCredentials.load(tmp_path)


def test_keys_are_derived_as_rfc_7677_authenticates_its_example():
    # RFC 7677, section 3: user "user", password "pencil"; the client's proof and the server's
    # signature of that exchange must follow from the StoredKey and ServerKey derived here.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted_password = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    credential = ScramCredential.from_salted_password(SHA_256, salt, salted_password, 4096)
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                    f"c=biws,r={nonce}").encode()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.digest(credential.stored_key, auth_message, "sha256")
    client_key = bytes(p ^ s for p, s in zip(proof, client_signature))
    assert hmac.compare_digest(hashlib.sha256(client_key).digest(), credential.stored_key)
    assert hmac.compare_digest(hmac.digest(credential.server_key, auth_message, "sha256"),
                               base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
    assert (credential.salt, credential.iterations) == (salt, 4096)


def test_sha_512_keys_use_sha_512():
    salted_password = hashlib.pbkdf2_hmac("sha512", b"pencil", SALT, 4096)
    credential = ScramCredential.from_salted_password(SHA_512, SALT, salted_password, 4096)
    client_key = hmac.digest(salted_password, b"Client Key", "sha512")
    assert credential.stored_key == hashlib.sha512(client_key).digest()
    assert credential.server_key == hmac.digest(salted_password, b"Server Key", "sha512")


def test_a_credential_repr_shows_no_key():
    credential = ScramCredential.from_salted_password(SHA_256, SALT, b"salted", 4096)
    assert repr(credential) == "ScramCredential(iterations=4096)"


async def test_upserted_credentials_are_described_and_deleted(store):
    assert outcome(await store.alter([], [upsertion("alice"), upsertion("bob", SHA_512, 8192)])) == [
        ("alice", ErrorCode.NONE, None), ("bob", ErrorCode.NONE, None)]
    assert outcome(await store.alter([], [upsertion("alice", SHA_512, 16384)])) == [("alice", ErrorCode.NONE, None)]
    described = {user: {m: c.iterations for m, c in found.items()} for user, found in store.describe(None)}
    assert described == {"alice": {SHA_256: 4096, SHA_512: 16384}, "bob": {SHA_512: 8192}}
    assert list(described["alice"]) == [SHA_256, SHA_512]

    assert outcome(await store.alter([Deletion("alice", SHA_256), Deletion("bob", SHA_512)], [])) == [
        ("alice", ErrorCode.NONE, None), ("bob", ErrorCode.NONE, None)]
    assert [(user, list(found)) for user, found in store.describe([])] == [("alice", [SHA_512])]
    assert store.credential("alice", SHA_256) is None and store.credential("bob", SHA_512) is None


async def test_an_upsertion_replaces_the_credential_of_its_mechanism(store):
    await store.alter([], [upsertion("alice", password=b"old")])
    await store.alter([], [upsertion("alice", iterations=5000, password=b"new", salt=b"fresh")])
    replaced = store.credential("alice", SHA_256)
    assert replaced == ScramCredential.from_salted_password(
        SHA_256, b"fresh", hashlib.pbkdf2_hmac("sha256", b"new", b"fresh", 5000), 5000)


@pytest.mark.parametrize(("alteration", "code", "message"), [
    (upsertion(""), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
    (upsertion("u", mechanism=0), ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
    (upsertion("u", mechanism=3), ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
    (upsertion("u", mechanism=-1), ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
    (upsertion("u", iterations=4095), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
    (upsertion("u", iterations=-1), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
    (upsertion("u", iterations=16385), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
    # Kafka's HMAC refuses the empty key; its server error carries no message.
    (Upsertion("u", SHA_256, 4096, SALT, b""), ErrorCode.UNKNOWN_SERVER_ERROR, None),
    (Deletion("", 0), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
    (Deletion("u", 0), ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
    (Deletion("u", SHA_256), ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"),
], ids=repr)
async def test_kafka_refuses_an_alteration_for_its_reasons(tmp_path, store, alteration, code, message):
    deletions, upsertions = ([alteration], []) if isinstance(alteration, Deletion) else ([], [alteration])
    assert outcome(await store.alter(deletions, upsertions)) == [(alteration.name, code, message)]
    assert store.describe(None) == []
    assert not (tmp_path / CREDENTIALS_FILE).exists()


@pytest.mark.parametrize("iterations", [4096, 16384])
async def test_the_iteration_bounds_are_inclusive(store, iterations):
    assert outcome(await store.alter([], [upsertion("u", iterations=iterations)])) == [("u", ErrorCode.NONE, None)]


async def test_an_empty_salt_is_accepted_as_by_kafka(store):
    assert outcome(await store.alter([], [upsertion("u", salt=b"")])) == [("u", ErrorCode.NONE, None)]
    assert store.credential("u", SHA_256).salt == b""


async def test_a_deletion_of_another_mechanism_than_stored_is_not_found(store):
    await store.alter([], [upsertion("alice", SHA_256)])
    assert outcome(await store.alter([Deletion("alice", SHA_512)], [])) == [
        ("alice", ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist")]


DUPLICATE = (ErrorCode.DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request")


async def test_a_user_altered_twice_in_one_request_is_refused_whatever_the_mechanisms(store):
    await store.alter([], [upsertion("deleted-and-set"), upsertion("deleted-twice")])
    await store.alter([], [upsertion("deleted-twice", SHA_512)])
    results = await store.alter(
        [Deletion("deleted-and-set", SHA_256), Deletion("deleted-twice", SHA_256), Deletion("deleted-twice", SHA_512)],
        [upsertion("set-twice", SHA_256), upsertion("set-twice", SHA_512), upsertion("deleted-and-set", SHA_512),
         upsertion("thrice"), upsertion("thrice", SHA_512), upsertion("thrice", SHA_512), upsertion("fine")])
    assert outcome(results) == [("fine", ErrorCode.NONE, None), ("deleted-twice", *DUPLICATE),
                                ("set-twice", *DUPLICATE), ("deleted-and-set", *DUPLICATE), ("thrice", *DUPLICATE)]
    # Nothing of a refused user changed.
    assert {user: list(found) for user, found in store.describe(None)} == {
        "deleted-and-set": [SHA_256], "deleted-twice": [SHA_256, SHA_512], "fine": [SHA_256]}


async def test_a_users_first_refusal_stands_over_a_later_alteration(store):
    results = await store.alter([Deletion("ghost", SHA_256)],
                                [upsertion("ghost"), upsertion("weak", iterations=1), upsertion("weak")])
    assert outcome(results) == [
        ("ghost", ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"),
        ("weak", ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations")]
    assert store.describe(None) == []


async def test_users_done_are_answered_first_and_the_others_still_done(store):
    results = await store.alter([], [upsertion("bad", iterations=20000), upsertion("good")])
    assert outcome(results) == [("good", ErrorCode.NONE, None), ("bad", ErrorCode.UNACCEPTABLE_CREDENTIAL,
                                                                  "Too many iterations")]
    assert [user for user, _ in store.describe(None)] == ["good"]


async def test_describe_names_each_user_once_in_the_order_asked(store):
    await store.alter([], [upsertion("zed"), upsertion("amy", SHA_512, 5000)])
    described = store.describe(["zed", "nobody", "twice", "amy", "twice", ""])
    assert [(user, found.code, found.message) if isinstance(found, ApiError) else (user, dict(found))
            for user, found in described] == [
        ("zed", {SHA_256: store.credential("zed", SHA_256)}),
        ("nobody", ErrorCode.RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist: nobody"),
        ("twice", ErrorCode.DUPLICATE_RESOURCE,
         "Cannot describe SCRAM credentials for the same user twice in a single request: twice"),
        ("amy", {SHA_512: store.credential("amy", SHA_512)}),
        ("", ErrorCode.RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist: "),
    ]
    assert [user for user, _ in store.describe(None)] == ["amy", "zed"]


async def test_credentials_are_stored_as_keys_and_loaded_back(tmp_path, store):
    alice = upsertion("alice", password=b"pencil")
    await store.alter([], [alice, upsertion("bob", SHA_512, 10000)])
    text = (tmp_path / CREDENTIALS_FILE).read_text()
    assert base64.b64encode(alice.salted_password).decode() not in text
    # The keys still let a reader try passwords offline: the file is the broker user's alone.
    assert stat.S_IMODE((tmp_path / CREDENTIALS_FILE).stat().st_mode) == 0o600
    loaded = ScramCredentials.load(tmp_path)
    assert loaded.describe(None) == store.describe(None)
    assert loaded.credential("alice", SHA_256) == ScramCredential.from_salted_password(
        SHA_256, SALT, alice.salted_password, 4096)

    await loaded.alter([Deletion("alice", SHA_256), Deletion("bob", SHA_512)], [])
    assert ScramCredentials.load(tmp_path).describe(None) == []


def damaged(stored: dict) -> list[str]:
    """Ways the file of `stored` may be damaged (or written by something else)."""
    entry = stored["users"]["alice"]["SCRAM-SHA-256"]
    text = json.dumps(stored)
    return [
        text[:len(text) // 2],
        "",
        "[]",
        json.dumps({**stored, "version": 2}),
        json.dumps({"version": 1, "users": {"alice": {"SCRAM-MD5": entry}}}),
        json.dumps({"version": 1, "users": {"alice": {}}}),
        json.dumps({"version": 1, "users": {"alice": {"SCRAM-SHA-256": {**entry, "salt": "not base64!"}}}}),
        json.dumps({"version": 1, "users": {"alice": {"SCRAM-SHA-256": {**entry, "stored_key": "AAAA"}}}}),
        json.dumps({"version": 1, "users": {"alice": {"SCRAM-SHA-256": {**entry, "iterations": "4096"}}}}),
        json.dumps({"version": 1, "users": {"alice": {"SCRAM-SHA-256": {"salt": entry["salt"]}}}}),
    ]


async def test_a_damaged_file_stops_the_start(tmp_path, store):
    await store.alter([], [upsertion("alice")])
    path = tmp_path / CREDENTIALS_FILE
    for text in damaged(json.loads(path.read_text())):
        path.write_text(text)
        with pytest.raises(MetadataError, match="unreadable SCRAM credentials"):
            ScramCredentials.load(tmp_path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(MetadataError, match=CREDENTIALS_FILE):
        ScramCredentials.load(tmp_path)


async def test_a_failed_write_changes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = ScramCredentials.load(data_dir)
    await store.alter([], [upsertion("kept")])
    shutil.rmtree(data_dir)  # the file cannot be replaced any more
    results = outcome(await store.alter([Deletion("kept", SHA_256)], [upsertion("new"), upsertion("", SHA_256)]))
    assert [(user, code) for user, code, _ in results] == [
        ("kept", ErrorCode.KAFKA_STORAGE_ERROR), ("new", ErrorCode.KAFKA_STORAGE_ERROR),
        ("", ErrorCode.UNACCEPTABLE_CREDENTIAL)]
    assert CREDENTIALS_FILE in results[0][2]
    assert [user for user, _ in store.describe(None)] == ["kept"]


async def test_both_apis_over_a_socket(client):
    alter = REQUESTS[ApiKey.ALTER_USER_SCRAM_CREDENTIALS]
    wanted = alter.ScramCredentialUpsertion(name="wire", mechanism=SHA_512, iterations=4096, salt=SALT,
                                            salted_password=upsertion("wire", SHA_512).salted_password)
    altered = await client.request(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, alter(
        deletions=[alter.ScramCredentialDeletion(name="none", mechanism=SHA_256)], upsertions=[wanted]))
    assert [(r.user, r.error_code, r.error_message) for r in altered.results] == [
        ("wire", ErrorCode.NONE, None),
        ("none", ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist")]

    for users in (None, [{"name": "wire"}]):
        described = await client.request(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": users})
        assert (described.error_code, described.error_message) == (ErrorCode.NONE, None)
        assert [(r.user, r.error_code, r.error_message, [(c.mechanism, c.iterations) for c in r.credential_infos])
                for r in described.results] == [("wire", ErrorCode.NONE, None, [(SHA_512, 4096)])]
