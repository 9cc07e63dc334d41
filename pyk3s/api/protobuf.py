"""Decoder for Kubernetes protobuf request bodies (spec 9).

client-go's typed clients send built-in kinds as ``application/vnd.kubernetes.protobuf``: the magic
``k8s\\x00`` then a ``runtime.Unknown`` {1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3:
contentEncoding, 4: contentType} whose ``raw`` is the object in the k8s.io/api ``generated.proto``
encoding. :func:`decode_body` returns the JSON object the JSON path would have received.

Rules that make the output match Go's JSON encoding of the same object:

* Scalars carrying ``omitempty`` in Go are dropped when zero/empty ("", 0, false). Pointer fields
  (``replicas``, ``automountServiceAccountToken``, ...) and fields without ``omitempty`` are marked
  keep (``k``): present on the wire means present in JSON, even when zero.
* Nested structs are emitted whenever they are on the wire (Go never omits a struct), so an empty
  ``resources`` or ``status`` becomes ``{}``, as kubectl's JSON would have it.
* ``Time`` → RFC 3339 (an empty Time is the zero time, i.e. ``null``: dropped); ``Quantity`` → its
  string; ``IntOrString`` → int or string (a zero value is dropped so defaulting applies); ``bytes``
  → base64; maps arrive as repeated {1: key, 2: value} entries.
* Fields without a table entry are skipped. Kinds without a table raise :class:`UnsupportedProtobuf`.

Field numbers are interface facts of the public generated.proto files (k8s.io/api v0.32,
k8s.io/apimachinery meta/v1 and runtime).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

__all__ = ["MAGIC", "KINDS", "MalformedProtobuf", "UnsupportedProtobuf", "decode_body", "decode_message"]

MAGIC = b"k8s\x00"


class UnsupportedProtobuf(Exception):
    """The body is protobuf of a kind (or shape) this server cannot decode: answer 415."""


class MalformedProtobuf(UnsupportedProtobuf):
    """The bytes are not valid protobuf wire format."""


# Field spec: number -> (json name, type, flags). Types: s string, b bytes (base64), i int, bool,
# time, q Quantity, ios IntOrString, json (FieldsV1 raw JSON), ms/mb/mq/mx maps of string/bytes/
# Quantity/ExtraValue, or a message name. Flags: r repeated, k keep zero values, in inline (merged).
Spec = dict[int, tuple[str, str, str]]

_LOR_INLINE: Spec = {1: ("localObjectReference", "LocalObjectReference", "in")}

MESSAGES: dict[str, Spec] = {
    # apimachinery meta/v1
    "ObjectMeta": {
        1: ("name", "s", ""), 2: ("generateName", "s", ""), 3: ("namespace", "s", ""), 4: ("selfLink", "s", ""),
        5: ("uid", "s", ""), 6: ("resourceVersion", "s", ""), 7: ("generation", "i", ""),
        8: ("creationTimestamp", "time", ""), 9: ("deletionTimestamp", "time", ""),
        10: ("deletionGracePeriodSeconds", "i", "k"), 11: ("labels", "ms", ""), 12: ("annotations", "ms", ""),
        13: ("ownerReferences", "OwnerReference", "r"), 14: ("finalizers", "s", "r"),
        17: ("managedFields", "ManagedFieldsEntry", "r"),
    },
    "OwnerReference": {
        5: ("apiVersion", "s", "k"), 1: ("kind", "s", "k"), 3: ("name", "s", "k"), 4: ("uid", "s", "k"),
        6: ("controller", "bool", "k"), 7: ("blockOwnerDeletion", "bool", "k"),
    },
    "ManagedFieldsEntry": {
        1: ("manager", "s", ""), 2: ("operation", "s", ""), 3: ("apiVersion", "s", ""), 4: ("time", "time", ""),
        6: ("fieldsType", "s", ""), 7: ("fieldsV1", "FieldsV1", ""), 8: ("subresource", "s", ""),
    },
    "FieldsV1": {1: ("Raw", "json", "")},
    "LabelSelector": {1: ("matchLabels", "ms", ""), 2: ("matchExpressions", "LabelSelectorRequirement", "r")},
    "LabelSelectorRequirement": {1: ("key", "s", "k"), 2: ("operator", "s", "k"), 3: ("values", "s", "r")},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "i", "k"), 2: ("preconditions", "Preconditions", ""),
        3: ("orphanDependents", "bool", "k"), 4: ("propagationPolicy", "s", "k"), 5: ("dryRun", "s", "r"),
    },
    "Preconditions": {1: ("uid", "s", "k"), 2: ("resourceVersion", "s", "k")},
    # core/v1
    "Namespace": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "NamespaceSpec", ""),
                  3: ("status", "NamespaceStatus", "")},
    "NamespaceSpec": {1: ("finalizers", "s", "r")},
    "NamespaceStatus": {1: ("phase", "s", "")},
    "ConfigMap": {1: ("metadata", "ObjectMeta", ""), 4: ("immutable", "bool", "k"), 2: ("data", "ms", ""),
                  3: ("binaryData", "mb", "")},
    "Secret": {1: ("metadata", "ObjectMeta", ""), 5: ("immutable", "bool", "k"), 2: ("data", "mb", ""),
               4: ("stringData", "ms", ""), 3: ("type", "s", "")},
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta", ""), 2: ("secrets", "ObjectReference", "r"),
        3: ("imagePullSecrets", "LocalObjectReference", "r"), 4: ("automountServiceAccountToken", "bool", "k"),
    },
    "ObjectReference": {
        1: ("kind", "s", ""), 2: ("namespace", "s", ""), 3: ("name", "s", ""), 4: ("uid", "s", ""),
        5: ("apiVersion", "s", ""), 6: ("resourceVersion", "s", ""), 7: ("fieldPath", "s", ""),
    },
    "LocalObjectReference": {1: ("name", "s", "")},
    "Service": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "ServiceSpec", ""), 3: ("status", "ServiceStatus", "")},
    "ServiceSpec": {
        1: ("ports", "ServicePort", "r"), 2: ("selector", "ms", ""), 3: ("clusterIP", "s", ""),
        18: ("clusterIPs", "s", "r"), 4: ("type", "s", ""), 5: ("externalIPs", "s", "r"),
        7: ("sessionAffinity", "s", ""), 8: ("loadBalancerIP", "s", ""), 9: ("loadBalancerSourceRanges", "s", "r"),
        10: ("externalName", "s", ""), 11: ("externalTrafficPolicy", "s", ""),
        12: ("healthCheckNodePort", "i", ""), 13: ("publishNotReadyAddresses", "bool", ""),
        14: ("sessionAffinityConfig", "SessionAffinityConfig", ""), 17: ("ipFamilies", "s", "r"),
        19: ("ipFamilyPolicy", "s", "k"), 20: ("allocateLoadBalancerNodePorts", "bool", "k"),
        21: ("loadBalancerClass", "s", "k"), 22: ("internalTrafficPolicy", "s", "k"),
        23: ("trafficDistribution", "s", "k"),
    },
    "SessionAffinityConfig": {1: ("clientIP", "ClientIPConfig", "")},
    "ClientIPConfig": {1: ("timeoutSeconds", "i", "k")},
    "ServicePort": {
        1: ("name", "s", ""), 2: ("protocol", "s", ""), 6: ("appProtocol", "s", "k"), 3: ("port", "i", "k"),
        4: ("targetPort", "ios", ""), 5: ("nodePort", "i", ""),
    },
    "ServiceStatus": {1: ("loadBalancer", "LoadBalancerStatus", "")},
    "LoadBalancerStatus": {1: ("ingress", "LoadBalancerIngress", "r")},
    "LoadBalancerIngress": {1: ("ip", "s", ""), 2: ("hostname", "s", "")},
    "ResourceQuota": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "ResourceQuotaSpec", ""),
                      3: ("status", "ResourceQuotaStatus", "")},
    "ResourceQuotaSpec": {1: ("hard", "mq", ""), 2: ("scopes", "s", "r")},
    "ResourceQuotaStatus": {1: ("hard", "mq", ""), 2: ("used", "mq", "")},
    "Pod": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "PodSpec", ""), 3: ("status", "PodStatus", "")},
    "PodStatus": {1: ("phase", "s", "")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "PodSpec", "")},
    "PodSpec": {
        1: ("volumes", "Volume", "r"), 20: ("initContainers", "Container", "r"), 2: ("containers", "Container", "r"),
        3: ("restartPolicy", "s", ""), 4: ("terminationGracePeriodSeconds", "i", "k"),
        5: ("activeDeadlineSeconds", "i", "k"), 6: ("dnsPolicy", "s", ""), 7: ("nodeSelector", "ms", ""),
        8: ("serviceAccountName", "s", ""), 9: ("serviceAccount", "s", ""),
        21: ("automountServiceAccountToken", "bool", "k"), 10: ("nodeName", "s", ""),
        11: ("hostNetwork", "bool", ""), 12: ("hostPID", "bool", ""), 13: ("hostIPC", "bool", ""),
        27: ("shareProcessNamespace", "bool", "k"), 15: ("imagePullSecrets", "LocalObjectReference", "r"),
        16: ("hostname", "s", ""), 17: ("subdomain", "s", ""), 19: ("schedulerName", "s", ""),
        22: ("tolerations", "Toleration", "r"), 23: ("hostAliases", "HostAlias", "r"),
        24: ("priorityClassName", "s", ""), 25: ("priority", "i", "k"),
        28: ("readinessGates", "PodReadinessGate", "r"), 29: ("runtimeClassName", "s", "k"),
        30: ("enableServiceLinks", "bool", "k"), 31: ("preemptionPolicy", "s", "k"), 32: ("overhead", "mq", ""),
        35: ("setHostnameAsFQDN", "bool", "k"), 36: ("os", "PodOS", ""), 37: ("hostUsers", "bool", "k"),
        38: ("schedulingGates", "PodSchedulingGate", "r"),
    },
    "PodReadinessGate": {1: ("conditionType", "s", "k")},
    "PodOS": {1: ("name", "s", "k")},
    "PodSchedulingGate": {1: ("name", "s", "k")},
    "Toleration": {1: ("key", "s", ""), 2: ("operator", "s", ""), 3: ("value", "s", ""), 4: ("effect", "s", ""),
                   5: ("tolerationSeconds", "i", "k")},
    "HostAlias": {1: ("ip", "s", "k"), 2: ("hostnames", "s", "r")},
    "Volume": {1: ("name", "s", "k"), 2: ("volumeSource", "VolumeSource", "in")},
    "VolumeSource": {
        1: ("hostPath", "HostPathVolumeSource", ""), 2: ("emptyDir", "EmptyDirVolumeSource", ""),
        6: ("secret", "SecretVolumeSource", ""), 10: ("persistentVolumeClaim", "PVCVolumeSource", ""),
        19: ("configMap", "ConfigMapVolumeSource", ""),
    },
    "HostPathVolumeSource": {1: ("path", "s", "k"), 2: ("type", "s", "k")},
    "EmptyDirVolumeSource": {1: ("medium", "s", ""), 2: ("sizeLimit", "q", "k")},
    "SecretVolumeSource": {1: ("secretName", "s", ""), 2: ("items", "KeyToPath", "r"),
                           3: ("defaultMode", "i", "k"), 4: ("optional", "bool", "k")},
    "ConfigMapVolumeSource": {**_LOR_INLINE, 2: ("items", "KeyToPath", "r"), 3: ("defaultMode", "i", "k"),
                              4: ("optional", "bool", "k")},
    "PVCVolumeSource": {1: ("claimName", "s", "k"), 2: ("readOnly", "bool", "")},
    "KeyToPath": {1: ("key", "s", "k"), 2: ("path", "s", "k"), 3: ("mode", "i", "k")},
    "Container": {
        1: ("name", "s", "k"), 2: ("image", "s", ""), 3: ("command", "s", "r"), 4: ("args", "s", "r"),
        5: ("workingDir", "s", ""), 6: ("ports", "ContainerPort", "r"), 19: ("envFrom", "EnvFromSource", "r"),
        7: ("env", "EnvVar", "r"), 8: ("resources", "ResourceRequirements", ""),
        23: ("resizePolicy", "ContainerResizePolicy", "r"), 24: ("restartPolicy", "s", "k"),
        9: ("volumeMounts", "VolumeMount", "r"), 10: ("livenessProbe", "Probe", ""),
        11: ("readinessProbe", "Probe", ""), 22: ("startupProbe", "Probe", ""),
        13: ("terminationMessagePath", "s", ""), 20: ("terminationMessagePolicy", "s", ""),
        14: ("imagePullPolicy", "s", ""), 15: ("securityContext", "SecurityContext", ""),
        16: ("stdin", "bool", ""), 17: ("stdinOnce", "bool", ""), 18: ("tty", "bool", ""),
    },
    "ContainerResizePolicy": {1: ("resourceName", "s", "k"), 2: ("restartPolicy", "s", "k")},
    "SecurityContext": {4: ("runAsUser", "i", "k"), 8: ("runAsGroup", "i", "k"), 5: ("runAsNonRoot", "bool", "k"),
                        6: ("readOnlyRootFilesystem", "bool", "k"), 2: ("privileged", "bool", "k"),
                        7: ("allowPrivilegeEscalation", "bool", "k")},
    "ContainerPort": {1: ("name", "s", ""), 2: ("hostPort", "i", ""), 3: ("containerPort", "i", "k"),
                      4: ("protocol", "s", ""), 5: ("hostIP", "s", "")},
    "EnvVar": {1: ("name", "s", "k"), 2: ("value", "s", ""), 3: ("valueFrom", "EnvVarSource", "")},
    "EnvVarSource": {1: ("fieldRef", "ObjectFieldSelector", ""), 2: ("resourceFieldRef", "ResourceFieldSelector", ""),
                     3: ("configMapKeyRef", "KeySelector", ""), 4: ("secretKeyRef", "KeySelector", "")},
    "ObjectFieldSelector": {1: ("apiVersion", "s", ""), 2: ("fieldPath", "s", "k")},
    "ResourceFieldSelector": {1: ("containerName", "s", ""), 2: ("resource", "s", "k"), 3: ("divisor", "q", "")},
    "KeySelector": {**_LOR_INLINE, 2: ("key", "s", "k"), 3: ("optional", "bool", "k")},
    "EnvFromSource": {1: ("prefix", "s", ""), 2: ("configMapRef", "RefSource", ""), 3: ("secretRef", "RefSource", "")},
    "RefSource": {**_LOR_INLINE, 2: ("optional", "bool", "k")},
    "ResourceRequirements": {1: ("limits", "mq", ""), 2: ("requests", "mq", ""),
                             3: ("claims", "ResourceClaim", "r")},
    "ResourceClaim": {1: ("name", "s", "k"), 2: ("request", "s", "")},
    "VolumeMount": {1: ("name", "s", "k"), 2: ("readOnly", "bool", ""), 7: ("recursiveReadOnly", "s", "k"),
                    3: ("mountPath", "s", "k"), 4: ("subPath", "s", ""), 5: ("mountPropagation", "s", "k"),
                    6: ("subPathExpr", "s", "")},
    "Probe": {1: ("handler", "ProbeHandler", "in"), 2: ("initialDelaySeconds", "i", ""),
              3: ("timeoutSeconds", "i", ""), 4: ("periodSeconds", "i", ""), 5: ("successThreshold", "i", ""),
              6: ("failureThreshold", "i", ""), 7: ("terminationGracePeriodSeconds", "i", "k")},
    "ProbeHandler": {1: ("exec", "ExecAction", ""), 2: ("httpGet", "HTTPGetAction", ""),
                     3: ("tcpSocket", "TCPSocketAction", ""), 4: ("grpc", "GRPCAction", "")},
    "ExecAction": {1: ("command", "s", "r")},
    "HTTPGetAction": {1: ("path", "s", ""), 2: ("port", "ios", "k"), 3: ("host", "s", ""), 4: ("scheme", "s", ""),
                      5: ("httpHeaders", "HTTPHeader", "r")},
    "HTTPHeader": {1: ("name", "s", "k"), 2: ("value", "s", "k")},
    "TCPSocketAction": {1: ("port", "ios", "k"), 2: ("host", "s", "")},
    "GRPCAction": {1: ("port", "i", "k"), 2: ("service", "s", "k")},
    # apps/v1
    "Deployment": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "DeploymentSpec", ""),
                   3: ("status", "DeploymentStatus", "")},
    "DeploymentSpec": {
        1: ("replicas", "i", "k"), 2: ("selector", "LabelSelector", ""), 3: ("template", "PodTemplateSpec", ""),
        4: ("strategy", "DeploymentStrategy", ""), 5: ("minReadySeconds", "i", ""),
        6: ("revisionHistoryLimit", "i", "k"), 7: ("paused", "bool", ""), 9: ("progressDeadlineSeconds", "i", "k"),
    },
    "DeploymentStrategy": {1: ("type", "s", ""), 2: ("rollingUpdate", "RollingUpdateDeployment", "")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "ios", "k"), 2: ("maxSurge", "ios", "k")},
    "DeploymentStatus": {1: ("observedGeneration", "i", ""), 2: ("replicas", "i", ""),
                         3: ("updatedReplicas", "i", ""), 7: ("readyReplicas", "i", ""),
                         4: ("availableReplicas", "i", ""), 5: ("unavailableReplicas", "i", ""),
                         8: ("collisionCount", "i", "k")},
    # batch/v1
    "Job": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "JobSpec", ""), 3: ("status", "JobStatus", "")},
    "JobSpec": {
        1: ("parallelism", "i", "k"), 2: ("completions", "i", "k"), 3: ("activeDeadlineSeconds", "i", "k"),
        7: ("backoffLimit", "i", "k"), 12: ("backoffLimitPerIndex", "i", "k"), 13: ("maxFailedIndexes", "i", "k"),
        4: ("selector", "LabelSelector", ""), 5: ("manualSelector", "bool", "k"), 6: ("template", "PodTemplateSpec", ""),
        8: ("ttlSecondsAfterFinished", "i", "k"), 9: ("completionMode", "s", "k"), 10: ("suspend", "bool", "k"),
        14: ("podReplacementPolicy", "s", "k"), 16: ("managedBy", "s", "k"),
    },
    "JobStatus": {},
    "CronJob": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "CronJobSpec", ""), 3: ("status", "CronJobStatus", "")},
    "CronJobSpec": {
        1: ("schedule", "s", "k"), 8: ("timeZone", "s", "k"), 2: ("startingDeadlineSeconds", "i", "k"),
        3: ("concurrencyPolicy", "s", ""), 4: ("suspend", "bool", "k"), 5: ("jobTemplate", "JobTemplateSpec", ""),
        6: ("successfulJobsHistoryLimit", "i", "k"), 7: ("failedJobsHistoryLimit", "i", "k"),
    },
    "CronJobStatus": {},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "JobSpec", "")},
    # rbac.authorization.k8s.io/v1
    "Role": {1: ("metadata", "ObjectMeta", ""), 2: ("rules", "PolicyRule", "r")},
    "ClusterRole": {1: ("metadata", "ObjectMeta", ""), 2: ("rules", "PolicyRule", "r"),
                    3: ("aggregationRule", "AggregationRule", "")},
    "AggregationRule": {1: ("clusterRoleSelectors", "LabelSelector", "r")},
    "PolicyRule": {1: ("verbs", "s", "r"), 2: ("apiGroups", "s", "r"), 3: ("resources", "s", "r"),
                   4: ("resourceNames", "s", "r"), 5: ("nonResourceURLs", "s", "r")},
    "RoleBinding": {1: ("metadata", "ObjectMeta", ""), 2: ("subjects", "Subject", "r"), 3: ("roleRef", "RoleRef", "")},
    "Subject": {1: ("kind", "s", "k"), 2: ("apiGroup", "s", ""), 3: ("name", "s", "k"), 4: ("namespace", "s", "")},
    "RoleRef": {1: ("apiGroup", "s", "k"), 2: ("kind", "s", "k"), 3: ("name", "s", "k")},
    # networking.k8s.io/v1
    "Ingress": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "IngressSpec", ""), 3: ("status", "IngressStatus", "")},
    "IngressSpec": {4: ("ingressClassName", "s", "k"), 1: ("defaultBackend", "IngressBackend", ""),
                    2: ("tls", "IngressTLS", "r"), 3: ("rules", "IngressRule", "r")},
    "IngressBackend": {4: ("service", "IngressServiceBackend", ""), 3: ("resource", "TypedLocalObjectReference", "")},
    "IngressServiceBackend": {1: ("name", "s", "k"), 2: ("port", "ServiceBackendPort", "")},
    "ServiceBackendPort": {1: ("name", "s", ""), 2: ("number", "i", "")},
    "TypedLocalObjectReference": {1: ("apiGroup", "s", "k"), 2: ("kind", "s", "k"), 3: ("name", "s", "k")},
    "IngressTLS": {1: ("hosts", "s", "r"), 2: ("secretName", "s", "")},
    "IngressRule": {1: ("host", "s", ""), 2: ("ingressRuleValue", "IngressRuleValue", "in")},
    "IngressRuleValue": {1: ("http", "HTTPIngressRuleValue", "")},
    "HTTPIngressRuleValue": {1: ("paths", "HTTPIngressPath", "r")},
    "HTTPIngressPath": {1: ("path", "s", ""), 3: ("pathType", "s", "k"), 2: ("backend", "IngressBackend", "")},
    "IngressStatus": {1: ("loadBalancer", "IngressLoadBalancerStatus", "")},
    "IngressLoadBalancerStatus": {1: ("ingress", "IngressLoadBalancerIngress", "r")},
    "IngressLoadBalancerIngress": {1: ("ip", "s", ""), 2: ("hostname", "s", "")},
    # scheduling.k8s.io/v1, policy/v1
    "PriorityClass": {1: ("metadata", "ObjectMeta", ""), 2: ("value", "i", "k"), 3: ("globalDefault", "bool", ""),
                      4: ("description", "s", ""), 5: ("preemptionPolicy", "s", "k")},
    "PodDisruptionBudget": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "PodDisruptionBudgetSpec", ""),
                            3: ("status", "PodDisruptionBudgetStatus", "")},
    "PodDisruptionBudgetSpec": {1: ("minAvailable", "ios", "k"), 2: ("selector", "LabelSelector", ""),
                                3: ("maxUnavailable", "ios", "k"), 4: ("unhealthyPodEvictionPolicy", "s", "k")},
    "PodDisruptionBudgetStatus": {},
    "Eviction": {1: ("metadata", "ObjectMeta", ""), 2: ("deleteOptions", "DeleteOptions", "")},
    # authorization.k8s.io/v1
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "SelfSubjectAccessReviewSpec", ""),
                                3: ("status", "SubjectAccessReviewStatus", "")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", ""),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", "")},
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "SubjectAccessReviewSpec", ""),
                            3: ("status", "SubjectAccessReviewStatus", "")},
    "LocalSubjectAccessReview": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "SubjectAccessReviewSpec", ""),
                                 3: ("status", "SubjectAccessReviewStatus", "")},
    "SubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", ""),
                                2: ("nonResourceAttributes", "NonResourceAttributes", ""), 3: ("user", "s", ""),
                                4: ("groups", "s", "r"), 5: ("extra", "mx", ""), 6: ("uid", "s", "")},
    "ResourceAttributes": {1: ("namespace", "s", ""), 2: ("verb", "s", ""), 3: ("group", "s", ""),
                           4: ("version", "s", ""), 5: ("resource", "s", ""), 6: ("subresource", "s", ""),
                           7: ("name", "s", "")},
    "NonResourceAttributes": {1: ("path", "s", ""), 2: ("verb", "s", "")},
    "SubjectAccessReviewStatus": {1: ("allowed", "bool", "k"), 4: ("denied", "bool", ""), 2: ("reason", "s", ""),
                                  3: ("evaluationError", "s", "")},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "SelfSubjectRulesReviewSpec", ""),
                               3: ("status", "SubjectRulesReviewStatus", "")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "s", "")},
    "SubjectRulesReviewStatus": {3: ("incomplete", "bool", "k"), 4: ("evaluationError", "s", "")},
    # authentication.k8s.io/v1
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta", ""), 2: ("status", "SelfSubjectReviewStatus", "")},
    "SelfSubjectReviewStatus": {1: ("userInfo", "UserInfo", "")},
    "UserInfo": {1: ("username", "s", ""), 2: ("uid", "s", ""), 3: ("groups", "s", "r"), 4: ("extra", "mx", "")},
    "TokenReview": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "TokenReviewSpec", ""),
                    3: ("status", "TokenReviewStatus", "")},
    "TokenReviewSpec": {1: ("token", "s", ""), 2: ("audiences", "s", "r")},
    "TokenReviewStatus": {1: ("authenticated", "bool", ""), 2: ("user", "UserInfo", ""), 4: ("audiences", "s", "r"),
                          3: ("error", "s", "")},
    "TokenRequest": {1: ("metadata", "ObjectMeta", ""), 2: ("spec", "TokenRequestSpec", ""),
                     3: ("status", "TokenRequestStatus", "")},
    "TokenRequestSpec": {1: ("audiences", "s", "r"), 4: ("expirationSeconds", "i", "k"),
                         3: ("boundObjectRef", "BoundObjectReference", "")},
    "BoundObjectReference": {1: ("kind", "s", ""), 2: ("apiVersion", "s", ""), 3: ("name", "s", ""),
                             4: ("uid", "s", "")},
    "TokenRequestStatus": {1: ("token", "s", "k"), 2: ("expirationTimestamp", "time", "")},
}

# (group, kind) of the top-level objects this decoder accepts -> message name.
KINDS: dict[tuple[str, str], str] = {
    **{("", k): k for k in ("Namespace", "ConfigMap", "Secret", "Service", "ServiceAccount", "Pod", "ResourceQuota")},
    **{("apps", "Deployment"): "Deployment", ("batch", "Job"): "Job", ("batch", "CronJob"): "CronJob"},
    **{("rbac.authorization.k8s.io", k): k for k in ("Role", "RoleBinding", "ClusterRole")},
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "RoleBinding",
    ("networking.k8s.io", "Ingress"): "Ingress",
    ("scheduling.k8s.io", "PriorityClass"): "PriorityClass",
    ("policy", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("policy", "Eviction"): "Eviction",
    **{("authorization.k8s.io", k): k for k in ("SelfSubjectAccessReview", "SelfSubjectRulesReview",
                                                "SubjectAccessReview", "LocalSubjectAccessReview")},
    **{("authentication.k8s.io", k): k for k in ("SelfSubjectReview", "TokenReview", "TokenRequest")},
}


# -- wire format ------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MalformedProtobuf("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MalformedProtobuf("protobuf: varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): int for varint/fixed, bytes for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise MalformedProtobuf("protobuf: field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise MalformedProtobuf("protobuf: truncated fixed64")
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise MalformedProtobuf(f"protobuf: field {number}: length {size} past the end")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            if pos + 4 > end:
                raise MalformedProtobuf("protobuf: truncated fixed32")
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise MalformedProtobuf(f"protobuf: field {number}: unsupported wire type {wire}")
        yield number, wire, value


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(v: Any, where: str) -> str:
    if not isinstance(v, bytes):
        raise MalformedProtobuf(f"protobuf: {where}: expected a length-delimited string")
    try:
        return v.decode()
    except UnicodeDecodeError as err:
        raise MalformedProtobuf(f"protobuf: {where}: invalid UTF-8") from err


def _int(v: Any, where: str) -> int:
    if not isinstance(v, int):
        raise MalformedProtobuf(f"protobuf: {where}: expected a varint")
    return _signed(v)


def _time(buf: bytes) -> str | None:
    seconds = 0
    for n, _w, v in iter_fields(buf):
        if n == 1:
            seconds = _signed(v)
    if seconds == 0:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(buf: bytes, where: str) -> str:
    for n, _w, v in iter_fields(buf):
        if n == 1:
            return _text(v, where)
    return "0"


def _int_or_string(buf: bytes) -> int | str:
    kind, ival, sval = 0, 0, ""
    for n, _w, v in iter_fields(buf):
        if n == 1:
            kind = _signed(v)
        elif n == 2:
            ival = _signed(v)
        elif n == 3:
            sval = _text(v, "IntOrString.strVal")
    return sval if kind == 1 else ival


def _map_entry(buf: bytes) -> tuple[str, Any]:
    key, value = "", b""
    for n, _w, v in iter_fields(buf):
        if n == 1:
            key = _text(v, "map key")
        elif n == 2:
            value = v
    return key, value


def _scalar(kind: str, v: Any, where: str) -> Any:
    if kind == "s":
        return _text(v, where)
    if kind == "b":
        return base64.b64encode(v).decode()
    if kind == "i":
        return _int(v, where)
    if kind == "bool":
        return bool(_int(v, where))
    if kind == "time":
        return _time(v)
    if kind == "q":
        return _quantity(v, where)
    if kind == "ios":
        return _int_or_string(v)
    if kind == "json":
        try:
            return json.loads(v)
        except ValueError as err:
            raise MalformedProtobuf(f"protobuf: {where}: invalid JSON") from err
    return decode_message(kind, v, where)


def _map_value(kind: str, raw: Any, where: str) -> Any:
    if kind == "ms":
        return _text(raw, where)
    if kind == "mb":
        return base64.b64encode(raw).decode()
    if kind == "mq":
        return _quantity(raw, where)
    return [_text(item, where) for n, _w, item in iter_fields(raw) if n == 1]  # mx: ExtraValue


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False


def decode_message(name: str, buf: bytes, where: str = "") -> dict:
    """Decode ``buf`` as message ``name`` of :data:`MESSAGES` into its JSON form."""
    spec = MESSAGES[name]
    where = f"{where}.{name}" if where else name
    out: dict[str, Any] = {}
    for number, _wire, value in iter_fields(buf):
        field = spec.get(number)
        if field is None:
            continue
        json_name, kind, flags = field
        here = f"{where}.{json_name}"
        if kind in ("ms", "mb", "mq", "mx"):
            key, raw = _map_entry(value)
            out.setdefault(json_name, {})[key] = _map_value(kind, raw, here)
        elif "r" in flags:
            out.setdefault(json_name, []).append(_scalar(kind, value, here))
        elif "in" in flags:
            out.setdefault(json_name, {}).update(_scalar(kind, value, here))
        else:
            out[json_name] = _scalar(kind, value, here)
    result: dict[str, Any] = {}
    for json_name, kind, flags in spec.values():
        if json_name not in out:
            continue
        value = out[json_name]
        if "in" in flags:
            result.update(value)
        elif kind in ("time", "ios") and (value is None or value in ("", 0)):
            continue
        elif "k" in flags or isinstance(value, (dict, list)) or not _empty(value):
            result[json_name] = value
    return result


def decode_body(body: bytes) -> dict:
    """A ``k8s\\x00``-prefixed protobuf body -> the object as JSON would have carried it."""
    if not body.startswith(MAGIC):
        raise MalformedProtobuf("protobuf: body does not start with the k8s\\x00 magic")
    api_version = kind = ""
    raw = b""
    encoding = ""
    for number, _wire, value in iter_fields(body[len(MAGIC):]):
        if number == 1:
            for n, _w, v in iter_fields(value):
                if n == 1:
                    api_version = _text(v, "Unknown.typeMeta.apiVersion")
                elif n == 2:
                    kind = _text(v, "Unknown.typeMeta.kind")
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value, "Unknown.contentEncoding")
    if encoding:
        raise UnsupportedProtobuf(f"protobuf: content encoding {encoding!r} is not supported")
    group = api_version.rpartition("/")[0]
    message = KINDS.get((group, kind))
    if message is None:
        raise UnsupportedProtobuf(
            f"protobuf: kind {kind!r} of {api_version!r} has no protobuf decoder in pyk3s; send it as JSON"
        )
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    obj.update(decode_message(message, raw))
    return obj
