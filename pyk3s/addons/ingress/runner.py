"""Running the proxy: watch glue, configuration fan-out to worker processes, Ingress status.

Process layout: the supervisor binds nothing for user entrypoints; it forks ``workers`` processes that
each bind every non-internal entrypoint with SO_REUSEPORT, then runs the informers of the kinds the
providers read, builds the configuration (providers are pure functions of the informer caches,
``providers.build_config``), compiles it for its own internal
entrypoints (``traefik``: api/ping/metrics) and sends it to the workers over a socketpair. Workers send
their metric counters back once a second. With one worker everything runs in one process.
Bursts of events are folded into one rebuild (``THROTTLE``), as Traefik's throttleEvents does.
SIGTERM stops gently (``stop_gently``): listeners close, HTTP/2 clients get a graceful GOAWAY and
requests in flight have the entry points' ``transport.lifeCycle.graceTimeOut`` to finish.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from .config.dynamic import DynamicConfig
from .config.static import StaticConfig
from .providers import build_config, watched_kinds
from .providers.common import KubeObject, ObjectIndex
from .providers.gateway import load_gateways
from .providers.gateway_status import write_statuses
from .providers.ingress import ingress_status, should_process
from .proxy.api import Explain
from .proxy.metrics import MetricsSnapshot
from .proxy.server import start_entrypoints
from .proxy.state import ProxyState
from .proxy.tls import build_store, host_options, listening_context
from .proxy.udp_kernel import KernelUDPRelay, UDPRelayView
from .routing.compile import Compiled

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["Watcher", "run", "fork_workers", "list_objects", "stop_gently", "grace_period", "THROTTLE"]

log = logging.getLogger("pyk3s.ingress")
THROTTLE = 0.2


class Watcher:
    """Informers for every watched kind; calls ``publish(DynamicConfig)`` after each burst of changes."""

    def __init__(self, client: Client, static: StaticConfig, publish: Callable[[DynamicConfig], None]) -> None:
        from pyk3s.client.informer import Informer

        self.client, self.static, self.publish = client, static, publish
        self.informers = [(w.kind, w.api_version, Informer(client.resource(w.api_version, w.plural)))
                          for w in watched_kinds(static)]
        self.pending: asyncio.TimerHandle | None = None
        self.last: DynamicConfig | None = None
        self.status_task: asyncio.Task[None] | None = None
        self.gateway_task: asyncio.Task[None] | None = None
        self.gateway_problems: set[str] = set()

    def objects(self) -> list[KubeObject]:
        out = []
        for kind, api, inf in self.informers:
            for obj in inf.list():
                if obj.get("kind") != kind or obj.get("apiVersion") != api:
                    obj = {**obj, "kind": kind, "apiVersion": api}
                out.append(obj)
        return out

    def changed(self, *_: object) -> None:
        if self.pending is None:
            throttle = max([THROTTLE] + [p.throttle_duration for p in (self.static.crd, self.static.ingress,
                                                                       self.static.gateway) if p])
            self.pending = asyncio.get_running_loop().call_later(throttle, self.rebuild)

    def rebuild(self) -> None:
        self.pending = None
        objs = self.objects()
        cfg = build_config(self.static, objs)
        if cfg != self.last:
            self.last = cfg
            self.publish(cfg)
        if self.static.ingress is not None and self.static.ingress.published_service:
            if self.status_task is None or self.status_task.done():
                self.status_task = asyncio.get_running_loop().create_task(self.update_status(objs))
        if self.static.gateway is not None and (self.gateway_task is None or self.gateway_task.done()):
            self.gateway_task = asyncio.get_running_loop().create_task(self.update_gateway_status(objs))

    async def update_gateway_status(self, objs: list[KubeObject]) -> None:
        """Write the Gateway API statuses (GatewayClass, Gateway, routes) the kubernetesGateway provider
        computed; each new problem is logged once."""
        opts = self.static.gateway
        if opts is None:
            return
        result = load_gateways(objs, opts)
        self.gateway_problems = log_gateway_problems(result.problems, self.gateway_problems)
        await write_statuses(self.client, objs, result.statuses)

    async def update_status(self, objs: list[KubeObject]) -> None:
        """Copy the published Service's load balancer addresses into every served Ingress (4.9)."""
        opts = self.static.ingress
        if opts is None:
            return
        ns, _, name = opts.published_service.partition("/")
        svc = next((o for o in objs if o["kind"] == "Service" and o["metadata"].get("namespace") == ns
                    and o["metadata"].get("name") == name), None)
        want = ingress_status(svc)
        if not want:
            return
        classes = ObjectIndex.build([o for o in objs if o["kind"] == "IngressClass"])
        res = self.client.resource("networking.k8s.io/v1", "ingresses")
        for ing in (o for o in objs if o["kind"] == "Ingress"):
            if not should_process(ing, classes, opts):
                continue
            current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if current == want:
                continue
            body = {**ing, "status": {"loadBalancer": {"ingress": want}}}
            try:
                await res.update_status(body)
            except Exception as err:  # noqa: BLE001 - retried on the next change
                log.warning("ingress: status of Ingress %s/%s: %s", ing["metadata"].get("namespace"),
                            ing["metadata"].get("name"), err)

    async def run(self) -> None:
        for _, _, inf in self.informers:
            inf.add_handler(self.changed)
            await inf.start()
        for kind, api, inf in self.informers:
            try:
                await inf.wait_synced(10)
            except TimeoutError:
                log.warning("ingress: %s %s not synced yet (is the CRD installed?)", api, kind)
        self.rebuild()
        await asyncio.Event().wait()


