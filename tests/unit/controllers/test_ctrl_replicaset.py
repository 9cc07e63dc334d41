from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ctrl_kit import Kit, cluster_fixture, pod_template  # noqa: F401

from pyk3s.controllers.replicaset import (
    ReplicaSetController,
    claim_pods,
    deletion_order,
    pod_from_template,
    replicaset_status,
)

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
RS = {
    "apiVersion": "apps/v1", "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid", "generation": 2},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": pod_template({"app": "web", "tier": "fe"})},
}


def pod(name: str, *, node: str = "", phase: str = "Running", ready: bool = True, owner: str | None = "rs-uid",
        labels: dict[str, str] | None = None, created: str = "2024-01-01T10:00:00Z",
        ready_since: str = "2024-01-01T11:00:00Z", deleting: bool = False) -> dict:
    meta = {"name": name, "namespace": "default", "uid": f"u-{name}", "creationTimestamp": created,
            "labels": labels if labels is not None else {"app": "web", "tier": "fe"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": owner,
                                    "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T11:59:00Z"
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_since}]}}


def test_claim_adopts_orphans_releases_mismatches_ignores_foreign():
    pods = [pod("mine"), pod("orphan", owner=None), pod("stray", labels={"app": "other"}),
            pod("foreign", owner="other-uid"), pod("orphan-deleting", owner=None, deleting=True)]
    claim = claim_pods(RS, pods)
    assert [p["metadata"]["name"] for p in claim.owned] == ["mine"]
    assert [p["metadata"]["name"] for p in claim.adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in claim.release] == ["stray"]


def test_deletion_order_prefers_unscheduled_pending_notready_newest():
    pods = [
        pod("old-ready", node="n1", created="2024-01-01T09:00:00Z"),
        pod("new-ready", node="n2", created="2024-01-01T10:00:00Z"),
        pod("not-ready", node="n3", ready=False),
        pod("pending", node="n4", phase="Pending", ready=False),
        pod("unscheduled", phase="Pending", ready=False),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]


def test_deletion_order_siblings_on_same_node_first():
    pods = [pod("alone", node="n1"), pod("crowd-a", node="n2"), pod("crowd-b", node="n2")]
    assert deletion_order(pods)[0]["metadata"]["name"].startswith("crowd")


def test_status_counts_and_min_ready_seconds():
    rs = {**RS, "spec": {**RS["spec"], "minReadySeconds": 3600}}
    pods = [pod("a", ready_since="2024-01-01T09:00:00Z"), pod("b", ready_since="2024-01-01T11:30:00Z"),
            pod("c", ready=False, labels={"app": "web"}), pod("gone", deleting=True)]
    status = replicaset_status(rs, pods, NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 2}


def test_pod_from_template_owner_and_generate_name():
    p = pod_from_template(RS, "apps/v1", "ReplicaSet", RS["spec"]["template"])
    assert p["metadata"]["generateName"] == "web-"
    assert p["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                 "uid": "rs-uid", "controller": True, "blockOwnerDeletion": True}]


@pytest.mark.asyncio
async def test_reconcile_scales_up_and_down_and_is_idempotent(cluster: Kit):
    rs_api = cluster.client.resource("apps/v1", "replicasets")
    spec = {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template({"app": "web"})}
    await rs_api.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                         "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "x"}]}}
    await cluster.pods.create(orphan, "default")
    ctrl = ReplicaSetController(cluster.client)
    cluster.run(ctrl)

    async def count() -> int:
        pods = await cluster.list("v1", "pods")
        return len(pods) if all(p["metadata"].get("ownerReferences") for p in pods) else 0
    assert await cluster.eventually(lambda: _eq(count, 3))
    await cluster.make_ready()

    async def ready() -> bool:
        st = (await rs_api.get("web", "default")).get("status") or {}
        return st.get("readyReplicas") == 3 and st.get("availableReplicas") == 3
    await cluster.eventually(ready)
    await cluster.assert_no_writes(ctrl, ["default/web"])
    assert await cluster.pods.get("orphan", "default")  # adopted, not replaced

    cur = await rs_api.get("web", "default")
    await rs_api.update({**cur, "spec": {**cur["spec"], "replicas": 1}})

    async def deleting() -> int:
        return sum(1 for p in await cluster.list("v1", "pods") if not p["metadata"].get("deletionTimestamp"))
    await cluster.eventually(lambda: _eq(deleting, 1))
    await cluster.finish_deletions()
    await cluster.eventually(lambda: _eq(count, 1))
    await cluster.assert_no_writes(ctrl, ["default/web"])


async def _eq(fn, want) -> bool:
    return await fn() == want
