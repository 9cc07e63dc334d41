"""Defaulting per kind, as kube-apiserver fills objects (spec 6.3/6.8; team brief)."""

import copy

import pytest

from pyk3s.api.admission import set_defaults

CONTAINER_DEFAULTS = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                      "resources": {}}
SPEC_DEFAULTS = {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "securityContext": {}, "schedulerName": "default-scheduler"}


def defaulted(gvk, obj):
    obj = copy.deepcopy(obj)
    set_defaults(gvk, obj)
    again = copy.deepcopy(obj)
    set_defaults(gvk, again)
    assert again == obj, "defaulting must be idempotent"
    return obj


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
], ids=["no-tag", "latest", "tag", "registry-port-no-tag", "registry-port-tag", "digest"])
def test_image_pull_policy(image, policy):
    pod = defaulted(("", "v1", "Pod"), {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_pod_defaults():
    pod = defaulted(("", "v1", "Pod"), {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "x:1", "ports": [{"containerPort": 80}],
         "readinessProbe": {"httpGet": {"port": 80}},
         "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
         "resources": {"limits": {"cpu": "1"}}}],
        "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "empty"}]}})
    spec = pod["spec"]
    c = spec["containers"][0]
    assert {k: spec[k] for k in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert {k: c[k] for k in ("terminationMessagePath", "terminationMessagePolicy")} == {
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert c["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert spec["volumes"] == [{"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
                               {"name": "empty", "emptyDir": {}}]
    assert spec["enableServiceLinks"] is True
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    assert (spec["priority"], spec["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert pod["status"] == {"phase": "Pending", "qosClass": "Burstable"}


@pytest.mark.parametrize(("resources", "qos"), [
    ({}, "BestEffort"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"requests": {"cpu": "1"}}, "Burstable"),
], ids=["besteffort", "guaranteed-from-limits", "burstable"])
def test_pod_qos_class(resources, qos):
    pod = defaulted(("", "v1", "Pod"), {"spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}})
    assert pod["status"]["qosClass"] == qos


def test_host_network_copies_container_port_to_host_port():
    pod = defaulted(("", "v1", "Pod"), {"spec": {"hostNetwork": True,
                                                 "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 53}]}]}})
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 53


def template_obj(**spec):
    return {"spec": {**spec, "template": {"metadata": {"labels": {"a": "b"}},
                                          "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}


def test_deployment_defaults_and_template():
    d = defaulted(("apps", "v1", "Deployment"), template_obj())
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod_spec = spec["template"]["spec"]
    assert {k: pod_spec[k] for k in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert pod_spec["containers"][0] == {"name": "c", "image": "i:1", "imagePullPolicy": "IfNotPresent",
                                         **CONTAINER_DEFAULTS}
    # Pod-only admission defaults stay out of templates.
    assert "serviceAccountName" not in pod_spec and "enableServiceLinks" not in pod_spec


def test_deployment_recreate_gets_no_rolling_update():
    d = defaulted(("apps", "v1", "Deployment"), template_obj(strategy={"type": "Recreate"}))
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_and_daemonset_defaults():
    assert defaulted(("apps", "v1", "ReplicaSet"), template_obj())["spec"]["replicas"] == 1
    ds = defaulted(("apps", "v1", "DaemonSet"), template_obj())["spec"]
    assert ds["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["revisionHistoryLimit"] == 10


SERVICES = [
    ("clusterip", {"ports": [{"port": 80}]},
     {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}),
    ("nodeport", {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]},
     {"type": "NodePort", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}]}),
    ("loadbalancer", {"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP"}]},
     {"type": "LoadBalancer", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True,
      "ports": [{"port": 53, "protocol": "UDP", "targetPort": 53}]}),
    ("externalname", {"type": "ExternalName", "externalName": "example.com"},
     {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}),
    ("clientip-affinity", {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]},
     {"type": "ClusterIP", "sessionAffinity": "ClientIP", "internalTrafficPolicy": "Cluster",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
      "ports": [{"port": 1, "protocol": "TCP", "targetPort": 1}]}),
]


@pytest.mark.parametrize(("spec", "want"), [c[1:] for c in SERVICES], ids=[c[0] for c in SERVICES])
def test_service_defaults(spec, want):
    svc = defaulted(("", "v1", "Service"), {"spec": spec})
    assert svc["spec"] == want
    assert svc["status"] == {"loadBalancer": {}}


def test_namespace_defaults():
    ns = defaulted(("", "v1", "Namespace"), {"metadata": {"name": "team"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    finalized = defaulted(("", "v1", "Namespace"), {"metadata": {"name": "t", "deletionTimestamp": "x"},
                                                     "spec": {}, "status": {"phase": "Terminating"}})
    assert finalized["spec"] == {}


def test_secret_type_and_string_data():
    s = defaulted(("", "v1", "Secret"), {"stringData": {"user": "admin"}, "data": {"a": "eA=="}})
    assert s == {"type": "Opaque", "data": {"a": "eA==", "user": "YWRtaW4="}}


def test_endpoints_slices_nodes_crds_bindings():
    ep = defaulted(("", "v1", "Endpoints"), {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    es = defaulted(("discovery.k8s.io", "v1", "EndpointSlice"), {"ports": [{"port": 80}]})
    assert es["ports"] == [{"port": 80, "protocol": "TCP", "name": ""}]
    node = defaulted(("", "v1", "Node"), {"status": {"capacity": {"cpu": "2"}}})
    assert node["status"]["allocatable"] == {"cpu": "2"}
    crd = defaulted(("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
                    {"spec": {"names": {"kind": "Widget", "plural": "widgets"}}})
    assert crd["spec"]["names"] == {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    rb = defaulted(("rbac.authorization.k8s.io", "v1", "RoleBinding"),
                   {"subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]})
    assert [s.get("apiGroup") for s in rb["subjects"]] == ["rbac.authorization.k8s.io", ""]


def test_unknown_kind_untouched():
    obj = {"spec": {"a": 1}}
    assert defaulted(("ex.com", "v1", "Widget"), obj) == obj
