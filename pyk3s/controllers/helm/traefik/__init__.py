"""The packaged Traefik chart (traefik 37.1.1+up37.1.0), rendered natively: values in, objects out.

``render(user_values, release)`` does what ``helm template`` does with the chart: coalesce the values
with the chart's defaults, refuse bad values (unknown key, wrong type, two entry points on one port,
the chart's own ``fail`` checks) naming the key, and produce the chart's objects with its names and
labels, from the templates in the chart's file order. Values pyk3s renders but does not act on come
back as :class:`~pyk3s.controllers.helm.chart.Ignored`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..chart import Ignored, Manifest, PackagedChart, Release, Rendered, RenderError
from ..shape import Shape, check
from ..values import coalesce
from .context import Ctx, go_string, truthy
from .gateway import gateway, gateway_class
from .objects import (
    cluster_rbac,
    extra_objects,
    ingress_class,
    ingress_routes,
    namespaced_rbac,
    service_account,
    tls_options,
    tls_stores,
)
from .pod import image_name
from .schema import shape_for
from .service import services
from .support import fix_image, ignored_args, ignored_values, image_is_builtin
from .workload import workload

__all__ = ["CHART", "VERSION", "render"]

VERSION = "37.1.1+up37.1.0"
APP_VERSION = "v3.5.1"


@cache
def defaults() -> Mapping[str, Any]:
    text = resources.files(__package__).joinpath("values.yaml").read_text()
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


@cache
def _shape() -> Shape:
    return shape_for(defaults())


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _check_ports(ctx: Ctx) -> None:
    """Two entry points on one container port, or on one Service port, cannot both listen."""
    seen: dict[tuple[str, str], str] = {}
    for name, cfg in sorted((ctx.v("ports") or {}).items()):
        if not truthy(cfg):
            continue
        port = cfg.get("containerPort") or cfg.get("port")
        proto = go_string(cfg.get("protocol") or "TCP").upper()
        here = (go_string(port), proto)
        if port is not None and here in seen:
            raise RenderError(f"ports.{name}.port", f"entry points {seen[here]} and {name} both listen on "
                                                    f"{here[0]}/{proto}")
        seen[here] = name
    exposed: dict[tuple[str, str], str] = {}
    for name, cfg in sorted((ctx.v("ports") or {}).items()):
        if not truthy(cfg) or not truthy((cfg.get("expose") or {}).get("default")):
            continue
        port = cfg.get("exposedPort") or cfg.get("port")
        proto = go_string(cfg.get("protocol") or "TCP").upper()
        here = (go_string(port), proto)
        if here in exposed:
            raise RenderError(f"ports.{name}.exposedPort", f"entry points {exposed[here]} and {name} are both "
                                                           f"exposed on Service port {here[0]}/{proto}")
        exposed[here] = name


SOURCES: tuple[tuple[str, Callable[[Ctx], list[dict[str, Any]]]], ...] = (
    ("gateway.yaml", gateway),
    ("gatewayclass.yaml", gateway_class),
    ("ingressclass.yaml", lambda c: [o for o in [ingress_class(c)] if o]),
    ("ingressroute.yaml", ingress_routes),
    ("rbac/clusterrole.yaml", lambda c: cluster_rbac(c)[:1]),
    ("rbac/clusterrolebinding.yaml", lambda c: cluster_rbac(c)[1:]),
    ("rbac/role.yaml", lambda c: [o for o in namespaced_rbac(c) if o["kind"] == "Role"]),
    ("rbac/rolebinding.yaml", lambda c: [o for o in namespaced_rbac(c) if o["kind"] == "RoleBinding"]),
    ("rbac/serviceaccount.yaml", lambda c: [o for o in [service_account(c)] if o]),
    ("service.yaml", services),
    ("tlsoption.yaml", tls_options),
    ("tlsstore.yaml", tls_stores),
    ("extra-objects.yaml", extra_objects),
)


def render(user: Mapping[str, Any], release: Release) -> Rendered:
    values = coalesce(user, defaults())
    problems = check(values, _shape(), f"traefik {VERSION}")
    if len(problems) == 1:
        raise RenderError(problems[0].key, problems[0].message)
    if problems:
        raise RenderError(problems[0].key, "; ".join(str(p) for p in problems))
    ctx = Ctx(values, release, CHART.label, APP_VERSION)
    if (ctx.v("image", "tag") or APP_VERSION) == "latest":
        raise RenderError("image.tag", "ERROR: latest tag should not be used")
    if not ctx.version_at_least("v3.0.0-0"):
        raise RenderError("image.tag", "ERROR: This version of the Chart only supports Traefik Proxy v3")
    if truthy(ctx.v("certResolvers")):
        raise RenderError("certResolvers", "ERROR: certResolvers setting has been removed. See v33.0.0 Changelog.")
    _check_ports(ctx)
    image = image_name(ctx)
    ignored: list[Ignored] = ignored_values(ctx, image)
    objects: list[Manifest] = []
    main, args = workload(ctx)
    if main is not None:
        if not image_is_builtin(image):
            fix_image(main, image)
        kind = "deployment.yaml" if main["kind"] == "Deployment" else "daemonset.yaml"
        objects.append(Manifest(f"traefik/templates/{kind}", _without_none(main)))
    for source, build in SOURCES:
        for obj in build(ctx):
            objects.append(Manifest(f"traefik/templates/{source}", _without_none(obj)))
    ignored += ignored_args(args, ignored)
    objects.sort(key=lambda m: m.source)
    return Rendered(tuple(objects), tuple(ignored), values)


CHART = PackagedChart(
    name="traefik",
    version=VERSION,
    app_version=APP_VERSION,
    description="A Traefik based Kubernetes ingress controller",
    defaults=defaults(),
    render=render,
)
