"""Broker URLs: mqtt://, mqtts://, ws://, wss:// (and tcp://, ssl://)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

_SCHEMES = {
    # scheme: (transport, tls, default port)
    "mqtt": ("tcp", False, 1883),
    "tcp": ("tcp", False, 1883),
    "mqtts": ("tcp", True, 8883),
    "ssl": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}


@dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL."""

    transport: str  # "tcp" or "websockets"
    tls: bool
    host: str
    port: int
    path: str  # WebSocket path ("/" for TCP)


def parse_broker_url(url: str) -> BrokerURL:
    """Parse `url` (e.g. ``mqtt://127.0.0.1:1883``, ``wss://host/mqtt``).

    Raises ValueError for an unknown scheme, a missing host or a bad port.
    Credentials belong in the client's options, not in the URL.
    """
    if not isinstance(url, str):
        raise ValueError("broker URL must be a string")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"broker URL {url!r}: scheme must be one of {', '.join(sorted(_SCHEMES))}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("broker URL must not contain credentials; use username/password")
    transport, tls, default_port = _SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise ValueError(f"broker URL {url!r} has no host")
    try:
        port = parts.port or default_port
    except ValueError as e:
        raise ValueError(f"broker URL {url!r}: {e}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return BrokerURL(transport, tls, host, port, path)
