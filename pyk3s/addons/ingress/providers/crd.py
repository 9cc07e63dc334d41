"""kubernetesCRD provider: IngressRoute, Middleware, TraefikService, TLSOption, TLSStore, ServersTransport
(spec §3), following Traefik's pkg/provider/kubernetes/crd, whose tests are ported in
tests/unit/addons/ingress/test_ingress_traefik_cases.py.

``build_crd_config(objects, options) -> DynamicConfig`` is pure: objects of both API groups
(traefik.io and traefik.containo.us, v1alpha1) in, unqualified dynamic configuration out.
Names: routers ``<ns>-<ingressroute>-<sha256(match)[:10 bytes]>`` (3.4), services ``<ns>-<svc>-<port>``
(3.5), middlewares, TraefikServices and ServersTransports ``<ns>-<name>`` (3.9), all normalised.
Where Traefik drops a route for a reference it cannot resolve (service, middleware, TLS option,
parent), the router stays here with an ``error`` so the API shows why it is not served; a
TraefikService or Middleware that cannot be built likewise keeps its error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..config.dynamic import (
    Certificate,
    Domain,
    DynamicConfig,
    Middleware,
    Router,
    RouterObservability,
    RouterTLS,
    Service,
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
)
from .crd_middlewares import build_middleware
from .crd_scope import CRD_GROUPS, middleware_keys, ours, resolve_reference
from .crd_services import ServiceBuilder
from .crd_tls import servers_transports, tls_options, tls_stores

__all__ = ["build_crd_config", "CRD_GROUPS", "WATCHES"]

WATCHES = BACKEND_KINDS + (Watched("v1", "configmaps", "ConfigMap"),) + tuple(
    Watched(f"{group}/v1alpha1", plural, kind)
    for group in CRD_GROUPS
    for plural, kind in (("ingressroutes", "IngressRoute"), ("middlewares", "Middleware"),
                         ("traefikservices", "TraefikService"), ("tlsoptions", "TLSOption"),
                         ("tlsstores", "TLSStore"), ("serverstransports", "ServersTransport"))
)


def _parent_routers(idx: ObjectIndex, obj: KubeObject, opts: ProviderOptions) -> tuple[str, ...]:
    """Router names of the parent IngressRoutes (Traefik resolveParentRouterNames)."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "default")
    out: list[str] = []
    for ref in (obj.get("spec") or {}).get("parentRefs") or ():
        pns = ref.get("namespace") or ns
        if not opts.allow_cross_namespace and pns != ns:
            raise ServiceLookupError(f"cross-namespace reference to parent IngressRoute {pns}/{ref.get('name')} not allowed")
        parent = next((ir for ir in idx.all("IngressRoute") if (ir.get("metadata") or {}).get("name") == ref.get("name")
                       and (ir.get("metadata") or {}).get("namespace") == pns), None)
        if parent is None:
            raise ServiceLookupError(f"parent IngressRoute {pns}/{ref.get('name')} does not exist")
        pmd = parent.get("metadata") or {}
        pname = pmd.get("name") or pmd.get("generateName", "")
        for route in (parent.get("spec") or {}).get("routes") or ():
            out.append(normalize(f"{pns}-{pname}-{rule_hash(route.get('match', ''))}"))
    return tuple(out)


def _observability(route: Mapping[str, Any]) -> RouterObservability | None:
    o = route.get("observability")
    if o is None:
        return None
    return RouterObservability(access_logs=o.get("accessLogs"), metrics=o.get("metrics"), tracing=o.get("tracing"),
                               trace_verbosity=o.get("traceVerbosity") or "")


