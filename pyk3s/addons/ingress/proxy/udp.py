"""UDP entry points (Traefik pkg/udp): sessions kept per client address.

The first datagram from a client address opens a session: the entry point's UDP router picks a server
(weighted round robin) and a connected socket is made for it; every later datagram of that client goes
there, and whatever the server sends back goes to the client from the entry point's address. A session
that saw no datagram either way for the entry point's ``udp.timeout`` (3s) is closed, checked ten times
per timeout as Traefik does. Datagrams for an entry point without a UDP router are dropped. Names (an
ExternalName server) are resolved once per session, the datagrams waiting meanwhile.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from typing import TYPE_CHECKING, cast

from . import accesslog

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["UDPEntryPoint", "MAX_DATAGRAM", "udp_socket", "client_addr"]

log = logging.getLogger("pyk3s.ingress")
MAX_DATAGRAM = 65535
_PENDING_MAX = 64


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def client_addr(addr: tuple[object, ...]) -> str:
    """A datagram's source as Go prints it: a dual-stack socket's (host, port, flow, scope) with an IPv4
    client as ``::ffff:a.b.c.d`` is ``a.b.c.d:port``."""
    host, port = str(addr[0]), int(cast(int, addr[1]))
    return _addr(host[7:] if host.startswith("::ffff:") and "." in host else host, port)


class _Session:
    __slots__ = ("entry", "client", "sock", "fd", "last", "pending", "started", "router", "server", "up", "down",
                 "on_readable")

    def __init__(self, entry: UDPEntryPoint, client: tuple[str, int], router: str, server: tuple[str, int]) -> None:
        self.entry, self.client, self.router, self.server = entry, client, router, server
        self.sock: socket.socket | None = None
        self.fd = -1
        self.last = entry.loop.time()
        self.pending: list[bytes] | None = []
        self.started = time.time()
        self.up = 0
        self.down = 0
        self.on_readable = self._readable

    def open(self) -> None:
        host, port = self.server
        try:
            ipaddress.ip_address(host)
        except ValueError:
            self.entry.loop.create_task(self._resolve(host, port))
            return
        self._connect((host, port))

    async def _resolve(self, host: str, port: int) -> None:
        try:
            infos = await self.entry.loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as err:
            log.debug("ingress: udp entrypoint %s: resolving %s: %s", self.entry.name, host, err)
            self.close()
            return
        self._connect(cast(tuple[str, int], infos[0][4][:2]))

    def _connect(self, addr: tuple[str, int]) -> None:
        if self.pending is None:
            return  # closed meanwhile
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(addr)
        except OSError as err:
            log.debug("ingress: udp entrypoint %s: %s: %s", self.entry.name, _addr(*addr), err)
            self.close()
            return
        self.sock, self.fd = sock, sock.fileno()
        self.entry.loop.add_reader(self.fd, self.on_readable)
        pending, self.pending = self.pending, None
        for data in pending:
            self.send(data)

    def send(self, data: bytes) -> None:
        self.last = self.entry.loop.time()
        sock = self.sock
        if sock is None:
            if self.pending is not None and len(self.pending) < _PENDING_MAX:
                self.pending.append(data)
            return
        try:
            sock.send(data)
            self.up += len(data)
        except (BlockingIOError, ConnectionRefusedError):
            pass  # a full buffer drops the datagram; a refused one (ICMP) too, as UDP does

    def _readable(self) -> None:
        sock = self.sock
        transport = self.entry.transport
        if sock is None or transport is None:
            return
        client = self.client
        for _ in range(64):
            try:
                data = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # ICMP errors surface here: nothing to give the client
            self.down += len(data)
            transport.sendto(data, client)
        self.last = self.entry.loop.time()

    def close(self) -> None:
        self.pending = None
        if self.sock is not None:
            self.entry.loop.remove_reader(self.fd)
            self.sock.close()
            self.sock = None
        if self.entry.sessions.get(self.client) is self:
            del self.entry.sessions[self.client]
            self.entry.session_closed(self)


class UDPEntryPoint(asyncio.DatagramProtocol):
    """One UDP entry point in this worker."""

    def __init__(self, state: ProxyState, name: str) -> None:
        self.state = state
        self.loop = state.loop
        self.name = name
        self.timeout = state.static.entrypoints[name].udp_timeout
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], _Session] = {}
        self.sweep: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.sweep = self.loop.call_later(max(self.timeout / 10, 0.05), self._expire)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        session = self.sessions.get(addr)
        if session is None:
            entry = self.state.compiled.tcp.udp.get(self.name)
            server = entry.service.pick() if entry is not None else None
            if entry is None or server is None:
                return
            session = self.sessions[addr] = _Session(self, addr, entry.router, server)
            opened = self.state.udp_open
            opened[self.name] = opened.get(self.name, 0) + 1
            session.open()
        session.send(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("ingress: udp entrypoint %s: %s", self.name, exc)

    def _expire(self) -> None:
        now = self.loop.time()
        for session in [s for s in self.sessions.values() if now - s.last > self.timeout]:
            session.close()
        self.sweep = self.loop.call_later(max(self.timeout / 10, 0.05), self._expire)

    def session_closed(self, session: _Session) -> None:
        opened = self.state.udp_open
        opened[self.name] = opened.get(self.name, 1) - 1
        if accesslog.active() is not None:
            accesslog.log(accesslog.AccessRecord(
                start=session.started, duration=time.time() - session.started, client_addr=client_addr(session.client),
                entrypoint=self.name, router=session.router, service_addr=_addr(*session.server), protocol="UDP",
                scheme="udp", request_size=session.up, response_size=session.down))

    def close(self) -> None:
        if self.sweep is not None:
            self.sweep.cancel()
        for session in list(self.sessions.values()):
            session.close()
        if self.transport is not None:
            self.transport.close()


def udp_socket(host: str, port: int) -> socket.socket:
    """A UDP socket bound with SO_REUSEPORT: the kernel keeps each client address on one worker."""
    family = socket.AF_INET6 if ":" in host or (not host and socket.has_ipv6) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
    sock.setblocking(False)
    return sock
