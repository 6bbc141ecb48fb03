"""SASL authentication as Kafka's SaslServerAuthenticator does it, without I/O: the mechanisms'
servers (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with Kafka's unsecured-token validation), the
users and options they take from Kafka's JAAS properties, and each connection's progress through
handshake, authentication and re-authentication (KIP-368).

The broker drives it (broker.handlers.sasl, Broker.handle_frame): this module only decides. Every
comparison of a secret is constant time, and an unknown user fails exactly as a wrong password does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from broker.scram import ScramCredential, ScramCredentialUpsertion, ScramMechanism
from protocol.messages import ApiKey

if TYPE_CHECKING:
    from broker.config import BrokerConfig
    from broker.scram import ScramCredentials
    from broker.session import Session

PLAIN, OAUTHBEARER = "PLAIN", "OAUTHBEARER"
SCRAM_MECHANISMS = {mechanism.mechanism_name: mechanism for mechanism in ScramMechanism}
# The login module a mechanism's JAAS entry names: an unscoped sasl.jaas.config serves the
# mechanism of the module it names.
LOGIN_MODULES = {
    "org.apache.kafka.common.security.plain.PlainLoginModule": (PLAIN,),
    "org.apache.kafka.common.security.scram.ScramLoginModule": tuple(SCRAM_MECHANISMS),
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule": (OAUTHBEARER,),
}
# ComLog's own users property: user:password,user:password (PLAIN, and SCRAM once seeded).
USERS_PROPERTY = "comlog.sasl.users"
# The iteration count of the SCRAM credentials seeded from USERS_PROPERTY (kafka-configs' default).
SEED_ITERATIONS = 4096
SALT_BYTES = 16
# Kafka's KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS: a SaslHandshake sooner after the
# last re-authentication began is answered as one outside any authentication.
MIN_REAUTH_INTERVAL_MS = 1000


class SaslConfigError(ValueError):
    """A SASL property the broker cannot start with; the message names the property and why (and
    never repeats a secret)."""


class SaslAuthenticationFailed(Exception):
    """The client's credentials are refused. `message` is what Kafka tells the client; None for
    the refusals Kafka answers with its generic "invalid credentials" message."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "invalid credentials")
        self.message = message


# --- Kafka's JAAS configuration text (org.apache.kafka.common.security.JaasConfig) ---

@dataclasses.dataclass(frozen=True)
class JaasLoginModule:
    name: str
    flag: str
    # Passwords among them: out of reprs and logs.
    options: Mapping[str, str] = dataclasses.field(repr=False)


_JAAS_TOKENS = re.compile(r"""
    (?P<space>\s+) | (?P<comment>//[^\n]*|/\*.*?\*/)
    | "(?P<double>(?:[^"\\]|\\.)*)" | '(?P<single>(?:[^'\\]|\\.)*)'
    | (?P<word>[A-Za-z_$][A-Za-z0-9_$.\-]*)
    | (?P<number>[0-9.\-][A-Za-z0-9_$.\-]*)
    | (?P<char>.)""", re.VERBOSE | re.DOTALL)
# java.io.StreamTokenizer's escapes in quoted values; any other escaped character is itself.
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = re.compile(r"\\([0-7]{1,3}|.)", re.DOTALL)
_FLAGS = ("required", "requisite", "sufficient", "optional")


def _unescaped(text: str) -> str:
    def one(match: re.Match) -> str:
        escaped = match[1]
        if escaped[0] in "01234567":
            return chr(int(escaped, 8))
        return _ESCAPES.get(escaped, escaped)
    return _ESCAPE.sub(one, text)


