"""The kubernetes plugin (spec dns.md section 2): answers from a compiled KubeIndex, swapped whole.

    kubernetes [ZONES...] { pods ...  ttl ...  fallthrough ...  (see config.py) }

`load(services, endpointslices, pods, namespaces)` indexes a whole set of API objects (first sync, tests);
`apply(changes)` folds object changes into the current index (the informer glue, watch.py). Both go
through the plugin's IndexBuilder and swap the result in; listeners registered with `on_change` (the fast
path) are told after each swap and ask `changed_since` what to recompute.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import dns.message
import dns.rcode
import dns.rdatatype as T

from ...corefile import Directive
from ...plugin import BlockContext, Handler, Plugin, Request, soa_reply, soa_rrset, zone_owner
from .builder import Change, IndexBuilder
from .config import KubeOptions, parse_options
from .index import EMPTY_INDEX, KubeIndex, ServiceRecord
from .lookup import lookup

if TYPE_CHECKING:
    from ...runtime import Runtime

__all__ = ["KubernetesPlugin"]

log = logging.getLogger("pyk3s.dns.kubernetes")
MAX_CNAME_DEPTH = 10
# per task (a contextvar): the fast-table build's index for each plugin
_PINNED: contextvars.ContextVar[dict[KubernetesPlugin, KubeIndex] | None] = contextvars.ContextVar(
    "pyk3s_dns_pinned_index", default=None)


class KubernetesPlugin(Plugin):
    name = "kubernetes"

    def __init__(self, opts: KubeOptions, ctx: BlockContext | None = None) -> None:
        self.opts = opts
        self.ctx = ctx
        self.index: KubeIndex = EMPTY_INDEX
        self.builder = IndexBuilder(opts)
        self._listeners: list[Callable[[], None]] = []
        self._watch: object | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> KubernetesPlugin:
        return cls(parse_options(d, ctx), ctx)

    # -- data ----------------------------------------------------------------------------------
    def load(self, services: Iterable[dict], endpointslices: Iterable[dict], pods: Iterable[dict],
             namespaces: Iterable[dict], serial: int | None = None) -> KubeIndex:
        """Index a whole set of API objects from scratch and swap the result in."""
        idx = self.builder.reset(services, endpointslices, pods if self.opts.pods == "verified" else (),
                                 namespaces, serial)
        self.swap(idx)
        return idx

    def apply(self, changes: Iterable[Change], serial: int | None = None) -> KubeIndex | None:
        """Fold object changes into the index and swap it in; None when no answer changed."""
        idx = self.builder.apply(changes, serial)
        if idx is not None:
            self.swap(idx)
        return idx

    def changed_since(self, generation: int) -> frozenset[tuple[str, str]] | None:
        """Services (namespace, name) whose records changed after index `generation`; None: unknown
        (a full load in between, too old, or an index swapped in from elsewhere)."""
        if self.index is not self.builder.index:
            return None
        return self.builder.changed_since(generation)

    def swap(self, idx: KubeIndex) -> None:
        self.index = idx
        for fn in list(self._listeners):
            fn()

    def index_for(self, req: Request) -> KubeIndex:
        """The index a request is answered from: the current one, or while the fast table is being
        built the one it stands for (so its answers never mix two versions)."""
        if req.precompute:
            pinned = _PINNED.get()
            if pinned is not None and self in pinned:
                return pinned[self]
        return self.index

    @contextlib.contextmanager
    def pinned(self, idx: KubeIndex) -> Iterator[None]:
        """Precompute requests of the current task see `idx` (fast.py)."""
        token = _PINNED.set({**(_PINNED.get() or {}), self: idx})
        try:
            yield
        finally:
            _PINNED.reset(token)

    def on_change(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def ready(self) -> bool:
        return self.index.synced

    async def start(self, runtime: Runtime) -> None:
        if runtime.client_factory is None:
            return
        try:
            from .watch import KubeWatch
            client = runtime.client_factory(self.opts.kubeconfig or runtime.kubeconfig)
            self._watch = watch = KubeWatch(self, client)
            await watch.start()
        except Exception as err:  # no API yet: serve (SERVFAIL for cluster names) and report not ready
            log.error("plugin/kubernetes: cannot watch the Kubernetes API: %s", err)
            return
        try:
            await asyncio.wait_for(watch.synced.wait(), self.opts.startup_timeout)
        except TimeoutError:
            log.warning("plugin/kubernetes: starting server with unsynced Kubernetes API")

    async def stop(self) -> None:
        if self._watch is not None:
            await self._watch.stop()  # type: ignore[attr-defined]

    # -- serving -------------------------------------------------------------------------------
    def zone_of(self, name: str) -> str | None:
        best = None
        for z in self.opts.zones:
            if (z == "." or name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
                best = z
        return best

    async def serve(self, req: Request, next_: Handler) -> dns.message.Message:
        zone = self.zone_of(req.name)
        if zone is None:
            return await next_(req)
        if req.qtype in (T.AXFR, T.IXFR):
            return req.reply(dns.rcode.REFUSED)
        idx = self.index_for(req)
        ttl = self.opts.ttl
        if req.qtype == T.SOA and req.name == zone:
            m = req.reply(aa=True)
            m.answer.append(soa_rrset(zone_owner(req, zone), zone, min(ttl, 300), idx.serial, ttl))
            req.note(f"kubernetes: SOA of zone {zone}")
            return m
        out = lookup(idx, self.opts, req.qname, req.name, req.qtype, zone)
        if out.rcode == dns.rcode.NXDOMAIN:
            if self.opts.fall.through(req.name):
                req.note(f"kubernetes: NXDOMAIN ({out.why}); fallthrough to the next plugin")
                return await next_(req)
            if not idx.synced:
                req.note("kubernetes: index not synced yet: SERVFAIL")
                return req.reply(dns.rcode.SERVFAIL)
            req.note(f"kubernetes: NXDOMAIN: {out.why}")
            return soa_reply(req, dns.rcode.NXDOMAIN, zone, ttl, idx.serial)
        answer = list(out.answer)
        if out.external is not None:
            extra = await self._resolve_external(req, out.external)
            if extra is None:
                req.note(f"kubernetes: {out.why}; target has no {T.to_text(req.qtype)} records: NODATA")
                return soa_reply(req, dns.rcode.NOERROR, zone, ttl, idx.serial)
            answer.extend(extra)
        if not answer:
            req.note(f"kubernetes: NODATA: {out.why}")
            return soa_reply(req, dns.rcode.NOERROR, zone, ttl, idx.serial)
        req.note(f"kubernetes: answered from {out.why}")
        m = req.reply(aa=True)
        m.answer.extend(answer)
        m.additional.extend(out.additional)
        return m

    async def _resolve_external(self, req: Request, target: str) -> list | None:
        """P11: in-zone targets resolve here (no data -> None); others through the whole chain."""
        if req.depth >= MAX_CNAME_DEPTH or target == req.name:
            return []
        zone = self.zone_of(target)
        sub = req.derive(target, req.qtype)
        if zone is not None:
            out = lookup(self.index_for(req), self.opts, sub.qname, target, req.qtype, zone)
            records = list(out.answer)
            if out.external is not None and records:
                more = await self._resolve_external(sub, out.external)
                if more is None:
                    return None
                records.extend(more)
            return records or None
        if req.precompute:
            from ...plugin import NotFast
            raise NotFast("ExternalName target outside the cluster zone")
        if req.root is None:
            return []
        reply = await req.root(sub)
        return list(reply.answer)

    # -- fast path -----------------------------------------------------------------------------
    def fast_questions(self, idx: KubeIndex | None = None) -> Iterator[tuple[str, int]]:
        """The common question forms worth precomputing: service and endpoint A/AAAA/SRV, named-port
        SRV, PTRs of ClusterIPs and endpoints (spec: fast path)."""
        idx = self.index if idx is None else idx
        for svc in idx.services.values():
            yield from self.service_questions(svc)
        for ip in list(idx.by_cluster_ip) + list(idx.by_endpoint_ip):
            rev = self.ptr_name(ip)
            if rev is not None:
                yield rev, T.PTR

    def service_questions(self, svc: ServiceRecord) -> Iterator[tuple[str, int]]:
        """The questions of `fast_questions` that only this Service's record answers (not its PTRs)."""
        if svc.kind == "external":
            return
        base = f"{svc.name}.{svc.namespace}.svc.{self.opts.primary_zone}"
        families = {":" in ip for ip in svc.cluster_ips} | {":" in e.address for e in svc.endpoints}
        for six in families or {False}:
            yield base, T.AAAA if six else T.A
        yield base, T.SRV
        ports = svc.ports if svc.kind == "clusterip" else tuple(p for e in svc.endpoints for p in e.ports)
        for p in dict.fromkeys(ports):
            if p.name and p.protocol:
                yield f"_{p.name}._{p.protocol}.{base}", T.SRV
        for label in dict.fromkeys(e.label for e in svc.endpoints):
            yield f"{label}.{base}", T.A

    def ptr_name(self, ip: str) -> str | None:
        """The reverse name of `ip` when this plugin serves its reverse zone."""
        if "in-addr.arpa." not in self.opts.zones and "ip6.arpa." not in self.opts.zones:
            return None
        try:
            rev = ipaddress.ip_address(ip).reverse_pointer + "."
        except ValueError:          # an address the API let through but that is no IP: no PTR
            return None
        return rev if self.zone_of(rev) is not None else None
