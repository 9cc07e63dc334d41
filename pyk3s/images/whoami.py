"""``pyk3s whoami``: an echo server shaped like traefik/whoami.

HTTP on ``--port`` (``WHOAMI_PORT_NUMBER``, default 80): ``/`` answers ``Hostname:``, ``IP:`` lines,
``RemoteAddr:``, the request line and headers; ``/health`` the current health status (200 until a
``POST /health`` whose body is a status code changes it, as traefik/whoami does: readiness probes can be
flipped from outside); ``/api`` the same as JSON; ``/bench`` a one-byte body for load tests;
``/data?size=N`` N bytes. A UDP echo listens on the same port number. Logs ``Starting up on port N`` and,
with ``--verbose``, one line per request.
Raw asyncio protocols with httptools, uvloop when available: it sits on benchmark paths.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import socket
import struct
from urllib.parse import parse_qs, urlsplit

import httptools

__all__ = ["WhoamiInfo", "main", "serve"]

_SIOCGIFADDR = 0x8915


def local_ips() -> list[str]:
    """IPv4 addresses of this network namespace's interfaces (what traefik/whoami prints as ``IP:``)."""
    ips: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                res = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            ips.append(socket.inet_ntoa(res[20:24]))
    return ips


class WhoamiInfo:
    __slots__ = ("hostname", "ips", "name", "head", "health", "verbose")

    def __init__(self, name: str = "", verbose: bool = False) -> None:
        self.health = _HEALTH
        self.verbose = verbose
        self.hostname = os.environ.get("HOSTNAME") or socket.gethostname()
        self.ips = local_ips()
        self.name = name
        lines = []
        if name:
            lines.append(f"Name: {name}")
        lines.append(f"Hostname: {self.hostname}")
        lines.extend(f"IP: {ip}" for ip in self.ips)
        self.head = ("\r\n".join(lines) + "\r\n").encode()


_REASONS = {200: "OK", 500: "Internal Server Error", 503: "Service Unavailable"}


def _health_answer(code: int) -> bytes:
    return f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}\r\nContent-Length: 0\r\n\r\n".encode()


_BENCH = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\r\n1"
_HEALTH = _health_answer(200)


def _response(status: str, body: bytes, ctype: str, keep_alive: bool) -> bytes:
    conn = b"" if keep_alive else b"Connection: close\r\n"
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n".encode()
            + conn + b"\r\n" + body)


class WhoamiHttp(asyncio.Protocol):
    __slots__ = ("info", "transport", "parser", "url", "headers", "peer", "body")

    def __init__(self, info: WhoamiInfo) -> None:
        self.info = info
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.peer = ""
        self.body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.transport.close()  # type: ignore[attr-defined]
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")  # type: ignore[attr-defined]
            self.transport.close()  # type: ignore[attr-defined]

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        if len(self.body) < 64:
            self.body += body

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        self.transport.write(self._answer(keep))  # type: ignore[attr-defined]
        if not keep:
            self.transport.close()  # type: ignore[attr-defined]

    def _answer(self, keep: bool) -> bytes:
        parts = urlsplit(self.url.decode("latin-1"))
        path = parts.path
        if path == "/bench":
            return _BENCH
        method = self.parser.get_method().decode()
        if self.info.verbose:
            print(f"{self.peer} {method} {self.url.decode('latin-1')}", flush=True)
        if path == "/health":
            if method == "POST":
                try:
                    self.info.health = _health_answer(int(self.body.strip() or b"200"))
                except ValueError:
                    return _response("400 Bad Request", b"status code expected\n", "text/plain", keep)
            return self.info.health
        version = self.parser.get_http_version()
        if path == "/data":
            size = int(parse_qs(parts.query).get("size", ["1"])[0])
            return _response("200 OK", b"-" * max(0, min(size, 64 << 20)), "text/plain", keep)
        if path == "/api":
            host = next((v.decode("latin-1") for k, v in self.headers if k.lower() == b"host"), "")
            hdrs: dict[str, list[str]] = {}
            for k, v in self.headers:
                hdrs.setdefault(k.decode("latin-1").title(), []).append(v.decode("latin-1"))
            doc = {"hostname": self.info.hostname, "ip": self.info.ips, "headers": hdrs,
                   "url": self.url.decode("latin-1"), "host": host, "method": method,
                   "name": self.info.name, "remoteAddr": self.peer}
            return _response("200 OK", json.dumps(doc).encode(), "application/json", keep)
        lines = [f"RemoteAddr: {self.peer}", f"{method} {self.url.decode('latin-1')} HTTP/{version}"]
        lines.extend(f"{k.decode('latin-1').title()}: {v.decode('latin-1')}" for k, v in self.headers)
        body = self.info.head + ("\r\n".join(lines) + "\r\n\r\n").encode()
        return _response("200 OK", body, "text/plain; charset=utf-8", keep)


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def serve(port: int, name: str = "", host: str = "0.0.0.0", verbose: bool = False) -> None:
    """Serve HTTP (TCP) and UDP echo on ``port`` until cancelled."""
    loop = asyncio.get_running_loop()
    info = WhoamiInfo(name, verbose)
    server = await loop.create_server(lambda: WhoamiHttp(info), host, port, reuse_address=True, backlog=1024)
    udp, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=(host, port))
    print(f"Starting up on port {port}", flush=True)
    try:
        await server.serve_forever()
    finally:
        udp.close()
        server.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pyk3s whoami", description="traefik/whoami-style echo server")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WHOAMI_PORT_NUMBER", "80")))
    parser.add_argument("--name", default=os.environ.get("WHOAMI_NAME", ""))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--verbose", action="store_true", default=bool(os.environ.get("WHOAMI_VERBOSE")))
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(serve(args.port, args.name, args.host, args.verbose))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
