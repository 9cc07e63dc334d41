"""Runtime: Corefile -> server blocks with ordered plugin chains -> listeners; reload keeps the last good.

`build_blocks` is pure (parse plugin options; raise ConfigError naming file, line and directive).
`Runtime.apply` starts the new plugins, swaps every listener's routing in one assignment each, opens and
closes listeners as the config asks, then stops the old plugins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode

from . import ORDER, PLUGINS
from .core import Block, DnsCore, Routing
from .corefile import ServerBlock, read_corefile
from .errors import ConfigError
from .fast import build_fast, update_fast
from .httpd import HttpEndpoints
from .metrics import Metrics
from .plugin import BlockContext, Handler, Plugin, Request
from .plugins.bind import BindPlugin
from .plugins.cache import CachePlugin
from .plugins.hosts import HostsPlugin
from .plugins.kubernetes import KubernetesPlugin
from .plugins.loop import LoopPlugin
from .plugins.reload import ReloadPlugin
from .plugins.rewrite import RewritePlugin
from .server import Listener
from .workers import worker_count

__all__ = ["Runtime", "ServerConfig", "build_blocks"]

log = logging.getLogger("pyk3s.dns")
DEFAULT_COREFILE = ". {\n    whoami\n    log\n}\n"
FAST_DEBOUNCE = 0.05


@dataclass(slots=True)
class ServerConfig:
    blocks: list[Block]
    digest: str
    reload: ReloadPlugin | None = None
    listeners: dict[tuple[str, int], list[Block]] = field(default_factory=dict)

    def plugins(self) -> Iterator[Plugin]:
        for b in self.blocks:
            yield from b.plugins


def _chain(plugins: list[Plugin]) -> Handler:
    async def end(req: Request) -> dns.message.Message:
        req.note("end of the plugin chain: SERVFAIL")
        return req.reply(dns.rcode.SERVFAIL)

    handler: Handler = end
    for p in reversed([p for p in plugins if p.in_chain]):
        handler = (lambda plugin, nxt: (lambda req: plugin.serve(req, nxt)))(p, handler)
    return handler


def build_blocks(server_blocks: list[ServerBlock], corefile: str, kubeconfig: str | None = None,
                 runtime: Runtime | None = None) -> list[Block]:
    """Server blocks to Blocks with plugin instances in ORDER (unknown directives are errors)."""
    blocks: list[Block] = []
    for sb in server_blocks:
        zones = sb.zones
        port = sb.keys[0].port
        server = f"{sb.keys[0].scheme}://:{port}"
        ctx = BlockContext(zones, server, corefile, runtime, kubeconfig)
        by_name: dict[str, list[Plugin]] = {}
        for d in sb.directives:
            cls = PLUGINS.get(d.name)
            if cls is None:
                raise ConfigError(f"Unknown directive '{d.name}'", file=d.file, line=d.line)
            if cls.once_per_block and d.name in by_name:
                raise d.error("this plugin can only be used once per Server Block", d.name)
            plugin = cls.setup(d, ctx)
            if isinstance(plugin, RewritePlugin) and d.name in by_name:
                by_name[d.name][0].merge(plugin)  # type: ignore[attr-defined]
                continue
            by_name.setdefault(d.name, []).append(plugin)
        plugins = [p for name in ORDER for p in by_name.get(name, ())]
        for p in plugins:
            if hasattr(p, "server"):
                p.server = server  # type: ignore[attr-defined]
        fast_ok = all(p.fast_safe for p in plugins)
        for p in plugins:
            if isinstance(p, CachePlugin):
                p.wire_enabled = fast_ok
                p.balance = "loadbalance" in by_name
        binds: tuple[str, ...] = tuple(a for p in plugins if isinstance(p, BindPlugin) for a in p.addrs) or ("",)
        blocks.append(Block(
            zones=zones, port=port, binds=binds, server=server, plugins=plugins, handler=_chain(plugins),
            metrics="prometheus" in by_name, refuse_all=not [p for p in plugins if p.in_chain],
            fast_ok=fast_ok,
            kube=next((p for p in plugins if isinstance(p, KubernetesPlugin)), None),
            hosts=next((p for p in plugins if isinstance(p, HostsPlugin)), None),
        ))
    return blocks


class Runtime:
    """Everything one `pyk3s coredns` process runs: listeners, plugins, HTTP endpoints, reload."""

    def __init__(self, corefile: str | None, *, kubeconfig: str | None = None,
                 client_factory: Callable[[str | None], Any] | None = None, dns_port: int | None = None,
                 event_sink: Callable[[str, str], Any] | None = None, worker_index: int = 0) -> None:
        self.corefile = corefile or ""
        self.kubeconfig = kubeconfig
        self.client_factory = client_factory
        self.dns_port = dns_port
        self.event_sink = event_sink
        self.metrics = Metrics()
        self.http = HttpEndpoints()
        self.lameduck = False
        self.config: ServerConfig | None = None
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.stopped = asyncio.Event()
        self.fatal_error: str | None = None
        # multisocket (workers.py): the primary (index 0) owns HTTP endpoints, loop probes and events
        self.worker_index = worker_index
        self.primary = worker_index == 0
        self.workers = 1
        self.reuseport = worker_index > 0
        self.waiting_workers: set[str] = set()
        self._fast_timer: asyncio.TimerHandle | None = None
        self._fast_task: asyncio.Task | None = None
        self._fast_full = False
        self._reload_task: asyncio.Task | None = None
        self.metrics.folds.append(self._fold_fast)

    def _fold_fast(self, metrics: Metrics) -> None:
        """Fast answers are only counted per (type, rcode); fold them into the CoreDNS metrics."""
        import dns.rcode
        import dns.rdatatype
        for (host, _), lst in self.listeners.items():
            fast = lst.core.routing.fast
            if fast is None or fast.labels is None:
                continue
            server, zone = fast.labels
            for (qtype, rcode), n in fast.drain().items():
                metrics.request(server, zone, "udp", "2" if ":" in host else "1", dns.rdatatype.to_text(qtype),
                                dns.rcode.to_text(rcode), "", 0.0001, 0, 0, False, times=n)

    # -- configuration -----------------------------------------------------------------------
    def parse(self) -> tuple[list[Block], str]:
        if self.corefile:
            sbs = read_corefile(self.corefile, default_port=self.dns_port)
        else:
            from .corefile import parse_corefile
            sbs = parse_corefile(DEFAULT_COREFILE, "Corefile", default_port=self.dns_port)
        digest = hashlib.sha512(repr(sbs).encode()).hexdigest()
        return build_blocks(sbs, self.corefile, self.kubeconfig, self), digest

    async def start(self) -> None:
        blocks, digest = self.parse()
        if self.primary:
            self.workers = worker_count(blocks)
            self.reuseport = self.workers > 1
        await self.apply(ServerConfig(blocks, digest))
        if self.primary:
            await self.http.start()

    async def apply(self, cfg: ServerConfig) -> None:
        listeners: dict[tuple[str, int], list[Block]] = {}
        for b in cfg.blocks:
            for host in b.binds:
                listeners.setdefault((host, b.port), []).append(b)
        cfg.listeners = listeners
        cfg.reload = next((p for p in cfg.plugins() if isinstance(p, ReloadPlugin)), None)
        for p in cfg.plugins():
            await p.start(self)
        for b in cfg.blocks:
            if b.kube is not None:
                b.kube.on_change(self.schedule_fast)
        old = self.config
        self.config = cfg
        for key, blocks in listeners.items():
            routing = Routing.of(blocks, self.metrics)
            lst = self.listeners.get(key)
            if lst is None:
                lst = await Listener.open(key[0], key[1], DnsCore(routing, self.metrics), self.reuseport)
                self.listeners[key] = lst
                for b in blocks:
                    b.bound_port = lst.port
            else:
                lst.core.routing = routing
                for b in blocks:
                    b.bound_port = lst.port
        for key in [k for k in self.listeners if k not in listeners]:
            self.listeners.pop(key).close()
        if old is not None:
            for p in old.plugins():
                await p.stop()
        self.schedule_fast(0, full=True)
        for key, blocks in listeners.items():
            for b in blocks:
                for p in b.plugins:
                    if isinstance(p, LoopPlugin) and self.primary:
                        p.send_probes((key[0] or "127.0.0.1", self.listeners[key].port))
        if cfg.reload is not None and self._reload_task is None:
            self._reload_task = asyncio.get_running_loop().create_task(self._reloader())

    def plugins(self) -> Iterator[Plugin]:
        return self.config.plugins() if self.config else iter(())

    async def reload(self) -> bool:
        """Re-read the Corefile; swap if it changed. A bad Corefile keeps the running config."""
        try:
            blocks, digest = await asyncio.to_thread(self.parse)
        except ConfigError as err:
            log.error("[ERROR] Restart failed: %s", err)
            self.metrics.inc("coredns_reload_failed_total")
            if self.event_sink is not None:
                await self.event_sink("ReloadFailed", str(err))
            return False
        if self.config is not None and digest == self.config.digest:
            return False
        log.info("[INFO] Reloading")
        try:
            await self.apply(ServerConfig(blocks, digest))
        except (OSError, ConfigError) as err:
            log.error("[ERROR] Restart failed: %s", err)
            self.metrics.inc("coredns_reload_failed_total")
            return False
        if self.primary:
            await self.http.start()
        if self.primary and self.workers > 1 and worker_count(blocks) != self.workers:
            log.warning("[WARNING] multisocket: the worker count changes only on restart")
        log.info("[INFO] Reloading complete")
        return True

    async def _reloader(self) -> None:
        """CoreDNS checks every INTERVAL±JITTER; pyk3s also looks at once when the Corefile's folder
        changes, so an edited ConfigMap (K3s's manifests recipe) is live within seconds."""
        changed = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(self._watch_corefile(changed))
        try:
            while not self.stopped.is_set():
                r = self.config.reload if self.config else None
                if r is None:
                    self._reload_task = None
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(r.interval + random.uniform(-r.jitter, r.jitter)):
                        await changed.wait()
                changed.clear()
                try:
                    await self.reload()
                except Exception:  # reload must never take the server down
                    log.exception("[ERROR] plugin/reload: unexpected failure")
        finally:
            watcher.cancel()

    async def _watch_corefile(self, changed: asyncio.Event) -> None:
        if not self.corefile:
            return
        from watchfiles import awatch

        try:
            async for _ in awatch(Path(self.corefile).parent, debounce=300, recursive=True):
                changed.set()
        except Exception as err:  # the interval check still works without file events
            log.warning("[WARNING] plugin/reload: watching %s failed (%s); checking every interval only",
                        self.corefile, err)

    # -- fast path -----------------------------------------------------------------------------
    def schedule_fast(self, delay: float = FAST_DEBOUNCE, full: bool = False) -> None:
        """Debounced fast-table work: by default only what the kubernetes indexes changed since each
        table was made (update_fast); `full` recomputes everything (config applied, hosts changed)."""
        if full:
            self._fast_full = True
        if self._fast_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._fast_timer = loop.call_later(delay, self._start_fast)

    def hosts_changed(self) -> None:
        self.schedule_fast(full=True)

    def _start_fast(self) -> None:
        self._fast_timer = None
        if self._fast_task is not None and not self._fast_task.done():
            self.schedule_fast()
            return
        full, self._fast_full = self._fast_full, False
        self._fast_task = asyncio.get_running_loop().create_task(self.rebuild_fast(full))

    async def fast_settled(self) -> None:
        """Return once no fast-table build is scheduled or running."""
        while True:
            task = self._fast_task
            if task is not None and not task.done():
                await asyncio.wait({task})
            elif self._fast_timer is not None:      # debounced: the build starts within FAST_DEBOUNCE
                await asyncio.sleep(FAST_DEBOUNCE)
            else:
                return

    async def rebuild_fast(self, full: bool = True) -> None:
        """Compile each listener's fast table (whole, or only what changed) and swap it in (one
        assignment per listener)."""
        for lst in list(self.listeners.values()):
            routing = lst.core.routing
            try:
                fresh = await (build_fast(routing) if full else update_fast(routing))
            except Exception:  # the previous table keeps serving
                log.exception("[ERROR] fast path: could not compile answers")
                if not full:
                    self.schedule_fast(full=True)
                continue
            if lst.core.routing is routing:
                lst.core.routing = fresh
            # else a reload swapped the routing meanwhile and scheduled its own build

    # -- life cycle ----------------------------------------------------------------------------
    def fatal(self, message: str) -> None:
        self.fatal_error = message
        self.stopped.set()

    async def stop(self) -> None:
        self.lameduck = True
        for t in (self._reload_task, self._fast_task):
            if t is not None:
                t.cancel()
        if self._fast_timer is not None:
            self._fast_timer.cancel()
        if self.config is not None:
            for p in self.config.plugins():
                await p.stop()
        for lst in self.listeners.values():
            lst.close()
        self.listeners.clear()
        await self.http.stop()
        self.stopped.set()

    def port_of(self, host: str = "", port: int | None = None) -> int:
        for (h, p), lst in self.listeners.items():
            if (not host or h == host) and (port is None or p == port):
                return lst.port
        raise KeyError(f"no listener for {host}:{port}")



