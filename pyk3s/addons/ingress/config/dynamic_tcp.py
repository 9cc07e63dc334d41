"""The TCP and UDP parts of the dynamic configuration (Traefik pkg/config/dynamic tcp_config.go,
tcp_middlewares.go, udp_config.go): plain, frozen data keyed by name, as providers produce it.

Durations are seconds (``float``); ``TCPLoadBalancer.termination_delay`` keeps Traefik's deprecated
per-service milliseconds. ``error`` fields carry what a provider could not resolve (shown in the API,
the router or service is not served); ``warnings`` what is accepted but not acted upon.
:func:`qualify_tcp` qualifies every name and reference with ``@provider`` the way ``merge`` does for HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "TLSDomain", "RouterTCPTLS", "TCPRouter", "TCPServer", "ProxyProtocolVersion", "TCPLoadBalancer", "TCPWeightedRef",
    "TCPWeighted", "TCPService", "TCPMiddleware", "TLSClientConfig", "TCPServersTransport", "UDPRouter",
    "UDPServer", "UDPLoadBalancer", "UDPWeighted", "UDPService", "TCPParts", "qualify_tcp",
    "DEFAULT_TCP_TRANSPORT",
]


@dataclass(frozen=True, slots=True)
class TLSDomain:
    main: str = ""
    sans: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouterTCPTLS:
    passthrough: bool = False
    options: str = ""
    cert_resolver: str = ""
    domains: tuple[TLSDomain, ...] = ()


@dataclass(frozen=True, slots=True)
class TCPRouter:
    rule: str
    service: str = ""
    entry_points: tuple[str, ...] = ()
    middlewares: tuple[str, ...] = ()
    priority: int = 0
    rule_syntax: str = ""
    tls: RouterTCPTLS | None = None
    error: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TCPServer:
    address: str  # host:port ([v6]:port)
    tls: bool = False  # dial the server with TLS (ServersTransportTCP.tls configures it)


@dataclass(frozen=True, slots=True)
class ProxyProtocolVersion:
    version: int = 2


@dataclass(frozen=True, slots=True)
class TCPLoadBalancer:
    servers: tuple[TCPServer, ...] = ()
    servers_transport: str = ""
    proxy_protocol: ProxyProtocolVersion | None = None  # deprecated in favour of the transport's
    termination_delay: int | None = None  # milliseconds; deprecated in favour of the transport's


@dataclass(frozen=True, slots=True)
class TCPWeightedRef:
    name: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class TCPWeighted:
    services: tuple[TCPWeightedRef, ...] = ()


@dataclass(frozen=True, slots=True)
class TCPService:
    load_balancer: TCPLoadBalancer | None = None
    weighted: TCPWeighted | None = None
    error: str = ""

    @property
    def kind(self) -> str:
        return "loadbalancer" if self.load_balancer is not None else "weighted" if self.weighted is not None else ""


@dataclass(frozen=True, slots=True)
class TCPMiddleware:
    """``kind`` is Traefik's field name (``inFlightConn``, ``ipAllowList``, ``ipWhiteList``)."""

    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True, slots=True)
class TLSClientConfig:
    server_name: str = ""
    insecure_skip_verify: bool = False
    root_cas: tuple[str, ...] = ()  # PEM
    certificates: tuple[tuple[str, str], ...] = ()  # (cert PEM, key PEM)
    peer_cert_uri: str = ""
    peer_cert_sans: tuple[tuple[str, str], ...] = ()  # (type, value): DNSName / URI


@dataclass(frozen=True, slots=True)
class TCPServersTransport:
    dial_timeout: float = 30.0
    dial_keep_alive: float = 15.0
    termination_delay: float = 0.1
    proxy_protocol: ProxyProtocolVersion | None = None
    tls: TLSClientConfig | None = None
    error: str = ""
    warnings: tuple[str, ...] = ()


DEFAULT_TCP_TRANSPORT = TCPServersTransport()


@dataclass(frozen=True, slots=True)
class UDPRouter:
    service: str = ""
    entry_points: tuple[str, ...] = ()
    error: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UDPServer:
    address: str


@dataclass(frozen=True, slots=True)
class UDPLoadBalancer:
    servers: tuple[UDPServer, ...] = ()


@dataclass(frozen=True, slots=True)
class UDPWeighted:
    services: tuple[TCPWeightedRef, ...] = ()


@dataclass(frozen=True, slots=True)
class UDPService:
    load_balancer: UDPLoadBalancer | None = None
    weighted: UDPWeighted | None = None
    error: str = ""

    @property
    def kind(self) -> str:
        return "loadbalancer" if self.load_balancer is not None else "weighted" if self.weighted is not None else ""


@dataclass(frozen=True, slots=True)
class TCPParts:
    """The TCP and UDP sections of one provider's (or the merged) configuration."""

    tcp_routers: Mapping[str, TCPRouter] = field(default_factory=dict)
    tcp_services: Mapping[str, TCPService] = field(default_factory=dict)
    tcp_middlewares: Mapping[str, TCPMiddleware] = field(default_factory=dict)
    tcp_servers_transports: Mapping[str, TCPServersTransport] = field(default_factory=dict)
    udp_routers: Mapping[str, UDPRouter] = field(default_factory=dict)
    udp_services: Mapping[str, UDPService] = field(default_factory=dict)


def _q(name: str, provider: str) -> str:
    return name if "@" in name else f"{name}@{provider}"


def qualify_tcp(parts: Mapping[str, TCPParts]) -> TCPParts:
    """Join providers' TCP/UDP sections, qualifying names and references with ``@provider``."""
    routers: dict[str, TCPRouter] = {}
    services: dict[str, TCPService] = {}
    middlewares: dict[str, TCPMiddleware] = {}
    transports: dict[str, TCPServersTransport] = {}
    udp_routers: dict[str, UDPRouter] = {}
    udp_services: dict[str, UDPService] = {}
    for provider, p in parts.items():
        for name, r in p.tcp_routers.items():
            tls = r.tls
            if tls is not None and tls.options and tls.options != "default":
                tls = replace(tls, options=_q(tls.options, provider))
            routers[_q(name, provider)] = replace(
                r, service=_q(r.service, provider) if r.service else "", tls=tls,
                middlewares=tuple(_q(m, provider) for m in r.middlewares))
        for name, s in p.tcp_services.items():
            if s.weighted is not None:
                s = replace(s, weighted=TCPWeighted(tuple(replace(c, name=_q(c.name, provider))
                                                          for c in s.weighted.services)))
            if s.load_balancer is not None and s.load_balancer.servers_transport:
                s = replace(s, load_balancer=replace(
                    s.load_balancer, servers_transport=_q(s.load_balancer.servers_transport, provider)))
            services[_q(name, provider)] = s
        for name, m in p.tcp_middlewares.items():
            middlewares[_q(name, provider)] = m
        for name, t in p.tcp_servers_transports.items():
            transports[_q(name, provider)] = t
        for name, u in p.udp_routers.items():
            udp_routers[_q(name, provider)] = replace(u, service=_q(u.service, provider) if u.service else "")
        for name, us in p.udp_services.items():
            if us.weighted is not None:
                us = replace(us, weighted=UDPWeighted(tuple(replace(c, name=_q(c.name, provider))
                                                            for c in us.weighted.services)))
            udp_services[_q(name, provider)] = us
    return TCPParts(routers, services, middlewares, transports, udp_routers, udp_services)
