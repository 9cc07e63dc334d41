"""forwardAuth options as Traefik 3.7 honours them (pkg/middlewares/auth/forward.go and forward_test.go):
addAuthCookiesToResponse, headerField, forwardBody with maxBodySize, maxResponseBodySize,
preserveLocationHeader, preserveRequestMethod and authSigninURL, through the real proxy to a loopback
auth server and backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from h2_support import H2Client
from ingress_support import EchoBackend, http
from test_ingress_middlewares import seen_headers, setup

from pyk3s.addons.ingress.config.errors import ConfigError
from pyk3s.addons.ingress.middlewares import build_middleware
from pyk3s.addons.ingress.middlewares.base import BuildContext
from pyk3s.addons.ingress.middlewares.forward_auth import ForwardAuth, signin_location


@pytest.fixture
async def auth() -> AsyncIterator[EchoBackend]:
    a = await EchoBackend("auth").start()
    yield a
    a.close()


def fa(auth: EchoBackend, path: str = "/check", **options: Any) -> dict[str, Any]:
    return {"fa": {"forwardAuth": {"address": f"http://127.0.0.1:{auth.port}{path}", **options}}}


def cookies(r: Any) -> list[str]:
    return [v for k, v in r.raw_headers if k.lower() == "set-cookie"]


async def test_auth_cookies_replace_the_backends_cookies_of_those_names(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, addAuthCookiesToResponse=["authCookie"]), port=backend.port))
    auth.response_headers = [("Set-Cookie", "authCookie=Auth; Path=/"), ("Set-Cookie", "authCookieNotAdded=Auth")]
    backend.response_headers = [("Set-Cookie", "authCookie=Backend"), ("Set-Cookie", "backendCookie=Backend"),
                                ("Other-Header", "BackendHeaderValue")]
    r = await http(proxy.port, "/app", host="a")
    assert r.status == 200
    assert cookies(r) == ["backendCookie=Backend", "authCookie=Auth; Path=/"]
    assert r.headers["other-header"] == "BackendHeaderValue"
    # an auth answer without cookies leaves the backend's alone
    auth.response_headers = []
    r = await http(proxy.port, "/app", host="a")
    assert cookies(r) == ["authCookie=Backend", "backendCookie=Backend"]
    # without the option the auth server's cookies never reach the client
    proxy.load(setup(fa(auth), port=backend.port))
    auth.response_headers = [("Set-Cookie", "authCookie=Auth")]
    assert cookies(await http(proxy.port, "/app", host="a")) == ["authCookie=Backend", "backendCookie=Backend"]


async def test_header_field_names_the_user_in_the_access_log(make_proxy, backend, auth, tmp_path):  # noqa: ANN001
    path = tmp_path / "access.json"
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                             "--accesslog=true", "--accesslog.format=json", f"--accesslog.filepath={path}")
    proxy.load(setup(fa(auth, headerField="X-Auth-User"), port=backend.port))
    auth.response_headers = [("X-Auth-User", "alice")]
    r = await http(proxy.port, "/app", host="a")
    # Traefik logs the user (ClientUsername); the header is not copied to the request unless listed
    assert r.status == 200 and "x-auth-user" not in seen_headers(r)
    proxy.load(setup(fa(auth, "/status/403", headerField="x-auth-user"), port=backend.port))
    assert (await http(proxy.port, "/app", host="a")).status == 403
    await asyncio.sleep(0)
    proxy.state.access_log.flush()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(rec["DownstreamStatus"], rec["ClientUsername"]) for rec in records] == [(200, "alice"), (403, "alice")]


async def test_forward_body_reaches_auth_server_and_backend(make_proxy, backend, auth):  # noqa: ANN001
    data = b"forwardBodyTest"
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, forwardBody=True, maxBodySize=len(data)), port=backend.port))
    r = await http(proxy.port, "/app", host="a", method="POST", body=data)
    assert r.status == 200 and r.json()["body"] == data.decode()
    assert auth.requests[-1]["method"] == "GET" and auth.requests[-1]["body"] == data
    # a chunked body (no length) is read whole, sent with a length to the auth server and on to the backend
    raw = (b"POST /app HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"7\r\nforward\r\n8\r\nBodyTest\r\n0\r\n\r\n")
    r = await http(proxy.port, raw=raw)
    assert r.status == 200 and r.json()["body"] == data.decode() and auth.requests[-1]["body"] == data
    # larger than the proxy keeps for retries, and no limit
    proxy.load(setup(fa(auth, forwardBody=True), port=backend.port))
    big = bytes(range(256)) * 1200
    r = await http(proxy.port, "/app", host="a", method="PUT", body=big)
    assert r.status == 200 and r.json()["body"].encode("latin-1") == big and auth.requests[-1]["body"] == big
    # without forwardBody the auth server gets no body, the backend still does
    proxy.load(setup(fa(auth), port=backend.port))
    r = await http(proxy.port, "/app", host="a", method="POST", body=data)
    assert r.status == 200 and r.json()["body"] == data.decode() and auth.requests[-1]["body"] == b""


async def test_forward_body_over_max_body_size_is_unauthorized(make_proxy, backend, auth):  # noqa: ANN001
    data = b"forwardBodyTest"
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, forwardBody=True, maxBodySize=len(data) - 1), port=backend.port))
    r = await http(proxy.port, "/app", host="a", method="POST", body=data)
    assert r.status == 401 and r.body == b""
    raw = (b"POST /app HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"7\r\nforward\r\n8\r\nBodyTest\r\n0\r\n\r\n")
    assert (await http(proxy.port, raw=raw)).status == 401
    assert auth.requests == [] and backend.requests == []
    # a body within the limit, and a request without one, still pass
    assert (await http(proxy.port, "/app", host="a", method="POST", body=data[:-1])).status == 200
    assert (await http(proxy.port, "/app", host="a")).status == 200
    assert [rq["body"] for rq in auth.requests] == [data[:-1], b""]


async def test_forward_body_over_http2(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, forwardBody=True, preserveRequestMethod=True), port=backend.port))
    client = await H2Client.connect(proxy.port)
    try:
        r = await client.request("/app", "a", "POST", body=b"x" * 5000)
        assert r.status == 200 and json.loads(r.body)["body"] == "x" * 5000
        assert auth.requests[-1]["method"] == "POST" and auth.requests[-1]["body"] == b"x" * 5000
    finally:
        client.close()


async def test_max_response_body_size(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, "/big", maxResponseBodySize=1000), port=backend.port))  # a 200 kB answer
    r = await http(proxy.port, "/app", host="a")
    assert r.status == 401 and backend.requests == []
    proxy.load(setup(fa(auth, "/status/403", maxResponseBodySize=10), port=backend.port))
    assert (await http(proxy.port, "/app", host="a")).status == 401
    proxy.load(setup(fa(auth, "/big", maxResponseBodySize=200_000), port=backend.port))
    assert (await http(proxy.port, "/app", host="a")).status == 200
    proxy.load(setup(fa(auth, "/status/403"), port=backend.port))  # unset: no limit, the answer is passed on
    r = await http(proxy.port, "/app", host="a")
    assert r.status == 403 and r.json()["name"] == "auth"


async def test_preserve_request_method(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth), port=backend.port))
    assert (await http(proxy.port, "/app", host="a", method="DELETE")).status == 200
    assert auth.requests[-1]["method"] == "GET"
    proxy.load(setup(fa(auth, preserveRequestMethod=True), port=backend.port))
    for method in ("DELETE", "POST", "HEAD"):
        assert (await http(proxy.port, "/app", host="a", method=method)).status == 200
        assert auth.requests[-1]["method"] == method
        asked = {k.lower(): v for k, v in auth.requests[-1]["headers"]}
        assert asked["x-forwarded-method"] == method
    assert backend.requests[-1]["method"] == "HEAD"


async def test_location_of_a_denial_is_resolved_against_the_auth_address(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    auth.response_headers, auth.status = [("Location", "/login?next=1")], 302
    proxy.load(setup(fa(auth, "/auth/check"), port=backend.port))
    r = await http(proxy.port, "/app", host="a")
    assert r.status == 302 and r.headers["location"] == f"http://127.0.0.1:{auth.port}/login?next=1"
    auth.response_headers = [("Location", "signin")]
    r = await http(proxy.port, "/app", host="a")
    assert r.headers["location"] == f"http://127.0.0.1:{auth.port}/auth/signin"
    auth.response_headers = [("Location", "http://example.com/redirect-test")]  # absolute: unchanged
    assert (await http(proxy.port, "/app", host="a")).headers["location"] == "http://example.com/redirect-test"
    proxy.load(setup(fa(auth, preserveLocationHeader=True), port=backend.port))
    auth.response_headers, auth.status = [("Location", "/login?next=1")], 401
    r = await http(proxy.port, "/app", host="a")
    assert r.status == 401 and r.headers["location"] == "/login?next=1"
    assert backend.requests == []


async def test_auth_signin_url_redirects_an_unauthorized_request(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    url = "https://login.example.com/signin?rd=1"
    proxy.load(setup(fa(auth, "/status/401", authSigninURL=url), port=backend.port))
    auth.response_headers = [("X-Auth-Reason", "expired")]
    r = await http(proxy.port, "/app", host="a")
    assert r.status == 302 and r.headers["location"] == url and "x-auth-reason" not in r.headers
    assert r.headers["content-type"] == "text/html; charset=utf-8" and b"Found</a>" in r.body
    r = await http(proxy.port, "/app", host="a", method="POST", body=b"x")
    assert r.status == 302 and r.headers["location"] == url and r.body == b""
    # only a 401 is redirected: other refusals and a success are as without the option
    proxy.load(setup(fa(auth, "/status/403", authSigninURL=url), port=backend.port))
    assert (await http(proxy.port, "/app", host="a")).status == 403
    proxy.load(setup(fa(auth, "/ok", authSigninURL=url), port=backend.port))
    assert (await http(proxy.port, "/app", host="a")).status == 200
    assert len(backend.requests) == 1


def test_signin_location_follows_go_redirect() -> None:
    assert signin_location("/a/b", "https://x/y") == "https://x/y"
    assert signin_location("/a/b", "//x/y") == "//x/y"
    assert signin_location("/a/b", "/login") == "/login"
    assert signin_location("/a/b", "login?rd=1") == "/a/login?rd=1"
    assert signin_location("/a/b/", "../login/") == "/a/login/"


def _build(config: dict[str, Any]) -> ForwardAuth:
    ctx = BuildContext("default-fa@kubernetescrd", lambda name: None, lambda name: None)  # type: ignore[arg-type,return-value]
    mw = build_middleware("forwardAuth", {"address": "http://127.0.0.1:1/check", **config}, ctx)
    assert isinstance(mw, ForwardAuth)
    return mw


@pytest.mark.parametrize(("config", "message"), [
    ({"forwardBody": "yes"}, "forwardBody must be true or false"),
    ({"maxBodySize": "lots"}, "maxBodySize must be a number of bytes"),
    ({"maxResponseBodySize": [1]}, "maxResponseBodySize must be a number of bytes"),
    ({"preserveRequestMethod": 1.5}, "preserveRequestMethod must be true or false"),
    ({"preserveLocationHeader": "maybe"}, "preserveLocationHeader must be true or false"),
    ({"addAuthCookiesToResponse": "session"}, "addAuthCookiesToResponse must be a list of names"),
    ({"headerField": ["X-User"]}, "headerField must be a string"),
    ({"authSigninURL": 5}, "authSigninURL must be a string"),
])
def test_bad_values_are_configuration_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"middleware default-fa@kubernetescrd: forwardAuth: {message}"):
        _build(config)


def test_honoured_options_are_no_longer_warnings() -> None:
    mw = _build({"addAuthCookiesToResponse": ["s"], "headerField": "X-User", "forwardBody": True,
                 "maxBodySize": 10, "maxResponseBodySize": 10, "preserveLocationHeader": True,
                 "preserveRequestMethod": True, "authSigninURL": "https://login/"})
    assert mw.warnings == ()
    assert mw.needs_body and mw.needs_response and mw.needs_done
    plain = _build({})
    assert not (plain.needs_body or plain.needs_response or plain.needs_done)


async def test_forward_body_answers_expect_continue(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, forwardBody=True), port=backend.port))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"POST /app HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"body")
        rest = await asyncio.wait_for(reader.read(-1), 5)
    finally:
        writer.close()
    assert rest.startswith(b"HTTP/1.1 200 ") and auth.requests[-1]["body"] == b"body"
    assert backend.requests[-1]["body"] == b"body"
    assert "expect" not in {k.lower() for k, _ in backend.requests[-1]["headers"]}


async def test_client_gone_while_the_body_is_read(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, forwardBody=True), port=backend.port))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST /app HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npart")
    await writer.drain()
    await asyncio.sleep(0.05)
    assert len(proxy.state.tasks) == 1  # the middleware waits for the rest of the body
    writer.close()
    await asyncio.sleep(0.05)
    assert not proxy.state.tasks  # and gives up once the client has gone
    assert auth.requests == [] and backend.requests == []
    assert (await http(proxy.port, "/app", host="a", method="POST", body=b"whole")).status == 200
    assert auth.requests[-1]["body"] == b"whole"


async def test_forward_body_over_http2_beyond_the_first_window(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, forwardBody=True), port=backend.port))
    client = await H2Client.connect(proxy.port)
    body = bytes(range(256)) * 12 * 1024  # 3 MiB, past the proxy's 1 MiB window: it gives credit while reading
    try:
        sid = client.start("/app", "a", "POST", end=False)
        sent = 0
        async with asyncio.timeout(10):
            while sent < len(body):
                room = min(client.conn.local_flow_control_window(sid), client.conn.max_outbound_frame_size)
                if room <= 0:
                    await asyncio.sleep(0.01)
                    continue
                piece = body[sent:sent + room]
                sent += len(piece)
                client.conn.send_data(sid, piece, end_stream=sent == len(body))
                client.writer.write(client.conn.data_to_send())
        r = await client.finish(sid)
        assert r.status == 200 and json.loads(r.body)["body"].encode("latin-1") == body
        assert auth.requests[-1]["body"] == body and backend.requests[-1]["body"] == body
    finally:
        client.close()


async def test_auth_response_headers_replace_the_clients(make_proxy, backend, auth):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(fa(auth, authResponseHeaders=["X-Auth-User", "X-Auth-Group"], authResponseHeadersRegex="^Foo-"),
                     port=backend.port))
    auth.response_headers = [("X-Auth-User", "user@example.com"), ("X-Auth-Secret", "secret"),
                             ("X-Auth-Group", "group1"), ("X-Auth-Group", "group2"), ("Foo-Bar", "auth-value")]
    r = await http(proxy.port, "/app", host="a", headers=[("X-Auth-Group", "admin_group"), ("Foo-Bar", "client-value"),
                                                          ("Foo-Baz", "client-value")])
    got = r.json()["headers"]
    assert [v for k, v in got if k.lower() == "x-auth-group"] == ["group1", "group2"]
    assert [v for k, v in got if k.lower() == "foo-bar"] == ["auth-value"]
    seen = seen_headers(r)
    # the regexp's names the client sent and the auth server did not are dropped too (Traefik 3.7)
    assert seen["x-auth-user"] == "user@example.com" and "x-auth-secret" not in seen and "foo-baz" not in seen
