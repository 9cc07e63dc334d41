from __future__ import annotations

from collections import Counter

from ctrl_kit import Kit, cluster_fixture  # noqa: F401

from pyk3s.client import NotFound
from pyk3s.controllers.namespace import NamespaceController, deletion_conditions


def test_conditions_messages():
    conds = {c["type"]: c for c in deletion_conditions(Counter({"pods.": 2}), Counter({"x/y": 1}), [])}
    assert conds["NamespaceContentRemaining"]["message"] == "Some resources are remaining: pods. has 2 resource instances"
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: x/y in 1 resource instances"
    assert conds["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    done = {c["type"]: c for c in deletion_conditions(Counter(), Counter(), [])}
    assert done["NamespaceContentRemaining"]["reason"] == "ContentRemoved"


async def test_namespace_content_deleted_then_finalized(cluster: Kit):
    ns_api = cluster.client.resource("v1", "namespaces")
    cm_api = cluster.client.resource("v1", "configmaps")
    await ns_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pkdoomed"}})
    await cm_api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}, "pkdoomed")
    await cm_api.create({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "held", "finalizers": ["pyk3s.test/hold"]}}, "pkdoomed")
    ctrl = NamespaceController(cluster.client)
    cluster.run(ctrl)
    await ns_api.delete("pkdoomed")

    async def held() -> bool:
        ns = await ns_api.get("pkdoomed")
        conds = {c["type"]: c for c in (ns.get("status") or {}).get("conditions") or []}
        return conds.get("NamespaceFinalizersRemaining", {}).get("status") == "True"
    await cluster.eventually(held)
    cur = await cm_api.get("held", "pkdoomed")
    cur["metadata"]["finalizers"] = []
    await cm_api.update(cur)

    async def gone() -> bool:
        try:
            await ns_api.get("pkdoomed")
            return False
        except NotFound:
            return True
    await cluster.eventually(gone)
