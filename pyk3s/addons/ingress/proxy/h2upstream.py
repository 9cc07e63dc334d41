"""HTTP/2 to backend servers: ``h2c`` (prior knowledge) and ``https`` with ALPN ``h2``, multiplexed.

Rules:
- One :class:`H2Pool` per server and ServersTransport per worker. An exchange gets a stream on the
  first connection with room (the server's MAX_CONCURRENT_STREAMS, 100 until its SETTINGS arrive);
  another connection is dialed only when every one is full. A connection without streams for the
  transport's ``idleConnTimeout`` (90s) is closed; the transport's ``dialTimeout`` bounds the dial.
- ``https``: the TLS handshake uses the ServersTransport's settings (verification, ``serverName``,
  root CAs, client certificate, ``peerCertSANs``) and offers ``h2`` and ``http/1.1``, as Traefik's
  transport does; ``disableHTTP2`` keeps such servers on HTTP/1.1 (``ProxyState.h2_pool``). A server
  that picks ``http/1.1`` (or nothing) gets HTTP/1.1 from then on: the connection joins the target's
  HTTP/1.1 pool and the pool remembers it (``h1_only``). ``h2c`` is always HTTP/2 (Upgrade requests
  never come here: they always go out as HTTP/1.1).
- A GOAWAY from the server: streams above its last stream id fail as "refused" (the exchange resends
  them: the server did not process them), the others finish, no new stream goes there. A
  REFUSED_STREAM reset is "refused" too. Any other reset, or the connection lost, fails the stream
  (502 before the answer's head, a reset client stream after it).
- Health check (the transport's ``readIdleTimeout``, with ``pingTimeout``; ``h2health``): a connection
  from which nothing was read for that long gets a PING; without its ACK in time the connection is lost
  as a dead server's would be: its streams fail ("connection closed": 502, or the retry middleware's
  next attempt), it leaves the pool at once, and the next request dials a new one.
- Flow control: a response's window is given back as the client takes the data (``pause``/``resume``
  from the exchange); the request body waits in the outbox for the server's window, and the exchange
  hears ``request_drained`` when its backlog went back under LOW_WATER.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    InformationalResponseReceived,
    PingAckReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

from ..http.request import HttpRequest
from ..routing.services import Target
from ..routing.transports import match_peer_sans
from .h2conn import H2Session, Outbox, h2_config, misplaced_block, str_headers
from .h2heads import upstream_fields
from .h2health import ReadIdleCheck
from .upstream import DIAL_TIMEOUT, IDLE_TIMEOUT, UpstreamConnection

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["H2Pool", "H2UpstreamConnection", "H2UpstreamStream", "H2Requester"]

WINDOW = 1 << 20  # per stream
CONN_WINDOW = 4 << 20
MAX_HEADER_LIST = 1 << 20
FIRST_STREAMS = 100  # streams opened before the server's SETTINGS say how many it allows

log = logging.getLogger("pyk3s.ingress")


class H2Requester(Protocol):
    """An exchange as the HTTP/2 upstream side sees it (``Exchange``, ``H2Exchange``)."""

    status: int

    @property
    def finished(self) -> bool: ...

    def send_h2(self, stream: H2UpstreamStream) -> None: ...

    def send(self, up: UpstreamConnection) -> None: ...

    def forward(self, fresh: bool = False) -> None: ...

    def upstream_failed(self, up: UpstreamConnection | None, why: str) -> None: ...

    def response_head(self, status: int, headers: list[tuple[str, str]], close_delimited: bool,
                      ends: bool = False) -> None: ...

    def response_interim(self, status: int) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_trailers(self, trailers: list[tuple[str, str]]) -> None: ...

    def response_complete(self, keep_client: bool) -> None: ...

    def request_drained(self) -> None: ...


def _default_tls_context() -> ssl.SSLContext:
    """Traefik's default without a ServersTransport: verified against the system CAs and the address."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


