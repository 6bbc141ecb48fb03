"""Kafka's ACL operation codes, the operations each resource type supports (Kafka's
AclEntry.supportedOperations), and the authorized-operations bit fields responses carry: the
supported operations the principal may perform, every supported one without an authorizer, or
"omitted" when not asked."""

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

TOPIC_OPERATIONS = (AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                    AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
                    AclOperation.ALTER_CONFIGS)
GROUP_OPERATIONS = (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE)
CLUSTER_OPERATIONS = (AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
                      AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE)
TRANSACTIONAL_ID_OPERATIONS = (AclOperation.DESCRIBE, AclOperation.WRITE)


def bits(operations) -> int:
    """Kafka's Utils.to32BitField of the operations' codes."""
    return sum(1 << operation for operation in set(operations))


TOPIC = bits(TOPIC_OPERATIONS)
GROUP = bits(GROUP_OPERATIONS)
CLUSTER = bits(CLUSTER_OPERATIONS)
TRANSACTIONAL_ID = bits(TRANSACTIONAL_ID_OPERATIONS)


def reported(requested: bool, operations: int) -> int:
    return operations if requested else OMITTED
