"""OpenAPI v3 publication (spec 2): ``/openapi/v3`` index with content hashes and one document per
group-version. Every resource path carries a ``patch`` operation with
``x-kubernetes-group-version-kind`` and the ``fieldValidation`` query parameter (so kubectl sends
``fieldValidation=Strict`` instead of validating client-side) and component schemas with the GVK
extension (so ``kubectl explain`` works): built-ins from :mod:`schemas`, custom resources from
their ``openAPIV3Schema``. Documents are built once per resource-table snapshot.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from pyk3s.api.codec import dumps
from pyk3s.api.resources import ResourceInfo, ResourceTable
from pyk3s.api.schemas import KIND_TYPES, TYPES, openapi_schemas

__all__ = ["OPENAPI_V2_PROTOBUF", "OpenApiV3", "openapi_v2_stub"]

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    out = bytearray([(number << 3) | 2])
    n = len(payload)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def openapi_v2_stub(version: str) -> bytes:
    """An OpenAPI v2 document (gnostic protobuf) with no definitions.

    kubectl validates some input client-side against OpenAPI v2 whatever the server supports: every
    ``kind: List`` file, and kinds missing from the v3 index (a wrong apiVersion). With no definitions
    it skips that validation and lets the server answer, which is where pyk3s validates (v3,
    ``fieldValidation``). Document: swagger = 1, info = 2 (title = 1, version = 2).
    """
    info = _pb_field(1, b"Kubernetes") + _pb_field(2, version.encode())
    return _pb_field(1, b"2.0") + _pb_field(2, info)

_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")
_QUERY = {
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request "
                       "containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
    "dryRun": "When present, indicates that modifications should not be persisted.",
}
_OBJECT_META = TYPES["ObjectMeta"][0]


def _reverse_group(group: str) -> str:
    return ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": _QUERY[name], "schema": {"type": "string", "uniqueItems": True}}


def _op(action: str, gvk: dict[str, str], ref: str, op_id: str, body: tuple[str, ...] = (),
        params: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/" + ref}
    op: dict[str, Any] = {
        "operationId": op_id,
        "parameters": [_param(p) for p in params],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body:
        op["requestBody"] = {"content": {ct: {"schema": schema} for ct in body}, "required": True}
    return op


class OpenApiV3:
    def __init__(self) -> None:
        self._table: ResourceTable | None = None
        self._docs: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}

    def _build(self, table: ResourceTable) -> None:
        if self._table is table:
            return
        docs: dict[str, bytes] = {}
        hashes: dict[str, str] = {}
        for group, versions in table.groups.items():
            for version in versions:
                rows = table.in_group_version(group, version)
                path = f"api/{version}" if not group else f"apis/{group}/{version}"
                raw = dumps(self._document(rows))
                docs[path] = raw
                hashes[path] = hashlib.sha512(raw).hexdigest().upper()
        self._docs, self._hashes, self._table = docs, hashes, table

    def index(self, table: ResourceTable) -> dict[str, Any]:
        self._build(table)
        return {"paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"} for p, h in sorted(self._hashes.items())}}

    def document(self, table: ResourceTable, path: str) -> tuple[bytes, str] | None:
        self._build(table)
        raw = self._docs.get(path)
        return (raw, self._hashes[path]) if raw is not None else None

    def _document(self, rows: list[ResourceInfo]) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        roots: list[str] = ["ObjectMeta"]
        gvks: dict[str, list[dict[str, str]]] = {}
        for r in rows:
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            tname = KIND_TYPES.get((r.group, r.kind))
            if tname is not None and not r.is_custom:
                ref = TYPES[tname][0]
                roots.append(tname)
                gvks.setdefault(tname, []).append(gvk)
            else:
                ref = f"{_reverse_group(r.group)}.{r.version}.{r.kind}"
                schemas[ref] = self._custom_schema(r, gvk)
            self._paths(r, gvk, ref, paths)
            if r.has_scale:
                roots.append("Scale")
                gvks.setdefault("Scale", [{"group": "autoscaling", "version": "v1", "kind": "Scale"}])
                self._scale_path(r, paths)
        schemas.update(openapi_schemas(roots, gvks))
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.4"},
                "paths": paths, "components": {"schemas": schemas}}

    @staticmethod
    def _custom_schema(r: ResourceInfo, gvk: dict[str, str]) -> dict[str, Any]:
        schema: dict[str, Any] = (copy.deepcopy(r.schema) if r.schema
                                  else {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
        schema.setdefault("type", "object")
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}
        props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}
        props["metadata"] = {"allOf": [{"$ref": "#/components/schemas/" + _OBJECT_META}],
                             "description": "Standard object's metadata."}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        return schema

    @staticmethod
    def _base(r: ResourceInfo) -> str:
        root = f"/api/{r.version}" if not r.group else f"/apis/{r.group}/{r.version}"
        return f"{root}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{root}/{r.plural}"

    def _paths(self, r: ResourceInfo, gvk: dict[str, str], ref: str, paths: dict[str, Any]) -> None:
        base = self._base(r)
        opid = f"{r.kind}{r.group.replace('.', '')}{r.version}"
        ns_param = [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}] if r.namespaced else []
        writes = ("dryRun", "fieldManager", "fieldValidation")
        # Custom resources take no strategic merge patch, on any of their paths: kubectl picks the patch
        # type from whichever patch operation of the GVK it finds first (Go map order).
        patch_types = _PATCH_TYPES if not r.is_custom else tuple(t for t in _PATCH_TYPES if "strategic" not in t)
        collection: dict[str, Any] = {"parameters": ns_param}
        collection["post"] = _op("post", gvk, ref, f"create{opid}", ("application/json", "application/yaml"), writes)
        if not r.virtual:
            collection["get"] = _op("list", gvk, ref, f"list{opid}")
        paths[base] = collection
        if r.virtual:
            return
        item = {
            "parameters": ns_param + [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": _op("get", gvk, ref, f"read{opid}"),
            "put": _op("put", gvk, ref, f"replace{opid}", ("application/json", "application/yaml"), writes),
            "patch": _op("patch", gvk, ref, f"patch{opid}", patch_types, writes),
            "delete": _op("delete", gvk, ref, f"delete{opid}", (), ("dryRun",)),
        }
        paths[base + "/{name}"] = item
        if r.has_status:
            paths[base + "/{name}/status"] = {
                "parameters": item["parameters"],
                "get": _op("get", gvk, ref, f"read{opid}Status"),
                "put": _op("put", gvk, ref, f"replace{opid}Status", ("application/json",), writes),
                "patch": _op("patch", gvk, ref, f"patch{opid}Status", patch_types, writes),
            }

    def _scale_path(self, r: ResourceInfo, paths: dict[str, Any]) -> None:
        gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        ref = TYPES["Scale"][0]
        opid = f"{r.kind}{r.group.replace('.', '')}{r.version}Scale"
        writes = ("dryRun", "fieldManager", "fieldValidation")
        paths[self._base(r) + "/{name}/scale"] = {
            "get": _op("get", gvk, ref, f"read{opid}"),
            "put": _op("put", gvk, ref, f"replace{opid}", ("application/json",), writes),
            "patch": _op("patch", gvk, ref, f"patch{opid}", _PATCH_TYPES, writes),
        }
