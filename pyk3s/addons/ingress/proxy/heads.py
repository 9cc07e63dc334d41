"""Request and response heads as bytes (spec 6.1-6.3).

Upstream request: hop-by-hop headers and headers named in ``Connection`` are dropped (incoming
``X-Forwarded-*``/``X-Real-Ip`` from untrusted peers were dropped on arrival), then ``X-Forwarded-For``
(appended), ``-Proto``, ``-Host``, ``-Port``, ``-Server`` and ``X-Real-Ip`` are set. The Host is the
client's (``passHostHeader``) or the server address. ``;`` in the query becomes ``&``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from .reply import http_date, status_text

__all__ = ["upstream_head", "response_head", "HOP_BY_HOP", "FORWARDED"]

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"))
FORWARDED = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                       "x-forwarded-server", "x-real-ip", "x-forwarded-uri", "x-forwarded-method",
                       "x-forwarded-tls-client-cert", "x-forwarded-tls-client-cert-info", "x-forwarded-prefix"))
MANAGED = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                     "x-forwarded-server", "x-real-ip"))
# Traefik sends os.Hostname(); in a pod that is the pod name, which the agent passes as $HOSTNAME
HOSTNAME = os.environ.get("HOSTNAME") or socket.gethostname()


def _port_of(authority: str, tls: bool) -> str:
    if authority.startswith("["):
        end = authority.find("]")
        rest = authority[end + 1 :]
        return rest[1:] if rest.startswith(":") else ("443" if tls else "80")
    if authority.count(":") == 1:
        return authority.split(":", 1)[1]
    return "443" if tls else "80"


def upstream_head(req: Any, target: Any, trusted: bool, body_mode: str) -> bytes:
    """The request line and headers sent to ``target``."""
    conn_tokens: tuple[str, ...] = ()
    present: set[str] = set()
    out: list[str] = []
    upgrade = req.upgrade
    for k, v in req.headers:
        lk = k.lower()
        if lk == "connection":
            conn_tokens += tuple(t.strip().lower() for t in v.split(",") if t.strip())
    for k, v in req.headers:
        lk = k.lower()
        if lk == "host":
            continue
        if lk in HOP_BY_HOP:
            if upgrade and lk == "upgrade":
                out.append(f"{k}: {v}\r\n")
            continue
        if conn_tokens and lk in conn_tokens and lk not in MANAGED:
            continue
        if lk in MANAGED:
            present.add(lk)
            if lk == "x-forwarded-for":
                continue
        out.append(f"{k}: {v}\r\n")
    host = req.authority if target.pass_host_header else target.authority
    query = req.query.replace(";", "&") if ";" in req.query else req.query
    line = f"{req.method} {req.raw_path or '/'}{'?' + query if query else ''} HTTP/1.1\r\nHost: {host}\r\n"
    xff = list(req.header_values("x-forwarded-for"))
    if not req.no_xff:
        xff.append(req.peer)
        out.append("X-Forwarded-For: " + ", ".join(xff) + "\r\n")
    if "x-forwarded-proto" not in present:
        proto = ("wss" if req.tls else "ws") if upgrade else ("https" if req.tls else "http")
        out.append(f"X-Forwarded-Proto: {proto}\r\n")
    if "x-forwarded-host" not in present:
        out.append(f"X-Forwarded-Host: {req.authority}\r\n")
    if "x-forwarded-port" not in present:
        out.append(f"X-Forwarded-Port: {_port_of(req.authority, req.tls)}\r\n")
    if "x-forwarded-server" not in present:
        out.append(f"X-Forwarded-Server: {HOSTNAME}\r\n")
    if "x-real-ip" not in present:
        out.append(f"X-Real-Ip: {req.peer}\r\n")
    if upgrade:
        out.append("Connection: Upgrade\r\n")
    if body_mode == "length":
        out.append(f"Content-Length: {req.content_length}\r\n")
    elif body_mode == "chunked":
        out.append("Transfer-Encoding: chunked\r\n")
    out.append("\r\n")
    return (line + "".join(out)).encode("latin-1", "replace")


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
    return "".join(out).encode("latin-1", "replace")