class H2Pool:
    """HTTP/2 connections to one backend server. Unused for ``IDLE_TIMEOUT`` (no connection, nobody
    waiting) it is retired and dropped by the sweeper, as the HTTP/1.1 pools are."""

    __slots__ = ("state", "target", "conns", "waiting", "dialing", "h1_only", "ssl_context", "server_hostname",
                 "dial_timeout", "idle_timeout", "peer_sans", "empty_since", "read_idle", "ping_timeout")

    def __init__(self, state: ProxyState, target: Target) -> None:
        self.state = state
        self.target = target
        self.conns: list[H2UpstreamConnection] = []
        self.waiting: deque[H2Requester] = deque()
        self.dialing = False
        self.h1_only = False  # an https server that chose HTTP/1.1 (or a transport with disableHTTP2)
        self.ssl_context: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self.dial_timeout: float | None = DIAL_TIMEOUT
        self.idle_timeout = IDLE_TIMEOUT
        self.peer_sans: tuple[tuple[str, str], ...] = ()
        self.read_idle = 0.0  # seconds without input before a health-check PING (0: none)
        self.ping_timeout = 0.0
        transport = target.transport
        if transport is not None:
            self.dial_timeout = transport.dial_timeout
            self.idle_timeout = transport.idle_timeout or IDLE_TIMEOUT
            self.read_idle = transport.read_idle_timeout
            self.ping_timeout = transport.ping_timeout
        if target.scheme == "https":
            if transport is None:
                self.ssl_context, self.server_hostname = _default_tls_context(), target.host
            elif transport.h2_ssl_context is None:
                self.h1_only = True
            else:
                self.ssl_context = transport.h2_ssl_context
                self.server_hostname = transport.server_name or target.host
                self.peer_sans = transport.peer_sans
        self.empty_since = 0.0

    def request(self, ex: H2Requester) -> None:
        """Open a stream for ``ex`` now, or as soon as a connection has room."""
        for conn in self.conns:
            if not conn.draining and len(conn.streams) < conn.max_streams:
                conn.open(ex)
                return
        self.waiting.append(ex)
        if not self.dialing:
            self.dialing = True
            self.state.spawn(self.dial())

    async def dial(self) -> None:
        target = self.target
        try:
            transport, conn = await asyncio.wait_for(self.state.loop.create_connection(
                lambda: H2UpstreamConnection(self), target.host, target.port, ssl=self.ssl_context,
                server_hostname=self.server_hostname), self.dial_timeout)
            if self.peer_sans and not match_peer_sans(transport.get_extra_info("peercert"), self.peer_sans):
                transport.close()
                raise ssl.SSLCertVerificationError("the server certificate carries none of the required SANs")
        except TimeoutError:
            self.fail_waiting("timeout")
            return
        except ssl.SSLError as err:
            self.state.pool(target).tls_failed(err)
            self.fail_waiting("connect")
            return
        except OSError:
            self.fail_waiting("connect")
            return
        finally:
            self.dialing = False
        if conn.h1 is not None:
            self.fall_back(conn.h1)
            return
        self.conns.append(conn)
        self.serve_waiting()

    def serve_waiting(self) -> None:
        waiting = self.waiting
        while waiting:
            ex = waiting[0]
            if ex.finished:
                waiting.popleft()
                continue
            conn = next((c for c in self.conns if not c.draining and len(c.streams) < c.max_streams), None)
            if conn is None:
                if not self.dialing:
                    self.dialing = True
                    self.state.spawn(self.dial())
                return
            waiting.popleft()
            conn.open(ex)

    def fail_waiting(self, why: str) -> None:
        waiting = list(self.waiting)
        self.waiting.clear()
        for ex in waiting:
            if not ex.finished:
                ex.upstream_failed(None, why)

    def fall_back(self, up: UpstreamConnection) -> None:
        """The server chose HTTP/1.1: this connection serves the first waiting exchange, the others go
        through the HTTP/1.1 pool."""
        self.h1_only = True
        waiting = [ex for ex in self.waiting if not ex.finished]
        self.waiting.clear()
        if not waiting:
            up.pool.put(up)
            return
        up.reused = False
        waiting[0].send(up)
        for ex in waiting[1:]:
            ex.forward()

    def remove(self, conn: H2UpstreamConnection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)

    def sweep(self, now: float) -> bool:
        """Close connections without a stream for the idle timeout; True when the pool itself went unused
        that long (the caller drops it)."""
        for conn in list(self.conns):
            if conn.streams:
                conn.idle_since = 0.0
            elif not conn.idle_since:
                conn.idle_since = now
            elif now - conn.idle_since > self.idle_timeout:
                conn.shut()
        if self.conns or self.waiting or self.dialing:
            self.empty_since = 0.0
            return False
        if not self.empty_since:
            self.empty_since = now
        return now - self.empty_since > self.idle_timeout

    def close(self) -> None:
        for conn in list(self.conns):
            conn.shut()


