"""The ingress view: entry points -> routers -> middlewares -> services -> endpoints, with each
router's errors in place.

The configuration is built by the ingress's own code from the same objects the running Traefik reads
(``providers.build_config`` then ``routing.compile_config``, as ``pyk3s ingress explain`` does), with
the static configuration of the cluster's Traefik Deployment (``ingress.deployed``). So a router in
error here is in error in the proxy, for the same reason. Pure apart from the objects it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyk3s.addons.ingress.config.static import StaticConfig, static_from_flags
from pyk3s.addons.ingress.deployed import Deployed, deployed
from pyk3s.addons.ingress.providers import build_config, watched_kinds
from pyk3s.addons.ingress.providers.common import KubeObject, Watched, normalize
from pyk3s.addons.ingress.routing.compile import Compiled, compile_config

from .loadbalancer import lb_status, service_events
from .objects import Obj, PodIndex, key, meta
from .services import SERVICE_NAME

__all__ = ["IngressModel", "build_model", "ingress_kinds", "ingress_view", "referenced_services", "server_index"]

# every kind any provider may read: the map watches them all, whichever providers the Deployment enables
_ALL = static_from_flags(["--providers.kubernetescrd", "--providers.kubernetesingress"])
# the objects routers come from: provider suffix -> kinds whose name prefixes the router's
ROUTE_KINDS: Mapping[str, tuple[str, ...]] = {
    "kubernetes": ("Ingress",),
    "kubernetescrd": ("IngressRoute", "IngressRouteTCP", "IngressRouteUDP"),
}
SECRET_FIELDS = ("users", "secret", "password", "key", "token")


def ingress_kinds() -> tuple[Watched, ...]:
    return watched_kinds(_ALL)


@dataclass(frozen=True, slots=True)
class IngressModel:
    """The configuration in force: where its static part comes from, and the compiled routing."""

    deployed: Deployed
    compiled: Compiled


def build_model(deployments: Iterable[Obj], objects: list[KubeObject]) -> IngressModel:
    dep = deployed(deployments, [o for o in objects if o.get("kind") == "Service"])
    return IngressModel(dep, compile_config(build_config(dep.static, objects), dep.static))


def server_index(slices: Iterable[Obj], pods: PodIndex) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """(address, port) -> the endpoints behind it, one per Service that has it (Services that select the
    same pods share addresses): the Service, readiness, pod and node."""
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for s in slices:
        svc = f"{meta(s).get('namespace', '')}/{(meta(s).get('labels') or {}).get(SERVICE_NAME, '')}"
        for ep in s.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            pod = f"{ref.get('namespace') or meta(s).get('namespace', '')}/{ref['name']}" \
                if ref.get("kind") == "Pod" and ref.get("name") else ""
            info = {"service": svc, "ready": (ep.get("conditions") or {}).get("ready") is not False, "pod": pod,
                    "node": ep.get("nodeName") or (pods.node_of(pod) if pod else "")}
            for addr in ep.get("addresses") or []:
                for p in s.get("ports") or []:
                    if p.get("port"):
                        out.setdefault((addr, int(p["port"])), []).append(info)
    return out


def _server(url: str, index: Mapping[tuple[str, int], list[dict[str, Any]]], pods: PodIndex,
            wanted: set[str]) -> dict[str, Any]:
    """A server URL of an ingress service, with the endpoint behind it; among Services sharing the
    address, the one the routing objects name (``wanted``) is the one the request goes through."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    out: dict[str, Any] = {"url": url, "address": host, "port": port, "service": "", "ready": True, "pod": "",
                           "node": ""}
    found = index.get((host, port)) or []
    chosen = next((f for f in found if f["service"] in wanted), found[0] if found else None)
    if chosen is not None:
        out.update(chosen)
    elif host in pods.by_ip:
        pod = pods.by_ip[host]
        out.update(pod=key(pod), node=(pod.get("spec") or {}).get("nodeName", ""))
    return out


def referenced_services(obj: KubeObject) -> set[str]:
    """``ns/name`` of every Service a routing object names (IngressRoute*, Ingress)."""
    ns = meta(obj).get("namespace", "default")
    spec = obj.get("spec") or {}
    names: list[str] = []
    if obj.get("kind") == "Ingress":
        backends = [spec.get("defaultBackend") or {}] + [
            p.get("backend") or {} for r in spec.get("rules") or [] for p in ((r.get("http") or {}).get("paths") or [])]
        names = [(b.get("service") or {}).get("name", "") for b in backends]
    else:
        for route in spec.get("routes") or []:
            names += [s.get("name", "") for s in route.get("services") or [] if (s.get("kind") or "Service") == "Service"]
    return {f"{ns}/{n}" for n in names if n}


