"""Real kubectl 1.32 against the API core over plain HTTP on loopback (no auth: kubectl sends no
credentials over http). Checks the everyday command set of spec 11 end to end."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest
from aiohttp import web

from pyk3s.api.app import ApiServer
from pyk3s.api.request import ApiRequest
from pyk3s.api.store.memory import MemoryStore

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl missing")]

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: '{v}'\n"
CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget, shortNames: [wg], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer, description: widget size}}}
    additionalPrinterColumns: [{name: Size, type: integer, jsonPath: .spec.size}]
"""
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n"

# (arguments, expected return code, text expected in the output)
SCRIPT: list[tuple[list[str], int, str]] = [
    (["version"], 0, "Server Version: v1.32.4+pyk3s1"),
    (["api-resources"], 0, "deployments"),
    (["create", "-f", "{d}/cm1.yaml"], 0, "configmap/cfg created"),
    (["apply", "-f", "{d}/cm2.yaml"], 0, "configmap/cfg configured"),
    (["apply", "--server-side", "-f", "{d}/cm2.yaml"], 0, "serverside-applied"),
    (["replace", "-f", "{d}/cm1.yaml"], 0, "configmap/cfg replaced"),
    (["create", "-f", "{d}/bad.yaml"], 1, 'unknown field "spec"'),
    (["label", "cm", "cfg", "tier=fe"], 0, "labeled"),
    (["get", "cm", "-l", "tier=fe", "-o", "name"], 0, "configmap/cfg"),
    (["patch", "cm", "cfg", "-p", '{"data":{"z":"9"}}'], 0, "patched"),
    (["create", "namespace", "foo"], 0, "namespace/foo created"),
    (["create", "deployment", "d", "--image=nginx"], 0, "deployment.apps/d created"),
    (["scale", "deploy", "d", "--replicas=3"], 0, "scaled"),
    (["get", "deploy", "d", "-o", "jsonpath={.spec.replicas}"], 0, "3"),
    (["create", "service", "nodeport", "np", "--tcp=80:80"], 0, "service/np created"),
    (["get", "svc", "kubernetes"], 0, "10.43.0.1"),
    (["apply", "-f", "{d}/crd.yaml"], 0, "created"),
    (["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"], 0, "condition met"),
    (["apply", "-f", "{d}/w.yaml"], 0, "widget.example.com/w1 created"),
    (["get", "wg"], 0, "SIZE"),
    (["patch", "wg", "w1", "-p", '{"spec":{"size":4}}'], 1, "not supported"),
    (["explain", "pods.spec.containers.ports"], 0, "containerPort"),
    (["explain", "widgets.spec"], 0, "widget size"),
    (["delete", "cm", "cfg"], 0, 'configmap "cfg" deleted'),
    (["delete", "ns", "default"], 1, "may not be deleted"),
]


async def _serve(api: ApiServer) -> tuple[web.AppRunner, int]:
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
        except ConnectionError:
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
    await web.SockSite(runner, sock).start()
    return runner, port


async def test_kubectl_everyday_commands(tmp_path: Path) -> None:
    (tmp_path / "cm1.yaml").write_text(CM.format(v=1))
    (tmp_path / "cm2.yaml").write_text(CM.format(v=2))
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\nspec:\n  a: b\n")
    (tmp_path / "crd.yaml").write_text(CRD)
    (tmp_path / "w.yaml").write_text(WIDGET)
    store = MemoryStore()
    await store.start()
    api = ApiServer(store)
    await api.start()
    runner, port = await _serve(api)
    try:
        base = ["kubectl", f"--server=http://127.0.0.1:{port}", f"--cache-dir={tmp_path}/cache", "--request-timeout=20s"]
        for args, rc, expect in SCRIPT:
            argv = base + [a.replace("{d}", str(tmp_path)) for a in args]
            proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            text = out.decode()
            assert proc.returncode == rc and expect in text, (args, proc.returncode, text)
    finally:
        await runner.cleanup()
        await api.stop()
        await store.close()
