"""SASL authentication: the mechanisms against client implementations (scramp for SCRAM), the JAAS
and users properties, and the exchanges over a socket to a broker's SASL_PLAINTEXT listener
(SaslHandshake v0 with bare tokens and v1 with SaslAuthenticate, failures, the requests refused
before authentication, ILLEGAL_SASL_STATE, re-authentication and session expiry)."""

from __future__ import annotations

import base64
import json
import struct

import pytest
import trio
from scramp import ScramClient, ScramException

from broker.config import BrokerConfig
from broker.handlers.sasl import SASL_MAX_RECEIVE_SIZE, CloseAfterResponse, seed_scram_credentials
from broker.listeners import Listener
from broker.sasl import (
    OAuthBearerOptions, OAuthBearerServer, PlainServer, SaslAuthenticationFailed, SaslConfig, SaslConfigError,
    ScramServer, parse_jaas_config, parse_users,
)
from broker.scram import ScramCredentials, ScramMechanism
from broker.server import Broker
from broker.session import CURRENT_SESSION, Session
from protocol.errors import ErrorCode
from protocol.framing import SIZE_PREFIX, InFlightRequests
from protocol.messages import ApiKey
from wire_client import WireClient

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
PLAIN_JAAS = (f'{PLAIN_MODULE} required username="admin" password="admin-secret" '
              f'user_admin="admin-secret" user_alice="alice-secret";')
NOW_MS = 1_700_000_000_000
GENERIC_SCRAM_256 = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"


# --- PLAIN ---

def plain(user: str, password: str, authzid: str = "") -> bytes:
    return f"{authzid}\0{user}\0{password}".encode()


def test_plain_authenticates_a_user_and_refuses_wrong_and_unknown_users_alike():
    users = {"alice": "alice-secret"}
    server = PlainServer(users)
    assert server.evaluate(plain("alice", "alice-secret"), NOW_MS) == b""
    assert (server.complete, server.authorization_id) == (True, "alice")
    refusals = []
    for token in (plain("alice", "wrong"), plain("mallory", "alice-secret")):
        with pytest.raises(SaslAuthenticationFailed) as failed:
            PlainServer(users).evaluate(token, NOW_MS)
        refusals.append(failed.value.message)
    assert refusals == ["Authentication failed: Invalid username or password"] * 2


