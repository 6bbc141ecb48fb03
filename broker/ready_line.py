"""The line a broker logs once it serves, naming each listener's address: a parent process (the
pytest plugin, the test harness) reads the ports it picked from it. Written and read here only,
so the two cannot drift apart; it imports nothing of the broker's, as the pytest plugin loads it
in every pytest run."""

from __future__ import annotations

import re

_LINE = re.compile(r"ready: listening on (.*?), data dir ")
# NAME://host:port, an IPv6 host in brackets.
_ADDRESS = re.compile(r"(\w+)://(\[[^\]]*\]|[^\s,]+):(\d+)")


def ready_line(addresses: list[tuple[str, str, int]], data_dir: object, topic: str) -> str:
    """The line for listeners `addresses` (name, host, port), in the order clients see them."""
    listed = ", ".join(f"{name}://{f'[{host}]' if ':' in host else host}:{port}" for name, host, port in addresses)
    return f"ready: listening on {listed}, data dir {data_dir}, topic {topic}"


def ready_addresses(line: str) -> list[tuple[str, str, int]] | None:
    """The listeners (name, host as an address shows it, port) a ready line names, in its order;
    None for any other line."""
    match = _LINE.search(line)
    if match is None:
        return None
    return [(name, host, int(port)) for name, host, port in _ADDRESS.findall(match[1])]
