"""ApiVersions and DescribeCluster, called directly."""

from __future__ import annotations

import pytest

from broker.handlers import HANDLERS
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey

from test_handlers_direct import call, services  # noqa: F401 -- the fixture is used by name


async def test_api_versions_lists_what_the_handlers_serve(services):
    response = await call(services, ApiKey.API_VERSIONS, 3)
    assert response.error_code == ErrorCode.NONE
    assert {v.api_key: (v.min_version, v.max_version) for v in response.api_keys} == {
        key: (api.min_version, api.max_version) for key, api in HANDLERS.items()}


async def test_describe_cluster_names_this_broker_as_the_controller(services):
    response = await call(services, ApiKey.DESCRIBE_CLUSTER, 1, endpoint_type=1)
    assert (response.error_code, response.error_message, response.cluster_id, response.controller_id) == (
        ErrorCode.NONE, None, "cluster", 1)
    assert [(b.broker_id, b.host, b.port) for b in response.brokers] == [(1, "127.0.0.1", 9092)]


async def test_describe_cluster_serves_no_controller_endpoints(services):
    # The whole request fails: Api.respond answers with the error and every other field defaulted.
    with pytest.raises(ApiError) as refused:
        await call(services, ApiKey.DESCRIBE_CLUSTER, 1, endpoint_type=2)
    assert refused.value.code == ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
