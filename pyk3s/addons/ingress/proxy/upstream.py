"""Upstream side: pooled HTTP/1.1 keep-alive connections to backend servers.

Rules of this module:
- One :class:`Pool` per server and ServersTransport per worker; idle connections are reused LIFO,
  at most the transport's ``maxIdleConnsPerHost`` are kept, and the sweeper closes those idle longer
  than its ``idleConnTimeout``. HTTPS servers are reached with the transport's TLS context (server
  certificates verified unless ``insecureSkipVerify``), dials bounded by its ``dialTimeout``; a
  ``responseHeaderTimeout`` bounds the wait for the answer's first bytes (504).
- A connection serves one exchange at a time. In *raw* mode the response bytes go to the client as
  they arrive (httptools only finds the end of the message); in *full* mode the head is parsed so
  response middlewares, sticky cookies and re-framing can apply.
- A 101 answer turns the pair into a byte tunnel (WebSocket). A connection whose response was to HEAD,
  was not keep-alive, or failed is closed, never pooled.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Protocol, cast

import httptools

from ..http.request import HttpRequest
from ..routing.services import Target
from ..routing.transports import match_peer_sans

__all__ = ["Pool", "UpstreamConnection", "UpstreamExchange", "Downstream", "IDLE_TIMEOUT", "DIAL_TIMEOUT", "dial"]

log = logging.getLogger("pyk3s.ingress")
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
    """Idle keep-alive connections to one backend (scheme, host, port) through one ServersTransport. A pool
    that went unused for its idle timeout is retired by the sweeper and dropped (endpoints come and go
    with pods: one pool per address ever seen would only grow); a connection finishing on a retired pool
    is closed."""

    __slots__ = ("loop", "scheme", "host", "port", "idle", "ssl_context", "server_hostname", "dial_timeout",
                 "idle_timeout", "max_idle", "header_timeout", "peer_sans", "tls_logged", "count_bytes",
                 "empty_since", "retired")

    def __init__(self, loop: asyncio.AbstractEventLoop, target: Target, count_bytes: bool = False) -> None:
        self.loop, self.scheme, self.host, self.port = loop, target.scheme, target.host, target.port
        self.idle: list[UpstreamConnection] = []
        transport = target.transport
        self.empty_since = 0.0          # stamped by the sweeper while no connection is idle here
        self.retired = False
        self.ssl_context: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self.dial_timeout: float | None = DIAL_TIMEOUT
        self.idle_timeout = IDLE_TIMEOUT
        self.max_idle = 1 << 30
        self.header_timeout = 0.0
        self.peer_sans: tuple[tuple[str, str], ...] = ()
        self.tls_logged = -60.0
        self.count_bytes = count_bytes  # raw-mode parsers count response body bytes (metrics)
        if transport is not None:
            self.dial_timeout = transport.dial_timeout
            self.idle_timeout = transport.idle_timeout or IDLE_TIMEOUT
            self.max_idle = transport.max_idle
            self.header_timeout = transport.response_header_timeout
            self.peer_sans = transport.peer_sans
        if self.scheme == "https":
            if transport is not None:
                self.ssl_context = transport.ssl_context
                self.server_hostname = transport.server_name or self.host
            else:  # Traefik's default: verified against the system CAs and the server's address
                self.ssl_context = ssl.create_default_context()
                self.server_hostname = self.host

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            up = idle.pop()
            if not up.closed:
                return up
        return None

    def put(self, up: UpstreamConnection) -> None:
        if self.retired or len(self.idle) >= self.max_idle:
            up.close()
            return
        up.idle_since = 0.0  # stamped by the next sweep: a clock read per request costs more than it tells
        self.idle.append(up)

    async def connect(self) -> UpstreamConnection:
        _, up = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port, ssl=self.ssl_context,
                                        server_hostname=self.server_hostname), self.dial_timeout)
        if self.peer_sans and not match_peer_sans(up.transport.get_extra_info("peercert"), self.peer_sans):
            up.close()
            raise ssl.SSLCertVerificationError("the server certificate carries none of the required SANs")
        return up

    def tls_failed(self, err: Exception) -> None:
        """Say why an HTTPS server is refused (once a minute per server and transport)."""
        now = self.loop.time()
        if now - self.tls_logged >= 60.0:
            self.tls_logged = now
            log.warning("ingress: TLS to server %s://%s:%d failed: %s", self.scheme, self.host, self.port, err)

    def sweep(self, now: float) -> bool:
        """Close connections idle for longer than the idle timeout; True when the pool itself is that old
        and empty, and is now retired."""
        keep = []
        for up in self.idle:
            if up.closed:
                continue
            if not up.idle_since:
                up.idle_since = now
            if now - up.idle_since > self.idle_timeout:
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
        if now - self.empty_since > self.idle_timeout:
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
    except ssl.SSLError as err:
        pool.tls_failed(err)
        exchange.upstream_failed(None, "connect")
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


class _CountingCallbacks:
    """Raw mode that also counts the response body's bytes (metrics are on)."""

    __slots__ = ("on_message_complete", "conn")

    def __init__(self, conn: UpstreamConnection, fast: bool) -> None:
        self.conn = conn
        self.on_message_complete = conn.fast_message_complete if fast else conn.message_complete

    def on_body(self, body: bytes) -> None:
        self.conn.body_bytes += len(body)


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
                 "raw", "headers", "idle_since", "tunnel", "got_bytes", "reused", "fast_parser", "header_timer",
                 "body_bytes")

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
        self.header_timer: asyncio.TimerHandle | None = None
        self.body_bytes = 0  # response body bytes of the current exchange, counted when metrics are on

    # -- wiring
    def attach(self, exchange: UpstreamExchange, raw: bool) -> None:
        self.exchange = exchange
        self.raw = raw
        self.got_bytes = False
        self.body_bytes = 0
        if self.pool.header_timeout:
            self.arm_header_timer()
        if raw and exchange.head_request:
            if self.raw_head_parser is None:
                self.raw_head_parser = httptools.HttpResponseParser(_RawHeadCallbacks(self))
            self.parser = self.raw_head_parser
        elif raw:
            if self.raw_parser is None:
                callbacks = _CountingCallbacks(self, False) if self.pool.count_bytes else _RawCallbacks(self)
                self.raw_parser = httptools.HttpResponseParser(callbacks)
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
        if self.pool.header_timeout:
            self.arm_header_timer()
        parser = self.fast_parser
        if parser is None:
            callbacks = _CountingCallbacks(self, True) if self.pool.count_bytes else _FastCallbacks(self)
            parser = self.fast_parser = httptools.HttpResponseParser(callbacks)
        self.parser = parser  # body_bytes: reset by the fast exchange that reads it (metrics on)

    def arm_header_timer(self) -> None:
        """responseHeaderTimeout: the answer's first bytes must come within the transport's limit."""
        if self.header_timer is not None:
            self.header_timer.cancel()
        self.header_timer = self.pool.loop.call_later(self.pool.header_timeout, self.header_timeout)

    def header_timeout(self) -> None:
        self.header_timer = None
        ex = self.exchange
        if ex is None or self.got_bytes:
            return
        self.exchange = None
        self.close()
        ex.upstream_failed(self, "timeout")

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
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
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
        if parser.should_keep_alive() and not self.closed:
            pool = self.pool
            if not pool.retired and len(pool.idle) < pool.max_idle:  # Pool.put, inlined on the fast lane
                self.idle_since = 0.0
                pool.idle.append(self)
            else:
                self.close()
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
