"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31): the ACLs of the broker's authorizer
(--authorizer-class-name); without one, Kafka's SECURITY_DISABLED. Describing them needs DESCRIBE on
the cluster, changing them ALTER."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.acls import (
    AccessControlEntry, AclBinding, AclBindingFilter, AclPermissionType, Authorizer, PatternType, ResourcePattern,
    ResourceType, authorized, check_filter, check_new_binding, from_code,
)
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, error_fields, handles
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.acls import CREATE_ACLS_RESPONSE, DELETE_ACLS_RESPONSE, DESCRIBE_ACLS_RESPONSE
from protocol.schema import Constructor

_Resource = DESCRIBE_ACLS_RESPONSE.DescribeAclsResource
_Description = DESCRIBE_ACLS_RESPONSE.AclDescription
_Deleted = DELETE_ACLS_RESPONSE.DeleteAclsMatchingAcl


def _entry_fields(entry: AccessControlEntry) -> dict:
    return {"principal": entry.principal, "host": entry.host, "operation": entry.operation,
            "permission_type": entry.permission_type}


def _check_cluster(broker: Services, operation: AclOperation) -> None:
    if not authorized(broker.authorizer, operation, ResourceType.CLUSTER):
        raise ApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")


def _new_binding(creation) -> AclBinding:
    binding = AclBinding(
        # v0 has no pattern type: its names are literal.
        ResourcePattern(from_code(ResourceType, creation.resource_type), creation.resource_name,
                        from_code(PatternType, creation.get("resource_pattern_type", PatternType.LITERAL))),
        AccessControlEntry(creation.principal, creation.host, from_code(AclOperation, creation.operation),
                           from_code(AclPermissionType, creation.permission_type)))
    check_new_binding(binding)
    return binding


def _filter(wire) -> AclBindingFilter:
    """DescribeAcls' filter, or one of DeleteAcls' (the same fields), checked."""
    acl_filter = AclBindingFilter(
        from_code(ResourceType, wire.resource_type_filter), wire.resource_name_filter,
        from_code(PatternType, wire.get("pattern_type_filter", PatternType.LITERAL)),
        wire.principal_filter, wire.host_filter, from_code(AclOperation, wire.operation),
        from_code(AclPermissionType, wire.permission_type))
    check_filter(acl_filter)
    return acl_filter


@handles(ApiKey.DESCRIBE_ACLS)
async def describe_acls(broker: Services, header, request):
    _check_cluster(broker, AclOperation.DESCRIBE)
    if broker.authorizer is None:
        raise ApiError(ErrorCode.SECURITY_DISABLED, "No Authorizer is configured on the broker")
    # As Kafka answers: the matching ACLs grouped by resource pattern.
    by_pattern: dict[ResourcePattern, list] = {}
    for binding in broker.authorizer.acls(_filter(request)):
        by_pattern.setdefault(binding.pattern, []).append(_Description(**_entry_fields(binding.entry)))
    return DESCRIBE_ACLS_RESPONSE(error_code=ErrorCode.NONE, error_message=None, resources=[
        _Resource(resource_type=pattern.resource_type, resource_name=pattern.name, pattern_type=pattern.pattern_type,
                  acls=descriptions)
        for pattern, descriptions in by_pattern.items()])


# Changes the ACLs for the items given, all at once, and gives each one's answer fields.
Change = Callable[[Authorizer, list], Awaitable[list[dict[str, Any]]]]


async def _answer_each(broker: Services, items: list, parse: Callable[[Any], Any], change: Change,
                       result: Constructor) -> list[dict]:
    """CreateAcls' and DeleteAcls' answer, one result per item: `parse` checks an item (an ApiError
    is its answer), then `change` applies the valid ones together (an ApiError is each one's answer).
    Without ALTER on the cluster, each one is answered CLUSTER_AUTHORIZATION_FAILED."""
    failed: dict[int, ApiError] = {}
    parsed: dict[int, Any] = {}
    for index, item in enumerate(items):
        try:
            _check_cluster(broker, AclOperation.ALTER)
            if broker.authorizer is None:
                raise ApiError(ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")
            parsed[index] = parse(item)
        except ApiError as exc:
            failed[index] = exc
    answers: dict[int, dict[str, Any]] = {}
    if parsed:
        try:
            answers = dict(zip(parsed, await change(broker.authorizer, list(parsed.values()))))
        except ApiError as exc:
            failed.update(dict.fromkeys(parsed, exc))
    return [result(**error_fields(result, failed[index])) if index in failed
            else result(error_code=ErrorCode.NONE, error_message=None, **answers[index])
            for index in range(len(items))]


async def _create(authorizer: Authorizer, bindings: list[AclBinding]) -> list[dict[str, Any]]:
    await authorizer.create_acls(bindings)
    return [{} for _ in bindings]


async def _delete(authorizer: Authorizer, filters: list[AclBindingFilter]) -> list[dict[str, Any]]:
    return [{"matching_acls": [
        _Deleted(error_code=ErrorCode.NONE, error_message=None, resource_type=binding.pattern.resource_type,
                 resource_name=binding.pattern.name, pattern_type=binding.pattern.pattern_type,
                 **_entry_fields(binding.entry))
        for binding in deleted]} for deleted in await authorizer.delete_acls(filters)]


@handles(ApiKey.CREATE_ACLS)
async def create_acls(broker: Services, header, request):
    return CREATE_ACLS_RESPONSE(results=await _answer_each(
        broker, request.creations, _new_binding, _create, CREATE_ACLS_RESPONSE.AclCreationResult))


@handles(ApiKey.DELETE_ACLS)
async def delete_acls(broker: Services, header, request):
    return DELETE_ACLS_RESPONSE(filter_results=await _answer_each(
        broker, request.filters, _filter, _delete, DELETE_ACLS_RESPONSE.DeleteAclsFilterResult))
