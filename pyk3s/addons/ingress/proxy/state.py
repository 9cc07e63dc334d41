"""What a worker's connections share: the current compiled table, upstream pools, metrics, tasks, the
api@internal handler and the TLS certificate store.

``ProxyState.apply(config)`` compiles a DynamicConfig and publishes it by one assignment; requests in
flight keep the snapshot they started with. A sweeper closes idle client connections (``CLIENT_IDLE``)
and idle upstream connections once a second.
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
from ..routing.services import CompiledService, MirrorService, Target
from .api import ApiHandler, Explain
from .metrics import MetricsSnapshot, ProxyMetrics, render
from .tls import CertStore
from .upstream import Pool

if TYPE_CHECKING:
    from .client import ClientConnection

__all__ = ["ProxyState", "CLIENT_IDLE"]

log = logging.getLogger("pyk3s.ingress")
CLIENT_IDLE = 180.0


class ProxyState:
    """Everything a worker's connections share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, static: StaticConfig,
                 metrics_source: Callable[[], list[MetricsSnapshot]] | None = None,
                 explain: Explain | None = None) -> None:
        self.loop = loop
        self.static = static
        self.compiled: Compiled = compile_config(DynamicConfig(), static)
        self.pools: dict[tuple[str, str, int], Pool] = {}
        self.metrics = ProxyMetrics(static.prometheus)
        self.metrics_source = metrics_source
        self.connections: set[ClientConnection] = set()
        self.tasks: set[asyncio.Task[object]] = set()
        self.now = loop.time()
        self.api = ApiHandler(lambda: self.compiled, explain)
        self.tls_store = CertStore()  # the runner keeps it in step with the configuration (TLS entrypoints)
        self.on_apply: list[Callable[[Compiled], None]] = []

    # -- configuration
    def apply(self, config: DynamicConfig) -> Compiled:
        def problem(kind: str, name: str, message: str) -> None:
            log.warning("ingress: %s %s: %s", kind, name, message)

        compiled = compile_config(config, self.static, problem)
        self.compiled = compiled
        self.metrics.reloads += 1
        self.metrics.last_reload_ok = 1
        self.metrics.last_reload_ts = time.time()
        for fn in self.on_apply:
            fn(compiled)
        return compiled

    # -- helpers used by exchanges
    def pool(self, target: Target) -> Pool:
        pool = self.pools.get(target.key)
        if pool is None:
            pool = self.pools[target.key] = Pool(self.loop, target.scheme, target.host, target.port)
        return pool

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
            self.spawn(send_mirror(target, req, body if svc.mirror_body else None, self.loop))

    # -- housekeeping
    async def sweeper(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sweep(self.loop.time())

    def sweep(self, now: float) -> None:
        """Close idle client connections and idle upstream connections; drop retired pools."""
        self.now = now
        for conn in list(self.connections):
            if not conn.queue and conn.tunnel is None and now - conn.last_active > CLIENT_IDLE:
                conn.closed = True
                conn.transport.close()
        for key, pool in list(self.pools.items()):
            if pool.sweep(now):
                del self.pools[key]

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        for conn in list(self.connections):
            conn.transport.close()
