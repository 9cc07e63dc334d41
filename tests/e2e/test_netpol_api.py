"""networking.k8s.io/v1 NetworkPolicy served as kube-apiserver serves it, driven with the real kubectl and
the official Python client: apply, defaults, printer columns, short name, field selectors, watch,
describe, explain, and validation errors worded like upstream."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e]

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: default}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchLabels: {role: web}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - port: 5432
    - port: metrics
    - {port: 9000, endPort: 9100, protocol: UDP}
  egress:
  - to: [{podSelector: {}}]
"""


@pytest.fixture(scope="module")
def api(api_server: ServerProcess) -> Iterator[ServerProcess]:
    api_server.kubectl("apply", "-f", "-", input=POLICY)
    yield api_server


def test_defaults_and_round_trip(api: ServerProcess) -> None:
    obj = api.kubectl("get", "networkpolicy", "db", "-o", "json").json()
    spec = obj["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}, {"port": "metrics", "protocol": "TCP"},
                                           {"port": 9000, "endPort": 9100, "protocol": "UDP"}]
    assert obj["metadata"]["generation"] == 1
    api.kubectl("apply", "-f", "-", input=POLICY.replace("5432", "5433"))
    assert api.kubectl("get", "netpol", "db", "-o", "jsonpath={.metadata.generation}").out == "2"


def test_printer_columns_and_short_name(api: ServerProcess) -> None:
    out = api.kubectl("get", "netpol").out.splitlines()
    assert out[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert out[1].split()[:2] == ["db", "app=db"]
    api.kubectl("apply", "-f", "-", input="apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                         "metadata: {name: deny-all}\nspec: {podSelector: {}}\n")
    rows = {ln.split()[0]: ln.split()[1] for ln in api.kubectl("get", "networkpolicies.networking.k8s.io").out
            .splitlines()[1:]}
    assert rows["deny-all"] == "<none>"
    resources = api.kubectl("api-resources", "--api-group", "networking.k8s.io").out
    assert any(ln.split()[:2] == ["networkpolicies", "netpol"] for ln in resources.splitlines())


def test_field_selectors(api: ServerProcess) -> None:
    assert api.kubectl("get", "netpol", "--field-selector", "metadata.name=db", "-o", "name").out.strip() == \
        "networkpolicy.networking.k8s.io/db"
    assert "deny-all" in api.kubectl("get", "netpol", "-A", "--field-selector", "metadata.namespace=default",
                                     "-o", "name").out
    bad = api.kubectl("get", "netpol", "--field-selector", "spec.podSelector=x", check=False)
    assert bad.rc != 0 and "field label not supported: spec.podSelector" in bad.err


def test_watch_sees_changes(api: ServerProcess) -> None:
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(api.kubeconfig), "get", "netpol", "--watch",
                             "--output-watch-events", "-o", "json", "--request-timeout", "20s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        api.wait_for(lambda: any('"ADDED"' in ln for ln in lines), timeout=15, what="initial ADDED")
        api.kubectl("apply", "-f", "-", input="apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                             "metadata: {name: watched}\nspec: {podSelector: {}}\n")
        api.kubectl("label", "netpol", "watched", "x=y")
        api.kubectl("delete", "netpol", "watched")
        api.wait_for(lambda: sum('"DELETED"' in ln for ln in lines) >= 1, timeout=15, what="DELETED event")
        text = "".join(lines)
        assert '"MODIFIED"' in text and '"watched"' in text
    finally:
        proc.kill()
        proc.wait()


def test_describe_as_against_kube_apiserver(api: ServerProcess) -> None:
    out = api.kubectl("describe", "networkpolicy", "db").out
    for line in ["Name:         db", "Namespace:    default", "  PodSelector:     app=db",
                 "  Allowing ingress traffic:", "    To Port: 5433/TCP", "    To Port: metrics/TCP",
                 "    To Port Range: 9000-9100/UDP", "      NamespaceSelector: team=a", "      PodSelector: role=web",
                 "        CIDR: 10.0.0.0/8", "        Except: 10.1.0.0/16", "  Allowing egress traffic:",
                 "  Policy Types: Ingress, Egress"]:
        assert line in out, f"{line!r} missing from:\n{out}"


def test_kubectl_explain(api: ServerProcess) -> None:
    out = api.kubectl("explain", "networkpolicy.spec.ingress.from.ipBlock").out
    assert "cidr" in out and "except" in out


def test_official_python_client_reads_and_watches(api: ServerProcess) -> None:
    from kubernetes import client, config, watch

    config.load_kube_config(str(api.kubeconfig))
    net = client.NetworkingV1Api()
    pol = net.read_namespaced_network_policy("db", "default")
    assert pol.spec.pod_selector.match_labels == {"app": "db"}
    assert pol.spec.ingress[0]._from[1].ip_block.cidr == "10.0.0.0/8"
    w = watch.Watch()
    seen = [ev["object"].metadata.name for ev in w.stream(net.list_namespaced_network_policy, "default",
                                                          timeout_seconds=1)]
    assert "db" in seen


@pytest.mark.parametrize(("doc", "err"), [
    ("spec: {ingress: [{ports: [{port: 0}]}]}",
     'The NetworkPolicy "bad" is invalid: spec.ingress[0].ports[0].port: Invalid value: 0: must be '
     "between 1 and 65535, inclusive"),
    ("spec: {egress: [{to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]}]}",
     'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'),
    ("spec: {ingress: [{from: [{podSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]}]}",
     "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"),
    ("spec: {policyTypes: [Ingress, Sideways]}",
     'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"'),
    ("spec: {podselector: {}}", 'unknown field "spec.podselector"'),
], ids=["port", "except", "ipblock-and-selector", "policy-type", "unknown-field"])
def test_invalid_policies_are_refused_with_upstream_messages(api: ServerProcess, doc: str, err: str) -> None:
    res = api.kubectl("apply", "-f", "-", check=False,
                      input=f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: bad}}\n{doc}\n")
    assert res.rc != 0 and err in res.err, res.err
    assert api.kubectl("get", "netpol", "bad", check=False).rc != 0


def test_selects_nothing_and_unknown_named_port_are_accepted(api: ServerProcess) -> None:
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "odd"},
           "spec": {"podSelector": {"matchLabels": {"nobody": "here"}},
                    "ingress": [{"ports": [{"port": "nobody-has"}]}, {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}
    assert api.kubectl("apply", "-f", "-", input=json.dumps(doc)).rc == 0
