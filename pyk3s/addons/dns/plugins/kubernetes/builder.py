"""IndexBuilder: the kubernetes plugin's index kept up to date object by object.

The builder remembers what the current index was made of: each Service parsed without its endpoints,
each EndpointSlice's ready endpoints, each counted pod's IP. A change re-derives only the ServiceRecords
it touches, then publishes a new KubeIndex whose maps are copies of the previous ones (a C-level dict
copy) patched for those records. `compile_index` over the same objects gives an equal index (the unit
tests replay random change sequences against it).

A malformed object is logged by name and ignored: its previous version, if there was one, stays in
force, so one bad object costs neither the last good answers nor the updates of the other objects.

Every published index gets the next generation number; `changed_since(g)` names the Services whose
records differ between generation g and now, for a bounded history (the fast table's incremental
update; anything older, or a full reset in between, means a full rebuild).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from operator import itemgetter
from sys import intern

from .config import KubeOptions
from .index import (
    EMPTY_INDEX,
    Endpoint,
    KubeIndex,
    ServiceRecord,
    broken,
    endpoint_pairs,
    parse_service,
    parse_slice,
    pod_ip,
    with_endpoints,
)

__all__ = ["Change", "IndexBuilder", "change_of"]

Key = tuple[str, str]
Change = tuple[str, str, str, dict | None]   # informer plural, namespace, name, the object now (None: gone)
HISTORY = 64
_KIND_NAMES = {"services": "Service", "endpointslices": "EndpointSlice", "pods": "Pod", "namespaces": "Namespace"}


def change_of(kind: str, obj: dict, gone: bool = False) -> Change | None:
    """The change an informer event stands for; None when the object has no name to key it by."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(md, dict):
        return None
    name = md.get("name")
    if not isinstance(name, str) or not name:
        return None
    ns = md.get("namespace") or ""
    return kind, ns if isinstance(ns, str) else "", name, None if gone else obj


@dataclass(slots=True)
class _Pending:
    keys: set[Key] = field(default_factory=set)            # Services to re-derive
    namespaces: set[str] = field(default_factory=set)      # namespaces that came or went
    pod_ns: set[str] = field(default_factory=set)          # namespaces whose pod IPs changed


