"""ClusterIP / NodePort allocation: bootstrap Service, requested and dynamic values, uniqueness across
API servers sharing one store, release on delete, dual-stack families."""

from __future__ import annotations

import asyncio

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.request import WriteOptions

SVC = "/api/v1/namespaces/default/services"


def _opts() -> WriteOptions:
    return WriteOptions(field_manager="pyk3s-apiserver")


def svc(name: str, **spec) -> dict:
    spec.setdefault("ports", [{"port": 80, "protocol": "TCP", "targetPort": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def test_kubernetes_service(kc, api_server):
    out = await kc.ok("GET", f"{SVC}/kubernetes")
    assert out["spec"]["clusterIP"] == "10.43.0.1" and out["spec"]["clusterIPs"] == ["10.43.0.1"]
    assert out["spec"]["ports"][0]["port"] == 443
    ep = await kc.ok("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert ep["subsets"][0]["addresses"][0]["ip"] == api_server.config.advertise_address
    assert ep["subsets"][0]["ports"][0]["port"] == api_server.config.advertise_port
    names = [n["metadata"]["name"] for n in (await kc.ok("GET", "/api/v1/namespaces"))["items"]]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)


async def test_requested_and_dynamic_ips(kc):
    out = await kc.ok("POST", SVC, svc("dns", clusterIP="10.43.0.10"))
    assert out["spec"]["clusterIP"] == "10.43.0.10" and out["spec"]["ipFamilies"] == ["IPv4"]
    assert out["spec"]["ipFamilyPolicy"] == "SingleStack"
    status, err, _ = await kc.call("POST", SVC, svc("dup", clusterIP="10.43.0.10"))
    assert status == 422 and "provided IP is already allocated" in err["message"]
    status, err, _ = await kc.call("POST", SVC, svc("out", clusterIP="10.99.0.5"))
    assert status == 422
    dyn = await kc.ok("POST", SVC, svc("web"))
    ip = dyn["spec"]["clusterIP"]
    assert ip.startswith("10.43.") and ip not in ("10.43.0.1", "10.43.0.10")
    headless = await kc.ok("POST", SVC, svc("hl", clusterIP="None"))
    assert headless["spec"]["clusterIPs"] == ["None"]
    ext = await kc.ok("POST", SVC, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                                     "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert "clusterIP" not in ext["spec"] or not ext["spec"].get("clusterIP")
    await kc.ok("DELETE", f"{SVC}/dns")
    again = await kc.ok("POST", SVC, svc("dns2", clusterIP="10.43.0.10"))
    assert again["spec"]["clusterIP"] == "10.43.0.10"


async def test_node_ports(kc):
    out = await kc.ok("POST", SVC, svc("np", type="NodePort"))
    port = out["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    status, err, _ = await kc.call("POST", SVC, svc("np2", type="NodePort",
                                                    ports=[{"port": 80, "protocol": "TCP", "nodePort": port}]))
    assert status == 422 and "provided port is already allocated" in err["message"]
    # a PUT of the manifest without allocated values keeps them
    out2 = await kc.ok("PUT", f"{SVC}/np", svc("np", type="NodePort"))
    assert out2["spec"]["ports"][0]["nodePort"] == port and out2["spec"]["clusterIP"] == out["spec"]["clusterIP"]
    # switching to ClusterIP releases the node port
    await kc.ok("PATCH", f"{SVC}/np", {"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}},
                content_type="application/merge-patch+json")
    await kc.ok("POST", SVC, svc("np3", type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": port}]))
    lb = await kc.ok("POST", SVC, svc("lb", type="LoadBalancer", externalTrafficPolicy="Local"))
    assert lb["spec"]["ports"][0]["nodePort"] and lb["spec"]["healthCheckNodePort"]


async def test_uniqueness_across_servers(api_store):
    cfg = ApiConfig(service_cidrs=("10.43.0.0/28",), node_port_range=(30000, 30009))
    a, b = ApiServer(api_store, cfg), ApiServer(api_store, ApiConfig(service_cidrs=cfg.service_cidrs,
                                                                     node_port_range=cfg.node_port_range, bootstrap=False))
    await a.start()
    await b.start()
    try:
        info = a.catalog.table.get("", "v1", "services")

        async def make(api, i):
            return await api.registry.create(info, "default", svc(f"s{i}", type="NodePort"), _opts())

        made = await asyncio.gather(*(make(a if i % 2 else b, i) for i in range(12)), return_exceptions=True)
        ok = [m for m in made if isinstance(m, dict)]
        ips = [m["spec"]["clusterIP"] for m in ok] + ["10.43.0.1"]
        ports = [m["spec"]["ports"][0]["nodePort"] for m in ok]
        assert len(set(ips)) == len(ips) and len(set(ports)) == len(ports)
        assert len(ok) == 10  # ten node ports in the range; the other two are refused, leaking nothing
        assert all(getattr(m, "code", 0) == 422 for m in made if not isinstance(m, dict))
        _, keys = await api_store.list("/registry/pyk3s/allocations/clusterip/")
        assert len(keys) == 11
    finally:
        await a.stop()
        await b.stop()


async def test_dual_stack(api_store):
    api = ApiServer(api_store, ApiConfig(service_cidrs=("10.43.0.0/16", "fd00:43::/112")))
    await api.start()
    try:
        info = api.catalog.table.get("", "v1", "services")
        single = await api.registry.create(info, "default", svc("one"), _opts())
        assert single["spec"]["ipFamilies"] == ["IPv4"] and len(single["spec"]["clusterIPs"]) == 1
        dual = await api.registry.create(info, "default", svc("two", ipFamilyPolicy="PreferDualStack"), _opts())
        assert dual["spec"]["ipFamilies"] == ["IPv4", "IPv6"] and ":" in dual["spec"]["clusterIPs"][1]
        v6 = await api.registry.create(info, "default", svc("six", ipFamilies=["IPv6"]), _opts())
        assert ":" in v6["spec"]["clusterIP"]
    finally:
        await api.stop()
