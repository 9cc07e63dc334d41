"""kubernetesCRD provider, TCP and UDP side: IngressRouteTCP, IngressRouteUDP, MiddlewareTCP,
ServersTransportTCP (Traefik pkg/provider/kubernetes/crd kubernetes_tcp.go, kubernetes_udp.go).

``build_crd_tcp(index, options) -> (TCPParts, certificates)`` is pure. Names follow Traefik:
TCP routers and services ``<ns>-<name>-<sha256(match)[:10 bytes]>`` (not normalized, so a dot in the
IngressRouteTCP name stays), a weighted route's children ``<service>-<svc>-<port>``, UDP routers
``<ns>-<name>-<route index>``, MiddlewareTCP and ServersTransportTCP ``normalize(<ns>-<name>)``.

Servers come from the Service's EndpointSlices (only endpoints whose ``ready`` condition is true, port
matched by name), its ClusterIP (``nativeLB``), the nodes' InternalIP and the node port
(``nodePortLB`` on a NodePort Service) or its ``externalName``.

Where Traefik drops a route, a service or a reference with only a log line, pyk3s keeps the router with
an ``error`` (the API shows why it is not served) or a ``warning`` for what is accepted but has no
effect (an ACME ``certResolver``, a TLS ``store`` other than ``default``, a ``secretName`` on a
passthrough route); a weighted route still serves the services that could be built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from ..config.durations import duration_seconds
from ..config.dynamic import Certificate
from ..config.dynamic_tcp import (
    ProxyProtocolVersion,
    RouterTCPTLS,
    TCPLoadBalancer,
    TCPMiddleware,
    TCPParts,
    TCPRouter,
    TCPServer,
    TCPServersTransport,
    TCPService,
    TCPWeighted,
    TCPWeightedRef,
    TLSClientConfig,
    TLSDomain,
    UDPLoadBalancer,
    UDPRouter,
    UDPServer,
    UDPService,
    UDPWeighted,
)
from ..config.errors import ConfigError
from ..config.static import ProviderOptions
from .common import KubeObject, ObjectIndex, ServiceLookupError, Watched, normalize, secret_data

__all__ = ["build_crd_tcp", "TCP_WATCHES"]

_GROUPS = ("traefik.io", "traefik.containo.us")
TCP_WATCHES = (Watched("v1", "nodes", "Node"), Watched("v1", "configmaps", "ConfigMap")) + tuple(
    Watched(f"{group}/v1alpha1", plural, kind)
    for group in _GROUPS
    for plural, kind in (("ingressroutetcps", "IngressRouteTCP"), ("ingressrouteudps", "IngressRouteUDP"),
                         ("middlewaretcps", "MiddlewareTCP"), ("serverstransporttcps", "ServersTransportTCP"))
)


def _processed(obj: KubeObject, opts: ProviderOptions) -> bool:
    """Traefik's shouldProcessIngress with spec.ingressClassName, else the deprecated annotation."""
    if str(obj.get("apiVersion", "")).split("/")[0] not in _GROUPS:
        return False
    md = obj.get("metadata") or {}
    if opts.namespaces and md.get("namespace") not in opts.namespaces:
        return False
    spec_class = (obj.get("spec") or {}).get("ingressClassName")
    cls = spec_class if spec_class is not None else (md.get("annotations") or {}).get("kubernetes.io/ingress.class", "")
    return cls == opts.ingress_class or (not opts.ingress_class and cls == "traefik")


def _service_key(match: str, name: str) -> str:
    return f"{name}-{hashlib.sha256(match.encode()).hexdigest()[:20]}"


def _make_id(ns: str, name: str) -> str:
    return f"{ns}-{name}" if ns else name


