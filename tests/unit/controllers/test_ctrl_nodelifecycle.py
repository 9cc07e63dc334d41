from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ctrl_kit import Kit, cluster_fixture, node  # noqa: F401

from pyk3s.controllers.common.settings import ControllerSettings
from pyk3s.controllers.nodelifecycle import NodeLifecycleController, eviction_time, wanted_taints

T0 = datetime(2024, 1, 1, tzinfo=UTC)
UNREACH = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}


def test_taints_follow_ready():
    n = node("n", "172.31.0.1", taints=[{"key": "own", "effect": "NoSchedule"}])
    assert {t["key"] for t in wanted_taints(n, "Unknown", "x")} == {"own", "node.kubernetes.io/unreachable"}
    assert len(wanted_taints(n, "Unknown", "x")) == 3
    back = {**n, "spec": {"taints": wanted_taints(n, "Unknown", "x")}}
    assert wanted_taints(back, "True", "x") == [{"key": "own", "effect": "NoSchedule"}]


def test_eviction_time():
    tolerating = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                            "effect": "NoExecute", "tolerationSeconds": 300}]}}
    assert eviction_time(tolerating, [UNREACH], None) == T0 + timedelta(seconds=300)
    assert eviction_time(tolerating, [UNREACH], 5) == T0 + timedelta(seconds=5)
    assert eviction_time({"spec": {}}, [UNREACH], None) == T0
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert eviction_time(forever, [UNREACH], None) is None


async def test_silent_node_tainted_and_pods_evicted(cluster: Kit):
    n = node("n1", "172.31.0.1")
    n["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    await cluster.nodes.create(n)
    await cluster.pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}}, "default")
    await cluster.make_ready()
    settings = ControllerSettings(node_monitor_grace_period=0.5, toleration_seconds_cap=0.5)
    ctrl = NodeLifecycleController(cluster.client, settings)
    cluster.run(ctrl)

    async def unknown() -> bool:
        cur = await cluster.nodes.get("n1")
        ready = next(c for c in cur["status"]["conditions"] if c["type"] == "Ready")
        keys = {(t["key"], t["effect"]) for t in cur["spec"].get("taints") or []}
        return ready["status"] == "Unknown" and ready["message"] == "Kubelet stopped posting node status." and \
            keys == {("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
    await cluster.eventually(unknown)

    async def evicted() -> bool:
        p = (await cluster.list("v1", "pods"))
        return not p or bool(p[0]["metadata"].get("deletionTimestamp"))
    await cluster.eventually(evicted)

    # The node comes back (its Lease is renewed, Ready again): taints go.
    renew = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await cluster.client.resource("coordination.k8s.io/v1", "leases").create(
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"},
         "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": renew}}, "kube-node-lease")
    cur = await cluster.nodes.get("n1")
    for c in cur["status"]["conditions"]:
        if c["type"] == "Ready":
            c.update(status="True", reason="KubeletReady",
                     lastHeartbeatTime=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    await cluster.nodes.update_status(cur)

    async def untainted() -> bool:
        return not (await cluster.nodes.get("n1"))["spec"].get("taints")
    await cluster.eventually(untainted)
