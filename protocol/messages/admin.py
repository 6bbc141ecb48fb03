"""Topic and configuration administration."""

from ..schema import field, request, response


CREATE_TOPICS_REQUEST = request(
    19, "CreateTopicsRequest", "0-7", "5+",
    field("topics", "[]CreatableTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("num_partitions", "int32", "0+"),
        field("replication_factor", "int16", "0+"),
        field("assignments", "[]CreatableReplicaAssignment", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("broker_ids", "[]int32", "0+"),
        )),
        field("configs", "[]CreatableTopicConfig", "0+", fields=(
            field("name", "string", "0+"),
            field("value", "string", "0+", nullable="0+"),
        )),
    )),
    field("timeout_ms", "int32", "0+", default=60000),
    field("validate_only", "bool", "1+", default=False),
)


CREATE_TOPICS_RESPONSE = response(
    19, "CreateTopicsResponse", "0-7", "5+",
    field("throttle_time_ms", "int32", "2+"),
    field("topics", "[]CreatableTopicResult", "0+", fields=(
        field("name", "string", "0+"),
        field("topic_id", "uuid", "7+"),
        field("error_code", "int16", "0+"),
        field("error_message", "string", "1+", nullable="0+"),
        field("topic_config_error_code", "int16", "5+", tag=0, tagged="5+"),
        field("num_partitions", "int32", "5+", default=-1),
        field("replication_factor", "int16", "5+", default=-1),
        field("configs", "[]CreatableTopicConfigs", "5+", nullable="5+", fields=(
            field("name", "string", "5+"),
            field("value", "string", "5+", nullable="5+"),
            field("read_only", "bool", "5+"),
            field("config_source", "int8", "5+", default=-1),
            field("is_sensitive", "bool", "5+"),
        )),
    )),
)


DELETE_TOPICS_REQUEST = request(
    20, "DeleteTopicsRequest", "0-6", "4+",
    field("topics", "[]DeleteTopicState", "6+", fields=(
        field("name", "string", "6+", nullable="6+", default=None),
        field("topic_id", "uuid", "6+"),
    )),
    field("topic_names", "[]string", "0-5"),
    field("timeout_ms", "int32", "0+"),
)


DELETE_TOPICS_RESPONSE = response(
    20, "DeleteTopicsResponse", "0-6", "4+",
    field("throttle_time_ms", "int32", "1+"),
    field("responses", "[]DeletableTopicResult", "0+", fields=(
        field("name", "string", "0+", nullable="6+"),
        field("topic_id", "uuid", "6+"),
        field("error_code", "int16", "0+"),
        field("error_message", "string", "5+", nullable="5+", default=None),
    )),
)


DELETE_RECORDS_REQUEST = request(
    21, "DeleteRecordsRequest", "0-2", "2+",
    field("topics", "[]DeleteRecordsTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]DeleteRecordsPartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("offset", "int64", "0+"),
        )),
    )),
    field("timeout_ms", "int32", "0+"),
)


DELETE_RECORDS_RESPONSE = response(
    21, "DeleteRecordsResponse", "0-2", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("topics", "[]DeleteRecordsTopicResult", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]DeleteRecordsPartitionResult", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("low_watermark", "int64", "0+"),
            field("error_code", "int16", "0+"),
        )),
    )),
)


CREATE_PARTITIONS_REQUEST = request(
    37, "CreatePartitionsRequest", "0-3", "2+",
    field("topics", "[]CreatePartitionsTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("count", "int32", "0+"),
        field("assignments", "[]CreatePartitionsAssignment", "0+", nullable="0+", fields=(
            field("broker_ids", "[]int32", "0+"),
        )),
    )),
    field("timeout_ms", "int32", "0+"),
    field("validate_only", "bool", "0+"),
)


CREATE_PARTITIONS_RESPONSE = response(
    37, "CreatePartitionsResponse", "0-3", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("results", "[]CreatePartitionsTopicResult", "0+", fields=(
        field("name", "string", "0+"),
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+", default=None),
    )),
)


DESCRIBE_CONFIGS_REQUEST = request(
    32, "DescribeConfigsRequest", "0-4", "4+",
    field("resources", "[]DescribeConfigsResource", "0+", fields=(
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
        field("configuration_keys", "[]string", "0+", nullable="0+"),
    )),
    field("include_synonyms", "bool", "1+", default=False),
    field("include_documentation", "bool", "3+", default=False),
)


DESCRIBE_CONFIGS_RESPONSE = response(
    32, "DescribeConfigsResponse", "0-4", "4+",
    field("throttle_time_ms", "int32", "0+"),
    field("results", "[]DescribeConfigsResult", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+"),
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
        field("configs", "[]DescribeConfigsResourceResult", "0+", fields=(
            field("name", "string", "0+"),
            field("value", "string", "0+", nullable="0+"),
            field("read_only", "bool", "0+"),
            field("is_default", "bool", "0"),
            field("config_source", "int8", "1+", default=-1),
            field("is_sensitive", "bool", "0+"),
            field("synonyms", "[]DescribeConfigsSynonym", "1+", fields=(
                field("name", "string", "1+"),
                field("value", "string", "1+", nullable="0+"),
                field("source", "int8", "1+"),
            )),
            field("config_type", "int8", "3+", default=0),
            field("documentation", "string", "3+", nullable="0+"),
        )),
    )),
)


ALTER_CONFIGS_REQUEST = request(
    33, "AlterConfigsRequest", "0-2", "2+",
    field("resources", "[]AlterConfigsResource", "0+", fields=(
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
        field("configs", "[]AlterableConfig", "0+", fields=(
            field("name", "string", "0+"),
            field("value", "string", "0+", nullable="0+"),
        )),
    )),
    field("validate_only", "bool", "0+"),
)


# Both ways of altering configs answer with the same per-resource results.
_ALTER_CONFIGS_RESULTS = (
    field("throttle_time_ms", "int32", "0+"),
    field("responses", "[]AlterConfigsResourceResponse", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+"),
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
    )),
)


ALTER_CONFIGS_RESPONSE = response(33, "AlterConfigsResponse", "0-2", "2+", *_ALTER_CONFIGS_RESULTS)


INCREMENTAL_ALTER_CONFIGS_REQUEST = request(
    44, "IncrementalAlterConfigsRequest", "0-1", "1+",
    field("resources", "[]AlterConfigsResource", "0+", fields=(
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
        field("configs", "[]AlterableConfig", "0+", fields=(
            field("name", "string", "0+"),
            field("config_operation", "int8", "0+"),
            field("value", "string", "0+", nullable="0+"),
        )),
    )),
    field("validate_only", "bool", "0+"),
)


INCREMENTAL_ALTER_CONFIGS_RESPONSE = response(44, "IncrementalAlterConfigsResponse", "0-1", "1+",
                                              *_ALTER_CONFIGS_RESULTS)


MESSAGES = (
    CREATE_TOPICS_REQUEST,
    CREATE_TOPICS_RESPONSE,
    DELETE_TOPICS_REQUEST,
    DELETE_TOPICS_RESPONSE,
    DELETE_RECORDS_REQUEST,
    DELETE_RECORDS_RESPONSE,
    CREATE_PARTITIONS_REQUEST,
    CREATE_PARTITIONS_RESPONSE,
    DESCRIBE_CONFIGS_REQUEST,
    DESCRIBE_CONFIGS_RESPONSE,
    ALTER_CONFIGS_REQUEST,
    ALTER_CONFIGS_RESPONSE,
    INCREMENTAL_ALTER_CONFIGS_REQUEST,
    INCREMENTAL_ALTER_CONFIGS_RESPONSE,
)
