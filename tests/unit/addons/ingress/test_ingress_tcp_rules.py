"""TCP rule matcher: the cases of Traefik's pkg/muxer/tcp tests (matcher_test.go, matcher_v2_test.go,
mux_test.go) and its rules-and-priority documentation, in both syntaxes."""

from __future__ import annotations

import pytest

from pyk3s.addons.ingress.config.errors import RuleError
from pyk3s.addons.ingress.rules.tcp import (
    conn_info,
    host_sni_domains,
    parse_tcp_rule,
    tcp_rule_priority,
)


def matches(rule: str, sni: str = "", peer: str = "", alpn: tuple[str, ...] = (), syntax: str = "v3") -> bool:
    return parse_tcp_rule(rule, syntax).match(conn_info(sni, peer, alpn))


def host(addr: str) -> str:
    """Traefik's tests give remote addresses as host:port; the matcher reads the host."""
    if not addr:
        return ""
    h = addr.rsplit(":", 1)[0]
    return h.strip("[]")


# ------------------------------------------------------------------------------------- v3 matchers
@pytest.mark.parametrize("rule", [
    "", "HostSNI(``)", "HostSNI(`example.com`, `example.org`)", "HostSNI(`🦭.com`)", "HostSNI(`*.*.example.com`)",
    "HostSNIRegexp(``)", "HostSNIRegexp(`🦭.com`)", "HostSNIRegexp(`(example.com`)",
    "HostSNIRegexp(`example.com`, `example.org`)", "ClientIP(``)", "ClientIP(`🦭/32`)",
    "ClientIP(`127.0.0.1`, `127.0.0.2`)", "ALPN(`acme-tls/1`)", "ALPN(``)", "ALPN(`h2`, `mqtt`)",
    "rulewithnotmatcher", "HostSNI()", "Host(`example.com`)", "HostSNI('example.com')",
], ids=repr)
def test_v3_build_errors(rule: str) -> None:
    with pytest.raises(RuleError):
        parse_tcp_rule(rule, "v3")


@pytest.mark.parametrize(("rule", "sni", "match"), [
    ("HostSNI(`xn--9t9h.com`)", "xn--9t9h.com", True),
    ("HostSNI(`xn--9t9h.com`)", "🦭.com", False),
    ("HostSNI(`example.com`)", "example.com", True),
    ("HostSNI(`example.com`)", "example.org", False),
    ("HostSNI(`*`)", "example.com", True),
    ("HostSNI(`*`)", "", True),
    ("HostSNI(`example.com.`)", "example.com", True),
    ("HostSNI(`foo.example.com`)", "foo.example.com", True),
    ("HostSNI(`foo_bar.example.com`)", "foo_bar.example.com", True),
    ("HostSNI(`*.example.com`)", "foo.example.com", True),
    ("HostSNI(`*.example.com`)", "foo.bar.example.com", False),
    ("HostSNI(`*.example.com`)", "example.com", False),
    ("HostSNI(`example.com`)", "", False),
    ("HostSNI(`Example.COM`)", "EXAMPLE.com", True),
    ("HostSNI(`127.0.0.1`)", "127.0.0.1", True),
    ("HostSNI(`10::10`)", "10::10", True),
])
def test_v3_host_sni(rule: str, sni: str, match: bool) -> None:
    assert matches(rule, sni) is match


@pytest.mark.parametrize(("sni", "match"), [
    ("example.com", True), ("example.com.", False), ("EXAMPLE.com", True), ("example.org", True),
    ("exampleuorg", False), ("", False),
])
def test_v3_host_sni_regexp(sni: str, match: bool) -> None:
    # the server name is lower-cased before matching (Traefik's NewConnData), so EXAMPLE.com arrives as example.com
    assert matches(r"HostSNIRegexp(`^example\.(com|org)$`)", sni) is match


@pytest.mark.parametrize("sni", ["example.com", "example.com.", "EXAMPLE.com", "example.org", "exampleuorg", ""])
def test_v3_host_sni_regexp_v2_template_is_plain_regexp(sni: str) -> None:
    assert matches("HostSNIRegexp(`example.{tld:(com|org)}`)", sni) is False