def _join(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port_text(port: Any) -> str:
    return "" if port is None else str(port)


# ------------------------------------------------------------------------------------------- servers
def _service_port(svc: KubeObject, port: Any) -> dict[str, Any]:
    """Traefik's getServicePort: by number or name; an ExternalName Service takes any number."""
    md = svc.get("metadata") or {}
    if port in (None, "", 0):
        raise ServiceLookupError("ingressRoute service port not defined")
    is_int = isinstance(port, int) or (isinstance(port, str) and port.isdigit())
    spec = svc.get("spec") or {}
    for p in spec.get("ports") or []:
        if (is_int and p.get("port") == int(port)) or (not is_int and p.get("name") == port):
            return dict(p)
    if spec.get("type") != "ExternalName" or not is_int:
        raise ServiceLookupError(f"service port not found: {port} (service {md.get('namespace')}/{md.get('name')})")
    return {"port": int(port)}


def _addresses(idx: ObjectIndex, ns: str, ref: dict[str, Any], opts: ProviderOptions) -> list[str]:
    """host:port of every server of a route's service reference (Traefik loadTCPServers/loadUDPServers)."""
    name = ref.get("name", "")
    svc = idx.get("Service", ns, name)
    if svc is None:
        raise ServiceLookupError(f"kubernetes service not found: {ns}/{name}")
    spec = svc.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName" and not opts.allow_external_name_services:
        raise ServiceLookupError(f"externalName services not allowed: {ns}/{name}")
    sport = _service_port(svc, ref.get("port"))
    if kind == "NodePort" and ref.get("nodePortLB"):
        out = [_join(a["address"], sport.get("nodePort", 0)) for node in idx.all("Node")
               for a in (node.get("status") or {}).get("addresses") or () if a.get("type") == "InternalIP"]
        if not out:
            raise ServiceLookupError(f"no servers were generated for NodePort service {ns}/{name} (no node InternalIP)")
        return out
    if kind == "ExternalName":
        return [_join(spec.get("externalName", ""), sport["port"])]
    native = ref.get("nativeLB")
    if native if native is not None else opts.native_lb_by_default:
        ip = spec.get("clusterIP", "")
        if ip == "None":
            raise ServiceLookupError(f"getting native Kubernetes Service address: no clusterIP on headless service: {ns}/{name}")
        if not ip:
            raise ServiceLookupError(f"getting native Kubernetes Service address: no clusterIP found for service: {ns}/{name}")
        return [_join(ip, sport["port"])]
    found: list[str] = []
    seen: set[str] = set()
    for sl in idx.slices.get(f"{ns}/{name}", []):
        port = next((p.get("port") for p in sl.get("ports") or ()
                     if p.get("name") is not None and p.get("name") == sport.get("name", "")), None)
        if not port:
            continue
        for ep in sl.get("endpoints") or ():
            if (ep.get("conditions") or {}).get("ready") is not True:
                continue
            for addr in ep.get("addresses") or ():
                if addr not in seen:
                    seen.add(addr)
                    found.append(_join(addr, port))
    if not found and not opts.allow_empty_services:
        raise ServiceLookupError(f"no servers found for {ns}/{name}")
    return found


def _service_ns(parent: str, ref: dict[str, Any], opts: ProviderOptions, what: str) -> str:
    ns = ref.get("namespace") or parent
    if ns != parent and not opts.allow_cross_namespace:
        raise ServiceLookupError(f"{what} service {ns}/{ref.get('name')} is not in the parent resource namespace {parent}")
    return ns


def _transport_key(parent: str, name: str, opts: ProviderOptions) -> str:
    if "@" in name:
        if not opts.allow_cross_namespace and name.endswith("@kubernetescrd"):
            raise ServiceLookupError(f"invalid reference to serversTransport {name}: namespace-name@kubernetescrd "
                                     "format is not allowed when crossnamespace is disallowed")
        return name
    return normalize(_make_id(parent, name))


def _tcp_lb(idx: ObjectIndex, parent: str, ref: dict[str, Any], opts: ProviderOptions) -> TCPService:
    ns = _service_ns(parent, ref, opts, "tcp")
    servers = tuple(TCPServer(a, bool(ref.get("tls"))) for a in _addresses(idx, ns, ref, opts))
    proxy = None
    if ref.get("proxyProtocol") is not None:
        proxy = ProxyProtocolVersion(int((ref["proxyProtocol"] or {}).get("version") or 2))
    transport = ref.get("serversTransport") or ""
    delay = ref.get("terminationDelay")
    return TCPService(load_balancer=TCPLoadBalancer(
        servers=servers, servers_transport=_transport_key(parent, transport, opts) if transport else "",
        proxy_protocol=proxy, termination_delay=int(delay) if delay is not None and not transport else None))


def _udp_lb(idx: ObjectIndex, parent: str, ref: dict[str, Any], opts: ProviderOptions) -> UDPService:
    ns = _service_ns(parent, ref, opts, "udp")
    return UDPService(load_balancer=UDPLoadBalancer(tuple(UDPServer(a) for a in _addresses(idx, ns, ref, opts))))


# ------------------------------------------------------------------------------------------ references
def _reference(parent: str, ref: dict[str, Any], opts: ProviderOptions, what: str) -> str:
    """Traefik's resolveReference: ``name@provider`` kept, else Normalize(<ns>-<name>)."""
    name = ref.get("name", "")
    if "@" in name:
        if not opts.allow_cross_namespace and name.endswith("@kubernetescrd"):
            raise ServiceLookupError(f"invalid reference to {what} {name}: when allowCrossNamespace is disabled, "
                                     "@kubernetescrd references are disallowed")
        return name
    ns = ref.get("namespace") or parent
    if ns != parent and not opts.allow_cross_namespace:
        raise ServiceLookupError(f"invalid reference to {what} {ns}/{name}: allowCrossNamespace is disabled, "
                                 "cross-namespace are disallowed")
    return normalize(f"{ns}-{name}")


def _router_tls(ns: str, tls: dict[str, Any], opts: ProviderOptions, warnings: list[str]) -> RouterTCPTLS:
    options = ""
    opt_ref = tls.get("options") or {}
    if opt_ref.get("name"):
        options = _reference(ns, opt_ref, opts, "TLSOption")
    store = (tls.get("store") or {}).get("name")
    if store and store != "default":
        warnings.append(f"tls.store {store}: only the TLSStore named default holds certificates; it is used")
    if tls.get("certResolver"):
        warnings.append(f"tls.certResolver {tls['certResolver']}: ACME is not supported; certificates come from "
                        "Secrets and the default TLSStore")
    if tls.get("domains") and not tls.get("certResolver"):
        warnings.append("tls.domains: only used to request certificates from a certResolver; ignored")
    domains = tuple(TLSDomain(d.get("main", ""), tuple(d.get("sans") or ())) for d in tls.get("domains") or ())
    return RouterTCPTLS(passthrough=bool(tls.get("passthrough")), options=options,
                        cert_resolver=tls.get("certResolver", "") or "", domains=domains)


def _certificate(idx: ObjectIndex, ns: str, name: str) -> Certificate:
    secret = idx.get("Secret", ns, name)
    if secret is None:
        raise ServiceLookupError(f"secret {ns}/{name} does not exist")
    data = secret_data(secret)
    crt, key = data.get("tls.crt", b""), data.get("tls.key", b"")
    if not crt or not key:
        raise ServiceLookupError(f"secret {ns}/{name} has no tls.crt / tls.key")
    return Certificate(crt.decode(), key.decode(), ("default",), f"{ns}/{name}")


# --------------------------------------------------------------------------------------------- routes
def _ingress_route_tcp(idx: ObjectIndex, obj: KubeObject, opts: ProviderOptions, out: dict[str, Any],
                       certs: dict[str, Certificate]) -> None:
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "default")
    name = md.get("name") or md.get("generateName", "")
    spec = obj.get("spec") or {}
    tls = spec.get("tls")
    route_warnings: list[str] = []
    if tls is not None and tls.get("secretName"):
        if tls.get("passthrough"):
            route_warnings.append(f"tls.secretName {tls['secretName']}: not used by a passthrough route "
                                  "(the backend terminates TLS)")
        else:
            try:
                cert = _certificate(idx, ns, tls["secretName"])
                certs.setdefault(cert.source, cert)
            except ServiceLookupError as err:
                route_warnings.append(f"tls.secretName: {err}; the default certificate is served instead")
    for i, route in enumerate(spec.get("routes") or ()):
        match = route.get("match") or ""
        key = _make_id(ns, _service_key(match, name))
        warnings = list(route_warnings)
        error = ""
        router_tls = None
        middlewares: tuple[str, ...] = ()
        try:
            if not match:
                raise ServiceLookupError(f"routes[{i}].match is empty")
            middlewares = tuple(_reference(ns, m, opts, "middleware") for m in route.get("middlewares") or ())
            _route_services(idx, ns, key, route.get("services") or (), opts, out["tcp_services"], warnings, tcp=True)
            if tls is not None:
                router_tls = _router_tls(ns, tls, opts, warnings)
        except ServiceLookupError as err:
            error = str(err)
        out["tcp_routers"][key] = TCPRouter(
            rule=match, service=key, entry_points=tuple(spec.get("entryPoints") or ()), middlewares=middlewares,
            priority=int(route.get("priority") or 0), rule_syntax=route.get("syntax") or "", tls=router_tls,
            error=error, warnings=tuple(warnings))


