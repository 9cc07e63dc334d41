"""CustomResourceDefinitions: served rows, status, and the cleanup of their objects (spec 1.11, 2.10).

A CRD create/update is accepted at once: ``status.acceptedNames`` mirrors ``spec.names`` (with the
defaults for singular and listKind), conditions ``NamesAccepted`` and ``Established`` are ``True``
and every served version becomes a row of the resource table before the write is answered. Other
API servers sharing the store pick the change up from their CRD watch. Deleting a CRD deletes its
custom resources first.
"""

from __future__ import annotations

from typing import Any

from pyk3s.api.resources import ResourceInfo, Subresource

__all__ = ["crd_rows", "crd_status", "validate_crd"]

_GPU = ("get", "patch", "update")


def _names(crd: dict[str, Any]) -> dict[str, Any]:
    names = dict((crd.get("spec") or {}).get("names") or {})
    kind = names.get("kind", "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", kind + "List")
    return names


def validate_crd(crd: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """Problems as (field, value, message); empty when acceptable."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    out: list[tuple[str, Any, str]] = []
    name = (crd.get("metadata") or {}).get("name", "")
    if not group:
        out.append(("spec.group", group, "should be a domain with at least one dot"))
    if not names.get("plural"):
        out.append(("spec.names.plural", "", "Required value"))
    if not names.get("kind"):
        out.append(("spec.names.kind", "", "Required value"))
    if names.get("plural") and group and name != f"{names['plural']}.{group}":
        out.append(("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        out.append(("spec.scope", spec.get("scope"), 'supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        out.append(("spec.versions", versions, "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        out.append(("spec.versions", [v.get("name") for v in versions],
                    "must have exactly one version marked as storage version"))
    return out


def crd_status(crd: dict[str, Any], old: dict[str, Any] | None, now: str) -> dict[str, Any]:
    old_status = (old or {}).get("status") or {}
    old_conds = {c.get("type"): c for c in old_status.get("conditions") or []}

    def cond(ctype: str, reason: str, message: str) -> dict[str, Any]:
        prev = old_conds.get(ctype)
        when = prev["lastTransitionTime"] if prev and prev.get("status") == "True" and prev.get("lastTransitionTime") else now
        return {"type": ctype, "status": "True", "reason": reason, "message": message, "lastTransitionTime": when}

    spec = crd.get("spec") or {}
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    stored = list(old_status.get("storedVersions") or [])
    for v in storage:
        if v not in stored:
            stored.append(v)
    return {
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": _names(crd),
        "storedVersions": stored,
    }


def crd_rows(crd: dict[str, Any]) -> list[ResourceInfo]:
    spec = crd.get("spec") or {}
    names = _names(crd)
    group = spec.get("group", "")
    crd_name = (crd.get("metadata") or {}).get("name", "")
    if not names.get("plural") or not names.get("kind") or not group:
        return []
    versions = spec.get("versions") or []
    storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "")
    rows: list[ResourceInfo] = []
    for v in versions:
        if not v.get("served", True):
            continue
        subs_spec = v.get("subresources") or {}
        subs: list[Subresource] = []
        scale_paths = ("", "", "")
        if "status" in subs_spec:
            subs.append(Subresource("status", names["kind"], _GPU))
        if "scale" in subs_spec:
            sc = subs_spec.get("scale") or {}
            subs.append(Subresource("scale", "Scale", _GPU, "autoscaling", "v1"))
            scale_paths = (sc.get("specReplicasPath", ""), sc.get("statusReplicasPath", ""),
                           sc.get("labelSelectorPath", ""))
        rows.append(ResourceInfo(
            group=group,
            version=v["name"],
            kind=names["kind"],
            plural=names["plural"],
            singular=names["singular"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(subs),
            list_kind=names["listKind"],
            has_status="status" in subs_spec,
            has_scale="scale" in subs_spec,
            crd=crd_name,
            storage_version=storage,
            schema=((v.get("schema") or {}).get("openAPIV3Schema")),
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            scale_paths=scale_paths,
        ))
    return rows