@pytest.mark.parametrize(("rule", "peer", "match"), [
    ("ClientIP(`20.20.20.20`)", "20.20.20.20", True),
    ("ClientIP(`20.20.20.20`)", "10.10.10.10", False),
    ("ClientIP(`20.20.20.20/24`)", "20.20.20.40", True),
    ("ClientIP(`20.20.20.20/24`)", "10.10.10.10", False),
    ("ClientIP(`::1`)", "::1", True),
    ("ClientIP(`fe80::/10`)", "fe80::1", True),
    ("ClientIP(`10.0.0.1`)", "::ffff:10.0.0.1", True),
])
def test_v3_client_ip(rule: str, peer: str, match: bool) -> None:
    assert matches(rule, peer=peer) is match


@pytest.mark.parametrize(("proto", "match"), [("h2", True), ("mqtt", False), ("", False)])
def test_v3_alpn(proto: str, match: bool) -> None:
    assert matches("ALPN(`h2`)", alpn=(proto,)) is match


# mux_test.go Test_addTCPRoute: (rule, server name, remote address, ALPN protocols, match)
ADD_ROUTE_V3 = [
    ("HostSNI(`example.org`)", "example.org", "", (), True),
    ("!HostSNI(`example.com`)", "example.org", "", (), True),
    ("hostsni(`example.org`)", "example.org", "", (), True),
    ("HOSTSNI(`example.org`)", "example.org", "", (), True),
    ("HostSNI(`example.org`)", "example.com", "", (), False),
    ("!HostSNI(`example.com`)", "example.com", "", (), False),
    ("HostSNI(`example.org`) && ClientIP(`10.0.0.1`)", "example.org", "10.0.0.1:80", (), True),
    ("!HostSNI(`example.com`) && ClientIP(`10.0.0.1`)", "example.org", "10.0.0.1:80", (), True),
    ("HostSNI(`example.org`) && !ClientIP(`10.0.0.2`)", "example.org", "10.0.0.1:80", (), True),
    ("!HostSNI(`example.com`) && !ClientIP(`10.0.0.2`)", "example.org", "10.0.0.1:80", (), True),
    ("!(HostSNI(`example.com`) || ClientIP(`10.0.0.2`))", "example.org", "10.0.0.1:80", (), True),
    ("!(HostSNI(`example.com`) && ClientIP(`10.0.0.2`))", "example.org", "10.0.0.2:80", (), True),
    ("!(HostSNI(`example.com`) && ClientIP(`10.0.0.2`))", "example.com", "10.0.0.1:80", (), True),
    ("!(HostSNI(`example.com`) && ClientIP(`10.0.0.2`))", "example.com", "10.0.0.2:80", (), False),
    ("HostSNI(`example.org`) && ClientIP(`10.0.0.1`)", "example.com", "10.0.0.1:80", (), False),
    ("HostSNI(`example.org`) && ClientIP(`10.0.0.1`)", "example.org", "10.0.0.2:80", (), False),
    ("HostSNI(`example.org`) || ClientIP(`10.0.0.1`)", "example.com", "10.0.0.1:80", (), True),
    ("HostSNI(`example.org`) || ClientIP(`10.0.0.1`)", "example.org", "10.0.0.2:80", (), True),
    ("HostSNI(`example.org`) || ClientIP(`10.0.0.1`)", "example.com", "10.0.0.2:80", (), False),
    ("HostSNI(`example.org`) || HostSNI(`example.eu`) || HostSNI(`example.com`)", "example.org", "", (), True),
    ("HostSNI(`example.org`) || HostSNI(`example.eu`) || HostSNI(`example.com`)", "baz", "", (), False),
    ("HostSNI(`example.org`) || HostSNI(`example.com`) && ClientIP(`10.0.0.1`)", "example.org", "10.0.0.2:80", (), True),
    ("HostSNI(`example.org`) || HostSNI(`example.com`) && ClientIP(`10.0.0.1`)", "example.com", "10.0.0.1:80", (), True),
    ("HostSNI(`example.org`) || HostSNI(`example.com`) && ClientIP(`10.0.0.1`)", "example.com", "10.0.0.2:80", (), False),
    ("HostSNI(`example.org`) || HostSNI(`example.com`) && ClientIP(`10.0.0.1`)", "baz", "10.0.0.1:80", (), False),
    ("(HostSNI(`example.org`) || HostSNI(`example.com`)) && (ClientIP(`10.0.0.1`) || ClientIP(`10.0.0.2`))",
     "example.com", "10.0.0.1:80", (), True),
    ("(HostSNI(`example.org`) || HostSNI(`example.com`)) && (ClientIP(`10.0.0.1`) || ClientIP(`10.0.0.2`))",
     "baz", "10.0.0.1:80", (), False),
    ("(HostSNI(`example.org`) || HostSNI(`example.com`)) && (ClientIP(`10.0.0.1`) || ClientIP(`10.0.0.2`))",
     "example.com", "10.0.0.3:80", (), False),
    ("(HostSNI(`example.org`) || (HostSNI(`example.com`) && !HostSNI(`example.org`))) && "
     "((ClientIP(`10.0.0.1`) && !ClientIP(`10.0.0.2`)) || ClientIP(`10.0.0.2`)) ", "example.com", "10.0.0.1:80", (), True),
    ("ALPN(`h2c`) && (!ALPN(`h2`) || HostSNI(`example.eu`))", "example.eu", "", ("h2c", "mqtt"), True),
    ("ALPN(`h2c`) && (!ALPN(`h2`) || HostSNI(`example.eu`))", "example.com", "", ("h2c", "http/1.1", "h2"), False),
    ("ALPN(`h2c`) && (!ALPN(`h2`) || HostSNI(`example.eu`))", "example.com", "", ("h2c", "http/1.1"), True),
    ("ALPN(`h2c`) && (!ALPN(`h2`) || HostSNI(`example.eu`))", "example.com", "", ("http/1.1", "mqtt"), False),
    ("HostSNI(`127.0.0.1`)", "127.0.0.1", "", (), True),
    ("HostSNI(`10::10`)", "10::10", "", (), True),
    # the documentation's example of operators
    ("HostSNI(`example.com`) || (HostSNI(`example.org`) && !ALPN(`h2`))", "example.org", "", ("http/1.1",), True),
    ("HostSNI(`example.com`) || (HostSNI(`example.org`) && !ALPN(`h2`))", "example.org", "", ("h2",), False),
]


