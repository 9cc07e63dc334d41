"""The Traefik chart's Gateway API objects, pure: the default GatewayClass and Gateway.

Rendered as ``templates/gatewayclass.yaml`` and ``templates/gateway.yaml`` render them when
``providers.kubernetesGateway.enabled``: the GatewayClass ``traefik`` for the controller
``traefik.io/gateway-controller``, and the Gateway ``traefik-gateway`` with one listener per
``gateway.listeners`` entry, in name order, each on a port some entry point declares.
"""

from __future__ import annotations

from typing import Any

from ..chart import RenderError
from .context import Ctx, go_string, truthy

__all__ = ["CONTROLLER_NAME", "gateway", "gateway_class"]

CONTROLLER_NAME = "traefik.io/gateway-controller"
API_VERSION = "gateway.networking.k8s.io/v1"


def _enabled(ctx: Ctx, section: str) -> bool:
    return bool(ctx.v(section, "enabled")) and bool(ctx.v("providers", "kubernetesGateway", "enabled"))


def _class_name(ctx: Ctx) -> str:
    return go_string(ctx.v("gatewayClass", "name") or "traefik")


def gateway_class(ctx: Ctx) -> list[dict[str, Any]]:
    if not _enabled(ctx, "gatewayClass"):
        return []
    labels = ctx.labels(ctx.v("gatewayClass", "labels"))
    return [{"apiVersion": API_VERSION, "kind": "GatewayClass",
             "metadata": {"name": _class_name(ctx), "labels": labels},
             "spec": {"controllerName": CONTROLLER_NAME}}]


def _declared_ports(ctx: Ctx) -> list[Any]:
    return [cfg.get("port") for cfg in (ctx.v("ports") or {}).values() if isinstance(cfg, dict)]


def _listener(ctx: Ctx, name: str, cfg: Any) -> dict[str, Any]:
    key = f"gateway.listeners.{name}"
    cfg = cfg if isinstance(cfg, dict) else {}
    port = cfg.get("port")
    if not truthy(port):
        raise RenderError(f"{key}.port", "ERROR: port needs to be specified")
    if port not in _declared_ports(ctx):
        shown = f"{port:.0f}" if isinstance(port, int | float) else go_string(port)
        raise RenderError(f"{key}.port", f"ERROR: port {shown} is not declared in ports")
    listener: dict[str, Any] = {"name": name, "port": port, "protocol": cfg.get("protocol")}
    if truthy(cfg.get("hostname")):
        listener["hostname"] = cfg["hostname"]
    if truthy(cfg.get("namespacePolicy")):
        listener["allowedRoutes"] = {"namespaces": cfg["namespacePolicy"]}
    if cfg.get("protocol") == "HTTPS" and not truthy(cfg.get("certificateRefs")):
        raise RenderError(f"{key}.certificateRefs", "ERROR: certificateRefs needs to be specified using HTTPS")
    if truthy(cfg.get("certificateRefs")) or truthy(cfg.get("mode")):
        tls: dict[str, Any] = {}
        if truthy(cfg.get("mode")):
            tls["mode"] = cfg["mode"]
        if truthy(cfg.get("certificateRefs")):
            tls["certificateRefs"] = cfg["certificateRefs"]
        listener["tls"] = tls
    return listener


def gateway(ctx: Ctx) -> list[dict[str, Any]]:
    if not _enabled(ctx, "gateway"):
        return []
    listeners = ctx.v("gateway", "listeners") or {}
    if not truthy(listeners):
        raise RenderError("gateway.listeners", "ERROR: gateway must have at least one listener or should be disabled")
    meta: dict[str, Any] = {"name": go_string(ctx.v("gateway", "name") or "traefik-gateway"),
                            "namespace": go_string(ctx.v("gateway", "namespace") or ctx.namespace),
                            "labels": ctx.labels()}
    if truthy(ctx.v("gateway", "annotations")):
        meta["annotations"] = ctx.v("gateway", "annotations")
    spec: dict[str, Any] = {"gatewayClassName": _class_name(ctx)}
    if truthy(ctx.v("gateway", "infrastructure")):
        spec["infrastructure"] = ctx.v("gateway", "infrastructure")
    spec["listeners"] = [_listener(ctx, name, cfg) for name, cfg in sorted(listeners.items())]
    return [{"apiVersion": API_VERSION, "kind": "Gateway", "metadata": meta, "spec": spec}]