def _route_services(idx: ObjectIndex, ns: str, key: str, refs: Iterable[dict[str, Any]], opts: ProviderOptions,
                    services: dict[str, Any], warnings: list[str], tcp: bool) -> None:
    """The route's service: one load balancer, or a weighted service over one per reference."""
    refs = list(refs)
    if not refs:
        raise ServiceLookupError("the route has no services")
    for ref in refs:
        svc = idx.get("Service", ref.get("namespace") or ns, ref.get("name", ""))
        kind = ((svc or {}).get("spec") or {}).get("type", "ClusterIP")
        if ref.get("nodePortLB") and svc is not None and kind != "NodePort":
            warnings.append(f"service {ref.get('name')}: nodePortLB applies to NodePort Services only, this one is "
                            f"{kind}: its endpoints are used")
    build = _tcp_lb if tcp else _udp_lb
    if len(refs) == 1:
        try:
            services[key] = build(idx, ns, refs[0], opts)
        except ServiceLookupError as err:
            services[key] = (TCPService if tcp else UDPService)(error=f"cannot create service: {err}")
        return
    children: list[TCPWeightedRef] = []
    for ref in refs:
        child = f"{key}-{ref.get('name', '')}-{_port_text(ref.get('port'))}"
        try:
            services[child] = build(idx, ns, ref, opts)
        except ServiceLookupError as err:
            warnings.append(f"service {ref.get('name')} (port {_port_text(ref.get('port'))}) left out: {err}")
            continue
        weight = ref.get("weight")
        children.append(TCPWeightedRef(child, int(weight) if weight is not None else 1))
    if not children:
        services[key] = (TCPService if tcp else UDPService)(error="cannot create service: no service of the route "
                                                                   "could be built")
    elif tcp:
        services[key] = TCPService(weighted=TCPWeighted(tuple(children)))
    else:
        services[key] = UDPService(weighted=UDPWeighted(tuple(children)))


