"""Kafka's ACLs: bindings of a resource pattern to an access control entry, the filters that select
them (DescribeAcls, DeleteAcls), the rules a new binding must follow, and the authorizer that keeps
them in the data directory and answers whether a principal may perform an operation on a resource.

Matching, validation and authorization are Kafka 3.9's (AclBindingFilter.matches; AclControlManager
and AclApis for what CreateAcls refuses; StandardAuthorizerData for authorize, and Authorizer's
authorizeByResourceType). The handlers ask through `authorized` and its companions, for the
session of the request they answer; without an authorizer every client keeps every right.
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

from broker import authorized_operations
from broker.authorized_operations import AclOperation
from broker.metadata import MetadataError, write_atomically
from broker.session import current_session
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
# The principal and host of an entry that match every principal and every host.
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"
# The allowed operations that also allow another one (Kafka's StandardAuthorizerData).
_IMPLIED_BY = {AclOperation.DESCRIBE: frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE,
                                                 AclOperation.DELETE, AclOperation.ALTER}),
               AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS})}
# The authorization cache is dropped whole past this many answers, so that a client naming
# ever new resources cannot grow it without bound.
_MAX_CACHED_ANSWERS = 100_000


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


SUPPORTED_OPERATIONS = {
    ResourceType.TOPIC: authorized_operations.TOPIC_OPERATIONS,
    ResourceType.GROUP: authorized_operations.GROUP_OPERATIONS,
    ResourceType.CLUSTER: authorized_operations.CLUSTER_OPERATIONS,
    ResourceType.TRANSACTIONAL_ID: authorized_operations.TRANSACTIONAL_ID_OPERATIONS,
}

# The bit field of each resource type's supported operations: what is reported without an authorizer.
_EVERY_OPERATION = {
    ResourceType.TOPIC: authorized_operations.TOPIC,
    ResourceType.GROUP: authorized_operations.GROUP,
    ResourceType.CLUSTER: authorized_operations.CLUSTER,
    ResourceType.TRANSACTIONAL_ID: authorized_operations.TRANSACTIONAL_ID,
}


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


def _permission(entry: AccessControlEntry, principal: str, host: str,
                operation: AclOperation) -> AclPermissionType | None:
    """What `entry` says of `principal` performing `operation` from `host`: ALLOW, DENY, or None
    when it does not apply. An ALLOW of an operation allows those it implies; a DENY denies only
    its own operation (Kafka's StandardAuthorizerData.findResult)."""
    if entry.principal not in (principal, WILDCARD_PRINCIPAL) or entry.host not in (host, WILDCARD_HOST):
        return None
    if entry.operation != AclOperation.ALL:
        if entry.permission_type == AclPermissionType.ALLOW:
            if entry.operation not in _IMPLIED_BY.get(operation, (operation,)):
                return None
        elif entry.operation != operation:
            return None
    return entry.permission_type


class Authorizer:
    """The broker's ACLs, in the order they were created, kept in `acls.json` in the data
    directory: each change is written whole (atomically, off the event loop) before it applies.

    `authorize` reads an index of the ACLs (literal patterns by resource type and name, prefixed
    ones by resource type, prefix length and prefix), and remembers its answers until the ACLs change."""

    def __init__(self, data_dir: Path, *, super_users: Iterable[str] = (),
                 allow_everyone_if_no_acl_found: bool = False) -> None:
        self._path = data_dir / ACLS_FILE
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        # An ordered set.
        self._bindings: dict[AclBinding, None] = {}
        self._literal: dict[tuple[ResourceType, str], list[AccessControlEntry]] = {}
        # resource type -> prefix length -> prefix -> entries
        self._prefixed: dict[ResourceType, dict[int, dict[str, list[AccessControlEntry]]]] = {}
        self._answers: dict[tuple, bool] = {}
        # Bumped by every change of the ACLs: what keeps answers of its own (a fetch session)
        # compares it to know they are stale.
        self.version = 0
        # One change at a time, each from the state the previous one wrote.
        self._changing = trio.Lock()

    @classmethod
    def open(cls, data_dir: Path, *, super_users: Iterable[str] = (),
             allow_everyone_if_no_acl_found: bool = False) -> Authorizer:
        """The authorizer with the ACLs stored in `data_dir` (none at first); raises MetadataError
        when the file is unreadable or holds a binding CreateAcls refuses. Reads a file: at start,
        off the event loop."""
        authorizer = cls(data_dir, super_users=super_users,
                         allow_everyone_if_no_acl_found=allow_everyone_if_no_acl_found)
        if authorizer._path.exists():
            authorizer._set_bindings(_load(authorizer._path))
        logger.info("authorizer: %d ACL(s) loaded, %d super user(s), allow.everyone.if.no.acl.found=%s",
                    len(authorizer._bindings), len(authorizer.super_users),
                    str(allow_everyone_if_no_acl_found).lower())
        return authorizer

    def acls(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        return [binding for binding in self._bindings if acl_filter.matches(binding)]

    def authorize(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                  name: str) -> bool:
        """Whether `principal` ("User:alice") connected from `host` may perform `operation` on the
        resource `name` of `resource_type`: super users may do anything; otherwise a DENY of any
        ACL that applies wins, then an ALLOW; a resource no ACL names at all (whoever for) is
        allowed only with allow.everyone.if.no.acl.found."""
        key = (principal, host, operation, resource_type, name)
        answer = self._answers.get(key)
        if answer is None:
            if len(self._answers) >= _MAX_CACHED_ANSWERS:
                self._answers.clear()
            answer = self._answers[key] = self._decide(principal, host, operation, resource_type, name)
        return answer

    def _decide(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                name: str) -> bool:
        if principal in self.super_users:
            return True
        found = False
        allowed = False
        for entries in self._entries_for(resource_type, name):
            found = True
            for entry in entries:
                permission = _permission(entry, principal, host, operation)
                if permission == AclPermissionType.DENY:
                    return False
                allowed = allowed or permission == AclPermissionType.ALLOW
        return allowed or (not found and self.allow_everyone_if_no_acl_found)

    def _entries_for(self, resource_type: ResourceType, name: str) -> Iterable[list[AccessControlEntry]]:
        """The entries of every pattern that selects the resource: its literal name, the
        wildcard, and each of its prefixes that a prefixed pattern names."""
        for literal in (name, WILDCARD_RESOURCE):
            entries = self._literal.get((resource_type, literal))
            if entries:
                yield entries
        for length, by_prefix in self._prefixed.get(resource_type, {}).items():
            if length <= len(name) and (entries := by_prefix.get(name[:length])):
                yield entries

    def authorize_any(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType) -> bool:
        """Whether `principal` may perform `operation` on some resource of `resource_type`
        (Kafka's authorizeByResourceType): an ALLOW of it, or of ALL, for some name that no
        DENY of it covers. Implied operations do not count here, as in Kafka."""
        if self.authorize(principal, host, operation, resource_type, "hardcode"):
            return True
        denied: dict[PatternType, set[str]] = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        allowed: dict[PatternType, set[str]] = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        for binding in self._bindings:
            pattern, entry = binding.pattern, binding.entry
            if (pattern.resource_type != resource_type or entry.host not in (host, WILDCARD_HOST)
                    or entry.principal not in (principal, WILDCARD_PRINCIPAL)
                    or entry.operation not in (operation, AclOperation.ALL)):
                continue
            if entry.permission_type == AclPermissionType.DENY:
                if pattern.pattern_type == PatternType.LITERAL and pattern.name == WILDCARD_RESOURCE:
                    return False
                denied[pattern.pattern_type].add(pattern.name)
            else:
                if pattern.pattern_type == PatternType.LITERAL and pattern.name == WILDCARD_RESOURCE:
                    return True
                allowed[pattern.pattern_type].add(pattern.name)
        for pattern_type, names in allowed.items():
            for name in names:
                if pattern_type == PatternType.LITERAL and name in denied[PatternType.LITERAL]:
                    continue
                if not any(name[:length] in denied[PatternType.PREFIXED] for length in range(1, len(name) + 1)):
                    return True
        return False

    def authorized_operations(self, principal: str, host: str, resource_type: ResourceType, name: str) -> int:
        """The bit field of the operations `resource_type` supports that `principal` may perform
        on `name` (Kafka's AuthHelper.authorizedOperations)."""
        return authorized_operations.bits(
            operation for operation in SUPPORTED_OPERATIONS[resource_type]
            if self.authorize(principal, host, operation, resource_type, name))

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
        self._set_bindings(bindings)

    def _set_bindings(self, bindings: Iterable[AclBinding]) -> None:
        """Apply `bindings` as the ACLs: rebuild the index (no await: every check sees the old
        ACLs or the new ones), forget the answers."""
        self._bindings = dict.fromkeys(bindings)
        literal: dict[tuple[ResourceType, str], list[AccessControlEntry]] = {}
        prefixed: dict[ResourceType, dict[int, dict[str, list[AccessControlEntry]]]] = {}
        for binding in self._bindings:
            pattern = binding.pattern
            if pattern.pattern_type == PatternType.LITERAL:
                literal.setdefault((pattern.resource_type, pattern.name), []).append(binding.entry)
            else:
                (prefixed.setdefault(pattern.resource_type, {}).setdefault(len(pattern.name), {})
                 .setdefault(pattern.name, []).append(binding.entry))
        self._literal, self._prefixed = literal, prefixed
        self._answers = {}
        self.version += 1


def authorized(authorizer: Authorizer | None, operation: AclOperation, resource_type: ResourceType,
               name: str = CLUSTER_NAME) -> bool:
    """Whether the session of the request being answered may perform `operation` on the resource;
    always, without an authorizer. The cluster resource when no name is given."""
    if authorizer is None:
        return True
    session = current_session()
    return authorizer.authorize(session.principal, session.client_host, operation, resource_type, name)


def authorized_names(authorizer: Authorizer | None, operation: AclOperation, resource_type: ResourceType,
                     names: Iterable[str]) -> set[str]:
    """Those of `names` the session may perform `operation` on, each asked once (Kafka's
    filterByAuthorized)."""
    return {name for name in set(names) if authorized(authorizer, operation, resource_type, name)}


def authorized_any(authorizer: Authorizer | None, operation: AclOperation, resource_type: ResourceType) -> bool:
    """Whether the session may perform `operation` on some resource of `resource_type`."""
    if authorizer is None:
        return True
    session = current_session()
    return authorizer.authorize_any(session.principal, session.client_host, operation, resource_type)


def reported_operations(authorizer: Authorizer | None, requested: bool, resource_type: ResourceType,
                        name: str = CLUSTER_NAME) -> int:
    """An authorized-operations field: OMITTED unless `requested`; the session's operations on the
    resource; every supported one without an authorizer."""
    if not requested:
        return authorized_operations.OMITTED
    if authorizer is None:
        return _EVERY_OPERATION[resource_type]
    session = current_session()
    return authorizer.authorized_operations(session.principal, session.client_host, resource_type, name)


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