@pytest.mark.parametrize(("token", "message"), [
    (plain("alice", "alice-secret", authzid="bob"),
     "Authentication failed: Client requested an authorization id that is different from username"),
    (plain("", "x"), "Authentication failed: username not specified"),
    (plain("alice", ""), "Authentication failed: password not specified"),
    (b"alice\0alice-secret", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
])
def test_plain_refuses_as_kafka_does(token, message):
    with pytest.raises(SaslAuthenticationFailed) as failed:
        PlainServer({"alice": "alice-secret"}).evaluate(token, NOW_MS)
    assert failed.value.message == message


def test_plain_accepts_the_user_as_authzid():
    server = PlainServer({"alice": "alice-secret"})
    server.evaluate(plain("alice", "alice-secret", authzid="alice"), NOW_MS)
    assert server.authorization_id == "alice"


# --- SCRAM ---

@pytest.fixture
async def scram_store(tmp_path) -> ScramCredentials:
    """A credential store holding alice's credentials for both mechanisms, seeded the way the
    broker seeds comlog.sasl.users."""
    store = ScramCredentials.load(tmp_path)
    config = SaslConfig.from_config(BrokerConfig(properties={"comlog.sasl.users": "alice:alice-secret"}), store)
    for mechanism in ScramMechanism:
        assert await store.alter([], config.scram_seeds(store, mechanism)) == [("alice", None)]
    return store


def scram_exchange(server: ScramServer, client: ScramClient) -> None:
    """Run the client against the server; raises what either refuses."""
    client.set_server_first(server.evaluate(client.get_client_first().encode(), NOW_MS).decode())
    client.set_server_final(server.evaluate(client.get_client_final().encode(), NOW_MS).decode())


@pytest.mark.parametrize("mechanism", list(ScramMechanism))
async def test_scram_authenticates_against_a_scram_client(scram_store, mechanism):
    server = ScramServer(mechanism, scram_store, b"key")
    # set_server_final checks the server's signature: the server proves it knows the credential.
    scram_exchange(server, ScramClient([mechanism.mechanism_name], "alice", "alice-secret"))
    assert (server.complete, server.authorization_id) == (True, "alice")


@pytest.mark.parametrize("mechanism", list(ScramMechanism))
async def test_scram_refuses_a_wrong_password_and_an_unknown_user_alike(scram_store, mechanism):
    seen = []
    for user, password in (("alice", "wrong"), ("mallory", "alice-secret"), ("mallory", "alice-secret")):
        server = ScramServer(mechanism, scram_store, b"key")
        client = ScramClient([mechanism.mechanism_name], user, password)
        server_first = server.evaluate(client.get_client_first().encode(), NOW_MS).decode()
        client.set_server_first(server_first)
        with pytest.raises(SaslAuthenticationFailed) as failed:
            server.evaluate(client.get_client_final().encode(), NOW_MS)
        assert failed.value.message is None
        seen.append(server_first.split(",")[1:])
    # The unknown user is offered the same salt each time, and an iteration count like a real one's.
    assert seen[1] == seen[2] and seen[1][1] == seen[0][1] == "i=4096"


async def test_scram_checks_the_servers_signature_is_the_real_one(scram_store):
    # A server that does not know the password cannot pass the client's check either.
    server = ScramServer(ScramMechanism.SCRAM_SHA_256, scram_store, b"key")
    client = ScramClient(["SCRAM-SHA-256"], "alice", "alice-secret")
    client.set_server_first(server.evaluate(client.get_client_first().encode(), NOW_MS).decode())
    server.evaluate(client.get_client_final().encode(), NOW_MS)
    with pytest.raises(ScramException):
        client.set_server_final("v=" + base64.b64encode(b"\0" * 32).decode())


@pytest.mark.parametrize("first", [
    b"n,,n=alice,r=abc,tokenauth=true",  # a delegation token: none here
    b"y,,n=alice,r=abc",  # channel binding
    b"n,,n=alice",
    b"\xff\xfe",
])
async def test_scram_refuses_what_it_does_not_do(scram_store, first):
    with pytest.raises(SaslAuthenticationFailed):
        ScramServer(ScramMechanism.SCRAM_SHA_256, scram_store, b"key").evaluate(first, NOW_MS)


async def test_scram_refuses_a_foreign_authzid_and_a_replayed_nonce(scram_store):
    with pytest.raises(SaslAuthenticationFailed) as failed:
        ScramServer(ScramMechanism.SCRAM_SHA_256, scram_store, b"key").evaluate(b"n,a=bob,n=alice,r=abc", NOW_MS)
    assert failed.value.message == (
        "Authentication failed: Client requested an authorization id that is different from username")
    server = ScramServer(ScramMechanism.SCRAM_SHA_256, scram_store, b"key")
    client = ScramClient(["SCRAM-SHA-256"], "alice", "alice-secret")
    client.set_server_first(server.evaluate(client.get_client_first().encode(), NOW_MS).decode())
    final = client.get_client_final()
    forged = final.replace(",r=", ",r=x", 1)
    with pytest.raises(SaslAuthenticationFailed):
        server.evaluate(forged.encode(), NOW_MS)
    with pytest.raises(SaslAuthenticationFailed):  # one attempt per exchange
        server.evaluate(final.encode(), NOW_MS)


async def test_seeding_leaves_existing_credentials_alone(scram_store):
    config = SaslConfig.from_config(BrokerConfig(properties={"comlog.sasl.users": "alice:new,bob:bob-secret"}),
                                    scram_store)
    for mechanism in ScramMechanism:
        seeds = config.scram_seeds(scram_store, mechanism)
        assert [(seed.name, seed.mechanism, seed.iterations) for seed in seeds] == [("bob", mechanism, 4096)]
        await scram_store.alter([], seeds)
        scram_exchange(ScramServer(mechanism, scram_store, b"key"),
                       ScramClient([mechanism.mechanism_name], "bob", "bob-secret"))
        scram_exchange(ScramServer(mechanism, scram_store, b"key"),
                       ScramClient([mechanism.mechanism_name], "alice", "alice-secret"))


# --- OAUTHBEARER ---

def b64url(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def unsecured_token(claims: dict, header: dict | None = None) -> str:
    return f"{b64url(header or {'alg': 'none'})}.{b64url(claims)}."


def bearer(token: str, authzid: str = "") -> bytes:
    return f"n,{'a=' + authzid if authzid else ''},\x01auth=Bearer {token}\x01traceId=7\x01\x01".encode()


def claims(**changes) -> dict:
    values = {"sub": "alice", "iat": NOW_MS / 1000 - 10, "exp": NOW_MS / 1000 + 60, "scope": "write"}
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def test_oauthbearer_accepts_a_valid_unsecured_token():
    server = OAuthBearerServer(OAuthBearerOptions())
    assert server.evaluate(bearer(unsecured_token(claims())), NOW_MS) == b""
    assert (server.complete, server.authorization_id, server.credential_expiry_ms) == (True, "alice", NOW_MS + 60_000)


@pytest.mark.parametrize("token", [
    unsecured_token(claims(exp=NOW_MS / 1000)),  # expired
    unsecured_token(claims(exp=None)),
    unsecured_token(claims(sub=None)),
    unsecured_token(claims(sub=" ")),
    unsecured_token(claims(sub=7)),
    unsecured_token(claims(iat=NOW_MS / 1000 + 1)),  # issued in the future
    unsecured_token(claims(), header={"alg": "HS256"}),
    unsecured_token(claims()) + "c2ln",  # a signature
    "e30.e30",
    "bm90IGpzb24.e30.",
])
def test_oauthbearer_answers_an_invalid_token_with_the_json_error_then_fails(token):
    server = OAuthBearerServer(OAuthBearerOptions())
    assert server.evaluate(bearer(token), NOW_MS) == b'{"status":"invalid_token"}'
    assert not server.complete
    with pytest.raises(SaslAuthenticationFailed) as failed:
        server.evaluate(b"\x01", NOW_MS)
    assert failed.value.message == '{"status":"invalid_token"}'


def test_oauthbearer_requires_the_configured_scope_and_reads_the_configured_claims():
    options = OAuthBearerOptions.from_jaas("p", parse_jaas_config("p", (
        f'{OAUTH_MODULE} required unsecuredValidatorRequiredScope="admin" unsecuredValidatorPrincipalClaimName="user" '
        f'unsecuredValidatorAllowableClockSkewMs="5000";')))
    server = OAuthBearerServer(options)
    assert server.evaluate(bearer(unsecured_token(claims(user="alice"))), NOW_MS) == (
        b'{"status":"insufficient_scope", "scope":"[admin]"}')
    token = unsecured_token(claims(sub=None, user="bob", scope=["admin"], exp=NOW_MS / 1000 - 4))
    assert server.evaluate(bearer(token), NOW_MS) == b""  # 4 s expired is within the 5 s skew
    assert server.authorization_id == "bob"


def test_oauthbearer_refuses_a_foreign_authzid_and_a_malformed_message():
    with pytest.raises(SaslAuthenticationFailed) as failed:
        OAuthBearerServer(OAuthBearerOptions()).evaluate(bearer(unsecured_token(claims()), authzid="bob"), NOW_MS)
    assert failed.value.message == ("Authentication failed: Client requested an authorization id (bob) that is "
                                    "different from the token's principal name (alice)")
    for message in (b"n,,\x01auth=Basic abc\x01\x01", b"n,,\x01\x01", b"\x01"):
        with pytest.raises(SaslAuthenticationFailed):
            OAuthBearerServer(OAuthBearerOptions()).evaluate(message, NOW_MS)


# --- Properties ---

def test_jaas_config_is_parsed_as_kafka_parses_it():
    module = parse_jaas_config("p", f'/* users */ {PLAIN_MODULE} REQUIRED user_a="x\\"y\\\\z\\n" user_b=word // end\n;')
    assert (module.name, module.flag, dict(module.options)) == (PLAIN_MODULE, "required",
                                                               {"user_a": 'x"y\\z\n', "user_b": "word"})
    assert "x" not in repr(module)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "Login module not specified in JAAS config"),
    (f"{PLAIN_MODULE}", "Login module control flag not specified in JAAS config"),
    (f"{PLAIN_MODULE} always;", "Invalid login module control flag in JAAS config"),
    (f'{PLAIN_MODULE} required user_a="secret"', "JAAS config entry not terminated by semi-colon"),
    (f"{PLAIN_MODULE} required user_a=1234;", "Value not specified for key 'user_a' in JAAS config"),
    (f"{PLAIN_MODULE} required user_a;", "Value not specified for key 'user_a' in JAAS config"),
    (f'{PLAIN_MODULE} required user_a="secret;', "unterminated quoted value in JAAS config"),
    (f"{PLAIN_MODULE} required; {PLAIN_MODULE} required;",
     "JAAS config property contains 2 login modules, should be 1 module"),
])
def test_a_malformed_jaas_config_stops_the_start_naming_the_property(tmp_path, text, reason):
    name = "listener.name.sasl.plain.sasl.jaas.config"
    with pytest.raises(SaslConfigError) as refused:
        SaslConfig.from_config(sasl_config(tmp_path, {name: text}), ScramCredentials.load(tmp_path))
    assert str(refused.value) == f"{name}: {reason}"
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(("text", "reason"), [
    ("alice", "entry 1 is not user:password"),
    ("alice:secret,bob:", "entry 2 is not user:password"),
    ("alice:secret,:secret", "entry 2 is not user:password"),
    ("alice:secret,alice:secret2", "user 'alice' is given twice"),
])
def test_a_malformed_users_property_stops_the_start(tmp_path, text, reason):
    with pytest.raises(SaslConfigError) as refused:
        SaslConfig.from_config(sasl_config(tmp_path, {"comlog.sasl.users": text}), ScramCredentials.load(tmp_path))
    assert str(refused.value) == f"comlog.sasl.users: {reason}"
    assert "secret" not in str(refused.value)