def _jaas_tokens(property_name: str, text: str) -> list[tuple[str, str | None]]:
    """(kind, text) tokens: kind "word" (unquoted or quoted: text is the value), "number" (a value
    Kafka refuses unquoted: text None) or the punctuation character itself."""
    tokens: list[tuple[str, str | None]] = []
    for match in _JAAS_TOKENS.finditer(text):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        if kind in ("double", "single"):
            tokens.append(("word", _unescaped(match[kind])))
        elif kind == "word":
            tokens.append(("word", match[kind]))
        elif kind == "number":
            tokens.append(("number", None))
        elif match[kind] in "\"'":
            raise SaslConfigError(f"{property_name}: unterminated quoted value in JAAS config")
        elif match[kind] == "/" and text.startswith("/*", match.start()):
            raise SaslConfigError(f"{property_name}: unterminated comment in JAAS config")
        else:
            tokens.append((match[kind], None))
    return tokens


def parse_jaas_config(property_name: str, text: str) -> JaasLoginModule:
    """The one login module of a sasl.jaas.config value, with Kafka's refusals (JaasConfig,
    JaasContext.load), as SaslConfigError naming the property."""
    def refuse(reason: str):
        return SaslConfigError(f"{property_name}: {reason}")

    tokens = _jaas_tokens(property_name, text)
    modules = []
    position = 0
    while position < len(tokens):
        kind, name = tokens[position]
        if kind != "word":
            raise refuse("Login module not specified in JAAS config")
        if position + 1 >= len(tokens):
            raise refuse("Login module control flag not specified in JAAS config")
        flag_kind, flag = tokens[position + 1]
        if flag_kind != "word" or flag.lower() not in _FLAGS:
            raise refuse("Invalid login module control flag in JAAS config")
        position += 2
        options: dict[str, str] = {}
        while position < len(tokens) and tokens[position][0] != ";":
            key_kind, key = tokens[position]
            if key_kind != "word":
                raise refuse("Option name expected in JAAS config")
            value = tokens[position + 2] if position + 2 < len(tokens) else None
            if position + 1 >= len(tokens) or tokens[position + 1][0] != "=" or value is None or value[0] != "word":
                raise refuse(f"Value not specified for key '{key}' in JAAS config")
            options[key] = value[1]
            position += 3
        if position >= len(tokens):
            raise refuse("JAAS config entry not terminated by semi-colon")
        position += 1
        modules.append(JaasLoginModule(name, flag.lower(), options))
    if len(modules) != 1:
        raise refuse("Login module not specified in JAAS config" if not modules else
                     f"JAAS config property contains {len(modules)} login modules, should be 1 module")
    return modules[0]


def parse_users(property_name: str, text: str) -> dict[str, str]:
    """ComLog's users property, "alice:alice-secret,bob:bob-secret": password by user."""
    users: dict[str, str] = {}
    for number, entry in enumerate(text.split(","), 1):
        user, colon, password = entry.strip().partition(":")
        if not colon or not user or not password:
            raise SaslConfigError(f"{property_name}: entry {number} is not user:password")
        if user in users:
            raise SaslConfigError(f"{property_name}: user {user!r} is given twice")
        users[user] = password
    return users


# --- The mechanisms' servers ---

class MechanismServer(Protocol):
    """One authentication exchange, as javax.security.sasl.SaslServer: evaluate each client token
    into the challenge sent back, until complete."""

    complete: bool
    # The user authenticated, once complete.
    authorization_id: str | None
    # When the credential stops being valid (ms since the epoch), if it says (OAUTHBEARER tokens).
    credential_expiry_ms: int | None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        """The challenge for `token`; raises SaslAuthenticationFailed."""


class PlainServer:
    """RFC 4616 as Kafka's PlainSaslServer: [authzid] NUL user NUL password, checked against the
    listener's users; the authzid, when given, must be the user."""

    credential_expiry_ms = None

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self.complete = False
        self.authorization_id: str | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        parts = token.decode("utf-8", "replace").split("\0", 3)
        if len(parts) != 3:
            raise SaslAuthenticationFailed(f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}")
        authzid, username, password = parts
        if not username:
            raise SaslAuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise SaslAuthenticationFailed("Authentication failed: password not specified")
        expected = self._users.get(username)
        # An unknown user is compared too, against a password no one has, so it takes as long.
        matches = hmac.compare_digest((expected if expected is not None else "\0" + password).encode(),
                                      password.encode())
        if not matches or expected is None:
            raise SaslAuthenticationFailed("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise SaslAuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username")
        self.authorization_id = username
        self.complete = True
        return b""


