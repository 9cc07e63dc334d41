from __future__ import annotations

from ctrl_kit import Kit, cluster_fixture  # noqa: F401

from pyk3s.client import NotFound
from pyk3s.controllers.gc import GarbageCollector, owner_verdict


def test_owner_verdicts():
    assert owner_verdict(["absent"]) == "delete"
    assert owner_verdict(["absent", "waiting"]) == "delete-foreground"
    assert owner_verdict(["present", "absent"]) == "strip"
    assert owner_verdict(["present"]) == "keep"
    assert owner_verdict(["unknown", "absent"]) == "keep"


def cm(name: str, owner: dict | None = None, block: bool = True) -> dict:
    meta: dict = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}


async def _exists(api, name: str) -> bool:
    try:
        await api.get(name, "default")
        return True
    except NotFound:
        return False


async def test_background_foreground_orphan(cluster: Kit):
    api = cluster.client.resource("v1", "configmaps")
    gc = GarbageCollector(cluster.client)
    cluster.run(gc)
    # Background: owner deleted first, dependents follow.
    owner = await api.create(cm("owner"))
    await api.create(cm("dep1", owner))
    await api.create(cm("dangling", {"metadata": {"name": "never", "uid": "no-such-uid"}}))
    await api.delete("owner", "default", propagation_policy="Background")

    async def bg_done() -> bool:
        return not await _exists(api, "dep1") and not await _exists(api, "dangling")
    await cluster.eventually(bg_done)

    # Foreground: the owner stays (finalizer) until blocking dependents are gone.
    owner = await api.create(cm("fg-owner"))
    await api.create(cm("fg-dep", owner))
    await api.delete("fg-owner", "default", propagation_policy="Foreground")

    async def fg_done() -> bool:
        return not await _exists(api, "fg-owner") and not await _exists(api, "fg-dep")
    await cluster.eventually(fg_done)

    # Orphan: dependents lose the reference and stay.
    owner = await api.create(cm("or-owner"))
    await api.create(cm("or-dep", owner))
    await api.delete("or-owner", "default", propagation_policy="Orphan")

    async def orphaned() -> bool:
        if await _exists(api, "or-owner"):
            return False
        dep = await api.get("or-dep", "default")
        return not dep["metadata"].get("ownerReferences")
    await cluster.eventually(orphaned)

    # A live owner keeps its dependents; a second pass writes nothing.
    owner = await api.create(cm("live"))
    await api.create(cm("kept", owner))
    await cluster.settle()
    assert await _exists(api, "kept")
    await cluster.assert_no_writes(gc, list(gc.objects))
