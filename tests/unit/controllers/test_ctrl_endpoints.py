from __future__ import annotations

from ctrl_kit import Kit, cluster_fixture  # noqa: F401

from pyk3s.controllers.endpoints import EndpointsController, desired_endpoints, desired_slices, manages

SVC = {"apiVersion": "v1", "kind": "Service",
       "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"team": "a"}},
       "spec": {"selector": {"app": "web"}, "ipFamilies": ["IPv4"],
                "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                          {"name": "metrics", "port": 9090, "targetPort": 9090}]}}


def pod(name: str, ip: str, *, ready: bool = True, ports: bool = True, deleting: bool = False, node: str = "n1"):
    meta = {"name": name, "namespace": "default", "uid": f"u-{name}", "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    cports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}] if ports else []
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "c", "ports": cports}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_endpoints_subsets_group_by_ports_and_readiness():
    ep = desired_endpoints(SVC, [pod("a", "10.42.0.2"), pod("b", "10.42.0.3", ready=False),
                                 pod("c", "10.42.0.4", ports=False), pod("d", "10.42.0.5", deleting=True)])
    assert ep["metadata"] == {"name": "web", "namespace": "default", "labels": {"team": "a"}}
    full, partial = sorted(ep["subsets"], key=lambda s: len(s["ports"]), reverse=True)
    assert full["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"},
                             {"name": "metrics", "port": 9090, "protocol": "TCP"}]
    assert [a["ip"] for a in full["addresses"]] == ["10.42.0.2"]
    assert [a["ip"] for a in full["notReadyAddresses"]] == ["10.42.0.3"]
    assert full["addresses"][0]["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "a", "uid": "u-a"}
    assert full["addresses"][0]["nodeName"] == "n1"
    assert partial["ports"] == [{"name": "metrics", "port": 9090, "protocol": "TCP"}]
    assert [a["ip"] for a in partial["addresses"]] == ["10.42.0.4"]


def test_slices_conditions_and_labels():
    slices = desired_slices(SVC, [pod("a", "10.42.0.2"), pod("t", "10.42.0.3", deleting=True)])
    (s,) = slices
    assert s["addressType"] == "IPv4"
    assert s["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    conds = {e["targetRef"]["name"]: e["conditions"] for e in s["endpoints"]}
    assert conds == {"a": {"ready": True, "serving": True, "terminating": False},
                     "t": {"ready": False, "serving": True, "terminating": True}}
    assert [p["port"] for p in s["ports"]] == [8080, 9090]


def test_publish_not_ready_and_empty_service():
    svc = {**SVC, "spec": {**SVC["spec"], "publishNotReadyAddresses": True}}
    ep = desired_endpoints(svc, [pod("b", "10.42.0.3", ready=False)])
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.42.0.3"]
    (s,) = desired_slices(SVC, [])
    assert s["endpoints"] == [] and s["ports"] == []
    assert "subsets" not in desired_endpoints(SVC, [])


def test_skipped_services():
    assert not manages({"metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"selector": {"a": "b"}}})
    assert not manages({"metadata": {"name": "x", "namespace": "default"}, "spec": {}})
    assert not manages({"metadata": {"name": "x", "namespace": "default"},
                        "spec": {"type": "ExternalName", "selector": {"a": "b"}}})


async def test_reconcile_writes_endpoints_and_slices_once(cluster: Kit):
    svc_api = cluster.client.resource("v1", "services")
    await svc_api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                          "spec": {"selector": {"app": "web"},
                                   "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}, "default")
    for name, ports in (("a", True), ("b", False)):
        p = pod(name, "0.0.0.0", ports=ports)
        await cluster.pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "c", "image": "x",
                                                            "ports": p["spec"]["containers"][0]["ports"]}]}},
                                  "default")
    await cluster.make_ready()
    ctrl = EndpointsController(cluster.client)
    cluster.run(ctrl)

    async def ready() -> bool:
        try:
            ep = await cluster.client.resource("v1", "endpoints").get("web", "default")
        except Exception:
            return False
        return bool(ep.get("subsets"))
    await cluster.eventually(ready)
    await cluster.assert_no_writes(ctrl, ["default/web", "default/kubernetes"])
    slices = [s for s in await cluster.list("discovery.k8s.io/v1", "endpointslices")
              if s["metadata"]["labels"].get("kubernetes.io/service-name") == "web"]
    assert all(s["metadata"]["name"].startswith("web-") for s in slices)
    by_ports = {tuple(p["port"] for p in s["ports"]): [e["targetRef"]["name"] for e in s["endpoints"]] for s in slices}
    assert by_ports == {(8080,): ["a"], (): ["b"]}   # b names no port "http": in no slice with ports
    ep = await cluster.client.resource("v1", "endpoints").get("web", "default")
    assert [[a["targetRef"]["name"] for a in s["addresses"]] for s in ep["subsets"]] == [["a"]]
    events = [e for e in await cluster.list("v1", "events") if e["reason"] == "FailedToResolvePort"]
    assert len(events) == 1 and events[0]["type"] == "Warning" and "default/b" in events[0]["message"]

    await svc_api.delete("web", "default")

    async def gone() -> bool:
        return not [e for e in await cluster.list("v1", "endpoints") if e["metadata"]["name"] == "web"]
    await cluster.eventually(gone)