@pytest.mark.parametrize(("rule", "sni", "addr", "protos", "match"), ADD_ROUTE_V3)
def test_v3_combined(rule: str, sni: str, addr: str, protos: tuple[str, ...], match: bool) -> None:
    assert matches(rule, sni, host(addr), protos) is match


# ------------------------------------------------------------------------------------- v2 matchers
# matcher_v2_test.go Test_addTCPRouteV2: (rule, server name, remote address, protocols, match); None = build error
ADD_ROUTE_V2: list[tuple[str, str, str, tuple[str, ...], bool | None]] = [
    ("", "", "", (), None),
    ("rulewithnotmatcher", "", "", (), None),
    ("HostSNI()", "foobar", "", (), None),
    ("HostSNI(``)", "foobar", "", (), None),
    ("HostSNI(`foobar`)", "foobar", "", (), True),
    ("!HostSNI(`bar`)", "foobar", "", (), True),
    ("hostsni(`foobar`)", "foobar", "", (), True),
    ("HOSTSNI(`foobar`)", "foobar", "", (), True),
    ("HostSNI(`foobar`)", "bar", "", (), False),
    ("HostSNIRegexp()", "foobar", "", (), None),
    ("HostSNIRegexp(``)", "foobar", "", (), None),
    ("HostSNIRegexp(`{subdomain:[a-z]+}.foobar`)", "sub.foobar", "", (), True),
    ("!HostSNIRegexp(`bar`)", "foobar", "", (), True),
    ("hostsniregexp(`foobar`)", "foobar", "", (), True),
    ("HOSTSNIREGEXP(`foobar`)", "foobar", "", (), True),
    ("HostSNIRegexp(`foobar`)", "bar", "", (), False),
    ("!HostSNI(`bar`)", "bar", "", (), False),
    ("HostSNIRegexp(`{subdomain:[a-z]*}`)", "", "", (), True),
    ("HostSNIRegexp(`{dummy}`)", "toto", "", (), True),
    ("HostSNIRegexp(`{dummy}`)", "toto.com", "", (), False),
    ("ClientIP()", "", "", (), None),
    ("ClientIP(``)", "", "", (), None),
    ("ClientIP(`invalid`)", "", "", (), None),
    ("ClientIP(`10.0.0.1`)", "", "not.an.IP:80", (), False),
    ("ClientIP(`10.0.0.1`)", "", "10.0.0.1:80", (), True),
    ("!ClientIP(`20.0.0.1`)", "", "10.0.0.1:80", (), True),
    ("clientip(`10.0.0.1`)", "", "10.0.0.1:80", (), True),
    ("CLIENTIP(`10.0.0.1`)", "", "10.0.0.1:80", (), True),
    ("ClientIP(`10.0.0.1`)", "", "10.0.0.2:80", (), False),
    ("!ClientIP(`10.0.0.2`)", "", "10.0.0.2:80", (), False),
    ("ClientIP(`10::10`)", "", "[10::10]:80", (), True),
    ("!ClientIP(`10::10`)", "", "[::1]:80", (), True),
    ("ClientIP(`10::10`)", "", "[::1]:80", (), False),
    ("ClientIP(`10.0.0.1`, `10.0.0.0`)", "", "10.0.0.0:80", (), True),
    ("ClientIP(`11.0.0.0/24`)", "", "11.0.0.0:80", (), True),
    ("ClientIP(`11.0.0.0/24`)", "", "10.0.0.0:80", (), False),
    ("ClientIP(`11::/16`)", "", "[11::]:80", (), True),
    ("ClientIP(`11::/16`)", "", "[10::]:80", (), False),
    ("ClientIP(`11.0.0.0/16`, `10.0.0.0/16`)", "", "10.0.0.0:80", (), True),
    ("ClientIP(`11.0.0.0/16`, `10.0.0.0`)", "", "10.0.0.0:80", (), True),
    ("ClientIP(`11.0.0.0`, `10.0.0.0/16`)", "", "10.0.0.0:80", (), True),
    ("HostSNI(`foobar`) && ClientIP(`10.0.0.1`)", "foobar", "10.0.0.1:80", (), True),
    ("!(HostSNI(`bar`) && ClientIP(`10.0.0.2`))", "bar", "10.0.0.2:80", (), False),
    ("HostSNI(`foobar`) || HostSNI(`bar`) && ClientIP(`10.0.0.1`)", "foobar", "10.0.0.2:80", (), True),
    ("HostSNI(`foobar`) || HostSNI(`bar`) && ClientIP(`10.0.0.1`)", "bar", "10.0.0.2:80", (), False),
    ("ALPN(`acme-tls/1`)", "", "", ("foo",), None),
    ("ALPN(`foo`)", "", "", ("foo",), True),
    ("ALPN(`foo`)", "", "", ("acme-tls/1",), False),
    ("ALPN(`foo`)", "", "", ("bar",), False),
    ("ALPN(`foo`) && !alpn(`h2`)", "", "", ("foo", "bar"), True),
    ("ALPN(`foo`) && !alpn(`h2`)", "", "", ("foo", "h2", "bar"), False),
    ("ALPN(`foo`) && (!alpn(`h2`) || hostsni(`foo`))", "foo", "", ("foo", "bar"), True),
    ("ALPN(`foo`) && (!alpn(`h2`) || hostsni(`foo`))", "bar", "", ("foo", "bar", "h2"), False),
    ("ALPN(`foo`) && (!alpn(`h2`) || hostsni(`foo`))", "bar", "", ("foo", "bar"), True),
    ("ALPN(`foo`) && (!alpn(`h2`) || hostsni(`foo`))", "bar", "", ("h2", "bar"), False),
]