def test_users_come_from_the_jaas_entry_and_the_users_property(tmp_path):
    assert parse_users("p", " alice:a:b , bob:c") == {"alice": "a:b", "bob": "c"}
    config = SaslConfig.from_config(sasl_config(tmp_path, {"sasl.jaas.config": PLAIN_JAAS,
                                                           "comlog.sasl.users": "carol:carol-secret"}),
                                    ScramCredentials.load(tmp_path))
    for user, password in (("admin", "admin-secret"), ("alice", "alice-secret"), ("carol", "carol-secret")):
        server = config.listeners["SASL"].mechanisms["PLAIN"]()
        server.evaluate(plain(user, password), NOW_MS)
        assert server.authorization_id == user
    with pytest.raises(SaslConfigError, match="user 'alice' is also in sasl.jaas.config"):
        SaslConfig.from_config(sasl_config(tmp_path, {"sasl.jaas.config": PLAIN_JAAS, "comlog.sasl.users": "alice:x"}),
                               ScramCredentials.load(tmp_path))


def test_a_user_has_one_password_across_the_users_properties(tmp_path):
    with pytest.raises(SaslConfigError) as refused:
        SaslConfig.from_config(sasl_config(tmp_path, {"comlog.sasl.users": "alice:one-secret",
                                                      "listener.name.sasl.comlog.sasl.users": "alice:two-secret"}),
                               ScramCredentials.load(tmp_path))
    assert "user 'alice' has another password" in str(refused.value) and "secret" not in str(refused.value)


