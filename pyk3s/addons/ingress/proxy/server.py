"""Listeners: one socket per entrypoint. A TCP entry point is a :class:`~.tcp_entry.TCPEntry` (HTTP
connections become :class:`~.client.ClientConnection`; TCP routers and PROXY protocol are its business),
a UDP one (``address=:port/udp``) a :class:`~.udp.UDPEntryPoint`.

Listeners use SO_REUSEPORT so several worker processes can each bind the same entrypoint address. An
entrypoint whose forwarded headers are trusted (``forwardedHeaders.insecure`` or ``trustedIPs``) keeps
the client's X-Forwarded-* headers from trusted peers.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable

from ..config.static import EntryPoint
from .client import ClientConnection
from .state import ProxyState
from .tcp_entry import TCPEntry
from .tls import listening_context
from .udp import UDPEntryPoint, udp_socket

__all__ = ["listen_socket", "start_entrypoints", "EntryListener"]


def listen_socket(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if not host:
        family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    s.listen(4096)
    s.setblocking(False)
    return s


def _trusted(static_ep: EntryPoint) -> Callable[[str], bool] | None:
    if static_ep.forwarded_insecure:
        return lambda peer: True
    if not static_ep.trusted_ips:
        return None
    nets = [ipaddress.ip_network(x, strict=False) for x in static_ep.trusted_ips]

    def check(peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in nets)

    return check


def _fixed(ctx: ssl.SSLContext) -> Callable[[], ssl.SSLContext | None]:
    return lambda: ctx


class EntryListener:
    """What ``start_entrypoints`` returns per entry point: its bound sockets and ``close()``."""

    def __init__(self, sockets: list[socket.socket], entry: TCPEntry | UDPEntryPoint) -> None:
        self.sockets = sockets
        self.entry = entry

    def close(self) -> None:
        self.entry.close()


async def start_entrypoints(state: ProxyState, names: list[str], ssl_for: Callable[[str], ssl.SSLContext | None],
                            sockets: dict[str, socket.socket] | None = None) -> list[EntryListener]:
    """Start listeners for the given entrypoints on this loop; ``sockets`` may hold pre-bound ones."""
    listeners = []
    https: list[ssl.SSLContext] = []

    def https_context() -> ssl.SSLContext | None:
        """The HTTPS context of entry points without http.tls (a TLS router there, a 404 otherwise)."""
        if not https:
            https.append(listening_context(lambda: state.tls_store))
        return https[0]

    for name in names:
        ep = state.static.entrypoints[name]
        if ep.protocol == "udp":
            usock = (sockets or {}).get(name) or udp_socket(ep.host, ep.port)
            udp = UDPEntryPoint(state, name)
            await state.loop.create_datagram_endpoint(lambda udp=udp: udp, sock=usock)  # type: ignore[misc]
            listeners.append(EntryListener([usock], udp))
            continue
        sock = (sockets or {}).get(name) or listen_socket(ep.host, ep.port)
        ctx = ssl_for(name)
        trusted = _trusted(ep)
        tls = ctx is not None

        def factory(name: str = name, tls: bool = tls,
                    trusted: Callable[[str], bool] | None = trusted) -> ClientConnection:
            return ClientConnection(state, name, tls, trusted)

        entry = TCPEntry(state, name, sock, factory, ctx, _fixed(ctx) if ctx is not None else https_context, trusted)
        await entry.start(state.compiled)
        state.on_apply.append(entry.apply)
        listeners.append(EntryListener([sock], entry))
    return listeners
