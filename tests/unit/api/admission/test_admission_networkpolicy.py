"""NetworkPolicy defaulting and validation with kube-apiserver's wording (pkg/apis/networking/validation)."""

import copy

import pytest

from pyk3s.api.admission import format_invalid_message, set_defaults, validate

NP = ("networking.k8s.io", "v1", "NetworkPolicy")


def np(spec, name="np"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def errors(spec):
    obj = np(spec)
    set_defaults(NP, obj)
    return [str(c) for c in validate(NP, obj, None)]


@pytest.mark.parametrize(("spec", "want"), [
    ({}, {"podSelector": {}, "policyTypes": ["Ingress"]}),
    ({"egress": [{}]}, {"podSelector": {}, "egress": [{}], "policyTypes": ["Ingress", "Egress"]}),
    ({"egress": []}, {"podSelector": {}, "egress": [], "policyTypes": ["Ingress"]}),
    ({"policyTypes": ["Egress"]}, {"podSelector": {}, "policyTypes": ["Egress"]}),
    ({"ingress": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]},
     {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}],
      "policyTypes": ["Ingress"]}),
], ids=["empty", "egress-rules", "empty-egress", "explicit-types", "port-protocol"])
def test_defaults(spec, want):
    obj = np(copy.deepcopy(spec))
    set_defaults(NP, obj)
    assert obj["spec"] == want
    again = copy.deepcopy(obj)
    set_defaults(NP, again)
    assert again == obj, "defaulting twice changes nothing"


@pytest.mark.parametrize(("spec", "want"), [
    ({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]},
     ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"']),
    ({"ingress": [{"ports": [{"port": 0}]}]},
     ["spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ({"egress": [{"ports": [{"port": 100, "endPort": 99}]}]},
     ["spec.egress[0].ports[0].endPort: Invalid value: 99: must be greater than or equal to `port`"]),
    ({"egress": [{"ports": [{"port": 100, "endPort": 70000}]}]},
     ["spec.egress[0].ports[0].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ({"egress": [{"ports": [{"port": "http", "endPort": 90}]}]},
     ["spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"]),
    ({"egress": [{"ports": [{"endPort": 90}]}]},
     ["spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"]),
    ({"ingress": [{"ports": [{"port": "Http--"}]}]},
     ['spec.ingress[0].ports[0].port: Invalid value: "Http--": must contain only alpha-numeric characters '
      '(a-z, 0-9), and hyphens (-)',
      'spec.ingress[0].ports[0].port: Invalid value: "Http--": must not contain consecutive hyphens',
      'spec.ingress[0].ports[0].port: Invalid value: "Http--": must not begin or end with a hyphen']),
    ({"ingress": [{"from": [{}]}]}, ["spec.ingress[0].from[0]: Required value: must specify a peer"]),
    ({"ingress": [{"from": [{"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
     ["spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": ""}}]}]}, ["spec.egress[0].to[0].ipBlock.cidr: Required value"]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]},
     ['spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0.0": not a valid CIDR']),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8", "11.0.0.0/16",
                                                                       "10.1.0.0/16"]}}]}]},
     ['spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`',
      'spec.egress[0].to[0].ipBlock.except[1]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`']),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["bad", "11.0.0.0/16"]}}]}]},
     ['spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "bad": not a valid CIDR']),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     ["spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
      "'NotIn'"]),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]}},
     ["spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' "
      "or 'DoesNotExist'"]),
    ({"ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]}]},
     ['spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].operator: Invalid value: "Near": not a valid '
      'selector operator']),
    ({"podSelector": {"matchLabels": {"bad key": "v"}}},
     ['spec.podSelector.matchLabels: Invalid value: "bad key": name part must consist of alphanumeric characters, '
      "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
      "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
    ({"policyTypes": ["Ingress", "Egress", "Ingress"]},
     ['spec.policyTypes: Invalid value: []networking.PolicyType{"Ingress", "Egress", "Ingress"}: may not specify '
      'more than two policyTypes']),
    ({"policyTypes": ["Ingres"]},
     ['spec.policyTypes[0]: Unsupported value: "Ingres": supported values: "Ingress", "Egress"']),
])
def test_invalid(spec, want):
    assert errors(spec) == want


@pytest.mark.parametrize("spec", [
    {},
    {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {"matchLabels": {"role": "web"}}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
        "ports": [{"port": 5432}, {"port": "metrics"}, {"port": 9000, "endPort": 9100, "protocol": "UDP"},
                  {"protocol": "SCTP"}]}]},
    {"policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "fd00::/8", "except": ["fd00:1::/32"]}}]}]},
    # accepted as in Kubernetes: a selector matching nothing, a named port no pod has, a cluster-wide ipBlock
    {"podSelector": {"matchLabels": {"no": "such-pod"}}, "ingress": [{"ports": [{"port": "nobody-has"}]},
                                                                      {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
    {"egress": [{"to": [{"ipBlock": {"cidr": "010.042.0.0/16"}}]}]},
], ids=["empty", "everything", "ipv6", "selects-nothing", "leading-zeros"])
def test_valid(spec):
    assert errors(spec) == []


def test_message_names_the_kind_with_its_group():
    obj = np({"policyTypes": ["Ingres"]}, name="web")
    set_defaults(NP, obj)
    msg = format_invalid_message("NetworkPolicy", "networking.k8s.io", "web", validate(NP, obj, None))
    assert msg == ('NetworkPolicy.networking.k8s.io "web" is invalid: spec.policyTypes[0]: Unsupported value: '
                   '"Ingres": supported values: "Ingress", "Egress"')
