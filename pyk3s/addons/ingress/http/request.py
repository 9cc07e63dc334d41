"""The request as routers, middlewares and the upstream writer see it.

One mutable, slotted object per request, built by the client protocol from httptools callbacks.
Header names keep their wire spelling; lookups are case-insensitive (Go canonicalises names, 1.2.4).
``path`` is the routing path of spec 1.2.2 (percent-escapes decoded except reserved characters),
``raw_path`` is the escaped path sent upstream. Middlewares that rewrite the path set both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Protocol
from urllib.parse import unquote, unquote_plus

from .reply import Reply

__all__ = ["HttpRequest", "ExchangeHooks", "BodyEncoder", "FailoverErrors", "routing_path", "sanitize_path", "canonical_host",
           "parse_query", "SavedRequest"]

_RESERVED = frozenset(":/?#[]@!$&'()*+,;=%")
# canonical_host results by Host value: clients repeat the same few hosts, one dict hit per request
_HOSTS: dict[str, str] = {}
_HOSTS_MAX = 4096


_UNRESERVED_ESCAPES = {f"%{b:02X}": chr(b) for b in range(0x80)
                       if chr(b).isalnum() or chr(b) in "-._~"}


def sanitize_path(raw: str) -> str:
    """Traefik's entry-point path handling (sanitizePath, on by default): percent-escapes of unreserved
    characters are decoded (and the others upper-cased), then ``.`` and ``..`` segments and repeated
    slashes are removed as Go's ``URL.JoinPath()`` does (RFC 3986 6.2.2); a trailing slash stays."""
    if "%" in raw:
        parts = raw.split("%")
        out = [parts[0]]
        for part in parts[1:]:
            esc = "%" + part[:2].upper()
            out.append(_UNRESERVED_ESCAPES.get(esc, esc if len(part) >= 2 else "%" + part[:2]) + part[2:])
        raw = "".join(out)
    if "/." not in raw and "//" not in raw:
        return raw
    segments: list[str] = []
    for seg in raw.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segments:
                segments.pop()
            continue
        segments.append(seg)
    cleaned = "/" + "/".join(segments)
    if raw.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def routing_path(raw: str) -> str:
    """Decode percent-escapes except reserved characters (1.2.2); ValueError on a truncated escape."""
    if "%" not in raw:
        return raw
    out: list[str] = []
    i, n = 0, len(raw)
    pending = bytearray()
    while i < n:
        c = raw[i]
        if c == "%":
            if i + 2 >= n:
                raise ValueError(f"invalid URL escape {raw[i:]!r}")
            hexd = raw[i + 1 : i + 3]
            try:
                b = int(hexd, 16)
            except ValueError:
                raise ValueError(f"invalid URL escape {raw[i:i + 3]!r}") from None
            if chr(b) in _RESERVED and b < 0x80:
                if pending:
                    out.append(pending.decode("utf-8", "replace"))
                    pending.clear()
                out.append("%" + hexd.upper())
            else:
                pending.append(b)
            i += 3
            continue
        if pending:
            out.append(pending.decode("utf-8", "replace"))
            pending.clear()
        out.append(c)
        i += 1
    if pending:
        out.append(pending.decode("utf-8", "replace"))
    return "".join(out)


def canonical_host(value: str) -> str:
    """Host without port and IPv6 brackets, trimmed and lower-cased (1.2.1)."""
    h = value.strip()
    if h.startswith("["):
        end = h.find("]")
        return (h[1:end] if end > 0 else h[1:]).lower()
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.lower()


def parse_query(query: str) -> dict[str, list[str]]:
    """Go url.ParseQuery: pairs split on '&', pairs containing ';' dropped, form-decoded."""
    out: dict[str, list[str]] = {}
    if not query:
        return out
    for part in query.split("&"):
        if not part or ";" in part:
            continue
        k, _, v = part.partition("=")
        try:
            out.setdefault(unquote_plus(k), []).append(unquote_plus(v))
        except Exception:  # noqa: BLE001 - an undecodable pair is skipped like Go does
            continue
    return out


