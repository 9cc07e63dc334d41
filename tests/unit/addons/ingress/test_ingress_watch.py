"""Watch glue against the real API server (in-process, memory store): the packaged CRDs are accepted,
objects created through the client reach the proxy, and Ingress status gets the Service's LB address."""

from __future__ import annotations

import asyncio
import base64

import pytest
from ingress_support import http

from pyk3s.addons.ingress.runner import Watcher
from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client

PLURALS = {"CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
           "Secret": ("v1", "secrets"), "Service": ("v1", "services"),
           "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices"), "Namespace": ("v1", "namespaces"),
           "IngressRoute": ("traefik.io/v1alpha1", "ingressroutes"), "Middleware": ("traefik.io/v1alpha1", "middlewares"),
           "Ingress": ("networking.k8s.io/v1", "ingresses"), "IngressClass": ("networking.k8s.io/v1", "ingressclasses")}


@pytest.fixture
async def client():
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig(bookmark_interval=0.2))
    await api.start()
    c = Client.in_process(api)
    try:
        yield c
    finally:
        await c.close()
        await api.stop()
        await store.close()


async def _create(client, obj):
    api, plural = PLURALS[obj["kind"]]
    ns = obj["metadata"].get("namespace")
    return await client.resource(api, plural).create(obj, namespace=ns)


async def _eventually(fn, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await fn()
            if result:
                return result
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_watch_crds_ingress_and_status(client, make_proxy, backend):
    # the packaged CRDs and IngressClass, as the helm controller renders traefik.yaml's two HelmCharts
    from pyk3s.controllers.helm.chart import Release
    from pyk3s.controllers.helm.charts import CHARTS

    for chart in CHARTS:
        for m in chart.render({}, Release(chart.name, "kube-system")).objects:
            if m.obj["kind"] in ("CustomResourceDefinition", "IngressClass"):
                await _create(client, m.obj)
    await asyncio.sleep(0.3)  # CRDs become served
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                             "--providers.kubernetesingress",
                             "--providers.kubernetesingress.ingressendpoint.publishedservice=kube-system/traefik")
    watcher = Watcher(client, proxy.state.static, proxy.state.apply)
    task = asyncio.create_task(watcher.run())
    try:
        await _create(client, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "whoami", "namespace": "default"},
                               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend.port}]}})
        await _create(client, {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                               "metadata": {"name": "whoami-x", "namespace": "default",
                                            "labels": {"kubernetes.io/service-name": "whoami"}},
                               "addressType": "IPv4", "ports": [{"name": "http", "port": backend.port}],
                               "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]})
        users = base64.b64encode(b"test:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n").decode()  # test:test
        await _create(client, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth", "namespace": "default"},
                               "data": {"users": users}})
        await _create(client, {"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
                               "metadata": {"name": "auth", "namespace": "default"}, "spec": {"basicAuth": {"secret": "auth"}}})
        await _create(client, {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
                               "metadata": {"name": "app", "namespace": "default"},
                               "spec": {"routes": [{"match": "Host(`crd.example`)", "kind": "Rule",
                                                    "services": [{"name": "whoami", "port": 80}],
                                                    "middlewares": [{"name": "auth"}]}]}})
        await _create(client, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                               "metadata": {"name": "web", "namespace": "default"},
                               "spec": {"ingressClassName": "traefik", "rules": [{"host": "ing.example", "http": {"paths": [
                                   {"path": "/", "pathType": "Prefix",
                                    "backend": {"service": {"name": "whoami", "port": {"number": 80}}}}]}}]}})

        async def routed():
            r1 = await http(proxy.port, "/", host="ing.example")
            r2 = await http(proxy.port, "/", host="crd.example")
            r3 = await http(proxy.port, "/", host="crd.example",
                            headers={"Authorization": "Basic " + base64.b64encode(b"test:test").decode()})
            assert (r1.status, r2.status, r3.status) == (200, 401, 200), (r1.status, r2.status, r3.status)
            return True

        await _eventually(routed)
        svc = await _create(client, {"apiVersion": "v1", "kind": "Service",
                                     "metadata": {"name": "traefik", "namespace": "kube-system"},
                                     "spec": {"type": "LoadBalancer", "ports": [{"name": "web", "port": 80, "targetPort": 8000}]}})
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": "172.31.0.5"}]}}
        await client.resource("v1", "services").update_status(svc)

        async def status():
            ing = await client.resource("networking.k8s.io/v1", "ingresses").get("web", namespace="default")
            return ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") == [{"ip": "172.31.0.5"}]

        await _eventually(status)
    finally:
        task.cancel()
        for _, _, inf in watcher.informers:
            await inf.stop()
