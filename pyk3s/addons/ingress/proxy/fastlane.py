"""The fast lane: the most common request, proxied straight from the parser's bytes.

A request takes the fast lane when all of these hold, and the general :class:`Exchange` otherwise:
- ``GET``, HTTP/1.1 (not 1.0 or 0.9), origin-form target (starts with ``/``) without ``;`` and not ending in ``?``,
  no body, no Upgrade, a Host header, no pipelined request waiting on the connection;
- no header the general path would rewrite: hop-by-hop headers (``Connection`` only as a bare
  ``keep-alive`` / ``close``), client-sent ``X-Forwarded-*`` / ``X-Real-Ip``;
- the route is decided by Host and path alone (every router above it for that host reads only those) and
  has no middleware, and its service is a plain load balancer (no sticky cookie, no mirrors) that passes
  the Host header on, and its access-log records need no headers;

A pooled idle upstream connection is reused, else one is opened for the request.
The upstream head it writes is byte-for-byte what :func:`upstream_head` writes for the same request
(tests/unit/addons/ingress/test_ingress_fastlane.py compares both), and the response is relayed raw as
in the general path. Anything unusual after dispatch (the upstream fails, answers 1xx/101) turns the
fast exchange into a general one with the same state, which then retries or answers as usual.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..http.request import HttpRequest
from ..routing.services import Balancer, Target
from ..routing.table import PathChoice, Route
from .exchange import Exchange, end_aborted
from .exchange_log import log_fast
from .heads import FORWARDED, HOP_BY_HOP, forwarded_block
from .upstream import Pool, UpstreamConnection, dial

if TYPE_CHECKING:
    from .client import ClientConnection

__all__ = ["FastExchange", "try_fast_lane"]

# header names (lower case) the fast lane never copies: Host is written from the parsed value,
# the rest needs the general path's rewriting
_HANDLED = frozenset(n.encode() for n in HOP_BY_HOP | FORWARDED | {"host", "close"})
_PLAIN_CONNECTION = frozenset((b"keep-alive", b"close"))


# targets the general path handles: a `;` anywhere (query separators), and in the path an escape (they are
# normalized), a dot segment or a double slash (sanitized before routing, HttpRequest)
_GENERAL_URL = re.compile(rb";|^[^?]*?(?:%|/\.|//)")


def try_fast_lane(client: ClientConnection, url: bytes, raw_headers: list[tuple[bytes, bytes]]) -> FastExchange | None:
    """Send the request just parsed on ``client`` upstream if it qualifies; None: use the general path."""
    if client.queue or url[-1:] == b"?" or _GENERAL_URL.search(url):
        return None
    parser = client.parser
    state = client.state
    if client.compiled is not state.compiled:
        compiled = client.compiled = state.compiled
        client.table = compiled.table.tables.get((client.entrypoint, client.tls))
        client.fast_headers = None
    if raw_headers != client.fast_headers:
        # clients repeat the same headers on a connection: the verdict and the upstream head after the
        # target are kept for the last header list seen
        client.fast_headers = raw_headers
        client.fast_tail = _head_tail(client, raw_headers)
    tail = client.fast_tail
    if tail is None:
        return None
    keep_alive = parser.should_keep_alive()
    # without a Connection header only HTTP/1.1 keeps the connection alive, so the (costly) version
    # string is read only when that shortcut does not apply; HTTP/1.0 clients get re-framed answers
    if (client.fast_connection or not keep_alive) and parser.get_http_version() in ("1.0", "0.9"):
        return None
    route: Route | PathChoice | None
    target: Target | None
    one = client.fast_server
    if one is not None:
        route, target, pool = one
        if pool.retired:        # the sweeper dropped it while this connection waited: take the live one
            pool = state.pool(target)
            client.fast_server = (route, target, pool)
    else:
        route = client.fast_route
        if route.by_path:
            end = url.find(b"?")
            path = (url if end < 0 else url[:end]).decode("latin-1")
            if "%" in path:  # escapes: the general path decodes the routing path
                return None
            route = route.pick(path)
            if route is None:
                return None
        target = route.service.pick(None)[0]
        if target is None:
            return None
        pool = state.pools.get(target.key) or state.pool(target)
    ex = FastExchange(client, route, target, url, raw_headers, keep_alive)
    head = b"GET " + url + tail
    up = pool.take()
    if up is None:
        state.spawn(ex.connect(pool, head))
    else:
        ex.send(up, head)
    return ex


def _head_tail(client: ClientConnection, raw_headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The upstream head after ``GET <target>`` for these headers, or None when they need the general path.
    Sets the connection's fast_route, fast_server and fast_connection for it."""
    if client.parser.should_upgrade():
        return None
    host = None
    connection = False
    lines: list[bytes] = []
    for name, value in raw_headers:
        low = name.lower()
        if low in _HANDLED:
            if low == b"host":
                if host is not None:
                    return None     # a second Host: the general path refuses the request
                host = value
                continue
            if low == b"connection" and value.strip().lower() in _PLAIN_CONNECTION:
                connection = True
                continue
            return None
        lines.append(b"%s: %s\r\n" % (name, value))
    table = client.table
    if host is None or table is None:
        return None
    route = table.fast_route(host)
    if route is None:
        return None
    # a one-server service always picks that server: it and its pool are looked up once (unless a health
    # check may take it out of rotation)
    client.fast_server = None
    if not route.by_path:
        svc = route.service  # a plain load balancer: routing.table.fast_route gives no other
        if isinstance(svc, Balancer) and len(svc.active) == 1 and not svc.wants_health:
            target = svc.active[0]
            client.fast_server = (route, target, client.state.pool(target))
    client.fast_route = route
    client.fast_connection = connection
    block = forwarded_block(host.decode("latin-1"), client.peer, client.tls, False).encode("latin-1")
    return b"".join((b" HTTP/1.1\r\nHost: ", host, b"\r\n", *lines, block, b"\r\n"))


