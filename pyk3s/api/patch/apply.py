"""Server-side apply (``application/apply-patch+yaml``, spec 5.8-5.12).

Steps, following sigs.k8s.io/structured-merge-diff and the apiserver field manager:

1. Merge the applied configuration into the live object by the structural list markers (schema.py):
   list-maps merge element-wise by their keys, sets merge as sets, atomic lists/maps are replaced.
2. Fields that merge changes and that another manager owns are conflicts: 409 unless ``force``,
   which moves their ownership to the applier. For ``fieldManager=kubectl`` conflicts are allowed on
   fields whose live value still equals the ``last-applied-configuration`` annotation (upgrade from
   client-side apply without conflicts).
3. The applier now owns exactly the fields of its configuration. Fields it owned before and no
   longer applies are removed from the object unless another manager still owns them (or something
   below them).
4. ``kubectl`` applies keep an existing ``last-applied-configuration`` annotation in step.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .errors import ApplyConflict, PatchError
from .fieldpath import FieldSet, Path, closure, compare, format_path, item_element, remove_paths, to_field_set
from .managed import ManagerEntry, decode_managed, encode_managed, strip_server_fields
from .schema import FieldType, child_type, elem_type, object_type

__all__ = ["LAST_APPLIED", "server_side_apply", "ssa_merge"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_KEEP: frozenset[Path] = frozenset({("f:metadata",), ("f:apiVersion",), ("f:kind",)})
_ABSENT = object()


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def ssa_merge(lhs: Any, rhs: Any, t: FieldType) -> Any:
    """The live value ``lhs`` with the applied value ``rhs`` merged in."""
    if rhs is _ABSENT:
        return lhs
    if (lhs is _ABSENT or lhs is None or t.atomic or not isinstance(rhs, dict | list)
            or type(lhs) is not type(rhs)):
        return _strip_nulls(copy.deepcopy(rhs))
    # from here on lhs and rhs are of the same type
    if isinstance(lhs, dict) and isinstance(rhs, dict):
        out = dict(lhs)
        for key, value in rhs.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = ssa_merge(lhs.get(key, _ABSENT), value, child_type(t, key))
        return out
    if isinstance(lhs, list) and isinstance(rhs, list) and t.kind == "list" and t.list_type in ("map", "set"):
        return _merge_list(lhs, rhs, t)
    return _strip_nulls(copy.deepcopy(rhs))


def _merge_list(lhs: list, rhs: list, t: FieldType) -> list:
    """Live order is kept; elements both sides have follow the applied order (SMD's list merge)."""
    et = elem_type(t)
    lpe = [item_element(v, t, i) for i, v in enumerate(lhs)]
    rpe = [item_element(v, t, i) for i, v in enumerate(rhs)]
    lmap = {pe: v for pe, v in reversed(list(zip(lpe, lhs, strict=True)))}
    rmap = {pe: v for pe, v in reversed(list(zip(rpe, rhs, strict=True)))}
    shared = [pe for pe in rpe if pe in lmap]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[str] = set()
    out: list = []
    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            pe = lpe[li]
            if pe == rpe[ri]:
                merged_rhs.add(pe)
                out.append(ssa_merge(lmap[pe], rmap[pe], et))
                li += 1
                ri += 1
                if next_shared == pe:
                    next_shared = shared.pop(0) if shared else None
                continue
            if pe in rmap and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lhs):
            pe = lpe[li]
            if pe not in rmap:
                out.append(lhs[li])
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < len(rhs):
            pe = rpe[ri]
            ri += 1
            if pe in merged_rhs:
                continue
            merged_rhs.add(pe)
            out.append(ssa_merge(lmap.get(pe, _ABSENT), rmap[pe], et))
            if next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def _last_applied(obj: dict) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    return value if isinstance(value, str) and value else None


def _allowed_by_last_applied(live: dict, t: FieldType) -> FieldSet:
    text = _last_applied(live)
    try:
        last = json.loads(text) if text else None
    except ValueError:
        last = None
    if not isinstance(last, dict):
        return frozenset()
    modified, _, _ = compare(last, live, t)
    return to_field_set(last, t) - modified


def _build_last_applied(applied: dict) -> str:
    obj = copy.deepcopy(applied)
    annotations = (obj.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def server_side_apply(live: dict | None, applied: dict, *, manager: str, force: bool, api_version: str,
                      gvk: tuple[str, str, str], now: str) -> dict:
    if not manager:
        raise PatchError(422, "fieldManager: Required value: is required for apply patch")
    if not isinstance(applied, dict):
        raise PatchError(400, "apply patch: the body must be an object")
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise PatchError(400, "metadata.managedFields must be nil")
    t = object_type(gvk)
    live_obj = copy.deepcopy(live) if isinstance(live, dict) else {}
    entries = decode_managed((live_obj.get("metadata") or {}).pop("managedFields", None))
    config_set = strip_server_fields(to_field_set(applied, t))
    merged = ssa_merge(live_obj, applied, t)
    modified, added, removed = compare(live_obj, merged, t)
    changed = strip_server_fields(modified | added | removed)

    me = ManagerEntry(manager, "Apply", api_version, "", now, frozenset())
    conflicts: list[tuple[ManagerEntry, FieldSet]] = []
    for e in entries:
        if e.identity == me.identity:
            me = e
        elif overlap := e.fields & changed:
            conflicts.append((e, overlap))
    if conflicts and not force:
        allowed = _allowed_by_last_applied(live_obj, t) if manager == "kubectl" else frozenset()
        if any(overlap - allowed for _, overlap in conflicts):
            raise ApplyConflict(sorted(
                (e.manager, "" if e.operation == "Apply" else e.api_version, format_path(p))
                for e, overlap in conflicts for p in sorted(overlap)))
    for e, overlap in conflicts:
        e.fields = e.fields - overlap

    previous = me.fields
    is_new = not any(e is me for e in entries)
    set_changed = previous != config_set or is_new
    me.fields = config_set
    me.api_version = api_version
    if is_new:
        entries.append(me)
    owned = closure(p for e in entries for p in e.fields)
    prune = closure(previous) - owned - _KEEP
    remove_paths(merged, [p for p in prune if p[:-1] not in prune], t)

    if manager == "kubectl" and _last_applied(live_obj) is not None:
        merged.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = \
            _build_last_applied(applied)
    if merged != live_obj or set_changed or changed:
        me.time = now
    meta = merged.setdefault("metadata", {})
    if managed := encode_managed(entries):
        meta["managedFields"] = managed
    return merged
