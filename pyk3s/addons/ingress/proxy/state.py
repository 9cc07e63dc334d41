"""What a worker's connections share: the current compiled table, upstream pools (HTTP/1.1 and
HTTP/2), metrics, tasks, the api@internal handler and the TLS certificate store.

``ProxyState.apply(config)`` compiles a DynamicConfig and publishes it by one assignment; requests in
flight keep the snapshot they started with. A sweeper closes, once a second, client connections that
exceed their entry point's ``transport.respondingTimeouts`` (idle 180s, reading a request 60s, answering
it: no limit unless ``writeTimeout``; on HTTP/2 per stream, and idle ones get a GOAWAY: ``h2timeouts``)
and idle upstream connections.
``drain(grace)`` stops a worker gently: HTTP/2 clients get a graceful GOAWAY, idle HTTP/1.1 connections
are closed, and what is in flight may finish within ``grace`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING

from ..config.dynamic import DynamicConfig
from ..config.static import StaticConfig
from ..http.reply import Reply
from ..http.request import HttpRequest
from ..routing.compile import Compiled, compile_config
from ..routing.health import HealthChecker
from ..routing.services import Balancer, CompiledService, MirrorService, Target
from . import accesslog
from .accesslog import AccessLogWriter
from .api import ApiHandler, Explain
from .h2timeouts import enforce_stream_timeouts
from .h2upstream import H2Pool
from .metrics import MetricsSnapshot, ProxyMetrics, render
from .tls import CertStore
from .upstream import Pool

if TYPE_CHECKING:
    from .client import ClientConnection
    from .h2server import H2ClientConnection

__all__ = ["ProxyState", "CLIENT_IDLE", "Timeouts"]

log = logging.getLogger("pyk3s.ingress")
CLIENT_IDLE = 180.0

Timeouts = tuple[float, float, float]
"""An entry point's (idle, read, write) timeouts in seconds; 0: none."""


