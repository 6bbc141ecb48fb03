"""FindCoordinator (10): this broker coordinates every group; it has no transaction coordinator."""

from __future__ import annotations

from broker.handlers.base import handles
from protocol.errors import ErrorCode

FIND_COORDINATOR = 10
# v4+ looks up a batch of keys at once.
FIRST_BATCHED_VERSION = 4
GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1


def _coordinator(broker, key: str, key_type: int) -> dict:
    answer = {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": ErrorCode.NONE, "error_message": None}
    if key_type == GROUP_KEY_TYPE and broker.coordinator.active:
        host, port = broker.advertised_address
        answer.update(node_id=broker.config.node_id, host=host, port=port)
    elif key_type in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
        # Kafka's answer while it has no coordinator to offer; a transactional producer keeps
        # asking until its own timeout rather than failing outright.
        answer.update(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE,
                      error_message="no transaction coordinator on this broker"
                      if key_type == TRANSACTION_KEY_TYPE else "the broker is shutting down")
    else:
        answer.update(error_code=ErrorCode.INVALID_REQUEST, error_message=f"unknown coordinator key type {key_type}")
    return answer


@handles(FIND_COORDINATOR)
async def find_coordinator(broker, header, request) -> dict:
    key_type = request.get("key_type", GROUP_KEY_TYPE)
    if header.request_api_version >= FIRST_BATCHED_VERSION:
        return {"throttle_time_ms": 0,
                "coordinators": [_coordinator(broker, key, key_type) for key in request.coordinator_keys]}
    answer = _coordinator(broker, request.key, key_type)
    del answer["key"]
    return {"throttle_time_ms": 0, **answer}
