"""Minimal HTTP/1.1 GET server for /health, /ready and /metrics (no framework: a few lines per request).

One listener per address; several plugins may hang paths on the same address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

__all__ = ["HttpEndpoints", "split_hostport"]

log = logging.getLogger("pyk3s.dns.http")
Route = Callable[[], tuple[int, str, str]]   # -> (status, content type, body)
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def split_hostport(addr: str, default_port: int) -> tuple[str, int]:
    if not addr:
        return "", default_port
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return host, int(port) if port else default_port
    host, _, port = addr.rpartition(":")
    if not _:
        return addr, default_port
    return host, int(port)


class HttpEndpoints:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, int], dict[str, Route]] = {}
        self.servers: dict[tuple[str, int], asyncio.base_events.Server] = {}

    def add(self, host: str, port: int, path: str, route: Route) -> None:
        self.routes.setdefault((host, port), {})[path] = route

    async def start(self) -> None:
        for addr in list(self.routes):
            if addr in self.servers:
                continue
            host, port = addr
            self.servers[addr] = await asyncio.start_server(
                partial(self._serve, addr=addr), host or None, port, reuse_address=True)

    def bound_port(self, host: str, port: int) -> int:
        srv = self.servers[(host, port)]
        return srv.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for srv in self.servers.values():
            srv.close()
        for srv in self.servers.values():
            await srv.wait_closed()
        self.servers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     addr: tuple[str, int]) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                if len(line) < 2:
                    break
                method, path = line[0], line[1].split("?", 1)[0]
                route = self.routes.get(addr, {}).get(path)
                if route is None:
                    status, ctype, body = 404, "text/plain", "404 page not found\n"
                elif method not in ("GET", "HEAD"):
                    status, ctype, body = 405, "text/plain", "method not allowed\n"
                else:
                    status, ctype, body = route()
                data = body.encode()
                writer.write(f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + (b"" if method == "HEAD" else data))
                await writer.drain()
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
