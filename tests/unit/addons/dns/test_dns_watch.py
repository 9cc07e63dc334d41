"""Informer glue against the real API server (in-process, memory store): objects created through the
client show up in DNS answers, deletions disappear, and the server keeps answering throughout."""

from __future__ import annotations

import asyncio
import textwrap

import dns.rcode
import pytest
from dns_support import DnsHarness, rrs

from pyk3s.addons.dns.runtime import DnsRuntime
from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client


@pytest.fixture
async def client():  # noqa: ANN201
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


async def eventually(fn, timeout: float = 5.0):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await fn()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_watch_feeds_index(client, tmp_path) -> None:  # noqa: ANN001
    await client.resource("v1", "namespaces").create({"metadata": {"name": "pk-apps"}})
    corefile = tmp_path / "Corefile"
    corefile.write_text(textwrap.dedent("""\
        .:0 {
            bind 127.0.0.1
            kubernetes cluster.local {
              pods insecure
            }
        }
        """))
    rt = DnsRuntime(str(corefile), client_factory=lambda _kc: client)
    await rt.start()
    try:
        h = DnsHarness(rt, rt.port_of("127.0.0.1"))
        svcs = client.resource("v1", "services")
        await svcs.create({"metadata": {"name": "web", "namespace": "pk-apps"},
                           "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
                          namespace="pk-apps")
        ip = (await svcs.get("web", namespace="pk-apps"))["spec"]["clusterIP"]

        async def has_a() -> bool:
            r = await h.q("web.pk-apps.svc.cluster.local", "A")
            return rrs(r) == {f"web.pk-apps.svc.cluster.local. A {ip}"}
        assert await eventually(has_a)

        await svcs.delete("web", namespace="pk-apps")

        async def gone() -> bool:
            return (await h.q("web.pk-apps.svc.cluster.local", "A")).rcode() == dns.rcode.NXDOMAIN
        assert await eventually(gone)
    finally:
        await rt.stop()


async def test_a_reload_closes_the_api_client_of_the_replaced_config(client, tmp_path) -> None:  # noqa: ANN001
    """Each start of the kubernetes plugin opens an API client; the plugin that a reload replaces closes
    its own, so reloads do not pile up HTTP sessions."""
    made: list[Client] = []
    closed: list[Client] = []

    class Recording(Client):
        async def close(self) -> None:
            closed.append(self)
            await super().close()

    def factory(_kc: str | None) -> Client:
        made.append(Recording(client.transport))
        return made[-1]

    corefile = tmp_path / "Corefile"
    body = ".:0 {{\n    bind 127.0.0.1\n    kubernetes cluster.local {{\n      ttl {ttl}\n    }}\n}}\n"
    corefile.write_text(body.format(ttl=5))
    rt = DnsRuntime(str(corefile), client_factory=factory)
    await rt.start()
    try:
        corefile.write_text(body.format(ttl=7))
        assert await rt.reload()
        assert len(made) == 2 and closed == [made[0]]
    finally:
        await rt.stop()
    assert closed == made
