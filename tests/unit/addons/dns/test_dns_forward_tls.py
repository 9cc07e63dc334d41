"""forward to DNS-over-TLS upstreams (CoreDNS plugin/forward `tls://`, `tls`, `tls_servername`).

The upstream is a stand-in DoT server on loopback: an asyncio TLS server answering DNS with TCP framing,
its certificate (and the client's) made here from a throw-away CA.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from dns_support import rrs

from pyk3s.addons.dns.config import build_blocks
from pyk3s.addons.dns.corefile import parse_corefile
from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.plugins.forward import ForwardPlugin
from pyk3s.addons.dns.plugins.forward.config import ForwardTo

SERVER_NAME = "dot.example.test"
_U16 = struct.Struct(">H")


# -- a throw-away PKI ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path          # a CA that signed nothing here


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str, usage: x509.ObjectIdentifier,
          sans: list[x509.GeneralName]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = _ca("pyk3s test CA")
    srv, srv_key = _leaf(ca, ca_key, SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH,
                         [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cli, cli_key = _leaf(ca, ca_key, "pyk3s-dns", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    other, _ = _ca("some other CA")
    return Pki(ca=_write_cert(ca, d / "ca.pem"), server_cert=_write_cert(srv, d / "server.pem"),
               server_key=_write_key(srv_key, d / "server-key.pem"), client_cert=_write_cert(cli, d / "client.pem"),
               client_key=_write_key(cli_key, d / "client-key.pem"), other_ca=_write_cert(other, d / "other-ca.pem"))


# -- the stand-in DNS-over-TLS upstream ----------------------------------------------------------------
class DotServer:
    """Answers www.example.test A 10.99.0.77 (NXDOMAIN otherwise) over TLS with TCP framing."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.connections = 0        # TLS handshakes that completed
        self.queries = 0
        self.client_cns: list[str] = []
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        peer = writer.get_extra_info("peercert")
        if peer:
            self.client_cns.extend(v for rdn in peer["subject"] for k, v in rdn if k == "commonName")
        try:
            while True:
                n = _U16.unpack(await reader.readexactly(2))[0]
                q = dns.message.from_wire(await reader.readexactly(n))
                self.queries += 1
                r = dns.message.make_response(q)
                r.flags |= dns.flags.RA
                if q.question[0].name.to_text().lower() == "www.example.test.":
                    r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", "10.99.0.77"))
                else:
                    r.set_rcode(dns.rcode.NXDOMAIN)
                wire = r.to_wire()
                writer.write(_U16.pack(len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def drop_connections(self) -> None:
        for w in list(self.writers):
            w.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        self.drop_connections()
        await self.server.wait_closed()


def _server_ctx(pki: Pki, require_client: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.ca)
    return ctx


@pytest.fixture
async def dot(pki: Pki) -> AsyncIterator[DotServer]:
    s = DotServer(_server_ctx(pki, require_client=False))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def dot_mtls(pki: Pki) -> AsyncIterator[DotServer]:
    s = DotServer(_server_ctx(pki, require_client=True))
    await s.start()
    yield s
    await s.stop()


class PlainUpstream(asyncio.DatagramProtocol):
    """A plain UDP stand-in beside the TLS one: www.example.test A 10.99.0.55."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", "10.99.0.55"))
        self.transport.sendto(r.to_wire(), addr)


@pytest.fixture
async def upstream() -> AsyncIterator[int]:
    tr, _ = await asyncio.get_running_loop().create_datagram_endpoint(PlainUpstream, local_addr=("127.0.0.1", 0))
    yield tr.get_extra_info("sockname")[1]
    tr.close()


def _forward(h) -> ForwardPlugin:  # noqa: ANN001
    return next(p for p in h.runtime.plugins() if isinstance(p, ForwardPlugin))


# -- serving -------------------------------------------------------------------------------------------
async def test_answers_flow_over_tls_and_the_connection_is_kept(make_dns, dot, pki) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot.port} {{
          tls {pki.ca}
          tls_servername {SERVER_NAME}
        }}
        """)
    r = await h.q("www.example.test", "A")                      # a UDP client, a TLS upstream
    assert rrs(r) == {"www.example.test. A 10.99.0.77"}
    r = await h.q("www.example.test", "A", tcp=True)
    assert rrs(r) == {"www.example.test. A 10.99.0.77"}
    r = await h.q("nothing.example.test", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert dot.queries == 3 and dot.connections == 1            # one handshake, the connection reused
    assert _forward(h).upstreams[0].tcp.opened == 1


async def test_concurrent_queries_open_more_connections_then_reuse_them(make_dns, dot, pki) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"forward . tls://127.0.0.1%{SERVER_NAME}:{dot.port} {{\n  tls {pki.ca}\n}}\n")
    replies = await asyncio.gather(*(h.q("www.example.test", "A") for _ in range(3)))
    assert all(rrs(r) == {"www.example.test. A 10.99.0.77"} for r in replies)
    opened = dot.connections
    assert 1 <= opened <= 3                                     # one query at a time per connection
    for _ in range(4):
        assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}
    assert dot.connections == opened                            # kept connections serve the rest


