"""DynamicConfig -> routing table + runtime status: the only place that builds handlers (STYLE §2).

Per router: parse the rule, resolve priority (explicit, else rule length, 2.1), build its middlewares
and its service, pick its entrypoints (2.6) and put it into the TLS or plain table of each (2.7) in
``table.py``. Anything that fails puts that router (and only it) in error; the runtime keeps every
error for the API, the dashboard and ``explain``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import DynamicConfig, Middleware, to_json
from ..config.errors import ConfigError
from ..config.static import MAX_INT, StaticConfig
from ..middlewares import build_middleware
from ..middlewares.base import BuildContext, MiddlewareHandler
from ..rules import parse_rule, rule_syntax
from .services import (
    INTERNAL_SERVICES,
    Balancer,
    CompiledService,
    InternalService,
    MirrorService,
    WeightedBalancer,
)
from .table import EntryTable, Route, RoutingTable
from .tcp_compile import TCPCompiled, compile_tcp

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
        if conf.load_balancer is not None:
            return Balancer(name, conf.load_balancer)
        if conf.weighted is not None:
            children = [(c.name, self.service(c.name), c.weight) for c in conf.weighted.services]
            return WeightedBalancer(name, children, conf.weighted.sticky)
        if conf.mirroring is not None:
            m = conf.mirroring
            return MirrorService(name, self.service(m.service), [(self.service(x.name), x.percent) for x in m.mirrors],
                                 m.mirror_body, m.max_body_size)
        raise ConfigError(f"service {name}: no loadBalancer, weighted or mirroring section")

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
    for name in sorted(cfg.routers):
        r = cfg.routers[name]
        info: dict[str, Any] = to_json(r)
        info.update(name=name, provider=name.rsplit("@", 1)[-1] if "@" in name else "", status="enabled")
        if r.tls is not None and not r.tls.options:
            info["tls"] = {**info.get("tls", {}), "options": "default"}
        errors: list[str] = []
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
            mws = tuple(b.middleware(m) for m in r.middlewares)
            if not r.service:
                raise ConfigError("the service is missing on the router")
            svc = b.service(r.service)
            if r.tls is not None and r.tls.options and r.tls.options != "default" and r.tls.options not in cfg.tls_options:
                raise ConfigError(f'unknown TLS options: {r.tls.options}')
            route = Route(name, rule, priority, mws, svc, r.tls is not None, _flag(mws, "needs_response"),
                          _flag(mws, "needs_done"), _flag(mws, "needs_body"), r.middlewares)
        except ConfigError as err:
            errors.append(str(err).removeprefix("ingress: "))
        if errors:
            info["error"] = errors
            info["status"] = "disabled" if route is None or not using else "warning"
            if on_problem is not None:
                on_problem("router", name, "; ".join(errors))
        if route is not None and using:
            info["using"] = using
            for e in using:
                tls = route.tls or static.entrypoints[e].tls
                per_table.setdefault((e, tls), []).append(route if tls == route.tls else
                                                          _with_tls(route))
        runtime.routers[name] = info
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
                info["serverStatus"] = {t.url: "UP" for t in svc.targets}
        except ConfigError as err:
            info.update(status="disabled", error=[str(err).removeprefix("ingress: ")])
        runtime.services[name] = info
    for name in sorted(set(cfg.middlewares) | set(used_by_mw)):
        mw_conf = cfg.middlewares.get(name)
        info = {mw_conf.kind: to_json(mw_conf.config)} if mw_conf is not None else {}
        info.update(name=name, provider=name.rsplit("@", 1)[-1] if "@" in name else "", status="enabled",
                    usedBy=sorted(used_by_mw.get(name, [])))
        if mw_conf is not None:
            info["type"] = mw_conf.kind.lower()
        try:
            b.middleware(name)
        except ConfigError as err:
            info.update(status="disabled", error=[str(err).removeprefix("ingress: ")])
        runtime.middlewares[name] = info
    tables = {key: EntryTable(routes) for key, routes in per_table.items()}
    tcp = compile_tcp(cfg, static, {e: routes for (e, tls), routes in per_table.items() if tls}, on_problem)
    return Compiled(RoutingTable(tables), runtime, cfg, static, b.services, tcp)


def _with_tls(route: Route) -> Route:
    return Route(route.name, route.rule, route.priority, route.middlewares, route.service, True,
                 route.needs_response, route.needs_done, route.needs_body, route.middleware_names)


def runtime_counts(items: Mapping[str, dict[str, Any]]) -> dict[str, int]:
    return {"total": len(items), "warnings": sum(1 for i in items.values() if i.get("status") == "warning"),
            "errors": sum(1 for i in items.values() if i.get("status") == "disabled")}
