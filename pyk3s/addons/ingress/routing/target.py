"""One backend server of a load balancer: where to connect, how to address it, and its live state
(up or down by health checks, requests in flight, its load balancer's passive health check, its
response times under strategy leasttime).

Compiled services (routing/services.py) make them; pools are keyed by ``key`` so that a reload that keeps
a server and its ServersTransport keeps its idle connections.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .transports import ServersTransportRuntime

if TYPE_CHECKING:
    from .leasttime import ResponseTimes
    from .passive import PassiveHealth

__all__ = ["Target"]


class Target:
    """One backend server: where to connect and how to address it."""

    __slots__ = ("url", "scheme", "host", "port", "authority", "pass_host_header", "key", "fenced", "cookie_value",
                 "transport", "addr", "weight", "up", "inflight", "passive", "times")

    def __init__(self, url: str, pass_host_header: bool = True, fenced: bool = False,
                 transport: ServersTransportRuntime | None = None, weight: int = 1) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme or "http"
        self.host = parts.hostname or ""
        default = 443 if self.scheme == "https" else 80
        self.port = parts.port or default
        self.authority = parts.netloc
        self.pass_host_header = pass_host_header
        # pools are per server and transport: a reload that keeps both keeps the idle connections
        self.key = (self.scheme, self.host, self.port, transport.ident if transport is not None else 0)
        self.transport = transport
        self.addr = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.fenced = fenced
        self.cookie_value = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.weight = weight
        self.up = True  # servers are up until a health check says otherwise, as in Traefik
        self.inflight = 0  # requests sent and not finished (p2c), kept by the exchanges
        self.passive: PassiveHealth | None = None  # its load balancer's passive health check
        self.times: ResponseTimes | None = None  # times to first byte, kept for strategy leasttime

    def tls(self) -> tuple[ssl.SSLContext | None, str | None]:
        """(TLS context, server name) to reach this server: its ServersTransport's, verified by default."""
        if self.scheme != "https":
            return None, None
        transport = self.transport
        if transport is None:
            return ssl.create_default_context(), self.host
        return transport.ssl_context, transport.server_name or self.host
