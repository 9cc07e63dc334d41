"""Ingress and Service annotations of the kubernetesIngress provider (Traefik ingress/annotations.go).

Keys under ``traefik.ingress.kubernetes.io/`` are label paths, case-insensitive:

    router.entrypoints, router.middlewares (comma lists), router.priority, router.pathmatcher,
    router.rulesyntax, router.tls ("true"), router.tls.certresolver, router.tls.options,
    router.tls.domains.<n>.main, router.tls.domains.<n>.sans (comma list),
    router.observability.accesslogs|metrics|tracing (booleans), router.observability.traceverbosity
    service.serversscheme, service.serverstransport, service.passhostheader, service.middlewares,
    service.sticky.cookie ("true"), service.sticky.cookie.name|secure|httponly|samesite|maxage|path|domain,
    service.nativelb, service.nodeportlb

A value that does not parse (``router.priority: high``) is an error for the whole object, as in Traefik.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.dynamic import Domain, RouterObservability, RouterTLS, StickyCookie
from .common import KubeObject

__all__ = ["PREFIX", "RouterAnnotations", "ServiceAnnotations", "router_annotations", "service_annotations",
           "AnnotationError"]

PREFIX = "traefik.ingress.kubernetes.io/"


class AnnotationError(ValueError):
    """An annotation value of the wrong type."""


def _labels(obj: KubeObject, section: str) -> dict[str, str]:
    out = {}
    for key, value in ((obj.get("metadata") or {}).get("annotations") or {}).items():
        low = str(key).lower()
        if low.startswith(PREFIX + section):
            out[low[len(PREFIX) + len(section):]] = str(value)
    return out


def _bool(labels: dict[str, str], key: str) -> bool | None:
    value = labels.get(key)
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise AnnotationError(f"{PREFIX}{key}: invalid boolean {value!r}")


def _int(labels: dict[str, str], key: str, section: str) -> int:
    value = labels.get(key)
    if value is None or not value.strip():
        return 0
    try:
        return int(value.strip())
    except ValueError:
        raise AnnotationError(f"{PREFIX}{section}{key}: invalid integer {value!r}") from None


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True, slots=True)
class RouterAnnotations:
    path_matcher: str = ""
    entry_points: tuple[str, ...] = ()
    middlewares: tuple[str, ...] = ()
    priority: int = 0
    rule_syntax: str = ""
    tls: RouterTLS | None = None
    observability: RouterObservability | None = None


@dataclass(frozen=True, slots=True)
class ServiceAnnotations:
    servers_scheme: str = ""
    servers_transport: str = ""
    pass_host_header: bool = True
    middlewares: tuple[str, ...] = ()
    sticky: StickyCookie | None = None
    native_lb: bool | None = None
    node_port_lb: bool = False


def router_annotations(obj: KubeObject) -> RouterAnnotations | None:
    """The router.* annotations, None when there are none; AnnotationError for a bad value."""
    labels = _labels(obj, "router.")
    if not labels:
        return None
    tls = None
    tls_on = _bool(labels, "tls")
    if tls_on or any(k.startswith("tls.") for k in labels):
        domains = []
        i = 0
        while f"tls.domains.{i}.main" in labels or f"tls.domains.{i}.sans" in labels:
            domains.append(Domain(labels.get(f"tls.domains.{i}.main", ""), _list(labels.get(f"tls.domains.{i}.sans"))))
            i += 1
        tls = RouterTLS(options=labels.get("tls.options", "").strip(),
                        cert_resolver=labels.get("tls.certresolver", "").strip(), domains=tuple(domains))
    observability = None
    if any(k.startswith("observability.") for k in labels):
        observability = RouterObservability(
            access_logs=_bool(labels, "observability.accesslogs"), metrics=_bool(labels, "observability.metrics"),
            tracing=_bool(labels, "observability.tracing"),
            trace_verbosity=labels.get("observability.traceverbosity", "minimal").strip())
    return RouterAnnotations(
        path_matcher=labels.get("pathmatcher", "").strip(), entry_points=_list(labels.get("entrypoints")),
        middlewares=_list(labels.get("middlewares")), priority=_int(labels, "priority", "router."),
        rule_syntax=labels.get("rulesyntax", "").strip(), tls=tls, observability=observability)


def service_annotations(obj: KubeObject) -> ServiceAnnotations | None:
    """The service.* annotations of a Kubernetes Service, None when there are none."""
    labels = _labels(obj, "service.")
    if not labels:
        return None
    sticky = None
    if _bool(labels, "sticky.cookie") or any(k.startswith("sticky.cookie.") for k in labels):
        sticky = StickyCookie(name=labels.get("sticky.cookie.name", ""),
                              secure=bool(_bool(labels, "sticky.cookie.secure")),
                              http_only=bool(_bool(labels, "sticky.cookie.httponly")),
                              same_site=labels.get("sticky.cookie.samesite", ""),
                              max_age=_int(labels, "sticky.cookie.maxage", "service."),
                              path=labels.get("sticky.cookie.path", "/"), domain=labels.get("sticky.cookie.domain", ""))
    passhost = _bool(labels, "passhostheader")
    return ServiceAnnotations(
        servers_scheme=labels.get("serversscheme", "").strip(), servers_transport=labels.get("serverstransport", "").strip(),
        pass_host_header=True if passhost is None else passhost, middlewares=_list(labels.get("middlewares")),
        sticky=sticky, native_lb=_bool(labels, "nativelb"), node_port_lb=bool(_bool(labels, "nodeportlb")))
