"""Endpoints and EndpointSlices of Services with a selector, from the matching pods.

Pure part (:func:`desired_endpoints`, :func:`desired_slices`):

* A pod counts if it has an IP and is not Succeeded/Failed. A terminating pod (deletionTimestamp)
  counts in Endpoints only with ``publishNotReadyAddresses``; EndpointSlices always list it with
  ``terminating: true`` and ``ready: false`` (unless publishNotReadyAddresses).
* ready/serving = pod Ready (or publishNotReadyAddresses). Endpoints puts ready pods in
  ``addresses`` and the others in ``notReadyAddresses``; subsets group addresses with the same ports.
* Each Service port resolves its targetPort per pod: a number as is, a name through the pod's
  container ports of the same protocol. A name no container port carries drops that port for that
  pod (the pod is then grouped with a smaller port set) and is reported as a Warning event; with no
  port left the pod is not in Endpoints, and sits in a slice without ports (as upstream).
* Slices: one group per (address type, port set), at most 100 endpoints per slice, named
  ``<svc>-<random>``, labels ``kubernetes.io/service-name`` and
  ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` plus the Service's
  labels, owned by the Service. A Service with no endpoints keeps one empty slice per address type.

Selector-less Services (their Endpoints are the user's), ExternalName Services and the ``kubernetes``
Service (the API server's) are left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyk3s.client import AlreadyExists, NotFound
from pyk3s.client.controller import Result
from pyk3s.k3s.names import ENDPOINTSLICE_CONTROLLER, ENDPOINTSLICE_MANAGED_BY_LABEL, SERVICE_NAME_LABEL

from .common.loop import Loop
from .common.settings import ControllerSettings
from .objects import (
    Obj,
    deep_copy,
    is_deleting,
    key_of,
    labels_match,
    name_of,
    namespace_of,
    split_key,
    uid_of,
)
from .podutil import is_ready, is_terminal
from .written import OwnWrites

__all__ = [
    "EndpointsController",
    "desired_endpoints",
    "desired_slices",
    "manages",
    "resolve_ports",
]

log = logging.getLogger("pyk3s.controllers.endpoints")

HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_PER_SLICE = 100


def manages(svc: Mapping[str, Any]) -> bool:
    spec = svc.get("spec") or {}
    if namespace_of(svc) == "default" and name_of(svc) == "kubernetes":
        return False
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def _selects(svc: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    selector = (svc.get("spec") or {}).get("selector") or {}
    return labels_match({"matchLabels": selector}, (pod.get("metadata") or {}).get("labels") or {})


def resolve_ports(svc: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(ports of this pod for the Service, names of Service ports whose named targetPort is missing)."""
    ports: list[dict[str, Any]] = []
    missing: list[str] = []
    containers = (pod.get("spec") or {}).get("containers") or []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        proto = sp.get("protocol") or "TCP"
        target = sp.get("targetPort", sp.get("port"))
        number: int | None = None
        if isinstance(target, int) or str(target).isdigit():
            number = int(target)
        else:
            for c in containers:
                for cp in c.get("ports") or []:
                    if cp.get("name") == target and (cp.get("protocol") or "TCP") == proto:
                        number = int(cp["containerPort"])
                        break
                if number is not None:
                    break
        if number is None:
            missing.append(sp.get("name") or str(target))
            continue
        port: dict[str, Any] = {"name": sp.get("name") or "", "port": number, "protocol": proto}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    ports.sort(key=lambda p: (p["name"], p["port"], p["protocol"]))
    return ports, missing