async def test_a_broker_with_a_malformed_sasl_property_does_not_start(tmp_path):
    config = sasl_config(tmp_path, {"sasl.jaas.config": f"{PLAIN_MODULE} required"})
    with pytest.raises(SaslConfigError, match="^sasl.jaas.config: JAAS config entry not terminated"):
        async with Broker(config):
            pass
    # Refused before anything was held: a corrected start takes the data directory.
    async with Broker(sasl_config(tmp_path, {})):
        pass


def test_a_listener_offers_the_enabled_mechanisms_it_has_configuration_for(tmp_path):
    store = ScramCredentials.load(tmp_path)
    bare = SaslConfig.from_config(sasl_config(tmp_path, {}), store)
    assert list(bare.listeners["SASL"].mechanisms) == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    oauth = f"{OAUTH_MODULE} required;"
    configured = SaslConfig.from_config(sasl_config(tmp_path, {
        "listener.name.sasl.plain.sasl.jaas.config": PLAIN_JAAS, "listener.name.sasl.sasl.jaas.config": oauth},
        mechanisms=("PLAIN", "OAUTHBEARER", "GSSAPI")), store)
    assert list(configured.listeners["SASL"].mechanisms) == ["PLAIN", "OAUTHBEARER"]
    with pytest.raises(SaslConfigError, match="oauthbearer.sasl.jaas.config: Allowable clock skew"):
        SaslConfig.from_config(sasl_config(tmp_path, {"oauthbearer.sasl.jaas.config": (
            f'{OAUTH_MODULE} required unsecuredValidatorAllowableClockSkewMs="-1";')},
            mechanisms=("OAUTHBEARER",)), store)


