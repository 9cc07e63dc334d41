"""Helm releases as Helm 3 records them (pure): Secret ``sh.helm.release.v1.<name>.v<revision>``.

The Secret has type ``helm.sh/release.v1``, labels ``name``, ``owner=helm``, ``status`` and ``version``,
and one key ``release``: the release as JSON, gzipped and base64-encoded (the Secret's data encoding
adds a second base64, as with Helm). Tools that read Helm releases (``helm list``, ``helm get
manifest``) see the native install like any other. The manifest lists the objects in Helm's install
order, each after a ``# Source:`` line naming its template.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

from .chart import Manifest, PackagedChart

__all__ = ["INSTALL_ORDER", "decode_release", "install_sorted", "manifest_objects", "manifest_text",
           "release_secret", "secret_name"]

# Helm 3's releaseutil.InstallOrder; kinds not listed come after, by name.
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
    "IngressClass", "Ingress", "APIService",
)
_RANK = {kind: i for i, kind in enumerate(INSTALL_ORDER)}


def install_sorted(manifests: Iterable[Manifest]) -> list[Manifest]:
    def key(m: Manifest) -> tuple[int, str, str]:
        kind = str(m.obj.get("kind", ""))
        return _RANK.get(kind, len(INSTALL_ORDER)), kind if kind not in _RANK else "", m.ident[3]
    return sorted(manifests, key=key)


def secret_name(release: str, revision: int) -> str:
    return f"sh.helm.release.v1.{release}.v{revision}"


def manifest_text(manifests: Iterable[Manifest]) -> str:
    parts = []
    for m in install_sorted(manifests):
        body = yaml.safe_dump(m.obj, sort_keys=False, default_flow_style=False)
        parts.append(f"---\n# Source: {m.source}\n{body}")
    return "".join(parts)


def manifest_objects(text: str) -> list[dict[str, Any]]:
    """The objects of a release manifest (documents that are not objects are skipped)."""
    try:
        docs = list(yaml.safe_load_all(text or ""))
    except yaml.YAMLError:
        return []
    return [d for d in docs if isinstance(d, dict) and d.get("kind") and d.get("apiVersion")]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def release_secret(*, name: str, namespace: str, revision: int, status: str, chart: PackagedChart,
                   config: Mapping[str, Any], manifest: str, description: str, first_deployed: str = "",
                   notes: str = "") -> dict[str, Any]:
    now = _now()
    record = {
        "name": name,
        "info": {"first_deployed": first_deployed or now, "last_deployed": now, "deleted": "",
                 "description": description, "status": status, "notes": notes},
        "chart": {"metadata": chart.metadata(), "lock": None, "templates": [], "values": dict(chart.defaults),
                  "schema": None, "files": []},
        "config": dict(config),
        "manifest": manifest,
        "version": revision,
        "namespace": namespace,
    }
    packed = base64.b64encode(gzip.compress(json.dumps(record, separators=(",", ":")).encode(), mtime=0))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(name, revision), "namespace": namespace,
                     "labels": {"name": name, "owner": "helm", "status": status, "version": str(revision),
                                "modifiedAt": str(int(datetime.now(UTC).timestamp()))}},
        "type": "helm.sh/release.v1",
        "data": {"release": base64.b64encode(packed).decode()},
    }


def decode_release(secret: Mapping[str, Any]) -> dict[str, Any] | None:
    """The release stored in a release Secret, or None when it cannot be read."""
    raw = ((secret.get("data") or {}).get("release")) or ""
    try:
        packed = base64.b64decode(base64.b64decode(raw))
        if packed[:3] == b"\x1f\x8b\x08":
            packed = gzip.decompress(packed)
        record = json.loads(packed)
    except (ValueError, OSError):
        return None
    return record if isinstance(record, dict) else None
