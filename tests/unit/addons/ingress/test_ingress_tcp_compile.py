"""TCP/UDP compile step and the per entry point decision (Traefik pkg/server/router/tcp manager.go and
router.go ServeTCP): which handler takes a connection, and every router's status and errors."""

from __future__ import annotations

from collections import Counter

import pytest

from pyk3s.addons.ingress.config.dynamic import (
    DynamicConfig,
    LoadBalancer,
    Router,
    RouterTLS,
    Server,
    Service,
    merge,
)
from pyk3s.addons.ingress.config.dynamic_tcp import (
    ProxyProtocolVersion,
    RouterTCPTLS,
    TCPLoadBalancer,
    TCPMiddleware,
    TCPParts,
    TCPRouter,
    TCPServer,
    TCPServersTransport,
    TCPService,
    TCPWeighted,
    TCPWeightedRef,
    UDPLoadBalancer,
    UDPRouter,
    UDPServer,
    UDPService,
)
from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.routing.compile import compile_config
from pyk3s.addons.ingress.routing.tcp_compile import format_duration
from pyk3s.addons.ingress.routing.tcp_services import TCPBalancer, WeightedRoundRobin, split_host_port
from pyk3s.addons.ingress.rules.tcp import conn_info

STATIC = static_from_flags(["--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443",
                            "--entrypoints.websecure.http.tls=true", "--entrypoints.dns.address=:53/udp",
                            "--entrypoints.dns2.address=:5353/udp"])
LB = TCPService(load_balancer=TCPLoadBalancer((TCPServer("10.0.0.1:5432"),)))
ULB = UDPService(load_balancer=UDPLoadBalancer((UDPServer("10.0.0.2:53"),)))


def compiled(tcp: TCPParts, http: DynamicConfig | None = None, **cfg: object):  # type: ignore[no-untyped-def]
    base = http or DynamicConfig()
    merged = merge({"kubernetescrd": DynamicConfig(routers=base.routers, services=base.services, tcp=tcp,
                                                   tls_options=base.tls_options)})
    return compile_config(merged, STATIC)


def router(rule: str, **kw: object) -> TCPRouter:
    return TCPRouter(rule=rule, **{"service": "svc", "entry_points": ("websecure",), **kw})  # type: ignore[arg-type]


def test_router_errors() -> None:
    c = compiled(TCPParts(tcp_routers={
        "ok": router("HostSNI(`*`)", entry_points=("web",)),
        "sni-without-tls": router("HostSNI(`db.example.com`)"),
        "udp-ep": router("HostSNI(`*`)", entry_points=("dns",)),
        "bad-rule": router("HostSNI(`a`) &&", tls=RouterTCPTLS()),
        "no-service": router("HostSNI(`*`)", service="nope"),
        "bad-options": router("HostSNI(`x.example.com`)", tls=RouterTCPTLS(options="missing")),
        "too-high": router("HostSNI(`*`)", priority=2**63 - 100),
        "bad-mw": router("HostSNI(`*`)", middlewares=("nomw", "emptyallow")),
        "provider-error": router("HostSNI(`*`)", error="routes[0].match is empty"),
    }, tcp_services={"svc": LB}, tcp_middlewares={"emptyallow": TCPMiddleware("ipAllowList", {"sourceRange": []})}))
    rt = c.tcp.routers
    assert rt["ok@kubernetescrd"]["status"] == "enabled" and rt["ok@kubernetescrd"]["using"] == ["web"]
    assert rt["sni-without-tls@kubernetescrd"]["error"] == [
        "invalid rule: 'HostSNI(`db.example.com`)' , has HostSNI matcher, but no TLS on router"]
    assert rt["udp-ep@kubernetescrd"]["error"] == [
        'entryPoint "dns" doesn\'t exist for TCP routers (it is a UDP entry point)', "no valid entryPoint for this router"]
    assert rt["bad-rule@kubernetescrd"]["error"][0].startswith("invalid rule: 'HostSNI(`a`) &&'")
    assert rt["no-service@kubernetescrd"]["error"] == ['the service "nope@kubernetescrd" does not exist']
    assert rt["bad-options@kubernetescrd"]["error"] == ["unknown TLS options: missing@kubernetescrd"]
    assert "exceeds the max user-defined priority" in rt["too-high@kubernetescrd"]["error"][0]
    assert rt["bad-mw@kubernetescrd"]["error"] == ['middleware "nomw@kubernetescrd" does not exist']
    assert rt["provider-error@kubernetescrd"]["error"] == ["routes[0].match is empty"]
    for name, info in rt.items():
        if name != "ok@kubernetescrd":
            assert info["status"] == "disabled", name
    mws = c.tcp.middlewares
    assert mws["emptyallow@kubernetescrd"]["error"] == ["middleware emptyallow@kubernetescrd: sourceRange is empty, "
                                                       "IPAllowLister not created"]
    # the broken TLS route is kept in the table: its connections are closed rather than sent elsewhere
    table = c.tcp.tables["websecure"]
    broken = table.route_tls(conn_info("x.example.com", "10.1.1.1"))
    assert not isinstance(broken, str) and broken.service is None


