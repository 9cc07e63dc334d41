"""pyk3s whoami on loopback: echo body, and /health flipped by POST like traefik/whoami."""

import asyncio
import socket

from pyk3s.images.whoami import serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                 .encode() + body)
    data = await reader.read()
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


async def test_health_is_set_by_post_and_echo_still_answers(capsys):
    port = _free_port()
    task = asyncio.create_task(serve(port, host="127.0.0.1"))
    try:
        for _ in range(100):
            try:
                status, _ = await _request(port, "GET", "/health")
                break
            except OSError:
                await asyncio.sleep(0.02)
        assert status == 200
        assert (await _request(port, "POST", "/health", b"503"))[0] == 503
        assert (await _request(port, "GET", "/health"))[0] == 503
        status, body = await _request(port, "GET", "/hello")
        assert status == 200 and b"GET /hello HTTP/1.1" in body and b"RemoteAddr: 127.0.0.1:" in body
        assert (await _request(port, "POST", "/health", b"nope"))[0] == 400
        assert (await _request(port, "POST", "/health", b"200"))[0] == 200
        assert (await _request(port, "GET", "/health"))[0] == 200
        assert f"Starting up on port {port}" in capsys.readouterr().out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_https_with_cert_and_key(tmp_path):
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whoami.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("whoami.test")]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "tls.crt", tmp_path / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    port = _free_port()
    task = asyncio.create_task(serve(port, host="127.0.0.1", cert=str(crt), key=str(pem)))
    ctx = ssl.create_default_context(cafile=str(crt))
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="whoami.test")
                break
            except OSError:
                await asyncio.sleep(0.02)
        writer.write(b"GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        assert data.startswith(b"HTTP/1.1 200") and b"GET /tls HTTP/1.1" in data
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
