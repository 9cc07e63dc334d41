"""The kubernetes plugin's index: Services, EndpointSlices, Pods and Namespaces (plain dicts as the API
returns them) shrunk to what DNS needs and keyed for lookups (spec dns.md P6-P10, P20-P22, P33, P44).

`compile_index(...)` is the single entry point, used both by the informer glue (watch.py) and by tests.
The result is immutable; the plugin swaps it whole.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import KubeOptions

__all__ = ["Endpoint", "KubeIndex", "Port", "ServiceRecord", "compile_index", "endpoint_label"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class Port:
    name: str       # "" when unnamed
    protocol: str   # lower-case: tcp, udp, sctp ("" for the portless sentinel)
    port: int       # -1: no port (P17)


NO_PORT = (Port("", "", -1),)


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    label: str                     # hostname, pod name (endpoint_pod_names) or dashed IP (P9)
    ports: tuple[Port, ...]
    source: str                    # "EndpointSlice ns/name" for explain


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    name: str
    namespace: str
    kind: str                      # "clusterip" | "headless" | "external"
    cluster_ips: tuple[str, ...]
    ports: tuple[Port, ...]
    external: str                  # ExternalName target, FQDN
    endpoints: tuple[Endpoint, ...]  # ready addresses only (P8)


@dataclass(frozen=True, slots=True)
class KubeIndex:
    namespaces: frozenset[str]
    services: dict[tuple[str, str], ServiceRecord]
    by_cluster_ip: dict[str, ServiceRecord]
    by_endpoint_ip: dict[str, tuple[tuple[ServiceRecord, Endpoint], ...]]
    pod_ips: dict[str, frozenset[str]]      # namespace -> primary pod IPs (pods verified)
    serial: int
    synced: bool = True
    services_by_ns: dict[str, frozenset[str]] = field(default_factory=dict)


def endpoint_label(address: str, hostname: str | None, pod_name: str | None, pod_names: bool) -> str:
    if hostname:
        return hostname.lower()
    if pod_names and pod_name and len(pod_name) < 64:
        return pod_name.lower()
    if ":" in address:
        label = address.replace(":", "-")
        return label + "0" if label.endswith("-") else label
    return address.replace(".", "-")


def _ports(raw: Iterable[dict] | None) -> tuple[Port, ...]:
    out = []
    for p in raw or ():
        port = p.get("port")
        if port is None:
            continue
        out.append(Port((p.get("name") or "").lower(), (p.get("protocol") or "TCP").lower(), int(port)))
    return tuple(out) or NO_PORT


def _ready(ep: dict) -> bool:
    ready = (ep.get("conditions") or {}).get("ready")
    return ready is None or bool(ready)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def canonical_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def compile_index(services: Iterable[dict], endpointslices: Iterable[dict], pods: Iterable[dict],
                  namespaces: Iterable[dict], opts: KubeOptions, serial: int | None = None,
                  synced: bool = True) -> KubeIndex:
    """Build a KubeIndex from plain API objects. Objects in unexposed namespaces are left out (P5)."""
    exposed = opts.namespaces
    ns_names = frozenset(
        n["metadata"]["name"].lower() for n in namespaces
        if not exposed or n["metadata"]["name"].lower() in exposed)

    slices_by_svc: dict[tuple[str, str], list[dict]] = {}
    if not opts.noendpoints:
        for s in endpointslices:
            md = s.get("metadata") or {}
            svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
            if not svc:
                continue
            slices_by_svc.setdefault((md.get("namespace", "").lower(), svc.lower()), []).append(s)

    svcs: dict[tuple[str, str], ServiceRecord] = {}
    by_cip: dict[str, ServiceRecord] = {}
    by_eip: dict[str, list[tuple[ServiceRecord, Endpoint]]] = {}
    by_ns: dict[str, set[str]] = {}
    for svc in sorted(services, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        md, spec = svc["metadata"], svc.get("spec") or {}
        ns, name = md.get("namespace", "").lower(), md["name"].lower()
        if ns not in ns_names:
            continue
        stype = spec.get("type", "ClusterIP")
        ips = tuple(canonical_ip(i) for i in (spec.get("clusterIPs") or
                                              ([spec["clusterIP"]] if spec.get("clusterIP") else [])))
        external = ""
        if stype == "ExternalName":
            ext = (spec.get("externalName") or "").lower().rstrip(".")
            if not ext or _is_ip(ext):
                continue                          # P12: an IP as externalName is ignored
            kind, external, ips = "external", ext + ".", ()
        elif not ips or ips[0] == "None":
            kind, ips = "headless", ()
        else:
            kind = "clusterip"
        eps: list[Endpoint] = []
        if kind != "external":
            seen: set[tuple[str, str, tuple[Port, ...]]] = set()
            for sl in slices_by_svc.get((ns, name), ()):
                sports = _ports(sl.get("ports"))
                src = f"EndpointSlice {ns}/{sl['metadata']['name']}"
                for ep in sl.get("endpoints") or ():
                    if not _ready(ep):
                        continue
                    ref = ep.get("targetRef") or {}
                    pod = ref.get("name") if ref.get("kind", "Pod") == "Pod" else None
                    for addr in ep.get("addresses") or ():
                        addr = canonical_ip(addr)
                        label = endpoint_label(addr, ep.get("hostname"), pod, opts.endpoint_pod_names)
                        if (addr, label, sports) in seen:
                            continue
                        seen.add((addr, label, sports))
                        eps.append(Endpoint(addr, label, sports, src))
        rec = ServiceRecord(name, ns, kind, ips, _ports(spec.get("ports")), external, tuple(eps))
        svcs[(ns, name)] = rec
        by_ns.setdefault(ns, set()).add(name)
        for ip in ips:
            by_cip.setdefault(ip, rec)
        for ep in eps:
            lst = by_eip.setdefault(ep.address, [])
            if not any(r is rec and e.label == ep.label for r, e in lst):
                lst.append((rec, ep))

    pod_ips: dict[str, set[str]] = {}
    for p in pods:
        md = p.get("metadata") or {}
        ns = md.get("namespace", "").lower()
        ip = (p.get("status") or {}).get("podIP")
        if ns in ns_names and ip and not md.get("deletionTimestamp"):
            pod_ips.setdefault(ns, set()).add(canonical_ip(ip))

    return KubeIndex(
        namespaces=ns_names,
        services=svcs,
        by_cluster_ip=by_cip,
        by_endpoint_ip={k: tuple(v) for k, v in by_eip.items()},
        pod_ips={k: frozenset(v) for k, v in pod_ips.items()},
        serial=int(time.time()) if serial is None else serial,
        synced=synced,
        services_by_ns={k: frozenset(v) for k, v in by_ns.items()},
    )


EMPTY_INDEX = KubeIndex(frozenset(), {}, {}, {}, {}, 0, synced=False)
__all__ += ["EMPTY_INDEX", "canonical_ip"]
