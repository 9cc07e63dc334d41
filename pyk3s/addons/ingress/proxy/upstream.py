"""Upstream side: pooled HTTP/1.1 keep-alive connections to backend servers.

Rules of this module:
- One :class:`Pool` per (scheme, host, port) per worker; idle connections are reused LIFO and closed
  after ``IDLE_TIMEOUT`` by the server's sweeper.
- A connection serves one exchange at a time. In *raw* mode the response bytes go to the client as
  they arrive (httptools only finds the end of the message); in *full* mode the head is parsed so
  response middlewares, sticky cookies and re-framing can apply.
- A 101 answer turns the pair into a byte tunnel (WebSocket). A connection whose response was to HEAD,
  was not keep-alive, or failed is closed, never pooled.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol, cast

import httptools

from ..http.request import HttpRequest

__all__ = ["Pool", "UpstreamConnection", "UpstreamExchange", "Downstream", "IDLE_TIMEOUT", "DIAL_TIMEOUT", "dial"]

IDLE_TIMEOUT = 90.0
DIAL_TIMEOUT = 30.0


class Downstream(Protocol):
    """The client connection of an exchange, as the upstream side sees it."""

    @property
    def transport(self) -> asyncio.Transport: ...

    @property
    def closed(self) -> bool: ...


class UpstreamExchange(Protocol):
    """What an upstream connection calls on the exchange it serves (``Exchange`` or ``FastExchange``)."""

    status: int

    @property
    def client(self) -> Downstream: ...

    @property
    def req(self) -> HttpRequest: ...

    @property
    def head_request(self) -> bool: ...

    @property
    def upstream_reusable(self) -> bool: ...

    @property
    def finished(self) -> bool: ...

    def response_head(self, status: int, headers: list[tuple[str, str]], close_delimited: bool) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_complete(self, keep_client: bool) -> None: ...

    def upstream_failed(self, up: UpstreamConnection | None, why: str) -> None: ...

    def start_tunnel(self, up: UpstreamConnection) -> None: ...


class ResponseParser(Protocol):
    """The part of httptools.HttpResponseParser used here."""

    def feed_data(self, data: bytes) -> None: ...

    def get_status_code(self) -> int: ...

    def get_http_version(self) -> str: ...

    def should_keep_alive(self) -> bool: ...


class Pool:
    """Idle keep-alive connections to one backend (scheme, host, port). A pool that went unused for
    ``IDLE_TIMEOUT`` is retired by the sweeper and dropped (endpoints come and go with pods: one pool per
    address ever seen would only grow); a connection finishing on a retired pool is closed."""

    __slots__ = ("loop", "scheme", "host", "port", "idle", "ssl_context", "empty_since", "retired")

    def __init__(self, loop: asyncio.AbstractEventLoop, scheme: str, host: str, port: int) -> None:
        self.loop, self.scheme, self.host, self.port = loop, scheme, host, port
        self.idle: list[UpstreamConnection] = []
        self.empty_since = 0.0          # stamped by the sweeper while no connection is idle here
        self.retired = False
        self.ssl_context: ssl.SSLContext | None = None
        if scheme == "https":
            ctx = ssl.create_default_context()
            # Traefik's default serversTransport verifies; in-cluster backends use self-signed certificates
            # and insecureSkipVerify is the common setting, so pyk3s does not verify backend certificates.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.ssl_context = ctx

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            up = idle.pop()
            if not up.closed:
                return up
        return None

    def put(self, up: UpstreamConnection) -> None:
        if self.retired:
            up.close()
            return
        up.idle_since = 0.0  # stamped by the next sweep: a clock read per request costs more than it tells
        self.idle.append(up)

    async def connect(self) -> UpstreamConnection:
        _, up = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port, ssl=self.ssl_context),
            DIAL_TIMEOUT)
        return up

    def sweep(self, now: float) -> bool:
        """Close connections idle for longer than IDLE_TIMEOUT; True when the pool itself is that old and
        empty, and is now retired."""
        keep = []
        for up in self.idle:
            if up.closed:
                continue
            if not up.idle_since:
                up.idle_since = now
            if now - up.idle_since > IDLE_TIMEOUT:
                up.close()
            else:
                keep.append(up)
        self.idle = keep
        if keep:
            self.empty_since = 0.0
            return False
        if not self.empty_since:
            self.empty_since = now
            return False
        if now - self.empty_since > IDLE_TIMEOUT:
            self.retired = True
        return self.retired

    def close(self) -> None:
        for up in self.idle:
            up.close()
        self.idle = []


async def dial(exchange: UpstreamExchange, pool: Pool) -> UpstreamConnection | None:
    """A new connection for ``exchange``; None when dialing failed (the exchange was told) or the
    exchange ended meanwhile (the connection went to the pool)."""
    try:
        up = await pool.connect()
    except TimeoutError:
        exchange.upstream_failed(None, "timeout")
        return None
    except OSError:
        exchange.upstream_failed(None, "connect")
        return None
    if exchange.finished or exchange.client.closed:
        pool.put(up)
        return None
    up.reused = False
    return up


class _RawCallbacks:
    """Minimal callbacks: only the end of the message matters in raw mode."""

    __slots__ = ("on_message_complete",)

    def __init__(self, conn: UpstreamConnection) -> None:
        self.on_message_complete = conn.message_complete


class _FastCallbacks:
    """Raw mode for fast-lane exchanges (proxy/fastlane.py)."""

    __slots__ = ("on_message_complete",)

    def __init__(self, conn: UpstreamConnection) -> None:
        self.on_message_complete = conn.fast_message_complete


class _RawHeadCallbacks:
    """Raw mode for HEAD requests: the message ends with its head, whatever Content-Length says."""

    __slots__ = ("on_headers_complete", "on_message_complete")

    def __init__(self, conn: UpstreamConnection) -> None:
        self.on_headers_complete = conn.raw_headers_complete
        self.on_message_complete = conn.message_complete


class _FullCallbacks:
    __slots__ = ("conn",)

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn

    def on_header(self, name: bytes, value: bytes) -> None:
        self.conn.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.conn.full_headers_complete()

    def on_body(self, body: bytes) -> None:
        ex = self.conn.exchange
        if ex is not None:
            ex.response_body(body)

    def on_message_complete(self) -> None:
        self.conn.message_complete()


class UpstreamConnection(asyncio.Protocol):
    __slots__ = ("pool", "transport", "exchange", "closed", "raw_parser", "raw_head_parser", "full_parser", "parser",
                 "raw", "headers", "idle_since", "tunnel", "got_bytes", "reused", "fast_parser")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.exchange: UpstreamExchange | None = None
        self.closed = False
        self.raw_parser: ResponseParser | None = None
        self.fast_parser: ResponseParser | None = None
        self.raw_head_parser: ResponseParser | None = None
        self.full_parser: ResponseParser | None = None
        self.parser: ResponseParser = None  # type: ignore[assignment]  # set by attach, before any byte arrives
        self.raw = True
        self.headers: list[tuple[str, str]] = []
        self.idle_since = 0.0
        self.tunnel: asyncio.Transport | None = None  # the client's transport once this is a tunnel
        self.got_bytes = False
        self.reused = False

    # -- wiring
    def attach(self, exchange: UpstreamExchange, raw: bool) -> None:
        self.exchange = exchange
        self.raw = raw
        self.got_bytes = False
        if raw and exchange.head_request:
            if self.raw_head_parser is None:
                self.raw_head_parser = httptools.HttpResponseParser(_RawHeadCallbacks(self))
            self.parser = self.raw_head_parser
        elif raw:
            if self.raw_parser is None:
                self.raw_parser = httptools.HttpResponseParser(_RawCallbacks(self))
            self.parser = self.raw_parser
        else:
            if self.full_parser is None:
                self.full_parser = httptools.HttpResponseParser(_FullCallbacks(self))
            self.parser = self.full_parser
            self.headers = []

    def attach_raw(self, exchange: UpstreamExchange) -> None:
        """attach(exchange, raw=True) for a request that is not HEAD (the fast lane's)."""
        self.exchange = exchange
        self.raw = True
        self.got_bytes = False
        parser = self.fast_parser
        if parser is None:
            parser = self.fast_parser = httptools.HttpResponseParser(_FastCallbacks(self))
        self.parser = parser

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.write(data)
            return
        ex = self.exchange
        if ex is None:  # unsolicited bytes on an idle connection
            self.close()
            return
        self.got_bytes = True
        if self.raw:
            ex.client.transport.write(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as up:
            ex = self.exchange or ex
            if not self.raw:
                rest = data[up.args[0]:] if up.args else b""
                if rest:
                    ex.client.transport.write(rest)
            ex.start_tunnel(self)
        except httptools.HttpParserError:
            self.close()
            if self.exchange is not None:
                self.exchange.upstream_failed(self, "invalid response")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
            return
        ex = self.exchange
        self.exchange = None
        if ex is not None:
            ex.upstream_failed(self, "connection closed")

    def pause_writing(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.client.transport.pause_reading()

    def resume_writing(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.client.transport.resume_reading()

    # -- parser events
    def raw_headers_complete(self) -> None:
        ex = self.exchange
        if ex is not None and ex.head_request:
            ex.status = self.parser.get_status_code()
            self.message_complete(reusable=False)

    def full_headers_complete(self) -> None:
        ex = self.exchange
        if ex is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            ex.client.transport.write(b"HTTP/1.1 %d Continue\r\n\r\n" % status if status == 100
                                      else b"HTTP/1.1 %d Informational\r\n\r\n" % status)
            self.headers = []
            return
        ex.response_head(self.parser.get_status_code(), self.headers,
                         self.parser.get_http_version() == "1.0" and not self.parser.should_keep_alive())
        if ex.head_request:
            self.message_complete(reusable=False)

    def fast_message_complete(self) -> None:
        """message_complete for a fast-lane exchange whose final answer is complete."""
        ex = self.exchange
        parser = self.parser
        status = parser.get_status_code()
        if ex is None or status < 200:
            self.message_complete()
            return
        self.exchange = None
        ex.status = status
        if parser.should_keep_alive() and not self.closed and not self.pool.retired:
            self.idle_since = 0.0
            self.pool.idle.append(self)
            self.reused = True
            ex.response_complete(True)
        else:
            self.close()
            ex.response_complete(False)

    def message_complete(self, reusable: bool = True) -> None:
        ex = self.exchange
        parser = self.parser
        status = parser.get_status_code()
        if ex is None:
            return
        if status < 200 and (status != 101 or ex.req.upgrade):
            # 101 on an upgrade: data_received turns the pair into a tunnel; 1xx other than 101 is an
            # interim answer (100 Continue) and the final response follows on this connection
            return
        self.exchange = None
        raw = self.raw
        if raw:
            ex.status = status
        upstream_keep = parser.should_keep_alive()
        if reusable and upstream_keep and not self.closed and ex.upstream_reusable:
            self.pool.put(self)
            self.reused = True
        else:
            self.close()
        ex.response_complete(keep_client=upstream_keep or not raw)
