"""ServersTransport for HTTP services against real HTTPS backends on loopback (Traefik
pkg/server/service/transport.go): server certificates verified by default, rootCAs from a Secret or a
ConfigMap, serverName, insecureSkipVerify, client certificates (mTLS), forwardingTimeouts,
maxIdleConnsPerHost, peer SANs; what cannot be honoured is a warning on the service."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ingress_support import EchoBackend, http

from pyk3s.addons.ingress.config.dynamic import ServersTransport
from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.routing.transports import build_transport


def _issue(cn: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None, *, ca: bool = False,
           dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), uris: tuple[str, ...] = (),
           client: bool = False) -> tuple[str, str, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if not ca:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = b.sign(issuer_key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(), name, key)


def _server_ctx(crt: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="pk-test-") as tmp:
        path = Path(tmp) / "cert.pem"
        path.write_text(crt + key)
        ctx.load_cert_chain(str(path))
    if client_ca:
        ctx.load_verify_locations(cadata=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _objects(port: int, transport: str = "", extra: str = "") -> str:
    ref = f", serversTransport: {transport}" if transport else ""
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: secure, namespace: default}}
spec: {{ports: [{{name: https, port: 443}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: secure-a, namespace: default, labels: {{kubernetes.io/service-name: secure}}}}
addressType: IPv4
ports: [{{name: https, port: {port}}}]
endpoints: [{{addresses: ["127.0.0.1"], conditions: {{ready: true, serving: true}}}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes: [{{match: Host(`a`), kind: Rule, services: [{{name: secure, port: 443{ref}}}]}}]
---
{extra}
"""


@pytest.fixture
async def pki():
    ca_crt, ca_key, ca_name, ca_pkey = _issue("pk test CA", ca=True)
    srv_crt, srv_key, _, _ = _issue("backend.internal", (ca_name, ca_pkey), dns=("backend.internal",),
                                    uris=("spiffe://cluster.local/ns/default/sa/backend",))
    ip_crt, ip_key, _, _ = _issue("by-ip", (ca_name, ca_pkey), ips=("127.0.0.1",))
    cli_crt, cli_key, _, _ = _issue("proxy", (ca_name, ca_pkey), client=True)
    return {"ca": ca_crt, "srv": (srv_crt, srv_key), "ip": (ip_crt, ip_key), "client": (cli_crt, cli_key)}


async def _backend(ctx: ssl.SSLContext, **kw) -> EchoBackend:
    return await EchoBackend("tls", tls=ctx, **kw).start()


async def test_self_signed_backend_refused_by_default_and_trusted_with_a_servers_transport(make_proxy, pki):
    b = await _backend(_server_ctx(*pki["srv"]))
    try:
        proxy = await make_proxy()
        proxy.load(_objects(b.port))
        r = await http(proxy.port, "/", host="a")
        assert r.status == 502 and b.requests == []  # unknown CA: never reaches the backend
        ca_secret = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: ca, namespace: default}}\ndata: {{ca.crt: {_b64(pki['ca'])}}}\n"
        transport = ("apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: trust, namespace: default}\n"
                     "spec: {serverName: backend.internal, rootCAs: [{secret: ca}]}\n---\n")
        proxy.load(_objects(b.port, "trust", transport + ca_secret))
        r = await http(proxy.port, "/", host="a")
        assert r.status == 200 and r.json()["name"] == "tls"
        # the right CA but the wrong name: refused (verification includes the name)
        wrong = transport.replace("backend.internal", "other.internal")
        proxy.load(_objects(b.port, "trust", wrong + ca_secret))
        assert (await http(proxy.port, "/", host="a")).status == 502
        # insecureSkipVerify accepts anything
        skip = ("apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: skip, namespace: default}\n"
                "spec: {insecureSkipVerify: true}\n---\n")
        proxy.load(_objects(b.port, "skip", skip))
        assert (await http(proxy.port, "/", host="a")).status == 200
    finally:
        b.close()


