"""A small HTTP/1.1 client for side requests (forwardAuth, error pages): one connection per call."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

__all__ = ["fetch", "FetchResult", "BodyTooLarge"]


class BodyTooLarge(Exception):
    """The answer's body grew past the caller's ``max_body``."""


class FetchResult:
    __slots__ = ("status", "headers", "body", "done", "max_body", "too_large")

    def __init__(self, max_body: int = -1) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.done = False
        self.max_body = max_body
        self.too_large = False

    def on_header(self, k: bytes, v: bytes) -> None:
        self.headers.append((k.decode("latin-1"), v.decode("latin-1")))

    def on_body(self, b: bytes) -> None:
        if 0 <= self.max_body < len(self.body) + len(b):
            self.too_large = True
        else:
            self.body += b

    def on_message_complete(self) -> None:
        self.done = True


async def fetch(url: str, method: str = "GET", headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                timeout: float = 30.0, host_header: str | None = None, ssl_context: ssl.SSLContext | None = None,
                server_hostname: str | None = None, max_body: int = -1) -> FetchResult:
    """One request; an https URL is verified (against the system CAs and its host) unless ``ssl_context``
    says otherwise. BodyTooLarge when the answer's body is longer than ``max_body`` (>= 0)."""
    parts = urlsplit(url)
    ctx = None
    hostname = None
    if parts.scheme == "https":
        ctx = ssl_context or ssl.create_default_context()
        hostname = server_hostname or parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, port, ssl=ctx, server_hostname=hostname), timeout)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header or parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers or () if k.lower() not in ("host", "connection", "content-length",
                                                                          "transfer-encoding")]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body)
        result = FetchResult(max_body)
        parser = httptools.HttpResponseParser(result)

        async def read() -> None:
            while not result.done:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed_data(data)
                if result.too_large:
                    raise BodyTooLarge(f"response body larger than {max_body} bytes")

        await asyncio.wait_for(read(), timeout)
        result.status = parser.get_status_code()
        return result
    finally:
        writer.close()
