from __future__ import annotations

import pytest
from ctrl_kit import Kit, cluster_fixture, node  # noqa: F401

from pyk3s.controllers.nodehosts import NodeHostsController, parse_node_hosts, update_node_hosts


def test_example_from_spec_ordering():
    text = update_node_hosts("", "a-host", "10.0.0.10", "", "A-Host", False)
    text = update_node_hosts(text, "b", "10.0.0.9", "", "b", False)
    assert text == "10.0.0.9 b\n10.0.0.10 a-host A-Host\n"


def test_ipv4_sorts_before_ipv6_and_ip_takeover():
    text = update_node_hosts("fd00::1 x\n10.0.0.1 old\n", "x", "10.0.0.1", "fd00::1", "", False)
    assert text == "10.0.0.1 x\nfd00::1 x\n"


@pytest.mark.parametrize(("existing", "want"), [
    ("10.0.0.5 n1\n", None),                                  # already right: no write
    ("10.0.0.4 n1\n10.0.0.7 other\n", "10.0.0.5 n1\n10.0.0.7 other\n"),   # moved IP
    ("# comment\n10.0.0.7 other # trailing\nbad\n", "10.0.0.5 n1\n10.0.0.7 other\n"),
], ids=["unchanged", "moved", "comments-and-junk"])
def test_update(existing, want):
    assert update_node_hosts(existing, "n1", "10.0.0.5", "", "n1", False) == want


def test_removal_and_parse_warnings():
    assert update_node_hosts("10.0.0.5 n1\n10.0.0.7 other\n", "n1", "", "", "", True) == "10.0.0.7 other\n"
    hosts, warnings = parse_node_hosts("1.2.3.4\n")
    assert hosts == {} and warnings


async def test_configmap_key_maintained(cluster: Kit):
    cm_api = cluster.client.resource("v1", "configmaps")
    await cm_api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns"},
                         "data": {"Corefile": ".:53 {}"}}, "kube-system")
    await cluster.nodes.create(node("b", "10.0.0.9", hostname="b"))
    await cluster.nodes.create(node("a-host", "10.0.0.10", hostname="A-Host"))
    ctrl = NodeHostsController(cluster.client)
    cluster.run(ctrl)

    async def synced() -> bool:
        data = (await cm_api.get("coredns", "kube-system"))["data"]
        return data.get("NodeHosts") == "10.0.0.9 b\n10.0.0.10 a-host A-Host\n" and data["Corefile"] == ".:53 {}"
    await cluster.eventually(synced)
    await cluster.assert_no_writes(ctrl, ["a-host", "b"])
    await cluster.nodes.delete("b")

    async def removed() -> bool:
        return (await cm_api.get("coredns", "kube-system"))["data"]["NodeHosts"] == "10.0.0.10 a-host A-Host\n"
    await cluster.eventually(removed)
