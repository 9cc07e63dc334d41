"""The kubernetes plugin's index: Services, EndpointSlices, Pods and Namespaces (plain dicts as the API
returns them) shrunk to what DNS needs and keyed for lookups (spec dns.md P6-P10, P20-P22, P33, P44).

`compile_index(...)` builds an index from scratch; `IndexBuilder` (builder.py) keeps one up to date
object by object and must agree with it. An index is never changed once published; the plugin swaps
it whole.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from sys import intern

from .config import KubeOptions

__all__ = ["Endpoint", "KubeIndex", "Port", "ServiceRecord", "compile_index", "endpoint_label", "endpoint_pairs",
           "parse_service", "parse_slice", "pod_ip", "with_endpoints"]

log = logging.getLogger("pyk3s.dns.kubernetes")
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
    # spec.externalIPs then status.loadBalancer.ingress (IP, else hostname as an FQDN): what k8s_external serves
    external_ips: tuple[str, ...] = ()


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
    generation: int = field(default=0, compare=False)    # IndexBuilder's count of published changes


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


def object_name(obj: object) -> str:
    """`namespace/name` of an API object for log lines, whatever shape it is in."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(md, dict):
        return "<no metadata>"
    ns, name = md.get("namespace"), md.get("name")
    return f"{ns}/{name}" if ns else str(name)


def broken(kind: str, obj: object, err: BaseException) -> None:
    log.error("plugin/kubernetes: ignoring %s %s: %s: %s", kind, object_name(obj), type(err).__name__, err)


def parse_service(obj: dict, opts: KubeOptions) -> ServiceRecord | None:
    """A Service without its endpoints; None when DNS ignores it (ExternalName to an IP, P12).
    Raises on a malformed object."""
    md, spec = obj["metadata"], obj.get("spec") or {}
    ns, name = intern(md.get("namespace", "").lower()), intern(md["name"].lower())
    stype = spec.get("type", "ClusterIP")
    ips = tuple(canonical_ip(i) for i in (spec.get("clusterIPs") or
                                          ([spec["clusterIP"]] if spec.get("clusterIP") else [])))
    external = ""
    if stype == "ExternalName":
        ext = (spec.get("externalName") or "").lower().rstrip(".")
        if not ext or _is_ip(ext):
            return None
        kind, external, ips = "external", ext + ".", ()
    elif not ips or ips[0] == "None":
        kind, ips = "headless", ()
    else:
        kind = "clusterip"
    return ServiceRecord(name, ns, kind, ips, _ports(spec.get("ports")), external, (), _external_ips(obj))


def _external_ips(obj: dict) -> tuple[str, ...]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out = [canonical_ip(i) for i in spec.get("externalIPs") or () if i and _is_ip(i)]
    for ing in (status.get("loadBalancer") or {}).get("ingress") or ():
        if ing.get("ip"):
            out.append(canonical_ip(ing["ip"]))
        elif ing.get("hostname"):
            out.append(ing["hostname"].lower().rstrip(".") + ".")
    return tuple(intern(x) for x in dict.fromkeys(out))


def parse_slice(obj: dict, opts: KubeOptions) -> tuple[tuple[str, str] | None, tuple[Endpoint, ...]]:
    """(key of the Service it belongs to, its ready endpoints in order); key None: DNS ignores it.
    Raises on a malformed object."""
    md = obj.get("metadata") or {}
    svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not svc or opts.noendpoints:
        return None, ()
    ns = intern(md.get("namespace", "").lower())
    sports = _ports(obj.get("ports"))
    src = f"EndpointSlice {ns}/{md['name']}"
    eps: list[Endpoint] = []
    for ep in obj.get("endpoints") or ():
        if not _ready(ep):
            continue
        ref = ep.get("targetRef") or {}
        pod = ref.get("name") if ref.get("kind", "Pod") == "Pod" else None
        for addr in ep.get("addresses") or ():
            addr = canonical_ip(addr)
            eps.append(Endpoint(addr, endpoint_label(addr, ep.get("hostname"), pod, opts.endpoint_pod_names),
                                sports, src))
    return (ns, intern(svc.lower())), tuple(eps)


