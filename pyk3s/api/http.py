"""HTTPS adapter of the API server (aiohttp): TLS, authentication, streaming, WebSocket relays.

Per request: the client certificate (``CERT_OPTIONAL``, verified against the client CA by the TLS
handshake) or bearer token is turned into a user (:mod:`pyk3s.api.authn`); requests without
credentials get 401 except the public health/version paths (answered as ``system:anonymous``). The
request becomes an :class:`ApiRequest` (lower-cased header names) for ``api.handle``; a streamed
``ApiResponse`` (watch, ``logs -f``) is written chunk by chunk, each chunk flushed as it comes.

``pods/exec|attach|portforward`` never reach the core: the upgrade is authorized here (verb
``create``). exec/attach WebSockets are relayed to the kubelet (:mod:`pyk3s.api.proxy`), and their SPDY
fallback answers 400 with an explanation (spec 8.3-8.5); port-forward, SPDY/3.1 or WebSocket, is
served by :mod:`pyk3s.api.portforward` (spec 8.6-8.7).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pyk3s.api.authn import ANONYMOUS, Authenticator, anonymous_allowed, unauthorized_status
from pyk3s.api.authz import forbidden_status, request_attributes
from pyk3s.api.certs import TlsFiles
from pyk3s.api.impersonation import Denied, impersonate
from pyk3s.api.portforward import serve_portforward
from pyk3s.api.proxy import KubeletProxy, status_body
from pyk3s.api.request import ApiRequest, UserInfo

__all__ = ["HttpServer", "serve", "server_ssl_context"]

log = logging.getLogger("pyk3s.api.http")
MAX_BODY = 16 * 1024 * 1024
_STREAM_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|attach|portforward)/?$")

SPDY_MESSAGE = {
    "exec": "pyk3s: exec over SPDY is not supported; this server speaks the WebSocket v5.channel.k8s.io "
            "protocol (kubectl 1.30+ uses it unless KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false)",
    "attach": "pyk3s: attach over SPDY is not supported; this server speaks the WebSocket v5.channel.k8s.io "
              "protocol (kubectl 1.30+ uses it unless KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false)",
}


def server_ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    ctx.load_verify_locations(cafile=str(tls.client_ca_file))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _json(status: dict) -> web.Response:
    return web.Response(status=status["code"], body=json.dumps(status).encode(), content_type="application/json")


def _headers(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in request.headers.items():
        key = k.lower()
        out[key] = f"{out[key]}, {v}" if key in out else v
    return out


def _peer_cert(request: web.Request) -> bytes | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


@dataclass(slots=True)
class _Handler:
    api: Any
    authenticator: Authenticator
    proxy: KubeletProxy | None

    def authenticate(self, request: web.Request, headers: dict[str, str]) -> UserInfo | None:
        user = self.authenticator.authenticate(headers, _peer_cert(request))
        if user is None and not headers.get("authorization") and anonymous_allowed(request.path):
            return ANONYMOUS
        return user

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        headers = _headers(request)
        user = self.authenticate(request, headers)
        if user is None:
            return _json(unauthorized_status())
        if "impersonate-user" in headers or "impersonate-group" in headers:
            try:
                user = await impersonate(user, headers, request.headers.getall("Impersonate-Group", []),
                                         getattr(self.api, "authorizer", None))
            except Denied as denied:
                return _json(denied.status)
        m = _STREAM_PATH.match(request.path)
        if m:
            return await self.stream_subresource(request, headers, user, m.group(3), m.group(1), m.group(2))
        req = ApiRequest(request.method, request.path, list(request.query.items()), headers,
                         await request.read() if request.can_read_body else b"", user)
        resp = await self.api.handle(req)
        out_headers = dict(resp.headers)
        out_headers.setdefault("Content-Type", resp.content_type)
        out_headers.setdefault("Cache-Control", "no-cache, private")
        if resp.stream is None:
            return web.Response(status=resp.status, body=resp.body, headers=out_headers)
        stream = web.StreamResponse(status=resp.status, headers=out_headers)
        stream.enable_chunked_encoding()
        try:
            await stream.prepare(request)
            async for chunk in resp.stream:
                if chunk:
                    await stream.write(chunk)
            await stream.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            aclose = getattr(resp.stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        return stream

    async def stream_subresource(self, request: web.Request, headers: dict[str, str], user: UserInfo,
                                 kind: str, namespace: str, name: str) -> web.StreamResponse:
        attrs = request_attributes("POST", request.path, list(request.query.items()))
        authorizer = getattr(self.api, "authorizer", None)
        if authorizer is not None:
            decision = await authorizer.authorize(user, attrs)
            if not decision.allowed:
                return _json(forbidden_status(user, attrs, decision.reason))
        if kind != "portforward" and headers.get("upgrade", "").lower() != "websocket":
            return _json(status_body(400, "BadRequest", SPDY_MESSAGE[kind]))
        if self.proxy is None:
            return _json(status_body(503, "ServiceUnavailable", f"pyk3s: {kind} relay to kubelets is not configured"))
        if kind == "portforward":
            return await serve_portforward(request, self.proxy, namespace, name)
        return await self.proxy.relay_websocket(request, kind, namespace, name)


UNSPECIFIED = ("", "0.0.0.0", "::")


def listen_host(bind: str) -> str | None:
    """What the listener binds: an unspecified address (``0.0.0.0``, ``::`` or empty) means every
    interface of both families, as kube-apiserver's ``--bind-address`` says."""
    return None if bind in UNSPECIFIED else bind


