"""One request/response exchange: route, middlewares, service, upstream, response (spec §2, §5, §6).

Rules:
- The route is looked up when the request head is complete; request middlewares run in router order
  (first listed = outermost); a Reply from a middleware goes back through the response hooks of the
  middlewares listed before it.
- The request body streams to the upstream as it arrives (re-chunked for an HTTP/1.1 upstream when
  the client sent chunked or HTTP/2 without a length), unless a middleware needs the whole body
  (buffering) first. Chunks are kept unframed; framing happens on the way out.
- The upstream speaks HTTP/2 when its target does (``h2c``, or ``https`` whose server chose ``h2`` by
  ALPN; never for an Upgrade, as Traefik's smart round tripper): ``forward`` picks the h2 pool
  (``h2upstream.py``) or a pooled HTTP/1.1 connection. An HTTP/2 upstream's trailers end a chunked
  answer to an HTTP/1.1 client.
- Upstream failures before any response byte reached the client are retried once on a fresh
  connection when the failed one came from the idle pool (stale keep-alive) or an HTTP/2 server
  refused the stream, and the body is still known, then as many times as a ``retry`` middleware
  allows; otherwise 502 (504 on timeout).
- The proxy's own errors (no router 404, no server 503, upstream 502/504) go through ``fail`` so an
  HTTP/2 exchange can answer them as gRPC statuses (``h2exchange.py``).
- Child services with middlewares (a ``layered`` service, routing/services.py): ``walk`` takes the
  request down the service tree one child at a time; on reaching a child with middlewares the exchange
  goes on with the route into it (``Route.into``: its middlewares after the route's) and runs them like
  any route's, so they may answer (their ``upto`` covers the router's), see the answer inside the
  router's, and buffer or wait as at router level; then ``dispatch`` walks on from that child. A
  service without such children is picked at once, as before. A failover's fallback gets the request
  as it came to the failover, through the fallback's own middlewares; the main's are done with first.
  A retry picks again within the service the walk reached, whose middlewares ran for this request.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Protocol, cast

from ..http.reply import NO_SERVER, NOT_FOUND, Reply, text_error
from ..http.request import BodyEncoder, HttpRequest, SavedRequest
from ..middlewares.base import MiddlewareHandler
from ..routing.compile import Compiled
from ..routing.services import CompiledService, FailoverService, Parent, Target
from ..routing.table import UNROUTED, EntryTable, Route
from .exchange_log import log_exchange
from .h2conn import HIGH_WATER
from .heads import response_head, trailer_block, upstream_head
from .upstream import Pool, UpstreamConnection, dial

if TYPE_CHECKING:
    from .h2upstream import H2UpstreamStream
    from .state import ProxyState

__all__ = ["Exchange", "ExchangeClient", "end_aborted", "PROXY_ERRORS"]

_KEEP_BODY = 64 * 1024
_NO_BODY_STATUS = frozenset((204, 304))
_BODY_TOO_LARGE = text_error(413, "Request body too large")  # beyond a failover's errors.maxRequestBodyBytes
PROXY_ERRORS = {404: NOT_FOUND, 503: NO_SERVER, 502: text_error(502), 504: text_error(504), 500: text_error(500)}
"""The answers the proxy gives itself, by status (``Exchange.fail``)."""


class ExchangeClient(Protocol):
    """The client side of an exchange: an HTTP/1.1 connection (client.py) or an HTTP/2 connection whose
    streams are exchanges (h2server.py)."""

    state: ProxyState
    entrypoint: str
    tls: bool
    trusted: bool
    closed: bool
    compiled: Compiled | None  # the snapshot ``table`` was taken from
    table: EntryTable | None
    peer: str
    peer_port: int
    tls_info: tuple[str, str] | None  # (TLS version, Go cipher name) for TLS metrics

    @property
    def transport(self) -> asyncio.Transport: ...

    def exchange_done(self, ex: Exchange) -> None: ...

    def start_tunnel(self, up: UpstreamConnection) -> None: ...


class _Abortable(Protocol):
    status: int
    finished: bool
    up: UpstreamConnection | None


def end_aborted(ex: _Abortable) -> bool:
    """The client went away: close the exchange's upstream connection and end it as 499 (True), unless
    it had ended already (False)."""
    if ex.finished:
        return False
    up = ex.up
    if up is not None:
        ex.up = None
        up.exchange = None
        up.close()
    ex.status = ex.status or 499
    ex.finished = True
    return True


class Exchange:
    __slots__ = ("client", "req", "route", "up", "pending", "kept", "kept_size", "req_done", "resp_started",
                 "head_request", "status", "t0", "cookie", "upstream_reusable", "tries", "framing", "finished",
                 "service_name", "wait_body", "encoder", "target", "retry_left", "retry_delay", "intercept",
                 "h2up", "trailers", "on_trailers", "decoder",
                 "log", "uri0", "req_bytes", "resp_bytes", "origin_status", "origin_size", "origin_duration",
                 "origin_headers", "resp_headers", "retries", "sent_at", "counting", "counted",
                 "upstream_status", "body_waiter", "fallback_at")

    target: Target  # set by dispatch, before anything is sent
    full_response = False  # HTTP/2 exchanges re-frame every answer: never relayed raw

    def __init__(self, client: ExchangeClient, req: HttpRequest) -> None:
        self.client = client
        self.req = req
        req.exchange = self
        self.route: Route = UNROUTED
        self.up: UpstreamConnection | None = None
        self.h2up: H2UpstreamStream | None = None  # the stream when the upstream speaks HTTP/2
        self.pending: list[bytes] = []  # body chunks not yet written upstream
        self.kept: list[bytes] | None = []  # body chunks, kept for a retry while small
        self.kept_size = 0
        self.req_done = False
        self.resp_started = False
        self.head_request = req.method == "HEAD"
        self.status = 0
        self.t0 = client.state.loop.time()
        self.cookie: str | None = None
        self.upstream_reusable = True
        self.tries = 0
        self.framing = ""
        self.finished = False
        self.service_name = ""
        self.wait_body = False
        self.encoder: BodyEncoder | None = None
        self.retry_left = 0
        self.retry_delay = 0.0
        self.intercept: Callable[[], Coroutine[object, object, None]] | None = None
        self.trailers: list[tuple[str, str]] | None = None  # an HTTP/2 upstream's trailers
        self.on_trailers: Callable[[list[tuple[str, str]]], bytes] | None = None
        self.decoder: Callable[[bytes], bytes] | None = None
        # access log (proxy/exchange_log.py): kept only while a writer is installed; sizes also for metrics
        state = client.state
        self.log = state.access_log is not None
        self.counting = state.observing
        self.uri0 = req.request_uri if self.log else ""
        self.req_bytes = self.resp_bytes = self.origin_status = self.origin_size = self.retries = 0
        self.origin_duration = self.sent_at = 0.0
        self.origin_headers: list[tuple[str, str]] = []
        self.resp_headers: list[tuple[str, str]] = []
        self.counted: Target | None = None  # the server this exchange counts as in flight on (p2c)
        self.upstream_status = 0  # the server's own status, before response middlewares (passive checks)
        self.body_waiter: tuple[asyncio.Future[bytes | None], int] | None = None  # whole_request_body
        # a walk took a failover's main service: the failover, the route at its level, the request and the
        # sticky cookie then
        self.fallback_at: tuple[FailoverService, Route, SavedRequest, str | None] | None = None

    # ------------------------------------------------------------------ request side
    def start(self) -> None:
        client = self.client
        compiled = client.state.compiled
        if client.compiled is not compiled:  # a reload: look up this connection's table once per snapshot
            client.compiled = compiled
            client.table = compiled.table.tables.get((client.entrypoint, client.tls))
        table = client.table
        route = table.lookup(self.req) if table is not None else None
        if route is None:
            self.fail(404, 0)
            return
        self.route = route
        self.service_name = route.service.name
        if route.middlewares:
            self.run_middlewares(0)
        else:
            self.dispatch()

    def run_middlewares(self, index: int) -> None:
        mws = self.route.middlewares
        req = self.req
        for i in range(index, len(mws)):
            mw = mws[i]
            if mw.is_async:
                self.client.state.spawn(self._async_middleware(mw, i))
                return
            r = mw.on_request(req)
            if r is not None:
                self.reply(r, i)
                return
        self.dispatch()

    async def _async_middleware(self, mw: MiddlewareHandler, index: int) -> None:
        try:
            r = await mw.on_request_async(self.req)
        except Exception:  # noqa: BLE001 - a failing auth/limit call answers 500, never kills the worker
            r = PROXY_ERRORS[500]
        if self.finished or self.client.closed:
            return
        if r is not None:
            self.reply(r, index)
        else:
            self.run_middlewares(index + 1)

    def dispatch(self) -> None:
        route = self.route
        if route.children:
            self.to_child(route)
            return
        svc = route.service
        if svc.internal:
            reply = self.client.state.internal(svc.internal, self.req)
            if reply is not None:
                self.reply(reply, len(route.middlewares))
            return
        if svc.layered:
            found = self.walk(cast(Parent, svc))
            if found is None:
                return
            svc, route = found, self.route
        if route.needs_body and not self.req_done:
            self.wait_body = True
            return
        if self.req.retry is not None:
            self.retry_left, self.retry_delay = self.req.retry
        target, cookie = svc.pick(self.req)
        failover = self.req.failover
        if target is None:
            if failover is not None and failover.wants_fallback(503):  # a walk took a main without servers
                self.req.failover = None
                self.to_fallback_service(cast(FailoverService, failover))
                return
            self.fail(503, len(route.middlewares))
            return
        if failover is not None and 0 <= failover.max_body < self.kept_size:
            self.req.failover = None
            self.reply(_BODY_TOO_LARGE, len(route.middlewares))
            return
        self.target, self.cookie = target, cookie or self.cookie  # a walk may have set a parent's cookie
        if svc.mirrors:
            self.client.state.mirror(svc, self.req, self.kept if self.req_done else None)
        self.forward()

    def forward(self, fresh: bool = False) -> None:
        """Send the request to ``self.target``: on a stream when the target speaks HTTP/2, else on a pooled
        HTTP/1.1 connection (a new one when ``fresh``: a retry)."""
        target = self.target
        state = self.client.state
        counted = self.counted
        if counted is not target:
            if counted is not None:
                counted.inflight -= 1
            target.inflight += 1
            self.counted = target
        if target.scheme != "http" and not self.req.upgrade:
            h2 = state.h2_pool(target)
            if h2 is not None:
                h2.request(self)
                return
        pool = state.pools.get(target.key) or state.pool(target)
        up = None if fresh else pool.take()
        if up is not None:
            self.send(up)
        else:
            state.spawn(self._connect(pool))

    def walk(self, svc: Parent) -> CompiledService | None:
        """``svc`` has child services with middlewares below it: go down one child at a time (each level's
        mirrors get their copies, its sticky cookie is kept) on the route into that child. The service
        to pick from, once no middlewares are left below; None when the walk handed the exchange over:
        a child's middlewares run (and dispatch again) or the exchange was answered."""
        req = self.req
        route = self.route
        while True:
            if svc.mirrors:
                self.client.state.mirror(svc, req, self.kept if self.req_done else None)
            child, index, cookie = svc.step(req)
            if child is None:
                self.fail(503, len(route.middlewares))
                return None
            if cookie is not None:
                self.cookie = cookie
            if req.failover is svc:
                self.fallback_at = (svc, route, req.saved(), self.cookie)
            route = self.route = route.into(index, child)
            if child.middlewares:
                self.run_middlewares(len(route.middlewares) - len(child.middlewares))
                return None
            if not child.layered:
                return child
            svc = cast(Parent, child)

    def to_child(self, parent: Route) -> None:
        """Multi-layer routing: the parent's middlewares ran; the first child whose rule matches the
        request as they left it takes over (its middlewares follow the parent's)."""
        for child in parent.children:
            if child.rule.match(self.req):
                self.route = child
                self.service_name = child.service.name
                self.run_middlewares(len(parent.middlewares))
                return
        self.reply(NOT_FOUND, len(parent.middlewares))

    async def _connect(self, pool: Pool) -> None:
        up = await dial(self, pool)
        if up is not None:
            self.send(up)

    def send(self, up: UpstreamConnection) -> None:
        req = self.req
        route = self.route
        # access logs with headers need the answer's head parsed; sizes and status come from raw mode too
        timed = self.target.times is not None  # strategy leasttime: the head's arrival is timed
        raw = not (self.full_response or route.needs_response or self.cookie is not None or req.version == "1.0"
                   or (self.log and route.log_headers) or timed or req.failover is not None) or req.upgrade
        up.attach(self, raw)
        if self.log or timed:
            self.sent_at = self.client.state.loop.time()
        self.up = up
        self.tries += 1
        head = upstream_head(req, self.target, self.client.trusted, req.body_mode)
        body = self.kept if (self.tries > 1 and self.kept is not None) else self.pending
        if body:
            if req.body_mode == "chunked":
                head += b"".join([b"%x\r\n%s\r\n" % (len(d), d) for d in body if d])
            else:
                head += b"".join(body)
        self.pending = []
        if self.req_done and req.body_mode == "chunked":
            head += b"0\r\n\r\n"
        up.transport.write(head)

    def send_h2(self, stream: H2UpstreamStream) -> None:
        """The h2 pool opened a stream for this exchange: send the head and what there is of the body."""
        self.h2up = stream
        self.tries += 1
        if self.log or self.target.times is not None:
            self.sent_at = self.client.state.loop.time()
        body = self.kept if (self.tries > 1 and self.kept is not None) else self.pending
        self.pending = []
        stream.send_request(self.req, self.target, body, self.req_done)

    def body_chunk(self, data: bytes, last: bool = False) -> None:
        """A piece of the request body; ``last``: it ends the body (an HTTP/2 upstream then gets it with
        END_STREAM instead of an empty DATA frame after it)."""
        if self.finished:
            return
        if self.counting:
            self.req_bytes += len(data)
        if self.decoder is not None:
            data = self.decoder(data)
        if not data:  # an empty chunk would end a chunked body
            return
        if self.kept is not None:
            self.kept_size += len(data)
            if self.kept_size <= _KEEP_BODY or self.route.keep_body:
                self.kept.append(data)
            else:
                self.kept = None
        up = self.up
        if up is not None and not up.closed:
            up.transport.write(b"%x\r\n%s\r\n" % (len(data), data) if self.req.body_mode == "chunked" else data)
        elif self.h2up is not None:
            if self.h2up.send_body(data, last) > HIGH_WATER:
                self.hold_request_body()
        else:
            self.pending.append(data)
            if self.body_waiter is not None:
                self._body_arrived()

    def hold_request_body(self) -> None:
        """The HTTP/2 upstream's window is full: stop reading the client until ``request_drained``."""
        self.client.transport.pause_reading()

    def request_drained(self) -> None:
        self.client.transport.resume_reading()

    def decode_request_body(self, decoder: Callable[[bytes], bytes]) -> None:
        """Run the request body through ``decoder`` from here on (grpcWeb's base64); what arrived already
        (nothing has been sent upstream while middlewares run) is decoded now."""
        self.decoder = decoder
        self.pending = [decoder(d) for d in self.pending]
        if self.kept is not None:
            self.kept = [decoder(d) for d in self.kept]
            self.kept_size = sum(len(d) for d in self.kept)

    def whole_request_body(self, limit: int) -> asyncio.Future[bytes | None]:
        """The request body as a middleware reads it before the upstream is chosen (all of it is still in
        ``pending``); None past ``limit`` bytes or once the client has gone."""
        fut: asyncio.Future[bytes | None] = self.client.state.loop.create_future()
        self.body_waiter = (fut, limit)
        req = self.req
        if not self.req_done and req.header("expect").lower() == "100-continue":
            # the client waits for this before it sends the body (Go's server sends it as the body is read)
            req.del_header("expect")
            self.response_interim(100)
        self._body_arrived()
        return fut

    def _body_arrived(self) -> None:
        waiter = self.body_waiter
        if waiter is None:
            return
        fut, limit = waiter
        if 0 <= limit < sum(map(len, self.pending)) or self.finished:
            result = None
        elif self.req_done:
            result = b"".join(self.pending)
        else:
            return
        self.body_waiter = None
        if not fut.done():
            fut.set_result(result)

    def request_complete(self) -> None:
        self.req_done = True
        if self.body_waiter is not None:
            self._body_arrived()
        if self.finished:
            self.client.exchange_done(self)
            return
        up = self.up
        if up is not None and not up.closed and self.req.body_mode == "chunked":
            up.transport.write(b"0\r\n\r\n")
        elif self.h2up is not None:
            self.h2up.end_body()
        if self.wait_body:
            self.wait_body = False
            self.dispatch()

    # ------------------------------------------------------------------ response side
    def fail(self, status: int, upto: int) -> None:
        """The proxy's own error answer (404 no router, 503 no server, 502/504 upstream)."""
        self.reply(PROXY_ERRORS[status], upto)

    def reply(self, reply: Reply, upto: int) -> None:
        if self.finished or self.resp_started:
            return
        route = self.route
        if route.needs_response:
            status = reply.status
            headers = list(reply.headers)
            for mw in reversed(route.middlewares[:upto]):
                if mw.needs_response:
                    status = mw.on_response(self.req, status, headers)
            reply = Reply(status, headers, reply.body)
        self.status = reply.status
        self.resp_started = True
        self.write_reply(reply)

    def to_fallback(self, status: int) -> bool:
        """A failover with errors picked the server that answered ``status``: whether that answer is
        dropped (its body too) and the request goes to the fallback service once it has ended."""
        failover = self.req.failover
        self.req.failover = None
        if failover is None or not failover.wants_fallback(status):
            return False
        self.intercept = partial(self._fallback, cast(FailoverService, failover))
        return True

    async def _fallback(self, failover: FailoverService) -> None:
        self.intercept = None
        self.up = self.h2up = None
        self.trailers = None  # the main answer's, dropped with it
        if self.finished or self.client.closed:
            return
        self.to_fallback_service(failover)

    def to_fallback_service(self, failover: FailoverService) -> None:
        """Send the request to ``failover``'s fallback (the main answered one of its errors, or has no
        server); after a walk, as it came to the failover and through the fallback's middlewares."""
        above = self.fallback_at
        if above is None or above[0] is not failover:
            target, cookie = failover.fallback.pick(self.req) if failover.fallback_up else (None, None)
            if target is None:
                self.fail(503, len(self.route.middlewares))
                return
            self.target, self.cookie = target, cookie
            self.forward()
            return
        self.fallback_at = None
        _, route, saved, self.cookie = above
        req = self.req
        if self.route.needs_done:  # the main service's middlewares are done with
            for mw in self.route.middlewares[len(route.middlewares):]:
                if mw.needs_done:
                    mw.on_done(req)
        req.restore(saved)
        if not failover.fallback_up:
            self.route = route
            self.fail(503, len(route.middlewares))
            return
        self.route = route.into(1, failover.fallback)
        if failover.fallback.middlewares:
            self.run_middlewares(len(route.middlewares))
        else:
            self.dispatch()

    def time_first_byte(self) -> None:
        """Strategy leasttime: the time from sending the request to the answer's head, for its server."""
        counted = self.counted
        if counted is not None and counted.times is not None and self.sent_at:
            counted.times.add(self.client.state.loop.time() - self.sent_at)

    def write_reply(self, reply: Reply) -> None:
        """Send a whole answer of the proxy's own (or a middleware's) and end the exchange."""
        keep = self.req.keep_alive and not self.req.upgrade
        self.client.transport.write(reply.encode(keep, self.head_request))
        if self.counting:
            self.resp_headers = list(reply.headers)
            self.resp_bytes = 0 if self.head_request else len(reply.body)
        self.finish(keep)

    def response_head(self, status: int, headers: list[tuple[str, str]], close_delimited: bool,
                      ends: bool = False) -> None:
        """Full mode: the upstream head is parsed; apply hooks and write a re-framed head. ``ends``: the
        head is the whole answer (an HTTP/2 HEADERS frame that ended the stream; response_complete follows)."""
        req = self.req
        route = self.route
        self.upstream_status = status
        self.time_first_byte()
        if req.failover is not None and self.to_fallback(status):
            return
        if self.log:
            self.origin_status = status
            self.origin_headers = list(headers)
        for mw in reversed(route.middlewares):
            if mw.needs_response:
                status = mw.on_response(req, status, headers)
        if self.intercept is not None:
            return
        self.status = status
        length = -1
        for k, v in headers:
            if k.lower() == "content-length" and v.strip().isdigit():
                length = int(v)
        extra = [("Set-Cookie", self.cookie)] if self.cookie else None
        if self.encoder is not None or self.on_trailers is not None:
            length = -1
        if status < 200 or status in _NO_BODY_STATUS or self.head_request:
            framing = "none" if not self.head_request or length < 0 else "length"
        elif req.version == "1.0":
            framing = "close" if length < 0 else "length"
        else:
            framing = "length" if length >= 0 else "chunked"
        self.framing = framing
        self.resp_started = True
        keep = req.keep_alive and framing != "close"
        self.client.transport.write(response_head(status, headers, framing, max(length, 0), keep, extra))
        if self.log:
            self.resp_headers = headers + extra if extra else list(headers)

    def response_body(self, data: bytes) -> None:
        if self.log:
            self.origin_size += len(data)
        if self.intercept is not None or self.head_request:
            return
        if self.encoder is not None:
            data = self.encoder.compress(data)
            if not data:
                return
        if self.counting:
            self.resp_bytes += len(data)
        if self.framing == "chunked":
            self.client.transport.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.client.transport.write(data)

    def response_interim(self, status: int) -> None:
        """A 1xx answer other than 101 (100 Continue): passed on, the final answer follows."""
        self.client.transport.write(b"HTTP/1.1 %d Continue\r\n\r\n" % status if status == 100
                                    else b"HTTP/1.1 %d Informational\r\n\r\n" % status)

    def response_trailers(self, trailers: list[tuple[str, str]]) -> None:
        """Trailers of an HTTP/2 upstream's answer, written with the last chunk (or by ``on_trailers``)."""
        self.trailers = trailers

    def response_complete(self, keep_client: bool) -> None:
        if self.counting:
            up = self.up
            if not self.framing and up is not None:  # raw mode: the parser counted the body
                self.resp_bytes = self.origin_size = up.body_bytes
                self.origin_status = self.status
            if self.sent_at:
                self.origin_duration = self.client.state.loop.time() - self.sent_at
        if self.intercept is not None:
            self.client.state.spawn(self.intercept())
            return
        if self.on_trailers is not None and not self.head_request:
            self.response_body(self.on_trailers(self.trailers or []))
        if self.encoder is not None:
            tail = self.encoder.flush(zlib.Z_FINISH) if hasattr(self.encoder, "flush") else b""
            if tail and not self.head_request:
                self.client.transport.write(b"%x\r\n%s\r\n" % (len(tail), tail) if self.framing == "chunked" else tail)
                if self.counting:
                    self.resp_bytes += len(tail)
        if self.framing == "chunked":
            trailers = self.trailers
            self.client.transport.write(b"0\r\n" + trailer_block(trailers) + b"\r\n" if trailers and self.on_trailers is None
                                        else b"0\r\n\r\n")
        self.finish(keep_client and self.req.keep_alive and self.framing != "close")

    def replace_reply(self, reply: Reply, by: object) -> None:
        """A response middleware's answer instead of the upstream's (errors): the response hooks of the
        middlewares listed before ``by`` apply to it."""
        self.intercept = None
        if not self.client.closed:
            mws = self.route.middlewares
            self.reply(reply, mws.index(by) if by in mws else 0)

    @property
    def chosen(self) -> Target | None:
        """The server the request went to (none yet, or answered by the proxy)."""
        try:
            return self.target
        except AttributeError:
            return None

    def start_tunnel(self, up: UpstreamConnection) -> None:
        self.status = 101
        if self.log:
            self.origin_status = 101
        self.up = None
        up.exchange = None
        self.client.start_tunnel(up)
        self.finish(True, tunnel=True)

    def upstream_failed(self, up: UpstreamConnection | None, why: str) -> None:
        """The upstream connection (or, with ``up`` None, the dial or the HTTP/2 stream) failed; ``why`` is
        "timeout", "connect", "refused" (an HTTP/2 server did not process the stream: safe to resend)..."""
        if self.finished:
            return
        if up is not None and up is self.up:
            self.up = None
        self.h2up = None
        if self.resp_started:
            self.status = self.status or 502
            self.finish(False)
            return
        body_known = self.kept is not None and (self.req_done or self.req.body_mode == "")
        stale = self.tries == 1 and (why == "refused" or (up is not None and up.reused and not up.got_bytes))
        if body_known and why != "timeout" and (stale or self.retry_left > 0):
            delay = 0.0
            if not stale:
                self.retry_left -= 1
                self.retries += 1
                self.client.state.metrics.retried(self.service_name)
                delay = self.retry_delay
                self.retry_delay *= 2
                if self.target.passive is not None:  # this attempt failed: the retry goes elsewhere
                    self.target.passive.observe(self.target, 0)
                target, _ = self.route.service.pick(self.req)
                if target is not None:
                    self.target = target
            if delay > 0:
                self.client.state.loop.call_later(delay, self.forward, True)
            else:
                self.forward(True)
            return
        self.fail(504 if why == "timeout" else 502, len(self.route.middlewares))

    def release(self) -> bool:
        """Called once the client is done with this exchange: whether the connection stays open."""
        # request <-> exchange is a reference cycle: cut it so both are freed now, not by the cyclic GC
        self.req.exchange = None
        return self.req.keep_alive

    def abort(self) -> None:
        """The client went away: drop the upstream connection (or reset the HTTP/2 stream) and end the
        exchange as 499."""
        h2up = self.h2up
        if h2up is not None:
            self.h2up = None
            h2up.cancel()
        self._uncount()
        if end_aborted(self):
            self._body_arrived()
            route = self.route
            if route.needs_done:
                for mw in route.middlewares:
                    if mw.needs_done:
                        mw.on_done(self.req)
        self.req.exchange = None

    def _uncount(self) -> None:
        counted = self.counted
        if counted is not None:
            self.counted = None
            counted.inflight -= 1

    def finish(self, keep: bool, tunnel: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        counted = self.counted
        if counted is not None:
            self.counted = None
            counted.inflight -= 1
            if counted.passive is not None:
                counted.passive.observe(counted, self.upstream_status or self.status)
        route = self.route
        if route.needs_done:
            for mw in route.middlewares:
                if mw.needs_done:
                    mw.on_done(self.req)
        state = self.client.state
        if state.metrics.enabled and self.route.metrics:
            req = self.req
            state.metrics.observe(self.client.entrypoint, self.service_name, req.method, self.status, req.tls,
                                  state.loop.time() - self.t0, self.route.name, self.req_bytes, self.resp_bytes,
                                  self.client.tls_info, "websocket" if req.upgrade else "http")
        writer = state.access_log
        if writer is not None and self.log:
            log_exchange(writer, self, state.loop.time())
        if not keep or (self.req.upgrade and not tunnel):
            self.req.keep_alive = False
        if tunnel or self.req_done or not keep:
            self.client.exchange_done(self)
