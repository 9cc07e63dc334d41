"""The routing table: routes per entrypoint and transport, indexed by the Host they require (spec 2.2-2.7).

A lookup scans only the routes that can match the request's host, in priority order (priority desc,
then name). For the proxy's fast lane (proxy/fastlane.py) a table also answers, once per Host value,
whether Host and path alone decide a request's route: :func:`fast_route` gives that route, or a
:class:`PathChoice` when paths decide between several, or None when other matchers (or a route the fast
lane cannot serve: middlewares, a service other than a plain load balancer of ``http`` servers) are
involved.

Service middlewares below the top service (a child service's own ``middlewares``, routing/services.py):
:meth:`Route.into` gives the route an exchange continues on once the request went down to such a child,
with that child as its service and its middlewares after the route's (so the router's stay outermost).
These routes are made on first use and kept with the route they came from, per snapshot. A route whose
service is layered is never served by the fast lane: that takes only a plain load balancer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import ClassVar, Literal

from ..http.request import HttpRequest, canonical_host
from ..middlewares.base import MiddlewareHandler
from ..rules import CompiledRule
from .services import Balancer, CompiledService, InternalService

__all__ = ["Route", "UNROUTED", "EntryTable", "RoutingTable", "PathChoice", "fast_route", "FAST_ROUTES_MAX"]

FAST_ROUTES_MAX = 4096


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    rule: CompiledRule
    priority: int
    middlewares: tuple[MiddlewareHandler, ...]
    service: CompiledService
    tls: bool
    needs_response: bool
    needs_done: bool
    needs_body: bool
    middleware_names: tuple[str, ...] = ()
    keep_body: bool = False  # the body is kept whole: a failover with errors may send it again
    access_log: bool = True  # the router's observability.accessLogs (and internal routers' addInternals)
    log_headers: bool = False  # its access-log records carry headers: parsed answers, no fast lane
    children: tuple[Route, ...] = ()  # child routers (parentRefs), priority order, parents' middlewares first
    log_name: str = ""  # RouterName in access logs: "parent -> child" for a child router
    metrics: bool = True  # the router's observability.metrics
    log_fields: Mapping[str, str] = field(default_factory=dict)  # KubernetesIngressName... for its records
    by_path: ClassVar[Literal[False]] = False  # tells a Route from a PathChoice in the fast lane
    # the routes into the children of a layered service, by position (``into``); never copied by replace
    steps: dict[int, Route] = field(init=False, default_factory=dict, repr=False, compare=False)

    def into(self, index: int, child: CompiledService) -> Route:
        """This route once the request went down to ``child``, ``index``-th child of its service: the
        child's middlewares run after this route's and answer inside them."""
        found = self.steps.get(index)
        if found is None:
            mws = child.middlewares
            found = dc_replace(
                self, service=child, middlewares=self.middlewares + mws,
                middleware_names=self.middleware_names + child.middleware_names,
                needs_response=self.needs_response or any(m.needs_response for m in mws),
                needs_done=self.needs_done or any(m.needs_done for m in mws),
                needs_body=self.needs_body or any(m.needs_body for m in mws))
            self.steps[index] = found
        return found


UNROUTED = Route("", CompiledRule("", "v3", lambda r: False, frozenset(), ()), 0, (),
                 InternalService("noop@internal"), False, False, False, False)
"""The route of an exchange that no router took (yet): no middlewares, nothing to call back."""


class EntryTable:
    """Routes of one entrypoint and one transport (plain or TLS), indexed by host."""

    __slots__ = ("by_host", "hostless", "routes", "fast_routes")

    def __init__(self, routes: list[Route]) -> None:
        routes = sorted(routes, key=lambda r: (-r.priority, r.name))
        self.routes = tuple(routes)
        self.hostless = tuple(r for r in routes if r.rule.hosts is None)
        hosts: set[str] = set()
        for r in routes:
            if r.rule.hosts:
                hosts |= r.rule.hosts
        self.by_host = {h: tuple(r for r in routes if r.rule.hosts is None or h in r.rule.hosts) for h in hosts}
        self.fast_routes: dict[bytes, Route | PathChoice | None] = {}

    def candidates(self, host: str) -> tuple[Route, ...]:
        found = self.by_host.get(host)
        if found is None and host.endswith("."):
            found = self.by_host.get(host.rstrip("."))
        return self.hostless if found is None else found

    def lookup(self, req: HttpRequest) -> Route | None:
        for r in self.candidates(req.host):
            if r.rule.match(req):
                return r
        return None

    def fast_route(self, host_header: bytes) -> Route | PathChoice | None:
        """:func:`fast_route` for a raw Host value, remembered per value."""
        try:
            return self.fast_routes[host_header]
        except KeyError:
            pass
        route = fast_route(self, canonical_host(host_header.decode("latin-1")))
        if len(host_header) <= 255:
            if len(self.fast_routes) >= FAST_ROUTES_MAX:
                self.fast_routes.clear()
            self.fast_routes[host_header] = route
        return route


@dataclass(slots=True)
class RoutingTable:
    tables: dict[tuple[str, bool], EntryTable]

    def lookup(self, entrypoint: str, tls: bool, req: HttpRequest) -> Route | None:
        table = self.tables.get((entrypoint, tls))
        return table.lookup(req) if table is not None else None


class _Probe:
    """What Host and Path rules read from a request."""

    __slots__ = ("host", "path")

    def __init__(self, host: str, path: str) -> None:
        self.host = host
        self.path = path


def _eligible(route: Route) -> bool:
    # servers that may speak HTTP/2 (h2c, https with ALPN) need the general path, as in Traefik, whose
    # fast proxy also serves only plain HTTP/1.1 servers
    svc = route.service
    # p2c and passive health checks follow each request to its end, which the fast lane does not report;
    # hrw reads the client's address
    # a layered service (child services with middlewares) is never a Balancer: it is left out here too
    return (isinstance(svc, Balancer) and not route.middlewares and svc.sticky is None and not route.log_headers
            and svc.strategy == "wrr" and svc.passive is None and all(t.pass_host_header and t.scheme == "http" for t in svc.targets))


class PathChoice:
    """The routes one host can take when paths decide between them (Ingress objects' rules): in priority
    order, each with whether the fast lane may serve it; ``None`` stands for a rule that reads more than
    host and path, below which the general path decides."""

    __slots__ = ("probe", "routes")
    by_path: ClassVar[Literal[True]] = True

    def __init__(self, probe: _Probe, routes: tuple[tuple[Route | None, bool], ...]) -> None:
        self.probe = probe
        self.routes = routes

    def pick(self, path: str) -> Route | None:
        probe = self.probe
        probe.path = path
        for route, eligible in self.routes:
            if route is None:
                return None
            if route.rule.match(probe):
                return route if eligible else None
        return None


def fast_route(table: EntryTable, host: str) -> Route | PathChoice | None:
    """For a canonical host: the route all its requests take (a Route), a PathChoice when host and path
    decide, or None when the general path must decide (other matchers, or an ineligible route)."""
    probe = _Probe(host, "")
    chosen: list[tuple[Route | None, bool]] = []
    for route in table.candidates(host):
        rule = route.rule
        if rule.host_only:
            if rule.match(probe):
                if not chosen:
                    return route if _eligible(route) else None
                chosen.append((route, _eligible(route)))
                break
        elif rule.host_path_only:
            chosen.append((route, _eligible(route)))
        else:
            if not chosen:
                return None
            chosen.append((None, False))
            break
    return PathChoice(probe, tuple(chosen)) if chosen else None
