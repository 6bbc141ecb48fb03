"""Group membership and administration: JoinGroup (11), Heartbeat (12), LeaveGroup (13),
SyncGroup (14), DescribeGroups (15), ListGroups (16) and DeleteGroups (42)."""

from __future__ import annotations

from broker import authorized_operations
from broker.groups import JoinRequest
from broker.handlers.base import handles
from protocol.errors import ErrorCode

JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
DELETE_GROUPS = 42
# JoinGroup: v1 brought the rebalance timeout, v4 MEMBER_ID_REQUIRED, v7 a nullable protocol
# name, v9 skip_assignment. LeaveGroup v3 leaves a batch of members.
FIRST_REBALANCE_TIMEOUT_VERSION = 1
FIRST_MEMBER_ID_REQUIRED_VERSION = 4
FIRST_NULLABLE_PROTOCOL_NAME_VERSION = 7
FIRST_SKIP_ASSIGNMENT_VERSION = 9
FIRST_BATCHED_LEAVE_VERSION = 3
# The requesting client's address is not known to handlers; Kafka would show "/<ip>".
CLIENT_HOST_UNKNOWN = ""


@handles(JOIN_GROUP)
async def join_group(broker, header, request) -> dict:
    version = header.request_api_version
    result = await broker.coordinator.join_group(JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=request.get("group_instance_id"),
        client_id=header.get("client_id") or "",
        client_host=CLIENT_HOST_UNKNOWN,
        session_timeout_ms=request.session_timeout_ms,
        # v0 has no rebalance timeout: the session timeout bounds the rebalance, as in Kafka.
        rebalance_timeout_ms=request.rebalance_timeout_ms if version >= FIRST_REBALANCE_TIMEOUT_VERSION
        else request.session_timeout_ms,
        protocol_type=request.protocol_type,
        protocols=[(protocol.name, bytes(protocol.metadata)) for protocol in request.protocols],
        require_known_member_id=version >= FIRST_MEMBER_ID_REQUIRED_VERSION,
        supports_skip_assignment=version >= FIRST_SKIP_ASSIGNMENT_VERSION,
        reason=request.get("reason"),
    ))
    protocol_name = result.protocol_name
    if protocol_name is None and version < FIRST_NULLABLE_PROTOCOL_NAME_VERSION:
        protocol_name = ""
    return {"throttle_time_ms": 0, "error_code": result.error, "generation_id": result.generation_id,
            "protocol_type": result.protocol_type, "protocol_name": protocol_name, "leader": result.leader_id,
            "skip_assignment": result.skip_assignment, "member_id": result.member_id,
            "members": [{"member_id": member.member_id, "group_instance_id": member.group_instance_id,
                         "metadata": member.metadata} for member in result.members]}


@handles(SYNC_GROUP)
async def sync_group(broker, header, request) -> dict:
    result = await broker.coordinator.sync_group(
        request.group_id, request.generation_id, request.member_id, request.get("group_instance_id"),
        request.get("protocol_type"), request.get("protocol_name"),
        {assignment.member_id: bytes(assignment.assignment) for assignment in request.assignments})
    # An empty assignment is empty bytes, never null (some clients cannot parse a null one).
    return {"throttle_time_ms": 0, "error_code": result.error, "protocol_type": result.protocol_type,
            "protocol_name": result.protocol_name, "assignment": result.assignment}


@handles(HEARTBEAT)
async def heartbeat(broker, header, request) -> dict:
    error = broker.coordinator.heartbeat(request.group_id, request.generation_id, request.member_id,
                                         request.get("group_instance_id"))
    return {"throttle_time_ms": 0, "error_code": error}


@handles(LEAVE_GROUP)
async def leave_group(broker, header, request) -> dict:
    if header.request_api_version < FIRST_BATCHED_LEAVE_VERSION:
        leaving = [(request.member_id, None)]
    else:
        leaving = [(member.member_id, member.group_instance_id) for member in request.members]
    error, member_errors = broker.coordinator.leave_group(request.group_id, leaving)
    if header.request_api_version < FIRST_BATCHED_LEAVE_VERSION:
        # One member: its error is the response's.
        return {"throttle_time_ms": 0, "error_code": error if error != ErrorCode.NONE or not member_errors
                else member_errors[0]}
    return {"throttle_time_ms": 0, "error_code": error,
            "members": [{"member_id": member_id, "group_instance_id": instance_id, "error_code": member_error}
                        for (member_id, instance_id), member_error in zip(leaving, member_errors)]}


@handles(DESCRIBE_GROUPS)
async def describe_groups(broker, header, request) -> dict:
    described = []
    for group_id in request.groups:
        error, summary = broker.coordinator.describe_group(group_id)
        described.append({
            "error_code": error, "group_id": group_id, "group_state": summary.state,
            "protocol_type": summary.protocol_type, "protocol_data": summary.protocol_name,
            "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                         "client_id": m.client_id, "client_host": m.client_host,
                         "member_metadata": m.metadata, "member_assignment": m.assignment}
                        for m in summary.members],
            "authorized_operations": authorized_operations.reported(
                request.get("include_authorized_operations", False), authorized_operations.GROUP),
        })
    return {"throttle_time_ms": 0, "groups": described}


@handles(LIST_GROUPS)
async def list_groups(broker, header, request) -> dict:
    error, groups = broker.coordinator.list_groups(request.get("states_filter") or [],
                                                   request.get("types_filter") or [])
    return {"throttle_time_ms": 0, "error_code": error,
            "groups": [{"group_id": group.group_id, "protocol_type": group.protocol_type,
                        "group_state": group.state, "group_type": group.group_type} for group in groups]}


@handles(DELETE_GROUPS)
async def delete_groups(broker, header, request) -> dict:
    results = await broker.coordinator.delete_groups(list(request.groups_names))
    return {"throttle_time_ms": 0,
            "results": [{"group_id": group_id, "error_code": error} for group_id, error in results.items()]}
