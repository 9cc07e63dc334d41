"""Discovery documents (spec 1): aggregated ``apidiscovery.k8s.io/v2`` for ``/api`` and ``/apis`` when
the Accept header asks for it, the legacy ``APIVersions`` / ``APIGroupList`` / ``APIGroup`` /
``APIResourceList`` otherwise. Built from one :class:`ResourceTable` snapshot.
"""

from __future__ import annotations

from typing import Any

from pyk3s.api.query import parse_accept
from pyk3s.api.resources import ResourceInfo, ResourceTable

__all__ = [
    "AGGREGATED_CONTENT_TYPE",
    "aggregated",
    "aggregated_version",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
]

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"


def aggregated_version(accept: str) -> str | None:
    """``v2``/``v2beta1`` when the client accepts aggregated discovery before plain JSON."""
    for mt in parse_accept(accept):
        if mt.params.get("as") == "APIGroupDiscoveryList" and mt.params.get("g") == "apidiscovery.k8s.io":
            if mt.params.get("v") in ("v2", "v2beta1"):
                return mt.params["v"]
        elif mt.type in ("application/json", "*/*") and not mt.params:
            return None
    return None


def _scope(r: ResourceInfo) -> str:
    return "Namespaced" if r.namespaced else "Cluster"


def _agg_resource(r: ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": _scope(r),
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for s in r.subresources:
        subs.append({
            "subresource": s.name,
            "responseKind": {"group": s.group if s.group is not None else r.group,
                             "version": s.version or r.version, "kind": s.kind or r.kind},
            "verbs": list(s.verbs),
        })
    if subs:
        out["subresources"] = subs
    return out


def aggregated(table: ResourceTable, core: bool, version: str = "v2") -> dict[str, Any]:
    items = []
    for group, versions in table.groups.items():
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {"version": v, "freshness": "Current",
                 "resources": [_agg_resource(r) for r in sorted(table.in_group_version(group, v), key=lambda r: r.plural)]}
                for v in versions
            ],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def api_group(table: ResourceTable, group: str) -> dict[str, Any]:
    versions = table.groups[group]
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(table: ResourceTable) -> dict[str, Any]:
    groups = [api_group(table, g) for g in table.groups if g]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(table: ResourceTable, group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in sorted(table.in_group_version(group, version), key=lambda r: r.plural):
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for s in r.subresources:
            sub: dict[str, Any] = {"name": f"{r.plural}/{s.name}", "singularName": "", "namespaced": r.namespaced,
                                   "kind": s.kind or r.kind, "verbs": list(s.verbs)}
            if s.group is not None:
                sub["group"] = s.group
                sub["version"] = s.version
            resources.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