async def test_expired_and_closed_connections_are_replaced(make_dns, dot, pki) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot.port} {{
          tls {pki.ca}
          tls_servername {SERVER_NAME}
          expire 300ms
        }}
        """)
    assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}
    await asyncio.sleep(0.5)                                    # idle past expire: a new connection
    assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}
    assert dot.connections == 2
    dot.drop_connections()                                      # the upstream closes the kept one
    await asyncio.sleep(0.05)
    assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}
    assert dot.connections == 3


async def test_the_ip_address_is_verified_without_a_server_name(make_dns, dot, pki) -> None:  # noqa: ANN001
    # the certificate carries IP:127.0.0.1, as Go checks the dialled address when no ServerName is set
    h = await make_dns(load=False, body=f"forward . tls://127.0.0.1:{dot.port} {{\n  tls {pki.ca}\n}}\n")
    assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}


async def test_wrong_server_name_or_ca_gives_servfail(make_dns, dot, pki, caplog) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot.port} {{
          tls {pki.ca}
          tls_servername wrong.example.test
        }}
        """)
    r = await h.q("www.example.test", "A")
    assert r.rcode() == dns.rcode.SERVFAIL and dot.queries == 0
    assert "Hostname mismatch" in caplog.text and "wrong.example.test" in caplog.text   # the log says why
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot.port} {{
          tls {pki.other_ca}
          tls_servername {SERVER_NAME}
        }}
        """)
    r = await h.q("www.example.test", "A")
    assert r.rcode() == dns.rcode.SERVFAIL and dot.queries == 0
    h = await make_dns(load=False, body=f"forward . tls://127.0.0.1:{dot.port} {{\n  tls_servername {SERVER_NAME}\n}}\n")
    r = await h.q("www.example.test", "A")                      # system CAs: the test CA is not one of them
    assert r.rcode() == dns.rcode.SERVFAIL and dot.queries == 0


async def test_client_certificate(make_dns, dot_mtls, pki, caplog) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot_mtls.port} {{
          tls {pki.client_cert} {pki.client_key} {pki.ca}
          tls_servername {SERVER_NAME}
        }}
        """)
    assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}
    assert dot_mtls.client_cns == ["pyk3s-dns"]
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot_mtls.port} {{
          tls {pki.ca}
          tls_servername {SERVER_NAME}
        }}
        """)
    r = await h.q("www.example.test", "A")                      # no client certificate: the server refuses
    assert r.rcode() == dns.rcode.SERVFAIL and dot_mtls.queries == 1
    assert f"tls://127.0.0.1:{dot_mtls.port} closed the connection without an answer" in caplog.text


async def test_relative_tls_paths_are_relative_to_the_corefile(make_dns, dot_mtls, pki) -> None:  # noqa: ANN001
    files = {"c.pem": pki.client_cert.read_text(), "k.pem": pki.client_key.read_text(), "ca.pem": pki.ca.read_text()}
    h = await make_dns(load=False, files=files, body=f"""
        forward . tls://127.0.0.1:{dot_mtls.port} {{
          tls c.pem k.pem ca.pem
          tls_servername {SERVER_NAME}
        }}
        """)
    assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}


async def test_a_dead_tls_upstream_fails_over_to_the_next(make_dns, dot, pki) -> None:  # noqa: ANN001
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()                                                   # nothing listens: connection refused
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dead} tls://127.0.0.1:{dot.port} {{
          tls {pki.ca}
          tls_servername {SERVER_NAME}
          policy sequential
          max_fails 1
          health_check 100ms
        }}
        """)
    for _ in range(3):
        assert rrs(await h.q("www.example.test", "A")) == {"www.example.test. A 10.99.0.77"}
    fwd = _forward(h)
    assert fwd.upstreams[0].fails >= 1 and fwd.upstreams[0].udp.sock is None   # never asked over UDP


async def test_health_check_goes_over_tls(make_dns, dot, pki) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"""
        forward . tls://127.0.0.1:{dot.port} {{
          tls {pki.ca}
          tls_servername {SERVER_NAME}
          max_fails 1
          health_check 100ms
        }}
        """)
    up = _forward(h).upstreams[0]
    up.fails = 1
    _forward(h)._failed(up)                                     # over max_fails: probed until it answers
    for _ in range(40):
        if up.fails == 0:
            break
        await asyncio.sleep(0.05)
    assert up.fails == 0 and dot.queries == 1 and dot.connections == 1