class IndexBuilder:
    def __init__(self, opts: KubeOptions) -> None:
        self.opts = opts
        self.index: KubeIndex = EMPTY_INDEX
        self._bases: dict[Key, ServiceRecord] = {}                 # Services without endpoints
        self._slices: dict[tuple[str, str], tuple[Key, tuple[Endpoint, ...]]] = {}  # (ns, slice) -> owner, endpoints
        self._slice_names: dict[Key, tuple[str, ...]] = {}         # Service -> names of its slices, sorted
        self._pods: dict[tuple[str, str], str] = {}                # (ns, pod) -> IP, counted pods only
        self._pod_count: dict[str, dict[str, int]] = {}            # ns -> IP -> pods with that IP
        self._namespaces: set[str] = set()
        self._cip_dups: dict[str, tuple[Key, ...]] = {}            # ClusterIPs claimed by several Services
        self._history: deque[tuple[int, frozenset[Key] | None]] = deque(maxlen=HISTORY)

    # -- entry points ----------------------------------------------------------------------------
    def reset(self, services: Iterable[dict], endpointslices: Iterable[dict], pods: Iterable[dict],
              namespaces: Iterable[dict], serial: int | None = None, synced: bool = True) -> KubeIndex:
        """Forget everything and index these objects (first sync, `load`)."""
        self._bases.clear()
        self._slices.clear()
        self._slice_names.clear()
        self._pods.clear()
        self._pod_count.clear()
        self._namespaces.clear()
        self._cip_dups.clear()
        pend = _Pending()
        for kind, objs in (("namespaces", namespaces), ("endpointslices", endpointslices),
                           ("services", services), ("pods", pods)):
            for obj in objs:
                ch = change_of(kind, obj)
                if ch is None:
                    broken(_KIND_NAMES[kind], obj, ValueError("no metadata.name"))
                    continue
                self._take(ch, pend)
        idx = self._publish(pend, serial, synced, full=True)
        assert idx is not None
        return idx

    def apply(self, changes: Iterable[Change], serial: int | None = None) -> KubeIndex | None:
        """Fold changes (the object now, or None when deleted) into a new index; None if no answer
        changes (the current index stays, serial included)."""
        pend = _Pending()
        for ch in changes:
            self._take(ch, pend)
        return self._publish(pend, serial, self.index.synced, full=False)

    def changed_since(self, generation: int) -> frozenset[Key] | None:
        """Services whose records changed after `generation`; None when that is not known any more."""
        if generation == self.index.generation:
            return frozenset()
        later = [(g, keys) for g, keys in self._history if g > generation]
        if not later or later[0][0] != generation + 1:
            return None
        out: set[Key] = set()
        for _, keys in later:
            if keys is None:
                return None
            out |= keys
        return frozenset(out)

    # -- objects in ------------------------------------------------------------------------------
    def _take(self, ch: Change, pend: _Pending) -> None:
        kind, ns, name, obj = ch
        if kind == "services":
            self._service(ns, name, obj, pend)
        elif kind == "endpointslices":
            self._slice(ns, name, obj, pend)
        elif kind == "pods":
            self._pod(ns, name, obj, pend)
        elif kind == "namespaces":
            self._namespace(name, obj, pend)

    def _service(self, ns: str, name: str, obj: dict | None, pend: _Pending) -> None:
        key = (intern(ns.lower()), intern(name.lower()))   # the same strings as in the records
        base = None
        if obj is not None:
            try:
                base = parse_service(obj, self.opts)
            except Exception as err:  # keep the last good version of this Service
                broken("Service", obj, err)
                return
        if base is None:
            if self._bases.pop(key, None) is None:
                return
        else:
            if self._bases.get(key) == base:
                return
            self._bases[key] = base
        pend.keys.add(key)

    def _slice(self, ns: str, name: str, obj: dict | None, pend: _Pending) -> None:
        skey = (intern(ns.lower()), name)
        new = None
        if obj is not None:
            try:
                owner, eps = parse_slice(obj, self.opts)
            except Exception as err:  # keep the last good version of this slice
                broken("EndpointSlice", obj, err)
                return
            if owner is not None:
                new = (owner, eps)
        old = self._slices.get(skey)
        if old == new:
            return
        if old is not None:
            names = tuple(n for n in self._slice_names.get(old[0], ()) if n != name)
            if names:
                self._slice_names[old[0]] = names
            else:
                self._slice_names.pop(old[0], None)
            pend.keys.add(old[0])
        if new is None:
            self._slices.pop(skey, None)
        else:
            self._slices[skey] = new
            self._slice_names[new[0]] = tuple(sorted((*self._slice_names.get(new[0], ()), name)))
            pend.keys.add(new[0])

    def _pod(self, ns: str, name: str, obj: dict | None, pend: _Pending) -> None:
        if self.opts.pods != "verified":
            return
        pkey = (ns.lower(), name)
        ip = None
        if obj is not None:
            try:
                ip = pod_ip(obj)
            except Exception as err:
                broken("Pod", obj, err)
                return
        old = self._pods.get(pkey)
        if old == ip:
            return
        counts = self._pod_count.setdefault(pkey[0], {})
        if old is not None:
            if counts[old] == 1:
                del counts[old]
            else:
                counts[old] -= 1
        if ip is None:
            del self._pods[pkey]
        else:
            self._pods[pkey] = ip
            counts[ip] = counts.get(ip, 0) + 1
        if not counts:
            del self._pod_count[pkey[0]]
        pend.pod_ns.add(pkey[0])

    def _namespace(self, name: str, obj: dict | None, pend: _Pending) -> None:
        lname = name.lower()
        present = obj is not None and (not self.opts.namespaces or lname in self.opts.namespaces)
        if present == (lname in self._namespaces):
            return
        if present:
            self._namespaces.add(lname)
        else:
            self._namespaces.discard(lname)
        pend.namespaces.add(lname)

    # -- index out -------------------------------------------------------------------------------
    def _record(self, key: Key) -> ServiceRecord | None:
        if key[0] not in self._namespaces:
            return None
        base = self._bases.get(key)
        if base is None:
            return None
        return with_endpoints(base, (self._slices[(key[0], n)][1] for n in self._slice_names.get(key, ())))

    def _publish(self, pend: _Pending, serial: int | None, synced: bool, full: bool) -> KubeIndex | None:
        old = replace(EMPTY_INDEX, generation=self.index.generation) if full else self.index
        keys = pend.keys
        if pend.namespaces:
            keys |= {k for k in self._bases if k[0] in pend.namespaces}
        changed: dict[Key, tuple[ServiceRecord | None, ServiceRecord | None]] = {}
        for key in keys:
            prev, new = old.services.get(key), self._record(key)
            if prev is not new and prev != new:
                changed[key] = (prev, new)

        namespaces = old.namespaces
        if pend.namespaces and frozenset(self._namespaces) != namespaces:
            namespaces = frozenset(self._namespaces)
        pod_ips = old.pod_ips
        for ns in pend.pod_ns | pend.namespaces:
            counts = self._pod_count.get(ns)
            want = frozenset(counts) if counts and ns in self._namespaces else None
            if want != pod_ips.get(ns):
                if pod_ips is old.pod_ips:
                    pod_ips = dict(pod_ips)
                if want is None:
                    del pod_ips[ns]
                else:
                    pod_ips[ns] = want
        if not (full or changed or namespaces is not old.namespaces or pod_ips is not old.pod_ips):
            return None

        services, by_ns = old.services, old.services_by_ns
        by_cip, by_eip = old.by_cluster_ip, old.by_endpoint_ip
        if changed:
            services = dict(services)
            ns_delta: dict[str, tuple[set[str], set[str]]] = {}
            cip_ips: set[str] = set()
            eip_ips: set[str] = set()
            cip_new: dict[str, set[Key]] = {}
            eip_new: dict[str, list[tuple[Key, tuple[ServiceRecord, Endpoint]]]] = {}
            for key, (prev, new) in changed.items():
                if new is None:
                    del services[key]
                else:
                    services[key] = new
                    for ip in new.cluster_ips:
                        cip_new.setdefault(ip, set()).add(key)
                    if new.endpoints:
                        for ip, pairs in endpoint_pairs(new).items():
                            eip_new.setdefault(ip, []).extend((key, p) for p in pairs)
                if (prev is None) != (new is None):
                    added, removed = ns_delta.setdefault(key[0], (set(), set()))
                    (removed if new is None else added).add(key[1])
                for r in (prev, new):
                    if r is not None:
                        cip_ips.update(r.cluster_ips)
                        eip_ips.update(e.address for e in r.endpoints)
            if ns_delta:
                by_ns = dict(by_ns)
                for ns, (added, removed) in ns_delta.items():
                    names = (by_ns.get(ns, frozenset()) - removed) | added
                    if names:
                        by_ns[ns] = names
                    else:
                        by_ns.pop(ns, None)
            if cip_ips:
                by_cip = dict(by_cip)
                for ip in cip_ips:
                    owners = self._cip_dups.get(ip)
                    if owners is None:
                        cur = old.by_cluster_ip.get(ip)
                        owners = () if cur is None else ((cur.namespace, cur.name),)
                    keep = {o for o in owners if o not in changed} | cip_new.get(ip, set())
                    if not keep:
                        by_cip.pop(ip, None)
                    else:
                        by_cip[ip] = services[min(keep)]
                    if len(keep) > 1:
                        self._cip_dups[ip] = tuple(sorted(keep))
                    else:
                        self._cip_dups.pop(ip, None)
            if eip_ips:
                by_eip = dict(by_eip)
                for ip in eip_ips:
                    # pairs stay in Service order; those of unchanged Services are reused as they are
                    items = [((r.namespace, r.name), (r, e)) for r, e in old.by_endpoint_ip.get(ip, ())
                             if (r.namespace, r.name) not in changed]
                    add = eip_new.get(ip)
                    if add:
                        items.extend(add)
                        items.sort(key=itemgetter(0))
                    if items:
                        by_eip[ip] = tuple(p for _, p in items)
                    else:
                        by_eip.pop(ip, None)

        gen = self.index.generation + 1
        idx = KubeIndex(
            namespaces=namespaces,
            services=services,
            by_cluster_ip=by_cip,
            by_endpoint_ip=by_eip,
            pod_ips=pod_ips,
            serial=int(time.time()) if serial is None else serial,
            synced=synced,
            services_by_ns=by_ns,
            generation=gen,
        )
        self._history.append((gen, None if full else frozenset(changed)))
        self.index = idx
        return idx
