"""Compiled TCP and UDP services: what a routed connection (or UDP session) is sent to.

A :class:`TCPBalancer` holds one :class:`TCPDial` per server: the address and everything its transport
says about reaching it (dial timeout, keep-alive, PROXY protocol version, TLS to the server, termination
delay). Load balancer services and weighted services pick with Traefik's weighted round robin
(pkg/tcp/wrr_load_balancer.go: interleaved, GCD-stepped). The transport of a load balancer is its
``serversTransport``, else the static ``--tcpServersTransport``; the deprecated per-service
``proxyProtocol`` and ``terminationDelay`` apply only without a ``serversTransport``, as in Traefik.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..config.dynamic_tcp import TCPParts, TCPServersTransport, TLSClientConfig
from ..config.errors import ConfigError

__all__ = ["TCPDial", "TCPBalancer", "TCPWeightedBalancer", "TCPServiceHandler", "UDPBalancer",
           "UDPWeightedBalancer", "UDPServiceHandler", "TCPServiceBuilder", "split_host_port", "WeightedRoundRobin"]

T = TypeVar("T")
H = TypeVar("H")


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` -> (host, port); ValueError when it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(f"missing port in address {address!r}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"invalid address {address!r}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"too many colons in address {address!r}")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class WeightedRoundRobin(Generic[T]):
    """Traefik's TCP/UDP WRR: walk the list, lowering the current weight by the GCD each round."""

    __slots__ = ("items", "weights", "index", "current", "max_weight", "gcd")

    def __init__(self, items: Sequence[tuple[T, int]]) -> None:
        self.items = [i for i, _ in items]
        self.weights = [w for _, w in items]
        self.index = -1
        self.current = 0
        self.max_weight = max(self.weights, default=0)
        self.gcd = math.gcd(*self.weights) if self.weights else 0

    def next(self) -> T | None:
        if not self.items or self.max_weight <= 0:
            return None
        n = len(self.items)
        if n == 1:
            return self.items[0]
        while True:
            self.index = (self.index + 1) % n
            if self.index == 0:
                self.current -= self.gcd
                if self.current <= 0:
                    self.current = self.max_weight
            if self.weights[self.index] >= self.current:
                return self.items[self.index]


@dataclass(frozen=True, slots=True)
class TCPDial:
    """One server of a TCP service and how to reach it."""

    address: str
    host: str
    port: int
    service: str  # the load balancer service it belongs to
    tls: TLSClientConfig | None = None  # dial with TLS (server ``tls: true``)
    proxy_protocol: int = 0  # PROXY header version sent first (0: none)
    dial_timeout: float = 30.0  # seconds, 0: none
    keep_alive: float = 15.0  # seconds between TCP keep-alive probes, < 0: off, 0: 15
    termination_delay: float = 0.1  # seconds after one side's FIN before both close, < 0: never
    is_ip: bool = True  # the host is an address (else a name to resolve: an ExternalName server)


class TCPBalancer:
    __slots__ = ("name", "targets", "wrr")

    def __init__(self, name: str, targets: Sequence[TCPDial]) -> None:
        self.name = name
        self.targets = tuple(targets)
        self.wrr = WeightedRoundRobin([(t, 1) for t in self.targets])

    def pick(self) -> TCPDial | None:
        return self.wrr.next()


class TCPWeightedBalancer:
    __slots__ = ("name", "children", "wrr")

    def __init__(self, name: str, children: Sequence[tuple[TCPServiceHandler, int]]) -> None:
        self.name = name
        self.children = tuple(children)
        self.wrr: WeightedRoundRobin[TCPServiceHandler] = WeightedRoundRobin(self.children)

    def pick(self) -> TCPDial | None:
        child = self.wrr.next()
        return child.pick() if child is not None else None


TCPServiceHandler = TCPBalancer | TCPWeightedBalancer


class UDPBalancer:
    __slots__ = ("name", "targets", "wrr")

    def __init__(self, name: str, targets: Sequence[tuple[str, int]]) -> None:
        self.name = name
        self.targets = tuple(targets)
        self.wrr = WeightedRoundRobin([(t, 1) for t in self.targets])

    def pick(self) -> tuple[str, int] | None:
        return self.wrr.next()


class UDPWeightedBalancer:
    __slots__ = ("name", "children", "wrr")

    def __init__(self, name: str, children: Sequence[tuple[UDPServiceHandler, int]]) -> None:
        self.name = name
        self.children = tuple(children)
        self.wrr: WeightedRoundRobin[UDPServiceHandler] = WeightedRoundRobin(self.children)

    def pick(self) -> tuple[str, int] | None:
        child = self.wrr.next()
        return child.pick() if child is not None else None


