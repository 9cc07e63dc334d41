"""TCP and UDP routers of a DynamicConfig -> per entry point tables + runtime status (Traefik
pkg/server/router/tcp/manager.go, router/udp/router.go, config/runtime).

Per TCP router, as Traefik's manager checks it: entry points (a UDP entry point does not exist for a
TCP router, nor a TCP one for a UDP router; no entry points: the default ones), service, rule, HostSNI
only with TLS (``HostSNI(`*`)`` excepted), priority (explicit, else the rule length, the catch-all
-1; above MaxInt-1000 refused), middlewares, TLS options (unknown options: the router is in error and
its connections are closed, as Traefik's brokenTLSRouter does). A UDP entry point serves one UDP router:
the one whose name sorts last among those that could be built; the others carry a warning saying so.
Anything wrong puts that router (and only it) in error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import DynamicConfig, TLSOptions
from ..config.dynamic_tcp import TCPLoadBalancer, TCPRouter, TCPService, UDPService
from ..config.errors import ConfigError, RuleError
from ..config.static import MAX_INT, StaticConfig
from ..middlewares.tcp import TCPMiddlewareHandler, build_tcp_middleware
from ..rules import rule_syntax
from ..rules.matchers_v2 import V2_MATCHERS
from ..rules.matchers_v3 import V3_MATCHERS
from ..rules.tcp import host_sni_domains, http_rule_domains, parse_tcp_rule, tcp_rule_priority
from .tcp_services import TCPBalancer, TCPServiceBuilder, UDPBalancer
from .tcp_table import HttpsHosts, TCPEntryTable, TCPRoute, UDPEntry

__all__ = ["TCPCompiled", "compile_tcp", "tcp_entrypoints", "udp_entrypoints", "format_duration"]

MAX_USER_PRIORITY = MAX_INT - 1000
_HTTP_NAMES = frozenset(V3_MATCHERS) | frozenset(V2_MATCHERS)


@dataclass(slots=True)
class TCPCompiled:
    tables: dict[str, TCPEntryTable] = field(default_factory=dict)  # TCP entry point -> its TCP routers
    udp: dict[str, UDPEntry] = field(default_factory=dict)  # UDP entry point -> the router it serves
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)  # API views, Traefik's JSON shape
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    middlewares: dict[str, dict[str, Any]] = field(default_factory=dict)
    udp_routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    udp_services: dict[str, dict[str, Any]] = field(default_factory=dict)


def tcp_entrypoints(static: StaticConfig) -> tuple[str, ...]:
    return tuple(n for n, ep in static.entrypoints.items() if ep.protocol == "tcp")


def udp_entrypoints(static: StaticConfig) -> tuple[str, ...]:
    return tuple(n for n, ep in static.entrypoints.items() if ep.protocol == "udp")


def _defaults(static: StaticConfig) -> tuple[str, ...]:
    flagged = tuple(n for n, ep in static.entrypoints.items() if ep.as_default and ep.protocol == "tcp")
    return flagged or tuple(n for n in tcp_entrypoints(static) if n != "traefik")


def format_duration(seconds: float) -> str:
    """Go's time.Duration String for the API: 30s, 100ms, 1m30s."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms == int(ms) else f"{seconds * 1e6:g}µs"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    out = (f"{int(h)}h" if h else "") + (f"{int(m)}m" if h or m else "") + f"{s:g}s"
    return sign + out


def _provider(name: str) -> str:
    return name.rsplit("@", 1)[-1] if "@" in name else ""


def _router_json(r: TCPRouter) -> dict[str, Any]:
    out: dict[str, Any] = {"entryPoints": list(r.entry_points)}
    if r.middlewares:
        out["middlewares"] = list(r.middlewares)
    out["service"] = r.service
    out["rule"] = r.rule
    if r.rule_syntax:
        out["ruleSyntax"] = r.rule_syntax
    if r.priority:
        out["priority"] = r.priority
    if r.tls is not None:
        tls: dict[str, Any] = {"passthrough": r.tls.passthrough}
        if r.tls.options:
            tls["options"] = r.tls.options
        if r.tls.cert_resolver:
            tls["certResolver"] = r.tls.cert_resolver
        if r.tls.domains:
            tls["domains"] = [{"main": d.main, **({"sans": list(d.sans)} if d.sans else {})} for d in r.tls.domains]
        out["tls"] = tls
    return out


