from __future__ import annotations

import asyncio

from ctrl_kit import Kit, cluster_fixture, pod_template  # noqa: F401

from pyk3s.controllers.deployment import DeploymentController
from pyk3s.controllers.replicaset import ReplicaSetController
from pyk3s.controllers.rollout import REVISION


def rollout_done(d: dict) -> bool:
    """kubectl rollout status's success test (spec 6.12)."""
    st = d.get("status") or {}
    want = d["spec"].get("replicas", 1)
    return (
        d["metadata"].get("generation", 0) <= st.get("observedGeneration", 0)
        and st.get("updatedReplicas", 0) >= want
        and st.get("replicas", 0) == st.get("updatedReplicas", 0)
        and st.get("availableReplicas", 0) >= st.get("updatedReplicas", 0)
    )


async def _kubelet(kit: Kit, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await kit.make_ready()
        await kit.finish_deletions()
        await asyncio.sleep(0.05)


async def test_deployment_rolls_out_and_updates(cluster: Kit):
    d_api = cluster.client.resource("apps/v1", "deployments")
    await d_api.create({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "app"}}, "template": pod_template({"app": "app"})},
    })
    dc, rc = DeploymentController(cluster.client), ReplicaSetController(cluster.client)
    cluster.run(dc, rc)
    stop = asyncio.Event()
    kubelet = asyncio.create_task(_kubelet(cluster, stop))
    try:
        async def done() -> bool:
            return rollout_done(await d_api.get("app", "default"))
        await cluster.eventually(done)
        d = await d_api.get("app", "default")
        conds = {c["type"]: c for c in d["status"]["conditions"]}
        assert conds["Available"]["status"] == "True"
        assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
        assert d["metadata"]["annotations"][REVISION] == "1"

        d["spec"]["template"]["spec"]["containers"][0]["image"] = "pyk3s/whoami:v2"
        await d_api.update(d)

        async def two_revisions() -> bool:
            d = await d_api.get("app", "default")
            rss = await cluster.list("apps/v1", "replicasets")
            return rollout_done(d) and d["metadata"]["annotations"].get(REVISION) == "2" and len(rss) == 2 and \
                sorted(rs["spec"]["replicas"] for rs in rss) == [0, 3]
        await cluster.eventually(two_revisions, timeout=15)
        stop.set()
        await kubelet
        await cluster.assert_no_writes(dc, ["default/app"])
        rss = await cluster.list("apps/v1", "replicasets")
        await cluster.assert_no_writes(rc, [f"default/{rs['metadata']['name']}" for rs in rss])
    finally:
        stop.set()
        await kubelet
