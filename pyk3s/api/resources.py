"""The table of served resources (spec 1, 11.2-11.4).

``BUILTIN_RESOURCES`` lists the built-in kinds; CRDs add rows at run time through
:meth:`ResourceTable.with_crd_rows` / :meth:`ResourceTable.without_crd`. A table is immutable: the
server swaps in a new one (compile, then swap), so a request sees one consistent snapshot.

Storage keys are ``/registry/<group or "core">/<plural>/<namespace>/<name>`` (cluster scoped:
``/registry/<group>/<plural>/<name>``); all versions of a group/resource share the same keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "BUILTIN_RESOURCES",
    "CRUD_VERBS",
    "ResourceInfo",
    "ResourceTable",
    "Subresource",
    "version_priority",
]

CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_GPU = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # set when the subresource answers another group's kind (Scale, Eviction)
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = CRUD_VERBS
    subresources: tuple[Subresource, ...] = ()
    list_kind: str = ""
    has_status: bool = False
    has_scale: bool = False
    # Create-only resources answered by a registered handler (reviews); never stored.
    virtual: bool = False
    # CRD rows: the CRD's name, its schema, printer columns and scale paths.
    crd: str = ""
    storage_version: str = ""
    schema: dict[str, Any] | None = field(default=None, compare=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    scale_paths: tuple[str, str, str] = ("", "", "")  # spec replicas, status replicas, label selector

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.kind)

    @property
    def is_custom(self) -> bool:
        return bool(self.crd)

    @property
    def key_prefix(self) -> str:
        return f"/registry/{self.group or 'core'}/{self.plural}/"

    def list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.key_prefix}{namespace}/"
        return self.key_prefix

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix}{namespace}/{name}"
        return f"{self.key_prefix}{name}"

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    subs: tuple[Subresource, ...] = (),
    verbs: tuple[str, ...] = CRUD_VERBS,
) -> ResourceInfo:
    names = {s.name for s in subs}
    return ResourceInfo(
        group=group, version=version, kind=kind, plural=plural, singular=kind.lower(), namespaced=namespaced,
        short_names=short, categories=cats, verbs=verbs, subresources=subs, list_kind=kind + "List",
        has_status="status" in names, has_scale="scale" in names,
    )


def _virtual(group: str, version: str, kind: str, plural: str, namespaced: bool = False) -> ResourceInfo:
    return replace(_r(group, version, kind, plural, namespaced, verbs=("create",)), virtual=True)


_STATUS = Subresource("status", "", _GPU)
_SCALE = Subresource("scale", "Scale", _GPU, "autoscaling", "v1")


def _status(kind: str) -> Subresource:
    return replace(_STATUS, kind=kind)


BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    _r("", "v1", "Namespace", "namespaces", False, ("ns",),
       subs=(_status("Namespace"), Subresource("finalize", "Namespace", ("update",)))),
    _r("", "v1", "Node", "nodes", False, ("no",),
       subs=(_status("Node"), Subresource("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")))),
    _r("", "v1", "Pod", "pods", True, ("po",), ("all",), subs=(
        _status("Pod"),
        Subresource("log", "Pod", ("get",)),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
        Subresource("binding", "Binding", ("create",)),
        Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
    )),
    _r("", "v1", "Service", "services", True, ("svc",), ("all",), subs=(
        _status("Service"),
        Subresource("proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")),
    )),
    _r("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _r("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",),
       subs=(Subresource("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),)),
    _r("", "v1", "Event", "events", True, ("ev",)),
    _r("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",), subs=(_status("Deployment"), _SCALE)),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",), subs=(_status("ReplicaSet"), _SCALE)),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), subs=(_status("DaemonSet"),)),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), subs=(_status("Ingress"),)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
       ("crd", "crds"), subs=(_status("CustomResourceDefinition"),)),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    _r("k3s.cattle.io", "v1", "Addon", "addons", True),
    _virtual("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews"),
    _virtual("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews"),
    _virtual("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews"),
    _virtual("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True),
    _virtual("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews"),
    _virtual("authentication.k8s.io", "v1", "TokenReview", "tokenreviews"),
)

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in Kubernetes preference order: GA > beta > alpha, higher first,
    then non-Kubernetes-looking versions alphabetically."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


class ResourceTable:
    """An immutable snapshot of served resources with the lookups the server needs."""

    def __init__(self, rows: Iterable[ResourceInfo]) -> None:
        self.rows: tuple[ResourceInfo, ...] = tuple(rows)
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceInfo] = {}
        versions: dict[str, set[str]] = {}
        for r in self.rows:
            self._by_gvr[(r.group, r.version, r.plural)] = r
            self._by_gvk.setdefault((r.group, r.version, r.kind), r)
            versions.setdefault(r.group, set()).add(r.version)
        # group -> versions, preferred first
        self.groups: dict[str, tuple[str, ...]] = {
            g: tuple(sorted(vs, key=version_priority)) for g, vs in sorted(versions.items())
        }

    @classmethod
    def builtin(cls) -> ResourceTable:
        return cls(BUILTIN_RESOURCES)

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_gvk.get((group, version, kind))

    def by_api_version_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return [r for r in self.rows if r.group == group and r.version == version]

    def has_group_version(self, group: str, version: str) -> bool:
        return version in self.groups.get(group, ())

    def with_crd_rows(self, crd_name: str, rows: Iterable[ResourceInfo]) -> ResourceTable:
        return ResourceTable([r for r in self.rows if r.crd != crd_name] + list(rows))

    def without_crd(self, crd_name: str) -> ResourceTable:
        return ResourceTable([r for r in self.rows if r.crd != crd_name])

    def crd_rows(self, crd_name: str) -> list[ResourceInfo]:
        return [r for r in self.rows if r.crd == crd_name]
