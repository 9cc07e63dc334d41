"""The ``helm.cattle.io/v1`` kinds HelmChart and HelmChartConfig, with K3s's schema and printer columns.

As K3s's helm-controller (v0.16.17) defines them: every spec field it accepts, ``failurePolicy``
limited to ``abort``/``reinstall`` with ``reinstall`` as default, the status subresource on HelmChart,
and the columns ``kubectl get helmcharts`` prints (Repo, Chart, Version, TargetNamespace, Bootstrap,
Failed, and Job at wide output). The HelmChart status also has room for what pyk3s reports: the
release revision, the objects rendered and the values it does not act on.
"""

from __future__ import annotations

import logging
from typing import Any

from pyk3s.client import AlreadyExists, ApiError, Client

from ..deploy.objectset import contained

__all__ = ["CRDS", "HELMCHART_CRD", "HELMCHARTCONFIG_CRD", "ensure_crds"]

log = logging.getLogger("pyk3s.helm")

_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_OBJ: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_REF: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string", "default": ""}},
                        "x-kubernetes-map-type": "atomic"}
_FAILURE_POLICY: dict[str, Any] = {"type": "string", "enum": ["abort", "reinstall"], "default": "reinstall"}
_SECRETS: dict[str, Any] = {"type": "array", "items": {"type": "object", "properties": {
    "name": _STR, "keys": {"type": "array", "items": _STR}, "ignoreUpdates": _BOOL}}}

_CHART_SPEC: dict[str, Any] = {
    "authPassCredentials": _BOOL, "authSecret": _REF, "backOffLimit": {"type": "integer", "format": "int32"},
    "bootstrap": _BOOL, "chart": _STR, "chartContent": _STR, "createNamespace": _BOOL,
    "dockerRegistrySecret": _REF, "failurePolicy": _FAILURE_POLICY, "helmVersion": _STR,
    "insecureSkipTLSVerify": _BOOL, "jobImage": _STR, "plainHTTP": _BOOL, "podSecurityContext": _OBJ, "repo": _STR,
    "repoCA": _STR, "repoCAConfigMap": _REF, "securityContext": _OBJ,
    "set": {"type": "object", "additionalProperties": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                                                       "x-kubernetes-int-or-string": True}},
    "takeOwnership": _BOOL, "targetNamespace": _STR, "timeout": _STR, "valuesContent": _STR, "valuesSecrets": _SECRETS,
    "version": _STR,
}

_CHART_STATUS: dict[str, Any] = {
    "jobName": _STR,
    "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                   "items": {"type": "object", "required": ["status", "type"], "properties": {
                       "type": _STR, "status": _STR, "reason": _STR, "message": _STR}}},
    # pyk3s: what the native render did
    "release": _STR,
    "revision": {"type": "integer"},
    "chartVersion": _STR,
    "objects": {"type": "array", "items": _STR},
    "ignoredValues": {"type": "array", "items": {"type": "object", "properties": {"key": _STR, "reason": _STR}}},
}


def _crd(plural: str, kind: str, spec: dict[str, Any], status: dict[str, Any] | None,
         columns: list[dict[str, Any]] | None) -> dict[str, Any]:
    props: dict[str, Any] = {"apiVersion": _STR, "kind": _STR, "metadata": {"type": "object"},
                             "spec": {"type": "object", "properties": spec}}
    if status is not None:
        props["status"] = {"type": "object", "properties": status}
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": props}}}
    if columns:
        version["additionalPrinterColumns"] = columns
    if status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.helm.cattle.io"},
        "spec": {"group": "helm.cattle.io", "scope": "Namespaced", "versions": [version],
                 "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}},
    }


HELMCHART_CRD = _crd("helmcharts", "HelmChart", _CHART_SPEC, _CHART_STATUS, [
    {"jsonPath": ".spec.repo", "name": "Repo", "type": "string"},
    {"jsonPath": ".spec.chart", "name": "Chart", "type": "string"},
    {"jsonPath": ".spec.version", "name": "Version", "type": "string"},
    {"jsonPath": ".spec.targetNamespace", "name": "TargetNamespace", "type": "string"},
    {"jsonPath": ".spec.bootstrap", "name": "Bootstrap", "type": "boolean"},
    {"jsonPath": ".status.conditions[?(@.type=='Failed')].status", "name": "Failed", "type": "string"},
    {"jsonPath": ".status.jobName", "name": "Job", "priority": 10, "type": "string"},
])

HELMCHARTCONFIG_CRD = _crd("helmchartconfigs", "HelmChartConfig", {
    "failurePolicy": _FAILURE_POLICY, "valuesContent": _STR, "valuesSecrets": _SECRETS}, None, None)

CRDS = (HELMCHART_CRD, HELMCHARTCONFIG_CRD)


async def ensure_crds(client: Client) -> None:
    """Create the two CRDs, or bring an existing one to this definition (as helm-controller does at start)."""
    res = client.resource("apiextensions.k8s.io/v1", "customresourcedefinitions")
    for crd in CRDS:
        name = crd["metadata"]["name"]
        try:
            await res.create(crd, field_manager="helm-controller")
            log.info("helm: installed CustomResourceDefinition %s", name)
            continue
        except AlreadyExists:
            pass
        live = await res.get(name)
        if not contained(crd["spec"], live.get("spec")):
            body = {**crd, "metadata": {**crd["metadata"],
                                        "resourceVersion": live["metadata"].get("resourceVersion")}}
            try:
                await res.update(body, field_manager="helm-controller")
                log.info("helm: updated CustomResourceDefinition %s", name)
            except ApiError as err:
                log.warning("helm: updating CustomResourceDefinition %s failed: %s", name, err)
