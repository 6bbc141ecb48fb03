"""The group coordinator: finding it, membership, committed offsets, and group administration."""

from ..schema import field, request, response


FIND_COORDINATOR_REQUEST = request(
    10, "FindCoordinatorRequest", "0-6", "3+",
    field("key", "string", "0-3"),
    field("key_type", "int8", "1+", default=0),
    field("coordinator_keys", "[]string", "4+"),
)


FIND_COORDINATOR_RESPONSE = response(
    10, "FindCoordinatorResponse", "0-6", "3+",
    field("throttle_time_ms", "int32", "1+"),
    field("error_code", "int16", "0-3"),
    field("error_message", "string", "1-3", nullable="1-3"),
    field("node_id", "int32", "0-3"),
    field("host", "string", "0-3"),
    field("port", "int32", "0-3"),
    field("coordinators", "[]Coordinator", "4+", fields=(
        field("key", "string", "4+"),
        field("node_id", "int32", "4+"),
        field("host", "string", "4+"),
        field("port", "int32", "4+"),
        field("error_code", "int16", "4+"),
        field("error_message", "string", "4+", nullable="4+"),
    )),
)


JOIN_GROUP_REQUEST = request(
    11, "JoinGroupRequest", "0-9", "6+",
    field("group_id", "string", "0+"),
    field("session_timeout_ms", "int32", "0+"),
    field("rebalance_timeout_ms", "int32", "1+", default=-1),
    field("member_id", "string", "0+"),
    field("group_instance_id", "string", "5+", nullable="5+", default=None),
    field("protocol_type", "string", "0+"),
    field("protocols", "[]JoinGroupRequestProtocol", "0+", fields=(
        field("name", "string", "0+"),
        field("metadata", "bytes", "0+"),
    )),
    field("reason", "string", "8+", nullable="8+", default=None),
)


JOIN_GROUP_RESPONSE = response(
    11, "JoinGroupResponse", "0-9", "6+",
    field("throttle_time_ms", "int32", "2+"),
    field("error_code", "int16", "0+"),
    field("generation_id", "int32", "0+", default=-1),
    field("protocol_type", "string", "7+", nullable="7+", default=None),
    field("protocol_name", "string", "0+", nullable="7+"),
    field("leader", "string", "0+"),
    field("skip_assignment", "bool", "9+", default=False),
    field("member_id", "string", "0+"),
    field("members", "[]JoinGroupResponseMember", "0+", fields=(
        field("member_id", "string", "0+"),
        field("group_instance_id", "string", "5+", nullable="5+", default=None),
        field("metadata", "bytes", "0+"),
    )),
)


SYNC_GROUP_REQUEST = request(
    14, "SyncGroupRequest", "0-5", "4+",
    field("group_id", "string", "0+"),
    field("generation_id", "int32", "0+"),
    field("member_id", "string", "0+"),
    field("group_instance_id", "string", "3+", nullable="3+", default=None),
    field("protocol_type", "string", "5+", nullable="5+", default=None),
    field("protocol_name", "string", "5+", nullable="5+", default=None),
    field("assignments", "[]SyncGroupRequestAssignment", "0+", fields=(
        field("member_id", "string", "0+"),
        field("assignment", "bytes", "0+"),
    )),
)


SYNC_GROUP_RESPONSE = response(
    14, "SyncGroupResponse", "0-5", "4+",
    field("throttle_time_ms", "int32", "1+"),
    field("error_code", "int16", "0+"),
    field("protocol_type", "string", "5+", nullable="5+", default=None),
    field("protocol_name", "string", "5+", nullable="5+", default=None),
    field("assignment", "bytes", "0+"),
)


HEARTBEAT_REQUEST = request(
    12, "HeartbeatRequest", "0-4", "4+",
    field("group_id", "string", "0+"),
    field("generation_id", "int32", "0+"),
    field("member_id", "string", "0+"),
    field("group_instance_id", "string", "3+", nullable="3+", default=None),
)


HEARTBEAT_RESPONSE = response(
    12, "HeartbeatResponse", "0-4", "4+",
    field("throttle_time_ms", "int32", "1+"),
    field("error_code", "int16", "0+"),
)


