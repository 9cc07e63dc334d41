"""Request and response heads as bytes (spec 6.1-6.3).

Upstream request: hop-by-hop headers and headers named in ``Connection`` are dropped (incoming
``X-Forwarded-*``/``X-Real-Ip`` from untrusted peers were dropped on arrival), then ``X-Forwarded-For``
(appended), ``-Proto``, ``-Host``, ``-Port``, ``-Server`` and ``X-Real-Ip`` are set. The Host is the
client's (``passHostHeader``) or the server address. ``;`` in the query becomes ``&``.
"""

from __future__ import annotations

import os
import socket

from ..http.reply import http_date, status_text
from ..http.request import HttpRequest
from ..routing.services import Target

__all__ = ["upstream_head", "response_head", "forwarded_block", "HOP_BY_HOP", "FORWARDED"]

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"))
FORWARDED = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                       "x-forwarded-server", "x-real-ip", "x-forwarded-uri", "x-forwarded-method",
                       "x-forwarded-tls-client-cert", "x-forwarded-tls-client-cert-info", "x-forwarded-prefix"))
MANAGED = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                     "x-forwarded-server", "x-real-ip"))
# Traefik sends os.Hostname(); in a pod that is the pod name, which the agent passes as $HOSTNAME
HOSTNAME = os.environ.get("HOSTNAME") or socket.gethostname()


def _latin1(text: str) -> bytes:
    # strict is CPython's fast path; "replace" goes through the codec registry on every call
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("latin-1", "replace")


def _port_of(authority: str, tls: bool) -> str:
    if authority.startswith("["):
        end = authority.find("]")
        rest = authority[end + 1 :]
        return rest[1:] if rest.startswith(":") else ("443" if tls else "80")
    if authority.count(":") == 1:
        return authority.split(":", 1)[1]
    return "443" if tls else "80"


_XFS = f"X-Forwarded-Server: {HOSTNAME}\r\n"
# names upstream_head handles itself; every other header is copied unless named in Connection
_SPECIAL = HOP_BY_HOP | MANAGED | {"host"}
# forwarded-header blocks by (authority, peer, tls, upgrade): the same few clients ask for the same hosts
_FORWARDED_BLOCKS: dict[tuple[str, str, bool, bool], str] = {}
_FORWARDED_BLOCKS_MAX = 4096


def forwarded_block(authority: str, peer: str, tls: bool, upgrade: bool, no_xff: bool = False,
                    present: set[str] | None = None, xff: list[str] | None = None) -> str:
    """X-Forwarded-* and X-Real-Ip lines (6.1); ``present``: managed headers the trusted client sent."""
    out = []
    if not no_xff:
        out.append("X-Forwarded-For: " + ", ".join([*(xff or ()), peer]) + "\r\n")
    if present is None or "x-forwarded-proto" not in present:
        proto = ("wss" if tls else "ws") if upgrade else ("https" if tls else "http")
        out.append(f"X-Forwarded-Proto: {proto}\r\n")
    if present is None or "x-forwarded-host" not in present:
        out.append(f"X-Forwarded-Host: {authority}\r\n")
    if present is None or "x-forwarded-port" not in present:
        out.append(f"X-Forwarded-Port: {_port_of(authority, tls)}\r\n")
    if present is None or "x-forwarded-server" not in present:
        out.append(_XFS)
    if present is None or "x-real-ip" not in present:
        out.append(f"X-Real-Ip: {peer}\r\n")
    return "".join(out)


def upstream_head(req: HttpRequest, target: Target, trusted: bool, body_mode: str) -> bytes:
    """The request line and headers sent to ``target``."""
    out: list[str] = []
    ap = out.append
    names: list[str] = []  # lower-case name per line of ``out``, "" for lines Connection cannot remove
    nap = names.append
    upgrade = req.upgrade
    connection: list[str] | None = None
    present: set[str] | None = None
    xff: list[str] = []
    for k, v in req.headers:
        lk = k.lower()
        if lk not in _SPECIAL:
            ap(f"{k}: {v}\r\n")
            nap(lk)
        elif lk in MANAGED:
            if present is None:
                present = set()
            present.add(lk)
            if lk == "x-forwarded-for":
                xff.append(v)
            else:
                ap(f"{k}: {v}\r\n")
                nap("")
        elif lk == "connection":
            if connection is None:
                connection = []
            connection.append(v)
        elif upgrade and lk == "upgrade":
            ap(f"{k}: {v}\r\n")
            nap("")
    if connection is not None:
        tokens = {t.strip().lower() for v in connection for t in v.split(",")}
        if tokens - {""}:
            out = [line for line, lk in zip(out, names, strict=True) if not lk or lk not in tokens]
            ap = out.append
    authority = req.authority
    host = authority if target.pass_host_header else target.authority
    query = req.query
    if query:
        if ";" in query:
            query = query.replace(";", "&")
        line = f"{req.method} {req.raw_path or '/'}?{query} HTTP/1.1\r\nHost: {host}\r\n"
    else:
        line = f"{req.method} {req.raw_path or '/'} HTTP/1.1\r\nHost: {host}\r\n"
    if present is None and not req.no_xff and len(authority) <= 255:
        # the usual case: nothing forwarded by the client, so the block depends on the key only
        # (bounded: hosts longer than a DNS name are built each time and never kept)
        key = (authority, req.peer, req.tls, upgrade)
        block = _FORWARDED_BLOCKS.get(key)
        if block is None:
            if len(_FORWARDED_BLOCKS) >= _FORWARDED_BLOCKS_MAX:
                _FORWARDED_BLOCKS.clear()
            block = _FORWARDED_BLOCKS[key] = forwarded_block(authority, req.peer, req.tls, upgrade)
        ap(block)
    else:
        ap(forwarded_block(authority, req.peer, req.tls, upgrade, req.no_xff, present, xff))
    if upgrade:
        ap("Connection: Upgrade\r\n")
    if body_mode == "length":
        ap(f"Content-Length: {req.content_length}\r\n")
    elif body_mode == "chunked":
        ap("Transfer-Encoding: chunked\r\n")
    ap("\r\n")
    return _latin1(line + "".join(out))


def response_head(status: int, headers: list[tuple[str, str]], framing: str, length: int, keep_alive: bool,
                  extra: list[tuple[str, str]] | None = None) -> bytes:
    """Re-framed response head: ``framing`` is "length", "chunked", "none" (no body) or "close"."""
    out = [f"HTTP/1.1 {status} {status_text(status)}\r\n"]
    conn_tokens = {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")}
    has_date = False
    for k, v in headers:
        lk = k.lower()
        if lk in HOP_BY_HOP or lk in conn_tokens:
            continue
        if lk == "date":
            has_date = True
        out.append(f"{k}: {v}\r\n")
    for k, v in extra or ():
        out.append(f"{k}: {v}\r\n")
    if not has_date:
        out.append("Date: " + http_date().decode() + "\r\n")
    if framing == "length":
        out.append(f"Content-Length: {length}\r\n")
    elif framing == "chunked":
        out.append("Transfer-Encoding: chunked\r\n")
    if not keep_alive or framing == "close":
        out.append("Connection: close\r\n")
    out.append("\r\n")
    return _latin1("".join(out))
