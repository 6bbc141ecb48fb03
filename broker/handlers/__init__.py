"""One handler per Kafka API. Importing this package registers them all in HANDLERS."""

from broker.handlers.base import HANDLERS, Api
from broker.handlers import api_versions, fetch, init_producer_id, list_offsets, metadata, produce
from broker.handlers import find_coordinator, groups, offsets
from broker.handlers import configs, delete_records, describe_cluster, offset_for_leader_epoch, topics

__all__ = ["HANDLERS", "Api"]