# --- Over a socket ---

def sasl_config(tmp_path, properties: dict, *, mechanisms=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
                max_reauth_ms: int = 0) -> BrokerConfig:
    return BrokerConfig(
        data_dir=tmp_path / "data", properties=properties, sasl_enabled_mechanisms=mechanisms,
        connections_max_reauth_ms=max_reauth_ms,
        listeners=(Listener("PLAIN", "PLAINTEXT", "127.0.0.1", 0), Listener("SASL", "SASL_PLAINTEXT", "127.0.0.1", 0)))


class Clock:
    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def properties() -> dict:
    return {"listener.name.sasl.plain.sasl.jaas.config": PLAIN_JAAS, "comlog.sasl.users": "carol:carol-secret",
            "oauthbearer.sasl.jaas.config": f'{OAUTH_MODULE} required unsecuredValidatorRequiredScope="write";'}


@pytest.fixture
def max_reauth_ms() -> int:
    return 0


@pytest.fixture
async def sasl_broker(tmp_path, nursery, clock, properties, max_reauth_ms):
    config = sasl_config(tmp_path, properties, mechanisms=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"),
                         max_reauth_ms=max_reauth_ms)
    async with Broker(config, clock=clock) as broker:
        # What the broker's start does (see seed_scram_credentials).
        await seed_scram_credentials(broker)
        await nursery.start(broker.serve)
        yield broker


@pytest.fixture
async def sasl_client(sasl_broker):
    client = await WireClient.connect(sasl_broker.ports["SASL"])
    yield client
    await client.aclose()


async def handshake(client, mechanism: str, version: int = 1):
    return await client.request(ApiKey.SASL_HANDSHAKE, version, {"mechanism": mechanism})


async def authenticate(client, token: bytes, version: int = 2):
    return await client.request(ApiKey.SASL_AUTHENTICATE, version, {"auth_bytes": token})


async def metadata(client):
    return await client.request(ApiKey.METADATA, 1, {"topics": None})


async def closed(client) -> bool:
    with trio.fail_after(5):
        return await client.receive_frame() is None


async def test_plain_over_the_wire_then_requests_are_answered(sasl_client):
    versions = await sasl_client.request(ApiKey.API_VERSIONS, 3, {})
    assert {ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE} <= {api.api_key for api in versions.api_keys}
    shaken = await handshake(sasl_client, "PLAIN")
    assert (shaken.error_code, shaken.mechanisms) == (ErrorCode.NONE, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                                                        "OAUTHBEARER"])
    answer = await authenticate(sasl_client, plain("alice", "alice-secret"))
    assert (answer.error_code, answer.error_message, answer.auth_bytes, answer.session_lifetime_ms) == (
        ErrorCode.NONE, None, b"", 0)
    assert [topic.name for topic in (await metadata(sasl_client)).topics] == ["comlog"]
    # Authenticated, with no re-authentication to do: both are out of place now.
    assert (await handshake(sasl_client, "PLAIN")).error_code == ErrorCode.ILLEGAL_SASL_STATE
    again = await authenticate(sasl_client, plain("alice", "alice-secret"))
    assert (again.error_code, again.error_message) == (
        ErrorCode.ILLEGAL_SASL_STATE, "SaslAuthenticate request received after successful authentication")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_scram_over_the_wire(sasl_client, mechanism):
    assert (await handshake(sasl_client, mechanism)).error_code == ErrorCode.NONE
    client = ScramClient([mechanism], "carol", "carol-secret")
    server_first = await authenticate(sasl_client, client.get_client_first().encode())
    client.set_server_first(server_first.auth_bytes.decode())
    server_final = await authenticate(sasl_client, client.get_client_final().encode())
    assert server_final.error_code == ErrorCode.NONE
    client.set_server_final(server_final.auth_bytes.decode())
    assert (await metadata(sasl_client)).topics


