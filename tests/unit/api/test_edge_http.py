"""http + proxy + reviews on loopback: the real ApiServer on a memory store behind the HTTPS adapter.

The kubelet on the other side of exec/logs is a small aiohttp stand-in (HTTPS, client cert required)
that answers like the Kubelet API in the team brief.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl

import aiohttp
import pytest
from aiohttp import web

from pyk3s.api.app import ApiServer
from pyk3s.api.authn import Authenticator, ServiceAccountTokens
from pyk3s.api.certs import ClusterCerts, default_sans
from pyk3s.api.config import ApiConfig
from pyk3s.api.http import serve
from pyk3s.api.proxy import KubeletProxy
from pyk3s.api.rbac import RbacAuthorizer
from pyk3s.api.request import ApiRequest
from pyk3s.api.reviews import register_reviews
from pyk3s.api.store import open_store

TOKEN = "K10abc::server:edge-test"


def _client_ssl(certs: ClusterCerts, tmp_path, cn: str | None, orgs=()) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=certs.server_ca_pem.decode())
    if cn is not None:
        cert, key = certs.issue_client_cert(cn, list(orgs))
        (tmp_path / f"{cn}.crt").write_bytes(cert)
        (tmp_path / f"{cn}.key").write_bytes(key)
        ctx.load_cert_chain(tmp_path / f"{cn}.crt", tmp_path / f"{cn}.key")
    return ctx


async def _kubelet(certs: ClusterCerts, tmp_path):
    """Stand-in kubelet: /exec echoes argv on stdout then reports Success; /containerLogs streams lines."""
    seen: dict[str, object] = {}

    async def exec_(request: web.Request) -> web.StreamResponse:
        seen["exec_path"] = request.path
        seen["exec_query"] = list(request.query.items())
        seen["peer"] = request.transport.get_extra_info("peercert")
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        seen["protocol"] = ws.ws_protocol
        await ws.send_bytes(b"\x01" + " ".join(request.query.getall("command")).encode())
        msg = await ws.receive()  # stdin from the client
        await ws.send_bytes(b"\x02" + msg.data[1:])
        await ws.send_bytes(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await ws.close()
        return ws

    async def logs(request: web.Request) -> web.StreamResponse:
        seen["log_path"] = request.path
        seen["log_query"] = dict(request.query)
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(3):
            await resp.write(f"line {i}\n".encode())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/exec/{ns}/{pod}/{container}", exec_)
    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", logs)
    crt, key = certs.issue_serving_cert(["127.0.0.1"])
    (tmp_path / "kubelet.crt").write_bytes(crt)
    (tmp_path / "kubelet.key").write_bytes(key)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=certs.client_ca_pem.decode())
    ctx.load_cert_chain(tmp_path / "kubelet.crt", tmp_path / "kubelet.key")
    ctx.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port, seen


async def _post(api: ApiServer, path: str, obj: dict) -> dict:
    resp = await api.handle(ApiRequest("POST", path, headers={"content-type": "application/json"},
                                       body=json.dumps(obj).encode()))
    assert resp.status in (200, 201), resp.body
    return json.loads(resp.body)


@pytest.fixture
async def stack(tmp_path):
    certs = ClusterCerts.ensure(tmp_path / "tls", default_sans(hostname="vm"))
    store = open_store("memory://", tmp_path)
    await store.start()
    api = ApiServer(store, ApiConfig())
    authz = RbacAuthorizer(store)
    api.authorizer = authz
    sa = ServiceAccountTokens.load_or_create(tmp_path / "tls" / "service.key")
    authn = Authenticator(server_token=TOKEN, sa_tokens=sa)
    proxy = KubeletProxy(api, client_cert_file=tmp_path / "tls" / "client-kube-apiserver.crt",
                         client_key_file=tmp_path / "tls" / "client-kube-apiserver.key",
                         server_ca_file=certs.server_ca_file)
    api.subresources.pod_log_hook = proxy.pod_log
    register_reviews(api, authz, authz, authn)
    await api.start()
    await authz.start()
    http = await serve(api, bind="127.0.0.1", port=0, tls=certs.tls_files, authenticator=authn, proxy=proxy)
    kubelet_runner, kubelet_port, seen = await _kubelet(certs, tmp_path)
    await _post(api, "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pk-n1"}})
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pk-n1"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}}}}
    got = json.loads((await api.handle(ApiRequest("GET", "/api/v1/nodes/pk-n1"))).body)
    node["metadata"]["resourceVersion"] = got["metadata"]["resourceVersion"]
    resp = await api.handle(ApiRequest("PUT", "/api/v1/nodes/pk-n1/status", headers={"content-type": "application/json"},
                                       body=json.dumps(node).encode()))
    assert resp.status == 200, resp.body
    await _post(api, "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": "pk-n1", "containers": [{"name": "c", "image": "pyk3s/whoami"}]}})
    admin = _client_ssl(certs, tmp_path, "system:admin", ["system:masters"])
    session = aiohttp.ClientSession()
    try:
        yield {"url": http.url, "certs": certs, "admin": admin, "session": session, "tmp": tmp_path, "api": api,
               "seen": seen, "sa": sa}
    finally:
        await session.close()
        await http.stop()
        await kubelet_runner.cleanup()
        await proxy.close()
        await authz.stop()
        await api.stop()
        await store.close()


async def test_client_cert_token_and_401(stack):
    s, url = stack["session"], stack["url"]
    async with s.get(f"{url}/api/v1/namespaces", ssl=stack["admin"]) as r:
        assert r.status == 200
        assert (await r.json())["kind"] == "NamespaceList"
    anon = _client_ssl(stack["certs"], stack["tmp"], None)
    async with s.get(f"{url}/api/v1/namespaces", ssl=anon) as r:
        assert r.status == 401
        assert (await r.json())["reason"] == "Unauthorized"
    async with s.get(f"{url}/healthz", ssl=anon) as r:
        assert r.status == 200
    async with s.get(f"{url}/api", ssl=anon) as r:
        assert r.status == 401
    async with s.get(f"{url}/api/v1/namespaces", ssl=anon, headers={"Authorization": "Bearer edge-test"}) as r:
        assert r.status == 200


async def test_forbidden_for_unbound_user(stack):
    bob = _client_ssl(stack["certs"], stack["tmp"], "bob")
    async with stack["session"].get(f"{stack['url']}/api/v1/namespaces/default/pods", ssl=bob) as r:
        assert r.status == 403
        body = await r.json()
    assert body["message"] == ('pods is forbidden: User "bob" cannot list resource "pods" in API group "" '
                               'in the namespace "default"')


async def test_watch_events_are_flushed_one_by_one(stack):
    s, url = stack["session"], stack["url"]
    async with s.get(f"{url}/api/v1/namespaces/default/configmaps?watch=true", ssl=stack["admin"]) as r:
        assert r.status == 200
        await _post(stack["api"], "/api/v1/namespaces/default/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}})
        line = await asyncio.wait_for(r.content.readline(), 5)
        event = json.loads(line)
    assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "w1"


async def test_reviews_over_https(stack):
    s, url = stack["session"], stack["url"]
    bob = _client_ssl(stack["certs"], stack["tmp"], "bob", ["qa"])
    ssar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}}}
    async with s.post(f"{url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=ssar, ssl=bob) as r:
        assert r.status == 201
        assert (await r.json())["status"] == {"allowed": False}
    async with s.post(f"{url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=ssar,
                      ssl=stack["admin"]) as r:
        assert (await r.json())["status"]["allowed"] is True
    ssr = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    async with s.post(f"{url}/apis/authentication.k8s.io/v1/selfsubjectreviews", json=ssr, ssl=bob) as r:
        assert (await r.json())["status"]["userInfo"] == {"username": "bob",
                                                          "groups": ["qa", "system:authenticated"]}
    token = stack["sa"].issue("default", "robot")
    tr = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    async with s.post(f"{url}/apis/authentication.k8s.io/v1/tokenreviews", json=tr, ssl=stack["admin"]) as r:
        status = (await r.json())["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:default:robot"
    async with s.post(f"{url}/apis/authentication.k8s.io/v1/tokenreviews", json=tr, ssl=bob) as r:
        assert r.status == 403


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.base64.channel.k8s.io"])
async def test_exec_is_relayed_to_the_kubelet(stack, protocol):
    s, url = stack["session"], stack["url"]
    ws_url = f"{url}/api/v1/namespaces/default/pods/web/exec?command=echo&command=hi&stdin=true&stdout=true"
    async with s.ws_connect(ws_url, protocols=(protocol,), ssl=stack["admin"]) as ws:
        assert ws.protocol == protocol
        got = []
        if "base64" in protocol:
            await ws.send_str("0" + "aW5wdXQ=")  # "input"
            async for msg in ws:
                got.append((msg.data[0], base64.b64decode(msg.data[1:])))
        else:
            await ws.send_bytes(b"\x00input")
            async for msg in ws:
                got.append((msg.data[0], msg.data[1:]))
    assert got[0] == (1 if "base64" not in protocol else "1", b"echo hi")
    assert got[1][1] == b"input"
    assert json.loads(got[2][1])["status"] == "Success"
    seen = stack["seen"]
    assert seen["exec_path"] == "/exec/default/web/c"
    assert ("command", "echo") in seen["exec_query"] and ("stdin", "true") in seen["exec_query"]
    assert seen["protocol"] in ("v5.channel.k8s.io", "v4.channel.k8s.io")
    subject = dict(x[0] for x in seen["peer"]["subject"])
    assert subject["commonName"] == "system:kube-apiserver"


async def test_spdy_and_forbidden_exec(stack):
    s, url = stack["session"], stack["url"]
    path = f"{url}/api/v1/namespaces/default/pods/web/exec?command=ls"
    async with s.post(path, ssl=stack["admin"], headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"}) as r:
        assert r.status == 400
        assert "SPDY is not supported" in (await r.json())["message"]
    bob = _client_ssl(stack["certs"], stack["tmp"], "bob")
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await s.ws_connect(path, protocols=("v5.channel.k8s.io",), ssl=bob)
    assert err.value.status == 403


async def test_logs_stream_from_the_kubelet(stack):
    s, url = stack["session"], stack["url"]
    async with s.get(f"{url}/api/v1/namespaces/default/pods/web/log?tailLines=3&follow=true",
                     ssl=stack["admin"]) as r:
        assert r.status == 200
        assert await r.text() == "line 0\nline 1\nline 2\n"
    assert stack["seen"]["log_path"] == "/containerLogs/default/web/c"
    assert stack["seen"]["log_query"] == {"tailLines": "3", "follow": "true"}
    async with s.get(f"{url}/api/v1/namespaces/default/pods/web/log?container=nope", ssl=stack["admin"]) as r:
        assert r.status == 400
        assert (await r.json())["message"] == "container nope is not valid for pod web"


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="needs an IPv6 loopback address")
@pytest.mark.parametrize(("bind", "loopback", "url_host"), [("::", "::1", "[::1]"), ("0.0.0.0", "127.0.0.1", "127.0.0.1")])
async def test_an_unspecified_bind_address_listens_on_both_families(tmp_path, bind, loopback, url_host):
    certs = ClusterCerts.ensure(tmp_path / "tls", default_sans(hostname="vm"))
    store = open_store("memory://", tmp_path)
    await store.start()
    api = ApiServer(store, ApiConfig())
    await api.start()
    http = await serve(api, bind=bind, port=0, tls=certs.tls_files, authenticator=Authenticator(server_token=TOKEN),
                       loopback=loopback)
    ctx = ssl.create_default_context(cadata=certs.server_ca_pem.decode())
    try:
        assert http.families == {4, 6} and http.url == f"https://{url_host}:{http.port}"
        async with aiohttp.ClientSession() as session:
            for host in ("127.0.0.1", "[::1]"):
                async with session.get(f"https://{host}:{http.port}/readyz", ssl=ctx) as resp:
                    assert resp.status == 200, host
    finally:
        await http.stop()
        await api.stop()
        await store.close()
