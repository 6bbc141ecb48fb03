"""DescribeCluster (60): the cluster id, this broker, and this broker as controller."""

from __future__ import annotations

from broker import authorized_operations
from broker.handlers.base import handles
from protocol.errors import ErrorCode

DESCRIBE_CLUSTER = 60
BROKERS_ENDPOINT = 1


@handles(DESCRIBE_CLUSTER)
async def describe_cluster(broker, header, request) -> dict:
    response = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
                "endpoint_type": request.get("endpoint_type", BROKERS_ENDPOINT), "cluster_id": broker.cluster_id,
                "controller_id": broker.config.node_id, "brokers": [],
                "cluster_authorized_operations": authorized_operations.reported(
                    request.include_cluster_authorized_operations, authorized_operations.CLUSTER)}
    if response["endpoint_type"] != BROKERS_ENDPOINT:
        # Controller endpoints (KIP-919) are for KRaft tooling; this broker has no separate controller.
        response.update(error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
                        error_message="only broker endpoints (endpoint type 1) are served")
        return response
    host, port = broker.advertised_address
    response["brokers"] = [{"broker_id": broker.config.node_id, "host": host, "port": port, "rack": None}]
    return response
