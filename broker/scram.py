"""SCRAM credentials (KIP-554), kept as a Kafka controller keeps them (ScramControlManager).

Per user and mechanism: the salt, the iteration count, and the StoredKey and ServerKey derived
from the salted password the client sends (RFC 5802), never the salted password itself; that is
what a SASL/SCRAM authenticator checks a client's proof with (`ScramCredentials.credential`).
They live in the data directory's `scram-credentials.json`, replaced whole and atomically on
each change and read at start; a damaged file stops the start (MetadataError).
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import enum
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple, TypeVar

import trio

from broker.metadata import MetadataError, write_atomically
from broker.storage_work import run_storage_work
from protocol.errors import ApiError, ErrorCode

logger = logging.getLogger(__name__)

CREDENTIALS_FILE = "scram-credentials.json"
_FILE_VERSION = 1
# Kafka's bounds, the same for both mechanisms (ScramMechanism.minIterations,
# ScramControlManager.MAX_ITERATIONS).
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


class ScramMechanism(enum.IntEnum):
    """The mechanisms, by their code on the wire; Kafka calls every other code UNKNOWN (0)."""

    SCRAM_SHA_256 = 1
    SCRAM_SHA_512 = 2

    @property
    def mechanism_name(self) -> str:
        """The SASL name, "SCRAM-SHA-256"."""
        return self.name.replace("_", "-")

    @property
    def hash_name(self) -> str:
        """hashlib's name of the mechanism's hash function."""
        return _HASH_NAMES[self]


_HASH_NAMES = {ScramMechanism.SCRAM_SHA_256: "sha256", ScramMechanism.SCRAM_SHA_512: "sha512"}
_BY_MECHANISM_NAME = {mechanism.mechanism_name: mechanism for mechanism in ScramMechanism}


@dataclasses.dataclass(frozen=True)
class ScramCredential:
    """What authenticating a user with one mechanism takes; the keys stay out of reprs and logs."""

    salt: bytes = dataclasses.field(repr=False)
    stored_key: bytes = dataclasses.field(repr=False)
    server_key: bytes = dataclasses.field(repr=False)
    iterations: int

    @classmethod
    def from_salted_password(cls, mechanism: ScramMechanism, salt: bytes, salted_password: bytes,
                             iterations: int) -> ScramCredential:
        """StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey = HMAC(SaltedPassword,
        "Server Key"), as Kafka's ScramFormatter derives them."""
        client_key = hmac.digest(salted_password, b"Client Key", mechanism.hash_name)
        return cls(bytes(salt), hashlib.new(mechanism.hash_name, client_key).digest(),
                   hmac.digest(salted_password, b"Server Key", mechanism.hash_name), iterations)


class ScramCredentialDeletion(NamedTuple):
    name: str
    mechanism: int  # the code as sent: an unknown one is refused


class ScramCredentialUpsertion(NamedTuple):
    name: str
    mechanism: int
    iterations: int
    salt: bytes
    salted_password: bytes


# One user's credentials, by mechanism.
UserCredentials = dict[ScramMechanism, ScramCredential]
# An alteration accepted for a user: its mechanism and its upsertion (None: a deletion).
_Accepted = tuple[ScramMechanism, ScramCredentialUpsertion | None]
_Alteration = TypeVar("_Alteration", ScramCredentialDeletion, ScramCredentialUpsertion)


