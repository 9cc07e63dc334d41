"""etcd engine specifics: endpoint failover, TLS with client certificates, watch resume."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import pytest
from conftest import HAVE_ETCD, EtcdServer, free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


async def test_watch_resumes_after_stream_break(etcd_server: EtcdServer) -> None:
    store = EtcdStore([etcd_server.url])
    await store.start()
    try:
        watch = store.watch("/registry/", await store.current_revision())
        first = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0.1)
        a = await store.create("/registry/a", b"1")
        assert [e.revision for e in await asyncio.wait_for(first, 5)] == [a.mod_revision]
        # Drop every pooled connection (the watch stream included) under the generator's feet.
        await store._session.connector.close()
        store._session._connector = type(store._session.connector)()
        b = await store.create("/registry/b", b"1")
        batch = await asyncio.wait_for(watch.__anext__(), 5)
        assert [e.revision for e in batch] == [b.mod_revision]
        await watch.aclose()
    finally:
        await store.close()


def _cert(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
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
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
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
