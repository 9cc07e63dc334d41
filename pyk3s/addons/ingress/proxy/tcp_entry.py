"""A TCP entry point in one worker: who accepts its connections and where each one goes.

Two ways of accepting, switched with every configuration:

- *server*: uvloop's own server hands every connection to the HTTP handler (with TLS when the entry
  point has ``http.tls``), exactly as when pyk3s knew no TCP routers: nothing extra per connection.
- *own*: this module accepts, when the entry point has TCP routers, reads PROXY protocol headers, or
  has TLS HTTP routers without ``http.tls`` (Traefik serves those on any entry point). It reads what it
  needs without consuming it (``MSG_PEEK``; ``SO_RCVLOWAT`` wakes it only when more bytes than it
  already saw have arrived), asks ``routing/tcp_table.py`` who takes the connection, and then either
  relays it (``tcp_relay.py`` in the kernel, ``tcp_stream.py`` when pyk3s speaks TLS on one side) or
  hands the untouched socket to the HTTP handler, with TLS for a ClientHello.

The listening socket stays bound the whole time (the server gets a duplicate of it), so switching never
refuses a connection. The read timeout (``transport.respondingTimeouts.readTimeout``, 60s) bounds the
wait for a PROXY header and a ClientHello, as in Traefik.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config.static import EntryPoint
from ..routing.compile import Compiled
from ..routing.tcp_table import TCPEntryTable, TCPRoute
from ..rules.matchers_v3 import ip_matcher
from ..rules.tcp import conn_info
from .client import ClientConnection
from .clienthello import (
    NEED_MORE,
    POSTGRES_SSL_ACCEPT,
    POSTGRES_SSL_REQUEST,
    ClientHello,
    postgres_starttls,
    read_client_hello,
)
from .poller import IN, poller_for
from .proxyprotocol import NEED_MORE as HEADER_INCOMPLETE
from .proxyprotocol import ProxyHeader, read_header
from .tcp_serve import serve_route

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["TCPEntry", "proxy_trust"]

log = logging.getLogger("pyk3s.ingress")
_PEEK = 4096
_ACCEPT_BATCH = 64


def proxy_trust(ep: EntryPoint) -> Callable[[str], bool]:
    """Whose PROXY headers are believed: everybody with ``insecure``, else the ``trustedIPs``."""
    if ep.proxy_protocol_insecure:
        return lambda peer: True
    checks = [ip_matcher(c, f"entrypoint {ep.name}: proxyProtocol.trustedIPs") for c in ep.proxy_protocol_trusted_ips]
    return lambda peer: any(check(peer) for check in checks)


def _plain(host: str) -> str:
    return host[7:] if host.startswith("::ffff:") and "." in host else host


class _Incoming:
    """One accepted connection until its handler is known."""

    __slots__ = ("entry", "sock", "fd", "peer", "local", "timer", "stage", "lowat", "postgres", "on_read", "watching")

    def __init__(self, entry: TCPEntry, sock: socket.socket, addr: tuple[str, int]) -> None:
        self.entry = entry
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = (_plain(addr[0]), addr[1])
        self.local: tuple[str, int] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.stage = ""
        self.lowat = 1
        self.postgres = False
        self.on_read = self._readable
        self.watching = False

    def start(self) -> None:
        if self.entry.ep.proxy_protocol:
            self._wait("proxy")
        else:
            self._routed_or_peek()

    def _wait(self, stage: str) -> None:
        entry = self.entry
        if self.timer is None and entry.ep.read_timeout > 0:
            self.timer = entry.loop.call_later(entry.ep.read_timeout, self._timed_out)
        self.stage = stage
        if not self.watching:
            self.watching = True
            entry.poller.watch(self.fd, IN, self.on_read)

    def _routed_or_peek(self) -> None:
        table = self.entry.table
        if table is not None and table.early:
            route = table.match_early(self.peer[0])
            if route is not None:
                self._settled()
                self._serve(route, "", ())
                return
        self._wait("peek")

    def _need(self, n: int) -> None:
        """Wake up only once ``n`` bytes are waiting (the peek saw fewer)."""
        if n != self.lowat:
            self.lowat = n
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n)

    def _settled(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.stage = ""
        if self.lowat != 1:
            self.lowat = 1
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            except OSError:
                pass

    def _timed_out(self) -> None:
        self.timer = None
        log.debug("ingress: entrypoint %s: %s:%d sent no complete %s within the read timeout", self.entry.name,
                  self.peer[0], self.peer[1], "PROXY header" if self.stage == "proxy" else "first message")
        self._drop()

    def _drop(self) -> None:
        self._settled()
        if self.watching:
            self.entry.poller.drop(self.fd)
        self.sock.close()

    def _readable(self, events: int) -> None:
        if not self.stage:
            return  # settled meanwhile (a spurious call)
        try:
            data = self.sock.recv(max(_PEEK, self.lowat), socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            self._drop()
            return
        if not data:
            self._drop()  # closed before sending enough to decide
            return
        try:
            if self.stage == "proxy":
                self._proxy_header(data)
            elif self.postgres:
                self._tls_after_postgres(data)
            else:
                self._first_bytes(data)
        except ValueError as err:
            log.debug("ingress: entrypoint %s: connection from %s closed: %s", self.entry.name, self.peer[0], err)
            self._drop()

    def _proxy_header(self, data: bytes) -> None:
        header = read_header(data)
        if header is HEADER_INCOMPLETE:
            self._need(len(data) + 1)
            return
        if isinstance(header, ProxyHeader):
            self.sock.recv(header.size)  # consume it: it is not for the backend
            if header.source is not None:
                if self.entry.trusted(self.peer[0]):
                    self.peer = (_plain(header.source[0]), header.source[1])
                    self.local = header.destination
                else:
                    log.debug("ingress: entrypoint %s: %s is not in trustedIPs, its PROXY header is ignored",
                              self.entry.name, self.peer[0])
        self.stage = ""
        if self.lowat != 1:
            self._need(1)
        self._routed_or_peek()

    def _first_bytes(self, data: bytes) -> None:
        table = self.entry.table
        if table is not None and table.tls:
            pg = postgres_starttls(data)
            if pg is None:
                self._need(len(data) + 1)
                return
            if pg:
                self.sock.recv(len(POSTGRES_SSL_REQUEST))
                self.sock.send(POSTGRES_SSL_ACCEPT)
                self.postgres = True
                self._need(1)
                return
        hello = read_client_hello(data)
        if hello is NEED_MORE:
            self._need(len(data) + 1)
            return
        self._settled()
        if not isinstance(hello, ClientHello):
            verdict = table.route_plain(conn_info("", self.peer[0])) if table is not None else "http"
            if isinstance(verdict, TCPRoute):
                self._serve(verdict, "", ())
            else:
                self._http(False)
            return
        if table is None:
            self._http(True)
            return
        info = conn_info(hello.server_name, self.peer[0], hello.alpn)
        tls_verdict = table.route_tls(info)
        if isinstance(tls_verdict, TCPRoute):
            self._serve(tls_verdict, info.server_name, hello.alpn)
        else:
            self._http(True)

    def _tls_after_postgres(self, data: bytes) -> None:
        hello = read_client_hello(data)
        if hello is NEED_MORE:
            self._need(len(data) + 1)
            return
        self._settled()
        table = self.entry.table
        if not isinstance(hello, ClientHello) or table is None:
            self._drop()
            return
        info = conn_info(hello.server_name, self.peer[0], hello.alpn)
        verdict = table.route_postgres(info)
        if isinstance(verdict, TCPRoute):
            self._serve(verdict, info.server_name, hello.alpn, postgres=True)
        else:
            self._drop()

    def _serve(self, route: TCPRoute, sni: str, alpn: tuple[str, ...], postgres: bool = False) -> None:
        entry = self.entry
        if self.watching:
            self.watching = False
            entry.poller.forget(self.fd)
        serve_route(entry.state, entry.name, route, self.sock, self.peer, self.local, sni, postgres)

    def _http(self, tls: bool) -> None:
        entry = self.entry
        ctx = entry.https_context() if tls else None
        if tls and ctx is None:
            self._drop()
            return
        peer = self.peer if entry.ep.proxy_protocol else None
        state = entry.state
        if self.watching:
            self.watching = False
            entry.poller.forget(self.fd)  # the event loop watches it from now on

        def factory() -> ClientConnection:
            return ClientConnection(state, entry.name, tls, entry.forwarded_trust, peer)

        state.spawn(_hand_over(state.loop, factory, self.sock, ctx))


async def _hand_over(loop: asyncio.AbstractEventLoop, factory: Callable[[], ClientConnection], sock: socket.socket,
                     ctx: ssl.SSLContext | None) -> None:
    try:
        await loop.connect_accepted_socket(factory, sock, ssl=ctx)
    except (OSError, ssl.SSLError, ConnectionError):
        sock.close()


class TCPEntry:
    """One TCP entry point's listener in this worker (see the module docstring)."""

    def __init__(self, state: ProxyState, name: str, lsock: socket.socket,
                 http_factory: Callable[[], ClientConnection], http_ssl: ssl.SSLContext | None,
                 https_context: Callable[[], ssl.SSLContext | None],
                 forwarded_trust: Callable[[str], bool] | None) -> None:
        self.state = state
        self.loop = state.loop
        self.poller = poller_for(state.loop)
        self.name = name
        self.ep = state.static.entrypoints[name]
        self.lsock = lsock
        self.http_factory = http_factory
        self.http_ssl = http_ssl
        self.https_context = https_context
        self.forwarded_trust = forwarded_trust
        self.trusted = proxy_trust(self.ep) if self.ep.proxy_protocol else (lambda peer: False)
        self.server: asyncio.AbstractServer | None = None
        self.own = False
        self.table: TCPEntryTable | None = None
        self.closed = False
        self.switching: asyncio.Task[None] | None = None

    def wants_own(self, compiled: Compiled) -> bool:
        if self.ep.proxy_protocol or self.name in compiled.tcp.tables:
            return True
        return not self.ep.tls and bool(compiled.table.tables.get((self.name, True)))

    async def start(self, compiled: Compiled) -> None:
        await self._switch(compiled)

    def apply(self, compiled: Compiled) -> None:
        """A new configuration: new routes at once; a switch of accepting in the background."""
        self.table = compiled.tcp.tables.get(self.name)
        if self.wants_own(compiled) != self.own or (self.server is None and not self.own):
            self.switching = self.loop.create_task(self._switch(compiled))

    async def _switch(self, compiled: Compiled) -> None:
        self.table = compiled.tcp.tables.get(self.name)
        if self.closed:
            return
        if self.wants_own(compiled):
            if self.server is not None:
                self.server.close()
                self.server = None
            if not self.own:
                self.own = True
                self.loop.add_reader(self.lsock.fileno(), self._accept)
            return
        if self.own:
            self.loop.remove_reader(self.lsock.fileno())
            self.own = False
        if self.server is None:
            dup = socket.socket(fileno=os.dup(self.lsock.fileno()))
            self.server = await self.loop.create_server(self.http_factory, sock=dup, backlog=4096, ssl=self.http_ssl)

    def _accept(self) -> None:
        lsock = self.lsock
        family = lsock.family
        table = self.table
        # step 1 of tcp_table.py straight from here: no per-connection state until a router is known
        early = table is not None and table.early and not self.ep.proxy_protocol
        for _ in range(_ACCEPT_BATCH):
            try:
                fd, addr = lsock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                log.warning("ingress: entrypoint %s: accept: %s", self.name, err)
                return
            sock = socket.socket(family, socket.SOCK_STREAM, 0, fd)
            sock.setblocking(False)  # TCP_NODELAY comes from the listening socket
            if early:
                peer = (_plain(addr[0]), addr[1])
                route = table.match_early(peer[0])  # type: ignore[union-attr]
                if route is not None:
                    serve_route(self.state, self.name, route, sock, peer, None, "")
                    continue
            _Incoming(self, sock, addr).start()

    def close(self) -> None:
        self.closed = True
        if self.own:
            self.loop.remove_reader(self.lsock.fileno())
            self.own = False
        if self.server is not None:
            self.server.close()
            self.server = None
        self.lsock.close()
