"""basicAuth remembers credentials it has verified, so a hash is not recomputed per request; a changed or
deleted Secret must still take effect at once: the cache belongs to the compiled middleware and goes
with it when the Secret's change recompiles the table (real API in-process, the ingress's own watch)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from ingress_support import http

from pyk3s.addons.ingress.runner import Watcher
from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client


@pytest.fixture
async def client() -> AsyncIterator[Client]:
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


def users(user: str, password: str) -> dict[str, str]:
    line = f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()}\n"
    return {"users": base64.b64encode(line.encode()).decode()}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def test_changed_or_deleted_secret_takes_effect_at_once(client: Client, make_proxy: Any, backend: Any) -> None:
    # the packaged CRDs, as the helm controller renders traefik.yaml's charts
    from pyk3s.controllers.helm.chart import Release
    from pyk3s.controllers.helm.charts import CHARTS

    for chart in CHARTS:
        for m in chart.render({}, Release(chart.name, "kube-system")).objects:
            if m.obj["kind"] == "CustomResourceDefinition":
                await client.resource("apiextensions.k8s.io/v1", "customresourcedefinitions").create(m.obj)
    await asyncio.sleep(0.3)  # CRDs become served
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd")
    watcher = Watcher(client, proxy.state.static, proxy.state.apply)
    task = asyncio.create_task(watcher.run())
    secrets = client.resource("v1", "secrets")
    try:
        await client.resource("v1", "services").create(
            {"metadata": {"name": "b", "namespace": "default"},
             "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend.port}]}}, namespace="default")
        await client.resource("discovery.k8s.io/v1", "endpointslices").create(
            {"metadata": {"name": "b-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "b"}},
             "addressType": "IPv4", "ports": [{"name": "http", "port": backend.port}],
             "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}, namespace="default")
        await secrets.create({"metadata": {"name": "auth", "namespace": "default"}, "data": users("u", "old")},
                             namespace="default")
        await client.resource("traefik.io/v1alpha1", "middlewares").create(
            {"metadata": {"name": "auth", "namespace": "default"}, "spec": {"basicAuth": {"secret": "auth"}}},
            namespace="default")
        await client.resource("traefik.io/v1alpha1", "ingressroutes").create(
            {"metadata": {"name": "r", "namespace": "default"},
             "spec": {"routes": [{"match": "Host(`a.example`)", "kind": "Rule", "services": [{"name": "b", "port": 80}],
                                  "middlewares": [{"name": "auth"}]}]}}, namespace="default")

        async def status(user: str, password: str) -> int:
            return (await http(proxy.port, "/", host="a.example", headers=basic(user, password))).status

        await until(lambda: _is(status("u", "old"), 200))
        assert await status("u", "old") == 200            # now answered from the verified-credential cache

        # the password changes: the cached credentials stop working with the update, not later
        secret = await secrets.get("auth", namespace="default")
        secret["data"] = users("u", "new")
        await secrets.update(secret, namespace="default")
        await until(lambda: _is(status("u", "new"), 200))
        assert await status("u", "old") == 401

        # the Secret is deleted: nobody gets through any more (the router reports the missing Secret)
        assert await status("u", "new") == 200
        await secrets.delete("auth", namespace="default")
        await until(lambda: _is_not(status("u", "new"), 200))
        assert await status("u", "old") != 200
    finally:
        task.cancel()
        for _, _, inf in watcher.informers:
            await inf.stop()


async def _is(status: Awaitable[int], want: int) -> bool:
    return await status == want


async def _is_not(status: Awaitable[int], want: int) -> bool:
    return await status != want
