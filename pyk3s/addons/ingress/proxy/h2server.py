"""HTTP/2 client connections: ALPN ``h2`` on TLS entry points, h2c with prior knowledge on plain ones.

The HTTP/1.1 protocol (``client.py``) hands a connection over (:meth:`ClientConnection.switch_to_h2`)
when TLS chose ``h2`` or the first bytes are the HTTP/2 preface. From then on every stream is an
:class:`~.h2exchange.H2Exchange` with the same :class:`HttpRequest` an HTTP/1.1 request would give, so
routing, middlewares, services, metrics and ``explain`` are shared.

Rules:
- SETTINGS: ``MAX_CONCURRENT_STREAMS`` from ``--entryPoints.<name>.http2.maxConcurrentStreams`` (250),
  ``HEADER_TABLE_SIZE`` from ``http2.maxDecoderHeaderTableSize`` (4096; ``maxEncoderHeaderTableSize``
  caps the table we encode with), ``MAX_HEADER_LIST_SIZE`` 1 MiB (HTTP/1.1's header limit),
  ``INITIAL_WINDOW_SIZE`` 1 MiB, connection window 1 MiB, no server push.
- Protocol errors end the connection with ``h2``'s error code in a GOAWAY: a bad preface or an invalid
  frame ``PROTOCOL_ERROR``, an oversized frame ``FRAME_SIZE_ERROR``, a header list over the limit
  ``ENHANCE_YOUR_CALM`` (HPACK's decoder stops at the limit), more than 64 CONTINUATION frames in one header block ``PROTOCOL_ERROR``, bad
  SETTINGS values ``PROTOCOL_ERROR``/``FLOW_CONTROL_ERROR``.
- A stream beyond ``MAX_CONCURRENT_STREAMS`` is refused alone, as Go does (``H2ServerSession``): RST_STREAM
  ``REFUSED_STREAM`` before the client acknowledged our SETTINGS, ``PROTOCOL_ERROR`` after.
- Frames that make the server work without a request to show for it (a client RST_STREAM on a stream
  still being served: "rapid reset"; a stream refused for the limit; SETTINGS; PRIORITY; empty DATA; unknown frames; PING at a tenth,
  as gRPC clients ping to probe bandwidth) spend a budget of 1,000 that refills at 100 per second;
  when it runs out the connection gets GOAWAY ``ENHANCE_YOUR_CALM`` and is closed. Other connections
  are never affected.
- Memory per connection is bounded: one header block (at most 64 frames of 16 KiB), one flow-control
  window of request body (1 MiB: credit goes back once the body left for the upstream), per stream
  about ``HIGH_WATER`` of response waiting for the client's window (then the upstream is paused), and
  nothing more while the socket's send buffer is full (the connection stops reading: a client that
  sends PINGs or SETTINGS but reads nothing stalls itself).
- ``transport.respondingTimeouts`` apply per stream (``h2timeouts``): ``readTimeout`` bounds a request
  from its HEADERS to the end of its body, ``writeTimeout`` its answer from the HEADERS to the last
  byte written, ``idleTimeout`` counts from when the last stream closed (PINGs are no activity).
- Graceful GOAWAY (``goaway()``: shutdown, idle timeout, a TLS configuration that changed under the
  connection): the last stream id is the highest one seen; streams opened after it are refused
  (``REFUSED_STREAM``, safe for the client to retry); the connection closes once its open streams end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    UnknownFrameReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

from ..http.reply import text_error
from .exchange import Exchange
from .h2conn import H2ServerSession, Header, Outbox, goaway_bytes, h2_config, misplaced_block
from .h2exchange import H2Exchange
from .h2heads import request_from_h2

if TYPE_CHECKING:
    from ..routing.compile import Compiled
    from ..routing.table import EntryTable
    from .state import ProxyState
    from .upstream import UpstreamConnection

__all__ = ["H2ClientConnection", "MAX_HEADER_LIST", "WINDOW", "BUDGET", "REFILL", "LINGER"]

MAX_HEADER_LIST = 1 << 20
WINDOW = 1 << 20
BUDGET = 1000.0
REFILL = 100.0  # budget per second
LINGER = 1.0  # seconds a closed connection keeps reading (and dropping) before the socket closes


class H2ClientConnection(asyncio.Protocol):
    __slots__ = ("state", "entrypoint", "tls", "trusted", "transport", "conn", "outbox", "streams", "closed",
                 "peer", "peer_port", "local_port", "sni", "compiled", "table", "last_active", "budget",
                 "budget_at", "goaway_at", "flush_handle", "paused_streams", "encoder_table", "tls_key", "tls_info",
                 "write_timeout", "answered")

    def __init__(self, state: ProxyState, entrypoint: str, tls: bool) -> None:
        self.state = state
        self.entrypoint = entrypoint
        self.tls = tls
        self.trusted = False
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by take_over
        ep = state.static.entrypoints[entrypoint]
        config = h2_config(False)
        conn = self.conn = H2ServerSession(config)
        conn.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: ep.h2_max_streams, SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            SettingCodes.INITIAL_WINDOW_SIZE: WINDOW, SettingCodes.HEADER_TABLE_SIZE: ep.h2_decoder_table,
            SettingCodes.ENABLE_PUSH: 0})
        conn.decoder.max_header_list_size = MAX_HEADER_LIST
        conn.decoder.max_allowed_table_size = ep.h2_decoder_table
        self.encoder_table = ep.h2_encoder_table
        self.outbox = Outbox(conn)
        self.streams: dict[int, H2Exchange] = {}
        self.closed = False
        self.peer = ""
        self.peer_port = 0
        self.local_port = 0
        self.sni = ""
        self.compiled: Compiled | None = None  # the snapshot ``table`` was taken from
        self.table: EntryTable | None = None
        self.last_active = state.now
        self.budget = BUDGET
        self.budget_at = state.loop.time()
        self.goaway_at = 0  # last stream id of a graceful GOAWAY sent (0: none)
        self.flush_handle: asyncio.Handle | None = None
        self.paused_streams: set[H2Exchange] = set()
        self.tls_key: object = None  # the certificate and options of the handshake (ProxyState.tls_changed)
        self.tls_info: tuple[str, str] | None = None  # (TLS version, Go cipher name) for TLS metrics
        self.write_timeout = ep.write_timeout
        self.answered: dict[int, float] = {}  # with a writeTimeout: sid -> opened, of answers still queued

    # ------------------------------------------------------------------ start
    def take_over(self, transport: asyncio.Transport, peer: str, peer_port: int, local_port: int, sni: str,
                  trusted: bool, data: bytes, tls_info: tuple[str, str] | None = None) -> None:
        """Start on a connection the HTTP/1.1 protocol accepted; ``data``: bytes already read (the preface)."""
        self.transport = transport
        self.tls_info = tls_info
        self.peer, self.peer_port, self.local_port, self.sni, self.trusted = peer, peer_port, local_port, sni, trusted
        self.state.h2_clients.add(self)
        if self.tls:
            self.tls_key = self.state.tls_store.choice(sni)
        conn = self.conn
        conn.initiate_connection()
        conn.increment_flow_control_window(WINDOW - 65535)
        self.write_out()
        if data:
            self.data_received(data)

    # ------------------------------------------------------------------ asyncio callbacks
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.conn.receive_data(data)
        except ProtocolError as err:
            # h2 queued a GOAWAY with the error's code, except for a bad preface (nothing to answer yet)
            out = self.conn.data_to_send()
            self.transport.write(out or goaway_bytes(0, int(err.error_code or ErrorCodes.PROTOCOL_ERROR)))
            self.close_now()
            return
        if self.conn.refused:
            refused, self.conn.refused = self.conn.refused, 0
            if self.spend(float(refused)):
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
        self.outbox.queued.clear()
        self.state.h2_clients.discard(self)
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        streams = list(self.streams.values())
        self.streams.clear()
        for ex in streams:
            ex.abort()
        self.paused_streams.clear()

    def pause_writing(self) -> None:
        # the client does not read: queue DATA instead of sending, and stop reading what it sends
        self.outbox.paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.outbox.paused = False
        if not self.closed:
            self.transport.resume_reading()
            self.flush_outbox()
            self.write_out()

    # ------------------------------------------------------------------ events
    def on_request(self, ev: RequestReceived) -> None:
        sid = ev.stream_id
        if self.goaway_at and sid > self.goaway_at:
            self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        fields = ev.headers
        if misplaced_block(fields, True):
            self.protocol_error()
            return
        req, grpc, length = request_from_h2(fields, self.peer, self.tls, self.trusted, self.entrypoint,
                                            self.local_port)
        req.peer_port = self.peer_port
        req.sni = self.sni
        ended = ev.stream_ended is not None
        if not ended:
            if length >= 0:
                req.body_mode, req.content_length = "length", length
            else:
                req.body_mode = "chunked"
        ex = H2Exchange(self, sid, req, grpc)
        ex.req_done = ended  # a request without body is complete with its head
        self.streams[sid] = ex
        if length == -2 or req.method == "CONNECT":
            ex.reply(text_error(400 if length == -2 else 405), 0)
            return
        ex.start()

    def on_trailers(self, ev: TrailersReceived) -> None:
        # a request's trailers are not forwarded; only their form is checked
        if misplaced_block(ev.headers, False):
            self.protocol_error()

    def on_data(self, ev: DataReceived) -> None:
        sid = ev.stream_id
        n = ev.flow_controlled_length
        ex = self.streams.get(sid)
        if ex is None:  # answered already: what is left of the body is dropped
            if n:
                self.ack(sid, n)
            return
        if not ev.data and ev.stream_ended is None and self.spend(1.0):
            return
        if ev.data or n:
            ex.body_data(ev.data, n, ev.stream_ended is not None)
        if ev.stream_ended is not None and not ex.req_done:
            ex.request_complete()

    def on_stream_ended(self, ev: StreamEnded) -> None:
        ex = self.streams.get(ev.stream_id)
        if ex is not None and not ex.req_done:
            ex.request_complete()

    def on_reset(self, ev: StreamReset) -> None:
        sid = ev.stream_id
        self.outbox.drop(sid)
        ex = self.streams.pop(sid, None)
        if ex is None:
            return
        if not self.streams:
            self.last_active = self.state.now
        self.paused_streams.discard(ex)
        active = not ex.finished
        ex.abort()
        if active and ev.remote_reset:
            self.spend(1.0)  # rapid reset: a stream cancelled while the server works on it

    def on_window(self, ev: WindowUpdated | RemoteSettingsChanged) -> None:
        if isinstance(ev, RemoteSettingsChanged):
            if self.spend(1.0):
                return
            table = ev.changed_settings.get(SettingCodes.HEADER_TABLE_SIZE)
            if table is not None and table.new_value > self.encoder_table:
                self.conn.encoder.header_table_size = self.encoder_table
        self.flush_outbox()

    def on_abuse(self, ev: Event) -> None:
        if isinstance(ev, PriorityUpdated) and ev.stream_id in self.streams:
            return  # priority that came with a request's HEADERS
        # gRPC clients PING to measure bandwidth and keep connections alive: a PING costs a tenth
        self.spend(0.1 if isinstance(ev, PingReceived) else 1.0)

    def on_goaway(self, ev: ConnectionTerminated) -> None:
        if ev.error_code:
            self.close_now()
            return
        # the client will open no more streams: close once the open ones are answered
        self.goaway_at = self.goaway_at or self.conn.highest_inbound_stream_id
        if not self.streams and not self.outbox.queued:
            self.close_after_flush()

    # ------------------------------------------------------------------ what exchanges call
    def send_head(self, sid: int, fields: list[Header], end: bool) -> None:
        try:
            self.conn.send_headers(sid, fields, end_stream=end)
        except ProtocolError:  # the stream was reset meanwhile
            pass
        self.flush_soon()

    def send_body(self, sid: int, data: bytes, end: bool) -> int:
        """Queue DATA; the bytes still waiting for the client's window on this stream."""
        backlog = self.outbox.data(sid, data, end)
        self.flush_soon()
        return backlog

    def end_stream(self, sid: int, trailers: list[Header] | None) -> None:
        self.outbox.end(sid, trailers)
        self.flush_soon()

    def reset(self, sid: int, code: ErrorCodes) -> None:
        self.outbox.drop(sid)
        try:
            self.conn.reset_stream(sid, code)
        except ProtocolError:
            pass
        self.flush_soon()

    def ack(self, sid: int, n: int) -> None:
        """Give the client back ``n`` bytes of window (h2 sends WINDOW_UPDATE when it is worth it)."""
        if not self.closed:
            self.conn.acknowledge_received_data(n, sid)
            self.flush_soon()

    def exchange_done(self, ex: Exchange) -> None:
        if not isinstance(ex, H2Exchange):
            return
        if self.streams.get(ex.sid) is ex:
            del self.streams[ex.sid]
            if not self.streams:
                self.last_active = self.state.now
            if self.write_timeout and ex.sid in self.outbox.queued:
                self.answered[ex.sid] = ex.opened
        if ex.unacked:
            self.ack(ex.sid, ex.unacked)
            ex.unacked = 0
        ex.release()
        if self.goaway_at and not self.streams and not self.outbox.queued:
            self.close_after_flush()

    def start_tunnel(self, up: UpstreamConnection) -> None:
        raise AssertionError("an HTTP/2 connection carries no tunnel")  # H2Exchange.start_tunnel never calls it

    # ------------------------------------------------------------------ output
    def flush_soon(self) -> None:
        if self.flush_handle is None and not self.closed:
            self.flush_handle = self.state.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_handle = None
        self.write_out()

    def write_out(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def flush_outbox(self) -> None:
        for sid in self.outbox.flush():
            ex = self.streams.get(sid)
            if ex is None:
                ex = next((p for p in self.paused_streams if p.sid == sid), None)
            if ex is not None and ex.reading_paused:
                self.paused_streams.discard(ex)
                ex.resume_reading()
        if not self.streams and not self.outbox.queued:
            self.last_active = self.state.now
            if self.goaway_at:
                self.close_after_flush()
        self.flush_soon()

    def exchange_gone(self) -> None:
        """An answer still queued was reset (``writeTimeout``): close now if a GOAWAY waits for it."""
        if self.goaway_at and not self.streams and not self.outbox.queued:
            self.close_after_flush()

    # ------------------------------------------------------------------ limits and ends
    def spend(self, cost: float) -> bool:
        """Charge the abuse budget; True when it ran out (the connection is then being closed)."""
        now = self.state.loop.time()
        self.budget = min(BUDGET, self.budget + (now - self.budget_at) * REFILL) - cost
        self.budget_at = now
        if self.budget >= 0:
            return False
        self.conn.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self.fail()
        return True

    def protocol_error(self) -> None:
        """A header block h2 leaves to us to reject (``misplaced_block``): GOAWAY ``PROTOCOL_ERROR``."""
        self.conn.close_connection(ErrorCodes.PROTOCOL_ERROR)
        self.fail()

    def fail(self) -> None:
        """A connection error: send what h2 queued (its GOAWAY) and close."""
        data = self.conn.data_to_send()
        if data:
            self.transport.write(data)
        self.close_now()

    def close_now(self) -> None:
        """Stop serving; the socket closes after ``LINGER`` seconds in which what the client still sends
        is read and dropped (closing on unread input would reset the connection, and the client could
        lose the GOAWAY that says why)."""
        if self.closed:
            return
        self.closed = True
        self.state.h2_clients.discard(self)
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        self.state.loop.call_later(LINGER, self.transport.close)
        streams = list(self.streams.values())
        self.streams.clear()
        for ex in streams:
            ex.abort()
        self.paused_streams.clear()

    def close_after_flush(self) -> None:
        if not self.closed:
            self.write_out()
            self.close_now()

    def goaway(self, debug: bytes = b"") -> None:
        """Graceful GOAWAY: finish the open streams, refuse newer ones, then close."""
        if self.closed or self.goaway_at:
            return
        self.goaway_at = max(self.conn.highest_inbound_stream_id, 1)
        self.write_out()
        self.transport.write(goaway_bytes(self.conn.highest_inbound_stream_id, 0, debug))
        if not self.streams and not self.outbox.queued:
            self.close_now()

    def idle(self, now: float, limit: float) -> bool:
        """Close (GOAWAY first) when no stream has been open for ``limit`` seconds (Go's http2 server:
        frames without a stream, PINGs included, do not count)."""
        if self.streams or self.outbox.queued or now - self.last_active <= limit:
            return False
        self.goaway()
        return True



_HANDLERS: dict[type[Event], Callable[[H2ClientConnection, Event], None]] = {
    RequestReceived: H2ClientConnection.on_request,  # type: ignore[dict-item]
    DataReceived: H2ClientConnection.on_data,  # type: ignore[dict-item]
    StreamEnded: H2ClientConnection.on_stream_ended,  # type: ignore[dict-item]
    TrailersReceived: H2ClientConnection.on_trailers,  # type: ignore[dict-item]
    StreamReset: H2ClientConnection.on_reset,  # type: ignore[dict-item]
    WindowUpdated: H2ClientConnection.on_window,  # type: ignore[dict-item]
    RemoteSettingsChanged: H2ClientConnection.on_window,  # type: ignore[dict-item]
    PingReceived: H2ClientConnection.on_abuse,
    PriorityUpdated: H2ClientConnection.on_abuse,
    UnknownFrameReceived: H2ClientConnection.on_abuse,
    ConnectionTerminated: H2ClientConnection.on_goaway,  # type: ignore[dict-item]
}
"""What each h2 event does on a client connection; the others (SETTINGS ACK, PING ACK) need nothing."""
