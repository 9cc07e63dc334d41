"""ObjectMeta validation (ValidateObjectMeta / ValidateObjectMetaUpdate in apimachinery)."""

from __future__ import annotations

from typing import Any

from .causes import Cause, forbidden, invalid, required, too_long
from .names import dns1123_label, label_value, qualified_name, validate_name

__all__ = ["CLUSTER_SCOPED", "TOTAL_ANNOTATION_SIZE", "validate_labels", "validate_meta", "validate_meta_update"]

TOTAL_ANNOTATION_SIZE = 256 * 1024

CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
    "IngressClass", "StorageClass", "PriorityClass", "APIService", "CertificateSigningRequest",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "RuntimeClass",
})


def validate_labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (labels or {}).items():
        causes += [invalid(field, key, m) for m in qualified_name(key)]
        causes += [invalid(field, value, m) for m in label_value(str(value))]
    return causes


def _annotations(annotations: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for key, value in (annotations or {}).items():
        causes += [invalid(field, key, m) for m in qualified_name(key.lower())]
        total += len(key) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE:
        causes.append(too_long(field, TOTAL_ANNOTATION_SIZE))
    return causes


def _owner_references(refs: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    controllers = 0
    for i, ref in enumerate(refs or []):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                detail = {"apiVersion": "version must not be empty", "kind": "kind must not be empty",
                          "name": "name must not be empty", "uid": "uid must not be empty"}[key]
                causes.append(invalid(f"{field}[{i}].{key}" if key != "apiVersion" else f"{field}.apiVersion",
                                      ref.get(key, ""), detail))
        controllers += bool(ref.get("controller"))
    if controllers > 1:
        causes.append(invalid(field, None, "Only one reference can have Controller set to true"))
    return causes


def validate_meta(obj: dict, kind: str, *, namespaced: bool | None, name_rule: str = "subdomain") -> list[Cause]:
    """``namespaced`` None means the scope is not known here (custom resources)."""
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name") or ""
    generate = meta.get("generateName") or ""
    if generate:
        causes += validate_name(kind, generate, name_rule, field="metadata.generateName", prefix=True)
    if not name:
        causes.append(required("metadata.name", "name or generateName is required"))
    else:
        causes += validate_name(kind, name, name_rule)
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            causes.append(required("metadata.namespace"))
        else:
            causes += [invalid("metadata.namespace", namespace, m) for m in dns1123_label(namespace)]
    elif namespaced is False and namespace:
        causes.append(forbidden("metadata.namespace", "not allowed on this type"))
    if isinstance(meta.get("generation"), int) and meta["generation"] < 0:
        causes.append(invalid("metadata.generation", meta["generation"], "must be greater than or equal to 0"))
    causes += validate_labels(meta.get("labels"), "metadata.labels")
    causes += _annotations(meta.get("annotations"), "metadata.annotations")
    causes += _owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    for fin in meta.get("finalizers") or []:
        errs = [invalid("metadata.finalizers", fin, m) for m in qualified_name(fin)]
        if not errs and "/" not in fin and fin not in ("kubernetes", "orphan", "foregroundDeletion"):
            errs.append(invalid("metadata.finalizers", fin,
                                "name is neither a standard finalizer name nor is it fully qualified"))
        causes += errs
    return causes


def validate_meta_update(obj: dict, old: dict) -> list[Cause]:
    meta, old_meta = obj.get("metadata") or {}, old.get("metadata") or {}
    causes: list[Cause] = []
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if old_meta.get(key) and meta.get(key) != old_meta.get(key):
            causes.append(invalid(f"metadata.{key}", meta.get(key) or "", "field is immutable"))
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
        if added:
            causes.append(forbidden("metadata.finalizers",
                                    f"no new finalizers can be added if the object is being deleted, found new "
                                    f"finalizers []string{{{', '.join(chr(34) + f + chr(34) for f in sorted(added))}}}"))
    return causes
