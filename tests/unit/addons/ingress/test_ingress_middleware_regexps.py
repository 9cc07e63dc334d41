"""Middleware regexps are Go's (RE2 syntax, Go's expansion), redirectRegex answers 502 for a target Go's
url.Parse refuses, replacePathRegex trims regex and replacement like Traefik, forwardAuth's header regexp
matches canonical header names (Traefik: pkg/middlewares/{replacepathregex,redirect,auth})."""

from __future__ import annotations

import pytest
from ingress_support import EchoBackend, http
from test_ingress_middlewares import seen_headers, setup

from pyk3s.addons.ingress.config.errors import ConfigError
from pyk3s.addons.ingress.middlewares.paths import ReplacePathRegex


async def test_inline_flag_after_caret_is_valid_go_syntax(make_proxy, backend):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup({"strip": {"stripPrefixRegex": {"regex": ["^(?i)/API/v[0-9]+"]}},
                      "swap": {"replacePathRegex": {"regex": "^(?i)/USERS/(\\pL+)", "replacement": "/u/${1}"}}},
                     port=backend.port))
    r = await http(proxy.port, "/api/v2/users/zo%C3%AB", host="a")
    assert r.status == 200
    assert r.json()["url"] == "/u/zo%C3%AB"
    assert seen_headers(r)["x-forwarded-prefix"] == "/api/v2"


def test_python_only_syntax_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="invalid perl operator"):
        ReplacePathRegex({"regex": "^/a(?=b)", "replacement": "/x"})


async def test_redirect_regex_to_an_invalid_url_is_502(make_proxy, backend):  # noqa: ANN001
    proxy = await make_proxy()
    # Traefik's own test case: "invalid rewritten URL"
    proxy.load(setup({"m": {"redirectRegex": {"regex": "^(.*)$", "replacement": "http://192.168.0.%31/"}}},
                     port=backend.port))
    r = await http(proxy.port, "/x", host="a")
    assert (r.status, r.body) == (502, b"Bad Gateway")
    assert not backend.requests


@pytest.mark.parametrize(("spec", "path", "upstream"), [
    ({"regex": "^/foo/.*", "replacement": "   "}, "/foo/bar", "/"),                   # all blank: empty -> /
    ({"regex": "  ^/foo/(.*)  ", "replacement": "  /bar/$1  "}, "/foo/x", "/bar/x"),   # both trimmed
], ids=["blank-replacement", "trimmed"])
async def test_replace_path_regex_trims_like_traefik(make_proxy, backend, spec, path, upstream):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup({"m": {"replacePathRegex": spec}}, port=backend.port))
    r = await http(proxy.port, path, host="a")
    assert r.status == 200 and r.json()["url"] == upstream
    assert seen_headers(r)["x-replaced-path"] == path


async def test_forward_auth_header_regexp_sees_canonical_names(make_proxy, backend):  # noqa: ANN001
    auth = await EchoBackend("auth").start()
    try:
        proxy = await make_proxy()
        proxy.load(setup({"fa": {"forwardAuth": {"address": f"http://127.0.0.1:{auth.port}/check",
                                                 "authResponseHeadersRegex": "^X-Auth-"}}}, port=backend.port))
        auth.response_headers = [("x-auth-user", "alice"), ("x-other", "no")]
        r = await http(proxy.port, "/app", host="a")
        seen = seen_headers(r)
        assert r.status == 200 and seen["x-auth-user"] == "alice" and "x-other" not in seen
    finally:
        auth.close()