def _ingress_route_udp(idx: ObjectIndex, obj: KubeObject, opts: ProviderOptions, out: dict[str, Any]) -> None:
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "default")
    name = md.get("name") or md.get("generateName", "")
    spec = obj.get("spec") or {}
    for i, route in enumerate(spec.get("routes") or ()):
        key = _make_id(ns, f"{name}-{i}")
        warnings: list[str] = []
        error = ""
        try:
            _route_services(idx, ns, key, route.get("services") or (), opts, out["udp_services"], warnings, tcp=False)
        except ServiceLookupError as err:
            error = str(err)
        out["udp_routers"][key] = UDPRouter(service=key, entry_points=tuple(spec.get("entryPoints") or ()),
                                            error=error, warnings=tuple(warnings))


# ------------------------------------------------------------------------------------ middlewares etc.
def _middleware_tcp(obj: KubeObject) -> TCPMiddleware:
    spec = obj.get("spec") or {}
    kinds = [k for k in ("inFlightConn", "ipWhiteList", "ipAllowList") if spec.get(k) is not None]
    unknown = sorted(set(spec) - {"inFlightConn", "ipWhiteList", "ipAllowList"})
    if unknown:
        return TCPMiddleware("", {}, f"unsupported MiddlewareTCP field(s): {', '.join(unknown)}")
    if len(kinds) != 1:
        return TCPMiddleware(kinds[0] if kinds else "", {},
                             "cannot create middleware: multi-types middleware not supported, consider declaring two "
                             "different pieces of middleware instead" if kinds else
                             "invalid middleware type or middleware does not exist")
    return TCPMiddleware(kinds[0], dict(spec[kinds[0]] or {}))


