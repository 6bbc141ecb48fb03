"""Kafka's ACLs: bindings of a resource pattern to an access control entry, the filters that select
them (DescribeAcls, DeleteAcls), the rules a new binding must follow, and the authorizer that keeps
them in the data directory.

Matching and validation are Kafka 3.9's (AclBindingFilter.matches; AclControlManager and AclApis
for what CreateAcls refuses). ACLs are stored and described but not enforced yet: every client
keeps every right.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import trio

from broker.authorized_operations import AclOperation
from broker.metadata import MetadataError, write_atomically
from broker.storage_work import run_storage_work
from protocol.errors import ApiError, ErrorCode

logger = logging.getLogger(__name__)

# The authorizer.class.name values of Kafka's own authorizers, which this broker stands in for.
AUTHORIZER_CLASS_NAMES = ("org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                          "kafka.security.authorizer.AclAuthorizer")
ACLS_FILE = "acls.json"
_FILE_VERSION = 1
CLUSTER_NAME = "kafka-cluster"
# A literal resource name meaning every resource of its type.
WILDCARD_RESOURCE = "*"


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    """How a pattern's name selects resources; ANY and MATCH only in filters."""

    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclPermissionType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


Code = TypeVar("Code", ResourceType, PatternType, AclOperation, AclPermissionType)


def from_code(kind: type[Code], code: int) -> Code:
    """Kafka's fromCode: the member of `kind` with `code`, UNKNOWN for a code it does not know."""
    try:
        return kind(code)
    except ValueError:
        return kind.UNKNOWN


