"""One request/response exchange: route, middlewares, service, upstream, response (spec §2, §5, §6).

Rules:
- The route is looked up when the request head is complete; request middlewares run in router order
  (first listed = outermost); a Reply from a middleware goes back through the response hooks of the
  middlewares listed before it.
- The request body streams to the upstream as it arrives (re-chunked when the client sent chunked),
  unless a middleware needs the whole body (buffering) first.
- Upstream failures before any response byte reached the client are retried once on a fresh
  connection when the failed one came from the idle pool (stale keep-alive) and the body is still
  known, then as many times as a ``retry`` middleware allows; otherwise 502 (504 on timeout).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Protocol

from ..http.reply import NO_SERVER, NOT_FOUND, Reply, text_error
from ..http.request import BodyEncoder, HttpRequest
from ..middlewares.base import MiddlewareHandler
from ..routing.services import Target
from ..routing.table import UNROUTED, Route
from .exchange_log import log_exchange
from .heads import response_head, upstream_head
from .upstream import Pool, UpstreamConnection, dial

if TYPE_CHECKING:
    from .client import ClientConnection

__all__ = ["Exchange", "end_aborted"]

_KEEP_BODY = 64 * 1024
_NO_BODY_STATUS = frozenset((204, 304))


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
                 "log", "uri0", "req_bytes", "resp_bytes", "origin_status", "origin_size", "origin_duration",
                 "origin_headers", "resp_headers", "retries", "sent_at", "counting")

    target: Target  # set by dispatch, before anything is sent

    def __init__(self, client: ClientConnection, req: HttpRequest) -> None:
        self.client = client
        self.req = req
        req.exchange = self
        self.route: Route = UNROUTED
        self.up: UpstreamConnection | None = None
        self.pending: list[bytes] = []  # framed body chunks not yet written upstream
        self.kept: list[bytes] | None = []  # framed body chunks, kept for a retry while small
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
        # access log (proxy/exchange_log.py): kept only while a writer is installed; sizes also for metrics
        state = client.state
        self.log = state.access_log is not None
        self.counting = state.observing
        self.uri0 = req.request_uri if self.log else ""
        self.req_bytes = self.resp_bytes = self.origin_status = self.origin_size = self.retries = 0
        self.origin_duration = self.sent_at = 0.0
        self.origin_headers: list[tuple[str, str]] = []
        self.resp_headers: list[tuple[str, str]] = []

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
            self.reply(NOT_FOUND, 0)
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
            r = text_error(500)
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
        if route.needs_body and not self.req_done:
            self.wait_body = True
            return
        if self.req.retry is not None:
            self.retry_left, self.retry_delay = self.req.retry
        target, cookie = svc.pick(self.req)
        if target is None:
            self.reply(NO_SERVER, len(route.middlewares))
            return
        self.target, self.cookie = target, cookie
        state = self.client.state
        if svc.mirrors:
            state.mirror(svc, self.req, self.kept if self.req_done else None)
        pool = state.pools.get(target.key) or state.pool(target)
        up = pool.take()
        if up is not None:
            self.send(up)
        else:
            state.spawn(self._connect(pool))

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
        raw = not (route.needs_response or self.cookie is not None or req.version == "1.0"
                   or (self.log and route.log_headers)) or req.upgrade
        up.attach(self, raw)
        if self.log:
            self.sent_at = self.client.state.loop.time()
        self.up = up
        self.tries += 1
        head = upstream_head(req, self.target, self.client.trusted, req.body_mode)
        body = self.kept if (self.tries > 1 and self.kept is not None) else self.pending
        if body:
            head += b"".join(body)
        self.pending = []
        if self.req_done and req.body_mode == "chunked":
            head += b"0\r\n\r\n"
        up.transport.write(head)

    def body_chunk(self, data: bytes) -> None:
        if self.finished:
            return
        if self.counting:
            self.req_bytes += len(data)
        if self.req.body_mode == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        if self.kept is not None:
            self.kept_size += len(data)
            if self.kept_size <= _KEEP_BODY:
                self.kept.append(data)
            else:
                self.kept = None
        up = self.up
        if up is not None and not up.closed:
            up.transport.write(data)
        else:
            self.pending.append(data)

    def request_complete(self) -> None:
        self.req_done = True
        if self.finished:
            self.client.exchange_done(self)
            return
        up = self.up
        if up is not None and not up.closed and self.req.body_mode == "chunked":
            up.transport.write(b"0\r\n\r\n")
        if self.wait_body:
            self.wait_body = False
            self.dispatch()

    # ------------------------------------------------------------------ response side
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
        keep = self.req.keep_alive and not self.req.upgrade
        self.client.transport.write(reply.encode(keep, self.head_request))
        if self.counting:
            self.resp_headers = list(reply.headers)
            self.resp_bytes = 0 if self.head_request else len(reply.body)
        self.finish(keep)

    def response_head(self, status: int, headers: list[tuple[str, str]], close_delimited: bool) -> None:
        """Full mode: the upstream head is parsed; apply hooks and write a re-framed head."""
        req = self.req
        route = self.route
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
        if self.encoder is not None:
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
        if self.encoder is not None:
            tail = self.encoder.flush(zlib.Z_FINISH) if hasattr(self.encoder, "flush") else b""
            if tail:
                self.client.transport.write(b"%x\r\n%s\r\n" % (len(tail), tail) if self.framing == "chunked" else tail)
                if self.counting:
                    self.resp_bytes += len(tail)
        if self.framing == "chunked":
            self.client.transport.write(b"0\r\n\r\n")
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
        if self.finished:
            return
        if up is not None and up is self.up:
            self.up = None
        if self.resp_started:
            self.status = self.status or 502
            self.finish(False)
            return
        body_known = self.kept is not None and (self.req_done or self.req.body_mode == "")
        stale = up is not None and up.reused and not up.got_bytes and self.tries == 1
        if body_known and why != "timeout" and (stale or self.retry_left > 0):
            delay = 0.0
            if not stale:
                self.retry_left -= 1
                self.retries += 1
                self.client.state.metrics.retried(self.service_name)
                delay = self.retry_delay
                self.retry_delay *= 2
                target, _ = self.route.service.pick(self.req)
                if target is not None:
                    self.target = target
            pool = self.client.state.pool(self.target)
            if delay > 0:
                self.client.state.loop.call_later(delay, lambda: self.client.state.spawn(self._connect(pool)))
            else:
                self.client.state.spawn(self._connect(pool))
            return
        self.reply(text_error(504) if why == "timeout" else text_error(502), len(self.route.middlewares))

    def release(self) -> bool:
        """Called once the client is done with this exchange: whether the connection stays open."""
        # request <-> exchange is a reference cycle: cut it so both are freed now, not by the cyclic GC
        self.req.exchange = None
        return self.req.keep_alive

    def abort(self) -> None:
        """The client went away: drop the upstream connection and end the exchange as 499."""
        if end_aborted(self):
            route = self.route
            if route.needs_done:
                for mw in route.middlewares:
                    if mw.needs_done:
                        mw.on_done(self.req)
        self.req.exchange = None

    def finish(self, keep: bool, tunnel: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
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