UDPServiceHandler = UDPBalancer | UDPWeightedBalancer


class TCPServiceBuilder:
    """Builds TCP and UDP services by name once each; errors are remembered per name."""

    def __init__(self, parts: TCPParts, default_transport: TCPServersTransport) -> None:
        self.parts = parts
        self.default_transport = default_transport
        self.tcp: dict[str, TCPServiceHandler] = {}
        self.udp: dict[str, UDPServiceHandler] = {}
        self.errors: dict[str, str] = {}
        self.warnings: dict[str, list[str]] = {}
        self.building: set[str] = set()

    def _built(self, protocol: str, name: str, done: dict[str, H], make: Callable[[str], H]) -> H:
        """The service `name` built once: a failure is remembered, a service reaching itself is an error."""
        if name in done:
            return done[name]
        key = f"{protocol}:{name}"
        if key in self.errors:
            raise ConfigError(self.errors[key])
        if key in self.building:
            raise ConfigError(f"service {name}: recursion detected")
        self.building.add(key)
        try:
            svc = make(name)
        except ConfigError as err:
            self.errors[key] = str(err).removeprefix("ingress: ")
            raise
        finally:
            self.building.discard(key)
        done[name] = svc
        return svc

    def tcp_service(self, name: str) -> TCPServiceHandler:
        return self._built("tcp", name, self.tcp, self._make_tcp)

    def _make_tcp(self, name: str) -> TCPServiceHandler:
        conf = self.parts.tcp_services.get(name)
        if conf is None:
            raise ConfigError(f'the service "{name}" does not exist')
        if conf.error:
            raise ConfigError(conf.error)
        if conf.load_balancer is not None and conf.weighted is not None:
            raise ConfigError("cannot create service: multi-types service not supported, consider declaring two "
                              "different pieces of service instead")
        if conf.weighted is not None:
            return TCPWeightedBalancer(name, [(self.tcp_service(c.name), c.weight) for c in conf.weighted.services])
        lb = conf.load_balancer
        if lb is None:
            raise ConfigError(f'the service "{name}" does not have any type defined')
        transport = self.default_transport
        if lb.servers_transport:
            found = self.parts.tcp_servers_transports.get(lb.servers_transport)
            if found is None:
                raise ConfigError(f'no transport configuration found for "{lb.servers_transport}"')
            if found.error:
                raise ConfigError(f"serversTransport {lb.servers_transport}: {found.error}")
            transport = found
            for w in found.warnings:
                self.warnings.setdefault(name, []).append(f"serversTransport {lb.servers_transport}: {w}")
            proxy, delay = found.proxy_protocol, found.termination_delay
        else:
            proxy = lb.proxy_protocol
            delay = lb.termination_delay / 1000 if lb.termination_delay is not None else transport.termination_delay
        version = proxy.version if proxy is not None else 0
        if proxy is not None and version not in (1, 2):
            raise ConfigError(f"unknown proxyProtocol version: {version}")
        targets: list[TCPDial] = []
        for server in lb.servers:
            try:
                host, port = split_host_port(server.address)
            except ValueError as err:
                self.warnings.setdefault(name, []).append(f"server {server.address} left out: {err}")
                continue
            tls = (transport.tls or TLSClientConfig()) if server.tls else None
            targets.append(TCPDial(server.address, host, port, name, tls, version, transport.dial_timeout,
                                   transport.dial_keep_alive, delay, _is_ip(host)))
        return TCPBalancer(name, targets)

    def udp_service(self, name: str) -> UDPServiceHandler:
        return self._built("udp", name, self.udp, self._make_udp)

    def _make_udp(self, name: str) -> UDPServiceHandler:
        conf = self.parts.udp_services.get(name)
        if conf is None:
            raise ConfigError(f'the udp service "{name}" does not exist')
        if conf.error:
            raise ConfigError(conf.error)
        if conf.load_balancer is not None and conf.weighted is not None:
            raise ConfigError("cannot create service: multi-types service not supported, consider declaring two "
                              "different pieces of service instead")
        if conf.weighted is not None:
            return UDPWeightedBalancer(name, [(self.udp_service(c.name), c.weight) for c in conf.weighted.services])
        if conf.load_balancer is None:
            raise ConfigError(f'the udp service "{name}" does not have any type defined')
        targets: list[tuple[str, int]] = []
        for server in conf.load_balancer.servers:
            try:
                targets.append(split_host_port(server.address))
            except ValueError as err:
                self.warnings.setdefault(name, []).append(f"server {server.address} left out: {err}")
        return UDPBalancer(name, targets)