# ScramMessages' grammar, as Kafka's regular expressions have it.
_VALUE = r"[\x01-\x2b\x2d-\x7f]+"
_PRINTABLE = r"[\x21-\x2b\x2d-\x7e]+"
_SASLNAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"
_BASE64 = r"(?:[a-zA-Z0-9/+]{4})*(?:[a-zA-Z0-9/+]{3}=|[a-zA-Z0-9/+]{2}==)?"
_EXTENSIONS = rf"(?:,[A-Za-z]+={_VALUE})*"
_CLIENT_FIRST = re.compile(
    rf"(?P<gs2>n,(?:a=(?P<authzid>{_SASLNAME}))?,)(?:m={_VALUE},)?"
    rf"(?P<bare>n=(?P<saslname>{_SASLNAME}),r=(?P<nonce>{_PRINTABLE})(?P<extensions>{_EXTENSIONS}))")
_CLIENT_FINAL = re.compile(
    rf"(?P<without_proof>c=(?P<channel>{_BASE64}),r=(?P<nonce>{_PRINTABLE}){_EXTENSIONS}),p=(?P<proof>{_BASE64})")


def _scram_username(saslname: str) -> str:
    """RFC 5802's saslname decoding (ScramFormatter.username)."""
    return saslname.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    """RFC 5802 / RFC 7677 as Kafka's ScramSaslServer: client-first, server-first (the stored
    salt and iterations, the client's nonce plus ours), client-final with the proof checked
    against the StoredKey, server-final with the server's signature.

    An unknown user gets a server-first as a known one does (a salt derived from the user name
    with the broker's secret key) and fails at the proof, as a wrong password does: Kafka fails it
    at once, telling who has credentials. Delegation tokens (the tokenauth extension) are refused."""

    credential_expiry_ms = None

    def __init__(self, mechanism: ScramMechanism, credentials: ScramCredentials, unknown_user_key: bytes) -> None:
        self._mechanism = mechanism
        self._credentials = credentials
        self._unknown_user_key = unknown_user_key
        self._credential: ScramCredential | None = None
        self._auth_message_start = ""
        self._nonce = ""
        self._gs2_header = ""
        self.complete = False
        self.authorization_id: str | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if self._credential is None:
            return self._server_first(token.decode("ascii", "replace"))
        if not self.complete and self._nonce:
            return self._server_final(token.decode("ascii", "replace"))
        raise SaslAuthenticationFailed()

    def _server_first(self, message: str) -> bytes:
        first = _CLIENT_FIRST.fullmatch(message)
        if first is None:
            raise SaslAuthenticationFailed()
        username = _scram_username(first["saslname"])
        extensions = dict(item.partition("=")[::2] for item in first["extensions"].split(",")[1:])
        if extensions.get("tokenauth", "").lower() == "true":
            raise SaslAuthenticationFailed()
        authzid = first["authzid"]
        if authzid and _scram_username(authzid) != username:
            raise SaslAuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username")
        self._credential = (self._credentials.credential(username, self._mechanism)
                            or self._unknown_user_credential(username))
        self.authorization_id = username
        self._gs2_header = first["gs2"]
        self._nonce = first["nonce"] + secrets.token_urlsafe(24)
        server_first = (f"r={self._nonce},s={base64.b64encode(self._credential.salt).decode()},"
                        f"i={self._credential.iterations}")
        self._auth_message_start = f"{first['bare']},{server_first},"
        return server_first.encode()

    def _unknown_user_credential(self, username: str) -> ScramCredential:
        # The same salt each time for one name, so that asking twice tells nothing either; keys
        # no password gives.
        digest = hmac.digest(self._unknown_user_key, username.encode(), "sha256")
        return ScramCredential(digest[:SALT_BYTES], secrets.token_bytes(len(digest)), b"", SEED_ITERATIONS)

    def _server_final(self, message: str) -> bytes:
        final = _CLIENT_FINAL.fullmatch(message)
        credential, nonce = self._credential, self._nonce
        self._nonce = ""  # one attempt per exchange
        # Kafka checks only that the client's nonce ends with the server's (librdkafka 2.0 sends
        # the client nonce before it again).
        if (final is None or not nonce
                or not hmac.compare_digest(final["nonce"][-len(nonce):].encode(), nonce.encode())
                or base64.b64decode(final["channel"]) != self._gs2_header.encode()):
            raise SaslAuthenticationFailed()
        auth_message = (self._auth_message_start + final["without_proof"]).encode()
        hash_name = self._mechanism.hash_name
        client_signature = hmac.digest(credential.stored_key, auth_message, hash_name)
        proof = base64.b64decode(final["proof"])
        if len(proof) != len(client_signature):
            raise SaslAuthenticationFailed()
        client_key = bytes(p ^ s for p, s in zip(proof, client_signature))
        if not hmac.compare_digest(hashlib.new(hash_name, client_key).digest(), credential.stored_key):
            raise SaslAuthenticationFailed()
        self.complete = True
        return b"v=" + base64.b64encode(hmac.digest(credential.server_key, auth_message, hash_name))


