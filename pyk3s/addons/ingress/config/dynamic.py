"""The dynamic configuration: plain, frozen data keyed by name (Traefik's pkg/config/dynamic).

Providers return a :class:`DynamicConfig` with unqualified names; :func:`merge` qualifies every name
with ``@<provider>`` (references without ``@`` resolve inside their own provider) and joins them.
``routing/compile.py`` is the only consumer that turns this into a routing table.

``to_json`` gives the Traefik JSON spelling (``entryPoints``, ``loadBalancer``…) used by the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from .dynamic_tcp import TCPParts, qualify_tcp

__all__ = [
    "Router", "RouterTLS", "Domain", "Server", "StickyCookie", "LoadBalancer", "WeightedRef", "Weighted",
    "Mirror", "Mirroring", "Service", "Middleware", "Certificate", "TLSOptions", "DynamicConfig",
    "merge", "qualify", "to_json",
]


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
class Router:
    rule: str
    service: str = ""
    entry_points: tuple[str, ...] = ()
    middlewares: tuple[str, ...] = ()
    priority: int = 0
    rule_syntax: str = ""
    tls: RouterTLS | None = None
    error: str = ""  # set by a provider that could not resolve a reference (shown in the API)


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    fenced: bool = False


@dataclass(frozen=True, slots=True)
class StickyCookie:
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
    flush_interval: str = "100ms"


@dataclass(frozen=True, slots=True)
class WeightedRef:
    name: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Weighted:
    services: tuple[WeightedRef, ...] = ()
    sticky: StickyCookie | None = None


@dataclass(frozen=True, slots=True)
class Mirror:
    name: str
    percent: int = 0


@dataclass(frozen=True, slots=True)
class Mirroring:
    service: str
    mirrors: tuple[Mirror, ...] = ()
    mirror_body: bool = True
    max_body_size: int = -1


@dataclass(frozen=True, slots=True)
class Service:
    load_balancer: LoadBalancer | None = None
    weighted: Weighted | None = None
    mirroring: Mirroring | None = None
    error: str = ""  # set by a provider that could not build it (shown in the API)

    @property
    def kind(self) -> str:
        if self.load_balancer is not None:
            return "loadbalancer"
        if self.weighted is not None:
            return "weighted"
        if self.mirroring is not None:
            return "mirroring"
        return ""


@dataclass(frozen=True, slots=True)
class Middleware:
    """One middleware: ``kind`` is the Traefik field name (``basicAuth``), ``config`` its fields."""

    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""  # set by a provider that could not build it (missing secret…)


@dataclass(frozen=True, slots=True)
class Certificate:
    cert_pem: str
    key_pem: str
    stores: tuple[str, ...] = ("default",)
    source: str = ""  # "<ns>/<secret>"


@dataclass(frozen=True, slots=True)
class TLSOptions:
    min_version: str = "VersionTLS12"
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()
    curve_preferences: tuple[str, ...] = ()
    alpn_protocols: tuple[str, ...] = ("h2", "http/1.1", "acme-tls/1")
    sni_strict: bool = False
    client_auth_type: str = ""
    client_ca_pems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DynamicConfig:
    routers: Mapping[str, Router] = field(default_factory=dict)
    services: Mapping[str, Service] = field(default_factory=dict)
    middlewares: Mapping[str, Middleware] = field(default_factory=dict)
    certificates: tuple[Certificate, ...] = ()
    tls_options: Mapping[str, TLSOptions] = field(default_factory=dict)
    default_certificate: Certificate | None = None
    tcp: TCPParts = field(default_factory=TCPParts)  # TCP and UDP routers, services, middlewares, transports


def qualify(name: str, provider: str) -> str:
    return name if "@" in name else f"{name}@{provider}"


def merge(parts: Mapping[str, DynamicConfig]) -> DynamicConfig:
    """Join provider configurations, qualifying names and references with ``@provider``."""
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    middlewares: dict[str, Middleware] = {}
    certs: list[Certificate] = []
    options: dict[str, TLSOptions] = {}
    default_cert: Certificate | None = None
    for provider, cfg in parts.items():
        for name, r in cfg.routers.items():
            tls = r.tls
            if tls is not None and tls.options:
                tls = replace(tls, options=qualify(tls.options, provider))
            routers[qualify(name, provider)] = replace(
                r, service=qualify(r.service, provider) if r.service else "",
                middlewares=tuple(qualify(m, provider) for m in r.middlewares), tls=tls)
        for name, s in cfg.services.items():
            if s.weighted is not None:
                s = replace(s, weighted=replace(s.weighted, services=tuple(
                    replace(c, name=qualify(c.name, provider)) for c in s.weighted.services)))
            if s.mirroring is not None:
                m = s.mirroring
                s = replace(s, mirroring=replace(m, service=qualify(m.service, provider), mirrors=tuple(
                    replace(x, name=qualify(x.name, provider)) for x in m.mirrors)))
            services[qualify(name, provider)] = s
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
        default_cert = cfg.default_certificate or default_cert
    tcp = qualify_tcp({provider: cfg.tcp for provider, cfg in parts.items()})
    return DynamicConfig(routers, services, middlewares, tuple(certs), options, default_cert, tcp)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


_JSON_NAMES = {"entry_points": "entryPoints", "rule_syntax": "ruleSyntax"}


def to_json(value: Any) -> Any:
    """Traefik JSON spelling of a config value, empty fields left out."""
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if v in (None, "", (), {}) or f.name == "error" or (f.name == "priority" and v == 0):
                continue
            out[_JSON_NAMES.get(f.name, _camel(f.name))] = to_json(v)
        return out
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value
