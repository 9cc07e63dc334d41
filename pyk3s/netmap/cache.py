"""What the map watches, and the caches that hold it.

``SOURCES`` is the table of watched kinds and the views each one feeds. Every source is one informer
(list, then watch), started only when the API serves the kind (discovery; a CRD that appears later is
picked up when it is established). A change marks its views; bursts are folded into one notice per
``THROTTLE`` seconds, handed to every subscriber (the page's event stream) with the views that
changed. The map only reads: nothing here writes to the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ingress import ingress_kinds

if TYPE_CHECKING:
    from pyk3s.client import Client
    from pyk3s.client.informer import Handler, Informer

__all__ = ["SOURCES", "THROTTLE", "VIEWS", "MapCache", "Notice", "Source"]

log = logging.getLogger("pyk3s.netmap")

THROTTLE = 0.15
VIEWS = ("nodes", "services", "ingress", "policies", "dns")


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    api_version: str
    plural: str
    kind: str
    views: frozenset[str]
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None


def _sources() -> tuple[Source, ...]:
    base = [
        Source("nodes", "v1", "nodes", "Node", frozenset({"nodes", "services", "policies"})),
        Source("namespaces", "v1", "namespaces", "Namespace", frozenset({"services", "policies"})),
        Source("services", "v1", "services", "Service", frozenset({"services", "ingress"})),
        Source("endpointslices", "discovery.k8s.io/v1", "endpointslices", "EndpointSlice",
               frozenset({"services", "ingress"})),
        Source("pods", "v1", "pods", "Pod", frozenset({"nodes", "services", "ingress", "policies"})),
        Source("events", "v1", "events", "Event", frozenset({"services", "ingress"}),
               field_selector="involvedObject.kind=Service"),
        Source("networkpolicies", "networking.k8s.io/v1", "networkpolicies", "NetworkPolicy",
               frozenset({"policies"})),
        Source("configmaps", "v1", "configmaps", "ConfigMap", frozenset({"dns", "services"}), namespace="kube-system"),
        Source("deployments", "apps/v1", "deployments", "Deployment", frozenset({"ingress"}),
               label_selector="app.kubernetes.io/name=traefik"),
        Source("crds", "apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition",
               frozenset()),
    ]
    have = {(s.api_version, s.plural) for s in base}
    for w in ingress_kinds():
        if (w.api_version, w.plural) not in have:
            base.append(Source(f"{w.api_version}/{w.plural}", w.api_version, w.plural, w.kind, frozenset({"ingress"})))
    return tuple(base)


SOURCES = _sources()
# the sources whose objects the ingress providers read (services and endpointslices included)
INGRESS_SOURCES = tuple(s.name for s in SOURCES
                        if (s.api_version, s.plural) in {(w.api_version, w.plural) for w in ingress_kinds()})


@dataclass(frozen=True, slots=True)
class Notice:
    revision: int
    views: tuple[str, ...]


@dataclass
class _Watch:
    source: Source
    informer: Informer | None = None
    missing: str = ""  # why it is not watched


class MapCache:
    def __init__(self, client: Client, sources: Iterable[Source] = SOURCES, throttle: float = THROTTLE) -> None:
        self.client, self.throttle = client, throttle
        self.watches = {s.name: _Watch(s) for s in sources}
        self.revision = 0
        self.revisions: dict[str, int] = dict.fromkeys(VIEWS, 0)
        self._dirty: set[str] = set()
        self._pending: asyncio.TimerHandle | None = None
        self._subscribers: set[asyncio.Queue[Notice]] = set()
        self._served: set[tuple[str, str]] = set()
        self._discovering: asyncio.Task[None] | None = None

    # -- reading ---------------------------------------------------------------------------------
    def objects(self, name: str) -> list[dict[str, Any]]:
        w = self.watches[name]
        if w.informer is None:
            return []
        out = []
        for obj in w.informer.list():
            if obj.get("kind") != w.source.kind or obj.get("apiVersion") != w.source.api_version:
                obj = {**obj, "kind": w.source.kind, "apiVersion": w.source.api_version}
            out.append(obj)
        return out

    def served(self, name: str) -> bool:
        return self.watches[name].informer is not None

    def status(self) -> dict[str, Any]:
        return {"revision": self.revision, "revisions": dict(self.revisions),
                "synced": all(w.informer.synced for w in self.watches.values() if w.informer is not None),
                "notWatched": {n: w.missing for n, w in self.watches.items() if w.informer is None}}

    # -- subscribers -----------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[Notice]:
        q: asyncio.Queue[Notice] = asyncio.Queue(maxsize=64)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Notice]) -> None:
        self._subscribers.discard(q)

    def _changed(self, views: frozenset[str]) -> None:
        self._dirty |= views
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.throttle, self._flush)

    def _flush(self) -> None:
        self._pending = None
        views, self._dirty = tuple(sorted(self._dirty)), set()
        if not views:
            return
        self.revision += 1
        for v in views:
            self.revisions[v] = self.revision
        notice = Notice(self.revision, views)
        for q in list(self._subscribers):
            if q.full():  # a reader that stopped reading gets the next notice after a fresh one
                q.get_nowait()
            q.put_nowait(notice)

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, sync_timeout: float = 10.0) -> None:
        await self._discover()
        waits = [w.informer.wait_synced(sync_timeout) for w in self.watches.values() if w.informer is not None]
        results = await asyncio.gather(*waits, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                log.warning("map: a watch is not synced yet (%s); it fills in when it is", type(res).__name__)

    async def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        if self._discovering is not None:
            self._discovering.cancel()
        for w in self.watches.values():
            if w.informer is not None:
                await w.informer.stop()

    async def _served_resources(self) -> set[tuple[str, str]]:
        from pyk3s.client import ApiError, TransportError

        served: set[tuple[str, str]] = set()
        for api_version in sorted({w.source.api_version for w in self.watches.values()}):
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = await self.client.call("GET", path)
            except (ApiError, TransportError, OSError):
                continue
            served |= {(api_version, r.get("name", "")) for r in doc.get("resources") or []}
        return served

    async def _discover(self) -> None:
        from pyk3s.client.informer import Informer

        self._served = await self._served_resources()
        started = False
        for w in self.watches.values():
            s = w.source
            if w.informer is not None:
                continue
            if (s.api_version, s.plural) not in self._served:
                w.missing = f"{s.api_version} {s.plural} is not served by this cluster"
                continue
            w.missing = ""
            w.informer = Informer(self.client.resource(s.api_version, s.plural), namespace=s.namespace,
                                  label_selector=s.label_selector, field_selector=s.field_selector)
            w.informer.add_handler(self._handler(s))
            await w.informer.start()
            started = True
        if started:
            self._changed(frozenset(VIEWS))

    def _handler(self, source: Source) -> Handler:
        def handle(_typ: str, _old: dict[str, Any] | None, _new: dict[str, Any] | None) -> None:
            if source.name == "crds":
                self._rediscover()
            self._changed(source.views)
        return handle

    def _rediscover(self) -> None:
        """A CRD came or went: start the informers of kinds that are now served (after a moment, so
        that the CRD is established)."""
        if self._discovering is not None and not self._discovering.done():
            return

        async def later() -> None:
            await asyncio.sleep(0.5)
            await self._discover()
        self._discovering = asyncio.get_running_loop().create_task(later())
