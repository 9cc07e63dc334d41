"""HTTPRoute -> routers, services and middlewares, with the route's parent statuses (Traefik's
kubernetesGateway loadHTTPRoutes).

Per attached listener and per rule ``ri`` and match: router
``httproute-<ns>-<route>-gw-<gwns>-<gw>-ep-<ep>-<ri>-<sha256(rule)[:20 hex]>`` with rule syntax ``default``,
the listener's entry point, TLS for an HTTPS listener, priority = the match's weight (Exact path 100000,
prefix/regexp 10000 + 100 x path length, method 1000, 100 a header, 10 a query parameter, plus the
longest hostname's length) + number of rules - ``ri``. The service is the weighted ``<router>-wrr`` over
``<ns>-<svc>-http-<port>`` load balancers; a backend that cannot be loaded stays in it with status 500
and sets ResolvedRefs False on the route. Filters become ``<router>-<filtertype>-<i>`` middlewares;
an ExtensionRef to a Traefik Middleware names ``<ns>-<name>@kubernetescrd`` (only with the kubernetesCRD
provider on); a filter that cannot be honoured makes the router answer 500 (``<router>-err-wrr``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import (
    LoadBalancer,
    Middleware,
    Router,
    RouterTLS,
    Server,
    Service,
    Weighted,
    WeightedRef,
)
from ..config.static import GatewayOptions
from .common import KubeObject, ObjectIndex, annotation_bool, join_host_port, normalize
from .gateway_listeners import (
    CONTROLLER,
    GatewayListener,
    allow_route,
    condition,
    match_listener,
    matching_hostnames,
    reference_granted,
    route_listeners,
)

__all__ = ["HTTPParts", "load_http_routes", "match_rule", "service_protocol", "backend_servers", "BackendError"]


@dataclass(slots=True)
class HTTPParts:
    routers: dict[str, Router] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    middlewares: dict[str, Middleware] = field(default_factory=dict)

    def merge(self, other: HTTPParts) -> None:
        self.routers.update(other.routers)
        self.services.update(other.services)
        self.middlewares.update(other.middlewares)


class BackendError(Exception):
    """A backendRef that cannot be loaded: ``reason`` is the route's ResolvedRefs reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _host_rule(hostnames: list[str]) -> tuple[str, int]:
    rules, priority = [], 0
    for host in hostnames:
        priority = max(priority, len(host))
        if "*" not in host:
            rules.append(f"Host(`{host}`)")
            continue
        # the wildcard label stands for one or more labels, as Traefik writes it
        quoted = re.escape(host).replace("\\*\\.", "[a-z0-9-\\.]+\\.", 1)
        rules.append(f"HostRegexp(`^{quoted}$`)")
    if not rules:
        return "", 0
    return (rules[0] if len(rules) == 1 else f"({' || '.join(rules)})"), priority


def _path_rule(path: dict[str, Any]) -> tuple[str, int]:
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    if kind == "Exact":
        return f"Path(`{value}`)", 100000
    if kind == "PathPrefix":
        if value == "/":
            return "PathPrefix(`/`)", 1
        trimmed = value.removesuffix("/")
        return f"(Path(`{trimmed}`) || PathPrefix(`{trimmed}/`))", 10000 + len(value) * 100
    if kind == "RegularExpression":
        return f"PathRegexp(`{value}`)", 10000 + len(value) * 100
    return "PathPrefix(`/`)", 1


def match_rule(hostnames: list[str], match: dict[str, Any]) -> tuple[str, int]:
    """Traefik buildMatchRule: the rule of one HTTPRouteMatch and its priority."""
    rule, priority = _path_rule(match.get("path") or {"type": "PathPrefix", "value": "/"})
    parts = [rule]
    if match.get("method"):
        parts.append(f"Method(`{match['method']}`)")
        priority += 1000
    for header in match.get("headers") or ():
        matcher = "HeaderRegexp" if header.get("type") == "RegularExpression" else "Header"
        parts.append(f"{matcher}(`{header.get('name', '')}`,`{header.get('value', '')}`)")
        priority += 100
    for qp in match.get("queryParams") or ():
        matcher = "QueryRegexp" if qp.get("type") == "RegularExpression" else "Query"
        parts.append(f"{matcher}(`{qp.get('name', '')}`,`{qp.get('value', '')}`)")
        priority += 10
    text = " && ".join(parts)
    host, host_priority = _host_rule(hostnames)
    if not host:
        return text, priority
    return f"{host} && {text}", priority + host_priority


