"""TCP and UDP routers in the ingress view, from the compiled configuration's TCP part (the ingress's
IngressRouteTCP/IngressRouteUDP support)."""

from __future__ import annotations

from netmap_kit import demo, started

from pyk3s.addons.ingress.deployed import load
from pyk3s.addons.ingress.explain_tcp import explain_tcp
from pyk3s.addons.ingress.providers import build_config
from pyk3s.addons.ingress.routing.compile import compile_config
from pyk3s.addons.ingress.runner import list_objects
from pyk3s.netmap.cache import MapCache
from pyk3s.netmap.ingress import build_model, ingress_view
from pyk3s.netmap.state import MapState
from pyk3s.netmap.trace import trace

ROUTES = [
    {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRouteTCP", "metadata": {"name": "echo", "namespace": "demo"},
     "spec": {"entryPoints": ["websecure"], "tls": {"passthrough": True},
              "routes": [{"match": "HostSNI(`echo.example`)", "services": [{"name": "web", "port": 80}]}]}},
    {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRouteUDP", "metadata": {"name": "dns", "namespace": "demo"},
     "spec": {"entryPoints": ["web"], "routes": [{"services": [{"name": "web", "port": 80}]}]}},
]


def test_tcp_and_udp_routers_with_their_errors_services_and_pods() -> None:
    objs = demo() + ROUTES
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    ingress = [o for o in objs if o["kind"] not in ("Deployment", "CustomResourceDefinition", "Node")]
    view = ingress_view(build_model(deployments, ingress), ingress, [o for o in objs if o["kind"] == "EndpointSlice"],
                        [o for o in objs if o["kind"] == "Pod"], [])
    tcp = next(r for r in view["routers"] if r["protocol"] == "tcp")
    assert tcp["from"] == "IngressRouteTCP demo/echo" and tcp["status"] == "enabled" and tcp["passthrough"]
    assert tcp["entryPoints"] == ["websecure"] and tcp["rule"] == "HostSNI(`echo.example`)"
    servers = view["tcpServices"][tcp["service"]]["servers"]
    assert {(s["pod"], s["service"], s["port"]) for s in servers} == {("demo/web-1", "demo/web", 80),
                                                                     ("demo/web-2", "demo/web", 80)}
    udp = next(r for r in view["routers"] if r["protocol"] == "udp")
    assert udp["from"] == "IngressRouteUDP demo/dns" and udp["status"] == "disabled"
    assert any("doesn't exist" in e for e in udp["errors"])
    assert tcp["name"] in next(e for e in view["entrypoints"] if e["name"] == "websecure")["routers"]


async def test_tcp_trace_is_ingress_explains_answer() -> None:
    async for cluster in started():
        await cluster.apply_all(demo())
        for route in ROUTES:
            await cluster.client.resource("traefik.io/v1alpha1", route["kind"].lower() + "s").create(
                route, namespace="demo")
        cache = MapCache(cluster.client, throttle=0.05)
        await cache.start()
        try:
            state = MapState(cache, None)
            for query, sni in (("tcp://echo.example:443 --sni echo.example", "echo.example"),
                               ("tcp://other.example:443 --sni other.example", "other.example")):
                # what `pyk3s ingress explain --json tcp://HOST:443 --sni NAME` computes
                dep = await load(cluster.client)
                objs = await list_objects(cluster.client, dep.static)
                url = query.split()[0]
                expected = explain_tcp(compile_config(build_config(dep.static, objs), dep.static), url, sni, (), False,
                                       "127.0.0.1", dep.entrypoint_for(url))
                got = await trace(state, query)
                assert got["kind"] == "tcp" and got["ingress"] == expected, query
                assert got["commands"]["ingress"] == f"pyk3s ingress explain --json {query}"
            routed = await trace(state, "tcp://echo.example:443 --sni echo.example")
            assert [h["layer"] for h in routed["hops"]][:4] == ["client", "loadbalancer", "entrypoint", "router"]
            assert {h["title"] for h in routed["hops"] if h["layer"] == "endpoint"} == {"demo/web-1", "demo/web-2"}
        finally:
            await cache.stop()
