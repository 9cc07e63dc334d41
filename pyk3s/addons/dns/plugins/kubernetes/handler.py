"""The kubernetes plugin (spec dns.md section 2): answers from a compiled KubeIndex, swapped whole.

    kubernetes [ZONES...] { pods ...  ttl ...  fallthrough ...  (see config.py) }

`load(services, endpointslices, pods, namespaces)` indexes a whole set of API objects (first sync, tests);
`apply(changes)` folds object changes into the current index (the informer glue, watch.py). Both go
through the plugin's IndexBuilder and swap the result in, then tell the host that the answers changed;
the fast table asks the plugin's view (fast.py) what to recompute.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import dns.message
import dns.rcode
import dns.rdatatype as T
import dns.rrset

from ...corefile import Directive
from ...options import zone_test
from ...plugin import (
    BlockContext,
    DnsRequest,
    Handler,
    Host,
    NotFast,
    Plugin,
    WireHop,
    soa_reply,
    soa_rrset,
    zone_owner,
)
from .builder import Change, IndexBuilder
from .config import KubeOptions, parse_options
from .fast import KubeView
from .index import EMPTY_INDEX, KubeIndex
from .lookup import lookup

if TYPE_CHECKING:
    from .watch import KubeWatch

__all__ = ["KubernetesPlugin"]

log = logging.getLogger("pyk3s.dns.kubernetes")
MAX_CNAME_DEPTH = 10
# per task (a contextvar): the fast-table build's index for each plugin
_PINNED: contextvars.ContextVar[dict[KubernetesPlugin, KubeIndex] | None] = contextvars.ContextVar(
    "pyk3s_dns_pinned_index", default=None)


class KubernetesPlugin(Plugin):
    name = "kubernetes"

    def __init__(self, opts: KubeOptions) -> None:
        self.opts = opts
        self.index: KubeIndex = EMPTY_INDEX
        self.builder = IndexBuilder(opts)
        self.host: Host | None = None
        self._view = KubeView(self, self.index)
        self._watch: KubeWatch | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> KubernetesPlugin:
        return cls(parse_options(d, ctx))

    # -- data ----------------------------------------------------------------------------------
    def load(self, services: Iterable[dict[str, Any]], endpointslices: Iterable[dict[str, Any]],
             pods: Iterable[dict[str, Any]], namespaces: Iterable[dict[str, Any]],
             serial: int | None = None) -> KubeIndex:
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
        if self.host is not None:
            self.host.answers_changed()

    def index_for(self, req: DnsRequest) -> KubeIndex:
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

    def fast_view(self) -> KubeView:
        if self._view.index is not self.index:
            self._view = KubeView(self, self.index)
        return self._view

    def ready(self) -> bool:
        return self.index.synced

    async def start(self, host: Host) -> None:
        self.host = host
        try:
            client = host.kube_client(self.opts.kubeconfig)
            if client is None:
                return
            from .watch import KubeWatch  # the API client is only loaded when there is an API
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
            await self._watch.stop()

    # -- serving -------------------------------------------------------------------------------
    def zone_of(self, name: str) -> str | None:
        best = None
        for z in self.opts.zones:
            if (z == "." or name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
                best = z
        return best

    def pod_namespace(self, ip: str) -> str | None:
        """The namespace of the running pod whose primary IP is `ip` (canonical text), with `pods verified`;
        None otherwise (autopath's search path)."""
        if self.opts.pods != "verified":
            return None
        for ns, ips in self.index.pod_ips.items():
            if ip in ips:
                return ns
        return None

    def wire_hop(self) -> WireHop:
        # names outside its zones go on untouched; its own names stay on the chain
        mine = zone_test(self.opts.zones)
        return WireHop(admit=lambda q: not mine(q.name))

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
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

    async def _resolve_external(self, req: DnsRequest, target: str) -> list[dns.rrset.RRset] | None:
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
            raise NotFast("ExternalName target outside the cluster zone")
        if req.root is None:
            return []
        reply = await req.root(sub)
        return list(reply.answer)
