"""Load balancers as Traefik v3 runs them: server weights (wrr), strategies p2c and leasttime, active
and passive health checks, health propagation to weighted/failover/mirroring parents, serverStatus in the API.

Backends are small asyncio servers on loopback whose health the test switches; the proxy, compile step,
balancers and health checkers are the real ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from ingress_support import http

from pyk3s.addons.ingress.config.dynamic import (
    DynamicConfig,
    Failover,
    LoadBalancer,
    Mirroring,
    Router,
    Server,
    Service,
    StickyCookie,
    Weighted,
    WeightedRef,
)
from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.routing.compile import compile_config
from pyk3s.addons.ingress.routing.health import HealthChecker, health_spec, probe
from pyk3s.addons.ingress.routing.leasttime import LeastTime
from pyk3s.addons.ingress.routing.services import Balancer, Target

FLAGS = ("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.traefik.address=127.0.0.1:0",
         "--providers.kubernetescrd", "--providers.kubernetescrd.allowExternalNameServices=true",
         "--api.insecure", "--metrics.prometheus")
FAST = {"interval": "50ms", "timeout": "500ms"}


class _Conn(asyncio.Protocol):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.buf = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:  # requests without bodies, one after another on a connection
            raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.request(raw.decode("latin-1").split("\r\n"))

    def request(self, head: list[str]) -> None:
        method, path, _ = head[0].split(" ", 2)
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in head[1:])}
        asyncio.get_running_loop().create_task(self.backend.answer(self.transport, method, path, headers))


class Backend:
    """An HTTP server whose /health answer the test controls; other paths answer ``status`` with its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.health = 200
        self.status = 200
        self.delay = 0.0  # /slow waits this long
        self.probes: list[tuple[str, str, dict[str, str]]] = []
        self.served = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Backend:
        self.server = await asyncio.get_running_loop().create_server(lambda: _Conn(self), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def answer(self, transport: Any, method: str, path: str, headers: dict[str, str]) -> None:
        if path.startswith("/health") or path.startswith("/redirect"):
            self.probes.append((method, path, headers))
            if path.startswith("/redirect"):
                status, extra = 302, "Location: /health\r\n"
            else:
                status, extra = self.health, ""
        else:
            self.served += 1
            if path.startswith("/slow"):
                await asyncio.sleep(self.delay)
            status, extra = self.status, ""
        body = b"" if status == 204 else self.name.encode()
        length = b"" if status == 204 else b"Content-Length: %d\r\n" % len(body)
        close = headers.get("connection", "").lower() == "close"
        transport.write(b"HTTP/1.1 %d X\r\n%s%s%s\r\n%s"
                        % (status, extra.encode(), length, b"Connection: close\r\n" if close else b"",
                           b"" if method == "HEAD" else body))
        if close:
            transport.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    made = [await Backend(f"b{i}").start() for i in range(1, 4)]
    yield made
    for b in made:
        b.close()


def _lb(*servers: Server | str, health: Mapping[str, Any] | None = None, **kw: Any) -> Service:
    return Service(load_balancer=LoadBalancer(servers=tuple(Server(s) if isinstance(s, str) else s for s in servers),
                                              health_check=health, **kw))


def _config(services: Mapping[str, Service], root: str = "app") -> DynamicConfig:
    return DynamicConfig(routers={"r": Router("Host(`a.example`)", root, entry_points=("web",))},
                         services=dict(services))


def _apply(proxy: Any, services: Mapping[str, Service]) -> None:
    """The services as a file provider would give them (names ``@file``), with the internal routers."""
    proxy.load([], extra={"file": _config(services)})


def _svc(proxy: Any, name: str) -> Any:
    return proxy.state.compiled.services[name + "@file"]


async def _names(port: int, n: int, path: str = "/") -> list[str]:
    out = []
    for _ in range(n):
        r = await http(port, path, host="a.example")
        out.append(r.body.decode() if r.status < 500 else str(r.status))
    return out


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def _api_service(proxy: Any, name: str) -> dict[str, Any]:
    r = await http(proxy.ports["traefik"], f"/api/http/services/{name}@file", host="x")
    assert r.status == 200, r.body
    return r.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- weights
def test_server_weights_smooth_round_robin_order() -> None:
    static = static_from_flags(["--entrypoints.web.address=127.0.0.1:0"])
    cfg = _config({"app": _lb(Server("http://a", weight=3), Server("http://b", weight=1), Server("http://z", weight=0))})
    c = compile_config(cfg, static)
    svc = c.services["app"]
    picks = [svc.pick(None)[0].url for _ in range(8)]  # type: ignore[union-attr]
    # earliest deadline first, as Traefik's wrr: a's deadlines 1/3, 2/3, 1 ... b's 1, 2; ties to the first
    assert picks == ["http://a"] * 3 + ["http://b"] + ["http://a"] * 3 + ["http://b"]
    assert c.runtime.services["app"]["status"] == "enabled"
    assert c.runtime.services["app"]["serverStatus"] == {"http://a": "UP", "http://b": "UP", "http://z": "UP"}


async def test_server_weights_through_the_proxy(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, _ = backends
    _apply(proxy, ({"app": _lb(Server(b1.url, weight=3), Server(b2.url, weight=1))}))
    assert Counter(await _names(proxy.port, 8)) == {"b1": 6, "b2": 2}


# ---------------------------------------------------------------------------------------------- active checks
async def test_probe_options(backends) -> None:
    b1 = backends[0]
    target = Target(b1.url + "/base/")
    spec = health_spec({"path": "/health?x=1", "method": "head", "hostname": "probe.example",
                        "headers": {"X-Probe": "yes"}, "timeout": "1s"})
    assert await probe(target, spec) is None
    method, path, headers = b1.probes[-1]
    assert (method, path, headers["host"], headers["x-probe"]) == ("HEAD", "/health?x=1", "probe.example", "yes")
    # port replaces the server's; the status must then match exactly
    other = Target("http://127.0.0.1:1")
    assert await probe(other, health_spec({"path": "/health", "port": b1.port, "status": 200})) is None
    b1.health = 204
    assert "204 expected status code: 200" in (await probe(other, health_spec({"path": "/health", "port": b1.port,
                                                                                "status": 200})) or "")
    assert await probe(target, health_spec({"path": "/health"})) is None  # any 2xx/3xx passes
    b1.health = 500
    assert "received error status code: 500" in (await probe(target, health_spec({"path": "/health"})) or "")
    # redirects are followed unless followRedirects is false
    b1.health = 200
    assert await probe(target, health_spec({"path": "/redirect", "status": 200})) is None
    assert "302" in (await probe(target, health_spec({"path": "/redirect", "status": 200,
                                                      "followRedirects": False})) or "")
    refused = await probe(Target("http://127.0.0.1:1"), health_spec({"path": "/health", "timeout": "1s"}))
    assert refused is not None and refused.startswith("HTTP request failed")
    with pytest.raises(Exception, match="relative URL"):
        health_spec({"path": "http://elsewhere/health"})


async def test_unhealthy_server_leaves_rotation_and_comes_back(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, _ = backends
    _apply(proxy, ({"app": _lb(b1.url, b2.url, health={"path": "/health", **FAST})}))
    assert sorted(await _names(proxy.port, 4)) == ["b1", "b1", "b2", "b2"]
    info = await _api_service(proxy, "app")
    assert info["status"] == "enabled" and info["serverStatus"] == {b1.url: "UP", b2.url: "UP"}
    b2.health = 503
    await _until(lambda: _svc(proxy, "app").server_status[b2.url] == "DOWN")
    assert await _names(proxy.port, 4) == ["b1"] * 4
    info = await _api_service(proxy, "app")
    assert info["serverStatus"] == {b1.url: "UP", b2.url: "DOWN"}
    r = await http(proxy.ports["traefik"], "/metrics", host="x")
    assert f'traefik_service_server_up{{service="app@file",url="{b2.url}"}} 0' in r.body.decode()
    # all down: 503, as Traefik's "no available server"
    b1.health = 500
    await _until(lambda: _svc(proxy, "app").server_status[b1.url] == "DOWN")
    assert (await http(proxy.port, "/", host="a.example")).status == 503
    # back: probed at unhealthyInterval (defaults to interval), then in rotation again
    b1.health = b2.health = 200
    await _until(lambda: set(_svc(proxy, "app").server_status.values()) == {"UP"})
    assert sorted(await _names(proxy.port, 4)) == ["b1", "b1", "b2", "b2"]


async def test_probes_stop_on_reload_and_close(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1 = backends[0]
    _apply(proxy, ({"app": _lb(b1.url, health={"path": "/health", **FAST})}))
    first = [c for c in proxy.state.compiled.health if isinstance(c, HealthChecker)]
    tasks = [t for c in first for t in c.tasks]
    assert len(tasks) == 2 and not any(t.done() for t in tasks)
    await _until(lambda: len(b1.probes) >= 2)
    _apply(proxy, ({"app": _lb(b1.url, health={"path": "/health", **FAST})}))
    await asyncio.sleep(0)
    assert all(t.done() for t in tasks)
    second = [t for c in proxy.state.compiled.health if isinstance(c, HealthChecker) for t in c.tasks]
    _apply(proxy, ({"app": _lb(b1.url)}))
    await asyncio.sleep(0)
    assert all(t.done() for t in second) and proxy.state.compiled.health == ()
    count = len(b1.probes)
    await asyncio.sleep(0.2)
    assert len(b1.probes) == count  # nobody probes any more
    _apply(proxy, ({"app": _lb(b1.url, health={"path": "/health", **FAST})}))
    third = [t for c in proxy.state.compiled.health if isinstance(c, HealthChecker) for t in c.tasks]
    proxy.state.close()
    await asyncio.sleep(0)
    assert all(t.done() for t in third)


async def test_unhealthy_interval_and_unsupported_strategy() -> None:
    spec = health_spec({"interval": "10s", "unhealthyInterval": "1s", "timeout": "0s"})
    assert (spec.interval, spec.unhealthy_interval, spec.timeout) == (10.0, 1.0, 5.0)
    assert health_spec({"interval": "7s"}).unhealthy_interval == 7.0
    with pytest.raises(Exception, match="unknown mode"):
        health_spec({"mode": "tcp"})
    static = static_from_flags(["--entrypoints.web.address=127.0.0.1:0"])
    c = compile_config(_config({"app": _lb("http://a", strategy="fastest")}), static)
    assert "fastest is not supported" in c.runtime.services["app"]["error"][0]
    c = compile_config(_config({"app": _lb("http://a", strategy="hrw", sticky=StickyCookie())}), static)
    assert "sticky sessions do not apply with strategy hrw" in c.runtime.services["app"]["error"][0]


class _GrpcHealth:
    """A grpcio server (the backend) answering grpc.health.v1.Health/Check with ``status``."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import grpc

        self.status = 1  # SERVING
        self.server = grpc.server(ThreadPoolExecutor(2))
        check = grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"\x08" + bytes([self.status]))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": check}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()


async def test_grpc_mode() -> None:
    backend = _GrpcHealth()
    try:
        target = Target(f"h2c://127.0.0.1:{backend.port}")
        assert await probe(target, health_spec({"mode": "grpc", "timeout": "2s"})) is None
        backend.status = 2
        assert "NOT_SERVING" in (await probe(target, health_spec({"mode": "grpc", "timeout": "2s"})) or "")
        other = Target("http://127.0.0.1:1")
        backend.status = 1
        assert await probe(other, health_spec({"mode": "grpc", "port": backend.port, "timeout": "2s"})) is None
        assert "no transport security" in (await probe(target, health_spec({"mode": "grpc", "scheme": "https"})) or "")
        refused = await probe(other, health_spec({"mode": "grpc", "timeout": "1s"}))
        assert refused is not None and "fail to connect" in refused
    finally:
        backend.server.stop(None)
    # a server without the health service
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    bare = grpc.server(ThreadPoolExecutor(1))
    port = bare.add_insecure_port("127.0.0.1:0")
    bare.start()
    try:
        answer = await probe(Target(f"h2c://127.0.0.1:{port}"), health_spec({"mode": "grpc", "timeout": "2s"}))
        assert answer is not None and "does not implement the health protocol" in answer
    finally:
        bare.stop(None)


# ---------------------------------------------------------------------------------------------- propagation
async def test_weighted_parent_follows_children(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, _ = backends
    health = {"path": "/health", **FAST}
    _apply(proxy, ({
        "app": Service(weighted=Weighted((WeightedRef("one", 1), WeightedRef("two", 1)), health_check={})),
        "one": _lb(b1.url, health=health), "two": _lb(b2.url, health=health)}))
    assert sorted(await _names(proxy.port, 4)) == ["b1", "b1", "b2", "b2"]
    b1.health = 500
    app = _svc(proxy, "app")
    await _until(lambda: "one@file" in app.down)  # type: ignore[union-attr]
    assert await _names(proxy.port, 3) == ["b2"] * 3
    b2.health = 500
    await _until(lambda: "two@file" in app.down)  # type: ignore[union-attr]
    assert (await http(proxy.port, "/", host="a.example")).status == 503
    b1.health = 200
    await _until(lambda: "one@file" not in app.down)  # type: ignore[union-attr]
    assert await _names(proxy.port, 2) == ["b1"] * 2


async def test_failover_and_mirroring_follow_health(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, b3 = backends
    health = {"path": "/health", **FAST}
    _apply(proxy, ({
        "app": Service(failover=Failover("main", "fallback", health_check={})),
        "main": Service(mirroring=Mirroring("inner", health_check={})),
        "inner": _lb(b1.url, health=health), "fallback": _lb(b2.url, health=health),
        "top": Service(weighted=Weighted((WeightedRef("app", 1), WeightedRef("spare", 1)), health_check={})),
        "spare": _lb(b3.url, health=health)}))
    assert await _names(proxy.port, 2) == ["b1"] * 2
    b1.health = 500
    app = _svc(proxy, "app")
    await _until(lambda: not app.main_up)  # type: ignore[union-attr]
    assert await _names(proxy.port, 2) == ["b2"] * 2
    # both down: the failover is down, and its weighted parent hears it
    b2.health = 500
    await _until(lambda: not app.fallback_up)  # type: ignore[union-attr]
    assert (await http(proxy.port, "/", host="a.example")).status == 503
    assert "app@file" in _svc(proxy, "top").down  # type: ignore[union-attr]
    b1.health = 200
    await _until(lambda: app.main_up)  # type: ignore[union-attr]
    assert await _names(proxy.port, 2) == ["b1"] * 2
    assert "app@file" not in _svc(proxy, "top").down  # type: ignore[union-attr]


def test_parents_need_children_that_report_health() -> None:
    static = static_from_flags(["--entrypoints.web.address=127.0.0.1:0"])
    c = compile_config(_config({
        "app": Service(weighted=Weighted((WeightedRef("plain", 1),), health_check={})),
        "plain": _lb("http://a"),
        "fo": Service(failover=Failover("plain", "other")), "other": _lb("http://b"),
        "fo-errors": Service(failover=Failover("plain", "other", errors_status=("500-599",))),
        "fo-no-status": Service(failover=Failover("plain", "other", errors_status=())),
        "fo-hc": Service(failover=Failover("checked", "plain", health_check={})),
        "checked": _lb("http://c", health={"path": "/health"})}), static)
    rt = c.runtime.services
    assert rt["app"]["status"] == "disabled"
    assert rt["app"]["error"] == ["cannot register plain as updater for app: healthCheck not enabled in config for "
                                  "this WRR service"]
    assert rt["fo"]["status"] == "disabled" and "cannot register plain as updater for fo" in rt["fo"]["error"][0]
    # with errors the main service need not report health (tests/unit/addons/ingress/test_ingress_failover.py)
    assert rt["fo-errors"]["status"] == "enabled"
    assert rt["fo-no-status"]["status"] == "disabled"  # an errors section without status ranges is no errors
    assert rt["fo-hc"]["status"] == "disabled" and "cannot register plain as updater for fo-hc" in rt["fo-hc"]["error"][0]


# ---------------------------------------------------------------------------------------------- passive, p2c
async def test_passive_health_check(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, _ = backends
    b2.status = 502
    _apply(proxy, ({"app": Service(load_balancer=LoadBalancer(
        servers=(Server(b1.url), Server(b2.url)),
        passive_health_check={"failureWindow": "400ms", "maxFailedAttempts": 2}))}))
    assert proxy.state.compiled.runtime.services["app@file"]["status"] == "enabled"
    # round robin: b1, b2 (fail 1), b1, b2 (fail 2: out), then only b1
    assert await _names(proxy.port, 6) == ["b1", "502", "b1", "502", "b1", "b1"]
    assert _svc(proxy, "app").server_status[b2.url] == "DOWN"
    # back after failureWindow
    b2.status = 200
    await _until(lambda: _svc(proxy, "app").server_status[b2.url] == "UP", 3)
    assert sorted(await _names(proxy.port, 2)) == ["b1", "b2"]
    # an unreachable server counts as failing too (maxFailedAttempts defaults to 1)
    _apply(proxy, {"app": Service(load_balancer=LoadBalancer(
        servers=(Server(b1.url), Server("http://127.0.0.1:1")), passive_health_check={}))})
    assert await _names(proxy.port, 4) == ["b1", "502", "b1", "b1"]
    assert _svc(proxy, "app").server_status["http://127.0.0.1:1"] == "DOWN"


async def test_p2c_prefers_the_server_with_fewer_requests_in_flight(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, _ = backends
    b1.delay = b2.delay = 0.5
    _apply(proxy, ({"app": _lb(b1.url, b2.url, strategy="p2c")}))
    assert proxy.state.compiled.runtime.services["app@file"]["status"] == "enabled"
    slow = asyncio.ensure_future(http(proxy.port, "/slow", host="a.example"))
    await _until(lambda: b1.served + b2.served == 1)
    busy = "b1" if b1.served else "b2"
    # the busy server has one request in flight, the other none: every pick goes to the other
    assert set(await _names(proxy.port, 6)) == {"b1", "b2"} - {busy}
    assert (await slow).body.decode() == busy
    svc = _svc(proxy, "app")
    assert isinstance(svc, Balancer) and all(t.inflight == 0 for t in svc.targets)


async def test_leasttime_prefers_the_server_that_answers_first(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1, b2, b3 = backends
    b1.delay, b2.delay = 0.05, 0.0
    _apply(proxy, ({"app": _lb(b1.url, b2.url, strategy="leasttime")}))
    assert proxy.state.compiled.runtime.services["app@file"]["status"] == "enabled"
    # no answer yet: both score 0 and take turns (b1 first); then b1's 50 ms against b2's 0 ms
    assert await _names(proxy.port, 6, "/slow") == ["b1", "b2", "b2", "b2", "b2", "b2"]
    svc = _svc(proxy, "app")
    assert isinstance(svc, Balancer) and svc.kind == "LeastTime"
    first, second = svc.targets
    assert first.times.average() >= 50 and second.times.average() < 50
    assert all(t.inflight == 0 for t in svc.targets)


def test_leasttime_score_counts_requests_in_flight_and_weight() -> None:
    fast, slow = Target("http://fast", weight=1), Target("http://slow", weight=4)
    picker = LeastTime((fast, slow))
    for _ in range(150):  # more than the 100 kept: the oldest answers leave the average
        fast.times.add(0.010)
    for _ in range(100):
        slow.times.add(0.030)
    assert fast.times.average() == 10.0 and len(fast.times.samples) == 100
    assert picker.pick((fast, slow)) is slow  # 30 ms / weight 4 < 10 ms
    slow.inflight = 1  # 30 x 2 / 4 = 15 > 10
    assert picker.pick((fast, slow)) is fast
    fast.times.add(0.0059)  # whole milliseconds, as Traefik counts them, over the oldest kept
    assert fast.times.samples[50] == 5.0 and fast.times.total == 99 * 10.0 + 5.0
    # servers answering within the same millisecond tie and share by weight (earliest deadline first)
    a, b = Target("http://a", weight=2), Target("http://b")
    picker = LeastTime((a, b))
    a.times.add(0.0004)
    b.times.add(0.0009)
    picks = "".join("a" if picker.pick((a, b)) is a else "b" for _ in range(300))
    # deadlines start staggered (a 0.5, b 1.5) and an equal deadline goes to the first server
    assert picks[:9] == "aaabaabaa" and picks.count("a") in (199, 200, 201)


# ---------------------------------------------------------------------------------------------- CRD provider
async def test_ingressroute_external_name_health_check(make_proxy, backends) -> None:
    proxy = await make_proxy(*FLAGS)
    b1 = backends[0]
    proxy.load(f"""
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: default}}
spec: {{type: ExternalName, externalName: 127.0.0.1, ports: [{{name: http, port: {b1.port}}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: plain, namespace: default}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: app, namespace: default}}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`a.example`)
    kind: Rule
    services: [{{name: ext, port: {b1.port}, healthCheck: {{path: /health, interval: 50ms, timeout: 500ms}}}}]
  - match: Host(`b.example`)
    kind: Rule
    services: [{{name: plain, port: 80, healthCheck: {{path: /health}}}}]
""")
    assert await _names(proxy.port, 1) == ["b1"]
    b1.health = 500
    name = next(n for n, s in proxy.state.compiled.services.items() if isinstance(s, Balancer) and s.targets
                and s.targets[0].port == b1.port)
    await _until(lambda: proxy.state.compiled.services[name].server_status[b1.url] == "DOWN")
    assert (await http(proxy.port, "/", host="a.example")).status == 503
    bad = [r for r in proxy.state.compiled.runtime.routers.values() if r.get("rule") == "Host(`b.example`)"]
    assert bad and "healthCheck allowed only for ExternalName services" in bad[0]["error"][0]


async def test_keep_alive_connection_follows_health(make_proxy, backends) -> None:
    """The fast lane remembers a one-server service's server per connection: not when it is health checked."""
    proxy = await make_proxy(*FLAGS)
    b1 = backends[0]
    _apply(proxy, {"app": _lb(b1.url, health={"path": "/health", **FAST})})
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

    async def ask() -> bytes:
        writer.write(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        return head.split(b" ", 2)[1]

    try:
        assert await ask() == b"200"
        assert await ask() == b"200"
        b1.health = 500
        await _until(lambda: _svc(proxy, "app").server_status[b1.url] == "DOWN")
        assert await ask() == b"503"
        b1.health = 200
        await _until(lambda: _svc(proxy, "app").server_status[b1.url] == "UP")
        assert await ask() == b"200"
    finally:
        writer.close()


def _fnv(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h


async def test_hrw_strategy_keeps_a_client_on_its_server(make_proxy, backends) -> None:
    import math

    proxy = await make_proxy(*FLAGS)
    b1, b2, b3 = backends
    _apply(proxy, {"app": _lb(b1.url, b2.url, Server(b3.url, weight=2), strategy="hrw",
                              health={"path": "/health", **FAST})})
    assert proxy.state.compiled.runtime.services["app@file"]["status"] == "enabled"
    scores = {b.name: (2 if b is b3 else 1) / -math.log(_fnv(("127.0.0.1" + b.url).encode()) / 2**64)
              for b in backends}
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    assert set(await _names(proxy.port, 5)) == {ranked[0]}
    # its server down: the next best, for every request
    best = next(b for b in backends if b.name == ranked[0])
    best.health = 500
    await _until(lambda: _svc(proxy, "app").server_status[best.url] == "DOWN")
    assert set(await _names(proxy.port, 5)) == {ranked[1]}


def test_bad_health_sections_disable_only_their_service() -> None:
    static = static_from_flags(["--entrypoints.web.address=127.0.0.1:0"])
    c = compile_config(_config({
        "app": _lb("http://a", health={"interval": "often"}),
        "abs": _lb("http://b", health={"path": "http://elsewhere/health"}),
        "passive": Service(load_balancer=LoadBalancer(servers=(Server("http://c"),),
                                                      passive_health_check={"maxFailedAttempts": -1})),
        "fine": _lb("http://d", health={"path": "/health"})}), static)
    rt = c.runtime.services
    assert rt["app"]["status"] == "disabled" and "healthCheck.interval" in rt["app"]["error"][0]
    assert rt["abs"]["status"] == "disabled" and "relative URL" in rt["abs"]["error"][0]
    assert rt["passive"]["status"] == "disabled" and "maxFailedAttempts" in rt["passive"]["error"][0]
    assert rt["fine"]["status"] == "enabled" and len(c.health) == 1