def test_router_view_in_traefik_shape() -> None:
    c = compiled(TCPParts(tcp_routers={
        "pt": router("HostSNI(`a.example.com`)", tls=RouterTCPTLS(passthrough=True), priority=5),
        "term": router("HostSNI(`b.example.com`)", tls=RouterTCPTLS(), warnings=("tls.store x: only ...",)),
    }, tcp_services={"svc": TCPService(load_balancer=TCPLoadBalancer((TCPServer("10.0.0.1:5432", True),),
                                                                      proxy_protocol=ProxyProtocolVersion(1)))}))
    assert c.tcp.routers["pt@kubernetescrd"] == {
        "entryPoints": ["websecure"], "service": "svc@kubernetescrd", "rule": "HostSNI(`a.example.com`)", "priority": 5,
        "tls": {"passthrough": True}, "name": "pt@kubernetescrd", "provider": "kubernetescrd", "status": "enabled",
        "using": ["websecure"]}
    term = c.tcp.routers["term@kubernetescrd"]
    assert term["tls"] == {"passthrough": False, "options": "default"}
    assert term["status"] == "warning" and term["error"] == ["tls.store x: only ..."]
    assert c.tcp.services["svc@kubernetescrd"] == {
        "loadBalancer": {"servers": [{"address": "10.0.0.1:5432", "tls": True}], "proxyProtocol": {"version": 1}},
        "name": "svc@kubernetescrd", "provider": "kubernetescrd", "usedBy": ["pt@kubernetescrd", "term@kubernetescrd"],
        "type": "loadbalancer", "serverStatus": {"10.0.0.1:5432": "UP"}, "status": "enabled"}


def test_default_entrypoints_are_the_tcp_ones() -> None:
    c = compiled(TCPParts(tcp_routers={"any": router("HostSNI(`*`)", entry_points=())}, tcp_services={"svc": LB}))
    assert c.tcp.routers["any@kubernetescrd"]["using"] == ["web", "websecure"]


def test_http_router_on_udp_entrypoint_is_an_error() -> None:
    http = DynamicConfig(routers={"r": Router("Host(`a`)", "s", ("dns",))},
                         services={"s": Service(load_balancer=LoadBalancer((Server("http://10.0.0.1:80"),)))})
    c = compiled(TCPParts(), http)
    assert c.runtime.routers["r@kubernetescrd"]["error"] == ['entryPoint "dns" doesn\'t exist',
                                                            "no valid entryPoint for this router"]