def _tcp_service_json(s: TCPService) -> dict[str, Any]:
    if s.weighted is not None:
        return {"weighted": {"services": [{"name": c.name, "weight": c.weight} for c in s.weighted.services]}}
    lb: TCPLoadBalancer | None = s.load_balancer
    if lb is None:
        return {}
    body: dict[str, Any] = {"servers": [{"address": x.address, **({"tls": True} if x.tls else {})} for x in lb.servers]}
    if lb.servers_transport:
        body["serversTransport"] = lb.servers_transport
    if lb.proxy_protocol is not None:
        body["proxyProtocol"] = {"version": lb.proxy_protocol.version}
    if lb.termination_delay is not None:
        body["terminationDelay"] = lb.termination_delay
    return {"loadBalancer": body}


def _udp_service_json(s: UDPService) -> dict[str, Any]:
    if s.weighted is not None:
        return {"weighted": {"services": [{"name": c.name, "weight": c.weight} for c in s.weighted.services]}}
    if s.load_balancer is None:
        return {}
    return {"loadBalancer": {"servers": [{"address": x.address} for x in s.load_balancer.servers]}}


def _status(info: dict[str, Any], errors: Sequence[str], warnings: Sequence[str], served: bool) -> None:
    if errors or warnings:
        info["error"] = [*errors, *warnings]
    info["status"] = "enabled" if not errors and not warnings else ("warning" if served else "disabled")


def _https_hosts(routes: Sequence[Any]) -> HttpsHosts:
    """Server names of the HTTPS routes (each ``Route`` of the TLS HTTP table of an entry point)."""
    domains: list[str] = []
    catch_all = False
    for route in routes:
        try:
            found = http_rule_domains(route.rule.rule, _HTTP_NAMES)
        except RuleError:
            continue
        if found:
            domains.extend(found)
        else:
            catch_all = True
    return HttpsHosts(domains, catch_all)


_VERSIONS = ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13")


def _option_problem(opt: TLSOptions, name: str) -> str:
    """Why a TCP router cannot terminate TLS with these options ('' when it can)."""
    for v in (opt.min_version, opt.max_version):
        if v and v not in _VERSIONS:
            return f"TLS options {name}: unknown TLS version {v}"
    return ""


def _option_warnings(opt: TLSOptions, name: str) -> list[str]:
    """What of a TLSOption a TCP router terminating TLS does not apply as Traefik would."""
    out = []
    if opt.curve_preferences:
        out.append(f"TLS options {name}: curvePreferences not applied (OpenSSL's default groups are offered)")
    if opt.client_auth_type in ("RequestClientCert", "RequireAnyClientCert"):
        out.append(f"TLS options {name}: clientAuthType {opt.client_auth_type} is not supported: client certificates "
                   "are not asked for")
    elif opt.client_auth_type in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven") and not opt.client_ca_pems:
        out.append(f"TLS options {name}: clientAuthType {opt.client_auth_type} without a CA (secretNames): client "
                   "certificates are not asked for")
    return out