def _origin(router: str, objects: Iterable[KubeObject]) -> KubeObject | None:
    """The object a router comes from (longest name prefix), None for internal ones."""
    base, _, provider = router.partition("@")
    kinds = ROUTE_KINDS.get(provider, ())
    best: tuple[KubeObject | None, int] = (None, 0)
    for o in objects:
        if o.get("kind") not in kinds:
            continue
        prefix = normalize(f"{meta(o).get('namespace', '')}-{meta(o).get('name', '')}") + "-"
        if base.startswith(prefix) and len(prefix) > best[1]:
            best = (o, len(prefix))
    return best[0]


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: ("(hidden)" if any(s in k.lower() for s in SECRET_FIELDS) else _redacted(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _defaults(static: StaticConfig) -> list[str]:
    """The entry points of a router that names none (as the compiler picks them), so that a router in
    error still shows where it would have served."""
    flagged = [n for n, ep in static.entrypoints.items() if ep.as_default]
    return flagged or [n for n in static.entrypoints if n != "traefik"]


def ingress_view(model: IngressModel, objects: list[KubeObject], slices: Iterable[Obj], pods: Iterable[Obj],
                 events: Iterable[Obj]) -> dict[str, Any]:
    runtime, static, dep = model.compiled.runtime, model.compiled.static, model.deployed
    index = PodIndex(pods)
    servers = server_index(slices, index)
    # TCP and UDP routers: the compiled configuration's ``tcp`` part when the ingress has one
    tcp = getattr(model.compiled, "tcp", None)
    parts = {
        "http": (runtime.routers, runtime.services, runtime.middlewares),
        "tcp": (getattr(tcp, "routers", {}), getattr(tcp, "services", {}), getattr(tcp, "middlewares", {})),
        "udp": (getattr(tcp, "udp_routers", {}), getattr(tcp, "udp_services", {}), {}),
    }
    routers: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for protocol, (router_infos, service_infos, middleware_infos) in parts.items():
        wanted: dict[str, set[str]] = {}  # ingress service -> the Kubernetes Services its routers name
        for name, info in router_infos.items():
            origin = _origin(name, objects)
            if origin is not None and info.get("service"):
                wanted.setdefault(str(info["service"]), set()).update(referenced_services(origin))
            routers.append(_router(protocol, name, info, origin, static))
        prefix = "" if protocol == "http" else protocol
        out[f"{prefix}{'S' if prefix else 's'}ervices"] = {
            name: _service(name, info, servers, index, wanted.get(name, set())) for name, info in service_infos.items()}
        if protocol != "udp":
            out[f"{prefix}{'M' if prefix else 'm'}iddlewares"] = {
                name: _middleware(name, info) for name, info in middleware_infos.items()}
    published_svc = next((o for o in objects if o.get("kind") == "Service" and key(o) == dep.service), None)
    entrypoints = []
    for name, ep in static.entrypoints.items():
        protocol = getattr(ep, "protocol", "tcp")
        published = dep.udp_ports if protocol == "udp" else dep.ports
        entrypoints.append({
            "name": name, "address": ep.address, "port": ep.port, "tls": ep.tls, "protocol": protocol,
            "published": sorted(p for p, e in published.items() if e == name),
            "redirectTo": ep.redirect_to,
            "routers": [r["name"] for r in routers if name in r["entryPoints"]]})
    lb = lb_status(published_svc, service_events(published_svc, events)) if published_svc is not None else None
    counts = {"routers": len(routers), "errors": sum(1 for r in routers if r["status"] == "disabled"),
              "warnings": sum(1 for r in routers if r["status"] == "warning")}
    return {"source": dep.source, "flags": list(dep.flags), "problem": dep.problem, "publishedService": dep.service,
            "lb": lb, "entrypoints": entrypoints, "routers": routers, **out, "counts": counts}


def _router(protocol: str, name: str, info: Mapping[str, Any], origin: KubeObject | None,
            static: StaticConfig) -> dict[str, Any]:
    tls = info.get("tls") or {}
    eps = info.get("using") or info.get("entryPoints") or (_defaults(static) if protocol != "udp" else [])
    return {
        "name": name, "protocol": protocol, "provider": info.get("provider", ""),
        "status": info.get("status", "enabled"), "errors": list(info.get("error") or []),
        "rule": info.get("rule", ""), "priority": info.get("priorityStr") or str(info.get("priority", "")),
        "entryPoints": list(eps), "declaredEntryPoints": list(info.get("entryPoints") or []),
        "tls": "tls" in info, "passthrough": bool(tls.get("passthrough")) if isinstance(tls, Mapping) else False,
        "middlewares": list(info.get("middlewares") or []), "service": info.get("service", ""),
        "from": f"{origin['kind']} {key(origin)}" if origin is not None else ""}


def _service(name: str, info: Mapping[str, Any], servers: Mapping[tuple[str, int], list[dict[str, Any]]],
             index: PodIndex, wanted: set[str]) -> dict[str, Any]:
    lb = info.get("loadBalancer") or {}
    return {
        "name": name, "type": info.get("type", ""), "status": info.get("status", "enabled"),
        "errors": list(info.get("error") or []), "usedBy": list(info.get("usedBy") or []),
        # HTTP servers are URLs, TCP and UDP ones host:port
        "servers": [_server(s.get("url") or f"tcp://{s.get('address', '')}", servers, index, wanted)
                    for s in lb.get("servers") or []],
        "children": [w.get("name", "") for w in (info.get("weighted") or {}).get("services") or []]
        + ([info["mirroring"]["service"]] if (info.get("mirroring") or {}).get("service") else [])}


def _middleware(name: str, info: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": info.get("type", ""), "status": info.get("status", "enabled"),
            "errors": list(info.get("error") or []), "usedBy": list(info.get("usedBy") or []),
            "config": _redacted({k: v for k, v in info.items()
                                 if k not in ("name", "provider", "status", "usedBy", "type", "error")})}
