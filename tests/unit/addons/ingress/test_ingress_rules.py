"""Rule grammar and matchers (spec §1, §2) as tables: rule, request, expected match."""

from __future__ import annotations

import re

import pytest

from pyk3s.addons.ingress.config.errors import RuleError
from pyk3s.addons.ingress.http.request import HttpRequest
from pyk3s.addons.ingress.rules import parse_rule


def req(url: str = "/", host: str = "example.com", method: str = "GET", headers=(), peer: str = "10.0.0.1") -> HttpRequest:
    return HttpRequest(method, url, [("Host", host), *headers], peer)


V3 = [
    ("host exact", "Host(`example.com`)", req(), True),
    ("host case", "Host(`EXAMPLE.com`)", req(host="Example.COM"), True),
    ("host port ignored", "Host(`example.com`)", req(host="example.com:8080"), True),
    ("host trailing dot rule", "Host(`example.com.`)", req(), True),
    ("host trailing dot request", "Host(`example.com`)", req(host="example.com."), True),
    ("host other", "Host(`example.com`)", req(host="example.org"), False),
    ("host ipv6", "Host(`::1`)", req(host="[::1]:80"), True),
    ("host wildcard one label", "Host(`*.example.com`)", req(host="a.example.com"), True),
    ("host wildcard apex", "Host(`*.example.com`)", req(host="example.com"), False),
    ("host wildcard two labels", "Host(`*.example.com`)", req(host="a.b.example.com"), False),
    ("host star", "Host(`*`)", req(host=""), True),
    ("absolute form wins", "Host(`a.com`)", req(url="http://a.com/x", host="b.com"), True),
    ("hostregexp unanchored", "HostRegexp(`example`)", req(host="www.example.com"), True),
    ("hostregexp upper never", "HostRegexp(`^[A-Z]+\\.com$`)", req(host="ABC.com"), False),
    ("path exact", "Path(`/css`)", req("/css"), True),
    ("path no trailing", "Path(`/css`)", req("/css/"), False),
    ("pathprefix char", "PathPrefix(`/css`)", req("/cssfoo"), True),
    ("pathprefix no", "PathPrefix(`/css`)", req("/cs"), False),
    ("path decoded", "Path(`/foo bar`)", req("/foo%20bar"), True),
    ("path reserved kept", "Path(`/foo%2Fbar`)", req("/foo%2Fbar"), True),
    ("path reserved not decoded", "Path(`/foo/bar`)", req("/foo%2Fbar"), False),
    ("pathregexp", "PathRegexp(`^/api/v[0-9]+`)", req("/api/v2/x"), True),
    ("method", "Method(`get`)", req(method="GET"), True),
    ("method case-sensitive request", "Method(`GET`)", req(method="get"), False),
    ("header", "Header(`x-forwarded-proto`, `https`)", req(headers=[("X-Forwarded-Proto", "https")]), True),
    ("header value case", "Header(`X-A`, `B`)", req(headers=[("X-A", "b")]), False),
    ("headerregexp", "HeaderRegexp(`X-A`, `^b+$`)", req(headers=[("x-a", "bbb")]), True),
    ("query kv", "Query(`mobile`, `true`)", req("/?mobile=true"), True),
    ("query kv multi", "Query(`a`, `2`)", req("/?a=1&a=2"), True),
    ("query k only present empty", "Query(`mobile`)", req("/?mobile"), True),
    ("query k only with value", "Query(`mobile`)", req("/?mobile=true"), False),
    ("queryregexp", "QueryRegexp(`a`, `^[0-9]+$`)", req("/?a=123"), True),
    ("query semicolon dropped", "Query(`a`, `1`)", req("/?a=1;b=2"), False),
    ("clientip ip", "ClientIP(`10.0.0.1`)", req(), True),
    ("clientip cidr", "ClientIP(`10.0.0.0/8`)", req(), True),
    ("clientip mapped", "ClientIP(`10.0.0.1`)", req(peer="::ffff:10.0.0.1"), True),
    ("clientip other", "ClientIP(`192.168.0.0/16`)", req(), False),
    ("and binds tighter", "Host(`x`) || Host(`example.com`) && Path(`/a`)", req("/b", host="x"), True),
    ("and binds tighter 2", "Host(`x`) || Host(`example.com`) && Path(`/a`)", req("/b"), False),
    ("not", "!Host(`x`)", req(), True),
    ("not demorgan", "!(Host(`example.com`) && Path(`/a`))", req("/b"), True),
    ("double not", "!!Host(`example.com`)", req(), True),
    ("lower name", "host(`example.com`)", req(), True),
    ("upper name", "PATHPREFIX(`/`)", req(), True),
    ("title name", "Pathprefix(`/`)", req(), True),
    ("double quoted go escapes", 'PathRegexp("^/a\\\\.b$")', req("/a.b"), True),
]


@pytest.mark.parametrize(("rule", "request_", "expected"), [c[1:] for c in V3], ids=[c[0] for c in V3])
def test_v3_matchers(rule, request_, expected):
    assert parse_rule(rule, "v3").match(request_) is expected


