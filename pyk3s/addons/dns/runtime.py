"""The runtime: a DnsConfig (config.py) -> started plugins and listeners; reload keeps the last good config.

`DnsRuntime.apply` starts the new plugins (each gets a `Host`, the only part of the runtime it may use),
swaps every listener's routing in one assignment each, opens and closes listeners as the config asks,
then stops the old plugins. The fast table (precompute.py) is rebuilt after a config change and brought
up to date, debounced, whenever a plugin reports that the data behind its answers changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dns.rcode
import dns.rdatatype

from .config import DnsConfig, read_config, read_config_without_broken_imports
from .core import DnsCore, Routing
from .errors import CorefileError
from .httpd import HttpEndpoints, Route
from .metrics import DnsMetrics
from .plugin import Plugin
from .precompute import build_fast, update_fast
from .server import Listener
from .workers import worker_count

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["DnsRuntime"]

log = logging.getLogger("pyk3s.dns")
FAST_DEBOUNCE = 0.05
ClientFactory = Callable[[str | None], "Client"]


class _Host:
    """What the plugins of one config may use of the runtime (plugin.Host). Their fast-table updates
    count from when the config's plugins have all started (`live`)."""

    def __init__(self, runtime: DnsRuntime) -> None:
        self._rt = runtime
        self.live = False

    @property
    def metrics(self) -> DnsMetrics:
        return self._rt.metrics

    @property
    def primary(self) -> bool:
        return self._rt.primary

    @property
    def lameduck(self) -> bool:
        return self._rt.lameduck

    def http_route(self, addr: tuple[str, int], path: str, route: Route) -> None:
        self._rt.http.add(addr[0], addr[1], path, route)

    def kube_client(self, kubeconfig: str | None = None) -> Client | None:
        factory = self._rt.client_factory
        return None if factory is None else factory(kubeconfig or self._rt.kubeconfig)

    def not_ready(self) -> set[str]:
        return {p.name for p in self._rt.plugins() if not p.ready()} | self._rt.waiting_workers

    def fatal(self, message: str) -> None:
        self._rt.fatal(message)

    def answers_changed(self) -> None:
        if self.live:
            self._rt.schedule_fast()


# where events go: the Corefile's ConfigMap, and the one K3s mounts for custom imports (/etc/coredns/custom)
COREFILE_CONFIGMAP = "coredns"
CUSTOM_CONFIGMAP = "coredns-custom"
# (reason, message, ConfigMap name) -> a Warning event on that ConfigMap
EventSink = Callable[[str, str, str], Awaitable[None]]


