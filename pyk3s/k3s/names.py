"""Label, annotation and taint names that more than one package of pyk3s writes or reads.

Kubernetes' own names (kubernetes.io, k8s.io) are kept verbatim; K3s's node annotations
(``k3s.io/*``) follow k3s.md 6.5. A name only one module uses stays in that module.
"""

from __future__ import annotations

__all__ = [
    "CONTROL_PLANE_ROLE_LABEL",
    "ENDPOINTSLICE_CONTROLLER",
    "ENDPOINTSLICE_MANAGED_BY_LABEL",
    "EXTERNAL_IP_ANNOTATION",
    "HOSTNAME_ANNOTATION",
    "HOSTNAME_LABEL",
    "INTERNAL_IP_ANNOTATION",
    "LAST_APPLIED_ANNOTATION",
    "MASTER_ROLE_LABEL",
    "NODE_ROLE_PREFIX",
    "SERVICE_NAME_LABEL",
    "TAINT_NOT_READY",
    "TAINT_UNREACHABLE",
    "TAINT_UNSCHEDULABLE",
]

# EndpointSlices: which Service a slice belongs to, and who maintains it.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ENDPOINTSLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io"

# Nodes: roles (a server's node carries both, as on K3s), the hostname label, K3s's address annotations.
NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
CONTROL_PLANE_ROLE_LABEL = NODE_ROLE_PREFIX + "control-plane"
MASTER_ROLE_LABEL = NODE_ROLE_PREFIX + "master"
HOSTNAME_LABEL = "kubernetes.io/hostname"
INTERNAL_IP_ANNOTATION = "k3s.io/internal-ip"
EXTERNAL_IP_ANNOTATION = "k3s.io/external-ip"
HOSTNAME_ANNOTATION = "k3s.io/hostname"

# Taints the node lifecycle controller sets and pods tolerate by default.
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# kubectl apply's record of the last applied object.
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
