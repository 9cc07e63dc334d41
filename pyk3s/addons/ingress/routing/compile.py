"""DynamicConfig -> routing table + runtime status: the only place that builds handlers (STYLE §2).

Per router: parse the rule, resolve priority (explicit, else rule length, 2.1), build its middlewares
and its service, pick its entrypoints (2.6) and put it into the TLS or plain table of each (2.7) in
``table.py``. Anything that fails puts that router (and only it) in error; the runtime keeps every
error for the API, the dashboard and ``explain``.

Service middlewares: the top service's follow the router's in the route. A service that is the child
of another (weighted, highestRandomWeight, failover, a mirroring's main service) gets its own as
``middlewares``, a missing one failing the parent; once every service is built, ``layered`` marks the
services with such a child somewhere below them, whose requests the exchange walks step by step
(routing/services.py, ``child_middlewares.py``). Mirrors' copies and an errors middleware's page
requests skip their services' middlewares: a warning on the mirroring service or that middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from functools import partial
from typing import Any

from ..config.codes import status_ranges
from ..config.dynamic import DynamicConfig, LoadBalancer, Middleware, Router, to_json
from ..config.errors import ConfigError
from ..config.static import MAX_INT, StaticConfig
from ..middlewares import build_middleware
from ..middlewares.base import BuildContext, MiddlewareHandler
from ..rules import parse_rule, rule_syntax
from .child_middlewares import errors_service_middlewares, mark_layered, mirror_middlewares
from .health import HealthChecker, health_spec
from .passive import PassiveHealth, passive_health
from .services import (
    INTERNAL_SERVICES,
    Balancer,
    CompiledService,
    FailoverService,
    HrwBalancer,
    InternalService,
    MirrorService,
    StatusService,
    WeightedBalancer,
    buffers_body,
)
from .table import EntryTable, Route, RoutingTable
from .tcp_compile import TCPCompiled, compile_tcp
from .transports import DEFAULT_TRANSPORT, STATIC_DEFAULT_IDLE, ServersTransportRuntime, build_transport
from .tree import router_tree

__all__ = ["RuntimeStatus", "compile_config", "Compiled", "runtime_counts"]

MAX_USER_PRIORITY = MAX_INT - 1000


@dataclass(slots=True)
class RuntimeStatus:
    """What the API shows: every router/service/middleware with status, errors and users."""

    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    middlewares: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(slots=True)
class Compiled:
    table: RoutingTable
    runtime: RuntimeStatus
    config: DynamicConfig
    static: StaticConfig
    services: dict[str, CompiledService]
    tcp: TCPCompiled = field(default_factory=TCPCompiled)  # TCP and UDP routers (tcp_compile.py)
    # background health checks of its load balancers: the proxy starts them on apply, stops them on the next
    health: tuple[HealthChecker | PassiveHealth, ...] = ()


def _default_entrypoints(static: StaticConfig) -> tuple[str, ...]:
    flagged = tuple(n for n, ep in static.entrypoints.items() if ep.as_default and ep.protocol == "tcp")
    if flagged:
        return flagged
    return tuple(n for n, ep in static.entrypoints.items() if n != "traefik" and ep.protocol == "tcp")


class _Builder:
    def __init__(self, cfg: DynamicConfig, static: StaticConfig) -> None:
        self.cfg, self.static = cfg, static
        self.services: dict[str, CompiledService] = {}
        self.service_errors: dict[str, str] = {}
        self.middlewares: dict[str, MiddlewareHandler] = {}
        self.middleware_errors: dict[str, str] = {}
        self.building: set[str] = set()
        self.service_warnings: dict[str, list[str]] = {}
        self.transports: dict[str, tuple[ServersTransportRuntime, list[str]]] = {}
        self.health: list[HealthChecker | PassiveHealth] = []

    def transport(self, name: str) -> tuple[ServersTransportRuntime, list[str]]:
        """The compiled ServersTransport a load balancer names ("" is ``default@internal``)."""
        name = name or DEFAULT_TRANSPORT
        found = self.transports.get(name)
        if found is None:
            if name == DEFAULT_TRANSPORT:
                found = build_transport(name, self.static.servers_transport, STATIC_DEFAULT_IDLE)
            else:
                conf = self.cfg.servers_transports.get(name)
                if conf is None:
                    raise ConfigError(f"servers transport not found {name}")
                found = build_transport(name, conf)
            self.transports[name] = found
        return found

    def service(self, name: str) -> CompiledService:
        if name in self.services:
            return self.services[name]
        if name in self.service_errors:
            raise ConfigError(self.service_errors[name])
        if name in self.building:
            raise ConfigError(f"service {name}: recursion detected")
        self.building.add(name)
        try:
            svc = self._make_service(name)
        except ConfigError as err:
            self.service_errors[name] = str(err)
            raise
        finally:
            self.building.discard(name)
        self.services[name] = svc
        return svc

    def _make_service(self, name: str) -> CompiledService:
        if name in INTERNAL_SERVICES:
            return InternalService(name)
        conf = self.cfg.services.get(name)
        if conf is None:
            raise ConfigError(f'the service "{name}" does not exist')
        if conf.error:
            raise ConfigError(conf.error)
        warnings = self.service_warnings.setdefault(name, [])
        if conf.load_balancer is not None:
            lb = conf.load_balancer
            transport, transport_warnings = self.transport(lb.servers_transport)
            warnings += transport_warnings
            warnings += _unsupported_lb(lb)
            balancer = Balancer(name, lb, transport)
            if lb.health_check is not None:
                self.health.append(HealthChecker(name, balancer, health_spec(lb.health_check)))
            if lb.passive_health_check is not None:
                self.health.append(passive_health(name, balancer, lb.passive_health_check, lb.health_check is not None))
            return balancer
        if conf.weighted is not None:
            wc = conf.weighted
            weighted = WeightedBalancer(name, [(c.name, StatusService(c.name, c.status) if c.status is not None
                                                else self.child(c.name), c.weight) for c in wc.services],
                                        wc.sticky, wc.health_check is not None)
            if wc.health_check is not None:
                for c in wc.services:
                    if c.status is not None:
                        continue
                    _watch(name, c.name, self.service(c.name), partial(weighted.set_status, c.name))
            return weighted
        if conf.mirroring is not None:
            m = conf.mirroring
            warnings += mirror_middlewares(self.cfg, [x.name for x in m.mirrors])
            return MirrorService(name, self.child(m.service), [(self.service(x.name), x.percent) for x in m.mirrors],
                                 True if m.mirror_body is None else m.mirror_body,
                                 -1 if m.max_body_size is None else m.max_body_size, m.health_check is not None)
        if conf.highest_random_weight is not None:
            hc = conf.highest_random_weight
            hrw = HrwBalancer(name, [(c.name, self.child(c.name), c.weight) for c in hc.services],
                              hc.health_check is not None)
            if hc.health_check is not None:
                for c in hc.services:
                    _watch(name, c.name, self.service(c.name), partial(hrw.set_status, c.name))
            return hrw
        if conf.failover is not None:
            f = conf.failover
            try:
                codes = status_ranges(f.errors_status or ())
            except ValueError as err:
                raise ConfigError(f"creating HTTP code ranges: errors.status: {err}") from None
            max_body = f.errors_max_request_body_bytes
            failover = FailoverService(name, self.child(f.service), self.child(f.fallback),
                                       f.health_check is not None, codes, -1 if max_body is None else max_body)
            try:
                failover.main.register(failover.set_main_status)
            except ConfigError as err:
                # Traefik: the main service must report its health, unless errors decide the fallback
                if not f.errors_status:
                    raise ConfigError(f"cannot register {f.service} as updater for {name}: {err}") from None
            if f.health_check is not None:
                _watch(name, f.fallback, failover.fallback, failover.set_fallback_status)
            return failover
        raise ConfigError(f"service {name}: no loadBalancer, weighted, mirroring, highestRandomWeight or failover section")

    def child(self, name: str) -> CompiledService:
        """Service ``name`` as the child of another: built with its own middlewares, which run when a
        request goes to it (a broken one fails the parent, as in Traefik)."""
        svc = self.service(name)
        conf = self.cfg.services.get(name)
        if conf is not None and conf.middlewares and not svc.middleware_names:
            try:
                handlers = tuple(self.middleware(m) for m in conf.middlewares)
            except ConfigError as err:
                raise ConfigError(f"service {name}: {str(err).removeprefix('ingress: ')}") from None
            svc.middlewares, svc.middleware_names = handlers, conf.middlewares
        return svc

    def middleware(self, name: str) -> MiddlewareHandler:
        if name in self.middlewares:
            return self.middlewares[name]
        if name in self.middleware_errors:
            raise ConfigError(self.middleware_errors[name])
        if name in self.building:
            raise ConfigError(f"middleware {name}: recursion detected")
        conf: Middleware | None = self.cfg.middlewares.get(name)
        if conf is None:
            raise ConfigError(f'middleware "{name}" does not exist')
        self.building.add(name)
        try:
            if conf.error:
                raise ConfigError(conf.error)
            mw = build_middleware(conf.kind, conf.config, BuildContext(name, self.service, self.middleware))
        except ConfigError as err:
            self.middleware_errors[name] = str(err)
            raise
        finally:
            self.building.discard(name)
        self.middlewares[name] = mw
        return mw


def _unsupported_lb(lb: LoadBalancer) -> list[str]:
    """Warnings for load-balancer settings pyk3s does not honour."""
    out = []
    if lb.strategy not in ("wrr", "p2c", "hrw", "leasttime", ""):
        out.append(f"load-balancer strategy {lb.strategy} is not supported by pyk3s: weighted round robin is used")
    if lb.strategy == "hrw" and lb.sticky is not None:
        out.append("sticky sessions do not apply with strategy hrw (as in Traefik): the client address picks the server")
    return out


def _watch(parent: str, name: str, child: CompiledService, updater: Callable[[bool], None]) -> None:
    """A parent with ``healthCheck`` follows its child's status (Traefik RegisterStatusUpdater)."""
    try:
        child.register(updater)
    except ConfigError as err:
        raise ConfigError(f"cannot register {name} as updater for {parent}: {err}") from None