class HttpServer:
    """A running HTTPS listener; ``port`` is the bound port (useful with port 0). ``loopback`` is where
    this machine reaches it when it listens on every address (``::1`` in an IPv6-only cluster)."""

    def __init__(self, runner: web.AppRunner, site: web.TCPSite, host: str, port: int,
                 families: frozenset[int] = frozenset({4}), loopback: str = "127.0.0.1") -> None:
        self._runner = runner
        self._site = site
        self.host = host
        self.port = port
        self.families = families
        self.loopback = loopback

    @property
    def url(self) -> str:
        host = self.host
        if host in UNSPECIFIED:
            want = 6 if ":" in self.loopback else 4
            host = self.loopback if want in self.families else ("::1" if want == 4 else "127.0.0.1")
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


async def serve(api: Any, *, bind: str, port: int, tls: TlsFiles, authenticator: Authenticator,
                proxy: KubeletProxy | None = None, routes: Sequence[tuple[str, str, Any]] = (),
                loopback: str = "127.0.0.1") -> HttpServer:
    """Start the HTTPS listener on ``bind:port`` serving ``api`` (an ApiServer-like object).

    ``routes`` (method, path, handler) are answered before the API and do their own authentication:
    the join endpoints (``/cacerts`` is public, as in K3s) of :mod:`pyk3s.api.join`.
    """
    app = web.Application(client_max_size=MAX_BODY)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    app.router.add_route("*", "/{tail:.*}", _Handler(api, authenticator, proxy).__call__)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True)
    await runner.setup()
    if port == 0 and listen_host(bind) is None:
        with socket.socket() as probe:   # one port for both families' sockets
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    site = web.TCPSite(runner, host=listen_host(bind), port=port, ssl_context=server_ssl_context(tls),
                       reuse_address=True, backlog=512)
    await site.start()
    bound = port
    # the listening sockets of the event loop's server, to learn the port picked for port 0
    sockets = getattr(site._server, "sockets", None) or []
    if sockets:
        bound = sockets[0].getsockname()[1]
    families = frozenset(6 if s.family == socket.AF_INET6 else 4 for s in sockets) or frozenset({4})
    log.info("api/http: serving HTTPS on %s port %d (%s)", bind or "*", bound,
             ", ".join(f"IPv{f}" for f in sorted(families)))
    return HttpServer(runner, site, bind, bound, families, loopback)
