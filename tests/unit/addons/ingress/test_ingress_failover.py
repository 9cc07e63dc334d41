"""A failover service with ``errors`` (Traefik 3.7): an answer of the main service whose status is in
``errors.status`` is dropped and the request, body and all, goes to the fallback; a body over
``errors.maxRequestBodyBytes`` is refused with 413 before either service sees it.

The proxy, compile step and services are the real ones; the backends are the echo servers of
ingress_support (one answering every request with a status the test sets).
"""

from __future__ import annotations

from typing import Any

from h2_support import H2Backend, H2Client
from ingress_support import EchoBackend, http

from pyk3s.addons.ingress.config.dynamic import (
    DynamicConfig,
    Failover,
    LoadBalancer,
    Router,
    Server,
    Service,
)
from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.routing.compile import compile_config

FLAGS = ("--entrypoints.web.address=127.0.0.1:0",)


def _lb(*urls: str) -> Service:
    return Service(load_balancer=LoadBalancer(servers=tuple(Server(u) for u in urls)))


def _config(main: Service, fallback: Service, **errors: Any) -> DynamicConfig:
    return DynamicConfig(
        routers={"r": Router("Host(`a.example`)", "fo", entry_points=("web",))},
        services={"fo": Service(failover=Failover("main", "fallback", **errors)), "main": main, "fallback": fallback})


def _url(b: EchoBackend) -> str:
    return f"http://127.0.0.1:{b.port}"


async def test_an_error_status_of_the_main_service_sends_the_request_to_the_fallback(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    proxy.load([], extra={"file": _config(_lb(_url(backend)), _lb(_url(backend2)), errors_status=("500-504",))})
    assert proxy.state.compiled.runtime.services["fo@file"]["status"] == "enabled"
    r = await http(proxy.ports["web"], "/", host="a.example")
    assert r.status == 200 and r.json()["name"] == backend.name  # main answers: nothing else happens
    assert len(backend2.requests) == 0
    backend.status = 502
    body = bytes(range(256)) * 400  # 100 KiB: beyond what a plain exchange keeps for a retry
    r = await http(proxy.ports["web"], "/upload", host="a.example", method="POST", body=body)
    assert r.status == 200 and r.json()["name"] == backend2.name  # the main's 502 and its body are dropped
    assert backend.requests[-1]["body"] == body and backend2.requests[-1]["body"] == body
    assert r.json()["method"] == "POST" and r.json()["url"] == "/upload"
    backend.status = 404  # not one of errors.status: the main's answer stands
    r = await http(proxy.ports["web"], "/", host="a.example")
    assert r.status == 404 and r.json()["name"] == backend.name and len(backend2.requests) == 1
    backend.status, backend2.status = 503, 500  # the fallback's answer is final, whatever it is
    r = await http(proxy.ports["web"], "/", host="a.example")
    assert r.status == 500 and r.json()["name"] == backend2.name


async def test_http2_clients_and_a_main_service_without_servers(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    backend.status = 503
    proxy.load([], extra={"file": _config(_lb(_url(backend)), _lb(_url(backend2)), errors_status=("503",))})
    client = await H2Client.connect(proxy.ports["web"])
    try:
        r = await client.request("/h2", "a.example", method="POST", body=b"hello")
        assert r.status == 200 and r.headers.get("content-type") == "application/json"
        assert b'"name": "%s"' % backend2.name.encode() in r.body and b'"body": "hello"' in r.body
    finally:
        client.close()
    # a main service with no server answers 503 itself: that is an error status too
    proxy.load([], extra={"file": _config(_lb(), _lb(_url(backend2)), errors_status=("503",))})
    r = await http(proxy.ports["web"], "/", host="a.example")
    assert r.status == 200 and r.json()["name"] == backend2.name


async def test_an_http2_main_service_whose_answer_and_trailers_are_dropped(make_proxy, backend2):
    main = await H2Backend(status=502, body=b"main failed", trailers=[("x-main", "1")]).start()
    try:
        proxy = await make_proxy(*FLAGS)
        proxy.load([], extra={"file": _config(_lb(f"h2c://127.0.0.1:{main.port}"), _lb(_url(backend2)),
                                              errors_status=("502",))})
        r = await http(proxy.ports["web"], "/t", host="a.example", method="PUT", body=b"payload")
        assert r.status == 200 and r.json()["name"] == backend2.name and r.json()["body"] == "payload"
        assert b"main failed" not in r.body and "x-main" not in r.headers and len(main.requests) == 1
    finally:
        main.close()


async def test_a_body_over_max_request_body_bytes_is_refused(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    proxy.load([], extra={"file": _config(_lb(_url(backend)), _lb(_url(backend2)), errors_status=("500-599",),
                                          errors_max_request_body_bytes=10)})
    r = await http(proxy.ports["web"], "/", host="a.example", method="POST", body=b"x" * 11)
    assert (r.status, r.body) == (413, b"Request body too large\n")
    assert backend.requests == [] and backend2.requests == []
    r = await http(proxy.ports["web"], "/", host="a.example", method="POST", body=b"x" * 10)
    assert r.status == 200 and r.json()["name"] == backend.name


def test_bad_status_ranges_put_the_service_in_error() -> None:
    static = static_from_flags(list(FLAGS))
    c = compile_config(_config(_lb("http://a"), _lb("http://b"), errors_status=("5xx",)), static)
    assert c.runtime.services["fo"]["status"] == "disabled"
    assert c.runtime.services["fo"]["error"] == ["creating HTTP code ranges: errors.status: invalid status range '5xx'"]
    c = compile_config(_config(_lb("http://a"), _lb("http://b"), errors_status=("500-599",)), static)
    assert c.runtime.services["fo"]["status"] == "enabled"  # no health check needed with errors
