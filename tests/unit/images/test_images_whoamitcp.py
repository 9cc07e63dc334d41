"""The built-in whoamitcp / whoamiudp images (traefik/whoamitcp, traefik/whoamiudp) and whoami over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyk3s.images import resolve_image
from pyk3s.images.whoami import serve
from pyk3s.images.whoamitcp import serve_tcp, serve_udp


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def running(coro: object) -> AsyncIterator[None]:
    task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_images_resolve() -> None:
    assert resolve_image("traefik/whoamitcp:v0.2.2")[-1] == "whoamitcp"  # type: ignore[index]
    assert resolve_image("docker.io/traefik/whoamiudp")[-1] == "whoamiudp"  # type: ignore[index]


async def test_tcp_banner_who_echo_stop() -> None:
    port = free_port()
    async with running(serve_tcp(f"127.0.0.1:{port}", "db", banner=True)):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readexactly(7) == b"Welcome"
        writer.write(b"hello")
        assert await reader.readexactly(15) == b"Received: hello"
        writer.write(b"WHO\n")
        info = (await reader.read(1000)).decode()
        assert info.startswith("Name: db\nHostname: ") and "RemoteAddr: 127.0.0.1:" in info
        writer.write(b"STOP")
        assert await reader.read() == b""
        writer.close()


async def test_udp_who_echo() -> None:
    port = free_port(socket.SOCK_DGRAM)
    async with running(serve_udp(f"127.0.0.1:{port}", "dns")):
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.connect(("127.0.0.1", port))
            s.send(b"ping")
            assert await asyncio.wait_for(loop.sock_recv(s, 100), 5) == b"Received: ping"
            s.send(b"WHO")
            assert (await asyncio.wait_for(loop.sock_recv(s, 1000), 5)).startswith(b"Name: dns\n")


async def test_whoami_https(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whoami.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("whoami.test")]), critical=False)
            .sign(key, hashes.SHA256()))
    crt = tmp_path / "tls.crt"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = tmp_path / "tls.key"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    port = free_port()
    async with running(serve(port, "tls", "127.0.0.1", cert=str(crt), key=str(pem))):
        ctx = ssl.create_default_context(cafile=str(crt))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="whoami.test")
        writer.write(b"GET / HTTP/1.1\r\nHost: whoami.test\r\nConnection: close\r\n\r\n")
        body = await reader.read()
        assert body.startswith(b"HTTP/1.1 200 OK") and b"Name: tls" in body
        writer.close()
