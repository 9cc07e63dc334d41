"""Per-kind defaulting and validation as kube-apiserver does them (spec 5/6; pure, no I/O).

:func:`set_defaults` mutates an object the way decoding plus the default admission plugins would
(Pods also get ``serviceAccountName``, ``priority``, the not-ready/unreachable tolerations and
``status.phase``/``qosClass``; Secrets fold ``stringData`` into ``data``). :func:`validate` returns
field causes worded exactly like upstream; the API core answers 422 ``Invalid`` with
:func:`format_invalid_message` when the list is non-empty. Allocation (ClusterIP, NodePort,
generateName suffixes, the service-account token volume) belongs to the API core.
"""

from __future__ import annotations

from collections.abc import Callable

from .causes import Cause, format_invalid_message
from .core import CORE_VALIDATORS, validate_core, validate_core_update
from .defaults import set_defaults
from .meta import CLUSTER_SCOPED, validate_meta, validate_meta_update
from .names import validate_name
from .networkpolicy import validate_network_policy
from .other import OTHER_VALIDATORS, validate_other, validate_other_update
from .pod import validate_pod_spec, validate_pod_update, validate_template
from .workloads import validate_workload, validate_workload_update

__all__ = ["Cause", "format_invalid_message", "set_defaults", "validate", "validate_name", "VALIDATORS"]

Validator = Callable[[str, dict, "dict | None"], list[Cause]]


def _pod(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    causes = validate_pod_spec(obj.get("spec") or {})
    return causes + (validate_pod_update(obj, old) if old is not None else [])


def _pod_template(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    return validate_template(obj.get("template"), "template", restart_always=False)


def _core(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    return validate_core(kind, obj) + (validate_core_update(kind, obj, old) if old is not None else [])


def _workload(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    return validate_workload(kind, obj) + (validate_workload_update(kind, obj, old) if old is not None else [])


def _other(kind: str, obj: dict, old: dict | None) -> list[Cause]:
    return validate_other(kind, obj) + (validate_other_update(kind, obj, old) if old is not None else [])


# (group, kind) -> validator of everything below metadata
VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): _pod,
    ("", "PodTemplate"): _pod_template,
    **{("", k): _core for k in CORE_VALIDATORS},
    **{("apps", k): _workload for k in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet")},
    ("batch", "Job"): _workload,
    ("networking.k8s.io", "Ingress"): _other,
    ("networking.k8s.io", "IngressClass"): _other,
    ("networking.k8s.io", "NetworkPolicy"): validate_network_policy,
    ("discovery.k8s.io", "EndpointSlice"): _other,
    ("coordination.k8s.io", "Lease"): _other,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _other,
    **{("rbac.authorization.k8s.io", k): _other for k in OTHER_VALIDATORS
       if k.startswith(("Role", "ClusterRole"))},
}


def validate(gvk: tuple[str, str, str], obj: dict, old: dict | None) -> list[Cause]:
    """All causes for ``obj`` (``old`` is None on create). Kinds without a validator (custom
    resources) get metadata checks only, with the namespace scope left to the API core."""
    group, _, kind = gvk
    validator = VALIDATORS.get((group, kind))
    namespaced = None if validator is None else kind not in CLUSTER_SCOPED
    causes = validate_meta(obj, kind, namespaced=namespaced)
    if old is not None:
        causes += validate_meta_update(obj, old)
    if validator is not None:
        causes += validator(kind, obj, old)
    return causes
