"""kubernetesCRD provider: IngressRoute, Middleware, TraefikService, TLSOption, TLSStore (spec §3).

``build_crd_config(objects, options) -> DynamicConfig`` is pure: objects of both API groups
(traefik.io and traefik.containo.us, v1alpha1) in, unqualified dynamic configuration out.
Names follow Traefik: routers ``<ns>-<ingressroute>-<sha256(match)[:10 bytes]>`` (3.4), services
``<ns>-<svc>-<port>`` (3.5), middlewares ``<ns>-<name>`` (3.9). A reference that cannot be resolved
keeps the router with an ``error`` so the API shows why it is not served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..config.dynamic import (
    Certificate,
    Domain,
    DynamicConfig,
    LoadBalancer,
    Mirror,
    Mirroring,
    Router,
    RouterTLS,
    Service,
    StickyCookie,
    TLSOptions,
    Weighted,
    WeightedRef,
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
    secret_data,
    servers_for,
)
from .crd_middlewares import build_middleware

__all__ = ["build_crd_config", "CRD_GROUPS", "WATCHES"]

CRD_GROUPS = ("traefik.io", "traefik.containo.us")
WATCHES = BACKEND_KINDS + tuple(
    Watched(f"{group}/v1alpha1", plural, kind)
    for group in CRD_GROUPS
    for plural, kind in (("ingressroutes", "IngressRoute"), ("middlewares", "Middleware"),
                         ("traefikservices", "TraefikService"), ("tlsoptions", "TLSOption"),
                         ("tlsstores", "TLSStore"), ("serverstransports", "ServersTransport"))
)


def _ours(obj: KubeObject, opts: ProviderOptions) -> bool:
    if str(obj.get("apiVersion", "")).split("/")[0] not in CRD_GROUPS:
        return False
    md = obj.get("metadata") or {}
    if opts.namespaces and md.get("namespace") not in opts.namespaces:
        return False
    cls = (obj.get("spec") or {}).get("ingressClassName") or (md.get("annotations") or {}).get(
        "kubernetes.io/ingress.class", "")
    return cls == opts.ingress_class if opts.ingress_class else cls in ("", "traefik")


def _sticky(spec: dict[str, Any] | None) -> StickyCookie | None:
    cookie = (spec or {}).get("cookie")
    if cookie is None:
        return None
    return StickyCookie(name=cookie.get("name", ""), secure=bool(cookie.get("secure")),
                        http_only=bool(cookie.get("httpOnly")), same_site=cookie.get("sameSite", ""),
                        max_age=int(cookie.get("maxAge", 0) or 0), path=cookie.get("path", "/") or "/",
                        domain=cookie.get("domain", ""))


def _full_name(ns: str, ref: dict[str, Any]) -> str:
    name, port = ref.get("name", ""), ref.get("port")
    if port not in (None, "", 0):
        return normalize(f"{ns}-{name}-{port}")
    if "@" not in name:
        return normalize(f"{ns}-{name}")
    base, provider = name.split("@", 1)
    return f"{normalize(base)}@{provider}"


def _lb(idx: ObjectIndex, ns: str, ref: dict[str, Any], opts: ProviderOptions) -> LoadBalancer:
    servers, _ = servers_for(idx, ns, ref.get("name", ""), ref.get("port", ""), ref.get("scheme", ""), opts,
                             native_lb=bool(ref.get("nativeLB")))
    if not servers and not opts.allow_empty_services:
        raise ServiceLookupError(f"no endpoints for service {ns}/{ref.get('name')}")
    flush = ((ref.get("responseForwarding") or {}).get("flushInterval")) or "100ms"
    return LoadBalancer(servers=servers, pass_host_header=ref.get("passHostHeader", True) is not False,
                        sticky=_sticky(ref.get("sticky")), servers_transport=ref.get("serversTransport", ""),
                        strategy=ref.get("strategy") or "wrr", flush_interval=str(flush))


def _resolve_ns(route_ns: str, ref: dict[str, Any], opts: ProviderOptions, what: str) -> str:
    ns = ref.get("namespace") or route_ns
    if ns != route_ns and not opts.allow_cross_namespace:
        raise ServiceLookupError(f"{what} {ns}/{ref.get('name')} is not in the IngressRoute namespace {route_ns}")
    return ns


def _name_and_service(idx: ObjectIndex, ns: str, ref: dict[str, Any], opts: ProviderOptions,
                      services: dict[str, Service]) -> tuple[str, Service | None]:
    """(full service name, load balancer or None for a TraefikService reference)."""
    svc_ns = _resolve_ns(ns, ref, opts, "service")
    if ref.get("kind") == "TraefikService":
        return _full_name(svc_ns, {"name": ref.get("name", "")}), None
    return _full_name(svc_ns, ref), Service(load_balancer=_lb(idx, svc_ns, ref, opts))


def _weighted(idx: ObjectIndex, ns: str, refs: Iterable[dict[str, Any]], opts: ProviderOptions,
              services: dict[str, Service], sticky: StickyCookie | None) -> Service:
    children = []
    for ref in refs:
        full, svc = _name_and_service(idx, ns, ref, opts, services)
        if svc is not None:
            services[full] = svc
        children.append(WeightedRef(full, int(ref.get("weight", 1) if ref.get("weight") is not None else 1)))
    return Service(weighted=Weighted(services=tuple(children), sticky=sticky))


def _middleware_keys(route_ns: str, refs: Iterable[dict[str, Any]], opts: ProviderOptions) -> tuple[str, ...]:
    out = []
    for ref in refs or ():
        name = ref.get("name", "")
        if not opts.allow_cross_namespace and name.endswith("@kubernetescrd"):
            raise ServiceLookupError(f"invalid reference to middleware {name}: with crossnamespace disallowed, "
                                     "the namespace field needs to be explicitly specified")
        if "@" in name:
            out.append(name)
            continue
        ns = _resolve_ns(route_ns, ref, opts, "middleware")
        out.append(normalize(f"{ns}-{name}"))
    return tuple(out)


def _router_tls(ns: str, tls: dict[str, Any]) -> RouterTLS:
    opt = tls.get("options") or {}
    options = ""
    if opt.get("name"):
        name = opt["name"]
        options = name if "@" in name else ("default" if name == "default" else normalize(f"{opt.get('namespace') or ns}-{name}"))
    domains = tuple(Domain(d.get("main", ""), tuple(d.get("sans") or ())) for d in tls.get("domains") or ())
    return RouterTLS(options=options, cert_resolver=tls.get("certResolver", ""), domains=domains)


def _ingress_routes(idx: ObjectIndex, opts: ProviderOptions, routers: dict[str, Router],
                    services: dict[str, Service], certs: dict[str, Certificate]) -> None:
    for obj in idx.all("IngressRoute"):
        if not _ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        ns, ir_name = md.get("namespace", "default"), md.get("name", "")
        spec = obj.get("spec") or {}
        tls = spec.get("tls")
        router_tls = _router_tls(ns, tls) if tls is not None else None
        if tls and tls.get("secretName"):
            try:
                cert = certificate_from_secret(idx, ns, tls["secretName"])
                certs[cert.source] = cert
            except ServiceLookupError:
                pass  # the router still serves with the default certificate, as Traefik does
        for route in spec.get("routes") or []:
            match = route.get("match", "")
            if route.get("kind") not in (None, "", "Rule") or not match:
                continue
            key = normalize(f"{ns}-{ir_name}-{rule_hash(match)}")
            error = ""
            service_name = key
            middlewares: tuple[str, ...] = ()
            try:
                middlewares = _middleware_keys(ns, route.get("middlewares") or (), opts)
                refs = route.get("services") or []
                if len(refs) > 1:
                    services[key] = _weighted(idx, ns, refs, opts, services, None)
                elif len(refs) == 1:
                    full, svc = _name_and_service(idx, ns, refs[0], opts, services)
                    if svc is not None:
                        services[key] = svc
                    else:
                        service_name = full
                else:
                    service_name = ""
            except ServiceLookupError as err:
                error = str(err)
            routers[key] = Router(rule=match, service=service_name, entry_points=tuple(spec.get("entryPoints") or ()),
                                  middlewares=middlewares, priority=int(route.get("priority") or 0),
                                  rule_syntax=route.get("syntax", "") or "", tls=router_tls, error=error)


def _traefik_services(idx: ObjectIndex, opts: ProviderOptions, services: dict[str, Service]) -> None:
    for obj in idx.all("TraefikService"):
        if not _ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        ns = md.get("namespace", "default")
        key = normalize(f"{ns}-{md.get('name', '')}")
        spec = obj.get("spec") or {}
        try:
            if spec.get("weighted") is not None:
                w = spec["weighted"]
                services[key] = _weighted(idx, ns, w.get("services") or (), opts, services, _sticky(w.get("sticky")))
            elif spec.get("mirroring") is not None:
                m = spec["mirroring"]
                main, svc = _name_and_service(idx, ns, m, opts, services)
                if svc is not None:
                    services[main] = svc
                mirrors = []
                for ref in m.get("mirrors") or ():
                    full, msvc = _name_and_service(idx, ns, ref, opts, services)
                    if msvc is not None:
                        services[full] = msvc
                    mirrors.append(Mirror(full, int(ref.get("percent", 0) or 0)))
                services[key] = Service(mirroring=Mirroring(
                    service=main, mirrors=tuple(mirrors), mirror_body=m.get("mirrorBody", True) is not False,
                    max_body_size=int(m.get("maxBodySize", -1) if m.get("maxBodySize") is not None else -1)))
            else:
                services[key] = Service(error=f"traefikservice {ns}/{md.get('name')}: no weighted or mirroring section")
        except ServiceLookupError as err:
            services[key] = Service(error=f"traefikservice {ns}/{md.get('name')}: {err}")


def _tls_options(idx: ObjectIndex, opts: ProviderOptions) -> dict[str, TLSOptions]:
    out: dict[str, TLSOptions] = {}
    defaults = 0
    for obj in idx.all("TLSOption"):
        if not _ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        spec: dict[str, Any] = obj.get("spec") or {}
        ca = []
        for secret in (spec.get("clientAuth") or {}).get("secretNames") or ():
            s = idx.get("Secret", md.get("namespace", ""), secret)
            if s is not None:
                d = secret_data(s)
                ca.append((d.get("tls.ca") or d.get("ca.crt") or d.get("tls.crt") or b"").decode())
        option = TLSOptions(
            min_version=spec.get("minVersion") or "VersionTLS12", max_version=spec.get("maxVersion", ""),
            cipher_suites=tuple(spec.get("cipherSuites") or ()), curve_preferences=tuple(spec.get("curvePreferences") or ()),
            alpn_protocols=tuple(spec.get("alpnProtocols") or ("h2", "http/1.1", "acme-tls/1")),
            sni_strict=bool(spec.get("sniStrict")), client_auth_type=(spec.get("clientAuth") or {}).get("clientAuthType", ""),
            client_ca_pems=tuple(ca))
        if md.get("name") == "default":
            defaults += 1
            out["default"] = option
        else:
            out[normalize(f"{md.get('namespace', '')}-{md.get('name', '')}")] = option
    if defaults > 1:
        out.pop("default", None)
    return out


def _default_certificate(idx: ObjectIndex, opts: ProviderOptions) -> Certificate | None:
    for obj in idx.all("TLSStore"):
        md = obj.get("metadata") or {}
        if not _ours(obj, opts) or md.get("name") != "default":
            continue
        secret = ((obj.get("spec") or {}).get("defaultCertificate") or {}).get("secretName")
        if secret:
            try:
                return certificate_from_secret(idx, md.get("namespace", ""), secret)
            except ServiceLookupError:
                return None
    return None


def build_crd_config(objects: Mapping[str, Iterable[KubeObject]] | Iterable[KubeObject] | ObjectIndex,
                     opts: ProviderOptions | None = None) -> DynamicConfig:
    """The kubernetesCRD provider as a pure function."""
    opts = opts or ProviderOptions()
    idx = objects if isinstance(objects, ObjectIndex) else ObjectIndex.build(objects)
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    certs: dict[str, Certificate] = {}
    middlewares = {}
    for obj in idx.all("Middleware"):
        if not _ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        mw, extra = build_middleware(idx, obj, opts)
        middlewares[normalize(f"{md.get('namespace', '')}-{md.get('name', '')}")] = mw
        services.update(extra)
    _traefik_services(idx, opts, services)
    _ingress_routes(idx, opts, routers, services, certs)
    return DynamicConfig(routers=routers, services=services, middlewares=middlewares,
                         certificates=tuple(certs[k] for k in sorted(certs)), tls_options=_tls_options(idx, opts),
                         default_certificate=_default_certificate(idx, opts))