def _pod_ips(pod: Mapping[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")]
    return ips or ([status["podIP"]] if status.get("podIP") else [])


def _family_ip(pod: Mapping[str, Any], family: str) -> str | None:
    for ip in _pod_ips(pod):
        if (":" in ip) == (family == "IPv6"):
            return ip
    return None


def _families(svc: Mapping[str, Any]) -> list[str]:
    return list((svc.get("spec") or {}).get("ipFamilies") or ["IPv4"])


def _target_ref(pod: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": uid_of(pod)}


def _where(svc: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, str]:
    """An endpoint's ``nodeName`` and ``hostname`` (the pod's, when its subdomain is the Service), each
    only when set; the same in Endpoints and EndpointSlices."""
    spec = pod.get("spec") or {}
    out: dict[str, str] = {}
    if spec.get("nodeName"):
        out["nodeName"] = spec["nodeName"]
    if spec.get("hostname") and spec.get("subdomain") == name_of(svc):
        out["hostname"] = str(spec["hostname"])
    return out


def _labels(svc: Mapping[str, Any]) -> dict[str, str]:
    labels = dict((svc.get("metadata") or {}).get("labels") or {})
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def desired_endpoints(svc: Obj, pods: Sequence[Obj]) -> Obj:
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    family = _families(svc)[0]
    groups: dict[tuple[Any, ...], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    ports_of: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for pod in pods:
        if is_terminal(pod) or (is_deleting(pod) and not publish) or not _selects(svc, pod):
            continue
        ip = _family_ip(pod, family)
        if ip is None:
            continue
        ports, _missing = resolve_ports(svc, pod)
        if not ports and ((svc.get("spec") or {}).get("ports") or (svc.get("spec") or {}).get("clusterIP") != "None"):
            continue  # no port of this Service resolves for the pod (a port-less headless Service lists it)
        eports = [{k: v for k, v in p.items() if v != "" or k != "name"} for p in ports]
        key = tuple(tuple(sorted(p.items())) for p in eports)
        ports_of[key] = eports
        addr: dict[str, Any] = {"ip": ip, "targetRef": _target_ref(pod), **_where(svc, pod)}
        ready, not_ready = groups.setdefault(key, ([], []))
        (ready if publish or is_ready(pod) else not_ready).append(addr)
    subsets = []
    for key in sorted(groups):
        ready, not_ready = groups[key]
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if ports_of[key]:
            subset["ports"] = ports_of[key]
        subsets.append(subset)
    ep: Obj = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name_of(svc), "namespace": namespace_of(svc)},
    }
    labels = _labels(svc)
    if labels:
        ep["metadata"]["labels"] = labels
    if subsets:
        ep["subsets"] = subsets
    return ep


def desired_slices(svc: Obj, pods: Sequence[Obj]) -> list[Obj]:
    """Slices without names; :class:`EndpointsController` matches them to existing ones by content."""
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    labels = {**_labels(svc), SERVICE_NAME_LABEL: name_of(svc), ENDPOINTSLICE_MANAGED_BY_LABEL: ENDPOINTSLICE_CONTROLLER}
    owner = {"apiVersion": "v1", "kind": "Service", "name": name_of(svc), "uid": uid_of(svc),
             "controller": True, "blockOwnerDeletion": True}
    out: list[Obj] = []
    for family in _families(svc):
        groups: dict[tuple[Any, ...], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for pod in pods:
            if is_terminal(pod) or not _selects(svc, pod):
                continue
            ip = _family_ip(pod, family)
            if ip is None:
                continue
            ports, _missing = resolve_ports(svc, pod)
            terminating = is_deleting(pod)
            serving = publish or is_ready(pod)
            ep: dict[str, Any] = {
                "addresses": [ip],
                "conditions": {"ready": serving and (publish or not terminating), "serving": serving,
                               "terminating": terminating},
                "targetRef": _target_ref(pod),
                **_where(svc, pod),
            }
            key = tuple(tuple(sorted(p.items())) for p in ports)
            groups.setdefault(key, (ports, []))[1].append(ep)
        if not groups:
            groups[()] = ([], [])
        for key in sorted(groups):
            ports, endpoints = groups[key]
            endpoints.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["uid"]))
            chunks = [endpoints[i:i + MAX_PER_SLICE] for i in range(0, len(endpoints), MAX_PER_SLICE)] or [[]]
            for chunk in chunks:
                out.append({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{name_of(svc)}-", "namespace": namespace_of(svc),
                                 "labels": dict(labels), "ownerReferences": [dict(owner)]},
                    "addressType": family,
                    "endpoints": chunk,
                    "ports": ports,
                })
    return out


def _slice_shape(s: Mapping[str, Any]) -> tuple[Any, ...]:
    return (s.get("addressType"), tuple(tuple(sorted(p.items())) for p in s.get("ports") or []))