def log_gateway_problems(problems: list[str], said: set[str]) -> set[str]:
    """Log the kubernetesGateway provider's problems that were not already said; the set said now."""
    for problem in problems:
        if problem not in said:
            log.warning("ingress: kubernetesgateway: %s", problem)
    return set(problems)


async def list_objects(client: Client, static: StaticConfig) -> list[KubeObject]:
    """One listing of every kind the Watcher would watch; a kind that is not served (CRDs missing) is
    left out."""
    objs: list[KubeObject] = []
    for w in watched_kinds(static):
        try:
            listing = await client.resource(w.api_version, w.plural).list()
        except Exception:  # noqa: BLE001 - a group that is not served is skipped
            continue
        objs += [{**o, "kind": w.kind, "apiVersion": w.api_version} for o in listing.get("items") or ()]
    return objs


# ---------------------------------------------------------------------------------- worker plumbing
_HDR = struct.Struct("!IB")


async def _send(writer: asyncio.StreamWriter, kind: int, obj: object) -> None:
    data = pickle.dumps(obj)
    writer.write(_HDR.pack(len(data), kind) + data)
    await writer.drain()


async def _recv(reader: asyncio.StreamReader) -> tuple[int, object]:
    """(1, DynamicConfig) to a worker, (2, MetricsSnapshot) from one."""
    size, kind = _HDR.unpack(await reader.readexactly(_HDR.size))
    obj: object = pickle.loads(await reader.readexactly(size))  # noqa: S301 - our own child process
    return kind, obj


def _ssl_for(state: ProxyState) -> Callable[[str], ssl.SSLContext | None]:
    def ssl_for(name: str) -> ssl.SSLContext | None:
        ep = state.static.entrypoints[name]
        if not ep.tls:
            return None
        return listening_context(lambda: state.tls_store)
    return ssl_for


def _install_tls(state: ProxyState) -> None:
    def rebuild(compiled: Compiled) -> None:
        old = state.tls_store.errors
        state.tls_store = build_store(compiled.config, host_options(compiled.config))
        state.tls_changed()
        for problem in state.tls_store.errors:
            if problem not in old:  # said once, not on every reload
                log.warning("ingress: %s", problem)
    state.on_apply.append(rebuild)
    state.tls_store = build_store(DynamicConfig())


