"""Resource verbs (spec 11.2): list, watch, get, create, update, patch, delete, deletecollection.

Each handler turns an :class:`ApiRequest` into registry calls and an :class:`ApiResponse`; the
object semantics live in :mod:`registry`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pyk3s.api import patch as patchlib
from pyk3s.api.bodies import decode_body, media_type, parse_json, parse_yaml
from pyk3s.api.codec import decode_kv, dumps, kv_json, now_rfc3339
from pyk3s.api.config import ApiConfig
from pyk3s.api.errors import StatusError, bad_request, conflict, status_success, unsupported_media_type
from pyk3s.api.invalid import invalid_field
from pyk3s.api.query import go_bool, query_bool, query_int, table_request
from pyk3s.api.registry import Registry, present
from pyk3s.api.request import ApiRequest, ApiResponse, WriteOptions
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from pyk3s.api.store.base import Compacted
from pyk3s.api.tables import table_for
from pyk3s.api.watch import WatchCache
from pyk3s.api.watchstream import error_event, expired_error, watch_stream

__all__ = ["PATCH_TYPES", "ResourceHandlers", "json_response", "patch_sets_rv", "patcher", "write_options"]

APPLY = "application/apply-patch+yaml"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", APPLY)


def json_response(status: int, obj: Any, warnings: list[str] | None = None) -> ApiResponse:
    resp = ApiResponse(status, dumps(obj))
    if warnings:
        resp.headers["Warning"] = ", ".join('299 - "{}"'.format(w.replace('"', '\\"')) for w in warnings)
    return resp


def write_options(req: ApiRequest) -> WriteOptions:
    dry = req.params("dryRun")
    for d in dry:
        if d != "All":
            raise bad_request(f'dryRun: Unsupported value: "{d}": supported values: "All"')
    fv = req.param("fieldValidation") or "Warn"  # kube-apiserver's default
    if fv not in ("Strict", "Warn", "Ignore"):
        raise bad_request(f'fieldValidation: Unsupported value: "{fv}": supported values: "Ignore", "Strict", "Warn"')
    manager = req.param("fieldManager") or ""
    if not manager:
        ua = req.header("user-agent")
        manager = ua.split("/", 1)[0] if ua else "unknown"
    return WriteOptions(dry_run=bool(dry), field_manager=manager, field_validation=fv)

# kube-apiserver's stores with ReturnDeletedObject: a delete of these answers with the object, not a
# Status (client-go and the Python clients decode it as the kind)
RETURNS_DELETED_OBJECT = frozenset({
    ("", "pods"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("storage.k8s.io", "storageclasses"),
})


class ResourceHandlers:
    def __init__(self, registry: Registry, watches: WatchCache, config: ApiConfig) -> None:
        self.registry = registry
        self.watches = watches
        self.config = config

    # --- reads ------------------------------------------------------------------------------------

    async def list(self, req: ApiRequest, info: ResourceInfo, ns: str | None) -> ApiResponse:
        labels = parse_label_selector(req.param("labelSelector"))
        fields = parse_field_selector(req.param("fieldSelector"), info.group, info.plural)
        if query_bool(req, "watch"):
            return await self.watch(req, info, ns, labels, fields)
        rv, match = req.param("resourceVersion") or "", req.param("resourceVersionMatch") or ""
        revision = 0
        if match:
            if match not in ("Exact", "NotOlderThan"):
                raise bad_request(f'resourceVersionMatch: Unsupported value: "{match}"')
            if not rv:
                raise bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided")
            if match == "Exact":
                revision = _int_rv(rv)
        elif rv and rv != "0":
            _int_rv(rv)  # NotOlderThan semantics: the latest state is never older
        limit = query_int(req, "limit") or 0
        cont = req.param("continue") or ""
        if cont and rv and rv != "0":
            raise bad_request("specifying resource version is not allowed when using continue")
        res = await self.registry.list(info, ns, labels=labels, fields=fields, limit=max(limit, 0),
                                       continue_token=cont, revision=revision)
        table = table_request(req)
        meta: dict[str, Any] = {"resourceVersion": str(res.revision)}
        if res.continue_token:
            meta["continue"] = res.continue_token
        if table is not None:
            objs = [present(info, decode_kv(kv)) for kv in res.kvs]
            t = table_for(info, objs, table)
            t["metadata"] = meta
            return json_response(200, t)
        if info.is_custom:
            items = b",".join(dumps(present(info, decode_kv(kv))) for kv in res.kvs)
        else:
            items = b",".join(kv_json(kv) for kv in res.kvs)
        head = {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta}
        body = dumps(head)[:-1] + b',"items":[' + items + b"]}"
        return ApiResponse(200, body)

    async def watch(self, req: ApiRequest, info: ResourceInfo, ns: str | None, labels: LabelSelector,
                    fields: FieldSelector) -> ApiResponse:
        rv = req.param("resourceVersion") or ""
        send_initial = req.param("sendInitialEvents")
        initial_end = False
        if send_initial is not None and go_bool(send_initial):
            if req.param("resourceVersionMatch") != "NotOlderThan":
                raise invalid_field(info, "", "resourceVersionMatch", req.param("resourceVersionMatch") or "",
                                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                                    "FieldValueForbidden")
            initial_end = query_bool(req, "allowWatchBookmarks")
            rv = ""
        initial = None
        if rv in ("", "0"):
            res = await self.registry.list(info, ns, labels=labels, fields=fields)
            start, initial = res.revision, res.kvs
        else:
            start = _int_rv(rv)
        timeout_s = query_int(req, "timeoutSeconds")
        if timeout_s is None or timeout_s <= 0:
            base = self.config.min_request_timeout
            timeout = base * (1 + random.random())
        else:
            timeout = float(timeout_s)
        try:
            sub = await self.watches.subscribe(info.key_prefix, start, scope=info.list_prefix(ns))
        except Compacted as e:
            return _stream_once(error_event(expired_error(e.requested, e.compacted)))
        stream = watch_stream(info, ns, labels, fields, sub, start_rev=start, initial=initial,
                              initial_end=initial_end, table=table_request(req),
                              bookmarks=query_bool(req, "allowWatchBookmarks"), timeout=timeout,
                              bookmark_interval=self.config.bookmark_interval)
        return ApiResponse(200, stream=stream, content_type="application/json")

    async def get(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str) -> ApiResponse:
        if query_bool(req, "watch"):
            fields = parse_field_selector(f"metadata.name={name}", info.group, info.plural)
            return await self.watch(req, info, ns, parse_label_selector(req.param("labelSelector")), fields)
        obj = await self.registry.get(info, ns, name)
        table = table_request(req)
        if table is not None:
            return json_response(200, table_for(info, [obj], table))
        return json_response(200, obj)

    # --- writes -----------------------------------------------------------------------------------

    async def create(self, req: ApiRequest, info: ResourceInfo, ns: str | None) -> ApiResponse:
        opts = write_options(req)
        body = decode_body(req, strict=opts.field_validation == "Strict")
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized: expected a JSON object")
        obj = await self.registry.create(info, ns, body, opts)
        return json_response(201, obj, opts.warnings)

    async def update(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str,
                     subresource: str | None = None) -> ApiResponse:
        opts = write_options(req)
        body = decode_body(req, strict=opts.field_validation == "Strict")
        if not isinstance(body, dict):
            raise bad_request("the object provided is unrecognized: expected a JSON object")
        explicit = bool((body.get("metadata") or {}).get("resourceVersion"))
        obj = await self.registry.update(info, ns, name, lambda _old: body, opts, subresource=subresource,
                                         precondition=explicit)
        return json_response(200, obj, opts.warnings)

    async def patch(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str,
                    subresource: str | None = None) -> ApiResponse:
        ct = media_type(req)
        if ct not in PATCH_TYPES:
            accepted = [t for t in PATCH_TYPES if not (info.is_custom and "strategic" in t)]
            raise unsupported_media_type(ct, accepted)
        if ct == "application/strategic-merge-patch+json" and info.is_custom:
            raise unsupported_media_type(ct, [t for t in PATCH_TYPES if "strategic" not in t])
        opts = write_options(req)
        if ct == APPLY:
            return await self.apply(req, info, ns, name, opts, subresource)
        if not req.body:
            raise bad_request("the request body is empty")
        patch = parse_json(req.body)
        if ct == "application/json-patch+json":
            if not isinstance(patch, list):
                raise bad_request("the server rejected our request due to an error in our request: "
                                  "json patch must be a list of operations")
        elif not isinstance(patch, dict):
            raise bad_request("the server rejected our request due to an error in our request: "
                              "patch must be a JSON object")
        fn = patcher(ct, patch, info.gvk)
        obj = await self.registry.update(info, ns, name, fn, opts, subresource=subresource,
                                         precondition=patch_sets_rv(patch))
        return json_response(200, obj, opts.warnings)

    async def apply(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str, opts: WriteOptions,
                    subresource: str | None) -> ApiResponse:
        if not req.param("fieldManager"):
            raise StatusError(422, "Invalid",
                           'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                           group="meta.k8s.io", kind="PatchOptions",
                           causes=[{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
                                    "field": "fieldManager"}])
        raw = req.body
        applied = parse_json(raw, opts.field_validation == "Strict") if raw.lstrip()[:1] == b"{" else parse_yaml(raw)
        if not isinstance(applied, dict):
            raise bad_request("the object provided is unrecognized: an apply patch must be an object")
        meta = applied.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        meta["name"] = name
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("apiVersion and kind must be set in an apply patch")
        force = query_bool(req, "force")
        gvk = info.gvk
        manager = opts.field_manager

        def merge(live: dict[str, Any] | None) -> dict[str, Any]:
            try:
                return patchlib.server_side_apply(live, applied, manager=manager, force=force,
                                                  api_version=info.api_version, gvk=gvk, now=now_rfc3339())
            except patchlib.ApplyConflict as e:
                raise _apply_conflict(info, name, e) from None
            except patchlib.PatchError as e:
                raise _patch_error(e) from None

        try:
            obj = await self.registry.update(info, ns, name, merge, opts, subresource=subresource, managed_done=True,
                                             precondition=bool(meta.get("resourceVersion")))
            return json_response(200, obj, opts.warnings)
        except StatusError as e:
            if e.code != 404 or subresource is not None:
                raise
        created = merge(None)
        obj = await self.registry.create(info, ns, created, opts, managed_done=True)
        return json_response(201, obj, opts.warnings)

    async def delete(self, req: ApiRequest, info: ResourceInfo, ns: str | None, name: str) -> ApiResponse:
        options = delete_options(req)
        obj, removed = await self.registry.delete(info, ns, name, options, dry_run=_dry(req, options))
        if not removed or (info.group, info.plural) in RETURNS_DELETED_OBJECT:
            return json_response(200, obj)
        return json_response(200, status_success(info.plural, info.group, name, obj["metadata"].get("uid", "")))

    async def delete_collection(self, req: ApiRequest, info: ResourceInfo, ns: str | None) -> ApiResponse:
        labels = parse_label_selector(req.param("labelSelector"))
        fields = parse_field_selector(req.param("fieldSelector"), info.group, info.plural)
        options = delete_options(req)
        res = await self.registry.list(info, ns, labels=labels, fields=fields)
        items = []
        for kv in res.kvs:
            obj = decode_kv(kv)
            meta = obj["metadata"]
            try:
                out, _ = await self.registry.delete(info, meta.get("namespace"), meta["name"], options,
                                                    dry_run=_dry(req, options))
            except StatusError as e:
                if e.code == 404:
                    continue
                raise
            items.append(out)
        return json_response(200, {"kind": info.list_kind, "apiVersion": info.api_version,
                                   "metadata": {"resourceVersion": str(res.revision)}, "items": items})


def delete_options(req: ApiRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if req.body and req.body.strip():
        body = decode_body(req)
        if isinstance(body, dict):
            options.update(body)
    for q in ("gracePeriodSeconds",):
        v = query_int(req, q)
        if v is not None:
            options[q] = v
    if req.param("propagationPolicy"):
        options["propagationPolicy"] = req.param("propagationPolicy")
    if req.param("orphanDependents") is not None:
        options["orphanDependents"] = query_bool(req, "orphanDependents")
    return options


def patch_sets_rv(patch: Any) -> bool:
    if isinstance(patch, list):
        return any(isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in patch)
    return bool(isinstance(patch, dict) and isinstance(patch.get("metadata"), dict)
                and patch["metadata"].get("resourceVersion"))


def _dry(req: ApiRequest, options: dict[str, Any]) -> bool:
    return bool(req.params("dryRun")) or bool(options.get("dryRun"))


def _int_rv(rv: str) -> int:
    try:
        n = int(rv)
    except ValueError:
        raise bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer') from None
    if n < 0:
        raise bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer')
    return n


def _stream_once(chunk: bytes) -> ApiResponse:
    async def gen() -> Any:
        yield chunk

    return ApiResponse(200, stream=gen(), content_type="application/json")


def _patch_error(e: patchlib.PatchError) -> StatusError:
    return StatusError(e.code, "Invalid" if e.code == 422 else "BadRequest", e.message or str(e))


def _apply_conflict(info: ResourceInfo, name: str, e: Any) -> StatusError:
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": f}
              for m, v, f in e.conflicts]
    err = conflict(info.plural, info.group, name)
    err.message = str(e)
    err.details["causes"] = causes
    return err


def patcher(ct: str, patch: Any, gvk: tuple[str, str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The function applying a json, merge or strategic-merge ``patch`` (by Content-Type ``ct``) to an
    object of kind ``gvk``; a patch that does not apply raises the API error kube-apiserver answers."""
    def apply(old: dict[str, Any]) -> dict[str, Any]:
        try:
            if ct == "application/json-patch+json":
                return patchlib.json_patch(old, patch)
            if ct == "application/merge-patch+json":
                return patchlib.merge_patch(old, patch)
            return patchlib.strategic_merge_patch(old, patch, gvk)
        except patchlib.PatchError as e:
            raise _patch_error(e) from None

    return apply
