"""The map's HTTP side (aiohttp): the page and its assets from the package, the JSON API under
``/api/`` (one route per view, the trace, the policy matrix and its explanations), and ``/api/watch``,
a Server-Sent Events stream that says which views changed. Read-only: anything but GET and HEAD is
405. A Host header that is not the address served (or a loopback name) is refused, as ``kubectl proxy``
does, so a web page elsewhere cannot read the cluster through a DNS-rebound name."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from .policies import policies_view, policy_explain
from .state import MapState
from .trace import trace

__all__ = ["API", "make_app"]

KEEPALIVE = 15.0
# the page's files, each served under /static/<name>
ASSETS = {"index.html": "text/html", "map.css": "text/css",
          **{f"{name}.js": "text/javascript" for name in ("dom", "diagram", "views", "ingress", "policies", "trace", "map")}}
LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE: web.AppKey[MapState] = web.AppKey("state", MapState)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status,
                        content_type="application/json", headers={"Cache-Control": "no-store"})


def _state(request: web.Request) -> MapState:
    return request.app[STATE]


async def _overview(request: web.Request) -> web.Response:
    return _json(_state(request).overview())


async def _nodes(request: web.Request) -> web.Response:
    return _json(_state(request).nodes())


async def _services(request: web.Request) -> web.Response:
    view = _state(request).services()
    ns = request.query.get("namespace")
    if ns:
        view = {**view, "namespaces": [n for n in view["namespaces"] if n["name"] == ns]}
    return _json(view)


async def _ingress(request: web.Request) -> web.Response:
    return _json(_state(request).ingress())


async def _policies(request: web.Request) -> web.Response:
    return _json(policies_view(_state(request), request.query.getall("namespace", []),
                               request.query.get("port", "80/TCP")))


async def _policy_explain(request: web.Request) -> web.Response:
    q = request.query
    got = policy_explain(_state(request), q.get("from", ""), q.get("to", ""), q.get("port", "80/TCP"))
    return _json(got, 400 if "error" in got else 200)


async def _trace(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    return _json(await trace(_state(request), q, request.query.getall("header", []),
                             request.query.get("method", "GET")))


async def _status(request: web.Request) -> web.Response:
    return _json(_state(request).cache.status())


async def _watch(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await resp.prepare(request)
    queue = state.cache.subscribe()
    try:
        hello = {"revision": state.cache.revision, "views": []}
        await resp.write(f"event: hello\ndata: {json.dumps(hello)}\n\n".encode())
        while True:
            try:
                notice = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            data = json.dumps({"revision": notice.revision, "views": list(notice.views)})
            await resp.write(f"event: change\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        state.cache.unsubscribe(queue)
    return resp


# path -> (handler, what it answers): the API index lists them
API: dict[str, tuple[Handler, str]] = {
    "/api/overview": (_overview, "counts, the API server, the watch state"),
    "/api/nodes": (_nodes, "nodes: addresses, pod CIDRs, readiness, backend, host ports"),
    "/api/services": (_services, "namespaces -> Services, endpoints, LoadBalancer state (?namespace=)"),
    "/api/ingress": (_ingress, "entry points -> routers -> middlewares -> services -> endpoints, with errors"),
    "/api/policies": (_policies, "the reachability matrix of the pods of ?namespace= (repeatable) on ?port=80/TCP"),
    "/api/policies/explain": (_policy_explain, "?from=ns/pod&to=ns/pod&port=80/TCP: `pyk3s netpol explain --json`"),
    "/api/trace": (_trace, "?q=URL | DNS name [TYPE] | ns/pod -> ns/pod:port[/PROTO] (&header=Name:%20value)"),
    "/api/status": (_status, "what is watched, and what is not served"),
    "/api/watch": (_watch, "Server-Sent Events: {revision, views} after each burst of changes"),
}


async def _index(request: web.Request) -> web.Response:
    return _asset_response("index.html")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return _asset_response(name)


def _asset_response(name: str) -> web.Response:
    body = resources.files("pyk3s.netmap").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


async def _api_index(request: web.Request) -> web.Response:
    return _json({"paths": {path: what for path, (_, what) in API.items()}})


def _host_guard(bound: str) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"], text="the map is read-only\n")
        host = request.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if bound not in ("0.0.0.0", "::", "") and not LOOPBACK.match(host) and name.strip("[]") != bound:
            raise web.HTTPForbidden(text=f"Host {host!r} is not served here\n")
        return await handler(request)
    return guard


def make_app(state: MapState, bound: str = "127.0.0.1") -> web.Application:
    app = web.Application(middlewares=[_host_guard(bound)])
    app[STATE] = state
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _asset)
    app.router.add_get("/api/", _api_index)
    for path, (handler, _) in API.items():
        app.router.add_get(path, handler)
    return app
