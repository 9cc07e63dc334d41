"""HTTP/2 header blocks to and from the proxy's request and response (RFC 9113 8.2-8.3, spec 6.1-6.3).

- A client's request block becomes the same :class:`HttpRequest` an HTTP/1.1 client's head gives:
  ``:authority`` (else ``host``) is the Host, ``:path`` the target, ``cookie`` fields are joined with
  ``; `` (8.2.3), spoofable ``X-Forwarded-*`` from untrusted peers are dropped as on HTTP/1.1.
- A request to an HTTP/2 upstream carries what :func:`~.heads.upstream_head` would send, as fields:
  hop-by-hop and ``Connection``-named fields dropped, the X-Forwarded-* block added, ``te: trailers``
  kept (gRPC servers need it), ``;`` in the query sent as ``&``.
- A response to an HTTP/2 client drops the fields HTTP/2 forbids (``connection``, ``keep-alive``,
  ``proxy-connection``, ``transfer-encoding``, ``upgrade``) and the ones ``Connection`` names.
"""

from __future__ import annotations

from ..http.reply import http_date
from ..http.request import HttpRequest
from ..routing.services import Target
from .h2conn import Header
from .heads import FORWARDED, HOP_BY_HOP, MANAGED, forwarded_block

__all__ = ["request_from_h2", "upstream_fields", "response_fields", "relayed_fields", "trailer_fields", "is_grpc"]

# fields an HTTP/2 message may not carry (8.2.2)
_H2_FORBIDDEN = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"))
# fields of an upstream answer not copied as they are into an HTTP/2 response
_NOT_RELAYED = _H2_FORBIDDEN | {"content-length", "te"}
_NOT_COPIED = HOP_BY_HOP | MANAGED | {"host"}
# forwarded blocks as fields, by (authority, peer, tls): the same few clients ask for the same hosts
_FORWARDED: dict[tuple[str, str, bool], list[Header]] = {}
_FORWARDED_MAX = 4096


def is_grpc(content_type: str) -> bool:
    """gRPC over HTTP/2 (``application/grpc`` and ``application/grpc+proto``...), not gRPC-Web."""
    return content_type.startswith("application/grpc") and not content_type.startswith("application/grpc-web")


def request_from_h2(fields: list[Header], peer: str, tls: bool, trusted: bool, entrypoint: str,
                    local_port: int) -> tuple[HttpRequest, bool, int]:
    """(the request, whether it is gRPC, its Content-Length or -1) from a validated request block."""
    method = path = authority = ""
    host = ""
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    length = -1
    grpc = False
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value.decode("latin-1")
            elif name == b":path":
                path = value.decode("latin-1")
            elif name == b":authority":
                authority = value.decode("latin-1")
            continue
        key = name.decode("latin-1")
        if not trusted and key[:2] == "x-" and key in FORWARDED:
            continue  # spoofable forwarding headers from an untrusted peer never go further (6.1)
        text = value.decode("latin-1")
        if key == "cookie":
            cookies.append(text)
            continue
        if key == "host":
            host = host or text
        elif key == "content-length":
            length = int(text) if text.isdigit() else -2
        elif key == "content-type":
            grpc = is_grpc(text)
        headers.append((key, text))
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    req = HttpRequest(method, path or "/", headers, peer, tls, "2.0", entrypoint, local_port, authority or host)
    return req, grpc, length


def _forwarded_fields(req: HttpRequest, present: set[str] | None, xff: list[str]) -> list[Header]:
    authority = req.authority
    if present is None and not req.no_xff and len(authority) <= 255:
        key = (authority, req.peer, req.tls)
        found = _FORWARDED.get(key)
        if found is not None:
            return found
    else:
        key = None
    block = forwarded_block(authority, req.peer, req.tls, False, req.no_xff, present, xff)
    out: list[Header] = []
    for line in block.split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            out.append((name.lower().encode("latin-1"), value.encode("latin-1", "replace")))
    if key is not None:
        if len(_FORWARDED) >= _FORWARDED_MAX:
            _FORWARDED.clear()
        _FORWARDED[key] = out
    return out