class _Compiler:
    def __init__(self, cfg: DynamicConfig, static: StaticConfig, problem: Callable[[str, str, str], None]) -> None:
        self.cfg, self.static, self.problem = cfg, static, problem
        self.parts = cfg.tcp
        self.services = TCPServiceBuilder(self.parts, static.tcp_transport)
        self.middlewares: dict[str, TCPMiddlewareHandler] = {}
        self.middleware_errors: dict[str, str] = {}
        self.option_warnings: dict[str, list[str]] = {}
        self.out = TCPCompiled()

    def middleware(self, name: str) -> TCPMiddlewareHandler:
        if name in self.middlewares:
            return self.middlewares[name]
        if name in self.middleware_errors:
            raise ConfigError(self.middleware_errors[name])
        conf = self.parts.tcp_middlewares.get(name)
        try:
            if conf is None:
                raise ConfigError(f'middleware "{name}" does not exist')
            if conf.error:
                raise ConfigError(conf.error)
            mw = build_tcp_middleware(conf.kind, conf.config, name)
        except ConfigError as err:
            self.middleware_errors[name] = str(err).removeprefix("ingress: ")
            raise
        self.middlewares[name] = mw
        return mw

    # ------------------------------------------------------------------------------------------- TCP
    def tcp_routers(self, https: Mapping[str, HttpsHosts]) -> None:
        tcp_eps, udp_eps = tcp_entrypoints(self.static), udp_entrypoints(self.static)
        defaults = _defaults(self.static)
        plain: dict[str, list[TCPRoute]] = {e: [] for e in tcp_eps}
        tls: dict[str, list[TCPRoute]] = {e: [] for e in tcp_eps}
        for name in sorted(self.parts.tcp_routers):
            r = self.parts.tcp_routers[name]
            info = _router_json(r)
            info.update(name=name, provider=_provider(name))
            if r.tls is not None and not r.tls.passthrough and "options" not in info["tls"]:
                info["tls"]["options"] = "default"
            errors: list[str] = []
            eps = r.entry_points or defaults
            using = [e for e in eps if e in tcp_eps]
            for e in eps:
                if e not in tcp_eps:
                    errors.append(f'entryPoint "{e}" doesn\'t exist' + (" for TCP routers (it is a UDP entry point)"
                                                                          if e in udp_eps else ""))
            if not using:
                errors.append("no valid entryPoint for this router")
            route, broken = self._tcp_route(name, r, errors)
            warnings = list(r.warnings) + self.option_warnings.get(name, [])
            if r.service:
                warnings += self.services.warnings.get(r.service, [])
            served = route is not None and bool(using) and not broken
            _status(info, errors, warnings, served)
            if served or (broken and route is not None and using):
                info["using"] = using
                assert route is not None
                for e in using:
                    (plain if route.tls == "" else tls)[e].append(route)
            if errors:
                self.problem("tcp router", name, "; ".join(errors))
            self.out.routers[name] = info
        for e in tcp_eps:
            if plain[e] or tls[e]:
                self.out.tables[e] = TCPEntryTable(plain[e], tls[e], https.get(e) or HttpsHosts((), False))

    def _tcp_route(self, name: str, r: TCPRouter, errors: list[str]) -> tuple[TCPRoute | None, bool]:
        """(route, broken): a broken route closes the connections it matches (unknown TLS options)."""
        try:
            if r.error:
                raise ConfigError(r.error)
            if not r.service:
                raise ConfigError("the service is missing on the router")
            if not r.rule:
                raise ConfigError("router has no rule")
            try:
                domains = host_sni_domains(r.rule)
            except RuleError as err:
                raise ConfigError(f"invalid rule: {r.rule!r} , {err}") from None
            if domains and r.tls is None and domains[0] != "*":
                raise ConfigError(f"invalid rule: {r.rule!r} , has HostSNI matcher, but no TLS on router")
            priority = r.priority or tcp_rule_priority(r.rule)
            if r.priority > MAX_USER_PRIORITY and not name.endswith("@internal"):
                raise ConfigError(f"the router priority {r.priority} exceeds the max user-defined priority "
                                  f"{MAX_USER_PRIORITY}")
            syntax = rule_syntax(r.rule_syntax, self.static.default_rule_syntax)
            try:
                rule = parse_tcp_rule(r.rule, syntax)
            except RuleError as err:
                raise ConfigError(f"error while adding rule {r.rule}: {err}") from None
            mws = tuple(self.middleware(m) for m in r.middlewares)
            svc = self.services.tcp_service(r.service)
        except ConfigError as err:
            errors.append(str(err).removeprefix("ingress: "))
            return None, False
        if r.tls is None:
            return TCPRoute(name, rule, priority, mws, svc), False
        if r.tls.passthrough:
            return TCPRoute(name, rule, priority, mws, svc, "passthrough"), False
        options = r.tls.options or "default"
        if options != "default" and options not in self.cfg.tls_options:
            errors.append(f"unknown TLS options: {options}")
            return TCPRoute(name, rule, priority, mws, None, "terminate", options), True
        opt = self.cfg.tls_options.get(options)
        if opt is not None:
            problem = _option_problem(opt, options)
            if problem:
                errors.append(problem)
                return TCPRoute(name, rule, priority, mws, None, "terminate", options), True
            self.option_warnings[name] = _option_warnings(opt, options)
        return TCPRoute(name, rule, priority, mws, svc, "terminate", options), False

    # ------------------------------------------------------------------------------------------- UDP
    def udp_routers(self) -> None:
        tcp_eps, udp_eps = tcp_entrypoints(self.static), udp_entrypoints(self.static)
        candidates: dict[str, list[tuple[str, UDPEntry]]] = {}
        pending: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {}
        for name in sorted(self.parts.udp_routers):
            r = self.parts.udp_routers[name]
            info: dict[str, Any] = {"entryPoints": list(r.entry_points), "service": r.service, "name": name,
                                    "provider": _provider(name)}
            errors: list[str] = []
            eps = r.entry_points or udp_eps
            using = [e for e in eps if e in udp_eps]
            for e in eps:
                if e not in udp_eps:
                    errors.append(f'entryPoint "{e}" doesn\'t exist' + (" for UDP routers (it is not declared /udp)"
                                                                          if e in tcp_eps else ""))
            if not using:
                errors.append("no valid entryPoint for this router")
            entry = None
            try:
                if r.error:
                    raise ConfigError(r.error)
                if not r.service:
                    raise ConfigError("the service is missing on the udp router")
                entry = UDPEntry(name, self.services.udp_service(r.service))
            except ConfigError as err:
                errors.append(str(err).removeprefix("ingress: "))
            warnings = list(r.warnings) + self.services.warnings.get(r.service, [])
            if entry is not None and using:
                info["using"] = using
                for e in using:
                    candidates.setdefault(e, []).append((name, entry))
            pending[name] = (info, errors, warnings)
        for e, found in candidates.items():
            found.sort(key=lambda item: item[0], reverse=True)
            chosen = found[0]
            self.out.udp[e] = chosen[1]
            for other, _ in found[1:]:
                pending[other][2].append(f'not used on entryPoint "{e}": a UDP entry point serves one router, '
                                         f"{chosen[0]} is the one")
        for name, (info, errors, warnings) in pending.items():
            _status(info, errors, warnings, "using" in info)
            if errors:
                self.problem("udp router", name, "; ".join(errors))
            self.out.udp_routers[name] = info

    # ------------------------------------------------------------------------------------- services
    def service_views(self) -> None:
        used_tcp: dict[str, list[str]] = {}
        used_mw: dict[str, list[str]] = {}
        for name, r in self.parts.tcp_routers.items():
            if r.service:
                used_tcp.setdefault(r.service, []).append(name)
            for m in r.middlewares:
                used_mw.setdefault(m, []).append(name)
        for name in sorted(set(self.parts.tcp_services) | set(used_tcp)):
            conf = self.parts.tcp_services.get(name)
            info = _tcp_service_json(conf) if conf is not None else {}
            info.update(name=name, provider=_provider(name), usedBy=sorted(used_tcp.get(name, [])))
            if conf is not None:
                info["type"] = conf.kind
            errors: list[str] = []
            try:
                svc = self.services.tcp_service(name)
                if isinstance(svc, TCPBalancer):
                    info["serverStatus"] = {t.address: "UP" for t in svc.targets}
            except ConfigError as err:
                errors.append(str(err).removeprefix("ingress: "))
            _status(info, errors, self.services.warnings.get(name, []), not errors)
            self.out.services[name] = info
        for name in sorted(set(self.parts.tcp_middlewares) | set(used_mw)):
            mconf = self.parts.tcp_middlewares.get(name)
            info = {mconf.kind: dict(mconf.config)} if mconf is not None and mconf.kind else {}
            info.update(name=name, provider=_provider(name), usedBy=sorted(used_mw.get(name, [])))
            if mconf is not None and mconf.kind:
                info["type"] = mconf.kind.lower()
            errors = []
            try:
                self.middleware(name)
            except ConfigError as err:
                errors.append(str(err).removeprefix("ingress: "))
            _status(info, errors, [], not errors)
            self.out.middlewares[name] = info
        used_udp: dict[str, list[str]] = {}
        for name, u in self.parts.udp_routers.items():
            if u.service:
                used_udp.setdefault(u.service, []).append(name)
        for name in sorted(set(self.parts.udp_services) | set(used_udp)):
            uconf = self.parts.udp_services.get(name)
            info = _udp_service_json(uconf) if uconf is not None else {}
            info.update(name=name, provider=_provider(name), usedBy=sorted(used_udp.get(name, [])))
            if uconf is not None:
                info["type"] = uconf.kind
            errors = []
            try:
                usvc = self.services.udp_service(name)
                if isinstance(usvc, UDPBalancer):
                    info["serverStatus"] = {(f"[{h}]:{p}" if ":" in h else f"{h}:{p}"): "UP" for h, p in usvc.targets}
            except ConfigError as err:
                errors.append(str(err).removeprefix("ingress: "))
            _status(info, errors, self.services.warnings.get(name, []), not errors)
            self.out.udp_services[name] = info


def compile_tcp(cfg: DynamicConfig, static: StaticConfig, https_routes: Mapping[str, Sequence[Any]],
                problem: Callable[[str, str, str], None] | None = None) -> TCPCompiled:
    """Compile TCP and UDP routers; ``https_routes`` are the HTTP routes of each entry point's TLS table."""
    c = _Compiler(cfg, static, problem or (lambda kind, name, message: None))
    c.tcp_routers({e: _https_hosts(routes) for e, routes in https_routes.items()})
    c.udp_routers()
    c.service_views()
    return c.out