def router_name(rule: str, key: str) -> str:
    return f"{key}-{hashlib.sha256(rule.encode()).hexdigest()[:20]}"


def service_protocol(port: dict[str, Any]) -> str:
    """Traefik getHTTPServiceProtocol: appProtocol, else https for port 443 or an https* port name."""
    if (port.get("protocol") or "TCP") != "TCP":
        raise ValueError("only TCP protocol is supported")
    app = port.get("appProtocol")
    if app is None:
        return "https" if port.get("port") == 443 or str(port.get("name") or "").startswith("https") else "http"
    app = str(app).lower()
    if app == "kubernetes.io/h2c":
        return "h2c"
    if app in ("http", "kubernetes.io/ws"):
        return "http"
    if app in ("https", "kubernetes.io/wss"):
        return "https"
    raise ValueError(f"unsupported application protocol {app}")


def backend_servers(idx: ObjectIndex, ns: str, name: str, port: int | None,
                    native_default: bool) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Traefik getBackendAddresses: (ip, port) pairs of a Service port and the Service port itself."""
    if port is None:
        raise ValueError("port is required for Kubernetes Service reference")
    svc = idx.get("Service", ns, name)
    if svc is None:
        raise ValueError("service not found")
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        raise ValueError("type ExternalName is not supported for Kubernetes Service reference")
    svc_port = next((p for p in spec.get("ports") or () if p.get("port") == port), None)
    if svc_port is None:
        raise ValueError(f"service port {port} not found")
    native = native_default
    for key, value in ((svc.get("metadata") or {}).get("annotations") or {}).items():
        if key.lower() == "traefik.io/service.nativelb":
            if value.strip().lower() not in ("1", "t", "true", "0", "f", "false"):
                raise ValueError(f"parsing service annotations config: decoding labels: invalid boolean {value!r}")
            native = annotation_bool(value, native)
    if native:
        ip = spec.get("clusterIP") or ""
        if ip in ("", "None"):
            raise ValueError(f"no clusterIP found for service: {ns}/{name}")
        return [(ip, port)], svc_port
    slices = idx.slices.get(f"{ns}/{name}", [])
    if not slices:
        raise ValueError("endpointslices not found")
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    for sl in slices:
        target = next((int(p.get("port") or 0) for p in sl.get("ports") or ()
                       if p.get("name", "") == (svc_port.get("name") or "")), 0)
        if not target:
            continue
        for ep in sl.get("endpoints") or ():
            if (ep.get("conditions") or {}).get("ready") is not True:
                continue
            for addr in ep.get("addresses") or ():
                if addr not in seen:
                    seen.add(addr)
                    out.append((addr, target))
    return out, svc_port


@dataclass(slots=True)
class _RouteContext:
    idx: ObjectIndex
    opts: GatewayOptions
    route: KubeObject
    kind: str  # HTTPRoute or GRPCRoute
    generation: int
    parts: HTTPParts
    filter_errors: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return (self.route.get("metadata") or {}).get("namespace", "")


def _load_service(ctx: _RouteContext, ref: dict[str, Any]) -> str:
    """The name of the service a backendRef stands for (built into ``ctx.parts``); BackendError if it cannot be."""
    kind = ref.get("kind") or "Service"
    group = ref.get("group") or "core"
    ns = ref.get("namespace") or ctx.namespace
    name = ref.get("name", "")
    service_name = normalize(f"{ns}-{name}-{'grpc' if ctx.kind == 'GRPCRoute' else 'http'}")
    why = reference_granted(ctx.idx, ctx.kind, ctx.namespace, group, kind, name, ns)
    if why:
        raise BackendError("RefNotPermitted", f"Cannot load {ctx.kind[:-5]}BackendRef {group}/{kind}/{ns}/{name}: {why}")
    if group != "core" or kind != "Service":
        if kind == "TraefikService" and "@" in name:
            return name
        if group == "traefik.io" and kind == "TraefikService" and ctx.opts.crd_namespaces is not None:
            if ctx.opts.crd_namespaces and ns not in ctx.opts.crd_namespaces:
                raise BackendError("InvalidKind", f"Cannot load HTTPBackendRef {group}/{kind}/{ns}/{name}: "
                                   f'namespace "{ns}" is not allowed')
            return f"{normalize(f'{ns}-{name}')}@kubernetescrd"
        raise BackendError("InvalidKind", f"Cannot load HTTPBackendRef {group}/{kind}/{ns}/{name}: "
                           f"unsupported HTTPBackendRef {group}/{kind}/{name}")
    port = ref.get("port")
    if not port:
        raise BackendError("UnsupportedProtocol",
                           f"Cannot load HTTPBackendRef {group}/{kind}/{ns}/{name}: port is required")
    service_name = normalize(f"{service_name}-{port}")
    try:
        addresses, svc_port = backend_servers(ctx.idx, ns, name, int(port), ctx.opts.native_lb_by_default)
    except ValueError as err:
        raise BackendError("BackendNotFound", f"Cannot load HTTPBackendRef {ns}/{name}: {err}") from None
    try:
        scheme = "h2c" if ctx.kind == "GRPCRoute" else service_protocol(svc_port)
    except ValueError as err:
        raise BackendError("UnsupportedProtocol", f"Cannot load HTTPBackendRef {ns}/{name}: {err}") from None
    servers = tuple(Server(f"{scheme}://{join_host_port(ip, p)}") for ip, p in addresses)
    ctx.parts.services[service_name] = Service(load_balancer=LoadBalancer(servers=servers))
    return service_name


def _failed_name(ctx: _RouteContext, ref: dict[str, Any]) -> str:
    ns = ref.get("namespace") or ctx.namespace
    base = normalize(f"{ns}-{ref.get('name', '')}-{'grpc' if ctx.kind == 'GRPCRoute' else 'http'}")
    kind, group = ref.get("kind") or "Service", ref.get("group") or "core"
    if group == "core" and kind == "Service" and ref.get("port"):
        return normalize(f"{base}-{ref['port']}")
    return base


def load_wrr(ctx: _RouteContext, name: str, backend_refs: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """The weighted service of a rule's backendRefs and the ResolvedRefs condition of the last failure."""
    if name in ctx.parts.services:
        return name, None
    refs: list[WeightedRef] = []
    failure: dict[str, Any] | None = None
    for ref in backend_refs:
        weight = int(ref.get("weight", 1))
        try:
            refs.append(WeightedRef(_load_service(ctx, ref), weight))
        except BackendError as err:
            failure = condition("ResolvedRefs", False, ctx.generation, err.reason, str(err))
            refs.append(WeightedRef(_failed_name(ctx, ref), weight, status=500))
    ctx.parts.services[name] = Service(weighted=Weighted(services=tuple(refs)))
    return name, failure


