from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from ctrl_kit import Kit, cluster_fixture, node  # noqa: F401

from pyk3s.client import NotFound
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

    # The node comes back (its Lease renewed again and again, Ready again): taints go, and stay gone.
    leases = cluster.client.resource("coordination.k8s.io/v1", "leases")
    renewer = asyncio.create_task(_renew_every(leases, "n1", 0.1, lambda: datetime.now(UTC)))
    try:
        cur = await cluster.nodes.get("n1")
        for c in cur["status"]["conditions"]:
            if c["type"] == "Ready":
                c.update(status="True", reason="KubeletReady",
                         lastHeartbeatTime=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        await cluster.nodes.update_status(cur)

        async def untainted() -> bool:
            return not (await cluster.nodes.get("n1"))["spec"].get("taints")
        await cluster.eventually(untainted)
        await asyncio.sleep(1.0)  # twice the grace period
        assert await untainted()
    finally:
        renewer.cancel()


async def _renew_every(leases, name: str, every: float, clock) -> None:
    """A node's agent: its Lease renewed every ``every`` seconds with the time of ``clock``."""
    while True:
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40,
                "renewTime": clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        try:
            lease = await leases.get(name, "kube-node-lease")
            await leases.update({**lease, "spec": spec})
        except NotFound:
            await leases.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
                                 "spec": spec}, "kube-node-lease")
        await asyncio.sleep(every)


async def test_a_node_whose_clock_is_behind_is_not_silent_while_it_renews(cluster: Kit):
    """Silence is counted from when the controller saw the heartbeat move, on its own clock (as
    kube-controller-manager does): a node writing renewal times an hour behind, or a renewal that lands
    just after grace period past the time written in the previous one, is not marked Unknown."""
    await cluster.nodes.create(node("n1", "172.31.0.1"))
    leases = cluster.client.resource("coordination.k8s.io/v1", "leases")
    behind = timedelta(hours=1)
    renewer = asyncio.create_task(_renew_every(leases, "n1", 0.2, lambda: datetime.now(UTC) - behind))
    ctrl = NodeLifecycleController(cluster.client, ControllerSettings(node_monitor_grace_period=0.6))
    cluster.run(ctrl)
    try:
        for _ in range(10):  # 2 s: three grace periods
            await asyncio.sleep(0.2)
            cur = await cluster.nodes.get("n1")
            ready = next(c for c in cur["status"]["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "True", ready
            assert not cur["spec"].get("taints")
    finally:
        renewer.cancel()
    # and once the renewals stop, the node is silent after the grace period
    async def unknown() -> bool:
        cur = await cluster.nodes.get("n1")
        return next(c for c in cur["status"]["conditions"] if c["type"] == "Ready")["status"] == "Unknown"
    await cluster.eventually(unknown, timeout=5)


def test_heard_at_counts_from_when_a_heartbeat_moved():
    ctrl = NodeLifecycleController.__new__(NodeLifecycleController)
    ctrl._seen = {}
    t = [T0 + timedelta(seconds=s) for s in range(30)]
    written = T0 - timedelta(hours=1)  # a node whose clock is an hour behind
    assert ctrl.heard_at("n", (written, written), t[0]) == t[0]   # first seen: a full grace period from now
    assert ctrl.heard_at("n", (written, written), t[5]) == t[0]   # nothing moved
    assert ctrl.heard_at("n", (written + timedelta(seconds=10), written), t[11]) == t[11]  # a Lease renewal
    assert ctrl.heard_at("n", (written, written), t[12]) == t[11]  # an older copy is no news
    assert ctrl.heard_at("n", (None, written + timedelta(seconds=1)), t[20]) == t[20]  # a status post
