"""The services view: namespaces -> Services with their addresses, ports, DNS names and endpoints
(ready or not, with their pods and nodes), LoadBalancer addresses or each node's Pending reason, and
what keeps a Service from having endpoints. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .loadbalancer import lb_status, service_events
from .objects import Obj, PodIndex, is_ready, key, labels, meta, pod_problem, selector_text

__all__ = ["DEFAULT_DOMAIN", "cluster_domain", "endpoints_of", "services_view", "slices_by_service"]

DEFAULT_DOMAIN = "cluster.local"
SERVICE_NAME = "kubernetes.io/service-name"


def cluster_domain(configmaps: Iterable[Obj]) -> str:
    """The first zone of the ``kubernetes`` plugin in the coredns ConfigMap's Corefile."""
    for cm in configmaps:
        if meta(cm).get("name") != "coredns" or meta(cm).get("namespace") != "kube-system":
            continue
        m = re.search(r"^\s*kubernetes\s+([^\s{]+)", (cm.get("data") or {}).get("Corefile", ""), re.M)
        if m:
            return m.group(1).strip(".")
    return DEFAULT_DOMAIN


def slices_by_service(slices: Iterable[Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for s in slices:
        name = labels(s).get(SERVICE_NAME)
        if name:
            out.setdefault(f"{meta(s).get('namespace', 'default')}/{name}", []).append(s)
    return out


def endpoints_of(slices: Iterable[Obj], pods: PodIndex) -> list[dict[str, Any]]:
    """Each endpoint once: addresses, ports, readiness, its pod and node, and why it is not ready."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for s in slices:
        ports = sorted({f"{p.get('port')}/{p.get('protocol') or 'TCP'}" + (f" ({p['name']})" if p.get("name") else "")
                        for p in s.get("ports") or [] if p.get("port")})
        for ep in s.get("endpoints") or []:
            addrs = tuple(ep.get("addresses") or ())
            cond = ep.get("conditions") or {}
            ref = ep.get("targetRef") or {}
            pod = f"{ref.get('namespace') or meta(s).get('namespace', '')}/{ref['name']}" \
                if ref.get("kind") == "Pod" and ref.get("name") else ""
            ready = cond.get("ready") is not False
            item = out.setdefault(addrs, {
                "addresses": list(addrs), "ports": [], "ready": ready,
                "serving": cond.get("serving", ready) is not False, "terminating": bool(cond.get("terminating")),
                "pod": pod, "node": ep.get("nodeName") or (pods.node_of(pod) if pod else ""), "problem": ""})
            item["ports"] = sorted(set(item["ports"]) | set(ports))
            if not ready and pod:
                p = pods.by_key.get(pod)
                item["problem"] = pod_problem(p) if p is not None else "pod not found"
    return sorted(out.values(), key=lambda e: (not e["ready"], e["pod"], e["addresses"]))


def _ports(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": p.get("name", ""), "port": p.get("port"), "targetPort": p.get("targetPort", p.get("port")),
             "protocol": p.get("protocol") or "TCP", "nodePort": p.get("nodePort"),
             "appProtocol": p.get("appProtocol", "")} for p in spec.get("ports") or []]


def _problems(svc: Obj, matched: list[Obj], endpoints: list[dict[str, Any]]) -> list[str]:
    spec = svc.get("spec") or {}
    ns = meta(svc).get("namespace", "default")
    selector = spec.get("selector") or {}
    out: list[str] = []
    if spec.get("type") == "ExternalName":
        return out
    if not selector:
        if not endpoints:
            out.append("no selector and no EndpointSlice: nothing receives this Service's traffic "
                       "(add a selector, or EndpointSlices by hand)")
        return out
    if not matched:
        out.append(f"selector {selector_text(selector)} matches no pod in namespace {ns}")
        return out
    ready = [p for p in matched if is_ready(p)]
    if not ready:
        first = matched[0]
        out.append(f"{len(matched)} pod(s) match {selector_text(selector)}, none is Ready "
                   f"({meta(first).get('name')}: {pod_problem(first) or 'not Ready'})")
    for port in spec.get("ports") or []:
        target = port.get("targetPort")
        if not isinstance(target, str):
            continue
        named = any(cp.get("name") == target for p in matched for c in (p.get("spec") or {}).get("containers") or []
                    for cp in c.get("ports") or [])
        if not named:
            out.append(f"port {port.get('port')}: targetPort {target!r} is not a named container port of any "
                       "selected pod")
    if matched and ready and not any(e["ready"] for e in endpoints):
        out.append("pods are Ready but no ready endpoint is published yet")
    return out


def services_view(namespaces: Iterable[Obj], services: Iterable[Obj], slices: Iterable[Obj], pods: Iterable[Obj],
                  events: Iterable[Obj], domain: str = DEFAULT_DOMAIN) -> dict[str, Any]:
    pod_list = list(pods)
    index = PodIndex(pod_list)
    by_svc = slices_by_service(slices)
    event_list = list(events)
    by_ns: dict[str, list[dict[str, Any]]] = {}
    ns_labels = {meta(n).get("name", ""): dict(labels(n)) for n in namespaces}
    pods_by_ns: dict[str, list[Obj]] = {}
    for p in pod_list:
        pods_by_ns.setdefault(meta(p).get("namespace", "default"), []).append(p)
    for svc in services:
        m, spec = meta(svc), svc.get("spec") or {}
        ns, name = m.get("namespace", "default"), m.get("name", "")
        selector = spec.get("selector") or {}
        matched = [p for p in pods_by_ns.get(ns, []) if selector
                   and all(labels(p).get(k) == v for k, v in selector.items())
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        endpoints = endpoints_of(by_svc.get(f"{ns}/{name}", []), index)
        events = service_events(svc, event_list)
        cluster_ips = [ip for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
                       if ip and ip != "None"]
        by_ns.setdefault(ns, []).append({
            "key": key(svc), "namespace": ns, "name": name, "type": spec.get("type") or "ClusterIP",
            "clusterIPs": cluster_ips, "headless": spec.get("clusterIP") == "None",
            "externalIPs": list(spec.get("externalIPs") or []), "externalName": spec.get("externalName", ""),
            "ports": _ports(spec), "dns": [f"{name}.{ns}.svc.{domain}"], "selector": dict(selector),
            "externalTrafficPolicy": spec.get("externalTrafficPolicy", ""),
            "internalTrafficPolicy": spec.get("internalTrafficPolicy", ""),
            "sessionAffinity": spec.get("sessionAffinity", "None"),
            "endpoints": endpoints, "ready": sum(1 for e in endpoints if e["ready"]),
            "notReady": sum(1 for e in endpoints if not e["ready"]),
            "problems": _problems(svc, matched, endpoints), "lb": lb_status(svc, events), "events": events,
        })
    for ns in ns_labels:
        by_ns.setdefault(ns, [])
    return {"domain": domain, "namespaces": [
        {"name": ns, "labels": ns_labels.get(ns, {}), "services": sorted(items, key=lambda s: s["name"])}
        for ns, items in sorted(by_ns.items())]}
