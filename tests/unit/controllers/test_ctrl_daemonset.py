from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ctrl_kit import Kit, cluster_fixture, node, pod_template  # noqa: F401

from pyk3s.controllers.daemonset import (
    DaemonSetController,
    daemon_pod,
    daemon_template,
    node_should_run,
    plan_daemonset,
    revision_hash,
    target_node,
)
from pyk3s.controllers.scheduler import SchedulerController

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
DS = {
    "apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1},
    "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template({"app": "agent"})},
}


def test_automatic_tolerations():
    tols = {(t["key"], t["effect"]) for t in daemon_template(DS)["spec"]["tolerations"]}
    assert tols == {
        ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
    }


def test_eligibility():
    t = daemon_template(DS)
    assert node_should_run(t, node("a", "172.31.0.1", ready="False")) == (True, True)
    assert node_should_run(t, node("b", "172.31.0.2", taints=[{"key": "x", "effect": "NoSchedule"}])) == (False, True)
    assert node_should_run(t, node("c", "172.31.0.3", taints=[{"key": "x", "effect": "NoExecute"}])) == (False, False)
    sel = daemon_template({**DS, "spec": {**DS["spec"], "template": pod_template({"app": "agent"},
                                                                                 nodeSelector={"role": "edge"})}})
    assert node_should_run(sel, node("d", "172.31.0.4")) == (False, False)
    assert node_should_run(sel, node("e", "172.31.0.5", labels={"role": "edge"})) == (True, True)


def test_pod_targets_node_by_match_fields():
    p = daemon_pod(DS, daemon_template(DS), "abc", "n1")
    assert p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    assert p["metadata"]["labels"]["controller-revision-hash"] == "abc"
    assert p["metadata"]["generateName"] == "agent-"
    assert target_node(p) == "n1"


def _pod_on(node_name: str, pod_hash: str, *, ready: bool = True, name: str | None = None) -> dict:
    p = daemon_pod(DS, daemon_template(DS), pod_hash, node_name)
    p["metadata"].update(name=name or f"agent-{node_name}", creationTimestamp="2024-01-01T00:00:00Z")
    p["spec"]["nodeName"] = node_name
    p["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
    return p


def test_plan_creates_deletes_and_counts():
    h = revision_hash(DS)
    nodes = [node("a", "172.31.0.1"), node("b", "172.31.0.2"),
             node("c", "172.31.0.3", taints=[{"key": "x", "effect": "NoExecute"}])]
    pods = [_pod_on("a", h), _pod_on("c", h), _pod_on("gone", h)]
    plan = plan_daemonset(DS, nodes, pods, NOW)
    assert plan.create_on == ["b"]
    assert sorted(p["metadata"]["name"] for p in plan.delete) == ["agent-c", "agent-gone"]
    assert plan.status == {"currentNumberScheduled": 1, "numberMisscheduled": 1, "desiredNumberScheduled": 2,
                           "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1,
                           "numberUnavailable": 1, "observedGeneration": 1}


def test_rolling_update_respects_max_unavailable():
    nodes = [node(n, f"172.31.0.{i}") for i, n in enumerate("abcd", 1)]
    pods = [_pod_on(n, "old-hash") for n in "abcd"]
    plan = plan_daemonset(DS, nodes, pods, NOW)
    assert len(plan.delete) == 1                     # default maxUnavailable 1
    ds = {**DS, "spec": {**DS["spec"], "updateStrategy": {"type": "RollingUpdate",
                                                          "rollingUpdate": {"maxUnavailable": "50%"}}}}
    assert len(plan_daemonset(ds, nodes, pods, NOW).delete) == 2
    pods[0] = _pod_on("a", "old-hash", ready=False)   # an unavailable old pod is replaced at once
    assert len(plan_daemonset(DS, nodes, pods, NOW).delete) == 1
    on_delete = {**DS, "spec": {**DS["spec"], "updateStrategy": {"type": "OnDelete"}}}
    assert plan_daemonset(on_delete, nodes, pods, NOW).delete == []


async def test_daemonset_runs_one_pod_per_node_with_the_scheduler(cluster: Kit):
    for i, name in enumerate(("n1", "n2"), 1):
        await cluster.nodes.create(node(name, f"172.31.0.{i}"))
    await cluster.nodes.create(node("n3", "172.31.0.3", ready="False"))
    await cluster.nodes.create(node("tainted", "172.31.0.4", taints=[{"key": "x", "effect": "NoSchedule"}]))
    ds_api = cluster.client.resource("apps/v1", "daemonsets")
    await ds_api.create({**DS, "metadata": {"name": "agent", "namespace": "default"}})
    dsc, sched = DaemonSetController(cluster.client), SchedulerController(cluster.client)
    cluster.run(dsc, sched)

    # The DaemonSet wants a pod on the NotReady node too; like kube-scheduler, binding waits for the
    # node's not-ready NoSchedule taint to go (DaemonSet pods tolerate only its NoExecute form).
    async def placed() -> bool:
        pods = await cluster.list("v1", "pods")
        return sorted(target_node(p) for p in pods) == ["n1", "n2", "n3"] and \
            sorted(p["spec"].get("nodeName", "") for p in pods) == ["", "n1", "n2"]
    await cluster.eventually(placed)
    await cluster.make_ready(only_bound=True)

    async def status() -> bool:
        st = (await ds_api.get("agent", "default")).get("status") or {}
        return st.get("numberReady") == 2 and st.get("desiredNumberScheduled") == 3 \
            and st.get("currentNumberScheduled") == 3 and st.get("updatedNumberScheduled") == 3 \
            and st.get("numberAvailable") == 2 and st.get("numberUnavailable") == 1
    await cluster.eventually(status)
    await cluster.assert_no_writes(dsc, ["default/agent"])

    # Update the template: pods are replaced one node at a time (n3 goes first: a pod that never becomes
    # available would hold the rollout at maxUnavailable 1, as upstream).
    await cluster.nodes.delete("n3")
    cur = await ds_api.get("agent", "default")
    cur["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    cur["spec"]["selector"] = cur["spec"]["selector"]
    await ds_api.update(cur)
    new_hash = revision_hash(await ds_api.get("agent", "default"))
    stop = asyncio.Event()

    async def kubelet() -> None:
        while not stop.is_set():
            await cluster.finish_deletions()
            await cluster.make_ready(only_bound=True)
            await asyncio.sleep(0.05)
    task = asyncio.create_task(kubelet())
    try:
        async def rolled() -> bool:
            pods = await cluster.list("v1", "pods")
            return len(pods) == 2 and all(p["metadata"]["labels"].get("controller-revision-hash") == new_hash
                                          for p in pods)
        await cluster.eventually(rolled, timeout=15)
    finally:
        stop.set()
        await task
