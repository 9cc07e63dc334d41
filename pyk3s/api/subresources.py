"""Subresources (spec 6.1, 6.2, 6.8, 11.3): status, scale (``autoscaling/v1`` Scale), namespaces
finalize, pods binding/eviction/log, serviceaccounts token. Streaming subresources
(exec/attach/portforward) and proxies are handled by the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pyk3s.api.bodies import decode_body, media_type, parse_json
from pyk3s.api.codec import now_rfc3339
from pyk3s.api.errors import (
    StatusError,
    bad_request,
    conflict,
    method_not_allowed,
    not_found,
    status_success,
    unsupported_media_type,
)
from pyk3s.api.handlers import (
    PATCH_TYPES,
    ResourceHandlers,
    json_response,
    patch_sets_rv,
    patcher,
    write_options,
)
from pyk3s.api.invalid import invalid_field
from pyk3s.api.registry import Registry
from pyk3s.api.request import ApiRequest, ApiResponse
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.selectors import label_selector_string

__all__ = ["PodLogHook", "Subresources", "TokenHook"]

# What the edge provides: a pod's log relayed from its kubelet, and a signed ServiceAccount token.
PodLogHook = Callable[[ApiRequest, str, str], Awaitable[ApiResponse | None]]
TokenHook = Callable[[ApiRequest, str, str, Any], Awaitable[dict[str, Any]]]


def _get_path(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def to_scale(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    if info.is_custom:
        spec_path, status_path, sel_path = info.scale_paths
        replicas = _get_path(obj, spec_path) or 0
        status_replicas = _get_path(obj, status_path) or 0 if status_path else 0
        selector = _get_path(obj, sel_path) if sel_path else ""
    else:
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        status_replicas = (obj.get("status") or {}).get("replicas", 0)
        selector = label_selector_string((obj.get("spec") or {}).get("selector"))
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    status: dict[str, Any] = {"replicas": status_replicas}
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": replicas}, "status": status}


class Subresources:
    def __init__(self, registry: Registry, handlers: ResourceHandlers) -> None:
        self.registry = registry
        self.h = handlers
        self.pod_log_hook: PodLogHook | None = None
        self.sa_token_hook: TokenHook | None = None

    async def handle(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str, sub: str) -> ApiResponse:
        method = req.method
        key = (info.group, info.plural, sub)
        if sub == "status" and info.has_status:
            if method == "GET":
                return json_response(200, await self.registry.get(info, ns, name))
            if method == "PUT":
                return await self.h.update(req, info, ns, name, "status")
            if method == "PATCH":
                return await self.h.patch(req, info, ns, name, "status")
            raise method_not_allowed()
        if sub == "scale" and info.has_scale:
            return await self.scale(req, info, ns, name)
        if key == ("", "namespaces", "finalize") and method == "PUT":
            return await self.h.update(req, info, ns, name, "finalize")
        if key == ("", "pods", "binding") and method == "POST":
            return await self.binding(req, info, ns, name)
        if key == ("", "pods", "eviction") and method == "POST":
            return await self.eviction(req, info, ns, name)
        if key == ("", "pods", "log") and method == "GET":
            await self.registry.get(info, ns, name)
            log_hook = self.pod_log_hook
            if log_hook is None:
                raise StatusError(404, "NotFound", f'pods "{name}" logs are not available: no log provider is configured')
            resp = await log_hook(req, ns or "", name)
            if resp is None:
                raise not_found("pods", "", name)
            return resp
        if key == ("", "serviceaccounts", "token") and method == "POST":
            await self.registry.get(info, ns, name)
            token_hook = self.sa_token_hook
            if token_hook is None:
                raise StatusError(404, "NotFound", "serviceaccounts/token is not available: no token issuer is configured")
            body = decode_body(req)
            return json_response(201, await token_hook(req, ns or "", name, body))
        if key in (("", "pods", "exec"), ("", "pods", "attach"), ("", "pods", "portforward")):
            raise bad_request("Upgrade request required")
        if info.subresource(sub) is None:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        raise method_not_allowed()

    async def scale(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str) -> ApiResponse:
        if req.method == "GET":
            return json_response(200, to_scale(info, await self.registry.get(info, ns, name)))
        if req.method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        opts = write_options(req)
        new_scale: Callable[[dict[str, Any]], dict[str, Any]]
        if req.method == "PUT":
            body = decode_body(req)
            if not isinstance(body, dict):
                raise bad_request("the object provided is unrecognized: expected a Scale")
            precondition = bool((body.get("metadata") or {}).get("resourceVersion"))
            scale_body: dict[str, Any] = body

            def new_scale(cur: dict[str, Any]) -> dict[str, Any]:
                return scale_body
        else:
            ct = media_type(req)
            if ct not in PATCH_TYPES or ct == "application/apply-patch+yaml":
                raise unsupported_media_type(ct, [t for t in PATCH_TYPES if "apply" not in t])
            patch = parse_json(req.body)
            precondition = patch_sets_rv(patch)

            new_scale = patcher(ct, patch, ("autoscaling", "v1", "Scale"))

        def compute(old: dict[str, Any]) -> dict[str, Any]:
            cur = to_scale(info, old)
            scale = new_scale(cur)
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            if rv and str(rv) != old["metadata"]["resourceVersion"]:
                raise conflict(info.plural, info.group, name)
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid_field(info, name, "spec.replicas", replicas, "must be greater than or equal to 0")
            if info.is_custom:
                _set_path(old, info.scale_paths[0], replicas)
            else:
                old.setdefault("spec", {})["replicas"] = replicas
            return old

        obj = await self.registry.update(info, ns, name, compute, opts, subresource="scale", precondition=precondition)
        return json_response(200, to_scale(info, obj))

    async def binding(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str) -> ApiResponse:
        body = decode_body(req)
        target = (body.get("target") or {}) if isinstance(body, dict) else {}
        node = target.get("name")
        if not node:
            raise bad_request("binding: target.name is required")

        def compute(old: dict[str, Any]) -> dict[str, Any]:
            spec = old.setdefault("spec", {})
            if spec.get("nodeName"):
                raise conflict("pods/binding", "", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            if old["metadata"].get("deletionTimestamp"):
                raise conflict("pods/binding", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
            spec["nodeName"] = node
            status = old.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conds
            return old

        opts = write_options(req)
        await self.registry.update(info, ns, name, compute, opts, subresource="binding")
        return json_response(201, status_success("pods", "", name))

    async def eviction(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str) -> ApiResponse:
        body = decode_body(req) if req.body else {}
        options = (body.get("deleteOptions") or {}) if isinstance(body, dict) else {}
        await self.registry.delete(info, ns, name, options, dry_run=bool(req.params("dryRun")))
        return json_response(201, status_success("pods", "", name))
