"""SaslHandshake (17), SaslAuthenticate (36): a SASL listener's authentication (broker.sasl), and
what Broker.handle_frame asks of it before any request is handled there.

Outside an exchange (a listener without SASL, or a connection authenticated and not
re-authenticating) both are answered ILLEGAL_SASL_STATE, as KafkaApis answers them."""

from __future__ import annotations

from broker.faults import error_answer
from broker.handlers.base import HANDLERS, CloseConnection, Services, handles
from broker.sasl import USERS_PROPERTY, SaslAuthenticationFailed, SaslAuthenticator, SaslConfigError
from broker.scram import ScramMechanism
from broker.session import current_session
from broker.storage_work import run_storage_work
from protocol import headers
from protocol.errors import ErrorCode
from protocol.framing import SIZE_PREFIX
from protocol.messages import ApiKey
from protocol.messages.sasl import SASL_AUTHENTICATE_RESPONSE, SASL_HANDSHAKE_RESPONSE
from protocol.primitives import open_frame


# Kafka's default sasl.server.max.receive.size: the largest frame before authentication (the
# connection holds a client to it until then).
SASL_MAX_RECEIVE_SIZE = 524288


class CloseAfterResponse(CloseConnection):
    """Send `response` (the frame's chunks), then close the connection, for `reason` (Kafka's
    SASL failures: the client is told why before the connection goes)."""

    def __init__(self, reason: str, response: list) -> None:
        super().__init__(reason)
        self.response = response


async def seed_scram_credentials(broker: Services) -> None:
    """Give comlog.sasl.users' users the SCRAM credentials they lack, at start (SaslConfigError if
    they cannot be stored)."""
    for mechanism in ScramMechanism:
        seeds = await run_storage_work(broker.sasl.scram_seeds, broker.scram_credentials, mechanism)
        for user, error in await broker.scram_credentials.alter([], seeds) if seeds else []:
            if error is not None:
                raise SaslConfigError(f"{USERS_PROPERTY}: cannot store the {mechanism.mechanism_name} "
                                      f"credential of {user}: {error.message or error.code.name}")


def admit(broker: Services, sasl: SaslAuthenticator, header, frame: bytes | bytearray, body_offset: int) -> None:
    """Raises CloseConnection when the request may not be answered in the connection's SASL state:
    amid SaslAuthenticate requests, CloseAfterResponse with the request's ILLEGAL_SASL_STATE
    answer, as Kafka sends it."""
    refusal = sasl.refusal(header.request_api_key, broker.clock())
    if refusal is None:
        return
    api = HANDLERS.get(header.request_api_key)
    if sasl.authenticating and api is not None and api.min_version <= header.request_api_version <= api.max_version:
        version = header.request_api_version
        request = api.request.read(version, open_frame(frame, body_offset))
        answer = error_answer(api.api_key, version, request, ErrorCode.ILLEGAL_SASL_STATE, api.failed)
        if answer is not None:
            chunks = [headers.encode_response_header(api.api_key, version, header.correlation_id),
                      *api.response.encode_chunks(version, answer)]
            raise CloseAfterResponse(refusal, [SIZE_PREFIX.pack(sum(len(chunk) for chunk in chunks)), *chunks])
    raise CloseConnection(refusal)


def close_if_failed(sasl: SaslAuthenticator, response: list) -> None:
    """Raises CloseAfterResponse when the request answered failed the authentication."""
    if sasl.failure is not None:
        raise CloseAfterResponse(sasl.failure, response)


def answer_raw_token(broker: Services, sasl: SaslAuthenticator, token: bytes | bytearray) -> list:
    """After a SaslHandshake v0: the challenge for a bare token, as a bare size-prefixed token. A
    failure closes the connection with nothing sent, as Kafka does without SaslAuthenticate."""
    try:
        challenge, _ = sasl.authenticate(bytes(token), broker.clock())
    except SaslAuthenticationFailed as exc:
        raise CloseConnection(exc.message) from None
    return [SIZE_PREFIX.pack(len(challenge)), challenge]


@handles(ApiKey.SASL_HANDSHAKE)
async def sasl_handshake(broker: Services, header, request):
    sasl = current_session().sasl
    if sasl is None or not sasl.in_handshake:
        return SASL_HANDSHAKE_RESPONSE(error_code=ErrorCode.ILLEGAL_SASL_STATE, mechanisms=[])
    offered = sasl.handshake(request.mechanism, header.request_api_version)
    return SASL_HANDSHAKE_RESPONSE(error_code=ErrorCode.NONE if offered else ErrorCode.UNSUPPORTED_SASL_MECHANISM,
                                   mechanisms=sasl.mechanisms)


@handles(ApiKey.SASL_AUTHENTICATE)
async def sasl_authenticate(broker: Services, header, request):
    sasl = current_session().sasl
    if sasl is None or not sasl.authenticating:
        return SASL_AUTHENTICATE_RESPONSE(error_code=ErrorCode.ILLEGAL_SASL_STATE,
                                          error_message="SaslAuthenticate request received after successful authentication")
    try:
        challenge, lifetime_ms = sasl.authenticate(bytes(request.auth_bytes), broker.clock())
    except SaslAuthenticationFailed as exc:
        return SASL_AUTHENTICATE_RESPONSE(error_code=ErrorCode.SASL_AUTHENTICATION_FAILED, error_message=exc.message)
    return SASL_AUTHENTICATE_RESPONSE(error_message=None, auth_bytes=challenge, session_lifetime_ms=lifetime_ms)
