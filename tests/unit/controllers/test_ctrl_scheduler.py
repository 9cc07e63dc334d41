from __future__ import annotations

import pytest
from ctrl_kit import Kit, cluster_fixture, node  # noqa: F401

from pyk3s.controllers.placement import affinity_matches, tolerates
from pyk3s.controllers.scheduler import SchedulerController, filter_node, schedule


def pod(name: str = "p", *, host_port: int | None = None, **spec) -> dict:
    ports = [{"containerPort": 80, "hostPort": host_port, "protocol": "TCP"}] if host_port else []
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": ports}], **spec}}


def bound(name: str, node_name: str, host_port: int | None = None) -> dict:
    p = pod(name, host_port=host_port)
    p["spec"]["nodeName"] = node_name
    return p


def affinity(*exprs: dict, fields: list | None = None) -> dict:
    term: dict = {}
    if exprs:
        term["matchExpressions"] = list(exprs)
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


N1 = node("n1", "172.31.0.1", labels={"zone": "a", "cpus": "8"})
N2 = node("n2", "172.31.0.2", labels={"zone": "b", "cpus": "2"})


def test_message_matches_kube_scheduler_format():
    d = schedule(pod(host_port=80, nodeSelector={"zone": "a"}), [N1, N2], {"n1": [bound("x", "n1", 80)]})
    assert d.node is None
    assert d.message == (
        "0/2 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, "
        "1 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    )


def test_message_all_unresolvable():
    d = schedule(pod(nodeSelector={"zone": "c"}), [N1, N2], {})
    assert d.message == ("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
                         "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


@pytest.mark.parametrize(("spec", "node_obj", "reason"), [
    ({}, {**N1, "spec": {"unschedulable": True}}, "node(s) were unschedulable"),
    ({}, node("t", "172.31.0.3", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
     "node(s) had untolerated taint {dedicated: gpu}"),
    ({}, node("nr", "172.31.0.4", ready="False"), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
    ({}, node("un", "172.31.0.5", ready="Unknown"), "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
    ({"affinity": affinity({"key": "cpus", "operator": "Gt", "values": ["4"]})}, N2,
     "node(s) didn't match Pod's node affinity/selector"),
    ({"affinity": affinity(fields=[{"key": "metadata.name", "operator": "In", "values": ["n2"]}])}, N1,
     "node(s) didn't match Pod's node affinity/selector"),
    ({}, node("full", "172.31.0.6", pods="0"), "Too many pods"),
], ids=["unschedulable", "taint", "not-ready", "unreachable", "affinity-gt", "match-fields", "too-many-pods"])
def test_filter_reasons(spec, node_obj, reason):
    assert filter_node(pod(**spec), node_obj, [])[0] == reason


def test_tolerations_and_affinity_operators():
    assert tolerates({"operator": "Exists"}, {"key": "any", "effect": "NoExecute"})
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"}, {"key": "k", "value": "v", "effect": "NoSchedule"})
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"})
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"})
    spec = {"affinity": affinity({"key": "zone", "operator": "NotIn", "values": ["a"]},
                                 {"key": "gpu", "operator": "DoesNotExist"},
                                 {"key": "cpus", "operator": "Lt", "values": ["4"]})}
    assert affinity_matches(spec, N2)
    assert not affinity_matches(spec, N1)


def test_host_port_conflicts_by_ip_and_protocol():
    udp = bound("u", "n1")
    udp["spec"]["containers"][0]["ports"] = [{"containerPort": 53, "hostPort": 80, "protocol": "UDP"}]
    assert filter_node(pod(host_port=80), N1, [udp]) is None
    ip_bound = bound("i", "n1")
    ip_bound["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 80, "hostIP": "127.0.0.1"}]
    assert filter_node(pod(host_port=80), N1, [ip_bound]) is not None


def test_least_pods_wins():
    assert schedule(pod(), [N1, N2], {"n1": [bound("a", "n1")]}).node == "n2"


async def test_binds_and_reports_unschedulable(cluster: Kit):
    await cluster.nodes.create(node("n1", "172.31.0.1"))
    await cluster.pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
                               **{"spec": pod(host_port=8080)["spec"]}}, "default")
    await cluster.pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
                               **{"spec": pod(host_port=8080)["spec"]}}, "default")
    sched = SchedulerController(cluster.client)
    cluster.run(sched)

    async def state() -> dict:
        return {p["metadata"]["name"]: p for p in await cluster.list("v1", "pods")}

    async def one_bound_one_pending() -> bool:
        pods = await state()
        bound_ = [p for p in pods.values() if p["spec"].get("nodeName") == "n1"]
        pending = [p for p in pods.values() if not p["spec"].get("nodeName")]
        return len(bound_) == 1 and len(pending) == 1 and any(
            c.get("reason") == "Unschedulable" for c in pending[0].get("status", {}).get("conditions", []))
    await cluster.eventually(one_bound_one_pending)
    pods = await state()
    pending = next(p for p in pods.values() if not p["spec"].get("nodeName"))
    cond = next(c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["status"] == "False"
    assert cond["message"] == ("0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod "
                               "ports. preemption: 0/1 nodes are available: 1 No preemption victims found for "
                               "incoming pod.")
    events = await cluster.list("v1", "events")
    reasons = {(e["reason"], e["message"]) for e in events}
    winner = next(p for p in pods.values() if p["spec"].get("nodeName"))["metadata"]["name"]
    assert ("Scheduled", f"Successfully assigned default/{winner} to n1") in reasons
    assert any(r == "FailedScheduling" for r, _ in reasons)
    await cluster.assert_no_writes(sched, ["default/a", "default/b"])

    # A second node arrives: the pending pod is retried and bound there.
    await cluster.nodes.create(node("n2", "172.31.0.2"))

    async def all_bound() -> bool:
        return all(p["spec"].get("nodeName") for p in (await state()).values())
    await cluster.eventually(all_bound)
    assert {p["spec"]["nodeName"] for p in (await state()).values()} == {"n1", "n2"}