LEAVE_GROUP_REQUEST = request(
    13, "LeaveGroupRequest", "0-5", "4+",
    field("group_id", "string", "0+"),
    field("member_id", "string", "0-2"),
    field("members", "[]MemberIdentity", "3+", fields=(
        field("member_id", "string", "3+"),
        field("group_instance_id", "string", "3+", nullable="3+", default=None),
        field("reason", "string", "5+", nullable="5+", default=None),
    )),
)


LEAVE_GROUP_RESPONSE = response(
    13, "LeaveGroupResponse", "0-5", "4+",
    field("throttle_time_ms", "int32", "1+"),
    field("error_code", "int16", "0+"),
    field("members", "[]MemberResponse", "3+", fields=(
        field("member_id", "string", "3+"),
        field("group_instance_id", "string", "3+", nullable="3+"),
        field("error_code", "int16", "3+"),
    )),
)


OFFSET_COMMIT_REQUEST = request(
    8, "OffsetCommitRequest", "0-9", "8+",
    field("group_id", "string", "0+"),
    field("generation_id_or_member_epoch", "int32", "1+", default=-1),
    field("member_id", "string", "1+"),
    field("group_instance_id", "string", "7+", nullable="7+", default=None),
    field("retention_time_ms", "int64", "2-4", default=-1),
    field("topics", "[]OffsetCommitRequestTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]OffsetCommitRequestPartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("committed_offset", "int64", "0+"),
            field("committed_leader_epoch", "int32", "6+", default=-1),
            field("commit_timestamp", "int64", "1", default=-1),
            field("committed_metadata", "string", "0+", nullable="0+"),
        )),
    )),
)


OFFSET_COMMIT_RESPONSE = response(
    8, "OffsetCommitResponse", "0-9", "8+",
    field("throttle_time_ms", "int32", "3+"),
    field("topics", "[]OffsetCommitResponseTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]OffsetCommitResponsePartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("error_code", "int16", "0+"),
        )),
    )),
)


OFFSET_FETCH_REQUEST = request(
    9, "OffsetFetchRequest", "0-9", "6+",
    field("group_id", "string", "0-7"),
    field("topics", "[]OffsetFetchRequestTopic", "0-7", nullable="2-7", fields=(
        field("name", "string", "0-7"),
        field("partition_indexes", "[]int32", "0-7"),
    )),
    field("groups", "[]OffsetFetchRequestGroup", "8+", fields=(
        field("group_id", "string", "8+"),
        field("member_id", "string", "9+", nullable="9+", default=None),
        field("member_epoch", "int32", "9+", default=-1),
        field("topics", "[]OffsetFetchRequestTopics", "8+", nullable="8+", fields=(
            field("name", "string", "8+"),
            field("partition_indexes", "[]int32", "8+"),
        )),
    )),
    field("require_stable", "bool", "7+", default=False),
)


OFFSET_FETCH_RESPONSE = response(
    9, "OffsetFetchResponse", "0-9", "6+",
    field("throttle_time_ms", "int32", "3+"),
    field("topics", "[]OffsetFetchResponseTopic", "0-7", fields=(
        field("name", "string", "0-7"),
        field("partitions", "[]OffsetFetchResponsePartition", "0-7", fields=(
            field("partition_index", "int32", "0-7"),
            field("committed_offset", "int64", "0-7"),
            field("committed_leader_epoch", "int32", "5-7", default=-1),
            field("metadata", "string", "0-7", nullable="0-7"),
            field("error_code", "int16", "0-7"),
        )),
    )),
    field("error_code", "int16", "2-7", default=0),
    field("groups", "[]OffsetFetchResponseGroup", "8+", fields=(
        field("group_id", "string", "8+"),
        field("topics", "[]OffsetFetchResponseTopics", "8+", fields=(
            field("name", "string", "8+"),
            field("partitions", "[]OffsetFetchResponsePartitions", "8+", fields=(
                field("partition_index", "int32", "8+"),
                field("committed_offset", "int64", "8+"),
                field("committed_leader_epoch", "int32", "8+", default=-1),
                field("metadata", "string", "8+", nullable="8+"),
                field("error_code", "int16", "8+"),
            )),
        )),
        field("error_code", "int16", "8+", default=0),
    )),
)


