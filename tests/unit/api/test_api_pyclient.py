"""The official `kubernetes` Python client against the API core, through a minimal plain-HTTP wrapper
(the real HTTPS adapter is pyk3s.api.http; this one only forwards requests to ApiServer.handle)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import kubernetes
import pytest
from aiohttp import web

from pyk3s.api.request import ApiRequest


async def _serve(api) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.StreamResponse:
        req = ApiRequest(request.method, request.path, list(request.query.items()),
                         {k.lower(): v for k, v in request.headers.items()}, await request.read())
        resp = await api.handle(req)
        if resp.stream is None:
            return web.Response(status=resp.status, body=resp.body, headers={**resp.headers, "Content-Type": resp.content_type})
        out = web.StreamResponse(status=resp.status, headers={"Content-Type": resp.content_type})
        await out.prepare(request)
        try:
            async for chunk in resp.stream:
                await out.write(chunk)
            await out.write_eof()
        except ConnectionError:  # the client went away (kubectl -w interrupted)
            pass
        finally:
            await resp.stream.aclose()  # type: ignore[attr-defined]
        return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, port


@pytest.fixture
async def k8s(api_server) -> AsyncIterator[kubernetes.client.ApiClient]:
    runner, port = await _serve(api_server)
    cfg = kubernetes.client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    client = kubernetes.client.ApiClient(cfg)
    yield client
    client.close()
    await runner.cleanup()


async def test_python_client_core_flow(k8s):
    v1 = kubernetes.client.CoreV1Api(k8s)
    run = asyncio.to_thread
    names = [n.metadata.name for n in (await run(v1.list_namespace)).items]
    assert "default" in names
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py"}, "data": {"a": "1"}}
    cm = await run(v1.create_namespaced_config_map, "default", body)
    assert cm.metadata.uid and cm.data == {"a": "1"}
    cm = await run(v1.patch_namespaced_config_map, "py", "default", {"data": {"b": "2"}})  # SMP
    assert cm.data == {"a": "1", "b": "2"}
    cm = await run(v1.patch_namespaced_config_map, "py", "default", [{"op": "remove", "path": "/data/a"}])
    assert cm.data == {"b": "2"}
    cm = await run(lambda: v1.patch_namespaced_config_map(
        "py", "default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py"}, "data": {"c": "3"}},
        field_manager="py", _content_type="application/apply-patch+yaml"))
    assert cm.data["c"] == "3"
    cm.data["d"] = "4"
    cm = await run(v1.replace_namespaced_config_map, "py", "default", cm)
    assert cm.data["d"] == "4"
    with pytest.raises(kubernetes.client.ApiException) as err:
        await run(v1.read_namespaced_config_map, "nope", "default")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"

    def watch_once() -> list[tuple[str, str]]:
        w = kubernetes.watch.Watch()
        seen = []
        for ev in w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=1):
            seen.append((ev["type"], ev["object"].metadata.name))
        return seen

    assert ("ADDED", "py") in await run(watch_once)
    await run(v1.delete_namespaced_config_map, "py", "default")
    svc = await run(v1.read_namespaced_service, "kubernetes", "default")
    assert svc.spec.cluster_ip == "10.43.0.1"


async def test_python_client_custom_objects(k8s):
    ext = kubernetes.client.ApiextensionsV1Api(k8s)
    co = kubernetes.client.CustomObjectsApi(k8s)
    run = asyncio.to_thread
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    await run(ext.create_custom_resource_definition, crd)
    w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"n": 1}}
    await run(co.create_namespaced_custom_object, "example.com", "v1", "default", "widgets", w)
    got = await run(co.patch_namespaced_custom_object, "example.com", "v1", "default", "widgets", "w", {"spec": {"n": 2}})
    assert got["spec"]["n"] == 2
    lst = await run(co.list_namespaced_custom_object, "example.com", "v1", "default", "widgets")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["w"]