@dataclasses.dataclass(frozen=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType


@dataclasses.dataclass(frozen=True)
class AccessControlEntry:
    # "Type:name" (User:alice); User:* is every user, and host "*" every host.
    principal: str
    host: str
    operation: AclOperation
    permission_type: AclPermissionType


@dataclasses.dataclass(frozen=True)
class AclBinding:
    pattern: ResourcePattern
    entry: AccessControlEntry


@dataclasses.dataclass(frozen=True)
class AclBindingFilter:
    """Selects bindings: an ANY type, and a None name, principal or host, match every value; the
    MATCH pattern type matches the patterns that apply to the resource `name` (that literal name,
    the wildcard, and the prefixes of it)."""

    resource_type: ResourceType
    name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: AclOperation
    permission_type: AclPermissionType

    def matches(self, binding: AclBinding) -> bool:
        return self._matches_pattern(binding.pattern) and self._matches_entry(binding.entry)

    def _matches_pattern(self, pattern: ResourcePattern) -> bool:
        if self.resource_type not in (ResourceType.ANY, pattern.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, pattern.pattern_type):
            return False
        if self.name is None:
            return True
        if self.pattern_type != PatternType.MATCH:
            return self.name == pattern.name
        if pattern.pattern_type == PatternType.LITERAL:
            return pattern.name in (self.name, WILDCARD_RESOURCE)
        return pattern.pattern_type == PatternType.PREFIXED and self.name.startswith(pattern.name)

    def _matches_entry(self, entry: AccessControlEntry) -> bool:
        return (self.principal in (None, entry.principal) and self.host in (None, entry.host)
                and self.operation in (AclOperation.ANY, entry.operation)
                and self.permission_type in (AclPermissionType.ANY, entry.permission_type))


def _invalid(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, message)


def check_new_binding(binding: AclBinding) -> None:
    """Raises INVALID_REQUEST, with Kafka's message, for a binding CreateAcls refuses; in Kafka's
    order: AclApis' checks of the name, then the authorizer's of the types."""
    pattern, entry = binding.pattern, binding.entry
    if pattern.resource_type == ResourceType.CLUSTER and pattern.name != CLUSTER_NAME:
        raise _invalid(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    if not pattern.name:
        raise _invalid("Invalid empty resource name")
    if pattern.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        raise _invalid(f"Invalid resourceType {pattern.resource_type.name}")
    if pattern.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise _invalid(f"Invalid patternType {pattern.pattern_type.name}")
    if entry.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
        raise _invalid(f"Invalid operation {entry.operation.name}")
    if entry.permission_type not in (AclPermissionType.DENY, AclPermissionType.ALLOW):
        raise _invalid(f"Invalid permissionType {entry.permission_type.name}")
    # Kafka 3.9 stores such a principal, and its authorizer then fails on it at every check.
    if ":" not in entry.principal:
        raise _invalid(f"Could not parse principal from `{entry.principal}` (no colon is present "
                       f"separating the principal type from the principal name)")


def check_filter(acl_filter: AclBindingFilter) -> None:
    """Raises INVALID_REQUEST, with Kafka's message, for a filter with an UNKNOWN type."""
    if acl_filter.resource_type == ResourceType.UNKNOWN or acl_filter.pattern_type == PatternType.UNKNOWN:
        raise _invalid("Unknown patternFilter.")
    if acl_filter.operation == AclOperation.UNKNOWN or acl_filter.permission_type == AclPermissionType.UNKNOWN:
        raise _invalid("Unknown entryFilter.")


class Authorizer:
    """The broker's ACLs, in the order they were created, kept in `acls.json` in the data
    directory: each change is written whole (atomically, off the event loop) before it applies."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / ACLS_FILE
        # An ordered set.
        self._bindings: dict[AclBinding, None] = {}
        # One change at a time, each from the state the previous one wrote.
        self._changing = trio.Lock()

    @classmethod
    def open(cls, data_dir: Path) -> Authorizer:
        """The authorizer with the ACLs stored in `data_dir` (none at first); raises MetadataError
        when the file is unreadable or holds a binding CreateAcls refuses. Reads a file: at start,
        off the event loop."""
        authorizer = cls(data_dir)
        if authorizer._path.exists():
            authorizer._bindings = dict.fromkeys(_load(authorizer._path))
        logger.warning("authorizer: %d ACL(s) loaded; ACLs are stored and described but not enforced yet, "
                       "so every client keeps every right", len(authorizer._bindings))
        return authorizer

    def acls(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        return [binding for binding in self._bindings if acl_filter.matches(binding)]

    async def create_acls(self, bindings: Iterable[AclBinding]) -> None:
        """Store the checked `bindings`; one already stored is left as it is. Raises
        KAFKA_STORAGE_ERROR, nothing changed, when the file cannot be written."""
        async with self._changing:
            new = [binding for binding in dict.fromkeys(bindings) if binding not in self._bindings]
            if new:
                await self._store([*self._bindings, *new])

    async def delete_acls(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        """Remove what the checked `filters` match, all at once; the bindings each one matched,
        before any was removed (a binding two filters match is in both answers, as in Kafka's
        controller). Raises KAFKA_STORAGE_ERROR, nothing changed, when the file cannot be written."""
        async with self._changing:
            matched = [self.acls(acl_filter) for acl_filter in filters]
            doomed = {binding for bindings in matched for binding in bindings}
            if doomed:
                await self._store([binding for binding in self._bindings if binding not in doomed])
            return matched

    async def _store(self, bindings: list[AclBinding]) -> None:
        try:
            await run_storage_work(write_atomically, self._path, _dump(bindings))
        except OSError as exc:
            logger.error("cannot write the ACLs to %s: %s", self._path, exc)
            raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, f"cannot store the ACLs: {exc.strerror or exc}") from exc
        self._bindings = dict.fromkeys(bindings)


def _dump(bindings: list[AclBinding]) -> str:
    return json.dumps({"version": _FILE_VERSION, "acls": [{
        "resource_type": b.pattern.resource_type.name, "resource_name": b.pattern.name,
        "pattern_type": b.pattern.pattern_type.name, "principal": b.entry.principal, "host": b.entry.host,
        "operation": b.entry.operation.name, "permission_type": b.entry.permission_type.name,
    } for b in bindings]}, indent=1) + "\n"


def _text(stored: dict, key: str) -> str:
    value = stored[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string: {value!r}")
    return value


def _stored_binding(stored: dict) -> AclBinding:
    binding = AclBinding(
        ResourcePattern(ResourceType[_text(stored, "resource_type")], _text(stored, "resource_name"),
                        PatternType[_text(stored, "pattern_type")]),
        AccessControlEntry(_text(stored, "principal"), _text(stored, "host"), AclOperation[_text(stored, "operation")],
                           AclPermissionType[_text(stored, "permission_type")]))
    check_new_binding(binding)
    return binding


def _load(path: Path) -> list[AclBinding]:
    try:
        stored = json.loads(path.read_text())
        if stored["version"] != _FILE_VERSION:
            raise ValueError(f"unknown version {stored['version']!r}")
        return [_stored_binding(item) for item in stored["acls"]]
    except (OSError, ValueError, KeyError, TypeError, ApiError) as exc:
        raise MetadataError(f"{path}: unreadable ACLs ({type(exc).__name__}: {exc})") from exc
