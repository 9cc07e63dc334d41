"""TLS by SNI, entrypoint redirection, api@internal shapes, explain and metrics."""

from __future__ import annotations

import base64
import datetime
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ingress_support import http, service_yaml

from pyk3s.addons.ingress.explain import explain
from pyk3s.addons.ingress.runner import _install_tls, _ssl_for


def _cert(*names: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def _secret(name: str, crt: str, key: str) -> str:
    b = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n"
            f"data: {{tls.crt: {b(crt)}, tls.key: {b(key)}}}\n---\n")


def _client_ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _peer_cn(port: int, sni: str) -> str:
    import asyncio
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_client_ctx(), server_hostname=sni)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    cert = x509.load_der_x509_certificate(der)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


async def test_tls_sni_default_cert_and_plain_split(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.websecure.address=127.0.0.1:0",
                             "--entrypoints.websecure.http.tls=true", "--providers.kubernetescrd",
                             "--entrypoints.web.http.redirections.entryPoint.to=websecure")
    # the fixture started listeners without TLS: restart websecure with the store-backed context
    for s in proxy.servers:
        s.close()
    from pyk3s.addons.ingress.proxy.server import start_entrypoints
    _install_tls(proxy.state)
    proxy.servers = await start_entrypoints(proxy.state, ["web", "websecure"], _ssl_for(proxy.state))
    proxy.ports = {n: s.sockets[0].getsockname()[1] for n, s in zip(["web", "websecure"], proxy.servers, strict=True)}
    crt_a, key_a = _cert("a.example.com")
    crt_w, key_w = _cert("*.wild.example")
    docs = (service_yaml("whoami", backend.port) + _secret("a", crt_a, key_a) + _secret("w", crt_w, key_w) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: secure, namespace: default}
spec:
  entryPoints: [websecure]
  tls: {secretName: a}
  routes:
  - match: Host(`a.example.com`) || HostRegexp(`wild`)
    kind: Rule
    services: [{name: whoami, port: 80}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: wild, namespace: default}
spec:
  entryPoints: [websecure]
  tls: {secretName: w}
  routes:
  - match: Host(`x.wild.example`)
    kind: Rule
    services: [{name: whoami, port: 80}]
