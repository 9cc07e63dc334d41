from __future__ import annotations

from ctrl_kit import Kit, cluster_fixture  # noqa: F401

from pyk3s.controllers.serviceaccounts import ServiceAccountsController


async def test_default_service_account_in_every_namespace(cluster: Kit):
    ns_api = cluster.client.resource("v1", "namespaces")
    sa_api = cluster.client.resource("v1", "serviceaccounts")
    await ns_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    ctrl = ServiceAccountsController(cluster.client)
    cluster.run(ctrl)

    async def present(ns: str) -> bool:
        return any(sa["metadata"]["name"] == "default" for sa in (await sa_api.list(ns))["items"])
    await cluster.eventually(lambda: present("team-a"))
    await cluster.eventually(lambda: present("default"))
    await cluster.assert_no_writes(ctrl, ["team-a", "default"])

    await sa_api.delete("default", "team-a")  # deleted by hand: created again
    await cluster.eventually(lambda: present("team-a"))
    await ns_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}})
    await cluster.eventually(lambda: present("team-b"))