class BodyEncoder(Protocol):
    """Encodes a response body chunk by chunk (a zlib compressor)."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int, /) -> bytes: ...


class ExchangeHooks(Protocol):
    """What response middlewares may do to the exchange of their request (``req.exchange``)."""

    encoder: BodyEncoder | None  # encodes the response body on its way to the client (compress)
    # runs once the upstream's response is complete, instead of finishing the exchange (errors)
    intercept: Callable[[], Coroutine[object, object, None]] | None
    # turns the upstream's trailers into the last bytes of the body (grpcWeb); they are then not sent
    on_trailers: Callable[[list[tuple[str, str]]], bytes] | None

    def replace_reply(self, reply: Reply, by: object) -> None:
        """Answer with ``reply`` instead of the upstream's response; the response hooks of the middlewares
        listed before ``by`` apply to it."""

    def decode_request_body(self, decoder: Callable[[bytes], bytes]) -> None:
        """Run the request body through ``decoder`` on its way upstream (grpcWeb's base64 text mode)."""

    def whole_request_body(self, limit: int) -> asyncio.Future[bytes | None]:
        """The whole request body once it has arrived, while a request middleware runs (forwardAuth's
        forwardBody; the middleware sets ``needs_body``); None once it is longer than ``limit`` bytes
        (``limit`` < 0: no limit) or the client has gone."""


class FailoverErrors(Protocol):
    """A failover service with ``errors`` (routing/services.py), as the exchange sees it."""

    max_body: int

    def wants_fallback(self, status: int) -> bool: ...


SavedRequest = tuple[list[tuple[str, str]], str, str, str, str, str]


class HttpRequest:
    __slots__ = (
        "method", "raw_path", "path", "query", "headers", "host", "authority", "peer", "peer_port",
        "tls", "version", "entrypoint", "_hmap", "_qmap", "keep_alive", "upgrade", "body_mode",
        "content_length", "user", "local_port", "sni", "no_xff", "retry", "marks", "exchange", "failover",
    )

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], peer: str,
                 tls: bool = False, version: str = "1.1", entrypoint: str = "", local_port: int = 0,
                 host_header: str | None = None) -> None:
        self.method = method
        self.headers = headers
        self.peer = peer
        self.peer_port = 0
        self.tls = tls
        self.version = version
        self.entrypoint = entrypoint
        self.local_port = local_port
        self._hmap: dict[str, list[str]] | None = None
        self._qmap: dict[str, list[str]] | None = None
        self.keep_alive = True
        self.upgrade = False
        self.body_mode = ""  # "", "length", "chunked"
        self.content_length = 0
        self.user = ""
        self.sni = ""
        self.no_xff = False
        self.retry: tuple[int, float] | None = None
        self.marks: set[int] | None = None
        self.exchange: ExchangeHooks | None = None
        self.failover: FailoverErrors | None = None  # a failover with errors picked its main service
        authority = ""
        if target[:1] != "/" and target.startswith(("http://", "https://")):
            rest = target.split("://", 1)[1]
            slash = rest.find("/")
            authority, target = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
            if "@" in authority:
                authority = authority.rsplit("@", 1)[1]
            if "?" in authority:
                authority, q = authority.split("?", 1)
                target = "/?" + q
        qpos = target.find("?")
        if qpos >= 0:
            self.raw_path, self.query = target[:qpos], target[qpos + 1 :]
        else:
            self.raw_path, self.query = target, ""
        if "/." in self.raw_path or "//" in self.raw_path or "%" in self.raw_path:
            self.raw_path = sanitize_path(self.raw_path)
        self.path = routing_path(self.raw_path) if "%" in self.raw_path else self.raw_path
        if not authority:
            # the parser hands over the first Host value it saw; other callers let it be looked up
            authority = self.header("host") if host_header is None else host_header
        self.authority = authority
        host = _HOSTS.get(authority)
        if host is None:
            host = canonical_host(authority)
            if len(authority) <= 255:
                if len(_HOSTS) >= _HOSTS_MAX:
                    _HOSTS.clear()
                _HOSTS[authority] = host
        self.host = host

    # -- headers (case-insensitive)
    def header_map(self) -> dict[str, list[str]]:
        hm = self._hmap
        if hm is None:
            hm = {}
            for k, v in self.headers:
                hm.setdefault(k.lower(), []).append(v)
            self._hmap = hm
        return hm

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_values(self, name: str) -> list[str]:
        return self.header_map().get(name.lower(), [])

    def set_header(self, name: str, value: str) -> None:
        low = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != low]
        self.headers.append((name, value))
        self._hmap = None

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name, value))
        self._hmap = None

    def del_header(self, name: str) -> None:
        low = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != low]
        self._hmap = None

    # -- query
    def query_map(self) -> dict[str, list[str]]:
        qm = self._qmap
        if qm is None:
            qm = self._qmap = parse_query(self.query)
        return qm

    def set_path(self, raw_path: str) -> None:
        """Rewrite the path from an escaped form; the routing path follows."""
        self.raw_path = raw_path
        self.path = unquote(raw_path) if "%" in raw_path else raw_path

    def saved(self) -> SavedRequest:
        """What middlewares may rewrite (headers, path, query, method, authority), for ``restore``: a
        failover's fallback gets the request as it came to the failover (Traefik clones it for the main
        service)."""
        return list(self.headers), self.raw_path, self.path, self.query, self.method, self.authority

    def restore(self, saved: SavedRequest) -> None:
        headers, self.raw_path, self.path, self.query, self.method, self.authority = saved
        self.headers = list(headers)
        self._hmap = self._qmap = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def request_uri(self) -> str:
        return self.raw_path + ("?" + self.query if self.query else "")