class FastExchange:
    """The exchange of a fast-lane request: what the upstream connection and the client call back."""

    __slots__ = ("client", "route", "target", "url", "headers", "keep_alive", "up", "status", "finished",
                 "req_done", "t0", "_promoted")

    head_request = False
    resp_started = False
    upstream_reusable = True

    def __init__(self, client: ClientConnection, route: Route, target: Target, url: bytes,
                 headers: list[tuple[bytes, bytes]], keep_alive: bool) -> None:
        self.client = client
        self.route = route
        self.target = target
        self.url = url
        self.headers = headers
        self.keep_alive = keep_alive
        self.up: UpstreamConnection | None = None
        self.status = 0
        self.finished = False
        self.req_done = False
        self.t0 = client.state.loop.time() if client.state.observing else 0.0
        self._promoted: Exchange | None = None

    # -- the general exchange this one becomes when something unusual happens
    def promote(self) -> Exchange:
        ex = self._promoted
        if ex is not None:
            return ex
        client = self.client
        ex = client.general_exchange(b"GET", self.url, self.headers)
        ex.route = self.route
        ex.service_name = self.route.service.name
        ex.target = self.target
        ex.tries = 1
        ex.t0 = self.t0 or ex.t0
        ex.req.keep_alive = self.keep_alive
        ex.req_done = self.req_done
        ex.up = up = self.up
        if up is not None and up.exchange is self:
            up.exchange = ex
        queue = client.queue
        for i, queued in enumerate(queue):
            if queued is self:
                queue[i] = ex
        if client.parsing is self:
            client.parsing = ex
        self._promoted = ex
        return ex

    @property
    def req(self) -> HttpRequest:
        return self.promote().req

    # -- upstream side
    def send(self, up: UpstreamConnection, head: bytes) -> None:
        up.attach_raw(self)
        self.up = up
        up.transport.write(head)

    async def connect(self, pool: Pool, head: bytes) -> None:
        up = await dial(self, pool)
        if up is not None:
            self.send(up, head)

    def response_complete(self, keep_client: bool) -> None:
        self.finished = True
        client = self.client
        if client.state.observing:
            self.observed()
        if not keep_client:
            self.keep_alive = False
            client.exchange_done(self)
        elif self.req_done:
            queue = client.queue
            if self.keep_alive and len(queue) == 1 and not client.closed:
                queue.clear()  # client.exchange_done(self) for the usual case: nothing else queued
            else:
                client.exchange_done(self)

    def observed(self) -> None:
        """Metrics and the access-log record of this exchange (either is on)."""
        client = self.client
        state = client.state
        now = state.loop.time()
        up = self.up
        size = 0
        if up is not None:
            size, up.body_bytes = up.body_bytes, 0
        route = self.route
        if state.metrics.enabled and route.metrics:
            state.metrics.observe(client.entrypoint, route.service.name, "GET", self.status, client.tls, now - self.t0,
                                  route.name, 0, size, client.tls_info)
        writer = state.access_log
        if writer is not None and route.access_log:
            log_fast(writer, self, size, now)

    def upstream_failed(self, up: UpstreamConnection | None, why: str) -> None:
        if not self.finished:
            self.promote().upstream_failed(up, why)

    def start_tunnel(self, up: UpstreamConnection) -> None:
        self.promote().start_tunnel(up)

    # an upstream connection calls these only on exchanges it serves in full mode, which a fast exchange
    # never is: like every unusual event they go to the general exchange
    def response_head(self, status: int, headers: list[tuple[str, str]], close_delimited: bool) -> None:
        self.promote().response_head(status, headers, close_delimited)

    def response_body(self, data: bytes) -> None:
        self.promote().response_body(data)

    def response_interim(self, status: int) -> None:
        self.promote().response_interim(status)

    # -- client side
    def start(self) -> None:
        """Nothing to do: a fast exchange is sent when it is made, and only on a connection with nothing queued."""

    def request_complete(self) -> None:
        self.req_done = True
        if self.finished:
            self.client.exchange_done(self)

    def body_chunk(self, data: bytes) -> None:  # a GET without Content-Length or chunking has no body
        pass

    def release(self) -> bool:
        return self.keep_alive

    def abort(self) -> None:
        end_aborted(self)
