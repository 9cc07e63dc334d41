"""The one client every pyk3s component uses: plain dicts in, plain dicts out."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, NotFound, error_for
from .kubeconfig import ClusterAccess, in_cluster_access, load_kubeconfig
from .transport import HttpTransport, InProcessTransport, Query, StreamRejected, Transport

__all__ = ["Client", "ResourceClient", "object_key", "now_rfc3339"]

JSON = "application/json"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


def _decode(data: bytes) -> Any:
    if not data:
        return {}
    try:
        return json.loads(data)
    except ValueError:
        return {"message": data[:500].decode("utf-8", "replace")}


class Client:
    def __init__(self, transport: Transport, *, namespace: str = "default") -> None:
        self.transport = transport
        self.namespace = namespace
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_access(cls, access: ClusterAccess) -> Client:
        return cls(HttpTransport(access), namespace=access.namespace)

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], context: str | None = None) -> Client:
        return cls.from_access(load_kubeconfig(path, context))

    @classmethod
    def in_cluster(cls) -> Client:
        return cls.from_access(in_cluster_access())

    @classmethod
    def from_env(cls, kubeconfig: str | None = None) -> Client:
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        if path:
            return cls.from_kubeconfig(path)
        return cls.in_cluster()

    @classmethod
    def in_process(cls, api: Any, user: Any = None) -> Client:
        return cls(InProcessTransport(api, user))

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- raw calls ------------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> Any:
        headers = {"Accept": accept}
        raw: bytes | None = None
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        status, _hdrs, data = await self.transport.request(method, path, query or [], raw, headers)
        decoded = _decode(data)
        if status >= 300:
            raise error_for(status, decoded, data)
        return decoded

    async def stream_lines(self, path: str, query: Query, accept: str = JSON) -> AsyncIterator[bytes]:
        try:
            async for line in self.transport.stream("GET", path, query, {"Accept": accept}):
                yield line
        except StreamRejected as rej:
            raise error_for(rej.status, _decode(rej.body), rej.body) from None

    def resource(self, api_version: str, plural: str) -> ResourceClient:
        return ResourceClient(self, api_version, plural)

    async def discover(self, api_version: str, kind: str, *, refresh: bool = False) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, through discovery; cached per client, refreshed on a miss."""
        key = (api_version, kind)
        if refresh or key not in self._kinds:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = await self.call("GET", base)
            except NotFound:
                doc = {}
            for r in doc.get("resources", []):
                if "/" not in r["name"]:
                    self._kinds[(api_version, r["kind"])] = (r["name"], bool(r.get("namespaced")))
            if key not in self._kinds:
                raise NotFound(
                    404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"'
                )
        return self._kinds[key]

    async def resource_for_kind(self, api_version: str, kind: str) -> ResourceClient:
        """The resource client for a kind, found through discovery."""
        try:
            plural, _ = await self.discover(api_version, kind)
        except NotFound:
            plural, _ = await self.discover(api_version, kind, refresh=True)
        return ResourceClient(self, api_version, plural)

    async def record_event(
        self,
        obj: dict[str, Any],
        *,
        type: str = "Normal",
        reason: str,
        message: str,
        component: str = "pyk3s",
        host: str = "",
    ) -> dict[str, Any] | None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        now = now_rfc3339()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            # client-go names events <object>.<hex nanoseconds>; generateName may not end in a dot.
            "metadata": {"name": f"{meta.get('name', 'object')}.{time.time_ns():x}", "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": obj.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace", ""),
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        try:
            return await self.resource("v1", "events").create(event, namespace=ns)
        except ApiError:
            return None


class ResourceClient:
    def __init__(self, client: Client, api_version: str, plural: str) -> None:
        self.client = client
        self.api_version = api_version
        self.plural = plural
        self._base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        p = self._base
        if namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    @staticmethod
    def _ns(obj: dict[str, Any], namespace: str | None) -> str | None:
        return namespace or (obj.get("metadata") or {}).get("namespace")

    async def get(self, name: str, namespace: str | None = None, subresource: str | None = None) -> dict[str, Any]:
        return await self.client.call("GET", self.path(namespace, name, subresource))

    async def get_or_none(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return await self.get(name, namespace)
        except NotFound:
            return None

    async def list(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> dict[str, Any]:
        q: Query = []
        if label_selector:
            q.append(("labelSelector", label_selector))
        if field_selector:
            q.append(("fieldSelector", field_selector))
        if resource_version is not None:
            q.append(("resourceVersion", resource_version))
        if limit:
            q.append(("limit", str(limit)))
        if continue_:
            q.append(("continue", continue_))
        return await self.client.call("GET", self.path(namespace), query=q)

    async def create(
        self,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        q: Query = []
        if field_manager:
            q.append(("fieldManager", field_manager))
        if dry_run:
            q.append(("dryRun", "All"))
        return await self.client.call("POST", self.path(self._ns(obj, namespace)), query=q, body=obj)

    async def update(
        self, obj: dict[str, Any], namespace: str | None = None, *, field_manager: str | None = None
    ) -> dict[str, Any]:
        q: Query = [("fieldManager", field_manager)] if field_manager else []
        name = obj["metadata"]["name"]
        return await self.client.call("PUT", self.path(self._ns(obj, namespace), name), query=q, body=obj)

    async def update_status(
        self, obj: dict[str, Any], namespace: str | None = None, *, field_manager: str | None = None
    ) -> dict[str, Any]:
        q: Query = [("fieldManager", field_manager)] if field_manager else []
        name = obj["metadata"]["name"]
        return await self.client.call(
            "PUT", self.path(self._ns(obj, namespace), name, "status"), query=q, body=obj
        )

    async def patch(
        self,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        q: Query = []
        if field_manager:
            q.append(("fieldManager", field_manager))
        if force:
            q.append(("force", "true"))
        return await self.client.call(
            "PATCH",
            self.path(namespace, name, subresource),
            query=q,
            body=patch,
            content_type=PATCH_TYPES[patch_type],
        )

    async def apply(
        self, obj: dict[str, Any], namespace: str | None = None, *, field_manager: str, force: bool = False
    ) -> dict[str, Any]:
        """Server-side apply of a whole object."""
        return await self.patch(
            obj["metadata"]["name"],
            obj,
            self._ns(obj, namespace),
            patch_type="apply",
            field_manager=field_manager,
            force=force,
        )

    async def delete(
        self,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        return await self.client.call("DELETE", self.path(namespace, name), body=body)

    async def watch(
        self,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        bookmarks: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        q: Query = [("watch", "true")]
        if resource_version:
            q.append(("resourceVersion", resource_version))
        if label_selector:
            q.append(("labelSelector", label_selector))
        if field_selector:
            q.append(("fieldSelector", field_selector))
        if timeout_seconds:
            q.append(("timeoutSeconds", str(timeout_seconds)))
        if bookmarks:
            q.append(("allowWatchBookmarks", "true"))
        async for line in self.client.stream_lines(self.path(namespace), q):
            try:
                yield json.loads(line)
            except ValueError:
                continue
