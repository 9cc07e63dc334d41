"""The map against the real API core (in-process, memory store): every JSON view answers, a new
Service reaches the page's event stream and its view within 2 s, nothing but GET is served, and the
trace box gives the answers of `pyk3s ingress explain` and `pyk3s dns explain` themselves."""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from netmap_kit import Cluster, demo, started

from pyk3s.addons.dns.explain import explain as dns_explain
from pyk3s.addons.dns.explain import write_corefile
from pyk3s.addons.ingress.deployed import load
from pyk3s.addons.ingress.explain import explain as ingress_explain
from pyk3s.addons.ingress.providers import build_config
from pyk3s.addons.ingress.routing.compile import compile_config
from pyk3s.addons.ingress.runner import list_objects
from pyk3s.client import Client
from pyk3s.netmap.cache import MapCache
from pyk3s.netmap.state import MapState
from pyk3s.netmap.web import API, make_app


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async for c in started():
        await c.apply_all(demo())
        yield c


@pytest.fixture
async def page(cluster: Cluster) -> AsyncIterator[tuple[TestClient, MapState]]:
    cache = MapCache(cluster.client, throttle=0.05)
    await cache.start()
    state = MapState(cache, None, "in-process", client_factory=lambda _kc: Client.in_process(cluster.api))
    client = TestClient(TestServer(make_app(state)))
    await client.start_server()
    try:
        yield client, state
    finally:
        await client.close()
        await cache.stop()


async def _get(client: TestClient, path: str) -> Any:
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status, await resp.text())
    return await resp.json()


async def test_every_view_answers_and_the_page_is_served(page: tuple[TestClient, MapState]) -> None:
    client, _ = page
    index = await _get(client, "/api/")
    assert set(index["paths"]) == set(API)
    overview = await _get(client, "/api/overview")
    assert overview["loadBalancers"] == {"total": 2, "pending": 1} and overview["routers"]["errors"] == 1
    nodes = await _get(client, "/api/nodes")
    assert [n["name"] for n in nodes["nodes"]] == ["n0", "n1"]
    services = await _get(client, "/api/services?namespace=demo")
    lb = next(s for s in services["namespaces"][0]["services"] if s["name"] == "web-lb")["lb"]
    assert lb["state"] == "pending" and set(lb["nodes"]) == {"n0", "n1"}
    ingress = await _get(client, "/api/ingress")
    assert any(r["status"] == "disabled" for r in ingress["routers"])
    assert "available" in await _get(client, "/api/policies?namespace=demo")
    status = await _get(client, "/api/status")
    assert status["synced"]
    index = await (await client.get("/")).text()
    scripts = [line.split('"')[1] for line in index.splitlines() if line.startswith("<script src=")]
    assert scripts[-1] == "static/map.js" and len(scripts) == 7
    for asset in ["static/map.css", *scripts]:
        resp = await client.get("/" + asset)
        assert resp.status == 200 and len(await resp.read()) > 500, asset
    assert (await client.get("/static/secret.txt")).status == 404


async def test_read_only_and_host_checked(page: tuple[TestClient, MapState]) -> None:
    client, _ = page
    assert (await client.post("/api/services", data=b"{}")).status == 405
    assert (await client.delete("/api/services")).status == 405
    assert (await client.get("/api/overview", headers={"Host": "evil.example:8001"})).status == 403
    assert (await client.get("/api/overview", headers={"Host": "localhost:8001"})).status == 200


async def test_a_new_service_reaches_the_event_stream_and_its_view_within_2s(
        page: tuple[TestClient, MapState], cluster: Cluster) -> None:
    client, _ = page
    resp = await client.get("/api/watch")
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    hello = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
    assert hello.startswith(b"event: hello")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await cluster.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fresh", "namespace": "demo"},
                          "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}})
    while True:
        chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
        if chunk.startswith(b"event: change") and b'"services"' in chunk:
            break
    services = await _get(client, "/api/services?namespace=demo")
    assert "fresh" in [s["name"] for s in services["namespaces"][0]["services"]]
    assert loop.time() - t0 < 2.0
    resp.close()


async def test_url_trace_carries_ingress_explains_own_answer(page: tuple[TestClient, MapState], cluster: Cluster) -> None:
    client, _ = page
    for url in ("http://api.example/api/x", "http://admin.example/", "http://nothing.example/"):
        # what `pyk3s ingress explain URL --json` computes: the cluster's static config, one listing
        dep = await load(cluster.client)
        objs = await list_objects(cluster.client, dep.static)
        expected = ingress_explain(compile_config(build_config(dep.static, objs), dep.static), url, [],
                                   dep.entrypoint_for(url))
        got = await _get(client, "/api/trace?q=" + url)
        assert got["kind"] == "url" and got["ingress"] == json.loads(json.dumps(expected)), url
    ok = await _get(client, "/api/trace?q=http://api.example/api/x")
    layers = [h["layer"] for h in ok["hops"]]
    assert layers[:5] == ["client", "dns", "loadbalancer", "entrypoint", "router"] and ok["status"] == "ok"
    assert [h["title"] for h in ok["hops"] if h["layer"] == "middleware"] == ["demo-strip@kubernetescrd"]
    assert {(h["title"], h["why"][0]) for h in ok["hops"] if h["layer"] == "endpoint"} == {
        ("demo/web-1", "http://10.42.0.10:80 on node n0"), ("demo/web-2", "http://10.42.1.10:80 on node n1")}
    iservice = next(h for h in ok["hops"] if h["layer"] == "ingress-service")
    assert "Kubernetes Service demo/web" in iservice["why"]
    lb = next(h for h in ok["hops"] if h["layer"] == "loadbalancer")
    assert lb["status"] == "ok" and lb["why"][0] == "addresses 172.31.9.1, 172.31.9.2"
    entry = next(h for h in ok["hops"] if h["layer"] == "entrypoint")
    assert entry["title"] == "web" and "port 80 of the published Service targets this entry point" in entry["why"]
    broken = await _get(client, "/api/trace?q=http://admin.example/")
    router = next(h for h in broken["hops"] if h["layer"] == "router")
    assert broken["status"] == "error" and router["title"].startswith("demo-admin-")
    assert router["why"][0] == 'disabled: middleware "demo-admin-auth@kubernetescrd" does not exist'


async def test_dns_trace_is_dns_explains_story_followed_to_the_endpoints(
        page: tuple[TestClient, MapState], cluster: Cluster) -> None:
    client, _ = page
    got = await _get(client, "/api/trace?q=web.demo.svc.cluster.local")
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        await dns_explain("web.demo.svc.cluster.local", "A", write_corefile({}, {}, tmp),
                          client_factory=lambda _kc: Client.in_process(cluster.api), out=out)
    assert got["kind"] == "dns" and got["dns"]["text"] == out.getvalue()
    assert got["dns"]["rcode"] == "NOERROR"
    service = next(h for h in got["hops"] if h["layer"] == "service")
    assert service["title"] == "Service demo/web" and service["status"] == "ok"
    assert len([h for h in got["hops"] if h["layer"] == "endpoint"]) == 2
    missing = await _get(client, "/api/trace?q=nope.demo.svc.cluster.local")
    assert missing["status"] == "error" and missing["dns"]["rcode"] == "NXDOMAIN"