@pytest.mark.parametrize(("rule", "sni", "addr", "protos", "match"), ADD_ROUTE_V2)
def test_v2_add_route(rule: str, sni: str, addr: str, protos: tuple[str, ...], match: bool | None) -> None:
    if match is None:
        with pytest.raises(RuleError):
            parse_tcp_rule(rule, "v2")
        return
    assert matches(rule, sni, host(addr), protos, syntax="v2") is match


# Test_HostSNIV2: (hosts, server name, match); None = build error
@pytest.mark.parametrize(("hosts", "sni", "match"), [
    (("héhé",), "", None),
    (("foobar",), "bar", False),
    (("*",), "foobar", True),
    (("*",), "", True),
    (("foo", "*"), "bar", True),
    (("foo", "*"), "", False),
    (("*.bar",), "", None),
    (("foobar.",), "foobar", True),
    (("foobar", "foo-bar.baz"), "foobar", True),
    (("foo.bar",), "foo.bar", True),
    (("foo_bar.example.com",), "foo_bar.example.com", True),
    (("127.0.0.1",), "127.0.0.1", True),
    (("10::10",), "10::10", True),
])
def test_v2_host_sni(hosts: tuple[str, ...], sni: str, match: bool | None) -> None:
    rule = "HostSNI(" + ", ".join(f"`{h}`" for h in hosts) + ")"
    if match is None:
        with pytest.raises(RuleError):
            parse_tcp_rule(rule, "v2")
        return
    assert matches(rule, sni, syntax="v2") is match


