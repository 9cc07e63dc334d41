"""Serving a connection a TCP router took: middlewares, a server from the service, the dial, the relay.

The kernel relay (``tcp_relay.py``) carries plain TCP and TLS passthrough; a route that terminates TLS,
or servers dialed with TLS, go through ``tcp_stream.py``. A passthrough route reached through Postgres
STARTTLS sends the server the SSLRequest the client sent and expects its ``S`` before relaying. When
the connection ends: the middlewares are released, the open connection count drops and one access log
record (``protocol`` TCP, the SNI as ``RequestAddr``, bytes each way) is written when access logs are on.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING

from ..middlewares.tcp import TCPMiddlewareHandler
from ..routing.tcp_services import TCPDial
from ..routing.tcp_table import TCPRoute
from . import accesslog
from .clienthello import POSTGRES_SSL_ACCEPT, POSTGRES_SSL_REQUEST
from .tcp_dial import (
    Dial,
    client_context,
    keep_alive_period,
    new_backend_socket,
    proxy_header,
    set_keep_alive,
)
from .tcp_relay import SpliceRelay
from .tcp_stream import StreamRelay

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["serve_route", "TCPConnection"]

log = logging.getLogger("pyk3s.ingress")


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TCPConnection:
    """One routed connection from its dial to its end (bookkeeping shared by both relays)."""

    __slots__ = ("state", "entrypoint", "route", "client", "peer", "local", "sni", "target", "admitted",
                 "started", "relay", "postgres")

    def __init__(self, state: ProxyState, entrypoint: str, route: TCPRoute, client: socket.socket,
                 peer: tuple[str, int], local: tuple[str, int] | None, sni: str, target: TCPDial,
                 admitted: list[TCPMiddlewareHandler], postgres: bool) -> None:
        self.state, self.entrypoint, self.route, self.client = state, entrypoint, route, client
        self.peer, self.local, self.sni, self.target, self.admitted = peer, local, sni, target, admitted
        self.started = time.time()
        self.relay: SpliceRelay | StreamRelay | None = None
        self.postgres = postgres
        opened = state.tcp_open
        opened[entrypoint] = opened.get(entrypoint, 0) + 1

    def dialed(self, server: socket.socket | None, err: OSError | None) -> None:
        if server is None:
            log.debug("ingress: tcp router %s: dial %s: %s", self.route.name, self.target.address, err)
            self.client.close()
            self.finish(0, 0, str(err))
            return
        if self.postgres and self.route.tls == "passthrough" and self.target.tls is None:
            self._postgres_handshake(server)
            return
        self.start(server)

    def start(self, server: socket.socket) -> None:
        route, target, state = self.route, self.target, self.state
        if route.tls != "terminate" and target.tls is None:
            self.relay = SpliceRelay(state.loop, self.client, server, target.termination_delay, self.spliced)
            return
        client_ctx = None
        if route.tls == "terminate":
            store = state.tls_store
            opt = store.options.get(route.tls_options)
            if opt is not None and opt.sni_strict and store.best(self.sni)[0] < 0:
                self._refuse(server, f"sniStrict: no certificate for {self.sni!r}", logging.DEBUG)
                return
            client_ctx = store.context_for(self.sni, route.tls_options)
            if client_ctx is None:
                self._refuse(server, f"TLS options {route.tls_options} cannot be set up")
                return
        server_ctx = None
        if target.tls is not None:
            try:
                server_ctx = client_context(target.tls)
            except (ValueError, ssl.SSLError) as err:
                self._refuse(server, str(err))
                return
        relay = StreamRelay(state.loop, target.termination_delay, self._streamed)
        self.relay = relay
        relay.start(self.client, client_ctx, server, target.tls, server_ctx)

    def _refuse(self, server: socket.socket, why: str, level: int = logging.WARNING) -> None:
        log.log(level, "ingress: tcp router %s: %s", self.route.name, why)
        server.close()
        self.client.close()
        self.finish(0, 0, why)

    def _postgres_handshake(self, server: socket.socket) -> None:
        loop = self.state.loop
        try:
            server.send(POSTGRES_SSL_REQUEST)
        except OSError as err:
            self._refuse(server, f"postgres STARTTLS: {err}")
            return
        def silent() -> None:
            loop.remove_reader(server.fileno())
            self._refuse(server, "postgres STARTTLS: no answer")

        timer = loop.call_later(10.0, silent)

        def answered() -> None:
            loop.remove_reader(server.fileno())
            timer.cancel()
            try:
                reply = server.recv(1)
            except OSError as err:
                self._refuse(server, f"postgres STARTTLS: {err}")
                return
            if reply != POSTGRES_SSL_ACCEPT:
                self._refuse(server, "postgres STARTTLS: the server refused TLS")
                return
            self.start(server)

        loop.add_reader(server.fileno(), answered)

    def spliced(self, relay: SpliceRelay, err: OSError | None) -> None:
        self.finish(relay.bytes_up, relay.bytes_down, str(err) if err else "")

    def _streamed(self, relay: StreamRelay, error: str) -> None:
        self.finish(relay.bytes_up, relay.bytes_down, error)

    def finish(self, up: int, down: int, error: str) -> None:
        self.relay = None  # freed now by reference counting, not later by the cyclic GC
        for mw in self.admitted:
            mw.release(self.peer[0])
        opened = self.state.tcp_open
        opened[self.entrypoint] = opened.get(self.entrypoint, 1) - 1
        if accesslog.active() is not None:
            tls = self.route.tls != "" or self.sni != ""
            accesslog.log(accesslog.AccessRecord(
                start=self.started, duration=time.time() - self.started, client_addr=_addr(*self.peer),
                entrypoint=self.entrypoint, router=self.route.name, service=self.target.service,
                service_addr=self.target.address, request_addr=self.sni, protocol="TCP",
                scheme="tls" if tls else "tcp", request_size=up, response_size=down))


def _local(sock: socket.socket) -> tuple[str, int]:
    try:
        addr = sock.getsockname()
    except OSError:
        return "0.0.0.0", 0
    host = addr[0][7:] if addr[0].startswith("::ffff:") and "." in addr[0] else addr[0]
    return host, addr[1]


def serve_route(state: ProxyState, entrypoint: str, route: TCPRoute, client: socket.socket, peer: tuple[str, int],
                local: tuple[str, int] | None, sni: str, postgres: bool = False) -> None:
    """Take a connection a TCP router matched (its first bytes are still unread in ``client``); ``local``
    is the address the client connected to (from a PROXY header; else the socket's, read when needed)."""
    admitted: list[TCPMiddlewareHandler] = []
    for mw in route.middlewares:
        if not mw.admit(peer[0]):
            log.debug("ingress: tcp router %s: middleware %s refused %s", route.name, mw.name, peer[0])
            for m in admitted:
                m.release(peer[0])
            client.close()
            return
        admitted.append(mw)
    target = route.service.pick() if route.service is not None else None
    if target is None:
        if route.service is not None:
            log.debug("ingress: tcp router %s: no servers in the pool", route.name)
        for m in admitted:
            m.release(peer[0])
        client.close()
        return
    if target.proxy_protocol and local is None:
        local = _local(client)
    conn = TCPConnection(state, entrypoint, route, client, peer, local, sni, target, admitted, postgres)
    header = proxy_header(target, peer, local) if target.proxy_protocol and local is not None else b""
    if target.is_ip and target.tls is None and route.tls != "terminate" and not postgres:
        # the kernel relay starts while the connection is made: the PROXY header and the client's first
        # bytes wait in the pipe until the server socket is writable
        try:
            server = new_backend_socket(target, target.host, keep_alive=False)
            err = server.connect_ex((target.host, target.port))
        except OSError as e:
            conn.dialed(None, e)
            return
        if err not in (0, errno.EINPROGRESS):
            server.close()
            conn.dialed(None, OSError(err, os.strerror(err)))
            return
        relay = conn.relay = SpliceRelay(state.loop, client, server, target.termination_delay, conn.spliced, header,
                                         target.dial_timeout)
        period = keep_alive_period(target)
        if period:  # probes start after `period` idle seconds: for most connections, never needed
            relay.poller.after_a_while(set_keep_alive, server, period)
        return
    Dial(state.loop, target, header, conn.dialed)
