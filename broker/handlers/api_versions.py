"""ApiVersions (18): the version table clients negotiate with, which is what the handlers serve."""

from __future__ import annotations

from broker.handlers.base import HANDLERS, Api, Services, handles
from protocol import headers
from protocol.errors import ErrorCode
from protocol.messages import ApiKey
from protocol.messages.metadata import API_VERSIONS_RESPONSE


def supported_api_table() -> list:
    return [API_VERSIONS_RESPONSE.ApiVersion(api_key=api.api_key, min_version=api.min_version,
                                             max_version=api.max_version)
            for api in sorted(HANDLERS.values(), key=lambda api: api.api_key)]


class ApiVersionsApi(Api):
    async def respond(self, broker, header, frame: bytes | bytearray, body_offset: int) -> list | None:
        if header.request_api_version > self.max_version:
            # A version we don't know is answered, not dropped (clients probe with their newest):
            # header v0 and a v0 body carrying UNSUPPORTED_VERSION and our table, as Kafka does.
            response = API_VERSIONS_RESPONSE(error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=supported_api_table())
            return [headers.encode_response_header(ApiKey.API_VERSIONS, 0, header.correlation_id),
                    *self.response.encode_chunks(0, response)]
        return await super().respond(broker, header, frame, body_offset)


@handles(ApiKey.API_VERSIONS, cls=ApiVersionsApi)
async def api_versions(broker: Services, header, request):
    return API_VERSIONS_RESPONSE(api_keys=supported_api_table())