def test_v2_host_sni_trailing_dot_in_server_name() -> None:
    # "Not Matching host with trailing dot with": the rule keeps its own dot, so "foobar." still matches
    rule = parse_tcp_rule("HostSNI(`foobar.`)", "v2")
    from pyk3s.addons.ingress.rules.tcp import ConnInfo
    assert rule.match(ConnInfo("foobar.", "", ()))


# Test_HostSNIRegexpV2: pattern -> {server name: match}; None = build error
@pytest.mark.parametrize(("pattern", "cases"), [
    ("subdomain:(foo\\.)?bar\\.com}", None),
    ("{:(foo\\.)?bar\\.com}", None),
    ("{subdomain:}", None),
    ("{subdomain:(foo\\.?bar\\.com}", None),
    ("bar.com", {"bar.com": True, "barucom": False}),
    ("{subdomain:(foo\\.)?bar\\.com}", {"foo.bar.com": True, "bar.com": True, "fooubar.com": False,
                                         "barucom": False, "barcom": False}),
    ("{subdomain:(?:foo\\.)?bar\\.com}", {"foo.bar.com": True, "bar.com": True, "fooubar.com": False,
                                           "barucom": False, "barcom": False}),
    ("{dummy:[A-Za-z-]+\\.bar\\.com}", {"FOO.bar.com": True, "foo.bar.com": True, "fooubar.com": False}),
    ("{dummy:[a-z-]+\\.bar\\.com}", {"FOO.bar.com": True, "foo.bar.com": True, "barcom": False}),
    ("foo.bar.com", {"FOO.bar.com": True, "foo.bar.com": True, "fooubar.com": False, "barcom": False}),
])
def test_v2_host_sni_regexp(pattern: str, cases: dict[str, bool] | None) -> None:
    rule = f"HostSNIRegexp(`{pattern}`)"
    if cases is None:
        with pytest.raises(RuleError):
            parse_tcp_rule(rule, "v2")
        return
    compiled = parse_tcp_rule(rule, "v2")
    from pyk3s.addons.ingress.rules.tcp import ConnInfo
    for sni, want in cases.items():
        # Traefik's matcher test feeds the name as given (no lower-casing): the template is case-insensitive
        assert compiled.match(ConnInfo(sni, "", ())) is want, sni


@pytest.mark.parametrize(("cidrs", "peer", "match"), [
    (("héhé",), "", None),
    (("20.20.20.20",), "", False),
    (("20.20.20.20",), "10.10.10.10", False),
    (("10.10.10.10",), "10.10.10.10", True),
    (("20.20.20.20", "30.30.30.30"), "10.10.10.10", False),
    (("10.10.10.10", "20.20.20.20", "30.30.30.30"), "20.20.20.20", True),
    (("20.0.0.0/24",), "10.10.10.10", False),
    (("20.0.0.0/8",), "20.10.10.10", True),
    (("10.0.0.0/24", "20.0.0.0/24"), "10.10.10.10", False),
    (("10.0.0.0/8", "20.0.0.0/8"), "20.10.10.10", True),
])
def test_v2_client_ip(cidrs: tuple[str, ...], peer: str, match: bool | None) -> None:
    rule = "ClientIP(" + ", ".join(f"`{c}`" for c in cidrs) + ")"
    if match is None:
        with pytest.raises(RuleError):
            parse_tcp_rule(rule, "v2")
        return
    assert matches(rule, peer=peer, syntax="v2") is match