@dataclasses.dataclass(frozen=True)
class OAuthBearerOptions:
    """The options of Kafka's OAuthBearerUnsecuredValidatorCallbackHandler (the JAAS entry's
    unsecuredValidator* options)."""

    principal_claim_name: str = "sub"
    scope_claim_name: str = "scope"
    required_scope: tuple[str, ...] = ()
    allowable_clock_skew_ms: int = 0

    @classmethod
    def from_jaas(cls, property_name: str, module: JaasLoginModule) -> OAuthBearerOptions:
        options = module.options
        skew_text = options.get("unsecuredValidatorAllowableClockSkewMs", "").strip()
        try:
            skew = int(skew_text) if skew_text else 0
        except ValueError:
            raise SaslConfigError(f"{property_name}: unsecuredValidatorAllowableClockSkewMs is not an integer") from None
        if skew < 0:
            raise SaslConfigError(f"{property_name}: Allowable clock skew millis must not be negative")
        return cls(options.get("unsecuredValidatorPrincipalClaimName", "").strip() or "sub",
                   options.get("unsecuredValidatorScopeClaimName", "").strip() or "scope",
                   tuple(options.get("unsecuredValidatorRequiredScope", "").split()), skew)


_OAUTH_KVPAIRS = r"(?:[A-Za-z]+=[\x21-\x7e \t\r\n]+\x01)*"
_OAUTH_INITIAL = re.compile(rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,\x01(?P<kvpairs>{_OAUTH_KVPAIRS})\x01")
_OAUTH_AUTH = re.compile(r"(?P<scheme>\w+) +(?P<token>[-_~+/.a-zA-Z0-9]+=*)")


class _InvalidToken(Exception):
    def __init__(self, scope: tuple[str, ...] | None = None) -> None:
        self.scope = scope


def _json_part(part: str) -> dict:
    try:
        # Base64url, as RFC 7515 encodes JWS parts (Kafka's decoder takes the standard alphabet:
        # both are accepted), padding optional.
        decoded = base64.b64decode(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4), validate=True)
        value = json.loads(decoded)
    except (binascii.Error, ValueError):
        raise _InvalidToken() from None
    if not isinstance(value, dict):
        raise _InvalidToken()
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class OAuthBearerServer:
    """RFC 7628 as Kafka's OAuthBearerSaslServer, with its unsecured validator: a JWS with alg
    "none" and no signature, whose principal claim (sub) is a non-blank string, exp a number of
    seconds still ahead, iat (if any) not ahead, both within the allowed clock skew, and whose
    scope holds the required scope. An invalid token is answered with RFC 7628's JSON error, and
    the exchange fails on the client's \\x01 that follows."""

    def __init__(self, options: OAuthBearerOptions) -> None:
        self._options = options
        self._error: str | None = None
        self.complete = False
        self.authorization_id: str | None = None
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if token == b"\x01" and self._error is not None:
            raise SaslAuthenticationFailed(self._error)
        self._error = None
        initial = _OAUTH_INITIAL.fullmatch(token.decode("utf-8", "replace"))
        if initial is None:
            raise SaslAuthenticationFailed()
        pairs = dict(pair.partition("=")[::2] for pair in initial["kvpairs"].split("\x01") if pair)
        auth = _OAUTH_AUTH.fullmatch(pairs.get("auth", ""))
        if auth is None or auth["scheme"].lower() != "bearer":
            raise SaslAuthenticationFailed()
        try:
            principal, expiry_ms = self._validated(auth["token"], now_ms)
        except _InvalidToken as invalid:
            if invalid.scope is None:
                self._error = '{"status":"invalid_token"}'
            else:
                self._error = f'{{"status":"insufficient_scope", "scope":"[{", ".join(invalid.scope)}]"}}'
            return self._error.encode()
        authzid = initial["authzid"]
        if authzid and authzid != principal:
            raise SaslAuthenticationFailed(
                f"Authentication failed: Client requested an authorization id ({authzid}) that is "
                f"different from the token's principal name ({principal})")
        # Kafka's unsecured validator accepts every extension.
        self.authorization_id = principal
        self.credential_expiry_ms = expiry_ms
        self.complete = True
        return b""

    def _validated(self, token: str, now_ms: int) -> tuple[str, int]:
        """The token's principal and expiry (ms), or _InvalidToken."""
        options = self._options
        parts = token.split(".")
        if ".." in token or len(parts) != 3:
            raise _InvalidToken()
        header, claims = _json_part(parts[0]), _json_part(parts[1])
        if header.get("alg") != "none" or parts[2]:
            raise _InvalidToken()
        principal = claims.get(options.principal_claim_name)
        expiry, issued = claims.get("exp"), claims.get("iat")
        if not isinstance(principal, str) or not principal.strip() or not _is_number(expiry):
            raise _InvalidToken()
        skew = options.allowable_clock_skew_ms
        if issued is not None and (not _is_number(issued) or 1000 * issued > now_ms + skew):
            raise _InvalidToken()
        if now_ms - skew >= 1000 * expiry or (issued is not None and expiry <= issued):
            raise _InvalidToken()
        scope = claims.get(options.scope_claim_name)
        if isinstance(scope, str):
            granted = {scope.strip()} if scope.strip() else set()
        elif isinstance(scope, list) and all(isinstance(element, str) for element in scope):
            granted = {element.strip() for element in scope if element.strip()}
        elif scope is None:
            granted = set()
        else:
            raise _InvalidToken()
        if not set(options.required_scope) <= granted:
            raise _InvalidToken(options.required_scope)
        return principal, round(expiry * 1000)