# --------------------------------------------------------------------------------- the decision per connection
def tables(tcp_routers: dict[str, TCPRouter], http_rules: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    http = DynamicConfig(
        routers={f"h{i}": Router(rule, "s", ("websecure",), tls=RouterTLS()) for i, rule in enumerate(http_rules)},
        services={"s": Service(load_balancer=LoadBalancer((Server("http://10.0.0.1:80"),)))})
    return compiled(TCPParts(tcp_routers=tcp_routers, tcp_services={"svc": LB}), http).tcp.tables


def name_of(verdict: object) -> str:
    return verdict if isinstance(verdict, str) else verdict.name.split("@")[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("http_rules", "sni", "want"), [
    # an HTTPS router for the host wins over the TCP router
    (("Host(`a.example.com`)",), "a.example.com", "https"),
    (("Host(`a.example.com`)",), "b.example.com", "b"),
    # an HTTPS router without Host (counted as HostSNI(*)) loses to a specific TCP router...
    (("PathPrefix(`/`)",), "b.example.com", "b"),
    # ...but wins over the TCP catch-all
    (("PathPrefix(`/`)",), "c.example.com", "https"),
    ((), "c.example.com", "all"),
    # a wildcard Host of an HTTPS router covers one label
    (("Host(`*.example.com`)",), "b.example.com", "https"),
    (("Host(`*.example.com`)",), "x.b.example.com", "all"),
    # nothing at all: the HTTPS routers answer (404)
    ((), "", "all"),
])
def test_tls_precedence(http_rules: tuple[str, ...], sni: str, want: str) -> None:
    t = tables({"b": router("HostSNI(`b.example.com`)", tls=RouterTCPTLS(passthrough=True)),
                "all": router("HostSNI(`*`)", tls=RouterTCPTLS(passthrough=True))}, http_rules)["websecure"]
    assert not t.early
    assert name_of(t.route_tls(conn_info(sni, "10.0.0.9"))) == want


def test_catch_all_above_a_specific_route_still_yields_to_https_catch_all() -> None:
    # Traefik matches the first TLS route; a catch-all found first defers to an HTTPS router without Host
    t = tables({"b": router("HostSNI(`b.example.com`)", tls=RouterTCPTLS()),
                "all": router("HostSNI(`*`)", tls=RouterTCPTLS(), priority=1000)}, ("PathPrefix(`/`)",))["websecure"]
    assert name_of(t.route_tls(conn_info("b.example.com", "10.0.0.9"))) == "https"


def test_non_tls_routes() -> None:
    t = tables({"pg": router("HostSNI(`*`)", entry_points=("web",))})["web"]
    assert t.early and name_of(t.match_early("10.0.0.1")) == "pg"
    t = tables({"ip": router("ClientIP(`10.0.0.0/8`)", entry_points=("web",)),
                "tls": router("HostSNI(`x`)", entry_points=("web",), tls=RouterTCPTLS(passthrough=True))})["web"]
    assert not t.early  # TLS routers too: the first bytes decide
    assert name_of(t.route_plain(conn_info("", "10.0.0.1"))) == "ip"
    assert t.route_plain(conn_info("", "192.168.0.1")) == "http"
    assert name_of(t.route_postgres(conn_info("x", "192.168.0.1"))) == "tls"
    assert t.route_postgres(conn_info("y", "192.168.0.1")) == "close"


def test_early_route_decided_once_unless_client_ip_comes_first() -> None:
    t = tables({"all": router("HostSNI(`*`)", entry_points=("web",))})["web"]
    assert name_of(t.everyone) == "all"
    t = tables({"ip": router("ClientIP(`10.0.0.0/8`)", entry_points=("web",)),
                "all": router("HostSNI(`*`)", entry_points=("web",))})["web"]
    assert t.everyone is None  # the peer decides
    assert name_of(t.match_early("10.1.2.3")) == "ip" and name_of(t.match_early("192.168.0.1")) == "all"
    t = tables({"none": router("!HostSNI(`*`)", entry_points=("web",))})["web"]
    assert t.everyone is None and t.match_early("10.1.2.3") is None


def test_priority_order_and_catch_all_last() -> None:
    t = tables({"long": router("HostSNI(`*`) && ClientIP(`10.0.0.0/8`)", entry_points=("web",)),
                "short": router("ClientIP(`10.0.0.1`)", entry_points=("web",)),
                "all": router("HostSNI(`*`)", entry_points=("web",))})["web"]
    assert [r.name.split("@")[0] for r in t.plain] == ["long", "short", "all"]
    assert [r.priority for r in t.plain] == [38, 20, -1]


# ------------------------------------------------------------------------------------------------- UDP
def test_udp_one_router_per_entrypoint() -> None:
    c = compiled(TCPParts(udp_routers={"a": UDPRouter("u"), "b": UDPRouter("u", ("dns",)),
                                      "tcp-ep": UDPRouter("u", ("web",)), "missing": UDPRouter("nope", ("dns2",))},
                          udp_services={"u": ULB}))
    rt = c.tcp.udp_routers
    assert c.tcp.udp["dns"].router == "b@kubernetescrd" and c.tcp.udp["dns2"].router == "a@kubernetescrd"
    assert rt["a@kubernetescrd"]["status"] == "warning" and rt["a@kubernetescrd"]["using"] == ["dns", "dns2"]
    assert rt["a@kubernetescrd"]["error"] == ['not used on entryPoint "dns": a UDP entry point serves one router, '
                                              "b@kubernetescrd is the one"]
    assert rt["tcp-ep@kubernetescrd"]["error"] == [
        'entryPoint "web" doesn\'t exist for UDP routers (it is not declared /udp)', "no valid entryPoint for this router"]
    assert rt["missing@kubernetescrd"]["error"] == ['the udp service "nope@kubernetescrd" does not exist']
    assert c.tcp.udp_services["u@kubernetescrd"]["serverStatus"] == {"10.0.0.2:53": "UP"}


# --------------------------------------------------------------------------------------------- services
def test_weighted_round_robin_follows_weights() -> None:
    wrr = WeightedRoundRobin([("a", 3), ("b", 1)])
    picks = [wrr.next() for _ in range(8)]
    assert Counter(picks) == {"a": 6, "b": 2}
    assert picks[:4] == ["a", "a", "a", "b"]


def test_transport_resolution() -> None:
    c = compiled(TCPParts(
        tcp_routers={"r": router("HostSNI(`*`)", entry_points=("web",), service="w")},
        tcp_services={
            "w": TCPService(weighted=TCPWeighted((TCPWeightedRef("a", 1), TCPWeightedRef("b", 2)))),
            "a": TCPService(load_balancer=TCPLoadBalancer((TCPServer("10.0.0.1:1"), TCPServer("bad")), termination_delay=500,
                                                          proxy_protocol=ProxyProtocolVersion(1))),
            "b": TCPService(load_balancer=TCPLoadBalancer((TCPServer("[fd00::1]:2", True),), servers_transport="st",
                                                          termination_delay=500)),
        },
        tcp_servers_transports={"st": TCPServersTransport(dial_timeout=1.0, termination_delay=-1,
                                                          proxy_protocol=ProxyProtocolVersion(2))}))
    svc = c.tcp.tables["web"].plain[0].service
    a, b = (child for child, _ in svc.children)  # type: ignore[union-attr]
    assert isinstance(a, TCPBalancer) and isinstance(b, TCPBalancer)
    assert [(t.host, t.port, t.proxy_protocol, t.termination_delay, t.tls) for t in a.targets] == [
        ("10.0.0.1", 1, 1, 0.5, None)]
    (tb,) = b.targets
    assert (tb.host, tb.port, tb.proxy_protocol, tb.termination_delay, tb.dial_timeout) == ("fd00::1", 2, 2, -1, 1.0)
    assert tb.tls is not None
    assert c.tcp.services["a@kubernetescrd"]["error"] == ["server bad left out: missing port in address 'bad'"]


@pytest.mark.parametrize(("addr", "want"), [("10.0.0.1:80", ("10.0.0.1", 80)), ("[::1]:53", ("::1", 53)),
                                            ("db.svc:5432", ("db.svc", 5432))])
def test_split_host_port(addr: str, want: tuple[str, int]) -> None:
    assert split_host_port(addr) == want


@pytest.mark.parametrize("addr", ["10.0.0.1", "::1:53", "host:99999", ":80"])
def test_split_host_port_errors(addr: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(addr)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (0.1, "100ms"), (90, "1m30s"), (0, "0s"), (3600, "1h0m0s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_tls_option_problems_of_terminating_routers() -> None:
    from pyk3s.addons.ingress.config.dynamic import TLSOptions

    http = DynamicConfig(tls_options={
        "curves": TLSOptions(curve_preferences=("CurveP521",), client_auth_type="RequireAnyClientCert"),
        "noca": TLSOptions(client_auth_type="RequireAndVerifyClientCert"),
        "badver": TLSOptions(min_version="VersionSSL30")})
    c = compiled(TCPParts(tcp_routers={
        "a": router("HostSNI(`a`)", tls=RouterTCPTLS(options="curves")),
        "b": router("HostSNI(`b`)", tls=RouterTCPTLS(options="noca")),
        "c": router("HostSNI(`c`)", tls=RouterTCPTLS(options="badver")),
    }, tcp_services={"svc": LB}), http)
    rt = c.tcp.routers
    assert rt["a@kubernetescrd"]["status"] == "warning" and len(rt["a@kubernetescrd"]["error"]) == 2
    assert "without a CA" in rt["b@kubernetescrd"]["error"][0]
    assert rt["c@kubernetescrd"]["status"] == "disabled"
    assert rt["c@kubernetescrd"]["error"] == ["TLS options badver@kubernetescrd: unknown TLS version VersionSSL30"]


def test_middleware_unknown_fields() -> None:
    c = compiled(TCPParts(tcp_routers={"r": router("HostSNI(`*`)", middlewares=("m",))}, tcp_services={"svc": LB},
                          tcp_middlewares={"m": TCPMiddleware("ipAllowList", {"sourceRange": ["10.0.0.0/8"],
                                                                             "ipStrategy": {"depth": 1}})}))
    assert c.tcp.middlewares["m@kubernetescrd"]["error"] == [
        "middleware m@kubernetescrd: ipAllowList: unknown field(s) ipStrategy"]