@pytest.mark.parametrize(("protos", "conn", "match"), [
    (("acme-tls/1",), "", None),
    (("h2",), "", False),
    (("h2",), "mqtt", False),
    (("h2",), "h2", True),
    (("h2", "mqtt"), "h2c", False),
    (("h2", "h2c", "mqtt"), "h2c", True),
])
def test_v2_alpn(protos: tuple[str, ...], conn: str, match: bool | None) -> None:
    rule = "ALPN(" + ", ".join(f"`{p}`" for p in protos) + ")"
    if match is None:
        with pytest.raises(RuleError):
            parse_tcp_rule(rule, "v2")
        return
    assert matches(rule, alpn=(conn,), syntax="v2") is match


# ------------------------------------------------------------------------------ catch-all, priority
@pytest.mark.parametrize(("rule", "syntax", "catch_all"), [
    ("HostSNI(`example.com`)", "v3", False),
    ("HostSNI(`*`)", "v3", True),
    ("HostSNIRegexp(`.*`)", "v3", False),
    ("HostSNI(`foobar`)", "v2", False),
    ("HostSNI(`*`)", "v2", True),
    ("HOSTSNI(`*`)", "v2", True),
    ('HostSNI("*")', "v2", True),
    ("HostSNI(`*`) && ClientIP(`10.0.0.1`)", "v3", False),
])
def test_catch_all(rule: str, syntax: str, catch_all: bool) -> None:
    compiled = parse_tcp_rule(rule, syntax)
    assert compiled.catch_all is catch_all
    assert compiled.match(conn_info("example.com" if syntax == "v3" else "foobar", "10.0.0.1"))


@pytest.mark.parametrize(("rule", "priority"), [
    ("HostSNI(`example.org`)", 22),
    ("HostSNI(`*`)", -1),
    ("   HostSNI ( `*` )       ", -1),
    ("HostSNI(`*`) && ClientIP(`10.0.0.1`)", 36),
    ("ClientIP(`192.168.0.12`)", 24),
    ("not a rule", 10),
])
def test_default_priority(rule: str, priority: int) -> None:
    assert tcp_rule_priority(rule) == priority


# TestParseHostSNI / TestParseHostSNIV2: None = error
@pytest.mark.parametrize(("rule", "domains"), [
    ("Unknown(`example.com`)", None),
    ("Foobar(`foo.bar`,`test.bar`)", None),
    ("HostSNI(`example.com`)", ["example.com"]),
    ("HOSTSNI(`example.com`)", ["example.com"]),
    ("hostsni(`example.com`)", ["example.com"]),
    ("HostSNI(`127.0.0.1`)", ["127.0.0.1"]),
    ("HostSNI(`10::10`)", ["10::10"]),
    ("ClientIP(`10.1`)", []),
    ("HostSNI(`example.com`) && ClientIP(`10.1`)", ["example.com"]),
    ("HostSNI() && ClientIP(`10.1`)", []),
    ("HostSNI(`foo.bar`,`test.bar`)", ["foo.bar", "test.bar"]),
    ("HostSNI(`Foo.Bar`) && ClientIP(`10.1`)", ["foo.bar"]),
])
def test_host_sni_domains(rule: str, domains: list[str] | None) -> None:
    if domains is None:
        with pytest.raises(RuleError):
            host_sni_domains(rule)
        return
    assert host_sni_domains(rule) == domains


def test_explain_lists_every_leaf() -> None:
    rule = parse_tcp_rule("HostSNI(`a.example`) && !ALPN(`h2`)")
    assert rule.explain(conn_info("a.example", "", ("h2",))) == [("HostSNI(`a.example`)", True), ("ALPN(`h2`)", True)]
