"""SCRAM credential administration (KIP-554)."""

from ..schema import field, request, response


DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST = request(
    50, "DescribeUserScramCredentialsRequest", "0", "0+",
    field("users", "[]UserName", "0+", nullable="0+", fields=(
        field("name", "string", "0+"),
    )),
)


DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE = response(
    50, "DescribeUserScramCredentialsResponse", "0", "0+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
    field("error_message", "string", "0+", nullable="0+"),
    field("results", "[]DescribeUserScramCredentialsResult", "0+", fields=(
        field("user", "string", "0+"),
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+"),
        field("credential_infos", "[]CredentialInfo", "0+", fields=(
            field("mechanism", "int8", "0+"),
            field("iterations", "int32", "0+"),
        )),
    )),
)


ALTER_USER_SCRAM_CREDENTIALS_REQUEST = request(
    51, "AlterUserScramCredentialsRequest", "0", "0+",
    field("deletions", "[]ScramCredentialDeletion", "0+", fields=(
        field("name", "string", "0+"),
        field("mechanism", "int8", "0+"),
    )),
    field("upsertions", "[]ScramCredentialUpsertion", "0+", fields=(
        field("name", "string", "0+"),
        field("mechanism", "int8", "0+"),
        field("iterations", "int32", "0+"),
        field("salt", "bytes", "0+"),
        field("salted_password", "bytes", "0+"),
    )),
)


ALTER_USER_SCRAM_CREDENTIALS_RESPONSE = response(
    51, "AlterUserScramCredentialsResponse", "0", "0+",
    field("throttle_time_ms", "int32", "0+"),
    field("results", "[]AlterUserScramCredentialsResult", "0+", fields=(
        field("user", "string", "0+"),
        field("error_code", "int16", "0+"),
        field("error_message", "string", "0+", nullable="0+"),
    )),
)


MESSAGES = (
    DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST,
    DESCRIBE_USER_SCRAM_CREDENTIALS_RESPONSE,
    ALTER_USER_SCRAM_CREDENTIALS_REQUEST,
    ALTER_USER_SCRAM_CREDENTIALS_RESPONSE,
)