async def test_plain_and_tls_upstreams_mix(make_dns, dot, pki, upstream) -> None:  # noqa: ANN001
    h = await make_dns(load=False, body=f"""
        forward . 127.0.0.1:{upstream} tls://127.0.0.1:{dot.port} {{
          tls {pki.ca}
          tls_servername {SERVER_NAME}
          policy round_robin
        }}
        """)
    seen = set()
    for _ in range(4):
        seen |= rrs(await h.q("www.example.test", "A"))
    assert seen == {"www.example.test. A 10.99.0.55", "www.example.test. A 10.99.0.77"}
    assert [(u.tls, u.port) for u in _forward(h).upstreams] == [(False, upstream), (True, dot.port)]


# -- the Corefile --------------------------------------------------------------------------------------
def _opts(body: str, corefile: str = "Corefile"):  # noqa: ANN202
    (b,) = build_blocks(parse_corefile(f".:53 {{\n {body}\n}}\n"), corefile)
    return b.plugins[0].opts


def test_tls_upstream_syntax(pki) -> None:  # noqa: ANN001
    o = _opts(f"forward . tls://127.0.0.1 tls://127.0.0.2%dns.example:10853 tls://fe80::1%dns.example "
              f"tls://[::1]:854 dns://10.0.0.1 10.0.0.2:5353 {{\n tls {pki.ca}\n }}")
    assert o.to == (ForwardTo("127.0.0.1", 853, True), ForwardTo("127.0.0.2", 10853, True, "dns.example"),
                    ForwardTo("fe80::1", 853, True, "dns.example"), ForwardTo("::1", 854, True),
                    ForwardTo("10.0.0.1", 53), ForwardTo("10.0.0.2", 5353))
    assert o.tls.ca == str(pki.ca) and not o.tls.cert
    o = _opts(f"forward . tls://127.0.0.1 {{\n tls {pki.client_cert} {pki.client_key}\n tls_servername dns\n }}")
    assert (o.tls.cert, o.tls.key, o.tls.ca, o.tls_servername) == (str(pki.client_cert), str(pki.client_key), "", "dns")
    assert _opts("forward . tls://127.0.0.1").tls.ca == ""     # `tls` absent: system CAs


@pytest.mark.parametrize(("body", "message"), [
    ("forward . tls://127.0.0.1%example.net:854 {\n tls_servername foo\n }",
     "both forward ('foo') and proxy level ('example.net') TLS servernames are set"),
    ("forward . https://127.0.0.1", "DNS-over-HTTPS upstreams are not supported"),
    ("forward . quic://127.0.0.1", "'quic' is not supported as a destination protocol"),
    ("forward . tls://dns.example", "not an IP address"),
    ("forward . tls://127.0.0.1:99999", "bad port"),
    ("forward . 127.0.0.1%dns.example", "only goes with a tls:// upstream"),
    ("forward . tls://127.0.0.1% {\n tls\n }", "empty server name"),
    ("forward . tls://127.0.0.1 {\n tls a b c d\n }", "maximum of three arguments allowed for TLS config, found 4"),
    ("forward . tls://127.0.0.1 {\n tls /nonexistent/ca.pem\n }", "cannot load"),
    ("forward . tls://127.0.0.1 {\n tls /nonexistent/c.pem /nonexistent/k.pem\n }", "cannot load"),
    ("forward . tls://127.0.0.1 {\n tls_servername\n }", "tls_servername needs one NAME"),
    ("forward . tls://127.0.0.1 {\n tls_servername a b\n }", "tls_servername needs one NAME"),
])
def test_bad_tls_options_are_corefile_errors(body: str, message: str) -> None:
    with pytest.raises(CorefileError) as ei:
        _opts(body)
    assert message in str(ei.value)


def test_a_key_that_does_not_match_is_a_corefile_error(pki) -> None:  # noqa: ANN001
    with pytest.raises(CorefileError, match="cannot load"):
        _opts(f"forward . tls://127.0.0.1 {{\n tls {pki.client_cert} {pki.server_key}\n }}")
    with pytest.raises(CorefileError, match="cannot load"):
        _opts(f"forward . tls://127.0.0.1 {{\n tls {pki.client_key}\n }}")     # not a certificate


def test_tls_options_without_a_tls_upstream_are_accepted_with_a_warning(caplog, pki) -> None:  # noqa: ANN001
    o = _opts(f"forward . 127.0.0.1 {{\n tls {pki.ca}\n tls_servername dns\n }}")
    assert o.to == (ForwardTo("127.0.0.1", 53),)
    assert "no tls:// upstream" in caplog.text
