"""Unknown-field handling for ``fieldValidation`` (spec 2.3), and the type errors decoding into Go
types would raise for built-in kinds.

``Strict`` answers 400 ``strict decoding error: unknown field "spec.foo"``; ``Warn`` drops the field
and adds a ``Warning`` header; ``Ignore`` drops it silently (what decoding into Go types or CRD
pruning does). Built-in kinds are judged against :mod:`schemas` (only closed types), custom
resources against their ``openAPIV3Schema`` (``x-kubernetes-preserve-unknown-fields`` opens a subtree).
"""

from __future__ import annotations

from typing import Any

from pyk3s.api.errors import bad_request
from pyk3s.api.request import WriteOptions
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.schemas import KIND_TYPES, TYPES

__all__ = ["FieldChecker", "type_error", "unknown_fields"]

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


# Go integer fields of the built-in kinds that are int64; every other integer is an int32.
_INT64 = frozenset({"generation", "deletionGracePeriodSeconds", "terminationGracePeriodSeconds",
                    "activeDeadlineSeconds", "tolerationSeconds", "observedGeneration", "expirationSeconds"})
_SCALARS = {"string": (str,), "boolean": (bool,), "integer": (int,)}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number"


def _go_type(spec: str, key: str) -> str:
    if spec == "integer":
        return "int64" if key in _INT64 else "int32"
    if spec == "boolean":
        return "bool"
    if spec == "map":
        return "map[string]string"
    if spec.startswith("["):
        inner = spec[1:-1]
        return "[]" + (inner if inner in ("string",) else "v1." + inner)
    return spec if spec == "string" else "v1." + spec


def _mistyped(value: Any, spec: str, key: str, struct: str, stack: list[str]) -> str | None:
    """The Go ``UnmarshalTypeError`` text for the first value that does not fit its field, else None.
    Like encoding/json: the struct is the innermost Go struct, the field path its JSON names from
    the top (no map keys, no list indexes)."""
    if value is None:
        return None
    where = f"Go struct field {struct}.{'.'.join(stack)}"
    scalar = _SCALARS.get(spec)
    if scalar is not None:
        ok = isinstance(value, scalar) and not (spec == "integer" and isinstance(value, bool))
        if spec == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            return f"json: cannot unmarshal {_json_kind(value)} into {where} of type {_go_type(spec, key)}"
        return None
    if spec == "map":
        if not isinstance(value, dict):
            return f"json: cannot unmarshal {_json_kind(value)} into {where} of type map[string]string"
        for v in value.values():
            if v is not None and not isinstance(v, str):
                return f"json: cannot unmarshal {_json_kind(v)} into {where} of type string"
        return None
    if spec.startswith("["):
        if not isinstance(value, list):
            return f"json: cannot unmarshal {_json_kind(value)} into {where} of type {_go_type(spec, key)}"
        for item in value:
            found = _mistyped(item, spec[1:-1], key, struct, stack)
            if found:
                return found
        return None
    t = TYPES.get(spec)
    if t is None:
        return None
    if not isinstance(value, dict):
        return f"json: cannot unmarshal {_json_kind(value)} into {where} of type {_go_type(spec, key)}"
    fields = t[2]
    for k, v in value.items():
        sub = fields.get(k)
        if sub is not None:
            found = _mistyped(v, sub, k, spec, [*stack, k])
            if found:
                return found
    return None


def type_error(info: ResourceInfo, obj: dict[str, Any]) -> str | None:
    """The message kube-apiserver gives when a built-in object's JSON does not decode into its Go type."""
    tname = KIND_TYPES.get((info.group, info.kind))
    t = TYPES.get(tname or "")
    if info.is_custom or t is None:
        return None
    fields = t[2]
    for k, v in obj.items():
        sub = fields.get(k)
        if sub is not None:
            found = _mistyped(v, sub, k, tname or "", [k])
            if found:
                return f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {found}'
    return None


class FieldChecker:
    def check(self, info: ResourceInfo, obj: dict[str, Any], opts: WriteOptions) -> None:
        mistyped = type_error(info, obj)
        if mistyped:
            raise bad_request(mistyped)
        found = unknown_fields(info, obj)
        if not found:
            return
        if opts.field_validation == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{p}"' for p, _, _ in found))
        for path, container, key in found:
            container.pop(key, None)
            if opts.field_validation == "Warn":
                opts.warnings.append(f'unknown field "{path}"')