def _header_filter(spec: dict[str, Any] | None) -> dict[str, Any]:
    spec = spec or {}
    return {"set": {h.get("name", ""): h.get("value", "") for h in spec.get("set") or ()},
            "add": {h.get("name", ""): h.get("value", "") for h in spec.get("add") or ()},
            "remove": list(spec.get("remove") or ())}


def _path_modifier(spec: dict[str, Any], path_match: dict[str, Any], out: dict[str, Any]) -> None:
    mod = spec.get("path")
    if not mod:
        return
    if mod.get("type") == "ReplaceFullPath":
        out["path"] = mod.get("replaceFullPath", "")
    elif mod.get("type") == "ReplacePrefixMatch":
        out["path"] = mod.get("replacePrefixMatch", "")
        out["pathPrefix"] = path_match.get("value", "/")


def _filter_middleware(ctx: _RouteContext, f: dict[str, Any], path_match: dict[str, Any]) -> tuple[str, Middleware | None]:
    """(kind, middleware) of one filter; ValueError for a filter that cannot be honoured. ``kind`` "" is a
    reference to a middleware of another provider (its name is in the returned middleware's config)."""
    kind = f.get("type", "")
    if kind == "RequestRedirect":
        spec = f.get("requestRedirect") or {}
        conf: dict[str, Any] = {"statusCode": int(spec.get("statusCode") or 302)}
        for key in ("scheme", "hostname"):
            if spec.get(key) is not None:
                conf[key] = spec[key]
        if spec.get("scheme") in ("http", "https"):
            conf["port"] = ""
        if spec.get("port") is not None:
            conf["port"] = str(spec["port"])
        _path_modifier(spec, path_match, conf)
        return kind, Middleware("requestRedirect", conf)
    if kind == "RequestHeaderModifier":
        return kind, Middleware("requestHeaderModifier", _header_filter(f.get("requestHeaderModifier")))
    if kind == "ResponseHeaderModifier":
        return kind, Middleware("responseHeaderModifier", _header_filter(f.get("responseHeaderModifier")))
    if kind == "URLRewrite":
        spec = f.get("urlRewrite") or {}
        if spec.get("path") is None and spec.get("hostname") is None:
            raise ValueError("invalid filter URLRewrite: empty configuration")
        conf = {"hostname": spec["hostname"]} if spec.get("hostname") is not None else {}
        _path_modifier(spec, path_match, conf)
        return kind, Middleware("urlRewrite", conf)
    if kind == "ExtensionRef":
        ref = f.get("extensionRef")
        if ref is None:
            raise ValueError("loading ExtensionRef filter ExtensionRef: filter extension ref undefined")
        group, rkind, name = ref.get("group", ""), ref.get("kind", ""), ref.get("name", "")
        if group != "traefik.io" or rkind != "Middleware" or ctx.opts.crd_namespaces is None:
            raise ValueError(f"loading ExtensionRef filter ExtensionRef: unsupported filter extension ref "
                             f"{group}/{rkind}/{name}")
        if ctx.opts.crd_namespaces and ctx.namespace not in ctx.opts.crd_namespaces:
            raise ValueError(f'loading ExtensionRef filter ExtensionRef: namespace "{ctx.namespace}" is not allowed')
        return "", Middleware("", {"ref": f"{normalize(f'{ctx.namespace}-{name}')}@kubernetescrd"})
    raise ValueError(f"unsupported filter {kind}")


