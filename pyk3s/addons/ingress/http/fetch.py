"""A small HTTP/1.1 client for side requests (forwardAuth, error pages): one connection per call."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

__all__ = ["fetch", "FetchResult"]


class FetchResult:
    __slots__ = ("status", "headers", "body", "done")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.done = False

    def on_header(self, k: bytes, v: bytes) -> None:
        self.headers.append((k.decode("latin-1"), v.decode("latin-1")))

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        self.done = True


async def fetch(url: str, method: str = "GET", headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                timeout: float = 30.0, host_header: str | None = None, ssl_context: ssl.SSLContext | None = None,
                server_hostname: str | None = None) -> FetchResult:
    """One request; an https URL is verified (against the system CAs and its host) unless ``ssl_context``
    says otherwise."""
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
        result = FetchResult()
        parser = httptools.HttpResponseParser(result)

        async def read() -> None:
            while not result.done:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed_data(data)

        await asyncio.wait_for(read(), timeout)
        result.status = parser.get_status_code()
        return result
    finally:
        writer.close()
