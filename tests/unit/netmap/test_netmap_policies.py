"""NetworkPolicy in the map: the matrix is the one `pyk3s netpol matrix` prints, a cell's explanation
and a pod pair's trace are `pyk3s netpol explain --json`, from the objects the map watches."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from netmap_kit import Cluster, demo, started

from pyk3s.netmap.cache import MapCache
from pyk3s.netmap.state import MapState
from pyk3s.netmap.web import make_app
from pyk3s.netpol.cluster import cluster_of, matrix_pods
from pyk3s.netpol.evaluate import evaluate
from pyk3s.netpol.matrix import build_index, reachability


@pytest.fixture
async def page() -> AsyncIterator[tuple[TestClient, Cluster]]:
    async for cluster in started():
        await cluster.apply_all(demo())
        cache = MapCache(cluster.client, throttle=0.05)
        await cache.start()
        client = TestClient(TestServer(make_app(MapState(cache, None))))
        await client.start_server()
        try:
            yield client, cluster
        finally:
            await client.close()
            await cache.stop()


async def _get(client: TestClient, path: str, status: int = 200) -> Any:
    resp = await client.get(path)
    assert resp.status == status, (path, resp.status, await resp.text())
    return await resp.json()


async def _cli_cluster(cluster: Cluster) -> Any:
    """What `pyk3s netpol` reads: one listing of each kind."""
    lists = [(await cluster.client.resource(a, p).list())["items"] for a, p in (
        ("v1", "pods"), ("v1", "namespaces"), ("networking.k8s.io/v1", "networkpolicies"), ("v1", "nodes"))]
    return cluster_of(*lists)


async def test_the_matrix_is_netpol_matrix(page: tuple[TestClient, Cluster]) -> None:
    client, cluster = page
    got = await _get(client, "/api/policies?namespace=demo&port=80/TCP")
    assert got["available"] and got["selected"] == ["demo"] and got["port"] == "80/TCP"
    keys = [p["key"] for p in got["pods"]]
    assert keys == ["demo/client-1", "demo/web-1", "demo/web-2"]
    expected_cluster = await _cli_cluster(cluster)
    pods = matrix_pods(expected_cluster, ["demo"])
    table = reachability(build_index(expected_cluster), pods, "TCP", 80)
    assert got["allowed"] == [[table[(s.key, d.key)] for d in pods] for s in pods]
    cell = {(s, d): got["allowed"][i][j] for i, s in enumerate(keys) for j, d in enumerate(keys)}
    assert cell[("demo/client-1", "demo/web-1")] and not cell[("demo/web-1", "demo/client-1")]
    assert not cell[("demo/web-1", "demo/web-2")]
    assert {p["key"]: p["selects"] for p in got["policies"]}["demo/web-from-client"] == ["demo/web-1", "demo/web-2"]
    bad = await _get(client, "/api/policies?namespace=demo&port=http")
    assert "expected PORT" in bad["problem"]


async def test_a_cell_and_a_pod_pair_trace_are_netpol_explain(page: tuple[TestClient, Cluster]) -> None:
    client, cluster = page
    expected_cluster = await _cli_cluster(cluster)
    for src, dst in (("demo/client-1", "demo/web-2"), ("demo/web-2", "demo/client-1")):
        verdict = evaluate(expected_cluster, expected_cluster.endpoint(src), expected_cluster.endpoint(dst), "TCP", 80)
        expected = {"allowed": verdict.allowed, "lines": verdict.lines()}
        q = urllib.parse.urlencode({"from": src, "to": dst, "port": "80/TCP"})
        assert await _get(client, f"/api/policies/explain?{q}") == expected
        trace = await _get(client, "/api/trace?q=" + urllib.parse.quote(f"{src} -> {dst}:80"))
        assert trace["kind"] == "pods" and trace["netpol"] == expected
        assert trace["status"] == ("ok" if verdict.allowed else "error")
        layers = [h["layer"] for h in trace["hops"]]
        assert layers == ["source", "route", "policy", "destination"]
    route = next(h for h in trace["hops"] if h["layer"] == "route")
    assert route["title"] == "node n1" and "routed between their veths" in route["why"][0]  # both pods on n1
    across = await _get(client, "/api/trace?q=" + urllib.parse.quote("demo/client-1 -> demo/web-1:80"))
    route = next(h for h in across["hops"] if h["layer"] == "route")
    assert route["title"] == "node n1 -> node n0" and "10.42.0.0/24" in route["why"][0]
    missing = await _get(client, "/api/policies/explain?from=demo/nope&to=demo/web-1&port=80", 400)
    assert "not found" in missing["error"]


async def test_a_service_as_destination_is_judged_per_endpoint(page: tuple[TestClient, Cluster]) -> None:
    client, _ = page
    trace = await _get(client, "/api/trace?q=" + urllib.parse.quote("demo/client-1 -> svc/demo/web:80"))
    assert [h["layer"] for h in trace["hops"]][:2] == ["source", "service"]
    assert [h["title"] for h in trace["hops"] if h["layer"] == "policy"] == ["allowed", "allowed"]
    assert len(trace["netpol"]["verdicts"]) == 2
