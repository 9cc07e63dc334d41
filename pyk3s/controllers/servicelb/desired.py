"""What ServiceLB wants to exist for a Service (pure): K3s's svclb DaemonSet, rule by rule.

Source of every rule: specs/k3s.md section 1.2 and 1.3. The DaemonSet lives in the ServiceLB
namespace, is named ``svclb-<name cut to 48, trailing '-' stripped>-<first 8 of uid>``, has one
container ``lb-<proto>-<port>`` per Service port with ``hostPort == port``, and the klipper-lb
environment (SRC_PORT, SRC_RANGES, DEST_PROTO, DEST_PORT, DEST_IPS).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import yaml

from pyk3s.controllers.common.settings import ServiceLBSettings
from pyk3s.k3s.names import CONTROL_PLANE_ROLE_LABEL

__all__ = [
    "ENABLELB",
    "LBPOOL",
    "NODESELECTOR",
    "SVCNAME",
    "SVCNAMESPACE",
    "ServiceError",
    "daemonset_name",
    "desired_daemonset",
    "source_ranges",
    "wants_load_balancer",
]

PREFIX = "svccontroller.k3s.cattle.io"
ENABLELB = f"{PREFIX}/enablelb"
LBPOOL = f"{PREFIX}/lbpool"
NODESELECTOR = f"{PREFIX}/nodeselector"
SVCNAME = f"{PREFIX}/svcname"
SVCNAMESPACE = f"{PREFIX}/svcnamespace"
PRIORITY_ANNOTATION = f"{PREFIX}/priorityclassname"
TOLERATIONS_ANNOTATION = f"{PREFIX}/tolerations"
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
SUPPORTED_PROTOCOLS = ("TCP", "UDP")


class ServiceError(Exception):
    """The Service cannot be served as asked; the message names the field."""


def wants_load_balancer(svc: dict[str, Any]) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def daemonset_name(svc: dict[str, Any]) -> str:
    meta = svc["metadata"]
    name = meta["name"]
    if len(name) > 48:
        name = name[:48].rstrip("-")
    return f"svclb-{name}-{meta['uid'][:8]}"


def source_ranges(svc: dict[str, Any]) -> str:
    spec = svc.get("spec") or {}
    raw: list[str] = list(spec.get("loadBalancerSourceRanges") or [])
    field = "spec.loadBalancerSourceRanges"
    if not raw:
        ann = ((svc.get("metadata") or {}).get("annotations") or {}).get(SOURCE_RANGES_ANNOTATION, "")
        raw = [x.strip() for x in ann.split(",") if x.strip()]
        field = f"metadata.annotations[{SOURCE_RANGES_ANNOTATION}]"
    nets: list[str] = []
    for r in raw:
        try:
            net = str(ipaddress.ip_network(r.strip(), strict=False))
        except ValueError:
            raise ServiceError(f'{field}: Invalid value: "{r}": not a CIDR') from None
        if net not in nets:
            nets.append(net)
    if not nets:
        nets = ["0.0.0.0/0"]
    value = ",".join(nets)
    if value == "0.0.0.0/0" and "IPv6" in (spec.get("ipFamilies") or []):
        value += ",::/0"
    return value


def parse_tolerations(svc: dict[str, Any]) -> list[dict[str, Any]]:
    raw = ((svc.get("metadata") or {}).get("annotations") or {}).get(TOLERATIONS_ANNOTATION)
    if raw is None:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        try:
            parsed = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ServiceError(f"failed to parse tolerations from annotation {TOLERATIONS_ANNOTATION}: {err}") from None
    if not isinstance(parsed, list):
        raise ServiceError(f"failed to parse tolerations from annotation {TOLERATIONS_ANNOTATION}: expected a list")
    out = []
    for i, t in enumerate(parsed):
        if not isinstance(t, dict):
            raise ServiceError(f"validation failed for toleration {i}: expected an object")
        t = dict(t)
        t["operator"] = t.get("operator") or "Equal"
        if not t.get("key") and t["operator"] != "Exists":
            raise ServiceError(f"validation failed for toleration {i}: toleration with empty key must have operator 'Exists'")
        if t["operator"] == "Exists" and t.get("value"):
            raise ServiceError(f"validation failed for toleration {i}: toleration with operator 'Exists' must have an empty value")
        out.append(t)
    return out


def check_ports(svc: dict[str, Any]) -> list[dict[str, Any]]:
    ports = list((svc.get("spec") or {}).get("ports") or [])
    for i, p in enumerate(ports):
        port = p.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ServiceError(f"spec.ports[{i}].port: Invalid value: {port!r}: must be between 1 and 65535, inclusive")
        proto = (p.get("protocol") or "TCP").upper()
        if proto not in SUPPORTED_PROTOCOLS:
            raise ServiceError(
                f'spec.ports[{i}].protocol: Unsupported value: "{proto}": ServiceLB serves only "TCP" and "UDP"'
            )
    return ports


def allow_list_mode(nodes: Iterable[dict[str, Any]]) -> bool:
    """On iff any node carries the enablelb label key, whatever its value (K3s 1.3.1)."""
    return any(ENABLELB in ((n.get("metadata") or {}).get("labels") or {}) for n in nodes)


def node_selector(svc: dict[str, Any], allow_list: bool) -> dict[str, str]:
    if not allow_list:
        return {}
    sel = {ENABLELB: "true"}
    pool = ((svc.get("metadata") or {}).get("labels") or {}).get(LBPOOL)
    if pool:
        sel[LBPOOL] = pool
    return sel


def desired_daemonset(
    svc: dict[str, Any], nodes: Iterable[dict[str, Any]], settings: ServiceLBSettings
) -> dict[str, Any]:
    """The svclb DaemonSet for a LoadBalancer Service. Raises ServiceError for a Service it cannot serve."""
    meta = svc["metadata"]
    spec = svc.get("spec") or {}
    name = daemonset_name(svc)
    ports = check_ports(svc)
    ranges = source_ranges(svc)
    tolerations = [
        {"key": CONTROL_PLANE_ROLE_LABEL, "operator": "Exists", "effect": "NoSchedule"},
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        *parse_tolerations(svc),
    ]
    local = spec.get("externalTrafficPolicy") == "Local"
    containers = []
    for p in ports:
        proto = (p.get("protocol") or "TCP").upper()
        cname = f"lb-{proto.lower()}-{p['port']}"
        env: list[dict[str, Any]] = [
            {"name": "SRC_PORT", "value": str(p["port"])},
            {"name": "SRC_RANGES", "value": ranges},
            {"name": "DEST_PROTO", "value": proto},
        ]
        if local:
            env.append({"name": "DEST_PORT", "value": str(p.get("nodePort") or "")})
            env.append({"name": "DEST_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}})
        else:
            env.append({"name": "DEST_PORT", "value": str(p["port"])})
            ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
            env.append({"name": "DEST_IPS", "value": ",".join(ips)})
        containers.append({
            "name": cname,
            "image": settings.image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": cname, "containerPort": p["port"], "hostPort": p["port"], "protocol": proto}],
            "env": env,
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        })
    ann = meta.get("annotations") or {}
    priority = ann[PRIORITY_ANNOTATION] if PRIORITY_ANNOTATION in ann else settings.default_priority_class
    sysctls = []
    for fam in spec.get("ipFamilies") or ["IPv4"]:
        sysctls.append(
            {"name": "net.ipv4.ip_forward", "value": "1"} if fam == "IPv4"
            else {"name": "net.ipv6.conf.all.forwarding", "value": "1"}
        )
    nodes = list(nodes)
    allow = allow_list_mode(nodes)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "svclb",
        "automountServiceAccountToken": False,
        "securityContext": {"sysctls": sysctls},
        "tolerations": tolerations,
        "containers": containers,
    }
    if priority:
        pod_spec["priorityClassName"] = priority
    selector = node_selector(svc, allow)
    if selector:
        pod_spec["nodeSelector"] = selector
    labels = {SVCNAME: meta["name"], SVCNAMESPACE: meta.get("namespace", "default")}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {NODESELECTOR: "true" if allow else "false", **labels},
        },
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": name, **labels}}, "spec": pod_spec},
        },
    }