""")
    proxy.load(docs)
    secure = proxy.ports["websecure"]
    assert await _peer_cn(secure, "a.example.com") == "a.example.com"
    assert await _peer_cn(secure, "x.wild.example") == "*.wild.example"
    assert await _peer_cn(secure, "unknown.example") == "TRAEFIK DEFAULT CERT"
    r = await http(secure, "/", host="a.example.com", ssl=_client_ctx(), server_hostname="a.example.com")
    assert r.status == 200
    assert {k.lower(): v for k, v in r.json()["headers"]}["x-forwarded-proto"] == "https"
    # plain HTTP on web: redirected to websecure by the entrypoint redirection
    r = await http(proxy.ports["web"], "/p?x=1", host="a.example.com")
    assert r.status == 301
    assert r.headers["location"] == f"https://a.example.com:{proxy.state.static.entrypoints['websecure'].port}/p?x=1"


async def test_api_shapes_and_explain(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.traefik.address=127.0.0.1:0",
                             "--providers.kubernetescrd", "--providers.kubernetesingress", "--api.insecure",
                             "--ping", "--metrics.prometheus")
    docs = service_yaml("whoami", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: app, namespace: default}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`a`) && PathPrefix(`/api`)
    kind: Rule
    services: [{name: whoami, port: 80}]
  - match: Host(`a`)
    kind: Rule
    services: [{name: whoami, port: 80}]
  - match: Host(`b`)
    kind: Rule
    services: [{name: missing, port: 80}]
"""
    proxy.load(docs)
    api = proxy.ports["traefik"]
    assert (await http(proxy.port, "/api/x", host="a")).status == 200
    r = await http(api, "/api/http/routers", host="x")
    names = [x["name"] for x in r.json()]
    assert names == sorted(names) and r.headers["x-next-page"] == "1"
    bad = next(x for x in r.json() if x["rule"] == "Host(`b`)")
    assert bad["status"] == "disabled" and "missing" in bad["error"][0]
    r = await http(api, "/api/http/routers?per_page=1&page=2", host="x")
    assert len(r.json()) == 1 and r.headers["x-next-page"] == "3"
    assert (await http(api, "/api/http/routers?page=99", host="x")).status == 400
    r = await http(api, "/api/http/routers/nope@kubernetescrd", host="x")
    assert (r.status, r.json()) == (404, {"message": "router not found: nope@kubernetescrd"})
    good = next(x for x in (await http(api, "/api/http/routers", host="x")).json() if x["rule"] == "Host(`a`)")
    svc = (await http(api, f"/api/http/services/{good['service']}", host="x")).json()
    assert good["service"].startswith("default-app-") and good["service"].endswith("@kubernetescrd")
    assert svc["status"] == "enabled" and svc["type"] == "loadbalancer"
    assert svc["serverStatus"] == {f"http://127.0.0.1:{backend.port}": "UP"}
    ov = (await http(api, "/api/overview", host="x")).json()
    assert ov["http"]["routers"]["errors"] == 1 and ov["features"]["metrics"] == "Prometheus"
    assert set(ov["providers"]) == {"KubernetesCRD", "KubernetesIngress"}
    eps = (await http(api, "/api/entrypoints", host="x")).json()
    assert [e["name"] for e in eps] == ["traefik", "web"]
    assert (await http(api, "/api/version", host="x")).json()["Version"]
    raw = (await http(api, "/api/rawdata", host="x")).json()
    assert set(raw) >= {"routers", "services", "middlewares"}
    r = await http(api, "/", host="x")
    assert r.status == 301 and r.headers["location"].endswith("/dashboard/")
    r = await http(api, "/dashboard/", host="x")
    assert r.status == 200 and b"<title>" in r.body
    assert (await http(api, "/ping", host="x")).body == b"OK"
    metrics = (await http(api, "/metrics", host="x")).body.decode()
    assert 'traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http"}' in metrics
    assert "traefik_service_request_duration_seconds_bucket" in metrics

    report = explain(proxy.state.compiled, "http://a/other", [], "web")
    assert report["match"]["service"] == next(n for n in proxy.state.compiled.runtime.services if n.startswith("default-app"))
    first = report["checked"][0]
    assert first["rule"] == "Host(`a`) && PathPrefix(`/api`)" and first["matched"] is False
    assert {"matcher": "PathPrefix(`/api`)", "result": False} in first["matchers"]
    assert explain(proxy.state.compiled, "http://zzz/", [], "web")["match"] is None


async def test_rawdata_has_traefiks_shape(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.traefik.address=127.0.0.1:0",
                             "--providers.kubernetescrd", "--api.insecure")
    proxy.load(service_yaml("whoami", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: app, namespace: default}
spec:
  routes:
  - match: Host(`a`)
    kind: Rule
    services: [{name: whoami, port: 80, sticky: {cookie: {name: c, httpOnly: true}}}]
""")
    raw = (await http(proxy.ports["traefik"], "/api/rawdata", host="x")).json()
    assert set(raw) == {"routers", "services", "middlewares"}  # empty tables are left out, as in Traefik
    name, router = next((k, v) for k, v in raw["routers"].items() if k.startswith("default-app-"))
    assert router["status"] == "enabled" and router["using"] == ["web"] and router["rule"] == "Host(`a`)"
    assert not {"name", "provider", "priorityStr"} & set(router)
    service = raw["services"][router["service"]]
    assert service["loadBalancer"]["sticky"] == {"cookie": {"name": "c", "httpOnly": True, "path": "/"}}
    assert service["loadBalancer"]["responseForwarding"] == {"flushInterval": "100ms"}
    assert service["serverStatus"] == {f"http://127.0.0.1:{backend.port}": "UP"} and service["usedBy"] == [name]
    listed = (await http(proxy.ports["traefik"], f"/api/http/services/{router['service']}", host="x")).json()
    assert listed["type"] == "loadbalancer" and listed["provider"] == "kubernetescrd"
