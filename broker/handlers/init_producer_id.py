"""InitProducerId (22): producer ids for idempotent producers, unique across restarts, and for
transactional ones the producer id and epoch of their transactional id."""

from __future__ import annotations

from broker.acls import ResourceType, authorized, authorized_any
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, handles
from broker.handlers.transactions import fenced_for
from broker.producer_state import NO_PRODUCER_EPOCH, NO_PRODUCER_ID
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.produce import INIT_PRODUCER_ID_RESPONSE

# v3 carries the producer id and epoch the producer has (KIP-360); v4 knows PRODUCER_FENCED.
FIRST_PRODUCER_FENCED_VERSION = 4


@handles(ApiKey.INIT_PRODUCER_ID, failed={"producer_epoch": -1})
async def init_producer_id(broker: Services, header, request):
    transactional_id = request.transactional_id
    authorizer = broker.authorizer
    if transactional_id is not None:
        if not authorized(authorizer, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
            raise ApiError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    # An idempotent producer: IDEMPOTENT_WRITE on the cluster, or (KIP-679) WRITE on some topic.
    elif not (authorized(authorizer, AclOperation.IDEMPOTENT_WRITE, ResourceType.CLUSTER)
              or authorized_any(authorizer, AclOperation.WRITE, ResourceType.TOPIC)):
        raise ApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    expected = None
    if transactional_id is not None:
        # As Kafka: either both or neither (a new producer) of the producer id and epoch.
        expected = request.get("producer_id", NO_PRODUCER_ID), request.get("producer_epoch", NO_PRODUCER_EPOCH)
        if expected == (NO_PRODUCER_ID, NO_PRODUCER_EPOCH):
            expected = None
        elif expected[0] == NO_PRODUCER_ID or expected[1] == NO_PRODUCER_EPOCH:
            raise ApiError(ErrorCode.INVALID_REQUEST, "a producer id needs its epoch, and an epoch its producer id")
    # Without a transactional id, as Kafka does: always a fresh id at epoch 0, whatever id and
    # epoch the client sent (KIP-360 epoch bumps only apply to transactional ids).
    try:
        producer_id, producer_epoch = await broker.transactions.init_producer_id(
            transactional_id, request.transaction_timeout_ms, expected)
    except ApiError as exc:
        raise fenced_for(header.request_api_version, FIRST_PRODUCER_FENCED_VERSION, exc)
    return INIT_PRODUCER_ID_RESPONSE(producer_id=producer_id, producer_epoch=producer_epoch)
