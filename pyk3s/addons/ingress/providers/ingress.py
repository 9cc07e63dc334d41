"""kubernetesIngress provider: networking.k8s.io/v1 Ingress -> dynamic configuration (spec §4).

Follows Traefik's pkg/provider/kubernetes/ingress (loadConfigurationFromIngresses), whose tests are
ported in tests/unit/addons/ingress/test_ingress_traefik_cases.py:

- Class (4.1): an Ingress with ``spec.ingressClassName`` is ours when an IngressClass of that name has
  controller ``traefik.io/ingress-controller`` (and is the ``ingressClass`` option, when set); else the
  ``kubernetes.io/ingress.class`` annotation must equal the option (or be ``traefik``, or both be empty).
- Rules (4.2-4.4): ``Host("h") && PathPrefix("/p")``; pathType Exact -> Path, Prefix -> PathPrefix (or
  element-wise with ``strictPrefixMatching``), ImplementationSpecific -> the ``router.pathmatcher``
  annotation; ``*.example.com`` under v2 syntax -> ``HostRegexp("{subdomain:[a-zA-Z0-9-]+}.example.com")``.
- Names (4.5): router ``<ns>-<ingress>-<host><path>`` normalised (``-<hash>`` on collisions), service
  ``<ns>-<svc>-<port>``; the default backend of an Ingress without rules is ``default-router`` ->
  ``default-backend`` at priority MinInt32 (one in all).
- A path whose Service cannot be loaded (missing, port unknown, no endpoints without
  ``allowEmptyServices``) gets no router in Traefik; here its router stays with the error so the API
  says why it is not served. ``ingress_status`` gives the status that the watch glue publishes (4.9).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..config.dynamic import (
    Certificate,
    DynamicConfig,
    IngressMetadata,
    LoadBalancer,
    Router,
    RouterObservability,
    Server,
    Service,
)
from ..config.static import ProviderOptions
from .annotations import (
    AnnotationError,
    RouterAnnotations,
    ServiceAnnotations,
    router_annotations,
    service_annotations,
)
from .common import (
    BACKEND_KINDS,
    KubeObject,
    ObjectIndex,
    ServiceLookupError,
    Watched,
    certificate_from_secret,
    endpoint_servers,
    join_host_port,
    native_servers,
    node_port_servers,
    normalize,
    rule_hash,
)

__all__ = ["build_ingress_config", "ingress_status", "should_process", "ingress_classes", "CONTROLLER", "WATCHES"]

CONTROLLER = "traefik.io/ingress-controller"
MIN_INT32 = -2147483648
WATCHES = BACKEND_KINDS + (Watched("networking.k8s.io/v1", "ingresses", "Ingress"),
                           Watched("networking.k8s.io/v1", "ingressclasses", "IngressClass"))


def _go_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ingress_classes(idx: ObjectIndex, opts: ProviderOptions) -> set[str]:
    """Names of the IngressClasses of this controller (and of the ``ingressClass`` option, when set)."""
    if opts.disable_ingress_class_lookup or opts.disable_cluster_scope_resources:
        return set()
    names = {(c.get("metadata") or {}).get("name", "") for c in idx.all("IngressClass")
             if (c.get("spec") or {}).get("controller") == CONTROLLER}
    return {n for n in names if n == opts.ingress_class} if opts.ingress_class else names


def should_process(ing: KubeObject, idx: ObjectIndex | set[str], opts: ProviderOptions) -> bool:
    classes = idx if isinstance(idx, set) else ingress_classes(idx, opts)
    spec = ing.get("spec") or {}
    if spec.get("ingressClassName") is not None:
        return spec["ingressClassName"] in classes
    ann = ((ing.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/ingress.class", "")
    return opts.ingress_class == ann or (not opts.ingress_class and ann == "traefik")


def _scheme(port: dict[str, Any], port_name: str, ann: ServiceAnnotations | None) -> str:
    """Traefik getProtocol: the serversscheme annotation, else https for port 443 or an https* name."""
    if ann is not None and ann.servers_scheme:
        return ann.servers_scheme
    return "https" if port.get("port") == 443 or port_name.startswith("https") else "http"


def _port_string(port: Mapping[str, Any]) -> str:
    return str(port.get("name") or "") or str(port.get("number") or 0)


def _load_service(idx: ObjectIndex, ns: str, backend: Mapping[str, Any], opts: ProviderOptions) -> Service:
    """Traefik loadService: a load balancer for an Ingress backend; ServiceLookupError when it cannot be built."""
    ref = backend.get("service") or {}
    name = ref.get("name", "")
    port_ref = ref.get("port") or {}
    svc = idx.get("Service", ns, name)
    if svc is None:
        raise ServiceLookupError(f"service {ns}/{name} not found")
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" and not opts.allow_external_name_services:
        raise ServiceLookupError(f"externalName services not allowed: {ns}/{name}")
    port = next((p for p in spec.get("ports") or ()
                 if (port_ref.get("number") and port_ref.get("number") == p.get("port"))
                 or (p.get("name") and port_ref.get("name") == p.get("name"))), None)
    if port is None:
        raise ServiceLookupError(f"service port {_port_string(port_ref)} not found in service {ns}/{name}")
    port_name = str(port.get("name") or "")
    try:
        ann = service_annotations(svc)
    except AnnotationError as err:
        raise ServiceLookupError(f"service {ns}/{name}: {err}") from None
    lb = LoadBalancer()
    middlewares: tuple[str, ...] = ()
    native = opts.native_lb_by_default
    scheme = _scheme(port, port_name, ann)
    if ann is not None:
        lb = replace(lb, sticky=ann.sticky, pass_host_header=ann.pass_host_header)
        middlewares = ann.middlewares
        if ann.servers_transport:
            if opts.cross_provider_namespaces is not None and ns not in opts.cross_provider_namespaces:
                raise ServiceLookupError(f"cross-provider serversTransport reference is not allowed from namespace {ns!r}")
            lb = replace(lb, servers_transport=ann.servers_transport)
        if ann.native_lb is not None:
            native = ann.native_lb
        if ann.node_port_lb and spec.get("type") == "NodePort":
            if opts.disable_cluster_scope_resources:
                raise ServiceLookupError("nodes lookup is disabled")
            if not idx.all("Node"):
                raise ServiceLookupError(f"nodes not found in namespace {ns}")
            servers = node_port_servers(idx, int(port.get("nodePort") or 0), scheme)
            if not servers:
                raise ServiceLookupError(f"no servers were generated for service {name} in namespace")
            return Service(load_balancer=replace(lb, servers=tuple(servers)), middlewares=middlewares)
    if spec.get("type") == "ExternalName":
        url = f"{scheme}://{join_host_port(spec.get('externalName', ''), port.get('port'))}"
        return Service(load_balancer=replace(lb, servers=(Server(url),)), middlewares=middlewares)
    if native:
        servers = native_servers(svc, int(port.get("port") or 0), scheme)
    else:
        servers = endpoint_servers(idx, ns, name, port_name, scheme)
    return Service(load_balancer=replace(lb, servers=tuple(servers)), middlewares=middlewares)


def _host_rule(host: str, v2: bool) -> str:
    if v2 and host.startswith("*."):
        return f"HostRegexp({_go_quote('{subdomain:[a-zA-Z0-9-]+}.' + host[2:])})"
    return f"Host({_go_quote(host)})"


def _path_rule(path: str, path_type: str, ann: RouterAnnotations | None, strict: bool) -> str:
    matcher = "PathPrefix"
    if path_type in ("", "ImplementationSpecific"):
        if ann is not None and ann.path_matcher:
            if ann.path_matcher not in ("Path", "PathPrefix", "PathRegexp"):
                raise ServiceLookupError(f"invalid router path matcher {ann.path_matcher!r}: must be one of Path, "
                                         "PathPrefix, PathRegexp")
            matcher = ann.path_matcher
    elif path_type == "Exact":
        matcher = "Path"
    if strict and matcher == "PathPrefix":
        if path == "/":
            return 'PathPrefix("/")'
        trimmed = path.removesuffix("/")
        return f"(Path({_go_quote(trimmed)}) || PathPrefix({_go_quote(trimmed + '/')}))"
    return f"{matcher}({_go_quote(path)})"


def _observability(ann: RouterAnnotations | None, meta: IngressMetadata) -> RouterObservability:
    base = ann.observability if ann is not None and ann.observability is not None else RouterObservability()
    return replace(base, ingress=meta)


def _router(ann: RouterAnnotations | None, **kw: Any) -> Router:
    if ann is not None:
        kw.setdefault("rule_syntax", ann.rule_syntax)
        kw.setdefault("priority", ann.priority)
        kw.update(entry_points=ann.entry_points, middlewares=ann.middlewares, tls=ann.tls)
    return Router(**kw)


def _certificates(idx: ObjectIndex, ing: KubeObject, ns: str, certs: dict[str, Certificate]) -> None:
    for t in (ing.get("spec") or {}).get("tls") or ():
        secret = t.get("secretName")
        if not secret or f"{ns}-{secret}" in certs:
            continue
        try:
            certs[f"{ns}-{secret}"] = certificate_from_secret(idx, ns, secret)
        except ServiceLookupError:
            pass  # the hosts keep the default certificate, as in Traefik


def _default_backend(idx: ObjectIndex, ing: KubeObject, ns: str, ann: RouterAnnotations | None, opts: ProviderOptions,
                     routers: dict[str, Router], services: dict[str, Service]) -> None:
    backend = (ing.get("spec") or {}).get("defaultBackend") or {}
    name = (ing.get("metadata") or {}).get("name", "")
    if "default-backend" in services or backend.get("resource") is not None or not backend.get("service"):
        return
    ref = backend["service"]
    meta = IngressMetadata(ns, name, ref.get("name", ""), _port_string(ref.get("port") or {}))
    router = _router(ann, rule='PathPrefix("/")', rule_syntax="default", priority=MIN_INT32, service="default-backend",
                     observability=_observability(ann, meta))
    try:
        service = _load_service(idx, ns, backend, opts)
        if not service.load_balancer or (not service.load_balancer.servers and not opts.allow_empty_services):
            raise ServiceLookupError(f"skipping service {ns}/{ref.get('name')}: no endpoints found")
    except ServiceLookupError as err:
        if "default-router" not in routers:
            routers["default-router"] = replace(router, error=f"ingress {ns}/{name}: default backend: {err}")
        return
    routers["default-router"] = router
    services["default-backend"] = service


def build_ingress_config(objects: Mapping[str, Iterable[KubeObject]] | Iterable[KubeObject] | ObjectIndex,
                         opts: ProviderOptions | None = None) -> DynamicConfig:
    """The kubernetesIngress provider as a pure function."""
    opts = opts or ProviderOptions()
    idx = objects if isinstance(objects, ObjectIndex) else ObjectIndex.build(objects)
    idx = idx.within(opts.namespaces)
    classes = ingress_classes(idx, opts)
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    failed: dict[str, str] = {}  # service name -> why it could not be loaded
    certs: dict[str, Certificate] = {}
    for ing in idx.all("Ingress"):
        md = ing.get("metadata") or {}
        ns, name = md.get("namespace", "default"), md.get("name", "")
        if (opts.namespaces and ns not in opts.namespaces) or not should_process(ing, classes, opts):
            continue
        try:
            ann = router_annotations(ing)
        except AnnotationError as err:
            routers[normalize(f"{ns}-{name}")] = Router(rule="", error=f"ingress {ns}/{name}: {err}")
            continue
        if ann is not None and opts.cross_provider_namespaces is not None and ns not in opts.cross_provider_namespaces:
            what = "middleware" if ann.middlewares else ("TLS option" if ann.tls is not None and ann.tls.options else "")
            if what:
                routers[normalize(f"{ns}-{name}")] = Router(
                    rule="", error=f"ingress {ns}/{name}: cross-provider {what} reference is not allowed from namespace {ns!r}")
                continue
        spec = ing.get("spec") or {}
        _certificates(idx, ing, ns, certs)
        if not spec.get("rules") and spec.get("defaultBackend") is not None:
            _default_backend(idx, ing, ns, ann, opts, routers, services)
        syntax = ann.rule_syntax if ann is not None and ann.rule_syntax else ""
        v2 = syntax == "v2" or (not syntax and opts.default_rule_syntax == "v2")
        pending: dict[str, list[Router]] = {}
        for rule in spec.get("rules") or ():
            if not rule.get("http"):
                continue
            host = rule.get("host", "") or ""
            for p in rule["http"].get("paths") or ():
                backend = p.get("backend") or {}
                ref = backend.get("service")
                if backend.get("resource") is not None or not ref:
                    continue
                svc_name = normalize(f"{ns}-{ref.get('name', '')}-{_port_string(ref.get('port') or {})}")
                error = failed.get(svc_name, "")
                if svc_name not in services and not error:
                    try:
                        svc = _load_service(idx, ns, backend, opts)
                        if not svc.load_balancer or (not svc.load_balancer.servers and not opts.allow_empty_services):
                            raise ServiceLookupError(f"skipping service {ns}/{ref.get('name')}: no endpoints found")
                        services[svc_name] = svc
                    except ServiceLookupError as err:
                        error = failed[svc_name] = str(err)
                path = p.get("path", "") or ""
                parts = [_host_rule(host, v2)] if host else []
                try:
                    if path:
                        parts.append(_path_rule(path, p.get("pathType") or "", ann, opts.strict_prefix_matching))
                except ServiceLookupError as err:
                    error = str(err)
                meta = IngressMetadata(ns, name, ref.get("name", ""), _port_string(ref.get("port") or {}))
                router = _router(ann, rule=" && ".join(parts), service=svc_name, observability=_observability(ann, meta),
                                 error=error)
                key = normalize(f"{ns}-{name}-{host}{path}").lstrip("-")
                pending.setdefault(key, []).append(router)
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