def _flag(mws: tuple[MiddlewareHandler, ...], attr: str) -> bool:
    return any(getattr(m, attr, False) for m in mws)


def compile_config(cfg: DynamicConfig, static: StaticConfig,
                   on_problem: Callable[[str, str, str], None] | None = None) -> Compiled:
    """Build the routing table; a broken router is recorded and left out, the rest is served."""
    b = _Builder(cfg, static)
    runtime = RuntimeStatus()
    per_table: dict[tuple[str, bool], list[Route]] = {}
    defaults = _default_entrypoints(static)
    used_by_svc: dict[str, list[str]] = {}
    used_by_mw: dict[str, list[str]] = {}
    tree = router_tree(cfg.routers)
    own: dict[str, Route] = {}  # each router's own rule, middlewares and service (or children)
    for name in sorted(cfg.routers):
        r = cfg.routers[name]
        info: dict[str, Any] = to_json(r)
        info.update(name=name, provider=name.rsplit("@", 1)[-1] if "@" in name else "", status="enabled")
        if r.tls is not None and not r.tls.options:
            info["tls"] = {**info.get("tls", {}), "options": "default"}
        errors: list[str] = list(tree.errors.get(name, ()))
        root = not r.parent_refs
        using: list[str] = []
        if root:
            eps = r.entry_points or defaults
            # an HTTP router cannot use a UDP entry point: for it, that entry point does not exist
            using = [e for e in eps if e in static.entrypoints and static.entrypoints[e].protocol == "tcp"]
            for e in eps:
                if e not in using:
                    errors.append(f'entryPoint "{e}" doesn\'t exist')
            if not using:
                errors.append("no valid entryPoint for this router")
        for m in r.middlewares:
            used_by_mw.setdefault(m, []).append(name)
        if r.service:
            used_by_svc.setdefault(r.service, []).append(name)
        syntax = rule_syntax(r.rule_syntax, static.default_rule_syntax)
        info["ruleSyntax"] = syntax
        # JSON numbers lose precision above 2**53 in browsers, hence the string form (Traefik v3.7)
        info["priorityStr"] = str(r.priority or len(r.rule.encode()))
        route = None
        try:
            if r.error:
                raise ConfigError(r.error)
            rule = parse_rule(r.rule, syntax)
            priority = r.priority or len(r.rule.encode())
            if r.priority > MAX_USER_PRIORITY and not name.endswith("@internal"):
                raise ConfigError(f"the router priority {r.priority} exceeds the max user-defined priority {MAX_USER_PRIORITY}")
            if not r.service and name not in tree.children and name not in tree.errors:
                raise ConfigError("the service is missing on the router")
            svc_conf = cfg.services.get(r.service)
            names = r.middlewares + (svc_conf.middlewares if svc_conf is not None else ())
            mws = tuple(b.middleware(m) for m in names)
            svc = b.service(r.service) if r.service else InternalService(f"{name}-muxer")
            if r.tls is not None and r.tls.options and r.tls.options != "default" and r.tls.options not in cfg.tls_options:
                raise ConfigError(f'unknown TLS options: {r.tls.options}')
            if r.tls is not None and r.tls.cert_resolver:
                # Traefik serves the router and logs the resolver as missing; pyk3s has none at all
                errors.append(f"certificate resolver {r.tls.cert_resolver!r} does not exist: pyk3s has no ACME "
                              "resolvers, the certificates of the TLS store are used")
            if name not in tree.disabled:
                keep = buffers_body(svc)  # the whole body first, as Traefik reads it before the main service
                route = Route(name, rule, priority, mws, svc, r.tls is not None, _flag(mws, "needs_response"),
                              _flag(mws, "needs_done"), _flag(mws, "needs_body") or keep, names, keep_body=keep)
                logged, log_fields, log_headers = _logging(r, name, svc, static)
                route = dc_replace(route, access_log=logged, log_fields=log_fields, log_headers=log_headers,
                                   metrics=r.observability is None or r.observability.metrics is not False)
                own[name] = route
        except ConfigError as err:
            errors.append(str(err).removeprefix("ingress: "))
        if errors:
            info["error"] = errors
            info["status"] = "disabled" if route is None or (root and not using) else "warning"
            if on_problem is not None:
                on_problem("router", name, "; ".join(errors))
        if route is not None and using:
            info["using"] = using
        runtime.routers[name] = info
    for name in tree.roots:
        top = own.get(name)
        if top is None:
            continue
        top = _with_children(top, own, tree.children, ())
        for e in runtime.routers[name].get("using", ()):
            tls = top.tls or static.entrypoints[e].tls
            per_table.setdefault((e, tls), []).append(top if tls == top.tls else _with_tls(top))
    for name in sorted(set(cfg.services) | set(used_by_svc)):
        svc_conf = cfg.services.get(name)
        info = to_json(svc_conf) if svc_conf is not None else {}
        info.update(name=name, provider=name.rsplit("@", 1)[-1] if "@" in name else "", status="enabled",
                    usedBy=sorted(used_by_svc.get(name, [])))
        if svc_conf is not None:
            info["type"] = svc_conf.kind
        try:
            svc = b.service(name)
            if isinstance(svc, Balancer):
                info["serverStatus"] = svc.server_status  # the same dict: health checks keep it current
            warnings = b.service_warnings.get(name)
            if warnings:
                info.update(status="warning", error=list(warnings))
                if on_problem is not None:
                    on_problem("service", name, "; ".join(warnings))
        except ConfigError as err:
            info.update(status="disabled", error=[str(err).removeprefix("ingress: ")])
        runtime.services[name] = info
    for name in sorted(cfg.middlewares):  # every service is built before layered is marked
        try:
            b.middleware(name)
        except ConfigError:
            pass  # reported below
    mark_layered(b.services.values())
    for name in sorted(set(cfg.middlewares) | set(used_by_mw)):
        mw_conf = cfg.middlewares.get(name)
        info = {mw_conf.kind: to_json(mw_conf.config)} if mw_conf is not None else {}
        info.update(name=name, provider=name.rsplit("@", 1)[-1] if "@" in name else "", status="enabled",
                    usedBy=sorted(used_by_mw.get(name, [])))
        if mw_conf is not None:
            info["type"] = mw_conf.kind.lower()
        try:
            handler = b.middleware(name)
            warnings = list(handler.warnings) + errors_service_middlewares(cfg, b.services, mw_conf)
            if warnings:
                info.update(status="warning", error=warnings)
                if on_problem is not None:
                    on_problem("middleware", name, "; ".join(warnings))
        except ConfigError as err:
            info.update(status="disabled", error=[str(err).removeprefix("ingress: ")])
        runtime.middlewares[name] = info
    tables = {key: EntryTable(routes) for key, routes in per_table.items()}
    tcp = compile_tcp(cfg, static, {e: routes for (e, tls), routes in per_table.items() if tls}, on_problem)
    return Compiled(RoutingTable(tables), runtime, cfg, static, b.services, tcp, tuple(b.health))


