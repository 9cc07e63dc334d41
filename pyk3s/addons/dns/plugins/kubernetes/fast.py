"""The kubernetes plugin's fast answers: which questions to precompute, what a change touches, and the
shared NXDOMAIN for search-path misses (spec dns.md, fast path).

Rules:
- Questions: per Service its A/AAAA (the families it has), SRV, named-port SRV and endpoint A; the PTRs
  of ClusterIPs and endpoint addresses in the reverse zones the plugin serves.
- A change between two index versions is the questions of the Services whose records changed
  (`KubernetesPlugin.changed_since`) in either version, and the PTRs of their addresses; anything the
  change history cannot tell means "precompute everything".
- Search-path misses (`x.<ns>.svc.<zone>.svc.<zone>` and friends) are NXDOMAIN from one rule: a name
  under the zone whose `svc`/`pod` label is preceded by an absent namespace, or by an absent Service
  (`SearchMissRule.cut`). The rule is made from a probe answered through the chain, and only when the
  plugin answers NXDOMAIN itself there (no fallthrough, no other block below the zone).
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import dns.rdatatype as T

from ...fast import nx_template
from ...plugin import BlockAnswers, FastDelta, FastView, NxRule, Question
from ...wirecache import name_wire
from .config import KubeOptions
from .index import KubeIndex, ServiceRecord

__all__ = ["NX_PROBE_NS", "IndexOwner", "KubeView", "SearchMissRule"]

NX_PROBE_NS = "pk-absent-ns"            # a namespace the NXDOMAIN rule's probe assumes absent


class IndexOwner(Protocol):
    """What a view needs of its kubernetes plugin."""

    opts: KubeOptions

    def changed_since(self, generation: int) -> frozenset[tuple[str, str]] | None: ...

    def pinned(self, idx: KubeIndex) -> contextlib.AbstractContextManager[None]: ...


class KubeView(FastView):
    """One index version of a kubernetes plugin, as the fast table uses it."""

    __slots__ = ("index", "plugin")

    def __init__(self, plugin: IndexOwner, index: KubeIndex) -> None:
        self.plugin, self.index = plugin, index

    @property
    def ready(self) -> bool:
        return self.index.synced

    @property
    def serial(self) -> int:
        return self.index.serial

    def pinned(self) -> contextlib.AbstractContextManager[None]:
        return self.plugin.pinned(self.index)

    def questions(self) -> Iterator[Question]:
        opts = self.plugin.opts
        idx = self.index
        for svc in idx.services.values():
            yield from service_questions(opts, svc)
        for ip in list(idx.by_cluster_ip) + list(idx.by_endpoint_ip):
            rev = ptr_name(opts, ip)
            if rev is not None:
                yield rev, T.PTR

    def delta(self, old: FastView) -> FastDelta | None:
        assert isinstance(old, KubeView)
        prev, new = old.index, self.index
        keys = self.plugin.changed_since(prev.generation) if prev.synced and new.synced else None
        if keys is None or (NX_PROBE_NS in prev.namespaces) != (NX_PROBE_NS in new.namespaces):
            return None
        opts = self.plugin.opts
        stale: list[Question] = []
        fresh: list[Question] = []
        ips: set[str] = set()
        for key in keys:
            for idx, out in ((prev, stale), (new, fresh)):
                rec = idx.services.get(key)
                if rec is not None:
                    out.extend(service_questions(opts, rec))
                    ips.update(rec.cluster_ips)
                    ips.update(e.address for e in rec.endpoints)
        for ip in ips:
            rev = ptr_name(opts, ip)
            if rev is not None:
                stale.append((rev, T.PTR))
                if ip in new.by_cluster_ip or ip in new.by_endpoint_ip:
                    fresh.append((rev, T.PTR))
        return FastDelta(tuple(stale), tuple(fresh))

    async def nx_rule(self, block: BlockAnswers) -> SearchMissRule | None:
        opts = self.plugin.opts
        zone = opts.primary_zone
        if opts.fall.through("x.svc." + zone) or not block.owns(zone):
            return None
        idx = self.index
        if NX_PROBE_NS in idx.namespaces:
            return None
        with self.pinned():
            reply = await block.answer(f"pk-nx-probe.{NX_PROBE_NS}.svc." + zone, T.A)
        template = None if reply is None else nx_template(reply)
        if template is None:
            return None
        flags, soa = template
        return SearchMissRule(
            zone=name_wire(zone),
            namespaces=frozenset(n.encode() for n in idx.namespaces),
            services={ns.encode(): frozenset(s.encode() for s in names) for ns, names in idx.services_by_ns.items()},
            shadowed=frozenset(name_wire(n) for n in block.shadowed),
            flags=flags,
            soa=soa,
        )

    def nx_updated(self, rule: NxRule, old: FastView) -> NxRule:
        assert isinstance(rule, SearchMissRule) and isinstance(old, KubeView)
        return rule.updated(old.index, self.index)


def service_questions(opts: KubeOptions, svc: ServiceRecord) -> Iterator[Question]:
    """The questions only this Service's record answers (not its PTRs)."""
    if svc.kind == "external":
        return
    base = f"{svc.name}.{svc.namespace}.svc.{opts.primary_zone}"
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