async def test_oauthbearer_over_the_wire(sasl_client):
    assert (await handshake(sasl_client, "OAUTHBEARER")).error_code == ErrorCode.NONE
    answer = await authenticate(sasl_client, bearer(unsecured_token(claims())))
    # Kafka's session lifetime is the token's, even without connections.max.reauth.ms.
    assert (answer.error_code, answer.session_lifetime_ms) == (ErrorCode.NONE, 60_000)
    assert (await metadata(sasl_client)).topics


async def test_v0_handshake_exchanges_bare_tokens(sasl_client):
    assert (await handshake(sasl_client, "SCRAM-SHA-256", version=0)).error_code == ErrorCode.NONE
    client = ScramClient(["SCRAM-SHA-256"], "carol", "carol-secret")

    async def exchange(token: str) -> str:
        await sasl_client.send_raw(struct.pack(">i", len(token)) + token.encode())
        return bytes(await sasl_client.receive_frame()).decode()

    client.set_server_first(await exchange(client.get_client_first()))
    client.set_server_final(await exchange(client.get_client_final()))
    assert (await metadata(sasl_client)).topics


async def test_v0_handshake_failure_closes_without_an_answer(sasl_client):
    assert (await handshake(sasl_client, "PLAIN", version=0)).error_code == ErrorCode.NONE
    token = plain("alice", "wrong")
    await sasl_client.send_raw(struct.pack(">i", len(token)) + token)
    assert await closed(sasl_client)


@pytest.mark.parametrize("first", [ApiKey.METADATA, ApiKey.SASL_AUTHENTICATE])
async def test_a_request_before_the_handshake_closes_the_connection(sasl_client, first):
    await sasl_client.send(first, 1, {"topics": None} if first == ApiKey.METADATA else {"auth_bytes": b""})
    assert await closed(sasl_client)


async def test_a_request_during_the_exchange_is_answered_illegal_sasl_state_then_the_connection_closes(sasl_client):
    # As Kafka's SaslServerAuthenticator answers it: the request's error response.
    assert (await handshake(sasl_client, "PLAIN")).error_code == ErrorCode.NONE
    answer = await sasl_client.request(ApiKey.METADATA, 1, {"topics": [{"name": "comlog"}]})
    assert [(topic.name, topic.error_code, topic.partitions) for topic in answer.topics] == [
        ("comlog", ErrorCode.ILLEGAL_SASL_STATE, [])]
    assert await closed(sasl_client)


async def test_sasl_requests_on_a_plaintext_listener_are_in_an_illegal_state(sasl_broker):
    client = await WireClient.connect(sasl_broker.ports["PLAIN"])
    try:
        shaken = await handshake(client, "PLAIN")
        assert (shaken.error_code, shaken.mechanisms) == (ErrorCode.ILLEGAL_SASL_STATE, [])
        answer = await authenticate(client, plain("alice", "alice-secret"), version=0)
        assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert (await metadata(client)).topics
    finally:
        await client.aclose()


