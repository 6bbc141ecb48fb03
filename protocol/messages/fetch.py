"""Reading: fetch, offset lookup by time, and the leader-epoch check consumers make after a leader change."""

from ..schema import field, request, response


FETCH_REQUEST = request(
    1, "FetchRequest", "0-17", "12+",
    field("cluster_id", "string", "12+", nullable="12+", tag=0, tagged="12+", default=None),
    field("replica_id", "int32", "0-14", default=-1),
    field("replica_state", "ReplicaState", "15+", tag=1, tagged="15+", fields=(
        field("replica_id", "int32", "15+", default=-1),
        field("replica_epoch", "int64", "15+", default=-1),
    )),
    field("max_wait_ms", "int32", "0+"),
    field("min_bytes", "int32", "0+"),
    field("max_bytes", "int32", "3+", default=0x7fffffff),
    field("isolation_level", "int8", "4+", default=0),
    field("session_id", "int32", "7+", default=0),
    field("session_epoch", "int32", "7+", default=-1),
    field("topics", "[]FetchTopic", "0+", fields=(
        field("topic", "string", "0-12"),
        field("topic_id", "uuid", "13+"),
        field("partitions", "[]FetchPartition", "0+", fields=(
            field("partition", "int32", "0+"),
            field("current_leader_epoch", "int32", "9+", default=-1),
            field("fetch_offset", "int64", "0+"),
            field("last_fetched_epoch", "int32", "12+", default=-1),
            field("log_start_offset", "int64", "5+", default=-1),
            field("partition_max_bytes", "int32", "0+"),
            field("replica_directory_id", "uuid", "17+", tag=0, tagged="17+"),
        )),
    )),
    field("forgotten_topics_data", "[]ForgottenTopic", "7+", fields=(
        field("topic", "string", "7-12"),
        field("topic_id", "uuid", "13+"),
        field("partitions", "[]int32", "7+"),
    )),
    field("rack_id", "string", "11+", default=""),
)


FETCH_RESPONSE = response(
    1, "FetchResponse", "0-17", "12+",
    field("throttle_time_ms", "int32", "1+"),
    field("error_code", "int16", "7+"),
    field("session_id", "int32", "7+", default=0),
    field("responses", "[]FetchableTopicResponse", "0+", fields=(
        field("topic", "string", "0-12"),
        field("topic_id", "uuid", "13+"),
        field("partitions", "[]PartitionData", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("error_code", "int16", "0+"),
            field("high_watermark", "int64", "0+"),
            field("last_stable_offset", "int64", "4+", default=-1),
            field("log_start_offset", "int64", "5+", default=-1),
            field("diverging_epoch", "EpochEndOffset", "12+", tag=0, tagged="12+", fields=(
                field("epoch", "int32", "12+", default=-1),
                field("end_offset", "int64", "12+", default=-1),
            )),
            field("current_leader", "LeaderIdAndEpoch", "12+", tag=1, tagged="12+", fields=(
                field("leader_id", "int32", "12+", default=-1),
                field("leader_epoch", "int32", "12+", default=-1),
            )),
            field("snapshot_id", "SnapshotId", "12+", tag=2, tagged="12+", fields=(
                field("end_offset", "int64", "0+", default=-1),
                field("epoch", "int32", "0+", default=-1),
            )),
            field("aborted_transactions", "[]AbortedTransaction", "4+", nullable="4+", fields=(
                field("producer_id", "int64", "4+"),
                field("first_offset", "int64", "4+"),
            )),
            field("preferred_read_replica", "int32", "11+", default=-1),
            field("records", "records", "0+", nullable="0+"),
        )),
    )),
    field("node_endpoints", "[]NodeEndpoint", "16+", tag=0, tagged="16+", fields=(
        field("node_id", "int32", "16+"),
        field("host", "string", "16+"),
        field("port", "int32", "16+"),
        field("rack", "string", "16+", nullable="16+", default=None),
    )),
)


LIST_OFFSETS_REQUEST = request(
    2, "ListOffsetsRequest", "0-10", "6+",
    field("replica_id", "int32", "0+"),
    field("isolation_level", "int8", "2+"),
    field("topics", "[]ListOffsetsTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]ListOffsetsPartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("current_leader_epoch", "int32", "4+", default=-1),
            field("timestamp", "int64", "0+"),
            field("max_num_offsets", "int32", "0", default=1),
        )),
    )),
    field("timeout_ms", "int32", "10+"),
)


LIST_OFFSETS_RESPONSE = response(
    2, "ListOffsetsResponse", "0-10", "6+",
    field("throttle_time_ms", "int32", "2+"),
    field("topics", "[]ListOffsetsTopicResponse", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]ListOffsetsPartitionResponse", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("error_code", "int16", "0+"),
            field("old_style_offsets", "[]int64", "0"),
            field("timestamp", "int64", "1+", default=-1),
            field("offset", "int64", "1+", default=-1),
            field("leader_epoch", "int32", "4+", default=-1),
        )),
    )),
)


OFFSET_FOR_LEADER_EPOCH_REQUEST = request(
    23, "OffsetForLeaderEpochRequest", "0-4", "4+",
    field("replica_id", "int32", "3+", default=-2),
    field("topics", "[]OffsetForLeaderTopic", "0+", fields=(
        field("topic", "string", "0+"),
        field("partitions", "[]OffsetForLeaderPartition", "0+", fields=(
            field("partition", "int32", "0+"),
            field("current_leader_epoch", "int32", "2+", default=-1),
            field("leader_epoch", "int32", "0+"),
        )),
    )),
)


OFFSET_FOR_LEADER_EPOCH_RESPONSE = response(
    23, "OffsetForLeaderEpochResponse", "0-4", "4+",
    field("throttle_time_ms", "int32", "2+"),
    field("topics", "[]OffsetForLeaderTopicResult", "0+", fields=(
        field("topic", "string", "0+"),
        field("partitions", "[]EpochEndOffset", "0+", fields=(
            field("error_code", "int16", "0+"),
            field("partition", "int32", "0+"),
            field("leader_epoch", "int32", "1+", default=-1),
            field("end_offset", "int64", "0+", default=-1),
        )),
    )),
)


MESSAGES = (
    FETCH_REQUEST,
    FETCH_RESPONSE,
    LIST_OFFSETS_REQUEST,
    LIST_OFFSETS_RESPONSE,
    OFFSET_FOR_LEADER_EPOCH_REQUEST,
    OFFSET_FOR_LEADER_EPOCH_RESPONSE,
)
