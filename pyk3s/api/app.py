"""The framework-free core of the Kubernetes-compatible API server.

``ApiServer(store, config)`` answers :class:`ApiRequest` with :class:`ApiResponse` (the HTTP edge in
``pyk3s.api.http`` and the in-process client transport both call :meth:`ApiServer.handle`). The
caller owns the store: start it before :meth:`ApiServer.start` and close it after :meth:`stop`.

It builds its parts once and hands each the collaborators it uses: the resource catalog (what is
served), the namespace gate, the kind hooks, the registry (object semantics on the store), the
resource handlers and subresources (HTTP verbs on the registry). It dispatches a request to them
after authorization, and answers discovery, OpenAPI, /version and health itself.

Hooks the edge sets on an instance:

* ``authorizer`` — consulted when set and the request carries a user (in-process requests without a
  user are trusted);
* ``subresources.pod_log_hook`` — ``async (req, namespace, name) -> ApiResponse | None`` for ``pods/log``;
* ``subresources.sa_token_hook`` — ``async (req, namespace, name, body) -> dict`` for
  ``serviceaccounts/token``;
* :meth:`register_virtual` — create-only resources (access reviews, token reviews).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pyk3s.api import discovery
from pyk3s.api.allocation import ServiceAllocator
from pyk3s.api.authz import Authorizer, forbidden_status, request_attributes
from pyk3s.api.bodies import decode_body
from pyk3s.api.bootstrap import bootstrap
from pyk3s.api.catalog import ResourceCatalog
from pyk3s.api.codec import dumps
from pyk3s.api.config import ApiConfig
from pyk3s.api.errors import StatusError, bad_request, method_not_allowed
from pyk3s.api.fieldcheck import FieldChecker
from pyk3s.api.handlers import ResourceHandlers, json_response
from pyk3s.api.hooks import KindHooks
from pyk3s.api.namespaces import NamespaceGate
from pyk3s.api.openapi import OPENAPI_V2_PROTOBUF, OpenApiV3, openapi_v2_stub
from pyk3s.api.registry import Registry
from pyk3s.api.request import ApiRequest, ApiResponse
from pyk3s.api.resources import ResourceInfo, ResourceTable
from pyk3s.api.store.base import Store, Unavailable
from pyk3s.api.subresources import Subresources
from pyk3s.api.watch import WatchCache

__all__ = ["ApiServer", "VirtualHandler"]

log = logging.getLogger("pyk3s.api")

VirtualHandler = Callable[[ApiRequest, dict[str, Any]], Awaitable[dict[str, Any]]]
_HEALTH = ("/healthz", "/livez", "/readyz")
_VERB_BY_METHOD = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _not_found_path() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


class ApiServer:
    def __init__(self, store: Store, config: ApiConfig | None = None) -> None:
        self.store = store
        self.config = config or ApiConfig()
        self.authorizer: Authorizer | None = None
        self.catalog = ResourceCatalog()
        self.watches = WatchCache(store, history=self.config.watch_history,
                                  history_seconds=self.config.watch_history_seconds,
                                  queue_limit=self.config.watch_queue_limit)
        self.allocator = ServiceAllocator(store, self.config)
        self.namespaces = NamespaceGate(store, self.watches)
        self.hooks = KindHooks(store, self.allocator, self.catalog, self.namespaces, self.config.system_namespaces)
        self.registry = Registry(store, self.catalog, self.hooks, FieldChecker(), self.namespaces)
        self.openapi = OpenApiV3()
        self.handlers = ResourceHandlers(self.registry, self.watches, self.config)
        self.subresources = Subresources(self.registry, self.handlers)
        self._virtual: dict[tuple[str, str, str], VirtualHandler] = {}

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.namespaces.start()
        await self.catalog.start(self.store, self.watches)
        if self.config.bootstrap:
            await bootstrap(self.registry, self.catalog.table, self.config, self.allocator.kubernetes_ip)

    async def stop(self) -> None:
        await self.catalog.stop()
        await self.namespaces.stop()
        await self.watches.close()

    def register_virtual(self, group: str, version: str, plural: str, kind: str, handler: VirtualHandler,
                         namespaced: bool = False) -> None:
        """Serve ``POST`` on a create-only resource with ``handler(req, body) -> response object`` (201)."""
        self._virtual[(group, version, plural)] = handler
        self.catalog.add_virtual(group, version, plural, kind, namespaced)

    # --- requests ---------------------------------------------------------------------------------

    async def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            return await self._dispatch(req)
        except StatusError as e:
            return ApiResponse(e.code, dumps(e.status()))
        except Unavailable as e:
            return ApiResponse(503, dumps(StatusError(503, "ServiceUnavailable", f"storage is unavailable: {e}").status()))
        except Exception as e:
            log.exception("api: %s %s failed", req.method, req.path)
            return ApiResponse(500, dumps(StatusError(500, "InternalError", f"Internal error occurred: {e}").status()))

    async def _authorize(self, req: ApiRequest) -> None:
        if self.authorizer is None or req.user is None:
            return
        attrs = request_attributes(req.method, req.path, req.query)
        decision = await self.authorizer.authorize(req.user, attrs)
        if not decision.allowed:
            st = forbidden_status(req.user, attrs, decision.reason)
            err = StatusError(403, "Forbidden", st["message"])
            err.details = st.get("details", {})
            raise err

    async def _dispatch(self, req: ApiRequest) -> ApiResponse:
        path = req.path.split("?", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/")
        await self._authorize(req)
        if path == "/version":
            return json_response(200, self.config.version.as_dict())
        if path in _HEALTH or path.startswith(tuple(h + "/" for h in _HEALTH)):
            return ApiResponse(200, b"ok", content_type="text/plain; charset=utf-8")
        if path.startswith("/openapi/"):
            return self._openapi(req, path)
        parts = path.strip("/").split("/")
        table = self.catalog.table
        if parts[0] == "api":
            if len(parts) == 1:
                return self._discovery(req, core=True)
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                return self._discovery(req, core=False)
            group = parts[1]
            if group not in table.groups or not group:
                raise _not_found_path()
            if len(parts) == 2:
                return json_response(200, discovery.api_group(table, group))
            version, rest = parts[2], parts[3:]
        else:
            raise _not_found_path()
        if not table.has_group_version(group, version):
            raise _not_found_path()
        if not rest:
            return json_response(200, discovery.api_resource_list(table, group, version))
        return await self._resource(req, table, group, version, rest)

    def _discovery(self, req: ApiRequest, core: bool) -> ApiResponse:
        v = discovery.aggregated_version(req.header("accept"))
        if v is not None:
            body = discovery.aggregated(self.catalog.table, core, v)
            return ApiResponse(200, dumps(body), content_type=discovery.AGGREGATED_CONTENT_TYPE.format(v=v))
        if core:
            return json_response(200, discovery.api_versions(f"{self.config.advertise_address}:{self.config.advertise_port}"))
        return json_response(200, discovery.api_group_list(self.catalog.table))

    def _openapi(self, req: ApiRequest, path: str) -> ApiResponse:
        # /openapi/v2 exists only in kubectl's protobuf form, and empty (see openapi_v2_stub).
        if path == "/openapi/v2" and OPENAPI_V2_PROTOBUF in req.header("accept"):
            # Go's mime parser rejects the "@" of the Accept value, so answer as kube-openapi does.
            return ApiResponse(200, openapi_v2_stub(self.config.version.git_version),
                               content_type="application/octet-stream")
        if path == "/openapi/v3":
            return json_response(200, self.openapi.index(self.catalog.table))
        if path.startswith("/openapi/v3/"):
            found = self.openapi.document(self.catalog.table, path[len("/openapi/v3/"):])
            if found is not None:
                raw, digest = found
                headers = {"Etag": f'"{digest}"'}
                if req.param("hash") == digest:
                    headers["Cache-Control"] = "public, immutable"
                    headers["Expires"] = "Thu, 31 Dec 2099 00:00:00 GMT"
                else:
                    headers["Cache-Control"] = "no-cache, private"
                return ApiResponse(200, raw, headers=headers)
        raise _not_found_path()

    async def _resource(self, req: ApiRequest, table: ResourceTable, group: str, version: str,
                        rest: list[str]) -> ApiResponse:
        if rest[0] == "watch":
            rest = rest[1:]
            req.query = [q for q in req.query if q[0] != "watch"] + [("watch", "true")]
            if not rest:
                raise _not_found_path()
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        info = table.get(group, version, plural)
        if info is None or (ns is not None and not info.namespaced) or (name == "" or sub == ""):
            raise _not_found_path()
        method = req.method.upper()
        if info.virtual:
            if method != "POST" or name is not None:
                raise method_not_allowed()
            return await self._virtual_create(req, info, ns)
        if sub is not None:
            return await self.subresources.handle(req, info, ns, name or "", sub)
        h = self.handlers
        verb = _VERB_BY_METHOD.get(method)
        if verb is None:
            raise method_not_allowed()
        if name is None:
            if method == "GET":
                return await h.list(req, info, ns)
            if method == "POST":
                if info.namespaced and ns is None:
                    raise method_not_allowed()
                return await h.create(req, info, ns)
            if method == "DELETE":
                if "deletecollection" not in info.verbs:
                    raise method_not_allowed()
                return await h.delete_collection(req, info, ns)
            raise method_not_allowed()
        if info.namespaced and ns is None:
            raise _not_found_path()
        if verb not in info.verbs:
            raise method_not_allowed()
        if method == "GET":
            return await h.get(req, info, ns, name)
        if method == "PUT":
            return await h.update(req, info, ns, name)
        if method == "PATCH":
            return await h.patch(req, info, ns, name)
        if method == "DELETE":
            return await h.delete(req, info, ns, name)
        raise method_not_allowed()

    async def _virtual_create(self, req: ApiRequest, info: ResourceInfo, ns: str | None) -> ApiResponse:
        handler = self._virtual.get((info.group, info.version, info.plural))
        if handler is None:
            raise _not_found_path()
        body = decode_body(req)
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized: expected a JSON object")
        if ns is not None:
            body.setdefault("metadata", {})["namespace"] = ns
        return json_response(201, await handler(req, body))
