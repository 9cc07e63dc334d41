"""Smaller paths: sendInitialEvents, Exact list at a compacted revision, hooks for pods/log and
serviceaccounts/token, eviction, protobuf bodies, error Status shapes."""

from __future__ import annotations

import asyncio
import json

from pyk3s.api.request import ApiResponse

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


async def _lines(resp, n: int) -> list[dict]:
    out, buf, it = [], b"", resp.stream.__aiter__()
    while len(out) < n:
        buf += await asyncio.wait_for(it.__anext__(), 2)
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append(json.loads(line))
    await it.aclose()
    return out


async def test_send_initial_events(kc):
    await kc.ok("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    status, err, _ = await kc.call("GET", CM, query=[("watch", "1"), ("sendInitialEvents", "true")])
    assert status == 422
    status, _, resp = await kc.call("GET", CM, query=[("watch", "1"), ("sendInitialEvents", "true"),
                                                      ("resourceVersionMatch", "NotOlderThan"),
                                                      ("allowWatchBookmarks", "true")])
    added, bookmark = await _lines(resp, 2)
    assert added["type"] == "ADDED" and bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_exact_list_compacted(kc, api_store):
    await kc.ok("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    await kc.ok("PATCH", f"{CM}/a", {"data": {"x": "1"}}, content_type="application/merge-patch+json")
    await api_store.compact(await api_store.current_revision())
    status, err, _ = await kc.call("GET", CM, query=[("resourceVersion", "2"), ("resourceVersionMatch", "Exact")])
    assert status == 410 and err["reason"] == "Expired"


async def test_pod_log_and_token_hooks(kc, api_server):
    await kc.ok("POST", PODS, pod("p"))
    status, err, _ = await kc.call("GET", f"{PODS}/p/log")
    assert status == 404

    async def logs(req, ns, name):
        return ApiResponse(200, f"log of {ns}/{name}\n".encode(), content_type="text/plain")

    api_server.subresources.pod_log_hook = logs
    status, body, _ = await kc.call("GET", f"{PODS}/p/log", query=[("container", "c")])
    assert status == 200 and body == "log of default/p\n"
    status, err, _ = await kc.call("GET", f"{PODS}/missing/log")
    assert status == 404 and err["message"] == 'pods "missing" not found'

    async def token(req, ns, name, body):
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "status": {"token": f"t-{name}"}}

    api_server.subresources.sa_token_hook = token
    await kc.ok("POST", "/api/v1/namespaces/default/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}})
    out = await kc.ok("POST", "/api/v1/namespaces/default/serviceaccounts/sa/token",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert out["status"]["token"] == "t-sa"


async def test_eviction(kc):
    await kc.ok("POST", PODS, pod("e"))
    out = await kc.ok("POST", f"{PODS}/e/eviction", {"apiVersion": "policy/v1", "kind": "Eviction",
                                                     "metadata": {"name": "e"}})
    assert out["status"] == "Success"
    status, _, _ = await kc.call("GET", f"{PODS}/e")
    assert status == 404


async def test_bad_bodies(kc):
    status, err, _ = await kc.call("POST", CM, raw=b"{not json")
    assert status == 400 and err["kind"] == "Status"
    status, err, _ = await kc.call("POST", CM, raw=b"k8s\x00garbage", content_type="application/vnd.kubernetes.protobuf")
    assert status in (400, 415)
    status, err, _ = await kc.call("POST", CM, raw=b"x", content_type="text/html")
    assert status == 415
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d","name":"e"}}'
    status, err, _ = await kc.call("POST", CM + "?fieldValidation=Strict", raw=body)
    assert status == 400 and 'duplicate field "name"' in err["message"]
    status, err, _ = await kc.call("POST", CM, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "z"}})
    assert status == 400


async def test_cluster_scoped_paths(kc):
    status, _, _ = await kc.call("GET", "/api/v1/namespaces/default/nodes")
    assert status == 404
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}}}
    out = await kc.ok("POST", "/api/v1/nodes", node)
    assert out["status"]["capacity"] == {"cpu": "2"} and "namespace" not in out["metadata"]
    lst = await kc.ok("GET", "/api/v1/watch/nodes".replace("/watch", ""))
    assert [n["metadata"]["name"] for n in lst["items"]] == ["n1"]
