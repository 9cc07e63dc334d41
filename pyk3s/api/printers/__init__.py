"""Per-kind Table printers: kubectl's usual columns as kube-apiserver's printers render them.

Each :class:`Printer` is a tuple of column definitions and a function from (object, now) to cells.
The server renders with ``Wide: true`` (every column; kubectl hides ``priority`` > 0 unless ``-o wide``).
:data:`PRINTERS` is the registry, keyed by (group, plural); the printers live by API group in
``pods``, ``network``, ``workloads`` and ``cluster``, what they share in ``base``.
"""

from __future__ import annotations

from .base import AGE, NAME, Column, Printer, age, human_duration, meta, since
from .cluster import (
    BINDING,
    CONFIGMAP,
    CREATED,
    EVENT,
    LEASE,
    NAMESPACE,
    NODE,
    PRIORITYCLASS,
    SECRET,
    SERVICEACCOUNT,
)
from .network import ENDPOINTS, ENDPOINTSLICE, INGRESS, INGRESSCLASS, NETWORKPOLICY, SERVICE
from .pods import POD
from .workloads import DAEMONSET, DEPLOYMENT, JOB, REPLICASET

__all__ = ["AGE", "GENERIC", "NAME", "PRINTERS", "Column", "Printer", "human_duration", "since"]

GENERIC = Printer((NAME, AGE), lambda o, now: [meta(o).get("name", ""), age(o, now)])

PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): POD,
    ("", "services"): SERVICE,
    ("", "endpoints"): ENDPOINTS,
    ("", "nodes"): NODE,
    ("", "namespaces"): NAMESPACE,
    ("", "configmaps"): CONFIGMAP,
    ("", "secrets"): SECRET,
    ("", "serviceaccounts"): SERVICEACCOUNT,
    ("", "events"): EVENT,
    ("events.k8s.io", "events"): EVENT,
    ("apps", "deployments"): DEPLOYMENT,
    ("apps", "replicasets"): REPLICASET,
    ("apps", "daemonsets"): DAEMONSET,
    ("batch", "jobs"): JOB,
    ("discovery.k8s.io", "endpointslices"): ENDPOINTSLICE,
    ("networking.k8s.io", "ingresses"): INGRESS,
    ("networking.k8s.io", "ingressclasses"): INGRESSCLASS,
    ("networking.k8s.io", "networkpolicies"): NETWORKPOLICY,
    ("coordination.k8s.io", "leases"): LEASE,
    ("apiextensions.k8s.io", "customresourcedefinitions"): CREATED,
    ("rbac.authorization.k8s.io", "roles"): CREATED,
    ("rbac.authorization.k8s.io", "clusterroles"): CREATED,
    ("rbac.authorization.k8s.io", "rolebindings"): BINDING,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): BINDING,
    ("scheduling.k8s.io", "priorityclasses"): PRIORITYCLASS,
}
