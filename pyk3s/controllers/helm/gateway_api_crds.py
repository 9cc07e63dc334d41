"""The Gateway API CRDs the traefik-crd chart 37.1.1+up37.1.0 ships (Gateway API v1.3.0, standard channel).

The chart's ``crds/gateway-standard-install.yaml`` defines GatewayClass, Gateway, HTTPRoute, GRPCRoute
and ReferenceGrant in ``gateway.networking.k8s.io``; the experimental kinds (TCPRoute, TLSRoute,
UDPRoute, BackendTLSPolicy) are not part of it. Each CRD keeps upstream's names, short names,
categories, scope, served and storage versions, status subresource and printer columns, so
``kubectl get gateways,httproutes`` prints what it prints on K3s. Spec and status stay open: the
ingress validates each object and reports what it refuses in the object's status conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BUNDLE_VERSION", "GATEWAY_API_KINDS", "GROUP", "gateway_api_crds"]

GROUP = "gateway.networking.k8s.io"
BUNDLE_VERSION = "v1.3.0"
_API_APPROVED = "https://github.com/kubernetes-sigs/gateway-api/pull/3328"

_AGE = {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"}
_HOSTNAMES = [{"jsonPath": ".spec.hostnames", "name": "Hostnames", "type": "string"}, _AGE]


@dataclass(frozen=True, slots=True)
class GatewayApiKind:
    kind: str
    plural: str
    cluster_scoped: bool
    short_names: tuple[str, ...]
    versions: tuple[str, ...]  # served versions, the storage version first
    status: bool
    spec_required: bool
    columns: tuple[dict[str, Any], ...]


GATEWAY_API_KINDS: tuple[GatewayApiKind, ...] = (
    GatewayApiKind("GatewayClass", "gatewayclasses", True, ("gc",), ("v1", "v1beta1"), True, True, (
        {"jsonPath": ".spec.controllerName", "name": "Controller", "type": "string"},
        {"jsonPath": '.status.conditions[?(@.type=="Accepted")].status', "name": "Accepted", "type": "string"},
        _AGE,
        {"jsonPath": ".spec.description", "name": "Description", "priority": 1, "type": "string"})),
    GatewayApiKind("Gateway", "gateways", False, ("gtw",), ("v1", "v1beta1"), True, True, (
        {"jsonPath": ".spec.gatewayClassName", "name": "Class", "type": "string"},
        {"jsonPath": ".status.addresses[*].value", "name": "Address", "type": "string"},
        {"jsonPath": '.status.conditions[?(@.type=="Programmed")].status', "name": "Programmed", "type": "string"},
        _AGE)),
    GatewayApiKind("GRPCRoute", "grpcroutes", False, (), ("v1",), True, False, tuple(_HOSTNAMES)),
    GatewayApiKind("HTTPRoute", "httproutes", False, (), ("v1", "v1beta1"), True, True, tuple(_HOSTNAMES)),
    GatewayApiKind("ReferenceGrant", "referencegrants", False, ("refgrant",), ("v1beta1",), False, False, (_AGE,)),
)

_OPEN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _crd(k: GatewayApiKind) -> dict[str, Any]:
    props: dict[str, Any] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                             "metadata": {"type": "object"}, "spec": _OPEN}
    if k.status:
        props["status"] = _OPEN
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if k.spec_required:
        schema["required"] = ["spec"]
    versions = []
    for i, name in enumerate(k.versions):
        version: dict[str, Any] = {
            "name": name, "served": True, "storage": i == 0,
            "additionalPrinterColumns": [dict(c) for c in k.columns],
            "schema": {"openAPIV3Schema": dict(schema)},
        }
        if k.status:
            version["subresources"] = {"status": {}}
        versions.append(version)
    names: dict[str, Any] = {"categories": ["gateway-api"], "kind": k.kind, "listKind": f"{k.kind}List",
                             "plural": k.plural, "singular": k.kind.lower()}
    if k.short_names:
        names["shortNames"] = list(k.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{k.plural}.{GROUP}", "annotations": {
            "api-approved.kubernetes.io": _API_APPROVED,
            "gateway.networking.k8s.io/bundle-version": BUNDLE_VERSION,
            "gateway.networking.k8s.io/channel": "standard"}},
        "spec": {"group": GROUP, "names": names, "scope": "Cluster" if k.cluster_scoped else "Namespaced",
                 "versions": versions},
    }


def gateway_api_crds() -> list[dict[str, Any]]:
    return [_crd(k) for k in GATEWAY_API_KINDS]