def _slice_same(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    hm, wm = have.get("metadata") or {}, want["metadata"]
    return (
        (have.get("endpoints") or []) == want["endpoints"]
        and (hm.get("labels") or {}) == wm["labels"]
        and (hm.get("ownerReferences") or []) == wm["ownerReferences"]
    )


def plan_slices(want: Sequence[Obj], have: Sequence[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(to create, to update (existing with new content), to delete)."""
    unused = sorted(have, key=name_of)
    create: list[Obj] = []
    update: list[Obj] = []
    pending: list[Obj] = []
    for w in want:
        same = next((h for h in unused if _slice_shape(h) == _slice_shape(w) and _slice_same(h, w)), None)
        if same is not None:
            unused.remove(same)
        else:
            pending.append(w)
    for w in pending:
        reuse = next((h for h in unused if _slice_shape(h) == _slice_shape(w)), None)
        if reuse is None:
            create.append(w)
            continue
        unused.remove(reuse)
        obj = deep_copy(reuse)
        obj["metadata"]["labels"] = w["metadata"]["labels"]
        obj["metadata"]["ownerReferences"] = w["metadata"]["ownerReferences"]
        obj["endpoints"] = w["endpoints"]
        update.append(obj)
    return create, update, unused


class EndpointsController(Loop):
    name = "endpoints"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.services = self.informer("v1", "services")
        self.pods = self.informer("v1", "pods")
        self.endpoints = self.informer("v1", "endpoints")
        self.slices = self.informer("discovery.k8s.io/v1", "endpointslices",
                                    label_selector=f"{ENDPOINTSLICE_MANAGED_BY_LABEL}={ENDPOINTSLICE_CONTROLLER}")
        self.ep_api = client.resource("v1", "endpoints")
        self.slice_api = client.resource("discovery.k8s.io/v1", "endpointslices")
        self.warned: dict[str, frozenset[tuple[str, str]]] = {}
        # Slices we created (generated names) that the cache has not shown yet: key → (names, when).
        self.unseen: dict[str, tuple[set[str], float]] = {}
        # our updates of Endpoints and slices the caches have not shown yet
        self.own = OwnWrites()
        self.endpoints.add_handler(self.own.on_event)
        self.slices.add_handler(self.own.on_event)
        self.controller.watch(self.services)
        self.controller.watch(self.pods, self._keys_for_pod)
        self.controller.watch(self.endpoints)
        self.controller.watch(self.slices, lambda s: [
            f"{namespace_of(s)}/{((s.get('metadata') or {}).get('labels') or {}).get(SERVICE_NAME_LABEL, '')}"
        ])

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        ns = namespace_of(pod)
        return [key_of(s) for s in self.services.list() if namespace_of(s) == ns and manages(s) and _selects(s, pod)]

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        if ns == "default" and name == "kubernetes":
            return None
        svc = self.services.get(key)
        if svc is None:
            self.warned.pop(key, None)
            if self.endpoints.get(key) is not None:
                try:
                    await self.ep_api.delete(name, ns)
                except NotFound:
                    pass
            return None
        if not manages(svc):
            return None
        pods = [p for p in self.pods.list() if namespace_of(p) == ns and _selects(svc, p)]
        await self._sync_endpoints(svc, pods)
        if not self._slices_seen(key):
            return Result.after(0.2)
        await self._sync_slices(svc, pods)
        await self._warn_missing_ports(key, svc, pods)
        return None

    def _slices_seen(self, key: str) -> bool:
        names, since = self.unseen.get(key, (set(), 0.0))
        ns, _ = split_key(key)
        names = {n for n in names if self.slices.get(f"{ns}/{n}") is None}
        if not names or time.monotonic() - since > self.settings.expectations_ttl:
            self.unseen.pop(key, None)
            return True
        self.unseen[key] = (names, since)
        return False

    async def _sync_endpoints(self, svc: Obj, pods: list[Obj]) -> None:
        want = desired_endpoints(svc, pods)
        have = self.endpoints.get(key_of(svc))
        if have is not None:
            have = self.own.fresher(have)
        if have is None:
            try:
                await self.ep_api.create(want, namespace_of(svc))
            except AlreadyExists:
                pass  # the cache is behind; its event brings us back
            return
        hm = have.get("metadata") or {}
        if (have.get("subsets") or []) == (want.get("subsets") or []) and \
                (hm.get("labels") or {}) == (want["metadata"].get("labels") or {}):
            return
        obj = deep_copy(have)
        obj["metadata"]["labels"] = want["metadata"].get("labels") or {}
        obj["subsets"] = want.get("subsets") or []
        self.own.wrote(obj, await self.ep_api.update(obj))

    async def _sync_slices(self, svc: Obj, pods: list[Obj]) -> None:
        have = [
            self.own.fresher(s) for s in self.slices.list()
            if namespace_of(s) == namespace_of(svc)
            and ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == name_of(svc)
        ]
        create, update, delete = plan_slices(desired_slices(svc, pods), have)
        ns = namespace_of(svc)
        for s in update:
            self.own.wrote(s, await self.slice_api.update(s))
        for s in create:
            made = await self.slice_api.create(s, ns)
            names, _ = self.unseen.get(key_of(svc), (set(), 0.0))
            self.unseen[key_of(svc)] = (names | {name_of(made)}, time.monotonic())
        for s in delete:
            try:
                await self.slice_api.delete(name_of(s), ns)
            except NotFound:
                pass

    async def _warn_missing_ports(self, key: str, svc: Obj, pods: list[Obj]) -> None:
        missing = frozenset(
            (name_of(p), port) for p in pods if not is_terminal(p) for port in resolve_ports(svc, p)[1]
        )
        fresh = missing - self.warned.get(key, frozenset())
        self.warned[key] = missing
        targets = {(sp.get("name") or str(sp.get("targetPort"))): sp.get("targetPort")
                   for sp in (svc.get("spec") or {}).get("ports") or []}
        for pod_name, port in sorted(fresh):
            await self.client.record_event(
                svc, type="Warning", reason="FailedToResolvePort", component="endpointslice-controller",
                message=f'Pod {namespace_of(svc)}/{pod_name} has no container port named "{targets.get(port, port)}" '
                        f'for Service port "{port}"; it is left out of the endpoints for that port',
            )
