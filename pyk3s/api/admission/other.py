"""Validation for networking (Ingress, IngressClass), discovery (EndpointSlice), coordination (Lease),
apiextensions (CustomResourceDefinition) and RBAC kinds."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from .causes import Cause, GoValue, duplicate, invalid, not_supported, required
from .names import (
    PORT_RANGE,
    PROTOCOLS,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    is_ip,
    port_name,
    valid_port,
)

__all__ = ["OTHER_VALIDATORS", "validate_other", "validate_other_update"]

_RBAC = "rbac.authorization.k8s.io"


def _host(host: str, path: str) -> list[Cause]:
    if is_ip(host):
        return [invalid(path, host, "must be a DNS name, not an IP address")]
    if host.startswith("*."):
        msgs = dns1123_subdomain(host[2:])
        return [invalid(path, host, "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                                    "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' "
                                    "and end with an alphanumeric character (e.g. '*.example.com', regex used for "
                                    r"validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
                ] if msgs else []
    return [invalid(path, host, m) for m in dns1123_subdomain(host)]


def _backend(backend: Any, path: str) -> list[Cause]:
    backend = backend or {}
    service, resource = backend.get("service"), backend.get("resource")
    if service and resource:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if resource:
        return [] if resource.get("kind") and resource.get("name") else [required(f"{path}.resource.name")]
    if not service:
        return [invalid(path, "", "resource or service backend is required")]
    causes: list[Cause] = []
    name = service.get("name") or ""
    if not name:
        causes.append(required(f"{path}.service.name"))
    else:
        causes += [invalid(f"{path}.service.name", name, m) for m in dns1035_label(name)]
    port = service.get("port") or {}
    if port.get("name") and port.get("number"):
        causes.append(invalid(path, "", "cannot set both port name & port number"))
    elif port.get("name"):
        causes += [invalid(f"{path}.service.port.name", port["name"], m) for m in port_name(port["name"])]
    elif port.get("number"):
        if not valid_port(port["number"]):
            causes.append(invalid(f"{path}.service.port.number", port["number"], PORT_RANGE))
    else:
        causes.append(required(path, "port name or number is required"))
    return causes


def _ingress(obj: dict) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        causes.append(invalid("spec", GoValue("[]networking.IngressRule(nil)"),
                              "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend"):
        causes += _backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        if rule.get("host"):
            causes += _host(rule["host"], f"{rp}.host")
        http = rule.get("http")
        if http is None:
            continue
        paths = http.get("paths") or []
        if not paths:
            causes.append(required(f"{rp}.http.paths"))
        for j, p in enumerate(paths):
            pp = f"{rp}.http.paths[{j}]"
            kind = p.get("pathType")
            if not kind:
                causes.append(required(f"{pp}.pathType", "pathType must be specified"))
            elif kind not in ("Exact", "ImplementationSpecific", "Prefix"):
                causes.append(not_supported(f"{pp}.pathType", kind, ["Exact", "ImplementationSpecific", "Prefix"]))
            elif kind in ("Exact", "Prefix") and not (p.get("path") or "").startswith("/"):
                causes.append(invalid(f"{pp}.path", p.get("path") or "", "must be an absolute path"))
            causes += _backend(p.get("backend"), f"{pp}.backend")
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            causes += _host(host, f"spec.tls[{i}].hosts[{j}]")
    cls = spec.get("ingressClassName")
    if cls:
        causes += [invalid("spec.ingressClassName", cls, m) for m in dns1123_subdomain(cls)]
    return causes


def _ingress_class(obj: dict) -> list[Cause]:
    controller = (obj.get("spec") or {}).get("controller") or ""
    if not controller:
        return [required("spec.controller")]
    host, sep, rest = controller.partition("/")
    if not sep:
        return [invalid("spec.controller", controller, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    causes = [invalid("spec.controller", host, m) for m in dns1123_subdomain(host)]
    if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
        causes.append(invalid("spec.controller", rest, "must be a valid path"))
    return causes


def _endpoint_slice(obj: dict) -> list[Cause]:
    causes: list[Cause] = []
    kind = obj.get("addressType") or ""
    if not kind:
        causes.append(required("addressType"))
    elif kind not in ("IPv4", "IPv6", "FQDN"):
        causes.append(not_supported("addressType", kind, ["FQDN", "IPv4", "IPv6"]))
    for i, ep in enumerate(obj.get("endpoints") or []):
        addresses = ep.get("addresses") or []
        if not addresses:
            causes.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
        for j, addr in enumerate(addresses):
            version = {"IPv4": 4, "IPv6": 6}.get(kind)
            if version and not (is_ip(addr) and ipaddress.ip_address(addr).version == version):
                causes.append(invalid(f"endpoints[{i}].addresses[{j}]", addr, f"must be a valid {kind} address"))
    names: set[str] = set()
    for i, port in enumerate(obj.get("ports") or []):
        name = port.get("name") or ""
        if name:
            causes += [invalid(f"ports[{i}].name", name, m) for m in dns1123_label(name)]
        if name in names:
            causes.append(duplicate(f"ports[{i}].name", name))
        names.add(name)
        if port.get("port") is not None and not valid_port(port["port"]):
            causes.append(invalid(f"ports[{i}].port", port["port"], PORT_RANGE))
        proto = port.get("protocol") or ""
        if proto and proto not in PROTOCOLS:
            causes.append(not_supported(f"ports[{i}].protocol", proto, PROTOCOLS))
    return causes


def _lease(obj: dict) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.append(invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return causes


def _crd(obj: dict) -> list[Cause]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    name = (obj.get("metadata") or {}).get("name") or ""
    causes: list[Cause] = []
    if name != f"{names.get('plural', '')}.{group}":
        causes.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        causes.append(required("spec.group"))
    else:
        causes += [invalid("spec.group", group, m) for m in dns1123_subdomain(group)]
        if "." not in group:
            causes.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if not scope:
        causes.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    for key in ("plural", "singular"):
        value = names.get(key) or ""
        if value:
            causes += [invalid(f"spec.names.{key}", value, m) for m in dns1035_label(value)]
        elif key == "plural":
            causes.append(required("spec.names.plural"))
    for key in ("kind", "listKind"):
        value = names.get(key) or ""
        if not value:
            causes.append(required(f"spec.names.{key}"))
        elif not re.fullmatch(r"[A-Za-z][-A-Za-z0-9]*", value):
            causes.append(invalid(f"spec.names.{key}", value, "may have mixed case, but should otherwise match: "
                                                              "[a-z]([-a-z0-9]*[a-z0-9])?"))
    versions = spec.get("versions") or []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        vname = version.get("name") or ""
        if not vname:
            causes.append(required(f"spec.versions[{i}].name"))
        else:
            causes += [invalid(f"spec.versions[{i}].name", vname, m) for m in dns1035_label(vname)]
        if vname in seen:
            causes.append(duplicate(f"spec.versions[{i}].name", vname))
        seen.add(vname)
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    if not versions:
        causes.append(invalid("spec.versions", GoValue("[]apiextensions.CustomResourceDefinitionVersion(nil)"),
                              "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(invalid("spec.versions", GoValue("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                              "must have exactly one version marked as storage version"))
    if versions and not any(v.get("served") for v in versions):
        causes.append(invalid("spec.versions", GoValue("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                              "must have at least one version marked as served"))
    return causes


def _rules(obj: dict, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(obj.get("rules") or []):
        p = f"rules[{i}]"
        if not rule.get("verbs"):
            causes.append(required(f"{p}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            value = GoValue("[]string{" + ", ".join(json.dumps(u) for u in urls) + "}")
            if namespaced:
                causes.append(invalid(f"{p}.nonResourceURLs", value, "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(invalid(f"{p}.nonResourceURLs", value,
                                      "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            causes.append(required(f"{p}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            causes.append(required(f"{p}.resources", "resource rules must supply at least one resource"))
    return causes


def _binding(obj: dict, namespaced: bool) -> list[Cause]:
    ref = obj.get("roleRef") or {}
    causes: list[Cause] = []
    if ref.get("apiGroup") != _RBAC:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [_RBAC]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    if not ref.get("name"):
        causes.append(required("roleRef.name"))
    for i, subject in enumerate(obj.get("subjects") or []):
        p = f"subjects[{i}]"
        name = subject.get("name") or ""
        if not name:
            causes.append(required(f"{p}.name"))
        kind = subject.get("kind")
        group = subject.get("apiGroup") or ""
        if kind == "ServiceAccount":
            causes += [invalid(f"{p}.name", name, m) for m in dns1123_subdomain(name)] if name else []
            if group:
                causes.append(not_supported(f"{p}.apiGroup", group, [""]))
            if not namespaced and not subject.get("namespace"):
                causes.append(required(f"{p}.namespace"))
        elif kind in ("User", "Group"):
            if group != _RBAC:
                causes.append(not_supported(f"{p}.apiGroup", group, [_RBAC]))
        else:
            causes.append(not_supported(f"{p}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    return causes


def _role_ref_repr(ref: dict) -> GoValue:
    return GoValue(f'rbac.RoleRef{{APIGroup:{json.dumps(ref.get("apiGroup", ""))}, '
                   f'Kind:{json.dumps(ref.get("kind", ""))}, Name:{json.dumps(ref.get("name", ""))}}}')


OTHER_VALIDATORS = {
    "Ingress": _ingress, "IngressClass": _ingress_class, "EndpointSlice": _endpoint_slice, "Lease": _lease,
    "CustomResourceDefinition": _crd, "Role": lambda o: _rules(o, True), "ClusterRole": lambda o: _rules(o, False),
    "RoleBinding": lambda o: _binding(o, True), "ClusterRoleBinding": lambda o: _binding(o, False),
}


def validate_other(kind: str, obj: dict) -> list[Cause]:
    return OTHER_VALIDATORS[kind](obj)


def validate_other_update(kind: str, obj: dict, old: dict) -> list[Cause]:
    causes: list[Cause] = []
    if kind in ("RoleBinding", "ClusterRoleBinding") and obj.get("roleRef") != old.get("roleRef"):
        causes.append(invalid("roleRef", _role_ref_repr(obj.get("roleRef") or {}), "cannot change roleRef"))
    if kind == "IngressClass":
        new_c, old_c = (obj.get("spec") or {}).get("controller"), (old.get("spec") or {}).get("controller")
        if new_c != old_c:
            causes.append(invalid("spec.controller", new_c or "", "field is immutable"))
    if kind == "EndpointSlice" and obj.get("addressType") != old.get("addressType"):
        causes.append(invalid("addressType", obj.get("addressType") or "", "field is immutable"))
    if kind == "CustomResourceDefinition":
        scope, old_scope = (obj.get("spec") or {}).get("scope"), (old.get("spec") or {}).get("scope")
        if scope != old_scope:
            causes.append(invalid("spec.scope", scope or "", "field is immutable"))
    return causes


