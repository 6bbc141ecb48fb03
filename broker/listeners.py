"""The broker's listeners: each an address it accepts connections on, the security protocol
spoken there, and the address Metadata and FindCoordinator give the clients that connect to it
(Kafka's listeners, advertised.listeners and listener.security.protocol.map)."""

from __future__ import annotations

import dataclasses
import ipaddress
import re

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


# The SASL mechanisms this broker has, which sasl.enabled.mechanisms chooses from.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")

# Kafka's default listener.security.protocol.map: each protocol's name is a listener name for it.
DEFAULT_PROTOCOL_MAP = {protocol: protocol for protocol in SECURITY_PROTOCOLS}

# Kafka's endpoint syntax (SocketServerConfigs.URI_PARSE_REGEXP): NAME://host:port, the host in
# brackets when it is an IPv6 address, empty for every interface.
_ENDPOINT = re.compile(r"(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)")
# The hosts a client cannot connect to: listening on them means every interface.
META_ADDRESSES = ("0.0.0.0", "::", "")


def kafka_list(text: str) -> list[str]:
    """Kafka's Csv.parseCsvList: items split at commas, spaces around them dropped, empty ones too."""
    return [item for item in re.split(r"\s*,\s*", text.strip()) if item]


def parse_protocol_map(text: str) -> dict[str, str]:
    """listener.security.protocol.map ("NAME:PROTOCOL,..."): listener names (upper-cased, as Kafka's
    ListenerName.normalised) to security protocols. Raises ValueError with the reason."""
    protocols = {}
    for item in kafka_list(text):
        name, colon, protocol = item.rpartition(":")
        if not colon:
            raise ValueError(f"expected NAME:PROTOCOL items separated by commas, got {item!r}")
        if protocol.strip().upper() not in SECURITY_PROTOCOLS:
            raise ValueError(f"invalid security protocol {protocol.strip()!r} for listener {name.strip()}: "
                             f"must be one of {', '.join(SECURITY_PROTOCOLS)}")
        protocols[name.strip().upper()] = protocol.strip().upper()
    return protocols


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One NAME://host:port of listeners or advertised.listeners."""
    name: str
    security_protocol: str
    host: str
    port: int


def parse_endpoints(text: str, protocols: dict[str, str]) -> list[Endpoint]:
    """A listeners or advertised.listeners value, each name mapped to its protocol by `protocols`
    (parse_protocol_map's). Raises ValueError with the reason."""
    endpoints = []
    for item in kafka_list(text):
        match = _ENDPOINT.fullmatch(item)
        if not match:
            raise ValueError(f"unable to parse {item!r} as NAME://host:port")
        name, host, port = match[1].upper(), match[2], int(match[3])
        if name not in protocols:
            # As Kafka: a listener is named by its protocol, or mapped to one.
            raise ValueError(f"no security protocol defined for listener {name}: name it after one "
                             f"({', '.join(SECURITY_PROTOCOLS)}) or map it in listener.security.protocol.map")
        if not 0 <= port <= 65535:
            raise ValueError(f"port of listener {name} must be 0-65535, got {port}")
        endpoints.append(Endpoint(name, protocols[name], host, port))
    names = [e.name for e in endpoints]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"each listener must have a different name, {', '.join(duplicated)} is given twice")
    return endpoints


def _ip_version(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _check_distinct_ports(endpoints: list[Endpoint]) -> None:
    """Kafka's rule: each listener has a port of its own (0, a free one, excepted), but for one IPv4
    and one IPv6 address on the same port."""
    for port in {e.port for e in endpoints} - {0}:
        sharing = [e for e in endpoints if e.port == port]
        if len(sharing) > 1 and sorted(_ip_version(e.host) or 0 for e in sharing) != [4, 6]:
            raise ValueError(f"each listener must have a different port unless one listens on an IPv4 "
                             f"address and the other on an IPv6 one: {', '.join(e.name for e in sharing)} "
                             f"share port {port}")


def listeners_from(endpoints: list[Endpoint], advertised: list[Endpoint] | None) -> tuple[Listener, ...]:
    """The listeners of `endpoints` (listeners'), each advertised as its entry in `advertised`
    (advertised.listeners') says, else as its own host and port. Raises ValueError, its reason
    starting with the property at fault."""
    try:
        _check_distinct_ports(endpoints)
    except ValueError as exc:
        raise ValueError(f"listeners: {exc}") from None
    by_name = {e.name: e for e in advertised or ()}
    unknown = [name for name in by_name if name not in {e.name for e in endpoints}]
    if unknown:
        raise ValueError(f"advertised.listeners: {', '.join(unknown)} is not a listener of listeners "
                         f"({', '.join(e.name for e in endpoints)})")
    listeners = []
    for endpoint in endpoints:
        shown = by_name.get(endpoint.name)
        host = shown.host if shown else endpoint.host
        if host in META_ADDRESSES:
            # Kafka's rule: clients cannot connect to the wildcard address.
            raise ValueError(f"advertised.listeners: listener {endpoint.name} cannot advertise the nonroutable "
                             f"meta-address {host or '(empty host)'}: give it a routable host in advertised.listeners")
        # An advertised port 0 means the port the listener is bound to, as for a listener's own port 0.
        listeners.append(Listener(endpoint.name, endpoint.security_protocol, endpoint.host, endpoint.port,
                                  shown.host if shown else None, (shown.port or None) if shown else None))
    return tuple(listeners)
