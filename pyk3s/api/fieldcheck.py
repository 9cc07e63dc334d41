"""Unknown-field handling for ``fieldValidation`` (spec 2.3).

``Strict`` answers 400 ``strict decoding error: unknown field "spec.foo"``; ``Warn`` drops the field
and adds a ``Warning`` header; ``Ignore`` drops it silently (what decoding into Go types or CRD
pruning does). Built-in kinds are judged against :mod:`schemas` (only closed types), custom
resources against their ``openAPIV3Schema`` (``x-kubernetes-preserve-unknown-fields`` opens a subtree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyk3s.api.errors import bad_request
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.schemas import KIND_TYPES, TYPES

if TYPE_CHECKING:
    from pyk3s.api.registry import WriteOptions

__all__ = ["FieldChecker", "unknown_fields"]

_TOP = {"apiVersion", "kind", "metadata"}


def _walk_typed(value: Any, spec: str, path: str, out: list[tuple[str, dict[str, Any], str]]) -> None:
    if spec.startswith("["):
        if isinstance(value, list):
            inner = spec[1:-1]
            for i, item in enumerate(value):
                _walk_typed(item, inner, f"{path}[{i}]", out)
        return
    if spec.startswith("map:"):
        if isinstance(value, dict):
            for k, v in value.items():
                _walk_typed(v, spec[4:], f"{path}.{k}", out)
        return
    t = TYPES.get(spec)
    if t is None or not isinstance(value, dict):
        return
    _, _, fields, open_ = t
    for k, v in list(value.items()):
        sub = fields.get(k)
        p = f"{path}.{k}" if path else k
        if sub is None:
            if not open_:
                out.append((p, value, k))
            continue
        _walk_typed(v, sub, p, out)


def _walk_schema(value: Any, schema: dict[str, Any] | None, path: str, out: list[tuple[str, dict[str, Any], str]]) -> None:
    if not schema or schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string"):
        return
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _walk_schema(item, items, f"{path}[{i}]", out)
        return
    if not isinstance(value, dict):
        return
    if schema.get("x-kubernetes-embedded-resource"):
        for k in ("metadata",):
            if isinstance(value.get(k), dict):
                _walk_typed(value[k], "ObjectMeta", f"{path}.{k}", out)
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    for k, v in list(value.items()):
        p = f"{path}.{k}" if path else k
        if props and k in props:
            _walk_schema(v, props[k], p, out)
        elif isinstance(extra, dict):
            _walk_schema(v, extra, p, out)
        elif extra is True:
            continue
        elif schema.get("x-kubernetes-embedded-resource") and k in _TOP:
            continue
        elif props is not None or schema.get("type") == "object":
            out.append((p, value, k))


def unknown_fields(info: ResourceInfo, obj: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(path, containing dict, key) of every unknown field."""
    out: list[tuple[str, dict[str, Any], str]] = []
    if info.is_custom:
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            _walk_typed(meta, "ObjectMeta", "metadata", out)
        if info.schema:
            body = {k: v for k, v in obj.items() if k not in _TOP}
            found: list[tuple[str, dict[str, Any], str]] = []
            _walk_schema(body, info.schema, "", found)
            out.extend((p, obj if d is body else d, k) for p, d, k in found)
        return out
    tname = KIND_TYPES.get((info.group, info.kind))
    if tname is not None:
        _walk_typed(obj, tname, "", out)
    return out


class FieldChecker:
    def check(self, info: ResourceInfo, obj: dict[str, Any], opts: WriteOptions) -> None:
        found = unknown_fields(info, obj)
        if not found:
            return
        if opts.field_validation == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{p}"' for p, _, _ in found))
        for path, container, key in found:
            container.pop(key, None)
            if opts.field_validation == "Warn":
                opts.warnings.append(f'unknown field "{path}"')
