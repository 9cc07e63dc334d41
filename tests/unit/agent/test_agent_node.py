import asyncio
import contextlib

import pytest

from pyk3s.agent.node import (
    NodeAgent,
    NodeError,
    build_node,
    resolve_node_name,
    shows_ready,
)
from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client
from pyk3s.controllers.nodelifecycle import stale_conditions


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


async def test_heartbeat_puts_ready_back_after_the_server_marked_the_node_unknown(tmp_path):
    """A node the server's node-lifecycle controller marked Unknown (it missed one heartbeat) is Ready again
    on the agent's next beat, not at the next full status (60 s later by default)."""
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig())
    await api.start()
    client = Client.in_process(api)
    nodes = client.resource("v1", "nodes")
    beat: asyncio.Task[None] | None = None
    try:
        agent = NodeAgent(client, "n1", agent_dir=tmp_path, cluster_cidr="10.42.0.0/16", internal=["192.0.2.2"],
                          external=[], labels={}, taints=[], kubelet_port=10250)
        created = await nodes.create(build_node("n1", pod_cidr="10.42.0.0/24", internal=["192.0.2.2"], external=[],
                                                hostname="h", labels={}, taints=[], kubelet_port=10250))
        agent.node = await agent._put_status(created)
        assert shows_ready(agent.node)
        beat = asyncio.create_task(agent.heartbeat(lease_every=0.05, status_every=3600))
        await asyncio.sleep(0.2)
        # what the node-lifecycle controller writes for a node whose heartbeat it missed
        cur = await nodes.get("n1")
        conditions = stale_conditions(cur, "2024-01-01T00:00:00Z")
        assert conditions is not None
        await nodes.update_status({**cur, "status": {**cur["status"], "conditions": conditions}})
        deadline = asyncio.get_running_loop().time() + 5
        while not shows_ready(await nodes.get("n1")):
            assert asyncio.get_running_loop().time() < deadline, "the agent left its node Unknown"
            await asyncio.sleep(0.02)
        lease = await client.resource("coordination.k8s.io/v1", "leases").get("n1", "kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "n1"
    finally:
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await client.close()
        await api.stop()
        await store.close()
