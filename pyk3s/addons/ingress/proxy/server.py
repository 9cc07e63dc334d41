"""Sockets and per-worker state: entrypoint listeners, upstream pools, the current compiled table.

``ProxyState.apply(config)`` compiles a DynamicConfig and publishes it by one assignment; requests in
flight keep the snapshot they started with. Listeners use SO_REUSEPORT so several worker processes can
each bind the same entrypoint address. A sweeper closes idle client connections (``CLIENT_IDLE``) and
idle upstream connections once a second.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ..api import ApiHandler
from ..compile import Compiled, compile_config
from ..dynamic import DynamicConfig
from ..http.reply import Reply
from ..metrics import Metrics, render
from ..static import StaticConfig
from .client import ClientConnection
from .upstream import Pool

__all__ = ["ProxyState", "listen_socket", "start_entrypoints", "CLIENT_IDLE"]

log = logging.getLogger("pyk3s.ingress")
CLIENT_IDLE = 180.0


def listen_socket(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if not host:
        family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
    s.listen(4096)
    s.setblocking(False)
    return s


def _trusted(static_ep: Any) -> Callable[[str], bool] | None:
    if static_ep.forwarded_insecure:
        return lambda peer: True
    if not static_ep.trusted_ips:
        return None
    nets = [ipaddress.ip_network(x, strict=False) for x in static_ep.trusted_ips]

    def check(peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in nets)

    return check


class ProxyState:
    """Everything a worker's connections share."""

    def __init__(self, loop: asyncio.AbstractEventLoop, static: StaticConfig,
                 metrics_source: Callable[[], list[dict[str, Any]]] | None = None,
                 explain: Any = None) -> None:
        self.loop = loop
        self.static = static
        self.compiled: Compiled = compile_config(DynamicConfig(), static)
        self.pools: dict[tuple[str, str, int], Pool] = {}
        self.metrics = Metrics(static.prometheus)
        self.metrics_source = metrics_source
        self.connections: set[ClientConnection] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.now = loop.time()
        self.api = ApiHandler(lambda: self.compiled, explain)
        self.tls_store: Any = None
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
    def pool(self, target: Any) -> Pool:
        pool = self.pools.get(target.key)
        if pool is None:
            pool = self.pools[target.key] = Pool(self.loop, target.scheme, target.host, target.port)
        return pool

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ingress: task failed: %r", task.exception())

    def internal(self, name: str, req: Any, ex: Any) -> Reply | None:
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

    def mirror(self, svc: Any, req: Any, body: list[bytes] | None) -> None:
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
            now = self.now = self.loop.time()
            for conn in list(self.connections):
                if not conn.queue and conn.tunnel is None and now - conn.last_active > CLIENT_IDLE:
                    conn.closed = True
                    conn.transport.close()
            for pool in self.pools.values():
                pool.sweep(now)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        for conn in list(self.connections):
            conn.transport.close()


async def start_entrypoints(state: ProxyState, names: list[str], ssl_for: Callable[[str], ssl.SSLContext | None],
                            sockets: dict[str, socket.socket] | None = None) -> list[asyncio.base_events.Server]:
    """Start listeners for the given entrypoints on this loop; ``sockets`` may hold pre-bound ones."""
    servers = []
    for name in names:
        ep = state.static.entrypoints[name]
        sock = (sockets or {}).get(name) or listen_socket(ep.host, ep.port)
        ctx = ssl_for(name)
        trusted = _trusted(ep)
        tls = ctx is not None

        def factory(name: str = name, tls: bool = tls, trusted: Any = trusted) -> ClientConnection:
            return ClientConnection(state, name, tls, trusted)

        servers.append(await state.loop.create_server(factory, sock=sock, backlog=4096, ssl=ctx))
    return servers
