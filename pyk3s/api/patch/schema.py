"""Merge metadata of the built-in kinds, shared by strategic merge patch and server-side apply.

One table describes each type twice, because the two mechanisms disagree (spec 5.7 vs 5.9):

* SMP reads ``smp_key`` / ``smp_merge`` (the Go ``patchMergeKey`` / ``patchStrategy`` tags). A list
  without ``smp_merge`` is replaced whole; ``smp_merge`` without a key merges a primitive list as a set.
* SSA reads ``list_type`` / ``keys`` (``+listType`` / ``+listMapKey``) and ``atomic`` (``+mapType`` or
  ``+structType=atomic``). Lists default to atomic.

``value`` marks non-pointer Go structs: they exist (as ``{}``) in every typed object, so the server
never reports them as added, which is why ``f:spec`` carries no ``.`` in upstream managedFields.
Fields the table does not know are untyped: maps merge, lists are atomic/replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANY", "FieldType", "KEY_DEFAULTS", "child_type", "elem_type", "gvk_of", "object_type", "root_type"]


@dataclass(frozen=True, slots=True)
class FieldType:
    kind: str = "any"  # "struct" | "map" | "list" | "any"
    struct: str = ""  # name in STRUCTS for kind "struct"
    elem: FieldType | None = None  # element type of a list or map
    list_type: str = "atomic"  # SSA: "atomic" | "map" | "set"
    keys: tuple[str, ...] = ()  # SSA list-map keys
    smp_key: str = ""
    smp_merge: bool = False
    atomic: bool = False  # SSA: the map/struct is replaced whole
    value: bool = False  # non-pointer struct


ANY = FieldType()


def S(name: str, *, value: bool = False, atomic: bool = False) -> FieldType:  # noqa: N802
    return FieldType(kind="struct", struct=name, value=value, atomic=atomic)


def M(*, atomic: bool = False) -> FieldType:  # noqa: N802
    return FieldType(kind="map", elem=ANY, atomic=atomic)


def L(  # noqa: N802
    elem: str = "", *, keys: tuple[str, ...] = (), smp_key: str = "", smp: bool = False, ssa: str = ""
) -> FieldType:
    list_type = ssa or ("map" if keys else "atomic")
    return FieldType(kind="list", elem=S(elem) if elem else ANY, list_type=list_type, keys=keys,
                     smp_key=smp_key, smp_merge=smp)


def _named(name: str) -> FieldType:
    return L(name, keys=("name",), smp_key="name", smp=True)


_CONTAINERS = FieldType(kind="list", elem=S("Container"), list_type="map", keys=("name",), smp_key="name",
                        smp_merge=True, value=True)  # json:"containers" has no omitempty


_CONDITIONS = L("", keys=("type",), smp_key="type", smp=True)
_TEMPLATE = S("PodTemplateSpec", value=True)
_SELECTOR = S("LabelSelector", atomic=True)

STRUCTS: dict[str, dict[str, FieldType]] = {
    "ObjectMeta": {
        "labels": M(), "annotations": M(),
        "finalizers": L(smp=True, ssa="set"),
        "ownerReferences": L("", keys=("uid",), smp_key="uid", smp=True),
        "managedFields": L(),
    },
    "LabelSelector": {"matchLabels": M(), "matchExpressions": L()},
    "PodTemplateSpec": {"metadata": S("ObjectMeta", value=True), "spec": S("PodSpec", value=True)},
    "PodSpec": {
        "containers": _CONTAINERS, "initContainers": _named("Container"),
        "ephemeralContainers": _named("Container"), "volumes": _named("Volume"),
        "imagePullSecrets": _named(""), "schedulingGates": _named(""), "resourceClaims": _named(""),
        "hostAliases": L("", keys=("ip",), smp_key="ip", smp=True),
        "topologySpreadConstraints": L("", keys=("topologyKey", "whenUnsatisfiable"),
                                       smp_key="topologyKey", smp=True),
        "tolerations": L(), "readinessGates": L(), "nodeSelector": M(atomic=True), "overhead": M(),
    },
    "Container": {
        "ports": L("", keys=("containerPort", "protocol"), smp_key="containerPort", smp=True),
        "env": _named(""),
        "volumeMounts": L("", keys=("mountPath",), smp_key="mountPath", smp=True),
        "volumeDevices": L("", keys=("devicePath",), smp_key="devicePath", smp=True),
        "resources": S("ResourceRequirements", value=True),
        "command": L(), "args": L(), "envFrom": L(),
    },
    "ResourceRequirements": {"limits": M(), "requests": M(), "claims": _named("")},
    "Volume": {},
    "PodStatus": {
        "conditions": _CONDITIONS,
        "podIPs": L("", keys=("ip",), smp_key="ip", smp=True),
        "hostIPs": L("", smp_key="ip", smp=True),
        "containerStatuses": L(), "initContainerStatuses": L(), "ephemeralContainerStatuses": L(),
    },
    "ServiceSpec": {
        "ports": L("", keys=("port", "protocol"), smp_key="port", smp=True),
        "selector": M(atomic=True), "clusterIPs": L(), "ipFamilies": L(), "externalIPs": L(),
        "loadBalancerSourceRanges": L(),
    },
    "ServiceStatus": {"conditions": _CONDITIONS, "loadBalancer": S("LoadBalancerStatus", value=True)},
    "LoadBalancerStatus": {"ingress": L()},
    "NodeSpec": {"podCIDRs": L(smp=True, ssa="set"), "taints": L()},
    "NodeStatus": {
        "conditions": _CONDITIONS, "addresses": L("", smp_key="type", smp=True),
        "capacity": M(), "allocatable": M(), "images": L(),
        "daemonEndpoints": S("NodeDaemonEndpoints", value=True), "nodeInfo": S("NodeSystemInfo", value=True),
    },
    "NodeDaemonEndpoints": {}, "NodeSystemInfo": {},
    "NamespaceSpec": {"finalizers": L()},
    "NamespaceStatus": {"conditions": _CONDITIONS},
    "DeploymentSpec": {"selector": _SELECTOR, "template": _TEMPLATE, "strategy": S("Strategy", value=True)},
    "ReplicaSetSpec": {"selector": _SELECTOR, "template": _TEMPLATE},
    "DaemonSetSpec": {"selector": _SELECTOR, "template": _TEMPLATE,
                      "updateStrategy": S("Strategy", value=True)},
    "StatefulSetSpec": {"selector": _SELECTOR, "template": _TEMPLATE, "volumeClaimTemplates": L(),
                        "updateStrategy": S("Strategy", value=True)},
    "JobSpec": {"selector": _SELECTOR, "template": _TEMPLATE},
    "JobStatus": {"conditions": L("", smp_key="type", smp=True)},
    "Strategy": {},
    "AppsStatus": {"conditions": _CONDITIONS},
    "ServiceAccount": {"secrets": _named(""), "imagePullSecrets": L()},
    "ConfigMap": {"data": M(), "binaryData": M()},
    "Secret": {"data": M(), "stringData": M()},
    "PodTemplate": {"template": _TEMPLATE},
}


def _kind(spec: str = "", status: str = "", extra: str = "") -> str:
    fields: dict[str, FieldType] = {"metadata": S("ObjectMeta", value=True)}
    if spec:
        fields["spec"] = S(spec, value=True)
    if status:
        fields["status"] = S(status, value=True)
    if extra:
        fields.update(STRUCTS[extra])
    name = f"__{spec or extra or 'Meta'}_{status}"
    STRUCTS[name] = fields
    return name


# (group, kind) -> root struct. Versions do not change merge metadata for the kinds we serve.
ROOTS: dict[tuple[str, str], str] = {
    ("", "Pod"): _kind("PodSpec", "PodStatus"),
    ("", "PodTemplate"): _kind(extra="PodTemplate"),
    ("", "Service"): _kind("ServiceSpec", "ServiceStatus"),
    ("", "Node"): _kind("NodeSpec", "NodeStatus"),
    ("", "Namespace"): _kind("NamespaceSpec", "NamespaceStatus"),
    ("", "ServiceAccount"): _kind(extra="ServiceAccount"),
    ("", "ConfigMap"): _kind(extra="ConfigMap"),
    ("", "Secret"): _kind(extra="Secret"),
    ("", "Endpoints"): _kind(),
    ("", "Event"): _kind(),
    ("apps", "Deployment"): _kind("DeploymentSpec", "AppsStatus"),
    ("apps", "ReplicaSet"): _kind("ReplicaSetSpec", "AppsStatus"),
    ("apps", "DaemonSet"): _kind("DaemonSetSpec", "AppsStatus"),
    ("apps", "StatefulSet"): _kind("StatefulSetSpec", "AppsStatus"),
    ("batch", "Job"): _kind("JobSpec", "JobStatus"),
}
for _group, _kind_name in [("networking.k8s.io", "Ingress"), ("networking.k8s.io", "IngressClass"),
                           ("networking.k8s.io", "NetworkPolicy"), ("discovery.k8s.io", "EndpointSlice"),
                           ("coordination.k8s.io", "Lease"), ("events.k8s.io", "Event"),
                           ("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "ClusterRole"),
                           ("rbac.authorization.k8s.io", "RoleBinding"),
                           ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
                           ("apiextensions.k8s.io", "CustomResourceDefinition"),
                           ("storage.k8s.io", "StorageClass"), ("scheduling.k8s.io", "PriorityClass")]:
    ROOTS[(_group, _kind_name)] = _kind()

# Defaults of list-map key fields, used when an applied element omits the key (SSA key defaults).
KEY_DEFAULTS: dict[str, object] = {"protocol": "TCP"}


def root_type(gvk: tuple[str, str, str] | None) -> FieldType | None:
    """The root type of a built-in kind, or None for kinds we hold no schema for (custom resources)."""
    if gvk is None:
        return None
    name = ROOTS.get((gvk[0], gvk[2]))
    return S(name, value=True) if name else None


def child_type(t: FieldType | None, field: str) -> FieldType:
    """Type of ``field`` inside a map/struct value of type ``t``."""
    if t is None or t.kind == "any":
        return ANY
    if t.kind == "map":
        return t.elem or ANY
    if t.kind == "struct":
        return STRUCTS.get(t.struct, {}).get(field, ANY)
    return ANY


def elem_type(t: FieldType | None) -> FieldType:
    return (t.elem if t is not None and t.elem is not None else ANY)


def object_type(gvk: tuple[str, str, str] | None) -> FieldType:
    """Like :func:`root_type`, but kinds without a schema get typed metadata and untyped content
    (maps merge, lists are atomic)."""
    return root_type(gvk) or S(ROOTS[("", "Endpoints")], value=True)


def gvk_of(obj: dict) -> tuple[str, str, str]:
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    return group, version, str(obj.get("kind", ""))
