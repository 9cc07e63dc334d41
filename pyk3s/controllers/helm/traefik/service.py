"""The Traefik Services (``service.yaml``, ``_service.tpl``), pure.

``service`` renders Service ``<fullname>``; every ``service.additionalServices.<name>`` renders
``<fullname>-<name>`` with the same rules. An entry point is on a Service when its
``expose.<service name>`` is true (``expose.default`` for the main one); its Service port is
``exposedPort`` (else ``port``) and it targets the container port by name. UDP ports share the Service
while ``service.single`` is true (the default), else they go to ``<name>-udp``.
"""

from __future__ import annotations

import copy
from typing import Any

from ..chart import RenderError
from .context import Ctx, go_string, port_name, port_reference, truthy

__all__ = ["services"]


def _service_name(ctx: Ctx, name: str) -> str:
    full = ctx.fullname if name == "default" else f"{ctx.fullname}-{name}"
    if len(full) >= 60:
        raise RenderError("service.additionalServices" if name != "default" else "fullnameOverride",
                          "ERROR: Cannot create a service whose full name contains more than 60 characters")
    return full


def _service_ports(ports: dict[str, Any], service_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for port_key, cfg in sorted(ports.items()):
        name = port_key.lower()
        if not truthy((cfg.get("expose") or {}).get(service_name)):
            continue
        port = cfg.get("exposedPort") or cfg.get("port")
        if not truthy(port):
            raise RenderError(f"ports.{port_key}",
                              f"ERROR: Cannot create {name} port on Service without .port or .exposedPort")
        entry: dict[str, Any] = {"port": port, "name": port_name(name),
                                 "targetPort": port_reference(cfg.get("targetPort") or name),
                                 "protocol": cfg.get("protocol") or "TCP"}
        if truthy(cfg.get("nodePort")):
            entry["nodePort"] = cfg["nodePort"]
        if truthy(cfg.get("appProtocol")):
            entry["appProtocol"] = cfg["appProtocol"]
        out.append(entry)
        http3 = cfg.get("http3")
        if truthy(http3) and http3.get("enabled") and truthy(cfg.get("single")):
            udp: dict[str, Any] = {"port": http3.get("advertisedPort") or cfg.get("exposedPort"),
                                   "name": port_name(f"{name}-http3"),
                                   "targetPort": port_reference(cfg.get("targetPort") or name), "protocol": "UDP"}
            if truthy(cfg.get("nodePort")):
                udp["nodePort"] = cfg["nodePort"]
            if truthy(cfg.get("appProtocol")):
                udp["appProtocol"] = cfg["appProtocol"]
            out.append(udp)
    return out


def _spec(ctx: Ctx, service: dict[str, Any]) -> dict[str, Any]:
    kind = service.get("type") or "LoadBalancer"
    spec: dict[str, Any] = {"type": kind}
    if truthy(service.get("loadBalancerClass")):
        spec["loadBalancerClass"] = service["loadBalancerClass"]
    if truthy(service.get("spec")):
        spec.update(copy.deepcopy(service["spec"]))
    spec["selector"] = ctx.selector()
    if kind == "LoadBalancer" and truthy(service.get("loadBalancerSourceRanges")):
        spec["loadBalancerSourceRanges"] = service["loadBalancerSourceRanges"]
    if truthy(service.get("externalIPs")):
        spec["externalIPs"] = service["externalIPs"]
    if truthy(service.get("ipFamilyPolicy")):
        spec["ipFamilyPolicy"] = service["ipFamilyPolicy"]
    if truthy(service.get("ipFamilies")):
        spec["ipFamilies"] = service["ipFamilies"]
    return spec


def _object(ctx: Ctx, name: str, service: dict[str, Any], annotations: dict[str, Any],
            ports: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ctx.namespace, "labels": ctx.labels(service.get("labels"))}
    if annotations:
        meta["annotations"] = annotations
    spec = _spec(ctx, service)
    spec["ports"] = ports
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def services(ctx: Ctx) -> list[dict[str, Any]]:
    main = {k: v for k, v in (ctx.v("service") or {}).items() if k != "additionalServices"}
    listing: dict[str, Any] = dict(ctx.v("service", "additionalServices") or {})
    listing["default"] = main
    out: list[dict[str, Any]] = []
    for name, service in sorted(listing.items()):
        service = service or {}
        if service.get("enabled") is False:
            continue
        full = _service_name(ctx, name)
        tcp: dict[str, Any] = {}
        udp: dict[str, Any] = {}
        exposed = False
        for port_key, cfg in (ctx.v("ports") or {}).items():
            if not truthy(cfg):
                continue
            http3 = cfg.get("http3")
            if truthy(http3) and http3.get("enabled"):
                if not (cfg.get("tls") or {}).get("enabled"):
                    raise RenderError(f"ports.{port_key}.http3.enabled", "ERROR: You cannot enable http3 without enabling tls")
                copy_cfg = copy.deepcopy(cfg)
                copy_cfg["protocol"] = "UDP"
                copy_cfg["exposedPort"] = http3.get("advertisedPort") or cfg.get("exposedPort")
                (tcp if service.get("single") else udp)[f"{port_key}-http3"] = copy_cfg
            if go_string(cfg.get("protocol")) == "UDP":
                udp[port_key] = cfg
            if go_string(cfg.get("protocol") or "TCP") == "TCP":
                tcp[port_key] = cfg
            if truthy((cfg.get("expose") or {}).get(name)):
                exposed = True
        if not exposed:
            raise RenderError("ports", f"ERROR: Cannot create Service {full} without ports")
        if tcp or service.get("single"):
            annotations = {**(service.get("annotations") or {}), **(service.get("annotationsTCP") or {})}
            ports = _service_ports(tcp, name)
            if service.get("single"):
                ports += _service_ports(udp, name)
            out.append(_object(ctx, full, service, annotations, ports))
        if udp and not service.get("single"):
            ports = _service_ports(udp, name)
            if ports:
                annotations = {**(service.get("annotations") or {}), **(service.get("annotationsUDP") or {})}
                out.append(_object(ctx, f"{full}-udp", service, annotations, ports))
    return out
