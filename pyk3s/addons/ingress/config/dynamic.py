"""The dynamic configuration: plain, frozen data keyed by name (Traefik's pkg/config/dynamic).

Providers return a :class:`DynamicConfig` with unqualified names; :func:`merge` qualifies every name
with ``@<provider>`` (references without ``@`` resolve inside their own provider) and joins them.
``routing/compile.py`` is the only consumer that turns this into a routing table.

``to_json`` gives Traefik's JSON spelling of any piece (``entryPoints``, ``loadBalancer``,
``sticky.cookie``, durations as Go prints them); :func:`traefik_json` gives a whole configuration as
Traefik's provider tests and ``/api/rawdata`` show it. Optional fields that Traefik leaves unset
(``None`` here) stay out of the JSON; the compile step applies Traefik's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from .durations import go_duration
from .dynamic_tcp import TCPParts, qualify_tcp

__all__ = [
    "Router", "RouterTLS", "Domain", "RouterObservability", "IngressMetadata", "Server", "StickyCookie",
    "LoadBalancer", "WeightedRef", "Weighted", "HighestRandomWeight", "Failover", "Mirror", "Mirroring", "Service",
    "Middleware", "Certificate", "TLSOptions", "TLSStore", "ForwardingTimeouts", "ServersTransport", "DynamicConfig",
    "DEFAULT_CIPHER_SUITES", "DEFAULT_ALPN", "merge", "qualify", "to_json", "traefik_json",
]

# Go's tls.CipherSuites() names, in Go's order: the cipherSuites Traefik gives a TLSOption by default
DEFAULT_CIPHER_SUITES = (
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
)
DEFAULT_ALPN = ("h2", "http/1.1", "acme-tls/1")


@dataclass(frozen=True, slots=True)
class Domain:
    main: str = ""
    sans: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouterTLS:
    options: str = ""
    cert_resolver: str = ""
    domains: tuple[Domain, ...] = ()


@dataclass(frozen=True, slots=True)
class IngressMetadata:
    """The Ingress a router comes from (Traefik's KubernetesIngressMetadata; access-log fields)."""

    namespace: str = ""
    ingress_name: str = ""
    service_name: str = ""
    service_port: str = ""


@dataclass(frozen=True, slots=True)
class RouterObservability:
    access_logs: bool | None = None
    metrics: bool | None = None
    tracing: bool | None = None
    trace_verbosity: str = ""
    ingress: IngressMetadata | None = None  # JSON: metadata.ingress

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (("accessLogs", self.access_logs), ("metrics", self.metrics), ("tracing", self.tracing),
                           ("traceVerbosity", self.trace_verbosity)):
            if value not in (None, ""):
                out[key] = value
        if self.ingress is not None:
            out["metadata"] = {"ingress": to_json(self.ingress)}
        return out


@dataclass(frozen=True, slots=True)
class Router:
    rule: str
    service: str = ""
    entry_points: tuple[str, ...] = ()
    middlewares: tuple[str, ...] = ()
    priority: int = 0
    rule_syntax: str = ""
    tls: RouterTLS | None = None
    parent_refs: tuple[str, ...] = ()
    observability: RouterObservability | None = None
    error: str = ""  # set by a provider that could not resolve a reference (shown in the API)

    def json(self) -> dict[str, Any]:
        out = _fields_json(self)
        if self.tls is not None and "tls" not in out:
            out["tls"] = {}  # an empty tls section still makes the router a TLS one
        return out


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    fenced: bool = False
    weight: int | None = None
    preserve_path: bool = False


@dataclass(frozen=True, slots=True)
class StickyCookie:
    """``sticky.cookie`` (Traefik JSON nests it under ``cookie``)."""

    name: str = ""
    secure: bool = False
    http_only: bool = False
    same_site: str = ""
    max_age: int = 0
    path: str = "/"
    domain: str = ""


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    servers: tuple[Server, ...] = ()
    pass_host_header: bool = True
    sticky: StickyCookie | None = None
    servers_transport: str = ""
    strategy: str = "wrr"
    flush_interval: float = 0.1  # seconds (responseForwarding.flushInterval)
    health_check: Mapping[str, Any] | None = None  # Traefik's ServerHealthCheck, JSON spelling
    passive_health_check: Mapping[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        out = _fields_json(self, skip=("pass_host_header", "flush_interval"))
        out["passHostHeader"] = self.pass_host_header
        out["responseForwarding"] = {"flushInterval": go_duration(self.flush_interval)}
        return out


@dataclass(frozen=True, slots=True)
class WeightedRef:
    name: str
    weight: int = 1
    status: int | None = None  # answer this status instead of calling the service (a backend that could not be loaded)


@dataclass(frozen=True, slots=True)
class Weighted:
    services: tuple[WeightedRef, ...] = ()
    sticky: StickyCookie | None = None
    health_check: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HighestRandomWeight:
    services: tuple[WeightedRef, ...] = ()
    health_check: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Failover:
    service: str
    fallback: str
    errors_status: tuple[str, ...] | None = None  # errors.status; None: no errors section
    errors_max_request_body_bytes: int | None = None
    health_check: Mapping[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service, "fallback": self.fallback}
        if self.health_check is not None:
            out["healthCheck"] = dict(self.health_check)
        if self.errors_status is not None:
            errors: dict[str, Any] = {}
            if self.errors_status:
                errors["status"] = list(self.errors_status)
            if self.errors_max_request_body_bytes is not None:
                errors["maxRequestBodyBytes"] = self.errors_max_request_body_bytes
            out["errors"] = errors
        return out


@dataclass(frozen=True, slots=True)
class Mirror:
    name: str
    percent: int = 0


@dataclass(frozen=True, slots=True)
class Mirroring:
    service: str
    mirrors: tuple[Mirror, ...] = ()
    mirror_body: bool | None = None  # None: Traefik's default (true)
    max_body_size: int | None = None  # None: Traefik's default (-1, no limit)
    health_check: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Service:
    load_balancer: LoadBalancer | None = None
    weighted: Weighted | None = None
    mirroring: Mirroring | None = None
    highest_random_weight: HighestRandomWeight | None = None
    failover: Failover | None = None
    middlewares: tuple[str, ...] = ()
    error: str = ""  # set by a provider that could not build it (shown in the API)

    @property
    def kind(self) -> str:
        """Traefik's service type as the API spells it (lower-cased field name)."""
        for name, value in (("loadbalancer", self.load_balancer), ("weighted", self.weighted),
                            ("mirroring", self.mirroring), ("highestrandomweight", self.highest_random_weight),
                            ("failover", self.failover)):
            if value is not None:
                return name
        return ""


@dataclass(frozen=True, slots=True)
class Middleware:
    """One middleware: ``kind`` is the Traefik field name (``basicAuth``), ``config`` its fields."""

    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""  # set by a provider that could not build it (missing secret…)

    def json(self) -> dict[str, Any]:
        return {self.kind: to_json(self.config)} if self.kind else {}


@dataclass(frozen=True, slots=True)
class Certificate:
    cert_pem: str
    key_pem: str
    stores: tuple[str, ...] = ()  # empty: the default store
    source: str = ""  # "<ns>/<secret>"

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"certFile": self.cert_pem, "keyFile": self.key_pem}
        if self.stores:
            out["stores"] = list(self.stores)
        return out


@dataclass(frozen=True, slots=True)
class TLSOptions:
    min_version: str = ""  # "": VersionTLS12
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()  # empty: the TLS library's defaults
    curve_preferences: tuple[str, ...] = ()
    alpn_protocols: tuple[str, ...] = DEFAULT_ALPN
    sni_strict: bool = False
    client_auth_type: str = ""
    client_ca_pems: tuple[str, ...] = ()
    disable_session_tickets: bool = False

    def json(self) -> dict[str, Any]:
        out = _fields_json(self, skip=("client_auth_type", "client_ca_pems"))
        client_auth: dict[str, Any] = {}
        if self.client_ca_pems:
            client_auth["caFiles"] = list(self.client_ca_pems)
        if self.client_auth_type:
            client_auth["clientAuthType"] = self.client_auth_type
        if client_auth:
            out["clientAuth"] = client_auth
        return out


@dataclass(frozen=True, slots=True)
class TLSStore:
    default_certificate: Certificate | None = None
    default_generated_resolver: str = ""  # defaultGeneratedCert.resolver (ACME: not supported by pyk3s)

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.default_certificate is not None:
            out["defaultCertificate"] = {"certFile": self.default_certificate.cert_pem,
                                         "keyFile": self.default_certificate.key_pem}
        if self.default_generated_resolver:
            out["defaultGeneratedCert"] = {"resolver": self.default_generated_resolver}
        return out


@dataclass(frozen=True, slots=True)
class ForwardingTimeouts:
    """Seconds; Traefik's defaults (dial 30s, idle 90s, ping 15s, no response-header timeout)."""

    dial_timeout: float = 30.0
    response_header_timeout: float = 0.0
    idle_conn_timeout: float = 90.0
    read_idle_timeout: float = 0.0
    ping_timeout: float = 15.0

    def json(self) -> dict[str, Any]:
        return {_camel(f.name): go_duration(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)}


@dataclass(frozen=True, slots=True)
class ServersTransport:
    """How to reach the servers of a load balancer (Traefik's dynamic ServersTransport)."""

    server_name: str = ""
    insecure_skip_verify: bool = False
    root_cas: tuple[str, ...] = ()  # PEM
    certificates: tuple[Certificate, ...] = ()  # client certificates (mTLS)
    cipher_suites: tuple[str, ...] = ()
    min_version: str = ""
    max_version: str = ""
    max_idle_conns_per_host: int = 0  # 0: Go's default (2); negative: no reuse
    forwarding_timeouts: ForwardingTimeouts | None = None  # None: Go's transport defaults
    disable_http2: bool = False
    peer_cert_uri: str = ""
    peer_cert_sans: tuple[tuple[str, str], ...] = ()  # (type, value): ("DNSName", "x"), ("URI", "spiffe://...")
    spiffe: Mapping[str, Any] | None = None
    error: str = ""  # what the provider could not load (a missing CA Secret...)

    def json(self) -> dict[str, Any]:
        out = _fields_json(self, skip=("peer_cert_sans", "root_cas", "disable_http2", "peer_cert_uri"))
        if self.root_cas:
            out["rootCAs"] = list(self.root_cas)
        if self.disable_http2:
            out["disableHTTP2"] = True
        if self.peer_cert_uri:
            out["peerCertURI"] = self.peer_cert_uri
        if self.peer_cert_sans:
            out["peerCertSANs"] = [{"type": t, "value": v} for t, v in self.peer_cert_sans]
        return out


@dataclass(frozen=True, slots=True)
class DynamicConfig:
    routers: Mapping[str, Router] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    middlewares: Mapping[str, Middleware] = field(default_factory=dict)
    certificates: tuple[Certificate, ...] = ()
    tls_options: Mapping[str, TLSOptions] = field(default_factory=dict)
    tls_stores: Mapping[str, TLSStore] = field(default_factory=dict)
    servers_transports: Mapping[str, ServersTransport] = field(default_factory=dict)
    tcp: TCPParts = field(default_factory=TCPParts)  # TCP and UDP routers, services, middlewares, transports

    @property
    def default_certificate(self) -> Certificate | None:
        store = self.tls_stores.get("default")
        return store.default_certificate if store is not None else None


def qualify(name: str, provider: str) -> str:
    return name if "@" in name else f"{name}@{provider}"


def _qualify_service(s: Service, provider: str) -> Service:
    def q(name: str) -> str:
        return qualify(name, provider) if name else name

    if s.middlewares:
        s = replace(s, middlewares=tuple(q(m) for m in s.middlewares))
    if s.load_balancer is not None and s.load_balancer.servers_transport:
        s = replace(s, load_balancer=replace(s.load_balancer, servers_transport=q(s.load_balancer.servers_transport)))
    if s.weighted is not None:
        s = replace(s, weighted=replace(s.weighted, services=tuple(
            replace(c, name=q(c.name)) for c in s.weighted.services)))
    if s.highest_random_weight is not None:
        hrw = s.highest_random_weight
        s = replace(s, highest_random_weight=replace(hrw, services=tuple(replace(c, name=q(c.name)) for c in hrw.services)))
    if s.mirroring is not None:
        m = s.mirroring
        s = replace(s, mirroring=replace(m, service=q(m.service), mirrors=tuple(
            replace(x, name=q(x.name)) for x in m.mirrors)))
    if s.failover is not None:
        s = replace(s, failover=replace(s.failover, service=q(s.failover.service), fallback=q(s.failover.fallback)))
    return s


def merge(parts: Mapping[str, DynamicConfig]) -> DynamicConfig:
    """Join provider configurations, qualifying names and references with ``@provider``."""
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    middlewares: dict[str, Middleware] = {}
    certs: list[Certificate] = []
    options: dict[str, TLSOptions] = {}
    stores: dict[str, TLSStore] = {}
    transports: dict[str, ServersTransport] = {}
    for provider, cfg in parts.items():
        for name, r in cfg.routers.items():
            tls = r.tls
            if tls is not None and tls.options:
                tls = replace(tls, options=tls.options if tls.options == "default" else qualify(tls.options, provider))
            routers[qualify(name, provider)] = replace(
                r, service=qualify(r.service, provider) if r.service else "",
                middlewares=tuple(qualify(m, provider) for m in r.middlewares), tls=tls,
                parent_refs=tuple(qualify(p, provider) for p in r.parent_refs))
        for name, s in cfg.services.items():
            services[qualify(name, provider)] = _qualify_service(s, provider)
        for name, mw in cfg.middlewares.items():
            if mw.kind == "chain":
                names = tuple(qualify(x, provider) for x in mw.config.get("middlewares", ()))
                mw = replace(mw, config={**mw.config, "middlewares": names})
            elif mw.kind == "errors" and mw.config.get("service"):
                mw = replace(mw, config={**mw.config, "service": qualify(mw.config["service"], provider)})
            middlewares[qualify(name, provider)] = mw
        certs.extend(cfg.certificates)
        for name, o in cfg.tls_options.items():
            options[name if name == "default" else qualify(name, provider)] = o
        for name, st in cfg.tls_stores.items():
            stores[name if name == "default" else qualify(name, provider)] = st
        for name, t in cfg.servers_transports.items():
            transports[qualify(name, provider)] = t
    tcp = qualify_tcp({provider: cfg.tcp for provider, cfg in parts.items()})
    return DynamicConfig(routers, services, middlewares, tuple(certs), options, stores, transports, tcp)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_JSON_NAMES = {"entry_points": "entryPoints", "rule_syntax": "ruleSyntax", "alpn_protocols": "alpnProtocols",
               "highest_random_weight": "highestRandomWeight"}


def _fields_json(value: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(value):
        v = getattr(value, f.name)
        if f.name in skip or f.name == "error" or v is None or v in ("", (), {}) or v is False:
            continue
        if f.name in ("priority", "max_age", "max_idle_conns_per_host") and v == 0:
            continue
        if f.name == "sticky":
            out["sticky"] = {"cookie": to_json(v)}
            continue
        out[_JSON_NAMES.get(f.name, _camel(f.name))] = to_json(v)
    return out


def to_json(value: Any) -> Any:
    """Traefik JSON spelling of a config value, empty fields left out."""
    if is_dataclass(value) and not isinstance(value, type):
        custom = getattr(value, "json", None)
        return custom() if custom is not None else _fields_json(value)
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value


def traefik_json(cfg: DynamicConfig) -> dict[str, Any]:
    """The HTTP and TLS parts of a configuration as Traefik's dynamic.Configuration JSON."""
    http = {"routers": to_json(dict(cfg.routers)), "services": to_json(dict(cfg.services)),
            "middlewares": to_json(dict(cfg.middlewares)), "serversTransports": to_json(dict(cfg.servers_transports))}
    tls: dict[str, Any] = {}
    if cfg.certificates:
        tls["certificates"] = to_json(cfg.certificates)
    if cfg.tls_options:
        tls["options"] = to_json(dict(cfg.tls_options))
    if cfg.tls_stores:
        tls["stores"] = to_json(dict(cfg.tls_stores))
    return {"http": http, "tls": tls}