def _checked_mechanism(name: str, code: int) -> ScramMechanism:
    """Kafka's validateScramUsernameAndMechanism: the user named, the mechanism known."""
    if not name:
        raise ApiError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
    try:
        return ScramMechanism(code)
    except ValueError:
        raise ApiError(ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism") from None


def _checked_upsertion(upsertion: ScramCredentialUpsertion) -> _Accepted:
    mechanism = _checked_mechanism(upsertion.name, upsertion.mechanism)
    if upsertion.iterations < MIN_ITERATIONS:
        raise ApiError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations")
    if upsertion.iterations > MAX_ITERATIONS:
        raise ApiError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations")
    return mechanism, upsertion


def _derived(mechanism: ScramMechanism, upsertion: ScramCredentialUpsertion) -> ScramCredential:
    # Kafka derives the keys with Java's HMAC, which refuses an empty key: the upsertion fails
    # as an unexpected error, which Kafka sends without a message.
    if not upsertion.salted_password:
        raise ApiError(ErrorCode.UNKNOWN_SERVER_ERROR)
    return ScramCredential.from_salted_password(mechanism, upsertion.salt, upsertion.salted_password,
                                                upsertion.iterations)


class ScramCredentials:
    """Every user's SCRAM credentials, and Kafka's rules for describing and altering them."""

    def __init__(self, path: Path, credentials: dict[str, UserCredentials]) -> None:
        self._path = path
        # Replaced whole by each alteration once it is on disk, so a reader sees one state or the next.
        self._credentials = credentials
        # Alterations check the credentials they change: one at a time.
        self._altering = trio.Lock()

    @classmethod
    def load(cls, data_dir: Path) -> ScramCredentials:
        """The credentials stored in `data_dir` (none on a first start); blocks on reading."""
        path = data_dir / CREDENTIALS_FILE
        try:
            credentials = _parse(path.read_text()) if path.exists() else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MetadataError(f"{path}: unreadable SCRAM credentials ({exc!r})") from exc
        return cls(path, credentials)

    def credential(self, user: str, mechanism: ScramMechanism) -> ScramCredential | None:
        return self._credentials.get(user, {}).get(mechanism)

    def describe(self, users: list[str] | None) -> list[tuple[str, UserCredentials | ApiError]]:
        """Each user's credentials, or why not, as Kafka describes them (ScramImage.describe): with
        no users (null or empty), every user that has credentials, in name order; else each user
        named, once, in the order named, RESOURCE_NOT_FOUND for one without credentials and
        DUPLICATE_RESOURCE for one named twice."""
        if not users:
            return [(user, self._credentials[user]) for user in sorted(self._credentials)]
        described: list[tuple[str, UserCredentials | ApiError]] = []
        for user, times in collections.Counter(users).items():
            if times > 1:
                described.append((user, ApiError(
                    ErrorCode.DUPLICATE_RESOURCE,
                    f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}")))
            elif user in self._credentials:
                described.append((user, self._credentials[user]))
            else:
                described.append((user, ApiError(
                    ErrorCode.RESOURCE_NOT_FOUND, f"Attempt to describe a user credential that does not exist: {user}")))
        return described

    async def alter(self, deletions: Iterable[ScramCredentialDeletion],
                    upsertions: Iterable[ScramCredentialUpsertion]) -> list[tuple[str, ApiError | None]]:
        """Kafka's AlterUserScramCredentials (ScramControlManager.alterCredentials): each user's
        outcome (None: done), the users done first. A user altered twice in one request, whatever
        the mechanisms, is refused DUPLICATE_RESOURCE and none of its alterations is made; a user
        whose first alteration is refused keeps that error. The accepted alterations are written
        together, in one replacement of the file, or none is (KAFKA_STORAGE_ERROR)."""
        async with self._altering:
            errors: dict[str, ApiError] = {}
            accepted: dict[str, _Accepted] = {}

            def consider(alteration: _Alteration, check: Callable[[_Alteration], _Accepted]) -> None:
                if alteration.name in errors:
                    return
                if accepted.pop(alteration.name, None) is not None:
                    errors[alteration.name] = ApiError(
                        ErrorCode.DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request")
                    return
                try:
                    accepted[alteration.name] = check(alteration)
                except ApiError as exc:
                    errors[alteration.name] = exc

            for deletion in deletions:
                consider(deletion, self._checked_deletion)
            for upsertion in upsertions:
                consider(upsertion, _checked_upsertion)

            credentials = {user: dict(by_mechanism) for user, by_mechanism in self._credentials.items()}
            done = []
            for user, (mechanism, upsertion) in accepted.items():
                if upsertion is None:
                    del credentials[user][mechanism]
                    if not credentials[user]:
                        del credentials[user]
                else:
                    try:
                        credential = _derived(mechanism, upsertion)
                    except ApiError as exc:
                        errors[user] = exc
                        continue
                    credentials[user] = dict(sorted({**credentials.get(user, {}), mechanism: credential}.items()))
                done.append(user)
            if done:
                try:
                    # StoredKey and ServerKey let whoever reads them try passwords offline, or pose as the broker.
                    await run_storage_work(functools.partial(write_atomically, private=True), self._path,
                                           _to_json(credentials))
                except OSError as exc:
                    logger.warning("cannot write SCRAM credentials: %s", exc)
                    failure = ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self._path}: {exc.strerror or exc}")
                    return [(user, failure) for user in done] + list(errors.items())
                self._credentials = credentials
        return [(user, None) for user in done] + list(errors.items())

    def _checked_deletion(self, deletion: ScramCredentialDeletion) -> _Accepted:
        mechanism = _checked_mechanism(deletion.name, deletion.mechanism)
        if self.credential(deletion.name, mechanism) is None:
            raise ApiError(ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist")
        return mechanism, None


def _to_json(credentials: dict[str, UserCredentials]) -> str:
    def encoded(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return json.dumps({"version": _FILE_VERSION, "users": {
        user: {mechanism.mechanism_name: {"salt": encoded(c.salt), "stored_key": encoded(c.stored_key),
                                          "server_key": encoded(c.server_key), "iterations": c.iterations}
               for mechanism, c in by_mechanism.items()}
        for user, by_mechanism in credentials.items()}}, indent=1)


def _parse(text: str) -> dict[str, UserCredentials]:
    """The credentials of a file _to_json wrote; ValueError (or KeyError, TypeError) for anything else."""
    stored = json.loads(text)
    if stored["version"] != _FILE_VERSION:
        raise ValueError(f"unknown version {stored['version']!r}")
    credentials = {}
    for user, by_name in stored["users"].items():
        if not user or not by_name:
            raise ValueError(f"user {user!r} without credentials")
        entries = {_BY_MECHANISM_NAME[name]: entry for name, entry in by_name.items()}
        credentials[user] = {mechanism: _parse_credential(mechanism, entries[mechanism]) for mechanism in sorted(entries)}
    return credentials


def _parse_credential(mechanism: ScramMechanism, entry: dict) -> ScramCredential:
    credential = ScramCredential(*(base64.b64decode(entry[key], validate=True)
                                   for key in ("salt", "stored_key", "server_key")), entry["iterations"])
    digest_size = hashlib.new(mechanism.hash_name).digest_size
    if type(credential.iterations) is not int or {len(credential.stored_key), len(credential.server_key)} != {digest_size}:
        raise ValueError(f"a damaged {mechanism.mechanism_name} credential")
    return credential
