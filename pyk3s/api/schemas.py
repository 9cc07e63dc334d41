"""Compact schemas of the built-in kinds: published as OpenAPI v3 component schemas (``kubectl
explain``) and used for ``fieldValidation`` (unknown fields).

``TYPES`` maps a short type name to (OpenAPI name, description, fields, open). Field types:
``string integer boolean number int-or-string quantity date-time any``, ``map`` (string to
string), ``map:T``, ``[T]`` and other type names. An ``open`` type also accepts fields not listed
(its list is not complete), so the unknown-field check only judges closed types.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KIND_TYPES", "TYPES", "TypeDef", "openapi_schemas"]

TypeDef = tuple[str, str, dict[str, str], bool]

_M = "io.k8s.apimachinery.pkg.apis.meta.v1."
_C = "io.k8s.api.core.v1."
_A = "io.k8s.api.apps.v1."
_N = "io.k8s.api.networking.v1."

_OBJ = {"apiVersion": "string", "kind": "string", "metadata": "ObjectMeta"}


def _t(full: str, desc: str, fields: dict[str, str], open_: bool = False) -> TypeDef:
    return (full, desc, fields, open_)


TYPES: dict[str, TypeDef] = {
    "ObjectMeta": _t(_M + "ObjectMeta", "ObjectMeta is metadata that all persisted resources must have.", {
        "name": "string", "generateName": "string", "namespace": "string", "selfLink": "string", "uid": "string",
        "resourceVersion": "string", "generation": "integer", "creationTimestamp": "date-time",
        "deletionTimestamp": "date-time", "deletionGracePeriodSeconds": "integer", "labels": "map",
        "annotations": "map", "ownerReferences": "[OwnerReference]", "finalizers": "[string]",
        "managedFields": "[ManagedFieldsEntry]"}),
    "OwnerReference": _t(_M + "OwnerReference", "OwnerReference contains enough information to let you identify an owning object.", {
        "apiVersion": "string", "kind": "string", "name": "string", "uid": "string", "controller": "boolean",
        "blockOwnerDeletion": "boolean"}),
    "ManagedFieldsEntry": _t(_M + "ManagedFieldsEntry", "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.", {
        "manager": "string", "operation": "string", "apiVersion": "string", "time": "date-time",
        "fieldsType": "string", "fieldsV1": "any", "subresource": "string"}),
    "LabelSelector": _t(_M + "LabelSelector", "A label selector is a label query over a set of resources.", {
        "matchLabels": "map", "matchExpressions": "[LabelSelectorRequirement]"}),
    "LabelSelectorRequirement": _t(_M + "LabelSelectorRequirement", "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.", {
        "key": "string", "operator": "string", "values": "[string]"}),
    # --- core/v1 -----------------------------------------------------------------------------------
    "Pod": _t(_C + "Pod", "Pod is a collection of containers that can run on a host.", {
        **_OBJ, "spec": "PodSpec", "status": "PodStatus"}),
    "PodSpec": _t(_C + "PodSpec", "PodSpec is a description of a pod.", {
        "volumes": "[Volume]", "initContainers": "[Container]", "containers": "[Container]",
        "ephemeralContainers": "[any]", "restartPolicy": "string", "terminationGracePeriodSeconds": "integer",
        "activeDeadlineSeconds": "integer", "dnsPolicy": "string", "nodeSelector": "map",
        "serviceAccountName": "string", "serviceAccount": "string", "automountServiceAccountToken": "boolean",
        "nodeName": "string", "hostNetwork": "boolean", "hostPID": "boolean", "hostIPC": "boolean",
        "shareProcessNamespace": "boolean", "securityContext": "any", "imagePullSecrets": "[LocalObjectReference]",
        "hostname": "string", "subdomain": "string", "affinity": "any", "schedulerName": "string",
        "tolerations": "[Toleration]", "hostAliases": "[any]", "priorityClassName": "string", "priority": "integer",
        "dnsConfig": "any", "readinessGates": "[any]", "runtimeClassName": "string", "enableServiceLinks": "boolean",
        "preemptionPolicy": "string", "overhead": "map:quantity", "topologySpreadConstraints": "[any]",
        "setHostnameAsFQDN": "boolean", "os": "any", "hostUsers": "boolean", "schedulingGates": "[any]",
        "resourceClaims": "[any]", "resources": "ResourceRequirements"}),
    "Container": _t(_C + "Container", "A single application container that you want to run within a pod.", {
        "name": "string", "image": "string", "command": "[string]", "args": "[string]", "workingDir": "string",
        "ports": "[ContainerPort]", "envFrom": "[any]", "env": "[EnvVar]", "resources": "ResourceRequirements",
        "resizePolicy": "[any]", "restartPolicy": "string", "volumeMounts": "[VolumeMount]",
        "volumeDevices": "[any]", "livenessProbe": "Probe", "readinessProbe": "Probe", "startupProbe": "Probe",
        "lifecycle": "any", "terminationMessagePath": "string", "terminationMessagePolicy": "string",
        "imagePullPolicy": "string", "securityContext": "any", "stdin": "boolean", "stdinOnce": "boolean",
        "tty": "boolean"}),
    "ContainerPort": _t(_C + "ContainerPort", "ContainerPort represents a network port in a single container.", {
        "name": "string", "hostPort": "integer", "containerPort": "integer", "protocol": "string", "hostIP": "string"}),
    "EnvVar": _t(_C + "EnvVar", "EnvVar represents an environment variable present in a Container.", {
        "name": "string", "value": "string", "valueFrom": "any"}),
    "ResourceRequirements": _t(_C + "ResourceRequirements", "ResourceRequirements describes the compute resource requirements.", {
        "limits": "map:quantity", "requests": "map:quantity", "claims": "[any]"}),
    "VolumeMount": _t(_C + "VolumeMount", "VolumeMount describes a mounting of a Volume within a container.", {
        "name": "string", "readOnly": "boolean", "recursiveReadOnly": "string", "mountPath": "string",
        "subPath": "string", "mountPropagation": "string", "subPathExpr": "string"}),
    "Volume": _t(_C + "Volume", "Volume represents a named volume in a pod that may be accessed by any container in the pod.", {
        "name": "string", "configMap": "any", "secret": "any", "emptyDir": "any", "hostPath": "any",
        "projected": "any", "downwardAPI": "any", "persistentVolumeClaim": "any"}, True),
    "Probe": _t(_C + "Probe", "Probe describes a health check to be performed against a container.", {
        "exec": "any", "httpGet": "any", "tcpSocket": "any", "grpc": "any", "initialDelaySeconds": "integer",
        "timeoutSeconds": "integer", "periodSeconds": "integer", "successThreshold": "integer",
        "failureThreshold": "integer", "terminationGracePeriodSeconds": "integer"}),
    "Toleration": _t(_C + "Toleration", "The pod this Toleration is attached to tolerates any taint that matches the triple <key,value,effect>.", {
        "key": "string", "operator": "string", "value": "string", "effect": "string", "tolerationSeconds": "integer"}),
    "LocalObjectReference": _t(_C + "LocalObjectReference", "LocalObjectReference contains enough information to let you locate the referenced object inside the same namespace.", {
        "name": "string"}),
    "PodStatus": _t(_C + "PodStatus", "PodStatus represents information about the status of a pod.", {
        "phase": "string", "conditions": "[any]", "message": "string", "reason": "string", "hostIP": "string",
        "hostIPs": "[any]", "podIP": "string", "podIPs": "[any]", "startTime": "date-time",
        "containerStatuses": "[any]", "initContainerStatuses": "[any]", "qosClass": "string"}, True),
    "PodTemplateSpec": _t(_C + "PodTemplateSpec", "PodTemplateSpec describes the data a pod should have when created from a template", {
        "metadata": "ObjectMeta", "spec": "PodSpec"}),
    "Service": _t(_C + "Service", "Service is a named abstraction of software service (for example, mysql) consisting of local port (for example 3306) that the proxy listens on, and the selector that determines which pods will answer requests sent through the proxy.", {
        **_OBJ, "spec": "ServiceSpec", "status": "any"}),
    "ServiceSpec": _t(_C + "ServiceSpec", "ServiceSpec describes the attributes that a user creates on a service.", {
        "ports": "[ServicePort]", "selector": "map", "clusterIP": "string", "clusterIPs": "[string]", "type": "string",
        "externalIPs": "[string]", "sessionAffinity": "string", "loadBalancerIP": "string",
        "loadBalancerSourceRanges": "[string]", "externalName": "string", "externalTrafficPolicy": "string",
        "healthCheckNodePort": "integer", "publishNotReadyAddresses": "boolean", "sessionAffinityConfig": "any",
        "ipFamilies": "[string]", "ipFamilyPolicy": "string", "allocateLoadBalancerNodePorts": "boolean",
        "loadBalancerClass": "string", "internalTrafficPolicy": "string", "trafficDistribution": "string"}),
    "ServicePort": _t(_C + "ServicePort", "ServicePort contains information on service's port.", {
        "name": "string", "protocol": "string", "appProtocol": "string", "port": "integer",
        "targetPort": "int-or-string", "nodePort": "integer"}),
    "ConfigMap": _t(_C + "ConfigMap", "ConfigMap holds configuration data for pods to consume.", {
        **_OBJ, "data": "map", "binaryData": "map", "immutable": "boolean"}),
    "Secret": _t(_C + "Secret", "Secret holds secret data of a certain type.", {
        **_OBJ, "data": "map", "stringData": "map", "type": "string", "immutable": "boolean"}),
    "Namespace": _t(_C + "Namespace", "Namespace provides a scope for Names.", {
        **_OBJ, "spec": "NamespaceSpec", "status": "any"}),
    "NamespaceSpec": _t(_C + "NamespaceSpec", "NamespaceSpec describes the attributes on a Namespace.", {
        "finalizers": "[string]"}),
    "Node": _t(_C + "Node", "Node is a worker node in Kubernetes.", {**_OBJ, "spec": "NodeSpec", "status": "any"}),
    "NodeSpec": _t(_C + "NodeSpec", "NodeSpec describes the attributes that a node is created with.", {
        "podCIDR": "string", "podCIDRs": "[string]", "providerID": "string", "unschedulable": "boolean",
        "taints": "[any]", "configSource": "any", "externalID": "string"}),
    "Endpoints": _t(_C + "Endpoints", "Endpoints is a collection of endpoints that implement the actual service.", {
        **_OBJ, "subsets": "[any]"}),
    "ServiceAccount": _t(_C + "ServiceAccount", "ServiceAccount binds together a name, a principal that can be authenticated and authorized, and a set of secrets.", {
        **_OBJ, "secrets": "[any]", "imagePullSecrets": "[LocalObjectReference]",
        "automountServiceAccountToken": "boolean"}),
    "Event": _t(_C + "Event", "Event is a report of an event somewhere in the cluster.", {
        **_OBJ, "involvedObject": "any", "reason": "string", "message": "string", "source": "any",
        "firstTimestamp": "date-time", "lastTimestamp": "date-time", "count": "integer", "type": "string",
        "eventTime": "any", "series": "any", "action": "string", "related": "any",
        "reportingComponent": "string", "reportingInstance": "string"}),
    # --- apps/v1 -----------------------------------------------------------------------------------
    "Deployment": _t(_A + "Deployment", "Deployment enables declarative updates for Pods and ReplicaSets.", {
        **_OBJ, "spec": "DeploymentSpec", "status": "any"}),
    "DeploymentSpec": _t(_A + "DeploymentSpec", "DeploymentSpec is the specification of the desired behavior of the Deployment.", {
        "replicas": "integer", "selector": "LabelSelector", "template": "PodTemplateSpec", "strategy": "any",
        "minReadySeconds": "integer", "revisionHistoryLimit": "integer", "paused": "boolean",
        "progressDeadlineSeconds": "integer"}),
    "ReplicaSet": _t(_A + "ReplicaSet", "ReplicaSet ensures that a specified number of pod replicas are running at any given time.", {
        **_OBJ, "spec": "ReplicaSetSpec", "status": "any"}),
    "ReplicaSetSpec": _t(_A + "ReplicaSetSpec", "ReplicaSetSpec is the specification of a ReplicaSet.", {
        "replicas": "integer", "minReadySeconds": "integer", "selector": "LabelSelector", "template": "PodTemplateSpec"}),
    "DaemonSet": _t(_A + "DaemonSet", "DaemonSet represents the configuration of a daemon set.", {
        **_OBJ, "spec": "DaemonSetSpec", "status": "any"}),
    "DaemonSetSpec": _t(_A + "DaemonSetSpec", "DaemonSetSpec is the specification of a daemon set.", {
        "selector": "LabelSelector", "template": "PodTemplateSpec", "updateStrategy": "any",
        "minReadySeconds": "integer", "revisionHistoryLimit": "integer"}),
    # --- others (top level closed, bodies open) ----------------------------------------------------
    "Ingress": _t("io.k8s.api.networking.v1.Ingress", "Ingress is a collection of rules that allow inbound connections to reach the endpoints defined by a backend.", {
        **_OBJ, "spec": "any", "status": "any"}),
    "IngressClass": _t("io.k8s.api.networking.v1.IngressClass", "IngressClass represents the class of the Ingress, referenced by the Ingress Spec.", {
        **_OBJ, "spec": "any"}),
    "NetworkPolicy": _t(_N + "NetworkPolicy", "NetworkPolicy describes what network traffic is allowed for a set of Pods", {
        **_OBJ, "spec": "NetworkPolicySpec"}),
    "NetworkPolicySpec": _t(_N + "NetworkPolicySpec", "NetworkPolicySpec provides the specification of a NetworkPolicy", {
        "podSelector": "LabelSelector", "ingress": "[NetworkPolicyIngressRule]", "egress": "[NetworkPolicyEgressRule]",
        "policyTypes": "[string]"}),
    "NetworkPolicyIngressRule": _t(_N + "NetworkPolicyIngressRule", "NetworkPolicyIngressRule describes a particular set of traffic that is allowed to the pods matched by a NetworkPolicySpec's podSelector. The traffic must match both ports and from.", {
        "ports": "[NetworkPolicyPort]", "from": "[NetworkPolicyPeer]"}),
    "NetworkPolicyEgressRule": _t(_N + "NetworkPolicyEgressRule", "NetworkPolicyEgressRule describes a particular set of traffic that is allowed out of pods matched by a NetworkPolicySpec's podSelector. The traffic must match both ports and to.", {
        "ports": "[NetworkPolicyPort]", "to": "[NetworkPolicyPeer]"}),
    "NetworkPolicyPort": _t(_N + "NetworkPolicyPort", "NetworkPolicyPort describes a port to allow traffic on", {
        "protocol": "string", "port": "int-or-string", "endPort": "integer"}),
    "NetworkPolicyPeer": _t(_N + "NetworkPolicyPeer", "NetworkPolicyPeer describes a peer to allow traffic to/from. Only certain combinations of fields are allowed", {
        "podSelector": "LabelSelector", "namespaceSelector": "LabelSelector", "ipBlock": "IPBlock"}),
    "IPBlock": _t(_N + "IPBlock", "IPBlock describes a particular CIDR (Ex. \"192.168.1.0/24\",\"2001:db8::/64\") that is allowed to the pods matched by a NetworkPolicySpec's podSelector. The except entry describes CIDRs that should not be included within this rule.", {
        "cidr": "string", "except": "[string]"}),
    "EndpointSlice": _t("io.k8s.api.discovery.v1.EndpointSlice", "EndpointSlice represents a subset of the endpoints that implement a service.", {
        **_OBJ, "addressType": "string", "endpoints": "[any]", "ports": "[any]"}),
    "Lease": _t("io.k8s.api.coordination.v1.Lease", "Lease defines a lease concept.", {**_OBJ, "spec": "any"}),
    "Role": _t("io.k8s.api.rbac.v1.Role", "Role is a namespaced, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding.", {
        **_OBJ, "rules": "[any]"}),
    "ClusterRole": _t("io.k8s.api.rbac.v1.ClusterRole", "ClusterRole is a cluster level, logical grouping of PolicyRules that can be referenced as a unit by a RoleBinding or ClusterRoleBinding.", {
        **_OBJ, "rules": "[any]", "aggregationRule": "any"}),
    "RoleBinding": _t("io.k8s.api.rbac.v1.RoleBinding", "RoleBinding references a role, but does not contain it.", {
        **_OBJ, "subjects": "[any]", "roleRef": "any"}),
    "ClusterRoleBinding": _t("io.k8s.api.rbac.v1.ClusterRoleBinding", "ClusterRoleBinding references a ClusterRole, but not contain it.", {
        **_OBJ, "subjects": "[any]", "roleRef": "any"}),
    "CustomResourceDefinition": _t("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
                                   "CustomResourceDefinition represents a resource that should be exposed on the API server.", {
        **_OBJ, "spec": "any", "status": "any"}),
    "PriorityClass": _t("io.k8s.api.scheduling.v1.PriorityClass", "PriorityClass defines mapping from a priority class name to the priority integer value.", {
        **_OBJ, "value": "integer", "globalDefault": "boolean", "description": "string", "preemptionPolicy": "string"}),
    "Addon": _t("io.cattle.k3s.v1.Addon", "Addon is a K3s manifest applied by the deploy controller.", {
        **_OBJ, "spec": "any", "status": "any"}),
    "Scale": _t("io.k8s.api.autoscaling.v1.Scale", "Scale represents a scaling request for a resource.", {
        **_OBJ, "spec": "any", "status": "any"}),
}

# (group, kind) -> type name of the top-level schema
KIND_TYPES: dict[tuple[str, str], str] = {
    ("", k): k for k in ("Pod", "Service", "ConfigMap", "Secret", "Namespace", "Node", "Endpoints",
                         "ServiceAccount", "Event")
}
KIND_TYPES.update({("apps", k): k for k in ("Deployment", "ReplicaSet", "DaemonSet")})
KIND_TYPES.update({
    ("networking.k8s.io", "Ingress"): "Ingress",
    ("networking.k8s.io", "IngressClass"): "IngressClass",
    ("networking.k8s.io", "NetworkPolicy"): "NetworkPolicy",
    ("discovery.k8s.io", "EndpointSlice"): "EndpointSlice",
    ("coordination.k8s.io", "Lease"): "Lease",
    ("rbac.authorization.k8s.io", "Role"): "Role",
    ("rbac.authorization.k8s.io", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("apiextensions.k8s.io", "CustomResourceDefinition"): "CustomResourceDefinition",
    ("scheduling.k8s.io", "PriorityClass"): "PriorityClass",
    ("k3s.cattle.io", "Addon"): "Addon",
    ("autoscaling", "Scale"): "Scale",
})

_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "format": "int64"},
    "boolean": {"type": "boolean"},
    "number": {"type": "number", "format": "double"},
    "int-or-string": {"x-kubernetes-int-or-string": True},
    "quantity": {"x-kubernetes-int-or-string": True},
    "date-time": {"type": "string", "format": "date-time"},
    "any": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": "#/components/schemas/" + TYPES[name][0]}


def field_schema(spec: str) -> dict[str, Any]:
    if spec in _SCALARS:
        return dict(_SCALARS[spec])
    if spec == "map":
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if spec.startswith("map:"):
        return {"type": "object", "additionalProperties": field_schema(spec[4:])}
    if spec.startswith("["):
        return {"type": "array", "items": field_schema(spec[1:-1])}
    return {"allOf": [_ref(spec)], "default": {}}


def _refs(spec: str) -> list[str]:
    spec = spec.strip("[]")
    if spec.startswith("map:"):
        spec = spec[4:]
    return [spec] if spec in TYPES else []


def openapi_schemas(roots: list[str], gvks: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Component schemas for ``roots`` and everything they reference; ``gvks`` adds the
    x-kubernetes-group-version-kind extension to top-level types."""
    out: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        full, desc, fields, open_ = TYPES[name]
        if full in out:
            continue
        schema: dict[str, Any] = {"description": desc, "type": "object",
                                  "properties": {f: field_schema(s) for f, s in fields.items()}}
        if open_:
            schema["x-kubernetes-preserve-unknown-fields"] = True
        if name in gvks:
            schema["x-kubernetes-group-version-kind"] = gvks[name]
        out[full] = schema
        for s in fields.values():
            todo.extend(_refs(s))
    return out
