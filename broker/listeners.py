"""The broker's listeners: each an address it accepts connections on, the security protocol
spoken there, and the address Metadata and FindCoordinator give the clients that connect to it
(Kafka's listeners, advertised.listeners and listener.security.protocol.map)."""

from __future__ import annotations

import dataclasses

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclasses.dataclass(frozen=True)
class Listener:
    name: str
    security_protocol: str
    host: str
    # 0: a free port, picked when the listener opens.
    port: int
    # The address given to this listener's clients; None: the listener's own host, or port once bound.
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")
