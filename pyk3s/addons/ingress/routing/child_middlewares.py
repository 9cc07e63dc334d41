"""Service middlewares below the top service: which services are ``layered`` (routing/services.py) and
what pyk3s says it does not honour of them.

A request to a layered service is walked by the exchange a child at a time, so each child's own
middlewares run (proxy/exchange.py ``walk``). Two kinds of requests still go straight to servers with
``pick`` and skip them, each reported as a warning: mirrors' copies (on the mirroring service) and the
error-page requests of an ``errors`` middleware (on that middleware).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..config.dynamic import DynamicConfig, Middleware
from .services import CompiledService, children_of

__all__ = ["mark_layered", "mirror_middlewares", "errors_service_middlewares"]


def mark_layered(services: Iterable[CompiledService]) -> None:
    """Set ``layered`` on every service with a child service that has middlewares somewhere below it
    (once every service is built: a child's middlewares are set as its parents are built)."""
    done: dict[int, bool] = {}

    def layered(svc: CompiledService) -> bool:
        key = id(svc)
        if key not in done:
            done[key] = False  # the builder refuses cycles; this only keeps a walk finite
            found = [bool(k.middlewares) | layered(k) for k in children_of(svc)]  # every child gets its mark
            svc.layered = done[key] = any(found)
        return done[key]

    for svc in services:
        layered(svc)


def mirror_middlewares(cfg: DynamicConfig, mirrors: Iterable[str]) -> list[str]:
    """The warnings of a mirroring service whose mirrors have middlewares: copies are sent with ``pick``."""
    return [f"the middlewares of service {n} are not applied by pyk3s to the copies it gets as a mirror"
            for n in mirrors if (c := cfg.services.get(n)) is not None and c.middlewares]


def errors_service_middlewares(cfg: DynamicConfig, services: Mapping[str, CompiledService],
                               conf: Middleware | None) -> list[str]:
    """An errors middleware asks its service's servers for the page directly: say so when that service,
    or one below it, has middlewares of its own (Traefik would run them)."""
    if conf is None or conf.kind != "errors":
        return []
    name = str(conf.config.get("service", ""))
    svc, svc_conf = services.get(name), cfg.services.get(name)
    if (svc_conf is not None and svc_conf.middlewares) or (svc is not None and svc.layered):
        return [f"the middlewares of service {name} (or of its child services) are not applied by pyk3s to "
                "the error page requests of this middleware"]
    return []
