"""ACL administration: DescribeAcls, CreateAcls, DeleteAcls."""

from ..schema import field, request, response

# What an ACL grants, in every message that carries one.
_ENTRY = (
    field("principal", "string", "0+"),
    field("host", "string", "0+"),
    field("operation", "int8", "0+"),
    field("permission_type", "int8", "0+"),
)

# DescribeAcls' filter, and each of DeleteAcls' filters.
_FILTER = (
    field("resource_type_filter", "int8", "0+"),
    field("resource_name_filter", "string", "0+", nullable="0+"),
    field("pattern_type_filter", "int8", "1+", default=3),
    field("principal_filter", "string", "0+", nullable="0+"),
    field("host_filter", "string", "0+", nullable="0+"),
    field("operation", "int8", "0+"),
    field("permission_type", "int8", "0+"),
)


DESCRIBE_ACLS_REQUEST = request(29, "DescribeAclsRequest", "0-3", "2+", *_FILTER)


DESCRIBE_ACLS_RESPONSE = response(
    29, "DescribeAclsResponse", "0-3", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
    field("error_message", "string", "0+", nullable="0+"),
    field("resources", "[]DescribeAclsResource", "0+", fields=(
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
        field("pattern_type", "int8", "1+", default=3),
        field("acls", "[]AclDescription", "0+", fields=_ENTRY),
    )),
)


CREATE_ACLS_REQUEST = request(
    30, "CreateAclsRequest", "0-3", "2+",
    field("creations", "[]AclCreation", "0+", fields=(
        field("resource_type", "int8", "0+"),
        field("resource_name", "string", "0+"),
        field("resource_pattern_type", "int8", "1+", default=3),
        *_ENTRY,
    )),
)


CREATE_ACLS_RESPONSE = response(
    30, "CreateAclsResponse", "0-3", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("results", "[]AclCreationResult", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+"),
    )),
)


DELETE_ACLS_REQUEST = request(
    31, "DeleteAclsRequest", "0-3", "2+",
    field("filters", "[]DeleteAclsFilter", "0+", fields=_FILTER),
)


DELETE_ACLS_RESPONSE = response(
    31, "DeleteAclsResponse", "0-3", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("filter_results", "[]DeleteAclsFilterResult", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+"),
        field("matching_acls", "[]DeleteAclsMatchingAcl", "0+", fields=(
            field("error_code", "int16", "0+"),
            field("error_message", "string", "0+", nullable="0+"),
            field("resource_type", "int8", "0+"),
            field("resource_name", "string", "0+"),
            field("pattern_type", "int8", "1+", default=3),
            *_ENTRY,
        )),
    )),
)


MESSAGES = (
    DESCRIBE_ACLS_REQUEST,
    DESCRIBE_ACLS_RESPONSE,
    CREATE_ACLS_REQUEST,
    CREATE_ACLS_RESPONSE,
    DELETE_ACLS_REQUEST,
    DELETE_ACLS_RESPONSE,
)