def _ingress_routes(idx: ObjectIndex, opts: ProviderOptions, builder: ServiceBuilder, routers: dict[str, Router],
                    certs: dict[str, Certificate]) -> None:
    for obj in idx.all("IngressRoute"):
        if not ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        ns = md.get("namespace", "default")
        ir_name = md.get("name") or md.get("generateName", "")
        spec = obj.get("spec") or {}
        tls = spec.get("tls")
        if tls and tls.get("secretName") and f"{ns}/{tls['secretName']}" not in certs:
            try:
                certs[f"{ns}/{tls['secretName']}"] = certificate_from_secret(idx, ns, tls["secretName"])
            except ServiceLookupError:
                pass  # the router still serves with the default certificate, as Traefik does
        parent_error = ""
        parents: tuple[str, ...] = ()
        try:
            parents = _parent_routers(idx, obj, opts)
        except ServiceLookupError as err:
            parent_error = f"ingressroute {ns}/{ir_name}: {err}"
        for route in spec.get("routes") or ():
            match = route.get("match", "")
            if route.get("kind") not in (None, "", "Rule") or not match:
                continue
            key = normalize(f"{ns}-{ir_name}-{rule_hash(match)}")
            error = parent_error
            service_name = key
            middlewares: tuple[str, ...] = ()
            router_tls = None
            try:
                if parent_error:
                    raise ServiceLookupError(parent_error)  # Traefik skips the whole IngressRoute
                middlewares = middleware_keys(ns, route.get("middlewares") or (), opts)
                refs = route.get("services") or []
                if len(refs) > 1:
                    builder.services[key] = builder.weighted(ns, refs, None)
                elif len(refs) == 1:
                    full, svc = builder.name_and_service(ns, refs[0])
                    if svc is not None:
                        builder.services[key] = svc
                    else:
                        service_name = full
                else:
                    service_name = ""
                if tls is not None:
                    router_tls = _router_tls(ns, tls, opts)
            except ServiceLookupError as err:
                error = error or f"ingressroute {ns}/{ir_name}: {err}"
                router_tls = router_tls if router_tls is not None or tls is None else RouterTLS()
            routers[key] = Router(rule=match, service=service_name, entry_points=tuple(spec.get("entryPoints") or ()),
                                  middlewares=middlewares, priority=int(route.get("priority") or 0),
                                  rule_syntax=route.get("syntax", "") or "", tls=router_tls, parent_refs=parents,
                                  observability=_observability(route), error=error)


def _router_tls(ns: str, tls: Mapping[str, Any], opts: ProviderOptions) -> RouterTLS:
    domains = tuple(Domain(d.get("main", ""), tuple(d.get("sans") or ())) for d in tls.get("domains") or ())
    options = ""
    opt = tls.get("options") or {}
    if opt.get("name"):
        try:
            options = resolve_reference(ns, str(opt.get("namespace") or ""), str(opt["name"]), opts)
        except ServiceLookupError as err:
            raise ServiceLookupError(f"invalid reference to TLSOption {opt['name']!r}: {err}") from None
    return RouterTLS(options=options, cert_resolver=tls.get("certResolver", ""), domains=domains)


def build_crd_config(objects: Mapping[str, Iterable[KubeObject]] | Iterable[KubeObject] | ObjectIndex,
                     opts: ProviderOptions | None = None) -> DynamicConfig:
    """The kubernetesCRD provider as a pure function."""
    opts = opts or ProviderOptions()
    idx = objects if isinstance(objects, ObjectIndex) else ObjectIndex.build(objects)
    idx = idx.within(opts.namespaces)
    stores, certs = tls_stores(idx, opts)
    routers: dict[str, Router] = {}
    builder = ServiceBuilder(idx, opts, {})
    _ingress_routes(idx, opts, builder, routers, certs)
    # Traefik builds TraefikServices and error-page services without nativeLBByDefault and
    # disableClusterScopeResources (its second configBuilder)
    plain = ServiceBuilder(idx, replace(opts, native_lb_by_default=False, disable_cluster_scope_resources=False),
                           builder.services)
    middlewares: dict[str, Middleware] = {}
    for obj in idx.all("Middleware"):
        if not ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        mw_id = normalize(f"{md.get('namespace', '')}-{md.get('name', '')}")
        middlewares[mw_id] = build_middleware(plain, obj, mw_id)
    for obj in idx.all("TraefikService"):
        if not ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        ts_id = normalize(f"{md.get('namespace', 'default')}-{md.get('name', '')}")
        try:
            builder.services[ts_id] = plain.traefik_service(obj)
        except ServiceLookupError as err:
            builder.services.setdefault(ts_id, Service(error=f"traefikservice {md.get('namespace')}/{md.get('name')}: {err}"))
    return DynamicConfig(routers=routers, services=builder.services, middlewares=middlewares,
                         certificates=tuple(certs[k] for k in sorted(certs)), tls_options=tls_options(idx, opts),
                         tls_stores=stores, servers_transports=servers_transports(idx, opts))
