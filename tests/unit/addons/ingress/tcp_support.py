"""Stand-ins for the servers behind TCP and UDP routes (outside pyk3s: they play the pods) and small
clients: a TCP echo that can speak first, a TLS server with a certificate of its own, a UDP echo."""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(*names: str, issuer: tuple[Any, Any] | None = None) -> tuple[str, str, Any, Any]:
    """(cert PEM, key PEM, cert, key): self-signed for ``names``, or signed by ``issuer`` (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(), cert, key)


def server_context(cert_pem: str, key_pem: str, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.pem")
        with open(path, "w") as fh:
            fh.write(cert_pem + key_pem)
        ctx.load_cert_chain(path)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def client_context(ca_pem: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    if ca_pem is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Echo(asyncio.Protocol):
    def __init__(self, server: TCPEcho) -> None:
        self.server = server

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.connections += 1
        if self.server.banner:
            transport.write(self.server.banner)

    def data_received(self, data: bytes) -> None:
        self.server.received.append(data)
        self.transport.write(self.server.prefix + data)

    def eof_received(self) -> bool:
        self.server.eofs += 1
        if self.server.reply_after_eof:
            loop = asyncio.get_running_loop()
            loop.call_later(self.server.reply_after_eof, self._late)
            return True
        return False

    def _late(self) -> None:
        self.transport.write(b"late reply")
        self.transport.close()


@dataclass
class TCPEcho:
    """Echoes what it receives (after ``prefix``); may speak first (``banner``); with ``tls`` it terminates
    TLS with its own certificate."""

    name: str = "echo"
    banner: bytes = b""
    tls: ssl.SSLContext | None = None
    reply_after_eof: float = 0.0
    port: int = 0
    connections: int = 0
    eofs: int = 0
    received: list[bytes] = field(default_factory=list)
    server: Any = None

    @property
    def prefix(self) -> bytes:
        return f"{self.name}:".encode()

    async def start(self) -> TCPEcho:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Echo(self), "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        self.server.close()


class _UDPEcho(asyncio.DatagramProtocol):
    def __init__(self, owner: UDPEcho) -> None:
        self.owner = owner

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner.peers.append(addr)
        self.transport.sendto(self.owner.name.encode() + b":" + data, addr)


@dataclass
class UDPEcho:
    name: str = "udp"
    port: int = 0
    peers: list[Any] = field(default_factory=list)
    transport: Any = None

    async def start(self) -> UDPEcho:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _UDPEcho(self), local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        self.transport.close()


async def exchange(port: int, send: bytes = b"", ssl_ctx: ssl.SSLContext | None = None, sni: str | None = None,
                   read_first: int = 0, timeout: float = 5.0, half_close: bool = False, until: int = 0) -> bytes:
    """Connect, optionally read a banner, send, read until ``until`` bytes, EOF or ``timeout``."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ssl_ctx, server_hostname=sni if ssl_ctx else None), timeout)
    out = b""
    if read_first:
        out += await asyncio.wait_for(reader.readexactly(read_first), timeout)
    if send:
        writer.write(send)
        await writer.drain()
    if half_close and writer.can_write_eof():
        writer.write_eof()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            out += chunk
            if until and len(out) >= until:
                break
    except (TimeoutError, ConnectionError, ssl.SSLError):
        pass
    writer.close()
    return out


def route_tcp(name: str, match: str, svc: str, port: int, entry: str = "web", tls: str = "",
              extra: str = "", mws: str = "") -> str:
    """An IngressRouteTCP plus the Service and EndpointSlice of a loopback backend."""
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {svc}, namespace: default}}
spec: {{ports: [{{name: tcp, port: 9000}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {svc}-x, namespace: default, labels: {{kubernetes.io/service-name: {svc}}}}}
addressType: IPv4
ports: [{{name: tcp, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {{name: {name}, namespace: default}}
spec:
  entryPoints: [{entry}]
  {tls}
  routes:
  - match: {match}
    {mws}
    services: [{{name: {svc}, port: 9000 {extra}}}]
---
"""
