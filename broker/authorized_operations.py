"""Kafka's ACL operation codes, and the authorized operations Kafka reports when no authorizer is
configured: every operation the resource type supports, as a bit field of those codes (or
"omitted" when not asked)."""

import enum


class AclOperation(enum.IntEnum):
    """Kafka's AclOperation: ANY only in filters, UNKNOWN for a code this broker does not know."""

    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


OMITTED = -2**31


def _bits(*operations: AclOperation) -> int:
    return sum(1 << operation for operation in operations)


TOPIC = _bits(AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE, AclOperation.ALTER,
              AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS)
GROUP = _bits(AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE)
CLUSTER = _bits(AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
                AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE)


def reported(requested: bool, operations: int) -> int:
    return operations if requested else OMITTED