class H2UpstreamStream:
    """One request on an upstream HTTP/2 connection: what the exchange holds as ``h2up``."""

    __slots__ = ("conn", "sid", "ex", "paused", "unacked", "got_bytes", "reused", "body_ended")

    def __init__(self, conn: H2UpstreamConnection, sid: int, ex: H2Requester, reused: bool) -> None:
        self.conn = conn
        self.sid = sid
        self.ex = ex
        self.paused = False
        self.unacked = 0
        self.got_bytes = False
        self.reused = reused
        self.body_ended = False

    def send_request(self, req: HttpRequest, target: Target, body: list[bytes], end: bool) -> None:
        conn = self.conn
        body = [b for b in body if b]
        self.body_ended = end
        try:
            conn.conn.send_headers(self.sid, upstream_fields(req, target), end_stream=end and not body)
        except ProtocolError:
            conn.drop(self, "refused")
            return
        for i, chunk in enumerate(body):
            conn.outbox.data(self.sid, chunk, end and i == len(body) - 1)
        conn.flush_soon()

    def send_body(self, data: bytes, end: bool = False) -> int:
        """Queue request body (``end``: its last piece); the bytes still waiting for the server's window."""
        if self.body_ended:
            return 0
        self.body_ended = end
        backlog = self.conn.outbox.data(self.sid, data, end)
        self.conn.flush_soon()
        return backlog

    def end_body(self) -> None:
        if not self.body_ended:
            self.body_ended = True
            self.conn.outbox.end(self.sid)
            self.conn.flush_soon()

    def backlog(self) -> int:
        return self.conn.outbox.backlog(self.sid)

    def pause(self) -> None:
        """Stop giving the server window for this response (the client is slow to take it)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        if self.unacked:
            self.conn.ack(self.sid, self.unacked)
            self.unacked = 0

    def cancel(self) -> None:
        """The exchange ended early (client gone, deadline): reset the stream."""
        conn = self.conn
        if conn.streams.pop(self.sid, None) is None:
            return
        conn.outbox.drop(self.sid)
        try:
            conn.conn.reset_stream(self.sid, ErrorCodes.CANCEL)
        except ProtocolError:
            pass
        if self.unacked:
            conn.ack(self.sid, self.unacked)
        conn.flush_soon()
        conn.maybe_done()


class H2UpstreamConnection(asyncio.Protocol):
    __slots__ = ("pool", "transport", "conn", "outbox", "streams", "closed", "draining", "idle_since",
                 "flush_handle", "h1", "max_streams", "served", "health")

    def __init__(self, pool: H2Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        config = h2_config(True)
        conn = self.conn = H2Session(config)
        conn.local_settings = Settings(client=True, initial_values={
            SettingCodes.ENABLE_PUSH: 0, SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST})
        conn.decoder.max_header_list_size = MAX_HEADER_LIST
        self.outbox = Outbox(conn)
        self.streams: dict[int, H2UpstreamStream] = {}
        self.closed = False
        self.draining = False
        self.idle_since = 0.0
        self.flush_handle: asyncio.Handle | None = None
        self.h1: UpstreamConnection | None = None  # an https server that chose HTTP/1.1
        self.max_streams = FIRST_STREAMS
        self.served = 0
        self.health: ReadIdleCheck | None = None

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        ssl_obj = transport.get_extra_info("ssl_object")
        if ssl_obj is not None and ssl_obj.selected_alpn_protocol() != "h2":
            target = self.pool.target
            up = UpstreamConnection(self.pool.state.pool(target))
            self.transport.set_protocol(up)
            up.connection_made(transport)
            self.h1 = up
            self.closed = True
            return
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(CONN_WINDOW - 65535)
        self.write_out()
        pool = self.pool
        if pool.read_idle > 0:
            self.health = ReadIdleCheck(pool.state.loop, pool.read_idle, pool.ping_timeout, self.send_ping,
                                        self.ping_lost)

    def data_received(self, data: bytes) -> None:
        health = self.health
        if health is not None:
            health.last_read = health.loop.time()
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.write_out()
            self.transport.close()
            return
        handlers = _HANDLERS
        for ev in events:
            handler = handlers.get(type(ev))
            if handler is not None:
                handler(self, ev)
                if self.closed:
                    return
        self.write_out()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.remove(self)
        if self.health is not None:
            self.health.stop()
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        streams = list(self.streams.values())
        self.streams.clear()
        for s in streams:
            # nothing came back on a connection that had served before: it went stale, resend
            s.ex.upstream_failed(None, "refused" if s.reused and not s.got_bytes else "connection closed")
        self.pool.serve_waiting()

    def pause_writing(self) -> None:
        self.outbox.paused = True

    def resume_writing(self) -> None:
        self.outbox.paused = False
        self.flush_outbox()

    # -- streams
    def open(self, ex: H2Requester) -> None:
        sid = self.conn.get_next_available_stream_id()
        stream = H2UpstreamStream(self, sid, ex, self.served > 0)
        self.streams[sid] = stream
        self.idle_since = 0.0
        ex.send_h2(stream)

    def drop(self, stream: H2UpstreamStream, why: str) -> None:
        if self.streams.pop(stream.sid, None) is not None:
            self.outbox.drop(stream.sid)
            stream.ex.upstream_failed(None, why)
        self.maybe_done()

    def ack(self, sid: int, n: int) -> None:
        if not self.closed:
            self.conn.acknowledge_received_data(n, sid)
            self.flush_soon()

    def maybe_done(self) -> None:
        """A draining connection closes once its last stream ends; a freed slot serves a waiting exchange."""
        if self.draining:
            if not self.streams and not self.closed:
                self.write_out()
                self.closed = True
                self.transport.close()
        elif self.pool.waiting:
            self.pool.serve_waiting()

    def send_ping(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.conn.ping(data)
        except ProtocolError:  # h2 already ended the connection (a protocol error): it is being closed
            return
        self.write_out()

    def on_ping_ack(self, ev: PingAckReceived) -> None:
        if self.health is not None and ev.ping_data is not None:
            self.health.ack(ev.ping_data)

    def ping_lost(self) -> None:
        """The health-check PING got no ACK in time: the connection is dead, as in Go's closeForLostPing."""
        self.pool.remove(self)
        self.draining = True
        if self.closed:
            return
        target = self.pool.target
        log.info("HTTP/2 connection to %s:%d closed: no answer to a PING within %gs (pingTimeout), "
                 "%d stream(s) failed", target.host, target.port, self.pool.ping_timeout, len(self.streams))
        self.closed = True
        streams = list(self.streams.values())
        self.streams.clear()
        for s in streams:
            s.ex.upstream_failed(None, "connection closed")
        self.transport.abort()
        self.pool.serve_waiting()

    def protocol_error(self) -> None:
        """A header block h2 leaves to us to reject (``misplaced_block``): as any protocol error, the
        connection ends (its streams fail when it is lost) and takes no new one meanwhile."""
        self.pool.remove(self)
        self.draining = True
        if not self.closed:
            self.conn.close_connection(ErrorCodes.PROTOCOL_ERROR)
            self.write_out()
            self.closed = True
            self.transport.close()

    def shut(self) -> None:
        """Close for good (idle, or the proxy stops): GOAWAY, then the socket."""
        self.pool.remove(self)
        self.draining = True
        if not self.closed:
            try:
                self.conn.close_connection()
            except ProtocolError:
                pass
            self.write_out()
            self.closed = True
            self.transport.close()

    # -- events
    def on_response(self, ev: ResponseReceived) -> None:
        if misplaced_block(ev.headers, True):
            self.protocol_error()
            return
        stream = self.streams.get(ev.stream_id)
        if stream is None:
            return
        stream.got_bytes = True
        status, headers = str_headers(ev.headers)
        stream.ex.response_head(status, headers, False, ev.stream_ended is not None)

    def on_interim(self, ev: InformationalResponseReceived) -> None:
        if misplaced_block(ev.headers, True):
            self.protocol_error()
            return
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            status, _ = str_headers(ev.headers)
            stream.ex.response_interim(status)

    def on_data(self, ev: DataReceived) -> None:
        sid = ev.stream_id
        stream = self.streams.get(sid)
        n = ev.flow_controlled_length
        if stream is None:
            if n:
                self.ack(sid, n)
            return
        if ev.data:
            stream.ex.response_body(ev.data)
        if stream.paused:
            stream.unacked += n
        elif n:
            self.conn.acknowledge_received_data(n, sid)

    def on_trailers(self, ev: TrailersReceived) -> None:
        if misplaced_block(ev.headers, False):
            self.protocol_error()
            return
        stream = self.streams.get(ev.stream_id)
        if stream is not None:
            stream.ex.response_trailers(str_headers(ev.headers)[1])

    def on_end(self, ev: StreamEnded) -> None:
        stream = self.streams.pop(ev.stream_id, None)
        if stream is None:
            return
        self.outbox.drop(ev.stream_id)
        if stream.unacked:
            self.conn.acknowledge_received_data(stream.unacked, ev.stream_id)
            stream.unacked = 0
        self.served += 1
        stream.ex.response_complete(True)
        self.maybe_done()

    def on_reset(self, ev: StreamReset) -> None:
        stream = self.streams.pop(ev.stream_id, None)
        self.outbox.drop(ev.stream_id)
        if stream is not None:
            refused = ev.error_code == ErrorCodes.REFUSED_STREAM and not stream.got_bytes
            stream.ex.upstream_failed(None, "refused" if refused else "reset")
        self.maybe_done()

    def on_window(self, ev: WindowUpdated | RemoteSettingsChanged) -> None:
        if isinstance(ev, RemoteSettingsChanged):
            limit = ev.changed_settings.get(SettingCodes.MAX_CONCURRENT_STREAMS)
            if limit is not None:
                self.max_streams = max(1, min(limit.new_value, 1000))
                self.pool.serve_waiting()
        self.flush_outbox()

    def on_goaway(self, ev: ConnectionTerminated) -> None:
        self.draining = True
        self.pool.remove(self)
        last = ev.last_stream_id or 0
        for sid in [s for s in self.streams if s > last or ev.error_code]:
            stream = self.streams.pop(sid)
            self.outbox.drop(sid)
            stream.ex.upstream_failed(None, "refused" if sid > last and not stream.got_bytes else "connection closed")
        self.maybe_done()
        self.pool.serve_waiting()

    # -- output
    def flush_soon(self) -> None:
        if self.flush_handle is None and not self.closed:
            self.flush_handle = self.pool.state.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_handle = None
        self.write_out()

    def write_out(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def flush_outbox(self) -> None:
        for sid in self.outbox.flush():
            stream = self.streams.get(sid)
            if stream is not None:
                stream.ex.request_drained()
        self.flush_soon()


_HANDLERS: dict[type[Event], Callable[[H2UpstreamConnection, Event], None]] = {
    ResponseReceived: H2UpstreamConnection.on_response,  # type: ignore[dict-item]
    InformationalResponseReceived: H2UpstreamConnection.on_interim,  # type: ignore[dict-item]
    DataReceived: H2UpstreamConnection.on_data,  # type: ignore[dict-item]
    TrailersReceived: H2UpstreamConnection.on_trailers,  # type: ignore[dict-item]
    StreamEnded: H2UpstreamConnection.on_end,  # type: ignore[dict-item]
    StreamReset: H2UpstreamConnection.on_reset,  # type: ignore[dict-item]
    WindowUpdated: H2UpstreamConnection.on_window,  # type: ignore[dict-item]
    RemoteSettingsChanged: H2UpstreamConnection.on_window,  # type: ignore[dict-item]
    ConnectionTerminated: H2UpstreamConnection.on_goaway,  # type: ignore[dict-item]
    PingAckReceived: H2UpstreamConnection.on_ping_ack,  # type: ignore[dict-item]
}