V2 = [
    ("host multi", "Host(`a.com`, `example.com`)", req(), True),
    ("hostheader alias", "HostHeader(`example.com`)", req(), True),
    ("host comma is one host", "Host(`nope,localhost`)", req(host="localhost"), False),
    ("hostregexp template", "HostRegexp(`{sub:[a-z]+}.example.com`)", req(host="www.example.com"), True),
    ("hostregexp literal escaped", "HostRegexp(`foo.bar.com`)", req(host="fooubar.com"), False),
    ("hostregexp case-insensitive", "HostRegexp(`FOO.bar.com`)", req(host="foo.bar.com"), True),
    ("hostregexp default var", "HostRegexp(`{sub}.example.com`)", req(host="a.b.example.com"), False),
    ("path template", "Path(`/css{path:(/.*)?}`)", req("/css/main.css"), True),
    ("path template no", "Path(`/css{path:(/.*)?}`)", req("/css.css"), False),
    ("pathprefix template", "PathPrefix(`/css-{name:[0-9]?}`)", req("/css-333333/x"), True),
    ("pathprefix trailing slash", "PathPrefix(`/foo/`)", req("/foo"), False),
    ("pathprefix char", "PathPrefix(`/foo`)", req("/foobar"), True),
    ("path multi", "Path(`/a`, `/b`)", req("/b"), True),
    ("method multi", "Method(`GET`, `POST`)", req(method="POST"), True),
    ("headers", "Headers(`X-A`, `b`)", req(headers=[("x-a", "b")]), True),
    ("headersregexp", "HeadersRegexp(`X-A`, `^b`)", req(headers=[("x-a", "bc")]), True),
    ("query first value only", "Query(`a=2`)", req("/?a=1&a=2"), False),
    ("query any value", "Query(`a=`)", req("/?a=zz"), True),
    ("query and", "Query(`a=1`, `b=2`)", req("/?a=1&b=3"), False),
    ("query value with equals", "Query(`k=b=ar`)", req("/?k=b=ar"), True),
    ("clientip multi", "ClientIP(`1.1.1.1`, `10.0.0.0/24`)", req(), True),
]


@pytest.mark.parametrize(("rule", "request_", "expected"), [c[1:] for c in V2], ids=[c[0] for c in V2])
def test_v2_matchers(rule, request_, expected):
    assert parse_rule(rule, "v2").match(request_) is expected


BAD = [
    ("empty", "", "v3"), ("trailing op", "Host(`a`) &&", "v3"), ("unbalanced paren", "(Host(`a`)", "v3"),
    ("unbalanced quote", "Host(`a)", "v3"), ("no args", "Host()", "v3"), ("empty arg", "Host(``)", "v3"),
    ("bare ident", "Host(example.com)", "v3"), ("single quotes", "Host('a')", "v3"),
    ("mixed case name", "pathPrefix(`/`)", "v3"), ("unknown", "Foo(`a`)", "v3"),
    ("v3 arg count", "Host(`a`, `b`)", "v3"), ("v3 path slash", "Path(`a`)", "v3"),
    ("non ascii host", "Host(`bücher.de`)", "v3"), ("bad regexp", "PathRegexp(`(`)", "v3"),
    ("bad ip", "ClientIP(`300.1.1.1`)", "v3"), ("v2-only name in v3", "Headers(`a`, `b`)", "v3"),
    ("v3-only name in v2", "PathRegexp(`/a`)", "v2"), ("v2 unbalanced braces", "HostRegexp(`{test`)", "v2"),
    ("v2 query without =", "Query(`k`)", "v2"), ("v2 headers count", "Headers(`a`)", "v2"),
]


@pytest.mark.parametrize(("rule", "syntax"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_invalid_rules(rule, syntax):
    with pytest.raises(RuleError):
        parse_rule(rule, syntax)


def test_hosts_index():
    assert parse_rule("Host(`a`) && PathPrefix(`/x`)").hosts == {"a"}
    assert parse_rule("Host(`a`) || Host(`b`)").hosts == {"a", "b"}
    assert parse_rule("Host(`a`) || PathPrefix(`/`)").hosts is None
    assert parse_rule("!Host(`a`)").hosts is None
    assert parse_rule("Host(`*.a`)").hosts is None


@pytest.mark.parametrize(("rule", "message"), [
    ("Host(`bücher.de`)", 'invalid value "bücher.de" for "Host" matcher, non-ASCII characters are not allowed'),
    ("HostHeader(`a.example`, `bücher.de`)",
     'invalid value "bücher.de" for "Host" matcher, non-ASCII characters are not allowed'),
    ("HostRegexp(`{sub:[a-z]+}.bücher.de`)",
     'invalid value "{sub:[a-z]+}.bücher.de" for HostRegexp matcher, non-ASCII characters are not allowed'),
], ids=["Host", "HostHeader", "HostRegexp"])
def test_v2_non_ascii_host_is_a_rule_error_as_in_traefik(rule, message):
    """Traefik's v2 matchers refuse non-ASCII hosts like the v3 ones (punycode must be used)."""
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rule(rule, "v2")
    assert parse_rule("Host(`xn--bcher-kva.de`)", "v2").hosts == {"xn--bcher-kva.de"}
