"""``pyk3s whoami``: an echo server shaped like traefik/whoami.

HTTP on ``--port`` (``WHOAMI_PORT_NUMBER``, default 80): ``/`` answers ``Hostname:``, ``IP:`` lines,
``RemoteAddr:``, the request line and headers; ``/health`` the current health status (200 until a
``POST /health`` whose body is a status code changes it, as traefik/whoami does: readiness probes can be
flipped from outside); ``/api`` the same as JSON; ``/bench`` a one-byte body for load tests;
``/data?size=N`` N bytes; ``/echo`` a WebSocket echo (each message comes back as sent). A UDP echo listens on the same port number.
``--cert``/``--key`` serve HTTPS instead (the certificate is the server's own, as with traefik/whoami).
Logs ``Starting up on port N`` and, with ``--verbose``, one line per request (with X-Forwarded-For).
Raw asyncio protocols with httptools, uvloop when available: it sits on benchmark paths.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fcntl
import hashlib
import json
import os
import socket
import ssl
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httptools

__all__ = ["WhoamiInfo", "main", "serve"]

_SIOCGIFADDR = 0x8915


def local_ips() -> list[str]:
    """Addresses of this network namespace's interfaces, IPv4 then IPv6 (what traefik/whoami prints as
    ``IP:``)."""
    ips: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                res = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            ips.append(socket.inet_ntoa(res[20:24]))
    try:
        rows = Path("/proc/net/if_inet6").read_text().split("\n")
    except OSError:
        rows = []
    for row in rows:
        f = row.split()
        if len(f) >= 6:
            ips.append(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[0])))
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


_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_frame(buf: bytearray) -> tuple[int, bytes, int] | None:
    """(first byte, unmasked payload, bytes used) of the first complete frame in ``buf``, else None."""
    if len(buf) < 2:
        return None
    n, pos = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = int.from_bytes(buf[2:10], "big"), 10
    mask = b""
    if buf[1] & 0x80:
        mask, pos = bytes(buf[pos:pos + 4]), pos + 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    if mask and n:
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
    return buf[0], payload, pos + n


def _ws_encode(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((first, n))
    elif n < 1 << 16:
        head = bytes((first, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 127)) + n.to_bytes(8, "big")
    return head + payload


class WebSocketEcho:
    """RFC 6455 after the handshake: data frames come back unmasked with the same opcode and FIN bit
    (fragments stay fragments), pings get pongs, a close is answered and ends the connection."""

    __slots__ = ("transport", "buf")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data
        while (frame := _ws_frame(self.buf)) is not None:
            first, payload, used = frame
            del self.buf[:used]
            op = first & 0x0F
            if op == 0x8:
                self.transport.write(_ws_encode(0x88, payload[:2]))
                self.transport.close()
                return
            if op == 0x9:
                self.transport.write(_ws_encode(0x8A, payload))
            elif op in (0x0, 0x1, 0x2):
                self.transport.write(_ws_encode(first & 0x8F, payload))


class WhoamiHttp(asyncio.Protocol):
    __slots__ = ("info", "transport", "parser", "url", "headers", "peer", "body", "ws")

    def __init__(self, info: WhoamiInfo) -> None:
        self.info = info
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.peer = ""
        self.body = b""
        self.ws: WebSocketEcho | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        host = f"[{peer[0]}]" if peer and ":" in peer[0] else peer[0] if peer else ""
        self.peer = f"{host}:{peer[1]}" if peer else ""   # Go's net.JoinHostPort form

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.feed(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0]:] if upgrade.args else b"")
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

    def _upgrade(self, rest: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers}
        key = headers.get(b"sec-websocket-key")
        if urlsplit(self.url.decode("latin-1")).path != "/echo" or not key \
                or headers.get(b"upgrade", b"").lower() != b"websocket":
            self.transport.write(_response("400 Bad Request", b"Bad Request\n", "text/plain",  # type: ignore[attr-defined]
                                           False))
            self.transport.close()  # type: ignore[attr-defined]
            return
        accept = base64.b64encode(hashlib.sha1(key.strip() + _WS_GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"  # type: ignore[attr-defined]
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if self.info.verbose:
            print(f"{self.peer} websocket {self.url.decode('latin-1')}", flush=True)
        self.ws = WebSocketEcho(self.transport)  # type: ignore[arg-type]
        if rest:
            self.ws.feed(rest)

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return  # answered by _upgrade once feed_data hands over
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
            xff = next((v.decode("latin-1") for k, v in self.headers if k.lower() == b"x-forwarded-for"), "")
            print(f"{self.peer} {method} {self.url.decode('latin-1')}" + (f" X-Forwarded-For: {xff}" if xff else ""),
                  flush=True)
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


def _ipv6() -> bool:
    try:
        return Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text().strip() == "0"
    except OSError:
        return False


def _udp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:   # beside the IPv4 socket, not over it
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


async def serve(port: int, name: str = "", host: str = "", verbose: bool = False, cert: str = "",
                key: str = "") -> None:
    """Serve HTTP (HTTPS with ``cert``/``key``) and UDP echo on ``port`` until cancelled; ``host`` "" means
    every address of both families (traefik/whoami listens on ``:port``), so a dual-stack pod answers on
    each of its IPs."""
    loop = asyncio.get_running_loop()
    info = WhoamiInfo(name, verbose)
    ctx = None
    if cert and key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
    hosts = [host] if host else ["0.0.0.0", *(["::"] if _ipv6() else [])]
    server = await loop.create_server(lambda: WhoamiHttp(info), hosts, port, reuse_address=True, backlog=1024,
                                      ssl=ctx)
    udps = [(await loop.create_datagram_endpoint(UdpEcho, sock=_udp_socket(h, port)))[0] for h in hosts]
    print(f"Starting up on port {port}", flush=True)
    try:
        await server.serve_forever()
    finally:
        for udp in udps:
            udp.close()
        server.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pyk3s whoami", description="traefik/whoami-style echo server")
    parser.add_argument("--port", type=int, default=int(os.environ.get("WHOAMI_PORT_NUMBER", "80")))
    parser.add_argument("--name", default=os.environ.get("WHOAMI_NAME", ""))
    parser.add_argument("--host", default="", help="listen address (default: every address of both families)")
    parser.add_argument("--verbose", action="store_true", default=bool(os.environ.get("WHOAMI_VERBOSE")))
    parser.add_argument("--cert", "-cert", default="", help="TLS certificate (PEM file): serve HTTPS")
    parser.add_argument("--key", "-key", default="", help="TLS private key (PEM file)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.port, args.name, args.host, args.verbose, args.cert, args.key))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
