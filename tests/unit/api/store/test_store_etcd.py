"""etcd engine specifics: endpoint failover, TLS with client certificates, watch resume."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from store_servers import HAVE_ETCD, EtcdServer, free_port

from pyk3s.api.store import open_store
from pyk3s.api.store.base import Unavailable
from pyk3s.api.store.etcd import EtcdStore

pytestmark = pytest.mark.skipif(not HAVE_ETCD, reason="etcd binary not installed")


async def test_failover_to_next_endpoint(etcd_server: EtcdServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    store = EtcdStore([dead, etcd_server.url], compact_min_retain=0)
    await store.start()
    try:
        kv = await store.create("/registry/a", b"1")
        assert (await store.get("/registry/a"))[1] == kv
        assert store.endpoints[store._current] == etcd_server.url
    finally:
        await store.close()


async def test_no_endpoint_reachable_is_unavailable() -> None:
    store = EtcdStore([f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"])
    with pytest.raises(Unavailable, match="no endpoint reachable"):
        await store.start()
    await store.close()


class _Relay:
    """A loopback TCP relay in front of etcd whose connections the test can cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_watch_resumes_after_stream_break(etcd_server: EtcdServer) -> None:
    relay = _Relay(int(etcd_server.url.rsplit(":", 1)[1]))
    store = EtcdStore([await relay.start()])
    await store.start()
    try:
        watch = store.watch("/registry/", await store.current_revision())
        first = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0.1)
        a = await store.create("/registry/a", b"1")
        assert [e.revision for e in await asyncio.wait_for(first, 5)] == [a.mod_revision]
        pending = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0.1)
        relay.cut()
        await asyncio.sleep(0.1)
        b = await store.create("/registry/b", b"1")
        assert [e.revision for e in await asyncio.wait_for(pending, 5)] == [b.mod_revision]
        await watch.aclose()
    finally:
        await store.close()
        await relay.close()


def _cert(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        # etcd's own gateway dials the member with the server certificate, so it needs client auth too.
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    crt, pem = path.with_suffix(".crt"), path.with_suffix(".key")
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


async def test_tls_with_client_certificate(tmp_path: Path) -> None:
    ca = _cert("pk-test-ca", None, server=False)
    ca_file, _ = _write(tmp_path / "ca", *ca)
    server_crt, server_key = _write(tmp_path / "server", *_cert("etcd", ca, server=True))
    client_crt, client_key = _write(tmp_path / "client", *_cert("pyk3s", ca, server=False))
    server = EtcdServer(tls=(ca_file, server_crt, server_key))
    try:
        server.start()
        store = open_store(server.url, tmp_path, ca_file=str(ca_file), cert_file=str(client_crt),
                           key_file=str(client_key))
        await store.start()
        try:
            kv = await store.create("/registry/tls", b"ok")
            assert (await store.get("/registry/tls"))[1] == kv
        finally:
            await store.close()
        anonymous = open_store(server.url, tmp_path, ca_file=str(ca_file))
        with pytest.raises(Unavailable):
            await anonymous.start()
        await anonymous.close()
    finally:
        server.stop()