# --- Each listener's mechanisms ---

@dataclasses.dataclass(frozen=True)
class ListenerSasl:
    """What a SASL listener offers: its enabled mechanisms that can authenticate someone, each
    with the factory of its servers."""

    mechanisms: Mapping[str, Callable[[], MechanismServer]]


class SaslConfig:
    """The SASL side of the broker's configuration, read and checked once at start
    (SaslConfig.from_config raises SaslConfigError): each SASL listener's mechanisms and users."""

    def __init__(self, listeners: Mapping[str, ListenerSasl], seeded_users: Mapping[str, str],
                 max_reauth_ms: int) -> None:
        self.listeners = listeners
        self._seeded_users = seeded_users
        self.max_reauth_ms = max_reauth_ms

    @classmethod
    def from_config(cls, config: BrokerConfig, credentials: ScramCredentials) -> SaslConfig:
        """Each SASL listener's mechanisms: PLAIN with the users of its PlainLoginModule entry
        (user_<name>="<password>") and of comlog.sasl.users; SCRAM-SHA-256/512 with `credentials`;
        OAUTHBEARER when an OAuthBearerLoginModule entry configures it. A property is looked up
        as Kafka's listener.name.<listener>.<mechanism>.sasl.jaas.config, then without the
        listener, then as sasl.jaas.config (listener-scoped or not) when it names the mechanism's
        login module."""
        unknown_user_key = secrets.token_bytes(32)
        parsed_users: dict[str, dict[str, str]] = {}

        def users_of(name: str) -> dict[str, str]:
            if name not in parsed_users:
                parsed_users[name] = parse_users(name, config.properties[name]) if name in config.properties else {}
            return parsed_users[name]

        users_of(USERS_PROPERTY)  # checked and seeded with or without a SASL listener
        listeners: dict[str, ListenerSasl] = {}
        for listener in config.effective_listeners:
            if not listener.sasl:
                continue
            users_name = config.listener_property_name(listener.name, USERS_PROPERTY)
            # Every mechanism's entry is read, so that a malformed one stops the start even unused.
            entries = {mechanism: _jaas_entry(config, listener.name, mechanism)
                       for mechanism in (PLAIN, OAUTHBEARER, *SCRAM_MECHANISMS)}
            mechanisms: dict[str, Callable[[], MechanismServer]] = {}
            for mechanism in config.sasl_enabled_mechanisms:
                if mechanism == PLAIN:
                    users = _plain_jaas_users(entries[PLAIN])
                    if both := sorted(users_of(users_name).keys() & users.keys()):
                        raise SaslConfigError(f"{users_name}: user {both[0]!r} is also in {entries[PLAIN][0]}")
                    users.update(users_of(users_name))
                    if users:
                        mechanisms[PLAIN] = functools.partial(PlainServer, users)
                elif mechanism in SCRAM_MECHANISMS:
                    mechanisms[mechanism] = functools.partial(ScramServer, SCRAM_MECHANISMS[mechanism],
                                                              credentials, unknown_user_key)
                elif mechanism == OAUTHBEARER and entries[OAUTHBEARER] is not None:
                    options = OAuthBearerOptions.from_jaas(*entries[OAUTHBEARER])
                    mechanisms[OAUTHBEARER] = functools.partial(OAuthBearerServer, options)
            listeners[listener.name] = ListenerSasl(mechanisms)
        seeded_users: dict[str, str] = {}
        for name, users in parsed_users.items():
            for user, password in users.items():
                # One SCRAM credential per user: its password must be the same everywhere.
                if seeded_users.setdefault(user, password) != password:
                    raise SaslConfigError(f"{name}: user {user!r} has another password in another users property")
        return cls(listeners, seeded_users, config.connections_max_reauth_ms)

    def authenticator(self, session: Session) -> SaslAuthenticator:
        return SaslAuthenticator(self.listeners.get(session.listener, ListenerSasl({})), session,
                                 self.max_reauth_ms)

    def scram_seeds(self, credentials: ScramCredentials, mechanism: ScramMechanism) -> list[ScramCredentialUpsertion]:
        """The `mechanism` credentials comlog.sasl.users' users lack, for ScramCredentials.alter
        (which takes one alteration per user at a time), each with a new salt. Blocks for the key
        derivation: call it off the event loop."""
        seeds = []
        for user, password in self._seeded_users.items():
            if credentials.credential(user, mechanism) is None:
                salt = secrets.token_bytes(SALT_BYTES)
                salted = hashlib.pbkdf2_hmac(mechanism.hash_name, password.encode(), salt, SEED_ITERATIONS)
                seeds.append(ScramCredentialUpsertion(user, mechanism, SEED_ITERATIONS, salt, salted))
        return seeds


