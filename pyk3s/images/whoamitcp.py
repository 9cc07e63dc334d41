"""``pyk3s whoamitcp`` and ``pyk3s whoamiudp``: TCP and UDP echo servers shaped like traefik/whoamitcp and
traefik/whoamiudp, the backends of TCP and UDP routes.

TCP (``--port :8080``, ``--name``, ``--banner``, ``--certFile``/``--keyFile`` for TLS): on connect,
``Welcome`` when ``--banner``; then each read of ``WHO`` answers the name, hostname and ``IP:`` lines
(plus ``RemoteAddr:``), ``STOP`` closes, anything else comes back as ``Received: <data>``.
UDP (``--port :8080``, ``--name``): a datagram ``WHO`` gets the same lines, anything else
``Received: <data>``. Logs ``Starting up on port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
from typing import cast

from .whoami import local_ips

__all__ = ["main_tcp", "main_udp", "serve_tcp", "serve_udp", "who"]


def who(name: str, peer: str) -> bytes:
    lines = [f"Name: {name}"] if name else []
    lines.append(f"Hostname: {os.environ.get('HOSTNAME') or os.uname().nodename}")
    lines += [f"IP: {ip}" for ip in local_ips()]
    lines.append(f"RemoteAddr: {peer}")
    return ("\n".join(lines) + "\n").encode()


def _addr(value: str) -> tuple[str, int]:
    """``:8080``, ``8080`` or ``host:8080``."""
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class _TCPWho(asyncio.Protocol):
    def __init__(self, name: str, banner: bool) -> None:
        self.name, self.banner = name, banner
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
        if self.banner:
            self.transport.write(b"Welcome")

    def data_received(self, data: bytes) -> None:
        word = data.strip()
        if word == b"STOP":
            self.transport.close()
        elif word == b"WHO":
            self.transport.write(who(self.name, self.peer))
        else:
            self.transport.write(b"Received: " + data)


class _UDPWho(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip() == b"WHO":
            self.transport.sendto(who(self.name, f"{addr[0]}:{addr[1]}"), addr)
        else:
            self.transport.sendto(b"Received: " + data, addr)


async def serve_tcp(port: str, name: str = "", banner: bool = False, cert: str = "", key: str = "") -> None:
    ctx = None
    if cert and key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    host, number = _addr(port)
    server = await asyncio.get_running_loop().create_server(lambda: _TCPWho(name, banner), host, number, ssl=ctx,
                                                            reuse_address=True)
    print(f"Starting up on port {port}", flush=True)
    async with server:
        await server.serve_forever()


async def serve_udp(port: str, name: str = "") -> None:
    host, number = _addr(port)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: _UDPWho(name),
                                                                             local_addr=(host, number))
    print(f"Starting up on port {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()


def _run(coro: object) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
    return 0


def main_tcp(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pyk3s whoamitcp", description="traefik/whoamitcp-style TCP echo server")
    ap.add_argument("--port", "-port", default=":8080")
    ap.add_argument("--name", "-name", default=os.environ.get("WHOAMI_NAME", ""))
    ap.add_argument("--banner", "-banner", action="store_true")
    ap.add_argument("--certFile", "-certFile", default="")
    ap.add_argument("--keyFile", "-keyFile", default="")
    args = ap.parse_args(argv)
    return _run(serve_tcp(args.port, args.name, args.banner, args.certFile, args.keyFile))


def main_udp(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pyk3s whoamiudp", description="traefik/whoamiudp-style UDP echo server")
    ap.add_argument("--port", "-port", default=":8080")
    ap.add_argument("--name", "-name", default=os.environ.get("WHOAMI_NAME", ""))
    args = ap.parse_args(argv)
    return _run(serve_udp(args.port, args.name))


main = main_tcp