async def test_wrong_credentials_are_answered_and_then_the_connection_closes(sasl_client):
    assert (await handshake(sasl_client, "PLAIN")).error_code == ErrorCode.NONE
    answer = await authenticate(sasl_client, plain("alice", "wrong"))
    assert (answer.error_code, answer.error_message) == (
        ErrorCode.SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password")
    assert await closed(sasl_client)


# --- Through handle_frame, as a SASL listener's connection task calls it ---

class Connection:
    """Requests into Broker.handle_frame as one connection of the SASL listener sends them; a
    failing answer comes back with closing set (CloseAfterResponse's response, decoded)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._session = Session("SASL", "SASL_PLAINTEXT", "127.0.0.1")
        self._session.sasl = broker.sasl.authenticator(self._session)
        self._in_flight = InFlightRequests("test")
        self.closing: str | None = None

    async def request(self, api_key: int, version: int, body: dict):
        _, data = self._in_flight.request(api_key, version, body)
        token = CURRENT_SESSION.set(self._session)
        try:
            response = await self._broker.handle_frame(data[4:])
        except CloseAfterResponse as close:
            self.closing, response = str(close), close.response
        finally:
            CURRENT_SESSION.reset(token)
        return self._in_flight.response(b"".join(bytes(chunk) for chunk in response[1:]))[1]

    @property
    def principal(self) -> str:
        return self._session.principal


@pytest.fixture
def connection(sasl_broker) -> Connection:
    return Connection(sasl_broker)


@pytest.mark.parametrize(("mechanism", "token", "message"), [
    ("PLAIN", plain("alice", "wrong"), "Authentication failed: Invalid username or password"),
    ("PLAIN", plain("mallory", "alice-secret"), "Authentication failed: Invalid username or password"),
    ("SCRAM-SHA-256", b"n,,n=carol,r=abc", None),
    ("OAUTHBEARER", b"\x01", None),
])
async def test_a_failed_authentication_is_answered_then_closes(connection, mechanism, token, message):
    assert (await connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": mechanism})).error_code == ErrorCode.NONE
    if mechanism == "SCRAM-SHA-256":  # a proof that does not match
        await connection.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": token})
        token = b"c=biws,r=abc,p=" + base64.b64encode(b"\0" * 32)
        message = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    if mechanism == "OAUTHBEARER":  # a token without the required scope, then the client's \x01
        challenge = await connection.request(ApiKey.SASL_AUTHENTICATE, 2, {
            "auth_bytes": bearer(unsecured_token(claims(scope="read")))})
        assert (challenge.error_code, connection.closing) == (ErrorCode.NONE, None)
        message = challenge.auth_bytes.decode()
        assert message == '{"status":"insufficient_scope", "scope":"[write]"}'
    answer = await connection.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": token})
    assert (answer.error_code, answer.error_message) == (ErrorCode.SASL_AUTHENTICATION_FAILED, message)
    assert connection.closing == message
    assert connection.principal == "User:ANONYMOUS"


async def test_an_unsupported_mechanism_is_answered_with_the_offered_ones_then_closes(connection):
    answer = await connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "GSSAPI"})
    assert (answer.error_code, answer.mechanisms) == (
        ErrorCode.UNSUPPORTED_SASL_MECHANISM, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"])
    assert connection.closing == "Unsupported SASL mechanism GSSAPI"


@pytest.mark.parametrize(("api_key", "version", "body"), [
    (ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}),
    (ApiKey.FIND_COORDINATOR, 0, {"key": "group"}),
])
async def test_a_request_amid_the_exchange_is_answered_illegal_sasl_state_then_closes(connection, api_key, version, body):
    await connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    answer = await connection.request(api_key, version, body)
    assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
    assert connection.closing == f"Unexpected Kafka request of type {api_key.name} during SASL authentication."


async def test_a_large_frame_before_authentication_closes_the_connection(sasl_broker, sasl_client):
    # The size alone closes it: the broker neither waits for nor buffers the frame.
    await sasl_client.send_raw(SIZE_PREFIX.pack(SASL_MAX_RECEIVE_SIZE + 1))
    assert await closed(sasl_client)
    client = await WireClient.connect(sasl_broker.ports["SASL"])
    try:
        assert (await handshake(client, "PLAIN")).error_code == ErrorCode.NONE
        assert (await authenticate(client, plain("alice", "alice-secret"))).error_code == ErrorCode.NONE
        # Authenticated, the broker's own limit applies.
        large = {"auth_bytes": b"x" * SASL_MAX_RECEIVE_SIZE}
        assert (await client.request(ApiKey.SASL_AUTHENTICATE, 2, large)).error_code == ErrorCode.ILLEGAL_SASL_STATE
    finally:
        await client.aclose()


async def test_the_principal_is_the_user_authenticated(connection):
    await connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    await connection.request(ApiKey.SASL_AUTHENTICATE, 1, {"auth_bytes": plain("alice", "alice-secret")})
    assert (connection.principal, connection.closing) == ("User:alice", None)


# --- Re-authentication (KIP-368) ---

async def login(connection_or_client, user: str, *, version: int = 2):
    await connection_or_client.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    return await connection_or_client.request(ApiKey.SASL_AUTHENTICATE, version,
                                              {"auth_bytes": plain(user, f"{user}-secret")})


@pytest.mark.parametrize("max_reauth_ms", [10_000])
async def test_reauthentication_renews_the_session(sasl_client, clock):
    assert (await sasl_client.request(ApiKey.API_VERSIONS, 3, {})).error_code == ErrorCode.NONE
    assert (await login(sasl_client, "alice")).session_lifetime_ms == 10_000
    clock.now_ms += 9_000
    assert (await metadata(sasl_client)).topics
    renewed = await login(sasl_client, "alice")
    assert (renewed.error_code, renewed.session_lifetime_ms) == (ErrorCode.NONE, 10_000)
    clock.now_ms += 9_000  # past the first session's end, within the second's
    assert (await metadata(sasl_client)).topics
    # A second re-authentication within a second of the last is not one: KafkaApis answers it.
    assert (await login(sasl_client, "alice")).error_code == ErrorCode.NONE
    assert (await handshake(sasl_client, "PLAIN")).error_code == ErrorCode.ILLEGAL_SASL_STATE


@pytest.mark.parametrize("max_reauth_ms", [10_000])
async def test_a_request_after_the_session_expired_closes_the_connection(sasl_client, clock):
    await login(sasl_client, "alice")
    clock.now_ms += 10_000
    assert (await metadata(sasl_client)).topics  # expired is after the lifetime, not at its end
    clock.now_ms += 1
    await sasl_client.send(ApiKey.METADATA, 1, {"topics": None})
    assert await closed(sasl_client)


@pytest.mark.parametrize("max_reauth_ms", [10_000])
async def test_an_expired_session_may_still_reauthenticate(sasl_client, clock):
    await login(sasl_client, "alice")
    clock.now_ms += 60_000
    assert (await login(sasl_client, "alice")).error_code == ErrorCode.NONE
    assert (await metadata(sasl_client)).topics


@pytest.mark.parametrize("max_reauth_ms", [10_000])
async def test_reauthentication_may_not_change_the_principal_or_the_mechanism(connection, clock):
    await login(connection, "alice")
    clock.now_ms += 5_000
    answer = await login(connection, "admin")
    assert (answer.error_code, answer.error_message) == (
        ErrorCode.SASL_AUTHENTICATION_FAILED,
        "Cannot change principals during re-authentication from User.alice: User.admin")
    assert connection.principal == "User:alice"
    assert connection.closing == answer.error_message


@pytest.mark.parametrize("max_reauth_ms", [10_000])
async def test_reauthentication_with_another_mechanism_closes_the_connection(sasl_client, clock):
    await login(sasl_client, "alice")
    clock.now_ms += 5_000
    assert (await handshake(sasl_client, "SCRAM-SHA-256")).error_code == ErrorCode.NONE
    await sasl_client.send(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": b"n,,n=carol,r=abc"})
    assert await closed(sasl_client)


@pytest.mark.parametrize("max_reauth_ms", [120_000])
async def test_an_oauthbearer_session_ends_with_its_token(sasl_client, clock):
    await handshake(sasl_client, "OAUTHBEARER")
    answer = await authenticate(sasl_client, bearer(unsecured_token(claims(scope="write"))))
    assert answer.session_lifetime_ms == 60_000
    clock.now_ms += 60_001
    await sasl_client.send(ApiKey.METADATA, 1, {"topics": None})
    assert await closed(sasl_client)
