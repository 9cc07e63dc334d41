"""Responses the proxy writes itself (errors, redirects, auth challenges, the API).

Go's net/http spelling is kept: ``404 page not found\\n`` with ``text/plain; charset=utf-8`` and
``X-Content-Type-Options: nosniff`` (http.Error), a ``Date`` header, ``Content-Length``.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

__all__ = ["Reply", "http_date", "text_error", "NOT_FOUND", "NO_SERVER", "status_text", "BAD_REQUEST_BYTES", "bad_request_bytes"]

_date_cache = [0, b""]


def http_date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode()
    return _date_cache[1]  # type: ignore[return-value]


def status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"


class Reply:
    """A complete response: status, header pairs, body bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body

    def header(self, name: str) -> str:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), "")

    def encode(self, keep_alive: bool, head_only: bool = False) -> bytes:
        out = [b"HTTP/1.1 %d %s\r\n" % (self.status, status_text(self.status).encode())]
        for k, v in self.headers:
            out.append(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1", "replace")))
        out.append(b"Date: " + http_date() + b"\r\n")
        if self.status >= 200 and self.status not in (204, 304):
            out.append(b"Content-Length: %d\r\n" % len(self.body))
        if not keep_alive:
            out.append(b"Connection: close\r\n")
        out.append(b"\r\n")
        if not head_only:
            out.append(self.body)
        return b"".join(out)


def text_error(status: int, body: str | None = None) -> Reply:
    """Go's http.Error: text/plain, nosniff, body + newline."""
    text = (body if body is not None else status_text(status)) + "\n"
    return Reply(status, [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
                 text.encode())


NOT_FOUND = text_error(404, "404 page not found")
NO_SERVER = text_error(503, "no available server")
def bad_request_bytes(reason: str) -> bytes:
    """What Go's http.Server writes for a request it refuses with a reason: the reason on the status line
    and as the body, then the connection closes."""
    text = f"400 Bad Request: {reason}".encode("latin-1", "replace")
    return (b"HTTP/1.1 " + text + b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            + text)


BAD_REQUEST_BYTES = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Connection: close\r\n\r\n400 Bad Request")
