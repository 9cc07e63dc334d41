"""Validation per kind with kube-apiserver's exact wording (spec 6.9/6.10)."""

import copy

import pytest

from pyk3s.api.admission import Cause, format_invalid_message, set_defaults, validate, validate_name

SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
             r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
         "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
              "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
               "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
               "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
PORT_RANGE = "must be between 1 and 65535, inclusive"

POD = ("", "v1", "Pod")
SVC = ("", "v1", "Service")
CM = ("", "v1", "ConfigMap")
SECRET = ("", "v1", "Secret")
DEPLOY = ("apps", "v1", "Deployment")
DS = ("apps", "v1", "DaemonSet")
RS = ("apps", "v1", "ReplicaSet")


def meta(name="x", ns="default"):
    return {"name": name, **({"namespace": ns} if ns else {})}


def pod_spec():
    return {"containers": [{"name": "web", "image": "nginx"}]}


def template():
    return {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}


BASE = {
    POD: {"apiVersion": "v1", "kind": "Pod", "metadata": meta(), "spec": pod_spec()},
    SVC: {"apiVersion": "v1", "kind": "Service", "metadata": meta(),
          "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
    CM: {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(), "data": {"a": "1"}},
    SECRET: {"apiVersion": "v1", "kind": "Secret", "metadata": meta(), "data": {"a": "MQ=="}},
    DEPLOY: {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(),
             "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}},
    DS: {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta(),
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}},
    RS: {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta(),
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}},
    ("", "v1", "Namespace"): {"apiVersion": "v1", "kind": "Namespace", "metadata": meta("team", None)},
    ("", "v1", "Node"): {"apiVersion": "v1", "kind": "Node", "metadata": meta("node-1", None)},
    ("", "v1", "ServiceAccount"): {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta()},
    ("", "v1", "Endpoints"): {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta(),
                              "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}]},
    ("", "v1", "Event"): {"apiVersion": "v1", "kind": "Event", "metadata": meta("x.1"), "type": "Normal",
                          "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"}},
    ("networking.k8s.io", "v1", "Ingress"): {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta(),
        "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
    ("networking.k8s.io", "v1", "IngressClass"): {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": meta("traefik", None),
        "spec": {"controller": "traefik.io/ingress-controller"}},
    ("discovery.k8s.io", "v1", "EndpointSlice"): {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("web-abc"),
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"]}], "ports": [{"port": 80, "name": "http"}]},
    ("coordination.k8s.io", "v1", "Lease"): {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                             "metadata": meta("node-1"), "spec": {"leaseDurationSeconds": 40}},
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": meta("widgets.example.com", None),
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object"}}}]}},
    ("rbac.authorization.k8s.io", "v1", "Role"): {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("reader"),
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta("b", None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]},
}


def build(gvk, change=None):
    obj = copy.deepcopy(BASE[gvk])
    if change:
        change(obj)
    set_defaults(gvk, obj)
    return obj


@pytest.mark.parametrize("gvk", list(BASE), ids=[g[2] for g in BASE])
def test_valid_objects_pass(gvk):
    assert validate(gvk, build(gvk), None) == []


def setp(path, value):
    def change(obj):
        node = obj
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
        if value is DELETE:
            node.pop(keys[-1], None)
        elif keys[-1].isdigit():
            node[int(keys[-1])] = value
        else:
            node[keys[-1]] = value
    return change


DELETE = object()

BAD = [
    ("meta-name-invalid", CM, setp("metadata.name", "Foo_Bar"),
     [f'metadata.name: Invalid value: "Foo_Bar": {SUBDOMAIN}']),
    ("meta-name-required", CM, setp("metadata.name", DELETE),
     ["metadata.name: Required value: name or generateName is required"]),
    ("meta-generate-name-ok", CM, lambda o: o["metadata"].update(name="", generateName="cfg-"),
     ["metadata.name: Required value: name or generateName is required"]),
    ("meta-namespace-required", CM, setp("metadata.namespace", DELETE), ["metadata.namespace: Required value"]),
    ("meta-namespace-forbidden-on-cluster-kind", ("", "v1", "Namespace"), setp("metadata.namespace", "x"),
     ["metadata.namespace: Forbidden: not allowed on this type"]),
    ("meta-label-value", CM, setp("metadata.labels", {"app": "a b"}),
     [f'metadata.labels: Invalid value: "a b": {LABEL_VALUE}']),
    ("meta-label-key-prefix", CM, setp("metadata.labels", {"Bad_Prefix/x": "y"}),
     [f'metadata.labels: Invalid value: "Bad_Prefix/x": prefix part {SUBDOMAIN}']),
    ("meta-annotations-too-long", CM, setp("metadata.annotations", {"a": "x" * (256 * 1024)}),
     ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
    ("meta-finalizer-unqualified", CM, setp("metadata.finalizers", ["custom"]),
     ['metadata.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified']),
    ("namespace-name-is-label", ("", "v1", "Namespace"), setp("metadata.name", "a.b"),
     [f'metadata.name: Invalid value: "a.b": {LABEL}']),
    ("service-name-is-dns1035", SVC, setp("metadata.name", "1web"),
     [f'metadata.name: Invalid value: "1web": {DNS1035}']),
    ("pod-image-required", POD, setp("spec.containers.0.image", DELETE), ["spec.containers[0].image: Required value"]),
    ("pod-container-name-invalid", POD, setp("spec.containers.0.name", "Web"),
     [f'spec.containers[0].name: Invalid value: "Web": {LABEL}']),
    ("pod-containers-required", POD, setp("spec.containers", []), ["spec.containers: Required value"]),
    ("pod-container-duplicate", POD, lambda o: o["spec"]["containers"].append({"name": "web", "image": "x"}),
     ['spec.containers[1].name: Duplicate value: "web"']),
    ("pod-port-range", POD, setp("spec.containers.0.ports", [{"containerPort": 70000}]),
     [f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {PORT_RANGE}"]),
    ("pod-port-protocol", POD, setp("spec.containers.0.ports", [{"containerPort": 80, "protocol": "HTTP"}]),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("pod-port-name", POD, setp("spec.containers.0.ports", [{"containerPort": 80, "name": "HTTP"}]),
     ['spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters '
      '(a-z, 0-9), and hyphens (-)', 'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain at '
      'least one letter (a-z)']),
    ("pod-restart-policy", POD, setp("spec.restartPolicy", "Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']),
    ("pod-dns-policy", POD, setp("spec.dnsPolicy", "Google"),
     ['spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
      '"Default", "None"']),
    ("pod-pull-policy", POD, setp("spec.containers.0.imagePullPolicy", "Sometimes"),
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"IfNotPresent", "Never"']),
    ("pod-volume-mount-unknown", POD, setp("spec.containers.0.volumeMounts", [{"name": "v", "mountPath": "/v"}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "v"']),
    ("pod-env-name-required", POD, setp("spec.containers.0.env", [{"value": "x"}]),
     ["spec.containers[0].env[0].name: Required value"]),
    ("svc-ports-required", SVC, setp("spec.ports", []), ["spec.ports: Required value"]),
    ("svc-port-name-required-when-many", SVC, setp("spec.ports", [{"port": 80}, {"port": 443, "name": "https"}]),
     ["spec.ports[0].name: Required value"]),
    ("svc-port-name-duplicate", SVC, setp("spec.ports", [{"port": 80, "name": "a"}, {"port": 443, "name": "a"}]),
     ['spec.ports[1].name: Duplicate value: "a"']),
    ("svc-duplicate-port", SVC, setp("spec.ports", [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
      'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}']),
    ("svc-port-range", SVC, setp("spec.ports", [{"port": 0}]),
     [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}",  # targetPort defaults to port, as upstream
      f"spec.ports[0].targetPort: Invalid value: 0: {PORT_RANGE}"]),
    ("svc-type", SVC, setp("spec.type", "Magic"),
     ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
      '"NodePort"']),
    ("svc-nodeport-on-clusterip", SVC, setp("spec.ports", [{"port": 80, "nodePort": 30080}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("svc-externalname-required", SVC, lambda o: o["spec"].update(type="ExternalName", ports=[]),
     ["spec.externalName: Required value"]),
    ("svc-etp-on-clusterip", SVC, setp("spec.externalTrafficPolicy", "Local"),
     ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services']),
    ("cm-bad-key", CM, setp("data", {"bad key": "x"}),
     [f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY}']),
    ("cm-dotdot-key", CM, setp("data", {"..x": "1"}),
     ["data[..x]: Invalid value: \"..x\": must not start with '..'"]),
    ("cm-key-in-both", CM, lambda o: o.update(binaryData={"a": "MQ=="}),
     ['data[a]: Invalid value: "a": duplicate of key present in binaryData',
      'binaryData[a]: Invalid value: "a": duplicate of key present in data']),
    ("secret-tls-keys", SECRET, setp("type", "kubernetes.io/tls"),
     ["data[tls.crt]: Required value", "data[tls.key]: Required value"]),
    ("deploy-selector-required", DEPLOY, setp("spec.selector", DELETE), ["spec.selector: Required value"]),
    ("deploy-selector-mismatch", DEPLOY, setp("spec.selector", {"matchLabels": {"app": "other"}}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match '
      'template `labels`']),
    ("deploy-empty-selector", DEPLOY, setp("spec.selector", {}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]),
    ("deploy-negative-replicas", DEPLOY, setp("spec.replicas", -1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("deploy-template-restart-policy", DEPLOY, setp("spec.template.spec.restartPolicy", "Never"),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    ("deploy-template-container", DEPLOY, setp("spec.template.spec.containers.0.image", ""),
     ["spec.template.spec.containers[0].image: Required value"]),
    ("deploy-recreate-with-rolling", DEPLOY, setp("spec.strategy", {"type": "Recreate", "rollingUpdate": {}}),
     ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]),
    ("deploy-both-zero", DEPLOY, setp("spec.strategy", {"type": "RollingUpdate",
                                                        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"]),
    ("ds-update-strategy", DS, setp("spec.updateStrategy", {"type": "Sometimes"}),
     ['spec.updateStrategy.type: Unsupported value: "Sometimes": supported values: "OnDelete", "RollingUpdate"']),
    ("rs-selector-required", RS, setp("spec.selector", DELETE), ["spec.selector: Required value"]),
    ("ingress-path-type", ("networking.k8s.io", "v1", "Ingress"),
     lambda o: o["spec"]["rules"][0]["http"]["paths"][0].pop("pathType"),
     ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]),
    ("ingress-relative-path", ("networking.k8s.io", "v1", "Ingress"),
     lambda o: o["spec"]["rules"][0]["http"]["paths"][0].update(path="api"),
     ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path']),
    ("ingress-host-ip", ("networking.k8s.io", "v1", "Ingress"), lambda o: o["spec"]["rules"][0].update(host="1.2.3.4"),
     ['spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address']),
    ("ingressclass-controller", ("networking.k8s.io", "v1", "IngressClass"), setp("spec.controller", "traefik"),
     ['spec.controller: Invalid value: "traefik": must be a domain-prefixed path (such as "acme.io/foo")']),
    ("endpointslice-address-type", ("discovery.k8s.io", "v1", "EndpointSlice"), setp("addressType", "IPv5"),
     ['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"']),
    ("lease-duration", ("coordination.k8s.io", "v1", "Lease"), setp("spec.leaseDurationSeconds", 0),
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("crd-name", ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"), setp("metadata.name", "widgets"),
     ['metadata.name: Invalid value: "widgets": must be spec.names.plural+"."+spec.group']),
    ("crd-scope", ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"), setp("spec.scope", "Global"),
     ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']),
    ("crd-two-storage", ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
     lambda o: o["spec"]["versions"].append({"name": "v2", "served": True, "storage": True,
                                             "schema": {"openAPIV3Schema": {"type": "object"}}}),
     ["spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one "
      "version marked as storage version"]),
    ("role-verbs", ("rbac.authorization.k8s.io", "v1", "Role"), setp("rules", [{"apiGroups": [""], "resources": ["x"]}]),
     ["rules[0].verbs: Required value: verbs must contain at least one value"]),
    ("binding-roleref-kind", ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), setp("roleRef.kind", "Role"),
     ['roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"']),
    ("endpoints-ip", ("", "v1", "Endpoints"), setp("subsets.0.addresses", [{"ip": "nope"}]),
     ['subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address']),
]


@pytest.mark.parametrize(("gvk", "change", "want"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_invalid_objects(gvk, change, want):
    assert [str(c) for c in validate(gvk, build(gvk, change), None)] == want


def updated(gvk, change):
    old = build(gvk)
    new = copy.deepcopy(old)
    change(new)
    return [str(c) for c in validate(gvk, new, old)]


UPDATES = [
    ("deploy-selector-immutable", DEPLOY,
     lambda o: (o["spec"].update(selector={"matchLabels": {"app": "x"}}),
                o["spec"]["template"]["metadata"].update(labels={"app": "x"})),
     ['spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, '
      'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable']),
    ("svc-clusterip-immutable", SVC, lambda o: o["spec"].update(clusterIP="10.43.0.9", clusterIPs=["10.43.0.9"]),
     ['spec.clusterIPs[0]: Invalid value: []string{"10.43.0.9"}: may not change once set']),
    ("cm-immutable", CM, lambda o: o.update(data={"a": "2"}),
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("secret-type-immutable", SECRET, lambda o: o.update(type="kubernetes.io/basic-auth", data={"username": "dQ=="}),
     ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']),
    ("name-immutable", CM, lambda o: o["metadata"].update(name="y"),
     ['metadata.name: Invalid value: "y": field is immutable']),
    ("binding-roleref", ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
     lambda o: o["roleRef"].update(name="edit"),
     ['roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", '
      'Name:"edit"}: cannot change roleRef']),
]


@pytest.mark.parametrize(("gvk", "change", "want"), [c[1:] for c in UPDATES], ids=[c[0] for c in UPDATES])
def test_update_rules(gvk, change, want):
    if want[0].startswith("data: Forbidden"):
        old = build(gvk, lambda o: o.update(immutable=True))
        new = copy.deepcopy(old)
        change(new)
        assert [str(c) for c in validate(gvk, new, old)] == want
        return
    if gvk == SVC:
        old = build(gvk, lambda o: o["spec"].update(clusterIP="10.43.0.5", clusterIPs=["10.43.0.5"]))
        new = copy.deepcopy(old)
        change(new)
        assert [str(c) for c in validate(gvk, new, old)] == want
        return
    assert updated(gvk, change) == want


def test_pod_update_allows_image_and_new_tolerations_only():
    assert updated(POD, lambda o: o["spec"]["containers"][0].update(image="nginx:2")) == []
    assert updated(POD, lambda o: o["spec"]["tolerations"].append({"key": "k", "operator": "Exists"})) == []
    causes = updated(POD, lambda o: o["spec"].update(restartPolicy="Never"))
    assert len(causes) == 1
    assert causes[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
        "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n")
    assert updated(POD, lambda o: o["spec"].update(tolerations=[])) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]


def test_custom_resources_get_metadata_checks_only():
    cr = {"apiVersion": "ex.com/v1", "kind": "Widget", "metadata": {"name": "Bad_Name"}, "spec": {"x": 1}}
    assert [c.field for c in validate(("ex.com", "v1", "Widget"), cr, None)] == ["metadata.name"]


def test_format_invalid_message():
    one = [Cause("FieldValueRequired", "Required value", "spec.containers[0].image")]
    assert format_invalid_message("Pod", "", "web", one) == 'Pod "web" is invalid: spec.containers[0].image: Required value'
    two = one + [Cause("FieldValueInvalid", 'Invalid value: "x": bad', "data[x]")]
    assert format_invalid_message("Deployment", "apps", "d", two) == (
        'Deployment.apps "d" is invalid: [spec.containers[0].image: Required value, data[x]: Invalid value: "x": bad]')
    assert format_invalid_message("ConfigMap", "", "c", one + one) == \
        'ConfigMap "c" is invalid: spec.containers[0].image: Required value'


def test_cause_fields_for_status_details():
    (cause,) = validate(CM, build(CM, setp("data", {"bad key": "x"})), None)
    assert (cause.reason, cause.field) == ("FieldValueInvalid", "data[bad key]")
    assert cause.message == f'Invalid value: "bad key": {CONFIG_KEY}'


@pytest.mark.parametrize(("kind", "name", "rule", "ok"), [
    ("ConfigMap", "a.b-c", "subdomain", True), ("ConfigMap", "A", "subdomain", False),
    ("Namespace", "a.b", "subdomain", False), ("Service", "a-1", "subdomain", True),
    ("Widget", "a.b", "label", False), ("ClusterRole", "system:view", "subdomain", True),
    ("ClusterRole", "a/b", "subdomain", False),
], ids=["subdomain-ok", "subdomain-upper", "namespace-label", "service-dns1035", "caller-rule", "rbac-colon",
        "rbac-slash"])
def test_validate_name(kind, name, rule, ok):
    assert (validate_name(kind, name, rule) == []) is ok