async def test_ip_san_and_config_map_root_ca_and_static_default(make_proxy, pki):
    b = await _backend(_server_ctx(*pki["ip"]))
    try:
        proxy = await make_proxy()
        cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca, namespace: default}\ndata:\n  ca.crt: |\n"
        cm += "".join(f"    {line}\n" for line in pki["ca"].splitlines())
        transport = ("apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: cm, namespace: default}\n"
                     "spec: {rootCAs: [{configMap: ca}]}\n---\n")
        proxy.load(_objects(b.port, "cm", transport + cm))  # no serverName: the address is checked (IP SAN)
        assert (await http(proxy.port, "/", host="a")).status == 200
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as fh:
            fh.write(pki["ca"])
            fh.flush()
            trusting = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                                        f"--serversTransport.rootCAs={fh.name}")
            trusting.load(_objects(b.port))  # default@internal trusts the CA from the flag
            assert (await http(trusting.port, "/", host="a")).status == 200
    finally:
        b.close()


async def test_client_certificate_and_peer_sans(make_proxy, pki):
    b = await _backend(_server_ctx(*pki["srv"], client_ca=pki["ca"]))
    try:
        proxy = await make_proxy()
        secrets = (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: ca, namespace: default}}\ndata: {{tls.ca: {_b64(pki['ca'])}}}\n---\n"
                   f"apiVersion: v1\nkind: Secret\nmetadata: {{name: client, namespace: default}}\n"
                   f"data: {{tls.crt: {_b64(pki['client'][0])}, tls.key: {_b64(pki['client'][1])}}}\n---\n")

        def st(extra: str) -> str:
            return ("apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: m, namespace: default}\n"
                    f"spec: {{serverName: backend.internal, rootCAs: [{{secret: ca}}]{extra}}}\n---\n")

        proxy.load(_objects(b.port, "m", st("") + secrets))
        assert (await http(proxy.port, "/", host="a")).status == 502  # the backend wants a client certificate
        proxy.load(_objects(b.port, "m", st(", certificatesSecrets: [client]") + secrets))
        assert (await http(proxy.port, "/", host="a")).status == 200
        sans = ", certificatesSecrets: [client], peerCertURI: 'spiffe://cluster.local/ns/default/sa/backend'"
        proxy.load(_objects(b.port, "m", st(sans) + secrets))
        assert (await http(proxy.port, "/", host="a")).status == 200
        proxy.load(_objects(b.port, "m", st(sans.replace("backend'", "other'")) + secrets))
        assert (await http(proxy.port, "/", host="a")).status == 502
    finally:
        b.close()


async def test_response_header_timeout_and_idle_limit(make_proxy, pki, backend):
    silent = await EchoBackend("silent", silent=True).start()
    try:
        proxy = await make_proxy()
        st = ("apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: quick, namespace: default}\n"
              "spec: {forwardingTimeouts: {responseHeaderTimeout: 200ms}, maxIdleConnsPerHost: 1}\n---\n")
        docs = _objects(silent.port, "quick", st).replace("https", "http").replace("port: 443", "port: 80")
        proxy.load(docs)
        r = await asyncio.wait_for(http(proxy.port, "/", host="a"), 5)
        assert r.status == 504
        pools = [p for p in proxy.state.pools.values() if p.port == silent.port]
        assert pools and pools[0].max_idle == 1 and pools[0].header_timeout == 0.2
    finally:
        silent.close()


def test_transport_warnings_and_fallback():
    t, warnings = build_transport("x@kubernetescrd", ServersTransport(spiffe={"ids": ["spiffe://a"]}))
    assert any("spiffe is not supported" in w for w in warnings)
    t, warnings = build_transport("y@kubernetescrd", ServersTransport(cipher_suites=("NOPE",)))
    assert any("invalid CipherSuite: NOPE" in w and "default TLS settings" in w for w in warnings)
    assert t.ssl_context.verify_mode == ssl.CERT_REQUIRED and t.max_idle == 2
    default, _ = build_transport("default@internal", static_from_flags([]).servers_transport, 200)
    assert default.max_idle == 200 and default.dial_timeout == 30.0 and default.idle_timeout == 90.0


async def test_unknown_transport_disables_the_router(make_proxy, backend):
    proxy = await make_proxy()
    compiled = proxy.load(_objects(backend.port, "nothere"))
    router = next(iter(compiled.runtime.routers.values()))
    assert router["status"] == "disabled"
    assert "servers transport not found default-nothere@kubernetescrd" in router["error"][0]
