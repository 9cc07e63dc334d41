"""kubernetesIngress provider: networking.k8s.io/v1 Ingress -> dynamic configuration (spec §4).

Rules (4.2): ``Host("h") && PathPrefix("/p")``; pathType Exact -> Path, Prefix -> PathPrefix (character
prefix, or element-wise with ``strict_prefix_matching``), ImplementationSpecific -> PathPrefix unless the
``router.pathmatcher`` annotation says otherwise. Names (4.5): router ``<ns>-<ingress>-<host><path>``
normalised, service ``<ns>-<svc>-<port>``. ``ingress_status`` gives the status that the watch glue
publishes (4.9).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..config.dynamic import (
    Certificate,
    Domain,
    DynamicConfig,
    LoadBalancer,
    Router,
    RouterTLS,
    Service,
    StickyCookie,
)
from ..config.static import ProviderOptions
from .common import (
    BACKEND_KINDS,
    KubeObject,
    ObjectIndex,
    ServiceLookupError,
    Watched,
    certificate_from_secret,
    normalize,
    rule_hash,
    servers_for,
)

__all__ = ["build_ingress_config", "ingress_status", "should_process", "CONTROLLER", "ROUTER_ANNOTATION",
           "SERVICE_ANNOTATION", "WATCHES"]

CONTROLLER = "traefik.io/ingress-controller"
ROUTER_ANNOTATION = "traefik.ingress.kubernetes.io/router."
SERVICE_ANNOTATION = "traefik.ingress.kubernetes.io/service."
MIN_INT32 = -2147483648
WATCHES = BACKEND_KINDS + (Watched("networking.k8s.io/v1", "ingresses", "Ingress"),
                           Watched("networking.k8s.io/v1", "ingressclasses", "IngressClass"))


def _go_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _annotations(obj: KubeObject, prefix: str) -> dict[str, str]:
    """Annotations under prefix, keys lower-cased (they are case-insensitive label paths)."""
    out = {}
    for k, v in ((obj.get("metadata") or {}).get("annotations") or {}).items():
        if k.lower().startswith(prefix):
            out[k.lower()[len(prefix):]] = str(v)
    return out


def _bool(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() == "true"


def should_process(ing: KubeObject, idx: ObjectIndex, opts: ProviderOptions) -> bool:
    spec = ing.get("spec") or {}
    cls_name = spec.get("ingressClassName")
    if cls_name:
        cls = idx.get("IngressClass", "", cls_name)
        if cls is None or (cls.get("spec") or {}).get("controller") != CONTROLLER:
            return False
        return not opts.ingress_class or opts.ingress_class == cls_name
    ann = ((ing.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/ingress.class", "")
    if opts.ingress_class:
        return ann == opts.ingress_class
    return ann in ("", "traefik")


def _host_rule(host: str, syntax: str) -> str:
    if host.startswith("*."):
        if syntax == "v2":
            return f'HostRegexp("{{subdomain:[a-zA-Z0-9-]+}}{host[1:]}")'
        return f"Host({_go_quote(host)})"
    return f"Host({_go_quote(host)})"


def _path_rule(path: str, path_type: str, matcher: str, strict: bool) -> str | None:
    if path_type == "Exact":
        return f"Path({_go_quote(path)})"
    if path_type == "Prefix":
        if strict:
            if path == "/":
                return 'PathPrefix("/")'
            p = path.rstrip("/")
            return f"(Path({_go_quote(p)}) || PathPrefix({_go_quote(p + '/')}))"
        return f"PathPrefix({_go_quote(path)})"
    matcher = matcher or "PathPrefix"
    if matcher not in ("Path", "PathPrefix", "PathRegexp"):
        return None
    return f"{matcher}({_go_quote(path)})"


def _service(idx: ObjectIndex, ns: str, backend: dict[str, Any], opts: ProviderOptions) -> tuple[str, Service]:
    svc_ref = backend.get("service") or {}
    name = svc_ref.get("name", "")
    port_ref = svc_ref.get("port") or {}
    port: int | str = port_ref.get("number") or port_ref.get("name", "")
    key = normalize(f"{ns}-{name}-{port}")
    svc_obj = idx.get("Service", ns, name) or {}
    ann = _annotations(svc_obj, SERVICE_ANNOTATION)
    servers, _ = servers_for(idx, ns, name, port, ann.get("serversscheme", ""), opts,
                             native_lb=_bool(ann.get("nativelb"), False))
    if not servers and not opts.allow_empty_services:
        raise ServiceLookupError(f"skipping service {ns}/{name}: no endpoints found")
    sticky = None
    if _bool(ann.get("sticky.cookie"), False):
        sticky = StickyCookie(name=ann.get("sticky.cookie.name", ""), secure=_bool(ann.get("sticky.cookie.secure"), False),
                              http_only=_bool(ann.get("sticky.cookie.httponly"), False),
                              same_site=ann.get("sticky.cookie.samesite", ""),
                              max_age=int(ann.get("sticky.cookie.maxage", "0") or 0),
                              path=ann.get("sticky.cookie.path", "/") or "/", domain=ann.get("sticky.cookie.domain", ""))
    return key, Service(load_balancer=LoadBalancer(
        servers=servers, pass_host_header=_bool(ann.get("passhostheader"), True), sticky=sticky,
        servers_transport=ann.get("serverstransport", "")))


def _router_base(ing: KubeObject, opts: ProviderOptions) -> dict[str, Any]:
    ann = _annotations(ing, ROUTER_ANNOTATION)
    tls = None
    if _bool(ann.get("tls"), False) or "tls.certresolver" in ann or "tls.options" in ann:
        domains = []
        i = 0
        while f"tls.domains.{i}.main" in ann:
            sans = tuple(s for s in ann.get(f"tls.domains.{i}.sans", "").split(",") if s)
            domains.append(Domain(ann[f"tls.domains.{i}.main"], sans))
            i += 1
        tls = RouterTLS(options=ann.get("tls.options", ""), cert_resolver=ann.get("tls.certresolver", ""),
                        domains=tuple(domains))
    syntax = ann.get("rulesyntax", "")
    return {
        "entry_points": tuple(e.strip() for e in ann.get("entrypoints", "").split(",") if e.strip()),
        "middlewares": tuple(m.strip() for m in ann.get("middlewares", "").split(",") if m.strip()),
        "priority": int(ann.get("priority", "0") or 0),
        "rule_syntax": syntax,
        "tls": tls,
        "_matcher": ann.get("pathmatcher", ""),
        "_syntax": syntax if syntax in ("v2", "v3") else opts.default_rule_syntax,
    }


def build_ingress_config(objects: Mapping[str, Iterable[KubeObject]] | Iterable[KubeObject] | ObjectIndex,
                         opts: ProviderOptions | None = None) -> DynamicConfig:
    """The kubernetesIngress provider as a pure function."""
    opts = opts or ProviderOptions()
    idx = objects if isinstance(objects, ObjectIndex) else ObjectIndex.build(objects)
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    certs: dict[str, Certificate] = {}
    for ing in idx.all("Ingress"):
        if not should_process(ing, idx, opts):
            continue
        md = ing.get("metadata") or {}
        ns, name = md.get("namespace", "default"), md.get("name", "")
        if opts.namespaces and ns not in opts.namespaces:
            continue
        spec = ing.get("spec") or {}
        for t in spec.get("tls") or ():
            if t.get("secretName"):
                try:
                    cert = certificate_from_secret(idx, ns, t["secretName"])
                    certs[cert.source] = cert
                except ServiceLookupError:
                    pass
        base = _router_base(ing, opts)
        matcher, syntax = base.pop("_matcher"), base.pop("_syntax")
        if spec.get("defaultBackend") and not spec.get("rules"):
            try:
                _, svc = _service(idx, ns, spec["defaultBackend"], opts)
                services["default-backend"] = svc
                routers["default-router"] = Router(rule='PathPrefix("/")', service="default-backend",
                                                   priority=MIN_INT32, **{k: v for k, v in base.items() if k != "priority"})
            except ServiceLookupError:
                pass
        pending: dict[str, list[Router]] = {}
        for rule in spec.get("rules") or ():
            host = rule.get("host", "") or ""
            for p in ((rule.get("http") or {}).get("paths") or ()):
                path = p.get("path", "") or ""
                parts = [_host_rule(host, syntax)] if host else []
                if path:
                    pr = _path_rule(path, p.get("pathType", "") or "", matcher, opts.strict_prefix_matching)
                    if pr is None:
                        continue
                    parts.append(pr)
                if not parts:
                    continue
                rule_text = " && ".join(parts)
                error = ""
                svc_key = ""
                try:
                    svc_key, svc = _service(idx, ns, p.get("backend") or {}, opts)
                    services[svc_key] = svc
                except ServiceLookupError as err:
                    error = str(err)
                    ref = (p.get("backend") or {}).get("service") or {}
                    svc_key = normalize(f"{ns}-{ref.get('name', '')}-{(ref.get('port') or {}).get('number') or (ref.get('port') or {}).get('name', '')}")
                key = normalize(f"{ns}-{name}-{host}{path}").lstrip("-")
                pending.setdefault(key, []).append(Router(rule=rule_text, service=svc_key, error=error, **base))
        for key, rs in pending.items():
            if len(rs) == 1:
                routers[key] = rs[0]
            else:
                for r in rs:
                    routers[f"{key}-{rule_hash(r.rule)}"] = r
    return DynamicConfig(routers=routers, services=services, certificates=tuple(certs[k] for k in sorted(certs)))


def ingress_status(published: KubeObject | None, nodes: Iterable[KubeObject] = ()) -> list[dict[str, Any]]:
    """``status.loadBalancer.ingress`` for Ingresses, copied from the published Service (4.9)."""
    if published is None:
        return []
    spec = published.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind == "LoadBalancer":
        return [dict(i) for i in ((published.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()]
    if kind == "ExternalName":
        return [{"hostname": spec.get("externalName", "")}]
    if kind == "ClusterIP":
        return [{"ip": ip} for ip in spec.get("externalIPs") or ()]
    out = []
    for node in nodes:
        for a in (node.get("status") or {}).get("addresses") or ():
            if a.get("type") == "ExternalIP":
                out.append({"ip": a.get("address")})
    return out
