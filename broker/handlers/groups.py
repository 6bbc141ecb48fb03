"""Group membership and administration: JoinGroup (11), Heartbeat (12), LeaveGroup (13),
SyncGroup (14), DescribeGroups (15), ListGroups (16) and DeleteGroups (42).

The coordinator raises ApiError for what it refuses; a request it refuses as a whole is answered
with the error at the top (base.Api.respond), and batch answers carry an outcome per member or
group, which `outcome_fields` turns into that entry's error fields."""

from __future__ import annotations

from outcome import Error, Outcome

from broker.acls import ResourceType, authorized, authorized_names, reported_operations
from broker.authorized_operations import AclOperation
from broker.groups import JoinRequest, JoinResult, MemberIdRequired
from broker.handlers.base import Services, error_fields, handles
from broker.session import current_session
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.groups import (
    DELETE_GROUPS_RESPONSE,
    DESCRIBE_GROUPS_RESPONSE,
    HEARTBEAT_RESPONSE,
    JOIN_GROUP_RESPONSE,
    LEAVE_GROUP_RESPONSE,
    LIST_GROUPS_RESPONSE,
    SYNC_GROUP_RESPONSE,
)

# JoinGroup: v1 brought the rebalance timeout, v4 MEMBER_ID_REQUIRED, v7 a nullable protocol
# name, v9 skip_assignment. LeaveGroup v3 leaves a batch of members.
FIRST_REBALANCE_TIMEOUT_VERSION = 1
FIRST_MEMBER_ID_REQUIRED_VERSION = 4
FIRST_NULLABLE_PROTOCOL_NAME_VERSION = 7
FIRST_SKIP_ASSIGNMENT_VERSION = 9
FIRST_BATCHED_LEAVE_VERSION = 3


def check_group(broker: Services, operation: AclOperation, group_id: str) -> None:
    """Raises GROUP_AUTHORIZATION_FAILED unless the session may perform `operation` on the group."""
    if not authorized(broker.authorizer, operation, ResourceType.GROUP, group_id):
        raise ApiError(ErrorCode.GROUP_AUTHORIZATION_FAILED)


def outcome_fields(struct, result: Outcome) -> dict:
    """The error fields of one entry of a batch answer (an Error holds an ApiError): none when it
    succeeded. Outcomes are shared between entries, so this reads them rather than unwrapping."""
    return error_fields(struct, result.error) if isinstance(result, Error) else {}


def _join_request(header, request) -> JoinRequest:
    version = header.request_api_version
    return JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=request.get("group_instance_id"),
        client_id=header.get("client_id") or "",
        # As Kafka shows it: Java's InetAddress.toString() of the client's address.
        client_host="/" + current_session().client_host,
        session_timeout_ms=request.session_timeout_ms,
        # v0 has no rebalance timeout: the session timeout bounds the rebalance, as in Kafka.
        rebalance_timeout_ms=request.rebalance_timeout_ms if version >= FIRST_REBALANCE_TIMEOUT_VERSION
        else request.session_timeout_ms,
        protocol_type=request.protocol_type,
        protocols=[(protocol.name, bytes(protocol.metadata)) for protocol in request.protocols],
        require_known_member_id=version >= FIRST_MEMBER_ID_REQUIRED_VERSION,
        supports_skip_assignment=version >= FIRST_SKIP_ASSIGNMENT_VERSION,
        reason=request.get("reason"),
    )


def _protocol_name(name: str | None, version: int) -> str | None:
    # No protocol (an error, an empty generation) is null from v7, the empty string before.
    return "" if name is None and version < FIRST_NULLABLE_PROTOCOL_NAME_VERSION else name


def _join_failed(version: int, member_id: str, exc: ApiError):
    return JOIN_GROUP_RESPONSE(member_id=member_id, protocol_name=_protocol_name(None, version),
                               **error_fields(JOIN_GROUP_RESPONSE, exc))


@handles(ApiKey.JOIN_GROUP)
async def join_group(broker: Services, header, request):
    version = header.request_api_version
    try:
        check_group(broker, AclOperation.READ, request.group_id)
    except ApiError as exc:
        # As Kafka: a denied member is not told a member id.
        return _join_failed(version, "", exc)
    try:
        result: JoinResult = await broker.coordinator.join_group(_join_request(header, request))
    except ApiError as exc:
        # As Kafka: the request's member id comes back, or the one a new member must use.
        return _join_failed(version, exc.member_id if isinstance(exc, MemberIdRequired) else request.member_id, exc)
    return JOIN_GROUP_RESPONSE(
        generation_id=result.generation_id, protocol_type=result.protocol_type,
        protocol_name=_protocol_name(result.protocol_name, version), leader=result.leader_id,
        skip_assignment=result.skip_assignment, member_id=result.member_id,
        members=[JOIN_GROUP_RESPONSE.JoinGroupResponseMember(
            member_id=member.member_id, group_instance_id=member.group_instance_id, metadata=member.metadata)
            for member in result.members])


