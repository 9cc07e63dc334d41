"""Downstream side: one asyncio.Protocol per client connection, httptools for parsing.

Rules:
- Requests are answered in order (pipelining): exchanges queue up; the body of the request being
  parsed always goes to the exchange that is being parsed.
- Malformed input (bad request line, invalid chunking, both Content-Length and Transfer-Encoding,
  headers over ``MAX_HEADER_BYTES``) gets ``400 Bad Request`` and the connection is closed; nothing
  reaches a backend.
- After a ``101 Switching Protocols`` the connection is a byte tunnel to the upstream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from ..http.reply import BAD_REQUEST_BYTES, bad_request_bytes
from ..http.request import HttpRequest
from ..routing.compile import Compiled
from ..routing.services import Target
from ..routing.table import EntryTable, PathChoice, Route
from .exchange import Exchange
from .exchange_log import tls_details
from .fastlane import FastExchange, try_fast_lane
from .heads import FORWARDED
from .upstream import Pool, UpstreamConnection

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["ClientConnection", "MAX_HEADER_BYTES"]

MAX_HEADER_BYTES = 1 << 20
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}



class TooManyHosts(ValueError):
    """A request with more than one Host header (Go's server answers 400 "too many Host headers")."""

class RequestParser(Protocol):
    """The part of httptools.HttpRequestParser used here and by the fast lane."""

    def feed_data(self, data: bytes) -> None: ...

    def get_method(self) -> bytes: ...

    def get_http_version(self) -> str: ...

    def should_keep_alive(self) -> bool: ...

    def should_upgrade(self) -> bool: ...


class ClientConnection(asyncio.Protocol):
    __slots__ = ("state", "entrypoint", "tls", "trusted", "transport", "parser", "peer", "peer_port", "url",
                 "raw_headers", "hsize", "queue", "parsing", "closed", "tunnel", "upgrade_buffer", "last_active",
                 "local_port", "sni", "trusted_nets", "compiled", "table", "fast_headers", "fast_tail", "fast_route",
                 "fast_server", "fast_connection", "tls_info", "forced_peer", "reading_since", "answering_since")

    def __init__(self, state: ProxyState, entrypoint: str, tls: bool,
                 trusted_nets: Callable[[str], bool] | None, peer: tuple[str, int] | None = None) -> None:
        self.state = state
        self.forced_peer = peer  # the client address a trusted PROXY protocol header gave
        # transport.respondingTimeouts: when the request being read started, when the oldest request
        # waiting for its response was read (0: none); the sweeper closes connections that exceed them
        self.reading_since = 0.0
        self.answering_since = 0.0
        self.entrypoint = entrypoint
        self.tls = tls
        self.trusted_nets = trusted_nets
        self.trusted = False
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.parser: RequestParser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.peer_port = 0
        self.url = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.hsize = 0
        self.queue: deque[Exchange | FastExchange] = deque()  # oldest first
        self.parsing: Exchange | FastExchange | None = None
        self.closed = False
        self.tunnel: asyncio.Transport | None = None  # the upstream's transport once this is a tunnel
        self.upgrade_buffer: bytearray | None = None
        self.last_active = 0.0
        self.local_port = 0
        self.sni = ""
        self.compiled: Compiled | None = None  # the snapshot ``table`` was taken from
        self.table: EntryTable | None = None  # routes of this entrypoint and transport
        # the fast lane's verdict for the last header list: upstream head after the target (None: general
        # path), the route or the choice by path, the route with its only server and that server's pool
        # (when one route with one server takes every request), whether Connection was sent
        self.fast_headers: list[tuple[bytes, bytes]] | None = None
        self.fast_tail: bytes | None = None
        self.fast_route: Route | PathChoice = None  # type: ignore[assignment]  # set with fast_tail
        self.fast_server: tuple[Route, Target, Pool] | None = None
        self.fast_connection = False
        self.tls_info: tuple[str, str] | None = None  # (TLS version, Go cipher name) for TLS metrics

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = self.forced_peer or transport.get_extra_info("peername")
        if peer:
            host = str(peer[0])
            # dual-stack listeners see IPv4 clients as ::ffff:a.b.c.d; Go reports them as plain IPv4
            self.peer, self.peer_port = (host[7:] if host.startswith("::ffff:") and "." in host else host), int(peer[1])
        sock = transport.get_extra_info("sockname")
        if sock:
            self.local_port = int(sock[1])
        if self.tls:
            ssl_obj = transport.get_extra_info("ssl_object")
            self.sni = (getattr(ssl_obj, "server_hostname", None) or "") if ssl_obj is not None else ""
            if self.state.metrics.enabled:
                version, cipher, _ = tls_details(transport)
                self.tls_info = (version, cipher)
        self.trusted = self.trusted_nets(self.peer) if self.trusted_nets is not None else False
        self.last_active = self.state.now
        self.state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.upgrade_buffer is not None:
            self.upgrade_buffer += data
            return
        now = self.last_active = self.state.now
        if not self.reading_since:
            self.reading_since = now
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as up:
            offset = up.args[0] if up.args else len(data)
            self.upgrade_buffer = bytearray(data[offset:])
        except (httptools.HttpParserError, ValueError) as err:
            cause = err.__context__ if isinstance(err, httptools.HttpParserCallbackError) else err
            self.bad_request(str(cause) if isinstance(cause, TooManyHosts) else "")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        for ex in self.queue:
            ex.abort()
        self.queue.clear()

    def pause_writing(self) -> None:
        if self.queue and self.queue[0].up is not None:
            self.queue[0].up.transport.pause_reading()
        elif self.tunnel is not None:
            self.tunnel.pause_reading()

    def resume_writing(self) -> None:
        if self.queue and self.queue[0].up is not None:
            self.queue[0].up.transport.resume_reading()
        elif self.tunnel is not None:
            self.tunnel.resume_reading()

    # ------------------------------------------------------------------ httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url
        self.hsize += len(url)
        if self.hsize > MAX_HEADER_BYTES:
            raise ValueError("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.hsize += len(name) + len(value) + 4
        if self.hsize > MAX_HEADER_BYTES:
            raise ValueError("request headers too large")
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        # the head is consumed here, so the next message starts from empty buffers (no on_message_begin
        # callback: one Python call less per request)
        p = self.parser
        if not self.answering_since:
            self.answering_since = self.state.now
        method = p.get_method()
        url, raw_headers = self.url, self.raw_headers
        self.url = b""
        self.raw_headers = []
        self.hsize = 0
        if method == b"GET" and url[:1] == b"/":
            fast = try_fast_lane(self, url, raw_headers)
            if fast is not None:
                self.parsing = fast
                self.queue.append(fast)
                return
        ex = self.general_exchange(method, url, raw_headers)
        req = ex.req
        req.keep_alive = p.should_keep_alive()
        req.upgrade = p.should_upgrade()
        req.version = p.get_http_version()
        self.parsing = ex
        self.queue.append(ex)
        if len(self.queue) == 1:
            ex.start()

    def general_exchange(self, method: bytes, url: bytes, raw_headers: list[tuple[bytes, bytes]]) -> Exchange:
        """An Exchange with its HttpRequest decoded from the parser's bytes (ValueError: bad framing headers)."""
        headers: list[tuple[str, str]] = []
        host = te = cl = None
        trusted = self.trusted
        for name, value in raw_headers:
            key = name.decode("latin-1")
            if not trusted and key[:2] in ("X-", "x-") and key.lower() in FORWARDED:
                continue  # spoofable forwarding headers from an untrusted peer never go further (6.1)
            text = value.decode("latin-1")
            headers.append((key, text))
            # the first Host / Transfer-Encoding / Content-Length, noted here so no later step rescans the list
            n = len(key)
            if n == 4 or n == 14 or n == 17:
                low = key.lower()
                if low == "host":
                    if host is not None:
                        raise TooManyHosts("too many Host headers")
                    host = text
                elif low == "content-length":
                    if cl is None:
                        cl = text
                elif low == "transfer-encoding":
                    if te is None:
                        te = text
        req = HttpRequest(_METHODS.get(method) or method.decode("latin-1"), url.decode("latin-1"), headers,
                      self.peer, self.tls, "1.1", self.entrypoint, self.local_port, host or "")
        req.peer_port = self.peer_port
        req.sni = self.sni
        if te:
            if cl or te.strip().lower() != "chunked":
                raise ValueError("invalid Transfer-Encoding / Content-Length")
            req.body_mode = "chunked"
        elif cl:
            req.body_mode = "length"
            req.content_length = int(cl)
        return Exchange(self, req)

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None:
            ex.body_chunk(body)

    def on_message_complete(self) -> None:
        self.reading_since = 0.0
        ex = self.parsing
        self.parsing = None
        if ex is not None:
            ex.request_complete()

    # ------------------------------------------------------------------ exchange bookkeeping
    def exchange_done(self, ex: Exchange | FastExchange) -> None:
        if not self.queue or self.queue[0] is not ex:
            return
        self.queue.popleft()
        self.answering_since = self.state.now if self.queue else 0.0
        keep_alive = ex.release()
        if self.closed:
            return
        if not keep_alive:
            self.closed = True
            self.transport.close()
            return
        if self.queue:
            self.queue[0].start()

    def start_tunnel(self, up: UpstreamConnection) -> None:
        self.tunnel = up.transport
        up.tunnel = self.transport
        pending = self.upgrade_buffer
        self.upgrade_buffer = None
        if pending:
            up.transport.write(bytes(pending))

    def bad_request(self, reason: str = "") -> None:
        """400 and close; a ``reason`` is told as Go's server tells it (`400 Bad Request: <reason>`)."""
        if self.closed:
            return
        self.closed = True
        if not any(ex.resp_started for ex in self.queue):
            self.transport.write(bad_request_bytes(reason) if reason else BAD_REQUEST_BYTES)
        self.transport.close()
