"""InitProducerId (22): producer ids for idempotent producers, unique across restarts."""

from __future__ import annotations

from broker.handlers.base import Services, handles
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.produce import INIT_PRODUCER_ID_RESPONSE


@handles(ApiKey.INIT_PRODUCER_ID, failed={"producer_epoch": -1})
async def init_producer_id(broker: Services, header, request):
    if request.transactional_id is not None:
        # Transactions need a transaction coordinator, which this broker does not have.
        raise ApiError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    # As Kafka does for non-transactional producers: always a fresh id at epoch 0, whatever id and
    # epoch the client sent (KIP-360 epoch bumps only apply to transactional ids).
    try:
        producer_id = await broker.producer_ids.allocate()
    except OSError as exc:
        # Kafka's answer while no block of producer ids is available yet; clients retry it.
        raise ApiError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) from exc
    return INIT_PRODUCER_ID_RESPONSE(producer_id=producer_id, producer_epoch=0)