@handles(ApiKey.SYNC_GROUP)
async def sync_group(broker: Services, header, request):
    check_group(broker, AclOperation.READ, request.group_id)
    result = await broker.coordinator.sync_group(
        request.group_id, request.generation_id, request.member_id, request.get("group_instance_id"),
        request.get("protocol_type"), request.get("protocol_name"),
        {assignment.member_id: bytes(assignment.assignment) for assignment in request.assignments})
    # An empty assignment is empty bytes, never null (some clients cannot parse a null one).
    return SYNC_GROUP_RESPONSE(protocol_type=result.protocol_type, protocol_name=result.protocol_name,
                               assignment=result.assignment)


@handles(ApiKey.HEARTBEAT)
async def heartbeat(broker: Services, header, request):
    check_group(broker, AclOperation.READ, request.group_id)
    broker.coordinator.heartbeat(request.group_id, request.generation_id, request.member_id,
                                 request.get("group_instance_id"))
    return HEARTBEAT_RESPONSE()


@handles(ApiKey.LEAVE_GROUP)
async def leave_group(broker: Services, header, request):
    check_group(broker, AclOperation.READ, request.group_id)
    if header.request_api_version < FIRST_BATCHED_LEAVE_VERSION:
        # One member: its error is the response's.
        (left,) = broker.coordinator.leave_group(request.group_id, [(request.member_id, None)])
        left.unwrap()
        return LEAVE_GROUP_RESPONSE()
    members = request.members
    results = broker.coordinator.leave_group(request.group_id, [(m.member_id, m.group_instance_id) for m in members])
    answer = LEAVE_GROUP_RESPONSE.MemberResponse
    return LEAVE_GROUP_RESPONSE(members=[
        answer(member_id=member.member_id, group_instance_id=member.group_instance_id, **outcome_fields(answer, left))
        for member, left in zip(members, results)])


_DescribedGroup = DESCRIBE_GROUPS_RESPONSE.DescribedGroup
_DescribedGroupMember = DESCRIBE_GROUPS_RESPONSE.DescribedGroupMember


def _described(broker: Services, group_id: str, operations_requested: bool):
    try:
        check_group(broker, AclOperation.DESCRIBE, group_id)
    except ApiError as exc:
        return _DescribedGroup(group_id=group_id, **error_fields(_DescribedGroup, exc))
    authorized = reported_operations(broker.authorizer, operations_requested, ResourceType.GROUP, group_id)
    try:
        summary = broker.coordinator.describe_group(group_id)
    except ApiError as exc:
        return _DescribedGroup(group_id=group_id, authorized_operations=authorized,
                               **error_fields(_DescribedGroup, exc))
    return _DescribedGroup(
        group_id=group_id, group_state=summary.state, protocol_type=summary.protocol_type,
        protocol_data=summary.protocol_name, authorized_operations=authorized,
        members=[_DescribedGroupMember(member_id=m.member_id, group_instance_id=m.group_instance_id,
                                       client_id=m.client_id, client_host=m.client_host,
                                       member_metadata=m.metadata, member_assignment=m.assignment)
                 for m in summary.members])


@handles(ApiKey.DESCRIBE_GROUPS)
async def describe_groups(broker: Services, header, request):
    requested = request.get("include_authorized_operations", False)
    return DESCRIBE_GROUPS_RESPONSE(groups=[_described(broker, group_id, requested) for group_id in request.groups])


@handles(ApiKey.LIST_GROUPS)
async def list_groups(broker: Services, header, request):
    groups = broker.coordinator.list_groups(request.get("states_filter") or [], request.get("types_filter") or [])
    # Without DESCRIBE on the cluster, the groups the session may describe.
    if not authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.CLUSTER):
        listed = authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.GROUP,
                                  (group.group_id for group in groups))
        groups = [group for group in groups if group.group_id in listed]
    return LIST_GROUPS_RESPONSE(groups=[
        LIST_GROUPS_RESPONSE.ListedGroup(group_id=group.group_id, protocol_type=group.protocol_type,
                                         group_state=group.state, group_type=group.group_type)
        for group in groups])


@handles(ApiKey.DELETE_GROUPS)
async def delete_groups(broker: Services, header, request):
    names = list(request.groups_names)
    deletable = authorized_names(broker.authorizer, AclOperation.DELETE, ResourceType.GROUP, names)
    results = await broker.coordinator.delete_groups([name for name in names if name in deletable])
    answer = DELETE_GROUPS_RESPONSE.DeletableGroupResult
    denied = error_fields(answer, ApiError(ErrorCode.GROUP_AUTHORIZATION_FAILED))
    return DELETE_GROUPS_RESPONSE(results=[
        answer(group_id=group_id, **(outcome_fields(answer, results[group_id]) if group_id in deletable else denied))
        for group_id in dict.fromkeys(names)])
