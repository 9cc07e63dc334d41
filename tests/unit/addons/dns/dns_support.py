"""Fixtures for the DNS add-on: a cluster fixture as plain API objects and an in-process server."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest

from pyk3s.addons.dns.plugins.kubernetes import KubernetesPlugin
from pyk3s.addons.dns.runtime import DnsRuntime


def ns(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def svc(namespace: str, name: str, ips: list[str] | None, ports: list[tuple[str, int, str]] = (),
        external: str | None = None) -> dict:
    spec: dict = {"ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    if external is not None:
        spec.update(type="ExternalName", externalName=external)
    elif ips is None:
        spec.update(clusterIP="None", clusterIPs=["None"])
    else:
        spec.update(clusterIP=ips[0], clusterIPs=ips)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": namespace, "name": name},
            "spec": spec}


def eps(namespace: str, name: str, service: str, endpoints: list[dict],
        ports: list[tuple[str, int, str]] = ()) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": namespace, "name": name,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}


def ep(addr: str, ready: bool | None = True, hostname: str | None = None, pod: str | None = None) -> dict:
    e: dict = {"addresses": [addr], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    if pod:
        e["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "apps"}
    return e


def pod(namespace: str, name: str, ip: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": namespace, "name": name},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


NAMESPACES = [ns("default"), ns("apps"), ns("kube-system")]
SERVICES = [
    svc("default", "kubernetes", ["10.43.0.1"], [("https", 443, "TCP")]),
    svc("kube-system", "kube-dns", ["10.43.0.10"], [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"),
                                                     ("metrics", 9153, "TCP")]),
    svc("apps", "web", ["10.43.1.10"], [("http", 80, "TCP"), ("", 8080, "TCP")]),
    svc("apps", "ds", ["10.43.1.20", "fd00:43::20"], [("http", 80, "TCP")]),
    svc("apps", "db", None, [("pg", 5432, "TCP")]),
    svc("apps", "empty", None, [("x", 1, "TCP")]),
    svc("apps", "lonely", ["10.43.1.30"], [("http", 80, "TCP")]),
    svc("apps", "ext", None, external="www.example.test"),
    svc("apps", "ext-in", None, external="web.apps.svc.cluster.local"),
    svc("apps", "ext-ip", None, external="1.2.3.4"),
]
SLICES = [
    eps("default", "kubernetes", "kubernetes", [ep("10.99.0.10")], [("https", 6443, "TCP")]),
    eps("apps", "web-1", "web", [ep("10.42.1.10", pod="web-a"), ep("10.42.1.11", ready=False, pod="web-b"),
                                 ep("10.42.1.12", ready=None, pod="web-c")],
        [("http", 8000, "TCP"), ("", 8080, "TCP")]),
    eps("apps", "db-1", "db", [ep("10.42.2.10", hostname="db-0"), ep("10.42.2.11", hostname="db-1")],
        [("pg", 5432, "TCP")]),
    eps("apps", "empty-1", "empty", [ep("10.42.3.10", ready=False)], [("x", 1, "TCP")]),
]
PODS = [pod("apps", "web-a", "10.42.1.10")]

DEFAULT_BODY = """
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
"""


class DnsHarness:
    def __init__(self, runtime: DnsRuntime, port: int) -> None:
        self.runtime, self.port = runtime, port

    @property
    def kube(self) -> KubernetesPlugin:
        return next(p for p in self.runtime.plugins() if isinstance(p, KubernetesPlugin))

    async def load(self, services=SERVICES, slices=SLICES, pods=PODS, namespaces=NAMESPACES) -> None:
        for p in self.runtime.plugins():
            if isinstance(p, KubernetesPlugin):
                p.load(services, slices, pods, namespaces, serial=12345)
        await self.settle()

    async def settle(self) -> None:
        await asyncio.sleep(0.08)
        if self.runtime._fast_task is not None:
            await self.runtime._fast_task

    async def q(self, name: str, rdtype: str = "A", tcp: bool = False, **kw) -> dns.message.Message:
        msg = dns.message.make_query(name, rdtype, **kw)
        if tcp:
            return await dns.asyncquery.tcp(msg, "127.0.0.1", timeout=3, port=self.port)
        return await dns.asyncquery.udp(msg, "127.0.0.1", timeout=3, port=self.port)


@pytest.fixture
async def make_dns(tmp_path: Path) -> AsyncIterator[Callable]:
    started: list[DnsRuntime] = []

    async def factory(body: str = DEFAULT_BODY, extra: str = "", load: bool = True,
                      files: dict[str, str] | None = None) -> DnsHarness:
        for fname, content in (files or {}).items():
            (tmp_path / fname).write_text(content)
        corefile = tmp_path / "Corefile"
        corefile.write_text(f".:0 {{\n    bind 127.0.0.1\n{textwrap.indent(textwrap.dedent(body), '    ')}\n}}\n{extra}")
        rt = DnsRuntime(str(corefile))
        await rt.start()
        rt.corefile_path = corefile  # type: ignore[attr-defined]
        started.append(rt)
        h = DnsHarness(rt, rt.port_of("127.0.0.1"))
        if load:
            await h.load()
        return h

    yield factory
    for rt in started:
        await rt.stop()


@pytest.fixture
async def dns_server(make_dns: Callable) -> DnsHarness:
    return await make_dns()


def rrs(msg: dns.message.Message, section: str = "answer") -> set[str]:
    return {f"{rr.name.to_text().lower()} {dns.rdatatype.to_text(rr.rdtype)} {rd.to_text().lower()}"
            for rr in getattr(msg, section) for rd in rr}