def _ca_from(idx: ObjectIndex, kind: str, ns: str, name: str) -> str:
    obj = idx.get(kind, ns, name)
    if obj is None:
        raise ServiceLookupError(f"{kind.lower()} '{ns}/{name}' not found")
    data = secret_data(obj) if kind == "Secret" else {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for key in ("tls.ca", "ca.crt"):
        if key in data:
            return data[key].decode()
    if kind == "Secret" and len(data) == 1:
        return next(iter(data.values())).decode()
    raise ServiceLookupError(f"{kind.lower()} '{ns}/{name}' has no CA block: it contains neither tls.ca nor ca.crt")


def _servers_transport(idx: ObjectIndex, obj: KubeObject) -> TCPServersTransport:
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "")
    spec = obj.get("spec") or {}
    warnings: list[str] = []
    error = ""

    def duration(key: str, default: float) -> float:
        value = spec.get(key)
        try:
            return duration_seconds(value, default, f"ServersTransportTCP {ns}/{md.get('name')}: {key}")
        except ConfigError as err:
            warnings.append(f"{str(err).removeprefix('ingress: ')}; {default}s is used")
            return default

    tls = None
    tls_spec = spec.get("tls")
    if tls_spec is not None:
        cas: list[str] = []
        for secret in tls_spec.get("rootCAsSecrets") or ():
            try:
                cas.append(_ca_from(idx, "Secret", ns, secret))
            except ServiceLookupError as err:
                warnings.append(f"tls.rootCAsSecrets: {err}")
        for ref in tls_spec.get("rootCAs") or ():
            if ref.get("secret") and ref.get("configMap"):
                warnings.append("tls.rootCAs: both secret and configMap are defined; entry skipped")
                continue
            try:
                cas.append(_ca_from(idx, "Secret", ns, ref["secret"]) if ref.get("secret")
                           else _ca_from(idx, "ConfigMap", ns, ref.get("configMap", "")))
            except ServiceLookupError as err:
                warnings.append(f"tls.rootCAs: {err}")
        pairs: list[tuple[str, str]] = []
        for secret in tls_spec.get("certificatesSecrets") or ():
            try:
                cert = _certificate(idx, ns, secret)
                pairs.append((cert.cert_pem, cert.key_pem))
            except ServiceLookupError as err:
                warnings.append(f"tls.certificatesSecrets: {err}")
        if tls_spec.get("spiffe") is not None:
            error = "tls.spiffe: SPIFFE is not supported by pyk3s"
        sans = tuple((str(s.get("type", "")), str(s.get("value", ""))) for s in tls_spec.get("peerCertSANs") or ())
        tls = TLSClientConfig(server_name=tls_spec.get("serverName", "") or "",
                              insecure_skip_verify=bool(tls_spec.get("insecureSkipVerify")), root_cas=tuple(cas),
                              certificates=tuple(pairs), peer_cert_uri=tls_spec.get("peerCertURI", "") or "",
                              peer_cert_sans=sans)
    proxy = spec.get("proxyProtocol")
    return TCPServersTransport(
        dial_timeout=duration("dialTimeout", 30.0), dial_keep_alive=duration("dialKeepAlive", 15.0),
        termination_delay=duration("terminationDelay", 0.1),
        proxy_protocol=ProxyProtocolVersion(int((proxy or {}).get("version") or 2)) if proxy is not None else None,
        tls=tls, error=error, warnings=tuple(warnings))


def build_crd_tcp(idx: ObjectIndex, opts: ProviderOptions) -> tuple[TCPParts, tuple[Certificate, ...]]:
    """The TCP/UDP part of the kubernetesCRD provider: its sections and the certificates of its
    TLS-terminating routes (they join the default store)."""
    out: dict[str, Any] = {"tcp_routers": {}, "tcp_services": {}, "udp_routers": {}, "udp_services": {}}
    certs: dict[str, Certificate] = {}
    middlewares: dict[str, TCPMiddleware] = {}
    transports: dict[str, TCPServersTransport] = {}
    for obj in idx.all("MiddlewareTCP"):
        if _processed(obj, opts):
            md = obj.get("metadata") or {}
            middlewares[normalize(_make_id(md.get("namespace", ""), md.get("name", "")))] = _middleware_tcp(obj)
    for obj in idx.all("ServersTransportTCP"):
        if _processed(obj, opts):
            md = obj.get("metadata") or {}
            transports[normalize(_make_id(md.get("namespace", ""), md.get("name", "")))] = _servers_transport(idx, obj)
    for obj in idx.all("IngressRouteTCP"):
        if _processed(obj, opts):
            _ingress_route_tcp(idx, obj, opts, out, certs)
    for obj in idx.all("IngressRouteUDP"):
        if _processed(obj, opts):
            _ingress_route_udp(idx, obj, opts, out)
    parts = TCPParts(tcp_routers=out["tcp_routers"], tcp_services=out["tcp_services"], tcp_middlewares=middlewares,
                     tcp_servers_transports=transports, udp_routers=out["udp_routers"], udp_services=out["udp_services"])
    return parts, tuple(certs[k] for k in sorted(certs))
