"""Go's url.Parse verdicts (net/url/url_test.go's parse and error cases, and Traefik's redirectRegex test
"invalid rewritten URL")."""

from __future__ import annotations

import pytest

from pyk3s.addons.ingress.http.gourl import go_url_error


@pytest.mark.parametrize("url", [
    "http://www.google.com", "http://www.google.com/", "http://www.google.com/file%20one%26two",
    "https://foo.com:8443/a?b=c#d", "http://user:pass@host/", "http://[::1]:8080/x", "http://[fe80::1%25en0]/",
    "mailto:a@b.c", "http:opaque", "/relative/path", "http://host:/x", "*", "http://h/?q=%zz",
    "http://192.168.0.1/", "https://bücher.de/", "http://h/a%2Fb",
], ids=str)
def test_go_accepts(url: str) -> None:
    assert go_url_error(url) is None


@pytest.mark.parametrize(("url", "why"), [
    ("http://192.168.0.%31/", 'invalid URL escape "%31"'),         # Traefik's redirectRegex test: 502
    ("http://h/%zz", 'invalid URL escape "%zz"'),
    ("http://h/a%", 'invalid URL escape "%"'),
    ("://h/", "missing protocol scheme"),
    ("a:b/c", None),                                                # "a" is a scheme: opaque
    ("1a:b", "first path segment in URL cannot contain colon"),
    ("http://[::1/", "missing ']' in host"),
    ("http://h:port/", 'invalid port ":port" after host'),
    ("http://a b/", 'invalid character " " in host name'),
    ("http://h/\x7f", "net/url: invalid control character in URL"),
    ("http://h/#%zz", 'invalid URL escape "%zz"'),
    ("http://us er@h/", "net/url: invalid userinfo"),
], ids=lambda v: repr(v) if v else "ok")
def test_go_refuses(url: str, why: str | None) -> None:
    got = go_url_error(url)
    if why is None:
        assert got is None
    else:
        assert got == f'parse "{url}": {why}'