DESCRIBE_GROUPS_REQUEST = request(
    15, "DescribeGroupsRequest", "0-5", "5+",
    field("groups", "[]string", "0+"),
    field("include_authorized_operations", "bool", "3+"),
)


DESCRIBE_GROUPS_RESPONSE = response(
    15, "DescribeGroupsResponse", "0-5", "5+",
    field("throttle_time_ms", "int32", "1+"),
    field("groups", "[]DescribedGroup", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("group_id", "string", "0+"),
        field("group_state", "string", "0+"),
        field("protocol_type", "string", "0+"),
        field("protocol_data", "string", "0+"),
        field("members", "[]DescribedGroupMember", "0+", fields=(
            field("member_id", "string", "0+"),
            field("group_instance_id", "string", "4+", nullable="4+", default=None),
            field("client_id", "string", "0+"),
            field("client_host", "string", "0+"),
            field("member_metadata", "bytes", "0+"),
            field("member_assignment", "bytes", "0+"),
        )),
        field("authorized_operations", "int32", "3+", default=-2147483648),
    )),
)


LIST_GROUPS_REQUEST = request(
    16, "ListGroupsRequest", "0-5", "3+",
    field("states_filter", "[]string", "4+"),
    field("types_filter", "[]string", "5+"),
)


LIST_GROUPS_RESPONSE = response(
    16, "ListGroupsResponse", "0-5", "3+",
    field("throttle_time_ms", "int32", "1+"),
    field("error_code", "int16", "0+"),
    field("groups", "[]ListedGroup", "0+", fields=(
        field("group_id", "string", "0+"),
        field("protocol_type", "string", "0+"),
        field("group_state", "string", "4+"),
        field("group_type", "string", "5+"),
    )),
)


DELETE_GROUPS_REQUEST = request(
    42, "DeleteGroupsRequest", "0-2", "2+",
    field("groups_names", "[]string", "0+"),
)


DELETE_GROUPS_RESPONSE = response(
    42, "DeleteGroupsResponse", "0-2", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("results", "[]DeletableGroupResult", "0+", fields=(
        field("group_id", "string", "0+"),
        field("error_code", "int16", "0+"),
    )),
)


OFFSET_DELETE_REQUEST = request(
    47, "OffsetDeleteRequest", "0", "none",
    field("group_id", "string", "0+"),
    field("topics", "[]OffsetDeleteRequestTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]OffsetDeleteRequestPartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
        )),
    )),
)


OFFSET_DELETE_RESPONSE = response(
    47, "OffsetDeleteResponse", "0", "none",
    field("error_code", "int16", "0+"),
    field("throttle_time_ms", "int32", "0+"),
    field("topics", "[]OffsetDeleteResponseTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]OffsetDeleteResponsePartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("error_code", "int16", "0+"),
        )),
    )),
)


MESSAGES = (
    FIND_COORDINATOR_REQUEST,
    FIND_COORDINATOR_RESPONSE,
    JOIN_GROUP_REQUEST,
    JOIN_GROUP_RESPONSE,
    SYNC_GROUP_REQUEST,
    SYNC_GROUP_RESPONSE,
    HEARTBEAT_REQUEST,
    HEARTBEAT_RESPONSE,
    LEAVE_GROUP_REQUEST,
    LEAVE_GROUP_RESPONSE,
    OFFSET_COMMIT_REQUEST,
    OFFSET_COMMIT_RESPONSE,
    OFFSET_FETCH_REQUEST,
    OFFSET_FETCH_RESPONSE,
    DESCRIBE_GROUPS_REQUEST,
    DESCRIBE_GROUPS_RESPONSE,
    LIST_GROUPS_REQUEST,
    LIST_GROUPS_RESPONSE,
    DELETE_GROUPS_REQUEST,
    DELETE_GROUPS_RESPONSE,
    OFFSET_DELETE_REQUEST,
    OFFSET_DELETE_RESPONSE,
)
