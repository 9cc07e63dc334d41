"""core/v1 validation for Service, ConfigMap, Secret, Namespace, Node, Endpoints, ServiceAccount and
Event (pkg/apis/core/validation)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .causes import Cause, GoValue, duplicate, forbidden, invalid, not_supported, required, too_long
from .meta import validate_labels
from .names import (
    PORT_RANGE,
    PROTOCOLS,
    config_map_key,
    dns1123_label,
    dns1123_subdomain,
    is_ip,
    port_name,
    valid_port,
)

__all__ = ["validate_core", "validate_core_update", "CORE_VALIDATORS"]

MAX_SECRET_SIZE = 1024 * 1024
_IMMUTABLE_SET = "field is immutable when `immutable` is set"


def _target_port(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        return [invalid(path, value, m) for m in port_name(value)]
    if isinstance(value, int) and not valid_port(value):
        return [invalid(path, value, PORT_RANGE)]
    return []


def _service_port_repr(protocol: str, port: Any) -> GoValue:
    return GoValue(f'core.ServicePort{{Name:"", Protocol:{json.dumps(protocol)}, AppProtocol:(*string)(nil), '
                   f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')


def _service(obj: dict) -> list[Cause]:
    spec = obj.get("spec") or {}
    kind = spec.get("type") or ""
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    causes: list[Cause] = []
    if not ports and not headless and kind != "ExternalName":
        causes.append(required("spec.ports"))
    if kind == "LoadBalancer":
        for i, port in enumerate(ports):
            if port.get("port") == 10250:
                causes.append(invalid(f"spec.ports[{i}].port", 10250,
                                      "may not expose port 10250 externally since it is used by kubelet"))
        lb_ip = spec.get("loadBalancerIP") or ""
        if lb_ip and not is_ip(lb_ip):
            causes.append(invalid("spec.loadBalancerIP", lb_ip, "must be a valid IP address"))
    if kind in ("NodePort", "LoadBalancer") and headless:
        causes.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if spec.get("clusterIPs"):
            causes.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        cname = (spec.get("externalName") or "").removesuffix(".")
        if cname:
            causes += [invalid("spec.externalName", cname, m) for m in dns1123_subdomain(cname)]
        else:
            causes.append(required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            causes.append(required(f"{p}.name"))
        elif name:
            causes += [invalid(f"{p}.name", name, m) for m in dns1123_label(name)]
            if name in names:
                causes.append(duplicate(f"{p}.name", name))
            names.add(name)
        if not valid_port(port.get("port")):
            causes.append(invalid(f"{p}.port", port.get("port", 0), PORT_RANGE))
        proto = port.get("protocol") or ""
        if not proto:
            causes.append(required(f"{p}.protocol"))
        elif proto not in PROTOCOLS:
            causes.append(not_supported(f"{p}.protocol", proto, PROTOCOLS))
        causes += _target_port(port.get("targetPort"), f"{p}.targetPort")
        node_port = port.get("nodePort")
        if node_port and not valid_port(node_port):
            causes.append(invalid(f"{p}.nodePort", node_port, PORT_RANGE))
    if spec.get("selector") is not None:
        causes += validate_labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity") or ""
    if not affinity:
        causes.append(required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        causes.append(not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    if not kind:
        causes.append(required("spec.type"))
    elif kind not in ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort"):
        causes.append(not_supported("spec.type", kind, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                causes.append(forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    seen_node: set[tuple[str, Any]] = set()
    seen: set[tuple[str, Any]] = set()
    for i, port in enumerate(ports):
        proto = port.get("protocol") or ""
        if port.get("nodePort"):
            key = (proto, port["nodePort"])
            if key in seen_node:
                causes.append(duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
            seen_node.add(key)
        key = (proto, port.get("port"))
        if key in seen:
            causes.append(duplicate(f"spec.ports[{i}]", _service_port_repr(proto, port.get("port"))))
        seen.add(key)
    etp = spec.get("externalTrafficPolicy") or ""
    if kind in ("NodePort", "LoadBalancer"):
        if not etp:
            causes.append(required("spec.externalTrafficPolicy"))
        elif etp not in ("Cluster", "Local"):
            causes.append(not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    elif etp:
        causes.append(invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        causes.append(required("spec.internalTrafficPolicy"))
    elif itp is not None and itp not in ("Cluster", "Local"):
        causes.append(not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        if not is_ip(ip):
            causes.append(invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address"))
    return causes


def _cluster_ips(spec: dict) -> list[str]:
    ips = spec.get("clusterIPs") or []
    return list(ips) if ips else ([spec["clusterIP"]] if spec.get("clusterIP") else [])


def _service_update(obj: dict, old: dict) -> list[Cause]:
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    new_ips, old_ips = _cluster_ips(spec), _cluster_ips(old_spec)
    if not old_ips or (old_ips == ["None"] and new_ips == ["None"]):
        return []
    value = GoValue("[]string{" + ", ".join(json.dumps(ip) for ip in new_ips) + "}")
    if not new_ips:
        return [invalid("spec.clusterIPs[0]", value, "primary clusterIP can not be unset")]
    causes = []
    for i, ip in enumerate(old_ips[:len(new_ips)]):
        if ip != new_ips[i]:
            causes.append(invalid(f"spec.clusterIPs[{i}]", value, "may not change once set"))
    return causes


def _keys(obj: dict, bag: str, other: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in obj.get(bag) or {}:
        causes += [invalid(f"{bag}[{key}]", key, m) for m in config_map_key(key)]
        if key in (obj.get(other) or {}):
            causes.append(invalid(f"{bag}[{key}]", key, f"duplicate of key present in {other}"))
    return causes


def _config_map(obj: dict) -> list[Cause]:
    causes = _keys(obj, "data", "binaryData") + _keys(obj, "binaryData", "data")
    size = sum(len(str(v).encode()) for v in (obj.get("data") or {}).values())
    size += sum(len(_decode(v)) for v in (obj.get("binaryData") or {}).values())
    if size > MAX_SECRET_SIZE:
        causes.append(too_long("", MAX_SECRET_SIZE))
    return causes


def _decode(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return str(value).encode()


def _secret(obj: dict) -> list[Cause]:
    data = obj.get("data") or {}
    causes: list[Cause] = []
    for key in data:
        causes += [invalid(f"data[{key}]", key, m) for m in config_map_key(key)]
    kind = obj.get("type") or ""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            causes.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            causes.append(required("data[.dockerconfigjson]"))
    elif kind == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(required(f"data[{key}]"))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes.append(required("data[username]", "must have at least one of username or password"))
    elif kind == "kubernetes.io/ssh-auth":
        if "ssh-privatekey" not in data:
            causes.append(required("data[ssh-privatekey]"))
    if sum(len(_decode(v)) for v in data.values()) > MAX_SECRET_SIZE:
        causes.append(too_long("data", MAX_SECRET_SIZE))
    return causes


def _immutable_bags(obj: dict, old: dict, bags: tuple[str, ...]) -> list[Cause]:
    if not old.get("immutable"):
        return []
    causes: list[Cause] = []
    if not obj.get("immutable"):
        causes.append(forbidden("immutable", _IMMUTABLE_SET))
    for bag in bags:
        if (obj.get(bag) or {}) != (old.get(bag) or {}):
            causes.append(forbidden(bag, _IMMUTABLE_SET))
    return causes


def _secret_update(obj: dict, old: dict) -> list[Cause]:
    causes = []
    if (obj.get("type") or "") != (old.get("type") or ""):
        causes.append(invalid("type", obj.get("type") or "", "field is immutable"))
    return causes + _immutable_bags(obj, old, ("data",))


def _namespace(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    for i, fin in enumerate((obj.get("spec") or {}).get("finalizers") or []):
        if "/" not in fin and fin != "kubernetes":
            causes.append(invalid(f"spec.finalizers[{i}]", fin,
                                  "name is neither a standard finalizer name nor is it fully qualified"))
    return causes


def _node(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    spec = obj.get("spec") or {}
    for i, taint in enumerate(spec.get("taints") or []):
        if not taint.get("key"):
            causes.append(required(f"spec.taints[{i}].key"))
        effect = taint.get("effect") or ""
        if not effect:
            causes.append(required(f"spec.taints[{i}].effect"))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(not_supported(f"spec.taints[{i}].effect", effect,
                                        ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    return causes


def _endpoints(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    for i, subset in enumerate(obj.get("subsets") or []):
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(subset.get(key) or []):
                if not is_ip(addr.get("ip") or ""):
                    causes.append(invalid(f"subsets[{i}].{key}[{j}].ip", addr.get("ip") or "",
                                          "must be a valid IP address"))
        ports = subset.get("ports") or []
        for j, port in enumerate(ports):
            p = f"subsets[{i}].ports[{j}]"
            if len(ports) > 1 and not port.get("name"):
                causes.append(required(f"{p}.name"))
            if not valid_port(port.get("port")):
                causes.append(invalid(f"{p}.port", port.get("port", 0), PORT_RANGE))
            proto = port.get("protocol") or ""
            if proto not in PROTOCOLS:
                causes.append(required(f"{p}.protocol") if not proto else not_supported(f"{p}.protocol", proto, PROTOCOLS))
    return causes


def _event(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    involved = obj.get("involvedObject") or {}
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    if involved.get("namespace") and ns and involved["namespace"] != ns:
        causes.append(invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace"))
    event_type = obj.get("type")
    if event_type and event_type not in ("Normal", "Warning"):
        causes.append(not_supported("type", event_type, ["Normal", "Warning"]))
    return causes


CORE_VALIDATORS = {"Service": _service, "ConfigMap": _config_map, "Secret": _secret, "Namespace": _namespace,
                   "Node": _node, "Endpoints": _endpoints, "Event": _event, "ServiceAccount": lambda o: []}
_UPDATE_VALIDATORS = {"Service": _service_update, "Secret": _secret_update,
                      "ConfigMap": lambda o, old: _immutable_bags(o, old, ("data", "binaryData"))}


def validate_core(kind: str, obj: dict) -> list[Cause]:
    return CORE_VALIDATORS[kind](obj)


def validate_core_update(kind: str, obj: dict, old: dict) -> list[Cause]:
    fn = _UPDATE_VALIDATORS.get(kind)
    return fn(obj, old) if fn else []