def ptr_name(opts: KubeOptions, ip: str) -> str | None:
    """The reverse name of `ip` when the plugin serves its reverse zone."""
    if "in-addr.arpa." not in opts.zones and "ip6.arpa." not in opts.zones:
        return None
    try:
        rev = ipaddress.ip_address(ip).reverse_pointer + "."
    except ValueError:          # an address the API let through but that is no IP: no PTR
        return None
    return rev if any(z == "." or rev == z or rev.endswith("." + z) for z in opts.zones) else None


@dataclass(frozen=True, slots=True)
class SearchMissRule:
    """NXDOMAIN for names under the cluster zone that no namespace or Service of the index can match."""

    zone: bytes                                 # lower-case wire form, e.g. b"\x07cluster\x05local\x00"
    namespaces: frozenset[bytes]
    services: dict[bytes, frozenset[bytes]]     # namespace -> service names
    shadowed: frozenset[bytes]                  # names another plugin (hosts) answers
    flags: int
    soa: bytes                                  # SOA RR after its owner name

    def cut(self, qname: bytes) -> int:
        if not qname.endswith(self.zone) or qname in self.shadowed:
            return -1
        cut = len(qname) - len(self.zone)
        labels = []
        pos = 0
        while pos < cut:
            ln = qname[pos]
            if ln > 63 or ln == 0:
                return -1
            labels.append(qname[pos + 1:pos + 1 + ln])
            pos += ln + 1
        if pos != cut or len(labels) < 2 or labels[-1] not in (b"svc", b"pod"):
            return -1
        ns = labels[-2]
        if ns in self.namespaces:
            if labels[-1] != b"svc" or len(labels) < 3:
                return -1
            if len(labels) <= 5 and labels[-3] in self.services.get(ns, ()):
                return -1
        return cut

    def updated(self, old: KubeIndex, new: KubeIndex) -> SearchMissRule:
        """The rule for `new`, re-encoding only the namespaces whose Service names changed."""
        namespaces = self.namespaces
        if new.namespaces is not old.namespaces:
            namespaces = frozenset(n.encode() for n in new.namespaces)
        services = self.services
        if new.services_by_ns is not old.services_by_ns:
            services = dict(services)
            for ns in set(old.services_by_ns) | set(new.services_by_ns):
                names = new.services_by_ns.get(ns)
                if names is old.services_by_ns.get(ns):
                    continue
                if names:
                    services[ns.encode()] = frozenset(s.encode() for s in names)
                else:
                    services.pop(ns.encode(), None)
        soa = self.soa
        if new.serial != old.serial:
            soa = soa[:-20] + struct.pack(">I", new.serial) + soa[-16:]
        if namespaces is self.namespaces and services is self.services and soa is self.soa:
            return self
        return replace(self, namespaces=namespaces, services=services, soa=soa)
