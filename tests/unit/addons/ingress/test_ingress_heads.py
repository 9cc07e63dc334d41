"""upstream_head (spec 6.1-6.3) against a plain statement of the rules, over generated header lists."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from pyk3s.addons.ingress.http.request import HttpRequest
from pyk3s.addons.ingress.proxy.heads import HOP_BY_HOP, HOSTNAME, MANAGED, upstream_head


@dataclass
class _Target:
    pass_host_header: bool = True
    authority: str = "10.42.0.7:8080"


def _expected(req: HttpRequest, target: _Target, body_mode: str) -> bytes:
    """The rules written out one by one: hop-by-hop and Connection-named headers go, managed ones are
    kept or added, X-Forwarded-For gets the peer appended."""
    low = [(k, k.lower(), v) for k, v in req.headers]
    tokens = {t.strip().lower() for _, lk, v in low if lk == "connection" for t in v.split(",") if t.strip()}
    lines = []
    for k, lk, v in low:
        if lk == "host" or lk == "x-forwarded-for":
            continue
        if lk in HOP_BY_HOP:
            if req.upgrade and lk == "upgrade":
                lines.append(f"{k}: {v}\r\n")
            continue
        if lk in tokens and lk not in MANAGED:
            continue
        lines.append(f"{k}: {v}\r\n")
    present = {lk for _, lk, _ in low if lk in MANAGED}
    if not req.no_xff:
        xff = [v for _, lk, v in low if lk == "x-forwarded-for"] + [req.peer]
        lines.append("X-Forwarded-For: " + ", ".join(xff) + "\r\n")
    if "x-forwarded-proto" not in present:
        proto = ("wss" if req.tls else "ws") if req.upgrade else ("https" if req.tls else "http")
        lines.append(f"X-Forwarded-Proto: {proto}\r\n")
    if "x-forwarded-host" not in present:
        lines.append(f"X-Forwarded-Host: {req.authority}\r\n")
    if "x-forwarded-port" not in present:
        default = "443" if req.tls else "80"
        if req.authority.startswith("["):
            after = req.authority.split("]", 1)[1]
            port = after[1:] if after.startswith(":") else default
        else:
            port = req.authority.split(":", 1)[1] if req.authority.count(":") == 1 else default
        lines.append(f"X-Forwarded-Port: {port}\r\n")
    if "x-forwarded-server" not in present:
        lines.append(f"X-Forwarded-Server: {HOSTNAME}\r\n")
    if "x-real-ip" not in present:
        lines.append(f"X-Real-Ip: {req.peer}\r\n")
    if req.upgrade:
        lines.append("Connection: Upgrade\r\n")
    if body_mode == "length":
        lines.append(f"Content-Length: {req.content_length}\r\n")
    elif body_mode == "chunked":
        lines.append("Transfer-Encoding: chunked\r\n")
    host = req.authority if target.pass_host_header else target.authority
    query = req.query.replace(";", "&")
    head = f"{req.method} {req.raw_path or '/'}{'?' + query if query else ''} HTTP/1.1\r\nHost: {host}\r\n"
    return (head + "".join(lines) + "\r\n").encode("latin-1", "replace")


_NAMES = st.sampled_from(["Accept", "X-Custom", "x-keep", "Connection", "Upgrade", "Keep-Alive", "TE",
                          "X-Forwarded-For", "x-forwarded-proto", "X-Forwarded-Host", "X-Real-Ip",
                          "X-Forwarded-Port", "X-Forwarded-Server", "Proxy-Authorization", "Content-Length"])
_VALUES = st.sampled_from(["1", "close", "x-custom, Keep-Alive", "Upgrade", "websocket", "a, b", " X-KEEP ",
                           "x-forwarded-for", "", "caf\u00e9", "snow\u2603"])


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
       host=st.sampled_from(["a.example", "a.example:8000", "[::1]:9", "A.Example"]),
       target=st.sampled_from(["/", "/p?q=1;r=2", "/x%2Fy?", "http://o.example/abs"]),
       tls=st.booleans(), upgrade=st.booleans(), no_xff=st.booleans(), pass_host=st.booleans(),
       body_mode=st.sampled_from(["", "length", "chunked"]))
def test_upstream_head_follows_the_rules(headers, host, target, tls, upgrade, no_xff, pass_host, body_mode):
    req = HttpRequest("GET", target, [("Host", host), *headers], "192.0.2.9", tls, "1.1", "web", 80)
    req.upgrade, req.no_xff, req.content_length = upgrade, no_xff, 12
    tgt = _Target(pass_host_header=pass_host)
    want = _expected(req, tgt, body_mode)
    assert upstream_head(req, tgt, False, body_mode) == want
    assert upstream_head(req, tgt, False, body_mode) == want  # the second call may come from the block cache


def test_host_header_from_parser_matches_lookup():
    hdrs = [("Host", "Shop.Example:8080"), ("Accept", "*/*")]
    a = HttpRequest("GET", "/", hdrs, "127.0.0.1", host_header="Shop.Example:8080")
    b = HttpRequest("GET", "/", hdrs, "127.0.0.1")
    assert (a.authority, a.host) == (b.authority, b.host) == ("Shop.Example:8080", "shop.example")
