"""Who is on the other end of a connection: the listener it came in on, the client's address and,
once known, its principal (from its TLS certificate or its SASL authentication).

Each connection's task sets its Session in CURRENT_SESSION, so the handlers and the authorizer
read the one of the request they answer; code that answers a request outside any connection (a
test calling handle_frame) gets an anonymous plaintext session.
"""

from __future__ import annotations

import contextvars
import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.sasl import SaslAuthenticator

# Kafka's KafkaPrincipal.ANONYMOUS: the principal of a connection nothing has authenticated.
ANONYMOUS = "User:ANONYMOUS"


@dataclasses.dataclass
class Session:
    # The listener's name (PLAINTEXT, or a name of listener.security.protocol.map) and its
    # security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL).
    listener: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"
    client_host: str = "127.0.0.1"
    # "Type:name", as in ACLs.
    principal: str = ANONYMOUS
    # On a SASL listener, the connection's authentication (broker.sasl), made at its first
    # request; None elsewhere.
    sasl: SaslAuthenticator | None = None
    # Its authentication failed: the connection closes once that answer is out.
    authentication_failed: bool = False

    @property
    def sasl_listener(self) -> bool:
        """Whether the connection must authenticate with SASL before anything else."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


CURRENT_SESSION: contextvars.ContextVar[Session] = contextvars.ContextVar("current_session", default=Session())


def current_session() -> Session:
    """The session of the request being answered."""
    return CURRENT_SESSION.get()
