"""InitProducerId (22): producer ids for idempotent producers, unique across restarts."""

from __future__ import annotations

from broker.handlers.base import handles
from protocol.errors import ErrorCode

INIT_PRODUCER_ID = 22


@handles(INIT_PRODUCER_ID)
async def init_producer_id(broker, header, request) -> dict:
    if request.transactional_id is not None:
        # Transactions need a transaction coordinator, which this broker does not have.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "producer_id": -1, "producer_epoch": -1}
    # As Kafka does for non-transactional producers: always a fresh id at epoch 0, whatever id and
    # epoch the client sent (KIP-360 epoch bumps only apply to transactional ids).
    try:
        producer_id = await broker.producer_ids.allocate()
    except OSError:
        # Kafka's answer while no block of producer ids is available yet; clients retry it.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                "producer_id": -1, "producer_epoch": -1}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "producer_id": producer_id, "producer_epoch": 0}
