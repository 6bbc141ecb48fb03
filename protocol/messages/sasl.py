"""SASL authentication."""

from ..schema import field, request, response


SASL_HANDSHAKE_REQUEST = request(
    17, "SaslHandshakeRequest", "0-1", "none",
    field("mechanism", "string", "0+"),
)


SASL_HANDSHAKE_RESPONSE = response(
    17, "SaslHandshakeResponse", "0-1", "none",
    field("error_code", "int16", "0+"),
    field("mechanisms", "[]string", "0+"),
)


SASL_AUTHENTICATE_REQUEST = request(
    36, "SaslAuthenticateRequest", "0-2", "2+",
    field("auth_bytes", "bytes", "0+"),
)


SASL_AUTHENTICATE_RESPONSE = response(
    36, "SaslAuthenticateResponse", "0-2", "2+",
    field("error_code", "int16", "0+"),
    field("error_message", "string", "0+", nullable="0+"),
    field("auth_bytes", "bytes", "0+"),
    field("session_lifetime_ms", "int64", "1+", default=0),
)


MESSAGES = (
    SASL_HANDSHAKE_REQUEST,
    SASL_HANDSHAKE_RESPONSE,
    SASL_AUTHENTICATE_REQUEST,
    SASL_AUTHENTICATE_RESPONSE,
)