def _jaas_entry(config: BrokerConfig, listener: str, mechanism: str) -> tuple[str, JaasLoginModule] | None:
    """The property configuring `mechanism` on `listener` and its login module, or None."""
    scoped = f"listener.name.{listener.lower()}."
    for name in (f"{mechanism.lower()}.sasl.jaas.config", "sasl.jaas.config"):
        for property_name in (scoped + name, name):
            text = config.properties.get(property_name)
            if text is None:
                continue
            module = parse_jaas_config(property_name, text)
            if name != "sasl.jaas.config" or mechanism in LOGIN_MODULES.get(module.name, ()):
                return property_name, module
    return None


def _plain_jaas_users(entry: tuple[str, JaasLoginModule] | None) -> dict[str, str]:
    """Kafka's PlainServerCallbackHandler users: the options user_<name>="<password>"."""
    if entry is None:
        return {}
    return {key.removeprefix("user_"): value for key, value in entry[1].options.items()
            if key.startswith("user_") and key != "user_"}


# --- Each connection's authentication ---

class SaslState(enum.Enum):
    # SaslServerAuthenticator's states, as this broker needs them.
    HANDSHAKE_OR_VERSIONS_REQUEST = enum.auto()
    HANDSHAKE_REQUEST = enum.auto()
    REAUTH_PROCESS_HANDSHAKE = enum.auto()
    AUTHENTICATE = enum.auto()
    REAUTH_BAD_MECHANISM = enum.auto()
    COMPLETE = enum.auto()
    FAILED = enum.auto()