def load_middlewares(ctx: _RouteContext, router: str, filters: list[dict[str, Any]],
                     path_match: dict[str, Any] | None) -> tuple[str, ...]:
    """Traefik loadMiddlewares: every filter or none (ValueError)."""
    pm = path_match or {"type": "PathPrefix", "value": "/"}
    built: list[tuple[str, Middleware | None]] = []
    for i, f in enumerate(filters):
        kind, mw = _filter_middleware(ctx, f, pm)
        if kind == "" and mw is not None:
            built.append((str(mw.config["ref"]), None))
            continue
        built.append((f"{router}-{kind.lower()}-{i}", mw))
    for name, mw in built:
        if mw is not None:
            ctx.parts.middlewares[name] = mw
    return tuple(name for name, _ in built)


def _route_conf(ctx: _RouteContext, listener: GatewayListener, hostnames: list[str]) -> dict[str, Any]:
    """The routers of one route on one listener (into ``ctx.parts``) and its ResolvedRefs condition."""
    route = ctx.route
    md = route.get("metadata") or {}
    rules = (route.get("spec") or {}).get("rules") or []
    resolved = condition("ResolvedRefs", True, ctx.generation, "ResolvedRefs")
    for ri, rule in enumerate(rules):
        key = normalize(f"httproute-{md.get('namespace', '')}-{md.get('name', '')}-gw-{listener.gw_namespace}-"
                        f"{listener.gw_name}-ep-{listener.ep_name}-{ri}")
        for match in rule.get("matches") or [{}]:
            text, priority = match_rule(hostnames, match)
            name = router_name(text, key)
            router = Router(rule=text, rule_syntax="default", priority=priority + len(rules) - ri,
                            entry_points=(listener.ep_name,),
                            tls=RouterTLS() if listener.protocol == "HTTPS" else None)
            backend_refs = rule.get("backendRefs") or []
            try:
                middlewares = load_middlewares(ctx, name, rule.get("filters") or [], match.get("path"))
            except ValueError as err:
                err_name = f"{name}-err-wrr"
                ctx.parts.services[err_name] = Service(weighted=Weighted(services=(
                    WeightedRef("invalid-httproute-filter", 1, status=500),)))
                ctx.parts.routers[name] = Router(rule=router.rule, rule_syntax="default", priority=router.priority,
                                                 entry_points=router.entry_points, tls=router.tls, service=err_name)
                ctx.filter_errors.append(f"{md.get('namespace')}/{md.get('name')}: {err}")
                continue
            if (len(backend_refs) == 1 and (backend_refs[0].get("kind") == "TraefikService")
                    and str(backend_refs[0].get("name", "")).endswith("@internal")):
                service = str(backend_refs[0]["name"])
            else:
                service, failure = load_wrr(ctx, f"{name}-wrr", backend_refs)
                if failure is not None:
                    resolved = failure
            ctx.parts.routers[name] = Router(rule=router.rule, rule_syntax="default", priority=router.priority,
                                             entry_points=router.entry_points, tls=router.tls, service=service,
                                             middlewares=middlewares)
    return resolved


