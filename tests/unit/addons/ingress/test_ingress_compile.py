"""Router priority, entrypoints, TLS split and error isolation in compile (spec §2, 3.10, 5.0)."""

from __future__ import annotations

import pytest

from pyk3s.addons.ingress.config.dynamic import (
    DynamicConfig,
    LoadBalancer,
    Middleware,
    Router,
    RouterTLS,
    Server,
    Service,
)
from pyk3s.addons.ingress.config.static import MAX_INT, static_from_flags
from pyk3s.addons.ingress.http.request import HttpRequest
from pyk3s.addons.ingress.providers.internal import internal_config
from pyk3s.addons.ingress.routing.compile import compile_config

STATIC = static_from_flags(["--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443",
                            "--entrypoints.websecure.http.tls=true"])
SVC = {"s@p": Service(load_balancer=LoadBalancer(servers=(Server("http://10.0.0.1:80"),)))}


def pick(routers: dict[str, Router], url: str = "/", host: str = "example.org", ep: str = "web",
         tls: bool = False, middlewares=None) -> str | None:
    c = compile_config(DynamicConfig(routers=routers, services=SVC, middlewares=middlewares or {}), STATIC)
    route = c.table.lookup(ep, tls, HttpRequest("GET", url, [("Host", host)], "10.0.0.9", tls))
    return route.name if route else None


@pytest.mark.parametrize(("routers", "url", "expected"), [
    ({"short@p": Router("Host(`example.org`)", "s@p"), "long@p": Router("Host(`example.org`) && PathPrefix(`/a`)", "s@p")},
     "/a/b", "long@p"),
    ({"short@p": Router("Host(`example.org`)", "s@p", priority=100),
      "long@p": Router("Host(`example.org`) && PathPrefix(`/a`)", "s@p")}, "/a/b", "short@p"),
    ({"neg@p": Router("PathPrefix(`/`)", "s@p", priority=-5), "other@p": Router("Path(`/zzz`)", "s@p")}, "/x", "neg@p"),
    ({"b@p": Router("PathPrefix(`/`)", "s@p", priority=5), "a@p": Router("PathPrefix(`/`)", "s@p", priority=5)},
     "/", "a@p"),
    ({"catch@p": Router("PathPrefix(`/`)", "s@p"), "host@p": Router("Host(`example.org`)", "s@p")}, "/", "host@p"),
], ids=["length", "explicit-beats-length", "negative", "tie-by-name", "hostless-vs-host"])
def test_priority(routers, url, expected):
    assert pick(routers, url) == expected


def test_rule_length_is_default_priority():
    c = compile_config(DynamicConfig(routers={"r@p": Router("Host(`example.org`)", "s@p")}, services=SVC), STATIC)
    assert c.table.tables[("web", False)].routes[0].priority == 19


def test_user_priority_limit_but_internal_allowed():
    routers = {"big@p": Router("PathPrefix(`/`)", "s@p", priority=MAX_INT - 10)}
    c = compile_config(DynamicConfig(routers=routers, services=SVC), STATIC)
    assert c.runtime.routers["big@p"]["status"] == "disabled"
    assert "max user-defined priority" in c.runtime.routers["big@p"]["error"][0]


def test_tls_split_and_entrypoint_tls():
    routers = {"plain@p": Router("PathPrefix(`/`)", "s@p", entry_points=("web",)),
               "secure@p": Router("PathPrefix(`/`)", "s@p", entry_points=("web",), tls=RouterTLS())}
    assert pick(routers, ep="web", tls=False) == "plain@p"
    assert pick(routers, ep="web", tls=True) == "secure@p"
    # every router on a TLS entrypoint serves TLS only
    assert pick({"r@p": Router("PathPrefix(`/`)", "s@p")}, ep="websecure", tls=True) == "r@p"
    assert pick({"r@p": Router("PathPrefix(`/`)", "s@p")}, ep="websecure", tls=False) is None


def test_errors_are_isolated():
    routers = {"ok@p": Router("Host(`a`)", "s@p"), "badrule@p": Router("Host(`a`", "s@p"),
               "nosvc@p": Router("Host(`b`)", "missing@p"), "nomw@p": Router("Host(`c`)", "s@p", middlewares=("x@p",)),
               "badmw@p": Router("Host(`d`)", "s@p", middlewares=("bad@p",)),
               "noep@p": Router("Host(`e`)", "s@p", entry_points=("nope",))}
    mws = {"bad@p": Middleware("replacePathRegex", {"regex": "("})}
    c = compile_config(DynamicConfig(routers=routers, services=SVC, middlewares=mws), STATIC)
    rt = c.runtime.routers
    assert rt["ok@p"]["status"] == "enabled"
    for name, text in [("badrule@p", "expected"), ("nosvc@p", 'the service "missing@p" does not exist'),
                       ("nomw@p", 'middleware "x@p" does not exist'), ("badmw@p", "invalid regexp"),
                       ("noep@p", 'entryPoint "nope" doesn\'t exist')]:
        assert rt[name]["status"] == "disabled", name
        assert text in " ".join(rt[name]["error"]), (name, rt[name]["error"])
    assert c.runtime.middlewares["bad@p"]["status"] == "disabled"
    assert c.runtime.services["missing@p"]["status"] == "disabled"


def test_static_flags_case_insensitive_and_internal_routers():
    s = static_from_flags(["--entryPoints.Web.address=:8000", "--ENTRYPOINTS.web.HTTP.redirections.entryPoint.to=websecure",
                           "--entrypoints.websecure.address=:8443", "--api.insecure", "--ping", "--metrics.prometheus"])
    assert s.entrypoints["web"].redirect_to == "websecure"
    assert set(s.entrypoints) == {"web", "websecure", "traefik"}
    cfg = internal_config(s)
    assert set(cfg.routers) == {"api", "dashboard", "ping", "prometheus", "web-to-websecure"}
    assert cfg.routers["web-to-websecure"].rule == "HostRegexp(`^.+$`)"
    assert cfg.middlewares["redirect-web-to-websecure"].config == {"scheme": "https", "port": "8443", "permanent": True}