_HANDSHAKE_STATES = (SaslState.HANDSHAKE_OR_VERSIONS_REQUEST, SaslState.HANDSHAKE_REQUEST,
                     SaslState.REAUTH_PROCESS_HANDSHAKE)


class SaslAuthenticator:
    """A SASL listener's connection from its first request: ApiVersions (once) and SaslHandshake,
    then SaslAuthenticate requests (or, after a SaslHandshake v0, bare tokens) until the mechanism
    completes; then any request, until the session expires. A SaslHandshake after authentication
    begins a re-authentication when the session has an expiry (KIP-368).

    `failure` is set when the connection must close once the response being sent has gone out."""

    def __init__(self, listener: ListenerSasl, session: Session, max_reauth_ms: int) -> None:
        self._listener = listener
        self._session = session
        self._max_reauth_ms = max_reauth_ms
        self.state = SaslState.HANDSHAKE_OR_VERSIONS_REQUEST
        self._mechanism: str | None = None
        self._server: MechanismServer | None = None
        # After SaslHandshake v0 the exchange is bare size-prefixed tokens (Kafka before 1.0).
        self._headers = True
        # Re-authentication: the mechanism and principal it must keep, and when it last began.
        self._previous: tuple[str, str] | None = None
        self._reauth_started_ms: int | None = None
        self._bad_mechanism = ""
        self.session_expiry_ms: int | None = None
        self.failure: str | None = None

    @property
    def mechanisms(self) -> list[str]:
        return list(self._listener.mechanisms)

    @property
    def raw_tokens(self) -> bool:
        """Whether the next frame is a bare SASL token rather than a request."""
        return not self._headers and self.state in (SaslState.AUTHENTICATE, SaslState.REAUTH_BAD_MECHANISM)

    @property
    def authenticated(self) -> bool:
        """Whether the connection is authenticated, and not re-authenticating."""
        return self.state == SaslState.COMPLETE

    @property
    def authenticating(self) -> bool:
        """Whether a SaslAuthenticate request is part of an exchange (else: ILLEGAL_SASL_STATE)."""
        return self.state == SaslState.AUTHENTICATE

    @property
    def in_handshake(self) -> bool:
        """Whether a SaslHandshake request is part of an exchange (else: ILLEGAL_SASL_STATE)."""
        return self.state in _HANDSHAKE_STATES

    def refusal(self, api_key: int, now_ms: int) -> str | None:
        """Why a request with `api_key` closes the connection now (None: it is answered), as
        SaslServerAuthenticator and SocketServer decide; a SaslHandshake may begin a
        re-authentication here."""
        state = self.state
        name = _api_name(api_key)
        if state == SaslState.COMPLETE:
            if api_key == ApiKey.SASL_HANDSHAKE and self._may_begin_reauthentication(now_ms):
                self._previous = (self._mechanism, self._session.principal)
                self._reauth_started_ms = now_ms
                self.state = SaslState.REAUTH_PROCESS_HANDSHAKE
                return None
            if self.session_expiry_ms is not None and now_ms > self.session_expiry_ms:
                return "the SASL session has expired: the client did not re-authenticate"
            return None
        if state == SaslState.HANDSHAKE_OR_VERSIONS_REQUEST and api_key == ApiKey.API_VERSIONS:
            self.state = SaslState.HANDSHAKE_REQUEST
            return None
        if state in (SaslState.HANDSHAKE_OR_VERSIONS_REQUEST, SaslState.HANDSHAKE_REQUEST):
            if api_key == ApiKey.SASL_HANDSHAKE:
                return None
            if api_key == ApiKey.API_VERSIONS:
                return f"Unexpected ApiVersions request received during SASL authentication state {state.name}"
            return f"Unexpected Kafka request of type {name} during SASL handshake."
        if state == SaslState.AUTHENTICATE and api_key == ApiKey.SASL_AUTHENTICATE:
            return None
        if state == SaslState.REAUTH_BAD_MECHANISM:
            return self._bad_mechanism
        return f"Unexpected Kafka request of type {name} during SASL authentication."

    def _may_begin_reauthentication(self, now_ms: int) -> bool:
        return self.session_expiry_ms is not None and (
            self._reauth_started_ms is None or now_ms - self._reauth_started_ms >= MIN_REAUTH_INTERVAL_MS)

    def handshake(self, mechanism: str, version: int) -> bool:
        """A SaslHandshake in a handshake state: whether the mechanism is one offered (if not,
        `failure` is set: the connection closes after the answer)."""
        self._headers = version >= 1
        factory = self._listener.mechanisms.get(mechanism)
        if factory is None:
            self._fail(f"Unsupported SASL mechanism {mechanism}")
            return False
        if self._previous is not None and mechanism != self._previous[0]:
            self._bad_mechanism = (f"SASL mechanism '{mechanism}' requested by client is not supported for "
                                   f"re-authentication of mechanism '{self._previous[0]}'")
            self.state = SaslState.REAUTH_BAD_MECHANISM
            return True
        self._mechanism = mechanism
        self._server = factory()
        self.state = SaslState.AUTHENTICATE
        return True

    def authenticate(self, token: bytes, now_ms: int) -> tuple[bytes, int]:
        """The challenge for the client's token and, once authenticated, the session's lifetime
        in ms (0: no limit, or not authenticated yet); raises SaslAuthenticationFailed with the
        message for the client, `failure` then set."""
        server = self._server
        try:
            if self.state == SaslState.REAUTH_BAD_MECHANISM:
                raise SaslAuthenticationFailed(self._bad_mechanism)
            challenge = server.evaluate(token, now_ms)
            if not server.complete:
                return challenge, 0
            principal = f"User:{server.authorization_id}"
            if self._previous is not None and principal != self._previous[1]:
                raise SaslAuthenticationFailed(
                    f"Cannot change principals during re-authentication from "
                    f"{self._previous[1].replace(':', '.', 1)}: {principal.replace(':', '.', 1)}")
        except SaslAuthenticationFailed as exc:
            message = exc.message or (
                f"Authentication failed during {'re-authentication' if self._previous else 'authentication'}"
                f" due to invalid credentials with SASL mechanism {self._mechanism}")
            self._fail(message)
            raise SaslAuthenticationFailed(message) from None
        lifetime_ms = self._lifetime_ms(server.credential_expiry_ms, now_ms)
        expires = server.credential_expiry_ms is not None or self._max_reauth_ms > 0
        self.session_expiry_ms = now_ms + lifetime_ms if expires else None
        self._session.principal = principal
        self._previous = None
        self._server = None
        self.state = SaslState.COMPLETE
        return challenge, lifetime_ms

    def _lifetime_ms(self, credential_expiry_ms: int | None, now_ms: int) -> int:
        """ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs: the shorter of
        connections.max.reauth.ms and the credential's remaining life; 0 when neither limits it."""
        limits = [self._max_reauth_ms] if self._max_reauth_ms > 0 else []
        if credential_expiry_ms is not None:
            limits.append(credential_expiry_ms - now_ms)
        return max(0, min(limits)) if limits else 0

    def _fail(self, reason: str) -> None:
        self.state = SaslState.FAILED
        self.failure = reason


def _api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name
    except ValueError:
        return str(api_key)