def upstream_fields(req: HttpRequest, target: Target) -> list[Header]:
    """The header block of ``req`` for an HTTP/2 upstream server."""
    authority = req.authority
    host = authority if target.pass_host_header else target.authority
    query = req.query
    path = (req.raw_path or "/") + ("?" + query.replace(";", "&") if query else "")
    out: list[Header] = [(b":method", req.method.encode("latin-1")),
                         (b":scheme", b"https" if target.scheme == "https" else b"http"),
                         (b":authority", host.encode("latin-1", "replace")),
                         (b":path", path.encode("latin-1", "replace"))]
    connection: set[str] = set()
    present: set[str] | None = None
    xff: list[str] = []
    te_trailers = False
    for k, v in req.headers:
        lk = k.lower()
        if lk == "connection":
            connection.update(t.strip().lower() for t in v.split(","))
        elif lk in MANAGED:
            if present is None:
                present = set()
            present.add(lk)
            if lk == "x-forwarded-for":
                xff.append(v)
    for k, v in req.headers:
        lk = k.lower()
        if lk in _NOT_COPIED:
            if lk == "te" and "trailers" in v.lower():
                te_trailers = True
            elif lk in MANAGED and lk != "x-forwarded-for":
                out.append((lk.encode("latin-1"), v.encode("latin-1", "replace")))
            continue
        if lk in connection:
            continue
        out.append((lk.encode("latin-1"), v.encode("latin-1", "replace")))
    if te_trailers:
        out.append((b"te", b"trailers"))
    out += _forwarded_fields(req, present, xff)
    if req.body_mode == "length":
        out.append((b"content-length", str(req.content_length).encode()))
    return out


def response_fields(status: int, headers: list[tuple[str, str]], length: int | None,
                    extra: list[tuple[str, str]] | None = None) -> list[Header]:
    """A response block for an HTTP/2 client; ``length`` None drops ``content-length``, an int sets it."""
    out, _ = relayed_fields(status, headers, extra, False)
    if length is not None:
        out.append((b"content-length", b"%d" % length))
    return out


def relayed_fields(status: int, headers: list[tuple[str, str]], extra: list[tuple[str, str]] | None,
                   keep_length: bool) -> tuple[list[Header], int | None]:
    """(the response block, the length it announces): as ``response_fields``, with the upstream's own
    ``content-length`` kept when ``keep_length`` and it is a number (it is then the length returned)."""
    out: list[Header] = [(b":status", b"%d" % status)]
    named: set[str] | None = None
    has_date = False
    length: int | None = None
    for k, v in headers:
        lk = k.lower()
        if lk in _NOT_RELAYED:
            if lk == "connection":
                named = (named or set()) | {t.strip().lower() for t in v.split(",")}
            elif lk == "content-length" and keep_length and v.strip().isdigit():
                length = int(v)
            continue
        if lk == "date":
            has_date = True
        out.append((lk.encode("latin-1"), v.encode("latin-1", "replace")))
    if named:  # fields the upstream's Connection header names are hop-by-hop (rare: filtered afterwards)
        out = [f for f in out if f[0].decode("latin-1") not in named]
        has_date = has_date and "date" not in named
    for k, v in extra or ():
        out.append((k.lower().encode("latin-1"), v.encode("latin-1", "replace")))
    if not has_date:
        out.append((b"date", http_date()))
    if length is not None:
        out.append((b"content-length", b"%d" % length))
    return out, length


def trailer_fields(trailers: list[tuple[str, str]]) -> list[Header]:
    """Trailers for an HTTP/2 peer: lower-case names, no framing or pseudo fields."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in trailers
            if k and k[0] != ":" and k.lower() not in HOP_BY_HOP]
