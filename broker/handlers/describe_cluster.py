"""DescribeCluster (60): the cluster id, this broker, and this broker as controller."""

from __future__ import annotations

from broker.handlers.base import Services, handles
from broker.handlers.metadata import cluster_operations
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.metadata import DESCRIBE_CLUSTER_RESPONSE

BROKERS_ENDPOINT = 1


@handles(ApiKey.DESCRIBE_CLUSTER)
async def describe_cluster(broker: Services, header, request):
    endpoint_type = request.get("endpoint_type", BROKERS_ENDPOINT)
    if endpoint_type != BROKERS_ENDPOINT:
        # Controller endpoints (KIP-919) are for KRaft tooling; this broker has no separate controller.
        raise ApiError(ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, "only broker endpoints (endpoint type 1) are served")
    host, port = broker.advertised_address
    node_id = broker.config.node_id
    return DESCRIBE_CLUSTER_RESPONSE(
        endpoint_type=endpoint_type, cluster_id=broker.cluster_id, controller_id=node_id,
        brokers=[DESCRIBE_CLUSTER_RESPONSE.DescribeClusterBroker(broker_id=node_id, host=host, port=port)],
        cluster_authorized_operations=cluster_operations(broker, request.include_cluster_authorized_operations))
