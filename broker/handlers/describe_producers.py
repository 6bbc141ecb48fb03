"""DescribeProducers (61): the producers each partition keeps state for, and their open transactions."""

from __future__ import annotations

from broker.acls import ResourceType, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, answer_each_partition, handles
from broker.registry import Partition
from protocol.messages import ApiKey
from protocol.messages.transactions import DESCRIBE_PRODUCERS_RESPONSE

_ProducerState = DESCRIBE_PRODUCERS_RESPONSE.ProducerState
# What DescribeProducers answers for no sequence yet and no ongoing transaction.
_NONE = -1


async def _answer(partition: Partition, wanted) -> dict:
    return {"active_producers": [
        _ProducerState(producer_id=producer_id, producer_epoch=entry.epoch,
                       last_sequence=_NONE if entry.last_sequence is None else entry.last_sequence,
                       last_timestamp=entry.last_timestamp, coordinator_epoch=entry.coordinator_epoch,
                       current_txn_start_offset=_NONE if entry.current_txn_first_offset is None
                       else entry.current_txn_first_offset)
        for producer_id, entry in partition.producers.producers.items()]}


@handles(ApiKey.DESCRIBE_PRODUCERS)
async def describe_producers(broker: Services, header, request):
    names = [topic.name for topic in request.topics]
    # READ, as Kafka asks: a topic's producers are its writers' state, not its description.
    denied = set(names) - authorized_names(broker.authorizer, AclOperation.READ, ResourceType.TOPIC, names)
    return DESCRIBE_PRODUCERS_RESPONSE(topics=await answer_each_partition(
        broker, request.topics, DESCRIBE_PRODUCERS_RESPONSE.TopicResponse,
        DESCRIBE_PRODUCERS_RESPONSE.PartitionResponse, _answer, partitions_field="partition_indexes",
        denied=denied))
