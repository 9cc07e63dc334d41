"""Fixtures for the ingress tests: a stand-in HTTP backend, a raw HTTP client and a proxy launcher.

The backend is outside pyk3s (it plays the pods), so it is a tiny asyncio server written here; the proxy,
providers, compile step and middlewares are the real ones, talking real HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httptools
import pytest
import yaml

from pyk3s.addons.ingress.config.dynamic import DynamicConfig, merge
from pyk3s.addons.ingress.config.static import ProviderOptions, static_from_flags
from pyk3s.addons.ingress.providers import build_kubernetescrd
from pyk3s.addons.ingress.providers.common import ObjectIndex
from pyk3s.addons.ingress.providers.ingress import build_ingress_config
from pyk3s.addons.ingress.providers.internal import internal_config
from pyk3s.addons.ingress.proxy.server import start_entrypoints
from pyk3s.addons.ingress.proxy.state import ProxyState


class _BackendConn(asyncio.Protocol):
    def __init__(self, backend: EchoBackend) -> None:
        self.backend = backend
        self.parser = httptools.HttpRequestParser(self)
        self.tunnel = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.backend.connections += 1

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            self.transport.write(b"echo:" + data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, k: bytes, v: bytes) -> None:
        self.headers.append((k.decode(), v.decode()))

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        url = self.url.decode()
        self.backend.requests.append({"method": method, "url": url, "headers": self.headers, "body": self.body})
        if self.backend.silent:
            return
        if url.startswith("/ws") and self.parser.should_upgrade():
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            self.tunnel = True
            return
        if url.startswith("/stream"):
            self.transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
            for i in range(3):
                self.transport.write(b"6\r\nchunk%d\r\n" % i)
            self.transport.write(b"0\r\n\r\n")
            return
        status = self.backend.status or 200
        if url.startswith("/status/"):
            status = int(url.split("/")[2])
        body = json.dumps({"name": self.backend.name, "method": method, "url": url, "headers": self.headers,
                           "body": self.body.decode("latin-1")}).encode()
        if url.startswith("/big"):
            body = b"x" * 200_000
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.backend.response_headers)
        self.transport.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                             % (status, len(body), extra.encode(), body if method != "HEAD" else b""))
        if not self.parser.should_keep_alive():
            self.transport.close()


@dataclass
class EchoBackend:
    name: str
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    server: Any = None
    host: str = "127.0.0.1"
    tls: Any = None  # an ssl.SSLContext: the backend speaks HTTPS
    silent: bool = False  # accept requests and never answer (timeouts)
    status: int = 0  # answer every request with this status (0: 200, or the one /status/N asks for)

    async def start(self) -> EchoBackend:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _BackendConn(self), self.host, 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        self.server.close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]]

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> Response:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    raw = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
    headers = {k.lower(): v for k, v in raw}
    if headers.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        body = out
    return Response(status, headers, body, raw)  # type: ignore[arg-type]


async def http(port: int, path: str = "/", host: str = "example.com", method: str = "GET",
               headers: dict[str, str] | list[tuple[str, str]] | None = None, body: bytes = b"",
               raw: bytes | None = None, ssl: Any = None, server_hostname: str | None = None) -> Response:
    """One request on a fresh connection (Connection: close), reading to EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl, server_hostname=server_hostname)
    if raw is None:
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in items]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    writer.write(raw)
    data = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return parse_response(data)


@dataclass
class Proxy:
    state: ProxyState
    ports: dict[str, int]
    servers: list[Any]

    @property
    def port(self) -> int:
        return self.ports.get("web") or next(iter(self.ports.values()))

    def load(self, docs: str | list[dict], extra: dict[str, DynamicConfig] | None = None) -> Any:
        objs = list(yaml.safe_load_all(docs)) if isinstance(docs, str) else docs
        objs = [o for o in objs if o]
        parts = {"kubernetescrd": build_kubernetescrd(ObjectIndex.build(objs), self.state.static.crd or ProviderOptions()),
                 "kubernetes": build_ingress_config(objs, self.state.static.ingress),
                 "internal": internal_config(self.state.static)}
        parts.update(extra or {})
        return self.state.apply(merge(parts))


@pytest.fixture
async def backend() -> AsyncIterator[EchoBackend]:
    b = await EchoBackend("b1").start()
    yield b
    b.close()


@pytest.fixture
async def backend2() -> AsyncIterator[EchoBackend]:
    b = await EchoBackend("b2").start()
    yield b
    b.close()


@pytest.fixture
async def backend_lo2() -> AsyncIterator[EchoBackend]:
    """A second backend on another loopback address (Traefik counts each endpoint address once)."""
    b = await EchoBackend("b2", host="127.0.0.2").start()
    yield b
    b.close()


@pytest.fixture
async def make_proxy() -> AsyncIterator[Any]:
    made: list[Proxy] = []

    async def make(*flags: str, ssl_for: Any = None, tls: bool = False) -> Proxy:
        """``tls``: as the runner does, certificates follow the configuration and http.tls entrypoints
        speak TLS."""
        args = list(flags) or ["--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                               "--providers.kubernetesingress", "--api.dashboard=true"]
        static = static_from_flags(args)
        state = ProxyState(asyncio.get_running_loop(), static)
        if tls:
            from pyk3s.addons.ingress.runner import _install_tls, _ssl_for

            _install_tls(state)
            ssl_for = ssl_for or _ssl_for(state)
        names = list(static.entrypoints)
        servers = await start_entrypoints(state, names, ssl_for or (lambda n: None))
        ports = {n: s.sockets[0].getsockname()[1] for n, s in zip(names, servers, strict=True)}
        p = Proxy(state, ports, servers)
        made.append(p)
        return p

    yield make
    for p in made:
        for s in p.servers:
            s.close()
        p.state.close()


def service_yaml(name: str, port: int, ns: str = "default", ip: str = "127.0.0.1", ready: bool = True) -> str:
    """A Service plus one EndpointSlice pointing at a loopback backend port."""
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abc
  namespace: {ns}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
- addresses: ["{ip}"]
  conditions: {{ready: {str(ready).lower()}, serving: {str(ready).lower()}}}
---
"""
