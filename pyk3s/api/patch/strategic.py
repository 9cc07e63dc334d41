"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``, spec 5.6/5.7).

Rules, in the order upstream applies them to each map of the patch:

1. ``$patch: replace`` makes the map replace the original; ``$patch: delete`` empties it.
2. ``$retainKeys: [...]`` drops every original key not listed (every patched key must be listed).
3. ``$setElementOrder/<list>: [...]`` merges ``<list>`` and orders the result: listed elements in the
   given order, elements only the server has keep their relative place (upstream's mergeSortedSlice).
4. Every other key: ``null`` deletes; ``$deleteFromPrimitiveList/<list>`` removes scalars; maps merge;
   lists with ``patchStrategy=merge`` merge by their ``patchMergeKey`` (or as a set of scalars), where
   ``{"$patch": "delete", <key>: v}`` removes an element and ``{"$patch": "replace"}`` replaces the list;
   every other list and scalar is replaced.

Kinds without a schema (custom resources) fall back to JSON merge patch.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import PatchError
from .mergepatch import merge_patch
from .schema import FieldType, child_type, elem_type, root_type

__all__ = ["go_format", "strategic_merge_patch"]

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge_patch(obj: dict, patch: dict, gvk: tuple[str, str, str]) -> dict:
    t = root_type(gvk)
    if t is None:
        return merge_patch(obj, patch)
    if not isinstance(patch, dict):
        raise PatchError(400, "strategic merge patch: the body must be a JSON object")
    return _merge_map(copy.deepcopy(obj), copy.deepcopy(patch), t)


def go_format(value: Any) -> str:
    """A value as Go's %v prints the decoded JSON (for upstream-worded messages)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _merge_map(original: Any, patch: dict, t: FieldType) -> dict:
    if _DIRECTIVE in patch:
        directive = patch.pop(_DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, t)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(400, f"Unknown patch type: {directive} in map: {go_format(patch)}")
    out: dict = original if isinstance(original, dict) else {}
    _retain_keys(out, patch)
    for key in [k for k in patch if k.startswith(_ORDER)]:
        order = patch.pop(key)
        name = key[len(_ORDER):]
        if not isinstance(order, list):
            raise PatchError(400, "invalid patch format of setElementOrder list")
        ft = child_type(t, name)
        merged = _merge_list(_as_list(out.get(name)), _as_list(patch.pop(name, [])), ft, order=order)
        if merged:
            out[name] = merged
        else:
            out.pop(name, None)
    for key, pv in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            name = key[len(_DELETE_PRIMITIVE):]
            if not isinstance(pv, list):
                raise PatchError(400, "invalid patch format of deleteFromPrimitiveList")
            if isinstance(out.get(name), list):
                out[name] = [v for v in out[name] if v not in pv]
            continue
        if pv is None:
            out.pop(key, None)
            continue
        ft = child_type(t, key)
        ov = out.get(key)
        if isinstance(ov, dict) and isinstance(pv, dict):
            out[key] = _merge_map(ov, pv, ft)
        elif isinstance(ov, list) and isinstance(pv, list):
            out[key] = _merge_list(ov, pv, ft)
        else:
            out[key] = _build(pv, ft)
    return out


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _retain_keys(original: dict, patch: dict) -> None:
    if _RETAIN not in patch:
        return
    retain = patch.pop(_RETAIN)
    if not isinstance(retain, list):
        raise PatchError(400, "invalid patch format of retainKeys")
    for k, v in patch.items():
        if v is not None and not k.startswith(("$", _ORDER)) and k not in retain:
            raise PatchError(400, "invalid patch format of retainKeys")
    for k in [k for k in original if k not in retain]:
        del original[k]


def _build(pv: Any, t: FieldType) -> Any:
    """A patch value with no original counterpart: directives are resolved against an empty original."""
    if isinstance(pv, dict):
        return _merge_map({}, pv, t)
    if isinstance(pv, list):
        return _merge_list([], pv, t)
    return pv


def _key_of(item: Any, key: str) -> Any:
    if isinstance(item, dict):
        return json.dumps(item.get(key), sort_keys=True)
    return json.dumps(item, sort_keys=True)


def _merge_list(original: list, patch: list, t: FieldType, order: list | None = None) -> list:
    if t.kind != "list" or not t.smp_merge:
        return [_build(v, elem_type(t)) for v in patch] if order is None else (patch or original)
    et = elem_type(t)
    key = t.smp_key
    maps = any(isinstance(v, dict) for v in original + patch)
    if maps:
        if not key:
            raise PatchError(422, "cannot merge lists without merge key")
        original, patch = _special_elements(original, patch, key)
        merged = list(original)
        index = {_key_of(v, key): i for i, v in enumerate(merged)}
        for pv in patch:
            if not isinstance(pv, dict) or key not in pv:
                raise PatchError(422, f"map: {go_format(pv)} does not contain declared merge key: {key}")
            k = _key_of(pv, key)
            if k in index:
                merged[index[k]] = _merge_map(merged[index[k]], pv, et)
            else:
                index[k] = len(merged)
                merged.append(_merge_map({}, pv, et))
    else:
        merged = []
        for v in original + patch:
            if v not in merged:
                merged.append(v)
    order_list = patch if order is None else order
    for item in order_list if maps else ():
        if not isinstance(item, dict) or key not in item:
            raise PatchError(400, "invalid patch format of setElementOrder list")
    wanted = {_key_of(v, key) for v in order_list}
    patch_items = [v for v in merged if _key_of(v, key) in wanted]
    server_only = [v for v in merged if _key_of(v, key) not in wanted]
    return _normalize_order(patch_items, server_only, order_list, original, key)


def _special_elements(original: list, patch: list, key: str) -> tuple[list, list]:
    plain: list = []
    replace = False
    for pv in patch:
        if not isinstance(pv, dict) or _DIRECTIVE not in pv:
            plain.append(pv)
            continue
        directive = pv[_DIRECTIVE]
        if directive == "delete":
            if key not in pv:
                raise PatchError(422, f"map: {go_format(pv)} does not contain declared merge key: {key}")
            k = _key_of(pv, key)
            original = [v for v in original if _key_of(v, key) != k]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError(400, "merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(400, f"Unknown patch type: {directive} in map: {go_format(pv)}")
    if replace:
        return [_merge_map({}, v, FieldType()) if isinstance(v, dict) else v for v in plain], []
    return original, plain


def _normalize_order(patch_items: list, server_only: list, patch_order: list, server_order: list,
                     key: str) -> list:
    def position(order: list) -> dict[str, int]:
        return {_key_of(v, key): i for i, v in reversed(list(enumerate(order)))}

    by_patch = position(patch_order)
    by_server = position(server_order)
    patch_items = sorted(patch_items, key=lambda v: by_patch.get(_key_of(v, key), len(by_patch)))
    server_only = sorted(server_only, key=lambda v: by_server.get(_key_of(v, key), len(by_server)))
    # Insert each server-only item before the first patch item that the live order puts after it.
    out: list = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        elif j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        else:
            li = by_server.get(_key_of(server_only[i], key))
            ri = by_server.get(_key_of(patch_items[j], key))
            if li is not None and ri is not None and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out
