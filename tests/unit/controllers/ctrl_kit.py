"""Shared fixtures of the controller tests: the real API core on a memory store, the in-process client,
and a stand-in for the kubelet (it only writes pod/node status, as the agent would)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client
from pyk3s.controllers.common.loop import Loop

__all__ = ["Kit", "cluster_fixture", "node", "pod_template"]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_template(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "pyk3s/whoami"}], **spec}}


def node(name: str, ip: str, *, ready: str = "True", labels: dict[str, str] | None = None,
         taints: list[dict[str, Any]] | None = None, pods: str = "110", hostname: str | None = None) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": ip}]
    if hostname:
        addresses.append({"type": "Hostname", "address": hostname})
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "",
                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "addresses": addresses,
            "allocatable": {"pods": pods},
        },
    }


class Kit:
    def __init__(self, store: MemoryStore, api: ApiServer, client: Client) -> None:
        self.store = store
        self.api = api
        self.client = client
        self.tasks: list[asyncio.Task[None]] = []
        self.pods = client.resource("v1", "pods")
        self.nodes = client.resource("v1", "nodes")

    def run(self, *loops: Loop) -> None:
        for loop in loops:
            self.tasks.append(asyncio.create_task(loop.run()))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks.clear()

    async def eventually(self, check: Callable[[], Awaitable[Any]], timeout: float = 8.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        last: Any = None
        while asyncio.get_running_loop().time() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"condition not reached in {timeout}s (last: {last!r})")

    async def revision(self) -> int:
        return await self.store.current_revision()

    async def settle(self, quiet_for: float = 0.4, timeout: float = 10.0) -> None:
        """Wait until nothing has been written for ``quiet_for`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        rev = await self.revision()
        since = loop.time()
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            cur = await self.revision()
            if cur != rev:
                rev, since = cur, loop.time()
            elif loop.time() - since >= quiet_for:
                return
        raise AssertionError("cluster did not settle")

    async def assert_no_writes(self, loop: Loop, keys: list[str]) -> None:
        """A second reconcile of every key writes nothing."""
        await self.settle()
        before = await self.revision()
        for key in keys:
            await loop.reconcile(key)
        assert await self.revision() == before, "a second reconcile wrote to the API"

    async def list(self, api_version: str, plural: str, ns: str | None = "default") -> list[dict[str, Any]]:
        return (await self.client.resource(api_version, plural).list(ns))["items"]

    async def make_ready(self, ns: str = "default", *, ip_base: str = "10.42.0.", only_bound: bool = False) -> int:
        """The kubelet stand-in: every pending pod becomes Running and Ready with an IP."""
        n = 0
        for i, p in enumerate(await self.list("v1", "pods", ns)):
            if only_bound and not p["spec"].get("nodeName"):
                continue
            if (p.get("status") or {}).get("phase") == "Running" or p["metadata"].get("deletionTimestamp"):
                continue
            status = {
                "phase": "Running", "podIP": f"{ip_base}{10 + i}", "podIPs": [{"ip": f"{ip_base}{10 + i}"}],
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}],
            }
            await self.pods.update_status({**p, "status": status})
            n += 1
        return n

    async def finish_deletions(self, ns: str = "default") -> None:
        """The kubelet stand-in confirms graceful pod deletions."""
        for p in await self.list("v1", "pods", ns):
            if p["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(Exception):
                    await self.pods.delete(p["metadata"]["name"], ns, grace_period_seconds=0)


@pytest.fixture(name="cluster")
async def cluster_fixture() -> AsyncIterator[Kit]:
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig(bookmark_interval=0.2))
    await api.start()
    kit = Kit(store, api, Client.in_process(api))
    try:
        yield kit
    finally:
        await kit.stop()
        await api.stop()
        await store.close()