def pod_ip(obj: dict) -> str | None:
    """The primary IP a running pod answers for (pods verified), None for a pod being deleted."""
    md = obj.get("metadata") or {}
    ip = (obj.get("status") or {}).get("podIP")
    return canonical_ip(ip) if ip and not md.get("deletionTimestamp") else None


def with_endpoints(base: ServiceRecord, slices: Iterable[tuple[Endpoint, ...]]) -> ServiceRecord:
    """`base` with the endpoints of its slices (in slice-name order), each (address, label, ports) once."""
    if base.kind == "external":
        return base
    seen: set[tuple[str, str, tuple[Port, ...]]] = set()
    eps: list[Endpoint] = []
    for group in slices:
        for e in group:
            k = (e.address, e.label, e.ports)
            if k not in seen:
                seen.add(k)
                eps.append(e)
    return replace(base, endpoints=tuple(eps)) if eps else base


def endpoint_pairs(rec: ServiceRecord) -> dict[str, list[tuple[ServiceRecord, Endpoint]]]:
    """by_endpoint_ip's share of one Service: per address, each label once."""
    out: dict[str, list[tuple[ServiceRecord, Endpoint]]] = {}
    for ep in rec.endpoints:
        lst = out.setdefault(ep.address, [])
        if not any(e.label == ep.label for _, e in lst):
            lst.append((rec, ep))
    return out


def compile_index(services: Iterable[dict], endpointslices: Iterable[dict], pods: Iterable[dict],
                  namespaces: Iterable[dict], opts: KubeOptions, serial: int | None = None,
                  synced: bool = True) -> KubeIndex:
    """Build a KubeIndex from plain API objects in one go. Objects in unexposed namespaces are left
    out (P5); a malformed object is left out with a log line naming it. Service order (namespace, name)
    decides ties (a ClusterIP claimed twice, several Services on one endpoint address); endpoints come
    in EndpointSlice name order. The incremental IndexBuilder (builder.py) must give the same result."""
    exposed = opts.namespaces
    ns_names = frozenset(
        n["metadata"]["name"].lower() for n in namespaces
        if not exposed or n["metadata"]["name"].lower() in exposed)

    slices_by_svc: dict[tuple[str, str], list[tuple[str, tuple[Endpoint, ...]]]] = {}
    for s in endpointslices:
        try:
            key, eps = parse_slice(s, opts)
        except Exception as err:  # one bad object must not take the others down
            broken("EndpointSlice", s, err)
            continue
        if key is not None:
            slices_by_svc.setdefault(key, []).append((s["metadata"]["name"], eps))

    bases: dict[tuple[str, str], ServiceRecord] = {}
    for svc in services:
        try:
            base = parse_service(svc, opts)
        except Exception as err:
            broken("Service", svc, err)
            continue
        if base is not None and base.namespace in ns_names:
            bases[(base.namespace, base.name)] = base

    svcs: dict[tuple[str, str], ServiceRecord] = {}
    by_cip: dict[str, ServiceRecord] = {}
    by_eip: dict[str, list[tuple[ServiceRecord, Endpoint]]] = {}
    by_ns: dict[str, set[str]] = {}
    for key in sorted(bases):
        rec = with_endpoints(bases[key], (eps for _, eps in sorted(slices_by_svc.get(key, ()),
                                                                    key=lambda t: t[0])))
        svcs[key] = rec
        by_ns.setdefault(key[0], set()).add(key[1])
        for ip in rec.cluster_ips:
            by_cip.setdefault(ip, rec)
        for ip, pairs in endpoint_pairs(rec).items():
            by_eip.setdefault(ip, []).extend(pairs)

    pod_ips: dict[str, set[str]] = {}
    for p in pods:
        try:
            address = pod_ip(p)
        except Exception as err:
            broken("Pod", p, err)
            continue
        ns = (p.get("metadata") or {}).get("namespace", "").lower()
        if ns in ns_names and address:
            pod_ips.setdefault(ns, set()).add(address)

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
