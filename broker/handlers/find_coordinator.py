"""FindCoordinator (10): this broker coordinates every group and every transactional id."""

from __future__ import annotations

from broker.acls import ResourceType, authorized
from broker.authorized_operations import AclOperation
from broker.faults import NO_NODE
from broker.handlers.base import Services, error_fields, handles
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.groups import FIND_COORDINATOR_RESPONSE

# v4+ looks up a batch of keys at once.
FIRST_BATCHED_VERSION = 4
GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1


def _coordinator(broker: Services, key_type: int, key: str) -> dict:
    """The node coordinating `key` of `key_type`; raises when there is none, or when the session
    may not describe the group or transactional id (Kafka's check, before any other)."""
    if key_type == GROUP_KEY_TYPE:
        if not authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.GROUP, key):
            raise ApiError(ErrorCode.GROUP_AUTHORIZATION_FAILED)
        active = broker.coordinator.active
    elif key_type == TRANSACTION_KEY_TYPE:
        if not authorized(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key):
            raise ApiError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        active = broker.transactions.active
    else:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"unknown coordinator key type {key_type}")
    if not active:
        # Kafka's answer while it has no coordinator to offer; clients keep asking.
        raise ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "the broker is shutting down")
    host, port = broker.advertised_address
    return {"node_id": broker.config.node_id, "host": host, "port": port}


def _answer(broker: Services, key_type: int, key: str, struct, batched: bool) -> dict:
    """The fields of one answer: the coordinator, or no node and the error. The message as
    Kafka's handler sets it: a found coordinator's before v4 is Errors.NONE.message(), "NONE";
    a batched answer's is never set, so the field's default, "", errors included."""
    try:
        fields = {**_coordinator(broker, key_type, key), "error_message": "NONE"}
    except ApiError as exc:
        fields = {**NO_NODE, **error_fields(struct, exc)}
    if batched:
        fields["error_message"] = ""
    return fields


@handles(ApiKey.FIND_COORDINATOR)
async def find_coordinator(broker: Services, header, request):
    key_type = request.get("key_type", GROUP_KEY_TYPE)
    if header.request_api_version >= FIRST_BATCHED_VERSION:
        found = FIND_COORDINATOR_RESPONSE.Coordinator
        return FIND_COORDINATOR_RESPONSE(coordinators=[found(key=key, **_answer(broker, key_type, key, found, True))
                                                       for key in request.coordinator_keys])
    return FIND_COORDINATOR_RESPONSE(**_answer(broker, key_type, request.key, FIND_COORDINATOR_RESPONSE, False))
