import pytest

from pyk3s.agent.node import (
    NodeError,
    build_node,
    resolve_node_name,
)


def test_name_precedence_and_lowercase(tmp_path):
    assert resolve_node_name("Node-A", False, tmp_path, env={}).name == "node-a"
    assert resolve_node_name(None, False, tmp_path, env={"K3S_NODE_NAME": "K"}, hostname="h").name == "k"
    assert resolve_node_name(None, False, tmp_path, env={"PYK3S_NODE_NAME": "p"}, hostname="h").name == "p"
    assert resolve_node_name(None, False, tmp_path, env={}, hostname="Host").name == "host"


def test_node_id_persisted(tmp_path):
    a = resolve_node_name("n", True, tmp_path, env={}).name
    assert a == resolve_node_name("n", True, tmp_path, env={}).name
    assert len(a) == len("n-") + 8


def test_invalid_and_localhost(tmp_path):
    with pytest.raises(NodeError, match="--node-name"):
        resolve_node_name("bad_name!", False, tmp_path, env={})
    assert "--node-name" in resolve_node_name("localhost", False, tmp_path, env={}).warnings[0]


def test_build_node_labels_and_addresses():
    node = build_node("n1", pod_cidr="10.42.0.0/24", internal=["192.0.2.2"], external=["203.0.113.5"], hostname="h",
                      labels={"kubernetes.io/hostname": "n1"}, taints=[], kubelet_port=10250)
    ann = node["metadata"]["annotations"]
    assert ann["k3s.io/internal-ip"] == "192.0.2.2" and ann["k3s.io/external-ip"] == "203.0.113.5"
    assert node["spec"]["providerID"] == "k3s://n1" and node["spec"]["podCIDRs"] == ["10.42.0.0/24"]
    types = [a["type"] for a in node["status"]["addresses"]]
    assert types == ["InternalIP", "ExternalIP", "Hostname"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.4+pyk3s1"
    assert node["status"]["allocatable"]["pods"] == "110"