def _settle_heap() -> None:
    """Move the live configuration out of the cyclic GC's reach after a reload: otherwise every full
    collection walks thousands of compiled routes in the middle of request bursts (a tail-latency spike).
    The previous configuration's garbage is collected first, so nothing stale stays frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def grace_period(static: StaticConfig) -> float:
    """How long a stopping proxy lets requests in flight finish (the longest entry point graceTimeOut)."""
    return max((ep.grace_timeout for ep in static.entrypoints.values()), default=10.0)


class Listening(Protocol):
    """A listener ``stop_gently`` closes (an entry point's server)."""

    def close(self) -> None: ...


async def stop_gently(state: ProxyState, servers: Sequence[Listening]) -> None:
    """Stop accepting, let what is in flight finish (HTTP/2 clients get a GOAWAY), then close the rest."""
    state.stopping = True
    for s in servers:
        s.close()
    try:
        await state.drain(grace_period(state.static))
    finally:
        state.close()


async def _worker_main(static: StaticConfig, names: list[str], sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    state = ProxyState(loop, static)
    _install_tls(state)
    servers = await start_entrypoints(state, names, _ssl_for(state))
    relay_view = UDPRelayView(static)
    state.on_apply.append(relay_view.update)
    reader, writer = await asyncio.open_connection(sock=sock)
    state.spawn(state.sweeper())
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)

    async def push_metrics() -> None:
        try:
            while True:
                await asyncio.sleep(1.0)
                await _send(writer, 2, state.metrics.snapshot())
        except ConnectionError:
            pass  # the supervisor is gone: the worker is stopping

    async def configs() -> None:
        try:
            while True:
                kind, obj = await _recv(reader)
                if kind == 1:
                    state.apply(cast(DynamicConfig, obj))
                    _settle_heap()
                elif kind == 3:
                    relay_view.fail(cast(str, obj))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # supervisor gone: exit

    state.spawn(push_metrics())
    reading = loop.create_task(configs())
    await asyncio.wait([reading, loop.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    reading.cancel()
    await stop_gently(state, servers)


def _fork_worker(static: StaticConfig, names: list[str]) -> tuple[int, socket.socket]:
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        parent.close()
        code = 0
        try:
            import uvloop

            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            uvloop.run(_worker_main(static, names, child))
        except BaseException:  # noqa: BLE001 - a child never returns into the parent's code
            log.exception("ingress: worker failed")
            code = 1
        finally:
            os._exit(code)
    child.close()
    return pid, parent


async def run(static: StaticConfig, client: Client | None, workers: int, worker_socks: list[socket.socket],
              objects: list[KubeObject] | None = None, explain: Explain | None = None) -> None:
    """Supervisor loop (call after :func:`fork_workers`); ``objects`` replaces the API watch; ``explain``
    answers the API's ``/api/explain``."""
    loop = asyncio.get_running_loop()
    snapshots: dict[int, MetricsSnapshot] = {}
    writers: list[asyncio.StreamWriter] = []
    state = ProxyState(loop, static, metrics_source=lambda: [state.metrics.snapshot(), *snapshots.values()],
                       explain=explain)
    _install_tls(state)
    internal_names = [n for n in static.entrypoints if n in ("traefik", "metrics")] if workers else []
    local_names = internal_names if workers else list(static.entrypoints)
    servers = await start_entrypoints(state, local_names, _ssl_for(state))
    state.spawn(state.sweeper())

    def tell_workers(reason: str) -> None:
        for w in writers:
            state.spawn(_send(w, 3, reason))
    udp_relay = _kernel_udp_relay(static, state, tell_workers)

    for i, sock in enumerate(worker_socks):
        reader, writer = await asyncio.open_connection(sock=sock)
        writers.append(writer)

        async def collect(i: int = i, reader: asyncio.StreamReader = reader) -> None:
            try:
                while True:
                    kind, obj = await _recv(reader)
                    if kind == 2:
                        snapshots[i] = cast(MetricsSnapshot, obj)
            except (asyncio.IncompleteReadError, ConnectionError):
                if not state.stopping:
                    log.error("ingress: worker %d exited", i)

        state.spawn(collect())

    def publish(cfg: DynamicConfig) -> None:
        state.apply(cfg)
        _settle_heap()
        for w in writers:
            state.spawn(_send(w, 1, cfg))

    publish(build_config(static, objects or []))
    if objects is not None and static.gateway is not None:
        # no API to write statuses to: what they would say about refused objects is logged
        log_gateway_problems(load_gateways(objects, static.gateway).problems, set())
    try:
        if objects is not None:
            await asyncio.Event().wait()
        assert client is not None, "run() needs a client or objects"
        await Watcher(client, static, publish).run()
    finally:
        if udp_relay is not None:
            udp_relay.close()
        await stop_gently(state, servers)


def _kernel_udp_relay(static: StaticConfig, state: ProxyState,
                      tell_workers: Callable[[str], None]) -> KernelUDPRelay | None:
    """The supervisor keeps UDP routers as nftables rules where it can (``proxy/udp_kernel.py``); the
    workers hear when nftables refused them."""
    if not any(ep.protocol == "udp" for ep in static.entrypoints.values()):
        return None
    relay = KernelUDPRelay(static, state.loop, tell_workers)
    if relay.unavailable:
        log.info("ingress: UDP routers are relayed in userspace: %s", relay.unavailable)
    state.on_apply.append(relay.update)
    return relay


def fork_workers(static: StaticConfig, workers: int) -> tuple[list[int], list[socket.socket]]:
    names = [n for n in static.entrypoints if n not in ("traefik", "metrics")]
    pids, socks = [], []
    for _ in range(workers):
        pid, sock = _fork_worker(static, names)
        pids.append(pid)
        socks.append(sock)
    return pids, socks