class ProxyState:
    """Everything a worker's connections share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, static: StaticConfig,
                 metrics_source: Callable[[], list[MetricsSnapshot]] | None = None,
                 explain: Explain | None = None) -> None:
        self.loop = loop
        self.static = static
        self.compiled: Compiled = compile_config(DynamicConfig(), static)
        self.pools: dict[tuple[str, str, int, int], Pool] = {}
        self.h2_pools: dict[tuple[str, str, int, int], H2Pool] = {}
        self.h2_clients: set[H2ClientConnection] = set()
        self.stopping = False  # set when the worker stops gently (runner.stop_gently)
        self.metrics = ProxyMetrics(static.prometheus, static.prometheus_options)
        self.metrics_source = metrics_source
        self.connections: set[ClientConnection] = set()
        self.tasks: set[asyncio.Task[object]] = set()
        self.now = loop.time()
        self.api = ApiHandler(lambda: self.compiled, explain)
        self.tls_store = CertStore()  # the runner keeps it in step with the configuration (TLS entrypoints)
        self.on_apply: list[Callable[[Compiled], object]] = []
        # this process's access log (proxy/accesslog.py): None keeps exchanges from building records
        self.access_log: AccessLogWriter | None = None
        if static.access_log is not None:
            self.access_log = AccessLogWriter(static.access_log)
            accesslog.install(self.access_log)
        # one check on the fast lane for both metrics and access logs
        self.observing = self.metrics.enabled or self.access_log is not None
        self.tcp_open: dict[str, int] = {}  # entry point -> connections routed by TCP routers
        self.udp_open: dict[str, int] = {}  # entry point -> UDP sessions
        self.metrics.open_source = self.open_connections
        self.timeouts: dict[str, Timeouts] = {n: (ep.idle_timeout, ep.read_timeout, ep.write_timeout)
                                              for n, ep in static.entrypoints.items()}

    # -- configuration
    def apply(self, config: DynamicConfig) -> Compiled:
        def problem(kind: str, name: str, message: str) -> None:
            log.warning("ingress: %s %s: %s", kind, name, message)

        compiled = compile_config(config, self.static, problem)
        previous, self.compiled = self.compiled, compiled
        # the previous configuration's health checks stop; servers of the new one start UP, as in Traefik
        for checker in previous.health:
            checker.stop()
        for checker in compiled.health:
            if isinstance(checker, HealthChecker):
                checker.start(self.loop, self.server_status)
            else:
                checker.listener = self.server_status
        self.metrics.reloads += 1
        self.metrics.last_reload_ok = 1
        self.metrics.last_reload_ts = time.time()
        if self.metrics.enabled:
            self.metrics.servers((name, t.url) for name, svc in compiled.services.items()
                                 if isinstance(svc, Balancer) for t in svc.targets)
        for fn in self.on_apply:
            fn(compiled)
        return compiled

    def server_status(self, service: str, url: str, up: bool) -> None:
        """A health check's verdict: traefik_service_server_up follows it."""
        self.metrics.server_up(service, url, up)

    def open_connections(self) -> dict[tuple[str, str], int]:
        """traefik_open_connections: every TCP connection of an entry point (HTTP or routed by a TCP router),
        and its UDP sessions, in this worker."""
        out: dict[tuple[str, str], int] = {}
        for name, ep in self.static.entrypoints.items():
            if ep.protocol == "udp":
                out[(name, "UDP")] = self.udp_open.get(name, 0)
            else:
                out[(name, "TCP")] = self.tcp_open.get(name, 0)
        for name in [c.entrypoint for c in self.connections] + [c.entrypoint for c in self.h2_clients]:
            key = (name, "TCP")
            out[key] = out.get(key, 0) + 1
        return out

    # -- helpers used by exchanges
    def pool(self, target: Target) -> Pool:
        pool = self.pools.get(target.key)
        if pool is None:
            pool = self.pools[target.key] = Pool(self.loop, target, self.observing)
        return pool

    def h2_pool(self, target: Target) -> H2Pool | None:
        """The HTTP/2 pool of an ``h2c`` or ``https`` target; None once an https server chose HTTP/1.1."""
        pool = self.h2_pools.get(target.key)
        if pool is None:
            pool = self.h2_pools[target.key] = H2Pool(self, target)
        return None if pool.h1_only else pool

    def spawn(self, coro: Coroutine[object, object, object]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ingress: task failed: %r", task.exception())

    def internal(self, name: str, req: HttpRequest) -> Reply | None:
        if name in ("api", "dashboard", "rest"):
            if name == "dashboard" and not req.path.startswith(("/api", "/dashboard")):
                req.set_path("/dashboard" + (req.raw_path if req.raw_path.startswith("/") else "/" + req.raw_path))
            return self.api.handle(req)
        if name == "ping":
            return Reply(200, [("Content-Type", "text/plain; charset=utf-8")], b"OK")
        if name == "prometheus":
            snaps = self.metrics_source() if self.metrics_source is not None else [self.metrics.snapshot()]
            return Reply(200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], render(snaps))
        return Reply(418, [("Content-Type", "text/plain; charset=utf-8")], b"")  # noop@internal: never reached normally

    def mirror(self, svc: CompiledService, req: HttpRequest, body: list[bytes] | None) -> None:
        """Copies of the request for a mirroring service's mirrors (exchanges call this when it has any)."""
        if not isinstance(svc, MirrorService):
            return
        from .mirror import send_mirror  # local: only mirroring services need it

        for target in svc.mirror_targets(req):
            if body is None and req.body_mode:
                continue
            if svc.max_body_size >= 0 and sum(len(b) for b in body or ()) > svc.max_body_size:
                continue
            self.spawn(send_mirror(target, req, body if svc.mirror_body else None))

    # -- housekeeping
    async def sweeper(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sweep(self.loop.time())

    def sweep(self, now: float) -> None:
        """Close client connections past their entry point's idle, read or write timeout (idle HTTP/2 ones
        with a GOAWAY) and idle upstream connections; drop retired pools."""
        self.now = now
        default = (CLIENT_IDLE, 0.0, 0.0)
        for conn in list(self.connections):
            if conn.tunnel is not None:
                continue
            idle, read, write = self.timeouts.get(conn.entrypoint, default)
            if (not conn.queue and idle and now - conn.last_active > idle
                    or read and conn.reading_since and now - conn.reading_since > read
                    or write and conn.queue and conn.answering_since and now - conn.answering_since > write):
                conn.closed = True
                conn.transport.close()
        for h2 in list(self.h2_clients):
            idle, read, write = self.timeouts.get(h2.entrypoint, default)
            if read or write:
                enforce_stream_timeouts(h2, now, read, write)
            if idle:
                h2.idle(now, idle)
        for key, pool in list(self.pools.items()):
            if pool.sweep(now):
                del self.pools[key]
        for key, h2pool in list(self.h2_pools.items()):
            if h2pool.sweep(now):
                del self.h2_pools[key]

    def tls_changed(self) -> None:
        """A new TLS store is in place: HTTP/2 connections whose certificate or TLS options changed get a
        graceful GOAWAY, so their clients reconnect with the new ones (open streams finish first)."""
        store = self.tls_store
        for h2 in list(self.h2_clients):
            if h2.tls and h2.tls_key != store.choice(h2.sni):
                h2.goaway(b"TLS configuration changed")

    async def drain(self, grace: float) -> None:
        """Let what is in flight finish (at most ``grace`` seconds): GOAWAY to HTTP/2 clients, idle
        HTTP/1.1 connections closed as they become idle. The listeners are closed by the caller first."""
        for h2 in list(self.h2_clients):
            h2.goaway()
        deadline = self.loop.time() + grace
        while self.loop.time() < deadline:
            for conn in list(self.connections):
                if not conn.queue and conn.tunnel is None:
                    conn.closed = True
                    conn.transport.close()
            if not self.connections and not self.h2_clients:
                break
            await asyncio.sleep(0.05)

    def close(self) -> None:
        for checker in self.compiled.health:
            checker.stop()
        if self.access_log is not None and accesslog.active() is self.access_log:
            accesslog.install(None)
        for pool in self.pools.values():
            pool.close()
        for h2pool in self.h2_pools.values():
            h2pool.close()
        for conn in list(self.connections):
            conn.transport.close()
        for h2 in list(self.h2_clients):
            h2.close_now()
