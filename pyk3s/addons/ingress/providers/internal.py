"""The internal provider: the routers Traefik adds by itself for its static configuration
(pkg/provider/traefik/internal.go): api and dashboard on the ``traefik`` entrypoint, ping, prometheus,
entrypoint redirections. Names are unqualified, as every provider's.
"""

from __future__ import annotations

from ..config.dynamic import DynamicConfig, Middleware, Router, Service
from ..config.static import MAX_INT, StaticConfig

__all__ = ["internal_config"]


def internal_config(static: StaticConfig) -> DynamicConfig:
    """Routers Traefik creates by itself (pkg/provider/traefik/internal.go), names unqualified."""
    routers: dict[str, Router] = {}
    middlewares: dict[str, Middleware] = {}
    services: dict[str, Service] = {}
    if static.api_insecure:
        routers["api"] = Router(rule="PathPrefix(`/api`)", service="api@internal", entry_points=("traefik",),
                                priority=MAX_INT - 1)
        if static.api_dashboard:
            routers["dashboard"] = Router(rule="PathPrefix(`/`)", service="dashboard@internal",
                                          entry_points=("traefik",), priority=MAX_INT - 2,
                                          middlewares=("dashboard_redirect", "dashboard_stripprefix"))
            middlewares["dashboard_redirect"] = Middleware("redirectRegex", {
                "regex": r"^(http:\/\/(\[[\w:.]+\]|[\w\._-]+)(:\d+)?)\/$", "replacement": "${1}/dashboard/",
                "permanent": True})
            middlewares["dashboard_stripprefix"] = Middleware("stripPrefix", {"prefixes": ["/dashboard/", "/dashboard"]})
    if static.ping:
        routers["ping"] = Router(rule="PathPrefix(`/ping`)", service="ping@internal",
                                 entry_points=(static.ping_entrypoint,), priority=MAX_INT)
    if static.prometheus:
        routers["prometheus"] = Router(rule="PathPrefix(`/metrics`)", service="prometheus@internal",
                                       entry_points=(static.prometheus_entrypoint,), priority=MAX_INT)
    for name, ep in static.entrypoints.items():
        if not ep.redirect_to:
            continue
        target = static.entrypoints.get(ep.redirect_to)
        port = str(target.port) if target is not None else ep.redirect_to.lstrip(":")
        key = f"{name}-to-{ep.redirect_to}"
        routers[key] = Router(rule="HostRegexp(`^.+$`)", service="noop@internal", entry_points=(name,),
                              middlewares=(f"redirect-{key}",), priority=ep.redirect_priority)
        middlewares[f"redirect-{key}"] = Middleware("redirectScheme", {
            "scheme": ep.redirect_scheme, "port": port, "permanent": ep.redirect_permanent})
    return DynamicConfig(routers=routers, services=services, middlewares=middlewares)
