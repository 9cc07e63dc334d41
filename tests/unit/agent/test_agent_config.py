"""One builder of AgentSettings for the joining agent, the --kubeconfig agent and the embedded agent."""

from __future__ import annotations

from pathlib import Path

from pyk3s.agent.config import NodeConfig
from pyk3s.cli.flag_tables import AGENT_FLAGS, AGENT_KUBECONFIG_FLAGS
from pyk3s.cli.flags import parse_flags
from pyk3s.k3s.network import ClusterNetwork


def flags(table, *argv: str) -> dict:
    return parse_flags("pyk3s agent", "", table, ["--config", "/nonexistent/pyk3s.yaml", *argv], environ={}).values


def test_node_flags_reach_the_agent_settings(tmp_path: Path) -> None:
    node = NodeConfig.from_flags(flags(AGENT_FLAGS, "--server", "https://10.0.0.1:6443", "--node-name", "a1",
                                       "--node-ip", "192.0.2.2", "--node-taint", "k=v:NoExecute",
                                       "--kubelet-port", "10251"), tmp_path)
    network = ClusterNetwork.given(["10.244.0.0/16"], ["10.96.0.0/12"], ["10.96.0.10"], "example.local")
    s = node.agent_settings(network, is_server=False)
    assert (s.node_name, s.node_ips, s.node_taints, s.kubelet_port) == ("a1", ("192.0.2.2",), ("k=v:NoExecute",), 10251)
    assert not s.is_server and s.bridge_name == "pyk3s0" and s.data_dir == tmp_path
    assert (s.cluster_cidrs, s.service_cidrs, s.cluster_dns, s.cluster_domain) == (
        ("10.244.0.0/16",), ("10.96.0.0/12",), ("10.96.0.10",), "example.local")


def test_network_defaults_when_the_server_or_the_flags_give_none(tmp_path: Path) -> None:
    assert ClusterNetwork.given(None, None, None, None) == ClusterNetwork()
    f = flags(AGENT_KUBECONFIG_FLAGS, "--kubeconfig", "/x", "--cluster-cidr", "10.244.0.0/16,fd00:42::/56")
    network = ClusterNetwork.given(f["cluster_cidr"], f["service_cidr"], f["cluster_dns"], f["cluster_domain"])
    assert network.cluster_cidrs == ("10.244.0.0/16", "fd00:42::/56")
    assert network.service_cidrs == ("10.43.0.0/16",) and network.cluster_dns == ("10.43.0.10",)
    assert NodeConfig.from_flags(f, tmp_path).agent_settings(network, is_server=False).node_name is None


def test_disable_network_policy_is_a_node_flag_of_servers_and_agents(tmp_path: Path) -> None:
    from pyk3s.cli.flag_tables import SERVER_FLAGS

    network = ClusterNetwork()
    for table, extra in ((AGENT_FLAGS, ("--server", "https://10.0.0.1:6443")), (SERVER_FLAGS, ()),
                         (AGENT_KUBECONFIG_FLAGS, ("--kubeconfig", "/x"))):
        on = NodeConfig.from_flags(flags(table, *extra, "--disable-network-policy"), tmp_path)
        assert on.agent_settings(network, is_server=False).disable_network_policy
        off = NodeConfig.from_flags(flags(table, *extra), tmp_path)
        assert not off.agent_settings(network, is_server=False).disable_network_policy
