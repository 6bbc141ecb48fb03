"""Discovery: version negotiation, cluster and topic metadata."""

from ..schema import field, request, response


API_VERSIONS_REQUEST = request(
    18, "ApiVersionsRequest", "0-4", "3+",
    field("client_software_name", "string", "3+"),
    field("client_software_version", "string", "3+"),
)


API_VERSIONS_RESPONSE = response(
    18, "ApiVersionsResponse", "0-4", "3+",
    field("error_code", "int16", "0+"),
    field("api_keys", "[]ApiVersion", "0+", fields=(
        field("api_key", "int16", "0+"),
        field("min_version", "int16", "0+"),
        field("max_version", "int16", "0+"),
    )),
    field("throttle_time_ms", "int32", "1+"),
    field("supported_features", "[]SupportedFeatureKey", "3+", tag=0, tagged="3+", fields=(
        field("name", "string", "3+"),
        field("min_version", "int16", "3+"),
        field("max_version", "int16", "3+"),
    )),
    field("finalized_features_epoch", "int64", "3+", tag=1, tagged="3+", default=-1),
    field("finalized_features", "[]FinalizedFeatureKey", "3+", tag=2, tagged="3+", fields=(
        field("name", "string", "3+"),
        field("max_version_level", "int16", "3+"),
        field("min_version_level", "int16", "3+"),
    )),
    field("zk_migration_ready", "bool", "3+", tag=3, tagged="3+", default=False),
)


METADATA_REQUEST = request(
    3, "MetadataRequest", "0-12", "9+",
    field("topics", "[]MetadataRequestTopic", "0+", nullable="1+", fields=(
        field("topic_id", "uuid", "10+"),
        field("name", "string", "0+", nullable="10+"),
    )),
    field("allow_auto_topic_creation", "bool", "4+", default=True),
    field("include_cluster_authorized_operations", "bool", "8-10"),
    field("include_topic_authorized_operations", "bool", "8+"),
)


METADATA_RESPONSE = response(
    3, "MetadataResponse", "0-12", "9+",
    field("throttle_time_ms", "int32", "3+"),
    field("brokers", "[]MetadataResponseBroker", "0+", fields=(
        field("node_id", "int32", "0+"),
        field("host", "string", "0+"),
        field("port", "int32", "0+"),
        field("rack", "string", "1+", nullable="1+", default=None),
    )),
    field("cluster_id", "string", "2+", nullable="2+", default=None),
    field("controller_id", "int32", "1+", default=-1),
    field("topics", "[]MetadataResponseTopic", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("name", "string", "0+", nullable="12+"),
        field("topic_id", "uuid", "10+"),
        field("is_internal", "bool", "1+", default=False),
        field("partitions", "[]MetadataResponsePartition", "0+", fields=(
            field("error_code", "int16", "0+"),
            field("partition_index", "int32", "0+"),
            field("leader_id", "int32", "0+"),
            field("leader_epoch", "int32", "7+", default=-1),
            field("replica_nodes", "[]int32", "0+"),
            field("isr_nodes", "[]int32", "0+"),
            field("offline_replicas", "[]int32", "5+"),
        )),
        field("topic_authorized_operations", "int32", "8+", default=-2147483648),
    )),
    field("cluster_authorized_operations", "int32", "8-10", default=-2147483648),
)


DESCRIBE_CLUSTER_REQUEST = request(
    60, "DescribeClusterRequest", "0-1", "0+",
    field("include_cluster_authorized_operations", "bool", "0+"),
    field("endpoint_type", "int8", "1+", default=1),
)


DESCRIBE_CLUSTER_RESPONSE = response(
    60, "DescribeClusterResponse", "0-1", "0+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
    field("error_message", "string", "0+", nullable="0+", default=None),
    field("endpoint_type", "int8", "1+", default=1),
    field("cluster_id", "string", "0+"),
    field("controller_id", "int32", "0+", default=-1),
    field("brokers", "[]DescribeClusterBroker", "0+", fields=(
        field("broker_id", "int32", "0+"),
        field("host", "string", "0+"),
        field("port", "int32", "0+"),
        field("rack", "string", "0+", nullable="0+", default=None),
    )),
    field("cluster_authorized_operations", "int32", "0+", default=-2147483648),
)


MESSAGES = (
    API_VERSIONS_REQUEST,
    API_VERSIONS_RESPONSE,
    METADATA_REQUEST,
    METADATA_RESPONSE,
    DESCRIBE_CLUSTER_REQUEST,
    DESCRIBE_CLUSTER_RESPONSE,
)