def _with_children(route: Route, own: Mapping[str, Route], children: Mapping[str, list[str]],
                   seen: tuple[str, ...]) -> Route:
    """``route`` with its child routers, each carrying the middlewares of its parents before its own."""
    kids = []
    for child in children.get(route.name, ()):
        found = own.get(child)
        if found is None or child in seen:
            continue
        mws = route.middlewares + found.middlewares
        combined = dc_replace(
            found, middlewares=mws, middleware_names=route.middleware_names + found.middleware_names,
            needs_response=route.needs_response or found.needs_response, needs_done=route.needs_done or found.needs_done,
            needs_body=route.needs_body or found.needs_body, keep_body=found.keep_body, tls=route.tls, access_log=route.access_log,
            log_fields=route.log_fields, log_headers=route.log_headers, log_name=f"{route.log_name or route.name} -> {child}",
            metrics=route.metrics)
        kids.append(_with_children(combined, own, children, (*seen, route.name)))
    if not kids:
        return route
    return dc_replace(route, children=tuple(sorted(kids, key=lambda k: (-k.priority, k.name))))


def _with_tls(route: Route) -> Route:
    return dc_replace(route, tls=True)


def _logging(r: Router, name: str, svc: CompiledService, static: StaticConfig) -> tuple[bool, dict[str, str], bool]:
    """(whether the router's requests are access-logged, the Kubernetes fields of its records, whether
    those records carry headers)."""
    obs = r.observability
    internal = name.endswith("@internal") or bool(svc.internal)
    enabled = (obs is None or obs.access_logs is not False) and (
        not internal or (static.access_log is not None and static.access_log.add_internals))
    fields: dict[str, str] = {}
    if obs is not None and obs.ingress is not None:
        meta = obs.ingress
        fields = {"KubernetesIngressNamespace": meta.namespace, "KubernetesIngressName": meta.ingress_name,
                  "KubernetesServiceName": meta.service_name, "KubernetesServicePort": meta.service_port}
    opts = static.access_log
    headers = enabled and opts is not None and (
        opts.headers_default_mode != "drop" or any(m != "drop" for m in opts.header_names.values()))
    return enabled, fields, headers


def runtime_counts(items: Mapping[str, dict[str, Any]]) -> dict[str, int]:
    return {"total": len(items), "warnings": sum(1 for i in items.values() if i.get("status") == "warning"),
            "errors": sum(1 for i in items.values() if i.get("status") == "disabled")}