class DnsRuntime:
    """Everything one `pyk3s coredns` process runs: listeners, plugins, HTTP endpoints, reload."""

    def __init__(self, corefile: str | None, *, kubeconfig: str | None = None,
                 client_factory: ClientFactory | None = None, dns_port: int | None = None,
                 event_sink: EventSink | None = None, worker_index: int = 0) -> None:
        self.corefile = corefile or ""
        self.kubeconfig = kubeconfig
        self.client_factory = client_factory
        self.dns_port = dns_port
        self.event_sink = event_sink
        self.metrics = DnsMetrics()
        self.http = HttpEndpoints()
        self.lameduck = False
        self.config: DnsConfig | None = None
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
        self._fast_task: asyncio.Task[None] | None = None
        self._fast_full = False
        self._reload_task: asyncio.Task[None] | None = None
        self.metrics.folds.append(self._fold_fast)

    def _fold_fast(self, metrics: DnsMetrics) -> None:
        """Fast answers are only counted per (type, rcode); fold them into the CoreDNS metrics."""
        for (host, _), lst in self.listeners.items():
            fast = lst.core.routing.fast
            if fast is None or fast.labels is None:
                continue
            server, zone = fast.labels
            for (qtype, rcode), n in fast.drain().items():
                metrics.request(server, zone, "udp", "2" if ":" in host else "1",
                                dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype)),
                                dns.rcode.to_text(dns.rcode.Rcode.make(rcode)), "", 0.0001, 0, 0, False, times=n)

    # -- configuration -----------------------------------------------------------------------
    def read(self) -> DnsConfig:
        return read_config(self.corefile, self.dns_port)

    async def start(self) -> None:
        cfg, skipped = read_config_without_broken_imports(self.corefile, self.dns_port)
        for err in skipped:
            await self.report_skipped(err)
        if self.primary:
            self.workers = worker_count(cfg.blocks)
            self.reuseport = self.workers > 1
        await self.apply(cfg)
        if self.primary:
            await self.http.start()

    async def report_skipped(self, err: CorefileError) -> None:
        """A file an import glob brought in broke the Corefile at start: say so, serve without it."""
        name = os.path.basename(err.file)
        log.error("[ERROR] plugin/import: %s:%d: %s; serving the Corefile without this file", err.file, err.line,
                  err.reason if not err.directive else f"plugin/{err.directive}: {err.reason}")
        if self.primary and self.event_sink is not None:
            await self.event_sink(
                "CustomFileSkipped",
                f"{name}: line {err.line}: {err}; cluster DNS serves the rest of the Corefile without {name}",
                CUSTOM_CONFIGMAP)

    async def apply(self, cfg: DnsConfig) -> None:
        listeners = cfg.listeners()
        host = _Host(self)
        for p in cfg.plugins():
            await p.start(host)
        host.live = True
        old = self.config
        self.config = cfg
        for key, blocks in listeners.items():
            routing = Routing.of(blocks, self.metrics, lanes=True)
            lst = self.listeners.get(key)
            if lst is None:
                self.listeners[key] = await Listener.open(key[0], key[1], DnsCore(routing, self.metrics),
                                                          self.reuseport)
            else:
                lst.core.routing = routing
        for key in [k for k in self.listeners if k not in listeners]:
            self.listeners.pop(key).close()
        if old is not None:
            for p in old.plugins():
                await p.stop()
        self.schedule_fast(0, full=True)
        for key, blocks in listeners.items():
            addr = (key[0], self.listeners[key].port)
            for b in blocks:
                for p in b.plugins:
                    p.listening(addr)
        if cfg.reload is not None and self._reload_task is None:
            self._reload_task = asyncio.get_running_loop().create_task(self._reloader())

    def plugins(self) -> Iterator[Plugin]:
        return self.config.plugins() if self.config else iter(())

    def ready(self) -> bool:
        """Every plugin is ready."""
        return all(p.ready() for p in self.plugins())

    async def reload(self) -> bool:
        """Re-read the Corefile; swap if it changed. A bad Corefile keeps the running config."""
        try:
            cfg = await asyncio.to_thread(self.read)
        except CorefileError as err:
            log.error("[ERROR] Restart failed: %s", err)
            self.metrics.inc("coredns_reload_failed_total")
            if self.event_sink is not None:
                await self.event_sink("ReloadFailed", str(err), COREFILE_CONFIGMAP)
            return False
        if self.config is not None and cfg.digest == self.config.digest:
            return False
        log.info("[INFO] Reloading")
        try:
            await self.apply(cfg)
        except (OSError, CorefileError) as err:
            log.error("[ERROR] Restart failed: %s", err)
            self.metrics.inc("coredns_reload_failed_total")
            return False
        if self.primary:
            await self.http.start()
        if self.primary and self.workers > 1 and worker_count(cfg.blocks) != self.workers:
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
                interval, jitter = r
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval + random.uniform(-jitter, jitter)):
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
        """Debounced fast-table work: by default only what the plugins' data changed since each table
        was made (update_fast); `full` recomputes everything (a config applied)."""
        if full:
            self._fast_full = True
        if self._fast_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._fast_timer = loop.call_later(delay, self._start_fast)

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



