"""One HTTP/2 stream's exchange: the general :class:`Exchange` with an HTTP/2 response side.

Routing, middlewares, services, retries and the upstream side (HTTP/1.1 or HTTP/2) are the general
exchange's; what differs is how the answer reaches the client:

- the head is a HEADERS frame (``h2heads.response_fields``), the body DATA frames sent as the client's
  flow-control windows allow (``Outbox``), trailers a last HEADERS frame;
- the upstream is read only while the stream's queue is under ``HIGH_WATER`` (HTTP/1.1: its socket is
  paused; HTTP/2: its stream's window is not given back);
- the request body's flow-control credit goes back to the client once the body left for the upstream
  (or is being buffered whole), so one stream's slow upstream holds at most one window of the client;
- an upstream failure after the head went out resets the stream (``INTERNAL_ERROR``); the rest of a
  request body that is still coming after the answer ended is acknowledged and dropped;
- gRPC (``grpc.py``): the proxy's own errors become gRPC statuses, and ``grpc-timeout`` is enforced.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

from ..http.reply import Reply
from ..http.request import HttpRequest
from .exchange import PROXY_ERRORS, Exchange
from .grpc import DEADLINE_EXCEEDED, grpc_code_for, grpc_reply, grpc_timeout, grpc_trailers
from .h2conn import HIGH_WATER
from .h2heads import relayed_fields, response_fields, trailer_fields
from .upstream import UpstreamConnection

if TYPE_CHECKING:
    from .h2server import H2ClientConnection
    from .h2upstream import H2UpstreamStream

__all__ = ["H2Exchange"]

_NO_BODY_STATUS = frozenset((204, 304))


class H2Exchange(Exchange):
    __slots__ = ("h2", "sid", "grpc", "unacked", "ended", "deadline", "reading_paused", "left", "opened")

    full_response = True

    def __init__(self, conn: H2ClientConnection, sid: int, req: HttpRequest, grpc: bool) -> None:
        super().__init__(conn, req)
        self.h2 = conn
        self.sid = sid
        self.grpc = grpc
        self.unacked = 0  # request body bytes whose flow-control credit the client has not got back
        self.ended = False  # our side of the stream is closed (END_STREAM or RST_STREAM sent)
        self.reading_paused = False  # the upstream is paused because the client reads slowly
        self.left = -1  # body bytes still to come when the answer has a Content-Length
        self.deadline: asyncio.TimerHandle | None = None
        self.opened = conn.state.now  # when the HEADERS came, for the entry point's read/write timeouts
        if grpc:
            timeout = grpc_timeout(req.header("grpc-timeout"))
            if timeout is not None:
                self.deadline = conn.state.loop.call_later(timeout, self.deadline_passed)

    # ------------------------------------------------------------------ request side
    def body_data(self, data: bytes, flow_length: int, last: bool) -> None:
        self.unacked += flow_length
        self.body_chunk(data, last)
        self.give_credit()

    def give_credit(self) -> None:
        """Hand the client back the window of the body bytes that left (or need not wait)."""
        if not self.unacked:
            return
        h2up = self.h2up
        if (self.up is not None or self.finished or self.wait_body or self.route.needs_body
                or (h2up is not None and h2up.backlog() < HIGH_WATER)):
            self.h2.ack(self.sid, self.unacked)
            self.unacked = 0

    def send(self, up: UpstreamConnection) -> None:
        super().send(up)
        self.give_credit()

    def send_h2(self, stream: H2UpstreamStream) -> None:
        super().send_h2(stream)
        self.give_credit()

    def hold_request_body(self) -> None:
        """Nothing to pause: the stream's credit stays with us until the upstream takes the body."""

    def request_drained(self) -> None:
        """The HTTP/2 upstream sent the queued body: the client may send more."""
        self.give_credit()

    # ------------------------------------------------------------------ response side
    def fail(self, status: int, upto: int) -> None:
        if self.grpc:
            self.reply(grpc_reply(*grpc_code_for(status)), upto)
        else:
            self.reply(PROXY_ERRORS[status], upto)

    def write_reply(self, reply: Reply) -> None:
        trailers_only = self.grpc and reply.header("grpc-status") != ""
        body = reply.body if not self.head_request else b""
        fields = response_fields(reply.status, reply.headers, None if trailers_only else len(reply.body))
        self.h2.send_head(self.sid, fields, not body)
        if body:
            self.h2.send_body(self.sid, body, True)
        if self.counting:
            self.resp_headers = list(reply.headers)
            self.resp_bytes = len(body)
        self.ended = True
        self.finish(True)

    def response_interim(self, status: int) -> None:
        if not self.ended:
            self.h2.send_head(self.sid, [(b":status", b"%d" % status)], False)

    def response_head(self, status: int, headers: list[tuple[str, str]], close_delimited: bool,
                      ends: bool = False) -> None:
        req = self.req
        self.upstream_status = status
        self.time_first_byte()
        if req.failover is not None and self.to_fallback(status):
            return
        if self.log:
            self.origin_status = status
            self.origin_headers = list(headers)
        for mw in reversed(self.route.middlewares):
            if mw.needs_response:
                status = mw.on_response(req, status, headers)
        if self.intercept is not None or self.ended:
            return
        self.status = status
        self.resp_started = True
        extra = [("set-cookie", self.cookie)] if self.cookie else None
        # a Trailers-Only gRPC answer must stay one HEADERS frame that ends the stream
        end = self.head_request or status in _NO_BODY_STATUS or (ends and self.on_trailers is None
                                                                   and self.encoder is None)
        self.framing = "h2"
        fields, length = relayed_fields(status, headers, extra, self.encoder is None and self.on_trailers is None)
        self.h2.send_head(self.sid, fields, end)
        if self.log:
            self.resp_headers = headers + extra if extra else list(headers)
        if end:
            self.ended = True
        elif length is not None and self.h2up is None:
            # an HTTP/1.1 answer with a length has no trailers: its last body bytes carry END_STREAM
            self.left = length

    def response_body(self, data: bytes) -> None:
        if self.log:
            self.origin_size += len(data)
        if self.intercept is not None or self.ended or not data:
            return
        if self.encoder is not None:
            data = self.encoder.compress(data)
            if not data:
                return
        if self.counting:
            self.resp_bytes += len(data)
        end = False
        if self.left >= 0:
            self.left -= len(data)
            end = self.ended = self.left <= 0
        if self.h2.send_body(self.sid, data, end) > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.h2.paused_streams.add(self)
            up = self.up
            if up is not None:
                up.transport.pause_reading()
            elif self.h2up is not None:
                self.h2up.pause()

    def resume_reading(self) -> None:
        """The client took the stream's queue under LOW_WATER: read the upstream again."""
        if self.reading_paused:
            self.reading_paused = False
            up = self.up
            if up is not None and not up.closed:
                up.transport.resume_reading()
            elif self.h2up is not None:
                self.h2up.resume()

    def response_complete(self, keep_client: bool) -> None:
        if self.counting and self.sent_at:
            self.origin_duration = self.client.state.loop.time() - self.sent_at
        if self.intercept is not None:
            self.client.state.spawn(self.intercept())
            return
        if self.on_trailers is not None:
            self.response_body(self.on_trailers(self.trailers or []))
        if self.encoder is not None:
            tail = self.encoder.flush(zlib.Z_FINISH) if hasattr(self.encoder, "flush") else b""
            if tail and not self.ended:
                self.h2.send_body(self.sid, tail, False)
                if self.counting:
                    self.resp_bytes += len(tail)
        if not self.ended:
            trailers = self.trailers if self.on_trailers is None else None
            self.h2.end_stream(self.sid, trailer_fields(trailers) if trailers else None)
            self.ended = True
        self.finish(True)

    def start_tunnel(self, up: UpstreamConnection) -> None:
        # an HTTP/2 request never asks for an Upgrade: a 101 from the backend is not an answer to it
        up.exchange = None
        up.close()
        self.upstream_failed(None, "invalid response")

    def deadline_passed(self) -> None:
        """``grpc-timeout`` ran out: cancel the upstream, answer DEADLINE_EXCEEDED."""
        self.deadline = None
        if self.finished:
            return
        self.drop_upstream()
        if not self.resp_started:
            self.reply(grpc_reply(DEADLINE_EXCEEDED, "Deadline Exceeded"), len(self.route.middlewares))
            return
        if not self.ended:
            self.h2.end_stream(self.sid, trailer_fields(grpc_trailers(DEADLINE_EXCEEDED, "Deadline Exceeded")))
            self.ended = True
        self.status = self.status or 504
        self.finish(True)

    def timed_out(self, reading: bool) -> None:
        """The entry point's ``readTimeout`` (``reading``: the body did not end in time) or ``writeTimeout``
        ran out (``h2timeouts``): drop the upstream; 504 when nothing was answered yet and it was the read,
        else reset the stream (Go's http2 server resets it with INTERNAL_ERROR)."""
        if self.finished:
            return
        self.drop_upstream()
        if reading and not self.resp_started:
            self.upstream_failed(None, "timeout")
            return
        self.status = self.status or 504
        self.finish(False)

    def drop_upstream(self) -> None:
        up = self.up
        if up is not None:
            self.up = None
            up.exchange = None
            up.close()
        h2up = self.h2up
        if h2up is not None:
            self.h2up = None
            h2up.cancel()

    # ------------------------------------------------------------------ end
    def finish(self, keep: bool, tunnel: bool = False) -> None:
        if self.finished:
            return
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if not keep and not self.ended:
            self.h2.reset(self.sid, ErrorCodes.INTERNAL_ERROR)
            self.ended = True
        if self.reading_paused:  # the upstream connection may go back to its pool: it must read again
            self.reading_paused = False
            self.h2.paused_streams.discard(self)
            up = self.up
            if up is not None and not up.closed:
                up.transport.resume_reading()
        super().finish(True)
        if not self.req_done:
            # answered before the request body ended: what still comes of it is acknowledged and dropped
            self.h2.exchange_done(self)

    def abort(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.ended = True
        super().abort()

    def release(self) -> bool:
        self.req.exchange = None
        return True