def load_http_routes(idx: ObjectIndex, opts: GatewayOptions, listeners: list[GatewayListener], kind: str = "HTTPRoute",
                     ) -> tuple[HTTPParts, list[tuple[KubeObject, dict[str, Any]]], list[str]]:
    """Every route of ``kind`` on ``listeners``: the configuration, each route's new status and the
    problems to log (filters that could not be honoured)."""
    parts = HTTPParts()
    statuses: list[tuple[KubeObject, dict[str, Any]]] = []
    problems: list[str] = []
    for route in idx.all(kind):
        md = route.get("metadata") or {}
        ns = md.get("namespace", "")
        parent_refs = (route.get("spec") or {}).get("parentRefs") or []
        candidates = route_listeners(listeners, ns, parent_refs)
        if not candidates:
            continue
        generation = int(md.get("generation") or 0)
        parents = []
        for ref in parent_refs:
            accepted_cond = condition("Accepted", False, generation, "NoMatchingParent")
            resolved: dict[str, Any] | None = None
            for listener in candidates:
                accepted = match_listener(listener, ref)
                if accepted and not allow_route(listener, ns, kind):
                    _set_reason(accepted_cond, "NotAllowedByListeners")
                    accepted = False
                hostnames, ok = matching_hostnames(listener.hostname, list((route.get("spec") or {}).get("hostnames") or ()))
                if accepted and not ok:
                    _set_reason(accepted_cond, "NoMatchingListenerHostname")
                    accepted = False
                if accepted:
                    listener.attached_routes += 1
                    if listener.attached:
                        _set_reason(accepted_cond, "Accepted")
                ctx = _RouteContext(idx, opts, route, kind, generation, HTTPParts())
                cond = _route_conf(ctx, listener, hostnames)
                problems += ctx.filter_errors
                if accepted and listener.attached:
                    parts.merge(ctx.parts)
                if resolved is None or not (resolved["status"] == "False" and cond["status"] == "True"):
                    resolved = cond
            conds = [accepted_cond] + ([resolved] if resolved is not None else [])
            parents.append({"parentRef": ref, "controllerName": CONTROLLER, "conditions": conds})
        statuses.append((route, {"parents": parents}))
    return parts, statuses, problems


def _set_reason(cond: dict[str, Any], reason: str) -> None:
    """Traefik updateRouteConditionAccepted: a not-yet-true Accepted condition takes the reason."""
    if cond["status"] != "True":
        cond["reason"] = reason
        if reason == "Accepted":
            cond["status"] = "True"
